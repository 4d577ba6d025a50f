// Issue 10 in the dashboard (pure parts): the predicted-accuracy bar (geometry and
// clamping), the candidates' order, the Suggest and init request bodies, and the
// inspector's "initialised from" line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cleanPrediction, formatEi, formatPrediction, predictionBar, predictionDomain, sortCandidates, surrogateNote, xOf } from "../src/lib/predict";
import { candidateItems, defaultEpochsNote, defaultInit, handcraftedItem, initSummary, itemInit } from "../src/lib/inherit";
import { buildGenerateRequest, DEFAULT_CHANGE_TYPES, MAX_SUGGEST, parseGenerateForm, parseSuggest, SUGGEST_K, SUGGEST_POOL, type GenerateChoice } from "../src/views/generate";
import { enqueueKey } from "../src/lib/enqueue";
import type { Candidate, Prediction, Spec } from "../src/types";

const SPEC: Spec = { schema: 1, input: { shape: [1, 8, 8], num_classes: 10 }, layers: [{ type: "conv2d", filters: 4, kernel_size: 3 }] };

function cand(key: string, predicted: Prediction | null | undefined, over: Partial<Candidate> = {}): Candidate {
  return { key, parent: "run-a", spec: SPEC, params: 1000, changes: [`change ${key}`], valid: true, reason: null, glyph: [], predicted, ...over };
}
const pred = (accuracy: number, std: number, ei = 0): Prediction => ({ accuracy, std, ei });

// ------------------------------------------------------------------ bar geometry

test("prediction domain: mean ± std and the best, widened to 5 pp steps within [0, 1]", () => {
  assert.deepEqual(predictionDomain([]), [0, 1]);
  assert.deepEqual(predictionDomain([null, undefined]), [0, 1]);
  assert.deepEqual(predictionDomain([pred(0.9, 0.01), pred(0.95, 0.02)]), [0.85, 1]);
  assert.deepEqual(predictionDomain([pred(0.62, 0.03), pred(0.71, 0.01)]), [0.55, 0.75]);
  // the best finished model widens it
  assert.deepEqual(predictionDomain([pred(0.62, 0.03)], 0.81), [0.55, 0.85]);
  // a point prediction still gets a 5 pp wide scale; exact multiples stay put
  assert.deepEqual(predictionDomain([pred(0.5, 0)]), [0.5, 0.55]);
  assert.deepEqual(predictionDomain([pred(1, 0)]), [0.95, 1]);
  // never outside [0, 1], whatever the std
  assert.deepEqual(predictionDomain([pred(0.02, 0.5), pred(0.99, 0.5)]), [0, 1]);
  // NaN means are ignored; a negative std counts as its size
  assert.deepEqual(predictionDomain([pred(NaN, 0.1), pred(0.8, -0.02)]), [0.75, 0.85]);
});

test("prediction bar: bar to the mean, whisker over mean ± std, clamped to the track", () => {
  const g = predictionBar(pred(0.9, 0.02), [0.8, 1], 100, 0.95);
  assert.ok(Math.abs(g.bar - 50) < 1e-9 && Math.abs(g.lo - 40) < 1e-9 && Math.abs(g.hi - 60) < 1e-9, JSON.stringify(g));
  assert.ok(g.best !== null && Math.abs(g.best - 75) < 1e-9);
  assert.equal(g.clippedLo, false);
  assert.equal(g.clippedHi, false);
  // a whisker past either end is clamped and marked clipped
  const wide = predictionBar(pred(0.85, 0.2), [0.8, 1], 100);
  assert.equal(wide.lo, 0);
  assert.equal(wide.hi, 100);
  assert.ok(wide.clippedLo && wide.clippedHi);
  assert.equal(wide.best, null);
  // a mean outside the domain: the bar is empty or full, never negative or over the track
  assert.equal(predictionBar(pred(0.5, 0), [0.8, 1], 100).bar, 0);
  assert.equal(predictionBar(pred(1.2, 0), [0.8, 1], 100).bar, 100);
  // a negative std is its size; NaN std draws no whisker
  const neg = predictionBar(pred(0.9, -0.02), [0.8, 1], 100);
  assert.ok(Math.abs(neg.lo - 40) < 1e-9 && Math.abs(neg.hi - 60) < 1e-9);
  const nan = predictionBar(pred(0.9, NaN), [0.8, 1], 100);
  assert.equal(nan.lo, nan.hi);
  // degenerate domains and widths never give NaN
  assert.equal(xOf(0.5, [0.5, 0.5], 100), 0);
  assert.equal(xOf(0.5, [0, 1], 0), 0);
  assert.equal(xOf(NaN, [0, 1], 100), 0);
});

test("prediction text: mean ± std in percent and expected improvement in points", () => {
  assert.equal(formatPrediction(pred(0.9412, 0.0123)), "94.1% ± 1.2 pp");
  assert.equal(formatPrediction(null), "no prediction");
  assert.equal(formatPrediction(pred(NaN, 0.1)), "no prediction");
  assert.equal(formatEi(pred(0.9, 0.01, 0.0084)), "EI 0.84 pp");
  assert.equal(formatEi(pred(0.9, 0.01, 0)), "EI 0.00 pp");
  assert.equal(formatEi(pred(0.9, 0.01, 0.00001)), "EI <0.01 pp");
  assert.equal(formatEi(pred(0.9, 0.01, 0.123)), "EI 12.3 pp");
  assert.equal(formatEi(undefined), "");
  assert.deepEqual(cleanPrediction(pred(0.9, -0.1, -0.5)), { accuracy: 0.9, std: 0.1, ei: 0 });
  assert.equal(cleanPrediction(undefined), null);
});

// ------------------------------------------------------------------ order

test("candidate order: as generated, by predicted accuracy, by expected improvement", () => {
  const cs = [
    cand("a", pred(0.8, 0.01, 0.001)),
    cand("b", null),
    cand("c", pred(0.9, 0.05, 0.0005)),
    cand("d", pred(0.85, 0.1, 0.02)),
    cand("e", pred(0.9, 0.01, 0.0005)),
    cand("f", pred(0.99, 0, 0.5), { valid: false, reason: "invalid" }),
  ];
  const keys = (xs: Candidate[]) => xs.map((c) => c.key).join("");
  assert.equal(keys(sortCandidates(cs, "generated")), "abcdef");
  // best first, ties in the server's order, no prediction last, invalid after valid
  assert.equal(keys(sortCandidates(cs, "predicted")), "cedabf");
  assert.equal(keys(sortCandidates(cs, "ei")), "daceb" + "f");
  // the input is left alone
  assert.equal(keys(cs), "abcdef");
  // candidates from an older server (no `predicted` at all) keep their order
  const old = [cand("x", undefined), cand("y", undefined)];
  assert.equal(keys(sortCandidates(old, "ei")), "xy");
});

test("surrogate note: why there is no prediction yet, or what the predictions come from", () => {
  assert.equal(surrogateNote(undefined), null);
  const notReady = surrogateNote({ n_models: 5, ready: false, reason: "5 finished models; the surrogate needs 8", best: null });
  assert.deepEqual(notReady, { ready: false, text: "No predicted accuracy yet: 5 finished models; the surrogate needs 8." });
  assert.match(surrogateNote({ n_models: 3, ready: false, reason: null, best: null })!.text, /needs 8 finished models \(3 so far\)/);
  const ready = surrogateNote({ n_models: 12, ready: true, reason: null, best: 0.9512 });
  assert.deepEqual(ready, { ready: true, text: "Predicted accuracy: a Gaussian process over 12 finished models; the best finished within the budget: 95.1%." });
});

// ------------------------------------------------------------------ request bodies

const RAW = { count: "20", maxChanges: "2", seed: "7", minParams: "", maxParams: "50000", maxDepth: "", epochs: "" };
function choice(over: Partial<GenerateChoice> = {}): GenerateChoice {
  return {
    parents: ["run-a"],
    kind: "variation",
    layers: null,
    form: parseGenerateForm(RAW),
    changeTypes: [...DEFAULT_CHANGE_TYPES],
    blocks: false,
    types: { all: ["conv2d"], ticked: ["conv2d"] },
    ...over,
  };
}

test("generate body: no sort or suggest unless asked (the body is as before)", () => {
  const plain = buildGenerateRequest(choice());
  assert.ok(typeof plain !== "string");
  assert.deepEqual(plain.options, { count: 20, max_changes: 2, change_types: DEFAULT_CHANGE_TYPES, seed: 7 });
  assert.deepEqual(buildGenerateRequest(choice({ sort: null, suggest: null })), plain);
});

test("generate body: sort by predicted accuracy or expected improvement", () => {
  const r = buildGenerateRequest(choice({ sort: "ei" }));
  assert.ok(typeof r !== "string");
  assert.equal(r.options?.sort, "ei");
  assert.equal(r.options?.count, 20);
  const a = buildGenerateRequest(choice({ kind: "ablation", sort: "predicted" }));
  assert.ok(typeof a !== "string");
  assert.deepEqual(a.options, { sort: "predicted" });
});

test("generate body: Suggest asks for the k best of a larger pool, under the same constraints", () => {
  const r = buildGenerateRequest(choice({ suggest: { k: 3, count: 50 } }));
  assert.ok(typeof r !== "string");
  assert.deepEqual(r.options, { count: 50, max_changes: 2, change_types: DEFAULT_CHANGE_TYPES, seed: 7, suggest: 3 });
  assert.deepEqual(r.constraints, { max_params: 50000 });
  // ablation: no count (one child per layer), just the k
  const a = buildGenerateRequest(choice({ kind: "ablation", suggest: { k: 2, count: 50 } }));
  assert.ok(typeof a !== "string");
  assert.deepEqual(a.options, { suggest: 2 });
  // a region: several parents
  const region = buildGenerateRequest(choice({ parents: ["a", "b", "c"], suggest: { k: 5, count: 100 } }));
  assert.ok(typeof region !== "string");
  assert.deepEqual(region.parents, ["a", "b", "c"]);
  assert.equal(region.options?.suggest, 5);
  assert.equal(region.options?.count, 100);
});

test("suggest fields: k 1..20 (default 3) of a pool 1..100 (default 50)", () => {
  assert.equal(SUGGEST_K, 3);
  assert.equal(SUGGEST_POOL, 50);
  assert.equal(MAX_SUGGEST, 20);
  assert.deepEqual(parseSuggest("", "", true), { ok: true, value: { k: 3, count: 50 } });
  assert.deepEqual(parseSuggest("5", "80", true), { ok: true, value: { k: 5, count: 80 } });
  assert.deepEqual(parseSuggest("5", "abc", false), { ok: true, value: { k: 5, count: 50 } }); // ablation: the pool is not used
  const err = (k: string, pool: string) => {
    const r = parseSuggest(k, pool, true);
    return r.ok ? "" : r.error;
  };
  assert.match(err("0", "50"), /^Suggest: enter a whole number from 1 to 20/);
  assert.match(err("21", "50"), /^Suggest:/);
  assert.match(err("2.5", "50"), /^Suggest:/);
  assert.match(err("3", "101"), /^Suggest: generated: .*1 to 100/);
  assert.match(err("10", "5"), /^Suggest: the 10 best cannot be picked from 5 generated/);
});

test("enqueue items: init as chosen (scratch for a parent known not to have finished), suggested flagged", () => {
  const cs = [cand("a", pred(0.9, 0.01), { suggested: true }), cand("b", pred(0.8, 0.01), { parent: "run-b" }), cand("c", null, { parent: "run-c" })];
  const states = new Map([["run-a", "done" as const], ["run-b", "running" as const]]);
  const items = candidateItems(cs, "variation", "parent", (run) => states.get(run));
  assert.deepEqual(items, [
    { spec: SPEC, parent: "run-a", origin: "variation", changes: ["change a"], init: "parent", suggested: true },
    { spec: SPEC, parent: "run-b", origin: "variation", changes: ["change b"], init: "scratch" },
    { spec: SPEC, parent: "run-c", origin: "variation", changes: ["change c"], init: "parent" }, // unknown here: the server decides
  ]);
  const scratch = candidateItems(cs, "ablation", "scratch");
  assert.deepEqual(scratch.map((i) => i.init), ["scratch", "scratch", "scratch"]);
  assert.deepEqual(scratch.map((i) => i.suggested), [true, undefined, undefined]);
  assert.ok(!("suggested" in scratch[1]));
  // init is part of the idempotency key: switching it queues a new request
  assert.notEqual(enqueueKey({ items: items.slice(0, 1) }, "n"), enqueueKey({ items: [{ ...items[0], init: "scratch" }] }, "n"));
});

test("init default and the editor's item", () => {
  assert.equal(defaultInit(["done"]), "parent");
  assert.equal(defaultInit(["running"]), "scratch");
  assert.equal(defaultInit(["failed", "done"]), "parent");
  assert.equal(defaultInit([]), "scratch");
  assert.equal(itemInit("parent", "done"), "parent");
  assert.equal(itemInit("parent", "cancelled"), "scratch");
  assert.equal(itemInit("scratch", "done"), "scratch");
  assert.deepEqual(handcraftedItem(SPEC, "run-a", "parent", "done"), { spec: SPEC, parent: "run-a", origin: "handcrafted", init: "parent" });
  assert.deepEqual(handcraftedItem(SPEC, "run-a", "scratch", "done"), { spec: SPEC, parent: "run-a", origin: "handcrafted", init: "scratch" });
  assert.deepEqual(handcraftedItem(SPEC, null, "parent", null), { spec: SPEC, parent: null, origin: "handcrafted" });
});

test("inspector line: initialised from the parent run, trained from scratch, or nothing", () => {
  assert.deepEqual(initSummary({ from: "init-s0-022", layers: 7, of: 9, mapping: [[0, 0]] }, "variation", "done"), { from: "init-s0-022", text: "initialised from init-s0-022: 7 of 9 layers" });
  assert.deepEqual(initSummary({ from: "p", layers: 1, of: 1, mapping: [] }, "ablation", "running"), { from: "p", text: "initialised from p: 1 of 1 layer" });
  const refitted = [{ layer: 2, from: 2, error: [0.9, 0.1] as [number, number] }, { layer: "classifier" as const, from: "classifier" as const, error: [3, 0.2] as [number, number] }];
  assert.deepEqual(initSummary({ from: "p", layers: 2, of: 3, mapping: [[0, 0]], refitted }, "ablation", "done"), { from: "p", text: "initialised from p: 2 of 3 layers; 2 refitted to its outputs" });
  assert.deepEqual(initSummary({ from: "p", layers: 2, of: 3, mapping: [[0, 0]], refitted: [] }, "ablation", "done")?.text, "initialised from p: 2 of 3 layers");
  assert.deepEqual(initSummary(null, "initial", "done"), { from: null, text: "trained from scratch" });
  assert.equal(initSummary(undefined, "variation", "done"), null); // an older server
  assert.equal(initSummary(null, "external", "done"), null); // trained outside REMAP
  assert.equal(initSummary(null, "variation", "queued"), null);
});

test("the note beside an empty Epochs field: a third of the parent's epochs only when children start from its weights", () => {
  assert.match(defaultEpochsNote("parent", false, true), /third of the parent's epochs/);
  assert.equal(defaultEpochsNote("parent", true, true), ""); // a typed number applies to every child
  assert.equal(defaultEpochsNote("scratch", false, true), "");
  assert.equal(defaultEpochsNote("parent", false, false), ""); // no finished parent: nothing to start from
});
