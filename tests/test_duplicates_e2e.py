"""Issue 11, duplicates in the browser with the real plugin: a variation that does not change
the model is recognised before training by its canonical form, and every duplicate message
names the existing model and links to it.

A real ``tensorboard`` subprocess (one local worker) on a copy of the shared trained logdir
plus one trained model R that has a relu (a done model P with ``activation relu`` inserted
after its first layer). In Debian's Chromium:

- (a) the editor, started from R, with a second relu inserted right after R's relu: the
  validate answer's ``duplicate_of`` shows as "Same model as the existing R" with a link,
  and the link opens R in the Inspector;
- (b) enqueueing it anyway: the plugin answers 409, the message names R with a link, and
  nothing is queued;
- (c) an ablation of R: the child without the relu is P again, named and linked;
- R's own spec enqueued again is queued, with a note naming R and a link to it.
"""

from __future__ import annotations

import time

import pytest

from tests.browser import Dashboard, TensorBoardProcess, TRAIN_MODELS, copy_logdir, models_json, no_errors, wait_models, shot

WIDTH, HEIGHT = 1440, 900
# Chromium logs a refused fetch as a console error; only the enqueue's 409 is expected here.
REFUSED_ENQUEUE = r"status of 409 .*\benqueue\b|/enqueue.*409|409.*Conflict"


@pytest.fixture(scope="module")
def tensorboard(tmp_path_factory, trained_logdir):
    """TensorBoard with one worker and a trained model R = P with a relu after P's first layer."""
    tmp = tmp_path_factory.mktemp("duplicates")
    logdir = copy_logdir(trained_logdir, tmp / "logdir")
    server = TensorBoardProcess(logdir, tmp / "tensorboard.log", load_fast="false", workers=1).start()
    try:
        server.wait_ready(timeout=90, models=TRAIN_MODELS)
        done = [m for m in models_json(server) if m["status"]["state"] == "done"]
        parent = None
        for m in sorted(done, key=lambda m: m["id"]):
            spec = server.plugin_json(f"model?run={m['run']}")["spec"]
            first = spec["layers"][0]
            # A sequential spec whose first layer can be negative (so a relu after it changes the model).
            if all("inputs" not in layer for layer in spec["layers"]) and first["type"] in ("conv2d", "dense") \
                    and spec["layers"][1:2] != [{"type": "activation", "fn": "relu"}]:
                parent = m
                break
        assert parent is not None, [m["id"] for m in done]
        relu_spec = {**spec, "layers": [first, {"type": "activation", "fn": "relu"}, *spec["layers"][1:]]}
        body = {"items": [{"spec": relu_spec, "parent": parent["run"], "origin": "handcrafted",
                           "changes": ["inserted layer 1 activation relu"]}],
                "client_key": f"duplicates-relu-{time.time_ns()}"}
        (relu_id,) = server.post_json("enqueue", body)["request_ids"]
        wait_models(server, lambda ms: any(m["id"] == relu_id and m["status"]["state"] == "done" for m in ms))
        server.duplicates = {"parent": parent["id"], "relu": relu_id, "relu_index": 1}
        yield server
    finally:
        server.stop()


@pytest.fixture
def dash(chromium, tensorboard):
    d = Dashboard(chromium, tensorboard, width=WIDTH, height=HEIGHT, ignore=[REFUSED_ENQUEUE])
    d.wait_drawn(TRAIN_MODELS + 1)
    yield d
    errors = list(d.errors)
    d.close()
    assert not errors, f"console/page errors: {errors}"


def inspect_row(dash: Dashboard, model_id: str) -> None:
    """Inspect a model by its drawer row (the "All" list)."""
    dash.testid("tab-inspector").click()
    dash.frame.locator('[data-testid=drawer-mode] button[data-mode="all"]').click()
    dash.frame.locator(f'[data-testid=drawer-row][data-model-id="{model_id}"]').click()
    dash.wait_inspected(model_id)


def queue_ids(server: TensorBoardProcess) -> set[str]:
    return {r["id"] for r in server.plugin_json("queue")["requests"]}


def test_relu_after_relu_names_the_model_links_it_and_is_refused_on_enqueue(dash):
    info = dash.tensorboard.duplicates
    relu = info["relu"]
    inspect_row(dash, relu)
    dash.testid("tab-editor").click()
    dash.testid("editor-load-inspected").click()
    dash.testid("editor-layers").wait_for(timeout=15000)
    layer = dash.frame.locator(f'[data-testid=editor-layer][data-index="{info["relu_index"]}"]')
    assert layer.get_attribute("data-type") == "activation"
    assert layer.locator("select[data-field=fn]").input_value() == "relu"
    # Insert an activation right after R's relu and make it a relu too.
    dash.frame.locator(f'[data-testid=editor-slot][data-slot="{info["relu_index"] + 1}"]').click()
    dash.testid("palette-activation").click()
    new = dash.frame.locator(f'[data-testid=editor-layer][data-index="{info["relu_index"] + 1}"]')
    assert new.get_attribute("data-type") == "activation"
    new.locator("select[data-field=fn]").select_option("relu")
    # The change list sees a change; the validate answer's duplicate_of says it is R anyway.
    dash.frame.wait_for_function("() => { const e = document.querySelector('[data-testid=editor-changes]');"
                                 " return e && e.dataset.count === '1'; }", timeout=15000)
    banner = dash.testid("editor-duplicate")
    banner.wait_for(timeout=15000)
    assert banner.get_attribute("data-duplicate-of") == relu
    assert relu in banner.inner_text() and "Same model as" in banner.inner_text()
    link = banner.locator("[data-testid=duplicate-link]")
    assert link.get_attribute("data-model-id") == relu
    shot(dash, "duplicates-editor")
    link.click()
    dash.wait_inspected(relu)
    assert dash.frame.locator("[data-testid=tab-inspector]").get_attribute("aria-selected") == "true"

    # (b) Enqueue it anyway: a 409 that names R, a link to it, and nothing queued.
    dash.testid("tab-editor").click()
    dash.testid("editor-duplicate").wait_for(timeout=15000)  # the edit is still there
    before = queue_ids(dash.tensorboard)
    answers: list[int] = []
    dash.page.on("response", lambda r: answers.append(r.status) if r.url.split("?")[0].endswith("/enqueue") else None)
    dash.frame.wait_for_function("() => !document.querySelector('[data-testid=editor-enqueue]').disabled", timeout=15000)
    dash.testid("editor-enqueue").click()
    error = dash.testid("editor-enqueue-error")
    error.wait_for(timeout=15000)
    assert answers == [409], answers
    text = error.inner_text()
    assert relu in text and "no-ops are removed" in text, text
    link = error.locator("[data-testid=duplicate-link]")
    assert link.get_attribute("data-model-id") == relu
    assert queue_ids(dash.tensorboard) == before
    shot(dash, "duplicates-enqueue-refused")
    link.click()
    dash.wait_inspected(relu)
    assert all("409" in e for e in dash.ignored), dash.ignored  # only the refused enqueue was let through
    no_errors(dash)


def test_ablation_of_the_relu_names_and_links_the_model_it_came_from(dash):
    info = dash.tensorboard.duplicates
    inspect_row(dash, info["relu"])
    dash.testid("tab-generate").click()
    dash.testid("generate-kind-ablation").click()
    dash.testid("generate-preview").click()
    dash.testid("candidate").first.wait_for(timeout=30000)
    reasons = dash.frame.locator("[data-testid=candidate][data-valid=false] [data-testid=candidate-reason]")
    linked = [r for r in reasons.all()
              if r.locator(f'[data-testid=duplicate-link][data-model-id="{info["parent"]}"]').count()]
    assert linked, [r.inner_text() for r in reasons.all()]  # removing the relu gives P back
    assert info["parent"] in linked[0].inner_text()
    linked[0].locator("[data-testid=duplicate-link]").click()
    dash.wait_inspected(info["parent"])
    no_errors(dash)


def test_enqueueing_the_same_spec_again_queues_it_and_says_which_model_it_repeats(dash):
    info = dash.tensorboard.duplicates
    relu = info["relu"]
    inspect_row(dash, relu)
    dash.testid("tab-editor").click()
    dash.testid("editor-load-inspected").click()
    same = dash.testid("editor-changes")
    same.wait_for(timeout=15000)
    assert same.get_attribute("data-count") == "0"
    before = queue_ids(dash.tensorboard)
    dash.frame.wait_for_function("() => !document.querySelector('[data-testid=editor-enqueue]').disabled", timeout=15000)
    dash.testid("editor-enqueue").click()
    note = dash.testid("editor-enqueue-duplicates")
    note.wait_for(timeout=15000)
    assert note.get_attribute("data-duplicate-of") == relu
    assert "1 item is the same model as" in note.inner_text() and "queued anyway" in note.inner_text()
    assert note.locator("[data-testid=duplicate-link]").get_attribute("data-model-id") == relu
    assert len(queue_ids(dash.tensorboard) - before) == 1  # training a model again is allowed
    note.locator("[data-testid=duplicate-link]").click()
    dash.wait_inspected(relu)
    no_errors(dash)
