"""Screenshots of every dashboard view, taken in headless Chromium against REAL
TensorBoard (``python -m tensorboard.main``) on a logdir the project's trainer wrote.

    .venv/bin/python remap_tb_frontend/scripts/screenshots.py [OUTDIR] [--logdir TRAINED]

OUTDIR defaults to docs/screenshots/. TRAINED defaults to demo_logs/ (what ``remap demo``
shows); ``--logdir train`` trains a fresh one first (``trainer.cli init``: 40 models on
digits, 10 epochs, about 30 s on 2 cores).
Servers: the main one with a local worker (so requests really train), one on an
empty logdir (empty state) and one without workers (the no-worker warning). Each
runs on a private copy of the logdir and is stopped by PID. Exits non-zero if the
page logged a console error or an uncaught error. Images are 1280x800 PNGs.

``--only residual`` takes just the branching-architecture views (17, 18): a residual
model (spec schema 2) is enqueued on the main server, trained by its worker, then shown
in the inspector and the editor.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.browser import Dashboard, TensorBoardProcess, copy_logdir, launch_chromium, train_logdir  # noqa: E402

TRAIN = ("--dataset", "digits", "--epochs", "10", "--max-params", "100000", "--seed", "1")
TRAIN_MODELS = 40
MODELS = 0  # runs in the logdir used (set in main)


def count_runs(logdir: Path) -> int:
    return sum(1 for p in logdir.iterdir() if p.is_dir() and not p.name.startswith("."))


class Shooter:
    def __init__(self, out: Path):
        self.out = out
        self.saved: list[Path] = []
        self.problems: list[str] = []

    def shot(self, dash: Dashboard, name: str, settle_ms: int = 500) -> None:
        dash.page.wait_for_timeout(settle_ms)
        path = dash.screenshot(self.out / f"{name}.png")
        self.saved.append(path)
        print(f"saved {path} ({path.stat().st_size // 1024} KB)", flush=True)

    def close(self, dash: Dashboard) -> None:
        self.problems += dash.errors
        dash.close()


def dismiss_banners(dash: Dashboard) -> None:
    for close in dash.frame.locator("[data-testid=warning-banner] button").all():
        close.click()


def wait_layout(dash: Dashboard) -> None:
    """Until the projection is not being recomputed (the toolbar says "updating layout…")."""
    dash.frame.wait_for_function(
        "() => !document.querySelector('[data-testid=map-status]').textContent.includes('updating')", timeout=60000)


def away(dash: Dashboard) -> None:
    """Park the mouse over the toolbar so no tooltip shows."""
    dash.page.mouse.move(5, 75)


def scroll_to_section(dash: Dashboard, testid: str) -> None:
    """Scroll the side panel so the section holding ``testid`` starts at the top."""
    dash.frame.evaluate("""id => { const el = document.querySelector(`[data-testid=${id}]`);
        (el.closest('.rm-section') || el).scrollIntoView({block: 'start'}); }""", testid)




def spread_points(dash: Dashboard) -> list[dict]:
    pts = dash.free_points()
    return sorted(pts, key=lambda p: (p["x"], p["y"]))


def main_views(sh: Shooter, browser, logdir: Path, tmp: Path) -> None:
    server = TensorBoardProcess(copy_logdir(logdir, tmp / "main"), tmp / "main.log", workers=1).start()
    try:
        server.wait_ready(models=MODELS)
        dash = Dashboard(browser, server)
        dash.wait_drawn(MODELS)
        wait_layout(dash)
        dismiss_banners(dash)
        sh.shot(dash, "01_map_structural", 900)

        dash.testid("projection-posthoc").click()
        dash.wait_drawn(MODELS)
        wait_layout(dash)
        sh.shot(dash, "02_map_posthoc", 1200)

        dash.testid("projection-size").click()
        sh.shot(dash, "03_map_size_pareto_budget", 1200)

        pts = spread_points(dash)
        target = max(pts, key=lambda p: p["r"] if 0.25 < (p["x"] / 800) < 0.75 else 0)
        dash.hover(target)
        dash.testid("tooltip").wait_for(state="visible")
        sh.shot(dash, "04_tooltip", 300)

        dash.click(target)
        dash.testid("class-bars").locator("rect[data-series]").first.wait_for()
        away(dash)
        sh.shot(dash, "05_inspector")
        scroll_to_section(dash, "class-bars")
        sh.shot(dash, "05b_inspector_classes_confusion_export")

        # Compare the inspected model with two of its neighbours in size.
        picked = [target]
        for p in sorted(spread_points(dash), key=lambda p: abs(p["x"] - target["x"]) + abs(p["y"] - target["y"])):
            if len(picked) < 3 and all(abs(p["x"] - q["x"]) + abs(p["y"] - q["y"]) > 24 for q in picked):
                picked.append(p)  # far enough apart that each click hits its own point
        for p in picked:
            dash.click(p, shift=True)
        dash.testid("compare-glyphs").wait_for(state="visible", timeout=20000)
        away(dash)
        sh.shot(dash, "06_compare")
        scroll_to_section(dash, "compare-class-bars")
        sh.shot(dash, "06b_compare_classes_distances")

        dash.testid("tab-classes").click()
        dash.testid("class-row").nth(8).hover()
        sh.shot(dash, "07_classes_hover_recolours_map")
        dash.page.keyboard.press("Escape")
        dash.page.keyboard.press("Escape")

        # Generate: an ablation under a tight budget shows flagged children with reasons.
        dash.testid("projection-structural").click()
        dash.wait_drawn(MODELS)
        dash.page.wait_for_timeout(900)
        dash.click(dash.point_of(target["id"]))
        away(dash)
        dash.testid("tab-generate").click()
        dash.testid("generate-kind-ablation").click()
        budget = dash.testid("budget-input")
        budget.fill(str(max(1000, int(target_params(server, target["id"]) * 0.9))))
        budget.press("Enter")
        dash.testid("generate-preview").click()
        dash.testid("candidate").first.wait_for(timeout=30000)
        scroll_to_section(dash, "generate-preview")
        sh.shot(dash, "08_generate_ablation_preview_over_budget")

        # Variation preview, then enqueue three children with enough epochs to see them run.
        budget.fill("100000")
        budget.press("Enter")
        dash.testid("generate-kind-variation").click()
        dash.testid("generate-count").fill("4")
        dash.testid("generate-epochs").fill("40")
        dash.testid("generate-preview").click()
        dash.frame.wait_for_function("document.querySelectorAll('[data-testid=candidate]').length >= 2", timeout=30000)
        scroll_to_section(dash, "generate-preview")
        sh.shot(dash, "09_generate_variation_preview")
        dash.testid("enqueue-button").click()
        ids = dash.testid("enqueue-result").get_attribute("data-request-ids").split(",")
        dash.testid("tab-queue").click()
        dash.frame.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=queue-row][data-state=running]')]"
            ".some(r => /epoch [1-9]/.test(r.textContent))", timeout=60000)
        sh.shot(dash, "10_queue_running", 300)

        # Editor: start from the inspected model, add a pool too large for its input.
        dash.testid("tab-editor").click()
        dash.testid("editor-load-inspected").click()
        dash.testid("editor-layer").first.wait_for()
        dash.testid("palette-maxpool2d").click()
        last = dash.testid("editor-layer").last
        last.locator("input[data-field=pool_size]").fill("9")
        dash.frame.locator("[data-testid=editor-error]:visible").first.wait_for(timeout=10000)
        dash.frame.evaluate("[...document.querySelectorAll('[data-testid=editor-error]')].find(e => e.offsetParent)"
                            ".scrollIntoView({block: 'center'})")
        sh.shot(dash, "11_editor_error_next_to_layer")

        # Wait for the children to train: they join the map without a reload.
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            have = {p["id"] for p in dash.points()}
            if all(i in have for i in ids):
                break
            dash.page.wait_for_timeout(1000)
        dash.testid("tab-queue").click()
        dash.testid("edges-toggle").click()
        dash.testid("color-by").select_option("origin")
        away(dash)
        sh.shot(dash, "12_map_new_models_edges_origin", 1200)

        # Lasso a region: the drawer lists the selection.
        dash.testid("color-by").select_option("accuracy")
        dash.testid("edges-toggle").click()
        dash.testid("lasso-toggle").click()
        pts = dash.points()
        xs, ys = sorted(p["x"] for p in pts), sorted(p["y"] for p in pts)
        cx, cy = dash.to_page({"x": xs[len(xs) // 2], "y": ys[len(ys) // 2]})  # the densest part
        dash.page.mouse.move(cx - 22, cy - 16)
        dash.page.mouse.down()
        for dx, dy in [(0, -24), (22, -20), (28, 0), (18, 20), (-6, 26), (-24, 10), (-22, -16)]:
            dash.page.mouse.move(cx + dx, cy + dy, steps=5)
        dash.page.mouse.up()
        dash.testid("lasso-toggle").click()
        away(dash)
        sh.shot(dash, "13_lasso_selection_drawer")
        dash.page.keyboard.press("Escape")

        dash.testid("filters-toggle").click()
        dash.frame.locator("[data-testid=filter-acc-min]").fill("80")
        sh.shot(dash, "14_filters")
        sh.close(dash)
    finally:
        server.stop()


# A small ResNet for 1x8x8 digits: a stem, an identity block, a downsampling block with a 1x1
# projection shortcut, global average pooling (spec schema 2).
RESIDUAL = {
    "schema": 2,
    "input": {"shape": [1, 8, 8], "num_classes": 10},
    "layers": [
        {"type": "conv2d", "filters": 16, "kernel_size": 3, "padding": "same"},              # 0
        {"type": "batchnorm"}, {"type": "activation", "fn": "relu"},                          # 1 2
        {"type": "conv2d", "filters": 16, "kernel_size": 3, "padding": 1, "bias": False},    # 3
        {"type": "batchnorm"}, {"type": "activation", "fn": "relu"},                          # 4 5
        {"type": "conv2d", "filters": 16, "kernel_size": 3, "padding": 1, "bias": False},    # 6
        {"type": "batchnorm"},                                                                # 7
        {"type": "add", "inputs": [2, 7]}, {"type": "activation", "fn": "relu"},              # 8 9
        {"type": "conv2d", "filters": 32, "kernel_size": 3, "stride": 2, "padding": 1, "bias": False},  # 10
        {"type": "batchnorm"}, {"type": "activation", "fn": "relu"},                          # 11 12
        {"type": "conv2d", "filters": 32, "kernel_size": 3, "padding": 1, "bias": False},    # 13
        {"type": "batchnorm"},                                                                # 14
        {"type": "conv2d", "filters": 32, "kernel_size": 1, "stride": 2, "bias": False, "inputs": [9]},  # 15
        {"type": "batchnorm"},                                                                # 16
        {"type": "add", "inputs": [14, 16]}, {"type": "activation", "fn": "relu"},            # 17 18
        {"type": "globalavgpool"},
    ],
}


def residual_views(sh: Shooter, browser, logdir: Path, tmp: Path) -> None:
    server = TensorBoardProcess(copy_logdir(logdir, tmp / "residual"), tmp / "residual.log", workers=1).start()
    try:
        server.wait_ready(models=MODELS)
        experiment = server.plugin_json("experiments")["experiments"][0]["id"]
        rid = server.post_json("enqueue", {"items": [{"spec": RESIDUAL, "origin": "handcrafted",
                                                      "changes": ["a small ResNet: identity and projection shortcuts"]}],
                                           "epochs": 10, "experiment": experiment})["request_ids"][0]
        dash = Dashboard(browser, server)
        dash.wait_drawn(MODELS)
        dismiss_banners(dash)
        deadline = time.monotonic() + 300
        while True:  # 404 until the worker writes the run's first record
            status, _, body = server.get(f"/data/plugin/remap/model?run={rid}")
            if status == 200 and json.loads(body)["status"]["state"] == "done":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{rid} did not finish training in 300 s (last answer {status})")
            time.sleep(1)
        dash.frame.wait_for_function("id => window.__remapMap.points().some(p => p.id === id)", arg=rid,
                                     timeout=60000, polling=500)
        wait_layout(dash)
        dash.page.wait_for_timeout(900)
        dash.click(dash.point_of(rid))
        dash.testid("spec-table").wait_for()
        away(dash)
        sh.shot(dash, "17_inspector_residual")

        dash.testid("inspector-edit").click()
        dash.frame.locator("[data-testid=editor-layer][data-index='8'][data-type=add]").wait_for(timeout=15000)
        dash.testid("editor-validity").wait_for(timeout=15000)
        dash.frame.locator("[data-testid=editor-layer][data-index='8']").evaluate("e => e.scrollIntoView({block: 'center'})")
        sh.shot(dash, "18_editor_residual_inputs")
        sh.close(dash)
    finally:
        server.stop()


def target_params(server: TensorBoardProcess, run: str) -> int:
    return int(server.plugin_json(f"model?run={run}")["params"])


def empty_state(sh: Shooter, browser, tmp: Path) -> None:
    empty = tmp / "empty"
    empty.mkdir()
    server = TensorBoardProcess(empty, tmp / "empty.log", workers=0).start()
    try:
        server.wait_for_port(time.monotonic() + 60)
        dash = Dashboard(browser, server)
        dash.testid("empty-state").wait_for(timeout=30000)
        sh.shot(dash, "15_empty_state")
        sh.close(dash)
    finally:
        server.stop()


def no_worker(sh: Shooter, browser, logdir: Path, tmp: Path) -> None:
    server = TensorBoardProcess(copy_logdir(logdir, tmp / "noworker"), tmp / "noworker.log", workers=0).start()
    try:
        server.wait_ready(models=MODELS)
        models = server.plugin_json(f"models?experiment={server.plugin_json('experiments')['experiments'][0]['id']}")
        best = max(models["models"], key=lambda m: m["val_accuracy"] or 0)
        spec = server.plugin_json(f"model?run={best['run']}")["spec"]
        spec["layers"] = spec["layers"] + [{"type": "dropout", "rate": 0.2}]
        server.post_json("enqueue", {"items": [{"spec": spec, "parent": best["id"], "origin": "handcrafted",
                                                "changes": ["appended dropout 0.2"]}], "epochs": 5})
        dash = Dashboard(browser, server)
        dash.wait_drawn(MODELS)
        dash.testid("worker-warning-map").wait_for(timeout=20000)
        dismiss_banners(dash)
        dash.testid("tab-queue").click()
        dash.testid("worker-warning").wait_for()
        sh.shot(dash, "16_no_worker_warning")
        sh.close(dash)
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default=str(REPO / "docs" / "screenshots"))
    ap.add_argument("--only", choices=["residual"], help="take only these views")
    ap.add_argument("--logdir", default=str(REPO / "demo_logs"),
                    help="a trained logdir (copied, never changed; default demo_logs/), or 'train' to train one")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="remap-shots-") as tmp_name:
        tmp = Path(tmp_name)
        global MODELS
        logdir = train_logdir(tmp / "trained", TRAIN_MODELS, TRAIN) if args.logdir == "train" else Path(args.logdir)
        MODELS = count_runs(logdir)
        sh = Shooter(out)
        with sync_playwright() as p:
            browser = launch_chromium(p)
            try:
                if args.only is None:
                    main_views(sh, browser, logdir, tmp)
                    empty_state(sh, browser, tmp)
                    no_worker(sh, browser, logdir, tmp)
                residual_views(sh, browser, logdir, tmp)
            finally:
                browser.close()
    for problem in sh.problems:
        print("PROBLEM", problem)
    big = [p for p in sh.saved if p.stat().st_size > 200 * 1024]
    for p in big:
        print(f"LARGE {p} is {p.stat().st_size // 1024} KB (keep docs images under 200 KB)")
    return 1 if sh.problems else 0


if __name__ == "__main__":
    sys.exit(main())
