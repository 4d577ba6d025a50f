// The class view: each class's accuracy over the selected models (or all models
// when nothing is selected). Hovering a class recolours the map by that class;
// clicking keeps the map coloured by it.

import type { ModelSummary } from "../types";
import type { ColorBy } from "../lib/color";
import { h, clear } from "../lib/dom";
import { formatPct } from "../lib/format";

export interface ClassesData {
  classNames: string[];
  models: ModelSummary[];
  scope: string; // "3 selected models" / "all 30 models"
  colorBy: ColorBy;
  hoverClass: number | null;
}

export interface ClassesCallbacks {
  onHoverClass(i: number | null): void;
  onColorByClass(i: number | null): void;
}

export function meanPerClass(models: ModelSummary[], nClasses: number): { mean: (number | null)[]; min: (number | null)[]; max: (number | null)[] } {
  const sum = new Array<number>(nClasses).fill(0);
  const cnt = new Array<number>(nClasses).fill(0);
  const min = new Array<number | null>(nClasses).fill(null);
  const max = new Array<number | null>(nClasses).fill(null);
  for (const m of models) {
    if (!m.per_class_accuracy) continue;
    for (let c = 0; c < nClasses; c++) {
      const v = m.per_class_accuracy[c];
      if (v === null || v === undefined || !Number.isFinite(v)) continue;
      sum[c] += v;
      cnt[c]++;
      min[c] = min[c] === null ? v : Math.min(min[c]!, v);
      max[c] = max[c] === null ? v : Math.max(max[c]!, v);
    }
  }
  return { mean: sum.map((s, c) => (cnt[c] ? s / cnt[c] : null)), min, max };
}

/** Models with per-class accuracy (the ones the class view averages). */
export function withPerClass(models: ModelSummary[]): ModelSummary[] {
  return models.filter((m) => Array.isArray(m.per_class_accuracy) && m.per_class_accuracy.some((v) => v !== null && Number.isFinite(v)));
}

/**
 * What the class view is over (issue 11): "over 24 of all 30 models (6 without per-class
 * accuracy: not finished left out)"; only models with per-class accuracy are averaged.
 */
export function classesScopeText(models: ModelSummary[], scope: string): string {
  const n = withPerClass(models).length;
  const missing = models.length - n;
  if (!missing) return `over ${scope}`;
  const unfinished = models.filter((m) => !withPerClass([m]).length).every((m) => m.status.state !== "done");
  return `over ${n} of ${scope} (${missing} without per-class accuracy${unfinished ? ": not finished" : ""} left out)`;
}

export class ClassesView {
  private readonly root: HTMLElement;
  private key = "";

  constructor(container: HTMLElement, private readonly cb: ClassesCallbacks) {
    this.root = h("div", { class: "rm-classes", "data-testid": "classes" });
    container.appendChild(this.root);
    this.root.addEventListener("mouseleave", () => this.cb.onHoverClass(null));
  }

  update(d: ClassesData): void {
    const active = d.colorBy.kind === "class" ? d.colorBy.index : null;
    const key = `${d.scope}|${d.models.length}|${d.classNames.length}|${active}|${d.hoverClass}|${d.models.map((m) => m.wall_time).join(",").length}`;
    if (key === this.key) return;
    this.key = key;
    clear(this.root);
    if (!d.classNames.length) {
      this.root.appendChild(h("div", { class: "rm-empty" }, "No classes: no experiment loaded yet."));
      return;
    }
    const stats = meanPerClass(d.models, d.classNames.length);
    const counted = withPerClass(d.models).length;
    this.root.appendChild(
      h("div", { class: "rm-help" }, "Mean validation accuracy per class ", h("b", { "data-testid": "classes-scope", "data-models": counted, "data-total": d.models.length }, classesScopeText(d.models, d.scope)), " (the whisker spans min–max). Hover a class to colour the map by it; click to keep that colouring."),
    );
    if (!counted) {
      this.root.appendChild(h("div", { class: "rm-empty", "data-testid": "classes-none" }, "None of these models has per-class accuracy yet: it is recorded when a run finishes training."));
      return;
    }
    d.classNames.forEach((name, c) => {
      const mean = stats.mean[c],
        lo = stats.min[c],
        hi = stats.max[c];
      const bar = h("div", { class: "bar" }, h("div", { style: `width:${((mean ?? 0) * 100).toFixed(1)}%` }));
      if (lo !== null && hi !== null && hi > lo)
        bar.appendChild(h("i", { style: `position:absolute;top:4px;height:2px;background:#f57c00;left:${(lo * 100).toFixed(1)}%;width:${((hi - lo) * 100).toFixed(1)}%` }));
      const row = h("div", { class: `row ${active === c || d.hoverClass === c ? "on" : ""}`, "data-class": c, "data-testid": "class-row" }, h("span", { title: name }, name), bar, h("span", { class: "rm-small", style: "text-align:right" }, formatPct(mean)));
      row.addEventListener("mouseenter", () => this.cb.onHoverClass(c));
      row.addEventListener("click", () => this.cb.onColorByClass(active === c ? null : c));
      this.root.appendChild(row);
    });
  }

  dispose(): void {
    this.root.remove();
  }
}
