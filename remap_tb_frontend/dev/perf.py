"""Performance figures of the dashboard against the fixture server, measured in
headless Chromium with the Performance API (prints figures; not a pass/fail test).

    ../.venv/bin/python dev/perf.py [--models 5000] [--repeat 3]

Prints:
  render->drawn   ms from render() to the first map draw with points
                  (window.__remapPerf.firstDrawMs; includes fetching models + projection)
  hover           ms from a pointermove on the canvas to the tooltip showing that model
                  (synchronous handler time, and to the next animation frame = painted)
  animation fps   frames/s of the projection-switch animations (requestAnimationFrame
                  frames counted by the map, and an independent rAF probe's worst gap)
Targets (issue 5): render->drawn <= 1000 ms, hover <= 50 ms, animation >= 30 fps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import ARGS, ENTRY, fixture  # noqa: E402

HOVER_JS = """async ({n}) => {
  const canvas = document.querySelector('[data-testid=map-canvas]');
  const tip = document.querySelector('[data-testid=tooltip]');
  const pts = window.__remapMap.points().filter(p => document.elementFromPoint(p.x, p.y) === canvas);
  const sync = [], painted = [];
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const p = pts[Math.floor((i * 7919) % pts.length)];
    // move away first so each measurement is a fresh hover
    canvas.dispatchEvent(new PointerEvent('pointermove', {clientX: 1, clientY: 1, bubbles: true}));
    await new Promise(r => requestAnimationFrame(r));
    const t0 = performance.now();
    canvas.dispatchEvent(new PointerEvent('pointermove', {clientX: p.x, clientY: p.y, bubbles: true}));
    const t1 = performance.now();
    await new Promise(r => requestAnimationFrame(r));
    const t2 = performance.now();
    if (tip.style.display === 'block' && tip.dataset.modelId) hits++;
    sync.push(t1 - t0); painted.push(t2 - t0);
  }
  return {sync, painted, hits, n};
}"""

ANIM_JS = """async ({kind}) => {
  const before = window.__remapPerf.lastAnimation;
  const gaps = []; let last = performance.now(); let run = true;
  const probe = (t) => { gaps.push(t - last); last = t; if (run) requestAnimationFrame(probe); };
  requestAnimationFrame(probe);
  document.querySelector(`[data-testid=projection-${kind}]`).click();
  const t0 = performance.now();
  while (window.__remapPerf.lastAnimation === before && performance.now() - t0 < 10000)
    await new Promise(r => setTimeout(r, 20));
  run = false;
  return {anim: window.__remapPerf.lastAnimation, changed: window.__remapPerf.lastAnimation !== before,
          maxGap: Math.max(...gaps.slice(2)), lastDrawMs: window.__remapPerf.lastDrawMs};
}"""


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--hovers", type=int, default=60)
    args = ap.parse_args()
    with fixture("--models", str(args.models), "--dataset", "cifar10") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        first = []
        for r in range(args.repeat):
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + ENTRY)
            page.wait_for_function("window.__remapPerf && window.__remapPerf.firstDrawMs !== undefined", timeout=30000)
            first.append(page.evaluate("window.__remapPerf.firstDrawMs"))
            n_points = page.evaluate("window.__remapMap.points().length")
            if r < args.repeat - 1:
                page.close()
        print(f"models: {args.models} ({n_points} points drawn)")
        print(f"render->drawn: median {statistics.median(first):.0f} ms  (runs: {', '.join(f'{v:.0f}' for v in first)})  target <= 1000 ms")
        page.wait_for_timeout(500)
        h = page.evaluate(HOVER_JS, {"n": args.hovers})
        print(f"hover: handler median {statistics.median(h['sync']):.2f} ms, p95 {pct(h['sync'], .95):.2f} ms; "
              f"to next frame median {statistics.median(h['painted']):.1f} ms, p95 {pct(h['painted'], .95):.1f} ms "
              f"({h['hits']}/{h['n']} showed the tooltip)  target <= 50 ms")
        for kind in ["size", "posthoc", "structural", "size", "structural"]:
            a = page.evaluate(ANIM_JS, {"kind": kind})
            an = a["anim"]
            if not a["changed"]:
                print(f"animation -> {kind}: no animation recorded")
                continue
            print(f"animation -> {kind:10s}: {an['frames']} frames in {an['durationMs']:.0f} ms = {an['fps']:.1f} fps; "
                  f"worst frame gap {a['maxGap']:.1f} ms; one draw {a['lastDrawMs']:.1f} ms  target >= 30 fps")
        if errors:
            print("page errors:", errors)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
