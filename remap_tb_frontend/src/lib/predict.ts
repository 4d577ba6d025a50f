// Predicted accuracy of generate's candidates (issue 10): the surrogate's mean ± std
// drawn as a bar with a whisker on a scale shared by every candidate of a preview,
// the words for it, and the candidates' order (as generated, by predicted accuracy,
// by expected improvement). Pure functions: the generate view draws what they say.

import type { Candidate, CandidateSort, Prediction, SurrogateInfo } from "../types";

/** The order of the candidate list: the server's, or best first by one of the predictions. */
export type CandidateOrder = "generated" | CandidateSort;

export const ORDER_LABELS: Record<CandidateOrder, string> = {
  generated: "as generated",
  predicted: "predicted accuracy",
  ei: "expected improvement",
};

/** A number usable for drawing (finite), else null. */
function finite(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** A prediction with a finite mean (std and ei made finite and non-negative), else null. */
export function cleanPrediction(p: Prediction | null | undefined): Prediction | null {
  if (!p) return null;
  const accuracy = finite(p.accuracy);
  if (accuracy === null) return null;
  const std = Math.abs(finite(p.std) ?? 0);
  const ei = Math.max(0, finite(p.ei) ?? 0);
  return { accuracy, std, ei };
}

/**
 * The accuracy range every bar of a preview is drawn on: the predictions' mean ± std and
 * the best finished model, widened to whole 5 pp steps, within [0, 1]; at least 5 pp wide.
 * With nothing to show: [0, 1].
 */
export function predictionDomain(preds: (Prediction | null | undefined)[], best: number | null = null): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const raw of preds) {
    const p = cleanPrediction(raw);
    if (!p) continue;
    lo = Math.min(lo, p.accuracy - p.std);
    hi = Math.max(hi, p.accuracy + p.std);
  }
  const b = finite(best);
  if (b !== null && lo !== Infinity) {
    lo = Math.min(lo, b);
    hi = Math.max(hi, b);
  }
  if (lo === Infinity) return [0, 1];
  const step = 0.05;
  let d0 = Math.max(0, Math.floor(lo / step + 1e-9) * step);
  let d1 = Math.min(1, Math.ceil(hi / step - 1e-9) * step);
  if (d1 - d0 < step) {
    if (d0 + step <= 1) d1 = d0 + step;
    else d0 = d1 - step;
  }
  return [round4(Math.max(0, d0)), round4(Math.min(1, d1))];
}

function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

/** The geometry of one bar, in pixels from the left of a `width`-wide track. */
export interface PredictionBar {
  /** The bar: 0 to the mean. */
  bar: number;
  /** The whisker: mean - std to mean + std. */
  lo: number;
  hi: number;
  /** The best finished model's mark (null: none). */
  best: number | null;
  /** The whisker runs past the track on that side (drawn open there). */
  clippedLo: boolean;
  clippedHi: boolean;
}

/** Where a value falls on the track: clamped to [0, width]. */
export function xOf(v: number, domain: [number, number], width: number): number {
  const [d0, d1] = domain;
  const span = d1 - d0;
  if (!Number.isFinite(v) || !(span > 0) || !(width > 0)) return 0;
  const t = (v - d0) / span;
  return Math.max(0, Math.min(1, t)) * width;
}

/** The bar and whisker of a prediction on a shared domain (see `predictionDomain`). */
export function predictionBar(p: Prediction, domain: [number, number], width: number, best: number | null = null): PredictionBar {
  const c = cleanPrediction(p) ?? { accuracy: domain[0], std: 0, ei: 0 };
  const b = finite(best);
  return {
    bar: xOf(c.accuracy, domain, width),
    lo: xOf(c.accuracy - c.std, domain, width),
    hi: xOf(c.accuracy + c.std, domain, width),
    best: b === null ? null : xOf(b, domain, width),
    clippedLo: c.accuracy - c.std < domain[0],
    clippedHi: c.accuracy + c.std > domain[1],
  };
}

/** "94.1% ± 1.2 pp". */
export function formatPrediction(p: Prediction | null | undefined): string {
  const c = cleanPrediction(p);
  if (!c) return "no prediction";
  return `${(c.accuracy * 100).toFixed(1)}% ± ${(c.std * 100).toFixed(1)} pp`;
}

/** Expected improvement in percentage points: "EI 0.84 pp". */
export function formatEi(p: Prediction | null | undefined): string {
  const c = cleanPrediction(p);
  if (!c) return "";
  const pp = c.ei * 100;
  return `EI ${pp >= 10 ? pp.toFixed(1) : pp >= 0.01 || pp === 0 ? pp.toFixed(2) : "<0.01"} pp`;
}

/** The value a candidate sorts by (null: no prediction, sorted last). */
export function orderValue(c: Candidate, order: CandidateOrder): number | null {
  if (order === "generated") return null;
  const p = cleanPrediction(c.predicted);
  if (!p) return null;
  return order === "ei" ? p.ei : p.accuracy;
}

/**
 * The candidates in the chosen order: "generated" keeps the server's; "predicted" and
 * "ei" put the highest first, valid before invalid, candidates without a prediction
 * last; ties keep the server's order. Returns a new array.
 */
export function sortCandidates(cands: Candidate[], order: CandidateOrder): Candidate[] {
  const indexed = cands.map((c, i) => ({ c, i, v: orderValue(c, order) }));
  if (order === "generated") return indexed.map((x) => x.c);
  indexed.sort((a, b) => {
    if (a.c.valid !== b.c.valid) return a.c.valid ? -1 : 1;
    if (a.v === null || b.v === null) return a.v === null && b.v === null ? a.i - b.i : a.v === null ? 1 : -1;
    return b.v - a.v || a.i - b.i;
  });
  return indexed.map((x) => x.c);
}

/** The line under the preview about the surrogate (null: an older server without one). */
export function surrogateNote(s: SurrogateInfo | null | undefined): { ready: boolean; text: string } | null {
  if (!s) return null;
  const n = s.n_models;
  if (!s.ready) {
    const why = s.reason || `the surrogate needs 8 finished models (${n} so far)`;
    return { ready: false, text: `No predicted accuracy yet: ${why}.`.replace(/\.\.$/, ".") };
  }
  const best = finite(s.best);
  return {
    ready: true,
    text: `Predicted accuracy: a Gaussian process over ${n} finished model${n === 1 ? "" : "s"}` + (best === null ? "." : `; the best finished within the budget: ${(best * 100).toFixed(1)}%.`),
  };
}
