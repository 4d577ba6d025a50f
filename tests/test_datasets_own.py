"""The user's own data for the trainer: ``imagefolder`` and ``npz`` datasets.

Data is made on the fly: a few dozen 8x8 PNGs written with PIL, small npz arrays. Every
pixel of an image of class ``k`` is ``BASE[k]`` plus a per-split offset, so a test can tell
classes and splits apart from the loaded pixels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pytest
import torch
from PIL import Image

from remap_tb import metadata
from remap_tb.requests import RequestError, dataset_config
from trainer.datasets import DatasetError, LoadedDataset, load_dataset
from tests.test_cli import remap

CLASSES = ("cat", "dog", "eel")
BASE = {"cat": 20, "dog": 120, "eel": 220}
SPLIT_OFFSET = {"train": 0, "val": 5, "test": 10}
FINGERPRINT_KEYS = {"name", "classes", "input_shape", "n_train", "n_val", "n_test", "limit", "split_seed",
                    "val_fraction", "normalise", "val_labels_sha256", "id"}
# digits' fingerprint id before this module existed: the new config keys must not change it.
DIGITS_DEFAULT_ID = "cbda23dedc560fe5"


def write_images(root: Path, split: str, per_class: int, classes: Iterable[str] = CLASSES,
                 size: tuple[int, int] = (8, 8), mode: str = "L", fmt: str = "png") -> None:
    """``root/split/<class>/<i>.<fmt>``, each image filled with BASE[class] + SPLIT_OFFSET[split]."""
    for name in classes:
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        value = BASE[name] + SPLIT_OFFSET[split]
        for i in range(per_class):
            pixels = np.full((size[0], size[1]) + ((3,) if mode == "RGB" else ()), value, dtype=np.uint8)
            Image.fromarray(pixels, mode=mode).save(folder / f"{i:03d}.{fmt}")


def own(name: str, data_dir: Path, **fields: Any) -> dict:
    """A dataset config normalised (and checked) as requests and the CLI do."""
    return dataset_config({"name": name, "data_dir": str(data_dir), **fields})


def raw_values(ds: LoadedDataset, x: torch.Tensor) -> np.ndarray:
    """Pixels of ``x`` back on the 0..255 scale (undoing the standardisation)."""
    mean = torch.tensor(ds.norm_mean).view(1, -1, 1, 1)
    std = torch.tensor(ds.norm_std).view(1, -1, 1, 1)
    return ((x * std + mean) * 255).numpy()


def assert_error(match: str, config: dict, *names: Any) -> str:
    """Loading ``config`` raises a DatasetError matching ``match`` that names every one of ``names``."""
    with pytest.raises(DatasetError, match=match) as info:
        load_dataset(config)
    for name in names:
        assert str(name) in str(info.value), str(info.value)
    return str(info.value)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """train/ with 10 grayscale images per class; no val/ or test/."""
    root = tmp_path / "images"
    write_images(root, "train", 10)
    return root


# --------------------------------------------------------------------------- imagefolder


def test_imagefolder_loads_splits_train_and_fingerprints_stably(folder: Path) -> None:
    a = load_dataset(own("imagefolder", folder))
    b = load_dataset(own("imagefolder", folder))
    assert a.class_names == list(CLASSES) and a.num_classes == 3
    assert a.input_shape == (1, 8, 8)  # all grayscale -> one channel
    assert a.x_train.shape == (24, 1, 8, 8) and a.x_val.shape == (6, 1, 8, 8)  # 20% of each class to val
    assert a.x_test is None and a.y_test is None
    assert torch.bincount(a.y_val).tolist() == [2, 2, 2]
    # Labels follow the class folders: every image of class k has the value BASE[k].
    values = raw_values(a, a.x_train)[:, 0, 0, 0].round()
    assert [BASE[CLASSES[k]] for k in a.y_train.tolist()] == values.tolist()
    assert set(a.fingerprint) == FINGERPRINT_KEYS and a.fingerprint["name"] == "imagefolder"
    assert a.fingerprint == b.fingerprint and torch.equal(a.x_train, b.x_train)
    assert load_dataset(own("imagefolder", folder, split_seed=1)).fingerprint["id"] != a.fingerprint["id"]


def test_imagefolder_uses_its_val_and_test_folders(folder: Path) -> None:
    write_images(folder, "val", 3)
    write_images(folder, "test", 4)
    ds = load_dataset(own("imagefolder", folder, val_fraction=0.5))
    assert ds.x_train.shape[0] == 30 and ds.x_val.shape[0] == 9 and ds.x_test.shape[0] == 12
    assert set(raw_values(ds, ds.x_train)[:, 0, 0, 0].round()) == {20, 120, 220}
    assert set(raw_values(ds, ds.x_val)[:, 0, 0, 0].round()) == {25, 125, 225}
    assert set(raw_values(ds, ds.x_test)[:, 0, 0, 0].round()) == {30, 130, 230}
    assert ds.fingerprint["n_val"] == 9 and ds.fingerprint["n_test"] == 12
    # Normalisation statistics come from the training split only.
    train_pixels = np.repeat([20, 120, 220], 10) / 255.0
    assert ds.norm_mean[0] == pytest.approx(train_pixels.mean(), abs=1e-5)
    assert float(ds.x_train.mean()) == pytest.approx(0.0, abs=1e-5)


def test_imagefolder_channels_inferred_forced_and_jpeg(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    write_images(root, "train", 6, classes=("cat",), mode="RGB")
    write_images(root, "train", 6, classes=("dog",), mode="L", fmt="jpg")
    ds = load_dataset(own("imagefolder", root))
    assert ds.input_shape == (3, 8, 8)  # one RGB image is enough for 3 channels
    gray = load_dataset(own("imagefolder", root, channels=1, normalise=False))
    assert gray.input_shape == (1, 8, 8)
    # JPEG is lossy; a flat image stays close to its value.
    dog = gray.x_train[gray.y_train == 1] if (gray.y_train == 1).any() else gray.x_val[gray.y_val == 1]
    assert float(dog.mean()) * 255 == pytest.approx(120, abs=3)
    assert load_dataset(own("imagefolder", root, channels=3, classes=["dog", "cat"])).input_shape == (3, 8, 8)


def test_imagefolder_mixed_sizes_need_image_size_which_resizes(tmp_path: Path) -> None:
    root = tmp_path / "sizes"
    write_images(root, "train", 6, classes=("cat", "dog"), size=(8, 8))
    write_images(root, "train", 6, classes=("eel",), size=(12, 10))
    assert_error("different sizes", own("imagefolder", root), "8x8", "12x10", "--image-size", root / "train" / "eel")
    ds = load_dataset(own("imagefolder", root, image_size=[6, 7], normalise=False))
    assert ds.input_shape == (1, 6, 7) and ds.x_train.shape[1:] == (1, 6, 7)
    assert float(ds.x_train[ds.y_train == 2].mean()) * 255 == pytest.approx(220, abs=1)


def test_imagefolder_class_subset_and_limit_per_class(folder: Path) -> None:
    ds = load_dataset(own("imagefolder", folder, classes=["eel", "cat"], limit=5))
    assert ds.class_names == ["eel", "cat"]
    assert ds.x_train.shape[0] + ds.x_val.shape[0] == 10
    values = raw_values(ds, torch.cat([ds.x_train, ds.x_val]))[:, 0, 0, 0].round()
    labels = torch.cat([ds.y_train, ds.y_val]).tolist()
    assert [{0: 220, 1: 20}[k] for k in labels] == values.tolist()
    assert ds.fingerprint["limit"] == 5 and ds.fingerprint["classes"] == ["eel", "cat"]


def test_imagefolder_errors_name_the_folder_or_file(folder: Path, tmp_path: Path) -> None:
    assert_error("does not exist", own("imagefolder", tmp_path / "nowhere"), tmp_path / "nowhere", "never downloads")
    empty = tmp_path / "empty"
    (empty / "val" / "cat").mkdir(parents=True)
    assert_error("missing the training split", own("imagefolder", empty), empty / "train")

    write_images(folder, "val", 2, classes=("cat", "dog"))
    (folder / "val" / "fox").mkdir()
    message = assert_error("same class folders", own("imagefolder", folder), folder / "val", "missing: ['eel']",
                           "extra: ['fox']")
    assert str(folder / "test") not in message


def test_imagefolder_bad_files_are_named(folder: Path, tmp_path: Path) -> None:
    notes = folder / "train" / "dog" / "notes.txt"
    notes.write_text("not an image")
    assert_error("not a PNG or JPEG", own("imagefolder", folder), notes)
    notes.unlink()
    corrupt = folder / "train" / "dog" / "999.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    assert_error("not a readable PNG or JPEG", own("imagefolder", folder), corrupt)
    corrupt.unlink()
    (folder / "train" / ".DS_Store").write_bytes(b"\0\0")  # hidden files are skipped
    (folder / "train" / "cat" / ".hidden.txt").write_text("skipped")
    assert load_dataset(own("imagefolder", folder)).x_train.shape[0] == 24
    stray = folder / "train" / "readme.md"
    stray.write_text("x")
    assert_error("directly in the split folder", own("imagefolder", folder), stray)
    stray.unlink()
    gone = folder / "train" / "cat" / "gone.png"
    gone.symlink_to(tmp_path / "no-such-file.png")
    assert_error("missing", own("imagefolder", folder), gone)


def test_imagefolder_one_class_is_an_error_few_samples_a_warning(tmp_path: Path, capsys) -> None:
    one = tmp_path / "one"
    write_images(one, "train", 10, classes=("cat",))
    assert_error("at least 2 classes", own("imagefolder", one), one / "train", "['cat']")
    few = tmp_path / "few"
    write_images(few, "train", 10, classes=("cat", "dog"))
    write_images(few, "train", 3, classes=("eel",))
    ds = load_dataset(own("imagefolder", few))
    assert ds.num_classes == 3
    err = capsys.readouterr().err
    assert "warning" in err and "'eel' (3)" in err and str(few / "train") in err and "'cat'" not in err


# --------------------------------------------------------------------------- npz


def labels_for(n: int, k: int = 3) -> np.ndarray:
    return np.arange(n) % k


def images_for(labels: np.ndarray, shape: tuple[int, ...], offset: int = 0) -> np.ndarray:
    """uint8 images of ``shape`` (per image) filled with 50 * label + 10 + offset."""
    values = (50 * labels + 10 + offset).astype(np.uint8)
    return np.broadcast_to(values.reshape((-1,) + (1,) * len(shape)), (len(labels),) + shape).copy()


def test_npz_layouts_and_channels_last_detection(tmp_path: Path) -> None:
    y = labels_for(30)
    cases = {
        "nhw.npz": (images_for(y, (8, 8)), (1, 8, 8)),
        "nchw.npz": (images_for(y, (3, 8, 6)), (3, 8, 6)),
        "nhwc.npz": (images_for(y, (8, 6, 3)), (3, 8, 6)),
        "nhw1.npz": (images_for(y, (8, 6, 1)), (1, 8, 6)),
        "ambiguous.npz": (images_for(y, (3, 5, 3)), (3, 5, 3)),  # both axes could be channels: channels-first
    }
    for filename, (x, shape) in cases.items():
        np.savez(tmp_path / filename, x_train=x, y_train=y)
        ds = load_dataset(own("npz", tmp_path / filename, normalise=False))
        assert ds.input_shape == shape, filename
        assert ds.class_names == ["0", "1", "2"] and ds.num_classes == 3
        assert ds.x_train.shape[0] + ds.x_val.shape[0] == 30
        for x_split, y_split in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val)):
            expected = (50 * y_split + 10).to(torch.float32) / 255
            assert torch.allclose(x_split.amax(dim=(1, 2, 3)), expected) and torch.allclose(
                x_split.amin(dim=(1, 2, 3)), expected), filename
    # A channels-last array with distinct channel values keeps them in the right planes.
    x = np.zeros((30, 4, 4, 3), dtype=np.uint8)
    x[..., 0], x[..., 1], x[..., 2] = 10, 20, 30
    np.savez(tmp_path / "planes.npz", x_train=x, y_train=y)
    ds = load_dataset(own("npz", tmp_path / "planes.npz", normalise=False))
    assert (ds.x_train[:, :, 0, 0] * 255).round()[0].tolist() == [10, 20, 30]


def test_npz_val_test_class_names_and_fingerprint(tmp_path: Path) -> None:
    y_train, y_val, y_test = labels_for(30), labels_for(9), labels_for(6)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=images_for(y_train, (8, 8)), y_train=y_train,
             x_val=images_for(y_val, (8, 8), offset=1), y_val=y_val,
             x_test=images_for(y_test, (8, 8), offset=2), y_test=y_test,
             class_names=np.array(["ant", "bee", "cow"]))
    a = load_dataset(own("npz", path, normalise=False))
    b = load_dataset(own("npz", path, normalise=False))
    assert a.class_names == ["ant", "bee", "cow"]
    assert (a.x_train.shape[0], a.x_val.shape[0], a.x_test.shape[0]) == (30, 9, 6)
    assert torch.equal(a.y_val, torch.from_numpy(y_val)) and torch.equal(a.y_test, torch.from_numpy(y_test))
    assert float(a.x_val[0, 0, 0, 0]) * 255 == pytest.approx(11)
    assert set(a.fingerprint) == FINGERPRINT_KEYS and a.fingerprint == b.fingerprint
    assert a.fingerprint["name"] == "npz" and a.fingerprint["n_test"] == 6
    subset = load_dataset(own("npz", path, classes=["cow", "ant"], limit=8))
    assert subset.class_names == ["cow", "ant"] and subset.x_train.shape[0] == 8
    assert subset.x_val.shape[0] == 6 and sorted(subset.y_test.tolist()) == [0, 0, 1, 1]


def test_npz_float_pixels_match_uint8_and_resize(tmp_path: Path) -> None:
    y = labels_for(30)
    x = images_for(y, (8, 8))
    np.savez(tmp_path / "u8.npz", x_train=x, y_train=y)
    np.savez(tmp_path / "f32.npz", x_train=x.astype(np.float32) / 255, y_train=y)
    a = load_dataset(own("npz", tmp_path / "u8.npz"))
    b = load_dataset(own("npz", tmp_path / "f32.npz"))
    assert torch.allclose(a.x_train, b.x_train, atol=1e-5) and a.fingerprint == b.fingerprint
    resized = load_dataset(own("npz", tmp_path / "u8.npz", image_size=[4, 5], channels=3, normalise=False))
    assert resized.input_shape == (3, 4, 5)
    assert torch.allclose(resized.x_train[:, 2].amax(dim=(1, 2)), (50 * resized.y_train + 10) / 255.0, atol=1e-5)
    np.savez(tmp_path / "loud.npz", x_train=x.astype(np.float32), y_train=y)  # 0..255 saved as float
    assert_error(r"must lie in \[0, 1\]", own("npz", tmp_path / "loud.npz"), tmp_path / "loud.npz", "x_train")


def test_npz_mixed_sizes_between_splits(tmp_path: Path) -> None:
    y = labels_for(30)
    path = tmp_path / "sizes.npz"
    np.savez(path, x_train=images_for(y, (8, 8)), y_train=y, x_val=images_for(y, (6, 6)), y_val=y)
    assert_error("different sizes", own("npz", path), "x_train", "x_val", "--image-size")
    assert load_dataset(own("npz", path, image_size=[8, 8])).x_val.shape == (30, 1, 8, 8)


def npz_error(tmp_path: Path, match: str, *names: str, **arrays: Any) -> None:
    """Write ``arrays`` to a file and check the load error names the file and ``names``."""
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    assert_error(match, own("npz", path), path, *names)


def test_npz_malformed_arrays_are_named(tmp_path: Path) -> None:
    y = labels_for(30)
    x = images_for(y, (8, 8))
    npz_error(tmp_path, "no x_train and y_train", x_val=x, y_val=y)
    npz_error(tmp_path, "has x_val but no y_val", x_train=x, y_train=y, x_val=x)
    npz_error(tmp_path, "30 images but y_train has 29 labels", x_train=x, y_train=y[:29])
    npz_error(tmp_path, "label 3, outside 0..2", x_train=x, y_train=y, x_test=x, y_test=y + 1,
              class_names=np.array(["a", "b", "c"]))
    npz_error(tmp_path, "y_train holds the label -1", x_train=x, y_train=y - 1)
    npz_error(tmp_path, "labels must be integers", "y_train", x_train=x, y_train=y.astype(np.float32))
    npz_error(tmp_path, "not one-hot", x_train=x, y_train=np.eye(3)[y].astype(np.int64))
    npz_error(tmp_path, "one class only", x_train=x, y_train=np.zeros(30, dtype=np.int64))
    npz_error(tmp_path, "expected images N×H×W", "x_train", x_train=x.reshape(30, 64), y_train=y)
    npz_error(tmp_path, "channel axis", "x_train", x_train=x.reshape(30, 4, 4, 4), y_train=y)
    npz_error(tmp_path, "Python objects", "class_names", x_train=x, y_train=y,
              class_names=np.array(["a", "b", None], dtype=object))
    npz_error(tmp_path, "more than once", x_train=x, y_train=y, class_names=np.array(["a", "b", "a"]))
    npz_error(tmp_path, "NaN", "x_train", x_train=np.full((30, 8, 8), np.nan, dtype=np.float32), y_train=y)


def test_npz_unreadable_files_are_named(tmp_path: Path, capsys) -> None:
    assert_error("does not exist", own("npz", tmp_path / "missing.npz"), tmp_path / "missing.npz", "never downloads")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    assert_error("cannot read", own("npz", corrupt), corrupt)
    np.savez(tmp_path / "good.npz", x_train=images_for(labels_for(30), (8, 8)), y_train=labels_for(30))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes((tmp_path / "good.npz").read_bytes()[:300])
    assert_error("cannot read", own("npz", truncated), truncated)
    flipped = tmp_path / "flipped.npz"
    blob = bytearray((tmp_path / "good.npz").read_bytes())
    blob[blob.index(b"x_train.npy") + 200] ^= 0xFF  # inside x_train's data: its CRC no longer matches
    flipped.write_bytes(bytes(blob))
    assert_error("corrupt", own("npz", flipped), flipped, "x_train")
    single = tmp_path / "single.npz"
    with single.open("wb") as handle:
        np.save(handle, np.zeros(3))
    assert_error("single array", own("npz", single), single)
    # Extra arrays are ignored with a warning (a typo such as x_valid would otherwise go unnoticed).
    y = labels_for(30)
    np.savez(tmp_path / "extra.npz", x_train=images_for(y, (8, 8)), y_train=y, x_valid=np.zeros(2))
    load_dataset(own("npz", tmp_path / "extra.npz"))
    assert "ignoring the array(s) ['x_valid']" in capsys.readouterr().err


def test_npz_few_samples_warn(tmp_path: Path, capsys) -> None:
    y = np.array([0] * 10 + [1] * 10 + [2] * 4)
    np.savez(tmp_path / "few.npz", x_train=images_for(y, (8, 8)), y_train=y)
    assert load_dataset(own("npz", tmp_path / "few.npz")).num_classes == 3
    err = capsys.readouterr().err
    assert "'2' (4)" in err and "few.npz" in err and "'0'" not in err


# --------------------------------------------------------------------------- config checks


def test_config_checks_for_own_data(tmp_path: Path) -> None:
    problems = {
        "channels must be null": {"name": "npz", "data_dir": "/d/x.npz", "channels": 2},
        "image_size must be": {"name": "imagefolder", "data_dir": "/d", "image_size": [8]},
        "image_size applies to imagefolder and npz only": {"name": "digits", "image_size": [8, 8]},
        "channels applies": {"name": "cifar10", "data_dir": "/d", "channels": 3},
        "must be the path of a .npz file": {"name": "npz", "data_dir": "/d/folder"},
        "absolute path": {"name": "npz", "data_dir": "rel/x.npz"},
        "required for npz": {"name": "npz"},
        "test_fraction applies to quickdraw only": {"name": "imagefolder", "data_dir": "/d", "test_fraction": 0.1},
    }
    for match, config in problems.items():
        with pytest.raises(RequestError, match=match):
            dataset_config(config)
    config = dataset_config({"name": "npz", "data_dir": "/d/x.npz", "image_size": (4, 5), "channels": 1})
    assert config["image_size"] == [4, 5] and json.loads(json.dumps(config)) == config
    # The loader checks configs too (requests of older versions or written by hand).
    with pytest.raises(DatasetError, match="channels must be 1"):
        load_dataset({**own("npz", tmp_path / "x.npz"), "channels": 4})


def test_existing_fingerprints_are_unchanged() -> None:
    old_style = {"name": "digits", "data_dir": None, "classes": None, "limit": None, "val_fraction": 0.2,
                 "split_seed": 0, "normalise": True, "test_fraction": 0.0}  # a request from before image_size
    assert load_dataset(old_style).fingerprint["id"] == DIGITS_DEFAULT_ID
    assert load_dataset(dataset_config({})).fingerprint["id"] == DIGITS_DEFAULT_ID


# --------------------------------------------------------------------------- the command line


def learnable_npz(path: Path) -> None:
    y_train, y_test = labels_for(60, 2), labels_for(10, 2)
    rng = np.random.default_rng(0)
    noisy = lambda y: (images_for(y, (8, 8)) + rng.integers(0, 20, (len(y), 8, 8))).astype(np.uint8)  # noqa: E731
    np.savez(path, x_train=noisy(y_train), y_train=y_train, x_test=noisy(y_test), y_test=y_test,
             class_names=np.array(["dark", "light"]))


def test_init_trains_on_npz_and_evaluates_its_test_split(tmp_path: Path) -> None:
    learnable_npz(tmp_path / "data.npz")
    logdir = tmp_path / "runs"
    # A relative --data-dir is stored absolute, so that workers anywhere read the same file.
    out = remap("init", logdir, "--dataset", "npz", "--data-dir", "data.npz", "--models", "2", "--epochs", "1",
                "--max-params", "20000", "--workers", "1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    runs = sorted(p for p in os.listdir(logdir) if not p.startswith("."))
    assert len(runs) == 2 and all((logdir / r / metadata.WEIGHTS_FILE).is_file() for r in runs)
    request = json.loads((logdir / runs[0] / metadata.REQUEST_FILE).read_text())
    assert request["dataset"]["name"] == "npz" and request["dataset"]["data_dir"] == str(tmp_path / "data.npz")
    [experiment] = os.listdir(logdir / metadata.STATE_DIR / "experiments")
    config = json.loads((logdir / metadata.STATE_DIR / "experiments" / experiment).read_text())
    assert config["fingerprint"]["classes"] == ["dark", "light"] and config["fingerprint"]["n_test"] == 10
    out = remap("evaluate", logdir / runs[0], "--split", "test")
    assert out.returncode == 0, out.stderr
    assert "on 10 samples" in out.stdout


def test_init_trains_on_an_image_folder(tmp_path: Path) -> None:
    root = tmp_path / "images"
    write_images(root, "train", 8, classes=("cat", "dog"), size=(8, 8))
    write_images(root, "train", 8, classes=("eel",), size=(10, 9), mode="RGB")
    write_images(root, "val", 2, size=(8, 8))
    logdir = tmp_path / "runs"
    out = remap("init", logdir, "--dataset", "imagefolder", "--data-dir", root, "--image-size", "8,8",
                "--channels", "1", "--models", "2", "--epochs", "1", "--max-params", "20000", "--workers", "1")
    assert out.returncode == 0, out.stderr
    runs = sorted(p for p in os.listdir(logdir) if not p.startswith("."))
    assert len(runs) == 2 and all((logdir / r / metadata.WEIGHTS_FILE).is_file() for r in runs)
    request = json.loads((logdir / runs[0] / metadata.REQUEST_FILE).read_text())
    assert request["dataset"]["image_size"] == [8, 8] and request["dataset"]["channels"] == 1
    assert request["spec"]["input"] == {"shape": [1, 8, 8], "num_classes": 3}


def test_a_bad_dataset_writes_nothing(tmp_path: Path) -> None:
    y = labels_for(30)
    np.savez(tmp_path / "bad.npz", x_train=images_for(y, (8, 8)), y_train=y + 5,
             class_names=np.array(["a", "b", "c"]))
    logdir = tmp_path / "runs"
    out = remap("init", logdir, "--dataset", "npz", "--data-dir", tmp_path / "bad.npz", "--models", "2")
    assert out.returncode == 2 and "bad.npz" in out.stderr and "outside 0..2" in out.stderr
    assert "Traceback" not in out.stderr and not logdir.exists()

    root = tmp_path / "images"
    write_images(root, "train", 6, classes=("cat", "dog"))
    (root / "train" / "dog" / "scan.pdf").write_bytes(b"%PDF")
    spec = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 2}, "layers": [{"type": "dense", "units": 4}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = remap("train", tmp_path / "spec.json", logdir, "--dataset", "imagefolder", "--data-dir", root,
                "--epochs", "1", "--id", "own")
    assert out.returncode == 2 and "scan.pdf" in out.stderr and "Traceback" not in out.stderr
    assert not logdir.exists()

    out = remap("init", logdir, "--dataset", "imagefolder", "--data-dir", root, "--channels", "2")
    assert out.returncode == 2 and "--channels" in out.stderr and not logdir.exists()
    out = remap("init", logdir, "--dataset", "imagefolder", "--data-dir", root, "--image-size", "8,x")
    assert out.returncode == 2 and "--image-size" in out.stderr and not logdir.exists()
