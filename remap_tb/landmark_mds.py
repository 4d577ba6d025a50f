r"""Landmark MDS: 2-D maps of many models without an n x n distance matrix.

Above ``projection.EXACT_MAX`` distinct models the exact map (full matrix, SMACOF on
all pairs) costs O(n^2) distances and memory. Here a map needs the distances from every
model to k landmarks (k ~ 100), O(k n):

1. :func:`random_landmarks` (used) or :func:`maxmin_landmarks` (de Silva & Tenenbaum
   2004, section 3.3) -- the landmarks and their (k, n) distance rows;
2. :func:`landmark_frame` -- classical (Torgerson) scaling of the k x k landmark
   distances and the pseudo-inverse that triangulates the rest;
3. :func:`triangulate` -- distance-based triangulation (de Silva & Tenenbaum 2004,
   eq. 4): :math:`\vec x_a = -\tfrac12 L_k^\# (\vec\delta_a - \vec\delta_\mu)`;
4. :func:`frame_onto` + :func:`place_on_landmarks` -- the triangulated points moved into
   the landmarks' metric-MDS positions and each point's stress against the fixed
   landmarks lowered by one-point Guttman updates;
5. :func:`stochastic_refine` -- optional: the full stress lowered with SMACOF updates
   estimated on random partners (for cheap distances far from 2-D: the prediction map).

:func:`landmark_layout` chains them; the projection service places new models with
steps 3-5 against a previous layout's landmarks. :func:`majorise` (localized stress
majorisation over a sparse pair set; Gansner, Koren & North, GD 2004) is the tool the
design was measured with (neighbour pairs did not help: docs/ARCHITECTURE.md, "Maps at
scale"). All functions are pure; distances come from a caller's
``pair_distances(rows, cols)``, so the structural (OTMANN) and prediction (bit-packed
Hamming) maps share the code.

Reference: V. de Silva and J. B. Tenenbaum, "Sparse multidimensional scaling using
landmark points", technical report, Stanford University, 2004.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

#: pair_distances(rows, cols) -> distances of the pairs (rows[p], cols[p]), shape (P,)
PairDistances = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: Pairs handed to ``pair_distances`` per call (bounds its temporaries).
PAIR_CHUNK = 1 << 18


from remap_tb.projection import Interrupted  # noqa: E402  (raised when should_stop() is True)


def _poll(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise Interrupted()


def pairs_in_chunks(pair_distances: PairDistances, rows: np.ndarray, cols: np.ndarray,
                    should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """``pair_distances`` over many pairs, :data:`PAIR_CHUNK` at a time, checked: float64,
    finite and non-negative (ValueError otherwise)."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    out = np.empty(len(rows))
    for s in range(0, len(rows), PAIR_CHUNK):
        _poll(should_stop)
        part = np.asarray(pair_distances(rows[s:s + PAIR_CHUNK], cols[s:s + PAIR_CHUNK]), dtype=np.float64)
        if part.shape != (min(PAIR_CHUNK, len(rows) - s),):
            raise ValueError(f"pair_distances returned shape {part.shape}")
        if not np.all(np.isfinite(part)) or np.any(part < 0):
            raise ValueError("pair_distances returned negative or non-finite distances")
        out[s:s + PAIR_CHUNK] = part
    return out


def maxmin_landmarks(pair_distances: PairDistances, n: int, k: int, random_state=0,
                     should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Choose ``k`` of ``n`` points by maxmin and return their distance rows.

    The first landmark is drawn at random; each next one maximises the distance to the
    nearest landmark chosen so far,

    .. math:: \ell_{t+1} = \arg\max_a \min_{s \le t} d(a, \ell_s)

    (de Silva & Tenenbaum 2004, section 3.3: maxmin spreads the landmarks over the
    data, which the triangulation needs). Ties and duplicates: once every point is at
    distance 0 from a landmark the remaining choices are drawn at random among points
    not yet chosen.

    Parameters
    ----------
    pair_distances : callable (rows, cols) -> (P,)
    n : int
        Number of points.
    k : int
        Landmarks wanted; ``min(k, n)`` are returned.
    random_state : int or np.random.Generator
    should_stop : callable () -> bool, optional
        Polled between rows; True raises :class:`Interrupted`.

    Returns
    -------
    (landmarks, rows) : np.ndarray int64 (k,), np.ndarray float64 (k, n)
        ``rows[t, a]`` is the distance from landmark ``t`` to point ``a``.
    """
    if n < 1 or k < 1:
        raise ValueError(f"need n >= 1 and k >= 1, got n={n}, k={k}")
    k = min(int(k), int(n))
    rng = np.random.default_rng(random_state)
    everyone = np.arange(n)
    chosen = np.empty(k, dtype=np.int64)
    rows = np.empty((k, n))
    nearest = np.full(n, np.inf)
    taken = np.zeros(n, dtype=bool)
    nxt = int(rng.integers(n))
    for t in range(k):
        chosen[t] = nxt
        taken[nxt] = True
        rows[t] = pairs_in_chunks(pair_distances, np.full(n, nxt), everyone, should_stop)
        rows[t, nxt] = 0.0
        np.minimum(nearest, rows[t], out=nearest)
        score = np.where(taken, -1.0, nearest)
        if t + 1 < k:
            if score.max() > 0:
                nxt = int(np.argmax(score))
            else:
                nxt = int(rng.choice(np.flatnonzero(~taken)))
    return chosen, rows


@dataclass(frozen=True)
class LandmarkFrame:
    r"""Classical scaling of the landmarks, ready to triangulate other points.

    ``coords`` (k, dims): :math:`L_k = (\sqrt{\lambda_1} \vec v_1, \dots)` transposed;
    ``pinv`` (dims, k): :math:`L_k^\# = (\vec v_1 / \sqrt{\lambda_1}, \dots)^\top`;
    ``mean_sq`` (k,): :math:`\vec\delta_\mu`, the mean of the squared landmark distance
    columns; ``eigenvalues`` (dims,) the positive eigenvalues used (fewer axes than asked
    when the landmark distances have fewer positive ones).
    """

    coords: np.ndarray
    pinv: np.ndarray
    mean_sq: np.ndarray
    eigenvalues: np.ndarray


def landmark_frame(D_ll: np.ndarray, dims: int = 2) -> LandmarkFrame:
    r"""Classical MDS of the (k, k) landmark distances (de Silva & Tenenbaum 2004, step 1).

    .. math::

        B_k = -\tfrac12 H_k \Delta_k H_k, \quad H_k = I - \tfrac1k \mathbf 1 \mathbf 1^\top,
        \qquad B_k = \sum_i \lambda_i \vec v_i \vec v_i^\top

    with :math:`\Delta_k` the squared distances. Keeps the ``dims`` largest eigenvalues
    that are positive (relative to the largest, above 1e-10). Axis signs are fixed as in
    ``projection.classical_mds`` (largest-magnitude coordinate positive).

    Examples
    --------
    >>> P = np.array([[0., 0.], [3., 0.], [0., 4.]])
    >>> D = np.linalg.norm(P[:, None] - P[None], axis=2)
    >>> f = landmark_frame(D)
    >>> np.allclose(np.linalg.norm(f.coords[:, None] - f.coords[None], axis=2), D)
    True
    """
    D = np.asarray(D_ll, dtype=np.float64)
    k = D.shape[0]
    if D.ndim != 2 or D.shape != (k, k) or k < 1:
        raise ValueError(f"D_ll must be a square (k, k) matrix, got shape {D.shape}")
    if not np.all(np.isfinite(D)) or np.any(D < 0):
        raise ValueError("D_ll must be finite and non-negative")
    sq = ((D + D.T) / 2) ** 2
    mean_sq = sq.mean(axis=0)
    B = sq - mean_sq[None, :] - sq.mean(axis=1)[:, None] + sq.mean()
    B *= -0.5
    w, V = np.linalg.eigh(B)
    order = np.argsort(w)[::-1]
    w, V = w[order], V[:, order]
    top = w[0] if k and w[0] > 0 else 0.0
    keep = [i for i in range(min(dims, k)) if top > 0 and w[i] > 1e-10 * top]
    w, V = w[keep], V[:, keep]
    if len(keep):
        big = np.argmax(np.abs(V), axis=0)
        V = V * np.sign(V[big, np.arange(len(keep))])
    coords = np.zeros((k, dims))
    coords[:, :len(keep)] = V * np.sqrt(w)
    pinv = np.zeros((dims, k))
    pinv[:len(keep)] = (V / np.sqrt(w)).T
    return LandmarkFrame(coords=coords, pinv=pinv, mean_sq=mean_sq, eigenvalues=w)


def triangulate(frame: LandmarkFrame, D_lx: np.ndarray) -> np.ndarray:
    r"""Place points from their distances to the landmarks (de Silva & Tenenbaum 2004, eq. 4).

    .. math:: \vec x_a = -\tfrac12 L_k^\# (\vec\delta_a - \vec\delta_\mu)

    with :math:`\vec\delta_a` the squared distances from point a to the k landmarks.
    Exact (up to the frame's rigid motion) for points of a Euclidean space spanned by the
    landmarks; a landmark triangulates onto its own ``frame.coords`` row.

    Parameters
    ----------
    frame : LandmarkFrame
    D_lx : np.ndarray, shape (k, q)
        Distances from the k landmarks to q points.

    Returns
    -------
    np.ndarray, float64, shape (q, dims)
    """
    D = np.asarray(D_lx, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != frame.pinv.shape[1]:
        raise ValueError(f"D_lx must have shape ({frame.pinv.shape[1]}, q), got {D.shape}")
    return (-0.5 * frame.pinv @ (D ** 2 - frame.mean_sq[:, None])).T


def majorise(X: np.ndarray, i: np.ndarray, j: np.ndarray, d: np.ndarray, w: np.ndarray | None = None,
             n_iter: int = 30, movable: np.ndarray | None = None,
             should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    r"""Localized stress majorisation over a sparse set of pairs.

    Lowers :math:`\sigma(X) = \sum_{(i,j) \in E} w_{ij} (\lVert x_i - x_j \rVert - d_{ij})^2`
    by updating every movable point at once (a Jacobi sweep of Gansner, Koren & North
    2004, eq. 6):

    .. math::

        x_i \leftarrow \frac{\sum_{j:(i,j) \in E} w_{ij}
              \bigl(x_j + d_{ij} \tfrac{x_i - x_j}{\lVert x_i - x_j \rVert}\bigr)}
              {\sum_{j:(i,j) \in E} w_{ij}}

    (the term is :math:`x_j` when the two coincide). With the others fixed, one point's
    update is the Guttman transform of its own stress and never raises it; this is how
    new models are placed (``movable`` = the new ones).

    Parameters
    ----------
    X : np.ndarray, shape (n, dims)
        Start; not modified.
    i, j : np.ndarray int, shape (P,)
        Pairs (each unordered pair once; both ends are updated).
    d : np.ndarray, shape (P,)
        Target distances.
    w : np.ndarray, shape (P,), optional
        Weights (default 1).
    n_iter : int
    movable : np.ndarray bool, shape (n,), optional
        Points allowed to move (default all).
    should_stop : callable, optional

    Returns
    -------
    np.ndarray float64 (n, dims)
    """
    X = np.array(X, dtype=np.float64)
    n = X.shape[0]
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    d = np.asarray(d, dtype=np.float64)
    w = np.ones(len(i)) if w is None else np.asarray(w, dtype=np.float64)
    if not (i.shape == j.shape == d.shape == w.shape):
        raise ValueError("i, j, d and w must have one length")
    mov = np.ones(n, dtype=bool) if movable is None else np.asarray(movable, dtype=bool)
    # each pair, seen from each end that may move
    a = np.concatenate([i, j])
    b = np.concatenate([j, i])
    keep = mov[a]
    a, b = a[keep], b[keep]
    dd, ww = np.concatenate([d, d])[keep], np.concatenate([w, w])[keep]
    wsum = np.bincount(a, weights=ww, minlength=n)
    upd = wsum > 0
    dims = X.shape[1]
    for _ in range(int(n_iter)):
        _poll(should_stop)
        diff = X[a] - X[b]
        dist = np.sqrt(np.einsum("pk,pk->p", diff, diff))
        scale = np.divide(dd, dist, out=np.zeros_like(dist), where=dist > 0)
        term = X[b] + scale[:, None] * diff
        new = np.empty_like(X)
        for c in range(dims):
            new[:, c] = np.bincount(a, weights=ww * term[:, c], minlength=n)
        X[upd] = new[upd] / wsum[upd, None]
    return X


def sparse_stress1(X: np.ndarray, i: np.ndarray, j: np.ndarray, d: np.ndarray) -> float:
    r"""Kruskal's Stress-1 over the given pairs:
    :math:`\sqrt{\sum (\lVert x_i - x_j\rVert - d_{ij})^2 / \sum d_{ij}^2}`."""
    diff = np.asarray(X)[i] - np.asarray(X)[j]
    dist = np.sqrt(np.einsum("pk,pk->p", diff, diff))
    den = float(np.sum(np.square(d)))
    return float(np.sqrt(np.sum((dist - d) ** 2) / den)) if den > 0 else 0.0


def random_landmarks(pair_distances: PairDistances, n: int, k: int, random_state=0,
                     should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``min(k, n)`` landmarks drawn uniformly without replacement (seeded) and their
    (k, n) distance rows, in chunks of :data:`PAIR_CHUNK` pairs. Same return as
    :func:`maxmin_landmarks`."""
    if n < 1 or k < 1:
        raise ValueError(f"need n >= 1 and k >= 1, got n={n}, k={k}")
    k = min(int(k), int(n))
    chosen = np.sort(np.random.default_rng(random_state).choice(n, size=k, replace=False))
    rows = pairs_in_chunks(pair_distances, np.repeat(chosen, n), np.tile(np.arange(n), k), should_stop)
    rows = rows.reshape(k, n)
    rows[np.arange(k), chosen] = 0.0
    return chosen.astype(np.int64), rows


def frame_onto(D_ll: np.ndarray, positions: np.ndarray, dims: int = 2) -> tuple[LandmarkFrame, np.ndarray, np.ndarray]:
    """The landmarks' classical frame and the rigid motion (R, t) that maps its first two
    axes onto the landmarks' given ``positions`` (orthogonal Procrustes, no scaling)."""
    from remap_tb.projection import procrustes_align

    frame = landmark_frame(D_ll, dims)
    R, t = procrustes_align(frame.coords[:, :positions.shape[1]], positions)
    return frame, R, t


def place_on_landmarks(frame: LandmarkFrame, R: np.ndarray, t: np.ndarray, positions: np.ndarray,
                       D_lx: np.ndarray, n_iter: int = 30) -> np.ndarray:
    r"""Points placed from their distances ``D_lx`` (k, q) to landmarks fixed at ``positions`` (k, 2):
    :func:`triangulate`, moved by (R, t) into the landmarks' layout, then each point's own
    stress against the landmarks, :math:`\sum_l (\lVert x - y_l \rVert - d_l)^2`, lowered by
    ``n_iter`` one-point Guttman updates (``projection.place_points``). Returns (q, 2)."""
    from remap_tb.projection import place_points

    start = triangulate(frame, D_lx)[:, :positions.shape[1]] @ R + t
    return place_points(np.asarray(D_lx, dtype=np.float64).T, positions, start, n_iter)


def stochastic_refine(X: np.ndarray, pair_distances: PairDistances, n_iter: int = 30, n_partners: int = 50,
                      movable: np.ndarray | None = None, random_state=0,
                      should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    r"""Lower the stress over *all* pairs with sampled Guttman transforms.

    The SMACOF update of point i (unit weights, centred X; de Leeuw 1977) can be written

    .. math:: x_i \leftarrow x_i + \frac1n \sum_{j} (d_{ij} - \delta_{ij})
              \frac{x_i - x_j}{\delta_{ij}}, \qquad \delta_{ij} = \lVert x_i - x_j \rVert ,

    a step along minus the gradient of the full stress. Here the mean over all j is
    estimated on ``n_partners`` partners drawn afresh every iteration (the residual
    form keeps the estimate's noise proportional to the misfit, not to the distances),
    with the step shrinking as 1 / t over the second half and the iterates of that half
    averaged (Polyak averaging), as in stochastic-gradient stress minimisation (Zheng,
    Pawar & Goodman, "Graph drawing by stochastic gradient descent", IEEE TVCG 25(9),
    2019). Costs ``n_iter * n_partners`` distances per movable point.

    Parameters
    ----------
    X : np.ndarray (n, dims)
    pair_distances : callable (rows, cols) -> (P,)
    n_iter, n_partners : int
    movable : np.ndarray bool (n,), optional
        Only these points move (partners are drawn among all); default all, and then the
        layout stays centred.
    random_state : int
    should_stop : callable, optional

    Returns
    -------
    np.ndarray float64 (n, dims)
    """
    X = np.array(X, dtype=np.float64)
    n = X.shape[0]
    mov = np.arange(n) if movable is None else np.flatnonzero(np.asarray(movable, dtype=bool))
    if n < 2 or len(mov) == 0 or n_iter < 1 or n_partners < 1:
        return X
    rng = np.random.default_rng(random_state)
    half = max(1, int(n_iter) // 2)
    total = np.zeros_like(X)
    averaged = 0
    for t in range(int(n_iter)):
        _poll(should_stop)
        i = np.repeat(mov, int(n_partners))
        j = rng.integers(0, n - 1, len(i))
        j += j >= i                                       # never a point with itself
        d = pairs_in_chunks(pair_distances, i, j, should_stop)
        diff = X[i] - X[j]
        dist = np.sqrt(np.einsum("pk,pk->p", diff, diff))
        coef = np.divide(d - dist, dist, out=np.zeros_like(dist), where=dist > 0)
        step = np.zeros_like(X)
        for c in range(X.shape[1]):
            step[:, c] = np.bincount(i, weights=coef * diff[:, c], minlength=n)
        eta = 1.0 if t < half else half / (t + 1)
        X[mov] += eta * step[mov] / n_partners
        if movable is None:
            X -= X.mean(axis=0)
        if t >= half:
            total += X
            averaged += 1
    if averaged:
        X[mov] = total[mov] / averaged
    return X


@dataclass
class LandmarkLayout:
    """What :func:`landmark_layout` returns."""

    coords: np.ndarray          # (n, 2)
    landmarks: np.ndarray       # (k,) point indices
    landmark_rows: np.ndarray   # (k, n) distances landmark -> point
    stress: float               # Stress-1 over the landmark pairs
    timings: dict               # seconds per step


def landmark_layout(pair_distances: PairDistances | None, n: int, n_landmarks: int = 100, n_iter: int = 30,
                    selection: str = "random", random_state=0, landmark_rows: tuple | None = None,
                    refine_iter: int = 0, refine_partners: int = 50,
                    should_stop: Callable[[], bool] | None = None) -> LandmarkLayout:
    r"""A 2-D metric-MDS layout of ``n`` points from their distances to k landmarks.

    Steps (de Silva & Tenenbaum 2004, plus a local refinement): choose k landmarks
    (:func:`random_landmarks`, or :func:`maxmin_landmarks`) with their (k, n) rows ->
    metric MDS of the k x k landmark distances (``projection.StableMDS``: classical
    start, SMACOF) -> every other point triangulated in the landmarks' classical frame,
    rotated onto their SMACOF positions (:func:`frame_onto`) -> each point's stress
    against the fixed landmarks lowered by ``n_iter`` Guttman updates
    (:func:`place_on_landmarks`) -> optionally ``refine_iter`` rounds of
    :func:`stochastic_refine` with ``refine_partners`` random partners per point.
    Cost: k n (+ refine_iter refine_partners n) distances, O(k n n_iter) arithmetic,
    O(k n) memory.

    Why random and no neighbour terms (measured on 2,000 sampler specs against the exact
    map, see ``benchmarks/scale_quality.py``): maxmin picks the outliers of the
    heavy-tailed OTMANN distances and the map's stress rises to 2.4-2.6x the exact
    one (random: 1.04-1.10x); adding exact distances to candidate neighbours, or to
    random partners, pulled points towards local distances that the exact 2-D map does
    not keep either, and raised the stress while lowering the agreement of the two
    maps' nearest neighbours.

    Parameters
    ----------
    pair_distances : callable (rows, cols) -> (P,) distances
    n : int
    n_landmarks : int, default 100
    n_iter : int, default 30
    selection : {"random", "maxmin"}
    random_state : int
    landmark_rows : (landmarks, rows), optional
        Landmarks and their (k, n) rows already computed (both structural maps share
        one OTMANN pass).
    refine_iter, refine_partners : int
        :func:`stochastic_refine` after the placement (0: none). Worth it where distances
        are cheap and far from 2-D: on the prediction (Hamming) map of 2,000 models it
        took the stress from 1.43x to 1.01x the exact map's; on the OTMANN map (already
        1.10x) it gained little for its cost.
    should_stop : callable, optional

    Returns
    -------
    LandmarkLayout
    """
    import time

    from remap_tb.projection import StableMDS

    if selection not in ("random", "maxmin"):
        raise ValueError(f"selection must be 'random' or 'maxmin', got {selection!r}")
    times = {}
    t0 = time.perf_counter()
    if landmark_rows is None:
        choose = random_landmarks if selection == "random" else maxmin_landmarks
        L, R = choose(pair_distances, n, n_landmarks, random_state, should_stop)
    else:
        L, R = np.asarray(landmark_rows[0], dtype=np.int64), np.asarray(landmark_rows[1], dtype=np.float64)
    times["landmark_rows"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    D_ll = R[:, L]
    D_ll = (D_ll + D_ll.T) / 2
    np.fill_diagonal(D_ll, 0.0)
    mds = StableMDS(random_state=0).fit(D_ll, should_stop=should_stop)
    positions = mds.embedding_
    frame, Rot, t = frame_onto(D_ll, positions)
    times["landmark_mds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _poll(should_stop)
    X = place_on_landmarks(frame, Rot, t, positions, R, n_iter)
    X[L] = positions
    times["placement"] = time.perf_counter() - t0
    if refine_iter > 0:
        if pair_distances is None:
            raise ValueError("refine_iter needs pair_distances")
        t0 = time.perf_counter()
        X = stochastic_refine(X, pair_distances, refine_iter, refine_partners, None, random_state, should_stop)
        times["refine"] = time.perf_counter() - t0
    li = np.repeat(np.arange(len(L)), n)
    lj = np.tile(np.arange(n), len(L))
    off = L[li] != lj
    stress = sparse_stress1(X, L[li[off]], lj[off], R.reshape(-1)[off])
    return LandmarkLayout(coords=X, landmarks=L, landmark_rows=R, stress=stress, timings=times)
