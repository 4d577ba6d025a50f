// How a model's training state is drawn on every map, and which models the Pareto
// front considers. A run that ended without a trained model (cancelled, failed,
// diverged) must not look like one: it is drawn hollow, and the front leaves it out
// by default (its accuracy is that of a model nobody can use).

import type { State } from "../types";

/** filled: a model (trained, training, imported); hollow: cancelled; crossed: failed or diverged. */
export type MarkStyle = "filled" | "hollow" | "crossed";

/** States of runs that stopped without a trained model. */
export const STOPPED_STATES: readonly State[] = ["cancelled", "failed", "diverged"];

export function markStyle(state: State): MarkStyle {
  if (state === "cancelled") return "hollow";
  if (state === "failed" || state === "diverged") return "crossed";
  return "filled";
}

/** Whether a model in `state` takes part in the Pareto front (stopped runs only when asked). */
export function onParetoFront(state: State, includeStopped: boolean): boolean {
  return includeStopped || !STOPPED_STATES.includes(state);
}

/** The colour of the cross of a failed or diverged model. */
export const CROSS_COLOR = "#c62828";
/** The ring of a hollow or crossed mark whose accuracy colour is too pale to see on white. */
export const PALE_RING = "#9e9e9e";
