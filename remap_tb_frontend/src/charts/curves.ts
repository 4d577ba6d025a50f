// Training curves of one model: accuracy (train/val) and loss (train/val) per epoch.

import { extent, line, scaleLinear } from "d3";
import type { CurvePoint } from "../types";
import { h, s, clear } from "../lib/dom";

const SERIES = [
  { key: "train", color: "#90a4ae", dash: "4,3" },
  { key: "val", color: "#f57c00", dash: null },
] as const;

export class CurvesChart {
  private readonly root: HTMLElement;

  constructor(container: HTMLElement) {
    this.root = h("div", { class: "rm-curves", "data-testid": "curves" });
    container.appendChild(this.root);
  }

  update(curves: CurvePoint[]): void {
    clear(this.root);
    if (!curves.length) {
      this.root.appendChild(h("div", { class: "rm-muted rm-small" }, "No epochs recorded yet."));
      return;
    }
    const wrap = h("div", { style: "display:flex;gap:8px;flex-wrap:wrap" });
    wrap.appendChild(this.panel(curves, "accuracy", (p, k) => (k === "train" ? p.train_accuracy : p.val_accuracy), true));
    wrap.appendChild(this.panel(curves, "loss", (p, k) => (k === "train" ? p.train_loss : p.val_loss), false));
    this.root.appendChild(wrap);
    this.root.appendChild(
      h(
        "div",
        { class: "rm-legend-glyph" },
        h("span", {}, h("i", { class: "rm-swatch sq", style: "background:#90a4ae;height:2px" }), "train"),
        h("span", {}, h("i", { class: "rm-swatch sq", style: "background:#f57c00;height:2px" }), "validation"),
      ),
    );
  }

  private panel(
    curves: CurvePoint[],
    title: string,
    get: (p: CurvePoint, k: "train" | "val") => number | null,
    pct: boolean,
  ): SVGSVGElement {
    const W = 205,
      H = 120,
      m = { l: 36, r: 8, t: 16, b: 20 };
    const svg = s("svg", { width: W, height: H, class: "rm-curve-panel" });
    const xs = extent(curves, (p) => p.step) as [number, number];
    const vals: number[] = [];
    for (const p of curves) for (const k of ["train", "val"] as const) {
      const v = get(p, k);
      if (v !== null && Number.isFinite(v)) vals.push(v);
    }
    const ys = (extent(vals) as [number, number]) ?? [0, 1];
    const x = scaleLinear().domain(xs[0] === xs[1] ? [xs[0] - 1, xs[1] + 1] : xs).range([m.l, W - m.r]);
    const y = scaleLinear()
      .domain(pct ? [Math.max(0, (ys[0] ?? 0) - 0.02), Math.min(1, (ys[1] ?? 1) + 0.02)] : [0, (ys[1] ?? 1) * 1.05 || 1])
      .nice()
      .range([H - m.b, m.t]);
    svg.appendChild(s("text", { x: m.l, y: 11, "font-size": 11, fill: "#424242" }, title));
    for (const t of y.ticks(4)) {
      svg.appendChild(s("line", { x1: m.l, x2: W - m.r, y1: y(t), y2: y(t), stroke: "#eeeeee" }));
      svg.appendChild(
        s("text", { x: m.l - 4, y: y(t) + 3, "text-anchor": "end", "font-size": 10, fill: "#9e9e9e" }, pct ? `${Math.round(t * 100)}%` : String(+t.toFixed(2))),
      );
    }
    for (const t of x.ticks(Math.min(5, curves.length))) {
      if (!Number.isInteger(t)) continue;
      svg.appendChild(s("text", { x: x(t), y: H - 6, "text-anchor": "middle", "font-size": 10, fill: "#9e9e9e" }, String(t)));
    }
    for (const ser of SERIES) {
      const pts = curves.filter((p) => {
        const v = get(p, ser.key);
        return v !== null && Number.isFinite(v);
      });
      if (!pts.length) continue;
      const path = line<CurvePoint>()
        .x((p) => x(p.step))
        .y((p) => y(get(p, ser.key) as number))(pts);
      svg.appendChild(s("path", { d: path ?? "", fill: "none", stroke: ser.color, "stroke-width": 1.8, "stroke-dasharray": ser.dash }));
      if (pts.length === 1) {
        svg.appendChild(s("circle", { cx: x(pts[0].step), cy: y(get(pts[0], ser.key) as number), r: 2.5, fill: ser.color }));
      }
    }
    return svg;
  }

  dispose(): void {
    this.root.remove();
  }
}
