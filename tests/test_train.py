"""Training turns one request into one run TensorBoard can read."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from tensorboard import context
from tensorboard.backend.event_processing import data_provider as provider_lib
from tensorboard.backend.event_processing import plugin_event_multiplexer as multiplexer_lib

from remap_tb import metadata
from remap_tb.requests import RequestError, make_request
from remap_tb.spec import SpecError
from trainer.model import build_model
from trainer.train import TrainingError, train

SPEC = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
    {"type": "conv2d", "filters": 8, "kernel_size": 3},
    {"type": "activation", "fn": "relu"},
    {"type": "maxpool2d", "pool_size": 2},
    {"type": "dense", "units": 32},
    {"type": "dropout", "rate": 0.25},
]}


def request(request_id="m1", epochs=2, **training):
    return make_request(SPEC, training={"epochs": epochs, **training},
                        provenance={"origin": "initial", "parent": None, "changes": []}, request_id=request_id)


def read_logdir(logdir):
    """Everything the data provider (the Python multiplexer) sees, per run."""
    multiplexer = multiplexer_lib.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = provider_lib.MultiplexerDataProvider(multiplexer, logdir)
    ctx = context.RequestContext()
    runs = {}
    scalars = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=1000)
    tensors = provider.read_tensors(ctx, experiment_id="", plugin_name=metadata.PLUGIN_NAME, downsample=1000)
    for run, tags in scalars.items():
        runs.setdefault(run, {})["scalars"] = {tag: [(d.step, d.value) for d in data] for tag, data in tags.items()}
    for run, tags in tensors.items():
        records = {}
        for tag, data in tags.items():
            if tag == metadata.PREDICTIONS_TAG:
                records[tag] = [(d.step, d.numpy) for d in data]
            else:
                records[tag] = [(d.step, metadata.decode_json(d.numpy.item())) for d in data]
        runs.setdefault(run, {})["remap"] = records
    hparams = provider.list_tensors(ctx, experiment_id="", plugin_name="hparams")
    for run, tags in hparams.items():
        runs.setdefault(run, {})["hparams"] = sorted(tags)
    return runs


def test_a_run_has_scalars_hparams_and_remap_records(tmp_path):
    result = train(request(epochs=3), str(tmp_path))
    assert result.state == metadata.DONE and result.epoch == 3
    run = read_logdir(str(tmp_path))["m1"]
    for tag in metadata.SCALAR_TAGS:
        assert [step for step, _ in run["scalars"][tag]] == [1, 2, 3]
    assert run["hparams"] == ["_hparams_/session_start_info"]
    model = run["remap"][metadata.MODEL_TAG][0][1]
    assert model["id"] == "m1" and model["attempt"] == 1
    assert model["params"] == sum(p.numel() for p in build_model(SPEC).parameters())
    assert model["class_names"] == [str(i) for i in range(10)]
    assert model["fingerprint"]["name"] == "digits" and len(model["fingerprint"]["id"]) == 16
    states = [(step, r["state"], r["epoch"]) for step, r in run["remap"][metadata.STATUS_TAG]]
    assert states == [(0, "running", 0), (1, "running", 1), (2, "running", 2), (3, "done", 3)]
    final = run["remap"][metadata.STATUS_TAG][-1][1]
    assert final["metrics"]["val_accuracy"] == pytest.approx(run["scalars"]["val/accuracy"][-1][1], abs=1e-6)
    evaluation = run["remap"][metadata.EVALUATION_TAG][0][1]
    confusion = np.array(evaluation["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == evaluation["n_samples"]
    assert np.allclose(evaluation["per_class_accuracy"], np.diag(confusion) / confusion.sum(1))
    [(step, predictions)] = run["remap"][metadata.PREDICTIONS_TAG]
    assert step == 1 and predictions.dtype == np.uint8 and predictions.shape == (evaluation["n_samples"],)
    accuracy_from_confusion = np.trace(confusion) / confusion.sum()
    assert accuracy_from_confusion == pytest.approx(final["metrics"]["val_accuracy"], abs=1e-6)
    assert os.path.isfile(tmp_path / "m1" / metadata.WEIGHTS_FILE)
    assert json.loads((tmp_path / "m1" / metadata.REQUEST_FILE).read_text())["id"] == "m1"


def test_weights_load_into_the_built_model(tmp_path):
    train(request(epochs=1), str(tmp_path))
    model = build_model(SPEC)
    model.load_state_dict(torch.load(tmp_path / "m1" / metadata.WEIGHTS_FILE, weights_only=True))


def test_training_is_deterministic_on_cpu(tmp_path):
    a = train(request(epochs=2), str(tmp_path / "a"), device="cpu")
    b = train(request(epochs=2), str(tmp_path / "b"), device="cpu")
    assert a.metrics == b.metrics
    wa = torch.load(tmp_path / "a" / "m1" / metadata.WEIGHTS_FILE, weights_only=True)
    wb = torch.load(tmp_path / "b" / "m1" / metadata.WEIGHTS_FILE, weights_only=True)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = train(request(epochs=2, seed=1), str(tmp_path / "c"), device="cpu")
    assert c.metrics != a.metrics


def test_a_diverging_model_ends_as_diverged_not_a_crash(tmp_path):
    deep = {**SPEC, "layers": [{"type": "dense", "units": 256}] * 3}
    r = make_request(deep, dataset={"normalise": False}, training={"epochs": 3, "optimizer": "sgd", "lr": 10.0},
                     request_id="boom")
    result = train(r, str(tmp_path))
    assert result.state == metadata.DIVERGED
    assert "nan" in result.reason or "inf" in result.reason
    status = read_logdir(str(tmp_path))["boom"]["remap"][metadata.STATUS_TAG]
    assert status[-1][1]["state"] == "diverged"
    assert not os.path.exists(tmp_path / "boom" / metadata.WEIGHTS_FILE)


def test_invalid_spec_is_rejected_before_anything_is_written(tmp_path):
    bad = {**request(), "spec": {**SPEC, "layers": [{"type": "maxpool2d", "pool_size": 9}]}}
    with pytest.raises(RequestError) as e:
        train(bad, str(tmp_path))
    assert "layer 0 maxpool2d: pool_size 9 is larger than its 8x8 input" in str(e.value)
    assert os.listdir(tmp_path) == []
    with pytest.raises(SpecError):
        build_model(bad["spec"])


def test_a_spec_for_another_input_is_rejected_before_anything_is_written(tmp_path):
    other = make_request({**SPEC, "input": {"shape": [1, 28, 28], "num_classes": 10}}, request_id="x")
    with pytest.raises(TrainingError, match="does not fit dataset digits"):
        train(other, str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_cancel_stops_after_the_epoch_and_writes_no_weights(tmp_path):
    result = train(request(epochs=5), str(tmp_path), on_epoch=lambda epoch, epochs, m: epoch == 2)
    assert result.state == metadata.CANCELLED and result.epoch == 2
    status = read_logdir(str(tmp_path))["m1"]["remap"][metadata.STATUS_TAG]
    assert status[-1][1]["state"] == "cancelled"
    assert not os.path.exists(tmp_path / "m1" / metadata.WEIGHTS_FILE)


def test_existing_run_is_not_overwritten_but_a_retry_replaces_it(tmp_path):
    train(request(epochs=1), str(tmp_path))
    with pytest.raises(TrainingError, match="already exists"):
        train(request(epochs=1), str(tmp_path))
    result = train(request(epochs=2), str(tmp_path), attempt=2)
    assert result.state == metadata.DONE
    events = [n for n in os.listdir(tmp_path / "m1") if "tfevents" in n]
    assert len(events) == 1  # the earlier attempt's event file is gone
    run = read_logdir(str(tmp_path))["m1"]
    assert {r["attempt"] for _, r in run["remap"][metadata.STATUS_TAG]} == {2}


def test_early_stopping_stops_when_validation_loss_stalls(tmp_path):
    result = train(request(epochs=60, lr=0.05, early_stopping={"patience": 2, "min_delta": 0.0}), str(tmp_path))
    assert result.state == metadata.DONE
    assert result.epoch < 60 and "early stopping" in result.reason


def test_zero_epochs_scores_the_untrained_model(tmp_path):
    result = train(request(epochs=0), str(tmp_path))
    assert result.state == metadata.DONE and result.epoch == 0
    assert 0.0 <= result.metrics["val_accuracy"] <= 1.0
