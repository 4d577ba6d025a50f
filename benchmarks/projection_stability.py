"""Timings and stability of the MDS projections (remap_tb.projection), in detail.

Prints four tables (populations from ``_fixtures.population``: the project's sampler):

1. MDS seconds for n random specs (OTMANN distances): ours (classical scaling +
   blocked float32 SMACOF) next to ``sklearn.manifold.MDS(metric="precomputed",
   init="classical_mds")``, with Stress-1.
2. Adding one model to n = 1,000: new distance row (DistanceCache + otmann.distance_row)
   + warm layout update (``_fixtures.add_one``), next to a NAIVE baseline measured in the
   same run (full OTMANN matrix + cold scikit-learn MDS), and the ratio; plus the same
   through ProjectionService end to end and its cached answer time.
3. Stability: mean displacement of the 200 old points after adding 10 models, as a
   fraction of the old layout's RMS radius, for a cold re-fit, a cold re-fit aligned by
   Procrustes, and our warm start + Procrustes; structural and post-hoc distances.
4. (``--big``) 5,000 models from scratch in ProjectionService: landmark MDS (issue 13;
   exact against landmark: ``benchmarks/scale_quality.py``).

``benchmarks/distances.py`` prints the issue's headline figures against their targets.

Run:  python benchmarks/projection_stability.py [--quick] [--big]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import _fixtures as fx
from remap_tb import otmann
from remap_tb.prediction_distance import hamming_matrix
from remap_tb.projection import ProjectionService, StableMDS, procrustes_align


def mds_timings(sizes: list[int], population: list[dict], repeats: int) -> None:
    rows = []
    for n in sizes:
        D = otmann.distance_matrix(population[:n])
        ours, t_ours = fx.best_of(repeats, StableMDS().fit, D.astype(np.float32))
        theirs, t_sk = fx.timed(fx.sklearn_mds, D)
        rows.append([n, f"{t_ours:.3f}", ours.n_iter_, f"{ours.stress_:.4f}",
                     f"{t_sk:.3f}", theirs.n_iter_, f"{theirs.stress_:.4f}"])
    fx.table(f"1. MDS of OTMANN distances (random specs), cold start; ours: best of {repeats}+",
             ["n", "ours s", "iters", "stress-1", "sklearn MDS s", "iters", "stress-1"], rows, spaced=True)


def add_one(n: int, population: list[dict], repeats: int) -> None:
    """Median over ``repeats`` different new models, each added to the same n."""
    ours = fx.add_one(population[:n], population[n:n + repeats])
    D_full, t_naive_d = fx.timed(otmann.distance_matrix, population[:n + 1])
    cold, t_naive_m = fx.timed(fx.sklearn_mds, D_full)
    t_naive = t_naive_d + t_naive_m

    # End to end through the service: the population is laid out, then models arrive.
    items = [(f"m{i}", s) for i, s in enumerate(population[:n + repeats])]
    t_service, answers = [], []
    with ProjectionService(None) as svc:
        svc.layout("e", "structural", items[:n])
        svc.wait_idle(600)
        for j in range(repeats):
            start = time.perf_counter()
            svc.layout("e", "structural", items[:n + j + 1])
            svc.wait_idle(600)
            t_service.append(time.perf_counter() - start)
        for _ in range(50):
            answers.append(fx.timed(svc.layout, "e", "structural", items)[1])
        version = svc.layout("e", "structural", items)["version"]
    med = np.median
    rows = [
        ["ours: new row + warm layout", f"{ours['total_s']:.3f}",
         f"{ours['row_s']:.3f} + {ours['layout_s']:.3f}", f"{ours['stress']:.4f}"],
        ["naive: full matrix + cold sklearn MDS", f"{t_naive:.3f}",
         f"{t_naive_d:.3f} + {t_naive_m:.3f}", f"{cold.stress_:.4f}"],
        ["ratio naive / ours", f"{t_naive / ours['total_s']:.0f}x", "", ""],
        [f"ProjectionService end to end (to v{version})", f"{med(t_service):.3f}", "", ""],
        ["cached layout() answer, median of 50", f"{med(answers) * 1e3:.2f} ms", "", ""],
    ]
    fx.table(f"2. Add one model to n = {n} (OTMANN; ours: median of {repeats} additions)",
             ["", "seconds", "row + layout", "stress-1"], rows, spaced=True)


def displacement(before: np.ndarray, after: np.ndarray) -> float:
    radius = np.sqrt(np.mean(np.sum((before - before.mean(axis=0)) ** 2, axis=1)))
    return float(np.mean(np.linalg.norm(after - before, axis=1)) / radius)


def stability(n_old: int, n_add: int, population: list[dict]) -> None:
    preds = np.array(fx.hamming_population(n_old + n_add, 2000, seed=0, families=6))
    matrices = {"structural (OTMANN)": otmann.distance_matrix(population[:n_old + n_add]),
                "posthoc (Hamming)": hamming_matrix(preds)}
    rows = []
    for name, D in matrices.items():
        old = StableMDS().fit(D[:n_old, :n_old]).embedding_
        cold = StableMDS(random_state=1).fit(D).embedding_
        R, t = procrustes_align(cold[:n_old], old)
        init = np.full((n_old + n_add, 2), np.nan)
        init[:n_old] = old
        warm = StableMDS().fit(D, init=init)
        rows.append([name, f"{displacement(old, cold[:n_old]):.4f}",
                     f"{displacement(old, (cold @ R + t)[:n_old]):.4f}",
                     f"{displacement(old, warm.embedding_[:n_old]):.4f}", warm.n_iter_])
    fx.table(f"3. Mean displacement of {n_old} old points after adding {n_add} (fraction of RMS radius)",
             ["distance", "cold re-fit", "cold + Procrustes", "ours: warm + Procrustes", "iters"], rows,
             spaced=True)


def big(n: int) -> None:
    rows = []
    preds = fx.hamming_population(n, 10_000, seed=1)
    specs = fx.population(n, seed=7)
    for label, kind, items in (("posthoc (m = 10,000)", "posthoc", [(f"m{i}", p) for i, p in enumerate(preds)]),
                               ("structural", "structural", [(f"m{i}", s) for i, s in enumerate(specs)])):
        r = fx.service_from_scratch(kind, items)
        rows.append([label, n, f"{r['seconds']:.1f}", f"{r['max_answer_s'] * 1e3:.2f}", f"{r['stress']:.4f}",
                     r["points"]])
    fx.table(f"4. {n} models from scratch in ProjectionService (landmark MDS above projection.EXACT_MAX; "
             "stress over the landmark pairs)",
             ["distance", "n", "seconds", "slowest layout() answer meanwhile, ms", "stress-1", "points"], rows,
             spaced=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--big", action="store_true", help="also lay out 5,000 models from scratch (minutes)")
    args = parser.parse_args()
    sizes, n_add_one = ([100, 300], 300) if args.quick else ([100, 500, 1000], 1000)
    repeats = 3 if args.quick else 5
    population = fx.population(max(sizes + [n_add_one]) + repeats, seed=0)
    fx.warm_up()
    print(f"remap-tb projection benchmark ({'quick' if args.quick else 'full'}); specs: {fx.describe_population()}")
    mds_timings(sizes, population, repeats)
    add_one(n_add_one, population, repeats)
    stability(200, 10, fx.population(210, seed=3))
    if args.big:
        big(5000)


if __name__ == "__main__":
    main()
