"""Issue #12's "new models show up at once": seconds from a worker writing a model's
"done" record to the open dashboard drawing its point as done. Target <= 1.5 s
(median of 10) with ``tensorboard --logdir`` defaults.

Set-up: a logdir of 6 digits models trained by ``remap init`` (or ``--logdir``, copied),
a real ``tensorboard`` subprocess with one local worker, and the REMAP tab in headless
Chromium. Variations of a trained model are enqueued one after the other through the
plugin's ``generate`` and ``enqueue`` routes (as a script would; the dashboard is not
told); each trains one epoch. Per model: "done written" is the model's ``wall_time``
(its newest record: the final status), "drawn" is the time the map first draws the
point with state done (``window.__remapPerf.drawn[id].t``); same machine clock.

Two configurations in the same run:

  now        TensorBoard's defaults (no --reload_interval, no --load_fast: the Rust data
             server; the plugin lowers the reload interval to 1 s when it is not given),
             the dashboard's polling (queue every 0.5 s while busy, 1 s idle; models
             every 0.25 s until a finished request's model shows its final state; layout
             retries from 0.25 s; the projection route waits up to 0.5 s for a new layout).
  baseline   the old behaviour: --reload_interval 5 (TensorBoard's default before) and
             the old polling (queue every 3 s, a finished request's model looked for at
             each queue poll, models every 20 s, layout retries every 2 s), set through
             ``window.__remapPolling`` (``LEGACY_POLLING`` in lib/polling.ts).

Run:  python benchmarks/new_model_latency.py [--n 10] [--baseline-n 10] [--load-fast auto|true|false]
      (needs the bundle: ``npm run build`` in remap_tb_frontend; a few minutes, most of
      it the baseline's waits)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser import (TRAIN_MODELS, Dashboard, TensorBoardProcess, copy_logdir,  # noqa: E402
                           launch_chromium, new_model_latencies, train_logdir)

LEGACY = {"queueIdleMs": 3000, "queueActiveMs": 3000, "modelsMs": 20000, "awaitMs": 3000,
          "awaitForMs": 60000, "projectionRetryMs": 2000}
TARGET_S = 1.5


def measure(browser, logdir_src: Path, tmp: Path, name: str, n: int, *, load_fast: str | None,
            reload_interval: float | None, polling: dict | None, seed: int) -> list[float]:
    logdir = copy_logdir(logdir_src, tmp / name / "logdir")
    server = TensorBoardProcess(logdir, tmp / name / "tensorboard.log", load_fast=load_fast,
                                reload_interval=reload_interval, workers=1).start()
    try:
        server.wait_ready(timeout=90, models=TRAIN_MODELS)
        script = f"window.__remapPolling = {json.dumps(polling)};" if polling else None
        dash = Dashboard(browser, server, init_script=script)
        try:
            dash.wait_drawn(TRAIN_MODELS)
            return new_model_latencies(dash, server, n, seed=seed)
        finally:
            if dash.errors:
                print(f"  {name}: page errors: {dash.errors[:3]}")
            dash.close()
    finally:
        server.stop()


def describe(name: str, values: list[float]) -> str:
    return (f"{name:9s} median {statistics.median(values):5.2f} s   min {min(values):5.2f}   "
            f"max {max(values):5.2f}   n={len(values)}   [" + ", ".join(f"{v:.2f}" for v in values) + "]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10, help="models measured with the current design")
    parser.add_argument("--baseline-n", type=int, default=10, help="models measured with the old polling (0: skip)")
    parser.add_argument("--load-fast", default=None, choices=("auto", "true", "false"),
                        help="pass --load_fast (default: leave it out, TensorBoard's default)")
    parser.add_argument("--logdir", type=Path, help="a trained logdir to copy (default: train 6 models)")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="remap-latency-") as tmp_name:
        tmp = Path(tmp_name)
        src = args.logdir or train_logdir(tmp / "trained")
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                now = measure(browser, src, tmp, "now", args.n, load_fast=args.load_fast, reload_interval=None,
                              polling=None, seed=100)
                print(describe("now", now), flush=True)
                base = []
                if args.baseline_n:
                    base = measure(browser, src, tmp, "baseline", args.baseline_n, load_fast=args.load_fast,
                                   reload_interval=5, polling=LEGACY, seed=200)
                    print(describe("baseline", base), flush=True)
            finally:
                browser.close()
    median = statistics.median(now)
    print(f"target: median <= {TARGET_S} s from 'done' written to the point drawn -> "
          f"{'met' if median <= TARGET_S else 'NOT met'} ({median:.2f} s"
          + (f"; baseline {statistics.median(base):.2f} s, {statistics.median(base) / median:.1f}x slower)"
             if base else ")"))
    return 0 if median <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
