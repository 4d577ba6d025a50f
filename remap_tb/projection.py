r"""Stable 2-D maps of model spaces: metric MDS with warm start and Procrustes alignment.

The map of a population is a metric multidimensional scaling (MDS) of a precomputed
distance matrix :math:`D = (d_{ij})` (OTMANN or Hamming): points
:math:`X = (x_1, \dots, x_n) \in \mathbb{R}^{n \times k}` minimising the raw stress

.. math::

    \sigma(X) = \sum_{i<j} \bigl(\lVert x_i - x_j \rVert - d_{ij}\bigr)^2 ,

reported as Kruskal's Stress-1 :math:`\sqrt{\sigma / \sum_{i<j} d_{ij}^2}` (0 perfect,
0.05 good, 0.1 fair, 0.2 poor). The *distances themselves* are embedded: REMAP's
prototype passed the matrix to ``sklearn.manifold.MDS`` without
``dissimilarity="precomputed"`` and so embedded its rows as feature vectors.

Pieces (pure functions first, then the estimator, then the service):

* :func:`classical_mds` -- Torgerson's classical scaling, the cold-start initialisation
  (the same as scikit-learn 1.9's ``MDS(metric="precomputed", init="classical_mds")``
  uses, with a partial eigensolver so that n = 5,000 takes a fraction of a second).
* :func:`smacof` -- SMACOF stress majorisation (Guttman transform) from a given start,
  blocked and in the dtype of ``D`` (float32 halves time and memory); its iterates are
  those of ``sklearn.manifold.smacof`` (tests check it), at 1/4 to 1/8 of the time
  (scikit-learn keeps several float64 n x n temporaries per iteration: 0.85 s per
  iteration at n = 5,000 on the reference 2-core machine, ours 0.11 s).
* :func:`place_points` -- new points placed against fixed old ones (majorisation over
  the new points' own coordinates only).
* :func:`procrustes_align` -- the rigid motion (rotation, optionally reflection, and
  translation; *no scaling*) that best maps one configuration onto another.
* :class:`StableMDS` -- the estimator: cold fit, or warm update of a previous layout.
* :class:`ProjectionService` -- owns two background threads (the structural maps; the
  post-hoc map) that keep per (experiment, kind) layouts up to date: from the distance
  caches up to :data:`EXACT_MAX` distinct models, by landmark MDS
  (:mod:`remap_tb.landmark_mds`) above.

References: J. de Leeuw, "Applications of convex analysis to multidimensional scaling"
(1977); I. Borg and P. Groenen, *Modern Multidimensional Scaling*, 2nd ed., Springer
2005 (ch. 8 SMACOF, ch. 12 classical scaling, ch. 20 Procrustes); P. Schönemann, "A
generalized solution of the orthogonal Procrustes problem", Psychometrika 31 (1966).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

logger = logging.getLogger(__name__)

#: Bound on the temporaries of one SMACOF / placement block, in bytes.
BLOCK_BYTES = 32 * 2**20

#: Layout kinds: MDS of the unnormalised OTMANN distance d (REMAP's choice, lower stress),
#: of the normalised one d/S (spreads the cluster of small models), and of the Hamming
#: distance between validation predictions.
KINDS = ("structural", "structural_normalised", "posthoc")
STRUCTURAL_KINDS = ("structural", "structural_normalised")

#: Maps of up to this many distinct contents use the exact path (full distance matrix,
#: SMACOF on all pairs); larger ones landmark MDS (``remap_tb.landmark_mds``), which never
#: holds an n x n matrix. Measured in ``benchmarks/scale_quality.py``: at 2,000 the exact
#: structural map takes ~25 s of OTMANN and ~15 s of SMACOF on the 2-core machine.
EXACT_MAX = 2000
#: Landmarks of a landmark map per lane (k n distances). On 2,000 sampler specs, five
#: landmark draws gave 1.06-1.19x the exact structural map's stress with 100 landmarks,
#: 1.04-1.12x with 150; the post-hoc map is refined afterwards, so 100 do there.
N_LANDMARKS = {"structural": 150, "posthoc": 100}
#: Stochastic refinement of the post-hoc landmark map (``landmark_mds.stochastic_refine``):
#: rounds, partners per model per round, and a bound on the bytes XOR-ed in all (the
#: partners, then the rounds, shrink to fit it; 5,000 models of 500 samples take 0.6 GB).
POSTHOC_REFINE = (20, 25, 6e9)
#: Old models a new post-hoc model is refined against (a fixed random sample).
REFINE_SAMPLE = 1000


def _lane(kind: str) -> str:
    """Which worker computes ``kind``'s map: "structural" (both OTMANN maps, which share
    their distances) or "posthoc"."""
    return "structural" if kind in STRUCTURAL_KINDS else "posthoc"


def _file_name(kind: str) -> str:
    """The name of ``kind``'s cache and layout files: "structural-normalised" etc."""
    return kind.replace("_", "-")


class Interrupted(Exception):
    """Raised inside a fit or a distance computation when its owner asked it to stop."""


# --------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------
def check_distance_matrix(D, name: str = "D") -> np.ndarray:
    """``D`` as a float32/float64 square, symmetric, finite, non-negative matrix.

    Symmetry is checked to a relative tolerance of 1e-5 and then made exact by
    averaging with the transpose; the diagonal is set to zero. Other dtypes become
    float64. Raises ValueError otherwise.
    """
    arr = np.asarray(D)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has NaN or infinite entries")
    if np.any(arr < 0):
        raise ValueError(f"{name} has negative entries")
    if not np.array_equal(arr, arr.T):
        scale = float(arr.max())
        if not np.allclose(arr, arr.T, rtol=1e-5, atol=1e-6 * scale):
            raise ValueError(f"{name} is not symmetric")
        arr = ((arr + arr.T) / 2).astype(arr.dtype, copy=False)
    if np.any(np.diagonal(arr) != 0):
        arr = arr.copy()
        np.fill_diagonal(arr, 0)
    return arr


def _check_random_state(random_state) -> np.random.RandomState:
    from sklearn.utils import check_random_state

    return check_random_state(random_state)


def classical_mds(D: np.ndarray, n_components: int = 2, random_state=0) -> np.ndarray:
    r"""Classical (Torgerson-Gower) scaling of a distance matrix.

    .. math::

        B = -\tfrac12 J D^{(2)} J, \quad J = I - \tfrac1n \mathbf{1}\mathbf{1}^\top,
        \qquad X = U_k \Lambda_k^{1/2}

    where :math:`D^{(2)}` squares entrywise and :math:`U_k, \Lambda_k` are the top
    :math:`k` eigenpairs of :math:`B` (negative eigenvalues clipped to 0). Exact for
    Euclidean distances (Borg & Groenen 2005, ch. 12). Uses a dense eigensolver for
    n <= 100 and Lanczos (``scipy.sparse.linalg.eigsh``) above.
    Each axis's sign is fixed so that its largest-magnitude coordinate is positive.

    Parameters
    ----------
    D : np.ndarray, shape (n, n)
        Symmetric distances (see :func:`check_distance_matrix`).
    n_components : int, default 2
    random_state : int, RandomState or None
        Seeds the Lanczos start vector.

    Returns
    -------
    np.ndarray, float64, shape (n, n_components)

    Examples
    --------
    >>> X = classical_mds(np.array([[0., 3., 4.], [3., 0., 5.], [4., 5., 0.]]))
    >>> D = np.linalg.norm(X[:, None] - X[None], axis=2)
    >>> np.round(D, 6).tolist()
    [[0.0, 3.0, 4.0], [3.0, 0.0, 5.0], [4.0, 5.0, 0.0]]
    """
    D = check_distance_matrix(D)
    n = D.shape[0]
    k = int(n_components)
    if k < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components!r}")
    X = np.zeros((n, k))
    if n < 2:
        return X
    B = D.astype(np.float64)
    B **= 2
    B -= B.mean(axis=0)
    B -= B.mean(axis=1, keepdims=True)
    B *= -0.5
    r = min(k, n - 1)
    if n <= 100:
        w, U = np.linalg.eigh(B)
        w, U = w[n - r:], U[:, n - r:]
    else:
        from scipy.sparse.linalg import eigsh

        v0 = _check_random_state(random_state).uniform(-1, 1, n)
        w, U = eigsh(B, k=r, which="LA", v0=v0)
    order = np.argsort(w)[::-1]
    w, U = np.maximum(w[order], 0), U[:, order]
    big = np.argmax(np.abs(U), axis=0)
    U *= np.sign(U[big, np.arange(r)])
    X[:, :r] = U * np.sqrt(w)
    return X


def procrustes_align(moving: np.ndarray, fixed: np.ndarray,
                     allow_reflection: bool = True) -> tuple[np.ndarray, np.ndarray]:
    r"""Orthogonal Procrustes: the rigid motion that best maps ``moving`` onto ``fixed``.

    .. math::

        (R^\star, t^\star) = \arg\min_{R^\top R = I,\ t}
            \sum_i \lVert x_i R + t - y_i \rVert^2 ,
        \qquad R^\star = U V^\top,\quad t^\star = \bar y - \bar x R^\star

    with :math:`U \Sigma V^\top` the SVD of :math:`(X - \bar x)^\top (Y - \bar y)`
    (Schönemann 1966). With ``allow_reflection=False``, :math:`R` is restricted to
    rotations (:math:`\det R = +1`, the last singular pair flipped when needed). When
    the problem does not determine the reflection (all points collinear), a rotation is
    chosen. No scaling: MDS coordinates are in the units of the distances, and a scale
    change would change the stress.

    Parameters
    ----------
    moving, fixed : np.ndarray, shape (m, k), m >= 1
        Corresponding points.
    allow_reflection : bool, default True

    Returns
    -------
    (R, t) : np.ndarray (k, k) orthogonal, np.ndarray (k,)
        Apply to any points as ``points @ R + t``.

    Examples
    --------
    >>> Y = np.array([[0., 0.], [2., 0.], [0., 1.]])
    >>> X = Y @ np.array([[0., -1.], [1., 0.]]) + 5          # rotated and moved
    >>> R, t = procrustes_align(X, Y)
    >>> np.allclose(X @ R + t, Y)
    True
    """
    X = np.asarray(moving, dtype=np.float64)
    Y = np.asarray(fixed, dtype=np.float64)
    if X.ndim != 2 or X.shape != Y.shape or X.shape[0] < 1:
        raise ValueError(f"moving and fixed must be matching (m, k) arrays with m >= 1, "
                         f"got {X.shape} and {Y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ValueError("procrustes_align needs finite points")
    k = X.shape[1]
    xm, ym = X.mean(axis=0), Y.mean(axis=0)
    M = (X - xm).T @ (Y - ym)
    U, s, Vt = np.linalg.svd(M)
    if s[0] <= 1e-12 * max(1.0, np.abs(X).max(), np.abs(Y).max()) ** 2:
        R = np.eye(k)
    else:
        R = U @ Vt
        degenerate = s[-1] <= 1e-9 * s[0]
        if np.linalg.det(R) < 0 and (not allow_reflection or degenerate):
            U[:, -1] *= -1
            R = U @ Vt
    return R, ym - xm @ R


def stress1(raw_stress: float, eta_d2: float) -> float:
    r"""Kruskal's Stress-1 :math:`\sqrt{\sigma / \sum_{i<j} d_{ij}^2}` (0 if D is all zero)."""
    return math.sqrt(max(raw_stress, 0.0) / eta_d2) if eta_d2 > 0 else 0.0


def _guttman_bx(D: np.ndarray, X: np.ndarray, block_rows: int) -> np.ndarray:
    r""":math:`B(X) X` with :math:`b_{ij} = -d_{ij}/\delta_{ij}(X)` (0 where
    :math:`\delta_{ij} = 0`), :math:`b_{ii} = -\sum_{j \ne i} b_{ij}`, by row blocks."""
    n = D.shape[0]
    out = np.empty_like(X)
    cols = [np.ascontiguousarray(X[:, c]) for c in range(X.shape[1])]
    for s in range(0, n, block_rows):
        e = min(n, s + block_rows)
        delta = np.subtract.outer(cols[0][s:e], cols[0])
        np.multiply(delta, delta, out=delta)
        for c in cols[1:]:
            diff = np.subtract.outer(c[s:e], c)
            np.multiply(diff, diff, out=diff)
            delta += diff
        np.sqrt(delta, out=delta)
        delta[delta == 0] = np.inf
        ratio = np.divide(D[s:e], delta, out=delta)
        out[s:e] = ratio.sum(axis=1)[:, None] * X[s:e] - ratio @ X
    return out


def smacof(D: np.ndarray, init: np.ndarray, max_iter: int = 300, eps: float = 1e-6,
           should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, float, int]:
    r"""Metric SMACOF (stress majorisation) from a given start.

    Repeats the Guttman transform :math:`X \leftarrow \tfrac1n B(X) X` (unit weights;
    de Leeuw 1977; Borg & Groenen 2005, section 8.6), which never increases
    :math:`\sigma`. The stress of the current :math:`X` comes for free from the same
    pass, since :math:`\sigma(X) = \eta_D^2 + \eta^2(X) - 2\rho(X)` with
    :math:`\eta_D^2 = \sum_{i<j} d_{ij}^2`,
    :math:`\eta^2(X) = n \sum_i \lVert x_i - \bar x \rVert^2` and
    :math:`\rho(X) = \sum_{i<j} d_{ij}\delta_{ij}(X) = \operatorname{tr} X^\top B(X) X`.
    Stops after ``max_iter`` transforms or when one lowers :math:`\sigma` by less than
    ``eps`` :math:`\cdot\, \eta_D^2`. Works in D's dtype (float32 or float64), in row
    blocks of about :data:`BLOCK_BYTES`.

    Parameters
    ----------
    D : np.ndarray, shape (n, n)
        Symmetric, non-negative, zero diagonal (see :func:`check_distance_matrix`).
    init : np.ndarray, shape (n, k)
        Starting configuration.
    max_iter : int, default 300
    eps : float, default 1e-6
    should_stop : callable () -> bool, optional
        Polled once per iteration; True raises :class:`Interrupted`.

    Returns
    -------
    (X, raw_stress, n_iter) : np.ndarray float64 (n, k) centred, float, int
    """
    n = D.shape[0]
    X = np.array(init, dtype=D.dtype)
    if X.ndim != 2 or X.shape[0] != n:
        raise ValueError(f"init must have shape ({n}, k), got {X.shape}")
    eta_d2 = float(np.square(D, dtype=np.float64).sum()) / 2
    if n < 2:
        return np.zeros(X.shape), 0.0, 0
    X -= X.mean(axis=0)
    block_rows = max(1, min(n, BLOCK_BYTES // (3 * n * D.dtype.itemsize)))
    previous = None
    it = 0
    while True:
        if should_stop is not None and should_stop():
            raise Interrupted()
        BX = _guttman_bx(D, X, block_rows)
        X64 = X.astype(np.float64)
        eta2 = n * float(np.square(X64).sum())
        rho = float(np.sum(X64 * BX))
        sigma = max(eta_d2 + eta2 - 2 * rho, 0.0)
        if it >= max_iter or (previous is not None and previous - sigma < eps * eta_d2):
            return X64, sigma, it
        previous = sigma
        X = BX / n
        it += 1


def place_points(D_new_old: np.ndarray, X_old: np.ndarray, init: np.ndarray,
                 n_iter: int = 30) -> np.ndarray:
    r"""Place new points against fixed old ones by majorising their own stress.

    For each new point :math:`p` with distances :math:`d_j` to the old points
    :math:`x_j` (j = 1..m), minimises :math:`\sum_j (\lVert p - x_j\rVert - d_j)^2` with
    the one-point Guttman update

    .. math:: p \leftarrow \frac1m \sum_j \Bigl(x_j + d_j \frac{p - x_j}{\lVert p - x_j \rVert}\Bigr)

    (the term is :math:`x_j` when :math:`p = x_j`). Distances among the new points are
    ignored here; the global SMACOF iterations that follow account for them. Each
    update costs O(m) per point.

    Parameters
    ----------
    D_new_old : np.ndarray, shape (q, m)
    X_old : np.ndarray, shape (m, k)
    init : np.ndarray, shape (q, k)
    n_iter : int, default 30

    Returns
    -------
    np.ndarray, float64, shape (q, k)
    """
    Dq = np.asarray(D_new_old, dtype=np.float64)
    Xo = np.asarray(X_old, dtype=np.float64)
    P = np.array(init, dtype=np.float64)
    q, m = Dq.shape
    if Xo.shape[0] != m or P.shape != (q, Xo.shape[1]):
        raise ValueError(f"shapes disagree: D_new_old {Dq.shape}, X_old {Xo.shape}, init {P.shape}")
    if m == 0:
        return P
    block = max(1, BLOCK_BYTES // (8 * m * (Xo.shape[1] + 2)))
    for s in range(0, q, block):
        Pb, Db = P[s:s + block], Dq[s:s + block]
        for _ in range(n_iter):
            diff = Pb[:, None, :] - Xo[None, :, :]
            dist = np.linalg.norm(diff, axis=2)
            scale = np.divide(Db, dist, out=np.zeros_like(dist), where=dist > 0)
            Pb = (Xo.sum(axis=0)[None, :] + np.einsum("qm,qmk->qk", scale, diff)) / m
        P[s:s + block] = Pb
    return P


# --------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------
class StableMDS:
    r"""Metric MDS of a precomputed distance matrix that keeps a previous layout stable.

    ``fit(D)`` (cold): classical scaling (:func:`classical_mds`), then SMACOF for up to
    ``max_iter`` iterations -- what ``sklearn.manifold.MDS(metric="precomputed",
    init="classical_mds")`` computes.

    ``fit(D, init=previous)`` (warm), where rows of ``previous`` hold the old points'
    positions and NaN rows mark new points:

    1. each new point starts at its nearest old point (by D), moved by that distance in
       a random direction, then :func:`place_points` optimises its own coordinates
       against the fixed old points (``place_iter`` updates);
    2. SMACOF on all points from that start, for at most
       ``warm_iter + ceil(max_iter * q / n)`` iterations (q new points): a few when one
       model arrives, more when many do;
    3. the result is moved by :func:`procrustes_align` (rotation/reflection +
       translation, no scaling) so that the old points land as close as possible to
       where they were.

    If fewer than half the points are old (or fewer than ``n_components + 1``), the
    warm start is not worth it: a cold fit is aligned onto the old points instead.
    With no NaN row (no new point) the fit continues SMACOF from ``init`` for up to
    ``warm_iter`` iterations, then aligns.

    Parameters
    ----------
    n_components : int, default 2
    max_iter : int, default 300
        SMACOF iterations of a cold fit.
    warm_iter : int, default 30
        Base SMACOF iterations of a warm update.
    place_iter : int, default 30
        Placement updates of the new points.
    eps : float, default 1e-6
        Convergence tolerance of :func:`smacof` (relative to :math:`\sum d_{ij}^2`).
    allow_reflection : bool, default True
        Whether the alignment may mirror the map (needed after a cold re-fit).
    random_state : int, RandomState or None, default 0
        Lanczos start vector and the new points' initial directions.

    Attributes
    ----------
    embedding_ : np.ndarray, float64, shape (n, n_components)
    stress_ : float
        Kruskal's Stress-1 of ``embedding_``.
    raw_stress_ : float
        :math:`\sigma`, in squared distance units.
    n_iter_ : int
        SMACOF iterations run.
    warm_start_ : bool
        Whether the warm path was taken.

    Examples
    --------
    >>> P = np.array([[0., 0.], [4., 0.], [4., 3.], [0., 3.]])
    >>> D = np.linalg.norm(P[:, None] - P[None], axis=2)
    >>> mds = StableMDS().fit(D)
    >>> R, t = procrustes_align(mds.embedding_, P)
    >>> bool(np.allclose(mds.embedding_ @ R + t, P, atol=1e-4)), mds.stress_ < 1e-4
    (True, True)
    """

    def __init__(self, n_components: int = 2, max_iter: int = 300, warm_iter: int = 30,
                 place_iter: int = 30, eps: float = 1e-6, allow_reflection: bool = True,
                 random_state=0):
        self.n_components = n_components
        self.max_iter = max_iter
        self.warm_iter = warm_iter
        self.place_iter = place_iter
        self.eps = eps
        self.allow_reflection = allow_reflection
        self.random_state = random_state

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in ("n_components", "max_iter", "warm_iter", "place_iter",
                                                "eps", "allow_reflection", "random_state")}

    def set_params(self, **params) -> "StableMDS":
        for name, value in params.items():
            if name not in self.get_params():
                raise ValueError(f"unknown parameter {name!r}")
            setattr(self, name, value)
        return self

    def _check_params(self) -> None:
        for name in ("n_components", "max_iter", "warm_iter", "place_iter"):
            value = getattr(self, name)
            low = 1 if name == "n_components" else 0
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not (isinstance(self.eps, (int, float)) and self.eps >= 0):
            raise ValueError(f"eps must be a number >= 0, got {self.eps!r}")

    def fit(self, D, init=None, should_stop: Callable[[], bool] | None = None) -> "StableMDS":
        """Fit the layout of ``D`` (n, n), optionally warm from ``init`` (n, n_components)
        with NaN rows for new points. ``should_stop`` is polled between SMACOF
        iterations (see :func:`smacof`). Returns self."""
        self._check_params()
        D = check_distance_matrix(D)
        n, k = D.shape[0], self.n_components
        rng = _check_random_state(self.random_state)
        eta_d2 = float(np.square(D, dtype=np.float64).sum()) / 2
        known = np.zeros(n, dtype=bool)
        prev = None
        if init is not None:
            prev = np.asarray(init, dtype=np.float64)
            if prev.shape != (n, k):
                raise ValueError(f"init must have shape ({n}, {k}), got {prev.shape}")
            nan_rows = np.isnan(prev)
            if np.any(nan_rows.any(axis=1) != nan_rows.all(axis=1)) or np.any(np.isinf(prev)):
                raise ValueError("init rows must be all finite (old point) or all NaN (new point)")
            known = ~nan_rows.any(axis=1)
        n_known = int(known.sum())
        self.warm_start_ = n_known >= max(k + 1, (n + 1) // 2) and n >= 2
        if self.warm_start_:
            start = prev.copy()
            new = np.flatnonzero(~known)
            if len(new):
                old = np.flatnonzero(known)
                d_no = D[np.ix_(new, old)].astype(np.float64)
                nearest = np.argmin(d_no, axis=1)
                direction = rng.normal(size=(len(new), k))
                direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
                p0 = prev[old[nearest]] + direction * d_no[np.arange(len(new)), nearest][:, None]
                start[new] = place_points(d_no, prev[old], p0, self.place_iter)
            iters = min(self.max_iter, self.warm_iter + math.ceil(self.max_iter * len(new) / n))
            X, sigma, n_iter = smacof(D, start, iters, self.eps, should_stop)
        else:
            start = classical_mds(D, k, rng)
            X, sigma, n_iter = smacof(D, start, self.max_iter, self.eps, should_stop)
        if n_known >= 1:
            R, t = procrustes_align(X[known], prev[known], self.allow_reflection)
            X = X @ R + t
        self.embedding_ = X
        self.raw_stress_ = sigma
        self.stress_ = stress1(sigma, eta_d2)
        self.n_iter_ = n_iter
        return self

    def fit_transform(self, D, init=None) -> np.ndarray:
        return self.fit(D, init).embedding_


# --------------------------------------------------------------------------------------
# The background service
# --------------------------------------------------------------------------------------
def _layout_file(state_dir: str, experiment_id: str, kind: str) -> str:
    tag = hashlib.sha256(f"{experiment_id}\0{kind}".encode("utf-8")).hexdigest()[:16]
    return os.path.join(state_dir, f"layout-{_file_name(kind)}-{tag}.json")


@dataclass
class _Layout:
    """A finished layout (immutable once published)."""

    version: int = 0
    ids: tuple = ()
    keys: tuple = ()
    coords: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    stress: float | None = None
    error: str | None = None
    points: list = field(default_factory=list)
    landmarks: tuple = ()      # content keys of the landmarks (landmark maps only)

    def publish(self) -> "_Layout":
        self.points = [{"id": i, "x": float(x), "y": float(y)}
                       for i, (x, y) in zip(self.ids, self.coords)]
        return self


@dataclass
class _Slot:
    layout: _Layout = field(default_factory=_Layout)
    finished_ids: frozenset | None = None      # item set of the newest finished attempt
    running_ids: frozenset | None = None
    wanted: tuple | None = None                # (ids, items) newest request not yet started


class ProjectionService:
    r"""Keeps MDS layouts of model populations up to date in background threads.

    :meth:`layout` never waits for MDS: it returns the newest finished layout for an
    (experiment, kind) and, when the requested item set differs from the one that
    layout was computed for, schedules a recomputation. Requests coalesce: per
    (experiment, kind) only the newest wanted item set is computed next. Each finished
    layout gets the next version number and is a warm update of the previous one
    (:class:`StableMDS`), so old models stay where they were.

    Kinds (:data:`KINDS`): ``"structural"`` embeds the unnormalised OTMANN distance, as
    REMAP's own maps (on 500 random specs its MDS fits with Stress-1 0.08);
    ``"structural_normalised"`` the normalised one :math:`\bar d = d / S \in [0, 1]`
    (worse fit, 0.23, most pairs near 1, but it spreads out the cluster of small models
    that the unnormalised map squeezes together); ``"posthoc"`` the Hamming distance
    between validation predictions. Both structural kinds take (model id, spec) items.

    Distances come from one :class:`~remap_tb.distance_cache.DistanceCache` per distance
    (both structural kinds share the unnormalised OTMANN one and divide by
    :math:`S_{ij}` for the normalised map), keyed by content (``spec_hash``;
    ``predictions_hash``), so models with equal content share distances and a new model
    costs one distance row. Above ``exact_max`` distinct contents no matrix is kept: the
    map is a landmark MDS (k random landmarks, :data:`N_LANDMARKS`; the two structural maps
    share one OTMANN pass), new models are placed against the previous layout's
    landmarks without moving anyone, and the layout file records the landmarks so a
    restarted TensorBoard keeps placing against them. Two worker threads (lanes): the
    structural maps, and the post-hoc map. Models with equal content get the
    same position (MDS runs on the distinct contents).

    Parameters
    ----------
    state_dir : str or None
        Folder for the distance caches and the last layouts (normally
        ``<logdir>/.remap/cache``, see :func:`default_state_dir`); None keeps
        everything in memory.
    mds_params : dict, optional
        Keyword arguments for :class:`StableMDS`.
    min_save_interval : float, default 5
        Seconds between two saves of a distance cache.
    exact_max : int, default :data:`EXACT_MAX`
        Largest map (distinct contents) laid out exactly.
    n_landmarks : int, optional
        Landmarks of every landmark map (default: :data:`N_LANDMARKS` per lane).

    Assumes that a model id's content (spec, predictions) never changes once given;
    runs are immutable once written. Call :meth:`close` (or use ``with``) to stop the
    thread.
    """

    def __init__(self, state_dir: str | None, *,
                 mds_params: dict | None = None, min_save_interval: float = 5.0,
                 exact_max: int = EXACT_MAX, n_landmarks: int | None = None):
        for name, value in (("exact_max", exact_max), ("n_landmarks", n_landmarks)):
            if value is None and name == "n_landmarks":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 3:
                raise ValueError(f"{name} must be an integer >= 3, got {value!r}")
        self.exact_max = exact_max
        self.n_landmarks = n_landmarks
        self._landmark_memo: tuple | None = None   # (uniq, L, rows d, rows d/S) of the last structural pass
        self.state_dir = state_dir
        self.mds_params = dict(mds_params or {})
        StableMDS(**self.mds_params)._check_params()
        self.min_save_interval = min_save_interval
        self._cond = threading.Condition()
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._pending: deque = deque()
        self._threads: dict[str, threading.Thread] = {}   # lane -> worker
        self._closed = False
        self._caches: dict[str, Any] = {}
        self._key_of: dict[tuple[str, str], str] = {}   # (kind, model id) -> content key
        self._graphs: dict[str, Any] = {}                # spec hash -> OtmannGraph
        self._unsaved: dict[tuple[str, str], tuple] = {}  # (experiment, kind) -> (layout, ids) to write
        self._frames: dict[str, tuple] = {}  # kind -> (landmarks and their positions, (frame, R, t))

    # -- public API -------------------------------------------------------------------
    def layout(self, experiment_id: str, kind: str, items: Sequence[tuple[str, Any]],
               wait: float = 0.0) -> dict:
        """The newest finished layout of ``items``; schedules a recompute if needed.

        Parameters
        ----------
        experiment_id : str
        kind : {"structural", "structural_normalised", "posthoc"}
        items : sequence of (model_id, content)
            content is a spec dict for the structural kinds, a 1-D integer array of predicted
            labels for "posthoc".
        wait : float, default 0
            Seconds to wait for a layout of exactly ``items`` when one has to be computed
            (adding one model to a small map takes milliseconds, so the caller gets it
            at once); on timeout the newest finished layout is returned as usual.

        Returns
        -------
        dict
            ``{"version": int, "computing": bool, "points": [{"id", "x", "y"}],
            "stress": float | None, "error": str | None}``; version 0 with no points
            until a first layout finishes. ``points`` is shared: do not modify it.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        items = list(items)
        ids = frozenset(item[0] for item in items)
        if len(ids) != len(items):
            raise ValueError("items repeat a model id")
        key = (str(experiment_id), kind)
        with self._cond:
            if self._closed:
                raise RuntimeError("ProjectionService is closed")
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
                self._load_layout(key, slot)
            if slot.running_ids is not None:
                target_done = ids == slot.running_ids
            else:
                target_done = ids == slot.finished_ids
            if target_done:
                if slot.wanted is not None:
                    slot.wanted = None
                    self._pending.remove(key)
            elif slot.wanted is None or slot.wanted[0] != ids:
                if slot.wanted is None:
                    self._pending.append(key)
                slot.wanted = (ids, items)
                self._ensure_thread(_lane(kind))
                self._cond.notify_all()
            if wait > 0:
                deadline = time.monotonic() + wait
                while slot.finished_ids != ids and not self._closed and self.running:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            lay = slot.layout
            return {"version": lay.version, "computing": slot.wanted is not None or slot.running_ids is not None,
                    "points": lay.points, "stress": lay.stress, "error": lay.error}

    def normalised_structural_distances(self, items: Sequence[tuple[str, Any]]) -> tuple[list[str], np.ndarray]:
        r"""Normalised OTMANN distances :math:`\bar d = d / S` among ``items`` (model id, spec),
        from the ``"structural"`` map's distance cache (``S`` = the two total masses).

        Unknown pairs are computed (and kept for the map), in the caller's thread; the
        surrogate (``search_routes`` generate) reads the experiment's model-model distances
        this way. Returns (ids of the usable items, matrix (n, n) float64 in that order).
        """
        ids, keys, content = self._contents("structural", list(items))
        uniq = list(dict.fromkeys(keys))
        if not uniq:
            return ids, np.zeros((0, 0))
        D = np.asarray(self._distances("structural", uniq, content), dtype=np.float64)
        mass = np.array([content[k].total_mass for k in uniq])
        D /= mass[:, None] + mass[None, :]
        where = {k: i for i, k in enumerate(uniq)}
        order = [where[k] for k in keys]
        return ids, D[np.ix_(order, order)]

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is scheduled, running or waiting to be written; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while (self._pending or self._unsaved or any(s.running_ids is not None for s in self._slots.values())) \
                    and not (self._closed and not self.running):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float | None = None) -> None:
        """Stop the workers (an MDS or distance computation in progress is abandoned),
        save dirty caches and join the threads. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            threads = list(self._threads.values())
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    @property
    def running(self) -> bool:
        """Whether a worker thread is alive."""
        return any(t.is_alive() for t in list(self._threads.values()))

    def __enter__(self) -> "ProjectionService":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- worker -----------------------------------------------------------------------
    def _ensure_thread(self, lane: str) -> None:
        thread = self._threads.get(lane)
        if thread is None or not thread.is_alive():
            thread = threading.Thread(target=self._run, args=(lane,), name=f"remap-projection-{lane}",
                                      daemon=True)
            self._threads[lane] = thread
            thread.start()

    def _next_key(self, lane: str):
        for key in self._pending:
            if _lane(key[1]) == lane:
                return key
        return None

    def _stopping(self) -> bool:
        return self._closed

    def _run(self, lane: str) -> None:
        """One worker per lane: the structural maps (OTMANN: Python-bound, holds the GIL)
        and the post-hoc map (numpy: releases it) run side by side on two cores."""
        try:
            while True:
                with self._cond:
                    while not self._closed and self._next_key(lane) is None:
                        self._cond.wait(self._next_save_delay(lane))
                        if self._next_key(lane) is None:
                            break
                    if self._closed:
                        break
                    key = self._next_key(lane)
                    if key is None:
                        job = None
                    else:
                        self._pending.remove(key)
                        slot = self._slots[key]
                        if slot.wanted is None:  # defensive: cancelled requests leave the queue
                            continue
                        ids, items = slot.wanted
                        slot.wanted = None
                        slot.running_ids = ids
                        previous = slot.layout
                        job = (key, slot, ids, items, previous)
                if job is not None:
                    self._do(*job)
                with self._cond:
                    idle = self._next_key(lane) is None
                if idle:  # a layout waiting for the map of another kind is not held up by a write
                    self._save_layouts(lane)
                self._save_caches(force=False, lane=lane)
        finally:
            self._save_layouts(lane)
            self._save_caches(force=True, lane=lane)
            with self._cond:
                for key, slot in self._slots.items():   # whatever was wanted is asked again later
                    if _lane(key[1]) == lane:
                        slot.running_ids = None
                        slot.wanted = None
                for key in [k for k in self._pending if _lane(k[1]) == lane]:
                    self._pending.remove(key)
                self._cond.notify_all()

    def _save_layouts(self, lane: str) -> None:
        """Write the lane's finished layouts that are not on disk yet (newest of each map)."""
        with self._cond:
            due = [(key, self._unsaved[key]) for key in self._unsaved if _lane(key[1]) == lane]
        if not due:
            return
        for key, (lay, ids) in due:
            self._save_layout(key, lay, ids)
        with self._cond:
            for key, (lay, _) in due:
                if key in self._unsaved and self._unsaved[key][0] is lay:
                    del self._unsaved[key]
            self._cond.notify_all()

    def _lane_caches(self, lane: str | None) -> list:
        return [c for name, c in list(self._caches.items())
                if lane is None or _lane(name.replace("-", "_")) == lane]

    def _next_save_delay(self, lane: str | None = None) -> float | None:
        delays = [d for d in (c.seconds_until_save() for c in self._lane_caches(lane)) if d is not None]
        return max(0.05, min(delays)) if delays else None

    def _save_caches(self, force: bool, lane: str | None = None) -> None:
        for cache in self._lane_caches(lane):
            try:
                cache.save(force=force)
            except OSError:
                logger.exception("could not save the distance cache %s", cache.path)

    def _do(self, key, slot: _Slot, ids, items, previous: _Layout) -> None:
        experiment_id, kind = key
        try:
            lay = self._compute(kind, items, previous)
        except Interrupted:
            with self._cond:
                slot.running_ids = None
                self._cond.notify_all()
            return
        except Exception as exc:
            logger.exception("projection %s/%s failed", experiment_id, kind)
            lay = _Layout(ids=previous.ids, keys=previous.keys, coords=previous.coords,
                          stress=previous.stress, error=f"{type(exc).__name__}: {exc}",
                          landmarks=previous.landmarks)
        with self._cond:
            lay.version = previous.version + 1
            slot.layout = lay.publish()
            slot.finished_ids = ids
            slot.running_ids = None
            self._cond.notify_all()
            if self.state_dir is not None and lay.error is None:
                self._unsaved[key] = (lay, ids)  # written once the lane has nothing waiting

    def _cache(self, kind: str):
        """The distance cache of ``kind``; both structural kinds share the unnormalised one."""
        from remap_tb.distance_cache import DistanceCache

        name = _file_name("structural" if kind in STRUCTURAL_KINDS else kind)
        if name not in self._caches:
            self._caches[name] = DistanceCache(self.state_dir, name, version="1",
                                               min_save_interval=self.min_save_interval)
            if name == "structural":
                self._drop_stale_normalised_cache()
        return self._caches[name]

    def _drop_stale_normalised_cache(self) -> None:
        """Remove the normalised map's own cache file of older versions: d / S is now
        derived from the unnormalised cache, so that file is never read again."""
        if self.state_dir is None:
            return
        from remap_tb.distance_cache import cache_file

        path = cache_file(self.state_dir, _file_name("structural_normalised"))
        try:
            os.remove(path)
            logger.info("removed %s: the normalised distances now come from the structural cache", path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not remove the stale cache %s: %s", path, exc)

    def _contents(self, kind: str, items) -> tuple[list[str], list[str], dict[str, Any]]:
        """(model ids, content keys, key -> content) of the usable items."""
        ids, keys, content = [], [], {}
        if kind in STRUCTURAL_KINDS:
            from remap_tb import otmann
            from remap_tb.spec import spec_hash

            for model_id, spec in items:
                try:
                    k = self._key_of.get((kind, model_id))
                    if k is None:
                        k = spec_hash(spec)
                    if k not in self._graphs:
                        self._graphs[k] = otmann.graph_from_spec(spec)
                except Exception as exc:
                    logger.warning("model %s left out of the structural map: %s", model_id, exc)
                    continue
                self._key_of[(kind, model_id)] = k
                ids.append(model_id)
                keys.append(k)
                content[k] = self._graphs[k]
            return ids, keys, content
        from remap_tb.prediction_distance import predictions_hash

        arrays = {}
        for model_id, pred in items:
            arr = np.asarray(pred)
            if arr.ndim != 1 or arr.dtype.kind not in "iub" or arr.size == 0:
                logger.warning("model %s left out of the post-hoc map: bad predictions", model_id)
                continue
            arrays[model_id] = arr
        if arrays:
            common = Counter(a.shape[0] for a in arrays.values()).most_common(1)[0][0]
            for model_id, arr in arrays.items():
                if arr.shape[0] != common:
                    logger.warning("model %s left out of the post-hoc map: %d predictions, not %d",
                                   model_id, arr.shape[0], common)
                    continue
                k = self._key_of.get((kind, model_id)) or predictions_hash(arr)
                self._key_of[(kind, model_id)] = k
                ids.append(model_id)
                keys.append(k)
                content[k] = arr
        return ids, keys, content

    def _distances(self, kind: str, uniq: list[str], content: dict[str, Any]) -> np.ndarray:
        cache = self._cache(kind)

        def check():
            if self._closed:
                raise Interrupted()

        if kind in STRUCTURAL_KINDS:
            # One OTMANN pass serves both structural maps: the cache holds d, and the
            # normalised map divides by S_ij = tm(G_i) + tm(G_j) (otmann's definition).
            from remap_tb import otmann

            def row(k, others):
                check()
                return otmann.distance_row(content[k], [content[o] for o in others])

            def block(ks):
                check()
                return otmann.distance_matrix([content[k] for k in ks])

            D = cache.matrix(uniq, row, block)
            if kind == "structural_normalised":
                mass = np.array([content[k].total_mass for k in uniq], dtype=np.float32)
                D = D / (mass[:, None] + mass[None, :])
            return D
        from remap_tb.prediction_distance import hamming_matrix, hamming_row

        pos = {k: i for i, k in enumerate(uniq)}
        P = np.stack([content[k] for k in uniq]) if uniq else np.zeros((0, 1), dtype=np.int64)

        def row(k, others):
            check()
            return hamming_row(P[pos[k]], P[[pos[o] for o in others]])

        def block(ks):
            check()
            return hamming_matrix(P[[pos[k] for k in ks]])

        return cache.matrix(uniq, row, block)

    def _pair_function(self, kind: str, subset: list[str], content: dict[str, Any]):
        """``f(rows, cols)`` -> distances of the pairs (subset[rows], subset[cols]) of ``kind``:
        OTMANN d or d / S prepared once (``otmann.PairSolver``), or bit-packed Hamming."""
        if kind in STRUCTURAL_KINDS:
            from remap_tb import otmann

            solver = otmann.PairSolver([content[k] for k in subset])
            which = 1 if kind == "structural_normalised" else 0
            return lambda rows, cols: solver.pairs(rows, cols)[which]
        from remap_tb.prediction_distance import pack_labels, packed_hamming_pairs

        packed = pack_labels(np.stack([content[k] for k in subset]))
        return lambda rows, cols: packed_hamming_pairs(packed, rows, cols)

    def _landmark_rows(self, kind: str, uniq: list[str], content: dict[str, Any]):
        """Random landmarks and their rows; the two structural maps share one OTMANN pass
        (d and d / S come from the same transport problems)."""
        from remap_tb import landmark_mds, otmann

        wanted = self.n_landmarks if self.n_landmarks is not None else N_LANDMARKS[_lane(kind)]
        n, k = len(uniq), min(wanted, len(uniq))
        if kind not in STRUCTURAL_KINDS:
            f = self._pair_function(kind, uniq, content)
            return landmark_mds.random_landmarks(f, n, k, 0, self._stopping) + (f,)
        memo = self._landmark_memo
        if memo is None or memo[0] != tuple(uniq) or len(memo[1]) != k:
            solver = otmann.PairSolver([content[u] for u in uniq])
            L = np.sort(np.random.default_rng(0).choice(n, size=k, replace=False)).astype(np.int64)
            rows, cols = np.repeat(L, n), np.tile(np.arange(n), k)
            d, dn = np.empty(len(rows)), np.empty(len(rows))
            for s in range(0, len(rows), landmark_mds.PAIR_CHUNK):
                if self._closed:
                    raise Interrupted()
                e = s + landmark_mds.PAIR_CHUNK
                d[s:e], dn[s:e] = solver.pairs(rows[s:e], cols[s:e])
            memo = self._landmark_memo = (tuple(uniq), L, d.reshape(k, n).astype(np.float32),
                                          dn.reshape(k, n).astype(np.float32))
        rows = memo[3] if kind == "structural_normalised" else memo[2]
        return memo[1], rows.astype(np.float64), None

    @staticmethod
    def _refine_budget(n_moving: int, packed_bytes: int) -> tuple[int, int]:
        """(rounds, partners) of the post-hoc refinement within :data:`POSTHOC_REFINE`'s bytes."""
        rounds, partners, budget = POSTHOC_REFINE
        per = max(1, n_moving * packed_bytes)
        partners = int(max(10, min(partners, budget // (per * rounds))))
        rounds = int(max(5, min(rounds, budget // (per * partners))))
        return rounds, partners

    @staticmethod
    def _packed_bytes(content: dict[str, Any], key: str) -> int:
        """Bytes of one bit-packed prediction vector (``prediction_distance.PackedLabels``),
        assuming up to 16 classes (4 planes)."""
        return 4 * 8 * ((len(content[key]) + 63) // 64)

    def _compute_landmarks(self, kind: str, ids, keys, uniq, content, previous: _Layout) -> _Layout:
        """The landmark path (more than ``exact_max`` distinct contents): new models are placed
        against the previous layout's landmarks, which stay put with every old model; a first
        layout, one whose landmarks left, or more than half new models get a fresh landmark
        layout, aligned onto the old models (Procrustes, no scaling)."""
        from remap_tb import landmark_mds

        n = len(uniq)
        old = {k: xy for k, xy in zip(previous.keys, previous.coords)}
        new = [i for i, k in enumerate(uniq) if k not in old]
        lm_keys = list(previous.landmarks)
        incremental = (len(lm_keys) >= 3 and all(k in old for k in lm_keys)
                       and set(lm_keys) <= set(uniq) and len(new) <= n // 2)
        if incremental:
            X = np.array([old.get(k, (np.nan, np.nan)) for k in uniq], dtype=np.float64)
            if new:
                k = len(lm_keys)
                subset = lm_keys + [uniq[i] for i in new]
                f = self._pair_function(kind, subset, content)
                where = {u: i for i, u in enumerate(uniq)}
                positions = X[[where[u] for u in lm_keys]]
                # The landmarks' frame depends only on them and their positions, which stay put
                # while models are added one by one: kept per map kind.
                memo_key = (tuple(lm_keys), positions.tobytes())
                memo = self._frames.get(kind)
                if memo is not None and memo[0] == memo_key:
                    frame, R, t = memo[1]
                else:
                    li, lj = np.triu_indices(k, 1)
                    D_ll = np.zeros((k, k))
                    D_ll[li, lj] = D_ll[lj, li] = landmark_mds.pairs_in_chunks(f, li, lj, self._stopping)
                    frame, R, t = landmark_mds.frame_onto(D_ll, positions)
                    self._frames[kind] = (memo_key, (frame, R, t))
                rows = np.repeat(np.arange(k), len(new))
                cols = k + np.tile(np.arange(len(new)), k)
                D_lx = landmark_mds.pairs_in_chunks(f, rows, cols, self._stopping).reshape(k, len(new))
                X[new] = landmark_mds.place_on_landmarks(frame, R, t, positions, D_lx)
                if kind not in STRUCTURAL_KINDS:
                    # the new models only, against random partners among a fixed sample of the old
                    # ones (so the cost does not grow with n: nothing else is packed)
                    rng = np.random.default_rng(len(uniq))
                    is_new = np.zeros(n, dtype=bool)
                    is_new[new] = True
                    olds = np.flatnonzero(~is_new)
                    sample = rng.choice(olds, size=min(len(olds), REFINE_SAMPLE), replace=False)
                    sub = np.concatenate([np.asarray(new, dtype=np.int64), sample])
                    f = self._pair_function(kind, [uniq[i] for i in sub], content)
                    rounds, partners = self._refine_budget(len(new), self._packed_bytes(content, uniq[0]))
                    movable = np.zeros(len(sub), dtype=bool)
                    movable[:len(new)] = True
                    X[new] = landmark_mds.stochastic_refine(X[sub], f, rounds, partners, movable, 0,
                                                            self._stopping)[:len(new)]
            stress, landmarks = previous.stress, tuple(lm_keys)
        else:
            L, rows, f = self._landmark_rows(kind, uniq, content)
            rounds, partners = (0, 0) if f is None else self._refine_budget(n, self._packed_bytes(content, uniq[0]))
            lay = landmark_mds.landmark_layout(f, n, len(L), landmark_rows=(L, rows), refine_iter=rounds,
                                               refine_partners=partners, should_stop=self._stopping)
            X, stress, landmarks = lay.coords, lay.stress, tuple(uniq[i] for i in L)
            common = [i for i, k in enumerate(uniq) if k in old]
            if common:
                R, t = procrustes_align(X[common], np.array([old[uniq[i]] for i in common]))
                X = X @ R + t
        where = {k: i for i, k in enumerate(uniq)}
        coords = X[[where[k] for k in keys]]
        return _Layout(ids=tuple(ids), keys=tuple(keys), coords=coords, stress=stress, landmarks=landmarks)

    def _compute(self, kind: str, items, previous: _Layout) -> _Layout:
        ids, keys, content = self._contents(kind, items)
        uniq = list(dict.fromkeys(keys))
        if not uniq:
            return _Layout(stress=None)
        if len(uniq) > self.exact_max:
            return self._compute_landmarks(kind, ids, keys, uniq, content, previous)
        D = self._distances(kind, uniq, content)
        init = np.full((len(uniq), 2), np.nan)
        old = {k: xy for k, xy in zip(previous.keys, previous.coords)}
        for i, k in enumerate(uniq):
            if k in old:
                init[i] = old[k]
        has_old = bool(np.isfinite(init).all(axis=1).any())
        mds = StableMDS(**self.mds_params)
        mds.fit(D, init=init if has_old else None, should_stop=self._stopping)
        where = {k: i for i, k in enumerate(uniq)}
        coords = mds.embedding_[[where[k] for k in keys]]
        return _Layout(ids=tuple(ids), keys=tuple(keys), coords=coords, stress=float(mds.stress_))

    # -- persisted layouts --------------------------------------------------------------
    def _save_layout(self, key, lay: _Layout, requested: frozenset) -> None:
        from remap_tb.atomic import atomic_write_json

        experiment_id, kind = key
        record = {"format": "remap-layout", "format_version": 1, "experiment": experiment_id,
                  "kind": kind, "structural_normalised": kind == "structural_normalised",
                  "version": lay.version, "stress": lay.stress, "ids": list(lay.ids),
                  "keys": list(lay.keys), "x": lay.coords[:, 0].tolist(), "y": lay.coords[:, 1].tolist(),
                  "requested": sorted(requested)}
        if lay.landmarks:
            record["landmarks"] = list(lay.landmarks)
        try:
            atomic_write_json(_layout_file(self.state_dir, experiment_id, kind), record, indent=None)
        except OSError:
            logger.exception("could not save the layout of %s/%s", experiment_id, kind)

    def _load_layout(self, key, slot: _Slot) -> None:
        if self.state_dir is None:
            return
        from remap_tb.atomic import read_json

        experiment_id, kind = key
        path = _layout_file(self.state_dir, experiment_id, kind)
        if not os.path.exists(path):
            return
        try:
            rec = read_json(path)
            if (rec.get("format") != "remap-layout" or rec.get("format_version") != 1
                    or rec.get("experiment") != experiment_id or rec.get("kind") != kind
                    or kind in STRUCTURAL_KINDS
                    and rec.get("structural_normalised") != (kind == "structural_normalised")):
                raise ValueError("another format, experiment or distance")
            ids, keys = [str(i) for i in rec["ids"]], [str(k) for k in rec["keys"]]
            coords = np.column_stack([np.asarray(rec["x"], dtype=np.float64),
                                      np.asarray(rec["y"], dtype=np.float64)])
            if not (len(ids) == len(keys) == len(coords)) or not np.all(np.isfinite(coords)):
                raise ValueError("inconsistent lengths or non-finite coordinates")
            stress = rec.get("stress")
            landmarks = tuple(str(k) for k in rec.get("landmarks", ()))
            if not set(landmarks) <= set(keys):
                raise ValueError("landmarks that are not in the layout")
            lay = _Layout(version=int(rec["version"]), ids=tuple(ids), keys=tuple(keys), coords=coords,
                          stress=None if stress is None else float(stress), landmarks=landmarks)
        except Exception as exc:
            logger.warning("ignoring saved layout %s: %s", path, exc)
            return
        slot.layout = lay.publish()
        slot.finished_ids = frozenset(str(i) for i in rec.get("requested", ids))


def default_state_dir(logdir: str) -> str:
    """Where the service keeps its caches for ``logdir``: ``<logdir>/.remap/cache``."""
    return os.path.join(logdir, ".remap", "cache")
