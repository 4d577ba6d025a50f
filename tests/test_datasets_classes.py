"""Every dataset needs 2 or more classes in its training labels; a class under 5 samples is a
warning, printed and kept on the loaded dataset (issue 11). Real data: scikit-learn's digits and
small npz files."""

from __future__ import annotations

import numpy as np
import pytest

from remap_tb.requests import dataset_config
from trainer.datasets import FEW_SAMPLES, DatasetError, load_dataset


def test_training_labels_of_one_class_are_an_error_that_says_what_to_do(capsys):
    with pytest.raises(DatasetError) as info:
        load_dataset(dataset_config({"name": "digits", "limit": 1}))
    text = str(info.value)
    assert text.startswith("digits: the training labels hold one class only ('0') after limit 1")
    assert "at least 2 classes" in text and "raise limit" in text
    with pytest.raises(DatasetError, match=r"one class only \('3'\) after limit 1 and classes \['3', '5'\]"):
        load_dataset(dataset_config({"name": "digits", "limit": 1, "classes": ["3", "5"]}))


def test_classes_under_five_samples_are_a_warning_kept_on_the_dataset(capsys):
    # digits is ordered 0, 1, ..., 9, 0, 1, ...: the first 30 samples hold 3 of each class.
    data = load_dataset(dataset_config({"name": "digits", "limit": 30}))
    assert data.num_classes == 10
    [warning] = data.warnings
    assert f"fewer than {FEW_SAMPLES} training and validation samples" in warning
    assert all(f"'{k}' (3)" in warning for k in range(10)) and "raise the limit" in warning
    assert f"remap: warning: {warning}" in capsys.readouterr().err
    full = load_dataset(dataset_config({"name": "digits"}))
    assert full.warnings == [] and "warning" not in capsys.readouterr().err


def test_npz_warnings_name_the_file_and_split_and_are_kept(tmp_path, capsys):
    path = tmp_path / "data.npz"
    rng = np.random.default_rng(0)
    y = np.array([0] * 20 + [1] * 20 + [2] * 3)
    np.savez(path, x_train=rng.integers(0, 255, size=(len(y), 8, 8), dtype=np.uint8), y_train=y)
    data = load_dataset(dataset_config({"name": "npz", "data_dir": str(path)}))
    [warning] = data.warnings
    assert str(path) in warning and "y_train" in warning and "'2' (3)" in warning and "'0'" not in warning
    one = tmp_path / "one.npz"
    np.savez(one, x_train=rng.integers(0, 255, size=(10, 8, 8), dtype=np.uint8), y_train=np.zeros(10, dtype=int))
    with pytest.raises(DatasetError, match="one class only"):
        load_dataset(dataset_config({"name": "npz", "data_dir": str(one)}))
