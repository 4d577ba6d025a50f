import { test } from "node:test";
import assert from "node:assert/strict";
import { paretoFront } from "../src/lib/pareto";

test("front of accuracy vs size, ordered by params", () => {
  const items = [
    { id: "a", params: 100, accuracy: 0.5 },
    { id: "b", params: 200, accuracy: 0.7 },
    { id: "c", params: 300, accuracy: 0.6 }, // dominated by b
    { id: "d", params: 400, accuracy: 0.9 },
    { id: "e", params: 50, accuracy: 0.2 },
    { id: "f", params: 500, accuracy: null },
  ];
  assert.deepEqual(paretoFront(items), ["e", "a", "b", "d"]);
});

test("ties: same size keeps the more accurate, equal models keep one", () => {
  assert.deepEqual(
    paretoFront([
      { id: "x", params: 100, accuracy: 0.5 },
      { id: "y", params: 100, accuracy: 0.6 },
    ]),
    ["y"],
  );
  assert.deepEqual(
    paretoFront([
      { id: "q", params: 100, accuracy: 0.5 },
      { id: "p", params: 100, accuracy: 0.5 },
    ]),
    ["p"],
  );
  // A larger model with equal accuracy is dominated.
  assert.deepEqual(
    paretoFront([
      { id: "s", params: 100, accuracy: 0.5 },
      { id: "t", params: 200, accuracy: 0.5 },
    ]),
    ["s"],
  );
});

test("every model off the front is dominated by one on it", () => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const items = Array.from({ length: 300 }, (_, i) => ({ id: `m${i}`, params: Math.floor(rnd() * 1e5), accuracy: rnd() }));
  const front = new Set(paretoFront(items));
  for (const m of items) {
    const dominated = items.some((o) => o !== m && o.params <= m.params && o.accuracy >= m.accuracy && (o.params < m.params || o.accuracy > m.accuracy));
    assert.equal(front.has(m.id), !dominated, m.id);
  }
});
