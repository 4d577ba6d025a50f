import { test } from "node:test";
import assert from "node:assert/strict";
import { addInput, addSkip, inputChoices, inputsOf, insertLayer, moveLayer, removeInput, removeLayer, setInputs, specSchemaVersion } from "../src/lib/graph";
import type { Layer } from "../src/types";

const conv = (f: number): Layer => ({ type: "conv2d", filters: f, kernel_size: 3, padding: "same" });
const relu: Layer = { type: "activation", fn: "relu" };

// A residual block: 0 conv, 1 relu, 2 conv, 3 add [2, 0], 4 relu, 5 dense.
const block = (): Layer[] => [conv(8), relu, conv(8), { type: "add", inputs: [2, 0] }, relu, { type: "dense", units: 10 }];

/** Each layer's resolved inputs, as the identity (filters/type) of the layers they read. */
function wiring(layers: Layer[]): string[] {
  const name = (k: number) => (k < 0 ? "in" : `${layers[k].type}${layers[k]["filters"] ?? ""}`);
  return layers.map((l, i) => `${name(i)}<-${inputsOf(l, i).map(name).join("+")}`);
}

test("inserting a layer re-indexes later inputs so they keep pointing at the same layers", () => {
  const before = block();
  before[0].filters = 4; // tell the two convs apart
  const after = insertLayer(before, 1, { type: "batchnorm" });
  assert.deepEqual(after[4], { type: "add", inputs: [3, 0] });
  assert.deepEqual(wiring(after), ["conv2d4<-in", "batchnorm<-conv2d4", "activation<-batchnorm", "conv2d8<-activation", "add<-conv2d8+conv2d4", "activation<-add", "dense<-activation"]);
  // after the merge: nothing to re-index, the chain just grows
  const tail = insertLayer(before, 5, relu);
  assert.deepEqual(tail[3], { type: "add", inputs: [2, 0] });
  assert.equal(tail.length, 7);
  // the input list is not mutated
  assert.deepEqual(before[3], { type: "add", inputs: [2, 0] });
});

test("removing a layer reconnects its consumers to what it read and re-indexes the rest", () => {
  const before = block();
  before[0].filters = 4;
  // remove the first conv: the add's skip now comes from the network input
  const a = removeLayer(before, 0);
  assert.deepEqual(a[2], { type: "add", inputs: [1, -1] });
  assert.deepEqual(wiring(a), ["activation<-in", "conv2d8<-activation", "add<-conv2d8+in", "activation<-add", "dense<-activation"]);
  // remove the relu inside the block: the add is re-indexed
  const b = removeLayer(before, 1);
  assert.deepEqual(b[2], { type: "add", inputs: [1, 0] });
  // remove the add: its implicit consumer reads the add's first input (the conv), a chain again
  const c = removeLayer(before, 3);
  assert.deepEqual(c.map((l) => l.inputs), [undefined, undefined, undefined, undefined, undefined]);
  // a layer whose implicit input is removed reads the removed layer's input, explicitly when that is not its new neighbour
  const branch: Layer[] = [conv(4), conv(8), { ...conv(16), inputs: [0] }, relu];
  assert.deepEqual(removeLayer(branch, 2)[2], { ...relu, inputs: [0] });
  // a merge left with one source twice keeps it once (here: just the previous layer, so no inputs)
  const twice: Layer[] = [conv(4), relu, { type: "add", inputs: [1, 0] }];
  assert.deepEqual(removeLayer(twice, 1)[1], { type: "add" });
  const three: Layer[] = [conv(4), relu, relu, { type: "concat", inputs: [2, 1, 0] }];
  assert.deepEqual(removeLayer(three, 2)[2], { type: "concat", inputs: [1, 0] });
});

test("moving a layer: explicit inputs follow their layers, implicit ones keep reading the previous position", () => {
  const before = block();
  const moved = moveLayer(before, 4, 5); // relu after the add swaps with the dense
  assert.deepEqual(moved.map((l) => l.type), ["conv2d", "activation", "conv2d", "add", "dense", "activation"]);
  assert.deepEqual(moved[3], { type: "add", inputs: [2, 0] });
  const up = moveLayer(before, 1, 0); // relu before the first conv: the add still reads that conv, now #1
  assert.deepEqual(up[3], { type: "add", inputs: [2, 1] });
  // a chain reorders exactly as before (no inputs appear)
  const chain = [conv(4), relu, conv(8)];
  assert.deepEqual(moveLayer(chain, 1, 2), [conv(4), conv(8), relu]);
});

test("connections: add, remove, add a skip, and the choices offered", () => {
  const chain = [conv(4), relu, conv(4), relu];
  const two = addInput(chain, 2, 0); // a second input on a conv: the server says only merges take several
  assert.deepEqual(two[2].inputs, [1, 0]);
  assert.deepEqual(removeInput(two, 2, 0)[2], conv(4)); // back to just the previous layer: no inputs written
  assert.deepEqual(removeInput(chain, 2, 1), chain); // a layer keeps at least one input
  assert.deepEqual(setInputs(chain, 3, [2])[3], relu);
  const skip = addSkip(chain, 2, 0);
  assert.deepEqual(skip.map((l) => l.type), ["conv2d", "activation", "conv2d", "add", "activation"]);
  assert.deepEqual(skip[3], { type: "add", inputs: [2, 0] });
  assert.deepEqual(inputsOf(skip[4], 4), [3]); // the next layer reads the sum
  assert.deepEqual(inputChoices(chain, 2), [-1, 0]); // not the previous layer: it reads that already
  assert.deepEqual(inputChoices(chain, 0), []); // layer 0 reads the input already
});

test("the schema version: 1 for a chain without schema 2 fields, else 2", () => {
  assert.equal(specSchemaVersion([conv(4), relu]), 1);
  assert.equal(specSchemaVersion(addSkip([conv(4), relu], 1, 0)), 2);
  assert.equal(specSchemaVersion([{ ...conv(4), inputs: [-1] }]), 2);
  assert.equal(specSchemaVersion([{ ...conv(4), bias: false }]), 2);
  assert.equal(specSchemaVersion([{ ...conv(4), padding: 1 }]), 2);
  assert.equal(specSchemaVersion([{ type: "maxpool2d", pool_size: 2, padding: 1 }]), 2);
  assert.equal(specSchemaVersion([{ type: "concat" }]), 2);
});

test("the editor's glyph carries inputs only off the chain, and the spec's when the server could not resolve them", async () => {
  const { glyphFromValidation } = await import("../src/views/editor");
  const spec = { schema: 2 as const, input: { shape: [1, 8, 8], num_classes: 10 }, layers: [conv(4), relu, { ...conv(4), inputs: [1, 0] }, { type: "add", inputs: [2, 0] }] };
  const layer = (index: number, type: string, inputs: number[], ok = true) => ({ index, type, inputs, input_shape: ok ? [4, 8, 8] : null, output_shape: ok ? [4, 8, 8] : null, params: ok ? 0 : null });
  const v = {
    valid: false,
    errors: [],
    input_shape: [1, 8, 8],
    layers: [layer(0, "conv2d", [-1]), layer(1, "activation", [0]), layer(2, "conv2d", [], false), layer(3, "add", [2, 0], false)],
    classifier_params: null,
    total_params: null,
    depth: 4,
    merge_count: 1,
    longest_path: 3,
    max_params: null,
  };
  const g = glyphFromValidation(v, spec);
  assert.deepEqual(g.map((x) => x.inputs), [undefined, undefined, [1, 0], [2, 0], undefined]);
  assert.equal(g[4].type, "classifier");
});
