// Scales of the model map: radius from parameter count, darkness from accuracy,
// fitting a layout into the canvas, log-parameter ticks.

export interface Extent {
  min: number;
  max: number;
}

export function extentOf(values: Iterable<number | null | undefined>): Extent | null {
  let min = Infinity,
    max = -Infinity;
  for (const v of values) {
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return min <= max ? { min, max } : null;
}

/** Radius in px from a parameter count, log-scaled over the population's range. */
export function makeRadiusScale(params: number[], rMin = 2.5, rMax = 8): (p: number) => number {
  const e = extentOf(params.filter((p) => p > 0).map((p) => Math.log10(p)));
  if (!e) return () => (rMin + rMax) / 2;
  const span = e.max - e.min;
  return (p: number) => {
    if (!(p > 0)) return rMin;
    if (span <= 1e-12) return (rMin + rMax) / 2;
    const t = Math.min(1, Math.max(0, (Math.log10(p) - e.min) / span));
    return rMin + (rMax - rMin) * t;
  };
}

/** The value below which a fraction `q` of the finite values lie (nearest rank). */
export function quantileOf(values: (number | null | undefined)[], q: number): number | null {
  const v = values.filter((x): x is number => x !== null && x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  return v[Math.min(v.length - 1, Math.max(0, Math.round(q * (v.length - 1))))];
}

/**
 * 0..1 position of an accuracy within the population's range (null stays null).
 * With `lowQuantile` > 0 (and at least 10 values) the range starts at that
 * quantile instead of the minimum, so one or two failed models do not wash out the
 * differences among the rest; values below it map to 0.
 */
export function makeUnitScale(values: (number | null)[], lowQuantile = 0): (v: number | null) => number | null {
  const e = extentOf(values);
  if (e && lowQuantile > 0 && values.filter((v) => v !== null && Number.isFinite(v)).length >= 10) {
    const lo = quantileOf(values, lowQuantile);
    if (lo !== null && lo < e.max) e.min = lo;
  }
  return (v) => {
    if (v === null || !Number.isFinite(v) || !e) return null;
    const span = e.max - e.min;
    if (span <= 1e-12) return 1;
    return Math.min(1, Math.max(0, (v - e.min) / span));
  };
}

export interface FitTransform {
  k: number; // px per data unit (same on both axes for MDS; see fitLayout)
  kx: number;
  ky: number;
  tx: number;
  ty: number;
}

/**
 * Map data coordinates into a width x height box with `pad` px on each side.
 * `equalAspect` keeps one scale for both axes (MDS layouts have no axes, so
 * distances must not be stretched); otherwise each axis fills the box.
 * y is flipped so that larger y is drawn higher.
 */
export function fitLayout(
  points: { x: number; y: number }[],
  width: number,
  height: number,
  pad: number,
  equalAspect: boolean,
): FitTransform {
  const ex = extentOf(points.map((p) => p.x)) ?? { min: 0, max: 1 };
  const ey = extentOf(points.map((p) => p.y)) ?? { min: 0, max: 1 };
  const dx = Math.max(ex.max - ex.min, 1e-9);
  const dy = Math.max(ey.max - ey.min, 1e-9);
  const w = Math.max(1, width - 2 * pad);
  const h = Math.max(1, height - 2 * pad);
  let kx = w / dx,
    ky = h / dy;
  if (equalAspect) kx = ky = Math.min(kx, ky);
  const cx = (ex.min + ex.max) / 2,
    cy = (ey.min + ey.max) / 2;
  return { k: Math.min(kx, ky), kx, ky, tx: width / 2 - cx * kx, ty: height / 2 + cy * ky };
}

export function applyFit(t: FitTransform, x: number, y: number): [number, number] {
  return [x * t.kx + t.tx, -y * t.ky + t.ty];
}

export function invertFit(t: FitTransform, sx: number, sy: number): [number, number] {
  return [(sx - t.tx) / t.kx, -(sy - t.ty) / t.ky];
}

/** The most ticks an axis of the map draws, whatever the range it is asked for. */
export const MAX_TICKS = 12;

/**
 * Powers of ten (and 2x, 5x when the range is short) within [lo, hi] of log10 values.
 * At most `maxTicks` ticks: over a range of more decades than that, every k-th power
 * (k = ceil(decades / maxTicks)), so the cost never follows the range (a structural
 * layout's +-5,000 read as log10 parameters once drew 10,000 gridlines per frame).
 */
export function logTicks(lo: number, hi: number, maxTicks = MAX_TICKS): number[] {
  const out: number[] = [];
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi < lo || maxTicks < 1) return out;
  const short = hi - lo < 2.2;
  const e0 = Math.floor(lo),
    e1 = Math.ceil(hi);
  const every = Math.max(1, Math.ceil((e1 - e0 + 1) / maxTicks));
  for (let e = Math.ceil(e0 / every) * every; e <= e1; e += every) {
    for (const m of short ? [1, 2, 5] : [1]) {
      const v = e + Math.log10(m);
      if (v >= lo - 1e-9 && v <= hi + 1e-9) out.push(v);
    }
  }
  return out;
}

/**
 * Ticks of a linear axis over [lo, hi]: multiples of the smallest step of the 1-2-5
 * sequence, no finer than `minStep`, that leaves at most 10 intervals (the
 * accuracy axis: 10 % steps over a full 0..1 range, 1 % steps when zoomed in), and
 * never more than `maxTicks` ticks. Returns the step and the tick values.
 */
export function linearTicks(lo: number, hi: number, minStep = 0.01, maxTicks = MAX_TICKS): { step: number; ticks: number[] } {
  const ticks: number[] = [];
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi < lo) return { step: minStep, ticks };
  const span = hi - lo;
  let step = minStep;
  for (let mag = Math.pow(10, Math.floor(Math.log10(minStep))); ; mag *= 10) {
    const s = [1, 2, 5].map((m) => m * mag).find((c) => c >= minStep - 1e-12 && span / c <= 10 + 1e-9);
    if (s !== undefined) {
      step = s;
      break;
    }
    if (!Number.isFinite(mag) || mag > 1e300) return { step, ticks };
  }
  const first = Math.ceil(lo / step - 1e-9);
  for (let k = first; ticks.length < maxTicks; k++) {
    const v = k * step;
    if (v > hi + 1e-9) break;
    ticks.push(v);
  }
  return { step, ticks };
}

/** Cubic ease in-out on 0..1. */
export function easeCubicInOut(t: number): number {
  return t < 0.5 ? 4 * t * t * t : 1 - Math.pow(-2 * t + 2, 3) / 2;
}

/** The x axis title of the accuracy-vs-size map (its ticks read as parameter counts). */
export const SIZE_X_LABEL = "parameters (log scale)";

/**
 * Axis titles of the accuracy-vs-size map. The wire's x axis name says what the
 * coordinate is ("log10(parameters)"); the map labels its ticks with parameter counts
 * (1k, 10k, ...) on a log scale, so its title says that instead.
 */
export function sizeAxisLabels(axes: { x: string; y: string }): { x: string; y: string } {
  return { x: SIZE_X_LABEL, y: axes.y || "validation accuracy" };
}
