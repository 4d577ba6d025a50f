// Point colours of the model map. Darkness encodes validation accuracy (REMAP);
// the hue depends on the colour-by mode. Colours are quantised into a few levels
// so that the canvas can fill all points of one colour in a single path.

import type { Origin } from "../types";

export type ColorBy = { kind: "accuracy" } | { kind: "class"; index: number } | { kind: "origin" };

export const ORIGIN_COLORS: Record<Origin, string> = {
  initial: "#4e79a7",
  ablation: "#e15759",
  variation: "#59a14f",
  handcrafted: "#b07aa1",
  external: "#499894", // models logged from the user's own training loop (remap_tb.summary)
};

/** The colour of an untrained model (logged without epochs, no accuracy) for views that mark the state. */
export const UNTRAINED_COLOR = "#8c8c8c";

export const NO_VALUE_COLOR = "#d5d5d5";
export const FILTERED_COLOR = "rgba(0,0,0,0.06)";
export const ACCENT = "#f57c00";
export const LEVELS = 12;

type RGB = [number, number, number];

export function parseHex(hex: string): RGB {
  const h = hex.replace("#", "");
  const full = h.length === 3 ? h.split("").map((c) => c + c).join("") : h;
  const n = parseInt(full, 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

export function toHex([r, g, b]: RGB): string {
  const c = (v: number) => Math.round(Math.min(255, Math.max(0, v))).toString(16).padStart(2, "0");
  return `#${c(r)}${c(g)}${c(b)}`;
}

export function mix(a: RGB, b: RGB, t: number): RGB {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/** Quantise t in 0..1 to one of LEVELS steps. */
export function quantise(t: number, levels = LEVELS): number {
  const c = Math.min(1, Math.max(0, t));
  return Math.round(c * (levels - 1)) / (levels - 1);
}

const GREY_LIGHT: RGB = [192, 192, 192]; // the worst model stays visible on white
const GREY_DARK: RGB = [33, 33, 33];
const BLUE_LIGHT: RGB = [214, 230, 244];
const BLUE_DARK: RGB = [8, 48, 107];
const WHITE: RGB = [255, 255, 255];
const BLACK: RGB = [0, 0, 0];

/** Accuracy darkness: light grey (worst in view) to near-black (best). */
export function accuracyColor(t: number | null): string {
  if (t === null) return NO_VALUE_COLOR;
  return toHex(mix(GREY_LIGHT, GREY_DARK, quantise(t)));
}

/** One class's accuracy: light to dark blue. */
export function classColor(t: number | null): string {
  if (t === null) return NO_VALUE_COLOR;
  return toHex(mix(BLUE_LIGHT, BLUE_DARK, quantise(t)));
}

/** Origin hue; darker with higher accuracy (pale tint -> full -> a little darker). */
export function originColor(origin: Origin, t: number | null): string {
  const base = parseHex(ORIGIN_COLORS[origin] ?? "#999999");
  if (t === null) return toHex(mix(base, WHITE, 0.7));
  const q = quantise(t);
  return q < 0.6 ? toHex(mix(mix(base, WHITE, 0.75), base, q / 0.6)) : toHex(mix(base, BLACK, ((q - 0.6) / 0.4) * 0.35));
}
