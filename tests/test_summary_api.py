"""``remap_tb.summary``: models from the user's own training loop, read back by the plugin.

The logdir holds two models the trainer trained on digits (1 epoch) and runs logged
with the public API: through a ``torch.utils.tensorboard.SummaryWriter`` (an
``nn.Module`` with a skip connection) and through a path (a spec dict), an untrained
one, and one evaluated on a different validation set. They are read back through the
plugin's routes (Python loader) and through real ``tensorboard`` processes with both
loaders; a child of an external model is enqueued and trained by a real worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

import remap_tb.summary as remap
from remap_tb import metadata
from remap_tb.http_util import HttpError
from remap_tb.queue import Queue
from remap_tb.requests import dataset_config, make_request
from remap_tb.search_routes import enqueue_impl
from tests.browser import REPO, TensorBoardProcess
from tests.test_plugin_http import make_app, models_by_run

DENSE = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10},
         "layers": [{"type": "dense", "units": 12}, {"type": "activation", "fn": "relu"}]}
EXTERNAL_RUNS = ("ext-writer", "ext-path", "ext-untrained")
TRAINER_RUNS = ("t-a", "t-b")


class Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 64, 10)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        return self.fc(torch.flatten(h + torch.relu(self.conv2(h)), 1))


@pytest.fixture(scope="module")
def digits():
    from trainer.datasets import load_dataset

    config = dataset_config({"name": "digits"})
    return config, load_dataset(config)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory, digits):
    from trainer.train import DatasetCache, train

    config, data = digits
    root = tmp_path_factory.mktemp("summary") / "logdir"
    cache = DatasetCache()
    for rid, units in zip(TRAINER_RUNS, (8, 16)):
        spec = {**DENSE, "layers": [{"type": "dense", "units": units}]}
        train(make_request(spec, config, {"epochs": 1, "batch_size": 128}, request_id=rid), str(root), datasets=cache)

    torch.manual_seed(0)
    module = Skip()
    writer = SummaryWriter(str(root / "ext-writer"))
    remap.log_model(writer, module, input_shape=(1, 8, 8), class_names=data.class_names, dataset=config)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.01)
    for epoch in (1, 2):
        module.train()
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(module(data.x_train), data.y_train)
        loss.backward()
        optimizer.step()
        module.eval()
        with torch.no_grad():
            scores = module(data.x_val)  # [n, K] scores: log_epoch takes the argmax
        remap.log_epoch(writer, epoch, 2, predictions=scores, labels=data.y_val, train_loss=loss,
                        train_accuracy=0.5, val_loss=nn.functional.cross_entropy(scores, data.y_val))
    writer.close()

    labels = data.y_val.numpy()
    path = str(root / "ext-path")
    remap.log_model(path, DENSE, dataset="digits", class_names=data.class_names)  # a name: not trainable
    remap.log_epoch(path, 1, 1, predictions=labels.tolist(), labels=labels.tolist(), val_loss=np.float32(0.1))
    remap.close(path)
    remap.log_model(str(root / "ext-untrained"), DENSE, dataset="digits", class_names=data.class_names)
    remap.close(str(root / "ext-untrained"))
    other = str(root / "ext-other-val")  # another validation set: an experiment of its own
    remap.log_model(other, DENSE, dataset="digits", class_names=data.class_names)
    remap.log_epoch(other, 1, 1, predictions=labels[::-1].copy(), labels=labels[::-1].copy())
    remap.close(other)
    return root


@pytest.fixture(scope="module")
def served(logdir):
    client, plugin, _ = make_app(str(logdir))
    yield client
    plugin.close()


def experiments(client):
    return {e["id"]: e for e in client.get("/data/plugin/remap/experiments").json["experiments"]}


# ------------------------------------------------------------------ import and writers


def test_importing_the_api_does_not_import_torch():
    code = "import sys, remap_tb.summary; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]


def test_a_summary_writer_run_has_one_event_file_and_loadable_trained_weights(logdir, digits):
    from trainer.model import build_model

    names = sorted(os.listdir(logdir / "ext-writer"))
    assert len([n for n in names if n.startswith("events.out.tfevents")]) == 1, names
    assert metadata.WEIGHTS_FILE in names
    client = make_app(str(logdir))[0]
    spec = client.get("/data/plugin/remap/model?run=ext-writer").json["spec"]
    assert any(layer["type"] == "add" for layer in spec["layers"])
    model = build_model(spec)
    model.load_state_dict(torch.load(logdir / "ext-writer" / metadata.WEIGHTS_FILE))  # strict
    model.eval()
    with torch.no_grad():
        predicted = model(digits[1].x_val).argmax(1).numpy()
    detail = client.get("/data/plugin/remap/model?run=ext-writer").json
    accuracy = float((predicted == digits[1].y_val.numpy()).mean())
    # The weights saved at the last epoch are the trained ones: they give the logged accuracy.
    assert detail["val_accuracy"] == pytest.approx(accuracy)


# ------------------------------------------------------------------ the plugin reads them


def test_external_runs_join_the_trainer_experiment_and_keep_its_fingerprint_id(served, digits):
    found = experiments(served)
    trainer_id = digits[1].fingerprint["id"]
    assert trainer_id in found, found  # the trainer's id, unchanged
    runs = models_by_run(served, trainer_id)
    assert set(runs) == {*TRAINER_RUNS, *EXTERNAL_RUNS}
    assert found[trainer_id]["fingerprint"] == digits[1].fingerprint  # described by a trainer model
    for run in EXTERNAL_RUNS:
        assert runs[run]["origin"] == "external"
    assert runs["ext-writer"]["status"]["state"] == "done" and runs["ext-writer"]["status"]["epoch"] == 2
    assert runs["ext-path"]["val_accuracy"] == 1.0
    assert runs["ext-untrained"]["status"]["state"] == "untrained"
    assert runs["ext-untrained"]["val_accuracy"] is None


def test_a_different_validation_set_is_an_experiment_of_its_own(served, digits):
    found = experiments(served)
    assert len(found) == 2
    other = next(eid for eid in found if eid != digits[1].fingerprint["id"])
    assert set(models_by_run(served, other)) == {"ext-other-val"}
    assert found[other]["fingerprint"]["source"] == "external"


def test_records_curves_confusion_and_prediction_distances_of_external_runs(served):
    detail = served.get("/data/plugin/remap/model?run=ext-writer").json
    assert [p["step"] for p in detail["curves"]] == [1, 2]
    assert detail["curves"][0]["train_accuracy"] == 0.5 and detail["curves"][1]["val_loss"] is not None
    assert np.asarray(detail["confusion"]).sum() == 359 and len(detail["per_class_accuracy"]) == 10
    compare = served.get("/data/plugin/remap/compare?runs=ext-path,t-a").json
    assert compare["prediction"][0][1] is not None  # same experiment: predictions comparable
    untrained = served.get("/data/plugin/remap/model?run=ext-untrained").json
    assert untrained["curves"] == [] and untrained["confusion"] is None


def test_untrained_models_are_on_the_structural_map_only(logdir, digits):
    from remap_tb import views

    client, plugin, _ = make_app(str(logdir))
    try:
        snap = plugin._reader.snapshot()
        eid = digits[1].fingerprint["id"]
        structural = {i for i, _ in views.projection_items(snap, eid, "structural")}
        posthoc = {i for i, _ in views.projection_items(snap, eid, "posthoc")}
        size = {p["id"] for p in views.size_projection(snap, eid)["points"]}
        assert "ext-untrained" in structural and "ext-untrained" not in posthoc | size
        assert {"ext-writer", "ext-path"} <= posthoc
    finally:
        plugin.close()


def test_export_of_an_external_model(served):
    source = served.get("/data/plugin/remap/export?run=ext-writer&format=pytorch")
    assert source.status_code == 200 and b"class Model(nn.Module)" in source.data
    weights = served.get("/data/plugin/remap/export?run=ext-writer&format=state_dict")
    assert weights.status_code == 200 and len(weights.data) > 1000


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_both_tensorboard_loaders_list_the_logged_runs(logdir, digits, tmp_path, load_fast):
    with TensorBoardProcess(logdir, tmp_path / "tb.log", load_fast=load_fast, workers=0) as server:
        server.wait_ready(timeout=90, models=len(TRAINER_RUNS) + len(EXTERNAL_RUNS) + 1)
        eid = digits[1].fingerprint["id"]
        deadline = time.monotonic() + 30
        while True:
            models = {m["run"]: m for m in server.plugin_json(f"models?experiment={eid}")["models"]}
            if models.get("ext-writer", {}).get("status", {}).get("state") == "done":
                break
            assert time.monotonic() < deadline, models
            time.sleep(0.3)
        assert {r for r, m in models.items() if m["origin"] == "external"} == set(EXTERNAL_RUNS)
        assert models["ext-untrained"]["status"]["state"] == "untrained"
        assert models["ext-writer"]["val_accuracy"] is not None
        assert len(server.plugin_json("experiments")["experiments"]) == 2


# ------------------------------------------------------------------ wrong arguments


def test_wrong_arguments_raise_value_errors_that_say_what_was_expected(tmp_path, digits):
    names = digits[1].class_names
    path = str(tmp_path / "run")
    cases = [
        (lambda: remap.log_model(42, DENSE, dataset="x", class_names=names), "SummaryWriter or a run directory"),
        (lambda: remap.log_model(path, "not a model", dataset="x"), "nn.Module or an architecture spec"),
        (lambda: remap.log_model(path, DENSE, dataset=3), "dataset name (str) or a trainer dataset config"),
        (lambda: remap.log_model(path, DENSE, dataset={"name": "nope"}), "not a trainer dataset config"),
        (lambda: remap.log_model(path, DENSE, dataset="x", class_names=["a", "b"]), "2 names for a model with 10"),
        (lambda: remap.log_model(path, DENSE, input_shape=(3, 8, 8), dataset="x"), "does not match"),
        (lambda: remap.log_model(path, {"schema": 1, "layers": "x"}, dataset="x"), "not a valid architecture spec"),
        (lambda: remap.log_model(path, Skip(), dataset="x"), "input_shape: required"),
        (lambda: remap.log_model(path, DENSE, dataset="x", model_id="../up"), "model_id"),
        (lambda: remap.log_epoch(str(tmp_path / "never"), 1, 1, predictions=[0], labels=[0]), "log_model"),
    ]
    for call, expected in cases:
        with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            call()
    remap.log_model(path, DENSE, dataset="x")
    epoch_cases = [
        (dict(epoch=2, epochs=1, predictions=[0], labels=[0]), "epoch"),
        (dict(epoch=1, epochs=0, predictions=[0], labels=[0]), "epochs"),
        (dict(epoch=1, epochs=1, predictions=[0, 1], labels=[0]), "expected 1 predicted labels"),
        (dict(epoch=1, epochs=1, predictions=[0], labels=[10]), r"0\.\.9"),
        (dict(epoch=1, epochs=1, predictions=[0], labels=[[0]]), "1-D array of integer"),
        (dict(epoch=1, epochs=1, predictions=np.zeros((1, 3)), labels=[0]), "one column per class"),
        (dict(epoch=1, epochs=1, predictions=[0], labels=[0], train_loss="low"), "train_loss: expected a number"),
        (dict(epoch=1, epochs=1, predictions=[0], labels=[0], train_accuracy=3), r"fraction in \[0, 1\]"),
        (dict(epoch=1, epochs=1), "predictions= and labels="),
    ]
    for kwargs, expected in epoch_cases:
        with pytest.raises(ValueError, match=expected):
            remap.log_epoch(path, **kwargs)
    remap.close(path)


def test_a_non_finite_loss_ends_the_run_as_diverged(tmp_path):
    from tests.test_plugin_http import make_app as app

    path = str(tmp_path / "logdir" / "div")
    remap.log_model(path, DENSE, dataset="x")
    remap.log_epoch(path, 1, 5, predictions=[0, 1], labels=[0, 1], train_loss=float("nan"))
    remap.close(path)
    client, plugin, _ = app(str(tmp_path / "logdir"))
    eid = next(iter(experiments(client)))
    status = models_by_run(client, eid)["div"]["status"]
    plugin.close()
    assert status["state"] == "diverged" and "nan" in status["reason"]


# ------------------------------------------------------------------ children of external models


def _reader_lookups(logdir):
    client, plugin, _ = make_app(str(logdir))
    reader = plugin._reader
    return plugin, reader.find_model, reader.list_models


def test_children_of_an_external_model_train_on_its_dataset_with_a_real_worker(logdir, digits, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(logdir, root)
    plugin, find, models = _reader_lookups(root)
    try:
        parent = find("ext-writer")
        child_spec = {**parent["spec"], "layers": parent["spec"]["layers"][:-1] + [parent["spec"]["layers"][-1]]}
        queue = Queue(str(root))
        answer = enqueue_impl({"items": [{"spec": child_spec, "parent": "ext-writer", "origin": "variation",
                                          "changes": ["same"]}], "epochs": 1}, str(root), find, models, queue)
        rid = answer["request_ids"][0]
        # A parent logged with a dataset name (not trainable) takes the trainer experiment's config.
        answer2 = enqueue_impl({"items": [{"spec": DENSE, "parent": "ext-path", "origin": "handcrafted"}],
                                "epochs": 1}, str(root), find, models, queue)
        with pytest.raises(HttpError, match="external marks models"):
            enqueue_impl({"items": [{"spec": DENSE, "origin": "external"}]}, str(root), find, models, queue)
    finally:
        plugin.close()
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "trainer.worker", str(root), "--once", "--threads", "1"],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    client, plugin, _ = make_app(str(root))
    try:
        runs = models_by_run(client, digits[1].fingerprint["id"])
        for child, parent_id in ((rid, "ext-writer"), (answer2["request_ids"][0], "ext-path")):
            assert runs[child]["status"]["state"] == "done", runs[child]
            assert runs[child]["parent"] == parent_id
        detail = client.get(f"/data/plugin/remap/model?run={rid}").json
        assert detail["dataset"]["name"] == "digits" and detail["training"]["epochs"] == 1
    finally:
        plugin.close()


def test_a_child_of_an_external_model_without_trainable_data_is_a_400_that_says_what_to_do(tmp_path):
    root = tmp_path / "logdir"
    remap.log_model(str(root / "alone"), DENSE, dataset="my-data", class_names=[str(i) for i in range(10)])
    remap.close(str(root / "alone"))
    plugin, find, models = _reader_lookups(root)
    try:
        with pytest.raises(HttpError, match="pass a trainable dataset to log_model") as caught:
            enqueue_impl({"items": [{"spec": DENSE, "parent": "alone", "origin": "variation"}]}, str(root),
                         find, models, Queue(str(root)))
        assert caught.value.status == 400
        assert not os.listdir(os.path.join(root, ".remap", "queue", "pending")) if os.path.isdir(
            os.path.join(root, ".remap", "queue", "pending")) else True
    finally:
        plugin.close()


def test_grouping_rule_matches_on_name_classes_shape_and_validation_labels():
    trainer = {"id": "t1", "name": "digits", "classes": ["a", "b"], "input_shape": [1, 8, 8],
               "val_labels_sha256": "abc", "split_seed": 0}
    same = metadata.external_fingerprint("digits", ["a", "b"], [1, 8, 8], "abc", 2)
    other = metadata.external_fingerprint("digits", ["a", "b"], [1, 8, 8], "def", 2)
    other2 = metadata.external_fingerprint("digits", ["a", "b"], [1, 8, 8], "def", 2)
    unlabelled = metadata.external_fingerprint("digits", ["a", "b"], [1, 8, 8])
    renamed = metadata.external_fingerprint("digits", ["a", "c"], [1, 8, 8], "abc", 2)
    ids = metadata.group_experiments([trainer, same, other, other2, unlabelled, renamed])
    assert ids == ["t1", "t1", other["id"], other["id"], "t1", renamed["id"]]
    assert metadata.group_experiments([other, unlabelled]) == [other["id"], other["id"]]


# ------------------------------------------------------------------ the examples run


def test_examples_run_and_their_models_join_the_population(tmp_path, digits):
    own = tmp_path / "own"
    done = subprocess.run([sys.executable, "examples/own_training_loop.py", "--logdir", str(own), "--epochs", "1",
                           "--init-models", "2"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    client, plugin, _ = make_app(str(own))
    try:
        found = experiments(client)
        assert list(found) == [digits[1].fingerprint["id"]]
        runs = models_by_run(client, digits[1].fingerprint["id"])
        external = {r: m for r, m in runs.items() if m["origin"] == "external"}
        assert set(external) == {"own-mlp", "own-cnn", "own-residual"} and len(runs) == 5
        assert all(m["status"]["state"] == "done" for m in runs.values())
        residual = client.get("/data/plugin/remap/model?run=own-residual").json["spec"]
        assert any(layer["type"] == "add" for layer in residual["layers"])
    finally:
        plugin.close()

    imports = tmp_path / "imports"
    done = subprocess.run([sys.executable, "examples/import_torchvision.py", "--logdir", str(imports)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    client, plugin, _ = make_app(str(imports))
    try:
        (eid,) = experiments(client)
        runs = models_by_run(client, eid)
        assert {r: m["status"]["state"] for r, m in runs.items()} == {"resnet18": "untrained", "tinynet": "untrained"}
        assert runs["resnet18"]["params"] == 11_181_642  # torchvision's resnet18(num_classes=10)
    finally:
        plugin.close()


def test_a_variation_of_an_external_model_trains_on_the_users_npz_data(tmp_path):
    """Issue 9's "done when": own script + own npz data -> a child generated from the map trains on that data."""
    from remap_tb.spec.operators import generate

    rng = np.random.default_rng(0)
    labels = {split: rng.integers(0, 3, size=n) for split, n in (("train", 90), ("val", 30))}
    images = {split: (rng.random((len(y), 6, 6)) * 60 + (y * 60)[:, None, None]).astype(np.uint8)
              for split, y in labels.items()}  # each class a brightness band: learnable
    data = tmp_path / "own.npz"
    np.savez(data, x_train=images["train"], y_train=labels["train"], x_val=images["val"], y_val=labels["val"],
             class_names=np.array(["dark", "mid", "bright"]))
    root = tmp_path / "logdir"
    spec = {"schema": 1, "input": {"shape": [1, 6, 6], "num_classes": 3},
            "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "activation", "fn": "relu"}]}
    config = dataset_config({"name": "npz", "data_dir": str(data)})
    run = str(root / "mine")
    remap.log_model(run, spec, class_names=["dark", "mid", "bright"], dataset=config)
    remap.log_epoch(run, 1, 1, predictions=labels["val"], labels=labels["val"])
    remap.close(run)

    plugin, find, models = _reader_lookups(root)
    try:
        parent = find("mine")
        assert parent["provenance"]["origin"] == "external"
        [candidate] = generate([{"id": "mine", "spec": parent["spec"]}], "variation",
                               {"count": 1, "seed": 3})["candidates"]
        answer = enqueue_impl({"items": [{"spec": candidate["spec"], "parent": "mine", "origin": "variation",
                                          "changes": candidate["changes"]}], "epochs": 2},
                              str(root), find, models, Queue(str(root)))
    finally:
        plugin.close()
    done = subprocess.run([sys.executable, "-m", "trainer.worker", str(root), "--once", "--threads", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    client, plugin, _ = make_app(str(root))
    try:
        [experiment] = experiments(client).values()
        child = models_by_run(client, experiment["id"])[answer["request_ids"][0]]
        assert child["status"]["state"] == "done" and child["parent"] == "mine", child
        detail = client.get(f"/data/plugin/remap/model?run={child['run']}").json
        assert detail["dataset"]["name"] == "npz" and detail["dataset"]["data_dir"] == str(data)
        assert len(detail["curves"]) == 2 and child["val_accuracy"] is not None
    finally:
        plugin.close()
