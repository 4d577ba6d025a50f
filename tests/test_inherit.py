"""Weight inheritance: which child layers map to which parent layers, and training from the parent.

The mapping tests are torch-free and check against the operators' own truth:
``operators._fit`` is wrapped to note, for every child it makes, the parent
index (``_Slot.origin``) of each of its layers.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from remap_tb import metadata
from remap_tb.requests import RequestError, make_request, parse_request
from remap_tb.spec import operators
from remap_tb.spec.hashing import spec_hash
from remap_tb.spec.inherit import inheritance, layer_mapping, parse_changes
from tests.fixtures_runs import model_record

INPUT = {"shape": [1, 8, 8], "num_classes": 10}
CONV = {"type": "conv2d", "filters": 8, "kernel_size": 3}
RELU = {"type": "activation", "fn": "relu"}
POOL = {"type": "maxpool2d", "pool_size": 2}
DROP = {"type": "dropout", "rate": 0.25}
DENSE = {"type": "dense", "units": 32}
PARENT = {"schema": 1, "input": INPUT, "layers": [CONV, RELU, POOL, DROP, DENSE, RELU]}
CONV_SAME = {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same"}
RESIDUAL = {"schema": 2, "input": INPUT, "layers": [
    CONV_SAME, RELU, CONV_SAME, {"type": "add", "inputs": [0, 2]}, RELU, POOL, DENSE]}


PARENT_ACCURACY: dict[str, float] = {}


def spec(layers: list[dict], schema: int = 1) -> dict:
    return {"schema": schema, "input": INPUT, "layers": layers}


@pytest.fixture
def truth(monkeypatch):
    """spec hash -> the parent index of each layer of every child the operators make."""
    seen: dict[str, list] = {}
    fit = operators._fit

    def noting(parent, slots, limits):
        out = fit(parent, slots, limits)
        seen[spec_hash(out[0])] = [s.origin for s in slots]
        return out

    monkeypatch.setattr(operators, "_fit", noting)
    return seen


# ---------------------------------------------------------------------- mapping (torch-free)


def test_ablation_maps_every_remaining_layer_to_its_parent_layer(truth):
    children = operators.ablations(PARENT)
    assert len(children) == len(PARENT["layers"])
    for child in (c for c in children if c.valid):
        assert layer_mapping(child.spec, PARENT, child.changes) == truth[child.key]
    removed_relu = next(c for c in children if c.changes[0].startswith("removed layer 1 "))
    assert layer_mapping(removed_relu.spec, PARENT, removed_relu.changes) == [0, 2, 3, 4, 5]


def test_variations_of_chains_and_graphs_map_as_the_operators_made_them(truth):
    """Every parameter layer that inherits maps to the parent layer it came from (chains, residual graphs,
    skip connections added and removed, block ablations)."""
    cases = [(PARENT, "variation", {"count": 30, "seed": 1, "max_changes": 3}),
             (RESIDUAL, "variation", {"count": 30, "seed": 2, "change_types": list(operators.CHANGE_TYPES)}),
             (RESIDUAL, "ablation", {"blocks": True}),
             (RESIDUAL, "ablation", {})]
    checked = 0
    for parent, kind, options in cases:
        result = operators.generate([{"id": "p", "spec": parent}], kind, options)
        for c in (c for c in result["candidates"] if c["valid"]):
            true_origins = truth[c["key"]]
            found = inheritance(c["spec"], parent, c["changes"])
            assert all(true_origins[child] == parent_index for child, parent_index in found.pairs), c["changes"]
            checked += 1
    assert checked >= 40


def test_skip_changes_are_read_from_the_log():
    added = spec([CONV_SAME, RELU, CONV_SAME, {"type": "add", "inputs": [0, 2]}, RELU, POOL, DENSE], 2)
    chain = spec([CONV_SAME, RELU, CONV_SAME, RELU, POOL, DENSE])
    assert layer_mapping(added, chain, ["added skip connection from layer 0 to after layer 2 (add)"]) == \
        [0, 1, 2, None, 3, 4, 5]
    assert layer_mapping(chain, added, ["removed skip connection into layer 3 add"]) == [0, 1, 2, 4, 5, 6]
    log = parse_changes(["removed residual block layers 2-3 (conv2d, add)", "replaced layer 5 maxpool2d with x"], 7)
    assert log.removed == {2, 3} and log.replaced == {5}


def test_without_a_log_the_free_alignment_decides():
    """A hand-crafted child (no change log): a conv inserted before the dense keeps everything else."""
    child = spec([CONV, RELU, POOL, CONV | {"padding": "same"}, DROP, DENSE, RELU])
    assert layer_mapping(child, PARENT) == [0, 1, 2, None, 3, 4, 5]
    found = inheritance(child, PARENT)
    # the inserted conv keeps its input's shape (8 channels, "same"), so the dense after it still fits
    assert found.pairs == ((0, 0), (5, 4)) and found.classifier and (found.layers, found.of) == (3, 4)


def test_a_log_that_does_not_fit_falls_back_to_the_free_alignment():
    child = spec([CONV, POOL, DROP, DENSE, RELU])
    assert parse_changes(["my own edit"], 6) is None
    assert parse_changes(["removed layer 9 conv2d"], 6) is None  # not a layer of this parent
    assert layer_mapping(child, PARENT, ["removed layer 4 dense (units 32)"]) == [0, 2, 3, 4, 5]  # not what happened


def test_changed_shapes_start_fresh_and_dropout_or_activation_changes_inherit_everything():
    wider = spec([CONV | {"filters": 16}, RELU, POOL, DROP, DENSE, RELU])
    found = inheritance(wider, PARENT, ["layer 0 conv2d: filters 8 → 16"])
    assert found.pairs == () and found.classifier and found.layers == 1 and found.of == 3  # dense input changed
    rate = spec([CONV, {"type": "activation", "fn": "tanh"}, POOL, {"type": "dropout", "rate": 0.5}, DENSE, RELU])
    found = inheritance(rate, PARENT, ["layer 3 dropout: rate 0.25 → 0.5", "layer 1 activation: fn relu → tanh"])
    assert found.pairs == ((0, 0), (4, 4)) and found.classifier and (found.layers, found.of) == (3, 3)
    assert found.to_json("p") == {"from": "p", "layers": 3, "of": 3, "mapping": [[0, 0], [4, 4]],
                                  "classifier": True}
    fewer_classes = {**PARENT, "input": {"shape": [1, 8, 8], "num_classes": 5}}
    assert not inheritance(fewer_classes, PARENT).classifier


def test_requests_take_init_and_suggested_only_when_given():
    request = make_request(PARENT, training={"init": "scratch"}, provenance={"origin": "variation", "parent": "p",
                                                                             "suggested": True})
    assert request["training"]["init"] == "scratch" and request["provenance"]["suggested"] is True
    plain = make_request(PARENT)
    assert "init" not in plain["training"] and "suggested" not in plain["provenance"]
    with pytest.raises(RequestError, match="training.init must be one of parent, scratch"):
        parse_request({**plain, "training": {"init": "warm"}})
    with pytest.raises(RequestError, match="provenance.suggested"):
        parse_request({**plain, "provenance": {"suggested": "yes"}})


def test_enqueue_items_carry_init_and_suggested(tmp_path):
    from remap_tb.http_util import HttpError
    from remap_tb.queue import Queue
    from remap_tb.search_routes import enqueue_impl

    parent = make_request(PARENT, training={"init": "scratch"}, request_id="base")
    record = {**parent, "fingerprint": {"id": "fp", "input_shape": [1, 8, 8], "classes": [str(i) for i in range(10)]},
              "class_names": [str(i) for i in range(10)]}
    queue = Queue(str(tmp_path))
    find = lambda run: record if run == "base" else None  # noqa: E731
    child = spec([CONV, POOL, DROP, DENSE, RELU])
    item = {"spec": child, "parent": "base", "origin": "ablation", "changes": ["removed layer 1 activation"]}
    ids = enqueue_impl({"items": [item, {**item, "init": "scratch", "suggested": True}]}, str(tmp_path), find,
                       lambda: [record], queue)["request_ids"]
    first, second = (queue.get(i)[1]["request"] for i in ids)
    assert "init" not in first["training"]  # the default: the parent's weights once it has finished
    assert "suggested" not in first["provenance"]
    assert second["training"]["init"] == "scratch" and second["provenance"]["suggested"] is True
    with pytest.raises(HttpError, match="init must be one of"):
        enqueue_impl({"items": [{**item, "init": "warm"}]}, str(tmp_path), find, lambda: [record], queue)


def test_enqueued_children_of_a_parent_train_a_third_of_its_epochs_from_its_weights(tmp_path):
    from remap_tb.http_util import HttpError
    from remap_tb.queue import Queue
    from remap_tb.requests import finetune_epochs
    from remap_tb.search_routes import enqueue_impl

    assert [finetune_epochs(e) for e in (0, 1, 3, 4, 10, 30)] == [0, 1, 1, 2, 4, 10]
    # the parent was itself a fine-tuned child: its own budget is not passed down
    parent = make_request(PARENT, training={"epochs": 10, "epochs_from_parent": 2}, request_id="base")
    record = {**parent, "fingerprint": {"id": "fp", "input_shape": [1, 8, 8], "classes": [str(i) for i in range(10)]},
              "class_names": [str(i) for i in range(10)]}
    queue = Queue(str(tmp_path))
    find = lambda run: record if run == "base" else None  # noqa: E731
    item = {"spec": spec([CONV, POOL, DROP, DENSE, RELU]), "parent": "base", "origin": "ablation",
            "changes": ["removed layer 1 activation"]}

    def training(body):
        ids = enqueue_impl(body, str(tmp_path), find, lambda: [record], queue)["request_ids"]
        return [queue.get(i)[1]["request"]["training"] for i in ids]

    default, scratch = training({"items": [item, {**item, "init": "scratch"}]})
    assert default["epochs"] == 10 and default["epochs_from_parent"] == 4
    assert scratch["epochs"] == 10 and "epochs_from_parent" not in scratch
    (typed,) = training({"items": [item], "epochs": 6})  # a number typed applies to every child
    assert typed["epochs"] == 6 and "epochs_from_parent" not in typed
    (both,) = training({"items": [item], "epochs": 6, "epochs_from_parent": 1})
    assert both["epochs"] == 6 and both["epochs_from_parent"] == 1
    (no_parent,) = training({"items": [{**item, "parent": None, "origin": "handcrafted"}]})
    assert "epochs_from_parent" not in no_parent
    with pytest.raises(HttpError, match="epochs_from_parent must be an integer"):
        enqueue_impl({"items": [item], "epochs_from_parent": -1}, str(tmp_path), find, lambda: [record], queue)
    with pytest.raises(RequestError, match="training.epochs_from_parent must be an integer"):
        make_request(PARENT, training={"epochs_from_parent": "3"})


# ---------------------------------------------------------------------- training (torch)


@pytest.fixture(scope="module")
def parent_logdir(tmp_path_factory):
    """A parent trained 3 epochs on digits (conv, relu, pool, dropout, dense, relu)."""
    from trainer.train import train

    logdir = str(tmp_path_factory.mktemp("inherit"))
    result = train(make_request(PARENT, training={"epochs": 3, "batch_size": 128, "lr": 0.005},
                                request_id="parent"), logdir)
    PARENT_ACCURACY["parent"] = result.metrics["val_accuracy"]
    return logdir


def _child(logdir: str, run: str, child: dict, changes: list[str], epochs: int = 0, refit: bool = True,
           **training):
    from trainer.train import train

    request = make_request(child, training={"epochs": epochs, "batch_size": 128, "seed": 7, **training},
                           provenance={"origin": "variation", "parent": "parent", "changes": changes},
                           request_id=run)
    return train(request, logdir, refit=refit)


def _predictions(logdir: str, run: str) -> np.ndarray:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    folder = os.path.join(logdir, run)
    for name in sorted(os.listdir(folder)):
        for event in EventFileLoader(os.path.join(folder, name)).Load():
            for value in event.summary.value:
                if value.tag == "remap/predictions":
                    return tensor_util.make_ndarray(value.tensor)
    raise LookupError(run)


def _hparams(folder: str) -> dict:
    """The HParams session-start values a run's event files hold (name -> protobuf Value)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    values = {}
    for name in os.listdir(folder):
        for event in EventFileLoader(os.path.join(folder, name)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if data.HasField("session_start_info"):
                        values = dict(data.session_start_info.hparams.items())
    return values


def test_a_dropout_change_starts_at_the_parents_accuracy(parent_logdir):
    """Before any step (0 epochs: the run evaluates the model as initialised) the child predicts as its parent."""
    rate = spec([CONV, RELU, POOL, {"type": "dropout", "rate": 0.5}, DENSE, RELU])
    result = _child(parent_logdir, "rate", rate, ["layer 3 dropout: rate 0.25 → 0.5"])
    parent = model_record(parent_logdir, "parent")
    assert result.state == "done" and result.init == {"from": "parent", "layers": 3, "of": 3,
                                                      "mapping": [[0, 0], [4, 4]], "classifier": True,
                                                      "copied": [0, 4, "classifier"], "morphed": [], "fresh": [],
                                                      "exact": True, "refitted": []}
    assert np.array_equal(_predictions(parent_logdir, "rate"), _predictions(parent_logdir, "parent"))
    assert result.metrics["val_accuracy"] == PARENT_ACCURACY["parent"] > 0.5 and parent["training"]["epochs"] == 3
    record = model_record(parent_logdir, "rate")
    assert record["init"] == result.init and record["init_reason"] is None


def test_a_removed_pool_is_bridged_by_the_refit_before_any_step(parent_logdir):
    """Without the pool the dense layer sees a 4x larger grid: it cannot be copied or morphed, so it and
    the classifier are refitted by least squares to the parent's outputs and the child starts far above
    chance (0 epochs: the run evaluates the model as initialised), where a copy alone stays at chance."""
    child = spec([CONV, RELU, DROP, DENSE, RELU])
    result = _child(parent_logdir, "nopool", child, ["removed layer 2 maxpool2d (pool_size 2)"])
    init = result.init
    assert init["exact"] is False and 3 in init["fresh"]
    assert [r["layer"] for r in init["refitted"]][0] == 3  # the classifier too when it helps
    assert all(after < before for before, after in (r["error"] for r in init["refitted"]))
    assert model_record(parent_logdir, "nopool")["init"]["refitted"] == init["refitted"]
    assert result.metrics["val_accuracy"] > max(0.5, PARENT_ACCURACY["parent"] - 0.25)
    copy_only = _child(parent_logdir, "nopool-copy", child, ["removed layer 2 maxpool2d (pool_size 2)"],
                       refit=False)
    assert "refitted" not in copy_only.init and copy_only.metrics["val_accuracy"] < 0.4


def test_a_refit_that_fails_keeps_the_copied_weights_and_says_why(parent_logdir):
    """Images the model cannot take (the wrong channel count): the refit stops, the run would not."""
    import torch

    from trainer.inherit import initialise, read_parent
    from trainer.model import build_model

    child = spec([CONV, RELU, DROP, DENSE, RELU])
    model = build_model(child)
    init = initialise(model, child, ["removed layer 2 maxpool2d (pool_size 2)"],
                      read_parent(os.path.join(parent_logdir, "parent")), torch.zeros(64, 3, 8, 8))
    assert init["refitted"] == [] and init["refit_error"].startswith("RuntimeError")
    parent_weights = torch.load(os.path.join(parent_logdir, "parent", "weights.pt"), weights_only=True)
    assert torch.equal(model.state_dict()["0.weight"], parent_weights["0.weight"])


def test_scratch_when_asked(parent_logdir):
    rate = spec([CONV, RELU, POOL, {"type": "dropout", "rate": 0.375}, DENSE, RELU])
    result = _child(parent_logdir, "scratch", rate, ["layer 3 dropout: rate 0.25 → 0.375"], init="scratch")
    assert result.init is None and result.init_reason is None
    assert model_record(parent_logdir, "scratch")["init"] is None
    assert result.metrics["val_accuracy"] < 0.5  # untrained


def test_a_trained_child_records_what_it_inherited_and_hparams_say_parent(parent_logdir):
    wider = spec([CONV, RELU, POOL, DROP, {"type": "dense", "units": 64}, RELU])
    result = _child(parent_logdir, "wider", wider, ["layer 4 dense: units 32 → 64"], epochs=1)
    assert result.state == "done"
    init = result.init  # the widened dense layer and the classifier are morphed (Net2Net), exactly
    assert {k: init[k] for k in ("from", "layers", "of", "mapping", "classifier", "copied", "exact")} == {
        "from": "parent", "layers": 3, "of": 3, "mapping": [[0, 0], [4, 4]], "classifier": True,
        "copied": [0], "exact": True}
    assert [m["layer"] for m in init["morphed"]] == [4, "classifier"] and "widened 32->64" in init["morphed"][0]["how"]
    assert _hparams(os.path.join(parent_logdir, "wider"))["init"].string_value == "parent"


def test_a_child_that_starts_from_its_parent_trains_epochs_from_parent_and_from_scratch_all(parent_logdir, tmp_path):
    """training.epochs_from_parent applies only when the weights were inherited: a child whose parent has
    no weights falls back to scratch and to the full budget. Status records, progress callbacks and the
    HParams column count the epochs really trained."""
    from trainer.summaries import read_records

    rate = spec([CONV, RELU, POOL, {"type": "dropout", "rate": 0.3}, DENSE, RELU])
    seen: list[tuple[int, int]] = []
    from trainer.train import train

    request = make_request(rate, training={"epochs": 3, "epochs_from_parent": 1, "batch_size": 128, "seed": 7},
                           provenance={"origin": "variation", "parent": "parent",
                                       "changes": ["layer 3 dropout: rate 0.25 → 0.3"]}, request_id="short")
    result = train(request, parent_logdir, on_epoch=lambda e, n, m: seen.append((e, n)) or False)
    assert result.init["layers"] == 3 and result.state == "done" and result.epoch == 1 and seen == [(1, 1)]
    folder = os.path.join(parent_logdir, "short")
    statuses = [record for _, record in read_records(folder, metadata.STATUS_TAG)]
    assert [(s["state"], s["epoch"], s["epochs"]) for s in statuses] == [("running", 0, 1), ("done", 1, 1)]
    hparams = _hparams(folder)
    assert hparams["epochs"].number_value == 1 and hparams["init"].string_value == "parent"

    logdir = str(tmp_path)  # the same child of a parent without weights: scratch, all 3 epochs
    shutil.copytree(os.path.join(parent_logdir, "parent"), os.path.join(logdir, "parent"))
    os.remove(os.path.join(logdir, "parent", "weights.pt"))
    fallback = train(request, logdir)
    assert fallback.init is None and "has no weights.pt" in fallback.init_reason and fallback.epoch == 3


def test_the_queue_shows_the_epochs_a_worker_really_trains(parent_logdir, tmp_path):
    """A local worker trains a child that starts from its parent: the queue's entry counts 1 epoch of 1."""
    from remap_tb.queue import Queue
    from trainer.worker import Worker, WorkerOptions

    logdir = str(tmp_path)
    shutil.copytree(os.path.join(parent_logdir, "parent"), os.path.join(logdir, "parent"))
    rate = spec([CONV, RELU, POOL, {"type": "dropout", "rate": 0.4}, DENSE, RELU])
    request = make_request(rate, training={"epochs": 3, "epochs_from_parent": 1, "batch_size": 128},
                           provenance={"origin": "variation", "parent": "parent",
                                       "changes": ["layer 3 dropout: rate 0.25 → 0.4"]}, request_id="queued-child")
    queue = Queue(logdir)
    queue.enqueue([request])
    assert queue.get("queued-child")[1]["queue"]["epochs"] == 3  # before training: the request's budget
    assert Worker(logdir, WorkerOptions(once=True, quiet=True)).run() == 0
    state, entry = queue.get("queued-child")
    assert state == "done" and (entry["queue"]["epoch"], entry["queue"]["epochs"]) == (1, 1)


def test_a_missing_parent_weights_file_trains_from_scratch_with_the_reason(parent_logdir, tmp_path):
    logdir = str(tmp_path)
    shutil.copytree(os.path.join(parent_logdir, "parent"), os.path.join(logdir, "parent"))
    os.remove(os.path.join(logdir, "parent", "weights.pt"))
    rate = spec([CONV, RELU, POOL, {"type": "dropout", "rate": 0.5}, DENSE, RELU])
    result = _child(logdir, "orphan", rate, ["layer 3 dropout: rate 0.25 → 0.5"], epochs=1, init="parent")
    assert result.state == "done" and result.init is None
    assert "has no weights.pt" in result.init_reason
    assert model_record(logdir, "orphan")["init_reason"] == result.init_reason
    no_parent = make_request(PARENT, training={"epochs": 0}, request_id="lonely")
    from trainer.train import train

    assert train(no_parent, logdir).init_reason is None  # no parent, no init asked: nothing to say


def test_init_from_on_the_command_line(parent_logdir, tmp_path):
    from trainer.cli import main

    path = tmp_path / "child.json"
    path.write_text(json.dumps(spec([CONV, RELU, POOL, {"type": "dropout", "rate": 0.5}, DENSE, RELU])))
    logdir = str(tmp_path / "logs")
    assert main(["train", str(path), logdir, "--epochs", "0", "--id", "cli-child",
                 "--init-from", os.path.join(parent_logdir, "parent")]) == 0
    record = model_record(logdir, "cli-child")
    assert record["init"]["from"] == "parent" and record["init"]["layers"] == 3
    assert record["provenance"]["parent"] == "parent" and record["training"]["init"] == "parent"
    assert np.array_equal(_predictions(logdir, "cli-child"), _predictions(parent_logdir, "parent"))
    assert main(["train", str(path), logdir, "--init-from", str(tmp_path / "nowhere")]) == 2


def test_the_ray_dispatcher_ships_the_parent_to_a_task_without_the_logdir(parent_logdir, tmp_path):
    """Without a shared file system the dispatcher reads the parent (weights as bytes) for the task."""
    from trainer.inherit import ParentRun
    from trainer.ray_dispatch import RayDispatcher, RayOptions
    from trainer.train import train

    rate = spec([CONV, RELU, POOL, {"type": "dropout", "rate": 0.5}, DENSE, RELU])
    request = make_request(rate, training={"epochs": 0, "batch_size": 128},
                           provenance={"origin": "variation", "parent": "parent", "changes": []}, request_id="far")
    shipped = RayDispatcher(parent_logdir, RayOptions(shared_fs=False))._parent(request)
    assert isinstance(shipped, ParentRun) and shipped.weights is not None and shipped.weights_path is None
    elsewhere = str(tmp_path)  # the task's node: no parent run here
    result = train(request, elsewhere, init_from=shipped)
    assert result.init["layers"] == 3
    assert np.array_equal(_predictions(elsewhere, "far"), _predictions(parent_logdir, "parent"))
    scratch = RayDispatcher(parent_logdir, RayOptions(shared_fs=False))._parent(
        {**request, "training": {**request["training"], "init": "scratch"}})
    assert scratch is None


def test_a_model_logged_with_remap_tb_summary_is_a_parent(tmp_path):
    """An imported model: no request.json; its spec comes from its model record, its weights from weights.pt."""
    import torch
    from torch import nn

    from remap_tb.summary import log_model
    from trainer.inherit import read_parent

    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(72, 10))
    log_model(str(tmp_path / "imported"), module, input_shape=(1, 8, 8), dataset="digits")
    parent = read_parent(str(tmp_path / "imported"))
    assert parent.usable and parent.spec["layers"][0]["type"] == "conv2d"
    child = spec([CONV, {"type": "activation", "fn": "tanh"}, POOL])
    request = make_request(child, training={"epochs": 0}, request_id="kid",
                           provenance={"origin": "handcrafted", "parent": "imported", "changes": []})
    from trainer.train import train

    result = train(request, str(tmp_path))
    assert result.init is not None and result.init["layers"] == 2 and result.init["of"] == 2


# ---------------------------------------------------------------------- function-preserving morphs (torch)


def _morphed(child: dict, parent: dict, changes: list[str] | None = None, seed: int = 0):
    """(parent model, child model initialised from it, report); the parent's BN statistics made non-trivial."""
    import torch

    from remap_tb.spec.inherit import layer_mapping
    from trainer.model import build_model
    from trainer.morph import morph

    torch.manual_seed(seed)
    p_model = build_model(parent)
    with torch.no_grad():
        for name, tensor in p_model.state_dict().items():
            if name.endswith(("running_mean", "bias")):
                tensor.copy_(torch.randn_like(tensor) * 0.3)
            elif name.endswith(("running_var",)) or (name.endswith("weight") and tensor.dim() == 1):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
    c_model = build_model(child)
    own = c_model.state_dict()
    updates, report = morph(child, parent, layer_mapping(child, parent, changes), own, p_model.state_dict())
    with torch.no_grad():
        for key, value in updates.items():
            own[key].copy_(value)
    return p_model.eval(), c_model.eval(), report


def _same_function(parent: dict, child: dict, changes: list[str] | None = None):
    import torch

    p_model, c_model, report = _morphed(child, parent, changes)
    x = torch.randn(16, *INPUT["shape"])
    with torch.no_grad():
        assert torch.allclose(c_model(x), p_model(x), atol=1e-4), report
    assert report["exact"] is True
    return p_model, c_model, report


SAME8 = {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same"}


@pytest.mark.parametrize("child,changes", [
    # inserted conv (same size, 8 -> 8): Dirac kernel
    ([SAME8, RELU, SAME8, POOL, DENSE], ["inserted conv2d (filters 8, kernel_size 3) after layer 1"]),
    # inserted conv with more filters (8 -> 12): Dirac on 8, the next layer ignores the 4 new ones
    ([SAME8, RELU, {**SAME8, "filters": 12}, POOL, DENSE], None),
    # inserted batchnorm and dropout: identity in eval mode
    ([SAME8, {"type": "batchnorm"}, RELU, DROP, POOL, DENSE], None),
    # inserted dense (equal and wider): identity
    ([SAME8, RELU, POOL, DENSE, {"type": "dense", "units": 32}, {"type": "dense", "units": 48}],
     ["inserted dense (units 32) after layer 3", "inserted dense (units 48) after layer 3"]),
])
def test_inserted_layers_preserve_the_function(child, changes):
    _, _, report = _same_function(spec([SAME8, RELU, POOL, DENSE]), spec(child), changes)
    assert "morphed" in report["layers"].values()


def test_widened_layers_copy_the_slice_and_zero_the_next_layers_new_inputs():
    parent = spec([SAME8, RELU, SAME8, POOL, DENSE, RELU])
    child = spec([{**SAME8, "filters": 12}, RELU, SAME8, POOL, {"type": "dense", "units": 40}, RELU])
    p_model, c_model, report = _same_function(parent, child, ["layer 0 conv2d: filters 8 → 12",
                                                               "layer 4 dense: units 32 → 40"])
    p, c = p_model.state_dict(), c_model.state_dict()
    assert (c["0.weight"][:8] == p["0.weight"]).all() and (c["0.bias"][:8] == p["0.bias"]).all()
    assert (c["2.weight"][:, :8] == p["2.weight"]).all() and (c["2.weight"][:, 8:] == 0).all()
    assert (c["4.weight"][:32] == p["4.weight"]).all() and (c["classifier.weight"][:, 32:] == 0).all()
    assert c["0.weight"][8:].abs().sum() > 0  # new filters keep their random init
    assert report["layers"] == {"0": "morphed", "2": "morphed", "4": "morphed", "classifier": "morphed"}


def test_a_narrowed_layer_copies_the_overlap_and_says_it_is_not_exact():
    parent = spec([SAME8, RELU, POOL, DENSE])
    child = spec([{**SAME8, "filters": 5}, RELU, POOL, DENSE])
    p_model, c_model, report = _morphed(child, parent, ["layer 0 conv2d: filters 8 → 5"])
    p, c = p_model.state_dict(), c_model.state_dict()
    assert (c["0.weight"] == p["0.weight"][:5]).all() and report["exact"] is False
    assert (c["3.weight"].reshape(32, 5, 4, 4) == p["3.weight"].reshape(32, 8, 4, 4)[:, :5]).all()


def test_a_larger_kernel_embeds_the_parents_at_the_centre():
    parent = spec([SAME8, RELU, POOL, DENSE])
    child = spec([{**SAME8, "kernel_size": 5}, RELU, POOL, DENSE])
    _, c_model, _ = _same_function(parent, child, ["layer 0 conv2d: kernel_size 3 → 5"])
    w = c_model.state_dict()["0.weight"]
    assert (w[:, :, 0] == 0).all() and (w[:, :, :, 4] == 0).all()


def test_removed_linear_layers_are_folded_into_the_next():
    one = {"type": "conv2d", "filters": 6, "kernel_size": 1}
    parent = spec([one, CONV, RELU, {"type": "batchnorm"}, DENSE])
    child = spec([CONV, RELU])  # removed the 1x1 conv, the batchnorm and the dense layer
    _same_function(parent, child, ["removed layer 0 conv2d (filters 6, kernel_size 1)",
                                   "removed layer 3 batchnorm", "removed layer 4 dense (units 32)"])


def test_an_inserted_activation_cannot_be_preserved_and_says_so():
    parent = spec([SAME8, POOL, DENSE])
    _, _, report = _morphed(spec([SAME8, RELU, POOL, DENSE]), parent, ["inserted activation (fn relu) after layer 0"])
    assert report["exact"] is False and report["layers"]["0"] == "copied"
