import { test } from "node:test";
import assert from "node:assert/strict";
import { claimOrder, priorityForMove } from "../src/views/queue";
import { candidateProblem } from "../src/views/generate";
import { meanPerClass } from "../src/views/classes";
import { defaultBudget } from "../src/app";
import type { Candidate, ModelSummary, QueueRequest } from "../src/types";

function req(id: string, priority: number, enqueued: string, state: QueueRequest["state"] = "pending"): QueueRequest {
  return { id, state, origin: "variation", parent: null, changes: [], epoch: 0, epochs: 3, attempts: 0, priority, error: null, params: 10, enqueued, worker: null };
}

test("claim order: priority desc, then enqueue order", () => {
  const rs = [req("a", 0, "1"), req("b", 0, "2"), req("c", 5, "3"), req("d", 0, "0", "running")];
  assert.deepEqual(claimOrder(rs).map((r) => r.id), ["c", "a", "b"]);
});

test("moving a request changes its priority past its neighbour", () => {
  const rs = [req("a", 0, "1"), req("b", 0, "2"), req("c", 0, "3")];
  const p = priorityForMove(rs, "c", -1)!;
  const moved = rs.map((r) => (r.id === "c" ? { ...r, priority: p } : r));
  assert.deepEqual(claimOrder(moved).map((r) => r.id), ["c", "a", "b"]);
  const q = priorityForMove(rs, "a", 1)!;
  const moved2 = rs.map((r) => (r.id === "a" ? { ...r, priority: q } : r));
  assert.equal(claimOrder(moved2).at(-1)!.id, "a");
  assert.equal(priorityForMove(rs, "a", -1), null);
});

test("candidate problems: invalid, over budget, under minimum", () => {
  const c = (over: Partial<Candidate>): Candidate => ({ key: "k", parent: "p", spec: { schema: 1, input: { shape: [1, 8, 8], num_classes: 10 }, layers: [] }, params: 5000, changes: [], valid: true, reason: null, glyph: [], ...over });
  assert.equal(candidateProblem(c({}), 10000, null), null);
  assert.match(candidateProblem(c({}), 4000, null)!, /over budget: 5k > 4k/);
  assert.match(candidateProblem(c({}), null, 6000)!, /under the minimum/);
  assert.equal(candidateProblem(c({ valid: false, reason: "layer 2 maxpool2d: pool 5 larger than input 3x3" }), null, null), "layer 2 maxpool2d: pool 5 larger than input 3x3");
});

test("mean per-class accuracy skips models without it", () => {
  const m = (v: number[] | null) => ({ per_class_accuracy: v }) as ModelSummary;
  const r = meanPerClass([m([0.5, 1]), m([1, 0]), m(null)], 2);
  assert.deepEqual(r.mean, [0.75, 0.5]);
  assert.deepEqual(r.min, [0.5, 0]);
  assert.deepEqual(r.max, [1, 1]);
});

test("default budget: 90th percentile rounded up to 2 significant digits", () => {
  const params = Array.from({ length: 100 }, (_, i) => (i + 1) * 1000);
  assert.equal(defaultBudget(params), 90000);
  assert.equal(defaultBudget([12345]), 13000);
  assert.equal(defaultBudget([]), null);
});
