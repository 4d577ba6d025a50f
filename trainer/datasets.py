"""Local dataset loading for remap-tb's trainer.

Every dataset is read from local files (or, for ``digits``, from scikit-learn's bundled
copy); nothing is ever downloaded. A loaded dataset lives entirely in memory as tensors
on one device, already scaled (and optionally standardised), split into train /
validation (and, where the dataset has one, test) parts, with labels remapped to
``0..K-1`` in the order of the requested class names.

Supported datasets (``config["name"]``):

* ``digits``: ``sklearn.datasets.load_digits`` (1797 images, 8x8, shape ``[1, 8, 8]``).
* ``cifar10``: ``DATA_DIR/cifar-10-batches-py/`` in the standard python-pickle layout
  (``data_batch_1..5``, ``test_batch``, ``batches.meta``), read directly from the
  documented layout (torchvision's ``CIFAR10`` class insists on the official md5s).
* ``quickdraw``: ``DATA_DIR/full_numpy_bitmap_<class>.npy`` (uint8 ``[N, 784]``),
  memory-mapped so that only the rows used are read.
* ``mnist`` / ``fashion_mnist``: torchvision's folder layout, ``DATA_DIR/MNIST/raw/`` and
  ``DATA_DIR/FashionMNIST/raw/`` with the four idx files, plain or ``.gz``.
* ``imagefolder`` (the user's own images): ``DATA_DIR/train/<class>/*.png|jpg|jpeg`` and
  optional ``DATA_DIR/val/<class>/``, ``DATA_DIR/test/<class>/`` with the same class folders.
  Class names are the sorted folder names; ``limit`` is per class. Without ``val/`` the
  validation split is taken from ``train/`` as for the other datasets.
* ``npz`` (the user's own arrays): ``DATA_DIR`` is a ``.npz`` file with ``x_train``,
  ``y_train`` and optional ``x_val``/``y_val``, ``x_test``/``y_test``, ``class_names``;
  images ``N×H×W``, ``N×C×H×W`` or ``N×H×W×C``, uint8 (0..255) or float (0..1).

For these two, ``image_size`` ``[H, W]`` resizes every image and ``channels`` (1 or 3)
converts them (RGB to grayscale by ITU-R 601 luma, grayscale to RGB by repetition);
without it the channels are inferred (1 when every image is grayscale, else 3).

The public entry points are :func:`load_dataset` and :func:`fingerprint_id`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import pickle
import sys
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch

__all__ = [
    "DATASET_NAMES",
    "DatasetError",
    "LoadedDataset",
    "fingerprint_id",
    "load_dataset",
]

DATASET_NAMES: tuple[str, ...] = ("digits", "cifar10", "quickdraw", "mnist", "fashion_mnist", "imagefolder", "npz")

NEVER_DOWNLOADS = "remap-tb never downloads data"

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"
CIFAR_META_FILE = "batches.meta"
CIFAR_FILES: tuple[str, ...] = CIFAR_TRAIN_FILES + (CIFAR_TEST_FILE, CIFAR_META_FILE)

QUICKDRAW_PREFIX = "full_numpy_bitmap_"
QUICKDRAW_SUFFIX = ".npy"

IDX_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# Folder name under DATA_DIR (torchvision's class name) and the class names, per dataset.
IDX_DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mnist": ("MNIST", tuple(str(i) for i in range(10))),
    "fashion_mnist": (
        "FashionMNIST",
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
}

_STD_EPS = 1e-6

# Arrays of image pixels as read from disk: uint8 (or, for digits, small ints) [N, C, H, W].
_Pixels = np.ndarray
_Labels = np.ndarray


class DatasetError(ValueError):
    """A dataset is missing, malformed, or asked for in a way its data cannot satisfy."""


@dataclass
class LoadedDataset:
    """A dataset held in memory as tensors on one device.

    Images are float32 ``[N, C, H, W]``; labels are int64 in ``0..num_classes-1``, indexing
    ``class_names``. ``x_test``/``y_test`` are ``None`` when the dataset has no test split.
    ``norm_mean``/``norm_std`` are the per-channel statistics (of the train split, in the
    [0,1] pixel scale) that were used to standardise, or ``None`` when not normalised.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: Optional[torch.Tensor]
    y_test: Optional[torch.Tensor]
    class_names: list[str]
    input_shape: tuple[int, int, int]
    num_classes: int
    fingerprint: dict[str, Any]
    norm_mean: Optional[tuple[float, ...]] = field(default=None)
    norm_std: Optional[tuple[float, ...]] = field(default=None)
    # Problems that did not stop loading (e.g. a class with fewer than FEW_SAMPLES samples),
    # each also printed on stderr as "remap: warning: ..." when it was found.
    warnings: list[str] = field(default_factory=list)


@dataclass
class _RawData:
    """What a per-dataset reader returns: pixels and labels before splitting and scaling."""

    pool_x: _Pixels
    pool_y: _Labels
    test_x: Optional[_Pixels]
    test_y: Optional[_Labels]
    class_names: list[str]
    max_value: float  # pixel value that maps to 1.0
    # A validation split of the data's own (imagefolder, npz); None: split from the pool.
    val_x: Optional[_Pixels] = None
    val_y: Optional[_Labels] = None
    warnings: list[str] = field(default_factory=list)  # already printed


# --------------------------------------------------------------------------- public API


def load_dataset(config: dict[str, Any], device: Union[torch.device, str] = "cpu") -> LoadedDataset:
    """Load the dataset described by a normalised ``config`` onto ``device``.

    ``config`` has the keys ``name``, ``data_dir``, ``classes``, ``limit``,
    ``val_fraction``, ``split_seed``, ``normalise``, ``test_fraction``, ``image_size`` and
    ``channels`` (see the module docstring and the project design; configs without the last
    two read as ``None``). Raises :class:`DatasetError` when the data is
    missing or malformed, the requested classes do not exist, or the training
    labels hold one class only. A class with fewer than ``FEW_SAMPLES`` samples is a
    warning: printed on stderr and listed in ``LoadedDataset.warnings``.
    """
    name = config["name"]
    readers: dict[str, Callable[[dict[str, Any]], _RawData]] = {
        "digits": _read_digits,
        "cifar10": _read_cifar10,
        "quickdraw": _read_quickdraw,
        "mnist": _read_idx_dataset,
        "fashion_mnist": _read_idx_dataset,
        "imagefolder": _read_imagefolder,
        "npz": _read_npz,
    }
    if name not in readers:
        raise DatasetError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    raw = readers[name](config)
    warnings = list(raw.warnings)
    _check_classes(name, config, raw, warnings)

    if raw.val_x is None or raw.val_y is None:
        train_idx, val_idx = _split_indices(raw.pool_y, float(config["val_fraction"]), int(config["split_seed"]), name)
        train_x, train_y = raw.pool_x[train_idx], raw.pool_y[train_idx]
        val_x, val_y = raw.pool_x[val_idx], raw.pool_y[val_idx]
    else:  # the data brings its own validation split (imagefolder DIR/val/, npz x_val)
        train_x, train_y, val_x, val_y = raw.pool_x, raw.pool_y, raw.val_x, raw.val_y
    x_train = _to_unit_float(train_x, raw.max_value)
    x_val = _to_unit_float(val_x, raw.max_value)
    x_test = None if raw.test_x is None else _to_unit_float(raw.test_x, raw.max_value)

    norm_mean: Optional[tuple[float, ...]] = None
    norm_std: Optional[tuple[float, ...]] = None
    if config["normalise"]:
        mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
        std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(_STD_EPS)
        x_train = (x_train - mean) / std
        x_val = (x_val - mean) / std
        if x_test is not None:
            x_test = (x_test - mean) / std
        norm_mean = tuple(float(v) for v in mean.flatten())
        norm_std = tuple(float(v) for v in std.flatten())

    y_train = torch.from_numpy(train_y.astype(np.int64))
    y_val = torch.from_numpy(val_y.astype(np.int64))
    y_test = None if raw.test_y is None else torch.from_numpy(raw.test_y.astype(np.int64))

    c, h, w = (int(d) for d in raw.pool_x.shape[1:])
    input_shape = (c, h, w)
    fp: dict[str, Any] = {
        "name": name,
        "classes": list(raw.class_names),
        "input_shape": list(input_shape),
        "n_train": int(y_train.numel()),
        "n_val": int(y_val.numel()),
        "n_test": 0 if y_test is None else int(y_test.numel()),
        "limit": config["limit"],
        "split_seed": int(config["split_seed"]),
        "val_fraction": float(config["val_fraction"]),
        "normalise": bool(config["normalise"]),
        "val_labels_sha256": hashlib.sha256(y_val.numpy().astype("<i8").tobytes()).hexdigest()[:16],
    }
    fp["id"] = fingerprint_id(fp)

    dev = torch.device(device)
    return LoadedDataset(
        x_train=x_train.to(dev),
        y_train=y_train.to(dev),
        x_val=x_val.to(dev),
        y_val=y_val.to(dev),
        x_test=None if x_test is None else x_test.to(dev),
        y_test=None if y_test is None else y_test.to(dev),
        class_names=list(raw.class_names),
        input_shape=input_shape,
        num_classes=len(raw.class_names),
        fingerprint=fp,
        norm_mean=norm_mean,
        norm_std=norm_std,
        warnings=warnings,
    )


def fingerprint_id(fp: dict[str, Any]) -> str:
    """Return a 16-hex-digit stable hash of a fingerprint, ignoring any ``"id"`` key.

    The hash is over canonical JSON (sorted keys, tuples as lists), so it survives a JSON
    round trip. Two models are comparable only when their fingerprint ids match.
    """
    body = {k: v for k, v in fp.items() if k != "id"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


# --------------------------------------------------------------------------- shared steps


def _check_classes(name: str, config: dict[str, Any], raw: _RawData, warnings: list[str]) -> None:
    """The labelled training data must hold 2 or more classes; a class under FEW_SAMPLES is a warning.

    Applies to every dataset (imagefolder and npz check their own splits in their readers,
    with the file or folder named, and are not warned about twice).
    """
    labels = raw.pool_y if raw.val_y is None else np.concatenate([raw.pool_y, raw.val_y])
    present = np.unique(raw.pool_y)  # the training labels (the pool that validation is split from)
    source = _source(config)
    if len(present) < 2:
        only = raw.class_names[int(present[0])] if len(present) else None
        narrowed = [f"limit {config['limit']}" if config.get("limit") is not None else None,
                    f"classes {config['classes']}" if config.get("classes") is not None else None]
        narrowed = [n for n in narrowed if n]
        cause = f" after {' and '.join(narrowed)}" if narrowed else ""
        fix = ("raise limit or choose other classes" if narrowed else
               "add samples of at least one more class to the data")
        raise DatasetError(f"{source}: the training labels hold one class only ({only!r}){cause}; "
                           f"a classifier needs at least 2 classes: {fix}")
    if name in ("imagefolder", "npz"):
        return
    counts = np.bincount(labels.astype(np.int64), minlength=len(raw.class_names))
    few = [f"{raw.class_names[k]!r} ({int(n)})" for k, n in enumerate(counts) if n < FEW_SAMPLES]
    if few:
        warnings.append(_warn(f"{source}: class(es) with fewer than {FEW_SAMPLES} training and validation "
                              f"samples: {', '.join(few)}; their accuracies will be noisy"
                              + (" (raise the limit)" if config.get("limit") is not None else "")))


def _source(config: dict[str, Any]) -> str:
    """The dataset for messages: ``cifar10 (/data/cifar)``, or ``digits`` (scikit-learn's copy)."""
    data_dir = config.get("data_dir")
    return f"{config['name']} ({data_dir})" if data_dir else str(config["name"])


def _to_unit_float(pixels: _Pixels, max_value: float) -> torch.Tensor:
    """Convert raw pixels to a float32 tensor scaled to [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(pixels)).to(torch.float32)
    return x / float(max_value)


def _split_indices(labels: _Labels, val_fraction: float, seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Split pool positions into sorted (train, val) index arrays, stratified by label.

    A permutation from ``np.random.Generator(PCG64(seed))`` orders the pool; within each
    class the first ``round(n_c * val_fraction)`` positions of that order go to validation.
    The result depends only on the labels, the fraction and the seed.
    """
    n = int(labels.shape[0])
    if n < 2:
        raise DatasetError(f"{name}: only {n} sample(s) left after class filtering and limit; need at least 2 to split")
    order = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    ordered_labels = labels[order]
    val_parts: list[np.ndarray] = []
    for label in np.unique(labels):
        members = order[ordered_labels == label]
        val_parts.append(members[: int(round(len(members) * val_fraction))])
    val_idx = np.concatenate(val_parts) if val_parts else np.empty(0, dtype=np.int64)
    # Tiny pools can round every class to 0 (or all) validation samples; keep both sides non-empty.
    if len(val_idx) == 0:
        val_idx = order[:1]
    elif len(val_idx) == n:
        val_idx = val_idx[1:]
    is_val = np.zeros(n, dtype=bool)
    is_val[val_idx] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _select_classes(
    available: list[str], requested: Optional[list[str]], name: str, where: str
) -> tuple[list[str], np.ndarray]:
    """Resolve requested class names against ``available``.

    Returns the chosen names and a lookup table mapping an original label index to its new
    label (``-1`` for classes that were not chosen).
    """
    chosen = list(available) if requested is None else [str(c) for c in requested]
    if not chosen:
        raise DatasetError(f"{name}: the class list is empty; give at least one class or null for all")
    duplicates = sorted({c for c in chosen if chosen.count(c) > 1})
    if duplicates:
        raise DatasetError(f"{name}: classes listed more than once: {duplicates}")
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise DatasetError(f"{name}: unknown class name(s) {unknown} in {where}; available classes: {list(available)}")
    lookup = np.full(len(available), -1, dtype=np.int64)
    for new_label, class_name in enumerate(chosen):
        lookup[available.index(class_name)] = new_label
    return chosen, lookup


def _filter_and_remap(
    x: _Pixels, y: _Labels, lookup: np.ndarray, limit: Optional[int]
) -> tuple[_Pixels, _Labels]:
    """Keep samples of chosen classes (remapping labels), then the first ``limit`` of them."""
    new_y = lookup[y]
    keep = np.flatnonzero(new_y >= 0)
    if limit is not None:
        keep = keep[: int(limit)]
    return x[keep], new_y[keep]


def _require_data_dir(config: dict[str, Any], expected: str) -> Path:
    """Return ``config["data_dir"]`` as a Path or explain what the dataset needs."""
    data_dir = config.get("data_dir")
    if data_dir is None or str(data_dir) == "":
        raise DatasetError(
            f"{config['name']}: no data_dir given; the dataset is read from local files: {expected}. "
            f"Download it yourself and set data_dir; {NEVER_DOWNLOADS}."
        )
    return Path(data_dir).expanduser()


# --------------------------------------------------------------------------- digits


def _read_digits(config: dict[str, Any]) -> _RawData:
    """scikit-learn's bundled 8x8 digits (values 0..16); no test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.images, dtype=np.float32).reshape(-1, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    available = [str(i) for i in range(10)]
    names, lookup = _select_classes(available, config["classes"], "digits", "the digits dataset")
    pool_x, pool_y = _filter_and_remap(x, y, lookup, config["limit"])
    return _RawData(pool_x, pool_y, None, None, names, max_value=16.0)


# --------------------------------------------------------------------------- cifar10


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds plain containers and numpy arrays.

    CIFAR batches are pickles; an allow-list keeps a doctored file in a data folder from
    running code. ``numpy.core`` (how the official Python-2 files name it) maps to
    ``numpy._core``.
    """

    _ALLOWED: frozenset[tuple[str, str]] = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy._core.numeric", "_frombuffer"),
            ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocols 2 and lower
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("numpy.core."):
            module = "numpy._core." + module[len("numpy.core.") :]
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        return super().find_class(module, name)


def _load_cifar_pickle(path: Path) -> dict[str, Any]:
    """Read one CIFAR pickle into a dict with str keys (files may use bytes or str keys)."""
    try:
        with path.open("rb") as handle:
            obj = _ArrayUnpickler(handle, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as exc:
        raise DatasetError(f"cifar10: cannot read {path} as a CIFAR-10 python pickle: {exc}") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"cifar10: {path} holds a {type(obj).__name__}, expected a dict")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _read_cifar_batch(path: Path) -> tuple[_Pixels, _Labels]:
    """Read one data batch: ``data`` uint8 [N, 3072] (RGB planes) and ``labels`` [N]."""
    batch = _load_cifar_pickle(path)
    if "data" not in batch or "labels" not in batch:
        raise DatasetError(f"cifar10: {path} lacks the 'data' and/or 'labels' entries (found {sorted(batch)})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(
            f"cifar10: {path}: 'data' is {data.dtype} {list(data.shape)}, expected uint8 [N, 3072]"
        )
    if labels.ndim != 1 or labels.shape[0] != data.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"cifar10: {path}: 'labels' has shape {list(labels.shape)} ({labels.dtype}), "
            f"expected {data.shape[0]} integers"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"cifar10: {path}: labels must lie in 0..9")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _cifar_folder(data_dir: Path) -> Path:
    """Find the batches folder: DATA_DIR/cifar-10-batches-py or DATA_DIR itself."""
    nested = data_dir / CIFAR_FOLDER
    folder = nested if nested.is_dir() else data_dir if (data_dir / CIFAR_META_FILE).is_file() else nested
    missing = [f for f in CIFAR_FILES if not (folder / f).is_file()]
    if missing:
        raise DatasetError(
            f"cifar10: expected the folder {folder} holding {', '.join(CIFAR_FILES)} "
            f"(the python version of CIFAR-10); missing: {', '.join(missing)}. "
            f"Put the files at {nested}; {NEVER_DOWNLOADS}."
        )
    return folder


def _read_cifar10(config: dict[str, Any]) -> _RawData:
    """CIFAR-10 from the standard python-pickle layout; test split = test_batch."""
    data_dir = _require_data_dir(config, f"DATA_DIR/{CIFAR_FOLDER}/ with {', '.join(CIFAR_FILES)}")
    folder = _cifar_folder(data_dir)
    meta = _load_cifar_pickle(folder / CIFAR_META_FILE)
    raw_names = meta.get("label_names")
    if not isinstance(raw_names, (list, tuple)) or len(raw_names) != 10:
        raise DatasetError(f"cifar10: {folder / CIFAR_META_FILE} must hold 'label_names', a list of 10 names")
    available = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in raw_names]
    names, lookup = _select_classes(available, config["classes"], "cifar10", str(folder))

    parts = [_read_cifar_batch(folder / f) for f in CIFAR_TRAIN_FILES]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    pool_x, pool_y = _filter_and_remap(train_x, train_y, lookup, config["limit"])
    test_x, test_y = _read_cifar_batch(folder / CIFAR_TEST_FILE)
    test_x, test_y = _filter_and_remap(test_x, test_y, lookup, None)
    return _RawData(pool_x, pool_y, test_x, test_y, names, max_value=255.0)


# --------------------------------------------------------------------------- quickdraw


def _read_quickdraw(config: dict[str, Any]) -> _RawData:
    """QuickDraw bitmaps: first ``limit`` drawings per class, test slice right after them."""
    expected = f"DATA_DIR/{QUICKDRAW_PREFIX}<class>{QUICKDRAW_SUFFIX} files (uint8 [N, 784])"
    data_dir = _require_data_dir(config, expected)
    if not data_dir.is_dir():
        raise DatasetError(
            f"quickdraw: the folder {data_dir} does not exist; expected {expected}. "
            f"Put the files at {data_dir}; {NEVER_DOWNLOADS}."
        )
    found = sorted(
        p.name[len(QUICKDRAW_PREFIX) : -len(QUICKDRAW_SUFFIX)]
        for p in data_dir.glob(f"{QUICKDRAW_PREFIX}*{QUICKDRAW_SUFFIX}")
        if p.is_file()
    )
    if not found:
        raise DatasetError(
            f"quickdraw: no {QUICKDRAW_PREFIX}<class>{QUICKDRAW_SUFFIX} files in {data_dir}. "
            f"Put the files at {data_dir}; {NEVER_DOWNLOADS}."
        )
    names, _ = _select_classes(found, config["classes"], "quickdraw", str(data_dir))

    limit: Optional[int] = config["limit"]
    test_fraction = float(config.get("test_fraction") or 0.0)
    pool_x: list[np.ndarray] = []
    pool_y: list[np.ndarray] = []
    test_x: list[np.ndarray] = []
    test_y: list[np.ndarray] = []
    for label, class_name in enumerate(names):
        path = data_dir / f"{QUICKDRAW_PREFIX}{class_name}{QUICKDRAW_SUFFIX}"
        rows = _open_quickdraw_file(path)
        n_rows = int(rows.shape[0])
        if limit is None:
            # No limit: the test slice comes off the end of the file, the pool is the rest.
            n_test = math.ceil(n_rows * test_fraction) if test_fraction > 0 else 0
            n_pool = n_rows - n_test
        else:
            n_pool = min(int(limit), n_rows)
            n_test = math.ceil(int(limit) * test_fraction) if test_fraction > 0 else 0
            if n_pool + n_test > n_rows:
                raise DatasetError(
                    f"quickdraw: {path} has {n_rows} drawings; limit {limit} plus a test slice of "
                    f"{n_test} needs {int(limit) + n_test}. Lower limit or test_fraction."
                )
        pool_x.append(np.array(rows[:n_pool]))
        pool_y.append(np.full(n_pool, label, dtype=np.int64))
        test_x.append(np.array(rows[n_pool : n_pool + n_test]))
        test_y.append(np.full(n_test, label, dtype=np.int64))

    has_test = test_fraction > 0
    return _RawData(
        pool_x=np.concatenate(pool_x).reshape(-1, 1, 28, 28),
        pool_y=np.concatenate(pool_y),
        test_x=np.concatenate(test_x).reshape(-1, 1, 28, 28) if has_test else None,
        test_y=np.concatenate(test_y) if has_test else None,
        class_names=names,
        max_value=255.0,
    )


def _open_quickdraw_file(path: Path) -> np.ndarray:
    """Memory-map one QuickDraw .npy file and check it is uint8 [N, 784]."""
    try:
        rows = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"quickdraw: cannot read {path} as a .npy array: {exc}") from exc
    if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != 28 * 28:
        raise DatasetError(
            f"quickdraw: {path} holds {rows.dtype} {list(rows.shape)}; expected uint8 [N, 784] "
            f"(28x28 bitmaps, one drawing per row)"
        )
    return rows


# --------------------------------------------------------------------------- mnist / fashion_mnist


def _read_idx_file(path: Path, ndim: int) -> np.ndarray:
    """Read an idx (MNIST "ubyte") file, plain or gzipped, of uint8 data with ``ndim`` dims."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            blob = handle.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    header = 4 + 4 * ndim
    if len(blob) < header or blob[0:2] != b"\x00\x00" or blob[2] != 0x08 or blob[3] != ndim:
        raise DatasetError(f"{path} is not an idx file of uint8 data with {ndim} dimension(s)")
    shape = tuple(int.from_bytes(blob[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(blob) - header != int(np.prod(shape)):
        raise DatasetError(f"{path}: header says {list(shape)} but the file holds {len(blob) - header} bytes")
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(shape)


def _read_idx_dataset(config: dict[str, Any]) -> _RawData:
    """MNIST / Fashion-MNIST from torchvision's ``DATA_DIR/<Name>/raw/`` folder; test = t10k.

    When the four plain idx files are present, torchvision's own class reads them (it needs
    nothing else and checks no md5 on them). torchvision cannot read ``.gz``-only folders,
    so those are read here directly.
    """
    name = config["name"]
    folder_name, available = IDX_DATASETS[name]
    files_text = ", ".join(f"{f}[.gz]" for f in IDX_FILES)
    data_dir = _require_data_dir(config, f"DATA_DIR/{folder_name}/raw/ with {files_text}")
    raw_dir = data_dir / folder_name / "raw"

    paths: dict[str, Path] = {}
    missing: list[str] = []
    for stem in IDX_FILES:
        plain, gz = raw_dir / stem, raw_dir / f"{stem}.gz"
        if plain.is_file():
            paths[stem] = plain
        elif gz.is_file():
            paths[stem] = gz
        else:
            missing.append(f"{stem}[.gz]")
    if missing:
        raise DatasetError(
            f"{name}: expected the folder {raw_dir} holding {files_text}; missing: {', '.join(missing)}. "
            f"Put the files at {raw_dir}; {NEVER_DOWNLOADS}."
        )

    if all(p.suffix != ".gz" for p in paths.values()):
        train_x, train_y = _idx_via_torchvision(name, data_dir, train=True, raw_dir=raw_dir)
        test_x, test_y = _idx_via_torchvision(name, data_dir, train=False, raw_dir=raw_dir)
    else:
        train_x, train_y = _idx_pair(name, paths["train-images-idx3-ubyte"], paths["train-labels-idx1-ubyte"])
        test_x, test_y = _idx_pair(name, paths["t10k-images-idx3-ubyte"], paths["t10k-labels-idx1-ubyte"])

    names, lookup = _select_classes(list(available), config["classes"], name, f"the {name} dataset")
    pool_x, pool_y = _filter_and_remap(train_x, train_y, lookup, config["limit"])
    test_x, test_y = _filter_and_remap(test_x, test_y, lookup, None)
    return _RawData(pool_x, pool_y, test_x, test_y, names, max_value=255.0)


def _idx_pair(name: str, images_path: Path, labels_path: Path) -> tuple[_Pixels, _Labels]:
    """Read and cross-check one images/labels idx pair; images come back [N, 1, 28, 28]."""
    try:
        images = _read_idx_file(images_path, 3)
        labels = _read_idx_file(labels_path, 1)
    except DatasetError as exc:
        raise DatasetError(f"{name}: {exc}") from exc
    return _check_idx_arrays(name, images, labels, f"{images_path} / {labels_path}")


def _idx_via_torchvision(name: str, root: Path, train: bool, raw_dir: Path) -> tuple[_Pixels, _Labels]:
    """Read one split with torchvision's MNIST/FashionMNIST class (download disabled)."""
    from torchvision import datasets as tv_datasets

    cls = tv_datasets.MNIST if name == "mnist" else tv_datasets.FashionMNIST
    try:
        ds = cls(str(root), train=train, download=False)
    except (RuntimeError, AssertionError, TypeError, ValueError, OSError) as exc:
        raise DatasetError(f"{name}: torchvision could not read {raw_dir}: {exc!r}") from exc
    images = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else np.asarray(ds.data)
    labels = ds.targets.numpy() if isinstance(ds.targets, torch.Tensor) else np.asarray(ds.targets)
    return _check_idx_arrays(name, images, labels, f"{raw_dir} ({'train' if train else 't10k'})")


def _check_idx_arrays(name: str, images: np.ndarray, labels: np.ndarray, where: str) -> tuple[_Pixels, _Labels]:
    """Check images are uint8 [N, 28, 28] with N labels in 0..9; return [N, 1, 28, 28], int64."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(
            f"{name}: {where}: images are {images.dtype} {list(images.shape)}, expected uint8 [N, 28, 28]"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        n_labels = labels.shape[0] if labels.ndim else 0
        raise DatasetError(f"{name}: {where}: {n_labels} labels for {images.shape[0]} images")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{name}: {where}: labels must lie in 0..9")
    return images.reshape(-1, 1, 28, 28), labels


# --------------------------------------------------------------------------- the user's own data: shared

OWN_SPLITS: tuple[str, ...] = ("train", "val", "test")
FEW_SAMPLES = 5  # fewer training/validation/test samples of a class than this: a warning
_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as PIL's convert("L")
_FLOAT_TOLERANCE = 1e-6  # float pixels may stray this far outside [0, 1] (rounding) and are clipped


def _warn(message: str, sink: Optional[list[str]] = None) -> str:
    """A problem that does not stop loading, on stderr (a worker's log, the user's terminal); also
    appended to ``sink``. Returns the message."""
    print(f"remap: warning: {message}", file=sys.stderr)
    if sink is not None:
        sink.append(message)
    return message


def _warn_few_samples(name: str, where: str, labels: _Labels, class_names: list[str],
                      sink: Optional[list[str]] = None) -> None:
    """Warn once per split about classes with fewer than FEW_SAMPLES samples."""
    counts = np.bincount(labels.astype(np.int64), minlength=len(class_names)) if labels.size else \
        np.zeros(len(class_names), dtype=np.int64)
    few = [f"{class_names[k]!r} ({int(n)})" for k, n in enumerate(counts) if n < FEW_SAMPLES]
    if few:
        _warn(f"{name}: {where}: class(es) with fewer than {FEW_SAMPLES} samples: {', '.join(few)}; "
              "their accuracies will be noisy", sink)


def _own_options(config: dict[str, Any]) -> tuple[Optional[tuple[int, int]], Optional[int]]:
    """``image_size`` as (H, W) and ``channels``, checked (configs may come from old requests)."""
    name = config["name"]
    size = config.get("image_size")
    channels = config.get("channels")
    if size is not None:
        if not (isinstance(size, (list, tuple)) and len(size) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
            raise DatasetError(f"{name}: image_size must be [height, width] (positive integers), got {size!r}")
        size = (int(size[0]), int(size[1]))
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise DatasetError(f"{name}: channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if float(config.get("test_fraction") or 0.0) != 0.0:
        raise DatasetError(f"{name}: test_fraction applies to quickdraw only; {name} reads its test split from "
                           "the data (DIR/test/ or x_test, y_test)")
    return size, channels


def _mixed_sizes_error(name: str, examples: dict[tuple[int, int], str]) -> DatasetError:
    """The error for images of more than one size and no image_size to resize them to."""
    listed = "; ".join(f"{h}x{w} (e.g. {where})" for (h, w), where in sorted(examples.items())[:4])
    return DatasetError(f"{name}: the images have {len(examples)} different sizes (height x width): {listed}. "
                        "Give --image-size H,W (dataset image_size [H, W]) to resize them all to one size")


# --------------------------------------------------------------------------- imagefolder

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg")
_IMAGE_FORMATS = ("PNG", "JPEG")
_GRAY_BANDS = {("1",), ("L",), ("I",), ("F",), ("L", "A")}
_IMAGEFOLDER_LAYOUT = "DATA_DIR/train/<class>/*.png|*.jpg and optional DATA_DIR/val/<class>/, DATA_DIR/test/<class>/"


@dataclass
class _ImageHeader:
    """What a PNG/JPEG header says: size and whether it is grayscale."""

    path: Path
    height: int
    width: int
    gray: bool


def _read_imagefolder(config: dict[str, Any]) -> _RawData:
    """Images in class folders, one folder per split; classes = sorted folder names of train/."""
    size, channels = _own_options(config)
    root = _require_data_dir(config, _IMAGEFOLDER_LAYOUT)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise DatasetError(f"imagefolder: {root} {what}; expected {_IMAGEFOLDER_LAYOUT}. {NEVER_DOWNLOADS}.")
    if not (root / "train").is_dir():
        raise DatasetError(f"imagefolder: missing the training split folder {root / 'train'}; "
                           f"expected {_IMAGEFOLDER_LAYOUT}")
    listings: dict[str, dict[str, list[Path]]] = {}
    for split in OWN_SPLITS:
        folder = root / split
        if split == "train" or folder.exists():
            if not folder.is_dir():
                raise DatasetError(f"imagefolder: {folder} is not a folder; expected {folder}/<class>/ image folders")
            listings[split] = _list_split_folder(folder)

    available = sorted(listings["train"])
    for split, listing in listings.items():
        missing = sorted(set(available) - set(listing))
        extra = sorted(set(listing) - set(available))
        if missing or extra:
            raise DatasetError(
                f"imagefolder: the split folder {root / split} must hold the same class folders as {root / 'train'}"
                + (f"; missing: {missing}" if missing else "") + (f"; extra: {extra}" if extra else ""))
    if len(available) < 2:
        raise DatasetError(f"imagefolder: {root / 'train'} has {len(available)} class folder(s) {available}; "
                           "a classifier needs at least 2 classes (one folder per class)")
    names, _ = _select_classes(available, config["classes"], "imagefolder", str(root / "train"))
    limit: Optional[int] = config["limit"]

    files: dict[str, list[tuple[Path, int]]] = {}
    for split, listing in listings.items():
        files[split] = [(path, label) for label, class_name in enumerate(names)
                        for path in (listing[class_name][:limit] if split == "train" and limit is not None
                                     else listing[class_name])]
        if not files[split]:
            raise DatasetError(f"imagefolder: {root / split} holds no images of the classes {names}")

    all_paths = [path for split in listings for path, _ in files[split]]
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        headers = list(pool.map(_image_header, all_paths))
        if channels is None:
            channels = 1 if all(h.gray for h in headers) else 3
        if size is None:
            examples: dict[tuple[int, int], str] = {}
            for h in headers:
                examples.setdefault((h.height, h.width), str(h.path))
            if len(examples) > 1:
                raise _mixed_sizes_error("imagefolder", examples)
            size = next(iter(examples))
        target = (channels, size)
        arrays = {split: np.stack(list(pool.map(lambda p: _decode_image(p, *target), [p for p, _ in files[split]])))
                  for split in listings}
    labels = {split: np.array([label for _, label in files[split]], dtype=np.int64) for split in listings}
    notes: list[str] = []
    for split in listings:
        _warn_few_samples("imagefolder", str(root / split), labels[split], names, notes)
    return _RawData(
        pool_x=arrays["train"], pool_y=labels["train"],
        test_x=arrays.get("test"), test_y=labels.get("test"),
        class_names=names, max_value=255.0,
        val_x=arrays.get("val"), val_y=labels.get("val"), warnings=notes,
    )


def _list_split_folder(folder: Path) -> dict[str, list[Path]]:
    """Map each class folder of ``folder`` to its image files (sorted, subfolders included).

    Names starting with '.' are skipped (``.DS_Store``, ``.ipynb_checkpoints``). Anything else
    that is not a ``.png``/``.jpg``/``.jpeg`` file is an error naming it.
    """
    classes: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            what = "a broken link (missing file)" if entry.is_symlink() and not entry.exists() else "a file"
            raise DatasetError(f"imagefolder: {entry} is {what} directly in the split folder {folder}; "
                               f"images go in {folder}/<class>/, one folder per class")
        paths: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(entry, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                path = Path(dirpath) / filename
                if not path.is_file():
                    raise DatasetError(f"imagefolder: {path} is missing (a broken link?) in the class folder {entry}")
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    raise DatasetError(f"imagefolder: {path} is not a PNG or JPEG image (remap reads "
                                       f"{', '.join(IMAGE_EXTENSIONS)} files); move it out of {entry}")
                paths.append(path)
        classes[entry.name] = paths
    return classes


def _open_image(path: Path) -> Any:
    """Open ``path`` with PIL (lazily) or raise a DatasetError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
    except FileNotFoundError as exc:
        raise DatasetError(f"imagefolder: {path} is missing: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"imagefolder: {path} is not a readable PNG or JPEG image: {exc}") from exc
    if image.format not in _IMAGE_FORMATS:
        image.close()
        raise DatasetError(f"imagefolder: {path} is a {image.format} image; remap reads PNG and JPEG")
    return image


def _image_header(path: Path) -> _ImageHeader:
    """Size and grayscale-ness of one image, from its header."""
    with _open_image(path) as image:
        return _ImageHeader(path, image.height, image.width, tuple(image.getbands()) in _GRAY_BANDS)


def _decode_image(path: Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One image as uint8 ``[channels, H, W]``, converted and resized (bilinear) to ``size``."""
    from PIL import Image

    try:
        with _open_image(path) as image:
            if image.mode.startswith("I"):  # 16-bit grayscale PNG: scale to 8 bits, not clip
                image = Image.fromarray(np.round(np.asarray(image, dtype=np.float64) / 257.0)
                                        .clip(0, 255).astype(np.uint8), mode="L")
            image = image.convert("L" if channels == 1 else "RGB")
            if (image.height, image.width) != size:
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except DatasetError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"imagefolder: {path} cannot be decoded (corrupt or truncated?): {exc}") from exc
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


# --------------------------------------------------------------------------- npz

NPZ_KEYS: tuple[str, ...] = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "class_names")
_NPZ_LAYOUT = ("a .npz file with x_train, y_train and optional x_val, y_val, x_test, y_test, class_names "
               "(np.savez(path, x_train=..., y_train=..., ...))")


def _read_npz(config: dict[str, Any]) -> _RawData:
    """Arrays in one ``.npz`` file, loaded with ``allow_pickle=False``."""
    size, channels = _own_options(config)
    path = _require_data_dir(config, _NPZ_LAYOUT)
    if not path.is_file():
        what = "is a folder, not a .npz file" if path.is_dir() else "does not exist"
        raise DatasetError(f"npz: {path} {what}; expected {_NPZ_LAYOUT}. {NEVER_DOWNLOADS}.")
    arrays = _load_npz(path)
    notes: list[str] = []
    unknown = sorted(set(arrays) - set(NPZ_KEYS))
    if unknown:
        _warn(f"npz: {path}: ignoring the array(s) {unknown}; remap reads {', '.join(NPZ_KEYS)}", notes)

    splits: dict[str, tuple[np.ndarray, _Labels]] = {}
    for split in OWN_SPLITS:
        x_key, y_key = f"x_{split}", f"y_{split}"
        if x_key not in arrays and y_key not in arrays:
            if split == "train":
                raise DatasetError(f"npz: {path} has no x_train and y_train (it holds {sorted(arrays) or 'nothing'}); "
                                   f"expected {_NPZ_LAYOUT}")
            continue
        if x_key not in arrays or y_key not in arrays:
            have, lack = (x_key, y_key) if x_key in arrays else (y_key, x_key)
            raise DatasetError(f"npz: {path} has {have} but no {lack}; give both or neither")
        x = _npz_images(path, x_key, arrays[x_key])
        y = _npz_labels(path, y_key, arrays[y_key])
        if x.shape[0] != y.shape[0]:
            raise DatasetError(f"npz: {path}: {x_key} has {x.shape[0]} images but {y_key} has {y.shape[0]} labels")
        if x.shape[0] == 0:
            raise DatasetError(f"npz: {path}: {x_key} is empty")
        splits[split] = (x, y)

    top = max(int(y.max()) for _, y in splits.values())
    if "class_names" in arrays:
        available = _npz_class_names(path, arrays["class_names"])
    else:
        available = [str(k) for k in range(top + 1)]
    for split, (_, y) in splits.items():
        if int(y.min()) < 0 or int(y.max()) >= len(available):
            bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
            raise DatasetError(f"npz: {path}: y_{split} holds the label {bad}, outside 0..{len(available) - 1} "
                               f"({len(available)} class_names)" if "class_names" in arrays else
                               f"npz: {path}: y_{split} holds the label {bad}; labels must be integers >= 0")
    present = np.unique(splits["train"][1])
    if len(available) < 2 or len(present) < 2:
        raise DatasetError(f"npz: {path}: y_train holds one class only ({available[int(present[0])]!r}); "
                           "a classifier needs at least 2 classes")

    names, lookup = _select_classes(available, config["classes"], "npz", str(path))
    kept: dict[str, tuple[np.ndarray, _Labels]] = {}
    for split, (x, y) in splits.items():
        x, y = _filter_and_remap(x, y, lookup, config["limit"] if split == "train" else None)
        if y.size == 0:
            raise DatasetError(f"npz: {path}: x_{split} holds no images of the classes {names}")
        _warn_few_samples("npz", f"{path} y_{split}", y, names, notes)
        kept[split] = (x, y)

    if channels is None:
        channels = 3 if any(x.shape[1] == 3 for x, _ in kept.values()) else 1
    if size is None:
        examples = {(int(x.shape[2]), int(x.shape[3])): f"x_{split}" for split, (x, _) in kept.items()}
        if len(examples) > 1:
            raise _mixed_sizes_error("npz", examples)
    converted = {split: _npz_convert(x, channels, size) for split, (x, _) in kept.items()}
    if all(x.dtype == np.uint8 for x in converted.values()):
        max_value = 255.0
    else:  # any float split: every split as float in [0, 1]
        max_value = 1.0
        converted = {split: x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x
                     for split, x in converted.items()}
    return _RawData(
        pool_x=converted["train"], pool_y=kept["train"][1],
        test_x=converted.get("test"), test_y=kept["test"][1] if "test" in kept else None,
        class_names=names, max_value=max_value,
        val_x=converted.get("val"), val_y=kept["val"][1] if "val" in kept else None, warnings=notes,
    )


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz archive, read now so that a corrupt member fails here, naming it."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"npz: cannot read {path} as a .npz archive (corrupt or not made by np.savez?): "
                           f"{exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(f"npz: {path} holds a single array (.npy format), not a .npz archive; "
                           f"save with np.savez(path, x_train=..., y_train=...)")
    arrays: dict[str, np.ndarray] = {}
    with archive:
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except ValueError as exc:
                if "allow_pickle" in str(exc):
                    raise DatasetError(
                        f"npz: {path}: the array {key!r} holds Python objects, which remap does not load "
                        "(allow_pickle=False); save images and labels as numeric arrays and class_names as "
                        "a string array, np.array(names)") from exc
                raise DatasetError(f"npz: {path}: cannot read the array {key!r}: {exc}") from exc
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
                raise DatasetError(f"npz: {path}: the array {key!r} is corrupt: {exc}") from exc
    return arrays


def _npz_images(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """Check one image array; return it ``[N, C, H, W]``, uint8 or float32 in [0, 1].

    A 4-d array is channels-last when its last axis is 1 or 3 and its second is not;
    otherwise channels-first (so ``N×3×3×3`` reads as channels-first).
    """
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[3] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.transpose(0, 3, 1, 2)
        elif x.shape[1] not in (1, 3):
            raise DatasetError(f"npz: {path}: {key} has shape {list(x.shape)}; neither axis 1 nor axis 3 is a "
                               "channel axis of size 1 (grayscale) or 3 (RGB)")
    else:
        raise DatasetError(f"npz: {path}: {key} has shape {list(x.shape)}; expected images N×H×W, N×C×H×W or "
                           "N×H×W×C (reshape flat rows to N×H×W first)")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (int(x.min()) < 0 or int(x.max()) > 255):
            raise DatasetError(f"npz: {path}: {key} is {x.dtype} with values {int(x.min())}..{int(x.max())}; "
                               "integer pixels must lie in 0..255")
        return np.ascontiguousarray(x, dtype=np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.size and not np.isfinite(x).all():
            raise DatasetError(f"npz: {path}: {key} holds NaN or infinite values")
        low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        if low < -_FLOAT_TOLERANCE or high > 1 + _FLOAT_TOLERANCE:
            raise DatasetError(f"npz: {path}: {key} is {x.dtype} with values {low:.4g}..{high:.4g}; float pixels "
                               "must lie in [0, 1] (divide 0..255 data by 255, or save it as uint8; remap "
                               "standardises with the training split's statistics itself)")
        return np.clip(x, 0.0, 1.0)
    raise DatasetError(f"npz: {path}: {key} is {x.dtype}; expected uint8 (0..255) or float (0..1) pixels")


def _npz_labels(path: Path, key: str, y: np.ndarray) -> _Labels:
    """Check one label array: integers, one per image; return int64 ``[N]``."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(f"npz: {path}: {key} has shape {list(y.shape)}; expected one integer class index "
                           "per image, shape [N] (not one-hot)")
    if not np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        raise DatasetError(f"npz: {path}: {key} is {y.dtype}; labels must be integers 0..K-1 "
                           "(save y.astype(np.int64))")
    return y.astype(np.int64)


def _npz_class_names(path: Path, names: np.ndarray) -> list[str]:
    """``class_names``: a 1-d array of distinct, non-empty strings (or bytes)."""
    if names.ndim != 1 or names.dtype.kind not in ("U", "S"):
        raise DatasetError(f"npz: {path}: class_names is {names.dtype} {list(names.shape)}; expected a 1-d "
                           "string array, np.array(['cat', 'dog', ...])")
    result = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names.tolist()]
    if any(not 0 < len(n) <= 100 for n in result):
        raise DatasetError(f"npz: {path}: class_names must be non-empty strings of at most 100 characters")
    duplicates = sorted({n for n in result if result.count(n) > 1})
    if duplicates:
        raise DatasetError(f"npz: {path}: class_names lists {duplicates} more than once")
    return result


def _npz_convert(x: np.ndarray, channels: int, size: Optional[tuple[int, int]]) -> np.ndarray:
    """Convert ``[N, C, H, W]`` pixels to ``channels`` and (bilinear, antialiased) to ``size``.

    uint8 stays uint8 unless a conversion computes new values; then float32 in [0, 1].
    """
    if x.shape[1] != channels:
        if channels == 3:
            x = np.repeat(x, 3, axis=1)
        else:
            scale = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
            x = np.tensordot(np.asarray(_LUMA, dtype=np.float32) * scale, x.astype(np.float32), axes=([0], [1]))
            x = x[:, None].clip(0.0, 1.0).astype(np.float32)
    if size is not None and tuple(x.shape[2:]) != size:
        t = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32)
        if x.dtype == np.uint8:
            t = t / 255.0
        t = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
        x = t.clamp(0.0, 1.0).numpy()
    return x
