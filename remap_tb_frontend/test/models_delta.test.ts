import { test } from "node:test";
import assert from "node:assert/strict";
import { applyModels } from "../src/lib/models_delta";
import type { ModelSummary, ModelsResponse } from "../src/types";

function model(run: string, created: string, state: "running" | "done" = "done", epoch = 1): ModelSummary {
  return {
    id: `id-${run}`, run, parent: null, origin: "initial", changes: [], status: { state, epoch, epochs: 3, reason: null },
    params: 10, depth: 1, spec_hash: "h", train_accuracy: null, val_accuracy: null, val_loss: null,
    per_class_accuracy: null, glyph: [], created, wall_time: null,
  };
}

const old = [model("a", "2026-01-01T00:00:00Z"), model("b", "2026-01-02T00:00:00Z", "running", 1), model("c", "2026-01-03T00:00:00Z")];
const body = (models: ModelSummary[], extra: Partial<ModelsResponse> = {}): ModelsResponse => ({
  experiment: "e", class_names: ["0"], version: "v2", models, ...extra,
});

test("a whole body replaces the list; a delta since another version does too", () => {
  const whole = [model("z", "2026-01-09T00:00:00Z")];
  assert.equal(applyModels(old, "v1", body(whole)), whole);
  assert.equal(applyModels(old, "v0", body(whole, { since: "v1", removed: [] })), whole);
  assert.equal(applyModels(old, null, body(whole, { since: "v1", removed: [] })), whole);
});

test("a delta replaces changed runs in place, drops removed ones and adds new ones in creation order", () => {
  const b2 = model("b", "2026-01-02T00:00:00Z", "done", 3);
  const early = model("a0", "2026-01-01T12:00:00Z");
  const late = model("d", "2026-01-04T00:00:00Z");
  const out = applyModels(old, "v1", body([late, b2, early], { since: "v1", removed: ["c"] }));
  assert.deepEqual(out?.map((m) => m.run), ["a", "a0", "b", "d"]);
  assert.equal(out?.[2], b2);
  assert.equal(out?.[0], old[0]);
  assert.deepEqual(old.map((m) => m.run), ["a", "b", "c"]); // the held list is not modified
});

test("an empty delta changes nothing; equal creation times fall back to the run name", () => {
  assert.equal(applyModels(old, "v1", body([], { since: "v1", removed: [] })), null);
  const twin = model("b0", "2026-01-02T00:00:00Z");
  assert.deepEqual(applyModels(old, "v1", body([twin], { since: "v1", removed: [] }))?.map((m) => m.run), ["a", "b", "b0", "c"]);
});
