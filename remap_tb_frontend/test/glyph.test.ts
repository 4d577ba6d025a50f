import { test } from "node:test";
import assert from "node:assert/strict";
import { arcPoint, blockHeight, glyphMaxSize, hasBranches, layoutArcs, layoutGlyph } from "../src/lib/glyph";
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

// ------------------------------------------------------------ branches and merges (schema 2)

// conv(0) -> relu(1) -> conv(2) -> add(3) reads [2, 0] -> concat(4) reads [3, -1] -> classifier(5)
const residual: GlyphLayer[] = [
  { index: 0, type: "conv2d", output_shape: [4, 8, 8], params: 40 },
  { index: 1, type: "activation", output_shape: [4, 8, 8], params: 0, fn: "relu" },
  { index: 2, type: "conv2d", output_shape: [4, 8, 8], params: 148 },
  { index: 3, type: "add", output_shape: [4, 8, 8], params: 0, inputs: [2, 0] },
  { index: 4, type: "concat", output_shape: [5, 8, 8], params: 0, inputs: [3, -1] },
  { index: 5, type: "classifier", output_shape: [10], params: 3210 },
];

test("a chain lays out exactly as before: no arc band, no arcs, no breaks", () => {
  const l = layoutGlyph(glyph, { blockWidth: 10, thinWidth: 4, gap: 2, height: 30, paramRow: 8 });
  assert.equal(l.top, 0);
  assert.deepEqual(l.arcs, []);
  assert.deepEqual(l.breaks, []);
  assert.equal(l.input, null);
  assert.equal(l.height, 30 + 8 + 1);
  assert.deepEqual(l.blocks.map((b) => b.x), [0, 12, 18, 30, 36]);
  // explicit inputs that just name the previous layer are still a chain
  const explicit = glyph.map((g) => (g.type === "classifier" ? g : { ...g, inputs: [g.index - 1] }));
  assert.deepEqual(layoutGlyph(explicit, { height: 30 }), layoutGlyph(glyph, { height: 30 }));
});

test("every input that is not the previous layer is an arc from its source block to the consumer", () => {
  const o = { blockWidth: 10, thinWidth: 4, gap: 2, height: 30, paramRow: 8, arcRow: 12 };
  const l = layoutGlyph(residual, o);
  assert.equal(l.top, 12);
  assert.equal(l.height, 12 + 30 + 8 + 1);
  // an arc from the network input: blocks make room at the left for the input mark
  assert.deepEqual(l.input, { x: 1, y: 12 + 15 });
  assert.deepEqual(l.blocks.map((b) => b.x), [4, 16, 22, 34, 46, 58]);
  assert.deepEqual(l.arcs.map((a) => [a.from, a.to]), [
    [0, 3],
    [-1, 4],
  ]);
  const [skip, fromInput] = l.arcs;
  const b = l.blocks;
  assert.equal(skip.x1, b[0].x + b[0].width / 2);
  assert.equal(skip.y1, b[0].y);
  assert.equal(skip.x2, b[3].x + b[3].width / 2);
  assert.equal(skip.y2, b[3].y);
  assert.equal(fromInput.x1, 1);
  assert.equal(fromInput.x2, b[4].x + b[4].width / 2);
  // blocks sit below the band, on a common midline
  for (const blk of b) assert.ok(Math.abs(blk.y + blk.height / 2 - (12 + 15)) < 1e-9);
  // the longer arc rises higher; the highest reaches the top of the band
  assert.ok(fromInput.x2 - fromInput.x1 > skip.x2 - skip.x1);
  assert.ok(fromInput.apex < skip.apex);
  assert.equal(fromInput.apex, 0);
  assert.ok(skip.apex > 0 && skip.apex < l.top);
  // the curve: from (x1, y1) to (x2, y2), through the apex halfway, never above the glyph nor below its ends
  for (const a of l.arcs) {
    assert.deepEqual(arcPoint(a, 0), { x: a.x1, y: a.y1 });
    const end = arcPoint(a, 1);
    assert.ok(Math.abs(end.x - a.x2) < 1e-9 && Math.abs(end.y - a.y2) < 1e-9);
    let highest = Infinity;
    for (let t = 0; t <= 1.0001; t += 0.01) {
      const p = arcPoint(a, t);
      highest = Math.min(highest, p.y);
      assert.ok(p.y >= a.apex - 1e-9 && p.y <= Math.max(a.y1, a.y2) + 1e-9, `arc ${a.from}->${a.to} at t=${t}: y=${p.y}`);
      assert.ok(p.x >= a.x1 - 1e-9 && p.x <= a.x2 + 1e-9);
    }
    // it does rise into the band, close to its apex (within a fifth of the band)
    assert.ok(highest < l.top && highest - a.apex < l.top / 5, `arc ${a.from}->${a.to}: highest ${highest}, apex ${a.apex}`);
    assert.match(a.d, /^M[\d.]+,[\d.]+C[\d.-]+,[\d.-]+ [\d.-]+,[\d.-]+ [\d.]+,[\d.]+$/);
  }
});

test("a layer that does not read its left neighbour gets a break between them", () => {
  // 0 conv, 1 conv (branch a), 2 conv reads [0] (branch b), 3 concat [1, 2]
  const branches: GlyphLayer[] = [
    { index: 0, type: "conv2d", output_shape: [4, 8, 8], params: 40 },
    { index: 1, type: "conv2d", output_shape: [4, 8, 8], params: 148 },
    { index: 2, type: "conv2d", output_shape: [4, 8, 8], params: 148, inputs: [0] },
    { index: 3, type: "concat", output_shape: [8, 8, 8], params: 0, inputs: [1, 2] },
    { index: 4, type: "classifier", output_shape: [10], params: 5130 },
  ];
  const l = layoutGlyph(branches, { blockWidth: 10, gap: 2 });
  assert.deepEqual(l.arcs.map((a) => [a.from, a.to]), [
    [0, 2],
    [1, 3],
  ]);
  assert.deepEqual(l.breaks, [{ index: 2, x: l.blocks[1].x + 10 + 1 }]);
  assert.equal(l.input, null);
  assert.equal(l.blocks[0].x, 0);
});

test("arcs re-laid over moved blocks (the comparison's columns); bad connections are left out", () => {
  const placed = [0, 1, 2, 3].map((i) => ({ index: i, x: i * 20, y: 10, width: 10 }));
  const g: GlyphLayer[] = [
    { index: 0, type: "conv2d", output_shape: null, params: null },
    { index: 1, type: "conv2d", output_shape: null, params: null, inputs: [3] }, // forward: invalid edit
    { index: 2, type: "add", output_shape: null, params: null, inputs: [1, 0, 9] },
    { index: 3, type: "dense", output_shape: null, params: null },
  ];
  const { arcs } = layoutArcs(g, placed, 8, { x: 0, y: 12 });
  assert.deepEqual(arcs.map((a) => [a.from, a.to, a.x1, a.x2]), [[0, 2, 5, 45]]);
  assert.equal(arcs[0].apex, 0);
  assert.ok(Math.abs(arcPoint(arcs[0], 0.5).y) < 1e-9); // ends at one height: the apex is reached halfway
  assert.ok(hasBranches(g));
  assert.ok(!hasBranches(glyph));
});
