// Per-class accuracy bars. One model: a horizontal bar per class. Several models:
// grouped bars (one thin bar per model within each class row), or the difference
// of each model to a reference model (diverging bars around zero).

import { scaleLinear } from "d3";
import { h, s, clear } from "../lib/dom";
import { formatDelta, formatPct } from "../lib/format";

export interface BarSeries {
  id: string;
  label: string;
  color: string;
  values: (number | null)[] | null; // per class
}

export interface BarsData {
  classNames: string[];
  series: BarSeries[];
  mode: "absolute" | "difference";
  reference?: string; // series id for "difference"
  highlightClass?: number | null;
  /** What to say when no series has values (default: a generic "not yet"). */
  emptyText?: string;
}

export interface BarsCallbacks {
  onHoverClass?(index: number | null): void;
}

export class ClassBars {
  private readonly root: HTMLElement;

  constructor(
    container: HTMLElement,
    private readonly cb: BarsCallbacks = {},
    testid = "class-bars",
  ) {
    this.root = h("div", { class: "rm-bars", "data-testid": testid });
    container.appendChild(this.root);
  }

  update(d: BarsData): void {
    clear(this.root);
    const withValues = d.series.filter((x) => x.values);
    if (!withValues.length) {
      this.root.appendChild(h("div", { class: "rm-muted rm-small" }, d.emptyText ?? "No per-class accuracy yet: it is computed when training finishes."));
      return;
    }
    const ref = d.mode === "difference" ? withValues.find((x) => x.id === d.reference) ?? withValues[0] : null;
    const shown = ref ? withValues.filter((x) => x !== ref) : withValues;
    const k = Math.max(1, shown.length);
    const barH = k === 1 ? 12 : Math.max(3, Math.min(8, Math.floor(24 / k)));
    const rowH = barH * k + 6;
    const labelW = 90,
      valueW = k === 1 ? 46 : 14, // room for the "100%" tick label
      W = 400;
    const H = d.classNames.length * rowH + 18;
    const svg = s("svg", { width: "100%", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "xMinYMin meet", style: `max-width:${W}px` });
    let x: (v: number) => number;
    let zero = labelW;
    if (ref) {
      let maxAbs = 0.05;
      for (const ser of shown)
        ser.values!.forEach((v, c) => {
          const r = ref.values![c];
          if (v !== null && r !== null) maxAbs = Math.max(maxAbs, Math.abs(v - r));
        });
      const sc = scaleLinear().domain([-maxAbs, maxAbs]).range([labelW, W - 8]);
      x = sc;
      zero = sc(0);
      svg.appendChild(s("line", { x1: zero, x2: zero, y1: 0, y2: H - 14, stroke: "#9e9e9e" }));
      svg.appendChild(s("text", { x: labelW, y: H - 3, "font-size": 10, fill: "#9e9e9e" }, formatDelta(-maxAbs)));
      svg.appendChild(s("text", { x: W - 8, y: H - 3, "font-size": 10, fill: "#9e9e9e", "text-anchor": "end" }, formatDelta(maxAbs)));
    } else {
      const sc = scaleLinear().domain([0, 1]).range([labelW, W - 8 - valueW]);
      x = sc;
      for (const t of [0, 0.5, 1]) {
        svg.appendChild(s("line", { x1: sc(t), x2: sc(t), y1: 0, y2: H - 14, stroke: "#eeeeee" }));
        svg.appendChild(s("text", { x: sc(t), y: H - 3, "font-size": 10, fill: "#9e9e9e", "text-anchor": "middle" }, `${t * 100}%`));
      }
    }
    d.classNames.forEach((name, c) => {
      const y0 = c * rowH + 3;
      const g = s("g", { "data-class": c, class: "rm-bar-row", style: "cursor:default" });
      if (d.highlightClass === c) g.appendChild(s("rect", { x: 0, y: y0 - 3, width: W, height: rowH, fill: "#fff3e0" }));
      g.appendChild(s("rect", { x: 0, y: y0 - 3, width: W, height: rowH, fill: "transparent" }));
      g.appendChild(
        s("text", { x: labelW - 6, y: y0 + (barH * k) / 2 + 4, "text-anchor": "end", "font-size": 11, fill: "#424242" }, name.length > 14 ? name.slice(0, 13) + "…" : name),
      );
      shown.forEach((ser, j) => {
        const v = ser.values![c];
        if (v === null || v === undefined) return;
        const y = y0 + j * barH;
        let x0: number, x1: number, tip: string;
        if (ref) {
          const r = ref.values![c];
          if (r === null) return;
          const dv = v - r;
          x0 = Math.min(zero, x(dv));
          x1 = Math.max(zero, x(dv));
          tip = `${ser.label} · ${name}: ${formatPct(v)} (${formatDelta(dv)} vs ${ref.label})`;
        } else {
          x0 = labelW;
          x1 = x(v);
          tip = `${ser.label} · ${name}: ${formatPct(v)}`;
        }
        const rect = s("rect", { x: x0, y, width: Math.max(0.5, x1 - x0), height: barH - 1, fill: ser.color, "data-series": ser.id });
        rect.appendChild(s("title", {}, tip));
        g.appendChild(rect);
        if (k === 1 && !ref) g.appendChild(s("text", { x: W - 4, y: y + barH - 2, "text-anchor": "end", "font-size": 10, fill: "#616161" }, formatPct(v)));
      });
      if (this.cb.onHoverClass) {
        g.addEventListener("mouseenter", () => this.cb.onHoverClass!(c));
        g.addEventListener("mouseleave", () => this.cb.onHoverClass!(null));
      }
      svg.appendChild(g);
    });
    this.root.appendChild(svg);
    if (d.series.length > 1) {
      const legend = h("div", { class: "rm-legend-glyph" });
      for (const ser of d.series)
        legend.appendChild(h("span", {}, h("i", { class: "rm-swatch sq", style: `background:${ser.color}` }), ser.label + (ref && ser === ref ? " (reference)" : "")));
      this.root.appendChild(legend);
    }
  }

  dispose(): void {
    this.root.remove();
  }
}
