// The map legend: what darkness, hue, radius and rings mean right now.

import type { ProjectionKind } from "../types";
import { ACCENT, ColorBy, ORIGIN_COLORS, accuracyColor, classColor } from "../lib/color";
import { h, clear } from "../lib/dom";

export class MapLegend {
  private readonly root: HTMLElement;

  constructor(container: HTMLElement) {
    this.root = h("div", { class: "rm-map-legend", "data-testid": "map-legend" });
    container.appendChild(this.root);
  }

  update(d: { colorBy: ColorBy; hoverClass: number | null; classNames: string[]; kind: ProjectionKind; showEdges: boolean }): void {
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
    if (d.kind === "size") this.root.appendChild(h("div", { class: "row rm-muted" }, h("i", { style: `display:inline-block;width:14px;border-top:2px dashed ${ACCENT}` }), "Pareto front"));
    if (d.kind === "size") this.root.appendChild(h("div", { class: "row rm-muted" }, h("i", { style: "display:inline-block;width:14px;border-top:2px solid #c62828" }), "budget (drag)"));
  }

  dispose(): void {
    this.root.remove();
  }
}
