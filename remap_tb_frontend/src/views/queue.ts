// The training queue: pending, running (epoch x of y), done, failed (with the
// reason), cancelled; cancel and reorder; a clear warning when no worker is alive.

import type { QueueRequest, QueueResponse } from "../types";
import { h, clear, code } from "../lib/dom";
import { formatParams } from "../lib/format";
import { ORIGIN_COLORS } from "../lib/color";

export interface QueueData {
  queue: QueueResponse | null;
  error: string | null;
  logdirHint: string;
}

export interface QueueCallbacks {
  /** Resolves false when the server refused the cancel. */
  onCancel(id: string): Promise<boolean>;
  onReorder(id: string, priority: number): void;
  onInspect(id: string): void;
  hasModel(id: string): boolean;
}

const ORDER: Record<string, number> = { running: 0, pending: 1, failed: 2, done: 3, cancelled: 4 };

/** Pending requests in the order a worker claims them: priority desc, then enqueue order. */
export function claimOrder(reqs: QueueRequest[]): QueueRequest[] {
  return reqs
    .filter((r) => r.state === "pending")
    .slice()
    .sort((a, b) => b.priority - a.priority || (a.enqueued < b.enqueued ? -1 : a.enqueued > b.enqueued ? 1 : 0) || (a.id < b.id ? -1 : 1));
}

/** Priority that moves `id` one place up (-1) or down (+1) in the claim order; null if it cannot move. */
export function priorityForMove(reqs: QueueRequest[], id: string, dir: -1 | 1): number | null {
  const order = claimOrder(reqs);
  const i = order.findIndex((r) => r.id === id);
  const j = i + dir;
  if (i < 0 || j < 0 || j >= order.length) return null;
  const other = order[j];
  // Jump past the neighbour: equal priorities keep enqueue order, so go one beyond.
  return dir < 0 ? other.priority + 1 : other.priority - 1;
}

/**
 * Forget the "stopping…" marks whose request changed state since the cancel was clicked
 * (or is gone). `stopping` maps a request id to its state when Cancel was clicked.
 */
export function pruneStopping(stopping: Map<string, string>, reqs: QueueRequest[]): void {
  const now = new Map(reqs.map((r) => [r.id, r.state as string]));
  for (const [id, state] of stopping) if (now.get(id) !== state) stopping.delete(id);
}

export class QueueView {
  private readonly root: HTMLElement;
  /** Requests the user cancelled that have not changed state yet -> their state then. */
  private readonly stopping = new Map<string, string>();
  private showFinished = true;
  private data: QueueData | null = null;

  constructor(container: HTMLElement, private readonly cb: QueueCallbacks) {
    this.root = h("div", { "data-testid": "queue" });
    container.appendChild(this.root);
  }

  update(d: QueueData): void {
    this.data = d;
    this.render();
  }

  private render(): void {
    const d = this.data!;
    clear(this.root);
    if (d.error) this.root.appendChild(h("div", { class: "rm-banner err", "data-testid": "queue-error" }, `Cannot read the queue: ${d.error}`));
    const q = d.queue;
    if (!q) {
      if (!d.error) this.root.appendChild(h("div", { class: "rm-muted" }, "Loading the queue…"));
      return;
    }
    const active = q.requests.filter((r) => r.state === "pending" || r.state === "running").length;
    if (!q.worker_alive) {
      this.root.appendChild(workerWarning(d.logdirHint, active));
    } else {
      const alive = q.workers.filter((w) => w.alive);
      this.root.appendChild(h("div", { class: "rm-help", "data-testid": "worker-status" }, `${alive.length} worker${alive.length === 1 ? "" : "s"} alive: ${alive.map((w) => `${w.host}:${w.pid}`).join(", ")}`));
    }
    const counts = new Map<string, number>();
    for (const r of q.requests) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
    const toggle = h("label", { class: "rm-small" }, h("input", { type: "checkbox", checked: this.showFinished }), " show finished");
    toggle.querySelector("input")!.addEventListener("change", (e) => {
      this.showFinished = (e.target as HTMLInputElement).checked;
      this.render();
    });
    this.root.appendChild(
      h("div", { style: "display:flex;gap:10px;align-items:center;margin-bottom:6px" }, h("span", { class: "rm-small" }, ["running", "pending", "failed", "done", "cancelled"].map((s) => `${counts.get(s) ?? 0} ${s}`).join(" · ")), h("span", { style: "flex:1" }), toggle),
    );
    if (!q.requests.length) {
      this.root.appendChild(h("div", { class: "rm-empty", "data-testid": "queue-empty" }, "The queue is empty. Generate ablations or variations, or enqueue a model from the editor."));
      return;
    }
    pruneStopping(this.stopping, q.requests);
    const claim = claimOrder(q.requests);
    const pos = new Map(claim.map((r, i) => [r.id, i]));
    const rows = q.requests
      .filter((r) => this.showFinished || r.state === "pending" || r.state === "running" || r.state === "failed")
      .slice()
      .sort((a, b) => (ORDER[a.state] ?? 9) - (ORDER[b.state] ?? 9) || (a.state === "pending" ? (pos.get(a.id)! - pos.get(b.id)!) : a.enqueued < b.enqueued ? 1 : -1));
    const table = h("table", { class: "rm-table", "data-testid": "queue-table", style: "table-layout:fixed" });
    table.appendChild(h("colgroup", {}, h("col", {}), h("col", { style: "width:112px" }), h("col", { style: "width:52px" }), h("col", { style: "width:104px" })));
    table.appendChild(h("thead", {}, h("tr", {}, h("th", {}, "Request"), h("th", {}, "State"), h("th", { class: "num" }, "Params"), h("th", {}, ""))));
    const tb = h("tbody");
    for (const r of rows) {
      const actions = h("div", { style: "display:flex;gap:2px;justify-content:flex-end" });
      if (r.state === "pending") {
        const i = pos.get(r.id)!;
        const up = h("button", { class: "rm-btn small", title: "Train earlier", disabled: i === 0, "data-testid": "queue-up" }, "↑");
        up.addEventListener("click", () => {
          const p = priorityForMove(q.requests, r.id, -1);
          if (p !== null) this.cb.onReorder(r.id, p);
        });
        const down = h("button", { class: "rm-btn small", title: "Train later", disabled: i === claim.length - 1, "data-testid": "queue-down" }, "↓");
        down.addEventListener("click", () => {
          const p = priorityForMove(q.requests, r.id, 1);
          if (p !== null) this.cb.onReorder(r.id, p);
        });
        actions.append(up, down);
      }
      if (r.state === "pending" || r.state === "running") {
        const stopping = this.stopping.has(r.id);
        const cancel = h("button", { class: "rm-btn small", title: stopping ? "Cancel requested: a running request stops within a second, between two batches" : "Cancel this request", "data-testid": "queue-cancel", disabled: stopping }, stopping ? "Stopping…" : "Cancel");
        cancel.addEventListener("click", () => {
          this.stopping.set(r.id, r.state);
          this.render();
          void this.cb.onCancel(r.id).then((ok) => {
            if (!ok && this.stopping.delete(r.id)) this.render();
          });
        });
        actions.appendChild(cancel);
      }
      let stateCell: HTMLElement;
      if (r.state === "running") {
        const frac = r.epochs > 0 ? r.epoch / r.epochs : 0;
        stateCell = h("span", {}, h("span", { class: "rm-progress" }, h("div", { style: `width:${(frac * 100).toFixed(0)}%` })), h("span", { class: "rm-state running", title: r.epoch > 0 ? "" : "Claimed by a worker, before the end of the first epoch: Cancel stops it" }, r.epoch > 0 ? `epoch ${r.epoch} of ${r.epochs}` : `starting (0 of ${r.epochs})`));
      } else {
        stateCell = h("span", { class: `rm-state ${r.state}` }, r.state + (r.state === "pending" ? ` #${pos.get(r.id)! + 1}` : ""));
      }
      if (this.stopping.has(r.id)) stateCell.appendChild(h("div", { class: "rm-state cancelled", "data-testid": "queue-stopping", title: "Stops at the end of the current epoch, then shows as cancelled" }, "stopping…"));
      const idCell = h("td", { style: "overflow:hidden;text-overflow:ellipsis;word-break:break-all" }, this.cb.hasModel(r.id) ? linkTo(r.id, () => this.cb.onInspect(r.id)) : h("span", {}, r.id), " ", h("span", { class: "rm-origin", style: `background:${ORIGIN_COLORS[r.origin] ?? "#999"}` }, r.origin));
      if (r.changes.length) idCell.appendChild(h("div", { class: "rm-changes", title: r.changes.join("\n") }, r.changes.join("; ")));
      if (r.error) idCell.appendChild(h("div", { class: "rm-neg rm-small", "data-testid": "queue-reason" }, r.error));
      if (r.attempts > 1) idCell.appendChild(h("div", { class: "rm-muted rm-small" }, `attempt ${r.attempts}`));
      tb.appendChild(h("tr", { "data-testid": "queue-row", "data-request-id": r.id, "data-state": r.state }, idCell, h("td", {}, stateCell), h("td", { class: "num" }, formatParams(r.params)), h("td", {}, actions)));
    }
    table.appendChild(tb);
    this.root.appendChild(table);
  }

  dispose(): void {
    this.root.remove();
  }
}

function linkTo(text: string, onClick: () => void): HTMLElement {
  const a = h("a", { style: "color:#1565c0;cursor:pointer" }, text);
  a.addEventListener("click", onClick);
  return a;
}

export function workerWarning(logdirHint: string, active: number): HTMLElement {
  return h(
    "div",
    { class: "rm-banner warn", "data-testid": "worker-warning" },
    h("b", {}, "No worker is alive"),
    active ? `: ${active} request${active === 1 ? "" : "s"} will wait until one starts. ` : ": nothing will be trained until one starts. ",
    "Start one with ",
    code(`remap worker ${logdirHint}`),
    " or restart TensorBoard with ",
    code("--remap_workers 1"),
    ".",
  );
}
