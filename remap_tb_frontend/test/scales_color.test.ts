import { test } from "node:test";
import assert from "node:assert/strict";
import { applyFit, easeCubicInOut, fitLayout, invertFit, linearTicks, logTicks, makeRadiusScale, makeUnitScale, MAX_TICKS, SIZE_X_LABEL, sizeAxisLabels } from "../src/lib/scales";
import { accuracyColor, classColor, originColor, parseHex, quantise, LEVELS } from "../src/lib/color";
import { formatDelta, formatParams, formatPct, formatShape, tensorSize } from "../src/lib/format";
import { mulberry32 } from "../src/lib/random";

test("radius: log-scaled over the population, clamped", () => {
  const r = makeRadiusScale([100, 10_000, 1_000_000], 2, 8);
  assert.equal(r(100), 2);
  assert.equal(r(1_000_000), 8);
  assert.ok(Math.abs(r(10_000) - 5) < 1e-9);
  assert.equal(r(10), 2);
  assert.equal(makeRadiusScale([5, 5], 2, 8)(5), 5);
});

test("unit scale maps the range to 0..1 and keeps null", () => {
  const u = makeUnitScale([0.5, null, 0.9]);
  assert.equal(u(0.5), 0);
  assert.equal(u(0.9), 1);
  assert.ok(Math.abs(u(0.7)! - 0.5) < 1e-9);
  assert.equal(u(null), null);
});

test("fitLayout: equal aspect keeps distances, y points up, inverse round-trips", () => {
  const pts = [
    { x: 0, y: 0 },
    { x: 10, y: 0 },
    { x: 0, y: 2 },
  ];
  const f = fitLayout(pts, 220, 220, 10, true);
  assert.equal(f.kx, f.ky);
  const [x0, y0] = applyFit(f, 0, 0);
  const [x1] = applyFit(f, 10, 0);
  const [, y2] = applyFit(f, 0, 2);
  assert.ok(Math.abs(x1 - x0 - 200) < 1e-9);
  assert.ok(y2 < y0);
  const [bx, by] = invertFit(f, 123, 45);
  const [sx, sy] = applyFit(f, bx, by);
  assert.ok(Math.abs(sx - 123) < 1e-9 && Math.abs(sy - 45) < 1e-9);
  const g = fitLayout(pts, 220, 120, 10, false);
  assert.notEqual(g.kx, g.ky);
});

test("log ticks", () => {
  assert.deepEqual(logTicks(2.5, 5.2), [3, 4, 5]);
  const short = logTicks(3, 4);
  assert.equal(short.length, 4); // 1k, 2k, 5k, 10k
  assert.deepEqual(logTicks(5, 2), []);
});

test("ticks stay bounded over any range (a structural layout's +-5,000 read as size axes)", () => {
  // The old logTicks gave one tick per decade: 10,001 gridlines and labels for +-5,000.
  const wide = logTicks(-5000, 5000);
  assert.ok(wide.length > 1 && wide.length <= MAX_TICKS, `${wide.length} ticks`);
  for (let k = 1; k < wide.length; k++) assert.ok(wide[k] > wide[k - 1]);
  assert.ok(wide.every((v) => v >= -5000 && v <= 5000 && Number.isInteger(v)));
  assert.ok(logTicks(-1e9, 1e9).length <= MAX_TICKS);
  assert.deepEqual(logTicks(0, 9), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // a real size range: every decade
  const y = linearTicks(-5000, 5000);
  assert.ok(y.ticks.length > 1 && y.ticks.length <= MAX_TICKS, `${y.ticks.length} ticks`);
  assert.ok(linearTicks(-1e12, 1e12).ticks.length <= MAX_TICKS);
  assert.deepEqual(linearTicks(NaN, 1).ticks, []);
});

test("accuracy ticks: 10 % steps over the full range, finer when zoomed in", () => {
  const full = linearTicks(0, 1);
  assert.equal(full.step, 0.1);
  assert.equal(full.ticks.length, 11);
  assert.ok(Math.abs(full.ticks[3] - 0.3) < 1e-12);
  assert.equal(linearTicks(0.5, 0.8).step, 0.05);
  assert.equal(linearTicks(0.5, 0.65).step, 0.02);
  assert.equal(linearTicks(0.5, 0.55).step, 0.01);
  assert.equal(linearTicks(0.5, 0.501).step, 0.01); // no finer than 1 %
  for (const [lo, hi] of [[0, 1], [0.1, 0.35], [-0.2, 1.3], [0.9, 0.93]]) assert.ok(linearTicks(lo, hi).ticks.length <= MAX_TICKS);
});

test("the size map's x axis says parameters on a log scale", () => {
  assert.equal(SIZE_X_LABEL, "parameters (log scale)");
  assert.deepEqual(sizeAxisLabels({ x: "log10(parameters)", y: "validation accuracy" }), { x: "parameters (log scale)", y: "validation accuracy" });
  assert.equal(sizeAxisLabels({ x: "", y: "" }).y, "validation accuracy");
});

test("easing is monotone from 0 to 1", () => {
  assert.equal(easeCubicInOut(0), 0);
  assert.equal(easeCubicInOut(1), 1);
  let prev = 0;
  for (let t = 0.05; t <= 1; t += 0.05) {
    const v = easeCubicInOut(t);
    assert.ok(v >= prev);
    prev = v;
  }
});

test("colours: darker with accuracy, quantised, null is grey", () => {
  const lum = (hex: string) => parseHex(hex).reduce((a, b) => a + b, 0);
  assert.ok(lum(accuracyColor(1)) < lum(accuracyColor(0.5)));
  assert.ok(lum(accuracyColor(0.5)) < lum(accuracyColor(0)));
  assert.ok(lum(classColor(1)) < lum(classColor(0)));
  assert.ok(lum(originColor("ablation", 1)) < lum(originColor("ablation", 0)));
  assert.equal(accuracyColor(null), "#d5d5d5");
  const distinct = new Set(Array.from({ length: 200 }, (_, i) => accuracyColor(i / 199)));
  assert.equal(distinct.size, LEVELS);
  assert.equal(quantise(2), 1);
});

test("formatting", () => {
  assert.equal(formatParams(950), "950");
  assert.equal(formatParams(1234), "1.23k");
  assert.equal(formatParams(52_000), "52k");
  assert.equal(formatParams(3_400_000), "3.4M");
  assert.equal(formatParams(null), "–");
  assert.equal(formatPct(0.9345), "93.5%");
  assert.equal(formatDelta(-0.012), "−1.2 pp");
  assert.equal(formatDelta(0.03), "+3.0 pp");
  assert.equal(formatShape([16, 8, 8]), "16×8×8");
  assert.equal(tensorSize([16, 8, 8]), 1024);
});

test("seeded randomness is reproducible", () => {
  const a = mulberry32(42),
    b = mulberry32(42);
  for (let i = 0; i < 5; i++) assert.equal(a(), b());
  const c = mulberry32(43);
  assert.notEqual(mulberry32(42)(), c());
});

test("a robust unit scale starts at a low quantile so one failed model does not wash out the rest", () => {
  const acc = [0.1, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99];
  const plain = makeUnitScale(acc);
  const robust = makeUnitScale(acc, 0.1);
  assert.ok(plain(0.9)! > 0.85); // everything good looks the same
  assert.equal(robust(0.9), 0);
  assert.equal(robust(0.1), 0); // below the quantile: clamped
  assert.equal(robust(0.99), 1);
  assert.ok(Math.abs(robust(0.945)! - 0.5) < 1e-9);
  // too few values: the plain range
  assert.equal(makeUnitScale([0.1, 0.5, 0.9], 0.1)(0.5), 0.5);
  assert.equal(makeUnitScale([null, null], 0.1)(0.5), null);
});
