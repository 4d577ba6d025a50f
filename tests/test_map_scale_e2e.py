"""The model map at automated-search scale (issue 13), end to end: a logdir of SCALE_RUNS
runs in the trainer's real event format (``benchmarks/_fixtures.write_runs``: the records a
1-epoch training writes, without training), the real ``tensorboard`` with the plugin, and
the REMAP tab in Debian's Chromium.

* every positioned model is drawn on the canvas (the map's draw counts them);
* hovering a point shows its tooltip; the pick comes from the map's grid index;
* a lasso (Shift-drag) selects exactly the points inside the polygon (checked against a
  ray-casting scan here, in Python, over the points the map reports);
* switching "Accuracy vs size" -> "Structure" draws a bounded number of axis ticks and
  labels in every frame (the old map drew one gridline per unit of the structural layout's
  +-5,000 range while the size axes faded out: 4-7 s frozen). Counted, not timed: the
  canvas's ``fillText`` calls per animation frame, and the map's own tick counter. The
  freeze followed the layout's coordinate range, not the number of models (1.1 s at 60),
  so this test runs on its own logdir of SWITCH_RUNS runs, whose exact structural layout
  is ready in seconds (the 5,000-run one takes minutes on a loaded 2-core machine); it
  checks that the range would have meant thousands of gridlines.

No assertion is on time (the machine is shared); ``benchmarks/map_scale.py`` measures.
"""

from __future__ import annotations

import time
import urllib.parse

import pytest

from tests.browser import Dashboard, TensorBoardProcess, no_errors, shot

SCALE_RUNS = 5000
SWITCH_RUNS = 200
MAX_TICKS = 12  # remap_tb_frontend/src/lib/scales.ts MAX_TICKS, per axis
STRUCTURAL_TIMEOUT_S = 300


def serve_runs(tmp_path_factory, name: str, runs: int):
    """A logdir of ``runs`` runs (trainer's event format, no training) and TensorBoard on it."""
    from benchmarks._fixtures import write_runs

    tmp = tmp_path_factory.mktemp(name)
    logdir = tmp / "logdir"
    logdir.mkdir()
    write_runs(str(logdir), runs, seed=3)
    server = TensorBoardProcess(logdir, tmp / "tensorboard.log", load_fast="false", reload_interval=30).start()
    try:
        server.wait_ready(timeout=600, models=runs)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tensorboard(tmp_path_factory):
    yield from serve_runs(tmp_path_factory, "map-scale", SCALE_RUNS)


@pytest.fixture(scope="module")
def switch_tensorboard(tmp_path_factory):
    yield from serve_runs(tmp_path_factory, "map-switch", SWITCH_RUNS)


def experiment(server: TensorBoardProcess) -> str:
    experiments = server.plugin_json("experiments")["experiments"]
    assert len(experiments) == 1, experiments
    return experiments[0]["id"]


def projection(server: TensorBoardProcess, kind: str) -> dict:
    return server.plugin_json(f"projection?experiment={urllib.parse.quote(experiment(server))}&kind={kind}")


def show_size_map(dash: Dashboard, n_points: int) -> None:
    """Switch to the accuracy-vs-size map and wait until its ``n_points`` are in place (only the
    hooks the map had before issue 13, so that the switch test also runs against the old map)."""
    dash.testid("projection-size").click()
    dash.frame.wait_for_function(
        "n => window.__remapMap && window.__remapMap.points().length === n"
        " && window.__remapMap.front().length > 0 && !document.querySelector('[data-testid=map-canvas]').dataset.animating",
        arg=n_points, timeout=60000, polling=200)
    dash.page.wait_for_timeout(1000)  # the transition's last frames (700 ms)


def point_in_polygon(x: float, y: float, poly: list[tuple[float, float]]) -> bool:
    """Ray casting (as remap_tb_frontend/src/lib/lasso.ts), written again here to check the map's index."""
    inside = False
    j = len(poly) - 1
    for i in range(len(poly)):
        xi, yi = poly[i]
        xj, yj = poly[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def test_every_model_is_drawn_and_hover_shows_its_tooltip(dashboard, tensorboard):
    dash = dashboard
    size = projection(tensorboard, "size")
    n_points = len(size["points"])
    assert n_points >= 0.9 * SCALE_RUNS, n_points  # every run with an accuracy
    show_size_map(dash, n_points)
    dash.frame.wait_for_function("n => window.__remapMap.drawnCount() === n", arg=n_points, timeout=10000)
    canvas = dash.testid("map-canvas")
    assert canvas.get_attribute("data-points") == str(n_points)
    assert len(dash.points()) == n_points
    assert dash.frame.evaluate("window.__remapMap.axisLabels().x") == "parameters (log scale)"
    shot(dash, "scale_01_size_map_5000")

    # Hover: the tooltip names the point the map's index picks under the pointer.
    free = dash.free_points()
    assert len(free) > 100
    for point in (free[len(free) // 3], free[2 * len(free) // 3]):
        dash.hover(point)
        picked = dash.frame.evaluate("([x, y]) => window.__remapMap.pointAt(x, y)", [point["x"], point["y"]])
        assert picked["id"] is not None and picked["stacked"] >= 1
        tooltip = dash.testid("tooltip")
        tooltip.wait_for(state="visible", timeout=10000)
        dash.frame.wait_for_function(
            "id => document.querySelector('[data-testid=tooltip]').dataset.modelId === id", arg=picked["id"], timeout=10000)
        assert picked["id"] in tooltip.inner_text()
        near = [p for p in dash.points() if p["id"] == picked["id"]][0]
        assert ((near["x"] - point["x"]) ** 2 + (near["y"] - point["y"]) ** 2) ** 0.5 <= near["r"] + 6 + 0.5
    shot(dash, "scale_02_hover_5000")
    dash.page.mouse.move(1, 1)
    no_errors(dash)


def test_lasso_selects_exactly_the_points_inside(dashboard, tensorboard):
    dash = dashboard
    n_points = len(projection(tensorboard, "size")["points"])
    show_size_map(dash, n_points)
    box = canvas_box(dash)
    # A concave polygon (an arrow head) over the middle of the canvas, in frame coordinates.
    cx, cy, w, h = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.45, box["width"] * 0.25, box["height"] * 0.3
    poly = [(cx - w, cy - h), (cx + w, cy), (cx - w, cy + h), (cx - w * 0.3, cy)]
    ox, oy = dash.frame_offset()
    page_path = []  # whole page pixels, so the pointer events carry exactly these positions
    for (x0, y0), (x1, y1) in zip(poly, poly[1:] + poly[:1]):
        page_path += [(round(ox + x0 + (x1 - x0) * t / 8), round(oy + y0 + (y1 - y0) * t / 8)) for t in range(8)]
    path = [(x - ox, y - oy) for x, y in page_path]  # the same polygon in the frame's coordinates
    dash.page.keyboard.down("Shift")
    dash.page.mouse.move(*page_path[0])
    dash.page.mouse.down()
    for x, y in page_path[1:] + page_path[:1]:
        dash.page.mouse.move(x, y)
    dash.page.mouse.up()
    dash.page.keyboard.up("Shift")

    points = dash.points()
    inside = sorted(p["id"] for p in points if point_in_polygon(p["x"], p["y"], path))
    assert len(inside) > 50, "the polygon should hold many points"
    dash.frame.wait_for_function("n => window.__remapMap.selectedIds().length === n", arg=len(inside), timeout=15000)
    assert sorted(dash.frame.evaluate("window.__remapMap.selectedIds()")) == inside
    shot(dash, "scale_03_lasso_5000")
    dash.page.keyboard.press("Escape")
    no_errors(dash)


def canvas_box(dash: Dashboard) -> dict:
    return dash.frame.evaluate("""() => { const r = document.querySelector('[data-testid=map-canvas]').getBoundingClientRect();
        return {x: r.left, y: r.top, width: r.width, height: r.height}; }""")


COUNT_FRAMES_JS = """() => {
  const proto = CanvasRenderingContext2D.prototype;
  const w = window;
  if (!w.__fillTextReal) w.__fillTextReal = proto.fillText;
  const real = w.__fillTextReal;
  w.__texts = 0;
  w.__textsPerFrame = [];
  proto.fillText = function (...a) { w.__texts++; return real.apply(this, a); };
  const tick = () => { w.__textsPerFrame.push(w.__texts); w.__texts = 0; if (w.__counting) requestAnimationFrame(tick); };
  w.__counting = true;
  requestAnimationFrame(tick);
  window.__remapPerf.maxAxisTicks = 0;
}"""

STOP_COUNTING_JS = """() => {
  window.__counting = false;
  CanvasRenderingContext2D.prototype.fillText = window.__fillTextReal;
  return {perFrame: window.__textsPerFrame, maxAxisTicks: window.__remapPerf.maxAxisTicks,
          animation: window.__remapPerf.lastAnimation || null};
}"""


def test_switching_size_to_structure_draws_a_bounded_number_of_ticks(chromium, switch_tensorboard):
    server = switch_tensorboard
    eid = experiment(server)
    deadline = time.monotonic() + STRUCTURAL_TIMEOUT_S
    while True:  # the structural layout of every run must be there: the old freeze needs its coordinates
        structural = projection(server, "structural")
        if not structural["computing"] and len(structural["points"]) == SWITCH_RUNS:
            break
        assert time.monotonic() < deadline, f"no structural layout of {SWITCH_RUNS} runs after {STRUCTURAL_TIMEOUT_S} s"
        time.sleep(1)
    xs = [p["x"] for p in structural["points"]]
    ys = [p["y"] for p in structural["points"]]
    # Read as the size map's axes (decades of parameters, 10 % accuracy steps), this range
    # meant that many gridlines per frame before the fix; the test means something only if it is large.
    old_gridlines = (max(xs) - min(xs)) + (max(ys) - min(ys)) * 10
    assert old_gridlines > 10 * MAX_TICKS, (eid, min(xs), max(xs), min(ys), max(ys))

    dash = Dashboard(chromium, server)
    try:
        switch_and_count(dash, n_points=len(projection(server, "size")["points"]))
    finally:
        dash.close()


def switch_and_count(dash: Dashboard, n_points: int) -> None:
    show_size_map(dash, n_points)
    before = dash.frame.evaluate("(window.__remapPerf.lastAnimation || {}).durationMs || null")
    dash.frame.evaluate(COUNT_FRAMES_JS)
    dash.testid("projection-structural").click()
    dash.frame.wait_for_function(
        "before => { const a = window.__remapPerf.lastAnimation; return a && a.durationMs !== before; }",
        arg=before, timeout=120000, polling=200)
    dash.frame.wait_for_function(f"window.__remapMap.points().length === {SWITCH_RUNS}", timeout=30000)
    counts = dash.frame.evaluate(STOP_COUNTING_JS)
    per_frame = counts["perFrame"]
    assert counts["animation"] and counts["animation"]["frames"] >= 2, counts["animation"]  # the axes faded out over frames
    assert len(per_frame) >= 2
    # Tick labels of both axes (at most MAX_TICKS each) plus the two axis titles; the old map drew thousands.
    assert max(per_frame) <= 2 * MAX_TICKS + 2, max(per_frame)
    assert 0 < counts["maxAxisTicks"] <= 2 * MAX_TICKS, counts["maxAxisTicks"]
    assert dash.frame.evaluate("window.__remapMap.axisLabels()") is None  # faded out
    shot(dash, "scale_04_size_to_structure")
    no_errors(dash)
