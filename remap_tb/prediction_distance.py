r"""Post-hoc (prediction) distance: Hamming distance between predicted-label vectors.

Two models evaluated on the same validation set of :math:`m` samples give label
vectors :math:`p, q \in \mathbb{Z}^m`. Their distance is the fraction of samples on
which they disagree,

.. math::

    h(p, q) = \frac{1}{m} \sum_{s=1}^{m} [p_s \ne q_s] \in [0, 1],

the normalised Hamming distance (R. W. Hamming, "Error detecting and error correcting
codes", Bell System Technical Journal 29(2), 1950). It is a metric on label vectors
of one length: :math:`h \ge 0`, :math:`h(p, p) = 0`, symmetric, triangle inequality.
REMAP (Cashman et al., IEEE VIS 2019, section 4.2) uses it for its "post-hoc" model
map. Only vectors on the same validation set (same dataset fingerprint) are
comparable; this module checks lengths, the caller checks fingerprints.

Functions
---------
* :func:`hamming_row` -- one model against ``n`` others, one vectorised comparison.
* :func:`hamming_matrix` -- all pairs, in memory-bounded blocks.
* :func:`pack_labels` / :func:`packed_hamming_pairs` -- label vectors as bit planes
  and the distances of chosen pairs by XOR and popcount (the landmark maps of large
  experiments: ``remap_tb.landmark_mds``).
* :func:`predictions_hash` -- a content key, equal for equal label vectors whatever
  their integer dtype.
"""

from __future__ import annotations

import hashlib

import numpy as np

#: Default bound on the temporary memory of :func:`hamming_matrix`, in bytes.
DEFAULT_BLOCK_BYTES = 64 * 2**20

#: Up to this many distinct labels :func:`hamming_matrix` counts agreements with a
#: one-hot matrix product (cost ~ n^2 m C flops, BLAS speed); above it, it compares
#: labels directly (cost ~ n^2 m byte comparisons, numpy speed).
ONEHOT_MAX_CLASSES = 64


def _as_labels(value, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array of labels, got shape {arr.shape}")
    if arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integer labels, got dtype {arr.dtype}")
    if arr.shape[-1] == 0:
        raise ValueError(f"{name} has no samples: the Hamming fraction needs m >= 1")
    return arr


def hamming_row(pred: np.ndarray, others: np.ndarray) -> np.ndarray:
    r"""Hamming distances from one label vector to each row of ``others``.

    .. math:: h_j = \frac{1}{m} \sum_{s=1}^{m} [\,p_s \ne Q_{js}\,], \quad j = 1..n

    Parameters
    ----------
    pred : np.ndarray, shape (m,), integer dtype
        Predicted label of each validation sample for the new model.
    others : np.ndarray, shape (n, m), integer dtype
        One row per other model, same samples in the same order. ``n`` may be 0.

    Returns
    -------
    np.ndarray, float64, shape (n,)
        Fractions in [0, 1].

    Raises
    ------
    ValueError
        If the shapes disagree, ``m == 0`` or a dtype is not integer.

    Examples
    --------
    >>> hamming_row(np.array([0, 1, 2, 3]), np.array([[0, 1, 2, 3], [0, 1, 0, 0]]))
    array([0. , 0.5])
    """
    p = _as_labels(pred, "pred", 1)
    q = _as_labels(others, "others", 2)
    if q.shape[1] != p.shape[0]:
        raise ValueError(f"pred has {p.shape[0]} samples but others have {q.shape[1]}")
    return np.count_nonzero(q != p, axis=1) / p.shape[0]


class _Codes:
    """Maps labels to dense codes 0..C-1 over the C distinct labels of an array,
    block by block so that no full-size int64 copy is made."""

    def __init__(self, preds: np.ndarray, block_rows: int):
        self.lo = int(preds.min())
        hi = int(preds.max())
        self.uniq = None
        if hi - self.lo < 2**16:
            present = np.zeros(hi - self.lo + 1, dtype=bool)
            for s in range(0, preds.shape[0], block_rows):
                present[preds[s:s + block_rows].astype(np.int64) - self.lo] = True
            self.lookup = np.cumsum(present) - 1
            self.count = int(present.sum())
        else:
            self.uniq = np.unique(preds)
            self.count = len(self.uniq)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        if self.uniq is not None:
            return np.searchsorted(self.uniq, block)
        return self.lookup[block.astype(np.int64) - self.lo]


def hamming_matrix(preds: np.ndarray, block_bytes: int = DEFAULT_BLOCK_BYTES,
                   method: str = "auto") -> np.ndarray:
    r"""All pairwise Hamming distances between the rows of ``preds``.

    .. math::

        H_{ij} = 1 - \frac{A_{ij}}{m}, \qquad
        A = \sum_{c=1}^{C} E_c E_c^\top, \quad (E_c)_{is} = [P_{is} = c]

    :math:`A_{ij}` counts the samples on which models :math:`i` and :math:`j` agree.
    With few distinct labels (:data:`ONEHOT_MAX_CLASSES`) the sum over classes is one
    float32 matrix product per chunk of samples, on the one-hot matrix
    :math:`[E_1 \dots E_C]` restricted to that chunk (exact: every partial count is an
    integer below :math:`2^{24}`). With many labels it compares blocks of rows
    directly. Either way the temporaries stay under about ``block_bytes`` besides the
    (n, n) result.

    Parameters
    ----------
    preds : np.ndarray, shape (n, m), integer dtype
        Row ``i`` is model ``i``'s predicted labels.
    block_bytes : int, default 64 MiB
        Budget for temporaries.
    method : {"auto", "onehot", "compare"}, default "auto"
        Force one kernel (for tests); "auto" picks by the number of distinct labels.

    Returns
    -------
    np.ndarray, float64, shape (n, n)
        Symmetric, zero diagonal, entries in [0, 1]; row ``i`` equals
        ``hamming_row(preds[i], preds)``.

    Examples
    --------
    >>> hamming_matrix(np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 0, 0, 1]]))
    array([[0.  , 0.25, 1.  ],
           [0.25, 0.  , 0.75],
           [1.  , 0.75, 0.  ]])
    """
    p = _as_labels(preds, "preds", 2)
    if method not in ("auto", "onehot", "compare"):
        raise ValueError(f"method must be 'auto', 'onehot' or 'compare', got {method!r}")
    if isinstance(block_bytes, bool) or not isinstance(block_bytes, (int, np.integer)) or block_bytes < 1:
        raise ValueError(f"block_bytes must be a positive integer, got {block_bytes!r}")
    n, m = p.shape
    if n == 0:
        return np.zeros((0, 0))
    row_block = max(1, block_bytes // (8 * m))
    codes = _Codes(p, row_block)
    n_classes = codes.count
    if method == "auto":
        method = "onehot" if n_classes <= ONEHOT_MAX_CLASSES else "compare"
    agree = np.zeros((n, n))
    if method == "onehot":
        chunk = max(1, min(m, 2**24 - 1, block_bytes // (8 * n * n_classes)))
        rows = np.arange(n)[:, None]
        for s in range(0, m, chunk):
            c = codes(p[:, s:s + chunk])
            onehot = np.zeros((n, c.shape[1], n_classes), dtype=np.float32)
            onehot[rows, np.arange(c.shape[1])[None, :], c] = 1.0
            flat = onehot.reshape(n, -1)
            agree += flat @ flat.T
    else:
        small_type = np.min_scalar_type(n_classes - 1)
        small = np.empty((n, m), dtype=small_type)
        for s in range(0, n, row_block):
            small[s:s + row_block] = codes(p[s:s + row_block])
        block = max(1, min(n, block_bytes // (n * m)))
        for s in range(0, n, block):
            agree[s:s + block] = np.count_nonzero(small[s:s + block, None, :] == small[None, :, :], axis=2)
    dist = (m - agree) / m  # exact: agree holds integers, as in hamming_row
    np.fill_diagonal(dist, 0.0)
    return np.maximum(dist, 0.0, out=dist)


class PackedLabels:
    r"""Label vectors as bit planes: ``bits`` (n, b, W) uint64, ``m`` samples.

    Labels are first mapped to dense codes :math:`0..C-1`; plane :math:`t` holds bit
    :math:`t` of every code, packed 64 samples per word (``np.packbits``, zero padding),
    with :math:`b = \max(1, \lceil \log_2 C \rceil)`. Two samples disagree iff some
    plane differs, so

    .. math:: h(p, q) = \frac1m \operatorname{popcount}\Bigl(\bigvee_{t=1}^{b}
              (P_t \oplus Q_t)\Bigr).

    Ten classes take 4 bits per sample (an int64 label vector 64, uint8 8).
    """

    def __init__(self, bits: np.ndarray, m: int):
        self.bits = bits
        self.m = int(m)

    def __len__(self) -> int:
        return self.bits.shape[0]

    @property
    def nbytes(self) -> int:
        return int(self.bits.nbytes)


def pack_labels(preds: np.ndarray, block_bytes: int = DEFAULT_BLOCK_BYTES) -> PackedLabels:
    """Pack the rows of ``preds`` (n, m) integer labels into bit planes (see :class:`PackedLabels`).

    Examples
    --------
    >>> P = pack_labels(np.array([[0, 1, 2, 3], [0, 1, 0, 0]]))
    >>> P.bits.shape, packed_hamming_pairs(P, [0], [1]).tolist()
    ((2, 2, 1), [0.5])
    """
    p = _as_labels(preds, "preds", 2)
    n, m = p.shape
    row_block = max(1, block_bytes // (8 * m))
    codes = _Codes(p, row_block)
    planes = max(1, int(np.ceil(np.log2(max(codes.count, 2)))))
    words = (m + 63) // 64
    bits = np.zeros((n, planes, words * 8), dtype=np.uint8)
    width = (m + 7) // 8
    for s in range(0, n, row_block):
        c = codes(p[s:s + row_block])
        for t in range(planes):
            bits[s:s + row_block, t, :width] = np.packbits(((c >> t) & 1).astype(np.uint8), axis=1)
    return PackedLabels(bits.view(np.uint64), m)


_POPCOUNT8 = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)


def _popcount_rows(x: np.ndarray) -> np.ndarray:
    """Set bits per row of a uint64 array (np.bitwise_count where numpy has it, numpy >= 2)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).sum(axis=1, dtype=np.int64)
    return _POPCOUNT8[x.view(np.uint8)].sum(axis=1, dtype=np.int64)


def packed_hamming_pairs(packed: PackedLabels, rows, cols, block_bytes: int = DEFAULT_BLOCK_BYTES) -> np.ndarray:
    r"""Hamming fractions of the pairs ``(rows[k], cols[k])`` of packed label vectors.

    .. math:: h_k = \frac1m \operatorname{popcount}\Bigl(\bigvee_t (P_{r_k,t} \oplus P_{c_k,t})\Bigr)

    Equal to :func:`hamming_row` on the unpacked labels (integer counts: exact).

    Parameters
    ----------
    packed : PackedLabels
    rows, cols : int arrays, shape (P,)

    Returns
    -------
    np.ndarray, float64, shape (P,)
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    cols = np.asarray(cols, dtype=np.int64).reshape(-1)
    if rows.shape != cols.shape:
        raise ValueError(f"rows and cols must have the same length, got {len(rows)} and {len(cols)}")
    n = len(packed)
    if len(rows) and (min(rows.min(), cols.min()) < 0 or max(rows.max(), cols.max()) >= n):
        raise ValueError(f"rows or cols index outside the {n} packed vectors")
    planes, words = packed.bits.shape[1:]
    out = np.empty(len(rows))
    chunk = max(1, block_bytes // (16 * max(planes, 2) * words))
    flat = packed.bits.reshape(n, planes * words)
    for s in range(0, len(rows), chunk):
        x = np.take(flat, rows[s:s + chunk], axis=0)
        x ^= np.take(flat, cols[s:s + chunk], axis=0)
        x = x.reshape(len(x), planes, words)
        diff = x[:, 0].copy()
        for t in range(1, planes):
            diff |= x[:, t]
        out[s:s + chunk] = _popcount_rows(diff)
    return out / packed.m


def predictions_hash(pred: np.ndarray) -> str:
    """A stable content key of a predicted-label vector: 16 hex digits of SHA-256.

    Equal labels give equal keys whatever the integer dtype (uint8, int16, int64...);
    the length is part of the content.

    Raises
    ------
    ValueError
        If ``pred`` is not a non-empty 1-D integer array.

    Examples
    --------
    >>> predictions_hash(np.array([1, 2, 3], dtype=np.uint8)) == predictions_hash([1, 2, 3])
    True
    """
    p = _as_labels(pred, "pred", 1)
    payload = b"remap-predictions-v1\0" + np.ascontiguousarray(p, dtype="<i8").tobytes()
    return hashlib.sha256(payload).hexdigest()[:16]
