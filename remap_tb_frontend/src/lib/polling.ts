// When the dashboard asks the server again. New models must show up at once (≤ 1.5 s
// from the worker writing "done" to the point on the map), so the cheap `queue` route is
// polled often and a finished request makes the dashboard fetch `models` right away and
// again every `awaitMs` until the model shows its final state (TensorBoard may read the
// run's end a moment after the queue moved it). The numbers can be overridden through
// `window.__remapPolling` (tests; the latency benchmark's baseline runs the old ones).

import type { QueueResponse, State } from "../types";

export interface PollingConfig {
  /** Queue polls while nothing is pending or running. */
  queueIdleMs: number;
  /** Queue polls while requests are pending or running, or a finished one is awaited. */
  queueActiveMs: number;
  /** `models` polls regardless of the queue (runs written without the queue). */
  modelsMs: number;
  /** `models` polls while a finished request's model does not show its final state yet. */
  awaitMs: number;
  /** How long to keep looking for one (then the regular polls take over). */
  awaitForMs: number;
  /** First retry of a layout that is still computing (doubling up to 2 s). */
  projectionRetryMs: number;
}

export const DEFAULT_POLLING: PollingConfig = {
  queueIdleMs: 1000,
  queueActiveMs: 500,
  modelsMs: 20000,
  awaitMs: 250,
  awaitForMs: 20000,
  projectionRetryMs: 250,
};

/** What the dashboard did before new models had to show up at once (the benchmark's baseline). */
export const LEGACY_POLLING: PollingConfig = {
  queueIdleMs: 3000,
  queueActiveMs: 3000,
  modelsMs: 20000,
  awaitMs: 3000,
  awaitForMs: 60000,
  projectionRetryMs: 2000,
};

export function pollingConfig(): PollingConfig {
  const o = (globalThis as unknown as { __remapPolling?: Partial<PollingConfig> }).__remapPolling;
  return { ...DEFAULT_POLLING, ...(o ?? {}) };
}

/** States after which a model's record no longer changes (short of a retry). */
const FINAL: readonly State[] = ["done", "diverged", "failed", "cancelled", "untrained"];

export function isFinalState(state: State | undefined): boolean {
  return state !== undefined && FINAL.includes(state);
}

/**
 * Ids of requests that are finished in `queue` and were not in `seen` (the ids seen
 * finished before); `seen` is updated. On the first listing (`first`) nothing is new.
 */
export function newlyFinished(queue: QueueResponse, seen: Set<string>, first: boolean): string[] {
  const out: string[] = [];
  for (const r of queue.requests) {
    if (r.state !== "done" && r.state !== "failed" && r.state !== "cancelled") continue;
    if (seen.has(r.id)) continue;
    seen.add(r.id);
    if (!first) out.push(r.id);
  }
  return out;
}

/** Whether the queue has work in flight (poll it at the active rate). */
export function queueBusy(queue: QueueResponse | null): boolean {
  return !!queue && queue.requests.some((r) => r.state === "pending" || r.state === "running");
}

/** The delay before the next retry of a computing layout: base, 2·base, ... up to 2 s. */
export function projectionRetryDelay(base: number, attempt: number): number {
  return Math.min(Math.max(base, 2000), base * Math.pow(2, Math.max(0, attempt)));
}
