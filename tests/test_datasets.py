"""Tests for trainer.datasets, on tiny files written in the real on-disk formats."""

from __future__ import annotations

import gzip
import hashlib
import pickle
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
import torch

from trainer.datasets import DatasetError, LoadedDataset, fingerprint_id, load_dataset

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
QD_CLASSES = ["apple", "wine bottle", "cat"]  # sorted: apple, cat, wine bottle
QD_ROWS = 40


def make_config(name: str, data_dir: Optional[Path], **overrides: Any) -> dict[str, Any]:
    """A normalised config as the request module would produce it."""
    config: dict[str, Any] = {
        "name": name,
        "data_dir": None if data_dir is None else str(data_dir),
        "classes": None,
        "limit": None,
        "val_fraction": 0.25,
        "split_seed": 0,
        "normalise": True,
        "test_fraction": 0.0,
    }
    config.update(overrides)
    return config


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA_DIR with cifar-10-batches-py/: 5 train batches of 20 images, a test batch of 20.

    Labels cycle 0..9; each image's pixels all equal 10 * label + batch number, so a test can
    recover the original label and batch from an image. Keys are bytes, as in the official files.
    """
    root = tmp_path_factory.mktemp("cifar")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    for batch in range(1, 7):
        labels = [i % 10 for i in range(20)]
        data = np.repeat(np.array([10 * lab + batch for lab in labels], dtype=np.uint8)[:, None], 3072, axis=1)
        fname = f"data_batch_{batch}" if batch <= 5 else "test_batch"
        # Protocol 2 as in the official (Python 2) files; the test batch uses protocol 5.
        blob = pickle.dumps(
            {b"batch_label": fname.encode(), b"labels": labels, b"data": data}, protocol=2 if batch <= 5 else 5
        )
        if batch == 3:
            # The official files name numpy's module "numpy.core", as numpy 1.x did.
            assert b"numpy._core.multiarray" in blob
            blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        (folder / fname).write_bytes(blob)
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump({b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}, handle)
    return root


@pytest.fixture(scope="module")
def quickdraw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three QuickDraw files of QD_ROWS drawings; row r of class k has all pixels = 3 * r + k."""
    folder = tmp_path_factory.mktemp("quickdraw")
    for k, name in enumerate(QD_CLASSES):
        rows = np.repeat((3 * np.arange(QD_ROWS) + k).astype(np.uint8)[:, None], 784, axis=1)
        np.save(folder / f"full_numpy_bitmap_{name}.npy", rows)
    return folder


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    """Write a uint8 array in the idx format (big-endian dims), optionally gzipped."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    blob = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as handle:
            handle.write(blob)
    else:
        path.write_bytes(blob)


def make_idx_root(root: Path, folder_name: str, compress: bool, n_train: int = 30, n_test: int = 10) -> Path:
    """DATA_DIR/<folder_name>/raw/ with train and t10k idx files; pixel value = label * 20."""
    raw = root / folder_name / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = np.repeat((labels * 20)[:, None, None], 28, axis=1).repeat(28, axis=2).astype(np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, compress)
    return root


def assert_tensors(ds: LoadedDataset, shape: tuple[int, int, int]) -> None:
    """Common shape/dtype/label checks for a loaded dataset."""
    assert ds.input_shape == shape
    pairs = [(ds.x_train, ds.y_train), (ds.x_val, ds.y_val)]
    if ds.x_test is not None:
        assert ds.y_test is not None
        pairs.append((ds.x_test, ds.y_test))
    for x, y in pairs:
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert tuple(x.shape[1:]) == shape and x.shape[0] == y.shape[0]
        if y.numel():
            assert 0 <= int(y.min()) and int(y.max()) < ds.num_classes
    assert ds.num_classes == len(ds.class_names)


# --------------------------------------------------------------------------- digits


def test_digits_shapes_split_and_normalisation() -> None:
    ds = load_dataset(make_config("digits", None, val_fraction=0.2))
    assert_tensors(ds, (1, 8, 8))
    assert ds.class_names == [str(i) for i in range(10)]
    assert ds.x_test is None and ds.y_test is None
    assert len(ds.y_train) + len(ds.y_val) == 1797
    assert abs(len(ds.y_val) - 0.2 * 1797) <= 10
    assert abs(float(ds.x_train.mean())) < 1e-4
    assert abs(float(ds.x_train.std()) - 1.0) < 1e-2
    assert ds.norm_mean is not None and len(ds.norm_mean) == 1
    # Stratified: every class appears in validation.
    assert set(ds.y_val.tolist()) == set(range(10))


def test_digits_unnormalised_in_unit_range_with_subset_and_limit() -> None:
    ds = load_dataset(make_config("digits", None, classes=["7", "1"], limit=100, normalise=False))
    assert ds.class_names == ["7", "1"] and ds.num_classes == 2
    assert len(ds.y_train) + len(ds.y_val) == 100
    all_x = torch.cat([ds.x_train, ds.x_val])
    assert float(all_x.min()) >= 0.0 and float(all_x.max()) <= 1.0 and float(all_x.max()) > 0.5
    assert ds.norm_mean is None
    assert ds.fingerprint["limit"] == 100


# --------------------------------------------------------------------------- cifar10


def test_cifar_full_shapes_and_test_split(cifar_root: Path) -> None:
    ds = load_dataset(make_config("cifar10", cifar_root))
    assert_tensors(ds, (3, 32, 32))
    assert ds.class_names == CIFAR_NAMES
    assert len(ds.y_train) + len(ds.y_val) == 100
    assert ds.x_test is not None and ds.y_test is not None and len(ds.y_test) == 20
    assert ds.fingerprint["n_test"] == 20
    assert ds.norm_mean is not None and len(ds.norm_mean) == 3


def test_cifar_subset_remaps_labels_in_requested_order(cifar_root: Path) -> None:
    # The batch folder itself is also accepted as data_dir.
    ds = load_dataset(
        make_config("cifar10", cifar_root / "cifar-10-batches-py", classes=["cat", "bird"], normalise=False)
    )
    assert ds.class_names == ["cat", "bird"] and ds.num_classes == 2
    assert sorted(set(ds.y_train.tolist()) | set(ds.y_val.tolist())) == [0, 1]
    # 5 batches x 2 images per class x 2 classes.
    assert len(ds.y_train) + len(ds.y_val) == 20
    # Each image's pixel value encodes its original label: cat=3 -> new 0, bird=2 -> new 1.
    assert ds.x_test is not None and ds.y_test is not None
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        original = (torch.round(x[:, 0, 0, 0] * 255).long() // 10).tolist()
        assert [{3: 0, 2: 1}[o] for o in original] == y.tolist()


def test_cifar_limit_takes_first_samples_after_filtering(cifar_root: Path) -> None:
    ds = load_dataset(make_config("cifar10", cifar_root, classes=["cat", "bird"], limit=6, normalise=False))
    assert len(ds.y_train) + len(ds.y_val) == 6
    # First 6 cat/bird images come from batches 1..2 (4 per batch), so batch number <= 2.
    pixels = torch.round(torch.cat([ds.x_train, ds.x_val])[:, 0, 0, 0] * 255).long()
    assert int((pixels % 10).max()) <= 2
    assert ds.fingerprint["limit"] == 6
    # The test split is not limited.
    assert ds.y_test is not None and len(ds.y_test) == 4


def test_cifar_missing_folder_names_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(make_config("cifar10", tmp_path))
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "data_batch_1" in message and "test_batch" in message and "batches.meta" in message
    assert "never downloads" in message


def test_cifar_missing_file_is_named(cifar_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in (cifar_root / "cifar-10-batches-py").iterdir():
        if f.name != "data_batch_4":
            (folder / f.name).write_bytes(f.read_bytes())
    with pytest.raises(DatasetError, match=r"missing: data_batch_4\b"):
        load_dataset(make_config("cifar10", tmp_path))


def test_cifar_unknown_class_lists_available(cifar_root: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(make_config("cifar10", cifar_root, classes=["cat", "unicorn"]))
    message = str(info.value)
    assert "unicorn" in message and "airplane" in message and "truck" in message


def test_cifar_refuses_pickles_that_run_code(cifar_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in (cifar_root / "cifar-10-batches-py").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (print, ("pwned",))

    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DatasetError, match="refusing to load builtins.print"):
        load_dataset(make_config("cifar10", tmp_path))


def test_no_data_dir_explains() -> None:
    with pytest.raises(DatasetError, match="no data_dir"):
        load_dataset(make_config("cifar10", None))


# --------------------------------------------------------------------------- split and fingerprint


def test_split_is_deterministic_and_seed_dependent(cifar_root: Path) -> None:
    a = load_dataset(make_config("cifar10", cifar_root, split_seed=1))
    b = load_dataset(make_config("cifar10", cifar_root, split_seed=1))
    c = load_dataset(make_config("cifar10", cifar_root, split_seed=2))
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_val, b.y_val)
    assert torch.equal(a.x_train, b.x_train)
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint["id"] == fingerprint_id(a.fingerprint)
    assert a.fingerprint["id"] != c.fingerprint["id"]
    # Pixels encode (label, batch), i.e. the sample; the validation sets must differ as sets.
    assert sorted(a.x_val[:, 0, 0, 0].tolist()) != sorted(c.x_val[:, 0, 0, 0].tolist())


def test_fingerprint_fields_and_id() -> None:
    ds = load_dataset(make_config("digits", None, classes=["3", "5"], split_seed=4))
    fp = ds.fingerprint
    assert set(fp) == {
        "name", "classes", "input_shape", "n_train", "n_val", "n_test", "limit", "split_seed",
        "val_fraction", "normalise", "val_labels_sha256", "id",
    }  # fmt: skip
    assert fp["classes"] == ["3", "5"] and fp["n_test"] == 0 and fp["n_val"] == len(ds.y_val)
    assert len(fp["val_labels_sha256"]) == 16 and len(fp["id"]) == 16
    expected = hashlib.sha256(ds.y_val.numpy().astype("<i8").tobytes()).hexdigest()[:16]
    assert fp["val_labels_sha256"] == expected
    # The id ignores any existing "id", and changes with any other field.
    assert fingerprint_id({k: v for k, v in fp.items() if k != "id"}) == fp["id"]
    assert fingerprint_id({**fp, "split_seed": 5}) != fp["id"]
    assert fingerprint_id({**fp, "input_shape": tuple(fp["input_shape"])}) == fp["id"]


# --------------------------------------------------------------------------- quickdraw


def test_quickdraw_all_classes_sorted_with_limit_per_class(quickdraw_dir: Path) -> None:
    ds = load_dataset(make_config("quickdraw", quickdraw_dir, limit=12))
    assert_tensors(ds, (1, 28, 28))
    assert ds.class_names == ["apple", "cat", "wine bottle"]
    labels = torch.cat([ds.y_train, ds.y_val])
    assert torch.bincount(labels).tolist() == [12, 12, 12]
    assert ds.x_test is None and ds.fingerprint["n_test"] == 0


def test_quickdraw_test_slice_is_disjoint_and_follows_limit(quickdraw_dir: Path) -> None:
    ds = load_dataset(
        make_config("quickdraw", quickdraw_dir, classes=["wine bottle", "apple"], limit=10,
                    test_fraction=0.25, normalise=False)
    )  # fmt: skip
    assert ds.class_names == ["wine bottle", "apple"]
    assert ds.x_test is not None and ds.y_test is not None
    assert torch.bincount(ds.y_test).tolist() == [3, 3]  # ceil(10 * 0.25) per class

    def rows(x: torch.Tensor, y: torch.Tensor) -> set[tuple[int, int]]:
        # (class, row index) recovered from the pixel value 3 * row + original class index.
        original = {0: 1, 1: 0}  # new label -> index in QD_CLASSES
        values = torch.round(x[:, 0, 0, 0] * 255).long().tolist()
        return {(lab, (v - original[lab]) // 3) for v, lab in zip(values, y.tolist())}

    pool = rows(ds.x_train, ds.y_train) | rows(ds.x_val, ds.y_val)
    test = rows(ds.x_test, ds.y_test)
    assert pool == {(c, r) for c in (0, 1) for r in range(10)}
    assert test == {(c, r) for c in (0, 1) for r in range(10, 13)}
    assert not pool & test


def test_quickdraw_test_slice_too_big_names_file(quickdraw_dir: Path) -> None:
    with pytest.raises(DatasetError, match="full_numpy_bitmap_apple.npy has 40 drawings"):
        load_dataset(make_config("quickdraw", quickdraw_dir, classes=["apple"], limit=35, test_fraction=0.5))


def test_quickdraw_wrong_shape_names_file_and_expectation(tmp_path: Path) -> None:
    np.save(tmp_path / "full_numpy_bitmap_cat.npy", np.zeros((5, 28, 28), dtype=np.uint8))
    with pytest.raises(DatasetError) as info:
        load_dataset(make_config("quickdraw", tmp_path))
    message = str(info.value)
    assert "full_numpy_bitmap_cat.npy" in message and "uint8 [N, 784]" in message and "[5, 28, 28]" in message


def test_quickdraw_wrong_dtype_names_file(tmp_path: Path) -> None:
    np.save(tmp_path / "full_numpy_bitmap_dog.npy", np.zeros((5, 784), dtype=np.float32))
    with pytest.raises(DatasetError, match=r"full_numpy_bitmap_dog\.npy holds float32"):
        load_dataset(make_config("quickdraw", tmp_path))


def test_quickdraw_unknown_class_and_missing_folder(quickdraw_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(make_config("quickdraw", quickdraw_dir, classes=["dog"]))
    assert "'dog'" in str(info.value) and "wine bottle" in str(info.value)
    with pytest.raises(DatasetError) as info:
        load_dataset(make_config("quickdraw", tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(info.value) and "full_numpy_bitmap_<class>.npy" in str(info.value)
    with pytest.raises(DatasetError, match="no full_numpy_bitmap_<class>.npy files"):
        load_dataset(make_config("quickdraw", tmp_path))


# --------------------------------------------------------------------------- mnist / fashion_mnist


def test_mnist_gzipped_idx(tmp_path: Path) -> None:
    root = make_idx_root(tmp_path, "MNIST", compress=True)
    ds = load_dataset(make_config("mnist", root, classes=["4", "2"], normalise=False))
    assert_tensors(ds, (1, 28, 28))
    assert ds.class_names == ["4", "2"]
    assert len(ds.y_train) + len(ds.y_val) == 6 and ds.y_test is not None and len(ds.y_test) == 2
    assert ds.x_test is not None
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        original = (torch.round(x[:, 0, 0, 0] * 255).long() // 20).tolist()
        assert [{4: 0, 2: 1}[o] for o in original] == y.tolist()


def test_fashion_mnist_plain_idx_via_torchvision(tmp_path: Path) -> None:
    root = make_idx_root(tmp_path, "FashionMNIST", compress=False)
    ds = load_dataset(make_config("fashion_mnist", root, limit=20))
    assert_tensors(ds, (1, 28, 28))
    assert ds.class_names[0] == "T-shirt/top" and ds.num_classes == 10
    assert len(ds.y_train) + len(ds.y_val) == 20
    assert ds.y_test is not None and len(ds.y_test) == 10
    assert abs(float(ds.x_train.mean())) < 1e-4


def test_mnist_missing_files_named(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8), compress=False)
    with pytest.raises(DatasetError) as info:
        load_dataset(make_config("mnist", tmp_path))
    message = str(info.value)
    assert str(raw) in message
    assert "train-labels-idx1-ubyte[.gz]" in message and "t10k-images-idx3-ubyte[.gz]" in message
    assert "missing: train-images" not in message


def test_mnist_malformed_idx(tmp_path: Path) -> None:
    root = make_idx_root(tmp_path, "MNIST", compress=True)
    with gzip.open(root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(b"not an idx file")
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz is not an idx file"):
        load_dataset(make_config("mnist", root))


def test_unknown_dataset_name() -> None:
    with pytest.raises(DatasetError, match="expected one of digits"):
        load_dataset(make_config("imagenet", None))
