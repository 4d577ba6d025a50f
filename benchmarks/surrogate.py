"""Issue 10's surrogate figures: leave-one-out rank correlation and speed, beside two baselines.

1. Leave-one-out on two populations, each model predicted from all the others:
   (a) the REMAP prototype's 100 QuickDraw models (``../shared/data/remap_quickdraw_100.json``,
   their recorded ``remap_best_val_accuracy``); (b) the demo population (``demo_logs/``, read
   through the plugin's own reader: ``RunReader`` over TensorBoard's multiplexer data
   provider, finished models with their final validation accuracy).
   Predictors, Spearman correlation of prediction and real accuracy:
   * ``surrogate``: ``remap_tb.surrogate.OtmannGP`` as the route uses it (kernel
     exp(-beta d/S) on the normalised OTMANN distance, mean b0 + b1 log10(params + 1),
     logit output warping, the mean's coefficients integrated out in the marginal likelihood),
     everything refitted on the n-1 others in every fold;
   * ``nearest``: the accuracy of the nearest other model by OTMANN (normalised d/S; the
     unnormalised d is printed too);
   * ``params``: rank by parameter count (more parameters, higher accuracy).
   Target: the surrogate beats both baselines on both sets.
   (c) Replicates of (b): the demo population is ``remap init --models 30 --seed 0`` on
   digits (``DEMO_RECIPE``; retraining it reproduces ``demo_logs/`` exactly), one draw of
   30 models whose accuracies are quantised in steps of 1/360. ``--replicates K`` trains K more populations
   with the same recipe, seeds 1..K (real training, ~20-30 s each on 2 cores; kept under
   ``--cache`` and reused), and prints the same three predictors for each, their means, how
   often the surrogate beats each baseline and a Wilcoxon signed-rank test of the paired
   differences: how far (b)'s single draw speaks for the recipe.
2. Time to fit and score: the fit on all n models of each set, and the route's work
   for 1,000 finished models and 200 candidates, cold (fit) and warm (fit cached) (``surrogate.predict_candidates``: fit on
   the cached model-model distances, candidate-to-neighbour OTMANN distances, posterior,
   EI), on a synthetic experiment from the project's sampler (1x28x28, accuracies a
   smooth function of the architecture plus noise), 200 candidates = variations of one
   model (100) + of a region of 20 models (100). Target <= 0.5 s. The one-off cost of the
   1,000 x 1,000 matrix (what the map's distance cache already holds) is printed beside it.

Run:  python benchmarks/surrogate.py [--repeat R] [--replicates K] [--cache DIR]
      (about a minute on 2 cores, plus ~6 minutes the first time for 20 replicates)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from remap_tb import otmann, surrogate  # noqa: E402
from remap_tb.spec import Constraints, analyse  # noqa: E402
from remap_tb.spec.operators import generate  # noqa: E402
from remap_tb.spec.sampler import sample_specs  # noqa: E402

QUICKDRAW = ROOT.parent / "shared" / "data" / "remap_quickdraw_100.json"
DEMO = ROOT / "demo_logs"
CACHE = Path(tempfile.gettempdir()) / "remap-bench-cache" / "surrogate"  # outside the repository
# how demo_logs/ was made (README), with --seed 0; retraining seed 0 reproduces it exactly
DEMO_RECIPE = ["--dataset", "digits", "--models", "30", "--epochs", "10", "--max-params", "100000"]


def quickdraw() -> tuple[list[dict], np.ndarray, np.ndarray]:
    models = json.loads(QUICKDRAW.read_text())["models"]
    return ([m["spec"] for m in models], np.array([m["remap_best_val_accuracy"] for m in models], dtype=float),
            np.array([m["remap_parameters"] for m in models], dtype=float))


def demo(logdir: Path = DEMO) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """The finished models of one logdir, read as the plugin reads them."""
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    from remap_tb import metadata
    from remap_tb.reader import RunReader

    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    snap = RunReader(data_provider.MultiplexerDataProvider(multiplexer, str(logdir))).snapshot()
    _, models = surrogate.finished_models(snap, [next(iter(snap.models))])
    return ([m["spec"] for m in models], np.array([m["accuracy"] for m in models]),
            np.array([m["params"] for m in models], dtype=float))


def leave_one_out(D: np.ndarray, y: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Each model's surrogate prediction from the others (warping, mean and hyperparameters
    refitted per fold on the n - 1 others; the mean's basis is [1, log10(params + 1)])."""
    n = len(y)
    H = np.column_stack([np.ones(n), np.log10(params + 1.0)])
    out = np.empty(n)
    for i in range(n):
        rest = np.delete(np.arange(n), i)
        gp = surrogate.OtmannGP().fit(D[np.ix_(rest, rest)], y[rest], H[rest])
        mean, _ = gp.predict(D[i:i + 1, rest], None, H[i:i + 1])
        out[i] = mean[0]
    return out


def nearest(D: np.ndarray, y: np.ndarray) -> np.ndarray:
    masked = D + np.diag(np.full(len(y), np.inf))
    return y[np.argmin(masked, axis=1)]


def rho(a, b) -> float:
    return float(stats.spearmanr(a, b).correlation)


def correlation_table(name: str, specs: list[dict], y: np.ndarray, params: np.ndarray) -> dict:
    t = time.perf_counter()
    d, dn = otmann.distance_matrix_both(specs)
    t_dist = time.perf_counter() - t
    t = time.perf_counter()
    loo = leave_one_out(dn, y, params)
    t_loo = time.perf_counter() - t
    t = time.perf_counter()
    H = np.column_stack([np.ones(len(y)), np.log10(params + 1.0)])
    gp = surrogate.OtmannGP().fit(dn, y, H)
    gp.predict(dn, None, H)
    t_fit = time.perf_counter() - t
    h = gp.hyperparameters_
    row = {"surrogate": rho(loo, y), "nearest": rho(nearest(dn, y), y),
           "nearest_unnormalised": rho(nearest(d, y), y), "params": rho(params, y)}
    print(f"\n{name}: n = {len(y)}, accuracy {y.min():.4f}..{y.max():.4f}")
    print(f"  Spearman rho (leave-one-out)  surrogate {row['surrogate']:.3f} | nearest neighbour (d/S) "
          f"{row['nearest']:.3f} | nearest neighbour (d) {row['nearest_unnormalised']:.3f} | "
          f"parameter count {row['params']:.3f}")
    print(f"  fitted on all n: beta {h.beta:.3g}, signal sd {math.sqrt(h.signal_var):.4f}, "
          f"noise sd {math.sqrt(h.noise_var):.4f} (logit scale), "
          f"mean {h.coef[0]:.3f}" + (f" + {h.coef[1]:.3f} log10(params + 1)" if len(h.coef) > 1 else " (constant)"))
    print(f"  times: OTMANN matrix {t_dist:.3f} s; fit + score all n {t_fit * 1000:.1f} ms; "
          f"{len(y)} leave-one-out refits {t_loo:.2f} s")
    for base, other in (("params", params.astype(float)), ("nearest", nearest(dn, y))):
        lo, hi = paired_bootstrap(loo, other, y)
        print(f"  surrogate - {base}: {row['surrogate'] - row[base]:+.3f} (95 % paired bootstrap interval "
              f"{lo:+.3f}..{hi:+.3f}, 2,000 resamples of the models)")
    beats = row["surrogate"] > max(row["nearest"], row["params"])
    print(f"  surrogate beats both baselines: {'yes' if beats else 'NO'}")
    return row


def paired_bootstrap(a: np.ndarray, b: np.ndarray, y: np.ndarray, draws: int = 2000, seed: int = 0):
    """95 % interval of rho(a, y) - rho(b, y) over models resampled with replacement (both
    predictors on the same resample): how much of a difference the population's size can tell."""
    rng = np.random.RandomState(seed)
    diffs = []
    for _ in range(draws):
        i = rng.randint(0, len(y), len(y))
        if np.ptp(y[i]) == 0:
            continue
        diffs.append(rho(a[i], y[i]) - rho(b[i], y[i]))
    diffs = np.array([d for d in diffs if np.isfinite(d)])
    return float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))


def replicate(seed: int, cache: Path) -> Path:
    """The demo's recipe with another seed, trained once by the real CLI and kept in ``cache``.

    Trained into a temporary folder beside the final one and renamed when ``remap init``
    has finished, so an interrupted run is never reused."""
    final = cache / f"digits-m30-s{seed}"
    if final.is_dir():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".digits-m30-s{seed}-", dir=cache))
    cmd = [sys.executable, "-m", "trainer.cli", "init", str(work / "logs"), *DEMO_RECIPE, "--seed", str(seed),
           "--workers", "2"]
    try:
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode != 0:
            raise SystemExit(f"training the seed-{seed} population failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
        os.replace(work / "logs", final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def replicates(count: int, cache: Path) -> None:
    """Section (c): the three predictors on ``count`` more populations made like the demo's."""
    print(f"\n(c) {count} more populations made like the demo's (digits, 30 models, seeds 1..{count}; "
          f"cached in {cache}):")
    print(f"  {'seed':>4} {'n':>3} {'surrogate':>9} {'nearest':>8} {'params':>7}")
    rows = []
    for seed in range(1, count + 1):
        t = time.perf_counter()
        logdir = replicate(seed, cache)
        specs, y, params = demo(logdir)
        _, dn = otmann.distance_matrix_both(specs)
        row = (rho(leave_one_out(dn, y, params), y), rho(nearest(dn, y), y), rho(params, y))
        rows.append(row)
        print(f"  {seed:>4} {len(y):>3} {row[0]:>9.3f} {row[1]:>8.3f} {row[2]:>7.3f}   "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
    a = np.array(rows)
    print(f"  mean      {a[:, 0].mean():>9.3f} {a[:, 1].mean():>8.3f} {a[:, 2].mean():>7.3f}")
    for j, base in ((2, "parameter count"), (1, "nearest neighbour")):
        diff = a[:, 0] - a[:, j]
        p = stats.wilcoxon(diff).pvalue if count >= 6 and np.any(diff) else float("nan")
        print(f"  surrogate - {base}: beats it on {int((diff > 0).sum())} of {count}, mean difference "
              f"{diff.mean():+.3f}, median {np.median(diff):+.3f} (Wilcoxon signed-rank p = {p:.3g})")


def synthetic(n: int = 1000, seed: int = 0):
    """n finished models of one 1x28x28 experiment with smooth synthetic accuracies."""
    result = sample_specs(n, (1, 28, 28), 10, seed)
    specs = result.specs[:n]
    rng = np.random.RandomState(seed)
    models = []
    for i, spec in enumerate(specs):
        a = analyse(spec)
        kinds = [layer["type"] for layer in spec["layers"]]
        acc = (0.55 + 0.05 * math.log10(a.total_params + 10) + 0.02 * kinds.count("conv2d")
               - 0.01 * kinds.count("dropout") + rng.normal(0, 0.01))
        models.append({"id": f"m{i:04d}", "spec": spec, "accuracy": float(min(acc, 0.99)),
                       "params": a.total_params})
    return models


def route_timing(repeat: int) -> None:
    models = synthetic(1000)
    t = time.perf_counter()
    _, D = otmann.distance_matrix_both([m["spec"] for m in models])
    t_matrix = time.perf_counter() - t
    order = np.argsort([-m["accuracy"] for m in models])
    one = [models[order[0]]]
    region = [models[j] for j in order[:20]]
    candidates = (generate(one, "variation", {"count": 100, "seed": 1}, Constraints())["candidates"]
                  + generate(region, "variation", {"count": 100, "seed": 2}, Constraints())["candidates"])
    times, warm = [], []
    for _ in range(repeat):
        surrogate._FITS.clear()  # cold: a population the route has not fitted yet
        t = time.perf_counter()
        predicted, info = surrogate.predict_candidates(models, candidates, lambda ms: D)
        times.append(time.perf_counter() - t)
        t = time.perf_counter()  # warm: the same population again (cached fit), the same candidates
        surrogate.predict_candidates(models, candidates, lambda ms: D)
        warm.append(time.perf_counter() - t)
    # Accuracy of the local (neighbourhood) posterior against the full one on the same candidates.
    t = time.perf_counter()
    surrogate._FITS.clear()
    full, _ = surrogate.predict_candidates(models, candidates, lambda ms: D, neighbours=len(models))
    t_full = time.perf_counter() - t
    local = np.array([p["accuracy"] for p in predicted])
    every = np.array([p["accuracy"] for p in full])
    print(f"\n1,000 finished models, {len(candidates)} candidates (variations of 1 model + of a region of 20):")
    print(f"  fit + score (route work, model-model distances cached), cold (fit): median {np.median(times):.3f} s, "
          f"min {min(times):.3f} s, max {max(times):.3f} s over {repeat} (target <= 0.5 s)")
    print(f"  score only, warm (fit cached for this population): median {np.median(warm):.3f} s, "
          f"min {min(warm):.3f} s, max {max(warm):.3f} s over {repeat}")
    print(f"  same, every candidate conditioned on all 1,000 models: {t_full:.3f} s; "
          f"local vs full posterior mean: max |diff| {np.abs(local - every).max():.4f}, "
          f"Spearman {rho(local, every):.3f}")
    print(f"  one-off 1,000 x 1,000 OTMANN matrix (held by the map's distance cache): {t_matrix:.2f} s")
    print(f"  ready {info['ready']}, best {info['best']:.4f}, "
          f"predicted {sum(p is not None for p in predicted)} of {len(candidates)}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--replicates", type=int, default=20,
                        help="populations made like the demo's to train and score in (c); 0 skips it")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where (c)'s trained populations are kept")
    args = parser.parse_args(argv)
    if args.replicates < 0:
        parser.error("--replicates must be 0 or more")
    rows = {"quickdraw": correlation_table("(a) REMAP QuickDraw population", *quickdraw()),
            "demo": correlation_table("(b) demo population (demo_logs/)", *demo())}
    if args.replicates:
        replicates(args.replicates, args.cache)
    route_timing(args.repeat)
    ok = all(r["surrogate"] > max(r["nearest"], r["params"]) for r in rows.values())
    print(f"\nTarget (surrogate beats nearest neighbour and parameter count on both sets): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
