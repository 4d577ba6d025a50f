"""Maps at scale (issue 13): the landmark maps against the exact maps, in the same run.

For n models (``_fixtures.population`` specs; prediction vectors from an item-response
model, correlated with accuracy, see ``predictions``), through the real
``ProjectionService``:

* exact: ``exact_max`` above n (full distance matrix, SMACOF on all pairs; what every
  map up to ``projection.EXACT_MAX`` does), structural then normalised then post-hoc,
  one after the other as before, plus the two in parallel lanes;
* landmark: ``exact_max`` below n (k landmark rows, ``remap_tb.landmark_mds``).

Printed per map (structural = unnormalised OTMANN d, relative = d / S, prediction =
Hamming): seconds to the layout, memory (the process's peak RSS growth, and the bytes the
distances take), Stress-1 over *all* pairs of the exact distances for both maps and
their ratio (target <= 1.2), and two neighbour figures:

* recall vs exact map: for each model, the share of its 10 nearest models on the exact
  map that are among its 10 nearest on the landmark map (ties counted in; target >= 0.8);
  next to it, the same between the exact map and SMACOF restarted from that map moved
  by a little noise (the exact map's own stability: what "the same map" means);
* true-NN kept: the share of each model's 10 nearest models *by distance* that are among
  its 10 nearest on the map, for both maps (how well a 2-D map can keep neighbours).

Plus the saving of the normalised map sharing the structural distances (issue 13: it
recomputed every OTMANN pair).

Run:  python benchmarks/scale_quality.py [--n 2000] [--landmarks 100] [--m 500] [--no-parallel]
      (5,000 exact takes several minutes of OTMANN on 2 cores)
      python benchmarks/scale_quality.py --n 20000 --landmark-only   (no exact map)
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

import _fixtures as fx
from remap_tb.projection import N_LANDMARKS, ProjectionService, procrustes_align, smacof


def predictions(n: int, m: int = 500, classes: int = 10, seed: int = 0) -> list[np.ndarray]:
    """``n`` predicted-label vectors on ``m`` validation samples: model i with accuracy a_i ~
    U(0.1, 0.98) (as ``_fixtures.write_runs``) answers sample s right when
    ``z_i - b_s + e > 0`` (b_s: the sample's difficulty, shared by all models, e ~ N(0, 0.5)),
    with z_i set so that a_i is its expected accuracy (Rasch-like item response: easy samples
    right for nearly everyone, so errors are correlated); a wrong answer is the sample's
    usual confusion (60 %) or another class at random."""
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, m)
    confusion = (truth + rng.integers(1, classes, m)) % classes
    difficulty = rng.normal(0, 1, m)
    acc = rng.uniform(0.1, 0.98, n)
    scale = np.sqrt(1 + 0.5 ** 2)
    z = norm.ppf(acc) * scale
    out = []
    for i in range(n):
        right = z[i] - difficulty + rng.normal(0, 0.5, m) > 0
        wrong = np.where(rng.random(m) < 0.6, confusion, rng.integers(0, classes, m))
        out.append(np.where(right, truth, wrong).astype(np.uint8))
    return out


def stress1(X: np.ndarray, D: np.ndarray, block: int = 500) -> float:
    """Kruskal's Stress-1 of layout X over all pairs of D."""
    num = den = 0.0
    for s in range(0, len(X), block):
        dl = np.linalg.norm(X[s:s + block, None] - X[None], axis=2)
        Db = np.asarray(D[s:s + block], dtype=np.float64)
        num += float(((dl - Db) ** 2).sum())
        den += float((Db ** 2).sum())
    return float(np.sqrt(num / den)) if den else 0.0


def _knn(X: np.ndarray, k: int):
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(X).query(X, k=k + 1)
    return idx[:, 1:], dist[:, -1]


def recall(reference_sets: np.ndarray, X: np.ndarray, k: int = 10) -> float:
    """Share of ``reference_sets`` (n, k) found among each point's k nearest on X (ties in)."""
    _, radius = _knn(X, k)
    gaps = np.linalg.norm(X[:, None, :] - X[reference_sets], axis=2)
    return float((gaps <= radius[:, None] * (1 + 1e-9) + 1e-12).mean())


def true_neighbours(D: np.ndarray, k: int = 10) -> np.ndarray:
    return np.argsort(np.asarray(D), axis=1, kind="stable")[:, 1:k + 1]


def coords(result: dict, ids: list[str]) -> np.ndarray:
    xy = {p["id"]: (p["x"], p["y"]) for p in result["points"]}
    return np.array([xy[i] for i in ids])


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_maps(items: dict, exact_max: int, n_landmarks: int | None, parallel: bool = False,
             extra: dict | None = None) -> dict:
    """Lay out the three maps in one service; seconds per map (sequential: each one's own
    time; parallel: all requested at once, the time until all are done). With ``extra``
    (kind -> one more item), then the seconds to place that new model on each map
    (``layout(wait=)`` as the route asks)."""
    out = {}
    with ProjectionService(None, exact_max=exact_max, n_landmarks=n_landmarks) as svc:
        if parallel:
            start = time.perf_counter()
            for kind, its in items.items():
                svc.layout("e", kind, its)
            assert svc.wait_idle(7200)
            total = time.perf_counter() - start
            for kind, its in items.items():
                out[kind] = {"result": svc.layout("e", kind, its), "seconds": total}
        else:
            for kind, its in items.items():
                start = time.perf_counter()
                svc.layout("e", kind, its)
                assert svc.wait_idle(7200)
                out[kind] = {"result": svc.layout("e", kind, its), "seconds": time.perf_counter() - start}
        for kind, item in (extra or {}).items():
            start = time.perf_counter()
            res = svc.layout("e", kind, items[kind] + [item], wait=60)
            out[kind]["add_one"] = time.perf_counter() - start
            assert not res["computing"] and any(p["id"] == item[0] for p in res["points"])
        if exact_max >= len(next(iter(items.values()))):
            out["_D"] = {}
            for kind, its in items.items():   # the n models' matrix (the new one dropped)
                ids, keys, content = svc._contents(kind, its)
                out["_D"][kind] = svc._distances(kind, keys, content)
            out["_cache_bytes"] = sum(c.nbytes for c in svc._caches.values())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--landmarks", type=int, default=None,
                    help="landmarks of every map (default: projection.N_LANDMARKS per lane)")
    ap.add_argument("--m", type=int, default=500, help="validation samples per prediction vector")
    ap.add_argument("--no-parallel", action="store_true", help="skip the parallel exact run")
    ap.add_argument("--landmark-only", action="store_true",
                    help="only the landmark maps: times, memory, a new model (for 20,000)")
    args = ap.parse_args()
    n = args.n
    fx.warm_up()
    specs = fx.population(n + 1)
    preds = predictions(n + 1, args.m)
    ids = [f"m{i}" for i in range(n)]
    items = {"structural": list(zip(ids, specs)), "structural_normalised": list(zip(ids, specs)),
             "posthoc": list(zip(ids, preds))}
    extra = {"structural": ("new", specs[n]), "structural_normalised": ("new", specs[n]), "posthoc": ("new", preds[n])}
    print(f"{n} models: {fx.describe_population()}; predictions: item-response model, "
          f"{args.m} samples, 10 classes; landmarks: {args.landmarks or N_LANDMARKS}")

    rss0 = maxrss_mb()
    landmark = run_maps(items, exact_max=min(n - 1, 2000), n_landmarks=args.landmarks, extra=extra)
    rss_l = maxrss_mb()
    if args.landmark_only:
        fx.table(f"Landmark maps of {n} models ({args.landmarks or N_LANDMARKS} landmarks), one after the other",
                 ["map", "seconds", "a new model placed, s", "stress-1 (landmark pairs)"],
                 [[name, fx.fmt_s(landmark[k]["seconds"]), f"{landmark[k]['add_one']:.3f}",
                   f"{landmark[k]['result']['stress']:.4f}"]
                  for k, name in (("structural", "structural"), ("structural_normalised", "relative"),
                                  ("posthoc", "prediction"))])
        together = run_maps(items, exact_max=min(n - 1, 2000), n_landmarks=args.landmarks, parallel=True)
        print(f"all three requested together: {fx.fmt_s(together['posthoc']['seconds'])} s; peak RSS "
              f"{rss0:.0f} MB before, {rss_l:.0f} MB after the landmark maps (+{rss_l - rss0:.0f})")
        return
    landmark_par = run_maps(items, exact_max=min(n - 1, 2000), n_landmarks=args.landmarks, parallel=True)
    exact = run_maps(items, exact_max=n + 2, n_landmarks=args.landmarks, extra=extra)
    rss_e = maxrss_mb()
    exact_par = None if args.no_parallel else run_maps(items, exact_max=n + 2, n_landmarks=args.landmarks,
                                                      parallel=True)
    D = exact["_D"]
    rng = np.random.default_rng(5)
    rows = []
    for kind, name in (("structural", "structural"), ("structural_normalised", "relative"),
                       ("posthoc", "prediction")):
        Xe = coords(exact[kind]["result"], ids)
        Xl = coords(landmark[kind]["result"], ids)
        Dk = np.asarray(D[kind], dtype=np.float32)
        se, sl = stress1(Xe, Dk), stress1(Xl, Dk)
        ref, _ = _knn(Xe, 10)
        X0 = Xe + rng.normal(scale=0.02 * Xe.std(), size=Xe.shape)
        Xs = smacof(Dk, X0, 300)[0]
        R, t = procrustes_align(Xs, Xe)
        tn = true_neighbours(Dk)
        rows.append([name, fx.fmt_s(exact[kind]["seconds"]), fx.fmt_s(landmark[kind]["seconds"]),
                     f"{se:.4f}", f"{sl:.4f}", f"{sl / se:.3f}", f"{recall(ref, Xl):.3f}",
                     f"{recall(ref, Xs @ R + t):.3f}", f"{recall(tn, Xe):.3f}", f"{recall(tn, Xl):.3f}"])
    fx.table(f"Maps of {n} models: exact (full matrix + SMACOF) vs landmark "
             f"({args.landmarks or N_LANDMARKS} landmarks), "
             "same run, one map after the other",
             ["map", "exact s", "landmark s", "stress exact", "stress landmark", "ratio", "recall vs exact",
              "exact restarted", "true-NN exact", "true-NN landmark"], rows, spaced=True,
             notes=("relative = d / S: its exact time is the division + SMACOF only, since it shares the "
                    "structural distances; its landmark time reuses the structural landmark rows.",))
    fx.table("A new model placed on each map (layout(wait=60) until it is drawn)",
             ["map", "exact s", "landmark s"],
             [[name, f"{exact[k]['add_one']:.3f}", f"{landmark[k]['add_one']:.3f}"]
              for k, name in (("structural", "structural"), ("structural_normalised", "relative"),
                              ("posthoc", "prediction"))])
    seq_e = sum(exact[k]["seconds"] for k in items)
    seq_l = sum(landmark[k]["seconds"] for k in items)
    par_rows = [["landmark", fx.fmt_s(seq_l), fx.fmt_s(landmark_par["posthoc"]["seconds"])]]
    if exact_par is not None:
        par_rows.insert(0, ["exact", fx.fmt_s(seq_e), fx.fmt_s(exact_par["posthoc"]["seconds"])])
    fx.table("All three maps: one after the other vs requested together (structural and post-hoc lanes)",
             ["method", "sequential", "together"], par_rows)
    struct_pass = exact["structural"]["seconds"]
    fx.table("Memory", ["what", "MB"], [
        ["peak RSS before the maps", f"{rss0:.0f}"],
        ["peak RSS after the landmark maps (+ growth)", f"{rss_l:.0f} (+{rss_l - rss0:.0f})"],
        ["peak RSS after the exact maps (+ growth)", f"{rss_e:.0f} (+{rss_e - rss_l:.0f})"],
        ["exact distance caches (packed float32 triangles)", f"{exact['_cache_bytes'] / 2**20:.1f}"],
        ["same as 3 dense float32 n x n matrices (before issue 13)", f"{3 * 4 * n * n / 2**20:.1f}"],
        ["landmark rows held (d and d/S of the structural pass, float32 k x n)",
         f"{2 * 4 * (args.landmarks or N_LANDMARKS['structural']) * n / 2**20:.1f}"],
    ])
    print(f"normalised map sharing the structural OTMANN pass: saves one full pass, "
          f"~{struct_pass:.1f} s here (the structural map's time, nearly all OTMANN); the relative map now "
          f"took {exact['structural_normalised']['seconds']:.1f} s")


if __name__ == "__main__":
    main()
