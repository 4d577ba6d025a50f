// How long a model trained (issue 11): the figure for the tooltip, the inspector and the
// drawer, and the warning on Δ parent when parent and child trained for different epochs
// (the accuracy difference then mixes the architecture change with the training length).

import type { ModelSummary } from "../types";

/** Epochs the model trained: the server's `epochs_trained`, else its status's epoch (older servers). */
export function epochsTrained(m: ModelSummary): number {
  if (typeof m.epochs_trained === "number" && Number.isFinite(m.epochs_trained)) return m.epochs_trained;
  return Number.isFinite(m.status.epoch) ? m.status.epoch : 0;
}

/** "10 epochs", "1 epoch"; a running model "3 of 10 epochs so far". */
export function epochsText(m: ModelSummary): string {
  const n = epochsTrained(m);
  const st = m.status.state;
  if (st === "running" || st === "queued") return `${n} of ${m.status.epochs} epoch${m.status.epochs === 1 ? "" : "s"} so far`;
  if (st === "untrained") return "not trained";
  return `${n} epoch${n === 1 ? "" : "s"}`;
}

/**
 * Why Δ parent is not a like-for-like comparison: "parent trained 10 epochs, this model 30"
 * when both finished with different epoch counts; null otherwise (also without a parent).
 */
export function epochMismatch(m: ModelSummary, parent: ModelSummary | undefined | null): string | null {
  if (!parent || m.status.state !== "done" || parent.status.state !== "done") return null;
  const a = epochsTrained(m),
    b = epochsTrained(parent);
  if (a === b) return null;
  return `parent ${parent.id} trained ${b} epoch${b === 1 ? "" : "s"}, this model ${a}: the difference mixes the change with the training length`;
}
