"""Issue #13's figures on the real plugin: a search history of 1,000 to 20,000 runs.

For each size it writes (once, cached) a logdir of realistic finished runs with the
project's own writers, starts the real TensorBoard on it (``python -m tensorboard.main``
with the remap plugin, ``--load_fast`` as asked, no local workers) and prints:

  every map ready      seconds from starting TensorBoard until each projection route
                       (structural, structural_normalised = "relative", posthoc =
                       "prediction", size) answers ``computing: false`` with every point,
                       polled every 0.5 s as a dashboard would (all four at once)
  memory               resident memory of TensorBoard (and of its Rust data server with
                       --load_fast=true) once every map is ready, and the peak (VmHWM)
  tab -> drawn         Chromium: TensorBoard's ``#remap`` URL opened -> the map drawn with
                       every point (wall clock in the test), and the frame's own
                       ``__remapPerf.firstDrawMs`` (render() -> first draw)
  hover -> painted     a ``pointermove`` over a point -> the tooltip shows that model, to the
                       next animation frame (as ``dashboard_perf.py``)
  route p50/p95        ``models``, ``projection`` (the four kinds), ``model`` and ``compare``
                       (two random runs), one call at a time, spaced 0.5-2 s apart at random
  new model placed     a finished run written into the logdir (the trainer's records) ->
                       present on every map (polled every 50 ms)
  HParams (reference)  TensorBoard's own HParams routes (``experiment``, ``session_groups``)
                       on the same logdir, timed alike

The data: ``benchmarks/_fixtures.scale_history`` -- a search history on ``digits``:
5 % sampled roots, then 70 % variations (``remap_tb.spec.operators.variations``) of a
better-of-two earlier model, 30 % fresh samples; accuracy inherited with noise,
predictions inherited (a child re-draws 15 % of its parent's validation answers), curves
over 1-6 epochs, 94 % done, 3 % failed, 3 % diverged. Written by ``write_history``
(``trainer.summaries.RunWriter`` and ``remap_tb.metadata``'s records) in parallel
processes, cached under ``$TMPDIR/remap-bench-cache/scale/n<N>-seed<S>-f<F>`` (``--cache``) so reruns start
at once; the plugin's own caches (``<logdir>/.remap``) are removed before each start.

At 20,000 runs TensorBoard's Rust data server needs an open-file limit above the run
count (it keeps each run's event file open); the script raises its soft limit up to the
hard one and warns when that is not enough.

Run:  python benchmarks/scale.py [--sizes 1000,5000,20000] [--load-fast true|false|both]
                                 [--skip-browser] [--calls 40] [--new-models 3]
(needs the bundle for the browser figures: ``npm run build`` in remap_tb_frontend)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _fixtures import ROOT, pct, scale_logdir, write_one_run  # noqa: E402

sys.path.insert(0, str(ROOT))
from tests.browser import Dashboard, TensorBoardProcess, launch_chromium  # noqa: E402

KINDS = ("structural", "structural_normalised", "posthoc", "size")
# Issue #13's goals: (5,000 runs, 20,000 runs).
GOALS = {"ready_s": (15, 60), "rss_mb": (1024, 2560), "draw_ms": (1000, 1500), "hover_ms": (50, 50),
         "p95_ms": (200, 200), "new_s": (0.5, 1.0)}
CACHE = Path(tempfile.gettempdir()) / "remap-bench-cache" / "scale"  # outside the repository

HOVER_JS = """async ({n}) => {
  const canvas = document.querySelector('[data-testid=map-canvas]');
  const tip = document.querySelector('[data-testid=tooltip]');
  const pts = window.__remapMap.points().filter(p => document.elementFromPoint(p.x, p.y) === canvas);
  const painted = [];
  let hits = 0;
  for (let i = 0; i < n && pts.length; i++) {
    const p = pts[Math.floor((i * 7919) % pts.length)];
    canvas.dispatchEvent(new PointerEvent('pointermove', {clientX: 1, clientY: 1, bubbles: true}));
    await new Promise(r => requestAnimationFrame(r));
    const t0 = performance.now();
    canvas.dispatchEvent(new PointerEvent('pointermove', {clientX: p.x, clientY: p.y, bubbles: true}));
    await new Promise(r => requestAnimationFrame(r));
    painted.push(performance.now() - t0);
    if (tip && tip.style.display === 'block' && tip.dataset.modelId === p.id) hits++;
  }
  return {painted, hits, n: painted.length, candidates: pts.length};
}"""


# -- memory of a process tree ----------------------------------------------------------------


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def tree_memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (MB) of ``pid`` and of its descendants (the Rust data server)."""
    pids, stack = [], [pid]
    while stack:
        p = stack.pop()
        pids.append(p)
        stack += _children(p)
    rss = [_status_kb(p, "VmRSS") / 1024 for p in pids]
    hwm = [_status_kb(p, "VmHWM") / 1024 for p in pids]
    return {"rss": rss[0], "hwm": hwm[0], "rss_children": sum(rss[1:]), "hwm_children": sum(hwm[1:]),
            "rss_total": sum(rss)}


# -- HTTP ----------------------------------------------------------------------------------------


def get(tb: TensorBoardProcess, path: str, timeout: float = 120) -> tuple[int, bytes, float]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(tb.url(path), timeout=timeout) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    return status, body, time.perf_counter() - start


def post(tb: TensorBoardProcess, path: str, body: Any, timeout: float = 120) -> tuple[int, bytes, float]:
    request = urllib.request.Request(tb.url(path), method="POST", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "X-Requested-With": "XMLHttpRequest"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            out, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        out, status = e.read(), e.code
    return status, out, time.perf_counter() - start


def plugin(route: str) -> str:
    return f"/data/plugin/remap/{route}"


def projection(tb: TensorBoardProcess, experiment: str, kind: str) -> tuple[dict | None, float]:
    status, body, t = get(tb, plugin(f"projection?experiment={urllib.parse.quote(experiment)}&kind={kind}"))
    return (json.loads(body) if status == 200 else None), t


# -- the measurements ----------------------------------------------------------------------------


def wait_maps(tb: TensorBoardProcess, experiment: str, expected: dict[str, int], start: float,
              timeout: float, poll: float = 0.5) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds (since ``start``) at which each map had ``expected[kind]`` points and was not
    computing; and the slowest projection answer of each kind while waiting."""
    ready: dict[str, float] = {}
    slowest = dict.fromkeys(KINDS, 0.0)
    deadline = time.monotonic() + timeout
    while len(ready) < len(KINDS) and time.monotonic() < deadline:
        for kind in KINDS:
            if kind in ready:
                continue
            answer, t = projection(tb, experiment, kind)
            slowest[kind] = max(slowest[kind], t)
            if answer and answer.get("error"):
                raise RuntimeError(f"{kind}: {answer['error']}")
            if answer and not answer["computing"] and len(answer["points"]) >= expected[kind]:
                ready[kind] = time.monotonic() - start
                print(f"  ... map {kind} ready at {ready[kind]:.1f} s", file=sys.stderr, flush=True)
        time.sleep(poll)
    return ready, slowest


def wait_listed(tb: TensorBoardProcess, n: int, deadline: float) -> str:
    """Wait until the plugin lists ``n`` models (the first answer parses every run: no
    30 s client timeout as in ``TensorBoardProcess.wait_ready``); the experiment id."""
    tb.wait_for_port(deadline)
    while time.monotonic() < deadline:
        try:
            status, body, _ = get(tb, plugin("experiments"), timeout=max(1.0, deadline - time.monotonic()))
        except (OSError, urllib.error.URLError):
            status, body = 0, b""
        if status == 200:
            experiments = json.loads(body)["experiments"]
            if experiments and sum(e["n_models"] for e in experiments) >= n:
                return experiments[0]["id"]
        if tb.process.poll() is not None:
            raise RuntimeError(f"TensorBoard exited:\n{tb.log()}")
        time.sleep(0.2)
    raise RuntimeError(f"the plugin did not list {n} models in time:\n{tb.log()}")


def route_latencies(tb: TensorBoardProcess, experiment: str, runs: list[str], calls: int,
                    rng: random.Random, spacing: tuple[float, float] = (0.5, 2.0)) -> dict[str, list[float]]:
    """``calls`` calls in turn over models, projection, model and compare, ``spacing`` s apart."""
    q = urllib.parse.quote
    out: dict[str, list[float]] = {"models": [], "projection": [], "model": [], "compare": []}
    names = list(out)
    for i in range(calls):
        time.sleep(rng.uniform(*spacing))
        name = names[i % len(names)]
        if name == "models":
            path = f"models?experiment={q(experiment)}"
        elif name == "projection":
            path = f"projection?experiment={q(experiment)}&kind={KINDS[(i // 4) % len(KINDS)]}"
        elif name == "model":
            path = f"model?run={q(rng.choice(runs))}"
        else:
            path = f"compare?runs={','.join(q(r) for r in rng.sample(runs, 2))}"
        status, body, t = get(tb, plugin(path))
        if status != 200:
            raise RuntimeError(f"{path}: {status} {body[:300]!r}")
        out[name].append(t)
    return out


def hparams_latencies(tb: TensorBoardProcess, calls: int) -> dict[str, list[float]]:
    """TensorBoard's own HParams routes on the same logdir (the first call of each first)."""
    experiment = {"experimentName": ""}
    groups = {"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                                       "STATUS_RUNNING"],
              "colParams": [], "startIndex": 0, "sliceSize": 100}
    out: dict[str, list[float]] = {"experiment": [], "session_groups": []}
    for i in range(calls):
        for name, body in (("experiment", experiment), ("session_groups", groups)):
            status, answer, t = post(tb, f"/data/plugin/hparams/{name}", body)
            if status != 200:
                raise RuntimeError(f"hparams/{name}: {status} {answer[:300]!r}")
            out[name].append(t)
        time.sleep(0.5)
    return out


def new_model_latency(tb: TensorBoardProcess, logdir: Path, experiment: str, history: dict, count: int,
                      timeout: float = 60) -> list[dict[str, float]]:
    """Write ``count`` finished runs one after the other; for each, seconds from its event
    file being closed to it being in ``models`` (done) and on each map, every route polled
    every 50 ms by its own thread (as the dashboard's polls run side by side). ``models`` is
    asked as the dashboard asks it: with ``since`` the version of the list it holds, so
    that each poll carries only what changed."""
    from concurrent.futures import ThreadPoolExecutor

    q = urllib.parse.quote(experiment)

    def poll(route: str, run: str, closed: float, version: str | None) -> float:
        while time.time() - closed < timeout:
            since = f"&since={urllib.parse.quote(version)}" if version and route.startswith("models") else ""
            status, body, _ = get(tb, plugin(route + since))
            if status == 200:
                answer = json.loads(body)
                if route.startswith("models"):
                    version = answer.get("version")  # as the dashboard does: only what changed since
                    if any(m["run"] == run and m["status"]["state"] == "done" for m in answer["models"]):
                        return time.time() - closed
                elif not answer["computing"] and any(p["id"] == run for p in answer["points"]):
                    return time.time() - closed
            time.sleep(0.05)
        raise RuntimeError(f"{run} not in {route} after {timeout} s")

    routes = {"models": f"models?experiment={q}", **{k: f"projection?experiment={q}&kind={k}" for k in KINDS}}
    out = []
    with ThreadPoolExecutor(len(routes)) as pool:
        for k in range(count):
            run = f"new-{k:02d}-{time.time_ns()}"
            _, body, _ = get(tb, plugin(routes["models"]))  # the list a dashboard holds
            version = json.loads(body).get("version")
            closed = write_one_run(str(logdir), run, history, seed=1000 + k)
            futures = {key: pool.submit(poll, route, run, closed, version) for key, route in routes.items()}
            out.append({key: f.result() for key, f in futures.items()})
            time.sleep(1.0)
    return out


def browser_figures(playwright, tb: TensorBoardProcess, points: int, hovers: int) -> dict:
    browser = launch_chromium(playwright)
    try:
        start = time.perf_counter()
        dash = Dashboard(browser, tb, width=1440, height=900)
        dash.wait_drawn(points, timeout=120)
        opened_s = time.perf_counter() - start
        first = dash.frame.evaluate("(window.__remapPerf || {}).firstDrawMs")
        frame_ms = dash.frame.evaluate("performance.now()")  # since the plugin frame's navigation (an upper bound)
        dash.page.wait_for_timeout(500)
        hover = dash.frame.evaluate(HOVER_JS, {"n": hovers})
        errors = list(dash.errors)
        dash.close()
    finally:
        browser.close()
    return {"opened_ms": opened_s * 1000, "frame_ms": frame_ms, "first_draw_ms": first, "hover": hover,
            "errors": errors}


def raise_open_files(n: int) -> None:
    """TensorBoard's Rust data server keeps every run's event file open: at 20,000 runs it
    needs more than a common ``ulimit -n`` (its runs then come and go: "Too many open
    files"). Raise this process's limit (inherited by TensorBoard) when allowed."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * n + 4096
    if soft >= want:
        return
    for limits in ((want, max(hard, want)), (min(want, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            break
        except (ValueError, OSError):
            continue
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < n + 1024:
        print(f"warning: open-file limit {soft} is below {n:,} runs + 1,024: TensorBoard's data server will "
              f"fail to open some (raise `ulimit -n`)", file=sys.stderr)


def measure(n: int, seed: int, load_fast: str, args, playwright) -> dict:
    logdir, history = scale_logdir(n, seed, Path(args.cache), processes=args.processes)
    shutil.rmtree(logdir / ".remap", ignore_errors=True)  # the plugin's caches: a cold start
    for stale in logdir.glob("new-*"):
        shutil.rmtree(stale)
    expected = {"structural": n, "structural_normalised": n, "posthoc": history["done"], "size": history["done"]}
    log = Path(args.cache) / f"tensorboard-n{n}-{load_fast}.log"
    tb = TensorBoardProcess(logdir, log, load_fast=load_fast, workers=0, reload_interval=None,
                            cwd=args.plugin_src or ROOT)
    out: dict[str, Any] = {"n": n, "load_fast": load_fast}
    if load_fast != "false":
        raise_open_files(n)
    start = time.monotonic()
    tb.start()
    try:
        experiment = wait_listed(tb, n, start + args.timeout)
        out["listed_s"] = time.monotonic() - start
        print(f"  ... {n:,} models listed at {out['listed_s']:.1f} s", file=sys.stderr, flush=True)
        ready, slowest = wait_maps(tb, experiment, expected, start, args.timeout)
        out["ready"], out["slowest_poll"] = ready, slowest
        if len(ready) < len(KINDS):
            out["not_ready"] = sorted(set(KINDS) - set(ready))
            return out
        time.sleep(1.0)
        out["memory_ready"] = tree_memory(tb.process.pid)
        rng = random.Random(seed)
        # Each route's first call builds what later ones reuse (summaries, POT's import): timed apart.
        out["first_calls"] = route_latencies(tb, experiment, history["runs"], 4, rng, spacing=(0.0, 0.0))
        out["routes"] = route_latencies(tb, experiment, history["runs"], args.calls, rng)
        out["hparams"] = hparams_latencies(tb, max(2, args.calls // 8))
        if playwright is not None:
            out["browser"] = browser_figures(playwright, tb, n, args.hovers)
        out["new"] = new_model_latency(tb, logdir, experiment, history, args.new_models)
        out["memory_end"] = tree_memory(tb.process.pid)
    finally:
        tb.stop()
        for new in logdir.glob("new-*"):
            shutil.rmtree(new, ignore_errors=True)
        shutil.rmtree(logdir / ".remap", ignore_errors=True)
    return out


# -- printing ------------------------------------------------------------------------------------


def goal(key: str, n: int) -> float | None:
    if n >= 20000:
        return GOALS[key][1]
    if n >= 5000:
        return GOALS[key][0]
    return None


def mark(value: float, key: str, n: int) -> str:
    g = goal(key, n)
    if g is None:
        return ""
    return f"  (goal <= {g:g}: {'met' if value <= g else 'MISSED'})"


def ms(values: list[float]) -> str:
    return f"p50 {1000 * statistics.median(values):6.0f} ms, p95 {1000 * pct(values, 0.95):6.0f} ms, " \
           f"max {1000 * max(values):6.0f} ms ({len(values)} calls)"


def report(m: dict) -> None:
    n = m["n"]
    print(f"\n== {n:,} runs, --load_fast={m['load_fast']} ==")
    print(f"  plugin lists every model     {m['listed_s']:6.1f} s after TensorBoard starts")
    for kind in KINDS:
        if kind in m.get("ready", {}):
            print(f"  map {kind:22s}   {m['ready'][kind]:6.1f} s  (slowest poll answer "
                  f"{1000 * m['slowest_poll'][kind]:.0f} ms)")
    if m.get("not_ready"):
        print(f"  NOT READY within the timeout: {m['not_ready']}")
        return
    every = max(m["ready"].values())
    print(f"  every map ready              {every:6.1f} s{mark(every, 'ready_s', n)}")
    mem = m["memory_ready"]
    total = mem["rss_total"]
    print(f"  resident memory (ready)      {total:6.0f} MB  (TensorBoard {mem['rss']:.0f} MB + data server "
          f"{mem['rss_children']:.0f} MB){mark(total, 'rss_mb', n)}")
    end = m["memory_end"]
    print(f"  peak resident (VmHWM)        {end['hwm'] + end['hwm_children']:6.0f} MB  (TensorBoard {end['hwm']:.0f} MB"
          f" + data server {end['hwm_children']:.0f} MB); at the end {end['rss_total']:.0f} MB")
    first = ", ".join(f"{name} {1000 * values[0]:.0f} ms" for name, values in m["first_calls"].items())
    print(f"  first call of each route     {first}")
    everything = [t for values in m["routes"].values() for t in values]
    print(f"  routes, all                  {ms(everything)}{mark(1000 * pct(everything, 0.95), 'p95_ms', n)}")
    for name, values in m["routes"].items():
        print(f"    {name:26s} {ms(values)}")
    for name, values in m["hparams"].items():
        print(f"  HParams {name:20s} {ms(values)}  (reference: TensorBoard's own; first {1000 * values[0]:.0f} ms)")
    b = m.get("browser")
    if b:
        print(f"  REMAP frame opened -> drawn  {b['frame_ms']:6.0f} ms  (render() -> first draw "
              f"{b['first_draw_ms'] if b['first_draw_ms'] is None else round(b['first_draw_ms'])} ms; TensorBoard "
              f"page opened -> all drawn {b['opened_ms']:.0f} ms){mark(b['frame_ms'], 'draw_ms', n)}")
        h = b["hover"]
        if h["painted"]:
            p95 = pct(h["painted"], 0.95)
            print(f"  hover -> tooltip painted     p50 {statistics.median(h['painted']):.1f} ms, p95 {p95:.1f} ms "
                  f"({h['hits']}/{h['n']} right){mark(p95, 'hover_ms', n)}")
        if b["errors"]:
            print(f"  PAGE ERRORS: {b['errors'][:3]}")
    every = [max(p[k] for k in KINDS) for p in m["new"]]
    print(f"  new model on every map       median {statistics.median(every):.2f} s, max {max(every):.2f} s "
          f"({len(every)} runs){mark(max(every), 'new_s', n)}")
    for key in ("models", *KINDS):
        print(f"    in {key:24s} median {statistics.median(p[key] for p in m['new']):.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,5000,20000", help="comma-separated run counts")
    ap.add_argument("--load-fast", choices=("true", "false", "both"), default="true",
                    help="TensorBoard's loader: the Rust data server (true), the Python one (false) or both")
    ap.add_argument("--skip-browser", action="store_true", help="no Chromium figures")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calls", type=int, default=40, help="route calls per size (0.5-2 s apart)")
    ap.add_argument("--hovers", type=int, default=40)
    ap.add_argument("--new-models", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=900, help="seconds to wait for the maps")
    ap.add_argument("--cache", default=str(CACHE), help="where generated logdirs are kept")
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="writer processes")
    ap.add_argument("--write-only", action="store_true", help="only write (cache) the logdirs")
    ap.add_argument("--plugin-src", default=None, metavar="DIR",
                    help="run TensorBoard with the remap_tb package found in DIR (e.g. `git archive HEAD~3 remap_tb "
                         "| tar -x -C DIR`; TensorBoard starts in DIR): a baseline of an earlier version on the "
                         "same logdirs")
    args = ap.parse_args()
    if args.plugin_src:
        if not (Path(args.plugin_src) / "remap_tb" / "plugin.py").is_file():
            print(f"--plugin-src {args.plugin_src}: no remap_tb/plugin.py there", file=sys.stderr)
            return 2
        os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(args.plugin_src).resolve()), str(ROOT)])
        bundle = Path(args.plugin_src) / "remap_tb" / "static" / "index.js"
        if not bundle.is_file() and not args.skip_browser:  # `git archive` leaves the built bundle out
            bundle.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / "remap_tb" / "static" / "index.js", bundle)
            print(f"--plugin-src: no built dashboard there; copied this checkout's to {bundle}", file=sys.stderr)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    loaders = ("true", "false") if args.load_fast == "both" else (args.load_fast,)
    if args.write_only:
        for n in sizes:
            logdir, _ = scale_logdir(n, args.seed, Path(args.cache), processes=args.processes)
            print(f"{n:,} runs: {logdir}")
        return 0
    print(f"remap scale benchmark: sizes {sizes}, loaders {loaders}, {os.cpu_count()} CPU(s), plugin from "
          f"{args.plugin_src or 'this checkout'}")
    results = []
    pw = None
    if not args.skip_browser:
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
    try:
        for n in sizes:
            for lf in loaders:
                m = measure(n, args.seed, lf, args, pw)
                report(m)
                results.append(m)
    finally:
        if pw is not None:
            pw.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
