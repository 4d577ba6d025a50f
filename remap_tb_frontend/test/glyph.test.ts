import { test } from "node:test";
import assert from "node:assert/strict";
import { blockHeight, glyphMaxSize, layoutGlyph } from "../src/lib/glyph";
import { layerColor, TYPE_COLORS, ACTIVATION_COLORS } from "../src/lib/layers";
import type { GlyphLayer } from "../src/types";

const glyph: GlyphLayer[] = [
  { index: 0, type: "conv2d", output_shape: [16, 6, 6], params: 160 },
  { index: 1, type: "activation", output_shape: [16, 6, 6], params: 0, fn: "relu" },
  { index: 2, type: "maxpool2d", output_shape: [16, 3, 3], params: 0 },
  { index: 3, type: "dropout", output_shape: [16, 3, 3], params: 0, rate: 0.25 },
  { index: 4, type: "classifier", output_shape: [10], params: 1450 },
];

test("one block per layer, left to right, thin layers narrower", () => {
  const l = layoutGlyph(glyph, { blockWidth: 10, thinWidth: 4, gap: 2 });
  assert.equal(l.blocks.length, 5);
  assert.deepEqual(l.blocks.map((b) => b.index), [0, 1, 2, 3, 4]);
  assert.deepEqual(l.blocks.map((b) => b.width), [10, 4, 10, 4, 10]);
  assert.deepEqual(l.blocks.map((b) => b.x), [0, 12, 18, 30, 36]);
  assert.equal(l.width, 46);
});

test("height grows with output size and blocks share a midline", () => {
  const l = layoutGlyph(glyph, { height: 30 });
  const [conv, act, pool, , cls] = l.blocks;
  assert.equal(conv.height, act.height);
  assert.ok(conv.height > pool.height);
  assert.ok(pool.height > cls.height);
  assert.equal(conv.height, 30); // the largest tensor fills the area
  for (const b of l.blocks) assert.ok(Math.abs(b.y + b.height / 2 - 15) < 1e-9);
});

test("parameter shares sum to one and the bar marks them", () => {
  const l = layoutGlyph(glyph, { paramRow: 8 });
  const total = l.blocks.reduce((a, b) => a + b.paramShare, 0);
  assert.ok(Math.abs(total - 1) < 1e-12);
  assert.equal(l.totalParams, 1610);
  assert.equal(l.blocks[1].paramBar.height, 0);
  assert.ok(Math.abs(l.blocks[4].paramBar.height - (1450 / 1610) * 8) < 1e-9);
  assert.ok(l.blocks[0].paramBar.height >= 1); // small but visible
});

test("colours: fixed per type, activations by function", () => {
  const l = layoutGlyph(glyph);
  assert.equal(l.blocks[0].fill, TYPE_COLORS.conv2d);
  assert.equal(l.blocks[1].fill, ACTIVATION_COLORS.relu);
  assert.notEqual(layerColor("activation", "tanh"), layerColor("activation", "relu"));
  assert.equal(l.blocks[3].rate, 0.25);
});

test("a shared maxSize makes glyphs comparable", () => {
  const small = layoutGlyph([glyph[2]], { height: 30 });
  const shared = layoutGlyph([glyph[2]], { height: 30, maxSize: glyphMaxSize(glyph) });
  assert.equal(small.blocks[0].height, 30);
  assert.ok(shared.blocks[0].height < 30);
});

test("empty glyph and zero-size tensors", () => {
  assert.equal(layoutGlyph([]).width, 0);
  assert.equal(blockHeight(0, 100, 3, 30), 3);
  assert.equal(blockHeight(100, 100, 3, 30), 30);
});

test("invalid candidates: null shapes and parameters draw as unknown blocks", () => {
  const bad: GlyphLayer[] = [
    { index: 0, type: "conv2d", output_shape: [16, 6, 6], params: 160 },
    { index: 1, type: "maxpool2d", output_shape: null, params: null },
    { index: 2, type: "dense", output_shape: null, params: null },
    { index: 3, type: "classifier", output_shape: [10], params: null },
  ];
  const l = layoutGlyph(bad, { height: 30, minBlockHeight: 3 });
  assert.equal(l.blocks.length, 4);
  assert.deepEqual(l.blocks.map((b) => b.unknown), [false, true, true, false]);
  assert.equal(l.blocks[1].height, 3);
  assert.equal(l.blocks[1].params, 0);
  assert.equal(l.totalParams, 160);
  assert.equal(l.blocks[0].paramShare, 1);
  for (const b of l.blocks) assert.ok(Number.isFinite(b.y) && Number.isFinite(b.height));
});
