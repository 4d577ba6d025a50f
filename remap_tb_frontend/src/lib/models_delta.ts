// The dashboard's copy of the `models` list, kept up to date by deltas (issue 13): over
// 20,000 models the whole body is about 20 MB, so the dashboard sends back the `version` of
// the list it holds (`models?since=`) and the server answers only the summaries that changed
// and the runs that left (remap_tb/models_versions.py). A body without `since` (the first,
// or one the server no longer remembers) replaces the list.

import type { ModelSummary, ModelsResponse } from "../types";

/** The server's order: by creation time, then run name (`Snapshot.experiments`). */
export function byCreation(a: ModelSummary, b: ModelSummary): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return a.run < b.run ? -1 : a.run > b.run ? 1 : 0;
}

/**
 * The list after `res`: `res.models` when it is a whole body (no `since`, or a `since` that
 * is not `held`, the version of `old`); otherwise `old` without `res.removed`, with each
 * changed summary in place of the one of its run (new runs added), in the server's order.
 * Null when a delta changes nothing.
 */
export function applyModels(old: ModelSummary[], held: string | null, res: ModelsResponse): ModelSummary[] | null {
  if (res.since === undefined || res.since === null || res.since !== held) return res.models;
  const removed = new Set(res.removed ?? []);
  if (!res.models.length && !removed.size) return null;
  const changed = new Map(res.models.map((m) => [m.run, m]));
  const out: ModelSummary[] = [];
  for (const m of old) {
    if (removed.has(m.run)) continue;
    const now = changed.get(m.run);
    if (now) changed.delete(m.run);
    out.push(now ?? m);
  }
  if (changed.size) {
    out.push(...changed.values());
    out.sort(byCreation);
  }
  return out;
}
