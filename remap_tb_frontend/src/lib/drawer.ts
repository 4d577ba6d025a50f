// Which models the drawer table lists (issue 11: it honours the map's filters and budget).
//
// - "top": the 25 most accurate finished models among those that pass the filters and
//   fit the parameter budget (params <= budget) — the starting points the map offers.
// - "all": every model that passes the filters (over-budget ones stay, marked).
// - "collected": the selection and the pinned models, as the user collected them
//   (an explicit choice is never hidden; rows the filters hide are marked).

import type { ModelSummary } from "../types";
import { topModels } from "./sort";

export type DrawerMode = "collected" | "top" | "all";
export const TOP_N = 25;

export interface DrawerRows {
  rows: ModelSummary[];
  /** Models of the mode's pool that the filters hide. */
  hiddenByFilters: number;
  /** Models of the mode's pool (after the filters) that are over the budget and left out. */
  overBudget: number;
}

/** Is the model within the parameter budget (no budget: always)? */
export function withinBudget(m: ModelSummary, budget: number | null): boolean {
  return budget === null || m.params <= budget;
}

/**
 * The rows of one drawer mode, unsorted (the table sorts them). `visible` is the set of ids
 * that pass the filters (null: no filter is active).
 */
export function drawerRows(
  mode: DrawerMode,
  models: ModelSummary[],
  opts: { visible: Set<string> | null; budget: number | null; collected: Set<string>; byId?: Map<string, ModelSummary> },
): DrawerRows {
  const passes = (m: ModelSummary) => opts.visible === null || opts.visible.has(m.id);
  if (mode === "collected") return { rows: models.filter((m) => opts.collected.has(m.id)), hiddenByFilters: 0, overBudget: 0 };
  if (mode === "all") {
    const rows = models.filter(passes);
    return { rows, hiddenByFilters: models.length - rows.length, overBudget: 0 };
  }
  const finished = models.filter((m) => m.status.state === "done");
  const shown = finished.filter(passes);
  const fit = shown.filter((m) => withinBudget(m, opts.budget));
  return { rows: topModels(fit, TOP_N, opts.byId), hiddenByFilters: finished.length - shown.length, overBudget: shown.length - fit.length };
}
