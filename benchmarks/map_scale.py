"""The model map's own cost at scale (issue 13), in headless Chromium: the map chart
(``remap_tb_frontend/src/charts/map.ts``) alone, on N synthetic models, beside the same
chart as committed at a git revision (``--baseline``, default ``HEAD``) bundled in the same
run, so each figure has a baseline from the same browser and machine.

Figures per N (``--sizes``, default 1,000 5,000 20,000):

  draw            ms of script for one full draw of the accuracy-vs-size map
                  (``__remapPerf.lastDrawMs``, median of 5 redraws), the points it drew, and
                  "frame": ms across the two animation frames that draw and follow it
                  (rasterising included; 2 x 16.7 ms is the floor).
  switch          the switch "Accuracy vs size" -> "Structure" (structural coordinates
                  spread over +-5,000, as the unnormalised OTMANN layout is): ms of the
                  chart's ``update`` (new positions, colours, index), the longest
                  main-thread frame while the points move and the size axes fade out, and the
                  canvas ``fillText`` calls in the worst frame (tick labels: the freeze drew
                  thousands per frame).
  hover           ms for a ``pointermove`` over a point (pick + overlay + the hover callback),
                  median over 50 points; "painted": to the next animation frame (the
                  tooltip itself is the app's, independent of N: dashboard_perf.py).
  lasso           ms for a lasso (pointer up: the ids inside a 40-vertex polygon), median of 5.
  select          ms of the chart's ``update`` for a click that selects and inspects a model
                  (before its redraw), median of 5.

Nothing here goes over HTTP: ``benchmarks/dashboard_perf.py`` and the browser tests
cover the whole tab. Synthetic data: seeded positions (a log-normal parameter count and an
accuracy per model; Gaussian structural coordinates), states cycling through done,
cancelled, failed and untrained.

Run:  python benchmarks/map_scale.py [--sizes 1000 5000 20000] [--baseline HEAD]
      (needs ``npm ci`` in remap_tb_frontend; about a minute)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import io
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.browser import launch_chromium  # noqa: E402

FRONTEND = REPO / "remap_tb_frontend"
ESBUILD = FRONTEND / "node_modules" / ".bin" / "esbuild"

ENTRY = r"""
import { ModelMap } from "__MAP__";

function rng(seed) {
  let a = seed >>> 0;
  return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
function gauss(r) { return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()); }
const STATES = ["done", "done", "done", "done", "done", "done", "cancelled", "failed", "untrained", "done"];

function dataset(n) {
  const r = rng(n);
  const models = [], size = new Map(), structural = new Map();
  for (let i = 0; i < n; i++) {
    const id = "m" + i;
    const params = Math.round(Math.pow(10, 3 + 3 * r()));
    const acc = STATES[i % 10] === "untrained" ? null : 0.1 + 0.88 * r();
    models.push({ id, params, val_accuracy: acc, train_accuracy: acc, per_class_accuracy: null, origin: "initial",
      parent: i > 10 && r() < 0.5 ? "m" + Math.floor(r() * i) : null, status: { state: STATES[i % 10], epoch: 1, epochs: 1 } });
    if (acc !== null) size.set(id, { x: Math.log10(params), y: acc });
    structural.set(id, { x: 2000 * gauss(r), y: 2000 * gauss(r) });
  }
  return { models, size, structural };
}

function base(models, positions, kind, key) {
  return { models, positions, kind, layoutKey: key, axes: kind === "size" ? { x: "log10(parameters)", y: "validation accuracy" } : { x: "", y: "" },
    colorBy: { kind: "accuracy" }, hoverClass: null, visible: null, selected: new Set(), inspected: null, fresh: new Set(),
    showEdges: false, lassoMode: false, budget: null };
}
const frame = () => new Promise((res) => requestAnimationFrame(() => res(performance.now())));
const median = (v) => { const s = [...v].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

window.runBench = async (n) => {
  document.body.innerHTML = "";
  const box = document.createElement("div");
  box.style.cssText = "position:relative;width:1200px;height:720px";
  document.body.appendChild(box);
  let hovered = null, lassoed = null;
  const map = new ModelMap(box, { onHover: (id) => { hovered = id; }, onClick() {}, onLasso: (ids) => { lassoed = ids; }, onBudget() {} });
  const { models, size, structural } = dataset(n);
  map.update(base(models, size, "size", "size:1"));
  await frame(); await frame();
  const perf = window.__remapPerf;
  const draws = [], frames = [];
  for (let k = 0; k < 5; k++) {
    const a = await frame();
    map.update(base(models, size, "size", "size:1")); // redrawn in the next frame
    await frame();
    draws.push(perf.lastDrawMs);
    frames.push((await frame()) - a); // two frames: the one that draws (and is rasterised) and the next
  }
  const drawn = perf.lastDrawPoints ?? window.__remapMap.points().length;

  // A click that selects a model: the chart's update (the redraw follows in the next frame).
  const selects = [];
  for (let k = 0; k < 5; k++) {
    await frame();
    const d = base(models, size, "size", "size:1");
    d.selected = new Set([models[k * 7].id]);
    d.inspected = models[k * 7].id;
    const t0 = performance.now();
    map.update(d);
    selects.push(performance.now() - t0);
  }
  await frame();

  // Hover: a pointermove over 50 points (synchronous handler).
  const canvas = box.querySelector("canvas");
  const pts = window.__remapMap.points();
  const hovers = [], painted = [];
  let hits = 0;
  const overlay = box.querySelectorAll("canvas")[1];
  for (let k = 0; k < 50; k++) {
    const p = pts[Math.floor((k * pts.length) / 50)];
    await frame();
    const t0 = performance.now();
    canvas.dispatchEvent(new PointerEvent("pointermove", { clientX: p.x, clientY: p.y, bubbles: true }));
    hovers.push(performance.now() - t0);
    overlay.getContext("2d").getImageData(0, 0, 1, 1); // the hover ring rasterised
    await frame();
    painted.push(performance.now() - t0);
    if (hovered) hits++;
    canvas.dispatchEvent(new PointerEvent("pointermove", { clientX: 2, clientY: 2, bubbles: true }));
  }

  // Lasso: shift-drag a 40-vertex circle around the middle.
  const rect = canvas.getBoundingClientRect();
  const lassos = [];
  let selectedCount = 0;
  for (let k = 0; k < 5; k++) {
    const cx = rect.left + 600, cy = rect.top + 360, R = 150 + 20 * k;
    canvas.dispatchEvent(new PointerEvent("pointerdown", { clientX: cx + R, clientY: cy, shiftKey: true, button: 0, bubbles: true }));
    for (let j = 1; j <= 40; j++) {
      const a = (j / 40) * 2 * Math.PI;
      canvas.dispatchEvent(new PointerEvent("pointermove", { clientX: cx + R * Math.cos(a), clientY: cy + R * Math.sin(a), shiftKey: true, bubbles: true }));
    }
    const t0 = performance.now();
    window.dispatchEvent(new PointerEvent("pointerup", { clientX: cx + R, clientY: cy, bubbles: true }));
    lassos.push(performance.now() - t0);
    selectedCount = lassoed ? lassoed.length : 0;
  }

  // Switch size -> structure: the frames while points move and the axes fade out.
  const proto = CanvasRenderingContext2D.prototype;
  const realFillText = proto.fillText;
  let texts = 0;
  proto.fillText = function (...a) { texts++; return realFillText.apply(this, a); };
  const gaps = [], textsPerFrame = [];
  let last = await frame();
  texts = 0;
  const tu = performance.now();
  map.update(base(models, structural, "structural", "structural:1"));
  const updateMs = performance.now() - tu;
  const t0 = performance.now();
  while (performance.now() - t0 < 1500) {
    const now = await frame();
    gaps.push(now - last);
    textsPerFrame.push(texts);
    texts = 0;
    last = now;
  }
  proto.fillText = realFillText;
  const maxGap = Math.max(...gaps);
  map.dispose();
  return { n, drawn, drawMs: median(draws), frameMs: median(frames), selectMs: median(selects), hoverMs: median(hovers), hoverPaintedMs: median(painted), hoverHits: hits, lassoMs: median(lassos), selectedCount,
           switchMaxFrameMs: maxGap, switchMaxTexts: Math.max(...textsPerFrame), switchFrames: gaps.length,
           switchUpdateMs: updateMs, animFps: (perf.lastAnimation || {}).fps };
};
"""


def bundle(src: Path, out: Path) -> None:
    entry = out.with_suffix(".entry.js")
    entry.write_text(ENTRY.replace("__MAP__", str(src / "charts" / "map.ts")))
    subprocess.run([str(ESBUILD), str(entry), "--bundle", "--format=iife", "--target=es2020", f"--outfile={out}",
                    "--log-level=warning"], cwd=FRONTEND, check=True,
                   env={**os.environ, "NODE_PATH": str(FRONTEND / "node_modules")})  # d3 for a baseline outside the tree


def baseline_src(rev: str, tmp: Path) -> Path:
    """``remap_tb_frontend/src`` as committed at ``rev`` (read with ``git archive``)."""
    data = subprocess.run(["git", "archive", rev, "remap_tb_frontend/src"], cwd=REPO, check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "remap_tb_frontend" / "src"


def run(page, script: Path, n: int) -> dict:
    page.goto("about:blank")
    page.set_content("<!doctype html><html><body style='margin:0'></body></html>")
    page.add_script_tag(path=str(script))
    return page.evaluate("n => window.runBench(n)", n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--baseline", default="HEAD", help="git revision of the baseline chart (default HEAD)")
    ap.add_argument("--no-baseline", action="store_true", help="measure the working tree only")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        scripts = {"current": tmp / "current.js"}
        bundle(FRONTEND / "src", scripts["current"])
        if not args.no_baseline:
            scripts[f"baseline {args.baseline}"] = tmp / "baseline.js"
            bundle(baseline_src(args.baseline, tmp / "base"), scripts[f"baseline {args.baseline}"])
        rows = []
        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for n in args.sizes:
                for name, script in scripts.items():
                    r = run(page, script, n)
                    r["code"] = name
                    rows.append(r)
                    print(json.dumps(r), flush=True)
            browser.close()
    print()
    head = (f"{'N':>6} {'code':<14} {'drawn':>6} {'draw ms':>8} {'frame ms':>9} {'hover ms':>9} {'painted':>8} {'lasso ms':>9} "
            f"{'selected':>8} {'select ms':>9} {'switch: update ms':>18} {'worst frame ms':>15} {'texts/frame':>12}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['n']:>6} {r['code']:<14} {r['drawn']:>6} {r['drawMs']:>8.1f} {r['frameMs']:>9.1f} {r['hoverMs']:>9.2f} "
              f"{r['hoverPaintedMs']:>8.1f} {r['lassoMs']:>9.2f} {r['selectedCount']:>8} {r['selectMs']:>9.1f} {r['switchUpdateMs']:>18.0f} "
              f"{r['switchMaxFrameMs']:>15.0f} {r['switchMaxTexts']:>12}")
    print("\ntargets (issue 13): 20,000 points in one frame; hover -> tooltip <= 50 ms; no freeze on the switch")


if __name__ == "__main__":
    main()
