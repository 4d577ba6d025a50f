"""Landmark MDS (issue 13): known answers, exactness when every point is a landmark, and
the projection service's landmark path for maps above its exact threshold."""

import json
import os

import numpy as np
import pytest

from remap_tb import landmark_mds as lm
from remap_tb import otmann
from remap_tb.prediction_distance import hamming_matrix, pack_labels, packed_hamming_pairs
from remap_tb.projection import ProjectionService, StableMDS, procrustes_align


def euclid(P):
    return np.linalg.norm(P[:, None] - P[None], axis=2)


def oracle(D):
    return lambda rows, cols: D[rows, cols]


def test_triangulation_recovers_points_of_the_plane_up_to_a_rigid_motion():
    rng = np.random.default_rng(1)
    P = rng.normal(size=(60, 2)) * [5.0, 2.0]
    D = euclid(P)
    L = np.array([3, 17, 29, 41, 55])                     # 5 landmarks, not collinear
    frame = lm.landmark_frame(D[np.ix_(L, L)], 2)
    X = lm.triangulate(frame, D[L])
    R, t = procrustes_align(X, P)
    np.testing.assert_allclose(X @ R + t, P, atol=1e-8)
    np.testing.assert_allclose(X[L], frame.coords, atol=1e-8)  # a landmark lands on itself


def test_landmark_frame_drops_axes_without_positive_eigenvalues():
    P = np.c_[np.arange(6.0), np.zeros(6)]                # collinear: one axis
    frame = lm.landmark_frame(euclid(P), 3)
    assert len(frame.eigenvalues) == 1 and np.all(frame.coords[:, 1:] == 0)
    with pytest.raises(ValueError):
        lm.landmark_frame(np.ones((2, 3)))


def test_every_point_a_landmark_is_the_exact_map():
    rng = np.random.default_rng(2)
    D = euclid(rng.normal(size=(40, 5)))                  # not embeddable in 2-D: stress > 0
    lay = lm.landmark_layout(oracle(D), 40, n_landmarks=40)
    exact = StableMDS(random_state=0).fit(D)
    assert sorted(lay.landmarks.tolist()) == list(range(40))
    np.testing.assert_allclose(lay.coords, exact.embedding_ - exact.embedding_.mean(axis=0), atol=1e-9)
    assert exact.stress_ > 0.05


def test_landmark_layout_of_a_plane_is_exact_and_uses_k_rows():
    rng = np.random.default_rng(3)
    P = rng.uniform(-10, 10, size=(500, 2))
    D = euclid(P)
    asked = []

    def f(rows, cols):
        asked.append(len(rows))
        return D[rows, cols]

    lay = lm.landmark_layout(f, 500, n_landmarks=12)
    assert sum(asked) == 12 * 500                         # k rows, nothing else
    R, t = procrustes_align(lay.coords, P)
    np.testing.assert_allclose(lay.coords @ R + t, P, atol=1e-5)
    assert lay.stress < 1e-6


def test_maxmin_spreads_landmarks_and_returns_their_rows():
    x = np.r_[np.linspace(0, 1, 50), [10.0, -10.0]]
    D = np.abs(x[:, None] - x[None])
    L, rows = lm.maxmin_landmarks(oracle(D), len(x), 3, random_state=0)
    assert {50, 51} <= set(L.tolist())                   # the two far points come right after the first
    np.testing.assert_array_equal(rows, D[L])
    L, _ = lm.maxmin_landmarks(oracle(np.zeros((5, 5))), 5, 5)
    assert sorted(L.tolist()) == list(range(5))          # all duplicates: still distinct picks


def test_majorise_lowers_stress_and_keeps_fixed_points():
    rng = np.random.default_rng(4)
    P = rng.normal(size=(30, 2))
    i, j = np.triu_indices(30, 1)
    d = euclid(P)[i, j]
    X0 = P + rng.normal(scale=0.5, size=P.shape)
    movable = np.ones(30, bool)
    movable[:5] = False
    X = lm.majorise(X0, i, j, d, n_iter=50, movable=movable)
    assert lm.sparse_stress1(X, i, j, d) < 0.5 * lm.sparse_stress1(X0, i, j, d)
    np.testing.assert_array_equal(X[:5], X0[:5])


@pytest.mark.parametrize("classes,m,offset", [(2, 37, 0), (3, 64, 0), (10, 361, 0), (300, 50, -7), (10, 9, 2**40)])
def test_packed_hamming_equals_the_label_comparison(classes, m, offset):
    rng = np.random.default_rng(classes)
    preds = rng.integers(0, classes, size=(25, m)).astype(np.int64) + offset
    preds[3] = preds[4]                                   # a duplicate pair
    packed = pack_labels(preds)
    i, j = np.meshgrid(np.arange(25), np.arange(25), indexing="ij")
    got = packed_hamming_pairs(packed, i.ravel(), j.ravel()).reshape(25, 25)
    np.testing.assert_array_equal(got, hamming_matrix(preds))
    if m >= 64:
        assert packed.nbytes < preds.nbytes / 4
    with pytest.raises(ValueError):
        packed_hamming_pairs(packed, [0], [25])


def test_pair_solver_equals_the_matrix():
    from remap_tb.spec.sampler import sample_specs

    specs = sample_specs(20, (1, 8, 8), 10, 5).specs
    d, dn = otmann.distance_matrix_both(specs)
    solver = otmann.PairSolver(specs)
    i, j = np.meshgrid(np.arange(20), np.arange(20), indexing="ij")
    pd, pdn = solver.pairs(i.ravel(), j.ravel())
    np.testing.assert_allclose(pd.reshape(20, 20), d, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pdn.reshape(20, 20), dn, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(pd / (solver.totals[i.ravel()] + solver.totals[j.ravel()]), pdn, rtol=1e-12)


def coords(result):
    return {p["id"]: (p["x"], p["y"]) for p in result["points"]}


def test_service_uses_landmarks_above_the_threshold_and_places_new_models(tmp_path):
    from remap_tb.spec.sampler import sample_specs

    specs = sample_specs(70, (1, 8, 8), 10, 6).specs
    items = [(f"run{i}", s) for i, s in enumerate(specs)]
    state = str(tmp_path / "cache")
    with ProjectionService(state, exact_max=40, n_landmarks=15) as svc:
        first = svc.layout("e", "structural", items[:60], wait=60)
        assert first["version"] == 1 and first["error"] is None and len(first["points"]) == 60
        more = svc.layout("e", "structural", items, wait=60)
        assert more["version"] == 2 and more["error"] is None
        norm = svc.layout("e", "structural_normalised", items, wait=60)
        assert norm["error"] is None and len(norm["points"]) == 70
        assert svc._caches == {}                          # no n x n cache above the threshold
    a, b = coords(first), coords(more)
    assert all(a[k] == b[k] for k in a)                   # old models stay exactly where they were
    # a new model lands near the models it is close to: nearer its OTMANN nearest old model
    # than the median old model
    D = otmann.distance_matrix(specs)
    old = np.array([a[f"run{i}"] for i in range(60)])
    for n in range(60, 70):
        nearest = int(np.argmin(D[n, :60]))
        gaps = np.linalg.norm(old - np.array(b[f"run{n}"]), axis=1)
        assert gaps[nearest] < np.median(gaps), n
    names = [f for f in os.listdir(state) if f.startswith("layout-structural-") and "normalised" not in f]
    rec = json.load(open(os.path.join(state, names[0])))
    assert len(rec["landmarks"]) == 15 and set(rec["landmarks"]) <= set(rec["keys"])
    with ProjectionService(state, exact_max=40, n_landmarks=15) as svc:   # restart: same map, same landmarks
        again = svc.layout("e", "structural", items)
        assert again["version"] == 2 and coords(again) == b
        assert svc._slots[("e", "structural")].layout.landmarks == tuple(rec["landmarks"])


def test_models_placed_one_by_one_reuse_the_landmark_frame_and_land_where_a_fresh_service_puts_them(tmp_path):
    import shutil
    from unittest import mock

    from remap_tb.spec.sampler import sample_specs

    specs = sample_specs(62, (1, 8, 8), 10, 6).specs
    items = [(f"run{i}", s) for i, s in enumerate(specs)]
    state = tmp_path / "a"
    with ProjectionService(str(state), exact_max=40, n_landmarks=15) as svc:
        svc.layout("e", "structural", items[:60], wait=60)
        svc.layout("e", "structural", items[:61], wait=60)   # computes the frame of the landmarks
        assert svc.wait_idle(60)
        shutil.copytree(state, tmp_path / "b")
        with mock.patch.object(lm, "frame_onto", wraps=lm.frame_onto) as framed:
            reused = coords(svc.layout("e", "structural", items, wait=60))
        assert framed.call_count == 0
    with ProjectionService(str(tmp_path / "b"), exact_max=40, n_landmarks=15) as fresh:
        with mock.patch.object(lm, "frame_onto", wraps=lm.frame_onto) as framed:
            computed = coords(fresh.layout("e", "structural", items, wait=60))
        assert framed.call_count == 1
    assert reused.keys() == computed.keys()
    for k in reused:
        np.testing.assert_allclose(reused[k], computed[k], atol=1e-9)


def test_service_posthoc_landmark_map_follows_the_hamming_distances():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 10, 400)
    acc = np.linspace(0.2, 0.95, 80)
    preds = [np.where(rng.random(400) < a, truth, rng.integers(0, 10, 400)) for a in acc]
    items = [(f"m{i}", p) for i, p in enumerate(preds)]
    with ProjectionService(None, exact_max=30, n_landmarks=20) as svc:
        out = svc.layout("e", "posthoc", items, wait=60)
    with ProjectionService(None) as svc:
        exact = svc.layout("e", "posthoc", items, wait=60)
    assert out["error"] is None and len(out["points"]) == 80
    D = hamming_matrix(np.stack(preds))
    X = np.array([coords(out)[f"m{i}"] for i in range(80)])
    Xe = np.array([coords(exact)[f"m{i}"] for i in range(80)])
    i, j = np.triu_indices(80, 1)
    ratio = lm.sparse_stress1(X, i, j, D[i, j]) / lm.sparse_stress1(Xe, i, j, D[i, j])
    assert ratio < 1.3                                    # close to the exact map's fit
    gaps = np.linalg.norm(X[:, None] - X[None], axis=2)
    best = np.arange(70, 80)                              # the most accurate agree most with each other
    assert np.median(gaps[np.ix_(best, best)][np.triu_indices(10, 1)]) < 0.5 * np.median(gaps[i, j])


def test_stochastic_refine_lowers_the_full_stress_and_moves_only_what_may_move():
    rng = np.random.default_rng(8)
    D = euclid(rng.normal(size=(300, 6)))                 # far from 2-D, like prediction distances
    f = oracle(D)
    start = lm.landmark_layout(f, 300, n_landmarks=15).coords
    i, j = np.triu_indices(300, 1)
    before = lm.sparse_stress1(start, i, j, D[i, j])
    X = lm.stochastic_refine(start, f, n_iter=30, n_partners=40)
    exact = StableMDS().fit(D)
    after = lm.sparse_stress1(X, i, j, D[i, j])
    assert after < before and after < 1.1 * exact.stress_
    movable = np.zeros(300, bool)
    movable[:10] = True
    Y = lm.stochastic_refine(start, f, n_iter=5, n_partners=20, movable=movable)
    np.testing.assert_array_equal(Y[10:], start[10:])
    assert not np.array_equal(Y[:10], start[:10])


def test_close_interrupts_a_landmark_map():
    import threading
    import time

    from remap_tb.spec.sampler import sample_specs

    specs = sample_specs(60, (1, 8, 8), 10, 9).specs
    svc = ProjectionService(None, exact_max=10, n_landmarks=30)
    entered = threading.Event()
    real = svc._landmark_rows

    def slow(kind, uniq, content):
        entered.set()
        while not svc._closed:
            time.sleep(0.01)
        return real(kind, uniq, content)                  # raises Interrupted inside

    svc._landmark_rows = slow
    svc.layout("e", "structural", [(f"r{i}", s) for i, s in enumerate(specs)])
    assert entered.wait(10)
    svc.close(timeout=10)
    assert not svc.running and svc.wait_idle(1)
    assert svc._slots[("e", "structural")].layout.version == 0   # nothing half-made was published


def test_service_places_new_posthoc_models_without_moving_old_ones():
    rng = np.random.default_rng(10)
    truth = rng.integers(0, 10, 300)
    acc = rng.uniform(0.1, 0.95, 90)
    preds = [np.where(rng.random(300) < a, truth, rng.integers(0, 10, 300)) for a in acc]
    items = [(f"m{i}", p) for i, p in enumerate(preds)]
    with ProjectionService(None, exact_max=30, n_landmarks=20) as svc:
        first = svc.layout("e", "posthoc", items[:80], wait=60)
        more = svc.layout("e", "posthoc", items, wait=60)
    a, b = coords(first), coords(more)
    assert more["version"] == 2 and len(b) == 90
    assert all(a[k] == b[k] for k in a)
    X = np.array([a[f"m{i}"] for i in range(80)])
    D = hamming_matrix(np.stack(preds))
    accurate = [n for n in range(80, 90) if acc[n] > 0.6]   # (the others disagree with everyone alike)
    assert len(accurate) >= 3
    for n in accurate:                                    # near the models that answer alike
        gaps = np.linalg.norm(X - np.array(b[f"m{n}"]), axis=1)
        assert np.mean(D[n, np.argsort(gaps)[:5]]) < np.median(D[n, :80]), n
