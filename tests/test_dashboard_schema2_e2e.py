"""Branching architectures (spec schema 2) in the REMAP tab, end to end: a real
``tensorboard`` subprocess (one local worker) on a logdir that the project's trainer
wrote (``remap train``: a residual model and a chain), driven with Playwright in
Debian's Chromium (helpers in ``tests/browser.py``).

- The inspector's glyph draws the skip connection as an arc from the layer it comes
  from to the ``add``, with the merge's mark; the spec table says what the add reads;
  the comparison draws the arc over its aligned columns.
- The editor: a second input on a conv is flagged next to the layer, live; "skip
  from…" instead inserts an ``add`` (a valid residual block), which is enqueued as
  schema 2, trained by the worker and shown on the map with its arc.

Every test fails on a console error or page error. Screenshots go to
``test-output/screenshots/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse

import pytest

from tests.browser import REPO, Dashboard, TensorBoardProcess, models_json, no_errors, shot

TRAIN_LIMIT_S = 120  # enqueue -> the new model is a point on the map

# conv -> relu -> conv (padding 1, no bias) -> bn -> add(bn, relu) -> relu -> maxpool: a residual block.
RESIDUAL = {
    "schema": 2,
    "input": {"shape": [1, 8, 8], "num_classes": 10},
    "layers": [
        {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same"},
        {"type": "activation", "fn": "relu"},
        {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": 1, "bias": False},
        {"type": "batchnorm"},
        {"type": "add", "inputs": [3, 1]},
        {"type": "activation", "fn": "relu"},
        {"type": "maxpool2d", "pool_size": 2},
    ],
}
CHAIN = {
    "schema": 1,
    "input": {"shape": [1, 8, 8], "num_classes": 10},
    "layers": [
        {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same"},
        {"type": "activation", "fn": "relu"},
        {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same"},
        {"type": "activation", "fn": "relu"},
        {"type": "maxpool2d", "pool_size": 2},
    ],
}
MODELS = {"residual": RESIDUAL, "chain": CHAIN}


def train(spec: dict, logdir, run_id: str, tmp) -> None:
    """One model into ``logdir`` through the real trainer (``remap train``, digits, 1 epoch)."""
    path = tmp / f"{run_id}.json"
    path.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "trainer.cli", "train", str(path), str(logdir), "--dataset", "digits",
           "--epochs", "1", "--id", run_id]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def tensorboard(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schema2")
    logdir = tmp / "logdir"
    for run_id, spec in MODELS.items():
        train(spec, logdir, run_id, tmp)
    server = TensorBoardProcess(logdir, tmp / "tensorboard.log", load_fast="false", workers=1).start()
    try:
        server.wait_ready(timeout=60, models=len(MODELS))
        yield server
    finally:
        server.stop()


def editor_layer(dash: Dashboard, index: int, layer_type: str | None = None):
    sel = f"[data-testid=editor-layer][data-index='{index}']" + (f"[data-type={layer_type}]" if layer_type else "")
    return dash.frame.locator(sel)


def wait_valid(dash: Dashboard) -> None:
    try:
        _wait_valid(dash)
    except Exception:
        shot(dash, "s2_editor_not_valid")
        raise AssertionError(f"the editor never became valid:\n{dash.testid('editor').inner_text()}")


def _wait_valid(dash: Dashboard) -> None:
    dash.frame.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=editor-validity]');"
        " const b = document.querySelector('[data-testid=editor-enqueue]');"
        " return v && v.textContent.includes('valid') && !v.textContent.includes('✗') && b && !b.disabled; }",
        timeout=10000)


# --------------------------------------------------------------------------- tests


def test_the_inspector_glyph_draws_the_skip_connection_and_the_comparison_keeps_it(dashboard):
    dash = dashboard
    glyphs = {m["id"]: m["glyph"] for m in models_json(dash.tensorboard)}
    assert glyphs["residual"][4] == {"index": 4, "type": "add", "output_shape": [8, 8, 8], "params": 0, "inputs": [1, 3]}  # normal form: an add's inputs sorted
    assert not any("inputs" in g for g in glyphs["chain"])  # chain glyphs are as before

    dash.wait_drawn(len(MODELS))
    dash.inspect("residual")
    glyph = dash.frame.locator("[data-testid=inspector] svg[data-testid=glyph]").first
    assert glyph.get_attribute("data-arcs") == "1"
    arcs = glyph.locator("[data-testid=glyph-arc]")
    assert arcs.count() == 1
    assert (arcs.first.get_attribute("data-from"), arcs.first.get_attribute("data-to")) == ("1", "4")
    assert glyph.locator("[data-merge=add]").count() == 1
    # The arc leaves the relu's block and enters the add's (x of the path's ends = the blocks' centres).
    ends = dash.frame.evaluate("""() => {
        const svg = document.querySelector('[data-testid=inspector] svg[data-testid=glyph]');
        const centre = i => { const r = svg.querySelector(`rect[data-layer="${i}"]`);
                              return +r.getAttribute('x') + +r.getAttribute('width') / 2; };
        const d = svg.querySelector('[data-testid=glyph-arc]').getAttribute('d');
        const nums = d.match(/-?[\\d.]+/g).map(Number);
        return {x1: nums[0], x2: nums[nums.length - 2], relu: centre(1), add: centre(4)};
    }""")
    assert abs(ends["x1"] - ends["relu"]) < 0.01 and abs(ends["x2"] - ends["add"]) < 0.01, ends
    reads = dash.frame.locator("[data-testid=spec-table] tr[data-layer='4'] [data-testid=layer-inputs]")
    assert "#1, #3" in reads.inner_text()
    shot(dash, "s2_01_inspector_residual")

    # The chain model draws no arc; the comparison aligns the two and keeps the residual's arc.
    dash.inspect("chain")
    chain_glyph = dash.frame.locator("[data-testid=inspector] svg[data-testid=glyph]").first
    assert chain_glyph.get_attribute("data-arcs") is None
    assert chain_glyph.locator("[data-testid=glyph-arc]").count() == 0
    dash.click(dash.point_of("residual"), shift=True)
    dash.click(dash.point_of("chain"), shift=True)
    rows = dash.testid("compare-glyphs")
    rows.wait_for(state="visible", timeout=15000)
    residual_row = rows.locator("svg[data-model-id=residual]")
    residual_row.wait_for(state="visible", timeout=15000)
    assert residual_row.get_attribute("data-arcs") == "1"
    assert residual_row.locator("[data-merge=add]").count() == 1
    assert rows.locator("svg[data-model-id=chain] [data-testid=glyph-arc]").count() == 0
    shot(dash, "s2_02_compare_residual_chain")
    no_errors(dash)


def test_the_editor_flags_a_second_input_on_a_conv_then_adds_a_skip_and_enqueues_it(dashboard):
    dash = dashboard
    dash.wait_drawn(len(MODELS))
    budget = dash.testid("budget-input")  # two small models: the default budget would flag a 16-filter model
    budget.fill("100000")
    budget.press("Tab")
    dash.frame.wait_for_function("() => document.querySelector('[data-testid=budget-input]').value === '100000'")
    dash.testid("tab-editor").click()
    dash.testid("palette-add").wait_for(state="visible", timeout=10000)  # merge types from GET schema
    dash.testid("editor-empty").click()
    # conv (same) -> relu -> conv (same)
    for i, layer_type in enumerate(["conv2d", "activation", "conv2d"]):
        dash.testid(f"palette-{layer_type}").click()
        editor_layer(dash, i, layer_type).wait_for(state="visible")
    for i in (0, 2):
        editor_layer(dash, i).locator("select[data-field=padding]").select_option("same")
    wait_valid(dash)
    conv = editor_layer(dash, 2, "conv2d")
    assert conv.get_by_test_id("editor-inputs").get_attribute("data-inputs") == "1"

    # A second input on a conv: the server says only merges take several, next to the layer.
    conv.get_by_test_id("editor-add-input").select_option("0")
    conv = editor_layer(dash, 2, "conv2d")
    assert conv.get_by_test_id("editor-inputs").get_attribute("data-inputs") == "1,0"
    error = conv.get_by_test_id("editor-error")
    error.wait_for(state="visible", timeout=10000)
    assert "only add and concat take several inputs" in error.inner_text()
    assert "bad" in conv.get_by_test_id("editor-inputs").get_attribute("class")
    assert dash.testid("editor-enqueue").is_disabled()
    assert "✗" in dash.testid("editor-validity").inner_text()
    shot(dash, "s2_03_editor_inputs_error")

    # Remove that connection again, then add a skip from layer 0: an add after the conv.
    conv.locator("[data-testid=editor-input][data-input='0'] [data-testid=editor-input-remove]").click()
    conv = editor_layer(dash, 2, "conv2d")
    conv.get_by_test_id("editor-error").wait_for(state="hidden", timeout=10000)
    assert conv.get_by_test_id("editor-inputs").get_attribute("data-inputs") == "1"
    conv.get_by_test_id("editor-add-skip").select_option("0")
    add = editor_layer(dash, 3, "add")
    add.wait_for(state="visible")
    assert add.get_by_test_id("editor-inputs").get_attribute("data-inputs") == "2,0"
    wait_valid(dash)
    editor_glyph = dash.frame.locator("[data-testid=editor-glyph] svg[data-testid=glyph]")
    assert editor_glyph.get_attribute("data-arcs") == "1"
    arc = editor_glyph.locator("[data-testid=glyph-arc]")
    assert (arc.get_attribute("data-from"), arc.get_attribute("data-to")) == ("0", "3")
    shot(dash, "s2_04_editor_add_skip")

    dash.testid("editor-epochs").fill("1")
    dash.testid("editor-enqueue").click()
    message = dash.frame.locator("[data-testid=editor-message] [data-request-ids]")
    message.wait_for(state="visible", timeout=10000)
    enqueued_at = time.monotonic()
    request_id = message.get_attribute("data-request-ids")
    assert request_id and "Queued" in message.inner_text()
    queue = dash.tensorboard.plugin_json("queue")
    assert any(r["id"] == request_id and r["origin"] == "handcrafted" for r in queue["requests"])

    # The worker trains it; it appears on the map, a schema 2 model with the skip in its glyph.
    dash.frame.wait_for_function("id => window.__remapMap.points().some(p => p.id === id)", arg=request_id,
                                 timeout=TRAIN_LIMIT_S * 1000, polling=250)
    assert time.monotonic() - enqueued_at <= TRAIN_LIMIT_S
    model = next(m for m in models_json(dash.tensorboard) if m["id"] == request_id)
    assert [g["type"] for g in model["glyph"]] == ["conv2d", "activation", "conv2d", "add", "classifier"]
    assert sorted(model["glyph"][3]["inputs"]) == [0, 2]
    spec = json.loads(dash.fetch(f"./export?run={urllib.parse.quote(request_id)}&format=json")["body"])
    assert spec["schema"] == 2 and spec["layers"][3]["type"] == "add" and sorted(spec["layers"][3]["inputs"]) == [0, 2]
    dash.inspect(request_id)
    glyph = dash.frame.locator("[data-testid=inspector] svg[data-testid=glyph]").first
    assert glyph.get_attribute("data-arcs") == "1"
    shot(dash, "s2_05_trained_residual")
    no_errors(dash)


def open_generate(dash: Dashboard, model_id: str, kind: str) -> None:
    dash.inspect(model_id)
    dash.testid("tab-generate").click()
    parents = dash.testid("generate-parents")
    parents.wait_for(state="visible", timeout=10000)
    dash.frame.wait_for_function(
        "id => { const el = document.querySelector('[data-testid=generate-parents]'); return el && el.textContent.includes(id); }",
        arg=model_id, timeout=10000)
    dash.testid(f"generate-kind-{kind}").click()


def candidate_changes(dash: Dashboard) -> list[str]:
    return [t.strip() for t in dash.frame.locator("[data-testid=candidate] .chg").all_inner_texts()]


def test_generate_ablates_a_whole_residual_block_and_the_child_trains_onto_the_map(dashboard):
    dash = dashboard
    dash.wait_drawn(len(MODELS))
    # A chain: no add layer, so no block toggle and "remove skip connection" is disabled with a hint.
    open_generate(dash, "chain", "ablation")
    assert not dash.testid("generate-blocks").is_visible()
    dash.testid("generate-kind-variation").click()
    remove_skip = dash.testid("generate-change-remove_skip")
    assert remove_skip.is_disabled() and not remove_skip.is_checked()
    assert "no add layer" in dash.testid("generate-remove-skip-hint").inner_text()
    assert not dash.testid("generate-change-add_skip").is_checked()  # the defaults are as before
    assert dash.testid("generate-change-replace").is_checked()

    # The residual model: ablation offers whole residual blocks.
    open_generate(dash, "residual", "ablation")
    blocks = dash.testid("generate-blocks")
    blocks.wait_for(state="visible", timeout=10000)
    assert not blocks.is_checked()
    dash.testid("generate-kind-variation").click()
    assert not dash.testid("generate-change-remove_skip").is_disabled()
    assert not blocks.is_visible()  # ablation only
    dash.testid("generate-kind-ablation").click()
    blocks.check()
    dash.testid("generate-max-params").fill("100000")
    dash.testid("generate-epochs").fill("1")
    bodies: list[dict] = []
    dash.page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/generate") else None)
    dash.testid("generate-preview").click()
    candidates = dash.testid("candidate")
    candidates.first.wait_for(state="visible", timeout=30000)
    assert bodies and bodies[-1]["kind"] == "ablation" and bodies[-1]["options"] == {"blocks": True}, bodies
    assert candidates.count() == 1  # one block: conv, batchnorm, add after the relu
    changes = candidate_changes(dash)
    assert "removed residual block layers 2-4 (conv2d, batchnorm, add)" in changes[0], changes
    assert candidates.first.get_attribute("data-valid") == "true"
    assert candidates.first.locator("svg[data-testid=glyph]").get_attribute("data-arcs") is None  # a chain again
    shot(dash, "s2_06_generate_block_ablation")

    assert dash.testid("candidate-tick").first.is_checked()
    dash.testid("enqueue-button").click()
    result = dash.testid("enqueue-result")
    result.wait_for(state="visible", timeout=15000)
    enqueued_at = time.monotonic()
    ids = result.get_attribute("data-request-ids").split(",")
    assert len(ids) == 1 and ids[0]
    dash.frame.wait_for_function("id => window.__remapMap.points().some(p => p.id === id)", arg=ids[0],
                                 timeout=TRAIN_LIMIT_S * 1000, polling=250)
    assert time.monotonic() - enqueued_at <= TRAIN_LIMIT_S
    model = next(m for m in models_json(dash.tensorboard) if m["id"] == ids[0])
    assert model["origin"] == "ablation" and model["parent"] == "residual", model
    assert [g["type"] for g in model["glyph"]] == ["conv2d", "activation", "activation", "maxpool2d", "classifier"]
    assert any("removed residual block" in c for c in model["changes"]), model["changes"]
    dash.inspect(ids[0])
    no_errors(dash)


def test_generate_variation_with_only_add_skip_connection_on_a_chain(dashboard):
    dash = dashboard
    dash.wait_drawn(len(MODELS))
    open_generate(dash, "chain", "variation")
    for box in dash.frame.locator("[data-testid^=generate-change-]").all():
        if box.is_checked():
            box.uncheck()
    dash.testid("generate-change-add_skip").check()
    dash.testid("generate-count").fill("3")
    dash.testid("generate-max-params").fill("100000")
    bodies: list[dict] = []
    dash.page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/generate") else None)
    dash.testid("generate-preview").click()
    candidates = dash.testid("candidate")
    candidates.first.wait_for(state="visible", timeout=30000)
    assert bodies and bodies[-1]["options"]["change_types"] == ["add_skip"], bodies
    assert "blocks" not in bodies[-1]["options"]
    assert candidates.count() >= 1
    for text in candidate_changes(dash):
        assert text.startswith("from chain: added skip connection"), text
        assert all(part.startswith("added skip connection") for part in text.removeprefix("from chain: ").split("; ")), text
    glyph = candidates.first.locator("svg[data-testid=glyph]")
    assert int(glyph.get_attribute("data-arcs") or 0) >= 1  # the new skip is drawn as an arc
    assert glyph.locator("[data-merge=add]").count() >= 1
    candidates.first.evaluate("e => e.scrollIntoView({block: 'center'})")
    shot(dash, "s2_07_generate_add_skip")
    no_errors(dash)
