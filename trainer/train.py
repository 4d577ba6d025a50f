"""Turn one training request into one run directory.

``train(request, logdir)`` writes ``<logdir>/<request id>/``: the event file
(standard scalars, an hparams session, ``remap`` records), ``request.json``
and the trained ``weights.pt``. Status records are written as training goes
(running epoch x of y), so TensorBoard shows progress; the final record is
``done``, ``diverged`` (a NaN/inf loss), ``cancelled`` or ``failed``.

The dataset is held on the device as tensors and batches are taken by index
(no DataLoader, no per-item Python work on the hot path). On CPU a given
request and seed give the same weights and records. Evaluation runs in batches
of the training batch size, so it never needs more memory than a training step
(``remap_tb.spec.memory``).

Between two batches (at most every ``STOP_CHECK_SECONDS``) training asks
``should_stop`` (a cancel: the run ends ``cancelled`` within a fraction of a
second, also mid-epoch) and checks ``max_seconds`` (the run ends ``failed``
with the wall-clock limit as its reason). Before every write into the run
directory (``request.json``, event records, ``weights.pt``, the removal of an
earlier attempt's files) it asks ``may_write``; a False raises ``ClaimLost``
and nothing more is written (a worker that lost its claim to another).
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from remap_tb import metadata
from remap_tb.atomic import atomic_write_bytes, atomic_write_json
from remap_tb.requests import epochs_to_train, parse_request
from remap_tb.run_limits import time_limit_reason
from remap_tb.spec import spec_hash
from trainer.datasets import LoadedDataset, load_dataset
from trainer.inherit import ParentRun, initialise, parent_source
from trainer.limits import is_out_of_memory
from trainer.model import build_model, count_parameters, pick_device
from trainer.refit import sample_images
from trainer.summaries import RunWriter, hparams_summary_for, predictions_summary

# on_epoch(epoch, epochs, metrics) -> True asks training to stop (a cancel).
EpochCallback = Callable[[int, int, dict], bool]
# should_stop() -> True asks training to stop (a cancel); called between batches.
StopCheck = Callable[[], bool]
# may_write() -> False: this process may no longer write into the run directory.
WriteCheck = Callable[[], bool]
STOP_CHECK_SECONDS = 0.25  # how often between batches should_stop is asked (a stat of a file, or an RPC)


class TrainingError(RuntimeError):
    """Training could not run (dataset and spec do not fit, run exists, ...)."""


class ClaimLost(RuntimeError):
    """``may_write`` said no: another worker owns the request now; nothing more was written."""


class _Stop(Exception):
    """Raised between batches to end the run early with ``state`` and ``reason``."""

    def __init__(self, state: str, reason: str):
        super().__init__(reason)
        self.state, self.reason = state, reason


class _Guarded:
    """A ``RunWriter`` whose every write first asks ``may_write`` and is flushed at once,
    so nothing written while the claim was held lands in the file after it was lost."""

    def __init__(self, run_dir: str, may_write: WriteCheck | None):
        self._check = may_write
        self.allow()
        self._writer = RunWriter(run_dir)

    def allow(self) -> None:
        if self._check is not None and not self._check():
            raise ClaimLost("this worker no longer owns the request; it stops without writing")

    def add(self, summary, step: int) -> None:
        self.allow()
        self._writer.add(summary, step)
        self._writer.flush()

    def scalars(self, values: dict[str, float], step: int) -> None:
        self.allow()
        self._writer.scalars(values, step)
        self._writer.flush()

    def record(self, tag: str, record: dict, step: int) -> None:
        self.allow()
        self._writer.record(tag, record, step)
        self._writer.flush()

    def flush(self) -> None:
        pass  # every write is flushed at once

    def __enter__(self) -> "_Guarded":
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()  # everything was flushed under the check: closing writes nothing new


@dataclass
class TrainResult:
    request_id: str
    run_dir: str
    state: str
    epoch: int
    epochs: int
    metrics: dict = field(default_factory=dict)
    reason: str | None = None
    seconds: float = 0.0
    init: dict | None = None  # what it inherited from its parent (the model record's ``init``)
    init_reason: str | None = None


class DatasetCache:
    """Loaded datasets kept by their config, so a worker loads each once."""

    def __init__(self, max_items: int = 4):
        self._items: dict[str, LoadedDataset] = {}
        self._max_items = max_items

    def get(self, config: dict, device: torch.device) -> LoadedDataset:
        key = json.dumps([config, str(device)], sort_keys=True)
        if key not in self._items:
            if len(self._items) >= self._max_items:
                self._items.pop(next(iter(self._items)))
            self._items[key] = load_dataset(config, device)
        return self._items[key]


def train(request: dict, logdir: str, *, attempt: int = 1, device: str = "auto",
          progress: bool = False, on_epoch: EpochCallback | None = None,
          datasets: DatasetCache | None = None, should_stop: StopCheck | None = None,
          may_write: WriteCheck | None = None, max_seconds: float | None = None,
          init_from: "str | ParentRun | bool | None" = None, refit: bool = True) -> TrainResult:
    """Train ``request`` and write its run under ``logdir``; see the module docstring.

    The model starts from its parent's trained weights where its layers map
    (``trainer.inherit``; ``training.init``): the run ``init_from`` (a run
    directory, or a ``ParentRun`` already read), else the provenance parent's run
    ``<logdir>/<parent>``. The model record says what was inherited (``init``) or
    why nothing was (``init_reason``); a parent that cannot be used is never an error.
    ``refit`` False: the copy and morph only, no least-squares refit (``trainer.refit``;
    the benchmark's comparison arm).

    Raises ``RequestError``/``SpecError`` (invalid request, nothing written),
    ``DatasetError`` (missing data, nothing written), ``TrainingError`` and
    ``ClaimLost`` (``may_write`` said no; nothing more written). Any other
    exception during training is recorded as state ``failed`` and re-raised.
    """
    request = parse_request(request)
    started = time.perf_counter()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    torch_device = pick_device(device)
    data = (datasets or DatasetCache()).get(request["dataset"], torch_device)
    _check_fits(request, data)

    run_dir = os.path.join(logdir, request["id"])
    _allow(may_write)
    _prepare_run_dir(run_dir, attempt)
    _allow(may_write)
    atomic_write_json(os.path.join(run_dir, metadata.REQUEST_FILE), request)

    training = request["training"]
    torch.manual_seed(training["seed"])
    model = build_model(request["spec"]).to(torch_device)
    params = count_parameters(model)
    init, init_reason = _inherit(model, request, logdir, init_from, data.x_train if refit else None)
    # A child that did start from its parent trains training.epochs_from_parent when set.
    epochs = epochs_to_train(training, init)

    with _Guarded(run_dir, may_write) as writer:
        record = metadata.model_record(
            request, attempt, data.class_names, data.fingerprint, params,
            len(request["spec"]["layers"]), spec_hash(request["spec"]), _normalisation(data))
        writer.record(metadata.MODEL_TAG, {**record, "init": init, "init_reason": init_reason}, 0)
        writer.add(hparams_summary_for(request, params, request["dataset"]["name"], init is not None, epochs), 0)
        writer.record(metadata.STATUS_TAG, metadata.status_record(attempt, metadata.RUNNING, 0, epochs), 0)
        between = _between_batches(should_stop, deadline, max_seconds)
        try:
            result = _fit(request, model, data, writer, attempt, progress, on_epoch, torch_device, between,
                          epochs)
        except ClaimLost:
            raise
        except Exception as e:
            reason = (f"out of memory: {e}" if is_out_of_memory(e) else f"{type(e).__name__}: {e}")[:500]
            writer.record(metadata.STATUS_TAG, metadata.status_record(
                attempt, metadata.FAILED, 0, epochs, reason=reason), epochs)
            raise
        if result.state == metadata.DONE:
            buffer = _state_dict_bytes(model)
            writer.allow()
            atomic_write_bytes(os.path.join(run_dir, metadata.WEIGHTS_FILE), buffer)
        writer.record(metadata.STATUS_TAG, metadata.status_record(
            attempt, result.state, result.epoch, epochs, reason=result.reason, metrics=result.metrics),
            max(result.epoch, 1) if epochs else 0)
    result.run_dir = run_dir
    result.seconds = time.perf_counter() - started
    result.init, result.init_reason = init, init_reason
    return result


def _inherit(model: nn.Module, request: dict, logdir: str, init_from: "str | ParentRun | bool | None",
             x_train: torch.Tensor | None) -> tuple[dict | None, str | None]:
    """Start ``model`` from its parent's weights where the layers map (``trainer.inherit``),
    then refit what does not reproduce the parent on a sample of ``x_train`` (``trainer.refit``).

    Returns the model record's (``init``, ``init_reason``): what was inherited, or
    None and why nothing was (None when the request asked for scratch). A parent
    that cannot be used never fails the run: it trains from scratch.
    """
    source = parent_source(request, logdir, init_from)
    if source is None:
        return None, None
    if not source.usable:
        return None, f"trained from scratch: {source.reason}"
    try:
        seed = request["training"]["seed"]
        return initialise(model, request["spec"], request["provenance"].get("changes"), source,
                          None if x_train is None else sample_images(x_train, seed), seed), None
    except (ValueError, KeyError, TypeError) as e:
        return None, f"trained from scratch: {e}"[:500]


def _allow(may_write: WriteCheck | None) -> None:
    if may_write is not None and not may_write():
        raise ClaimLost("this worker no longer owns the request; it stops without writing")


def _between_batches(should_stop: StopCheck | None, deadline: float | None,
                     max_seconds: float | None) -> Callable[[int, int], None]:
    """The check run between two batches of epoch ``epoch``: raises ``_Stop`` past the
    deadline, or when ``should_stop`` (asked at most every ``STOP_CHECK_SECONDS``) says so."""
    next_ask = [0.0]

    def check(epoch: int, epochs: int) -> None:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise _Stop(metadata.FAILED, time_limit_reason(max_seconds, epoch, epochs))
        if should_stop is not None and now >= next_ask[0]:
            next_ask[0] = now + STOP_CHECK_SECONDS
            if should_stop():
                raise _Stop(metadata.CANCELLED, f"cancelled after epoch {epoch - 1} of {epochs} "
                                                f"(stopped during epoch {epoch})")

    return check


def _fit(request: dict, model: nn.Module, data: LoadedDataset, writer: _Guarded, attempt: int,
         progress: bool, on_epoch: EpochCallback | None, device: torch.device,
         between: Callable[[int, int], None] | None = None, epochs: int | None = None) -> TrainResult:
    training = request["training"]
    epochs = training["epochs"] if epochs is None else epochs
    batch_size = training["batch_size"]
    optimizer = make_optimizer(model, training)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator(device="cpu").manual_seed(training["seed"])
    patience = training["early_stopping"]["patience"]
    min_delta = training["early_stopping"]["min_delta"]
    best_loss, stale = math.inf, 0
    metrics: dict[str, float] = {}
    bar = _progress_bar(epochs, request["id"]) if progress else None
    result = TrainResult(request["id"], "", metadata.DONE, 0, epochs)
    try:
        for epoch in range(1, epochs + 1):
            check = (lambda e=epoch: between(e, epochs)) if between is not None else None
            try:
                train_loss, train_acc = train_epoch(model, optimizer, loss_fn, data.x_train, data.y_train,
                                                    batch_size, generator, between_batches=check)
            except _Stop as stop:
                result.state, result.reason = stop.state, stop.reason
                break
            if not math.isfinite(train_loss):
                result.state, result.reason = metadata.DIVERGED, f"training loss became {train_loss} in epoch {epoch}"
                result.epoch = epoch
                break
            val_loss, val_acc, _ = evaluate(model, loss_fn, data.x_val, data.y_val, batch_size)
            metrics = {"train_loss": train_loss, "train_accuracy": train_acc,
                       "val_loss": val_loss, "val_accuracy": val_acc}
            result.epoch, result.metrics = epoch, metrics
            writer.scalars({metadata.TRAIN_LOSS_TAG: train_loss, metadata.TRAIN_ACCURACY_TAG: train_acc,
                            metadata.VAL_LOSS_TAG: val_loss, metadata.VAL_ACCURACY_TAG: val_acc}, epoch)
            if not math.isfinite(val_loss):
                result.state, result.reason = metadata.DIVERGED, f"validation loss became {val_loss} in epoch {epoch}"
                break
            if epoch < epochs:
                writer.record(metadata.STATUS_TAG, metadata.status_record(
                    attempt, metadata.RUNNING, epoch, epochs, metrics=metrics), epoch)
            writer.flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(val_acc=f"{val_acc:.3f}", loss=f"{train_loss:.3f}")
            if on_epoch is not None and on_epoch(epoch, epochs, metrics):
                result.state, result.reason = metadata.CANCELLED, f"cancelled after epoch {epoch} of {epochs}"
                break
            if patience is not None:
                if val_loss < best_loss - min_delta:
                    best_loss, stale = val_loss, 0
                else:
                    stale += 1
                    if stale >= patience:
                        result.reason = f"early stopping after epoch {epoch} of {epochs}"
                        break
    finally:
        if bar is not None:
            bar.close()
    if result.state == metadata.DONE:
        _write_evaluation(model, loss_fn, data, writer, attempt, result, batch_size)
    return result


def _write_evaluation(model: nn.Module, loss_fn: nn.Module, data: LoadedDataset, writer: _Guarded,
                      attempt: int, result: TrainResult, batch_size: int = 2048) -> None:
    val_loss, val_acc, predicted = evaluate(model, loss_fn, data.x_val, data.y_val, batch_size)
    if not result.metrics:  # 0 epochs: report the untrained model
        result.metrics = {"val_loss": val_loss, "val_accuracy": val_acc}
    labels = data.y_val.cpu().numpy()
    per_class, confusion = per_class_accuracy(labels, predicted, data.num_classes)
    writer.record(metadata.EVALUATION_TAG, metadata.evaluation_record(
        attempt, result.epoch, per_class, confusion, int(labels.size)), max(result.epoch, 1))
    writer.add(predictions_summary(predicted, data.num_classes), attempt)


def make_optimizer(model: nn.Module, training: dict) -> torch.optim.Optimizer:
    lr, decay = training["lr"], training["weight_decay"]
    name = training["optimizer"]
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=decay)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=decay)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=decay)
    return torch.optim.RMSprop(model.parameters(), lr=lr, weight_decay=decay)


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                x: torch.Tensor, y: torch.Tensor, batch_size: int,
                generator: torch.Generator, between_batches: Callable[[], None] | None = None) -> tuple[float, float]:
    """One pass over (x, y) in shuffled batches; returns (mean loss, accuracy).

    A last batch of one sample is skipped: batchnorm cannot train on it.
    ``between_batches`` runs before every batch and may raise to end the epoch.
    """
    model.train()
    n = x.shape[0]
    order = torch.randperm(n, generator=generator).to(x.device)
    total_loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    seen = 0
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        if index.numel() < 2 and seen:
            break
        if between_batches is not None:
            between_batches()
        xb, yb = x.index_select(0, index), y.index_select(0, index)
        optimizer.zero_grad(set_to_none=True)
        logits = model(xb)
        loss = loss_fn(logits, yb)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach() * index.numel()
        correct += (logits.detach().argmax(1) == yb).sum()
        seen += index.numel()
    return float(total_loss) / max(seen, 1), float(correct) / max(seen, 1)


@torch.no_grad()
def evaluate(model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 2048) -> tuple[float, float, np.ndarray]:
    """(mean loss, accuracy, predicted labels) of ``model`` on (x, y)."""
    model.eval()
    losses, predicted = [], []
    for start in range(0, x.shape[0], batch_size):
        logits = model(x[start:start + batch_size])
        losses.append(loss_fn(logits, y[start:start + batch_size]).item() * logits.shape[0])
        predicted.append(logits.argmax(1))
    if not predicted:
        return math.nan, math.nan, np.zeros(0, dtype=np.int64)
    labels_hat = torch.cat(predicted)
    accuracy = float((labels_hat == y).float().mean())
    return sum(losses) / x.shape[0], accuracy, labels_hat.cpu().numpy()


def per_class_accuracy(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> tuple[list[float], list[list[int]]]:
    """Per-class recall ``C[k, k] / sum_j C[k, j]`` and the confusion matrix ``C[true, predicted]``.

    A class with no validation samples gets accuracy 0.0 (records are JSON, which
    has no NaN); its confusion row is all zeros, which tells the two cases apart.
    """
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    totals = confusion.sum(axis=1)
    per_class = np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), 0.0)
    return [float(v) for v in per_class], confusion.tolist()


def _check_fits(request: dict, data: LoadedDataset) -> None:
    spec_input = request["spec"]["input"]
    if tuple(spec_input["shape"]) != tuple(data.input_shape) or spec_input["num_classes"] != data.num_classes:
        raise TrainingError(
            f"the spec's input {spec_input['shape']} with {spec_input['num_classes']} classes does not fit "
            f"dataset {request['dataset']['name']}: {list(data.input_shape)} with {data.num_classes} classes; "
            "set the spec's input to the dataset's")


def _normalisation(data: LoadedDataset) -> dict | None:
    if data.norm_mean is None or data.norm_std is None:
        return None
    return {"mean": list(data.norm_mean), "std": list(data.norm_std)}


def _prepare_run_dir(run_dir: str, attempt: int) -> None:
    """Make the run directory; a retry (attempt > 1) first removes the earlier attempt's files."""
    if os.path.isdir(run_dir) and os.listdir(run_dir):
        if attempt <= 1:
            raise TrainingError(f"run directory {run_dir} already exists; use another request id "
                                "or remove that directory")
        for name in os.listdir(run_dir):
            path = os.path.join(run_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    os.makedirs(run_dir, exist_ok=True)


def _state_dict_bytes(model: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def _progress_bar(epochs: int, name: str):
    from tqdm import tqdm

    return tqdm(total=epochs, desc=name, unit="epoch", leave=False, dynamic_ncols=True)
