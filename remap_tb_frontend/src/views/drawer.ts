// The model drawer: the collected models (selection and pinned) as a sortable
// table. With nothing collected it lists the most accurate models, so there is
// always a starting point for finding a baseline. "Top 25 finished" and "All" honour
// the map's filters and "Top" the parameter budget too (lib/drawer.ts).

import type { ModelSummary } from "../types";
import { glyphSvg } from "../charts/glyph";
import { h, clear } from "../lib/dom";
import { formatDelta, formatParams, formatPct } from "../lib/format";
import { deltaVsParent, SortDir, SortKey, sortModels } from "../lib/sort";
import { ORIGIN_COLORS } from "../lib/color";
import { drawerRows, TOP_N, withinBudget } from "../lib/drawer";
import { epochMismatch, epochsTrained } from "../lib/epochs";

export interface DrawerData {
  models: ModelSummary[];
  byId: Map<string, ModelSummary>;
  selected: Set<string>;
  pinned: Set<string>;
  inspected: string | null;
  /** The ids that pass the map's filters (null: no filter is active). */
  visible: Set<string> | null;
  /** The parameter budget (null: none). */
  budget: number | null;
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
  { key: "epochs", label: "Epochs", num: true, title: "Epochs the model trained" },
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
  private lastInspected: string | null = null;

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
    const collectedIds = new Set([...d.selected, ...d.pinned]);
    const collected = d.models.filter((m) => collectedIds.has(m.id));
    const mode = this.mode === "auto" ? (collected.length ? "collected" : "top") : this.mode;
    const picked = drawerRows(mode, d.models, { visible: d.visible, budget: d.budget, collected: collectedIds, byId: d.byId });
    const rows = sortModels(picked.rows, this.sortKey, this.sortDir, d.byId);
    const allShown = d.visible === null ? d.models.length : d.models.filter((m) => d.visible!.has(m.id)).length;
    const seg = h("div", { class: "rm-seg", "data-testid": "drawer-mode" });
    for (const [m, label] of [
      ["collected", `Selected & pinned (${collected.length})`],
      ["top", `Top ${TOP_N} finished`],
      ["all", d.visible === null ? `All (${d.models.length})` : `All (${allShown} of ${d.models.length})`],
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
    const notes: string[] = [];
    if (mode === "top" && d.budget !== null) notes.push(`within the ${formatParams(d.budget)} budget`);
    if (picked.hiddenByFilters) notes.push(`${picked.hiddenByFilters} hidden by the filters`);
    if (picked.overBudget) notes.push(`${picked.overBudget} over the budget left out`);
    if (notes.length) this.head.appendChild(h("span", { "data-testid": "drawer-scope", title: "The map's filters and parameter budget decide what the drawer lists (Selected & pinned lists what you collected)" }, notes.join(" · ")));
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
      const mismatch = delta === null ? null : epochMismatch(m, m.parent ? d.byId.get(m.parent) : null);
      const hidden = d.visible !== null && !d.visible.has(m.id);
      const over = !withinBudget(m, d.budget);
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
        {
          class: `clickable ${d.inspected === m.id ? "inspected" : ""} ${hidden ? "rm-filtered" : ""}`,
          "data-testid": "drawer-row",
          "data-model-id": m.id,
          "data-over-budget": String(over),
          title: hidden ? "Hidden on the map by the filters" : null,
        },
        h("td", { style: "white-space:nowrap" }, sel, pin),
        h("td", {}, glyphSvg(m.glyph, { height: 13, paramRow: 3, blockWidth: 7, thinWidth: 3, gap: 1 })),
        h("td", {}, m.id),
        h(
          "td",
          {},
          h("span", { class: "rm-origin", style: `background:${ORIGIN_COLORS[m.origin] ?? "#999"}` }, m.origin),
          m.changes.length ? h("div", { class: "rm-changes", title: m.changes.join("\n") }, m.changes.join("; ")) : null,
        ),
        h("td", { class: "num" }, formatPct(m.val_accuracy)),
        h(
          "td",
          { class: `num ${delta === null ? "" : delta >= 0 ? "rm-pos" : "rm-neg"}`, style: "white-space:nowrap" },
          formatDelta(delta),
          mismatch ? h("span", { class: "rm-epoch-warn", "data-testid": "delta-epochs-warning", title: mismatch }, " ⚠") : null,
        ),
        h("td", { class: "num" }, formatPct(m.train_accuracy)),
        h("td", { class: "num", "data-testid": "drawer-epochs" }, m.status.state === "untrained" ? "–" : String(epochsTrained(m))),
        h("td", { class: `num ${over ? "rm-neg" : ""}`, title: m.params.toLocaleString() + (over && d.budget !== null ? ` (over the ${formatParams(d.budget)} budget)` : "") }, formatParams(m.params)),
        h("td", { class: "num" }, String(m.depth)),
        h("td", {}, h("span", { class: `rm-state ${m.status.state}` }, m.status.state)),
      );
      tr.addEventListener("click", () => this.cb.onInspect(m.id));
      tbody.appendChild(tr);
    }
    table.appendChild(tbody);
    this.body.appendChild(table);
    // A newly inspected model (from the map): bring its row into view, if it is listed.
    if (d.inspected !== this.lastInspected) {
      this.lastInspected = d.inspected;
      const row = d.inspected ? tbody.querySelector<HTMLElement>(`tr[data-model-id="${CSS.escape(d.inspected)}"]`) : null;
      if (row) scrollRowIntoView(this.body, row);
    }
  }

  dispose(): void {
    this.root.remove();
  }
}

/** Scroll `box` just enough that `row` is visible below the sticky header. */
function scrollRowIntoView(box: HTMLElement, row: HTMLElement): void {
  const head = box.querySelector("thead")?.getBoundingClientRect().height ?? 0;
  const b = box.getBoundingClientRect(),
    r = row.getBoundingClientRect();
  if (r.top < b.top + head) box.scrollTop -= b.top + head - r.top;
  else if (r.bottom > b.bottom) box.scrollTop += r.bottom - b.bottom;
}
