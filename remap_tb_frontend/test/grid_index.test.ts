import { test } from "node:test";
import assert from "node:assert/strict";
import { GridIndex } from "../src/lib/grid_index";
import { pointInPolygon, pointsInPolygon, Pt } from "../src/lib/lasso";
import { mulberry32, Rng } from "../src/lib/random";

/** Uniform points plus dense clusters and exact duplicates (stacked models). */
function cloud(rng: Rng, n: number, w = 1000, h = 700): { xs: Float64Array; ys: Float64Array } {
  const xs = new Float64Array(n),
    ys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (i % 10 === 0 && i > 0) {
      xs[i] = xs[i - 1]; // duplicates
      ys[i] = ys[i - 1];
    } else if (i % 3 === 0) {
      xs[i] = 300 + rng() * 20; // a tight cluster
      ys[i] = 200 + rng() * 20;
    } else {
      xs[i] = rng() * w;
      ys[i] = rng() * h;
    }
  }
  return { xs, ys };
}

function bruteWithin(xs: ArrayLike<number>, ys: ArrayLike<number>, members: number[], x: number, y: number, r: number): number[] {
  return members
    .map((i) => [Math.hypot(xs[i] - x, ys[i] - y), i] as [number, number])
    .filter(([d]) => d <= r)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .map(([, i]) => i);
}

/** A random star-shaped (often concave) polygon around (cx, cy). */
function randomPolygon(rng: Rng, cx: number, cy: number, size: number): Pt[] {
  const k = 3 + Math.floor(rng() * 14);
  const poly: Pt[] = [];
  for (let j = 0; j < k; j++) {
    const a = (j / k) * Math.PI * 2;
    const r = size * (0.2 + rng());
    poly.push([cx + Math.cos(a) * r, cy + Math.sin(a) * r]);
  }
  return poly;
}

test("within and nearest equal a brute-force scan on random points", () => {
  const rng = mulberry32(7);
  const { xs, ys } = cloud(rng, 5000);
  const members = [...Array(5000).keys()].filter((i) => i % 7 !== 0); // some points left out (filtered)
  const grid = new GridIndex(xs, ys, members);
  assert.equal(grid.size, members.length);
  let nonEmpty = 0;
  for (let q = 0; q < 400; q++) {
    const x = rng() * 1100 - 50,
      y = rng() * 800 - 50,
      r = q % 4 === 0 ? rng() * 60 : rng() * 8;
    const want = bruteWithin(xs, ys, members, x, y, r);
    assert.deepEqual(grid.within(x, y, r), want, `within(${x}, ${y}, ${r})`);
    assert.equal(grid.nearest(x, y, r), want.length ? want[0] : -1);
    if (want.length) nonEmpty++;
  }
  assert.ok(nonEmpty > 50, `too few queries hit points (${nonEmpty}): the test would prove little`);
  // Queries at the points themselves (including the duplicates: the lowest index wins a tie).
  for (const i of members.slice(0, 300)) {
    const want = bruteWithin(xs, ys, members, xs[i], ys[i], 3);
    assert.deepEqual(grid.within(xs[i], ys[i], 3), want);
    assert.equal(grid.nearest(xs[i], ys[i], 0), want[0]);
  }
});

test("lasso polygon query equals the brute-force point-in-polygon scan", () => {
  const rng = mulberry32(11);
  const n = 8000;
  const { xs, ys } = cloud(rng, n);
  const grid = new GridIndex(xs, ys);
  const pts = [...Array(n).keys()].map((i) => ({ id: String(i), x: xs[i], y: ys[i] }));
  let total = 0;
  for (let q = 0; q < 120; q++) {
    const poly = randomPolygon(rng, rng() * 1000, rng() * 700, 10 + rng() * 300);
    const want = pointsInPolygon(pts, poly).map(Number).sort((a, b) => a - b);
    assert.deepEqual(grid.inPolygon(poly), want);
    total += want.length;
  }
  assert.ok(total > 1000, `polygons caught too few points (${total})`);
  // The C shape of the lasso tests: its notch stays out.
  const c: Pt[] = [
    [0, 0],
    [1000, 0],
    [1000, 300],
    [400, 300],
    [400, 400],
    [1000, 400],
    [1000, 700],
    [0, 700],
  ];
  const got = grid.inPolygon(c);
  assert.ok(got.length > 0 && got.every((i) => pointInPolygon(xs[i], ys[i], c)));
  assert.ok(!got.some((i) => xs[i] > 400 && ys[i] > 300 && ys[i] < 400));
});

test("a query visits only the cells it overlaps, and memory stays linear", () => {
  const rng = mulberry32(3);
  const n = 20000;
  const { xs, ys } = cloud(rng, n);
  const grid = new GridIndex(xs, ys);
  assert.ok(grid.cells <= 4 * n + 16, `cells ${grid.cells}`);
  let visited = 0;
  grid.forEachInBox(500 - 14, 400 - 14, 500 + 14, 400 + 14, () => visited++);
  assert.ok(visited < n / 50, `a 28 px box visited ${visited} of ${n} points`);
});

test("degenerate inputs: empty, one point, all on one spot, on a line, non-finite", () => {
  const empty = new GridIndex(new Float64Array(0), new Float64Array(0));
  assert.equal(empty.size, 0);
  assert.deepEqual(empty.within(0, 0, 100), []);
  assert.equal(empty.nearest(0, 0, 100), -1);
  assert.deepEqual(empty.inPolygon([[-1, -1], [1, -1], [0, 1]]), []);

  const one = new GridIndex([5], [5]);
  assert.deepEqual(one.within(6, 5, 1), [0]);
  assert.deepEqual(one.within(7, 5, 1), []);

  const same = new GridIndex(new Float64Array(50).fill(3), new Float64Array(50).fill(4));
  assert.equal(same.within(3, 4, 0.5).length, 50);
  assert.equal(same.nearest(3, 4, 0.5), 0);

  const xs = Float64Array.from({ length: 1000 }, (_, i) => i);
  const line = new GridIndex(xs, new Float64Array(1000));
  assert.deepEqual(line.within(500.2, 0, 1.5), [500, 501, 499]);
  assert.ok(line.cells <= 4 * 1000 + 16);

  const holes = new GridIndex([0, NaN, 2, Infinity], [0, 1, 2, 3]);
  assert.equal(holes.size, 2);
  assert.deepEqual(holes.within(1, 1, 5), [0, 2]);
});
