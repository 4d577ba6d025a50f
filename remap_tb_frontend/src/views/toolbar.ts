// The toolbar above the map: experiment, projection switch, colour-by, filters,
// provenance edges, lasso mode, parameter budget, reset view, and a status line.

import type { Experiment, ProjectionKind } from "../types";
import type { ColorBy } from "../lib/color";
import { h, clear } from "../lib/dom";
import { BUDGET_HELP, MAX_BUDGET, parseBudget } from "../lib/budget";

export interface ToolbarData {
  experiments: Experiment[];
  experiment: string | null;
  kind: ProjectionKind;
  colorBy: ColorBy;
  classNames: string[];
  filtersActive: boolean;
  filtersOpen: boolean;
  showEdges: boolean;
  lassoMode: boolean;
  budget: number | null;
  status: string;
}

export interface ToolbarCallbacks {
  onExperiment(id: string): void;
  onKind(kind: ProjectionKind): void;
  onColorBy(c: ColorBy): void;
  onToggleFilters(): void;
  onEdges(on: boolean): void;
  onLassoMode(on: boolean): void;
  onBudget(v: number | null): void;
  onResetZoom(): void;
}

const KINDS: { kind: ProjectionKind; label: string; title: string }[] = [
  { kind: "structural", label: "Structure", title: "MDS of OTMANN structural distance: similar architectures sit together" },
  { kind: "structural_normalised", label: "Structure (relative)", title: "MDS of OTMANN distance divided by the models' total mass: spreads out small models" },
  { kind: "posthoc", label: "Predictions", title: "MDS of prediction distance: models that make the same mistakes sit together" },
  { kind: "size", label: "Accuracy vs size", title: "Validation accuracy against parameter count (log scale), with the Pareto front" },
];

export class Toolbar {
  private readonly root: HTMLElement;
  private readonly expSelect: HTMLSelectElement;
  private readonly kindButtons = new Map<ProjectionKind, HTMLButtonElement>();
  private readonly colorSelect: HTMLSelectElement;
  private readonly filtersBtn: HTMLButtonElement;
  private readonly edgesBtn: HTMLButtonElement;
  private readonly lassoBtn: HTMLButtonElement;
  private readonly budgetInput: HTMLInputElement;
  private readonly statusEl: HTMLElement;
  private readonly budgetMsg: HTMLElement;
  private budgetMsgTimer = 0;
  private classKey: string | null = null;
  private data: ToolbarData | null = null;

  constructor(container: HTMLElement, cb: ToolbarCallbacks) {
    this.root = h("div", { class: "rm-toolbar", "data-testid": "toolbar" });
    container.appendChild(this.root);
    this.root.appendChild(h("span", { class: "rm-title" }, "REMAP"));

    this.expSelect = h("select", { "data-testid": "experiment-select", title: "Experiment (models on the same dataset)" });
    this.expSelect.addEventListener("change", () => cb.onExperiment(this.expSelect.value));
    this.root.appendChild(h("div", { class: "rm-group" }, this.expSelect));

    const seg = h("div", { class: "rm-seg", "data-testid": "projection-switch", role: "radiogroup" });
    for (const k of KINDS) {
      const b = h("button", { title: k.title, "data-kind": k.kind, "data-testid": `projection-${k.kind}` }, k.label);
      b.addEventListener("click", () => cb.onKind(k.kind));
      seg.appendChild(b);
      this.kindButtons.set(k.kind, b);
    }
    this.root.appendChild(h("div", { class: "rm-group" }, h("label", { class: "rm-lbl" }, "Map"), seg));

    this.colorSelect = h("select", { "data-testid": "color-by", title: "Colour points by" });
    this.colorSelect.addEventListener("change", () => {
      const v = this.colorSelect.value;
      if (v === "accuracy" || v === "origin") cb.onColorBy({ kind: v });
      else cb.onColorBy({ kind: "class", index: Number(v.slice(6)) });
    });
    this.root.appendChild(h("div", { class: "rm-group" }, h("label", { class: "rm-lbl" }, "Colour"), this.colorSelect));

    this.filtersBtn = h("button", { class: "rm-btn", "data-testid": "filters-toggle", title: "Filter by size, accuracy, status, origin, layer types" }, "Filters");
    this.filtersBtn.addEventListener("click", () => cb.onToggleFilters());
    this.edgesBtn = h("button", { class: "rm-btn", "data-testid": "edges-toggle", title: "Show parent → child provenance edges" }, "Edges");
    this.edgesBtn.addEventListener("click", () => cb.onEdges(!this.data?.showEdges));
    this.lassoBtn = h("button", { class: "rm-btn", "data-testid": "lasso-toggle", title: "Lasso: drag to select a region (or hold Shift while dragging)" }, "Lasso");
    this.lassoBtn.addEventListener("click", () => cb.onLassoMode(!this.data?.lassoMode));
    const reset = h("button", { class: "rm-btn", title: "Reset zoom and pan", "data-testid": "reset-zoom" }, "Fit");
    reset.addEventListener("click", () => cb.onResetZoom());
    this.root.appendChild(h("div", { class: "rm-group" }, this.filtersBtn, this.edgesBtn, this.lassoBtn, reset));

    this.budgetInput = h("input", { type: "number", min: 1, max: MAX_BUDGET, step: 1000, "data-testid": "budget-input", title: "Parameter budget (also draggable on the accuracy-vs-size map); empty = no budget", style: "width:96px" });
    this.budgetMsg = h("span", { class: "rm-small", "data-testid": "budget-message", style: "display:none;max-width:220px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis" });
    this.budgetInput.addEventListener("change", () => {
      const r = this.budgetInput.validity?.badInput ? ({ ok: false, error: BUDGET_HELP } as const) : parseBudget(this.budgetInput.value);
      if (!r.ok) {
        // Keep the budget as it was and say why; the field shows the old value again once it loses focus.
        this.showBudgetMessage(r.error, true);
        return;
      }
      this.showBudgetMessage(r.note, false);
      if (r.value !== null) this.budgetInput.value = String(r.value);
      cb.onBudget(r.value);
    });
    this.budgetInput.addEventListener("blur", () => {
      if (this.data && this.budgetInput.classList.contains("rm-invalid")) this.budgetInput.value = this.data.budget === null ? "" : String(this.data.budget);
    });
    this.root.appendChild(h("div", { class: "rm-group" }, h("label", { class: "rm-lbl" }, "Budget"), this.budgetInput, h("span", { class: "rm-lbl" }, "params"), this.budgetMsg));
    // Shrinks (with an ellipsis; the full text is its title) before the toolbar wraps.
    this.statusEl = h("span", { class: "rm-muted rm-small", style: "margin-left:auto;flex:1 1 120px;min-width:0;text-align:right;white-space:nowrap;overflow:hidden;text-overflow:ellipsis", "data-testid": "map-status" });
    this.root.appendChild(this.statusEl);
  }

  update(d: ToolbarData): void {
    this.data = d;
    const expKey = d.experiments.map((e) => e.id).join(",");
    if (this.expSelect.dataset.key !== expKey) {
      clear(this.expSelect);
      for (const e of d.experiments) this.expSelect.appendChild(h("option", { value: e.id }, `${e.dataset} · ${e.n_models} models`));
      this.expSelect.dataset.key = expKey;
    }
    this.expSelect.value = d.experiment ?? "";
    this.expSelect.parentElement!.style.display = d.experiments.length > 1 ? "" : "none";
    for (const [k, b] of this.kindButtons) b.classList.toggle("on", k === d.kind);
    const ck = d.classNames.join("\u0001");
    if (ck !== this.classKey) {
      this.classKey = ck;
      clear(this.colorSelect);
      this.colorSelect.appendChild(h("option", { value: "accuracy" }, "Accuracy"));
      this.colorSelect.appendChild(h("option", { value: "origin" }, "Origin"));
      d.classNames.forEach((n, i) => this.colorSelect.appendChild(h("option", { value: `class:${i}` }, `Class: ${n}`)));
    }
    this.colorSelect.value = d.colorBy.kind === "class" ? `class:${d.colorBy.index}` : d.colorBy.kind;
    this.filtersBtn.classList.toggle("on", d.filtersActive || d.filtersOpen);
    this.filtersBtn.textContent = d.filtersActive ? "Filters ●" : "Filters";
    this.edgesBtn.classList.toggle("on", d.showEdges);
    this.lassoBtn.classList.toggle("on", d.lassoMode);
    if (document.activeElement !== this.budgetInput) this.budgetInput.value = d.budget === null ? "" : String(d.budget);
    this.statusEl.textContent = d.status;
    this.statusEl.title = d.status;
  }

  private showBudgetMessage(text: string | null, error: boolean): void {
    this.budgetMsg.textContent = text ?? "";
    this.budgetMsg.title = text ?? "";
    this.budgetMsg.style.display = text ? "" : "none";
    this.budgetMsg.className = `rm-small ${error ? "rm-neg" : "rm-muted"}`;
    this.budgetInput.classList.toggle("rm-invalid", error);
    window.clearTimeout(this.budgetMsgTimer);
    if (text) this.budgetMsgTimer = window.setTimeout(() => this.showBudgetMessage(null, false), 10000);
  }

  dispose(): void {
    window.clearTimeout(this.budgetMsgTimer);
    this.root.remove();
  }
}
