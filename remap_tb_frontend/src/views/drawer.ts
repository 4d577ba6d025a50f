// The model drawer: the collected models (selection and pinned) as a sortable
// table. With nothing collected it lists the most accurate models, so there is
// always a starting point for finding a baseline.

import type { ModelSummary } from "../types";
import { glyphSvg } from "../charts/glyph";
import { h, clear } from "../lib/dom";
import { formatDelta, formatParams, formatPct } from "../lib/format";
import { deltaVsParent, SortDir, SortKey, sortModels, topModels } from "../lib/sort";
import { ORIGIN_COLORS } from "../lib/color";

export interface DrawerData {
  models: ModelSummary[];
  byId: Map<string, ModelSummary>;
  selected: Set<string>;
  pinned: Set<string>;
  inspected: string | null;
}

export interface DrawerCallbacks {
  onInspect(id: string): void;
  onToggleSelect(id: string): void;
  onTogglePin(id: string): void;
  onClearSelection(): void;
}

const COLUMNS: { key: SortKey | null; label: string; num?: boolean; title?: string }[] = [
  { key: null, label: "" },
  { key: null, label: "Architecture" },
  { key: "id", label: "Model" },
  { key: "origin", label: "Origin / changes" },
  { key: "val_accuracy", label: "Val acc", num: true },
  { key: "delta", label: "Δ parent", num: true, title: "Validation accuracy change vs the parent model (finished runs only)" },
  { key: "train_accuracy", label: "Train acc", num: true },
  { key: "params", label: "Params", num: true },
  { key: "depth", label: "Depth", num: true },
  { key: "state", label: "Status" },
];

const MAX_ROWS = 300;

export class Drawer {
  private readonly root: HTMLElement;
  private readonly head: HTMLElement;
  private readonly body: HTMLElement;
  private sortKey: SortKey = "val_accuracy";
  private sortDir: SortDir = "desc";
  private data: DrawerData | null = null;
  /** "auto": the collected models when there are any, else the top models. */
  private mode: "auto" | "collected" | "top" | "all" = "auto";

  constructor(container: HTMLElement, private readonly cb: DrawerCallbacks) {
    this.root = h("div", { class: "rm-drawer", "data-testid": "drawer" });
    this.head = h("div", { class: "rm-drawer-head" });
    this.body = h("div", { class: "rm-drawer-body" });
    this.root.append(this.head, this.body);
    container.appendChild(this.root);
  }

  update(d: DrawerData): void {
    this.data = d;
    this.render();
  }

  private render(): void {
    const d = this.data;
    if (!d) return;
    clear(this.head);
    clear(this.body);
    const collected = d.models.filter((m) => d.selected.has(m.id) || d.pinned.has(m.id));
    const mode = this.mode === "auto" ? (collected.length ? "collected" : "top") : this.mode;
    let rows = mode === "collected" ? collected : mode === "top" ? topModels(d.models, 25, d.byId) : d.models;
    rows = sortModels(rows, this.sortKey, this.sortDir, d.byId);
    const seg = h("div", { class: "rm-seg", "data-testid": "drawer-mode" });
    for (const [m, label] of [
      ["collected", `Selected & pinned (${collected.length})`],
      ["top", "Top 25 finished"],
      ["all", `All (${d.models.length})`],
    ] as const) {
      const b = h("button", { class: mode === m ? "on" : "", "data-mode": m }, label);
      b.addEventListener("click", () => {
        this.mode = m;
        this.render();
      });
      seg.appendChild(b);
    }
    this.head.appendChild(seg);
    if (mode === "collected" && !collected.length) {
      this.head.appendChild(h("span", {}, "Shift-click or lasso (Shift-drag) models on the map, or tick rows, to collect them here; ☆ pins a model."));
    } else {
      this.head.appendChild(h("span", {}, `${d.selected.size} selected · ${d.pinned.size} pinned`));
    }
    const clearBtn = h("button", { class: "rm-btn small", "data-testid": "clear-selection" }, "Clear selection (Esc)");
    clearBtn.addEventListener("click", () => this.cb.onClearSelection());
    if (d.selected.size) this.head.appendChild(clearBtn);
    if (rows.length > MAX_ROWS) this.head.appendChild(h("span", {}, `showing ${MAX_ROWS} of ${rows.length}`));
    const table = h("table", { class: "rm-table", "data-testid": "drawer-table" });
    const thr = h("tr");
    for (const c of COLUMNS) {
      const th = h("th", { class: `${c.num ? "num" : ""} ${c.key ? "sortable" : ""} ${c.key === this.sortKey ? "sorted" : ""}`, title: c.title ?? null });
      th.textContent = c.label + (c.key === this.sortKey ? (this.sortDir === "asc" ? " ▲" : " ▼") : "");
      if (c.key) {
        const key = c.key;
        th.addEventListener("click", () => {
          if (this.sortKey === key) this.sortDir = this.sortDir === "asc" ? "desc" : "asc";
          else {
            this.sortKey = key;
            this.sortDir = key === "id" || key === "origin" || key === "state" ? "asc" : "desc";
          }
          this.render();
        });
        th.dataset.sort = key;
      }
      thr.appendChild(th);
    }
    table.appendChild(h("thead", {}, thr));
    const tbody = h("tbody");
    for (const m of rows.slice(0, MAX_ROWS)) {
      const delta = deltaVsParent(m, d.byId);
      const sel = h("input", { type: "checkbox", title: "Selected (for comparison / generation)" }) as HTMLInputElement;
      sel.checked = d.selected.has(m.id);
      sel.addEventListener("click", (e) => {
        e.stopPropagation();
        if (this.mode === "auto") this.mode = mode; // keep this list while ticking rows
        this.cb.onToggleSelect(m.id);
      });
      const pin = h("button", { class: "rm-btn small", title: d.pinned.has(m.id) ? "Unpin" : "Pin (keep in the drawer)", style: "border:0;background:none" }, d.pinned.has(m.id) ? "★" : "☆");
      pin.addEventListener("click", (e) => {
        e.stopPropagation();
        if (this.mode === "auto") this.mode = mode;
        this.cb.onTogglePin(m.id);
      });
      const tr = h(
        "tr",
        { class: `clickable ${d.inspected === m.id ? "inspected" : ""}`, "data-testid": "drawer-row", "data-model-id": m.id },
        h("td", { style: "white-space:nowrap" }, sel, pin),
        h("td", {}, glyphSvg(m.glyph, { height: 18, paramRow: 4, blockWidth: 7, thinWidth: 3, gap: 1 })),
        h("td", {}, m.id),
        h(
          "td",
          {},
          h("span", { class: "rm-origin", style: `background:${ORIGIN_COLORS[m.origin] ?? "#999"}` }, m.origin),
          m.changes.length ? h("div", { class: "rm-changes", title: m.changes.join("\n") }, m.changes.join("; ")) : null,
        ),
        h("td", { class: "num" }, formatPct(m.val_accuracy)),
        h("td", { class: `num ${delta === null ? "" : delta >= 0 ? "rm-pos" : "rm-neg"}` }, formatDelta(delta)),
        h("td", { class: "num" }, formatPct(m.train_accuracy)),
        h("td", { class: "num", title: m.params.toLocaleString() }, formatParams(m.params)),
        h("td", { class: "num" }, String(m.depth)),
        h("td", {}, h("span", { class: `rm-state ${m.status.state}` }, m.status.state)),
      );
      tr.addEventListener("click", () => this.cb.onInspect(m.id));
      tbody.appendChild(tr);
    }
    table.appendChild(tbody);
    this.body.appendChild(table);
  }

  dispose(): void {
    this.root.remove();
  }
}
