// Renders an architecture glyph (see lib/glyph.ts for the layout) as a small SVG.
// Used in tooltips, tables, the inspector, the comparison, generate and editor.

import type { GlyphLayer } from "../types";
import { formatParams, formatShape } from "../lib/format";
import { GlyphArc, GlyphBlock, GlyphLayout, GlyphOptions, layoutGlyph } from "../lib/glyph";
import { inputLabel } from "../lib/graph";
import { LEGEND_TYPES, MERGE_SYMBOLS, TYPE_COLORS, TYPE_LABELS, ACTIVATION_COLORS } from "../lib/layers";
import { h, s } from "../lib/dom";

export type BlockMark = "changed" | "inserted" | "deleted" | null;

const ARC_COLOR = "#616161";

/**
 * Append the SVG shapes of one block to `g`. `inputs`: what a merge reads (for its
 * title); merges (add, concat) get their mark, a disc with ⊕ or a square with ‖.
 */
export function drawBlock(g: SVGGElement, b: GlyphBlock, mark: BlockMark = null, withTitle = true, inputs?: number[]): void {
  const rect = s("rect", {
    x: b.unknown ? b.x + 0.5 : b.x,
    y: b.unknown ? b.y + 0.5 : b.y,
    width: b.unknown ? Math.max(0, b.width - 1) : b.width,
    height: b.unknown ? Math.max(0, b.height - 1) : b.height,
    rx: 1,
    fill: b.unknown ? "#fff" : b.fill,
    stroke: b.unknown ? b.fill : null,
    "stroke-dasharray": b.unknown ? "2,1" : null,
    "data-layer": b.index,
    "data-unknown": b.unknown ? "true" : null,
  });
  g.appendChild(rect);
  if (b.type === "dropout" && !b.unknown) {
    // Hatching: dropout is "holes" in the signal.
    const lines: string[] = [];
    for (let yy = b.y + 3; yy < b.y + b.height + b.width; yy += 4) {
      const y0 = Math.min(yy, b.y + b.height);
      const x0 = b.x + (yy - y0);
      const y1 = Math.max(b.y, yy - b.width);
      const x1 = b.x + (yy - y1);
      lines.push(`M${x0},${y0}L${Math.min(x1, b.x + b.width)},${y1}`);
    }
    g.appendChild(s("path", { d: lines.join(""), stroke: "#fff", "stroke-width": 1, fill: "none" }));
  }
  if (b.type === "add" || b.type === "concat") drawMergeMark(g, b);
  if (b.paramBar.height > 0) {
    g.appendChild(s("rect", { x: b.paramBar.x, y: b.paramBar.y, width: b.paramBar.width, height: b.paramBar.height, fill: "#424242" }));
  }
  if (mark) {
    const color = mark === "changed" ? "#f57c00" : mark === "inserted" ? "#2e7d32" : "#c62828";
    g.appendChild(
      s("rect", {
        x: b.x - 1.5,
        y: b.y - 1.5,
        width: b.width + 3,
        height: b.height + 3,
        fill: "none",
        stroke: color,
        "stroke-width": 1.5,
        rx: 2,
        "stroke-dasharray": mark === "inserted" ? "2,1.5" : null,
      }),
    );
  }
  if (withTitle) {
    const what =
      b.type === "activation"
        ? `activation ${b.fn ?? ""}`
        : b.type === "dropout"
          ? `dropout ${b.rate ?? ""}`
          : b.type in MERGE_SYMBOLS
            ? `${b.type} ${MERGE_SYMBOLS[b.type]}${inputs ? " of " + inputs.map(inputLabel).join(", ") : ""}`
            : TYPE_LABELS[b.type] ?? b.type;
    rect.appendChild(
      s("title", {}, `${b.type === "classifier" ? "classifier" : "layer " + b.index}: ${what}\n${b.unknown ? "output shape unknown (invalid)" : `out ${b.size.toLocaleString()} values · ${formatParams(b.params)} params (${(b.paramShare * 100).toFixed(0)}%)`}`),
    );
  }
}

/**
 * The merge mark, centred on the block: a disc with a plus (add, ⊕) or a square with two
 * bars (concat, ‖), as wide as the block, so it shows even where the tensor is small.
 */
function drawMergeMark(g: SVGGElement, b: GlyphBlock): void {
  const r = Math.max(2, b.width / 2);
  const cx = b.x + b.width / 2,
    cy = b.y + b.height / 2;
  const fill = b.unknown ? "#fff" : b.fill;
  const ink = b.unknown ? b.fill : "#fff";
  const k = r * 0.55;
  if (b.type === "add") {
    g.appendChild(s("circle", { cx, cy, r, fill, stroke: b.unknown ? b.fill : "#fff", "stroke-width": 0.75, "data-merge": "add" }));
    g.appendChild(s("path", { d: `M${cx - k},${cy}L${cx + k},${cy}M${cx},${cy - k}L${cx},${cy + k}`, stroke: ink, "stroke-width": Math.max(1, r / 3), fill: "none" }));
  } else {
    g.appendChild(s("rect", { x: cx - r, y: cy - r, width: 2 * r, height: 2 * r, rx: 1, fill, stroke: b.unknown ? b.fill : "#fff", "stroke-width": 0.75, "data-merge": "concat" }));
    const dx = r * 0.35;
    g.appendChild(s("path", { d: `M${cx - dx},${cy - k}L${cx - dx},${cy + k}M${cx + dx},${cy - k}L${cx + dx},${cy + k}`, stroke: ink, "stroke-width": Math.max(1, r / 4), fill: "none" }));
  }
}

/** Append the arcs (connections other than "the previous layer"), breaks and the input mark of a layout. */
export function drawConnections(g: SVGGElement, arcs: GlyphArc[], breaks: GlyphLayout["breaks"], top: number, blockArea: number, input: GlyphLayout["input"]): void {
  for (const br of breaks) {
    g.appendChild(s("line", { x1: br.x, x2: br.x, y1: top, y2: top + blockArea, stroke: "#9e9e9e", "stroke-width": 0.75, "stroke-dasharray": "1.5,1.5", "data-break": br.index }));
  }
  if (input) {
    const m = s("circle", { cx: input.x, cy: input.y, r: 1.5, fill: "#fff", stroke: ARC_COLOR, "stroke-width": 0.75, "data-testid": "glyph-input" });
    m.appendChild(s("title", {}, "network input"));
    g.appendChild(m);
  }
  for (const a of arcs) {
    const p = s("path", { d: a.d, fill: "none", stroke: ARC_COLOR, "stroke-width": 1, "stroke-linecap": "round", "data-testid": "glyph-arc", "data-from": a.from, "data-to": a.to });
    p.appendChild(s("title", {}, `${inputLabel(a.from)} → #${a.to}`));
    g.appendChild(p);
    // A small arrowhead where the arc enters the consuming block.
    g.appendChild(s("path", { d: `M${a.x2 - 1.5},${a.y2 - 2.5}L${a.x2},${a.y2}L${a.x2 + 1.5},${a.y2 - 2.5}`, fill: "none", stroke: ARC_COLOR, "stroke-width": 0.75 }));
  }
}

/** A complete glyph as an SVG element. */
export function glyphSvg(glyph: GlyphLayer[], options: GlyphOptions = {}, marks?: Map<number, BlockMark>): SVGSVGElement {
  const layout = layoutGlyph(glyph, options);
  const svg = s("svg", {
    class: "rm-glyph",
    width: Math.max(1, layout.width + 2),
    height: layout.height + 2,
    viewBox: `-1 -1 ${Math.max(1, layout.width + 2)} ${layout.height + 2}`,
    "data-testid": "glyph",
    "data-arcs": layout.arcs.length ? layout.arcs.length : null,
    role: "img",
    "aria-label": `architecture: ${glyph.map((g) => g.type).join(", ")}${layout.arcs.length ? `; ${layout.arcs.length} skip connection${layout.arcs.length === 1 ? "" : "s"}` : ""}`,
  });
  const g = s("g");
  svg.appendChild(g);
  const inputsOf = new Map(glyph.map((x) => [x.index, x.inputs]));
  for (const b of layout.blocks) drawBlock(g, b, marks?.get(b.index) ?? null, true, inputsOf.get(b.index));
  if (layout.arcs.length || layout.breaks.length) drawConnections(g, layout.arcs, layout.breaks, layout.top, layout.blockArea, layout.input);
  return svg;
}

/** The fixed legend of layer colours. */
export function glyphLegend(): HTMLElement {
  const el = h("div", { class: "rm-legend-glyph", "data-testid": "glyph-legend" });
  for (const t of [...LEGEND_TYPES, "classifier"]) {
    if (t === "activation") continue;
    el.appendChild(h("span", {}, h("i", { class: "rm-swatch sq", style: `background:${TYPE_COLORS[t]}` }), TYPE_LABELS[t] + (MERGE_SYMBOLS[t] ? ` ${MERGE_SYMBOLS[t]}` : "")));
  }
  const act = h("span", {});
  for (const c of Object.values(ACTIVATION_COLORS)) act.appendChild(h("i", { class: "rm-swatch sq", style: `background:${c};width:5px` }));
  act.appendChild(document.createTextNode(" relu·lrelu·elu·tanh·sigm"));
  el.appendChild(act);
  el.appendChild(h("span", {}, h("b", { style: "font-weight:500;color:#616161" }, "⌒"), " skip / branch (arc from the layer read; ◦ = network input)"));
  el.appendChild(h("span", {}, "height = output size, dark bar = share of params"));
  return el;
}

export function shapeText(shape: number[] | null | undefined): string {
  return formatShape(shape);
}
