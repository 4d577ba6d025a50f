"""Training requests: the unit of work the queue carries and a worker trains.

A request is JSON (version 1)::

    {"version": 1,
     "id": "variation-3f9a1c2b",            # also the run's directory name
     "spec": {...architecture spec...},
     "dataset": {"name": "digits", "data_dir": null, "classes": null, "limit": null,
                 "val_fraction": 0.2, "split_seed": 0, "normalise": true, "test_fraction": 0.0,
                 "image_size": null, "channels": null},   # the last two: imagefolder and npz only
     "training": {"epochs": 10, "batch_size": 64, "optimizer": "adam", "lr": 0.001,
                  "weight_decay": 0.0, "seed": 0,
                  "early_stopping": {"patience": null, "min_delta": 0.0},
                  "init": "parent",                  # optional: "parent" | "scratch"
                  "epochs_from_parent": 4},          # optional: epochs when it starts from its parent
     "provenance": {"parent": null, "origin": "initial", "changes": [],
                    "suggested": true},             # optional
     "created": "2026-11-28T00:00:00Z"}

``parse_request`` checks everything (the spec included) and returns the
normalised request; it raises ``RequestError`` listing every problem. Torch-free.
"""

from __future__ import annotations

import copy
import math
import os
import re
import time
import uuid
from typing import Any

from remap_tb.spec import Limits, analyse
from remap_tb.spec.schema import DEFAULT_LIMITS

REQUEST_VERSION = 1
ORIGINS = ("initial", "ablation", "variation", "handcrafted", "external")
# What the dashboard and scripts may enqueue: "external" marks models logged by remap_tb.summary.
ENQUEUE_ORIGINS = ORIGINS[:4]
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
DATASETS = ("digits", "cifar10", "quickdraw", "mnist", "fashion_mnist", "imagefolder", "npz")
# The user's own data (trainer/datasets.py): they take image_size and channels, and bring their own test split.
OWN_DATASETS = ("imagefolder", "npz")
MAX_IMAGE_SIDE = 4096

# A request id is also a run directory name: keep it to a safe, portable alphabet.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
MAX_EPOCHS = 1000
MAX_CHANGES = 100
MAX_CHANGE_LENGTH = 300

DATASET_DEFAULTS: dict[str, Any] = {
    "name": "digits", "data_dir": None, "classes": None, "limit": None,
    "val_fraction": 0.2, "split_seed": 0, "normalise": True, "test_fraction": 0.0,
    "image_size": None, "channels": None,
}
TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 10, "batch_size": 64, "optimizer": "adam", "lr": 0.001,
    "weight_decay": 0.0, "seed": 0, "early_stopping": {"patience": None, "min_delta": 0.0},
}
PROVENANCE_DEFAULTS: dict[str, Any] = {"parent": None, "origin": "initial", "changes": []}
# Fields kept only when given (no default is written, so older requests and records read the same):
# training.init ("parent": start from the provenance parent's trained weights where layers map,
# "scratch": fresh weights; absent: the parent's when it finished with weights, else scratch),
# training.epochs_from_parent (the epochs to train when the run does start from its parent's
# weights, at least one layer inherited; absent: training.epochs) and provenance.suggested
# (true: the surrogate's Suggest picked it).
INIT_MODES = ("parent", "scratch")
OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {"training": ("init", "epochs_from_parent"),
                                               "provenance": ("suggested",)}
#: a child that starts from its parent's weights trains 1/this of the epochs by default
FINETUNE_DIVISOR = 3


def finetune_epochs(epochs: int) -> int:
    """The default ``training.epochs_from_parent`` for a child whose parent trained ``epochs``:
    a third of them, rounded up (``benchmarks/inheritance.py``: children of the demo's best
    models reach their own 10-epoch from-scratch accuracy after a median of 0 epochs from
    the parent's weights)."""
    return -(-epochs // FINETUNE_DIVISOR)  # ceil(epochs / 3) in integers


def epochs_to_train(training: dict, init: dict | None) -> int:
    """The epochs a run trains: ``epochs_from_parent`` when the request sets it and the run
    started from its parent's weights (``init``, the model record's: at least one layer
    copied, morphed or refitted), else ``epochs``."""
    inherited = bool(init) and (init.get("layers", 0) > 0 or bool(init.get("refitted")))
    if inherited and training.get("epochs_from_parent") is not None:
        return int(training["epochs_from_parent"])
    return int(training["epochs"])


class RequestError(ValueError):
    """A malformed training request; ``problems`` lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid training request:\n" + "\n".join(f"  - {p}" for p in self.problems))


def new_request_id(origin: str = "model") -> str:
    """A fresh id such as ``variation-3f9a1c2b``."""
    return f"{origin}-{uuid.uuid4().hex[:8]}"


def is_valid_id(value: Any) -> bool:
    return isinstance(value, str) and bool(ID_PATTERN.match(value)) and ".." not in value


def make_request(spec: dict, dataset: dict | None = None, training: dict | None = None,
                 provenance: dict | None = None, request_id: str | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> dict:
    """Build and check a request from its parts (missing parts take defaults)."""
    provenance = provenance or {}
    origin = provenance.get("origin", "initial") if isinstance(provenance, dict) else "initial"
    raw = {
        "version": REQUEST_VERSION,
        "id": request_id or new_request_id(origin if origin in ORIGINS else "model"),
        "spec": spec,
        "dataset": dataset or {},
        "training": training or {},
        "provenance": provenance,
    }
    return parse_request(raw, limits)


def parse_request(value: Any, limits: Limits = DEFAULT_LIMITS) -> dict:
    """Check a request and return it normalised (defaults filled in)."""
    if not isinstance(value, dict):
        raise RequestError(["a training request must be a JSON object"])
    problems: list[str] = []
    known = {"version", "id", "spec", "dataset", "training", "provenance", "created"}
    for key in sorted(set(value) - known, key=str):
        problems.append(f"unexpected key {key!r:.40} (a request has {', '.join(sorted(known))})")
    version = value.get("version", REQUEST_VERSION)
    if version != REQUEST_VERSION or isinstance(version, bool):
        problems.append(f"version {version!r:.20} is not supported (this version reads {REQUEST_VERSION})")
    request_id = value.get("id")
    if not is_valid_id(request_id):
        problems.append(f"id must be 1-80 characters of letters, digits, '_', '-', '.', starting with a letter "
                        f"or digit and without '..', got {request_id!r:.60}")
    spec = value.get("spec")
    analysis = analyse(spec, limits)
    problems.extend(f"spec: {p}" for p in analysis.problems)
    dataset = _section(value.get("dataset"), DATASET_DEFAULTS, "dataset", problems)
    training = _section(value.get("training"), TRAINING_DEFAULTS, "training", problems)
    provenance = _section(value.get("provenance"), PROVENANCE_DEFAULTS, "provenance", problems)
    if dataset is not None:
        _check_dataset(dataset, problems)
    if training is not None:
        _check_training(training, problems)
    if provenance is not None:
        check_provenance(provenance, problems)
    created = value.get("created")
    if created is not None and (not isinstance(created, str) or len(created) > 40):
        problems.append("created must be an ISO 8601 time string")
    if problems:
        raise RequestError(problems)
    return {
        "version": REQUEST_VERSION,
        "id": request_id,
        "spec": analysis.normalised,
        "dataset": dataset,
        "training": training,
        "provenance": provenance,
        "created": created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def dataset_config(value: Any) -> dict:
    """Normalise a dataset config on its own; raises ``RequestError``."""
    return _config(value, DATASET_DEFAULTS, "dataset", _check_dataset)


def training_config(value: Any) -> dict:
    """Normalise a training config on its own; raises ``RequestError``."""
    return _config(value, TRAINING_DEFAULTS, "training", _check_training)


def _config(value: Any, defaults: dict, name: str, check: Any) -> dict:
    problems: list[str] = []
    section = _section(value, defaults, name, problems)
    if section is not None:
        check(section, problems)
    if problems:
        raise RequestError(problems)
    return section


def _section(value: Any, defaults: dict, name: str, problems: list[str]) -> dict | None:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        problems.append(f"{name} must be an object")
        return None
    optional = OPTIONAL_FIELDS.get(name, ())
    unknown = sorted(set(value) - set(defaults) - set(optional), key=str)
    for key in unknown:
        problems.append(f"{name}: unknown field {key!r:.40} (known: {', '.join((*defaults, *optional))})")
    merged = {key: value.get(key, copy.deepcopy(default)) for key, default in defaults.items()}
    merged.update({key: value[key] for key in optional if key in value})
    if name == "training":
        merged["early_stopping"] = _early_stopping(value.get("early_stopping"), problems)
    return merged


def _early_stopping(value: Any, problems: list[str]) -> dict:
    defaults = TRAINING_DEFAULTS["early_stopping"]
    if value is None:
        return dict(defaults)
    if not isinstance(value, dict) or set(value) - set(defaults):
        problems.append('training.early_stopping must be {"patience": int or null, "min_delta": number}')
        return dict(defaults)
    merged = {**defaults, **value}
    patience = merged["patience"]
    if patience is not None and not (_is_int(patience) and 1 <= patience <= MAX_EPOCHS):
        problems.append(f"training.early_stopping.patience must be null or an integer 1..{MAX_EPOCHS}")
    if not _is_number(merged["min_delta"]) or merged["min_delta"] < 0:
        problems.append("training.early_stopping.min_delta must be a number >= 0")
    return merged


def _check_dataset(d: dict, problems: list[str]) -> None:
    if d["name"] not in DATASETS:
        problems.append(f"dataset.name must be one of {', '.join(DATASETS)}, got {d['name']!r:.40}")
    data_dir = d["data_dir"]
    if data_dir is not None:
        if not isinstance(data_dir, str) or not data_dir or len(data_dir) > 4096:
            problems.append("dataset.data_dir must be a path string or null")
        elif not os.path.isabs(data_dir) or ".." in data_dir.replace("\\", "/").split("/"):
            problems.append(f"dataset.data_dir must be an absolute path without '..', got {data_dir!r:.80}")
    elif d["name"] != "digits":
        problems.append(f"dataset.data_dir is required for {d['name']} "
                        f"({'the .npz file' if d['name'] == 'npz' else 'the folder that holds its files'})")
    classes = d["classes"]
    if classes is not None:
        if (not isinstance(classes, list) or not 2 <= len(classes) <= 1000
                or not all(isinstance(c, str) and 0 < len(c) <= 100 for c in classes)
                or len(set(classes)) != len(classes)):
            problems.append("dataset.classes must be null or a list of 2 or more distinct class names")
    if d["limit"] is not None and not (_is_int(d["limit"]) and 1 <= d["limit"] <= 10**9):
        problems.append("dataset.limit must be null or a positive integer")
    if not (_is_number(d["val_fraction"]) and 0 < d["val_fraction"] < 1):
        problems.append("dataset.val_fraction must be a number in (0, 1)")
    if not (_is_number(d["test_fraction"]) and 0 <= d["test_fraction"] < 1):
        problems.append("dataset.test_fraction must be a number in [0, 1)")
    if not (_is_int(d["split_seed"]) and 0 <= d["split_seed"] < 2**32):
        problems.append("dataset.split_seed must be an integer in [0, 2**32)")
    if not isinstance(d["normalise"], bool):
        problems.append("dataset.normalise must be true or false")
    _check_own_dataset(d, problems)


def _check_own_dataset(d: dict, problems: list[str]) -> None:
    """The fields of the user's own data: ``image_size``, ``channels``, an npz file path."""
    own = d["name"] in OWN_DATASETS
    size = d["image_size"]
    if size is not None:
        if not (isinstance(size, (list, tuple)) and len(size) == 2
                and all(_is_int(v) and 1 <= v <= MAX_IMAGE_SIDE for v in size)):
            problems.append(f"dataset.image_size must be null or [height, width], integers 1..{MAX_IMAGE_SIDE}, "
                            f"got {size!r:.40}")
        else:
            d["image_size"] = [int(v) for v in size]
            if not own:
                problems.append(f"dataset.image_size applies to {' and '.join(OWN_DATASETS)} only, "
                                f"not {d['name']!r:.40}")
    channels = d["channels"]
    if channels is not None:
        if not (_is_int(channels) and channels in (1, 3)):
            problems.append(f"dataset.channels must be null (inferred from the images), 1 or 3, got {channels!r:.20}")
        elif not own:
            problems.append(f"dataset.channels applies to {' and '.join(OWN_DATASETS)} only, not {d['name']!r:.40}")
    if own and _is_number(d["test_fraction"]) and d["test_fraction"] != 0:
        problems.append(f"dataset.test_fraction applies to quickdraw only; {d['name']} reads its test split "
                        "from the data (DIR/test/ or x_test, y_test)")
    data_dir = d["data_dir"]
    if d["name"] == "npz" and isinstance(data_dir, str) and not data_dir.lower().endswith(".npz"):
        problems.append(f"dataset.data_dir for npz must be the path of a .npz file, got {data_dir!r:.80}")


def _check_training(t: dict, problems: list[str]) -> None:
    if not (_is_int(t["epochs"]) and 0 <= t["epochs"] <= MAX_EPOCHS):
        problems.append(f"training.epochs must be an integer 0..{MAX_EPOCHS}")
    if not (_is_int(t["batch_size"]) and 1 <= t["batch_size"] <= 65536):
        problems.append("training.batch_size must be an integer 1..65536")
    if t["optimizer"] not in OPTIMIZERS:
        problems.append(f"training.optimizer must be one of {', '.join(OPTIMIZERS)}, got {t['optimizer']!r:.40}")
    if not (_is_number(t["lr"]) and 0 < t["lr"] <= 10):
        problems.append("training.lr must be a number in (0, 10]")
    if not (_is_number(t["weight_decay"]) and 0 <= t["weight_decay"] <= 1):
        problems.append("training.weight_decay must be a number in [0, 1]")
    if not (_is_int(t["seed"]) and 0 <= t["seed"] < 2**32):
        problems.append("training.seed must be an integer in [0, 2**32)")
    if "init" in t and t["init"] not in INIT_MODES:
        problems.append(f"training.init must be one of {', '.join(INIT_MODES)}, got {t['init']!r:.40}")
    if "epochs_from_parent" in t and not (_is_int(t["epochs_from_parent"])
                                          and 0 <= t["epochs_from_parent"] <= MAX_EPOCHS):
        problems.append(f"training.epochs_from_parent must be an integer 0..{MAX_EPOCHS} (the epochs to train "
                        "when the run starts from its parent's weights)")


def check_provenance(p: dict, problems: list[str]) -> None:
    """Append what is wrong with a provenance object (origin, parent, changes) to ``problems``."""
    if p.get("origin") not in ORIGINS:
        problems.append(f"provenance.origin must be one of {', '.join(ORIGINS)}, got {p.get('origin')!r:.40}")
    parent = p.get("parent")
    if parent is not None and not is_valid_id(parent):
        problems.append(f"provenance.parent must be null or a model id, got {parent!r:.60}")
    changes = p.get("changes")
    if (not isinstance(changes, list) or len(changes) > MAX_CHANGES
            or not all(isinstance(c, str) and len(c) <= MAX_CHANGE_LENGTH for c in changes)):
        problems.append(f"provenance.changes must be a list of at most {MAX_CHANGES} strings "
                        f"of at most {MAX_CHANGE_LENGTH} characters")
    if "suggested" in p and not isinstance(p["suggested"], bool):
        problems.append(f"provenance.suggested must be true or false, got {p['suggested']!r:.40}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)
