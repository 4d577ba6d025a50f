"""Score a trained run on its dataset's held-out test split and record it in the run.

The search never looks at the test split; this is for the model a user settles on.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from remap_tb import metadata
from remap_tb.atomic import read_json
from remap_tb.requests import parse_request
from trainer.datasets import fingerprint_id, load_dataset
from trainer.model import build_model, pick_device
from trainer.summaries import RunWriter
from trainer.train import evaluate, per_class_accuracy


class EvaluationError(ValueError):
    """The run cannot be evaluated (no weights, no test split, ...)."""


def evaluate_run(run_dir: str, split: str = "test", device: str = "auto") -> dict:
    """Test-split accuracy of the run's trained weights; appends a ``remap/test`` record."""
    if split != "test":
        raise EvaluationError(f"unknown split {split!r}; only 'test' is supported")
    request_path = os.path.join(run_dir, metadata.REQUEST_FILE)
    weights_path = os.path.join(run_dir, metadata.WEIGHTS_FILE)
    if not os.path.isfile(request_path):
        raise EvaluationError(f"{run_dir} is not a remap run (no {metadata.REQUEST_FILE})")
    if not os.path.isfile(weights_path):
        raise EvaluationError(f"{run_dir} has no trained weights ({metadata.WEIGHTS_FILE}); "
                              "it did not finish training")
    request = parse_request(read_json(request_path))
    torch_device = pick_device(device)
    data = load_dataset(request["dataset"], torch_device)
    if data.x_test is None or data.y_test is None or len(data.y_test) == 0:
        raise EvaluationError(f"dataset {request['dataset']['name']} has no held-out test split in this "
                              "configuration (digits has none; quickdraw needs --test-fraction > 0; "
                              "npz needs x_test and y_test; imagefolder needs DIR/test/<class>/)")
    model = build_model(request["spec"]).to(torch_device)
    try:
        model.load_state_dict(torch.load(weights_path, map_location=torch_device, weights_only=True))
    except Exception as exc:  # a truncated/corrupt file (pickle, zip or key errors) or another model's weights
        raise EvaluationError(f"{weights_path} cannot be read as this model's weights "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}); "
                              "train the run again to rewrite them") from None
    loss, accuracy, predicted = evaluate(model, nn.CrossEntropyLoss(), data.x_test, data.y_test)
    per_class, _ = per_class_accuracy(data.y_test.cpu().numpy(), predicted, data.num_classes)
    record = metadata.test_record(accuracy, loss, per_class, int(len(data.y_test)),
                                  fingerprint_id(data.fingerprint))
    with RunWriter(run_dir) as writer:
        writer.record(metadata.TEST_TAG, record, 0)
    return record
