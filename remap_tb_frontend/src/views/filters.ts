// The filter panel (opened from the toolbar; floats over the map).

import type { Origin, State } from "../types";
import { emptyFilters, Filters } from "../lib/filters";
import { LEGEND_TYPES, TYPE_LABELS } from "../lib/layers";
import { h } from "../lib/dom";

const STATES: State[] = ["done", "running", "queued", "untrained", "failed", "diverged", "cancelled"];
const ORIGINS: Origin[] = ["initial", "ablation", "variation", "handcrafted", "external"];

export class FiltersPanel {
  private readonly root: HTMLElement;
  private readonly inputs: Record<"pmin" | "pmax" | "amin" | "amax", HTMLInputElement>;
  private readonly stateBoxes = new Map<State, HTMLInputElement>();
  private readonly originBoxes = new Map<Origin, HTMLInputElement>();
  private readonly typeBoxes = new Map<string, HTMLInputElement>();
  private readonly countEl: HTMLElement;

  constructor(container: HTMLElement, private readonly onChange: (f: Filters) => void, onClose: () => void) {
    this.root = h("div", { class: "rm-filters", "data-testid": "filters-panel" });
    container.appendChild(this.root);
    const num = (ph: string, tid: string) => h("input", { type: "number", placeholder: ph, "data-testid": tid, min: 0 });
    this.inputs = {
      pmin: num("min", "filter-params-min"),
      pmax: num("max", "filter-params-max"),
      amin: num("min %", "filter-acc-min"),
      amax: num("max %", "filter-acc-max"),
    };
    const checks = <T extends string>(values: readonly T[], map: Map<T, HTMLInputElement>, label: (v: T) => string, name: string) => {
      const el = h("div", { class: "rm-checks" });
      for (const v of values) {
        const box = h("input", { type: "checkbox", "data-filter": name, value: v });
        map.set(v, box);
        el.appendChild(h("label", {}, box, label(v)));
      }
      return el;
    };
    const form = h(
      "div",
      { class: "rm-form" },
      h("label", {}, "Parameters"),
      h("div", {}, this.inputs.pmin, " – ", this.inputs.pmax),
      h("label", {}, "Val accuracy"),
      h("div", {}, this.inputs.amin, " – ", this.inputs.amax),
      h("label", {}, "Status"),
      checks(STATES, this.stateBoxes, (v) => v, "state"),
      h("label", {}, "Origin"),
      checks(ORIGINS, this.originBoxes, (v) => v, "origin"),
      h("label", {}, "Has layers"),
      checks(LEGEND_TYPES, this.typeBoxes, (v) => TYPE_LABELS[v], "type"),
    );
    this.root.appendChild(form);
    this.countEl = h("span", { class: "rm-muted rm-small" });
    const reset = h("button", { class: "rm-btn small" }, "Clear filters");
    reset.addEventListener("click", () => {
      this.set(emptyFilters());
      this.emit();
    });
    const close = h("button", { class: "rm-btn small" }, "Close");
    close.addEventListener("click", onClose);
    this.root.appendChild(h("div", { style: "display:flex;gap:6px;align-items:center" }, reset, close, this.countEl));
    this.root.appendChild(h("div", { class: "rm-help" }, "Status/origin: none ticked = any. Filtered-out models stay as faint points and cannot be picked."));
    this.root.addEventListener("input", () => this.emit());
    this.root.addEventListener("change", () => this.emit());
  }

  private read(): Filters {
    const n = (el: HTMLInputElement, scale = 1): number | null => (el.value === "" || !Number.isFinite(Number(el.value)) ? null : Number(el.value) * scale);
    const picked = <T>(m: Map<T, HTMLInputElement>): T[] | null => {
      const v = [...m].filter(([, b]) => b.checked).map(([k]) => k);
      return v.length ? v : null;
    };
    return {
      paramsMin: n(this.inputs.pmin),
      paramsMax: n(this.inputs.pmax),
      accMin: n(this.inputs.amin, 0.01),
      accMax: n(this.inputs.amax, 0.01),
      states: picked(this.stateBoxes),
      origins: picked(this.originBoxes),
      layerTypes: picked(this.typeBoxes) ?? [],
    };
  }

  private emit(): void {
    this.onChange(this.read());
  }

  set(f: Filters): void {
    this.inputs.pmin.value = f.paramsMin === null ? "" : String(f.paramsMin);
    this.inputs.pmax.value = f.paramsMax === null ? "" : String(f.paramsMax);
    this.inputs.amin.value = f.accMin === null ? "" : String(+(f.accMin * 100).toFixed(2));
    this.inputs.amax.value = f.accMax === null ? "" : String(+(f.accMax * 100).toFixed(2));
    for (const [k, b] of this.stateBoxes) b.checked = !!f.states?.includes(k);
    for (const [k, b] of this.originBoxes) b.checked = !!f.origins?.includes(k);
    for (const [k, b] of this.typeBoxes) b.checked = f.layerTypes.includes(k);
  }

  update(d: { open: boolean; shown: number; total: number }): void {
    this.root.classList.toggle("open", d.open);
    this.countEl.textContent = `${d.shown} of ${d.total} models shown`;
  }

  dispose(): void {
    this.root.remove();
  }
}
