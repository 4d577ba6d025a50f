// The map legend: what darkness, hue, radius and rings mean right now.

import type { ProjectionKind } from "../types";
import { ACCENT, ColorBy, ORIGIN_COLORS, UNTRAINED_COLOR, accuracyColor, classColor } from "../lib/color";
import { h, s, clear } from "../lib/dom";
import { CROSS_COLOR } from "../lib/marks";

export interface LegendData {
  colorBy: ColorBy;
  hoverClass: number | null;
  classNames: string[];
  kind: ProjectionKind;
  showEdges: boolean;
  /** How many models are drawn as stopped runs (hollow: cancelled; crossed: failed or diverged). */
  stopped?: { cancelled: number; failed: number };
  /** How many models were logged without training (remap_tb.summary): grey, structural maps only. */
  untrained?: number;
  /** Stopped runs take part in the Pareto front (the legend's checkbox). */
  includeStopped?: boolean;
}

/** A small mark like the map's: a hollow ring, with a cross for "crossed". */
function markIcon(crossed: boolean): SVGSVGElement {
  return s(
    "svg",
    { width: 12, height: 12, viewBox: "0 0 12 12", "aria-hidden": "true" },
    s("circle", { cx: 6, cy: 6, r: 4.6, fill: "#fff", stroke: "#616161", "stroke-width": 1.6 }),
    crossed && s("path", { d: "M3.2 3.2L8.8 8.8M3.2 8.8L8.8 3.2", stroke: CROSS_COLOR, "stroke-width": 1.5 }),
  );
}

export class MapLegend {
  private readonly root: HTMLElement;

  constructor(
    container: HTMLElement,
    private readonly onIncludeStopped?: (on: boolean) => void,
  ) {
    this.root = h("div", { class: "rm-map-legend", "data-testid": "map-legend" });
    container.appendChild(this.root);
  }

  update(d: LegendData): void {
    clear(this.root);
    // On the accuracy-vs-size map the best models sit at the top right: keep the legend
    // out of their way (bottom right, above the axis, where large inaccurate models would be).
    this.root.classList.toggle("bottom", d.kind === "size");
    const cls = d.hoverClass ?? (d.colorBy.kind === "class" ? d.colorBy.index : null);
    if (cls !== null) {
      this.root.appendChild(h("div", {}, h("b", {}, `Accuracy on “${d.classNames[cls] ?? cls}”`)));
      this.root.appendChild(h("div", { class: "rm-ramp", style: `background:linear-gradient(90deg,${classColor(0)},${classColor(1)})` }));
      this.root.appendChild(h("div", { class: "row rm-muted" }, "low", h("span", { style: "flex:1" }), "high"));
    } else if (d.colorBy.kind === "origin") {
      for (const [o, c] of Object.entries(ORIGIN_COLORS)) this.root.appendChild(h("div", { class: "row" }, h("i", { class: "rm-swatch", style: `background:${c}` }), o));
      this.root.appendChild(h("div", { class: "rm-muted" }, "darker = more accurate"));
    } else {
      this.root.appendChild(h("div", {}, h("b", {}, "Validation accuracy")));
      this.root.appendChild(h("div", { class: "rm-ramp", style: `background:linear-gradient(90deg,${accuracyColor(0)},${accuracyColor(1)})` }));
      this.root.appendChild(h("div", { class: "row rm-muted" }, "low", h("span", { style: "flex:1" }), "high"));
    }
    this.root.appendChild(h("div", { class: "row rm-muted" }, "size = parameters"));
    const ring = (color: string, label: string) =>
      h("div", { class: "row" }, h("i", { class: "rm-swatch", style: `border:2px solid ${color};width:7px;height:7px;background:#fff` }), label);
    this.root.appendChild(ring(ACCENT, "new / inspected"));
    this.root.appendChild(ring("#1565c0", "selected"));
    const stopped = d.stopped ?? { cancelled: 0, failed: 0 };
    if (stopped.cancelled) this.root.appendChild(h("div", { class: "row", "data-testid": "legend-cancelled" }, markIcon(false), `cancelled (${stopped.cancelled})`));
    if (stopped.failed) this.root.appendChild(h("div", { class: "row", "data-testid": "legend-failed" }, markIcon(true), `failed or diverged (${stopped.failed})`));
    if (d.untrained && d.colorBy.kind !== "origin" && cls === null)
      this.root.appendChild(h("div", { class: "row", "data-testid": "legend-untrained" }, h("i", { class: "rm-swatch", style: `background:${UNTRAINED_COLOR}` }), `untrained (${d.untrained})`));
    if (d.kind === "size") {
      const any = stopped.cancelled + stopped.failed > 0;
      const label = any && !d.includeStopped ? "Pareto front (without stopped runs)" : "Pareto front";
      this.root.appendChild(h("div", { class: "row rm-muted" }, h("i", { style: `display:inline-block;width:14px;border-top:2px dashed ${ACCENT}` }), label));
      if (any && this.onIncludeStopped) {
        const box = h("input", { type: "checkbox", "data-testid": "pareto-include-stopped" }) as HTMLInputElement;
        box.checked = !!d.includeStopped;
        box.addEventListener("change", () => this.onIncludeStopped?.(box.checked));
        this.root.appendChild(h("label", { class: "row rm-muted", style: "pointer-events:auto;cursor:pointer" }, box, "include stopped runs in the front"));
      }
    }
    if (d.kind === "size") this.root.appendChild(h("div", { class: "row rm-muted" }, h("i", { style: "display:inline-block;width:14px;border-top:2px solid #c62828" }), "budget (drag)"));
  }

  dispose(): void {
    this.root.remove();
  }
}
