"""The plugin's HTTP routes, served by TensorBoard's own WSGI app over a logdir the trainer wrote.

The app is ``TensorBoardWSGI`` over an ``EventMultiplexer`` and its
``MultiplexerDataProvider`` (the Python loader); ``test_tensorboard_process``
covers the Rust data server. The logdir is ``tests/fixtures_runs.py``'s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
from unittest import mock

import numpy as np
import pytest
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider, event_file_loader
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
from tensorboard.plugins import base_plugin
from werkzeug.test import Client

from remap_tb import assets, http_util, loader, metadata, otmann, reader
from remap_tb.plugin import RemapPlugin
from remap_tb.spec import analyse
from tests.fixtures_runs import BASE, CHILD, GOOD_RUNS

ROOT = "/data/plugin/remap/"
POST_HEADERS = {"Content-Type": "application/json", "X-Requested-With": "remap"}


def make_app(logdir: str, **flag_values):
    multiplexer = pem.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    flags = argparse.Namespace(remap_workers=0, remap_max_params=50_000_000,
                               samples_per_plugin={metadata.PLUGIN_NAME: 0}, **flag_values)
    plugin = RemapPlugin(base_plugin.TBContext(logdir=logdir, data_provider=provider, flags=flags))
    app = application.TensorBoardWSGI([plugin], data_provider=provider)
    return Client(app), plugin, multiplexer


@pytest.fixture(scope="module")
def served(remap_logdir):
    client, plugin, _ = make_app(remap_logdir.path)
    yield client, remap_logdir, plugin
    plugin.close()


@pytest.fixture(scope="module")
def client(served):
    return served[0]


def get(client: Client, route: str, status: int = 200):
    response = client.get(ROOT + route)
    assert response.status_code == status, (route, response.status_code, response.data[:300])
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    return response


def models_by_run(client: Client, experiment: str) -> dict[str, dict]:
    return {m["run"]: m for m in get(client, f"models?experiment={experiment}").json["models"]}


def read_event_values(logdir: str, run: str, tag: str) -> list:
    """(step, TensorProto) of ``tag`` straight from the run's event files (not through the plugin)."""
    out = []
    folder = os.path.join(logdir, run)
    for name in sorted(os.listdir(folder)):
        if name.startswith("events.out.tfevents"):
            for event in event_file_loader.EventFileLoader(os.path.join(folder, name)).Load():
                out.extend((event.step, v.tensor) for v in event.summary.value if v.tag == tag)
    return out


def predictions_on_disk(logdir: str, run: str) -> np.ndarray:
    from tensorboard.util import tensor_util

    (_, proto), = read_event_values(logdir, run, metadata.PREDICTIONS_TAG)
    return tensor_util.make_ndarray(proto)


# -- plugin, tab and static files --------------------------------------------------------


def test_plugins_listing_shows_the_remap_tab_as_an_es_module(client):
    listing = client.get("/data/plugins_listing").json
    entry = listing["remap"]
    assert entry["enabled"] is True
    assert entry["tab_name"] == "REMAP"
    assert entry["loading_mechanism"] == {"type": "IFRAME", "module_path": "/data/plugin/remap/index.js"}


def test_index_js_is_served_as_javascript_with_a_render_function(client):
    response = get(client, "index.js")
    assert response.mimetype == "text/javascript"
    assert b"render" in response.data
    if not assets.has_bundle():
        assert b"export async function render" in response.data
        assert b"npm run build" in response.data


@pytest.mark.parametrize("path", ["index.js/../plugin.py", "..%2Fplugin.py", "plugin.py", "static/index.js",
                                  "%2e%2e/%2e%2e/etc/passwd", "index.html"])
def test_only_allow_listed_static_files_are_served(client, path):
    response = client.get(ROOT + path)
    assert response.status_code == 404
    assert b"import" not in response.data


def test_read_asset_never_resolves_names_outside_the_allow_list():
    assert assets.read_asset("../plugin.py") is None
    assert assets.read_asset("/etc/passwd") is None
    body, content_type = assets.read_asset("index.js")
    assert content_type.startswith("text/javascript") and body


# -- experiments and models ----------------------------------------------------------------


def test_experiments_group_models_by_fingerprint_and_list_unreadable_runs(served):
    client, logdir = served[:2]
    body = get(client, "experiments").json
    [experiment] = body["experiments"]
    assert experiment["id"] == logdir.fingerprint_id
    assert experiment["dataset"] == "digits"
    assert experiment["class_names"] == [str(i) for i in range(10)]
    assert experiment["n_models"] == len(GOOD_RUNS) + 1  # + the half-written run
    assert experiment["input_shape"] == [1, 8, 8] and experiment["num_classes"] == 10
    reasons = {u["run"]: u["reason"] for u in body["unreadable"]}
    assert set(reasons) == {"newer", "corrupt", "partial", "mistyped"}
    assert "params is not a non-negative integer" in reasons["mistyped"]
    assert "newer than this plugin reads" in reasons["newer"]
    assert "no remap/model record" in reasons["partial"]
    assert "corrupt" in reasons["corrupt"]


def test_models_are_compact_summaries_that_match_the_event_log(served):
    client, logdir = served[:2]
    models = models_by_run(client, logdir.fingerprint_id)
    assert set(models) == {*GOOD_RUNS, "half"}
    base, child = models["m-base"], models["m-child"]
    assert base["status"] == {"state": "done", "epoch": 1, "epochs": 1, "reason": None}
    assert base["params"] == analyse(BASE).total_params and child["params"] == analyse(CHILD).total_params
    assert (child["parent"], child["origin"]) == ("m-base", "ablation")
    assert child["changes"] == ["removed layer 1 (activation relu)"]
    [(_, proto)] = [p for p in read_event_values(logdir.path, "m-base", metadata.VAL_ACCURACY_TAG)]
    assert base["val_accuracy"] == pytest.approx(proto.float_val[0])
    assert len(base["per_class_accuracy"]) == 10
    assert [g["type"] for g in base["glyph"]] == ["conv2d", "activation", "maxpool2d", "classifier"]
    assert base["glyph"][1]["fn"] == "relu"
    assert base["glyph"][0]["output_shape"] == [4, 6, 6]
    assert base["glyph"][-1]["params"] == analyse(BASE).classifier_params
    assert models["m-dense"]["glyph"][2]["rate"] == 0.25
    assert base["depth"] == 3 and base["spec_hash"] and base["wall_time"] > 0


def test_a_retried_run_shows_only_its_newest_attempt(served):
    """Regression: the stale attempt-1 file says 'running' with val accuracy 0.01."""
    client, logdir = served[:2]
    retry = models_by_run(client, logdir.fingerprint_id)["m-retry"]
    assert retry["status"]["state"] == "done"
    assert retry["val_accuracy"] != pytest.approx(0.01)
    detail = get(client, "model?run=m-retry").json
    assert [point["step"] for point in detail["curves"]] == [1]
    assert detail["curves"][0]["val_accuracy"] == pytest.approx(retry["val_accuracy"])


def test_a_half_written_run_is_listed_as_running_without_results(served):
    client, logdir = served[:2]
    half = models_by_run(client, logdir.fingerprint_id)["half"]
    assert half["status"]["state"] == "running" and half["status"]["epoch"] == 0
    assert half["val_accuracy"] is None and half["per_class_accuracy"] is None


def test_a_long_silent_running_run_gets_a_reason(served):
    client, logdir = served[:2]
    with mock.patch("remap_tb.views._clock", return_value=2e10):
        half = models_by_run(client, logdir.fingerprint_id)["half"]
    assert "no new record" in half["status"]["reason"]


@pytest.mark.parametrize("route,status", [("models", 400), ("models?experiment=nope", 404),
                                          ("models?experiment=" + "x" * 3000, 400)])
def test_models_needs_a_known_experiment(client, route, status):
    assert "error" in get(client, route, status).json


# -- one model ------------------------------------------------------------------------------


def test_model_detail_has_curves_confusion_and_the_provenance_chain(served):
    client, logdir = served[:2]
    detail = get(client, "model?run=m-child").json
    assert [c["id"] for c in detail["provenance_chain"]] == ["m-child", "m-base"]
    assert detail["provenance_chain"][1]["origin"] == "initial"
    confusion = np.array(detail["confusion"])
    experiment = get(client, "experiments").json["experiments"][0]
    assert confusion.shape == (10, 10) and confusion.sum() == experiment["fingerprint"]["n_val"]
    predictions = predictions_on_disk(logdir.path, "m-child")
    assert np.array_equal(confusion.sum(axis=0), np.bincount(predictions, minlength=10))
    assert [layer["output_shape"] for layer in detail["layers"]] == [[4, 6, 6], [4, 3, 3]]
    assert detail["classifier_params"] == analyse(CHILD).classifier_params
    assert detail["spec"]["layers"][0]["type"] == "conv2d"
    assert detail["training"]["epochs"] == 1 and detail["dataset"]["name"] == "digits"
    assert set(detail["curves"][0]) == {"step", "train_loss", "train_accuracy", "val_loss", "val_accuracy"}


@pytest.mark.parametrize("run", ["../m-base", "/etc/passwd", "m-base/../../x", "a\\b", "C:x"])
def test_path_like_run_names_are_rejected(client, run):
    assert "path" in get(client, f"model?run={run}", 400).json["error"]


def test_unknown_and_unreadable_runs_are_404_with_a_reason(client):
    assert "unknown run" in get(client, "model?run=nope", 404).json["error"]
    assert "newer than this plugin reads" in get(client, "model?run=newer", 404).json["error"]


def test_post_to_a_get_route_is_405(client):
    response = client.post(ROOT + "models?experiment=x", headers=POST_HEADERS, data="{}")
    assert response.status_code == 405


# -- compare --------------------------------------------------------------------------------


def test_compare_gives_pairwise_structural_and_prediction_distances(served):
    client, logdir = served[:2]
    body = get(client, "compare?runs=m-base,m-child,m-dense").json
    assert [m["run"] for m in body["models"]] == ["m-base", "m-child", "m-dense"]
    d = np.array(body["structural"])
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    assert d[0, 1] == pytest.approx(otmann.distance(BASE, CHILD))
    assert body["structural_normalised"][0][1] == pytest.approx(otmann.distance(BASE, CHILD, normalised=True))
    a, b = predictions_on_disk(logdir.path, "m-base"), predictions_on_disk(logdir.path, "m-child")
    assert body["prediction"][0][1] == pytest.approx(float(np.mean(a != b)))
    assert body["prediction"][1][0] == body["prediction"][0][1] and body["prediction"][2][2] == 0


def test_compare_gives_null_prediction_distance_without_predictions(client):
    body = get(client, "compare?runs=m-base,half").json
    assert body["prediction"][0][1] is None and body["prediction"][1][1] is None
    assert body["structural"][0][1] == 0  # same spec


@pytest.mark.parametrize("runs,status", [("m-base", 400), (",".join(["m-base"] * 2), 400),
                                         (",".join(f"r{i}" for i in range(9)), 400),
                                         ("m-base,nope", 404), ("m-base,../x", 400)])
def test_compare_checks_its_run_list(client, runs, status):
    get(client, f"compare?runs={runs}", status)


# -- projections ----------------------------------------------------------------------------


def test_size_projection_is_log_params_against_val_accuracy(served):
    client, logdir = served[:2]
    body = get(client, f"projection?experiment={logdir.fingerprint_id}&kind=size").json
    models = models_by_run(client, logdir.fingerprint_id)
    points = {p["id"]: (p["x"], p["y"]) for p in body["points"]}
    assert set(points) == set(GOOD_RUNS)  # the half-written run has no accuracy yet
    for run in GOOD_RUNS:
        assert points[run] == pytest.approx((math.log10(models[run]["params"]), models[run]["val_accuracy"]))
    assert body["computing"] is False and body["stress"] is None and body["axes"]["x"]


@pytest.mark.parametrize("query,status", [("kind=size", 400), ("experiment=nope&kind=size", 404),
                                          ("experiment={e}&kind=tsne", 400),
                                          ("experiment={e}&kind=structural-normalised", 400)])
def test_projection_checks_its_arguments(served, query, status):
    client, logdir = served[:2]
    get(client, "projection?" + query.format(e=logdir.fingerprint_id), status)


def test_mds_projections_lay_out_the_experiment_in_the_background(served, remap_logdir):
    client, logdir = served[:2]
    plugin = served[2]
    every = set(models_by_run(client, logdir.fingerprint_id))
    for kind, expected in (("structural", every), ("structural_normalised", every),
                           ("posthoc", set(GOOD_RUNS))):
        route = f"projection?experiment={logdir.fingerprint_id}&kind={kind}"
        first = get(client, route).json
        assert first["kind"] == kind and first["axes"] == {"x": "", "y": ""}
        assert plugin._projection_service().wait_idle(30)
        body = get(client, route).json
        assert body["error"] is None, body["error"]
        assert body["computing"] is False
        assert {p["id"] for p in body["points"]} == expected, kind
        assert body["version"] >= 1 and all(math.isfinite(p["x"] + p["y"]) for p in body["points"])


# -- export ---------------------------------------------------------------------------------


def test_export_json_is_the_spec_as_a_download(client):
    response = get(client, "export?run=m-base&format=json")
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == 'attachment; filename="m-base.json"'
    assert analyse(json.loads(response.data)).normalised == analyse(BASE).normalised


def test_export_pytorch_is_python_source_that_compiles(client):
    response = get(client, "export?run=m-dense&format=pytorch")
    assert response.mimetype == "text/x-python"
    assert response.headers["Content-Disposition"].endswith('filename="m-dense.py"')
    source = response.data.decode()
    compile(source, "m-dense.py", "exec")
    assert "class Model(nn.Module)" in source and "nn.BatchNorm1d(16)" in source


def test_export_state_dict_streams_the_runs_weights_file(served):
    client, logdir = served[:2]
    response = get(client, "export?run=m-base&format=state_dict")
    assert response.mimetype == "application/octet-stream"
    with open(os.path.join(logdir.path, "m-base", metadata.WEIGHTS_FILE), "rb") as handle:
        assert response.data == handle.read()
    assert "no trained weights" in get(client, "export?run=half&format=state_dict", 404).json["error"]


@pytest.mark.parametrize("query,status", [("run=m-base&format=onnx", 400), ("format=json", 400),
                                          ("run=../m-base&format=state_dict", 400),
                                          ("run=nope&format=state_dict", 404)])
def test_export_checks_its_arguments(client, query, status):
    get(client, "export?" + query, status)


def test_weights_outside_the_logdir_are_never_served(tmp_path, remap_logdir):
    """A run directory that is a symlink out of the logdir must not leak files."""
    logdir = tmp_path / "logdir"
    shutil.copytree(os.path.join(remap_logdir.path, "m-base"), logdir / "m-base")
    outside = tmp_path / "outside"
    shutil.copytree(os.path.join(remap_logdir.path, "m-child"), outside)
    os.symlink(outside, logdir / "m-link")
    client, plugin, _ = make_app(str(logdir))
    try:
        assert get(client, "model?run=m-link").json["id"] == "m-child"
        get(client, "export?run=m-link&format=state_dict", 404)
        get(client, "export?run=m-base&format=state_dict", 200)
    finally:
        plugin.close()


# -- validate -------------------------------------------------------------------------------


def post(client: Client, route: str, body, headers=None, status: int = 200):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    response = client.post(ROOT + route, data=data, headers=POST_HEADERS if headers is None else headers)
    assert response.status_code == status, (route, response.status_code, response.data[:300])
    return response


def test_validate_gives_shapes_and_parameter_counts(client):
    body = post(client, "validate", BASE).json
    expected = analyse(BASE)
    assert body["valid"] is True and body["errors"] == []
    assert body["total_params"] == expected.total_params
    assert [layer["output_shape"] for layer in body["layers"]] == [[4, 6, 6], [4, 6, 6], [4, 3, 3]]
    assert body["max_params"] == 50_000_000


def test_validate_lists_errors_by_layer(client):
    spec = {**BASE, "layers": [{"type": "maxpool2d", "pool_size": 9}]}
    body = post(client, "validate", spec).json
    assert body["valid"] is False
    [error] = body["errors"]
    assert error["index"] == 0 and error["type"] == "maxpool2d" and "larger than" in error["message"]


def test_validate_reads_schema_2_graphs_and_reports_every_problem(client):
    residual = {"schema": 2, "input": BASE["input"], "layers": [
        {"type": "conv2d", "filters": 1, "kernel_size": 3, "padding": 1, "bias": False},
        {"type": "add", "inputs": [0, -1]}]}
    body = post(client, "validate", residual).json
    assert body["valid"] is True, body["errors"]
    assert [layer["inputs"] for layer in body["layers"]] == [[-1], [0, -1]]
    assert body["layers"][1]["output_shape"] == body["layers"][0]["output_shape"]
    assert body["merge_count"] == 1 and body["longest_path"] == 2
    broken = {**residual, "layers": [
        {"type": "conv2d", "filters": 4, "kernel_size": 3},
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "inputs": [-1, 0]},
        {"type": "dropout", "rate": 0.5, "inputs": [-1]},
        {"type": "conv2d", "filters": 2, "kernel_size": 3, "inputs": [0]}]}
    errors = post(client, "validate", broken).json["errors"]
    assert [(e["index"], e["type"], e["field"]) for e in errors] == [(1, "conv2d", "inputs"), (2, "dropout", "inputs")]
    assert "only add and concat take several inputs" in errors[0]["message"]
    assert errors[1]["text"].startswith("layer 2 dropout: not used by the output")


def test_validate_applies_the_smaller_of_the_asked_and_the_server_cap(client):
    small = post(client, "validate", {"spec": BASE, "max_params": 100}).json
    assert small["valid"] is False and small["max_params"] == 100
    assert any(e["field"] == "params" for e in small["errors"])
    big = post(client, "validate", {"spec": BASE, "max_params": 10**15}).json
    assert big["valid"] is True and big["max_params"] == 50_000_000
    post(client, "validate", {"spec": BASE, "max_params": -1}, status=400)
    post(client, "validate", {"spec": BASE, "extra": 1}, status=400)


def test_the_server_cap_comes_from_the_flag(remap_logdir):
    client, plugin, _ = make_app(remap_logdir.path)
    plugin._max_params = 300  # as --remap_max_params 300 would set it
    try:
        assert post(client, "validate", BASE).json["valid"] is False
    finally:
        plugin.close()


@pytest.mark.parametrize("headers,status", [
    ({"Content-Type": "application/json"}, 403),
    ({"X-Requested-With": "remap", "Content-Type": "text/plain"}, 415),
])
def test_validate_requires_the_post_headers(client, headers, status):
    post(client, "validate", BASE, headers=headers, status=status)


def test_validate_rejects_big_and_broken_bodies(client):
    post(client, "validate", b"x" * (http_util.MAX_BODY_BYTES + 1), status=413)
    post(client, "validate", b"{not json", status=400)
    assert client.get(ROOT + "validate").status_code == 405


# -- the reader: caching, Rust value shapes, the queue-route callbacks ---------------------


def test_a_warm_request_reads_no_data_and_a_new_run_is_read_alone(tmp_path, remap_logdir):
    logdir = tmp_path / "logdir"
    for run in ("m-base", "m-child"):
        shutil.copytree(os.path.join(remap_logdir.path, run), logdir / run)
    client, plugin, multiplexer = make_app(str(logdir))
    provider = plugin._reader._provider
    now = [0.0]
    plugin._reader._clock = lambda: now[0]
    try:
        with mock.patch.object(provider, "read_tensors", wraps=provider.read_tensors) as read, \
                mock.patch.object(provider, "list_tensors", wraps=provider.list_tensors) as listed:
            first = models_by_run(client, remap_logdir.fingerprint_id)
            assert read.call_count == 1 and listed.call_count == 1
            again = models_by_run(client, remap_logdir.fingerprint_id)  # within the snapshot's max age
            assert listed.call_count == 1 and again == first
            now[0] += reader.MAX_SNAPSHOT_AGE
            again = models_by_run(client, remap_logdir.fingerprint_id)  # listed again, nothing re-read
            assert listed.call_count == 2 and read.call_count == 1 and again == first
            shutil.copytree(os.path.join(remap_logdir.path, "m-dense"), logdir / "m-dense")
            multiplexer.AddRunsFromDirectory(str(logdir))
            multiplexer.Reload()
            now[0] += reader.MAX_SNAPSHOT_AGE
            models = models_by_run(client, remap_logdir.fingerprint_id)
            assert set(models) == {"m-base", "m-child", "m-dense"}
            assert read.call_args.kwargs["run_tag_filter"].runs == frozenset({"m-dense"})
    finally:
        plugin.close()


@pytest.mark.parametrize("value", [np.array(b'{"version":1}', dtype=object), np.array([b'{"version":1}'], dtype=object),
                                   b'{"version":1}', '{"version":1}', np.array('{"version":1}')])
def test_string_tensors_decode_whatever_shape_the_provider_returns(value):
    assert metadata.decode_json(reader._tensor_bytes(value)) == {"version": 1}


def test_garbage_tensors_are_record_errors():
    with pytest.raises(metadata.RecordError):
        reader._tensor_bytes(np.array([b"a", b"b"], dtype=object))
    with pytest.raises(metadata.RecordError):
        reader._tensor_bytes(np.float32(1.0))


def test_find_model_and_list_models_give_copies_of_model_records(remap_logdir):
    client, plugin, _ = make_app(remap_logdir.path)
    try:
        record = plugin._reader.find_model("m-child")
        assert record["provenance"]["parent"] == "m-base" and record["fingerprint"]["id"] == remap_logdir.fingerprint_id
        for key in ("spec", "dataset", "training", "class_names", "id"):
            assert key in record
        record["spec"]["layers"].clear()
        assert plugin._reader.find_model("m-child")["spec"]["layers"]
        assert plugin._reader.find_model("newer") is None and plugin._reader.find_model("nope") is None
        assert {m["id"] for m in plugin._reader.list_models()} == {*GOOD_RUNS, "half"}
    finally:
        plugin.close()


def test_queue_routes_are_mounted_only_when_the_search_module_exists(client):
    present = importlib.util.find_spec("remap_tb.search_routes") is not None
    status = client.get(ROOT + "queue").status_code
    assert status != 404 if present else status == 404


# -- the loader -----------------------------------------------------------------------------


def parse_flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples_per_plugin", default={})
    loader.RemapLoader().define_flags(parser)
    return parser.parse_args(list(argv))


def test_loader_flags_default_and_keep_every_remap_datum():
    flags = parse_flags()
    assert (flags.remap_workers, flags.remap_max_params) == (1, 50_000_000)
    loader.RemapLoader().fix_flags(flags)
    assert flags.samples_per_plugin == {"remap": 0}
    flags = parse_flags("--remap_workers", "0")
    flags.samples_per_plugin = {"remap": 5, "scalars": 9}
    loader.RemapLoader().fix_flags(flags)
    assert flags.samples_per_plugin == {"remap": 5, "scalars": 9} and flags.remap_workers == 0


@pytest.mark.parametrize("argv", [("--remap_workers", "-1"), ("--remap_workers", "1000"),
                                  ("--remap_max_params", "0")])
def test_loader_rejects_bad_flag_values(argv):
    with pytest.raises(base_plugin.FlagsError):
        loader.RemapLoader().fix_flags(parse_flags(*argv))


def test_loader_builds_the_plugin_without_starting_workers_when_told_none(remap_logdir):
    flags = parse_flags("--remap_workers", "0")
    loader.RemapLoader().fix_flags(flags)
    multiplexer = pem.EventMultiplexer()
    provider = data_provider.MultiplexerDataProvider(multiplexer, remap_logdir.path)
    with mock.patch("atexit.register") as register:
        plugin = loader.RemapLoader().load(base_plugin.TBContext(
            logdir=remap_logdir.path, data_provider=provider, flags=flags))
    assert isinstance(plugin, RemapPlugin) and plugin._workers is None
    register.assert_called_once_with(plugin.close)


def test_foreign_runs_are_ignored_and_an_empty_logdir_with_a_queue_is_active(tmp_path, remap_logdir):
    from trainer.summaries import RunWriter

    logdir = tmp_path / "logdir"
    with RunWriter(str(logdir / "someone-elses-run")) as writer:
        writer.scalars({"loss": 0.5}, 1)
    client, plugin, _ = make_app(str(logdir))
    try:
        assert get(client, "experiments").json == {"experiments": [], "unreadable": []}
        assert plugin.is_active() is False
        (logdir / metadata.STATE_DIR).mkdir()
        assert plugin.is_active() is True  # `remap init` made a queue: show the tab before any run
    finally:
        plugin.close()


def test_without_a_frontend_build_index_js_is_a_page_that_lists_the_models(tmp_path):
    with mock.patch.object(assets, "STATIC_DIR", str(tmp_path)):
        body, content_type = assets.read_asset("index.js")
        assert assets.read_asset("index.js.map") is None
    assert content_type.startswith("text/javascript")
    assert body == assets.FALLBACK_INDEX_JS.encode()
    for needed in (b"export async function render", b'"./experiments"', b'"./models?experiment="', b"textContent"):
        assert needed in body
    assert b"innerHTML" not in body  # run names are data, never markup


def test_schema_lists_every_layer_type_with_its_fields_for_the_editor(served):
    client = served[0]
    body = get(client, "schema").json
    from remap_tb.spec.schema import LAYER_FIELDS

    assert body["layer_types"] == list(LAYER_FIELDS)
    conv = {f["name"]: f for f in body["fields"]["conv2d"]}
    assert conv["filters"]["min"] == 1 and conv["filters"]["required"]
    assert conv["padding"]["choices"] == ["valid", "same"] and conv["padding"]["default"] == "valid"
    assert {f["name"]: f for f in body["fields"]["maxpool2d"]}["stride"]["default"] == "pool_size"
    assert body["fields"]["globalavgpool"] == []
    assert body["schema"] == 2 and body["merge_types"] == ["add", "concat"] and body["inputs"] is True
    assert conv["padding"]["kind"] == "padding" and conv["padding"]["min"] == 0
    assert conv["bias"]["kind"] == "bool" and conv["bias"]["default"] is True and conv["bias"]["schema"] == 2
    assert {f["name"]: f for f in body["fields"]["avgpool2d"]}["padding"]["default"] == 0
    assert body["fields"]["add"] == [] and body["fields"]["concat"] == []


def test_a_silent_running_model_is_flagged_unless_a_live_worker_holds_it(tmp_path, remap_logdir, monkeypatch):
    import shutil
    import time

    from remap_tb import views
    from remap_tb.queue import Queue
    from remap_tb.requests import make_request
    from tests.fixtures_runs import BASE

    logdir = tmp_path / "logdir"
    shutil.copytree(remap_logdir.path, logdir)
    client, plugin, _ = make_app(str(logdir))
    try:
        monkeypatch.setattr(views, "_clock", lambda: time.time() + 3600)  # an hour without a record
        half = models_by_run(client, remap_logdir.fingerprint_id)["half"]
        assert "the worker may have stopped" in half["status"]["reason"]

        queue = Queue(str(logdir))  # a live worker is training "half" (a long epoch, not a dead worker)
        queue.enqueue([make_request(BASE, training={"epochs": 1}, request_id="half")])
        claim = queue.claim("w1")
        queue.touch_worker("w1", request=claim.id)
        half = models_by_run(client, remap_logdir.fingerprint_id)["half"]
        assert half["status"]["state"] == "running" and half["status"]["reason"] is None
    finally:
        plugin.close()
