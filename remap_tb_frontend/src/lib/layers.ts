// How layer types look: a fixed colour per type (the glyph legend) and short
// labels. Which types exist and what fields they take comes from the server
// (GET schema, see lib/schema.ts); a type missing here is drawn grey.

import type { GlyphLayer, Layer } from "../types";

/** The order of the glyph legend (and of the "has layers" filter). */
export const LEGEND_TYPES = [
  "conv2d",
  "maxpool2d",
  "avgpool2d",
  "globalavgpool",
  "dense",
  "activation",
  "dropout",
  "batchnorm",
  "add",
  "concat",
] as const;

/** Fixed colours per layer type (Tableau-like, readable on white). */
export const TYPE_COLORS: Record<string, string> = {
  conv2d: "#4e79a7",
  maxpool2d: "#59a14f",
  avgpool2d: "#8cd17d",
  globalavgpool: "#76b7b2",
  dense: "#e15759",
  activation: "#b07aa1",
  dropout: "#bab0ac",
  batchnorm: "#edc948",
  add: "#9c755f", // merges (schema 2): also marked ⊕ / ‖ in glyphs
  concat: "#17becf",
  classifier: "#4d4d4d",
};

/** Activations get a shade of their family: rectifiers purple, saturating pink. */
export const ACTIVATION_COLORS: Record<string, string> = {
  relu: "#b07aa1",
  leaky_relu: "#d0a6c6",
  elu: "#865a7d",
  tanh: "#ff9da7",
  sigmoid: "#d37295",
};

export const UNKNOWN_COLOR = "#cccccc";

export const TYPE_LABELS: Record<string, string> = {
  conv2d: "Conv",
  maxpool2d: "MaxPool",
  avgpool2d: "AvgPool",
  globalavgpool: "GlobalAvgPool",
  dense: "Dense",
  activation: "Activation",
  dropout: "Dropout",
  batchnorm: "BatchNorm",
  add: "Add",
  concat: "Concat",
  classifier: "Classifier",
};

/** The mark drawn on merge blocks and used in their labels. */
export const MERGE_SYMBOLS: Record<string, string> = { add: "⊕", concat: "‖" };

export function layerColor(type: string, fn?: string): string {
  if (type === "activation" && fn && ACTIVATION_COLORS[fn]) return ACTIVATION_COLORS[fn];
  return TYPE_COLORS[type] ?? UNKNOWN_COLOR;
}

/** Layers that only reshape/regularise: drawn narrower in glyphs. */
export function isThinLayer(type: string): boolean {
  return type === "activation" || type === "dropout" || type === "batchnorm";
}

/** " p1" for an integer padding > 0, "" otherwise. */
function padText(p: unknown): string {
  return typeof p === "number" && p > 0 ? ` p${p}` : "";
}

/** One-line description of a spec layer, e.g. "conv 16 k3 s2 p1 no-bias", "add ⊕". */
export function describeLayer(layer: Layer): string {
  const noBias = layer["bias"] === false ? " no-bias" : "";
  switch (layer.type) {
    case "conv2d":
      return `conv ${layer.filters} k${layer.kernel_size}${layer.stride && layer.stride !== 1 ? " s" + layer.stride : ""}${layer.padding === "same" ? " same" : padText(layer.padding)}${noBias}`;
    case "maxpool2d":
    case "avgpool2d":
      return `${layer.type === "maxpool2d" ? "maxpool" : "avgpool"} ${layer.pool_size}${layer.stride && layer.stride !== layer.pool_size ? " s" + layer.stride : ""}${padText(layer.padding)}`;
    case "dense":
      return `dense ${layer.units}${noBias}`;
    case "add":
    case "concat":
      return `${layer.type} ${MERGE_SYMBOLS[layer.type]}`;
    case "activation":
      return String(layer.fn);
    case "dropout":
      return `dropout ${layer.rate}`;
    default:
      return layer.type;
  }
}

/** Short label for a glyph layer (tooltips, legends). */
export function describeGlyphLayer(g: GlyphLayer): string {
  if (g.type === "activation") return g.fn ?? "activation";
  if (g.type === "dropout") return `dropout ${g.rate ?? ""}`.trim();
  return `${TYPE_LABELS[g.type] ?? g.type} → ${g.output_shape ? g.output_shape.join("×") : "?"}`;
}

/** Which layer types a glyph contains (the classifier is not counted). */
export function layerTypesOf(glyph: GlyphLayer[]): Set<string> {
  const s = new Set<string>();
  for (const g of glyph) if (g.type !== "classifier") s.add(g.type);
  return s;
}
