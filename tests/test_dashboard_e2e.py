"""The REMAP tab end to end: a real ``tensorboard`` subprocess on a logdir the project's
trainer wrote, driven with Playwright in Debian's Chromium (headless).

Each test opens TensorBoard at ``/#remap`` in a fresh page, finds the plugin's iframe
and fails on any console error or page error (``Dashboard.errors``). Screenshots of
each view go to ``test-output/screenshots/``.

Servers: the main one (``--load_fast=false``, one local worker, so enqueued requests
really train) on a private copy of the session's trained logdir; one with the Rust
data server (``--load_fast=true``); one under ``--path_prefix /tb``.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse

import pytest

from tests.browser import SHOTS, TRAIN_MODELS, Dashboard, TensorBoardProcess, copy_logdir, no_errors, shot

TRAIN_LIMIT_S = 90  # enqueue -> the new model is a point on the map
NUM_CLASSES = 10  # digits


def start_server(logdir_src, tmp_path_factory, name: str, **kwargs) -> TensorBoardProcess:
    tmp = tmp_path_factory.mktemp(name)
    logdir = copy_logdir(logdir_src, tmp / "logdir")
    server = TensorBoardProcess(logdir, tmp / "tensorboard.log", **kwargs).start()
    try:
        server.wait_ready(timeout=60, models=TRAIN_MODELS)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def tensorboard(trained_logdir, tmp_path_factory):  # noqa: F811
    server = start_server(trained_logdir, tmp_path_factory, "tb-main", load_fast="false", workers=1)
    try:
        yield server
    finally:
        server.stop()
    assert server.process.returncode is not None



def experiment_id(server: TensorBoardProcess) -> str:
    experiments = server.plugin_json("experiments")["experiments"]
    assert len(experiments) == 1, experiments
    return experiments[0]["id"]


def fetch_json(dash: Dashboard, url: str):
    answer = dash.fetch(url)
    assert answer["status"] == 200, answer
    return json.loads(answer["body"])




def inspect_first(dash: Dashboard) -> dict:
    """Click the first uncovered point; wait for the inspector to show that model."""
    point = dash.free_points()[0]
    dash.click(point)
    dash.frame.wait_for_function(
        "id => { const el = document.querySelector('[data-testid=inspector]'); return el && el.offsetParent"
        " && el.textContent.includes(id) && document.querySelector('[data-testid=spec-table]'); }",
        arg=point["id"], timeout=15000)
    return point


def wait_map_has(dash: Dashboard, model_id: str, timeout_s: float) -> None:
    dash.frame.wait_for_function("id => window.__remapMap.points().some(p => p.id === id)",
                                 arg=model_id, timeout=timeout_s * 1000, polling=250)


# --------------------------------------------------------------------------- tests


def test_tab_loads_without_errors_with_one_point_per_model(dashboard, tensorboard):
    dash = dashboard
    eid = experiment_id(tensorboard)
    models = fetch_json(dash, f"./models?experiment={urllib.parse.quote(eid)}")["models"]
    assert len(models) == TRAIN_MODELS
    dash.wait_drawn(len(models))
    dash.page.wait_for_timeout(500)  # a late error would show up here
    points = dash.points()
    assert len(points) == len(models)
    assert sorted(p["id"] for p in points) == sorted(m["id"] for m in models)
    assert all(p["r"] > 0 for p in points)
    assert dash.testid("projection-structural").is_visible()
    no_errors(dash)
    shot(dash, "01_map_structural")

    dash.testid("projection-size").click()
    dash.frame.wait_for_function("window.__remapPerf.lastAnimation !== undefined", timeout=10000)
    dash.wait_drawn(len(models))
    shot(dash, "02_map_size_pareto_budget")
    no_errors(dash)


def test_hover_shows_a_tooltip(dashboard):
    dash = dashboard
    dash.wait_drawn(TRAIN_MODELS)
    point = dash.free_points()[0]
    dash.hover(point)
    tooltip = dash.testid("tooltip")
    tooltip.wait_for(state="visible", timeout=5000)
    assert tooltip.get_attribute("data-model-id") == point["id"]
    assert point["id"] in tooltip.inner_text()
    assert tooltip.locator("svg[data-testid=glyph]").count() == 1
    shot(dash, "03_tooltip")
    no_errors(dash)


def test_click_opens_the_inspector_with_per_class_bars_and_exports_answer(dashboard):
    dash = dashboard
    dash.wait_drawn(TRAIN_MODELS)
    point = inspect_first(dash)
    assert dash.testid("tab-inspector").get_attribute("aria-selected") == "true"
    bars = dash.testid("class-bars")
    bars.wait_for(state="visible")
    assert bars.locator("rect[data-series]").count() == NUM_CLASSES
    assert dash.testid("spec-table").is_visible() and dash.testid("curves").is_visible()
    assert dash.testid("confusion").is_visible() and dash.testid("provenance-chain").is_visible()
    shot(dash, "04_inspector")

    # Download names; the weights link only for a finished model (the trained logdir's are all done).
    assert dash.testid("export-json").get_attribute("download") == f"{point['id']}.json"
    assert dash.testid("export-pytorch").get_attribute("download") == f"{point['id']}.py"
    assert dash.testid("export-state_dict").get_attribute("download") == f"{point['id']}.pt"
    spec_href = dash.testid("export-json").get_attribute("href")
    source_href = dash.testid("export-pytorch").get_attribute("href")
    spec = dash.fetch(spec_href)
    source = dash.fetch(source_href)
    assert spec["status"] == 200 and source["status"] == 200, (spec, source)
    assert spec["type"].startswith("application/json") and json.loads(spec["body"])["schema"] == 1
    assert "class Model(nn.Module)" in source["body"]
    assert f"run={point['id']}" in spec["url"] and spec["url"].startswith(dash.tensorboard.root + "/data/plugin/remap/")
    no_errors(dash)


def test_selecting_two_models_opens_the_comparison(dashboard):
    dash = dashboard
    dash.wait_drawn(TRAIN_MODELS)
    first, second = dash.free_points()[:2]
    dash.click(first, shift=True)
    dash.click(second, shift=True)
    compare = dash.testid("compare")
    compare.wait_for(state="visible", timeout=10000)
    dash.testid("compare-glyphs").wait_for(state="visible", timeout=15000)
    text = compare.inner_text()
    assert first["id"] in text and second["id"] in text
    assert dash.testid("compare-class-bars").locator("rect[data-series]").count() == 2 * NUM_CLASSES
    assert dash.testid("structural-distances").is_visible()
    shot(dash, "05_compare")

    dash.testid("tab-classes").click()
    rows = dash.testid("class-row")
    rows.first.wait_for(state="visible")
    assert rows.count() == NUM_CLASSES
    rows.nth(3).hover()
    dash.page.wait_for_timeout(200)
    shot(dash, "06_classes")
    no_errors(dash)


def test_variation_preview_enqueue_queue_and_the_trained_model_appears_on_the_map(dashboard):
    dash = dashboard
    dash.wait_drawn(TRAIN_MODELS)
    inspect_first(dash)
    dash.testid("tab-generate").click()
    dash.testid("generate-kind-variation").click()
    dash.testid("generate-count").fill("3")
    dash.testid("generate-max-params").fill("50000")  # the population's own cap (init --max-params)
    dash.testid("generate-epochs").fill("1")
    dash.testid("generate-preview").click()
    candidates = dash.testid("candidate")
    candidates.first.wait_for(state="visible", timeout=30000)
    assert candidates.count() >= 1
    assert candidates.first.locator("svg[data-testid=glyph]").count() == 1
    shot(dash, "07_generate_preview")

    ticks = dash.testid("candidate-tick")
    for i in range(1, ticks.count()):  # train one child only: keeps the worker's time short
        if ticks.nth(i).is_checked():
            ticks.nth(i).uncheck()
    if not ticks.first.is_checked():
        ticks.first.check()
    models_responses = []  # the dashboard's `models` calls from now on (issue 13: deltas)
    dash.page.on("response", lambda r: models_responses.append(r) if "/models?" in r.url else None)
    dash.testid("enqueue-button").click()
    result = dash.testid("enqueue-result")
    result.wait_for(state="visible", timeout=15000)
    enqueued_at = time.monotonic()
    ids = result.get_attribute("data-request-ids").split(",")
    assert len(ids) == 1 and ids[0]

    dash.testid("tab-queue").click()
    row = dash.frame.locator(f'[data-testid=queue-row][data-request-id="{ids[0]}"]')
    row.wait_for(state="visible", timeout=10000)
    assert row.get_attribute("data-state") in ("pending", "running", "done")
    shot(dash, "08_queue")

    left = TRAIN_LIMIT_S - (time.monotonic() - enqueued_at)
    wait_map_has(dash, ids[0], left)
    assert time.monotonic() - enqueued_at <= TRAIN_LIMIT_S
    assert dash.frame.locator(f'[data-testid=queue-row][data-request-id="{ids[0]}"][data-state=done]').count() == 1 \
        or dash.frame.wait_for_selector(f'[data-testid=queue-row][data-request-id="{ids[0]}"][data-state=done]',
                                        timeout=10000)
    shot(dash, "09_map_with_trained_child")
    # The new model came in a delta: the dashboard sends back the version it holds, and the
    # answer carries only what changed (the whole list never again).
    asked = [r for r in models_responses if "since=" in r.url]
    assert asked and len(asked) == len(models_responses), [r.url for r in models_responses]
    deltas = [r.json() for r in asked]
    assert any(d.get("since") and ids[0] in {m["id"] for m in d["models"]} for d in deltas), deltas
    assert all(len(d["models"]) < TRAIN_MODELS for d in deltas)
    no_errors(dash)


def test_editor_rejects_an_invalid_layer_next_to_it_and_enqueues_a_valid_model(dashboard):
    dash = dashboard
    dash.wait_drawn(TRAIN_MODELS)
    dash.testid("tab-editor").click()
    dash.testid("palette-conv2d").wait_for(state="visible", timeout=10000)  # palette from GET schema
    assert dash.testid("editor-enqueue").is_disabled()  # nothing to enqueue before "Start empty"
    dash.testid("editor-empty").click()
    dash.testid("palette-maxpool2d").click()
    layer = dash.frame.locator("[data-testid=editor-layer][data-index='0']")
    layer.wait_for(state="visible")
    dash.testid("editor-validity").wait_for(state="visible", timeout=10000)

    layer.locator("input[data-field=pool_size]").fill("20")
    error = layer.get_by_test_id("editor-error")
    error.wait_for(state="visible", timeout=10000)
    assert "pool" in error.inner_text().lower()
    assert dash.testid("editor-enqueue").is_disabled()
    assert "✗" in dash.testid("editor-validity").inner_text()
    shot(dash, "10_editor_error")

    layer.locator("input[data-field=pool_size]").fill("2")
    error.wait_for(state="hidden", timeout=10000)
    dash.testid("palette-dense").click()  # appended after the pool
    dash.frame.locator("[data-testid=editor-layer][data-index='1'][data-type=dense]").wait_for(state="visible")
    dash.frame.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=editor-validity]');"
        " const b = document.querySelector('[data-testid=editor-enqueue]');"
        " return v && v.textContent.includes('valid') && !v.textContent.includes('✗') && b && !b.disabled; }",
        timeout=10000)
    dash.testid("editor-epochs").fill("1")
    dash.testid("editor-enqueue").click()
    message = dash.frame.locator("[data-testid=editor-message] [data-request-ids]")
    message.wait_for(state="visible", timeout=10000)
    request_id = message.get_attribute("data-request-ids")
    assert request_id and "Queued" in message.inner_text()

    # The same body again: the same request (idempotency key from the body), said so.
    enabled = "() => !document.querySelector('[data-testid=editor-enqueue]').disabled"
    dash.frame.wait_for_function(enabled, timeout=10000)
    dash.testid("editor-enqueue").click()
    dash.frame.wait_for_function(
        "() => document.querySelector('[data-testid=editor-message]').textContent.includes('Already queued as')",
        timeout=10000)
    assert message.get_attribute("data-request-ids") == request_id
    # A changed body (other epochs) is a new request, not "client_key was already used".
    dash.testid("editor-epochs").fill("20")  # long enough to still be cancellable below
    dash.frame.wait_for_function(enabled, timeout=10000)
    dash.testid("editor-enqueue").click()
    dash.frame.wait_for_function(
        "id => { const m = document.querySelector('[data-testid=editor-message] [data-request-ids]');"
        " return m && m.dataset.requestIds !== id && m.textContent.includes('Queued'); }",
        arg=request_id, timeout=10000)
    second_id = message.get_attribute("data-request-ids")
    assert second_id and second_id != request_id
    dash.testid("tab-queue").click()
    dash.frame.locator(f'[data-testid=queue-row][data-request-id="{request_id}"]').wait_for(state="visible",
                                                                                           timeout=10000)
    queue = dash.tensorboard.plugin_json("queue")
    assert any(r["id"] == request_id and r["origin"] == "handcrafted" for r in queue["requests"])
    # Cancel the second one (no need to train it): the row ends up cancelled.
    second = dash.frame.locator(f'[data-testid=queue-row][data-request-id="{second_id}"]')
    second.wait_for(state="visible", timeout=10000)
    second.get_by_test_id("queue-cancel").click()
    dash.frame.locator(f'[data-testid=queue-row][data-request-id="{second_id}"][data-state=cancelled]').wait_for(
        timeout=60000)
    no_errors(dash)


# --------------------------------------------------------------------------- other servers


def test_tab_loads_with_the_rust_data_server(chromium, trained_logdir, tmp_path_factory):  # noqa: F811
    server = start_server(trained_logdir, tmp_path_factory, "tb-fast", load_fast="true", workers=0)
    try:
        dash = Dashboard(chromium, server)
        try:
            dash.wait_drawn(TRAIN_MODELS)
            dash.page.wait_for_timeout(500)
            assert len(dash.points()) == TRAIN_MODELS
            point = inspect_first(dash)
            assert point["id"]
            no_errors(dash)
        finally:
            dash.close()
    finally:
        server.stop()


def test_tab_and_routes_work_under_a_path_prefix(chromium, trained_logdir, tmp_path_factory):  # noqa: F811
    server = start_server(trained_logdir, tmp_path_factory, "tb-prefix", load_fast="false", workers=0,
                          path_prefix="/tb")
    try:
        assert server.root.endswith("/tb")
        status, _, _ = server.get("/data/plugin/remap/experiments")
        assert status == 200
        # TensorBoard's own index.html loads its Roboto fonts from absolute URLs
        # (url(/font-roboto/...)), which 404 under a path prefix; nothing else may fail.
        fonts = rf"404 .*\({re.escape(server.base)}/font-roboto/[\w-]+\.woff2\)$"
        dash = Dashboard(chromium, server, ignore=[fonts])
        try:
            assert dash.frame.url.startswith(server.root + "/data/plugin_entry.html")
            dash.wait_drawn(TRAIN_MODELS)
            eid = experiment_id(server)
            answer = dash.fetch(f"./models?experiment={urllib.parse.quote(eid)}")
            assert answer["status"] == 200
            assert answer["url"].startswith(server.root + "/data/plugin/remap/models?")
            assert len(json.loads(answer["body"])["models"]) == TRAIN_MODELS == len(dash.points())
            no_errors(dash)
            dash.screenshot(SHOTS / "11_path_prefix.png")
        finally:
            dash.close()
    finally:
        server.stop()
