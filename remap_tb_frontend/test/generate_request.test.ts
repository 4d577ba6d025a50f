// The body of POST generate that the Generate panel builds (pure function), with the
// schema 2 options: the skip change types (off by default) and the ablation's blocks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildGenerateRequest, CHANGE_TYPES, DEFAULT_CHANGE_TYPES, hasAddLayer, parseGenerateForm, type GenerateChoice } from "../src/views/generate";
import type { GlyphLayer } from "../src/types";

const RAW = { count: "5", maxChanges: "3", seed: "7", minParams: "", maxParams: "50000", maxDepth: "", epochs: "" };

function choice(over: Partial<GenerateChoice> = {}): GenerateChoice {
  return {
    parents: ["run-a"],
    kind: "variation",
    layers: { all: [0, 1, 2], ticked: [0, 1, 2] },
    form: parseGenerateForm(RAW),
    changeTypes: [...DEFAULT_CHANGE_TYPES],
    blocks: false,
    types: { all: ["conv2d", "dense", "add"], ticked: ["conv2d", "dense", "add"] },
    ...over,
  };
}

const layer = (index: number, type: string, extra: Partial<GlyphLayer> = {}): GlyphLayer => ({ index, type, output_shape: [8, 8, 8], params: 0, ...extra });

test("generate body: the defaults are today's (the first four change types, no blocks)", () => {
  assert.deepEqual(CHANGE_TYPES, ["replace", "reparameterise", "remove", "insert", "add_skip", "remove_skip"]);
  assert.deepEqual(DEFAULT_CHANGE_TYPES, ["replace", "reparameterise", "remove", "insert"]);
  assert.deepEqual(buildGenerateRequest(choice()), {
    parents: ["run-a"],
    kind: "variation",
    options: { count: 5, max_changes: 3, change_types: ["replace", "reparameterise", "remove", "insert"], seed: 7 },
    constraints: { max_params: 50000 },
  });
});

test("generate body: skip change types are sent in the form's order, alone or with others", () => {
  const only = buildGenerateRequest(choice({ changeTypes: ["add_skip"] }));
  assert.ok(typeof only !== "string");
  assert.deepEqual(only.options?.change_types, ["add_skip"]);
  const both = buildGenerateRequest(choice({ changeTypes: ["remove_skip", "replace", "add_skip"] }));
  assert.ok(typeof both !== "string");
  assert.deepEqual(both.options?.change_types, ["replace", "add_skip", "remove_skip"]);
  assert.equal(buildGenerateRequest(choice({ changeTypes: [] })), "Change types: tick at least one.");
  // blocks never goes with a variation (the server refuses it)
  const v = buildGenerateRequest(choice({ blocks: true }));
  assert.ok(typeof v !== "string" && !("blocks" in (v.options ?? {})));
});

test("generate body: ablation sends blocks only when asked, with the layer choice and constraints", () => {
  const plain = buildGenerateRequest(choice({ kind: "ablation" }));
  assert.deepEqual(plain, { parents: ["run-a"], kind: "ablation", options: {}, constraints: { max_params: 50000 } });
  const blocks = buildGenerateRequest(
    choice({
      kind: "ablation",
      blocks: true,
      changeTypes: [], // variation-only fields are not looked at
      layers: { all: [0, 1, 2], ticked: [1, 2] },
      form: parseGenerateForm({ ...RAW, count: "", maxChanges: "", seed: "", minParams: "10", maxDepth: "12" }),
      types: { all: ["conv2d", "dense", "add"], ticked: ["add", "conv2d"] },
    }),
  );
  assert.deepEqual(blocks, {
    parents: ["run-a"],
    kind: "ablation",
    options: { layers: [1, 2], blocks: true },
    constraints: { min_params: 10, max_params: 50000, max_depth: 12, allowed_types: ["conv2d", "add"] },
  });
});

test("generate body: problems in the words of the form, in the form's order", () => {
  assert.equal(buildGenerateRequest(choice({ parents: [] })), "Choose a parent first: click a model on the map.");
  assert.equal(buildGenerateRequest(choice({ layers: { all: [0, 1], ticked: [] } })), "Layers to touch: tick at least one.");
  assert.match(String(buildGenerateRequest(choice({ form: parseGenerateForm({ ...RAW, count: "0" }) }))), /^Children:/);
  // several parents: no layer choice, every parent sent
  const region = buildGenerateRequest(choice({ parents: ["a", "b"], layers: null }));
  assert.ok(typeof region !== "string");
  assert.deepEqual(region.parents, ["a", "b"]);
  assert.ok(!("layers" in (region.options ?? {})));
});

test("the skip controls need an add layer in a parent", () => {
  const chain = { glyph: [layer(0, "conv2d"), layer(1, "activation", { fn: "relu" }), layer(2, "classifier")] };
  const residual = { glyph: [layer(0, "conv2d"), layer(1, "conv2d"), layer(2, "add", { inputs: [0, 1] }), layer(3, "classifier")] };
  const concat = { glyph: [layer(0, "conv2d"), layer(1, "conv2d"), layer(2, "concat", { inputs: [0, 1] })] };
  assert.equal(hasAddLayer([]), false);
  assert.equal(hasAddLayer([chain]), false);
  assert.equal(hasAddLayer([concat]), false);
  assert.equal(hasAddLayer([residual]), true);
  assert.equal(hasAddLayer([chain, residual]), true);
});
