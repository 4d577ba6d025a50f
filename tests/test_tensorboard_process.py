"""Real ``tensorboard`` processes (Rust data server and Python loader) serve the plugin.

Both are started at once on the trained fixture logdir (``tests.browser.TensorBoardProcess``:
``--port 0``, each prints the port it got), asked for the plugin listing and every
read route, and stopped by PID.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest

from remap_tb import metadata
from tests.browser import TensorBoardProcess
from tests.fixtures_runs import GOOD_RUNS

STARTUP_SECONDS = 60


@pytest.fixture(scope="module")
def servers(remap_logdir, tmp_path_factory):
    logs = tmp_path_factory.mktemp("tb_logs")
    started = [TensorBoardProcess(remap_logdir.path, logs / f"tb-{value}.log", load_fast=value, workers=0).start()
               for value in ("true", "false")]
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        for server in started:
            server.wait_for_port(deadline)
        for server in started:  # wait until every trained model has been loaded
            while True:
                experiments = server.get_json("/data/plugin/remap/experiments")["experiments"]
                if experiments and experiments[0]["n_models"] == len(GOOD_RUNS) + 1:
                    break
                assert time.monotonic() < deadline, f"models never appeared:\n{server.log()}"
                time.sleep(0.2)
        yield {server.load_fast: server for server in started}
    finally:
        for server in started:
            server.stop()
    for server in started:
        assert server.process.returncode is not None


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_remap_is_listed_enabled_and_every_read_route_answers(servers, remap_logdir, load_fast):
    server = servers[load_fast]
    listing = server.get_json("/data/plugins_listing")
    assert listing["remap"]["enabled"] is True and listing["remap"]["tab_name"] == "REMAP"

    status, content_type, body = server.get("/data/plugin/remap/index.js")
    assert status == 200 and content_type.startswith("text/javascript") and b"render" in body

    eid = remap_logdir.fingerprint_id
    models = {m["run"]: m for m in server.get_json(f"/data/plugin/remap/models?experiment={eid}")["models"]}
    assert set(models) == {*GOOD_RUNS, "half"}
    assert models["m-retry"]["status"]["state"] == "done"  # attempt 2 only, in both loaders
    assert models["half"]["status"]["state"] == "running"
    assert all(len(models[run]["per_class_accuracy"]) == 10 for run in GOOD_RUNS)

    detail = server.get_json("/data/plugin/remap/model?run=m-child")
    assert [c["id"] for c in detail["provenance_chain"]] == ["m-child", "m-base"]
    assert len(detail["curves"]) == 1 and detail["confusion"]

    compare = server.get_json("/data/plugin/remap/compare?runs=m-base,m-child")
    assert compare["structural"][0][1] > 0 and 0 <= compare["prediction"][0][1] <= 1

    size = server.get_json(f"/data/plugin/remap/projection?experiment={eid}&kind=size")
    assert {p["id"] for p in size["points"]} == set(GOOD_RUNS)

    status, content_type, weights = server.get("/data/plugin/remap/export?run=m-base&format=state_dict")
    with open(os.path.join(remap_logdir.path, "m-base", metadata.WEIGHTS_FILE), "rb") as handle:
        assert status == 200 and weights == handle.read()
    status, content_type, source = server.get("/data/plugin/remap/export?run=m-base&format=pytorch")
    assert status == 200 and b"class Model(nn.Module)" in source

    status, _, body = server.get("/data/plugin/remap/model?run=..%2Fm-base")
    assert status == 400 and b"path" in body

    request = urllib.request.Request(server.base + "/data/plugin/remap/validate", method="POST",
                                     data=json.dumps(detail["spec"]).encode(),
                                     headers={"Content-Type": "application/json", "X-Requested-With": "remap"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["total_params"] == detail["params"]


def test_unreadable_runs_are_reported_not_crashed_on(servers):
    """Rust lists no run for a corrupt event file; the Python loader lists it with no data."""
    rust = {u["run"] for u in servers["true"].get_json("/data/plugin/remap/experiments")["unreadable"]}
    python = {u["run"] for u in servers["false"].get_json("/data/plugin/remap/experiments")["unreadable"]}
    assert rust == {"newer", "partial", "mistyped"}
    assert python == {"newer", "partial", "corrupt", "mistyped"}


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_scalars_and_hparams_tabs_list_every_trained_model(servers, load_fast):
    server = servers[load_fast]
    tags = server.get_json("/data/plugin/scalars/tags")
    for run in GOOD_RUNS:
        assert set(metadata.SCALAR_TAGS) <= set(tags[run]), (load_fast, run)

    def post(path: str, body: dict):
        request = urllib.request.Request(server.base + path, method="POST", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    experiment = post("/data/plugin/hparams/experiment", {"experimentName": ""})
    hparams = {h["name"] for h in experiment["hparamInfos"]}
    assert {"params", "depth", "origin", "dataset", "n_conv2d"} <= hparams
    assert {"val/accuracy", "val/loss"} <= {m["name"]["tag"] for m in experiment["metricInfos"]}
    groups = post("/data/plugin/hparams/session_groups", {
        "experimentName": "", "colParams": [], "startIndex": 0, "sliceSize": 1000,
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]})
    assert groups["totalSize"] >= len(GOOD_RUNS)
