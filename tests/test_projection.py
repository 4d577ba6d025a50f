"""Stable MDS projections and the background ProjectionService."""

import os
import threading
import time

import numpy as np
import pytest
from sklearn.manifold import smacof as sklearn_smacof

from remap_tb.projection import (
    ProjectionService,
    StableMDS,
    check_distance_matrix,
    classical_mds,
    place_points,
    procrustes_align,
    smacof,
)


def pairwise(X):
    return np.linalg.norm(X[:, None, :] - X[None, :, :], axis=2)


def rotation(theta):
    return np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])


def rigid_residual(X, Y):
    """RMS distance left after the best rigid motion of X onto Y."""
    R, t = procrustes_align(X, Y)
    return float(np.sqrt(np.mean(np.sum((X @ R + t - Y) ** 2, axis=1))))


# A planar configuration: a 5 x 4 grid, stretched, with one point off-grid.
PLANAR = np.array([[3.0 * i, 2.0 * j] for i in range(5) for j in range(4)] + [[4.5, 7.0]])


# --------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------
def test_procrustes_recovers_rotation_reflection_and_translation():
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(30, 2))
    for R_true in (rotation(2.0), rotation(-0.7) @ np.diag([1.0, -1.0])):
        X = Y @ R_true + np.array([10.0, -4.0])
        R, t = procrustes_align(X, Y)
        np.testing.assert_allclose(X @ R + t, Y, atol=1e-10)
        np.testing.assert_allclose(R @ R.T, np.eye(2), atol=1e-12)


def test_procrustes_rotation_only_and_no_scaling():
    rng = np.random.default_rng(1)
    Y = rng.normal(size=(20, 2))
    mirrored = Y @ np.diag([1.0, -1.0])
    R, _ = procrustes_align(mirrored, Y, allow_reflection=False)
    assert np.linalg.det(R) == pytest.approx(1.0)
    R, t = procrustes_align(2.0 * Y, Y)                  # a scaled copy is not undone
    np.testing.assert_allclose(R @ R.T, np.eye(2), atol=1e-12)
    assert rigid_residual(2.0 * Y, Y) > 0.5


def test_procrustes_degenerate_cases_pick_a_rotation():
    R, t = procrustes_align(np.array([[1.0, 1.0]]), np.array([[5.0, 6.0]]))
    np.testing.assert_array_equal(R, np.eye(2))
    np.testing.assert_allclose(t, [4.0, 5.0])
    line = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    R, t = procrustes_align(line, line @ rotation(0.5) + 1)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(line @ R + t, line @ rotation(0.5) + 1, atol=1e-12)
    with pytest.raises(ValueError):
        procrustes_align(np.zeros((3, 2)), np.zeros((4, 2)))


def test_classical_mds_is_exact_on_euclidean_distances():
    for n_extra in (0, 400):                             # dense and Lanczos eigensolvers
        rng = np.random.default_rng(2)
        P = np.vstack([PLANAR, rng.uniform(0, 12, size=(n_extra, 2))])
        X = classical_mds(pairwise(P), 2)
        np.testing.assert_allclose(pairwise(X), pairwise(P), atol=1e-8)


def test_smacof_iterates_equal_scikit_learn():
    rng = np.random.default_rng(3)
    D = pairwise(rng.normal(size=(40, 4)))
    X0 = rng.normal(size=(40, 2))
    ours, raw, n_iter = smacof(D, X0, max_iter=12, eps=0)
    theirs, their_raw = sklearn_smacof(D, init=X0, n_init=1, max_iter=12, eps=0, normalized_stress=False)
    assert n_iter == 12
    np.testing.assert_allclose(ours, theirs, atol=1e-10)
    assert raw == pytest.approx(their_raw, rel=1e-9)
    ours32, raw32, _ = smacof(D.astype(np.float32), X0, max_iter=12, eps=0)
    np.testing.assert_allclose(ours32, theirs, atol=1e-4 * np.abs(theirs).max())


def test_place_points_finds_a_point_from_its_distances():
    X_old = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0], [4.0, 3.0]])
    target = np.array([[1.0, 2.0]])
    D = pairwise(np.vstack([target, X_old]))[:1, 1:]
    P = place_points(D, X_old, np.array([[0.5, 0.5]]), n_iter=200)
    np.testing.assert_allclose(P, target, atol=1e-6)


def test_bad_matrices_raise_value_error():
    for bad, match in ((np.zeros((2, 3)), "square"), (np.array([[0, -1.0], [-1, 0]]), "negative"),
                       (np.array([[0, np.nan], [np.nan, 0]]), "NaN"), (np.array([[0, 1.0], [2, 0]]), "symmetric")):
        with pytest.raises(ValueError, match=match):
            check_distance_matrix(bad)
        with pytest.raises(ValueError, match=match):
            StableMDS().fit(bad)
    D = check_distance_matrix(np.array([[5.0, 1.0], [1.0, 5.0]]))
    np.testing.assert_array_equal(np.diag(D), 0)
    with pytest.raises(ValueError, match="init"):
        StableMDS().fit(pairwise(PLANAR), init=np.zeros((3, 2)))
    half_nan = np.zeros((len(PLANAR), 2))
    half_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        StableMDS().fit(pairwise(PLANAR), init=half_nan)
    with pytest.raises(ValueError, match="max_iter"):
        StableMDS(max_iter=-1).fit(pairwise(PLANAR))


# --------------------------------------------------------------------------------------
# StableMDS
# --------------------------------------------------------------------------------------
def test_embeds_distances_not_rows():
    """Regression: REMAP's prototype called MDS without "precomputed" and embedded the
    rows of the distance matrix as feature vectors. A planar configuration must come
    back up to a rigid motion, with its distances."""
    D = pairwise(PLANAR)
    mds = StableMDS().fit(D)
    assert rigid_residual(mds.embedding_, PLANAR) < 1e-4
    np.testing.assert_allclose(pairwise(mds.embedding_), D, atol=1e-4)
    assert mds.stress_ < 1e-5 and mds.warm_start_ is False
    rows_as_features = StableMDS().fit(pairwise(D))       # what the prototype effectively did
    assert rigid_residual(rows_as_features.embedding_, PLANAR) > 1.0


def test_small_and_trivial_inputs():
    assert StableMDS().fit(np.zeros((0, 0))).embedding_.shape == (0, 2)
    np.testing.assert_array_equal(StableMDS().fit(np.zeros((1, 1))).embedding_, [[0.0, 0.0]])
    one = StableMDS().fit(np.zeros((1, 1)), init=np.array([[3.0, 4.0]]))
    np.testing.assert_array_equal(one.embedding_, [[3.0, 4.0]])
    two = StableMDS().fit(np.array([[0.0, 2.0], [2.0, 0.0]]))
    assert np.linalg.norm(two.embedding_[0] - two.embedding_[1]) == pytest.approx(2.0)


def population(n_old=200, n_new=10, seed=4):
    """Distances of points in a noisy 4-D cloud (not exactly embeddable in 2-D)."""
    rng = np.random.default_rng(seed)
    P = rng.normal(size=(n_old + n_new, 4)) * [3.0, 2.0, 1.0, 0.5]
    return pairwise(P)


def test_adding_points_moves_old_points_little():
    D = population()
    old = StableMDS().fit(D[:200, :200])
    init = np.full((210, 2), np.nan)
    init[:200] = old.embedding_
    new = StableMDS().fit(D, init=init)
    assert new.warm_start_
    rms = np.sqrt(np.mean(np.sum((old.embedding_ - old.embedding_.mean(0)) ** 2, axis=1)))
    moved = np.linalg.norm(new.embedding_[:200] - old.embedding_, axis=1)
    assert moved.mean() / rms < 0.03
    cold = StableMDS(random_state=1).fit(D)             # a fresh fit is a different picture
    cold_moved = np.linalg.norm(cold.embedding_[:200] - old.embedding_, axis=1).mean()
    assert moved.mean() < cold_moved / 3
    assert new.stress_ < 1.05 * cold.stress_             # and the warm fit is as good


def test_warm_update_with_all_points_known_keeps_a_converged_layout():
    D = pairwise(PLANAR)
    first = StableMDS().fit(D)
    again = StableMDS().fit(D, init=first.embedding_ @ rotation(1.0) + 7)
    np.testing.assert_allclose(again.embedding_, first.embedding_ @ rotation(1.0) + 7, atol=1e-5)


def test_mostly_new_points_fall_back_to_an_aligned_cold_fit():
    D = pairwise(PLANAR)
    init = np.full((len(PLANAR), 2), np.nan)
    init[:4] = PLANAR[:4] + 100
    mds = StableMDS().fit(D, init=init)
    assert not mds.warm_start_
    np.testing.assert_allclose(mds.embedding_, PLANAR + 100, atol=1e-3)


# --------------------------------------------------------------------------------------
# ProjectionService
# --------------------------------------------------------------------------------------
def predictions(n, m=300, seed=5):
    """Label vectors of n models that are noisy copies of a few 'families'."""
    rng = np.random.default_rng(seed)
    families = rng.integers(0, 10, size=(4, m))
    out = []
    for i in range(n):
        p = families[i % 4].copy()
        flip = rng.random(m) < 0.1 + 0.02 * (i % 7)
        p[flip] = rng.integers(0, 10, size=int(flip.sum()))
        out.append(p.astype(np.int16))
    return [(f"m{i}", p) for i, p in enumerate(out)]


def coords(result):
    return {p["id"]: (p["x"], p["y"]) for p in result["points"]}


def test_service_computes_in_background_and_versions_increase():
    items = predictions(30)
    with ProjectionService(None) as svc:
        first = svc.layout("exp", "posthoc", items[:25])
        assert first == {"version": 0, "computing": True, "points": [], "stress": None, "error": None}
        assert svc.wait_idle(10)
        done = svc.layout("exp", "posthoc", items[:25])
        assert done["version"] == 1 and not done["computing"]
        assert sorted(coords(done)) == sorted(i for i, _ in items[:25])
        assert 0 <= done["stress"] < 0.5
        assert svc.layout("exp", "posthoc", list(reversed(items[:25])))["computing"] is False  # same set
        grown = svc.layout("exp", "posthoc", items)
        assert grown["version"] == 1 and grown["computing"]
        assert svc.wait_idle(10)
        latest = svc.layout("exp", "posthoc", items)
        assert latest["version"] == 2 and len(latest["points"]) == 30
        before, after = coords(done), coords(latest)
        spread = np.sqrt(np.mean([x * x + y * y for x, y in before.values()]))
        moved = np.mean([np.hypot(after[k][0] - x, after[k][1] - y) for k, (x, y) in before.items()])
        assert moved / spread < 0.1
        assert svc.layout("other", "posthoc", items[:3])["version"] == 0   # per experiment
    assert not svc.running


def test_service_coalesces_requests():
    items = predictions(12)
    svc = ProjectionService(None)
    gate, started, computed = threading.Event(), threading.Event(), []
    real = svc._compute

    def slow(kind, its, previous):
        computed.append(len(its))
        started.set()
        gate.wait(10)
        return real(kind, its, previous)

    svc._compute = slow
    try:
        svc.layout("e", "posthoc", items[:4])
        assert started.wait(10)                          # the worker is busy with 4 items
        for k in range(5, 13):                           # 8 newer requests while it works
            assert svc.layout("e", "posthoc", items[:k])["computing"]
        gate.set()
        assert svc.wait_idle(10)
        assert computed == [4, 12]                       # only the newest set was computed next
        result = svc.layout("e", "posthoc", items)
        assert result["version"] == 2 and len(result["points"]) == 12 and not result["computing"]
    finally:
        gate.set()
        svc.close()
    assert not svc.running
    with pytest.raises(RuntimeError):
        svc.layout("e", "posthoc", items)


def test_service_structural_layout_persists_across_restart(tmp_path):
    from remap_tb.spec.sampler import sample_specs

    specs = sample_specs(16, (1, 8, 8), 10, 0).specs
    items = [(f"run{i}", s) for i, s in enumerate(specs)]
    items.append(("twin", specs[0]))                     # same content as run0
    items.append(("broken", {"schema": 1, "layers": "nonsense"}))
    state = str(tmp_path / ".remap" / "cache")
    with ProjectionService(state) as svc:
        svc.layout("e", "structural", items)
        assert svc.wait_idle(30)
        first = svc.layout("e", "structural", items)
    assert first["version"] == 1 and first["error"] is None
    pts = coords(first)
    assert "broken" not in pts and len(pts) == 17        # a bad spec is left out, not fatal
    assert pts["twin"] == pts["run0"]                    # equal content, equal place
    assert sorted(os.listdir(state)) == sorted(
        ["distances-structural.npz"] + [f for f in os.listdir(state) if f.startswith("layout-")])

    with ProjectionService(state) as svc:                # a restarted TensorBoard
        start = time.perf_counter()
        again = svc.layout("e", "structural", items)
        assert time.perf_counter() - start < 0.5
        assert again["version"] == 1 and not again["computing"] and coords(again) == pts
        assert not svc.running                           # nothing to compute
        svc.layout("e", "structural", items[:10])
        assert svc.wait_idle(30)
        fewer = svc.layout("e", "structural", items[:10])
        assert fewer["version"] == 2 and len(fewer["points"]) == 10
        assert svc._caches["structural"].load_status == "loaded"


def test_service_lays_out_both_structural_kinds_from_the_same_items(tmp_path):
    from remap_tb import otmann
    from remap_tb.spec.sampler import sample_specs

    specs = sample_specs(12, (1, 8, 8), 10, 0).specs
    items = [(f"run{i}", s) for i, s in enumerate(specs)]
    pair = items[:2]
    d = otmann.distance(specs[0], specs[1])
    d_norm = otmann.distance(specs[0], specs[1], normalised=True)
    assert d_norm < d / 10                               # d / S is much smaller than d
    state = str(tmp_path / ".remap" / "cache")
    with ProjectionService(state) as svc:
        for kind in ("structural", "structural_normalised"):
            svc.layout("e", kind, items)
            svc.layout("two", kind, pair)
        assert svc.wait_idle(60)
        full = {k: svc.layout("e", k, items) for k in ("structural", "structural_normalised")}
        two = {k: coords(svc.layout("two", k, pair)) for k in ("structural", "structural_normalised")}
    for kind, result in full.items():
        assert result["version"] == 1 and result["error"] is None, kind
        assert set(coords(result)) == {i for i, _ in items}
    assert coords(full["structural"]) != coords(full["structural_normalised"])
    gap = {k: float(np.hypot(*np.subtract(v["run0"], v["run1"]))) for k, v in two.items()}
    assert gap["structural"] == pytest.approx(d, rel=1e-3)
    assert gap["structural_normalised"] == pytest.approx(d_norm, rel=1e-3)
    names = sorted(os.listdir(state))
    assert "distances-structural.npz" in names          # one OTMANN cache serves both kinds
    assert "distances-structural-normalised.npz" not in names
    assert sum(f.startswith("layout-structural-normalised-") for f in names) == 2
    assert sum(f.startswith("layout-structural-") and "normalised" not in f for f in names) == 2

    with ProjectionService(state) as svc:                # each kind reloads its own layout
        for kind in ("structural", "structural_normalised"):
            again = svc.layout("e", kind, items)
            assert again["version"] == 1 and coords(again) == coords(full[kind]), kind
        assert not svc.running


def test_service_rejects_bad_requests():
    with ProjectionService(None) as svc:
        with pytest.raises(ValueError, match="kind"):
            svc.layout("e", "size", [])
        with pytest.raises(ValueError, match="repeat"):
            svc.layout("e", "posthoc", [("a", np.zeros(3, int)), ("a", np.zeros(3, int))])
    with pytest.raises(ValueError):
        ProjectionService(None, mds_params={"max_iter": -5})


def test_close_interrupts_a_long_computation():
    svc = ProjectionService(None)
    entered = threading.Event()
    real = svc._distances

    def slow_distances(kind, uniq, content):
        entered.set()
        while not svc._closed:
            time.sleep(0.01)
        return real(kind, uniq, content)                 # raises Interrupted inside

    svc._distances = slow_distances
    svc.layout("e", "posthoc", predictions(5))
    assert entered.wait(10)
    start = time.perf_counter()
    svc.close(timeout=10)
    assert not svc.running and time.perf_counter() - start < 5
    assert svc.wait_idle(1)


def test_normalised_map_reuses_the_structural_distances(tmp_path, monkeypatch):
    """Issue 13: the normalised map used to recompute every OTMANN pair; now it divides the
    structural cache's d by S_ij, so OTMANN runs once, and an old normalised cache file goes."""
    from remap_tb import otmann
    from remap_tb.spec.sampler import sample_specs

    specs = sample_specs(15, (1, 8, 8), 10, 3).specs
    items = [(f"run{i}", s) for i, s in enumerate(specs)]
    state = tmp_path / "cache"
    state.mkdir()
    (state / "distances-structural-normalised.npz").write_bytes(b"an old cache of the normalised map")
    calls = []
    real = otmann.distance_matrix_both

    def counting(graphs, *args, **kwargs):
        calls.append(len(graphs))
        return real(graphs, *args, **kwargs)

    monkeypatch.setattr(otmann, "distance_matrix_both", counting)
    with ProjectionService(str(state)) as svc:
        svc.layout("e", "structural", items)
        svc.layout("e", "structural_normalised", items)
        assert svc.wait_idle(60)
        out = {k: svc.layout("e", k, items) for k in ("structural", "structural_normalised")}
        ids, Dn = svc.normalised_structural_distances(items)
    assert calls == [15]                                 # one full OTMANN pass for both maps
    assert not (state / "distances-structural-normalised.npz").exists()
    exact = real(specs)[1]
    assert ids == [i for i, _ in items]
    np.testing.assert_allclose(Dn, exact, rtol=1e-6, atol=1e-9)
    for kind, result in out.items():
        assert result["error"] is None and len(result["points"]) == 15, kind
    xy = coords(out["structural_normalised"])
    gaps = [np.hypot(*np.subtract(xy[f"run{i}"], xy[f"run{j}"])) for i in range(15) for j in range(i + 1, 15)]
    assert max(gaps) < 1.5                               # laid out in d / S units (<= 1), not d


def test_posthoc_map_is_not_held_up_by_a_structural_computation():
    """Issue 13: the structural maps and the post-hoc map have their own worker (lane), so a
    long OTMANN computation does not delay the prediction map."""
    from remap_tb.spec.sampler import sample_specs

    svc = ProjectionService(None)
    release = threading.Event()
    entered = threading.Event()
    real = svc._distances

    def held(kind, uniq, content):
        if kind == "structural":
            entered.set()
            release.wait(30)
        return real(kind, uniq, content)

    svc._distances = held
    try:
        specs = sample_specs(6, (1, 8, 8), 10, 1).specs
        svc.layout("e", "structural", [(f"s{i}", s) for i, s in enumerate(specs)])
        assert entered.wait(10)
        out = svc.layout("e", "posthoc", predictions(12), wait=20)
        assert not release.is_set()                      # the structural map is still held
        assert out["version"] == 1 and len(out["points"]) == 12 and not out["computing"]
        release.set()
        assert svc.wait_idle(30)
        assert svc.layout("e", "structural", [(f"s{i}", s) for i, s in enumerate(specs)])["version"] == 1
    finally:
        release.set()
        svc.close()
