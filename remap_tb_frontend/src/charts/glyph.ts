// Renders an architecture glyph (see lib/glyph.ts for the layout) as a small SVG.
// Used in tooltips, tables, the inspector, the comparison, generate and editor.

import type { GlyphLayer } from "../types";
import { formatParams, formatShape } from "../lib/format";
import { GlyphBlock, GlyphOptions, layoutGlyph } from "../lib/glyph";
import { LEGEND_TYPES, TYPE_COLORS, TYPE_LABELS, ACTIVATION_COLORS } from "../lib/layers";
import { h, s } from "../lib/dom";

export type BlockMark = "changed" | "inserted" | "deleted" | null;

/** Append the SVG shapes of one block to `g`. */
export function drawBlock(g: SVGGElement, b: GlyphBlock, mark: BlockMark = null, withTitle = true): void {
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
          : TYPE_LABELS[b.type] ?? b.type;
    rect.appendChild(
      s("title", {}, `${b.type === "classifier" ? "classifier" : "layer " + b.index}: ${what}\n${b.unknown ? "output shape unknown (invalid)" : `out ${b.size.toLocaleString()} values · ${formatParams(b.params)} params (${(b.paramShare * 100).toFixed(0)}%)`}`),
    );
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
    role: "img",
    "aria-label": `architecture: ${glyph.map((g) => g.type).join(", ")}`,
  });
  const g = s("g");
  svg.appendChild(g);
  for (const b of layout.blocks) drawBlock(g, b, marks?.get(b.index) ?? null);
  return svg;
}

/** The fixed legend of layer colours. */
export function glyphLegend(): HTMLElement {
  const el = h("div", { class: "rm-legend-glyph", "data-testid": "glyph-legend" });
  for (const t of [...LEGEND_TYPES, "classifier"]) {
    if (t === "activation") continue;
    el.appendChild(h("span", {}, h("i", { class: "rm-swatch sq", style: `background:${TYPE_COLORS[t]}` }), TYPE_LABELS[t]));
  }
  const act = h("span", {});
  for (const c of Object.values(ACTIVATION_COLORS)) act.appendChild(h("i", { class: "rm-swatch sq", style: `background:${c};width:5px` }));
  act.appendChild(document.createTextNode(" relu·lrelu·elu·tanh·sigm"));
  el.appendChild(act);
  el.appendChild(h("span", {}, "height = output size, dark bar = share of params"));
  return el;
}

export function shapeText(shape: number[] | null | undefined): string {
  return formatShape(shape);
}
