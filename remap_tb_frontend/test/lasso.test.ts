import { test } from "node:test";
import assert from "node:assert/strict";
import { pointInPolygon, pointsInPolygon, Pt } from "../src/lib/lasso";

const square: Pt[] = [
  [0, 0],
  [10, 0],
  [10, 10],
  [0, 10],
];
// A "C" shape: the notch (4..10, 4..6) is outside.
const cShape: Pt[] = [
  [0, 0],
  [10, 0],
  [10, 4],
  [4, 4],
  [4, 6],
  [10, 6],
  [10, 10],
  [0, 10],
];

test("inside and outside a square", () => {
  assert.equal(pointInPolygon(5, 5, square), true);
  assert.equal(pointInPolygon(11, 5, square), false);
  assert.equal(pointInPolygon(-1, -1, square), false);
});

test("concave polygon", () => {
  assert.equal(pointInPolygon(2, 5, cShape), true);
  assert.equal(pointInPolygon(7, 5, cShape), false);
  assert.equal(pointInPolygon(7, 2, cShape), true);
});

test("pointsInPolygon picks ids and needs a real polygon", () => {
  const pts = [
    { id: "a", x: 2, y: 5 },
    { id: "b", x: 7, y: 5 },
    { id: "c", x: 7, y: 8 },
    { id: "d", x: 50, y: 50 },
  ];
  assert.deepEqual(pointsInPolygon(pts, cShape), ["a", "c"]);
  assert.deepEqual(pointsInPolygon(pts, square.slice(0, 2)), []);
});
