"""Models from the user's own training loop on the REMAP map, in a real browser.

A logdir with a small trainer population (digits, 1 epoch) plus two runs logged with
``remap_tb.summary`` (one trained, one untrained) is served by a real ``tensorboard``
(Python loader, no workers) and opened in headless Chromium: the external models are
points of the structural map, the tooltip names their origin ``external``, the
colour-by-origin legend lists ``external`` and the inspector shows ``untrained``.
Set ``REMAP_SHOT_DIR`` to also save the screenshot there.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import remap_tb.summary as remap
from tests.browser import Dashboard, TensorBoardProcess, train_logdir

POPULATION = 4
DENSE = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10},
         "layers": [{"type": "dense", "units": 24}, {"type": "activation", "fn": "tanh"}]}
CONV = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10},
        "layers": [{"type": "conv2d", "filters": 6, "kernel_size": 3}, {"type": "activation", "fn": "relu"}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from remap_tb.requests import dataset_config
    from trainer.datasets import load_dataset

    tmp = tmp_path_factory.mktemp("external_e2e")
    logdir = train_logdir(tmp / "logdir", models=POPULATION)
    config = dataset_config({"name": "digits"})
    data = load_dataset(config)
    labels = data.y_val.numpy()
    rng = np.random.default_rng(0)
    trained = str(logdir / "my-trained")
    remap.log_model(trained, DENSE, class_names=data.class_names, dataset=config)
    for epoch in (1, 2):
        guess = np.where(rng.random(labels.size) < 0.5 + 0.2 * epoch, labels, (labels + 1) % 10)
        remap.log_epoch(trained, epoch, 2, predictions=guess, labels=labels, train_loss=1.0 / epoch)
    remap.close(trained)
    remap.log_model(str(logdir / "my-import"), CONV, class_names=data.class_names, dataset=config)
    remap.close(str(logdir / "my-import"))
    tb = TensorBoardProcess(logdir, tmp / "tensorboard.log", load_fast="false", workers=0).start()
    try:
        tb.wait_ready(timeout=90, models=POPULATION + 2)
        yield tb
    finally:
        tb.stop()


def test_external_models_are_on_the_map_with_origin_external(chromium, server):
    dash = Dashboard(chromium, server)
    try:
        dash.wait_for_frame()
        dash.wait_drawn(points=POPULATION + 2, timeout=60)
        points = {p["id"]: p for p in dash.points()}
        assert {"my-trained", "my-import"} <= set(points), sorted(points)

        dash.hover(points["my-trained"])
        tooltip = dash.testid("tooltip")
        tooltip.wait_for(state="visible", timeout=5000)
        assert tooltip.get_attribute("data-model-id") == "my-trained"
        assert "external" in tooltip.inner_text()

        untrained = dash.testid("legend-untrained")  # coloured by accuracy: the untrained import is marked grey
        untrained.wait_for(state="visible", timeout=5000)
        assert untrained.inner_text().strip() == "untrained (1)"
        dash.testid("color-by").select_option("origin")
        legend = dash.testid("map-legend")
        legend.wait_for(state="visible", timeout=5000)
        assert "external" in legend.inner_text()

        dash.click(points["my-import"])
        dash.frame.wait_for_function(
            "() => document.body.innerText.includes('untrained')", timeout=10000)
        dash.page.mouse.move(5, 75)
        shots = os.environ.get("REMAP_SHOT_DIR")
        if shots:
            dash.page.wait_for_timeout(500)
            dash.screenshot(Path(shots) / "external_e2e.png")
        assert not dash.errors, dash.errors
    finally:
        dash.close()
