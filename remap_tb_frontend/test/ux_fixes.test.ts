// Fixes from a new user's session against real TensorBoard: idempotency keys, export
// links and messages by training state, ranking only finished models, projection notes,
// form limits, budget input, cancel feedback, overlapping points, Escape in fields.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EnqueueHistory, enqueueKey, enqueueMessage, stableJson } from "../src/lib/enqueue";
import { exportLinks, missingResultText, positionNotes, weightsUnavailable } from "../src/lib/status";
import { deltaVsParent, topModels } from "../src/lib/sort";
import { explainServerError, intField } from "../src/lib/form";
import { clampBudget, MAX_BUDGET, parseBudget } from "../src/lib/budget";
import { chooseFromStack } from "../src/lib/pick";
import { isEditableTarget } from "../src/lib/dom";
import { parseGenerateForm, MAX_CHILDREN, MAX_CHANGES } from "../src/views/generate";
import { pruneStopping } from "../src/views/queue";
import { budgetAfterLoad } from "../src/app";
import type { EnqueueRequest, ModelSummary, QueueRequest, State, Status } from "../src/types";

const spec = { schema: 1 as const, input: { shape: [1, 8, 8], num_classes: 10 }, layers: [{ type: "dense", units: 16 }] };
const body = (epochs?: number): EnqueueRequest => ({ items: [{ spec, parent: null, origin: "handcrafted" }], epochs, experiment: "e1" });
const status = (state: State, epoch = 195, epochs = 200): Status => ({ state, epoch, epochs, reason: null });

function model(id: string, over: Partial<ModelSummary> = {}): ModelSummary {
  return {
    id, run: id, parent: null, origin: "initial", changes: [], status: status("done", 10, 10), params: 1000, depth: 1, spec_hash: id,
    train_accuracy: 0.9, val_accuracy: 0.8, val_loss: 0.5, per_class_accuracy: null, glyph: [], created: "2025-01-01T00:00:00Z", wall_time: 1, ...over,
  };
}

test("enqueue key: the same body gives the same key, a changed body a new one", () => {
  const k2 = enqueueKey(body(2), "nonce");
  assert.equal(enqueueKey(body(2), "nonce"), k2);
  assert.notEqual(enqueueKey(body(3), "nonce"), k2, "changing the epochs must not reuse the key");
  assert.notEqual(enqueueKey(body(2), "other-page"), k2, "another page load gets other keys");
  assert.equal(enqueueKey({ ...body(2), client_key: "x" }, "nonce"), k2, "the body's own key is ignored");
  const reordered: EnqueueRequest = { experiment: "e1", epochs: 2, items: [{ origin: "handcrafted", parent: null, spec }] };
  assert.equal(enqueueKey(reordered, "nonce"), k2, "key order does not matter");
  const edited = { ...body(2), items: [{ spec: { ...spec, layers: [{ type: "dense", units: 17 }] }, parent: null, origin: "handcrafted" as const }] };
  assert.notEqual(enqueueKey(edited, "nonce"), k2);
  assert.ok(k2.length <= 200 && /^[\w-]+$/.test(k2));
  assert.equal(stableJson({ b: 1, a: [1, { d: undefined, c: null }] }), '{"a":[1,{"c":null}],"b":1}');
});

test("a repeated enqueue says 'already queued as <id>', not 'Queued'", () => {
  const h = new EnqueueHistory("n");
  const first = h.note(["m1"]);
  assert.deepEqual(first, { fresh: ["m1"], repeated: [] });
  assert.match(enqueueMessage(["m1"], first), /^Queued m1 for training/);
  const again = h.note(["m1"]);
  assert.deepEqual(again, { fresh: [], repeated: ["m1"] });
  assert.match(enqueueMessage(["m1"], again), /^Already queued as m1/);
  assert.match(enqueueMessage(["a", "b"], h.note(["a", "b"])), /^Queued 2 models/);
});

test("trained weights only for a done model; spec and source always; download names", () => {
  const done = exportLinks("var-01", status("done"));
  assert.deepEqual(done.map((l) => [l.format, l.filename, l.disabled]), [
    ["json", "var-01.json", null],
    ["pytorch", "var-01.py", null],
    ["state_dict", "var-01.pt", null],
  ]);
  const cancelled = exportLinks("var-01", status("cancelled"));
  assert.equal(cancelled[0].disabled, null);
  assert.equal(cancelled[1].disabled, null);
  assert.equal(cancelled[2].disabled, "no trained weights: the run was cancelled");
  assert.equal(weightsUnavailable(status("diverged")), "no trained weights: the run diverged");
  assert.match(weightsUnavailable(status("running"))!, /yet: the run is still training \(epoch 195 of 200\)/);
  assert.equal(exportLinks("a/b c", status("done"))[0].filename, "a_b_c.json");
});

test("missing per-class accuracy is explained by the state", () => {
  assert.match(missingResultText("per-class accuracy", status("running", 3, 10)), /not finished yet \(epoch 3 of 10\)/);
  const c = missingResultText("per-class accuracy", status("cancelled"));
  assert.match(c, /cancelled at epoch 195 of 200; per-class accuracy is computed when training finishes/);
  assert.doesNotMatch(c, /has not finished an epoch/);
  assert.match(missingResultText("per-class accuracy", status("failed", 2, 5)), /failed at epoch 2 of 5/);
  assert.match(missingResultText("confusion matrix", status("queued", 0, 5)), /not started/);
});

test("ranking: Top N and Δ parent only count finished models", () => {
  const parent = model("p", { val_accuracy: 0.9 });
  const ms = [
    parent,
    model("cancelled", { val_accuracy: 0.983, status: status("cancelled"), parent: "p" }),
    model("running", { val_accuracy: 0.99, status: status("running") }),
    model("done", { val_accuracy: 0.95, parent: "p" }),
  ];
  assert.deepEqual(topModels(ms, 25).map((m) => m.id), ["done", "p"]);
  const byId = new Map(ms.map((m) => [m.id, m]));
  assert.equal(deltaVsParent(ms[1], byId), null);
  assert.ok(Math.abs(deltaVsParent(ms[3], byId)! - 0.05) < 1e-9);
  const cancelledParent = new Map(byId).set("p", { ...parent, status: status("cancelled") });
  assert.equal(deltaVsParent(ms[3], cancelledParent), null);
});

test("projection notes: computing, not 'no predictions', for finished models", () => {
  const done = Array.from({ length: 30 }, (_, i) => model(`m${i}`));
  const notes = positionNotes(done, new Map(), "posthoc", true);
  assert.deepEqual(notes, ["30 waiting for the layout (computing the layout…)"]);
  assert.ok(!notes.join(" ").includes("no predictions"));
  const mixed = [...done.slice(0, 2), model("r", { status: status("running") }), model("c", { status: status("cancelled") })];
  const pos = new Map([["m0", { x: 0, y: 0 }]]);
  assert.deepEqual(positionNotes(mixed, pos, "posthoc", false), ["1 without a position yet", "2 without predictions (not finished)"]);
  assert.deepEqual(positionNotes(mixed, pos, "structural", true), ["3 waiting for the layout (computing the layout…)"]);
  assert.deepEqual(positionNotes(done.slice(0, 1), new Map([["m0", { x: 0, y: 0 }]]), "structural", true), ["updating the layout…"]);
  assert.deepEqual(positionNotes(done.slice(0, 1), new Map([["m0", { x: 0, y: 0 }]]), "structural", false), []);
});

test("generate form: the server's limits, checked with the field names the user sees", () => {
  const raw = { count: "5", maxChanges: "3", seed: "0", minParams: "", maxParams: "50000", maxDepth: "", epochs: "" };
  const ok = parseGenerateForm(raw);
  assert.ok(ok.ok);
  assert.deepEqual(ok.ok && ok.value, { count: 5, maxChanges: 3, seed: 0, minParams: null, maxParams: 50000, maxDepth: null, epochs: null });
  assert.equal(MAX_CHILDREN, 100);
  assert.equal(MAX_CHANGES, 10);
  const bad = (over: Partial<typeof raw>) => {
    const r = parseGenerateForm({ ...raw, ...over });
    return r.ok ? "" : r.error;
  };
  assert.match(bad({ count: "200" }), /^Children: enter a whole number from 1 to 100/);
  assert.match(bad({ count: "0" }), /^Children:/);
  assert.match(bad({ maxChanges: "11" }), /^Changes per child: .*1 to 10/);
  assert.match(bad({ minParams: "60000" }), /^Parameters: the minimum \(60,000\) is above the maximum \(50,000\)/);
  assert.match(bad({ epochs: "1.5" }), /^Epochs:/);
  assert.deepEqual(parseGenerateForm({ ...raw, count: "", maxChanges: "" }).ok, true);
  assert.deepEqual(intField("Seed", " 7 ", 0, null, 0), { ok: true, value: 7 });
});

test("server errors are prefixed with the field the user sees", () => {
  assert.equal(explainServerError("options.count must be an integer 1..100, got 200"), "Children: options.count must be an integer 1..100, got 200");
  assert.equal(explainServerError("options.max_changes must be an integer 1..10, got 20"), "Changes per child: options.max_changes must be an integer 1..10, got 20");
  assert.equal(explainServerError("constraints.min_params is larger than constraints.max_params"), "Parameters: constraints.min_params is larger than constraints.max_params");
  assert.equal(explainServerError("epochs must be an integer from 0 to 1000"), "Epochs: epochs must be an integer from 0 to 1000");
  assert.equal(explainServerError("no worker"), "no worker");
});

test("budget input: positive whole numbers, capped, and a chosen budget survives reloads", () => {
  assert.deepEqual(parseBudget(""), { ok: true, value: null, note: null });
  assert.deepEqual(parseBudget("1234.4"), { ok: true, value: 1234, note: null });
  const big = parseBudget("999999999999");
  assert.ok(big.ok && big.value === MAX_BUDGET && /capped/.test(big.note ?? ""));
  for (const t of ["-5", "0", "abc", "0.2"]) {
    const r = parseBudget(t);
    assert.ok(!r.ok && /positive whole number/.test(r.error), t);
  }
  assert.equal(clampBudget(5e12), MAX_BUDGET);
  assert.equal(clampBudget(0.2), 1);
  assert.equal(clampBudget(null), null);
  const params = Array.from({ length: 100 }, (_, i) => (i + 1) * 1000);
  assert.equal(budgetAfterLoad(null, false, params), 90000, "the default when the user chose nothing");
  assert.equal(budgetAfterLoad(12345, true, params), 12345, "a typed budget is kept");
  assert.equal(budgetAfterLoad(null, true, params), null, "a cleared budget stays cleared");
});

test("cancel feedback: 'stopping…' stays until the request changes state", () => {
  const r = (id: string, state: QueueRequest["state"]): QueueRequest => ({ id, state, origin: "variation", parent: null, changes: [], epoch: 1, epochs: 3, attempts: 1, priority: 0, error: null, params: 10, enqueued: "1", worker: null });
  const stopping = new Map([["a", "running"], ["b", "pending"], ["gone", "running"]]);
  pruneStopping(stopping, [r("a", "running"), r("b", "cancelled")]);
  assert.deepEqual([...stopping.keys()], ["a"]);
  pruneStopping(stopping, [r("a", "cancelled")]);
  assert.equal(stopping.size, 0);
});

test("overlapping points: clicks cycle, Shift-click adds the nearest unselected", () => {
  const stack = ["m3", "m1", "m2"]; // nearest first
  assert.equal(chooseFromStack([], null, new Set(), false), null);
  assert.equal(chooseFromStack(stack, null, new Set(), false), "m3");
  assert.equal(chooseFromStack(stack, "m3", new Set(), false), "m1");
  assert.equal(chooseFromStack(stack, "m1", new Set(), false), "m2");
  assert.equal(chooseFromStack(stack, "m2", new Set(), false), "m3", "wraps around");
  assert.equal(chooseFromStack(["m1"], "m1", new Set(), false), "m1");
  assert.equal(chooseFromStack(stack, "elsewhere", new Set(), false), "m3");
  assert.equal(chooseFromStack(stack, null, new Set(["m3"]), true), "m1");
  assert.equal(chooseFromStack(stack, null, new Set(["m3", "m1"]), true), "m2");
  assert.equal(chooseFromStack(stack, null, new Set(stack), true), "m3", "all selected: the nearest (toggles off)");
});

test("Escape in a text field is the field's, not the map's", () => {
  assert.equal(isEditableTarget({ tagName: "INPUT", type: "number" } as unknown as EventTarget), true);
  assert.equal(isEditableTarget({ tagName: "input", type: "text" } as unknown as EventTarget), true);
  assert.equal(isEditableTarget({ tagName: "SELECT" } as unknown as EventTarget), true);
  assert.equal(isEditableTarget({ tagName: "TEXTAREA" } as unknown as EventTarget), true);
  assert.equal(isEditableTarget({ tagName: "DIV", isContentEditable: true } as unknown as EventTarget), true);
  assert.equal(isEditableTarget({ tagName: "INPUT", type: "checkbox" } as unknown as EventTarget), false);
  assert.equal(isEditableTarget({ tagName: "CANVAS" } as unknown as EventTarget), false);
  assert.equal(isEditableTarget(null), false);
});
