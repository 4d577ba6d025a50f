// Layout of an architecture glyph (REMAP's "network chips"), as pure geometry.
//
// One block per layer, left to right. Colour = layer type (fixed legend, see
// layers.ts); block height = output tensor size on a log scale; thin layers
// (activation, dropout, batchnorm) get narrower blocks; under each block a bar
// whose height is the layer's share of all parameters. Blocks are centred on a
// common midline so that the tensor "narrows" visibly through the network.
//
// Branching architectures (spec schema 2): the strip stays in layer order; every
// input that is not the previous layer is an arc in a band above the strip, from the
// source block (or the network input, at the strip's left end) to the consuming
// block; longer arcs rise higher, so nested skips do not cross. Where a layer does
// not read its left neighbour the strip has a "break". A chain has no arcs, no band
// and no breaks: it lays out exactly as before.

import type { GlyphLayer } from "../types";
import { tensorSize } from "./format";
import { isThinLayer, layerColor } from "./layers";

export interface GlyphOptions {
  blockWidth?: number; // width of a full block (px)
  thinWidth?: number; // width of activation/dropout/batchnorm blocks
  gap?: number; // space between blocks
  height?: number; // height of the block area (px)
  minBlockHeight?: number;
  paramRow?: number; // height of the parameter-share row under the blocks (0 = none)
  /** Largest tensor size of the scale; pass a shared value to compare glyphs. */
  maxSize?: number;
  /** Height of the arc band above the blocks (only when the glyph has arcs); default 45% of `height`, at least 6. */
  arcRow?: number;
}

/** A connection that is not "the previous layer": drawn as an arc above the strip. */
export interface GlyphArc {
  from: number; // source layer index, -1 = the network input
  to: number; // consuming layer index
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  /** The arc's highest point (smallest y) lies at or just below this y (exactly at it, halfway, when y1 = y2). */
  apex: number;
  /** SVG path: a cubic curve from (x1, y1) up to `apex` and down to (x2, y2). */
  d: string;
}

export interface GlyphBlock {
  index: number;
  type: string;
  fn?: string;
  rate?: number;
  x: number;
  y: number;
  width: number;
  height: number;
  fill: string;
  size: number; // output tensor size (0 when unknown)
  params: number; // 0 when unknown
  /** The layer's output shape is unknown (an invalid candidate or edit): drawn as an outline. */
  unknown: boolean;
  paramShare: number; // 0..1
  paramBar: { x: number; y: number; width: number; height: number };
}

export interface GlyphLayout {
  blocks: GlyphBlock[];
  width: number;
  height: number; // total, including the arc band and the param row
  blockArea: number; // height of the block area
  totalParams: number;
  /** y of the top of the block area: the arc band's height (0 for a chain). */
  top: number;
  arcs: GlyphArc[];
  /** x of each gap between a layer and its left neighbour that it does not read. */
  breaks: { index: number; x: number }[];
  /** Where arcs from the network input start (null: none do). */
  input: { x: number; y: number } | null;
}

const DEFAULTS: Required<Omit<GlyphOptions, "maxSize" | "arcRow">> = {
  blockWidth: 10,
  thinWidth: 4,
  gap: 2,
  height: 28,
  minBlockHeight: 3,
  paramRow: 8,
};

export function glyphMaxSize(glyph: GlyphLayer[]): number {
  let m = 1;
  for (const g of glyph) m = Math.max(m, tensorSize(g.output_shape));
  return m;
}

/** Height (px) of a block for a tensor of `size` elements, log-scaled into [minH, maxH]. */
export function blockHeight(size: number, maxSize: number, minH: number, maxH: number): number {
  if (!(size > 0)) return minH;
  const top = Math.log1p(Math.max(maxSize, size));
  if (top <= 0) return maxH;
  const t = Math.log1p(size) / top;
  return minH + (maxH - minH) * Math.min(1, Math.max(0, t));
}

/** What a glyph layer reads: its `inputs`, or the previous layer. */
export function glyphInputs(g: GlyphLayer): number[] {
  return Array.isArray(g.inputs) ? g.inputs : [g.index - 1];
}

/** Does any layer read something other than its previous layer? */
export function hasBranches(glyph: GlyphLayer[]): boolean {
  return glyph.some((g) => glyphInputs(g).some((k) => k !== g.index - 1));
}

export interface ArcBlock {
  index: number;
  x: number;
  y: number;
  width: number;
}

/** Where arcs from the network input start: just left of the first block. */
const INPUT_PAD = 4;

/**
 * The arcs and breaks of a glyph over positioned blocks (layoutGlyph's, or blocks moved
 * into the comparison's columns). `top` is the y of the block area (the band above it
 * holds the arcs); `input` where arcs from the network input start. Arcs whose source
 * or target has no block, or that point backwards (an invalid edit), are left out.
 */
export function layoutArcs(
  glyph: GlyphLayer[],
  blocks: ArcBlock[],
  top: number,
  input: { x: number; y: number },
): { arcs: GlyphArc[]; breaks: { index: number; x: number }[] } {
  const byIndex = new Map<number, ArcBlock>();
  for (const b of blocks) byIndex.set(b.index, b);
  const raw: { from: number; to: number; x1: number; y1: number; x2: number; y2: number }[] = [];
  const breaks: { index: number; x: number }[] = [];
  for (const g of glyph) {
    const inputs = glyphInputs(g);
    const dst = byIndex.get(g.index);
    if (!dst) continue;
    if (g.index > 0 && !inputs.includes(g.index - 1)) {
      const left = byIndex.get(g.index - 1);
      if (left) breaks.push({ index: g.index, x: (left.x + left.width + dst.x) / 2 });
    }
    for (const k of inputs) {
      if (k === g.index - 1 || k >= g.index || k < -1) continue;
      const x2 = dst.x + dst.width / 2;
      if (k === -1) {
        raw.push({ from: k, to: g.index, x1: input.x, y1: input.y, x2, y2: dst.y });
        continue;
      }
      const src = byIndex.get(k);
      if (!src) continue;
      raw.push({ from: k, to: g.index, x1: src.x + src.width / 2, y1: src.y, x2, y2: dst.y });
    }
  }
  // Longer arcs rise higher: rank the distinct spans; the shortest reaches 40% of the band.
  const spans = [...new Set(raw.map((a) => Math.round((a.x2 - a.x1) * 100) / 100))].sort((a, b) => a - b);
  const arcs = raw.map((a) => {
    const rank = spans.indexOf(Math.round((a.x2 - a.x1) * 100) / 100);
    const lift = spans.length > 1 ? 0.4 + (0.6 * rank) / (spans.length - 1) : 1;
    const apex = top * (1 - lift);
    const yc = controlY(apex, a.y1, a.y2);
    const d = `M${r2(a.x1)},${r2(a.y1)}C${r2(a.x1)},${r2(yc)} ${r2(a.x2)},${r2(yc)} ${r2(a.x2)},${r2(a.y2)}`;
    return { ...a, apex, d };
  });
  return { arcs, breaks };
}

/**
 * The y of both control points of an arc's cubic so that it never rises above `apex`:
 * the curve with both ends at lo = min(y1, y2) passes lo / 4 + 0.75 yc at t = 1/2, its
 * highest point, and lifting an end only lowers the curve.
 */
function controlY(apex: number, y1: number, y2: number): number {
  return (apex - Math.min(y1, y2) / 4) / 0.75;
}

function r2(v: number): number {
  return Math.round(v * 100) / 100;
}

/** A point of an arc's cubic curve at t in [0, 1] (for tests and hit checks). */
export function arcPoint(a: GlyphArc, t: number): { x: number; y: number } {
  const yc = controlY(a.apex, a.y1, a.y2);
  const u = 1 - t;
  return {
    x: u * u * u * a.x1 + 3 * u * u * t * a.x1 + 3 * u * t * t * a.x2 + t * t * t * a.x2,
    y: u * u * u * a.y1 + 3 * u * u * t * yc + 3 * u * t * t * yc + t * t * t * a.y2,
  };
}

export function layoutGlyph(glyph: GlyphLayer[], options: GlyphOptions = {}): GlyphLayout {
  const o = { ...DEFAULTS, ...options };
  const branched = hasBranches(glyph);
  const fromInput = branched && glyph.some((g) => g.index > 0 && glyphInputs(g).includes(-1));
  const top = branched ? Math.max(6, options.arcRow ?? Math.round(o.height * 0.45)) : 0;
  const left = fromInput ? INPUT_PAD : 0;
  const maxSize = options.maxSize ?? glyphMaxSize(glyph);
  let totalParams = 0;
  for (const g of glyph) totalParams += Math.max(0, g.params || 0);
  const blocks: GlyphBlock[] = [];
  let x = left;
  const mid = top + o.height / 2;
  for (const g of glyph) {
    const w = isThinLayer(g.type) ? o.thinWidth : o.blockWidth;
    const size = tensorSize(g.output_shape);
    const h = blockHeight(size, maxSize, o.minBlockHeight, o.height);
    const share = totalParams > 0 ? Math.max(0, g.params || 0) / totalParams : 0;
    const barH = o.paramRow > 0 ? (share > 0 ? Math.max(1, share * o.paramRow) : 0) : 0;
    const block: GlyphBlock = {
      index: g.index,
      type: g.type,
      x,
      y: mid - h / 2,
      width: w,
      height: h,
      fill: layerColor(g.type, g.fn),
      size,
      params: g.params || 0,
      unknown: g.output_shape === null,
      paramShare: share,
      paramBar: { x, y: top + o.height + 1 + (o.paramRow - barH), width: w, height: barH },
    };
    if (g.fn !== undefined) block.fn = g.fn;
    if (g.rate !== undefined) block.rate = g.rate;
    blocks.push(block);
    x += w + o.gap;
  }
  const width = blocks.length ? x - o.gap : 0;
  const input = { x: 1, y: mid };
  const { arcs, breaks } = branched ? layoutArcs(glyph, blocks, top, input) : { arcs: [], breaks: [] };
  return {
    blocks,
    width,
    height: top + o.height + (o.paramRow > 0 ? o.paramRow + 1 : 0),
    blockArea: o.height,
    totalParams,
    top,
    arcs,
    breaks,
    input: fromInput ? input : null,
  };
}
