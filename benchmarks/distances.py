"""Timings of the structural (OTMANN) distance.

Prints, for populations of n random linked-list CNNs and for the REMAP prototype's
100 QuickDraw specs: OTMANN pairs per second, seconds for the full n x n matrix
(``otmann.distance_matrix``), seconds to add one model (``otmann.distance_row`` of a
new spec against the n), and two NAIVE baselines measured in the same run on a
subset of pairs and extrapolated to all pairs:

* plain: per pair, ``otmann.transport_problem`` (structural features recomputed,
  label costs filled node pair by node pair) and ``ot.emd``;
* nasbot: per pair, features cached per network, label costs by ``np.ix_`` on a
  label table, C_str by broadcasting, null row/column stacked, ``ot.emd``
  (the way NASBOT's OTMANNDistanceComputer.evaluate_single works).

It also reports the largest relative difference between the baselines and ours on
those pairs. The full run ends with a deep population (up to 30 layers).

Run:  python benchmarks/distances.py [--quick] [--naive-pairs N] [--repeat R]

(MDS and route timings are to be added here later.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from remap_tb import otmann  # noqa: E402

QUICKDRAW = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "remap_quickdraw_100.json"


# ---------------------------------------------------------------------------------------
# LOCAL RANDOM-SPEC GENERATOR (temporary). Swap for the project's sampler,
# remap_tb.spec.sampler, once it is in place. It only needs OTMANN-relevant variety:
# linked lists of conv/pool/activation/dropout/batchnorm/dense on a 1x28x28 input.
# ---------------------------------------------------------------------------------------
def random_specs(n: int, seed: int = 0, max_layers: int = 16) -> list[dict]:
    rng = random.Random(seed)
    specs = []
    for _ in range(n):
        layers: list[dict] = []
        size, flat = 28, False
        for _ in range(rng.randint(0, max_layers)):
            choices = ["activation", "dropout", "batchnorm", "dense"]
            if not flat:
                choices += ["conv2d"] * 3 + ["maxpool2d", "avgpool2d"] if size >= 3 else []
            kind = rng.choice(choices)
            if kind == "conv2d":
                k = rng.choice([1, 3, 5])
                if k > size:
                    continue
                layers.append({"type": "conv2d", "filters": rng.choice([8, 16, 32, 64]),
                               "kernel_size": k, "stride": 1, "padding": "valid"})
                size -= k - 1
            elif kind in ("maxpool2d", "avgpool2d"):
                layers.append({"type": kind, "pool_size": 2, "stride": 2})
                size //= 2
            elif kind == "activation":
                layers.append({"type": "activation",
                               "fn": rng.choice(["relu", "tanh", "sigmoid", "elu", "leaky_relu"])})
            elif kind == "dropout":
                layers.append({"type": "dropout", "rate": rng.choice([0.1, 0.25, 0.5])})
            elif kind == "batchnorm":
                layers.append({"type": "batchnorm"})
            else:
                layers.append({"type": "dense", "units": rng.choice([32, 64, 128])})
                flat = True
        specs.append({"schema": 1, "input": {"shape": [1, 28, 28], "num_classes": 10},
                      "layers": layers})
    return specs


def naive_distance(graph_a: otmann.OtmannGraph, graph_b: otmann.OtmannGraph) -> float:
    """NAIVE baseline, plain: build one pair's problem from scratch, call ot.emd.

    ``transport_problem`` recomputes both networks' structural features and fills the
    label costs pair of nodes by pair of nodes; nothing is cached or vectorised.
    """
    import ot

    cost, supply, demand, total = otmann.transport_problem(graph_a, graph_b)
    plan = ot.emd(supply, demand, cost)
    return total * float(np.sum(plan * cost))


def nasbot_style_prepare(graph: otmann.OtmannGraph) -> tuple:
    """Per-network precomputation of the NASBOT-style baseline (done once per network)."""
    return (list(graph.labels), np.asarray(graph.masses), otmann.structural_features(graph))


def nasbot_style_distance(pa: tuple, pb: tuple, labels: list[str], table: np.ndarray) -> float:
    """NAIVE baseline, NASBOT-style: features cached per network, but one pair at a time:
    label costs via np.ix_ on a label table, C_str by broadcasting, null row/column by
    stacking, then ot.emd (what nasbot's OTMANNDistanceComputer.evaluate_single does)."""
    import ot

    (la, ma, fa), (lb, mb, fb) = pa, pb
    ia = [labels.index(x) for x in la]
    ib = [labels.index(x) for x in lb]
    cost = table[np.ix_(ia, ib)] + np.abs(fa[:, None, :] - fb[None, :, :]).mean(axis=2)
    cost = np.vstack([cost, otmann.NULL_COST * np.ones((1, cost.shape[1]))])
    cost = np.hstack([cost, otmann.NULL_COST * np.ones((cost.shape[0], 1))])
    cost[-1, -1] = 0.0
    ta, tb = ma.sum(), mb.sum()
    total = ta + tb
    plan = ot.emd(np.append(ma, tb) / total, np.append(mb, ta) / total, cost)
    return total * float(np.sum(plan * cost))


def time_naive(specs: list[dict], n_pairs: int, seed: int = 1) -> dict:
    """Pairs/s of both naive baselines on n_pairs random pairs, and their max relative
    difference to the fast path."""
    rng = random.Random(seed)
    graphs = [otmann.graph_from_spec(s) for s in specs]
    pairs = [tuple(rng.sample(range(len(specs)), 2)) for _ in range(n_pairs)]
    t0 = time.perf_counter()
    plain = [naive_distance(graphs[i], graphs[j]) for i, j in pairs]
    plain_rate = n_pairs / (time.perf_counter() - t0)
    labels = sorted({x for g in graphs for x in g.labels})
    table = np.array([[otmann.label_cost(a, b) for b in labels] for a in labels])
    t0 = time.perf_counter()
    prepared = [nasbot_style_prepare(g) for g in graphs]
    nasbot = [nasbot_style_distance(prepared[i], prepared[j], labels, table) for i, j in pairs]
    nasbot_rate = n_pairs / (time.perf_counter() - t0)
    fast = [otmann.distance(specs[i], specs[j]) for i, j in pairs]
    rel = max(abs(x - y) / max(abs(y), 1e-300) for ref in (plain, nasbot)
              for x, y in zip(ref, fast) if x or y)
    return {"plain": plain_rate, "nasbot": nasbot_rate, "rel": rel}


def time_population(name: str, specs: list[dict], naive_pairs: int, repeat: int) -> dict:
    n = len(specs)
    n_pairs = n * (n - 1) // 2
    n_unique = len({json.dumps(s, sort_keys=True) for s in specs})
    t_matrix = cpu_matrix = math.inf
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        matrix = otmann.distance_matrix(specs)
        t_matrix = min(t_matrix, time.perf_counter() - t0)
        cpu_matrix = min(cpu_matrix, time.process_time() - c0)
    if not (np.all(np.isfinite(matrix)) and np.array_equal(matrix, matrix.T)):
        raise RuntimeError(f"{name}: matrix not finite and symmetric")
    new = random_specs(1, seed=12345)[0]
    t_row = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        row = otmann.distance_row(new, specs)
        t_row = min(t_row, time.perf_counter() - t0)
    if not np.all(np.isfinite(row)):
        raise RuntimeError(f"{name}: row not finite")
    naive = time_naive(specs, naive_pairs)
    return {
        "name": name, "n": n, "unique": n_unique, "pairs": n_pairs,
        "matrix_s": t_matrix, "matrix_cpu_s": cpu_matrix, "pairs_per_s": n_pairs / t_matrix,
        "row_s": t_row,
        "plain_per_s": naive["plain"], "nasbot_per_s": naive["nasbot"],
        "max_rel_diff": naive["rel"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small n (100, 300) only")
    parser.add_argument("--naive-pairs", type=int, default=2000,
                        help="pairs the naive baselines are timed on (then extrapolated)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time our matrix and row this many times and keep the fastest")
    args = parser.parse_args(argv)
    sizes = (100, 300) if args.quick else (100, 500, 1000)

    t0 = time.perf_counter()
    import ot  # noqa: F401  (timed apart: POT imports its backends, torch included)
    t_import = time.perf_counter() - t0
    otmann.distance(random_specs(1)[0], random_specs(1, seed=1)[0])  # warm-up
    print(f"OTMANN benchmark: python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"POT {ot.__version__}, {os.cpu_count()} CPUs, single process, best of "
          f"{args.repeat}; 'import ot' took {t_import:.2f} s (not counted below)")
    print("random specs: LOCAL generator in benchmarks/distances.py (to be replaced by "
          "remap_tb.spec.sampler)")
    rows = []
    for n in sizes:
        rows.append(time_population(f"random n={n}", random_specs(n, seed=n), args.naive_pairs,
                                    args.repeat))
    if not args.quick:
        rows.append(time_population("random deep n=1000", random_specs(1000, seed=7, max_layers=30),
                                    args.naive_pairs, args.repeat))
    if QUICKDRAW.exists():
        models = json.loads(QUICKDRAW.read_text())["models"]
        rows.append(time_population("REMAP QuickDraw 100", [m["spec"] for m in models],
                                    args.naive_pairs, args.repeat))
    else:
        print(f"(skipping QuickDraw: {QUICKDRAW} not found)")

    header = (f"{'population':<20}{'n':>5}{'uniq':>6}{'pairs':>8}{'matrix s':>9}{'cpu s':>7}"
              f"{'pairs/s':>9}"
              f"{'+1 row s':>9} |{'plain p/s':>10}{'plain s':>9}{'ratio':>7} |"
              f"{'nasbot p/s':>11}{'nasbot s':>9}{'ratio':>7} |{'max rel':>9}")
    print()
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['name']:<20}{r['n']:>5}{r['unique']:>6}{r['pairs']:>8}{r['matrix_s']:>9.3f}"
              f"{r['matrix_cpu_s']:>7.2f}"
              f"{r['pairs_per_s']:>9.0f}{r['row_s']:>9.4f} |"
              f"{r['plain_per_s']:>10.0f}{r['pairs'] / r['plain_per_s']:>9.1f}"
              f"{r['pairs_per_s'] / r['plain_per_s']:>6.0f}x |"
              f"{r['nasbot_per_s']:>11.0f}{r['pairs'] / r['nasbot_per_s']:>9.1f}"
              f"{r['pairs_per_s'] / r['nasbot_per_s']:>6.0f}x |{r['max_rel_diff']:>9.1e}")
    print()
    print("matrix s (wall) / cpu s (process CPU time; the gap is other load on the machine): "
          "otmann.distance_matrix on all n specs (pairs/s counts all n(n-1)/2 pairs;")
    print("  identical networks are solved once, uniq = distinct specs); +1 row s: "
          "otmann.distance_row of one new spec against the n.")
    print(f"plain: per pair transport_problem (features recomputed, label costs in a Python "
          f"loop) + ot.emd; nasbot: per pair, features cached")
    print(f"  per network, np.ix_ label table + broadcasting + ot.emd. Both timed on "
          f"{args.naive_pairs} random pairs; 's' columns extrapolate to all pairs.")
    print("ratio: our pairs/s over the baseline's; max rel: largest relative difference of "
          "either baseline to ours on those pairs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
