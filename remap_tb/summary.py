"""Log models from your own training loop onto the REMAP map (public API).

Two calls put a model you build and train yourself next to the models remap's
trainer sampled::

    from torch.utils.tensorboard import SummaryWriter
    import remap_tb.summary as remap

    writer = SummaryWriter("runs/my-model")          # or a plain path string instead of a writer
    remap.log_model(writer, model, input_shape=(3, 32, 32), class_names=names, dataset="my-cifar")
    for epoch in range(1, epochs + 1):
        ...
        remap.log_epoch(writer, epoch, epochs, predictions=val_pred, labels=val_labels,
                        train_accuracy=tr_acc, train_loss=tr_loss, val_loss=va_loss)

What lands in the run (the records of ``remap_tb.metadata``, the same as the trainer's):

* ``log_model``: the ``remap/model`` record (spec in normal form, parameter count,
  provenance with origin ``external``, class names, dataset and fingerprint), the
  HParams session and a ``remap/status`` record ``untrained``. Given an ``nn.Module``,
  the spec comes from ``remap_tb.torch.convert_module`` and the module's weights are
  saved as ``weights.pt`` in the run directory (renamed to the submodule names of
  ``trainer.model.build_model(spec)``, written atomically), so export and "initialise
  from parent" work.
* ``log_epoch``: the standard scalars ``train/loss``, ``train/accuracy``, ``val/loss``,
  ``val/accuracy`` (step = epoch), ``remap/evaluation`` (per-class accuracy and
  confusion matrix), ``remap/predictions`` (the predicted label of every validation
  sample) and ``remap/status`` (``running`` epoch e of E, ``done`` at e == E,
  ``diverged`` on a non-finite loss). At the last epoch the module given to
  ``log_model`` (or ``model=``) is saved again, so ``weights.pt`` holds the trained weights.

**Experiment (dataset fingerprint).** A run logged here carries the fingerprint
``{"source": "external", "name", "classes", "input_shape", "n_val",
"val_labels_sha256", "id"}``. The SHA-256 of the validation labels needs the labels,
which ``log_model`` usually does not have: the first ``log_epoch`` (or ``log_model(...,
labels=...)``) writes the model record again with the completed fingerprint, at
step = that epoch; readers take the newest model record. The plugin's reader then
puts the run into the trainer experiment with the same name, classes, input shape
and validation labels (``metadata.group_experiments``); without one, runs logged here
with the same fingerprint form an experiment of their own. Two scripts that
evaluate on the same validation set therefore share one prediction map.

**Writers.** With a ``SummaryWriter`` (torch's, or anything with ``get_logdir()`` and a
file writer with ``add_summary``), records go through the writer's own event file:
no second file in the run. With a path (the run directory), this module keeps one
``EventFileWriter`` per run directory for the life of the process (``close(path)``
closes it early) and flushes after every call. Either way ``log_epoch`` needs a
``log_model`` for the same run in the same process: the module keeps what it needs
(the model record, the module) per run directory. Use one run directory per model,
as TensorBoard does; a second process logging into the same directory makes a
second model record of the same attempt.

Arguments may be numpy arrays, torch tensors or lists; a wrong one raises
``ValueError`` that says what was expected. Importing this module does not import
torch; converting a module and saving weights do, when called.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import math
import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from remap_tb import metadata
from remap_tb.atomic import atomic_write_bytes
from remap_tb.spec import SpecError, check, spec_hash
from remap_tb.spec.schema import LAYER_TYPES, Limits

__all__ = ["log_model", "log_epoch", "close",
           "scalar_pb", "json_pb", "predictions_pb", "hparams_pb", "val_labels_sha256"]

_NO_CAPS = Limits(max_params=None, max_depth=None)
_ID_BAD = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_NAME = 100


# ------------------------------------------------------------------ builders (pure)


def scalar_pb(tag: str, value: float) -> summary_pb2.Summary:
    """A standard rank-0 float32 scalar (what the Scalars tab and the Rust loader read)."""
    meta = summary_pb2.SummaryMetadata(data_class=summary_pb2.DATA_CLASS_SCALAR)
    meta.plugin_data.plugin_name = "scalars"
    tensor = tensor_util.make_tensor_proto(np.float32(value), dtype=np.float32)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)])


def _remap_metadata() -> summary_pb2.SummaryMetadata:
    meta = summary_pb2.SummaryMetadata(data_class=summary_pb2.DATA_CLASS_TENSOR)
    meta.plugin_data.plugin_name = metadata.PLUGIN_NAME
    meta.plugin_data.content = str(metadata.RECORD_VERSION).encode()
    return meta


def json_pb(tag: str, record: dict) -> summary_pb2.Summary:
    """A ``remap`` JSON record as a rank-0 string tensor."""
    tensor = tensor_util.make_tensor_proto(np.array(metadata.encode_json(record), dtype=object))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=_remap_metadata(), tensor=tensor)])


def predictions_pb(predicted: np.ndarray, num_classes: int) -> summary_pb2.Summary:
    """The predicted label of every validation sample, as a compact integer tensor."""
    dtype = np.dtype(metadata.prediction_dtype(num_classes))
    tensor = tensor_util.make_tensor_proto(np.asarray(predicted).astype(dtype))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=metadata.PREDICTIONS_TAG, metadata=_remap_metadata(), tensor=tensor)])


def hparams_pb(spec: dict, params: int, origin: str, dataset_name: str, trial_id: str,
               extra: dict[str, object] | None = None) -> summary_pb2.Summary:
    """The HParams session of one model: size, depth, shape of the graph, layer-type counts, origin, dataset.

    ``merges``: the number of merge layers (add, concat); ``longest_path``: the
    layers on the longest input-to-output path (0 and ``depth`` for a chain).
    ``n_<type>`` for every layer type, merge types included (0 when absent).
    ``extra`` (the trainer's epochs, optimizer, lr) is added after ``dataset``.
    """
    from remap_tb.spec.analysis import analyse

    layers = spec["layers"]
    counts = Counter(layer["type"] for layer in layers)
    analysis = analyse(spec, _NO_CAPS)
    hparams: dict[str, object] = {
        "params": int(params),
        "depth": len(layers),
        "merges": analysis.merge_count,
        "longest_path": analysis.longest_path,
        "origin": origin,
        "dataset": dataset_name,
        **(extra or {}),
    }
    for layer_type in LAYER_TYPES:
        hparams[f"n_{layer_type}"] = counts.get(layer_type, 0)
    return hparams_summary.hparams_pb(hparams, trial_id=trial_id, start_time_secs=time.time())


def val_labels_sha256(labels: Any) -> str:
    """The fingerprint's hash of the validation labels, as the trainer computes it.

    SHA-256 of the labels as little-endian int64, first 16 hex digits.
    """
    return hashlib.sha256(np.asarray(labels).astype("<i8").tobytes()).hexdigest()[:16]


def per_class_accuracy(labels: np.ndarray, predicted: np.ndarray,
                       num_classes: int) -> tuple[list[float], list[list[int]]]:
    """Per-class recall ``C[k, k] / sum_j C[k, j]`` and the confusion matrix ``C[true, predicted]``.

    A class without validation samples gets 0.0 (its confusion row is all zeros).
    """
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    totals = confusion.sum(axis=1)
    per_class = np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), 0.0)
    return [float(v) for v in per_class], confusion.tolist()


# ------------------------------------------------------------------ sinks and run state


class _OwnWriter:
    """An ``EventFileWriter`` this module opened for a run directory given as a path."""

    def __init__(self, run_dir: str):
        self.writer = EventFileWriter(run_dir, flush_secs=5)

    def add(self, summary: summary_pb2.Summary, step: int) -> None:
        self.writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _SummaryWriterSink:
    """Writes through a ``SummaryWriter``'s own file writer (no second event file)."""

    def __init__(self, writer: Any):
        self.writer = writer

    def _file_writer(self) -> Any:
        getter = getattr(self.writer, "_get_file_writer", None)
        file_writer = getter() if callable(getter) else getattr(self.writer, "file_writer", None)
        if file_writer is None or not callable(getattr(file_writer, "add_summary", None)):
            raise ValueError("writer_or_path: this SummaryWriter has no open file writer (was it closed?)")
        return file_writer

    def add(self, summary: summary_pb2.Summary, step: int) -> None:
        self._file_writer().add_summary(summary, step, time.time())

    def flush(self) -> None:
        flush = getattr(self.writer, "flush", None)
        if callable(flush):
            flush()

    def close(self) -> None:
        pass  # the caller owns the writer


@dataclass
class _Run:
    """What ``log_epoch`` needs to know about a run that ``log_model`` started."""

    run_dir: str
    record: dict[str, Any]
    num_classes: int
    module: Any = None  # the nn.Module given to log_model, saved again at the last epoch
    input_shape: tuple[int, int, int] | None = None
    own: _OwnWriter | None = None
    epochs_seen: set[int] = field(default_factory=set)


_lock = threading.Lock()
_runs: dict[str, _Run] = {}  # realpath of the run directory -> its state (see the module docstring)


def _close_all() -> None:
    with _lock:
        for run in _runs.values():
            if run.own is not None:
                run.own.close()
                run.own = None


atexit.register(_close_all)


def _resolve(writer_or_path: Any) -> tuple[str, _SummaryWriterSink | None]:
    """(run directory, sink of a SummaryWriter or None for a path)."""
    if isinstance(writer_or_path, (str, os.PathLike)):
        path = os.fspath(writer_or_path)
        if not path:
            raise ValueError("writer_or_path: expected a SummaryWriter or a run directory path, got ''")
        return os.path.abspath(path), None
    get_logdir = getattr(writer_or_path, "get_logdir", None)
    if callable(get_logdir) and (hasattr(writer_or_path, "_get_file_writer") or hasattr(writer_or_path, "file_writer")):
        return os.path.abspath(str(get_logdir())), _SummaryWriterSink(writer_or_path)
    raise ValueError("writer_or_path: expected a torch.utils.tensorboard.SummaryWriter or a run directory "
                     f"path (str or os.PathLike), got {type(writer_or_path).__name__}")


def _key(run_dir: str) -> str:
    return os.path.realpath(run_dir)


# ------------------------------------------------------------------ public API


def log_model(writer_or_path: Any, model_or_spec: Any, input_shape: Sequence[int] | None = None,
              class_names: Sequence[str] | None = None, dataset: str | dict | None = None, *,
              labels: Any = None, model_id: str | None = None, training: dict | None = None,
              normalisation: dict | None = None) -> dict[str, Any]:
    """Put one model on the REMAP map: its model record, HParams session and (a module's) weights.

    Parameters
    ----------
    writer_or_path : SummaryWriter or str or os.PathLike
        The run: a ``torch.utils.tensorboard.SummaryWriter`` (records go into its event
        file) or the run directory (created if missing).
    model_or_spec : torch.nn.Module or dict
        A module (converted with ``remap_tb.torch.convert_module``; its weights are saved as
        ``weights.pt``) or an architecture spec (``remap_tb/http_api.md``).
    input_shape : (C, H, W)
        One input sample's shape; required for a module, optional for a spec (must match).
    class_names : list of str
        The class names, in label order (default ``"0"``, ``"1"``, ... for a spec's class count).
    dataset : str or dict
        A name (``"my-cifar"``), or a trainer dataset config (``{"name": "npz", "data_dir":
        "/abs/f.npz"}``; see ``remap_tb.requests``): with a config, children generated from
        this model train on that data.
    labels : array of int, optional
        The validation labels; completes the fingerprint now instead of at the first ``log_epoch``.
    model_id : str, optional
        The model's id (default: the run directory's name, made safe).
    training : dict, optional
        A trainer training config (``remap_tb.requests.TRAINING_DEFAULTS``) for this model's children.
    normalisation : dict, optional
        ``{"mean": [...], "std": [...]}`` per channel, applied after scaling pixels to [0, 1]
        (the exported source's ``preprocess``).

    Returns the model record written. Raises ``ValueError`` for a wrong argument.
    """
    run_dir, sink = _resolve(writer_or_path)
    dataset_config, dataset_name = _dataset(dataset)
    training_config = _training(training)
    module, spec, state_dict = None, None, None
    if isinstance(model_or_spec, dict):
        spec = _spec(model_or_spec, input_shape, class_names)
    elif _is_module(model_or_spec):
        shape = _shape(input_shape, "input_shape")
        if shape is None:
            raise ValueError("input_shape: required with an nn.Module, e.g. input_shape=(3, 32, 32)")
        names = _class_names(class_names, None)
        module = model_or_spec
        spec, state_dict = _convert(module, shape, len(names) if names is not None else None)
    else:
        raise ValueError("model_or_spec: expected a torch.nn.Module or an architecture spec (dict), "
                         f"got {type(model_or_spec).__name__}")
    analysis = check(spec, _NO_CAPS)
    spec = analysis.normalised
    num_classes = int(spec["input"]["num_classes"])
    names = _class_names(class_names, num_classes)
    shape = tuple(int(v) for v in spec["input"]["shape"])
    rid = _model_id(model_id, run_dir)
    if normalisation is not None:
        normalisation = _normalisation(normalisation, shape[0])

    fingerprint = metadata.external_fingerprint(dataset_name, names, list(shape))
    record = {
        "id": rid,
        "attempt": 1,
        "spec": spec,
        "spec_hash": spec_hash(spec),
        "provenance": {"parent": None, "origin": metadata.EXTERNAL, "changes": []},
        "dataset": dataset_config,
        "fingerprint": fingerprint,
        "class_names": names,
        "params": int(analysis.total_params),
        "depth": len(spec["layers"]),
        "training": training_config,
        "normalisation": normalisation,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if labels is not None:
        label_array = _labels(labels, num_classes, "labels")
        record["fingerprint"] = metadata.external_fingerprint(
            dataset_name, names, list(shape), val_labels_sha256(label_array), int(label_array.size))

    os.makedirs(run_dir, exist_ok=True)
    if state_dict is not None:
        _save_weights(run_dir, state_dict)
    with _lock:
        old = _runs.get(_key(run_dir))
        own = old.own if old is not None else None
        if sink is None and own is None:
            own = _OwnWriter(run_dir)
        if sink is not None and own is not None:  # the run now goes through a SummaryWriter
            own.close()
            own = None
        run = _Run(run_dir, record, num_classes, module, shape, own)
        _runs[_key(run_dir)] = run
        out = sink or own
        out.add(json_pb(metadata.MODEL_TAG, record), 0)
        out.add(hparams_pb(spec, record["params"], metadata.EXTERNAL, dataset_name, rid), 0)
        out.add(json_pb(metadata.STATUS_TAG, metadata.status_record(1, metadata.UNTRAINED, 0, 0)), 0)
        out.flush()
    return dict(record)


def log_epoch(writer_or_path: Any, epoch: int, epochs: int, predictions: Any = None, labels: Any = None, *,
              train_accuracy: Any = None, train_loss: Any = None, val_loss: Any = None,
              model: Any = None) -> dict[str, float]:
    """Record one epoch of a run that ``log_model`` started (in this process).

    Parameters
    ----------
    epoch, epochs : int
        This epoch (1-based; 0 = before training) and the planned number of epochs;
        the status is ``running`` epoch e of E, ``done`` when ``epoch == epochs``.
    predictions : array [n_val] of int, or [n_val, K] scores
        The predicted class of every validation sample (scores: the argmax is taken).
    labels : array [n_val] of int
        The true validation labels, in the same order (the same every epoch).
    train_accuracy, train_loss, val_loss : float, optional
        Shown as curves; a non-finite loss ends the run as ``diverged``.
    model : torch.nn.Module, optional
        Saves its weights as ``weights.pt`` now (by default the module given to
        ``log_model`` is saved at the last epoch).

    Returns the metrics written (``val_accuracy`` and the losses/accuracies given).
    """
    run_dir, sink = _resolve(writer_or_path)
    epoch = _int(epoch, "epoch", 0)
    epochs = _int(epochs, "epochs", 1)
    if epoch > epochs:
        raise ValueError(f"epoch: expected 0 <= epoch <= epochs ({epochs}), got {epoch}")
    with _lock:
        run = _runs.get(_key(run_dir))
    if run is None:
        raise ValueError(f"log_epoch: no model logged for run {run_dir!r} in this process; "
                         "call remap_tb.summary.log_model(writer_or_path, model, ...) first")
    if predictions is None or labels is None:
        raise ValueError("log_epoch: expected predictions= and labels= (the validation set's predicted "
                         "and true classes)")
    k = run.num_classes
    label_array = _labels(labels, k, "labels")
    predicted = _predictions(predictions, k, label_array.size)
    metrics: dict[str, float] = {}
    losses = {}
    for name, value in (("train_accuracy", train_accuracy), ("train_loss", train_loss), ("val_loss", val_loss)):
        if value is not None:
            number = _float(value, name)
            if name == "train_accuracy" and math.isfinite(number) and not 0.0 <= number <= 1.0:
                raise ValueError(f"train_accuracy: expected a fraction in [0, 1], got {number}")
            losses[name] = number
            if math.isfinite(number):
                metrics[name] = number
    val_accuracy = float((predicted == label_array).mean()) if label_array.size else 0.0
    metrics["val_accuracy"] = val_accuracy
    per_class, confusion = per_class_accuracy(label_array, predicted, k)

    state, reason = (metadata.DONE if epoch == epochs else metadata.RUNNING), None
    for name in ("train_loss", "val_loss"):
        if name in losses and not math.isfinite(losses[name]):
            state, reason = metadata.DIVERGED, f"{name.replace('_', ' ')} became {losses[name]} in epoch {epoch}"
            break

    digest = val_labels_sha256(label_array)
    with _lock:
        own = run.own if sink is None else None
        if sink is None and own is None:
            own = run.own = _OwnWriter(run_dir)
        out = sink or own
        fingerprint = run.record["fingerprint"]
        if fingerprint.get("val_labels_sha256") != digest or fingerprint.get("n_val") != int(label_array.size):
            # Complete the fingerprint: the model record again, newest wins (see the module docstring).
            run.record = {**run.record, "fingerprint": metadata.external_fingerprint(
                fingerprint["name"], fingerprint["classes"], fingerprint["input_shape"], digest,
                int(label_array.size))}
            out.add(json_pb(metadata.MODEL_TAG, run.record), epoch)
        step = max(epoch, 1)
        scalars = {metadata.TRAIN_LOSS_TAG: losses.get("train_loss"),
                   metadata.TRAIN_ACCURACY_TAG: losses.get("train_accuracy"),
                   metadata.VAL_LOSS_TAG: losses.get("val_loss"), metadata.VAL_ACCURACY_TAG: val_accuracy}
        for tag, value in scalars.items():
            if value is not None:
                out.add(scalar_pb(tag, value), epoch)
        out.add(json_pb(metadata.EVALUATION_TAG, metadata.evaluation_record(
            1, epoch, per_class, confusion, int(label_array.size))), step)
        out.add(predictions_pb(predicted, k), 1)
        final = state != metadata.RUNNING
        module = model if model is not None else (run.module if final else None)
        if module is not None:
            if not _is_module(module):
                raise ValueError(f"model: expected a torch.nn.Module, got {type(module).__name__}")
            _, state_dict = _convert(module, run.input_shape, k)
            _save_weights(run_dir, state_dict)
        out.add(json_pb(metadata.STATUS_TAG, metadata.status_record(
            1, state, epoch, epochs, reason=reason, metrics=metrics)), epoch)
        out.flush()
        run.epochs_seen.add(epoch)
    return metrics


def close(writer_or_path: Any) -> None:
    """Flush and close the event file this module opened for a run directory (a path);
    forget the run. A ``SummaryWriter`` is left open (it is yours to close)."""
    run_dir, sink = _resolve(writer_or_path)
    with _lock:
        run = _runs.pop(_key(run_dir), None)
    if run is not None and run.own is not None:
        run.own.close()
    if sink is not None:
        sink.flush()


# ------------------------------------------------------------------ argument checks


def _is_module(value: Any) -> bool:
    """An ``nn.Module`` (checked without importing torch unless torch is already imported)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return False
    return isinstance(value, torch.nn.Module)


def _convert(module: Any, input_shape: tuple[int, int, int], num_classes: int | None) -> tuple[dict, dict]:
    from remap_tb.torch import convert_module

    spec, state_dict = convert_module(module, tuple(input_shape), num_classes=num_classes)
    return spec, state_dict


def _save_weights(run_dir: str, state_dict: dict) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, buffer)
    atomic_write_bytes(os.path.join(run_dir, metadata.WEIGHTS_FILE), buffer.getvalue())


def _spec(spec: dict, input_shape: Any, class_names: Any) -> dict:
    try:
        analysis = check(spec, _NO_CAPS)
    except SpecError as e:
        raise ValueError(f"model_or_spec: not a valid architecture spec: {e}") from None
    normalised = analysis.normalised
    shape = _shape(input_shape, "input_shape")
    if shape is not None and list(shape) != list(normalised["input"]["shape"]):
        raise ValueError(f"input_shape: {list(shape)} does not match the spec's input shape "
                         f"{normalised['input']['shape']}")
    return normalised


def _shape(value: Any, name: str) -> tuple[int, int, int] | None:
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in _to_list(value))
        ok = len(shape) == 3 and all(v >= 1 for v in shape) and all(float(v) == int(v) for v in _to_list(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected (channels, height, width), three positive integers, got {value!r:.60}")
    return shape  # type: ignore[return-value]


def _class_names(value: Any, num_classes: int | None) -> list[str] | None:
    if value is None:
        return None if num_classes is None else [str(i) for i in range(num_classes)]
    names = _to_list(value) if not isinstance(value, str) else None
    if (names is None or len(names) < 2 or not all(isinstance(n, str) and 0 < len(n) <= MAX_NAME for n in names)
            or len(set(names)) != len(names)):
        raise ValueError(f"class_names: expected a list of 2 or more distinct, non-empty strings, got {value!r:.80}")
    if num_classes is not None and len(names) != num_classes:
        raise ValueError(f"class_names: {len(names)} names for a model with {num_classes} classes")
    return list(names)


def _dataset(value: Any) -> tuple[dict, str]:
    """(the record's dataset dict, the dataset name)."""
    if isinstance(value, str):
        if not 0 < len(value) <= MAX_NAME:
            raise ValueError(f"dataset: expected a name of 1 to {MAX_NAME} characters, got {value!r:.60}")
        return {"name": value}, value
    if isinstance(value, dict):
        from remap_tb.requests import RequestError, dataset_config

        try:
            config = dataset_config(value)
        except RequestError as e:
            raise ValueError("dataset: not a trainer dataset config (pass a name string instead, or fix: "
                             + "; ".join(e.problems) + ")") from None
        return config, config["name"]
    raise ValueError("dataset: expected a dataset name (str) or a trainer dataset config (dict, e.g. "
                     f"{{'name': 'npz', 'data_dir': '/abs/path/data.npz'}}), got {type(value).__name__}")


def _training(value: Any) -> dict:
    if value is None:
        return {}
    from remap_tb.requests import RequestError, training_config

    if not isinstance(value, dict):
        raise ValueError(f"training: expected a trainer training config (dict), got {type(value).__name__}")
    try:
        return training_config(value)
    except RequestError as e:
        raise ValueError("training: " + "; ".join(e.problems)) from None


def _normalisation(value: Any, channels: int) -> dict:
    try:
        mean = [float(v) for v in _to_list(value["mean"])]
        std = [float(v) for v in _to_list(value["std"])]
        ok = (len(mean) == len(std) == channels and all(math.isfinite(v) for v in mean + std)
              and all(v > 0 for v in std))
    except (TypeError, KeyError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f'normalisation: expected {{"mean": [...], "std": [...]}} with {channels} finite '
                         "values each (std > 0)")
    return {"mean": mean, "std": std}


def _model_id(value: Any, run_dir: str) -> str:
    from remap_tb.requests import is_valid_id

    if value is not None:
        if not is_valid_id(value):
            raise ValueError("model_id: expected 1-80 characters of letters, digits, '_', '-', '.', starting "
                             f"with a letter or digit, got {value!r:.60}")
        return value
    name = _ID_BAD.sub("-", os.path.basename(os.path.normpath(run_dir))).strip("-.")[:80] or "model"
    if not name[0].isalnum():
        name = "m" + name[:79]
    return name.replace("..", "-")


def _to_list(value: Any) -> list:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return list(value)


def _array(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a numpy array, torch tensor or list, got {type(value).__name__}") from None


def _labels(value: Any, num_classes: int, name: str) -> np.ndarray:
    array = _array(value, name)
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iub" and not _integral(array):
        raise ValueError(f"{name}: expected a 1-D array of integer class indices, got shape {array.shape} "
                         f"of {array.dtype}")
    array = array.astype(np.int64)
    if array.min() < 0 or array.max() >= num_classes:
        raise ValueError(f"{name}: class indices must be in 0..{num_classes - 1}, got {int(array.min())}.."
                         f"{int(array.max())}")
    return array


def _integral(array: np.ndarray) -> bool:
    return array.dtype.kind == "f" and bool(np.all(np.isfinite(array))) and bool(np.all(array == np.round(array)))


def _predictions(value: Any, num_classes: int, n: int) -> np.ndarray:
    array = _array(value, "predictions")
    if array.ndim == 2:
        if array.shape[1] != num_classes:
            raise ValueError(f"predictions: scores must have one column per class ({num_classes}), "
                             f"got shape {array.shape}")
        array = array.argmax(axis=1)
    labels = _labels(array, num_classes, "predictions") if array.size else array
    if labels.shape != (n,):
        raise ValueError(f"predictions: expected {n} predicted labels (one per validation label), "
                         f"got shape {array.shape}")
    return labels


def _int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r:.40}")
    return int(value)


def _float(value: Any, name: str) -> float:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if value.numel() != 1:
            raise ValueError(f"{name}: expected a number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a number, got {type(value).__name__}")
    return float(value)
