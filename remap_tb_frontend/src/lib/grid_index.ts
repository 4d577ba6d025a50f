// A uniform grid over 2-D points, for picking on the model map without scanning
// every point: hover (the points within a radius of the pointer, nearest first) and
// lasso (the points inside a polygon).
//
// Layout (compressed rows, as a sparse matrix): the points are bucketed by cell with a
// counting sort, so building is O(n + cells) with two typed arrays and no per-cell
// objects; `start[c] .. start[c + 1]` are the slots of cell c in `items`. The cell size
// is chosen so that a cell holds about `perCell` points on average over the bounding
// box (uniform-grid nearest-neighbour search, e.g. Akman, Franklin et al., "Geometric
// computing and uniform grid technique", Computer-Aided Design 21(7), 1989), and the
// number of cells is capped at about 4 n, so memory stays linear in n.

import { pointInPolygon, polygonBounds, Pt } from "./lasso";

export class GridIndex {
  /** Number of points indexed. */
  readonly size: number;
  private readonly x0: number;
  private readonly y0: number;
  private readonly cell: number;
  private readonly cols: number;
  private readonly rows: number;
  private readonly start: Int32Array;
  private readonly items: Int32Array;

  /**
   * Index the points `members` (indices into `xs`/`ys`; default all of them).
   * Points with a non-finite coordinate are left out.
   */
  constructor(
    private readonly xs: ArrayLike<number>,
    private readonly ys: ArrayLike<number>,
    members?: ArrayLike<number>,
    perCell = 2,
  ) {
    const all = members ?? Int32Array.from({ length: xs.length }, (_, i) => i);
    const keep: number[] = [];
    let x0 = Infinity,
      y0 = Infinity,
      x1 = -Infinity,
      y1 = -Infinity;
    for (let k = 0; k < all.length; k++) {
      const i = all[k];
      const x = xs[i],
        y = ys[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      keep.push(i);
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    const n = keep.length;
    this.size = n;
    if (!n) {
      x0 = y0 = 0;
      x1 = y1 = 1;
    }
    const w = Math.max(x1 - x0, 1e-9),
      h = Math.max(y1 - y0, 1e-9);
    // Cell side so that n / cells ~ perCell; at least one cell along each side.
    let cell = Math.sqrt((w * h * perCell) / Math.max(1, n));
    if (!(cell > 0) || !Number.isFinite(cell)) cell = Math.max(w, h);
    cell = Math.max(cell, w / 4096, h / 4096, 1e-9);
    let cols = Math.floor(w / cell) + 1,
      rows = Math.floor(h / cell) + 1;
    // Points on a line (w or h ~ 0) would give n cells along it and 1 across: fine. Cap the total.
    const cap = Math.max(16, 4 * n);
    while (cols * rows > cap) {
      cell *= 1.5;
      cols = Math.floor(w / cell) + 1;
      rows = Math.floor(h / cell) + 1;
    }
    this.x0 = x0;
    this.y0 = y0;
    this.cell = cell;
    this.cols = cols;
    this.rows = rows;
    const cellOf = new Int32Array(n);
    const start = new Int32Array(cols * rows + 1);
    for (let k = 0; k < n; k++) {
      const c = this.cellAt(xs[keep[k]], ys[keep[k]]);
      cellOf[k] = c;
      start[c + 1]++;
    }
    for (let c = 0; c < cols * rows; c++) start[c + 1] += start[c];
    const fill = start.slice(0, cols * rows);
    const items = new Int32Array(n);
    for (let k = 0; k < n; k++) items[fill[cellOf[k]]++] = keep[k];
    this.start = start;
    this.items = items;
  }

  private col(x: number): number {
    return Math.min(this.cols - 1, Math.max(0, Math.floor((x - this.x0) / this.cell)));
  }

  private row(y: number): number {
    return Math.min(this.rows - 1, Math.max(0, Math.floor((y - this.y0) / this.cell)));
  }

  private cellAt(x: number, y: number): number {
    return this.row(y) * this.cols + this.col(x);
  }

  /** Calls `visit(i)` for every point in a cell that overlaps the box [x0, x1] x [y0, y1]. */
  forEachInBox(x0: number, y0: number, x1: number, y1: number, visit: (i: number) => void): void {
    if (!this.size || !(x1 >= x0) || !(y1 >= y0)) return;
    if (x1 < this.x0 || y1 < this.y0 || x0 > this.x0 + this.cols * this.cell || y0 > this.y0 + this.rows * this.cell) return;
    const c0 = this.col(x0),
      c1 = this.col(x1),
      r0 = this.row(y0),
      r1 = this.row(y1);
    for (let r = r0; r <= r1; r++) {
      const base = r * this.cols;
      const from = this.start[base + c0],
        to = this.start[base + c1 + 1];
      for (let k = from; k < to; k++) visit(this.items[k]);
    }
  }

  /** The points within distance `r` of (x, y), nearest first (ties by index). */
  within(x: number, y: number, r: number): number[] {
    const hits: [number, number][] = [];
    this.forEachInBox(x - r, y - r, x + r, y + r, (i) => {
      const d = Math.hypot(this.xs[i] - x, this.ys[i] - y);
      if (d <= r) hits.push([d, i]);
    });
    hits.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    return hits.map((h) => h[1]);
  }

  /** The nearest point within distance `r` of (x, y), or -1. */
  nearest(x: number, y: number, r: number): number {
    let best = -1,
      bestD = Infinity;
    this.forEachInBox(x - r, y - r, x + r, y + r, (i) => {
      const d = Math.hypot(this.xs[i] - x, this.ys[i] - y);
      if (d <= r && (d < bestD || (d === bestD && i < best))) {
        best = i;
        bestD = d;
      }
    });
    return best;
  }

  /** The points inside `poly` (ray casting, as `pointInPolygon`), in index order. */
  inPolygon(poly: Pt[]): number[] {
    if (poly.length < 3) return [];
    const b = polygonBounds(poly);
    const out: number[] = [];
    this.forEachInBox(b.x0, b.y0, b.x1, b.y1, (i) => {
      const x = this.xs[i],
        y = this.ys[i];
      if (x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1 && pointInPolygon(x, y, poly)) out.push(i);
    });
    return out.sort((a, b) => a - b);
  }

  /** How many cells the grid has (for tests: memory stays linear in n). */
  get cells(): number {
    return this.cols * this.rows;
  }
}
