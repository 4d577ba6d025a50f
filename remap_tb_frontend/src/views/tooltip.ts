// The map's hover tooltip: the model's glyph and key figures.

import type { ModelSummary } from "../types";
import { glyphSvg } from "../charts/glyph";
import { h, clear } from "../lib/dom";
import { formatDelta, formatParams, formatPct } from "../lib/format";
import { ORIGIN_COLORS } from "../lib/color";
import { epochsText } from "../lib/epochs";

export class Tooltip {
  private readonly el: HTMLElement;
  private currentId: string | null = null;
  private stackEl: HTMLElement | null = null;

  constructor(private readonly container: HTMLElement) {
    this.el = h("div", { class: "rm-tooltip", "data-testid": "tooltip", role: "tooltip" });
    container.appendChild(this.el);
  }

  /** `epochWarning`: why Δ parent is not like for like (lib/epochs `epochMismatch`). */
  show(m: ModelSummary, delta: number | null, clientX: number, clientY: number, stacked = 1, epochWarning: string | null = null): void {
    if (this.currentId !== m.id) {
      this.currentId = m.id;
      clear(this.el);
      this.el.dataset.modelId = m.id;
      this.el.appendChild(
        h(
          "div",
          { class: "tt-title" },
          m.id,
          " ",
          h("span", { class: "rm-origin", style: `background:${ORIGIN_COLORS[m.origin] ?? "#999"}` }, m.origin),
        ),
      );
      this.el.appendChild(glyphSvg(m.glyph, { height: 26, paramRow: 6 }));
      const st = m.status.state;
      this.el.appendChild(
        h(
          "div",
          { class: "tt-grid" },
          h("span", {}, "val accuracy"),
          h(
            "span",
            {},
            h("b", {}, formatPct(m.val_accuracy)),
            delta !== null ? ` (${formatDelta(delta)} vs parent)` : "",
            delta !== null && epochWarning ? h("span", { class: "rm-epoch-warn", "data-testid": "tooltip-epochs-warning", title: epochWarning }, " ⚠ other epochs") : null,
          ),
          h("span", {}, "train accuracy"),
          h("span", {}, formatPct(m.train_accuracy)),
          h("span", {}, "parameters"),
          h("span", {}, formatParams(m.params), ` (${m.params.toLocaleString()})`),
          h("span", {}, "depth"),
          h("span", {}, String(m.depth)),
          h("span", {}, "trained"),
          h("span", { "data-testid": "tooltip-epochs" }, epochsText(m)),
          h("span", {}, "status"),
          h("span", {}, st === "running" || st === "queued" ? `${st} (epoch ${m.status.epoch} of ${m.status.epochs})` : st, m.status.reason ? `: ${m.status.reason}` : ""),
        ),
      );
      if (m.changes.length) this.el.appendChild(h("div", { class: "rm-changes", style: "white-space:normal;margin-top:4px" }, m.changes.slice(0, 4).join("; ") + (m.changes.length > 4 ? " …" : "")));
      this.stackEl = h("div", { class: "rm-help", style: "margin:4px 0 0", "data-testid": "tooltip-stack" });
      this.el.appendChild(this.stackEl);
    }
    if (this.stackEl) {
      const more = stacked - 1;
      this.stackEl.textContent = more > 0 ? `+${more} overlapping model${more === 1 ? "" : "s"} here: click again to cycle through them, Shift-click to add the next one to the selection.` : "";
      this.stackEl.style.display = more > 0 ? "" : "none";
    }
    const r = this.container.getBoundingClientRect();
    this.el.style.display = "block";
    const w = this.el.offsetWidth,
      hh = this.el.offsetHeight;
    let x = clientX - r.left + 14,
      y = clientY - r.top + 14;
    if (x + w > r.width - 4) x = clientX - r.left - w - 14;
    if (y + hh > r.height - 4) y = Math.max(4, clientY - r.top - hh - 14);
    this.el.style.left = `${Math.max(4, x)}px`;
    this.el.style.top = `${y}px`;
  }

  hide(): void {
    this.currentId = null;
    this.el.style.display = "none";
  }

  dispose(): void {
    this.el.remove();
  }
}
