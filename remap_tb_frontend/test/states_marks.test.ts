// Every state shown is true: how stopped runs are drawn, the Pareto front without them,
// and the polling decisions that make a finished model show up at once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { markStyle, onParetoFront, STOPPED_STATES } from "../src/lib/marks";
import { paretoFront } from "../src/lib/pareto";
import { DEFAULT_POLLING, isFinalState, LEGACY_POLLING, newlyFinished, projectionRetryDelay, queueBusy } from "../src/lib/polling";
import type { QueueResponse, State } from "../src/types";

test("cancelled is hollow, failed and diverged are crossed, everything else is filled", () => {
  const expected: Record<State, string> = {
    queued: "filled",
    running: "filled",
    untrained: "filled",
    done: "filled",
    cancelled: "hollow",
    failed: "crossed",
    diverged: "crossed",
  };
  for (const [state, style] of Object.entries(expected)) assert.equal(markStyle(state as State), style, state);
  // Distinct marks: a cancelled run never looks like a failed one, nor either like a model.
  assert.notEqual(markStyle("cancelled"), markStyle("failed"));
  assert.deepEqual([...STOPPED_STATES].sort(), ["cancelled", "diverged", "failed"]);
});

test("stopped runs are off the Pareto front unless asked for", () => {
  for (const s of STOPPED_STATES) {
    assert.equal(onParetoFront(s, false), false, s);
    assert.equal(onParetoFront(s, true), true, s);
  }
  assert.equal(onParetoFront("done", false), true);
  assert.equal(onParetoFront("running", false), true);
});

test("a cancelled or failed model does not dominate the front by default", () => {
  const items = [
    { id: "small", params: 100, accuracy: 0.5, state: "done" as State },
    { id: "big", params: 1000, accuracy: 0.8, state: "done" as State },
    // Better than "big" at the same size, but cancelled after one epoch / failed:
    { id: "cancelled", params: 900, accuracy: 0.9, state: "cancelled" as State },
    { id: "failed", params: 50, accuracy: 0.6, state: "failed" as State },
  ];
  assert.deepEqual(paretoFront(items), ["small", "big"]);
  assert.deepEqual(paretoFront(items, true), ["failed", "cancelled"]);
  // Items without a state (older callers) keep the old behaviour.
  assert.deepEqual(paretoFront(items.map(({ state: _s, ...rest }) => rest)), ["failed", "cancelled"]);
});

function queue(rows: [string, string][]): QueueResponse {
  return {
    requests: rows.map(([id, state]) => ({
      id, state, origin: "handcrafted", parent: null, changes: [], epoch: 0, epochs: 1, attempts: 1, priority: 0,
      error: null, params: 10, enqueued: "", worker: null,
    })),
    workers: [],
    worker_alive: true,
  } as unknown as QueueResponse;
}

test("a request is awaited when it is seen finished for the first time, not on the first listing", () => {
  const seen = new Set<string>();
  assert.deepEqual(newlyFinished(queue([["old", "done"], ["p", "pending"]]), seen, true), []);
  // "fast" went pending -> done between two polls (never seen running): still awaited.
  assert.deepEqual(newlyFinished(queue([["old", "done"], ["p", "failed"], ["fast", "done"], ["r", "running"]]), seen, false), ["p", "fast"]);
  assert.deepEqual(newlyFinished(queue([["old", "done"], ["p", "failed"], ["fast", "done"], ["r", "cancelled"]]), seen, false), ["r"]);
});

test("final states end the wait; the queue is polled fast only while it is busy", () => {
  for (const s of ["done", "diverged", "failed", "cancelled", "untrained"] as State[]) assert.ok(isFinalState(s), s);
  for (const s of ["running", "queued"] as State[]) assert.ok(!isFinalState(s), s);
  assert.ok(!isFinalState(undefined));
  assert.ok(queueBusy(queue([["a", "running"]])) && queueBusy(queue([["a", "pending"]])));
  assert.ok(!queueBusy(queue([["a", "done"]])) && !queueBusy(null));
  // The defaults fit a 1.5 s budget: a queue poll, then model polls a quarter second apart.
  assert.ok(DEFAULT_POLLING.queueActiveMs + DEFAULT_POLLING.awaitMs <= 1000);
  assert.ok(LEGACY_POLLING.queueActiveMs === 3000 && LEGACY_POLLING.modelsMs === 20000);
});

test("layout retries start fast and back off to 2 s", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((k) => projectionRetryDelay(250, k)), [250, 500, 1000, 2000, 2000, 2000]);
  assert.equal(projectionRetryDelay(2000, 3), 2000);
});
