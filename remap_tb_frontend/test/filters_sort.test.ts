import { test } from "node:test";
import assert from "node:assert/strict";
import { emptyFilters, filterIds, isFilterActive, passesFilters } from "../src/lib/filters";
import { deltaVsParent, sortModels } from "../src/lib/sort";
import type { ModelSummary } from "../src/types";

function model(id: string, over: Partial<ModelSummary> = {}): ModelSummary {
  return {
    id,
    run: id,
    parent: null,
    origin: "initial",
    changes: [],
    status: { state: "done", epoch: 10, epochs: 10, reason: null },
    params: 1000,
    depth: 2,
    spec_hash: id,
    train_accuracy: 0.9,
    val_accuracy: 0.8,
    val_loss: 0.5,
    per_class_accuracy: [0.8, 0.8],
    glyph: [
      { index: 0, type: "conv2d", output_shape: [8, 6, 6], params: 80 },
      { index: 1, type: "classifier", output_shape: [2], params: 578 },
    ],
    created: "2025-01-01T00:00:00Z",
    wall_time: 1,
    ...over,
  };
}

test("empty filters pass everything", () => {
  const f = emptyFilters();
  assert.equal(isFilterActive(f), false);
  assert.equal(passesFilters(model("a"), f), true);
});

test("ranges, states, origins, layer types", () => {
  const ms = [
    model("small", { params: 100 }),
    model("big", { params: 1e6 }),
    model("bad", { val_accuracy: 0.1 }),
    model("none", { val_accuracy: null }),
    model("run", { status: { state: "running", epoch: 1, epochs: 3, reason: null } }),
    model("abl", { origin: "ablation" }),
    model("dense", { glyph: [{ index: 0, type: "dense", output_shape: [4], params: 10 }] }),
  ];
  const ids = (f: Partial<ReturnType<typeof emptyFilters>>) => [...filterIds(ms, { ...emptyFilters(), ...f })].sort();
  assert.deepEqual(ids({ paramsMax: 5000 }), ["abl", "bad", "dense", "none", "run", "small"]);
  assert.deepEqual(ids({ paramsMin: 5000 }), ["big"]);
  assert.deepEqual(ids({ accMin: 0.5 }), ["abl", "big", "dense", "run", "small"]); // null accuracy fails a range
  assert.deepEqual(ids({ states: ["running"] }), ["run"]);
  assert.deepEqual(ids({ origins: ["ablation"] }), ["abl"]);
  assert.deepEqual(ids({ layerTypes: ["dense"] }), ["dense"]);
  assert.deepEqual(ids({ layerTypes: ["conv2d", "dense"] }), []);
  assert.deepEqual(ids({ layerTypes: ["classifier"] }), []); // the classifier is not a layer type
});

test("sort by accuracy: nulls last in both directions, ties by id", () => {
  const ms = [model("b", { val_accuracy: 0.5 }), model("a", { val_accuracy: 0.5 }), model("n", { val_accuracy: null }), model("c", { val_accuracy: 0.9 })];
  assert.deepEqual(sortModels(ms, "val_accuracy", "desc").map((m) => m.id), ["c", "a", "b", "n"]);
  assert.deepEqual(sortModels(ms, "val_accuracy", "asc").map((m) => m.id), ["a", "b", "c", "n"]);
});

test("delta vs parent and sorting by it", () => {
  const p = model("p", { val_accuracy: 0.8 });
  const up = model("up", { parent: "p", val_accuracy: 0.85 });
  const down = model("down", { parent: "p", val_accuracy: 0.7 });
  const orphan = model("orphan", { parent: "gone" });
  const byId = new Map([p, up, down, orphan].map((m) => [m.id, m]));
  assert.ok(Math.abs(deltaVsParent(up, byId)! - 0.05) < 1e-12);
  assert.equal(deltaVsParent(orphan, byId), null);
  assert.equal(deltaVsParent(p, byId), null);
  assert.deepEqual(sortModels([p, up, down, orphan], "delta", "desc", byId).map((m) => m.id), ["up", "down", "orphan", "p"]);
  assert.deepEqual(sortModels([p, up, down], "params", "asc").map((m) => m.id), ["down", "p", "up"]);
});
