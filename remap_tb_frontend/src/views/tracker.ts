// The requests just enqueued, followed live at the bottom of the side panel (issue 11).
//
// Digits models train in about a second, so by the time the Queue tab is opened they are
// done, and the user never sees that a request can be stopped. Right after an enqueue the
// panel shows each new request in a cancel-ready state: "waiting for a worker" or
// "starting" with a Cancel button, before the first epoch, then "epoch x of y" with a
// progress bar, then how it ended with a link to the model. It follows the queue the app
// polls anyway; it never fetches.

import type { QueueRequest, QueueResponse } from "../types";
import { h, clear } from "../lib/dom";

export interface TrackerCallbacks {
  /** Resolves false when the server refused the cancel. */
  onCancel(id: string): Promise<boolean>;
  onInspect(id: string): void;
  onOpenQueue(): void;
  hasModel(id: string): boolean;
}

/** At most this many of the tracked requests are listed (the rest are counted). */
const SHOWN = 4;

export type TrackedState = "sent" | QueueRequest["state"];

/** The words for a tracked request's state; "sent" = enqueued, not in the queue listing yet. */
export function trackedText(state: TrackedState, r: QueueRequest | undefined): string {
  switch (state) {
    case "sent":
    case "pending":
      return r && r.state === "pending" && r.attempts > 0 ? "waiting to be trained again" : "waiting for a worker";
    case "running":
      return r && r.epoch > 0 ? `epoch ${r.epoch} of ${r.epochs}` : "starting (before the first epoch)";
    case "done":
      return "done";
    case "failed":
      return r?.error ? `failed: ${r.error}` : "failed";
    case "cancelled":
      return "cancelled";
  }
}

/** Can the request still be cancelled? */
export function cancellable(state: TrackedState): boolean {
  return state === "sent" || state === "pending" || state === "running";
}

export class RequestTracker {
  private readonly root: HTMLElement;
  private ids: string[] = [];
  private queue: QueueResponse | null = null;
  private readonly stopping = new Set<string>();

  constructor(container: HTMLElement, private readonly cb: TrackerCallbacks) {
    this.root = h("div", { class: "rm-tracker", "data-testid": "request-tracker", style: "display:none" });
    container.appendChild(this.root);
  }

  /** Follow these newly enqueued requests (replacing the ones followed before). */
  track(ids: string[]): void {
    this.ids = [...ids];
    this.stopping.clear();
    this.render();
  }

  /** The queue as the app last polled it. */
  update(queue: QueueResponse | null): void {
    this.queue = queue;
    if (this.ids.length) this.render();
  }

  private render(): void {
    clear(this.root);
    this.root.style.display = this.ids.length ? "" : "none";
    if (!this.ids.length) return;
    const byId = new Map((this.queue?.requests ?? []).map((r) => [r.id, r]));
    const states = this.ids.map((id) => (byId.get(id)?.state ?? "sent") as TrackedState);
    const open = states.filter(cancellable).length;
    const close = h("button", { class: "rm-btn small", title: "Stop following these requests (they keep training)", "data-testid": "tracker-close", style: "border:0;background:none" }, "✕");
    close.addEventListener("click", () => this.track([]));
    const queueLink = h("a", { href: "#", "data-testid": "tracker-open-queue" }, "Queue tab");
    queueLink.addEventListener("click", (e) => {
      e.preventDefault();
      this.cb.onOpenQueue();
    });
    const head = h(
      "div",
      { class: "rm-tracker-head" },
      h("b", {}, this.ids.length === 1 ? "Just enqueued" : `Just enqueued (${this.ids.length})`),
      h("span", { class: "rm-muted rm-small" }, open ? " · cancel any time, also before it starts · " : " · finished · ", queueLink),
      h("span", { style: "flex:1" }),
    );
    if (open > 1) {
      const all = h("button", { class: "rm-btn small", "data-testid": "tracker-cancel-all" }, `Cancel all ${open}`);
      all.addEventListener("click", () => {
        this.ids.forEach((id, i) => cancellable(states[i]) && this.cancel(id));
      });
      head.appendChild(all);
    }
    head.appendChild(close);
    this.root.appendChild(head);
    this.ids.slice(0, SHOWN).forEach((id, i) => {
      const r = byId.get(id);
      const st = states[i];
      const stopping = this.stopping.has(id) && cancellable(st);
      const row = h("div", { class: "rm-tracker-row", "data-testid": "tracker-row", "data-request-id": id, "data-state": st });
      const name = this.cb.hasModel(id) ? h("a", { href: "#", "data-testid": "tracker-inspect", title: `Inspect ${id}` }, id) : h("span", {}, id);
      name.addEventListener("click", (e) => {
        e.preventDefault();
        if (this.cb.hasModel(id)) this.cb.onInspect(id);
      });
      row.appendChild(h("span", { class: "rm-tracker-id" }, name));
      const frac = st === "running" && r && r.epochs > 0 ? r.epoch / r.epochs : st === "done" ? 1 : 0;
      row.appendChild(h("span", { class: "rm-progress" }, h("div", { style: `width:${(frac * 100).toFixed(0)}%` })));
      row.appendChild(h("span", { class: `rm-state ${st === "sent" ? "pending" : st}`, "data-testid": "tracker-state" }, stopping ? "stopping…" : trackedText(st, r)));
      if (cancellable(st)) {
        const cancel = h("button", { class: "rm-btn small", "data-testid": "tracker-cancel", disabled: stopping, title: "Cancel this request: a waiting one is never trained, a running one stops within a second" }, stopping ? "Stopping…" : "Cancel");
        cancel.addEventListener("click", () => this.cancel(id));
        row.appendChild(cancel);
      }
      this.root.appendChild(row);
    });
    if (this.ids.length > SHOWN) this.root.appendChild(h("div", { class: "rm-muted rm-small" }, `+${this.ids.length - SHOWN} more in the Queue tab`));
  }

  private cancel(id: string): void {
    this.stopping.add(id);
    this.render();
    void this.cb.onCancel(id).then((ok) => {
      if (!ok) this.stopping.delete(id);
      this.render();
    });
  }

  dispose(): void {
    this.root.remove();
  }
}
