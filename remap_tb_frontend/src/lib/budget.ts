// The parameter budget typed by the user: a positive whole number, at most MAX_BUDGET.

import { formatParams } from "./format";

export const MAX_BUDGET = 1_000_000_000;

export const BUDGET_HELP = "enter a positive whole number of parameters (empty = no budget)";

export type BudgetInput = { ok: true; value: number | null; note: string | null } | { ok: false; error: string };

/** Parse a typed budget: "" = no budget; junk, 0 or negative is an error; above the max is capped. */
export function parseBudget(raw: string, max = MAX_BUDGET): BudgetInput {
  const t = raw.trim();
  if (t === "") return { ok: true, value: null, note: null };
  const v = Number(t);
  if (!Number.isFinite(v) || Math.round(v) < 1) return { ok: false, error: `${t} is not a budget: ${BUDGET_HELP}` };
  if (v > max) return { ok: true, value: max, note: `capped at ${formatParams(max)} (${max.toLocaleString("en-US")}) parameters` };
  return { ok: true, value: Math.round(v), note: null };
}

/** Clamp a budget from elsewhere (dragging the line) to 1..max. */
export function clampBudget(v: number | null, max = MAX_BUDGET): number | null {
  if (v === null || !Number.isFinite(v)) return null;
  return Math.min(max, Math.max(1, Math.round(v)));
}
