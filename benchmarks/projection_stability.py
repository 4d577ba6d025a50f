"""Timings and stability of the MDS projections (remap_tb.projection).

Prints four tables:

1. MDS seconds for n random specs (OTMANN distances of ``remap_tb.spec.sampler``
   populations): ours (classical scaling + blocked float32 SMACOF) next to
   ``sklearn.manifold.MDS(metric="precomputed", init="classical_mds")``, with Stress-1.
2. Adding one model to n = 1,000: new distance row (DistanceCache + otmann.distance_row)
   + warm layout update, next to a NAIVE baseline measured in the same run (full OTMANN
   matrix + cold scikit-learn MDS), and the ratio; plus the same through
   ProjectionService end to end and its cached answer time.
3. Stability: mean displacement of the 200 old points after adding 10 models, as a
   fraction of the old layout's RMS radius, for a cold re-fit, a cold re-fit aligned by
   Procrustes, and our warm start + Procrustes; structural and post-hoc distances.
4. (``--big``) 5,000 models from scratch in ProjectionService: full matrix + layout.

Run:  python benchmarks/projection_stability.py [--quick] [--big]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from remap_tb import otmann  # noqa: E402
from remap_tb.distance_cache import DistanceCache  # noqa: E402
from remap_tb.projection import ProjectionService, StableMDS, procrustes_align  # noqa: E402
from remap_tb.spec.sampler import sample_specs  # noqa: E402

INPUT_SHAPE, NUM_CLASSES = (1, 8, 8), 10


def specs(n: int, seed: int = 0) -> list[dict]:
    return sample_specs(n, INPUT_SHAPE, NUM_CLASSES, seed).specs


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def sklearn_mds(D: np.ndarray):
    from sklearn.manifold import MDS

    return MDS(n_components=2, metric="precomputed", init="classical_mds", n_init=1,
               normalized_stress=True, random_state=0).fit(np.asarray(D, dtype=np.float64))


def table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    line = "  ".join("-" * w for w in widths)
    print(line)
    for k, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            print(line)
    print(line)


def mds_timings(sizes: list[int], population: list[dict], repeats: int) -> None:
    rows = []
    for n in sizes:
        D = otmann.distance_matrix(population[:n])
        runs = [timed(StableMDS().fit, D.astype(np.float32)) for _ in range(repeats)]
        ours, t_ours = runs[0][0], min(t for _, t in runs)
        theirs, t_sk = timed(sklearn_mds, D)
        rows.append([n, f"{t_ours:.3f}", ours.n_iter_, f"{ours.stress_:.4f}",
                     f"{t_sk:.3f}", theirs.n_iter_, f"{theirs.stress_:.4f}"])
    table(f"1. MDS of OTMANN distances (random specs), cold start; ours: best of {repeats}",
          ["n", "ours s", "iters", "stress-1", "sklearn MDS s", "iters", "stress-1"], rows)


def add_one(n: int, population: list[dict], repeats: int) -> None:
    """Median over ``repeats`` different new models, each added to the same n."""
    graphs = [otmann.graph_from_spec(s) for s in population[:n + repeats]]
    keys = [f"s{i}" for i in range(n + repeats)]
    by_key = dict(zip(keys, graphs))

    def row(k, others):
        return otmann.distance_row(by_key[k], [by_key[x] for x in others])

    cache = DistanceCache(None, "bench")
    cache.matrix(keys[:n], row, lambda ks: otmann.distance_matrix([by_key[k] for k in ks]))
    base = StableMDS().fit(cache.matrix(keys[:n], row))
    init = np.vstack([base.embedding_, [[np.nan, np.nan]]])
    t_row, t_layout, t_ours, stresses = [], [], [], []
    for j in range(repeats):
        ks = keys[:n] + [keys[n + j]]
        start = time.perf_counter()
        D = cache.matrix(ks, row)
        mid = time.perf_counter()
        warm = StableMDS().fit(D, init=init)
        end = time.perf_counter()
        t_row.append(mid - start)
        t_layout.append(end - mid)
        t_ours.append(end - start)
        stresses.append(warm.stress_)
    D_full, t_naive_d = timed(otmann.distance_matrix, population[:n + 1])
    cold, t_naive_m = timed(sklearn_mds, D_full)
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
            answers.append(timed(svc.layout, "e", "structural", items)[1])
        version = svc.layout("e", "structural", items)["version"]
    med = np.median
    rows = [
        ["ours: new row + warm layout", f"{med(t_ours):.3f}",
         f"{med(t_row):.3f} + {med(t_layout):.3f}", f"{med(stresses):.4f}"],
        ["naive: full matrix + cold sklearn MDS", f"{t_naive:.3f}",
         f"{t_naive_d:.3f} + {t_naive_m:.3f}", f"{cold.stress_:.4f}"],
        ["ratio naive / ours", f"{t_naive / med(t_ours):.0f}x", "", ""],
        [f"ProjectionService end to end (to v{version})", f"{med(t_service):.3f}", "", ""],
        ["cached layout() answer, median of 50", f"{med(answers) * 1e3:.2f} ms", "", ""],
    ]
    table(f"2. Add one model to n = {n} (OTMANN; ours: median of {repeats} additions)",
          ["", "seconds", "row + layout", "stress-1"], rows)


def displacement(before: np.ndarray, after: np.ndarray) -> float:
    radius = np.sqrt(np.mean(np.sum((before - before.mean(axis=0)) ** 2, axis=1)))
    return float(np.mean(np.linalg.norm(after - before, axis=1)) / radius)


def stability(n_old: int, n_add: int, population: list[dict]) -> None:
    rng = np.random.default_rng(0)
    family = rng.integers(0, 10, size=(6, 2000))
    preds = []
    for i in range(n_old + n_add):
        p = family[i % 6].copy()
        flip = rng.random(2000) < rng.uniform(0.05, 0.6)
        p[flip] = rng.integers(0, 10, size=int(flip.sum()))
        preds.append(p)
    from remap_tb.prediction_distance import hamming_matrix

    matrices = {"structural (OTMANN)": otmann.distance_matrix(population[:n_old + n_add]),
                "posthoc (Hamming)": hamming_matrix(np.array(preds))}
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
    table(f"3. Mean displacement of {n_old} old points after adding {n_add} (fraction of RMS radius)",
          ["distance", "cold re-fit", "cold + Procrustes", "ours: warm + Procrustes", "iters"], rows)


def big(n: int) -> None:
    rows = []
    population = specs(n, seed=7)
    for kind, items in (("posthoc (m = 10,000)", None), ("structural", None)):
        if kind.startswith("posthoc"):
            rng = np.random.default_rng(1)
            family = rng.integers(0, 10, size=(8, 10_000), dtype=np.uint8)
            items = []
            for i in range(n):
                p = family[i % 8].copy()
                flip = rng.random(10_000) < rng.uniform(0.05, 0.6)
                p[flip] = rng.integers(0, 10, size=int(flip.sum()))
                items.append((f"m{i}", p))
            name = "posthoc"
        else:
            items = [(f"m{i}", s) for i, s in enumerate(population)]
            name = "structural"
        with ProjectionService(None) as svc:
            start = time.perf_counter()
            svc.layout("e", name, items)
            svc.wait_idle(3600)
            total = time.perf_counter() - start
            result = svc.layout("e", name, items)
        rows.append([kind, n, f"{total:.1f}", f"{result['stress']:.4f}", len(result["points"])])
    table(f"4. {n} models from scratch in ProjectionService (full matrix + layout)",
          ["distance", "n", "seconds", "stress-1", "points"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--big", action="store_true", help="also lay out 5,000 models from scratch (minutes)")
    args = parser.parse_args()
    sizes, n_add_one = ([100, 300], 300) if args.quick else ([100, 500, 1000], 1000)
    population = specs(max(sizes + [n_add_one]) + 5, seed=0)
    print(f"remap-tb projection benchmark ({'quick' if args.quick else 'full'}); "
          f"random specs on input {INPUT_SHAPE}, {NUM_CLASSES} classes")
    repeats = 3 if args.quick else 5
    mds_timings(sizes, population, repeats)
    add_one(n_add_one, population, repeats)
    stability(200, 10, specs(210, seed=3))
    if args.big:
        big(5000)


if __name__ == "__main__":
    main()
