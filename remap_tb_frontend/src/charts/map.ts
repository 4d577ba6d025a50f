// The model map: one point per model on a canvas (fluid with tens of thousands of
// models: points are filled one path per colour and mark, 20,000 in one frame).
//
// Encodings (REMAP): darkness = validation accuracy, radius = parameter count;
// hue by colour-by mode. Zoom/pan (d3-zoom), hover and lasso through a uniform grid
// over the fitted (pre-zoom) positions (lib/grid_index.ts: neither scans every point,
// and zooming needs no rebuild), click to inspect, shift-drag (or lasso mode) to
// lasso-select, a draggable parameter budget line and the Pareto front in the
// accuracy-vs-size projection, optional provenance edges. When positions change
// (projection switch, new layout) the points move with a requestAnimationFrame
// interpolation; the size axes fade with them, drawn over the size map's own fit and
// extent (never the structural map's, whose +-5,000 once meant thousands of gridlines),
// with a bounded number of ticks.
//
// The chart never fetches: the app passes everything through `update(data)`.

import { select, zoom, zoomIdentity } from "d3";
import type { ZoomBehavior, ZoomTransform } from "d3";
import type { ModelSummary, ProjectionKind } from "../types";
import { ACCENT, accuracyColor, classColor, ColorBy, FILTERED_COLOR, NO_VALUE_COLOR, originColor, UNTRAINED_COLOR } from "../lib/color";
import { CROSS_COLOR, MarkStyle, markStyle, PALE_RING } from "../lib/marks";
import { Pt, pointInPolygon, polygonBounds } from "../lib/lasso";
import { GridIndex } from "../lib/grid_index";
import { paretoFront } from "../lib/pareto";
import { applyFit, easeCubicInOut, Extent, extentOf, FitTransform, fitLayout, invertFit, linearTicks, logTicks, makeRadiusScale, makeUnitScale, sizeAxisLabels } from "../lib/scales";
import { formatParams } from "../lib/format";
import { chooseFromStack } from "../lib/pick";

/** Colour ranges start at this quantile, so a few failed models do not wash out the rest. */
const ROBUST_LOW = 0.1;

export interface MapData {
  models: ModelSummary[];
  /** Data coordinates per model id (absent = no position yet). */
  positions: Map<string, { x: number; y: number }>;
  kind: ProjectionKind;
  /** Changes whenever a new layout arrives (kind + version); triggers animation. */
  layoutKey: string;
  axes: { x: string; y: string };
  colorBy: ColorBy;
  /** Temporary colour-by-class while a class is hovered in the class view. */
  hoverClass: number | null;
  /** Ids that pass the filters; null = all. */
  visible: Set<string> | null;
  selected: Set<string>;
  inspected: string | null;
  fresh: Set<string>;
  showEdges: boolean;
  lassoMode: boolean;
  budget: number | null;
  /** Let cancelled, failed and diverged runs onto the Pareto front (default: left out). */
  includeStopped?: boolean;
}

export interface MapCallbacks {
  /** `stacked`: how many points lie under the pointer (overlapping ones). */
  onHover(id: string | null, clientX: number, clientY: number, stacked: number): void;
  /** The point clicked; among overlapping points, the one the click means (see chooseFromStack). */
  onClick(id: string | null, additive: boolean): void;
  onLasso(ids: string[], additive: boolean): void;
  onBudget(params: number): void;
}

export interface AnimationStats {
  frames: number;
  durationMs: number;
  fps: number;
}

interface PerfHook {
  renderStart?: number;
  firstDrawMs?: number;
  draws: number;
  lastDrawMs?: number;
  lastAnimation?: AnimationStats;
  lastHoverMs?: number;
  /** Per model id: the state and mark it was last drawn with, and when (Date.now(), ms). */
  drawn?: Record<string, { state: string; style: MarkStyle; t: number }>;
  /** Points drawn (inside the canvas) by the latest frame. */
  lastDrawPoints?: number;
  /** Gridlines (ticks) of the size axes drawn by the latest frame, and the most by any frame. */
  lastAxisTicks?: number;
  maxAxisTicks?: number;
}

export function perfHook(): PerfHook {
  const w = window as unknown as { __remapPerf?: PerfHook };
  if (!w.__remapPerf) w.__remapPerf = { draws: 0 };
  return w.__remapPerf;
}

const ANIM_MS = 700;

export class ModelMap {
  private readonly canvas: HTMLCanvasElement;
  private readonly overlay: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private readonly octx: CanvasRenderingContext2D;
  private readonly zoomBehavior: ZoomBehavior<HTMLCanvasElement, unknown>;
  private readonly resizeObserver: ResizeObserver;
  private data: MapData | null = null;
  private width = 0;
  private height = 0;
  private dpr = 1;
  private transform: ZoomTransform = zoomIdentity;
  private fit: FitTransform | null = null;
  /** The fit and data extent of the latest size layout: the size axes are drawn over these
   * while they fade out, not over the next map's (foreign) coordinates. */
  private axisFit: FitTransform | null = null;
  private axisExtent: { x: Extent; y: Extent } | null = null;

  // Per-point arrays (index i = ids[i]).
  private ids: string[] = [];
  private index = new Map<string, number>();
  private has: Uint8Array = new Uint8Array(0); // has a position
  private dataX = new Float64Array(0);
  private dataY = new Float64Array(0);
  private baseX = new Float32Array(0); // target, fitted (pre-zoom) px
  private baseY = new Float32Array(0);
  private curX = new Float32Array(0); // displayed, fitted px
  private curY = new Float32Array(0);
  private startX = new Float32Array(0);
  private startY = new Float32Array(0);
  private radius = new Float32Array(0);
  private maxRadius = 8;
  private fill: string[] = [];
  private style: MarkStyle[] = [];
  /** Points by "style|colour", so each group is one canvas path. */
  private groups = new Map<string, number[]>();
  private stampDue = false;
  /** Visible, positioned points by their fitted (pre-zoom) position; rebuilt on layout and filter changes. */
  private tree: GridIndex | null = null;
  private front: number[] = [];
  private lastLayoutKey = "";
  private lastKind: ProjectionKind | null = null;
  private anim: { start: number; frames: number; raf: number } | null = null;
  private drawScheduled = 0;
  private axisAlpha = 0; // fades the size axes in and out
  private axisFrom = 0;
  private axisTo = 0;

  private hovered: number = -1;
  private lasso: Pt[] | null = null;
  private lassoAdditive = false;
  private suppressClick = false;
  private draggingBudget = false;
  private disposed = false;

  constructor(
    private readonly container: HTMLElement,
    private readonly cb: MapCallbacks,
  ) {
    this.canvas = document.createElement("canvas");
    this.canvas.setAttribute("data-testid", "map-canvas");
    this.canvas.setAttribute("aria-label", "model map");
    this.overlay = document.createElement("canvas");
    this.overlay.className = "rm-map-overlay";
    container.appendChild(this.canvas);
    container.appendChild(this.overlay);
    this.ctx = this.canvas.getContext("2d")!;
    this.octx = this.overlay.getContext("2d")!;

    this.zoomBehavior = zoom<HTMLCanvasElement, unknown>()
      .scaleExtent([0.5, 60])
      .filter((ev: Event) => {
        const e = ev as MouseEvent;
        if (e.type === "wheel") return true;
        if (e.type === "dblclick") return false;
        if (e.button) return false;
        if (e.shiftKey || this.data?.lassoMode) return false;
        if (e.type === "mousedown" || e.type === "touchstart") {
          if (this.nearBudget(e as MouseEvent)) return false;
        }
        return true;
      })
      .on("zoom", (ev: { transform: ZoomTransform }) => {
        this.transform = ev.transform; // the grid is over pre-zoom positions: no rebuild
        this.scheduleDraw();
      });
    select(this.canvas).call(this.zoomBehavior).on("dblclick.zoom", null);

    this.canvas.addEventListener("pointermove", this.onPointerMove);
    this.canvas.addEventListener("pointerdown", this.onPointerDown);
    this.canvas.addEventListener("pointerleave", this.onPointerLeave);
    window.addEventListener("pointerup", this.onPointerUp);
    this.canvas.addEventListener("click", this.onClickEvent);

    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(container);
    this.resize();

    (window as unknown as { __remapMap?: unknown }).__remapMap = {
      points: () => this.screenPoints(),
      marks: () => this.marks(),
      front: () => this.front.map((i) => this.ids[i]),
      resetZoom: () => this.resetZoom(),
      pointAt: (clientX: number, clientY: number) => this.pointAt(clientX, clientY),
      lassoIds: (poly: Pt[]) => this.lassoIds(poly.map(([x, y]) => this.clientToLocal(x, y))),
      drawnCount: () => perfHook().lastDrawPoints ?? 0,
      selectedIds: () => [...(this.data?.selected ?? [])],
      axisLabels: () => (this.data && this.axisAlpha > 0.01 ? sizeAxisLabels(this.data.axes) : null),
    };
  }

  /** Reset zoom/pan to show the whole layout. */
  resetZoom(): void {
    select(this.canvas).call(this.zoomBehavior.transform, zoomIdentity);
  }

  update(data: MapData): void {
    const prev = this.data;
    this.data = data;
    const layoutChanged = !prev || data.layoutKey !== this.lastLayoutKey || data.models !== prev.models || data.positions !== prev.positions;
    if (layoutChanged) {
      const kindChanged = this.lastKind !== null && this.lastKind !== data.kind;
      this.lastLayoutKey = data.layoutKey;
      this.setPoints(data, kindChanged);
      if (kindChanged) this.resetZoom();
      this.lastKind = data.kind;
    } else if (
      !prev ||
      prev.visible !== data.visible ||
      prev.hoverClass !== data.hoverClass ||
      prev.colorBy.kind !== data.colorBy.kind ||
      (prev.colorBy.kind === "class" && data.colorBy.kind === "class" && prev.colorBy.index !== data.colorBy.index)
    ) {
      this.recolour();
    }
    // Selection, inspection, edges, lasso mode and budget change neither colours, the front nor
    // the index: at 20,000 models a click must not redo O(n log n) work before its redraw.
    if (layoutChanged || !prev || prev.visible !== data.visible || prev.kind !== data.kind || (prev.includeStopped ?? false) !== (data.includeStopped ?? false)) this.computeFront();
    if (layoutChanged || !prev || prev.visible !== data.visible) this.rebuildTree();
    if (!this.anim) this.scheduleDraw();
  }

  dispose(): void {
    this.disposed = true;
    if (this.anim) cancelAnimationFrame(this.anim.raf);
    if (this.drawScheduled) cancelAnimationFrame(this.drawScheduled);
    this.resizeObserver.disconnect();
    window.removeEventListener("pointerup", this.onPointerUp);
    select(this.canvas).on(".zoom", null);
    this.canvas.remove();
    this.overlay.remove();
  }

  // ---------------------------------------------------------------- points

  private setPoints(data: MapData, kindChanged: boolean): void {
    this.hovered = -1;
    const n = data.models.length;
    const oldIndex = this.index;
    const oldCurX = this.curX,
      oldCurY = this.curY,
      oldHas = this.has;
    this.ids = data.models.map((m) => m.id);
    this.index = new Map(this.ids.map((id, i) => [id, i]));
    this.has = new Uint8Array(n);
    this.dataX = new Float64Array(n);
    this.dataY = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const p = data.positions.get(this.ids[i]);
      if (p && Number.isFinite(p.x) && Number.isFinite(p.y)) {
        this.has[i] = 1;
        this.dataX[i] = p.x;
        this.dataY[i] = p.y;
      }
    }
    this.radius = new Float32Array(n);
    // Fewer, larger points for small populations; smaller ones when thousands overlap.
    const rMax = Math.max(3.5, Math.min(8, 8 * Math.sqrt(300 / Math.max(1, n))));
    const rScale = makeRadiusScale(data.models.map((m) => m.params), Math.max(2.5, rMax * 0.38), rMax);
    for (let i = 0; i < n; i++) this.radius[i] = rScale(data.models[i].params);
    this.maxRadius = rMax;
    for (let i = 0; i < n; i++) this.maxRadius = Math.max(this.maxRadius, this.radius[i]);
    this.computeBase();
    // Start positions: where each point is drawn now (new points start at their target).
    this.startX = new Float32Array(n);
    this.startY = new Float32Array(n);
    let moved = false;
    for (let i = 0; i < n; i++) {
      const j = oldIndex.get(this.ids[i]);
      if (j !== undefined && oldHas[j]) {
        this.startX[i] = oldCurX[j];
        this.startY[i] = oldCurY[j];
        if (this.has[i] && (Math.abs(oldCurX[j] - this.baseX[i]) > 0.5 || Math.abs(oldCurY[j] - this.baseY[i]) > 0.5)) moved = true;
      } else {
        this.startX[i] = this.baseX[i];
        this.startY[i] = this.baseY[i];
      }
    }
    this.curX = Float32Array.from(this.startX);
    this.curY = Float32Array.from(this.startY);
    this.recolour();
    this.axisFrom = this.axisAlpha;
    this.axisTo = data.kind === "size" ? 1 : 0;
    if ((moved || kindChanged) && oldIndex.size > 0) this.startAnimation();
    else {
      this.curX = Float32Array.from(this.baseX);
      this.curY = Float32Array.from(this.baseY);
      this.axisAlpha = this.axisTo;
    }
  }

  private padding(): { l: number; r: number; t: number; b: number } {
    return this.data?.kind === "size" ? { l: 54, r: 24, t: 20, b: 56 } : { l: 24, r: 24, t: 24, b: 30 };
  }

  /** Fit data coordinates into the canvas (pre-zoom px). */
  private computeBase(): void {
    const n = this.ids.length;
    this.baseX = new Float32Array(n);
    this.baseY = new Float32Array(n);
    const pts: { x: number; y: number }[] = [];
    for (let i = 0; i < n; i++) if (this.has[i]) pts.push({ x: this.dataX[i], y: this.dataY[i] });
    const pad = this.padding();
    const innerW = Math.max(10, this.width - pad.l - pad.r);
    const innerH = Math.max(10, this.height - pad.t - pad.b);
    const f = fitLayout(pts, innerW, innerH, 8, this.data?.kind !== "size");
    f.tx += pad.l;
    f.ty += pad.t;
    this.fit = f;
    if (this.data?.kind === "size") {
      this.axisFit = f;
      const ex = extentOf(pts.map((p) => p.x)),
        ey = extentOf(pts.map((p) => p.y));
      this.axisExtent = ex && ey ? { x: ex, y: ey } : null;
    }
    for (let i = 0; i < n; i++) {
      if (!this.has[i]) continue;
      const [x, y] = applyFit(f, this.dataX[i], this.dataY[i]);
      this.baseX[i] = x;
      this.baseY[i] = y;
    }
  }

  private recolour(): void {
    const d = this.data;
    if (!d) return;
    const n = this.ids.length;
    const accUnit = makeUnitScale(d.models.map((m) => m.val_accuracy), ROBUST_LOW);
    const classIdx = d.hoverClass ?? (d.colorBy.kind === "class" ? d.colorBy.index : null);
    const classUnit =
      classIdx !== null ? makeUnitScale(d.models.map((m) => (m.per_class_accuracy ? m.per_class_accuracy[classIdx] ?? null : null)), ROBUST_LOW) : null;
    this.fill = new Array(n);
    this.style = new Array(n);
    this.groups = new Map();
    for (let i = 0; i < n; i++) {
      const m = d.models[i];
      let c: string;
      const filtered = !!d.visible && !d.visible.has(m.id);
      if (filtered) c = FILTERED_COLOR;
      else if (m.status.state === "untrained" && d.colorBy.kind !== "origin") c = UNTRAINED_COLOR; // logged, never trained
      else if (classIdx !== null && classUnit) c = classColor(classUnit(m.per_class_accuracy ? m.per_class_accuracy[classIdx] ?? null : null));
      else if (d.colorBy.kind === "origin") c = originColor(m.origin, accUnit(m.val_accuracy));
      else c = accuracyColor(accUnit(m.val_accuracy));
      this.fill[i] = c;
      this.style[i] = filtered ? "filled" : markStyle(m.status.state);
      if (!this.has[i]) continue;
      const key = `${this.style[i]}|${c}`;
      let g = this.groups.get(key);
      if (!g) this.groups.set(key, (g = []));
      g.push(i);
    }
    this.stampDue = true;
  }

  private computeFront(): void {
    const d = this.data;
    this.front = [];
    if (!d || d.kind !== "size") return;
    const items = d.models
      .filter((m, i) => this.has[i] && (!d.visible || d.visible.has(m.id)))
      .map((m) => ({ id: m.id, params: m.params, accuracy: m.val_accuracy, state: m.status.state }));
    this.front = paretoFront(items, d.includeStopped ?? false).map((id) => this.index.get(id)!);
  }

  /** Grid over the visible, positioned points in pre-zoom coordinates (zoom needs no rebuild). */
  private rebuildTree(): void {
    const d = this.data;
    if (!d) return;
    const idx: number[] = [];
    for (let i = 0; i < this.ids.length; i++) {
      if (!this.has[i]) continue;
      if (d.visible && !d.visible.has(this.ids[i])) continue;
      idx.push(i);
    }
    this.tree = new GridIndex(this.baseX, this.baseY, idx);
  }

  // ---------------------------------------------------------------- animation

  private startAnimation(): void {
    if (this.anim) cancelAnimationFrame(this.anim.raf);
    const start = performance.now();
    this.anim = { start, frames: 0, raf: 0 };
    this.canvas.dataset.animating = "1";
    const step = (now: number) => {
      if (this.disposed || !this.anim) return;
      const t = Math.min(1, (now - start) / ANIM_MS);
      const e = easeCubicInOut(t);
      const n = this.ids.length;
      for (let i = 0; i < n; i++) {
        this.curX[i] = this.startX[i] + (this.baseX[i] - this.startX[i]) * e;
        this.curY[i] = this.startY[i] + (this.baseY[i] - this.startY[i]) * e;
      }
      this.axisAlpha = this.axisFrom + (this.axisTo - this.axisFrom) * e;
      this.draw();
      this.anim.frames++;
      if (t < 1) {
        this.anim.raf = requestAnimationFrame(step);
      } else {
        const durationMs = performance.now() - start;
        const frames = this.anim.frames;
        perfHook().lastAnimation = { frames, durationMs, fps: (frames * 1000) / durationMs };
        this.anim = null;
        delete this.canvas.dataset.animating;
      }
    };
    this.anim.raf = requestAnimationFrame(step);
  }

  // ---------------------------------------------------------------- drawing

  private scheduleDraw(): void {
    if (this.drawScheduled || this.anim) return;
    this.drawScheduled = requestAnimationFrame(() => {
      this.drawScheduled = 0;
      this.draw();
    });
  }

  private resize(): void {
    const rect = this.container.getBoundingClientRect();
    const w = Math.max(1, Math.floor(rect.width));
    const hh = Math.max(1, Math.floor(rect.height));
    if (w === this.width && hh === this.height) return;
    this.width = w;
    this.height = hh;
    this.dpr = window.devicePixelRatio || 1;
    for (const c of [this.canvas, this.overlay]) {
      c.width = Math.round(w * this.dpr);
      c.height = Math.round(hh * this.dpr);
      c.style.width = `${w}px`;
      c.style.height = `${hh}px`;
    }
    if (this.data) {
      this.computeBase();
      if (!this.anim) {
        this.curX = Float32Array.from(this.baseX);
        this.curY = Float32Array.from(this.baseY);
      }
      this.rebuildTree();
    }
    this.scheduleDraw();
  }

  private sx(i: number): number {
    return this.curX[i] * this.transform.k + this.transform.x;
  }
  private sy(i: number): number {
    return this.curY[i] * this.transform.k + this.transform.y;
  }

  /** Data -> screen for axes (size projection): uses the target fit. */
  private dataToScreen(x: number, y: number): [number, number] {
    const [bx, by] = applyFit(this.fit!, x, y);
    return [bx * this.transform.k + this.transform.x, by * this.transform.k + this.transform.y];
  }

  private draw(): void {
    const t0 = performance.now();
    const ctx = this.ctx;
    const d = this.data;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    if (!d) return;
    const n = this.ids.length;

    perfHook().lastAxisTicks = 0;
    if (this.axisAlpha > 0.01 && this.axisFit && this.axisExtent) this.drawSizeAxes(ctx, d, this.axisFit, this.axisExtent);

    // Provenance edges parent -> child.
    if (d.showEdges) {
      ctx.beginPath();
      for (let i = 0; i < n; i++) {
        const p = d.models[i].parent;
        if (!p || !this.has[i]) continue;
        const j = this.index.get(p);
        if (j === undefined || !this.has[j]) continue;
        const x0 = this.sx(j),
          y0 = this.sy(j),
          x1 = this.sx(i),
          y1 = this.sy(i);
        ctx.moveTo(x0, y0);
        ctx.lineTo(x1, y1);
        // small arrow head at the child
        const a = Math.atan2(y1 - y0, x1 - x0);
        const r = this.radius[i] + 1;
        const ax = x1 - Math.cos(a) * r,
          ay = y1 - Math.sin(a) * r;
        ctx.moveTo(ax, ay);
        ctx.lineTo(ax - Math.cos(a - 0.45) * 5, ay - Math.sin(a - 0.45) * 5);
        ctx.moveTo(ax, ay);
        ctx.lineTo(ax - Math.cos(a + 0.45) * 5, ay - Math.sin(a + 0.45) * 5);
      }
      ctx.strokeStyle = "rgba(120,120,120,0.45)";
      ctx.lineWidth = 1;
      ctx.stroke();
    }

    // Points, one path per style and colour (filtered-out ones first, underneath; then
    // trained models; hollow and crossed marks of stopped runs on top, so they stay visible).
    const rank = (key: string) => (key.endsWith(`|${FILTERED_COLOR}`) ? 0 : key.startsWith("filled|") ? 1 : 2);
    const order = [...this.groups.keys()].sort((a, b) => rank(a) - rank(b));
    const strokeAll = n <= 1500;
    let drawnPoints = 0;
    for (const key of order) {
      const g = this.groups.get(key)!;
      const bar = key.indexOf("|");
      const style = key.slice(0, bar) as MarkStyle;
      const c = key.slice(bar + 1);
      ctx.beginPath();
      const cross = new Path2D();
      for (const i of g) {
        const x = this.sx(i),
          y = this.sy(i),
          r = this.radius[i];
        if (x < -r || y < -r || x > this.width + r || y > this.height + r) continue;
        drawnPoints++;
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, Math.PI * 2);
        if (style === "crossed") {
          const k = r * 0.62;
          cross.moveTo(x - k, y - k);
          cross.lineTo(x + k, y + k);
          cross.moveTo(x - k, y + k);
          cross.lineTo(x + k, y - k);
        }
      }
      if (style === "filled") {
        ctx.fillStyle = c;
        ctx.fill();
        if (strokeAll && c !== FILTERED_COLOR) {
          ctx.strokeStyle = "rgba(255,255,255,0.8)";
          ctx.lineWidth = 0.75;
          ctx.stroke();
        }
        continue;
      }
      // A stopped run: a white disc with a ring in its colour (a pale colour gets a grey ring).
      ctx.fillStyle = "#ffffff";
      ctx.fill();
      ctx.strokeStyle = c === NO_VALUE_COLOR ? PALE_RING : c;
      ctx.lineWidth = 1.75;
      ctx.stroke();
      if (style === "crossed") {
        ctx.strokeStyle = CROSS_COLOR;
        ctx.lineWidth = 1.5;
        ctx.stroke(cross);
      }
    }

    // Rings: new models, selection, inspected.
    this.ring(ctx, d.fresh, ACCENT, 1.5, 2.5);
    this.ring(ctx, d.selected, "#1565c0", 2, 2.5);
    if (d.inspected && this.index.has(d.inspected)) {
      const i = this.index.get(d.inspected)!;
      if (this.has[i]) {
        const x = this.sx(i),
          y = this.sy(i),
          r = this.radius[i] + 4;
        ctx.beginPath();
        ctx.arc(x, y, r, 0, Math.PI * 2);
        ctx.strokeStyle = ACCENT;
        ctx.lineWidth = 2.5;
        ctx.stroke();
        ctx.beginPath();
        ctx.moveTo(x - r - 5, y);
        ctx.lineTo(x - r - 1, y);
        ctx.moveTo(x + r + 1, y);
        ctx.lineTo(x + r + 5, y);
        ctx.moveTo(x, y - r - 5);
        ctx.lineTo(x, y - r - 1);
        ctx.moveTo(x, y + r + 1);
        ctx.lineTo(x, y + r + 5);
        ctx.lineWidth = 1.5;
        ctx.stroke();
      }
    }
    this.drawOverlay();
    const perf = perfHook();
    perf.draws++;
    perf.lastDrawMs = performance.now() - t0;
    perf.lastDrawPoints = drawnPoints;
    this.canvas.dataset.points = String(drawnPoints);
    if (perf.firstDrawMs === undefined && n > 0) perf.firstDrawMs = performance.now() - (perf.renderStart ?? 0);
    if (this.stampDue) this.stampDrawn(d);
    document.body.dataset.mapDrawn = String(performance.now());
  }

  /** Record when each point was first drawn with its current state (the latency hook). */
  private stampDrawn(d: MapData): void {
    this.stampDue = false;
    const perf = perfHook();
    const drawn = (perf.drawn ??= {});
    const now = Date.now();
    for (let i = 0; i < this.ids.length; i++) {
      if (!this.has[i]) continue;
      const state = d.models[i].status.state;
      const seen = drawn[this.ids[i]];
      if (!seen || seen.state !== state || seen.style !== this.style[i]) drawn[this.ids[i]] = { state, style: this.style[i], t: now };
    }
  }

  private ring(ctx: CanvasRenderingContext2D, ids: Set<string>, color: string, width: number, gap: number): void {
    if (!ids.size) return;
    ctx.beginPath();
    for (const id of ids) {
      const i = this.index.get(id);
      if (i === undefined || !this.has[i]) continue;
      const x = this.sx(i),
        y = this.sy(i),
        r = this.radius[i] + gap;
      ctx.moveTo(x + r, y);
      ctx.arc(x, y, r, 0, Math.PI * 2);
    }
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.stroke();
  }

  /**
   * The accuracy-vs-size axes, gridlines and labels, at opacity `axisAlpha`, over the
   * size layout's fit `af` and data extent `ext` (also while they fade out under the
   * next map). At most MAX_TICKS gridlines per axis, whatever the range in view.
   */
  private drawSizeAxes(ctx: CanvasRenderingContext2D, d: MapData, af: FitTransform, ext: { x: Extent; y: Extent }): void {
    const a = this.axisAlpha;
    ctx.save();
    ctx.globalAlpha = a;
    const toScreen = (x: number, y: number): [number, number] => {
      const [bx, by] = applyFit(af, x, y);
      return [bx * this.transform.k + this.transform.x, by * this.transform.k + this.transform.y];
    };
    // Visible data range (from the screen edges, through the zoom), within the data's extent.
    const pad = this.padding();
    const fromScreen = (sx: number, sy: number) => invertFit(af, (sx - this.transform.x) / this.transform.k, (sy - this.transform.y) / this.transform.k);
    const [vx0, vy1] = fromScreen(pad.l, pad.t);
    const [vx1, vy0] = fromScreen(this.width - pad.r, this.height - pad.b);
    ctx.font = "11px Roboto, Arial, sans-serif";
    ctx.fillStyle = "#757575";
    ctx.strokeStyle = "#eeeeee";
    ctx.lineWidth = 1;
    let ticks = 0;
    // x: log10(params)
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const v of logTicks(Math.max(vx0, ext.x.min - 1), Math.min(vx1, ext.x.max + 1))) {
      const [x] = toScreen(v, 0);
      ctx.beginPath();
      ctx.moveTo(x, pad.t);
      ctx.lineTo(x, this.height - pad.b);
      ctx.stroke();
      ctx.fillText(formatParams(Math.pow(10, v)), x, this.height - pad.b + 4);
      ticks++;
    }
    // y: accuracy
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const yt = linearTicks(vy0, vy1);
    for (const v of yt.ticks) {
      const [, y] = toScreen(0, v);
      ctx.beginPath();
      ctx.moveTo(pad.l, y);
      ctx.lineTo(this.width - pad.r, y);
      ctx.stroke();
      ctx.fillText(`${(v * 100).toFixed(yt.step < 0.02 ? 1 : 0)}%`, pad.l - 4, y);
      ticks++;
    }
    const perf = perfHook();
    perf.lastAxisTicks = ticks;
    perf.maxAxisTicks = Math.max(perf.maxAxisTicks ?? 0, ticks);
    const labels = sizeAxisLabels(d.axes);
    ctx.fillStyle = "#424242";
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.fillText(labels.x, pad.l + (this.width - pad.l - pad.r) / 2, this.height - pad.b + 32);
    ctx.save();
    ctx.translate(12, pad.t + (this.height - pad.t - pad.b) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText(labels.y, 0, 0);
    ctx.restore();

    // Pareto front as a staircase through the current point positions.
    if (this.front.length > 1 && d.kind === "size") {
      ctx.beginPath();
      this.front.forEach((i, k) => {
        const x = this.sx(i),
          y = this.sy(i);
        if (k === 0) ctx.moveTo(x, y);
        else {
          ctx.lineTo(x, this.sy(this.front[k - 1]));
          ctx.lineTo(x, y);
        }
      });
      ctx.strokeStyle = ACCENT;
      ctx.lineWidth = 1.5;
      ctx.setLineDash([4, 3]);
      ctx.stroke();
      ctx.setLineDash([]);
    }

    // Budget line.
    if (d.budget !== null && d.budget > 0 && d.kind === "size") {
      const [bx] = this.dataToScreen(Math.log10(d.budget), 0);
      if (bx < this.width - pad.r) {
        ctx.fillStyle = "rgba(198,40,40,0.05)";
        ctx.fillRect(Math.max(bx, pad.l), pad.t, this.width - pad.r - Math.max(bx, pad.l), this.height - pad.t - pad.b);
      }
      const yb = this.height - pad.b;
      ctx.beginPath();
      ctx.moveTo(bx, pad.t);
      ctx.lineTo(bx, yb + 6);
      ctx.strokeStyle = "#c62828";
      ctx.lineWidth = 1.5;
      ctx.stroke();
      ctx.fillStyle = "#c62828";
      ctx.beginPath();
      ctx.arc(bx, yb + 6, 4, 0, Math.PI * 2);
      ctx.fill();
      ctx.font = "500 11px Roboto, Arial, sans-serif";
      ctx.textBaseline = "bottom";
      const label = `◂ budget ${formatParams(d.budget)} ▸`;
      const right = bx + 6 + ctx.measureText(label).width < this.width - pad.r;
      ctx.textAlign = right ? "left" : "right";
      ctx.fillText(label, right ? bx + 6 : bx - 6, yb - 4);
    }
    ctx.restore();
  }

  private drawOverlay(): void {
    const ctx = this.octx;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    if (this.hovered >= 0 && this.hovered < this.ids.length && this.has[this.hovered]) {
      const i = this.hovered;
      ctx.beginPath();
      ctx.arc(this.sx(i), this.sy(i), this.radius[i] + 3, 0, Math.PI * 2);
      ctx.strokeStyle = "#212121";
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    if (this.lasso && this.lasso.length > 1) {
      ctx.beginPath();
      this.lasso.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath();
      ctx.fillStyle = "rgba(21,101,192,0.08)";
      ctx.fill();
      ctx.setLineDash([4, 3]);
      ctx.strokeStyle = "#1565c0";
      ctx.lineWidth = 1.5;
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }

  // ---------------------------------------------------------------- interaction

  private local(e: MouseEvent): [number, number] {
    const r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  private screenToData(sx: number, sy: number): [number, number] {
    const bx = (sx - this.transform.x) / this.transform.k;
    const by = (sy - this.transform.y) / this.transform.k;
    return invertFit(this.fit!, bx, by);
  }

  private nearBudget(e: MouseEvent): boolean {
    const d = this.data;
    if (!d || d.kind !== "size" || d.budget === null || !this.fit) return false;
    const [x] = this.local(e);
    const [bx] = this.dataToScreen(Math.log10(d.budget), 0);
    return Math.abs(x - bx) < 6;
  }

  /** Indexes of every point under (sx, sy) in screen px (within its radius + 6), nearest first. */
  private pickStack(sx: number, sy: number): number[] {
    if (!this.tree) return [];
    const { k, x: tx, y: ty } = this.transform;
    const bx = (sx - tx) / k,
      by = (sy - ty) / k;
    const R = (this.maxRadius + 6) / k;
    const hits: [number, number][] = [];
    this.tree.forEachInBox(bx - R, by - R, bx + R, by + R, (i) => {
      const d = Math.hypot(this.baseX[i] * k + tx - sx, this.baseY[i] * k + ty - sy);
      if (d <= this.radius[i] + 6) hits.push([d, i]);
    });
    hits.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    return hits.map((h) => h[1]);
  }

  private onPointerMove = (e: PointerEvent): void => {
    const t0 = performance.now();
    const [x, y] = this.local(e);
    if (this.draggingBudget && this.fit) {
      const [dx] = this.screenToData(x, y);
      this.cb.onBudget(Math.max(1, Math.round(Math.pow(10, dx))));
      return;
    }
    if (this.lasso) {
      this.lasso.push([x, y]);
      this.drawOverlay();
      return;
    }
    this.canvas.style.cursor = this.nearBudget(e) ? "ew-resize" : this.data?.lassoMode || e.shiftKey ? "crosshair" : "default";
    const stack = this.pickStack(x, y);
    const i = stack.length ? stack[0] : -1;
    if (i !== this.hovered) {
      this.hovered = i;
      this.drawOverlay();
      this.cb.onHover(i >= 0 ? this.ids[i] : null, e.clientX, e.clientY, stack.length);
      perfHook().lastHoverMs = performance.now() - t0;
    } else if (i >= 0) {
      this.cb.onHover(this.ids[i], e.clientX, e.clientY, stack.length);
    }
    if (i >= 0) this.canvas.style.cursor = "pointer";
  };

  private onPointerLeave = (): void => {
    if (this.hovered !== -1) {
      this.hovered = -1;
      this.drawOverlay();
      this.cb.onHover(null, 0, 0, 0);
    }
  };

  private onPointerDown = (e: PointerEvent): void => {
    if (e.button !== 0) return;
    if (this.nearBudget(e)) {
      this.draggingBudget = true;
      e.preventDefault();
      return;
    }
    if (e.shiftKey || this.data?.lassoMode) {
      this.lasso = [this.local(e)];
      this.lassoAdditive = e.ctrlKey || e.metaKey;
      e.preventDefault();
    }
  };

  private onPointerUp = (): void => {
    if (this.draggingBudget) {
      this.draggingBudget = false;
      this.suppressClick = true;
      return;
    }
    if (!this.lasso) return;
    const poly = this.lasso;
    this.lasso = null;
    this.drawOverlay();
    let span = 0;
    for (const [x, y] of poly) span = Math.max(span, Math.abs(x - poly[0][0]) + Math.abs(y - poly[0][1]));
    if (poly.length < 3 || span < 6) return; // a click, not a lasso
    this.suppressClick = true;
    this.cb.onLasso(this.lassoIds(poly), this.lassoAdditive);
  };

  /**
   * Ids of the visible points inside `poly` (canvas px), in model order. Candidates come
   * from the grid cells under the polygon's bounding box (no scan of every point); each is
   * tested where it is drawn. While points move (an animation) every point is tested.
   */
  private lassoIds(poly: Pt[]): string[] {
    const d = this.data;
    if (!d || poly.length < 3) return [];
    const inside = (i: number) => pointInPolygon(this.sx(i), this.sy(i), poly);
    const out: number[] = [];
    if (this.anim || !this.tree) {
      for (let i = 0; i < this.ids.length; i++) {
        if (!this.has[i] || (d.visible && !d.visible.has(this.ids[i]))) continue;
        if (inside(i)) out.push(i);
      }
    } else {
      const b = polygonBounds(poly);
      const { k, x: tx, y: ty } = this.transform;
      const slack = 1 / k; // float rounding between pre-zoom and screen px
      this.tree.forEachInBox((b.x0 - tx) / k - slack, (b.y0 - ty) / k - slack, (b.x1 - tx) / k + slack, (b.y1 - ty) / k + slack, (i) => {
        if (inside(i)) out.push(i);
      });
      out.sort((p, q) => p - q);
    }
    return out.map((i) => this.ids[i]);
  }

  private clientToLocal(clientX: number, clientY: number): Pt {
    const r = this.canvas.getBoundingClientRect();
    return [clientX - r.left, clientY - r.top];
  }

  /** Test hook: the point a hover at (clientX, clientY) picks, and how many lie there. */
  pointAt(clientX: number, clientY: number): { id: string | null; stacked: number } {
    const [x, y] = this.clientToLocal(clientX, clientY);
    const stack = this.pickStack(x, y);
    return { id: stack.length ? this.ids[stack[0]] : null, stacked: stack.length };
  }

  private onClickEvent = (e: MouseEvent): void => {
    if (this.suppressClick) {
      this.suppressClick = false;
      return;
    }
    const [x, y] = this.local(e);
    const additive = e.shiftKey || e.ctrlKey || e.metaKey;
    const stack = this.pickStack(x, y).map((i) => this.ids[i]);
    // Overlapping points: repeated clicks cycle through them; Shift-click adds the nearest unselected one.
    this.cb.onClick(chooseFromStack(stack, this.data?.inspected ?? null, this.data?.selected ?? new Set(), additive), additive);
  };

  /** Test hook: the mark of every positioned point (its state and how it is drawn). */
  marks(): { id: string; state: string; style: MarkStyle }[] {
    const d = this.data;
    if (!d) return [];
    return this.ids.flatMap((id, i) => (this.has[i] ? [{ id, state: d.models[i].status.state, style: this.style[i] }] : []));
  }

  /** Test hook: positioned, visible points in viewport (client) coordinates. */
  screenPoints(): { id: string; x: number; y: number; r: number }[] {
    const r = this.canvas.getBoundingClientRect();
    const d = this.data;
    const out: { id: string; x: number; y: number; r: number }[] = [];
    if (!d) return out;
    for (let i = 0; i < this.ids.length; i++) {
      if (!this.has[i] || (d.visible && !d.visible.has(this.ids[i]))) continue;
      const x = this.baseX[i] * this.transform.k + this.transform.x;
      const y = this.baseY[i] * this.transform.k + this.transform.y;
      if (x < 0 || y < 0 || x > this.width || y > this.height) continue;
      out.push({ id: this.ids[i], x: r.left + x, y: r.top + y, r: this.radius[i] });
    }
    return out;
  }
}
