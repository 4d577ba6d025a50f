// Sorting of model tables: by any column, nulls always last, stable, ties by id.

import type { ModelSummary } from "../types";
import { epochsTrained } from "./epochs";

export type SortKey = "id" | "origin" | "val_accuracy" | "delta" | "train_accuracy" | "params" | "depth" | "state" | "created" | "epochs";
export type SortDir = "asc" | "desc";

/** Accuracy change vs the parent (null when either is unknown or has not finished training). */
export function deltaVsParent(m: ModelSummary, byId: Map<string, ModelSummary>): number | null {
  if (!m.parent || m.val_accuracy === null || m.status.state !== "done") return null;
  const p = byId.get(m.parent);
  if (!p || p.val_accuracy === null || p.status.state !== "done") return null;
  return m.val_accuracy - p.val_accuracy;
}

export function sortValue(m: ModelSummary, key: SortKey, byId: Map<string, ModelSummary>): number | string | null {
  switch (key) {
    case "id":
      return m.id;
    case "origin":
      return m.origin;
    case "val_accuracy":
      return m.val_accuracy;
    case "delta":
      return deltaVsParent(m, byId);
    case "train_accuracy":
      return m.train_accuracy;
    case "params":
      return m.params;
    case "depth":
      return m.depth;
    case "state":
      return m.status.state;
    case "created":
      return m.created;
    case "epochs":
      return m.status.state === "untrained" ? null : epochsTrained(m);
  }
}

export function sortModels(
  models: ModelSummary[],
  key: SortKey,
  dir: SortDir,
  byId: Map<string, ModelSummary> = new Map(models.map((m) => [m.id, m])),
): ModelSummary[] {
  const sign = dir === "asc" ? 1 : -1;
  const withVals = models.map((m) => ({ m, v: sortValue(m, key, byId) }));
  withVals.sort((a, b) => {
    const an = a.v === null || (typeof a.v === "number" && Number.isNaN(a.v));
    const bn = b.v === null || (typeof b.v === "number" && Number.isNaN(b.v));
    if (an && bn) return cmp(a.m.id, b.m.id);
    if (an) return 1;
    if (bn) return -1;
    const c = cmp(a.v as number | string, b.v as number | string);
    return c !== 0 ? sign * c : cmp(a.m.id, b.m.id);
  });
  return withVals.map((d) => d.m);
}

function cmp(a: number | string, b: number | string): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  const sa = String(a),
    sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** Only finished models are ranked (a cancelled run's accuracy is not comparable). */
export function isRanked(m: ModelSummary): boolean {
  return m.status.state === "done";
}

/** The `n` most accurate finished models. */
export function topModels(models: ModelSummary[], n: number, byId?: Map<string, ModelSummary>): ModelSummary[] {
  return sortModels(models.filter(isRanked), "val_accuracy", "desc", byId).slice(0, n);
}
