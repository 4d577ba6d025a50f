// Lasso selection: point-in-polygon by ray casting, with a bounding-box prefilter.

export type Pt = [number, number];

export function pointInPolygon(x: number, y: number, poly: Pt[]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export function polygonBounds(poly: Pt[]): { x0: number; y0: number; x1: number; y1: number } {
  let x0 = Infinity,
    y0 = Infinity,
    x1 = -Infinity,
    y1 = -Infinity;
  for (const [x, y] of poly) {
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  return { x0, y0, x1, y1 };
}

/** Ids of the points inside `poly` (needs at least 3 vertices). */
export function pointsInPolygon(points: { id: string; x: number; y: number }[], poly: Pt[]): string[] {
  if (poly.length < 3) return [];
  const b = polygonBounds(poly);
  const out: string[] = [];
  for (const p of points) {
    if (p.x < b.x0 || p.x > b.x1 || p.y < b.y0 || p.y > b.y1) continue;
    if (pointInPolygon(p.x, p.y, poly)) out.push(p.id);
  }
  return out;
}
