// Layout of an architecture glyph (REMAP's "network chips"), as pure geometry.
//
// One block per layer, left to right. Colour = layer type (fixed legend, see
// layers.ts); block height = output tensor size on a log scale; thin layers
// (activation, dropout, batchnorm) get narrower blocks; under each block a bar
// whose height is the layer's share of all parameters. Blocks are centred on a
// common midline so that the tensor "narrows" visibly through the network.

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
  height: number; // total, including the param row
  blockArea: number; // height of the block area
  totalParams: number;
}

const DEFAULTS: Required<Omit<GlyphOptions, "maxSize">> = {
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

export function layoutGlyph(glyph: GlyphLayer[], options: GlyphOptions = {}): GlyphLayout {
  const o = { ...DEFAULTS, ...options };
  const maxSize = options.maxSize ?? glyphMaxSize(glyph);
  let totalParams = 0;
  for (const g of glyph) totalParams += Math.max(0, g.params || 0);
  const blocks: GlyphBlock[] = [];
  let x = 0;
  const mid = o.height / 2;
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
      paramBar: { x, y: o.height + 1 + (o.paramRow - barH), width: w, height: barH },
    };
    if (g.fn !== undefined) block.fn = g.fn;
    if (g.rate !== undefined) block.rate = g.rate;
    blocks.push(block);
    x += w + o.gap;
  }
  const width = blocks.length ? x - o.gap : 0;
  return {
    blocks,
    width,
    height: o.height + (o.paramRow > 0 ? o.paramRow + 1 : 0),
    blockArea: o.height,
    totalParams,
  };
}
