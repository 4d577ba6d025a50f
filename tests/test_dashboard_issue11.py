"""Issue 11, section 2 (the dashboard), end to end: a real ``tensorboard`` subprocess (one
local worker) on a copy of the shared trained logdir, plus one hand-crafted child the
worker trains for 2 epochs (its parent trained 1), driven in Debian's Chromium at
1440×900 (helpers in ``tests/browser.py``).

- ``models`` reports ``epochs_trained``; the tooltip, inspector and drawer show it, and
  Δ parent warns that the child trained for other epochs than its parent.
- The drawer's "Top 25 finished" and "All" honour the map's filters and budget.
- The hand-crafted child (enqueued without a change list) gets one from the alignment;
  the editor records one with what it enqueues, and says when nothing changed.
- A duplicate candidate names the existing model and a click inspects it.
- Compare shows the unnormalised structural distance beside the normalised one.
- The Classes view says how many models it averages.
- The drawer shows at least 10 rows; panels scroll back to the top for a new model.
- A click on the map with the Generate tab open says the target changed.
- A just-enqueued request shows at once with a Cancel button, which cancels it.
- ``remap demo``'s longer request (``trainer/demo_request.py``).

Every browser test fails on a console or page error.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from tests.browser import (REPO, Dashboard, TensorBoardProcess, TRAIN_MODELS, copy_logdir, models_json, no_errors,
                           shot, wait_models)

WIDTH, HEIGHT = 1440, 900
CHILD_EPOCHS = 2  # the shared logdir's models trained 1 epoch


@pytest.fixture(scope="module")
def tensorboard(tmp_path_factory, trained_logdir):
    """TensorBoard with one worker, and a hand-crafted child (an ablation of the best model,
    enqueued without a change list) trained for CHILD_EPOCHS epochs."""
    tmp = tmp_path_factory.mktemp("issue11")
    logdir = copy_logdir(trained_logdir, tmp / "logdir")
    server = TensorBoardProcess(logdir, tmp / "tensorboard.log", load_fast="false", workers=1).start()
    try:
        server.wait_ready(timeout=90, models=TRAIN_MODELS)
        models = models_json(server)
        parent = max((m for m in models if m["status"]["state"] == "done"), key=lambda m: m["val_accuracy"])
        candidates = server.post_json("generate", {"parents": [parent["run"]], "kind": "ablation"})["candidates"]
        child = next(c for c in candidates if c["valid"])
        body = {"items": [{"spec": child["spec"], "parent": parent["run"], "origin": "handcrafted"}],
                "epochs": CHILD_EPOCHS, "client_key": f"issue11-child-{time.time_ns()}"}
        (child_id,) = server.post_json("enqueue", body)["request_ids"]
        wait_models(server, lambda ms: any(m["id"] == child_id and m["status"]["state"] == "done" for m in ms))
        server.issue11 = {"parent": parent["id"], "child": child_id, "child_key": child["key"],
                          "child_changes": child["changes"]}
        yield server
    finally:
        server.stop()


@pytest.fixture
def dash(chromium, tensorboard):
    d = Dashboard(chromium, tensorboard, width=WIDTH, height=HEIGHT)
    d.wait_drawn(TRAIN_MODELS)
    yield d
    errors = list(d.errors)
    d.close()
    assert not errors, f"console/page errors: {errors}"


# ---------------------------------------------------------------- helpers


def drawer_mode(dash: Dashboard, mode: str) -> None:
    dash.frame.locator(f'[data-testid=drawer-mode] button[data-mode="{mode}"]').click()


def inspect_row(dash: Dashboard, model_id: str) -> None:
    """Inspect a model by its drawer row (the "All" list)."""
    dash.testid("tab-inspector").click()
    drawer_mode(dash, "all")
    dash.frame.locator(f'[data-testid=drawer-row][data-model-id="{model_id}"]').click()
    dash.wait_inspected(model_id)


def drawer_ids(dash: Dashboard) -> list[str]:
    return dash.frame.eval_on_selector_all("[data-testid=drawer-row]", "rows => rows.map(r => r.dataset.modelId)")


def posted(dash: Dashboard, route: str) -> list[dict]:
    bodies: list[dict] = []
    dash.page.on("request", lambda r: bodies.append(json.loads(r.post_data))
                 if r.method == "POST" and r.url.split("?")[0].endswith("/" + route) else None)
    return bodies


# ---------------------------------------------------------------- HTTP


def test_models_route_reports_epochs_trained(tensorboard):
    info = tensorboard.issue11
    models = {m["id"]: m for m in models_json(tensorboard)}
    for m in models.values():
        assert m["epochs_trained"] == m["status"]["epoch"], m
    assert models[info["parent"]]["epochs_trained"] == 1
    assert models[info["child"]]["epochs_trained"] == CHILD_EPOCHS
    detail = tensorboard.plugin_json(f"model?run={models[info['child']]['run']}")
    assert detail["epochs_trained"] == CHILD_EPOCHS == len([p for p in detail["curves"] if p["val_accuracy"] is not None])


# ---------------------------------------------------------------- browser


def test_epochs_in_tooltip_inspector_and_drawer_with_a_delta_warning(dash):
    info = dash.tensorboard.issue11
    child, parent = info["child"], info["parent"]
    dash.hover(dash.point_of(child))
    tip = dash.testid("tooltip")
    dash.frame.wait_for_function("id => document.querySelector('[data-testid=tooltip]').dataset.modelId === id",
                                 arg=child, timeout=10000)
    assert tip.get_attribute("data-model-id") == child
    assert dash.testid("tooltip-epochs").inner_text() == f"{CHILD_EPOCHS} epochs"
    warning = dash.testid("tooltip-epochs-warning")
    assert warning.count() == 1 and f"{parent} trained 1 epoch" in warning.get_attribute("title")
    inspect_row(dash, child)
    trained = dash.frame.locator('[data-testid=inspector] [data-kv="Trained"] b')
    assert trained.inner_text() == f"{CHILD_EPOCHS} epochs"
    warn = dash.testid("inspector-epochs-warning")
    assert warn.count() == 1 and "this model 2" in warn.get_attribute("title")
    # The drawer: an Epochs column, and the Δ parent cell warns.
    row = dash.frame.locator(f'[data-testid=drawer-row][data-model-id="{child}"]')
    assert row.locator("[data-testid=drawer-epochs]").inner_text() == str(CHILD_EPOCHS)
    assert row.locator("[data-testid=delta-epochs-warning]").count() == 1
    other = dash.frame.locator(f'[data-testid=drawer-row][data-model-id="{parent}"]')
    assert other.locator("[data-testid=drawer-epochs]").inner_text() == "1"
    dash.frame.locator("th[data-sort=epochs]").click()  # sortable: the child (2 epochs) first
    assert drawer_ids(dash)[0] == child
    no_errors(dash)
    shot(dash, "issue11-epochs")


def test_drawer_top_and_all_honour_filters_and_budget(dash):
    models = models_json(dash.tensorboard)
    drawer_mode(dash, "top")
    done = [m for m in models if m["status"]["state"] == "done"]
    # No budget: every finished model (fewer than 25 here).
    dash.testid("budget-input").fill("")
    dash.testid("budget-input").press("Enter")
    dash.frame.wait_for_function("n => document.querySelectorAll('[data-testid=drawer-row]').length === n", arg=len(done))
    assert set(drawer_ids(dash)) == {m["id"] for m in done}
    # A budget below the largest models: Top lists only models within it.
    params = sorted(m["params"] for m in done)
    budget = params[len(params) // 2]
    dash.testid("budget-input").fill(str(budget))
    dash.testid("budget-input").press("Enter")
    within = {m["id"] for m in done if m["params"] <= budget}
    dash.frame.wait_for_function("n => document.querySelectorAll('[data-testid=drawer-row]').length === n", arg=len(within))
    assert set(drawer_ids(dash)) == within
    assert "over the budget" in dash.testid("drawer-scope").inner_text()
    # Filters: only hand-crafted models pass (the one child), and Top and All follow.
    dash.testid("budget-input").fill("")
    dash.testid("budget-input").press("Enter")
    dash.testid("filters-toggle").click()
    dash.frame.locator('[data-testid=filters-panel] input[data-filter=origin][value=handcrafted]').check()
    child = dash.tensorboard.issue11["child"]
    dash.frame.wait_for_function("id => { const r = [...document.querySelectorAll('[data-testid=drawer-row]')];"
                                 " return r.length === 1 && r[0].dataset.modelId === id; }", arg=child, timeout=10000)
    assert "hidden by the filters" in dash.testid("drawer-scope").inner_text()
    drawer_mode(dash, "all")
    handcrafted = [m["id"] for m in models if m["origin"] == "handcrafted"]
    assert sorted(drawer_ids(dash)) == sorted(handcrafted)
    assert f"All ({len(handcrafted)} of {len(models)})" in dash.testid("drawer-mode").inner_text()
    no_errors(dash)


def test_handcrafted_child_gets_a_change_list_from_the_alignment(dash):
    info = dash.tensorboard.issue11
    models = {m["id"]: m for m in models_json(dash.tensorboard)}
    assert models[info["child"]]["changes"] == []  # enqueued without one
    inspect_row(dash, info["child"])
    changes = dash.testid("inspector-changes")
    changes.wait_for(timeout=15000)
    assert changes.get_attribute("data-derived") == "true"
    text = changes.inner_text()
    # The ablation removed one layer: the alignment finds the same layer (as "removed layer k").
    removed = [c for c in info["child_changes"] if c.startswith("removed layer")][0]
    index, layer_type = removed.split()[2], removed.split()[3]
    assert f"removed layer {index} {layer_type}" in text, (text, info["child_changes"])
    assert f"Changes vs {info['parent']}" in text


def test_editor_records_changes_says_when_nothing_changed_and_links_the_parent(dash):
    info = dash.tensorboard.issue11
    inspect_row(dash, info["parent"])
    dash.testid("tab-editor").click()
    dash.testid("editor-load-inspected").click()
    same = dash.testid("editor-changes")
    same.wait_for(timeout=15000)
    assert same.get_attribute("data-count") == "0" and "same model as" in same.inner_text()
    link = same.locator("[data-testid=duplicate-link]")
    assert link.get_attribute("data-model-id") == info["parent"]
    link.click()  # the duplicate's existing model: inspected
    dash.wait_inspected(info["parent"])
    assert dash.frame.locator("[data-testid=tab-inspector]").get_attribute("aria-selected") == "true"
    # Edit one field: the change list follows, and the enqueue body carries it.
    dash.testid("budget-input").fill("")  # no budget: a wider layer stays valid
    dash.testid("budget-input").press("Enter")
    dash.testid("tab-editor").click()
    field = dash.frame.locator("[data-testid=editor-layers] input[data-field=filters],"
                               " [data-testid=editor-layers] input[data-field=units]").first
    field.fill(str(int(field.input_value()) + 1))
    field.press("Tab")
    dash.frame.wait_for_function("() => { const e = document.querySelector('[data-testid=editor-changes]');"
                                 " return e && e.dataset.count === '1'; }", timeout=15000)
    change = dash.testid("editor-changes").inner_text()
    bodies = posted(dash, "enqueue")
    dash.testid("editor-epochs").fill("300")  # long enough to cancel it while it runs
    dash.frame.wait_for_function("() => !document.querySelector('[data-testid=editor-enqueue]').disabled", timeout=15000)
    dash.testid("editor-enqueue").click()
    # Cancel-ready at once: the tracker lists it with a Cancel button before any epoch.
    row = dash.testid("tracker-row").first
    row.wait_for(timeout=10000)
    assert row.get_attribute("data-state") in ("sent", "pending", "running")
    assert row.locator("[data-testid=tracker-cancel]").is_visible()
    rid = row.get_attribute("data-request-id")
    assert len(bodies) == 1
    item = bodies[0]["items"][0]
    assert item["origin"] == "handcrafted" and item["parent"] == info["parent"]
    assert len(item["changes"]) == 1 and item["changes"][0] in change
    shot(dash, "issue11-tracker")
    row.locator("[data-testid=tracker-cancel]").click()
    dash.frame.wait_for_function("id => { const r = document.querySelector(`[data-testid=tracker-row][data-request-id='${id}']`);"
                                 " return r && r.dataset.state === 'cancelled'; }", arg=rid, timeout=30000)
    queue = {r["id"]: r for r in dash.tensorboard.plugin_json("queue")["requests"]}
    assert queue[rid]["state"] == "cancelled"
    no_errors(dash)


def test_duplicate_candidate_names_and_links_the_existing_model(dash):
    info = dash.tensorboard.issue11
    inspect_row(dash, info["parent"])
    dash.testid("tab-generate").click()
    dash.testid("generate-kind-ablation").click()
    dash.testid("generate-preview").click()
    dup = dash.frame.locator(f'[data-testid=candidate][data-key="{info["child_key"]}"]')
    dup.wait_for(timeout=30000)
    reason = dup.locator("[data-testid=candidate-reason]")
    link = reason.locator("[data-testid=duplicate-link]")
    assert link.get_attribute("data-model-id") == info["child"], reason.inner_text()
    assert info["child"] in reason.inner_text()
    link.click()
    dash.wait_inspected(info["child"])
    no_errors(dash)


def test_compare_shows_unnormalised_beside_normalised_structural_distance(dash):
    models = models_json(dash.tensorboard)
    drawer_mode(dash, "all")
    for m in models[:2]:
        dash.frame.locator(f'[data-testid=drawer-row][data-model-id="{m["id"]}"] input[type=checkbox]').click()
    dash.testid("tab-compare").click()
    raw = dash.testid("structural-raw-distances")
    raw.wait_for(timeout=30000)
    norm = dash.testid("structural-distances")
    assert norm.is_visible() and raw.is_visible()
    ids = dash.frame.eval_on_selector_all("[data-testid=compare] table.rm-table:not(.rm-dist) tbody tr",
                                          "rows => rows.map(r => r.dataset.modelId)")
    runs = [next(m["run"] for m in models if m["id"] == i) for i in ids]
    answer = dash.tensorboard.plugin_json(f"compare?runs={','.join(runs)}")
    cell = raw.locator("tbody tr").first.locator("td").nth(2).inner_text()
    d = answer["structural"][0][1]
    assert cell == (f"{d:.3f}" if d < 1 else f"{d:.1f}")
    ncell = norm.locator("tbody tr").first.locator("td").nth(2).inner_text()
    dn = answer["structural_normalised"][0][1]
    assert ncell == (f"{dn:.3f}" if dn < 1 else f"{dn:.1f}")
    assert d != dn  # two different figures side by side
    no_errors(dash)


def test_classes_view_says_how_many_models_it_averages(dash):
    dash.testid("tab-classes").click()
    scope = dash.testid("classes-scope")
    scope.wait_for(timeout=10000)
    models = models_json(dash.tensorboard)
    with_data = [m for m in models if m["per_class_accuracy"]]
    assert int(scope.get_attribute("data-models")) == len(with_data)
    assert int(scope.get_attribute("data-total")) == len(models)
    text = scope.inner_text()
    if len(with_data) < len(models):
        assert f"over {len(with_data)} of all {len(models)} models" in text
    else:
        assert text == f"over all {len(models)} models"


def test_drawer_shows_ten_rows_and_panels_reset_their_scroll(dash):
    drawer_mode(dash, "all")
    fit = dash.frame.evaluate("""() => {
        const body = document.querySelector('.rm-drawer-body');
        const head = body.querySelector('thead').getBoundingClientRect().height;
        const row = body.querySelector('[data-testid=drawer-row]').getBoundingClientRect().height;
        return (body.clientHeight - head) / row; }""")
    assert fit >= 10, f"the drawer fits {fit:.1f} rows at {WIDTH}x{HEIGHT}"
    models = models_json(dash.tensorboard)
    first, second = models[0]["id"], models[1]["id"]
    inspect_row(dash, first)
    panel = '[data-panel="inspector"]'
    scrolled = dash.frame.evaluate(f"() => {{ const p = document.querySelector('{panel}'); p.scrollTop = 10000; return p.scrollTop; }}")
    assert scrolled > 100  # the inspector is long enough to scroll
    dash.frame.locator(f'[data-testid=drawer-row][data-model-id="{second}"]').click()
    dash.wait_inspected(second)
    assert dash.frame.evaluate(f"() => document.querySelector('{panel}').scrollTop") == 0


def test_click_on_the_map_with_generate_open_changes_the_target_visibly(dash):
    points = {p["id"]: p for p in dash.free_points()}
    assert len(points) >= 2, "two models must be clickable"
    first, second = list(points)[:2]
    dash.testid("tab-inspector").click()
    dash.click(points[first])
    dash.wait_inspected(first)
    dash.testid("tab-generate").click()
    assert f"target: {first}" in dash.testid("generate-target").text_content()
    dash.testid("generate-preview").click()
    dash.testid("candidate").first.wait_for(timeout=30000)
    dash.click(points[second])
    note = dash.testid("generate-target-changed")
    note.wait_for(timeout=10000)
    assert f"Target changed to {second} (was {first})" in note.inner_text()
    assert "preview again" in note.inner_text()
    assert f"target: {second}" in dash.testid("generate-target").text_content()
    assert dash.frame.locator("[data-testid=tab-generate]").get_attribute("aria-selected") == "true"
    no_errors(dash)
    shot(dash, "issue11-generate-target")


# ---------------------------------------------------------------- the demo's longer request


def test_demo_enqueues_one_longer_request(tmp_path):
    from remap_tb.queue import Queue
    from trainer.demo_request import SLOW_EPOCHS, SLOW_ID, enqueue_slow_request, slow_request

    logdir = tmp_path / "demo"
    shutil.copytree(REPO / "demo_logs", logdir)
    request = slow_request(str(logdir))
    parent = json.loads((logdir / request["provenance"]["parent"] / "request.json").read_text())
    assert request["training"]["epochs"] == SLOW_EPOCHS > 10 * parent["training"]["epochs"]
    assert request["spec"] != parent["spec"] and request["provenance"]["changes"]
    assert enqueue_slow_request(str(logdir)) == SLOW_ID
    assert enqueue_slow_request(str(logdir)) == SLOW_ID  # once: the id is never enqueued twice
    listed = [r for r in Queue(str(logdir)).list()["requests"] if r["id"] == SLOW_ID]
    assert [r["state"] for r in listed] == ["pending"] and listed[0]["epochs"] == SLOW_EPOCHS
    assert not (REPO / "demo_logs" / ".remap" / "queue" / "ids" / f"{SLOW_ID}.json").exists()  # only the copy
