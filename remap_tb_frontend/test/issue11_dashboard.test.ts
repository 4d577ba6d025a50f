// Issue 11, the dashboard's rough edges: the drawer honours filters and budget, epochs
// trained and the Δ parent warning, hand-crafted change lists from the comparison's
// alignment, duplicates that name the existing model, the class view's count, the
// Generate panel's target change, and the cancel-ready request tracker.
import { test } from "node:test";
import assert from "node:assert/strict";
import { drawerRows, TOP_N, withinBudget } from "../src/lib/drawer";
import { epochMismatch, epochsText, epochsTrained } from "../src/lib/epochs";
import { alignPair, specChanges, specLayerSignature } from "../src/lib/align";
import { candidateDuplicate, duplicateId, errorDuplicate, groupDuplicates, resolveDuplicate, saysDuplicate } from "../src/lib/duplicate";
import { emptyFilters, filterIds } from "../src/lib/filters";
import { sortModels } from "../src/lib/sort";
import { classesScopeText, meanPerClass, withPerClass } from "../src/views/classes";
import { targetChangeNote } from "../src/views/generate";
import { handcraftedChanges } from "../src/views/editor";
import { cancellable, trackedText } from "../src/views/tracker";
import { ApiError, RemapClient } from "../src/client";
import type { Candidate, EnqueueResponse, Layer, ModelSummary, QueueRequest, Spec, State } from "../src/types";

function model(id: string, over: Partial<ModelSummary> = {}): ModelSummary {
  return {
    id, run: id, parent: null, origin: "initial", changes: [], status: { state: "done", epoch: 10, epochs: 10, reason: null }, params: 1000, depth: 1,
    spec_hash: `h-${id}`, train_accuracy: 0.9, val_accuracy: 0.8, val_loss: 0.5, per_class_accuracy: null, glyph: [], created: "2025-01-01T00:00:00Z", wall_time: 1, ...over,
  };
}
const st = (state: State, epoch = 10, epochs = 10) => ({ state, epoch, epochs, reason: null });

// ---------------------------------------------------------------- drawer

test("Top 25 finished lists only finished models that pass the filters and fit the budget", () => {
  const models: ModelSummary[] = [];
  for (let i = 0; i < 40; i++) models.push(model(`m${i}`, { val_accuracy: 0.5 + i / 100, params: 1000 * (i + 1), origin: i % 2 ? "variation" : "initial" }));
  models.push(model("running", { status: st("running", 3), val_accuracy: 0.99 }));
  const f = { ...emptyFilters(), origins: ["initial" as const] };
  const visible = filterIds(models, f);
  const top = drawerRows("top", models, { visible, budget: 30_000, collected: new Set() });
  assert.ok(top.rows.length > 0 && top.rows.length <= TOP_N);
  for (const m of top.rows) {
    assert.equal(m.origin, "initial", `${m.id} is hidden by the origin filter`);
    assert.ok(m.params <= 30_000, `${m.id} is over the budget`);
    assert.equal(m.status.state, "done");
  }
  // The most accurate of those that pass: m28 (initial, 29k params) comes first, m38 (39k) is over budget.
  assert.equal(sortModels(top.rows, "val_accuracy", "desc")[0].id, "m28");
  assert.equal(top.hiddenByFilters, 20);
  assert.equal(top.overBudget, 5); // m30, m32, ..., m38
  // No filter, no budget: the 25 most accurate finished models, as before.
  const plain = drawerRows("top", models, { visible: null, budget: null, collected: new Set() });
  assert.deepEqual(new Set(plain.rows.map((m) => m.id)), new Set(models.slice(15, 40).map((m) => m.id)));
  assert.equal(plain.hiddenByFilters + plain.overBudget, 0);
});

test("All honours the filters; Selected & pinned lists what was collected", () => {
  const models = [model("a", { params: 10 }), model("b", { params: 500 }), model("c", { params: 50 })];
  const all = drawerRows("all", models, { visible: new Set(["a", "c"]), budget: 100, collected: new Set() });
  assert.deepEqual(all.rows.map((m) => m.id), ["a", "c"]);
  assert.equal(all.hiddenByFilters, 1);
  const col = drawerRows("collected", models, { visible: new Set(["a"]), budget: 1, collected: new Set(["b", "c"]) });
  assert.deepEqual(col.rows.map((m) => m.id), ["b", "c"]);
  assert.ok(withinBudget(models[0], 10) && !withinBudget(models[1], 499) && withinBudget(models[1], null));
});

// ---------------------------------------------------------------- epochs

test("epochs trained: the server's figure, else the status's epoch; text by state", () => {
  assert.equal(epochsTrained(model("a", { epochs_trained: 7, status: st("failed", 0, 10) })), 7);
  assert.equal(epochsTrained(model("a", { status: st("cancelled", 4, 10) })), 4);
  assert.equal(epochsText(model("a", { epochs_trained: 1 })), "1 epoch");
  assert.equal(epochsText(model("a", { epochs_trained: 30, status: st("done", 30, 30) })), "30 epochs");
  assert.equal(epochsText(model("a", { epochs_trained: 3, status: st("running", 3, 20) })), "3 of 20 epochs so far");
  assert.equal(epochsText(model("a", { status: st("untrained", 0, 0) })), "not trained");
});

test("Δ parent warns when parent and child trained for different epochs", () => {
  const parent = model("p", { epochs_trained: 10 });
  const same = model("c", { parent: "p", epochs_trained: 10 });
  const longer = model("d", { parent: "p", epochs_trained: 30, status: st("done", 30, 30) });
  assert.equal(epochMismatch(same, parent), null);
  const w = epochMismatch(longer, parent);
  assert.ok(w && w.includes("10 epochs") && w.includes("30") && w.includes("p"), String(w));
  assert.equal(epochMismatch(longer, undefined), null, "no parent, no warning");
  assert.equal(epochMismatch(model("e", { parent: "p", epochs_trained: 2, status: st("running", 2, 30) }), parent), null, "only between finished runs");
  // Sorting by epochs puts untrained models last.
  const sorted = sortModels([model("u", { status: st("untrained", 0, 0) }), longer, same], "epochs", "desc");
  assert.deepEqual(sorted.map((m) => m.id), ["d", "c", "u"]);
});

// ---------------------------------------------------------------- hand-crafted change lists

const conv = (f: number, k = 3): Layer => ({ type: "conv2d", filters: f, kernel_size: k });
const relu: Layer = { type: "activation", fn: "relu" };
const pool: Layer = { type: "maxpool2d", pool_size: 2 };
const dense = (u: number): Layer => ({ type: "dense", units: u });

test("a hand-crafted child's changes come from the comparison's alignment", () => {
  const parent = [conv(16), relu, pool, dense(32)];
  assert.deepEqual(specChanges(parent, parent), []);
  assert.deepEqual(specChanges(parent, [conv(32), relu, pool, dense(32)]), ["layer 0 conv2d: filters 16 → 32"]);
  assert.deepEqual(specChanges(parent, [conv(16), pool, dense(32)]), ["removed layer 1 activation (fn relu)"]);
  assert.deepEqual(specChanges(parent, [conv(16), relu, { type: "dropout", rate: 0.5 }, pool, dense(32)]), ["inserted dropout (rate 0.5) after layer 1"]);
  // Which of two equal neighbours is "the new one" is the alignment's choice; the count is not.
  assert.equal(specChanges(parent, [conv(16), relu, relu, pool, dense(32)]).length, 1);
  assert.deepEqual(specChanges(parent, [relu, ...parent]), ["inserted activation (fn relu) at the start"]);
  const replaced = specChanges(parent, [conv(16), relu, { type: "avgpool2d", pool_size: 2 }, dense(32)]);
  assert.deepEqual(replaced, ["replaced layer 2 maxpool2d with avgpool2d (pool_size 2)"]);
  // The same alignment compare draws: the matched layers are the ones left unmentioned.
  const child = [conv(16, 5), relu, dense(32)];
  const a = alignPair(parent.map((l, i) => specLayerSignature(l, i)), child.map((l, i) => specLayerSignature(l, i)));
  assert.deepEqual(a.match, [0, 1, null, 2]);
  assert.deepEqual(specChanges(parent, child), ["layer 0 conv2d: kernel_size 3 → 5", "removed layer 2 maxpool2d (pool_size 2)"]);
  // A new connection (schema 2) is a change of what the layer reads.
  const skip = [conv(16), relu, { type: "add", inputs: [0, 1] } as Layer];
  const moved = [conv(16), relu, { type: "add", inputs: [-1, 1] } as Layer];
  assert.deepEqual(specChanges(skip, moved), ["layer 2 add: reads 2 back + 1 back → the input + 1 back"]);
});

test("the editor records the change list (within the server's limits) with a hand-crafted child", () => {
  const spec = (layers: Layer[]): Spec => ({ schema: 1, input: { shape: [1, 8, 8], num_classes: 10 }, layers });
  assert.deepEqual(handcraftedChanges(spec([dense(64)]), spec([dense(128)])), ["layer 0 dense: units 64 → 128"]);
  const many = handcraftedChanges(spec([]), spec(Array.from({ length: 150 }, (_, i) => dense(i + 1))));
  assert.equal(many.length, 100);
  assert.match(many[99], /and 51 more changes/);
});

// ---------------------------------------------------------------- duplicates

const cand = (over: Partial<Candidate>): Candidate => ({ key: "k", parent: "p", spec: { schema: 1, input: { shape: [1, 8, 8], num_classes: 10 }, layers: [] }, params: 1, changes: [], valid: false, reason: null, glyph: [], ...over });

test("a duplicate candidate names the existing model: duplicate_of, the parent, or the same spec hash", () => {
  const models = [model("p", { run: "p" }), model("v-1", { run: "runs/v-1", spec_hash: "abc" })];
  assert.equal(candidateDuplicate(cand({ duplicate_of: "v-1", reason: "duplicate of v-1" }), models)?.id, "v-1");
  assert.equal(candidateDuplicate(cand({ duplicate_of: { run: "runs/v-1" }, reason: "x" }), models)?.id, "v-1");
  assert.equal(candidateDuplicate(cand({ reason: "same model as the parent" }), models)?.id, "p");
  assert.equal(candidateDuplicate(cand({ key: "abc", reason: "same model as an existing model" }), models)?.id, "v-1");
  assert.equal(candidateDuplicate(cand({ key: "zzz", reason: "same model as removing layer 3" }), models), null, "a sibling candidate is no model");
  assert.equal(candidateDuplicate(cand({ key: "abc", reason: "over budget" }), models), null, "not a duplicate message");
  assert.ok(saysDuplicate("duplicate of an existing model") && !saysDuplicate("layer 3: bad shape"));
});

test("a refused duplicate (enqueue's 409) names the existing model from duplicate_of or the message", async () => {
  const models = [model("init-s0-003"), model("init-s0-0031")];
  assert.equal(errorDuplicate("x", "init-s0-003", models)?.id, "init-s0-003");
  assert.equal(errorDuplicate("item 0: same model as init-s0-003 (a relu after a relu changes nothing)", null, models)?.id, "init-s0-003");
  assert.equal(errorDuplicate("item 0: duplicates init-s0-0031.", null, models)?.id, "init-s0-0031", "the longest id that matches");
  assert.equal(errorDuplicate("epochs must be at most 500", null, models), null);
  assert.equal(resolveDuplicate("gone", models), null);
  assert.equal(duplicateId({ id: "gone" }), "gone");
  // The client keeps the body's duplicate_of on the thrown error.
  // The body the plugin sends (remap_tb/search_routes.py DuplicateError): a 409.
  const error = "items[0]: the same model as init-s0-003 once no-ops are removed (layer 3 activation relu removed: its input (layer 2 activation relu) is never negative), so training it would repeat that model. Change the model, or enqueue init-s0-003's own spec to train it again.";
  const client = new RemapClient(async () => new Response(JSON.stringify({ error, duplicate_of: "init-s0-003", item: 0 }), { status: 409 }));
  await assert.rejects(client.enqueue({ items: [] }), (e: unknown) => e instanceof ApiError && e.duplicateOf === "init-s0-003" && e.status === 409 && errorDuplicate(e.message, e.duplicateOf, models)?.id === "init-s0-003");
  assert.equal(errorDuplicate(error, null, models)?.id, "init-s0-003", "the message alone names it too");
  const plain = new RemapClient(async () => new Response(JSON.stringify({ error: "bad" }), { status: 400 }));
  await assert.rejects(plain.enqueue({ items: [] }), (e: unknown) => e instanceof ApiError && e.duplicateOf === null);
});

test("duplicates lists (enqueue per item, generate with a count) are summed per model", () => {
  const enqueued: EnqueueResponse["duplicates"] = [{ item: 0, duplicate_of: "v-1" }, { item: 1, duplicate_of: null }, { item: 2, duplicate_of: "v-2" }, { item: 3, duplicate_of: "v-1" }];
  assert.deepEqual(groupDuplicates(enqueued), [
    { id: "v-1", count: 2 },
    { id: "v-2", count: 1 },
  ]);
  assert.deepEqual(groupDuplicates([{ duplicate_of: "p", count: 3 }]), [{ id: "p", count: 3 }]);
  assert.deepEqual(groupDuplicates(undefined), [], "servers before issue 11 send no duplicates");
});

// ---------------------------------------------------------------- classes

test("the class view says how many models it is over, leaving out those without per-class data", () => {
  const models = [
    model("a", { per_class_accuracy: [1, 0.5] }),
    model("b", { per_class_accuracy: [0, 0.5] }),
    model("r", { per_class_accuracy: null, status: st("running", 1) }),
    model("q", { per_class_accuracy: null, status: st("queued", 0) }),
  ];
  assert.deepEqual(withPerClass(models).map((m) => m.id), ["a", "b"]);
  assert.equal(classesScopeText(models, "all 4 models"), "over 2 of all 4 models (2 without per-class accuracy: not finished left out)");
  assert.equal(classesScopeText(models.slice(0, 2), "2 selected models"), "over 2 selected models");
  assert.match(classesScopeText([models[0], model("d", { per_class_accuracy: null })], "all 2 models"), /^over 1 of all 2 models \(1 without per-class accuracy left out\)$/);
  assert.deepEqual(meanPerClass(models, 2).mean, [0.5, 0.5], "the mean is over the two with data");
});

// ---------------------------------------------------------------- generate target, tracker

test("the Generate panel says when its target changes", () => {
  assert.equal(targetChangeNote([], ["a"], 0), null, "a first target is no change");
  assert.equal(targetChangeNote(["a"], ["a"], 3), null);
  assert.equal(targetChangeNote(["a"], [], 3), null);
  assert.equal(targetChangeNote(["a"], ["b"], 0), "Target changed to b (was a).");
  const n = targetChangeNote(["a"], ["b"], 4)!;
  assert.match(n, /The 4 candidates below were made around a: preview again/);
  assert.match(targetChangeNote(["a"], ["b", "c", "d", "e"], 0)!, /4 models \(b, c, d…\)/);
});

test("a just-enqueued request is cancel-ready before its first epoch", () => {
  const q = (state: QueueRequest["state"], epoch = 0, attempts = 0): QueueRequest => ({ id: "r", state, origin: "variation", parent: "p", changes: [], epoch, epochs: 10, attempts, priority: 0, error: null, params: 1, enqueued: "", worker: null });
  assert.ok(cancellable("sent") && cancellable("pending") && cancellable("running"));
  assert.ok(!cancellable("done") && !cancellable("cancelled") && !cancellable("failed"));
  assert.equal(trackedText("sent", undefined), "waiting for a worker");
  assert.equal(trackedText("running", q("running", 0)), "starting (before the first epoch)");
  assert.equal(trackedText("running", q("running", 3)), "epoch 3 of 10");
  assert.equal(trackedText("pending", q("pending", 0, 1)), "waiting to be trained again");
  assert.equal(trackedText("failed", { ...q("failed"), error: "out of memory" }), "failed: out of memory");
});
