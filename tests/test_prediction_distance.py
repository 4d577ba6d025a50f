"""Hamming (post-hoc) distance between predicted-label vectors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from remap_tb.prediction_distance import hamming_matrix, hamming_row, predictions_hash


def label_sets(n_min=1, n_max=6, m_max=40, classes=4):
    return st.integers(1, m_max).flatmap(
        lambda m: hnp.arrays(np.int16, st.tuples(st.integers(n_min, n_max), st.just(m)),
                             elements=st.integers(0, classes - 1)))


def test_known_values():
    pred = np.array([0, 1, 2, 3, 4], dtype=np.uint8)
    others = np.array([[0, 1, 2, 3, 4], [0, 1, 2, 3, 0], [4, 3, 2, 1, 0], [9, 9, 9, 9, 9]], dtype=np.uint8)
    np.testing.assert_array_equal(hamming_row(pred, others), [0.0, 0.2, 0.8, 1.0])


@settings(max_examples=60, deadline=None)
@given(label_sets(n_min=3))
def test_metric_properties(preds):
    H = hamming_matrix(preds)
    n = len(preds)
    assert np.all(np.diag(H) == 0)
    assert np.array_equal(H, H.T)
    assert np.all((H >= 0) & (H <= 1))
    # triangle inequality for every triple
    assert np.all(H[:, None, :] <= H[:, :, None] + H[None, :, :] + 1e-12)
    # identical rows have distance 0, differing rows at least 1/m
    for i in range(n):
        for j in range(n):
            same = np.array_equal(preds[i], preds[j])
            assert (H[i, j] == 0) == same
            if not same:
                assert H[i, j] >= 1 / preds.shape[1] - 1e-12


@settings(max_examples=40, deadline=None)
@given(label_sets(n_max=8, classes=5), st.sampled_from(["auto", "onehot", "compare"]))
def test_matrix_rows_equal_row_function(preds, method):
    H = hamming_matrix(preds, method=method)
    for i, p in enumerate(preds):
        np.testing.assert_array_equal(H[i], hamming_row(p, preds))


def test_matrix_with_many_classes_negative_labels_and_tiny_blocks():
    rng = np.random.default_rng(1)
    preds = rng.integers(-200, 300, size=(12, 50)).astype(np.int16)
    preds[3] = preds[7]
    expected = np.array([hamming_row(p, preds) for p in preds])
    for method in ("auto", "onehot", "compare"):
        H = hamming_matrix(preds, block_bytes=1, method=method)  # one-sample / one-row blocks
        np.testing.assert_array_equal(H, expected)
    assert expected[3, 7] == 0


def test_large_label_range_uses_sorted_codes():
    preds = np.array([[0, 10**9, 5], [0, 10**9, 6], [-(10**9), 10**9, 5]], dtype=np.int64)
    np.testing.assert_allclose(hamming_matrix(preds), [[0, 1 / 3, 1 / 3], [1 / 3, 0, 2 / 3], [1 / 3, 2 / 3, 0]])


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="samples"):
        hamming_row(np.zeros(5, dtype=int), np.zeros((2, 4), dtype=int))
    with pytest.raises(ValueError, match="2-D"):
        hamming_row(np.zeros(5, dtype=int), np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="integer"):
        hamming_row(np.zeros(5), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="no samples"):
        hamming_matrix(np.zeros((3, 0), dtype=int))
    with pytest.raises(ValueError, match="method"):
        hamming_matrix(np.zeros((3, 2), dtype=int), method="fast")
    with pytest.raises(ValueError, match="block_bytes"):
        hamming_matrix(np.zeros((3, 2), dtype=int), block_bytes=0)
    assert hamming_row(np.zeros(5, dtype=int), np.zeros((0, 5), dtype=int)).shape == (0,)
    assert hamming_matrix(np.zeros((0, 5), dtype=int)).shape == (0, 0)


def test_predictions_hash_is_content_based():
    a = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    assert predictions_hash(a) == predictions_hash(a.astype(np.int16)) == predictions_hash(list(a))
    assert len(predictions_hash(a)) == 16
    b = a.copy()
    b[2] = 0
    assert predictions_hash(b) != predictions_hash(a)
    assert predictions_hash(a[:4]) != predictions_hash(a)
    with pytest.raises(ValueError):
        predictions_hash(a.astype(float))
