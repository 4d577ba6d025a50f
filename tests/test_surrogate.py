"""The GP surrogate's contract (remap_tb.surrogate) and generate's predicted / sort / suggest."""

from __future__ import annotations

import math

import numpy as np
import pytest

from remap_tb import otmann, surrogate
from remap_tb.http_util import HttpError
from remap_tb.queue import Queue
from remap_tb.search_routes import generate_impl
from remap_tb.spec import analyse
from remap_tb.spec.sampler import sample_specs
from remap_tb.surrogate import Hyperparameters, OtmannGP, expected_improvement


def points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points on a line in [0, 1] (their |x - x'| is a valid distance) and a smooth target."""
    x = np.sort(np.random.RandomState(seed).rand(n))
    return x, np.sin(3 * x)


def dist(a, b) -> np.ndarray:
    return np.abs(np.asarray(a)[:, None] - np.asarray(b)[None, :])


FIXED = Hyperparameters(beta=5.0, signal_var=1.0, noise_var=1e-6, coef=(0.0,))


def test_posterior_mean_interpolates_the_training_points_with_small_noise():
    x, y = points(12)
    gp = OtmannGP(warp=False, hyperparameters=FIXED).fit(dist(x, x), y)
    mean, std = gp.predict(dist(x, x))
    assert np.allclose(mean, y, atol=1e-3)
    assert np.all(std < 0.01)


def test_std_shrinks_near_data_and_reaches_the_prior_far_away():
    x, y = points(12)
    gp = OtmannGP(warp=False, hyperparameters=FIXED).fit(dist(x, x), y)
    near = np.full((1, 12), 1.0)
    near[0, 3] = 0.01
    _, s_near = gp.predict(near)
    _, s_mid = gp.predict(np.clip(near + 0.2, 0, None))
    mean_far, s_far = gp.predict(np.full((1, 12), 50.0))
    assert s_near[0] < s_mid[0] < s_far[0]
    assert s_far[0] == pytest.approx(math.sqrt(FIXED.signal_var), rel=1e-6)
    assert mean_far[0] == pytest.approx(FIXED.mean, abs=1e-9)  # far from data: the prior mean


def test_expected_improvement_is_non_negative_and_grows_with_mean_and_std():
    means = np.linspace(0.5, 1.0, 11)
    ei = expected_improvement(means, np.full(11, 0.05), best=0.8)
    assert np.all(ei >= 0) and np.all(np.diff(ei) > 0)
    stds = np.linspace(0.0, 0.2, 11)
    ei_std = expected_improvement(np.full(11, 0.7), stds, best=0.8)
    assert ei_std[0] == 0.0 and np.all(np.diff(ei_std) > 0)
    # s = 0: the plain improvement; a known value of (m - y)Phi(z) + s phi(z) at z = 0: s / sqrt(2 pi)
    assert expected_improvement([0.9], [0.0], 0.8)[0] == pytest.approx(0.1)
    assert expected_improvement([0.8], [0.1], 0.8)[0] == pytest.approx(0.1 / math.sqrt(2 * math.pi))


def test_fitted_hyperparameters_maximise_the_marginal_likelihood():
    x, y = points(30, seed=1)
    y = y + np.random.RandomState(2).normal(0, 0.05, len(y))
    D = dist(x, x)
    h = surrogate.fit_hyperparameters(D, y)
    assert h.log_likelihood == pytest.approx(surrogate.log_marginal_likelihood(D, y, h), rel=1e-9)
    for scale in (0.5, 2.0):
        for other in (Hyperparameters(h.beta * scale, h.signal_var, h.noise_var, h.coef),
                      Hyperparameters(h.beta, h.signal_var * scale, h.noise_var, h.coef),
                      Hyperparameters(h.beta, h.signal_var, h.noise_var * scale, h.coef)):
            assert surrogate.log_marginal_likelihood(D, y, other) < h.log_likelihood
    assert surrogate.BETA_BOUNDS[0] < h.beta < surrogate.BETA_BOUNDS[1]


def _augmented(x, xs, H, Hs, hyper, prior_var):
    """The GP with b ~ N(0, prior_var I) folded into its kernel: K + H B H^T (R&W section 2.7)."""
    def k(a, b, Ha, Hb):
        return surrogate.otmann_kernel(dist(a, b), hyper.beta, hyper.signal_var) + prior_var * Ha @ Hb.T
    return k(x, x, H, H) + hyper.noise_var * np.eye(len(x)), k(xs, x, Hs, H), k(xs, xs, Hs, Hs)


def test_restricted_likelihood_is_the_limit_of_a_vague_prior_on_the_mean():
    x, y = points(25, seed=3)
    H = np.column_stack([np.ones(len(x)), x])
    h = surrogate.fit_hyperparameters(dist(x, x), y + 0.3 * x, H)
    assert h.log_likelihood == pytest.approx(surrogate.log_marginal_likelihood(dist(x, x), y + 0.3 * x, h, H),
                                             rel=1e-9)
    prior_var = 1e6  # log N(y; 0, K + H B H^T) + 1/2 log|B| tends to the restricted likelihood (eq. 2.45)
    K, _, _ = _augmented(x, x[:1], H, H[:1], h, prior_var)
    sign, logdet = np.linalg.slogdet(K)
    t = y + 0.3 * x
    vague = -0.5 * t @ np.linalg.solve(K, t) - 0.5 * logdet - 0.5 * len(x) * math.log(2 * math.pi)
    vague += 0.5 * H.shape[1] * math.log(2 * math.pi * prior_var)
    assert sign > 0 and vague == pytest.approx(h.log_likelihood, abs=1e-3)
    # the profile (plug-in) likelihood of the same b is higher: it ignores b's uncertainty
    assert surrogate.log_marginal_likelihood(dist(x, x), t, h, H, restricted=False) > h.log_likelihood


def test_predictions_count_the_uncertainty_of_the_mean_coefficients():
    x, y = points(20, seed=4)
    H = np.column_stack([np.ones(len(x)), x])
    gp = OtmannGP(warp=False).fit(dist(x, x), y + 0.5 * x, H)
    xs = np.array([0.5, 1.5, 4.0])  # inside the data, just beyond, far beyond: b's uncertainty grows
    Hs = np.column_stack([np.ones(3), xs])
    mean, std = gp.predict(dist(xs, x), None, Hs)
    K, Ks, Kss = _augmented(x, xs, H, Hs, gp.hyperparameters_, 1e5)
    ref_mean = Ks @ np.linalg.solve(K, y + 0.5 * x)
    ref_var = np.diag(Kss - Ks @ np.linalg.solve(K, Ks.T))
    assert mean == pytest.approx(ref_mean, abs=1e-3)
    assert std ** 2 == pytest.approx(ref_var, rel=1e-3)
    plug_in = OtmannGP(warp=False, hyperparameters=gp.hyperparameters_).fit(dist(x, x), y + 0.5 * x, H)
    _, std_known_b = plug_in.predict(dist(xs, x), None, Hs)
    assert np.all(std > std_known_b) and std[2] - std_known_b[2] > std[0] - std_known_b[0]


def test_models_of_one_size_still_give_finite_predictions_for_another_size():
    """A basis column that does not vary (every finished model the same size, e.g. after dropout-only
    variations) leaves b's slope unidentified: predictions stay finite rather than blowing up."""
    x, y = points(12, seed=5)
    H = np.column_stack([np.ones(12), np.full(12, 3.0)])
    gp = OtmannGP().fit(dist(x, x), 0.8 + 0.1 * y, H)
    mean, std = gp.predict(dist(x[:3], x), None, np.column_stack([np.ones(3), np.full(3, 4.0)]))
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std < 0.1)


def test_normal_scores_invert_at_the_data_and_extend_beyond_it():
    y = np.array([0.1, 0.8, 0.82, 0.85, 0.9])
    warp = surrogate.NormalScores(y)
    assert np.allclose(warp.inverse(warp.z), y)
    assert warp.inverse([warp.z.max() + 1.0])[0] > 0.9 and warp.inverse([warp.z.min() - 1.0])[0] < 0.1


# --------------------------------------------------------------------- candidates of an experiment

SHAPE = (1, 8, 8)


def population(n: int, seed: int = 0) -> list[dict]:
    specs = sample_specs(n, SHAPE, 10, seed).specs[:n]
    models = []
    for i, spec in enumerate(specs):
        params = analyse(spec).total_params
        models.append({"id": f"m{i}", "spec": spec, "params": params,
                       "accuracy": 0.5 + 0.04 * math.log10(params + 1) + 0.01 * (i % 3)})
    return models


def candidates_of(models: list[dict], n: int, seed: int) -> list[dict]:
    from remap_tb.spec.operators import generate

    return generate(models[:1], "variation", {"count": n, "seed": seed})["candidates"]


def distances(models):
    return otmann.distance_matrix_both([m["spec"] for m in models])[1]


def test_hyperparameters_come_from_the_finished_models_only():
    models = population(12)
    gp_a, gp_b = OtmannGP(), OtmannGP()
    pa, info = surrogate.predict_candidates(models, candidates_of(models, 3, 1), distances, gp=gp_a)
    pb, _ = surrogate.predict_candidates(models, candidates_of(models, 8, 2), distances, gp=gp_b)
    assert gp_a.hyperparameters_ == gp_b.hyperparameters_
    assert info["ready"] and info["n_models"] == 12 and all(p is not None for p in pa + pb)
    # A candidate's prediction does not depend on which other candidates are scored with it.
    cands = candidates_of(models, 8, 2)
    alone, _ = surrogate.predict_candidates(models, cands[:1], distances)
    assert alone[0] == pytest.approx(pb[0])


def test_local_posterior_matches_the_full_one_when_the_neighbourhood_holds_every_model():
    models = population(20)
    cands = candidates_of(models, 5, 3)
    full, _ = surrogate.predict_candidates(models, cands, distances)
    local, _ = surrogate.predict_candidates(models, cands, distances, neighbours=10)
    assert all(p is not None for p in local)
    assert [p["accuracy"] for p in full] != [p["accuracy"] for p in local]  # conditioned on fewer
    assert np.corrcoef([p["accuracy"] for p in full], [p["accuracy"] for p in local])[0, 1] > 0.5


def test_no_prediction_below_eight_finished_models():
    models = population(7)
    predicted, info = surrogate.predict_candidates(models, candidates_of(models, 3, 1), distances)
    assert predicted == [None] * 3
    assert not info["ready"] and info["best"] is None and "7 finished models" in info["reason"]


def test_the_incumbent_is_the_best_finished_model_within_the_budget():
    models = population(10)
    cap = sorted(m["params"] for m in models)[4]
    _, info = surrogate.predict_candidates(models, [], distances, max_params=cap)
    assert info["best"] == max(m["accuracy"] for m in models if m["params"] <= cap)


# --------------------------------------------------------------------- the generate route

@pytest.fixture
def route(tmp_path):
    models = population(12)
    records = {m["id"]: {"id": m["id"], "spec": m["spec"], "training": {}} for m in models}
    queue = Queue(str(tmp_path))
    asked = []

    def finished(runs):
        asked.append(list(runs))
        return models[:finished.n]
    finished.n = len(models)

    def call(body):
        return generate_impl(body, records.get, lambda: list(records.values()), queue,
                             finished_models=finished, model_distances=distances)
    call.finished, call.asked = finished, asked
    return call


def body(**options):
    return {"parents": ["m0"], "kind": "variation", "options": {"count": 12, "seed": 4, **options}}


def test_every_candidate_carries_a_prediction_and_the_response_a_surrogate_block(route):
    result = route(body())
    assert route.asked == [["m0"]]
    info = result["surrogate"]
    assert info["ready"] and info["n_models"] == 12 and info["reason"] is None and 0 < info["best"] < 1
    assert result["candidates"]
    for c in result["candidates"]:
        p = c["predicted"]
        assert set(p) == {"accuracy", "std", "ei"} and p["std"] >= 0 and p["ei"] >= 0


def test_below_eight_models_predicted_is_null_with_a_reason_and_suggest_is_refused(route):
    route.finished.n = 7
    result = route(body())
    assert all(c["predicted"] is None for c in result["candidates"])
    assert not result["surrogate"]["ready"] and "predictions start at 8" in result["surrogate"]["reason"]
    with pytest.raises(HttpError) as e:
        route(body(suggest=2))
    assert e.value.status == 400 and "suggest" in str(e.value)


@pytest.mark.parametrize("sort,key", [("predicted", "accuracy"), ("ei", "ei")])
def test_sort_orders_the_candidates(route, sort, key):
    plain = route(body())
    result = route(body(sort=sort))
    values = [c["predicted"][key] for c in result["candidates"]]
    assert values == sorted(values, reverse=True)
    assert sorted(c["key"] for c in result["candidates"]) == sorted(c["key"] for c in plain["candidates"])


def test_suggest_keeps_the_k_valid_candidates_with_the_highest_ei(route):
    everything = route(body(count=30))
    result = route(body(count=30, suggest=3))
    top = sorted((c for c in everything["candidates"] if c["valid"]), key=lambda c: -c["predicted"]["ei"])[:3]
    assert [c["key"] for c in result["candidates"]] == [c["key"] for c in top]
    assert all(c["suggested"] is True for c in result["candidates"])
    assert result["made"] == 3 and "suggested 3 of" in result["summary"]


@pytest.mark.parametrize("options,words", [({"sort": "size"}, "options.sort"), ({"suggest": 0}, "options.suggest"),
                                           ({"suggest": 21}, "options.suggest"), ({"suggest": True}, "options.suggest")])
def test_bad_sort_or_suggest_is_a_400(route, options, words):
    with pytest.raises(HttpError) as e:
        route(body(**options))
    assert e.value.status == 400 and words in str(e.value)


def test_without_finished_models_the_server_says_why(tmp_path):
    models = population(3)
    records = {m["id"]: {"id": m["id"], "spec": m["spec"]} for m in models}
    result = generate_impl(body(), records.get, lambda: list(records.values()), Queue(str(tmp_path)))
    assert all(c["predicted"] is None for c in result["candidates"])
    assert result["surrogate"]["ready"] is False and result["surrogate"]["reason"]


def test_local_pool_keeps_the_best_and_the_parents_neighbours_within_its_size():
    from remap_tb.surrogate import local_pool

    rng = np.random.RandomState(0)
    n = 3000
    models = [{"id": f"m{i}", "accuracy": float(rng.uniform(0.1, 0.9)), "spec": None} for i in range(n)]
    models[2999]["accuracy"] = 0.99  # the best, far from the parent
    positions = {f"m{i}": (float(i % 100), float(i // 100)) for i in range(n)}
    pool = local_pool(models, ["m1550"], positions, size=400, best_share=0.1)
    ids = [m["id"] for m in pool]
    assert len(pool) == 400 and len(set(ids)) == 400
    assert "m2999" in ids and "m1550" in ids  # the incumbent and the parent
    best = sorted(models, key=lambda m: -m["accuracy"])[:40]
    assert all(m["id"] in ids for m in best)
    near = [f"m{50 + dx + 100 * (15 + dy)}" for dx in range(-3, 4) for dy in range(-3, 4)]  # around (50, 15)
    assert all(i in ids for i in near)
    assert ids == sorted(ids, key=lambda i: int(i[1:]))  # order kept
    # no map yet: the best and a seeded sample, the same every time
    again = local_pool(models, ["m1550"], {}, size=400)
    assert len(again) == 400 and again == local_pool(models, ["m1550"], {}, size=400)
    assert all(m["id"] in [a["id"] for a in again] for m in best)
    assert local_pool(models[:300], ["m1"], positions, size=400) == models[:300]
