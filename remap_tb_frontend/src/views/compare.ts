// Compare 2 to 8 models: glyphs aligned layer by layer with differences marked,
// per-class accuracy (grouped bars or differences to a reference), size and
// accuracy, and pairwise distances (structural OTMANN and prediction Hamming).

import type { CompareResponse, ModelDetail } from "../types";
import { drawBlock, drawConnections } from "../charts/glyph";
import { ClassBars } from "../charts/bars";
import { alignModels, AlignLayer, specLayerSignature } from "../lib/align";
import { GlyphBlock, glyphMaxSize, layoutArcs, layoutGlyph } from "../lib/glyph";
import { h, s, clear } from "../lib/dom";
import { formatDelta, formatParams, formatPct } from "../lib/format";
import { section } from "./inspector";

export const SERIES_COLORS = ["#1565c0", "#f57c00", "#2e7d32", "#8e24aa", "#c62828", "#00838f", "#6d4c41", "#546e7a"];

export interface CompareData {
  ids: string[]; // the selection, in order
  response: CompareResponse | null;
  loading: boolean;
  error: string | null;
  classNames: string[];
  hoverClass: number | null;
}

export interface CompareCallbacks {
  onInspect(id: string): void;
  onRemove(id: string): void;
  onHoverClass(i: number | null): void;
}

export class CompareView {
  private readonly root: HTMLElement;
  private reference: string | null = null;
  private mode: "absolute" | "difference" = "absolute";
  private data: CompareData | null = null;

  constructor(container: HTMLElement, private readonly cb: CompareCallbacks) {
    this.root = h("div", { "data-testid": "compare" });
    container.appendChild(this.root);
  }

  update(d: CompareData): void {
    this.data = d;
    this.render();
  }

  private render(): void {
    const d = this.data!;
    clear(this.root);
    if (d.ids.length < 2) {
      this.root.appendChild(
        h(
          "div",
          { class: "rm-empty", "data-testid": "compare-empty" },
          h("b", {}, "Select 2 to 8 models to compare. "),
          "Shift-click points on the map, Shift-drag a lasso around a region, or tick rows in the drawer.",
          d.ids.length === 1 ? h("div", {}, `1 model selected (${d.ids[0]}).`) : null,
        ),
      );
      return;
    }
    if (d.ids.length > 8) {
      this.root.appendChild(h("div", { class: "rm-banner warn" }, `${d.ids.length} models selected: comparing the 8 most accurate. Narrow the selection to choose others.`));
    }
    if (d.error) {
      this.root.appendChild(h("div", { class: "rm-banner err", "data-testid": "compare-error" }, `Comparison failed: ${d.error}`));
      return;
    }
    if (!d.response) {
      this.root.appendChild(h("div", { class: "rm-muted" }, d.loading ? "Loading comparison…" : ""));
      return;
    }
    const models = d.response.models;
    if (!this.reference || !models.some((m) => m.id === this.reference)) this.reference = models[0].id;
    const refIdx = models.findIndex((m) => m.id === this.reference);
    const color = new Map(models.map((m, i) => [m.id, SERIES_COLORS[i % SERIES_COLORS.length]]));

    // Model list with reference choice.
    const list = section(`Models (${models.length})`);
    const table = h("table", { class: "rm-table" });
    table.appendChild(
      h("thead", {}, h("tr", {}, h("th", { title: "Reference model" }, "Ref"), h("th", {}, "Model"), h("th", { class: "num" }, "Val acc"), h("th", { class: "num" }, "Δ ref"), h("th", { class: "num" }, "Params"), h("th", { class: "num" }, "Depth"), h("th", {}))),
    );
    const tb = h("tbody");
    const ref = models[refIdx];
    for (const m of models) {
      const radio = h("input", { type: "radio", name: "rm-ref", title: "Use as reference" }) as HTMLInputElement;
      radio.checked = m.id === this.reference;
      radio.addEventListener("change", () => {
        this.reference = m.id;
        this.render();
      });
      const rm = h("button", { class: "rm-btn small", title: "Remove from selection" }, "✕");
      rm.addEventListener("click", () => this.cb.onRemove(m.id));
      const link = h("a", { style: "color:#1565c0;cursor:pointer" }, m.id);
      link.addEventListener("click", () => this.cb.onInspect(m.id));
      const dv = m.val_accuracy !== null && ref.val_accuracy !== null && m !== ref ? m.val_accuracy - ref.val_accuracy : null;
      tb.appendChild(
        h(
          "tr",
          { "data-model-id": m.id },
          h("td", {}, radio),
          h("td", {}, h("i", { class: "rm-swatch sq", style: `background:${color.get(m.id)};margin-right:5px` }), link),
          h("td", { class: "num" }, formatPct(m.val_accuracy)),
          h("td", { class: `num ${dv === null ? "" : dv >= 0 ? "rm-pos" : "rm-neg"}`, style: "white-space:nowrap" }, dv === null ? "" : formatDelta(dv)),
          h("td", { class: "num", title: m.params.toLocaleString() }, formatParams(m.params)),
          h("td", { class: "num" }, String(m.depth)),
          h("td", {}, rm),
        ),
      );
    }
    table.appendChild(tb);
    list.appendChild(table);
    this.root.appendChild(list);

    // Aligned glyphs.
    const al = section("Architectures, aligned to the reference");
    al.appendChild(this.alignedGlyphs(models, refIdx));
    al.appendChild(
      h(
        "div",
        { class: "rm-legend-glyph" },
        h("span", {}, h("i", { class: "rm-swatch sq", style: "border:1.5px solid #f57c00;background:#fff" }), "changed"),
        h("span", {}, h("i", { class: "rm-swatch sq", style: "border:1.5px dashed #2e7d32;background:#fff" }), "inserted"),
        h("span", {}, h("b", { style: "color:#c62828" }, "×"), "removed (vs reference)"),
      ),
    );
    this.root.appendChild(al);

    // Per-class accuracy.
    const pc = section("Per-class validation accuracy");
    const seg = h("div", { class: "rm-seg", style: "margin-bottom:6px" });
    for (const [mode, label] of [
      ["absolute", "Grouped bars"],
      ["difference", "Difference to reference"],
    ] as const) {
      const b = h("button", { class: this.mode === mode ? "on" : "" }, label);
      b.addEventListener("click", () => {
        this.mode = mode;
        this.render();
      });
      seg.appendChild(b);
    }
    pc.appendChild(seg);
    new ClassBars(pc, { onHoverClass: (i) => this.cb.onHoverClass(i) }, "compare-class-bars").update({
      classNames: d.classNames,
      series: models.map((m) => ({ id: m.id, label: m.id, color: color.get(m.id)!, values: m.per_class_accuracy })),
      mode: this.mode,
      reference: this.reference,
      highlightClass: d.hoverClass,
    });
    this.root.appendChild(pc);

    // Size and accuracy scatter.
    const sz = section("Size and accuracy");
    sz.appendChild(sizeScatter(models, color));
    this.root.appendChild(sz);

    // Distances.
    const dist = section("Pairwise distances");
    dist.appendChild(
      h(
        "div",
        { class: "rm-help" },
        "Structural: the OTMANN distance (0 = same architecture), as the default structural map lays it out, beside the normalised one (divided by the two models' total mass, as the normalised map). Predictions: fraction of validation samples on which the two disagree.",
      ),
    );
    dist.appendChild(
      h(
        "div",
        { style: "display:flex;gap:10px;flex-wrap:wrap;align-items:flex-start" },
        distanceTable("Structural", models, d.response.structural, color, "structural-raw-distances", "OTMANN distance, unnormalised: what the default (structural) map embeds"),
        distanceTable("Structural (normalised)", models, d.response.structural_normalised, color, "structural-distances", "OTMANN distance divided by the models' total mass: what the normalised structural map embeds"),
      ),
    );
    dist.appendChild(distanceTable("Predictions", models, d.response.prediction, color, "prediction-distances"));
    this.root.appendChild(dist);
  }

  private alignedGlyphs(models: ModelDetail[], refIdx: number): HTMLElement {
    const order = [refIdx, ...models.map((_, i) => i).filter((i) => i !== refIdx)];
    const seqs: AlignLayer[][] = order.map((i) => models[i].spec.layers.map(specLayerSignature));
    const a = alignModels(seqs);
    const COL = 14,
      GAP = 3,
      H = 30,
      LABEL = 0;
    let maxSize = 1;
    for (const m of models) maxSize = Math.max(maxSize, glyphMaxSize(m.glyph));
    const cols = a.columns + 1; // + classifier
    const W = LABEL + cols * (COL + GAP);
    const wrap = h("div", { "data-testid": "compare-glyphs", style: "overflow-x:auto" });
    order.forEach((mi, row) => {
      const m = models[mi];
      const lay = layoutGlyph(m.glyph, { height: H, paramRow: 6, maxSize, blockWidth: COL, thinWidth: 6, gap: GAP });
      const svg = s("svg", { width: W, height: lay.height + 4, style: "display:block", "data-model-id": m.id });
      const g = s("g", { transform: "translate(0,2)" });
      svg.appendChild(g);
      const placed: GlyphBlock[] = [];
      const inputsOf = new Map(m.glyph.map((x) => [x.index, x.inputs]));
      a.rows[row].forEach((cell, c) => {
        const x = LABEL + c * (COL + GAP);
        if (cell.layer === null) {
          if (cell.op === "deleted") {
            const cx = x + COL / 2,
              cy = lay.top + H / 2;
            g.appendChild(s("path", { d: `M${cx - 4},${cy - 4}L${cx + 4},${cy + 4}M${cx + 4},${cy - 4}L${cx - 4},${cy + 4}`, stroke: "#c62828", "stroke-width": 1.5 }));
          } else if (!a.refColumn[c]) {
            // empty insertion column
          } else {
            g.appendChild(s("line", { x1: x, x2: x + COL, y1: lay.top + H / 2, y2: lay.top + H / 2, stroke: "#e0e0e0" }));
          }
          return;
        }
        const b = lay.blocks[cell.layer];
        if (!b) return;
        const shifted = { ...b, x: x + (COL - b.width) / 2, paramBar: { ...b.paramBar, x: x + (COL - b.width) / 2 } };
        placed.push(shifted);
        drawBlock(g, shifted, row === 0 ? null : cell.op === "changed" ? "changed" : cell.op === "inserted" ? "inserted" : null, true, inputsOf.get(b.index));
      });
      const cls = lay.blocks[lay.blocks.length - 1];
      if (cls && cls.type === "classifier") {
        const x = LABEL + a.columns * (COL + GAP);
        drawBlock(g, { ...cls, x, paramBar: { ...cls.paramBar, x } });
      }
      if (lay.arcs.length) {
        // The model's connections, re-laid over its blocks' columns.
        const input = { x: Math.max(1, (placed[0]?.x ?? 4) - 3), y: lay.top + H / 2 };
        const { arcs, breaks } = layoutArcs(m.glyph, placed, lay.top, input);
        drawConnections(g, arcs, breaks, lay.top, H, lay.input ? input : null);
        svg.setAttribute("data-arcs", String(arcs.length));
      }
      wrap.appendChild(h("div", { class: "rm-small", style: `color:${SERIES_COLORS[mi % SERIES_COLORS.length]};margin-top:4px` }, m.id + (row === 0 ? " (reference)" : "")));
      wrap.appendChild(svg);
    });
    return wrap;
  }

  dispose(): void {
    this.root.remove();
  }
}

function sizeScatter(models: ModelDetail[], color: Map<string, string>): SVGSVGElement {
  const W = 400,
    H = 150,
    m = { l: 44, r: 12, t: 10, b: 26 };
  const svg = s("svg", { width: "100%", viewBox: `0 0 ${W} ${H}`, style: `max-width:${W}px`, "data-testid": "compare-size" });
  const lp = models.map((d) => Math.log10(Math.max(1, d.params)));
  const acc = models.map((d) => d.val_accuracy ?? 0);
  let x0 = Math.min(...lp),
    x1 = Math.max(...lp),
    y0 = Math.min(...acc),
    y1 = Math.max(...acc);
  if (x1 - x0 < 0.2) {
    x0 -= 0.1;
    x1 += 0.1;
  }
  if (y1 - y0 < 0.02) {
    y0 -= 0.01;
    y1 += 0.01;
  }
  const inset = 8; // keep the dots inside the axes
  const px = (v: number) => m.l + inset + ((v - x0) / (x1 - x0)) * (W - m.l - m.r - 2 * inset);
  const py = (v: number) => H - m.b - inset - ((v - y0) / (y1 - y0)) * (H - m.t - m.b - 2 * inset);
  svg.appendChild(s("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, stroke: "#bdbdbd" }));
  svg.appendChild(s("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, stroke: "#bdbdbd" }));
  svg.appendChild(s("text", { x: m.l, y: H - 8, "font-size": 10, fill: "#757575" }, formatParams(Math.pow(10, x0))));
  svg.appendChild(s("text", { x: W - m.r, y: H - 8, "font-size": 10, fill: "#757575", "text-anchor": "end" }, formatParams(Math.pow(10, x1))));
  svg.appendChild(s("text", { x: (W + m.l) / 2, y: H - 8, "font-size": 10, fill: "#757575", "text-anchor": "middle" }, "parameters (log)"));
  svg.appendChild(s("text", { x: m.l - 4, y: py(y1) + 3, "font-size": 10, fill: "#757575", "text-anchor": "end" }, formatPct(y1)));
  svg.appendChild(s("text", { x: m.l - 4, y: py(y0) + 3, "font-size": 10, fill: "#757575", "text-anchor": "end" }, formatPct(y0)));
  models.forEach((d, i) => {
    const c = s("circle", { cx: px(lp[i]), cy: py(acc[i]), r: 5, fill: color.get(d.id) ?? "#999", stroke: "#fff" });
    c.appendChild(s("title", {}, `${d.id}: ${formatPct(d.val_accuracy)}, ${formatParams(d.params)} params`));
    svg.appendChild(c);
  });
  return svg;
}

function distanceTable(title: string, models: ModelDetail[], matrix: (number | null)[][], color: Map<string, string>, testid: string, help = ""): HTMLElement {
  let max = 0;
  for (const row of matrix) for (const v of row) if (v !== null && Number.isFinite(v)) max = Math.max(max, v);
  const t = h("table", { class: "rm-table rm-dist", "data-testid": testid, style: "width:auto;margin-bottom:8px" });
  const head = h("tr", {}, h("th", { title: help || null }, title));
  models.forEach((m) => head.appendChild(h("th", { title: m.id }, h("i", { class: "rm-swatch sq", style: `background:${color.get(m.id)}` }))));
  t.appendChild(h("thead", {}, head));
  const tb = h("tbody");
  models.forEach((m, i) => {
    const tr = h("tr", {}, h("td", { style: "text-align:left" }, h("i", { class: "rm-swatch sq", style: `background:${color.get(m.id)};margin-right:4px` }), m.id.length > 18 ? m.id.slice(0, 17) + "…" : m.id));
    (matrix[i] ?? []).forEach((v, j) => {
      const a = v === null || max === 0 ? 0 : v / max;
      tr.appendChild(
        h("td", { style: `background:rgba(245,124,0,${(a * 0.55).toFixed(3)})`, title: `${m.id} ↔ ${models[j]?.id}: ${v === null ? "not comparable" : v}` }, v === null ? "n/a" : i === j ? "·" : v.toFixed(v < 1 ? 3 : 1)),
      );
    });
    tb.appendChild(tr);
  });
  t.appendChild(tb);
  return h("div", { style: "overflow-x:auto" }, t);
}
