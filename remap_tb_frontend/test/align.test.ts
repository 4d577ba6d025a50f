import { test } from "node:test";
import assert from "node:assert/strict";
import { alignModels, alignPair, glyphSignature, specLayerSignature } from "../src/lib/align";
import { describeGlyphLayer } from "../src/lib/layers";
import type { GlyphLayer, Layer } from "../src/types";

const conv = (f: number, k = 3): Layer => ({ type: "conv2d", filters: f, kernel_size: k });
const relu: Layer = { type: "activation", fn: "relu" };
const pool: Layer = { type: "maxpool2d", pool_size: 2 };
const dense = (u: number): Layer => ({ type: "dense", units: u });
const sig = (ls: Layer[]) => ls.map(specLayerSignature);

test("identical sequences align one to one", () => {
  const a = sig([conv(16), relu, pool]);
  const r = alignPair(a, a);
  assert.deepEqual(r.match, [0, 1, 2]);
  assert.ok(r.insertsBefore.every((x) => x.length === 0));
});

test("an ablation shows as a deletion, the rest stays matched", () => {
  const ref = sig([conv(16), relu, pool, dense(32)]);
  const abl = sig([conv(16), pool, dense(32)]);
  assert.deepEqual(alignPair(ref, abl).match, [0, null, 1, 2]);
});

test("a re-parameterised layer is 'changed', an insertion gets its own column", () => {
  const ref = [conv(16), relu, dense(32)];
  const changed = [conv(32), relu, dense(32)];
  const inserted = [conv(16), relu, pool, dense(32)];
  const a = alignModels([sig(ref), sig(changed), sig(inserted)]);
  assert.equal(a.columns, 4);
  assert.deepEqual(a.refColumn, [true, true, false, true]);
  assert.deepEqual(a.rows[0].map((c) => c.layer), [0, 1, null, 2]);
  assert.deepEqual(a.rows[1].map((c) => c.op), ["changed", "same", null, "same"]);
  assert.deepEqual(a.rows[2].map((c) => [c.layer, c.op]), [
    [0, "same"],
    [1, "same"],
    [2, "inserted"],
    [3, "same"],
  ]);
});

test("different types are never matched in one column", () => {
  const a = alignModels([sig([conv(16)]), sig([dense(16)])]);
  for (let c = 0; c < a.columns; c++) {
    const cells = a.rows.map((r) => r[c]).filter((x) => x.layer !== null);
    assert.ok(cells.length <= 1);
  }
});

test("empty models", () => {
  const a = alignModels([[], sig([conv(8)])]);
  assert.equal(a.columns, 1);
  assert.equal(a.rows[1][0].op, "inserted");
  assert.equal(alignModels([]).columns, 0);
});

test("glyph layers with unknown shapes (invalid candidates) still align and describe", () => {
  const a: GlyphLayer = { index: 1, type: "dense", output_shape: null, params: null };
  const b: GlyphLayer = { index: 1, type: "dense", output_shape: [32], params: 2080 };
  assert.equal(glyphSignature(a).type, "dense");
  assert.notEqual(glyphSignature(a).sig, glyphSignature(b).sig);
  assert.equal(describeGlyphLayer(a), "Dense → ?");
  assert.equal(describeGlyphLayer(b), "Dense → 32");
});

test("merges align by their connections as offsets: an insertion before a block does not make its add 'changed'", () => {
  const add = (inputs: number[]): Layer => ({ type: "add", inputs });
  const ref: Layer[] = [conv(8), relu, conv(8), add([2, 0]), dense(10)];
  const shifted: Layer[] = [pool, conv(8), relu, conv(8), add([3, 1]), dense(10)]; // a pool inserted first
  const rewired: Layer[] = [conv(8), relu, conv(8), add([2, -1]), dense(10)]; // the skip now from the input
  const a = alignModels([sig(ref), sig(shifted), sig(rewired)]);
  const addCol = a.rows[0].findIndex((c) => c.layer === 3);
  assert.deepEqual(a.rows[1][addCol], { layer: 4, op: "same" });
  assert.deepEqual(a.rows[2][addCol], { layer: 3, op: "changed" });
  assert.equal(a.rows[1][0].op, "inserted");
  // glyph signatures too (inputs present only off the chain)
  const g = (index: number, inputs?: number[]): GlyphLayer => ({ index, type: "add", output_shape: [8, 4, 4], params: 0, ...(inputs ? { inputs } : {}) });
  assert.equal(glyphSignature(g(3, [2, 0])).sig, glyphSignature(g(4, [3, 1])).sig);
  assert.notEqual(glyphSignature(g(3, [2, 0])).sig, glyphSignature(g(3, [2, -1])).sig);
  assert.equal(glyphSignature(g(3, [2])).sig, glyphSignature(g(3)).sig);
});
