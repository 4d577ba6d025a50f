"""Issue #5's dashboard performance figures, measured in headless Chromium with the
Performance API (``performance.now()`` in the page), each beside its target and a
baseline timed in the same run.

Data: the real plugin in a real TensorBoard (``--load_fast=true``, no workers) over a
generated search history of N runs on ``digits`` (``benchmarks/_fixtures.scale_logdir``,
the same writer and cache as ``benchmarks/scale.py``: the trainer's records, specs from
the project's sampler and operators). The page is TensorBoard's own
``/data/plugin_entry.html?name=remap`` (its CSP); measuring starts once every map
(structural, posthoc, size) is computed, so the figures cover the dashboard and the
HTTP round trips to the real routes, not the layouts' start-up (``benchmarks/scale.py``).

Figures (median over ``--repeat`` page loads; hover over ``--hovers`` points):

  render->drawn   ms from ``render()`` to the first map draw with points
                  (``window.__remapPerf.firstDrawMs``: fetches experiments, models and
                  the projection, builds the views, draws the canvas). Target <= 1000 ms.
  hover           ms from a ``pointermove`` over a point to the tooltip showing that model:
                  the handler (quadtree pick, overlay, tooltip with its glyph), and to
                  the next animation frame (painted). Target <= 50 ms.
  animation       frames/s while points move after a projection switch (frames drawn by
                  the map's requestAnimationFrame loop / duration; and the worst gap an
                  independent rAF probe saw). Target >= 30 fps.

Baselines, same browser, same run:

  * SMALL: the same dashboard on 500 models (``--small``): how the figures scale.
  * SVG: the same N positions drawn as one SVG ``<circle>`` per model (what a plain d3
    data join would make), in the same frame: time to build and paint them; hover by
    the browser's own hit testing plus a plain tooltip; and the projection switch as
    per-frame ``cx``/``cy`` updates of every circle (what a d3 transition does).

Run:  python benchmarks/dashboard_perf.py [--models 5000] [--small 500] [--repeat 3]
      (needs the bundle: ``npm run build`` in remap_tb_frontend; a few minutes the first
      time: the logdirs are written once and cached)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _fixtures import scale_logdir  # noqa: E402
from tests.browser import TensorBoardProcess, launch_chromium  # noqa: E402

BUNDLE = REPO / "remap_tb" / "static" / "index.js"
ENTRY = "/data/plugin_entry.html?name=remap"
TARGET_DRAW_MS, TARGET_HOVER_MS, TARGET_FPS = 1000.0, 50.0, 30.0
CACHE = Path(tempfile.gettempdir()) / "remap-bench-cache" / "scale"  # shared with scale.py

HOVER_JS = """async ({n}) => {
  const canvas = document.querySelector('[data-testid=map-canvas]');
  const tip = document.querySelector('[data-testid=tooltip]');
  const pts = window.__remapMap.points().filter(p => document.elementFromPoint(p.x, p.y) === canvas);
  const sync = [], painted = [];
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const p = pts[Math.floor((i * 7919) % pts.length)];
    canvas.dispatchEvent(new PointerEvent('pointermove', {clientX: 1, clientY: 1, bubbles: true}));
    await new Promise(r => requestAnimationFrame(r));
    const t0 = performance.now();
    canvas.dispatchEvent(new PointerEvent('pointermove', {clientX: p.x, clientY: p.y, bubbles: true}));
    const t1 = performance.now();
    await new Promise(r => requestAnimationFrame(r));
    const t2 = performance.now();
    if (tip.style.display === 'block' && tip.dataset.modelId === p.id) hits++;
    sync.push(t1 - t0); painted.push(t2 - t0);
  }
  return {sync, painted, hits, n, candidates: pts.length};
}"""

ANIM_JS = """async ({kind}) => {
  const before = window.__remapPerf.lastAnimation;
  const gaps = []; let last = performance.now(); let run = true;
  const probe = (t) => { gaps.push(t - last); last = t; if (run) requestAnimationFrame(probe); };
  requestAnimationFrame(probe);
  document.querySelector(`[data-testid=projection-${kind}]`).click();
  const t0 = performance.now();
  while (window.__remapPerf.lastAnimation === before && performance.now() - t0 < 15000)
    await new Promise(r => setTimeout(r, 20));
  run = false;
  return {anim: window.__remapPerf.lastAnimation, changed: window.__remapPerf.lastAnimation !== before,
          maxGap: Math.max(...gaps.slice(2)), lastDrawMs: window.__remapPerf.lastDrawMs};
}"""

# The SVG baseline: one <circle> per model at the map's current positions, then the
# same hover and projection-switch work done the DOM way.
SVG_JS = """async ({hovers, durationMs}) => {
  const NS = 'http://www.w3.org/2000/svg';
  const wrap = document.querySelector('[data-testid=map]');
  const box = wrap.getBoundingClientRect();
  const from = window.__remapMap.points();
  const frame = () => new Promise(r => requestAnimationFrame(r));
  await frame();
  // 1. build and paint
  const t0 = performance.now();
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('width', box.width); svg.setAttribute('height', box.height);
  svg.style.cssText = `position:fixed;left:${box.left}px;top:${box.top}px;z-index:50;background:#fff`;
  const circles = from.map(p => {
    const c = document.createElementNS(NS, 'circle');
    c.setAttribute('cx', p.x - box.left); c.setAttribute('cy', p.y - box.top); c.setAttribute('r', p.r);
    c.setAttribute('fill', '#555'); c.dataset.id = p.id;
    svg.appendChild(c);
    return c;
  });
  document.body.appendChild(svg);
  svg.getBoundingClientRect();  // force style + layout
  const tBuilt = performance.now();
  await frame();
  const drawMs = performance.now() - t0;
  // 2. hover: the browser's hit testing, a tooltip div with the model id
  const tip = document.createElement('div');
  tip.style.cssText = 'position:fixed;z-index:60;background:#fff;border:1px solid #999;padding:4px;display:none';
  document.body.appendChild(tip);
  svg.addEventListener('pointermove', (e) => {
    const el = document.elementFromPoint(e.clientX, e.clientY);
    if (el && el.tagName === 'circle') {
      tip.textContent = el.dataset.id; tip.style.left = (e.clientX + 12) + 'px'; tip.style.top = (e.clientY + 12) + 'px';
      tip.style.display = 'block';
    } else tip.style.display = 'none';
  });
  const sync = [], painted = [];
  let hits = 0;
  const visible = from.filter(p => { const el = document.elementFromPoint(p.x, p.y); return el && el.dataset && el.dataset.id === p.id; });
  for (let i = 0; i < hovers && visible.length; i++) {
    const p = visible[Math.floor((i * 7919) % visible.length)];
    svg.dispatchEvent(new PointerEvent('pointermove', {clientX: box.left + 1, clientY: box.top + 1, bubbles: true}));
    await frame();
    const a = performance.now();
    svg.dispatchEvent(new PointerEvent('pointermove', {clientX: p.x, clientY: p.y, bubbles: true}));
    const b = performance.now();
    await frame();
    const c = performance.now();
    if (tip.style.display === 'block' && tip.textContent === p.id) hits++;
    sync.push(b - a); painted.push(c - a);
  }
  // 3. a projection switch: every circle moves to a shuffled position, cx/cy set each frame
  const to = from.map((_, i) => from[(i * 2654435761) % from.length]);
  let frames = 0;
  const gaps = [];
  const start = performance.now();
  let last = start;
  await new Promise(done => {
    const step = (now) => {
      const t = Math.min(1, (now - start) / durationMs);
      const e = t < 0.5 ? 4 * t * t * t : 1 - Math.pow(-2 * t + 2, 3) / 2;
      for (let i = 0; i < circles.length; i++) {
        circles[i].setAttribute('cx', from[i].x - box.left + (to[i].x - from[i].x) * e);
        circles[i].setAttribute('cy', from[i].y - box.top + (to[i].y - from[i].y) * e);
      }
      frames++; gaps.push(now - last); last = now;
      if (t < 1) requestAnimationFrame(step); else done();
    };
    requestAnimationFrame(step);
  });
  const animMs = performance.now() - start;
  svg.remove(); tip.remove();
  return {n: circles.length, buildMs: tBuilt - t0, drawMs, sync, painted, hits, hoverN: sync.length,
          frames, animMs, fps: frames * 1000 / animMs, maxGap: Math.max(...gaps.slice(2))};
}"""


@contextmanager
def real_plugin(models: int, seed: int = 0, timeout: float = 900):
    """TensorBoard with the remap plugin over a cached logdir of ``models`` runs, once every
    map is computed; yields its root URL."""
    from scale import wait_maps  # noqa: E402  (benchmarks/scale.py: the same polling)

    logdir, history = scale_logdir(models, seed, CACHE, processes=2)
    log = CACHE / f"dashboard-perf-n{models}.log"
    with TensorBoardProcess(logdir, log, load_fast="true", workers=0, reload_interval=None) as tb:
        start = time.monotonic()
        tb.wait_ready(timeout=timeout, models=models)
        experiment = tb.plugin_json("experiments")["experiments"][0]["id"]
        expected = {"structural": models, "structural_normalised": models, "posthoc": history["done"],
                    "size": history["done"]}
        ready, _ = wait_maps(tb, experiment, expected, start, timeout)
        if len(ready) < len(expected):
            raise RuntimeError(f"maps not ready after {timeout} s: {sorted(set(expected) - set(ready))}")
        yield tb.root


def median(values):
    return statistics.median(values) if values else float("nan")


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))] if v else float("nan")


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def measure(browser, base: str, repeat: int, hovers: int, svg: bool) -> dict:
    """Load the dashboard ``repeat`` times; hover and switch projections on the last page."""
    first, errors = [], []
    page = None
    for r in range(repeat):
        if page is not None:
            page.close()
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and "Failed to load resource" not in m.text
                and errors.append(m.text))
        page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico")
                and errors.append(f"HTTP {r.status}: {r.url}"))
        page.goto(base + ENTRY)
        page.wait_for_function("window.__remapPerf && window.__remapPerf.firstDrawMs !== undefined", timeout=60000)
        first.append(page.evaluate("window.__remapPerf.firstDrawMs"))
    points = page.evaluate("window.__remapMap.points().length")
    page.wait_for_timeout(500)
    hover = page.evaluate(HOVER_JS, {"n": hovers})
    anims = []
    for kind in ["size", "posthoc", "structural", "size", "structural"]:
        a = page.evaluate(ANIM_JS, {"kind": kind})
        if a["changed"]:
            anims.append({"kind": kind, **a["anim"], "maxGap": a["maxGap"], "drawMs": a["lastDrawMs"]})
    out = {"first": first, "points": points, "hover": hover, "anims": anims, "errors": errors}
    if svg:
        page.evaluate("document.querySelector('[data-testid=projection-structural]').click()")
        page.wait_for_timeout(1200)
        out["svg"] = page.evaluate(SVG_JS, {"hovers": hovers, "durationMs": 750})
    page.close()
    return out


def report(label: str, m: dict, targets: bool) -> None:
    first, h, anims = m["first"], m["hover"], m["anims"]
    print(f"{label}: {m['points']} points drawn")
    draw = median(first)
    t = f"  target <= {TARGET_DRAW_MS:.0f} ms: {verdict(draw <= TARGET_DRAW_MS)}" if targets else ""
    print(f"  render->drawn     median {draw:7.0f} ms   (runs {', '.join(f'{v:.0f}' for v in first)}){t}")
    hov = median(h["painted"])
    t = f"  target <= {TARGET_HOVER_MS:.0f} ms: {verdict(pct(h['painted'], .95) <= TARGET_HOVER_MS)}" if targets else ""
    print(f"  hover -> painted  median {hov:7.1f} ms, p95 {pct(h['painted'], .95):.1f} ms; handler median "
          f"{median(h['sync']):.2f} ms, p95 {pct(h['sync'], .95):.2f} ms ({h['hits']}/{h['n']} tooltips right){t}")
    if anims:
        fps = [a["fps"] for a in anims]
        t = f"  target >= {TARGET_FPS:.0f} fps: {verdict(min(fps) >= TARGET_FPS)}" if targets else ""
        print(f"  animation         median {median(fps):5.1f} fps, worst {min(fps):.1f} fps over {len(anims)} switches; "
              f"worst rAF gap {max(a['maxGap'] for a in anims):.1f} ms; one full draw {median([a['drawMs'] for a in anims]):.1f} ms{t}")
        for a in anims:
            print(f"      -> {a['kind']:10s} {a['frames']:3d} frames in {a['durationMs']:4.0f} ms = {a['fps']:5.1f} fps")
    else:
        print("  animation         none recorded")
    if m["errors"]:
        print(f"  PAGE ERRORS: {m['errors'][:5]}")


def report_svg(s: dict) -> None:
    print(f"BASELINE svg: the same {s['n']} points as SVG <circle>s in the same frame")
    print(f"  build + paint     {s['drawMs']:7.0f} ms   (DOM build + layout {s['buildMs']:.0f} ms; no fetching, so compare "
          f"with the canvas's 'one full draw' above, not with its render->drawn)")
    print(f"  hover -> painted  median {median(s['painted']):7.1f} ms, p95 {pct(s['painted'], .95):.1f} ms; handler median "
          f"{median(s['sync']):.2f} ms ({s['hits']}/{s['hoverN']} tooltips right)")
    print(f"  animation         {s['fps']:5.1f} fps ({s['frames']} frames in {s['animMs']:.0f} ms; worst gap {s['maxGap']:.1f} ms)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=5000)
    ap.add_argument("--small", type=int, default=500, help="models of the SMALL baseline (0: skip)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--hovers", type=int, default=60)
    args = ap.parse_args()
    if not BUNDLE.exists():
        print(f"no bundle at {BUNDLE}: run `npm run build` in remap_tb_frontend", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    t0 = time.monotonic()
    with sync_playwright() as p:
        browser = launch_chromium(p)
        print(f"Chromium {browser.version}, headless, viewport 1440x900; the real plugin in TensorBoard over "
              f"generated digits runs")
        with real_plugin(args.models) as base:
            big = measure(browser, base, args.repeat, args.hovers, svg=True)
        small = None
        if args.small:
            with real_plugin(args.small) as base:
                small = measure(browser, base, args.repeat, args.hovers, svg=False)
        browser.close()
    print()
    report(f"DASHBOARD (canvas) with {args.models} models", big, targets=True)
    if small:
        report(f"BASELINE small: the same dashboard with {args.small} models", small, targets=False)
    report_svg(big["svg"])
    print(f"\n({time.monotonic() - t0:.0f} s)")
    return 1 if big["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
