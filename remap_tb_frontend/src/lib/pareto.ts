// The Pareto front of accuracy vs size: models for which no other model is at
// least as small AND at least as accurate, with one of the two strictly better.

import type { State } from "../types";
import { onParetoFront } from "./marks";

export interface ParetoInput {
  id: string;
  params: number;
  accuracy: number | null;
  /** The model's state: cancelled, failed and diverged runs are left out unless `includeStopped`. */
  state?: State;
}

/**
 * Ids of the non-dominated models, ordered by increasing parameter count
 * (so accuracy strictly increases along the returned list). Models without an
 * accuracy are ignored. Ties (same params and accuracy) keep the first id in
 * sort order (by id) so the result is deterministic. Runs that stopped without a
 * trained model (cancelled, failed, diverged) are left out unless `includeStopped`.
 */
export function paretoFront(items: ParetoInput[], includeStopped = false): string[] {
  const valid = items.filter(
    (d) =>
      d.accuracy !== null && Number.isFinite(d.accuracy) && Number.isFinite(d.params) && (d.state === undefined || onParetoFront(d.state, includeStopped)),
  ) as (ParetoInput & { accuracy: number })[];
  valid.sort((a, b) => a.params - b.params || b.accuracy - a.accuracy || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const front: string[] = [];
  let best = -Infinity;
  for (const d of valid) {
    if (d.accuracy > best) {
      front.push(d.id);
      best = d.accuracy;
    }
  }
  return front;
}
