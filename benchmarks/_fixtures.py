"""Shared pieces of the benchmark scripts (``distances.py``, ``projection_stability.py``).

* ``population``: random specs from the project's sampler
  (``remap_tb.spec.sampler.sample_specs``), interleaved over several input shapes;
  ``quickdraw_specs``: the REMAP prototype's 100 QuickDraw specs, read at run time;
  ``residual_specs``: random residual networks (spec schema 2), built here without torch.
* ``add_one``: our cost of adding one model to n (new distance row through a
  ``DistanceCache`` + warm ``StableMDS`` update), and the cold MDS fit of the n.
* ``service_from_scratch``: a population laid out from nothing by ``ProjectionService``
  (full matrix + layout in its background thread), polled as the plugin polls it.
* ``write_runs`` / ``make_app``: a logdir of n runs in the trainer's real event format
  (the records a 1-epoch training writes, without training) and TensorBoard's WSGI app
  over it, as in ``tests/test_plugin_http.py``.
* ``scale_history`` / ``write_history_run`` / ``scale_logdir`` / ``write_one_run``: a
  realistic search history of thousands of runs (variations of good parents, inherited
  accuracies and validation answers, curves, failed and diverged runs) written with the
  trainer's writer in parallel processes and cached (``scale.py``, ``dashboard_perf.py``).
* ``timed``, ``best_of``, ``table``, ``sklearn_mds``, ``pct``: small timing and printing helpers.

Not a script; the benchmarks import it (``python benchmarks/<script>.py`` puts this
folder on ``sys.path``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from remap_tb import otmann  # noqa: E402
from remap_tb.distance_cache import DistanceCache  # noqa: E402
from remap_tb.projection import ProjectionService, StableMDS  # noqa: E402
from remap_tb.spec.sampler import sample_specs  # noqa: E402

# The REMAP prototype's QuickDraw population (never copied: read where it lies).
QUICKDRAW = ROOT.parent / "shared" / "data" / "remap_quickdraw_100.json"
# MNIST/QuickDraw-sized and CIFAR-sized inputs; the sampler's default max depth (12).
SHAPES = ((1, 28, 28), (3, 32, 32))
NUM_CLASSES = 10


# -- populations ---------------------------------------------------------------------------


def population(n: int, seed: int = 0, shapes=SHAPES, num_classes: int = NUM_CLASSES) -> list[dict]:
    """``n`` distinct random specs from ``sample_specs``, taken in turn from each input shape."""
    per = -(-n // len(shapes))
    groups = []
    for k, shape in enumerate(shapes):
        result = sample_specs(per, shape, num_classes, seed * 100 + k)
        if len(result.specs) < per:
            raise RuntimeError(result.summary(per))
        groups.append(result.specs)
    return [s for row in itertools.zip_longest(*groups) for s in row if s is not None][:n]


def quickdraw_specs() -> list[dict] | None:
    """The 100 specs of REMAP's QuickDraw demo, or None when the file is not there."""
    if not QUICKDRAW.exists():
        return None
    return [m["spec"] for m in json.loads(QUICKDRAW.read_text())["models"]]


def json_key(spec: dict) -> str:
    """A canonical text of a spec (to count distinct ones)."""
    return json.dumps(spec, sort_keys=True)


def residual_specs(n: int, seed: int = 0, shapes=SHAPES, num_classes: int = NUM_CLASSES,
                   min_layers: int = 10, max_layers: int = 40) -> list[dict]:
    """``n`` distinct random residual networks (spec schema 2) of ``min_layers`` to
    ``max_layers`` layers, taken in turn from each input shape.

    A stem (conv k3 padding 1, batchnorm, activation), then basic blocks: conv -
    batchnorm - activation - conv - batchnorm, plus a shortcut from the block's input:
    the identity when the shape is kept, else a 1x1 conv projection (+ batchnorm half
    of the time); an ``add`` of the two, then an activation. A block downsamples
    (stride-2 first conv with integer padding, filters doubled) at random while the
    image is at least 8 pixels wide. Convolutions before a batchnorm have no bias.
    Then global average pooling, and sometimes dropout and a dense layer with an
    activation. Valid under the schema 2 contract (equal shapes into every add).
    """
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: list[dict] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n:
            raise RuntimeError(f"only {len(out)} distinct residual specs in {attempts} draws")
        shape = shapes[len(out) % len(shapes)]
        spec = _residual_spec(rng, shape, num_classes, min_layers, max_layers)
        key = json_key(spec)
        if key not in seen:
            seen.add(key)
            out.append(spec)
    return out


def _residual_spec(rng: np.random.Generator, shape, num_classes: int, min_layers: int,
                   max_layers: int) -> dict:
    target = int(rng.integers(min_layers, max_layers + 1))
    acts = ("relu", "relu", "relu", "leaky_relu", "elu")
    layers: list[dict] = []

    def add(layer: dict) -> int:
        layers.append(layer)
        return len(layers) - 1

    def conv(filters: int, k: int, stride: int = 1, padding=None, inputs=None) -> dict:
        layer = {"type": "conv2d", "filters": filters, "kernel_size": k, "stride": stride,
                 "padding": k // 2 if padding is None else padding, "bias": False}
        if inputs is not None:
            layer["inputs"] = inputs
        return layer

    channels, size = int(shape[0]), int(shape[1])
    filters = int(rng.choice([8, 16]))
    act = str(rng.choice(acts))
    add(conv(filters, 3))
    add({"type": "batchnorm"})
    last = add({"type": "activation", "fn": act})
    channels = filters
    head = [{"type": "globalavgpool"}]
    if rng.random() < 0.4:
        head += [{"type": "dropout", "rate": 0.25}, {"type": "dense", "units": int(rng.choice([32, 64]))},
                 {"type": "activation", "fn": act}]
    while True:
        down = size >= 8 and rng.random() < 0.35
        out_c = channels * 2 if down else channels
        stride = 2 if down else 1
        project = down or out_c != channels
        block = 9 if project else 7  # conv bn act conv bn add act (+ projection conv, bn)
        if len(layers) + block + len(head) > target and len(layers) > 3:
            break
        if len(layers) + block + len(head) > max_layers:
            break
        k = int(rng.choice([3, 3, 3, 5]))
        start = last
        add(conv(out_c, k, stride, padding=k // 2))
        add({"type": "batchnorm"})
        add({"type": "activation", "fn": act})
        add(conv(out_c, k))
        main = add({"type": "batchnorm"})
        if project:
            shortcut = add(conv(out_c, 1, stride, padding=0, inputs=[start]))
            if rng.random() < 0.5:
                shortcut = add({"type": "batchnorm"})
        else:
            shortcut = start
        inputs = [main, shortcut] if rng.random() < 0.7 else [shortcut, main]
        add({"type": "add", "inputs": inputs})
        last = add({"type": "activation", "fn": act})
        channels = out_c
        if down:
            size = (size + 2 * (k // 2) - k) // 2 + 1
    for layer in head:
        add(dict(layer))
    return {"schema": 2, "input": {"shape": list(shape), "num_classes": num_classes},
            "layers": layers}


def describe_residual() -> str:
    shapes = " and ".join("x".join(map(str, s)) for s in SHAPES)
    return ("_fixtures.residual_specs (basic blocks conv-bn-act-conv-bn + identity or 1x1-conv "
            f"shortcut, stride-2 downsampling), inputs {shapes} in turn")


def describe_population() -> str:
    shapes = " and ".join("x".join(map(str, s)) for s in SHAPES)
    return f"remap_tb.spec.sampler.sample_specs, inputs {shapes} in turn, default max depth 12"


# -- timing and printing ---------------------------------------------------------------------


def timed(fn: Callable, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def best_of(repeats: int, fn: Callable, *args, budget: float = 0.5, **kwargs) -> tuple[Any, float]:
    """(first result, fastest wall time) of at least ``repeats`` calls, and of more (up to
    10) while they take under ``budget`` seconds in all: on a shared machine a single
    short timing is mostly noise."""
    out, best = timed(fn, *args, **kwargs)
    spent, done = best, 1
    while done < max(1, repeats) or (done < 10 and spent + best < budget):
        t = timed(fn, *args, **kwargs)[1]
        best, spent, done = min(best, t), spent + t, done + 1
    return out, best


def table(title: str, header: list[str], rows: list[list], notes: tuple[str, ...] = (),
          spaced: bool = False) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned; compact
    (title, header, rule, rows, notes) unless ``spaced`` (blank line and framing rules)."""
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}" if spaced else title)
    if spaced:
        print(line)
    for k, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if k == 0:
            print(line)
    if spaced:
        print(line)
    for note in notes:
        print(note)


def sklearn_mds(D: np.ndarray):
    """scikit-learn's metric MDS on a precomputed matrix (a reference, not what we use)."""
    from sklearn.manifold import MDS

    return MDS(n_components=2, metric="precomputed", init="classical_mds", n_init=1,
               normalized_stress=True, random_state=0).fit(np.asarray(D, dtype=np.float64))


def warm_up() -> None:
    """Run each code path once on a tiny input so one-off costs (imports, first BLAS and
    POT calls) are not counted in the first timing."""
    specs = population(130, seed=99)
    D = otmann.distance_matrix(specs)
    otmann.distance_row(specs[0], specs[1:])
    for n in (100, 130):  # dense eigensolver up to 100 points, Lanczos above
        mds = StableMDS().fit(D[:n - 1, :n - 1])
        StableMDS().fit(D[:n, :n], init=np.vstack([mds.embedding_, [[np.nan, np.nan]]]))


# -- our add-one-model path ----------------------------------------------------------------


def add_one(base: list[dict], new: list[dict], repeats: int = 1) -> dict:
    """Time adding each spec of ``new`` (one at a time) to the laid-out ``base``.

    The n base distances sit in a ``DistanceCache`` (as in ``ProjectionService``) and
    the base layout is a cold ``StableMDS`` fit (timed: ``cold_s``, best of ``repeats``).
    Each addition costs the new spec's graph, one ``otmann.distance_row`` against the n
    (through the cache) and a warm ``StableMDS`` update of the n + 1 points. Times are
    medians over the additions.
    """
    n = len(base)
    keys = [f"s{i}" for i in range(n + len(new))]
    graphs = {k: otmann.graph_from_spec(s) for k, s in zip(keys, base)}

    def row(k, others):
        return otmann.distance_row(graphs[k], [graphs[o] for o in others])

    def block(ks):
        return otmann.distance_matrix([graphs[k] for k in ks])

    cache = DistanceCache(None, "bench")
    D = cache.matrix(keys[:n], row, block)
    cold, cold_s = best_of(repeats, StableMDS().fit, D)
    init = np.vstack([cold.embedding_, [[np.nan, np.nan]]])
    t_row, t_layout, stress = [], [], []
    for j, spec in enumerate(new):
        k = keys[n + j]
        start = time.perf_counter()
        graphs[k] = otmann.graph_from_spec(spec)
        D1 = cache.matrix(keys[:n] + [k], row)
        mid = time.perf_counter()
        warm = StableMDS().fit(D1, init=init)
        end = time.perf_counter()
        t_row.append(mid - start)
        t_layout.append(end - mid)
        stress.append(warm.stress_)
    med = lambda xs: float(np.median(xs))  # noqa: E731
    return {"n": n, "D": D, "cold_s": cold_s, "cold_iter": cold.n_iter_, "cold_stress": float(cold.stress_),
            "row_s": med(t_row), "layout_s": med(t_layout),
            "total_s": med([a + b for a, b in zip(t_row, t_layout)]), "stress": med(stress)}


# -- the background service from scratch ------------------------------------------------------


def service_from_scratch(kind: str, items: list[tuple[str, Any]], poll: float = 0.5,
                         timeout: float = 3600) -> dict:
    """Lay ``items`` out from nothing in a ``ProjectionService`` (in memory), polling
    ``layout()`` every ``poll`` seconds as the plugin's route does until it stops
    "computing". Returns the seconds, the slowest ``layout()`` answer while it computed
    (a request never waits on the work) and the result."""
    answers = []
    with ProjectionService(None) as svc:
        start = time.perf_counter()
        result, t = timed(svc.layout, "bench", kind, items)
        answers.append(t)
        deadline = start + timeout
        while result["computing"] and time.perf_counter() < deadline:
            time.sleep(poll)
            result, t = timed(svc.layout, "bench", kind, items)
            answers.append(t)
        seconds = time.perf_counter() - start
    if result["computing"] or result.get("error"):
        raise RuntimeError(f"{kind} layout of {len(items)} did not finish: {result.get('error')}")
    return {"seconds": seconds, "max_answer_s": max(answers), "polls": len(answers),
            "stress": result["stress"], "points": len(result["points"])}


def hamming_population(n: int, m: int, seed: int = 1, families: int = 8) -> list[np.ndarray]:
    """``n`` predicted-label vectors of length ``m``: noisy copies of a few "families"."""
    rng = np.random.default_rng(seed)
    family = rng.integers(0, 10, size=(families, m), dtype=np.uint8)
    out = []
    for i in range(n):
        p = family[i % families].copy()
        flip = rng.random(m) < rng.uniform(0.05, 0.6)
        p[flip] = rng.integers(0, 10, size=int(flip.sum()))
        out.append(p)
    return out


# -- a logdir in the trainer's event format, and the plugin over it ----------------------------


def write_runs(logdir: str, n: int, seed: int = 0, epochs: int = 1) -> dict:
    """Write ``n`` runs under ``logdir`` holding the records ``trainer.train.train`` writes
    for an ``epochs``-epoch training on ``digits`` -- model record, hparams session,
    running/done status, the four standard scalars per epoch, evaluation (per-class
    accuracy, confusion matrix) and the predictions tensor -- plus ``request.json``,
    through the trainer's own writer (``trainer.summaries``) and ``remap_tb.metadata``'s
    builders. Nothing is trained: specs come from the sampler (digits input), predictions
    are random at a random accuracy. Half the models after the first ten are variations
    of an earlier one (provenance chains). Returns the experiment (fingerprint) id."""
    from remap_tb import metadata
    from remap_tb.atomic import atomic_write_json
    from remap_tb.requests import dataset_config, make_request
    from remap_tb.spec import analyse, spec_hash
    from trainer.datasets import load_dataset
    from trainer.summaries import RunWriter, hparams_summary_for, predictions_summary
    from trainer.train import per_class_accuracy

    dataset = dataset_config({"name": "digits"})
    data = load_dataset(dataset)
    y = data.y_val.numpy()
    m, k = int(y.size), data.num_classes
    specs = population(n, seed, shapes=(data.input_shape,), num_classes=k)
    rng = np.random.default_rng(seed)
    ids: list[str] = []
    for i, spec in enumerate(specs):
        run_id = f"bench-{i:04d}"
        provenance = {}
        if i >= 10 and rng.random() < 0.5:
            provenance = {"parent": ids[int(rng.integers(len(ids)))], "origin": "variation",
                          "changes": ["changed layer 1"]}
        request = make_request(spec, dataset=dataset, training={"epochs": epochs}, provenance=provenance,
                               request_id=run_id)
        ids.append(run_id)
        spec = request["spec"]
        analysis = analyse(spec)
        run_dir = os.path.join(logdir, run_id)
        os.makedirs(run_dir)
        atomic_write_json(os.path.join(run_dir, metadata.REQUEST_FILE), request)
        accuracy = rng.uniform(0.1, 0.98)
        with RunWriter(run_dir) as writer:
            writer.record(metadata.MODEL_TAG, metadata.model_record(
                request, 1, data.class_names, data.fingerprint, analysis.total_params, len(spec["layers"]),
                spec_hash(spec)), 0)
            writer.add(hparams_summary_for(request, analysis.total_params, dataset["name"]), 0)
            writer.record(metadata.STATUS_TAG, metadata.status_record(1, metadata.RUNNING, 0, epochs), 0)
            for epoch in range(1, epochs + 1):
                predicted = np.where(rng.random(m) < accuracy * epoch / epochs, y, rng.integers(0, k, m))
                val_acc = float(np.mean(predicted == y))
                metrics = {"train_loss": float(rng.uniform(0.05, 2.3)), "train_accuracy": min(1.0, val_acc + 0.02),
                           "val_loss": float(rng.uniform(0.05, 2.3)), "val_accuracy": val_acc}
                writer.scalars({metadata.TRAIN_LOSS_TAG: metrics["train_loss"],
                                metadata.TRAIN_ACCURACY_TAG: metrics["train_accuracy"],
                                metadata.VAL_LOSS_TAG: metrics["val_loss"],
                                metadata.VAL_ACCURACY_TAG: metrics["val_accuracy"]}, epoch)
                if epoch < epochs:
                    writer.record(metadata.STATUS_TAG, metadata.status_record(
                        1, metadata.RUNNING, epoch, epochs, metrics=metrics), epoch)
            per_class, confusion = per_class_accuracy(y, predicted, k)
            writer.record(metadata.EVALUATION_TAG, metadata.evaluation_record(1, epochs, per_class, confusion, m),
                          epochs)
            writer.add(predictions_summary(predicted, k), 1)
            writer.record(metadata.STATUS_TAG, metadata.status_record(
                1, metadata.DONE, epochs, epochs, metrics=metrics), epochs)
    return {"experiment": data.fingerprint["id"], "runs": ids, "n_val": m}


def make_app(logdir: str):
    """(werkzeug Client, plugin, seconds TensorBoard's EventMultiplexer took to load the
    logdir): ``TensorBoardWSGI`` with the remap plugin over a ``MultiplexerDataProvider``
    (the Python loader), as ``tests/test_plugin_http.py`` builds it."""
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    from tensorboard.plugins import base_plugin
    from werkzeug.test import Client

    from remap_tb import metadata
    from remap_tb.plugin import RemapPlugin

    start = time.perf_counter()
    multiplexer = pem.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    load_s = time.perf_counter() - start
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    flags = argparse.Namespace(remap_workers=0, remap_max_params=50_000_000,
                               samples_per_plugin={metadata.PLUGIN_NAME: 0})
    plugin = RemapPlugin(base_plugin.TBContext(logdir=logdir, data_provider=provider, flags=flags))
    app = application.TensorBoardWSGI([plugin], data_provider=provider)
    return Client(app), plugin, load_s


def fmt_s(seconds: float) -> str:
    """Seconds with 3 significant digits-ish (0.0123, 0.123, 1.23, 12.3, 123)."""
    if seconds >= 100:
        return f"{seconds:.0f}"
    if seconds >= 1:
        return f"{seconds:.2f}"
    return f"{seconds:.3f}" if seconds >= 0.01 else f"{seconds:.4f}"


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}" if math.isfinite(value) else "inf"


def pct(values, q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank; nan when empty)."""
    v = sorted(values)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))] if v else float("nan")


# -- a search history at scale (benchmarks/scale.py, benchmarks/dashboard_perf.py) -------------

SCALE_FORMAT = 1  # bump when the generated history changes (cached logdirs are keyed on it)
_ERRORS = ("CUDA out of memory while training (tried to allocate 2.0 GiB)", "worker killed (signal 9)",
           "run exceeded --remap_max_run_seconds")


def _digits() -> dict:
    """The ``digits`` dataset's config, fingerprint, class names and validation labels."""
    from remap_tb.requests import dataset_config
    from trainer.datasets import load_dataset

    dataset = dataset_config({"name": "digits"})
    data = load_dataset(dataset)
    return {"dataset": dataset, "fingerprint": data.fingerprint, "class_names": list(data.class_names),
            "y": data.y_val.numpy().astype(np.int64), "k": int(data.num_classes),
            "input_shape": list(data.input_shape)}


def _predict(rng: np.random.Generator, y: np.ndarray, k: int, difficulty: np.ndarray, confuser: np.ndarray,
             accuracy: float, base: np.ndarray | None = None, redraw: float = 0.15) -> np.ndarray:
    """Predicted labels at about ``accuracy``: samples are right when their difficulty plus
    the model's noise is under the ``accuracy`` quantile (hard samples are missed by many
    models); a wrong answer is the class's usual confuser 60 % of the time. With ``base``
    (the parent's answers) only a ``redraw`` share of the samples is drawn again."""
    m = y.size
    score = difficulty + 0.35 * rng.standard_normal(m)
    right = score <= np.quantile(score, accuracy)
    wrong = np.where(rng.random(m) < 0.6, confuser[y], (y + rng.integers(1, k, m)) % k)
    fresh = np.where(right, y, wrong)
    if base is None:
        return fresh.astype(np.uint8)
    return np.where(rng.random(m) < redraw, fresh, base).astype(np.uint8)


def _curves(rng: np.random.Generator, final: float, epochs: int) -> list[dict]:
    """Per-epoch metrics rising to ``final`` validation accuracy (saturating, with noise)."""
    out = []
    for e in range(1, epochs + 1):
        frac = (1 - math.exp(-3 * e / epochs)) / (1 - math.exp(-3))
        val = final if e == epochs else float(np.clip(0.1 + (final - 0.1) * frac + rng.normal(0, 0.01), 0, 1))
        loss = float(-math.log(max(val, 0.02)) * 1.1 + abs(rng.normal(0, 0.03)))
        out.append({"train_loss": loss * 0.9, "train_accuracy": float(min(1.0, val + rng.uniform(0, 0.05))),
                    "val_loss": loss, "val_accuracy": val})
    return out


def scale_history(n: int, seed: int = 0) -> dict:
    """A search history of ``n`` runs on ``digits`` (no training): what each run will record.

    5 % sampled roots (at least 10), then each model is a variation
    (``operators.variations``, 1-3 changes) of the better of two earlier finished models
    (70 %) or a fresh sample (30 %). Accuracy: roots U(0.3, 0.95), children their parent's
    + N(0.01, 0.04); predictions from ``_predict`` (a child re-draws 15 % of its parent's);
    1-6 epochs; states 94 % done, 3 % failed, 3 % diverged (neither has predictions).
    """
    from remap_tb.spec.operators import variations

    d = _digits()
    y, k = d["y"], d["k"]
    rng = np.random.default_rng(seed)
    difficulty = rng.random(y.size)
    confuser = (np.arange(k) + rng.integers(1, k, k)) % k
    fresh = population(n, seed, shapes=(tuple(d["input_shape"]),), num_classes=k)
    roots = max(10, n // 20)
    entries: list[dict] = []
    done: list[int] = []
    for i in range(n):
        run = f"m{i:05d}"
        spec, provenance, parent = fresh[i], {}, None
        if i >= roots and done and rng.random() < 0.7:
            a, b = (done[int(j)] for j in rng.integers(len(done), size=2))
            parent = a if entries[a]["accuracy"] >= entries[b]["accuracy"] else b
            children = variations(entries[parent]["spec"], n=1, max_changes=3, seed=int(seed * 1_000_003 + i))
            if children:
                spec = children[0].spec
                provenance = {"parent": entries[parent]["run"], "origin": "variation",
                              "changes": list(children[0].changes)}
            else:
                parent = None
        if parent is None:
            accuracy = float(rng.uniform(0.3, 0.95))
            predictions = _predict(rng, y, k, difficulty, confuser, accuracy)
        else:
            accuracy = float(np.clip(entries[parent]["accuracy"] + rng.normal(0.01, 0.04), 0.1, 0.99))
            predictions = _predict(rng, y, k, difficulty, confuser, accuracy, entries[parent]["predictions"])
        u = rng.random()
        state = "done" if u < 0.94 else ("failed" if u < 0.97 else "diverged")
        epochs = int(rng.integers(1, 7))
        final = float(np.mean(predictions == y))
        entries.append({"run": run, "spec": spec, "provenance": provenance, "accuracy": accuracy,
                        "predictions": predictions, "state": state, "epochs": epochs,
                        "curves": _curves(rng, final, epochs), "reason": str(rng.choice(_ERRORS))})
        if state == "done":
            done.append(i)
    return {"dataset": d, "entries": entries, "difficulty": difficulty, "confuser": confuser}


def write_history_run(logdir: str, entry: dict, d: dict) -> float:
    """Write one run of ``scale_history`` (the trainer's records, ``trainer.summaries.RunWriter``)
    plus its ``request.json``; returns ``time.time()`` once its event file is closed."""
    from remap_tb import metadata
    from remap_tb.atomic import atomic_write_json
    from remap_tb.requests import make_request
    from remap_tb.spec import analyse, spec_hash
    from trainer.summaries import RunWriter, hparams_summary_for, predictions_summary

    epochs, state = entry["epochs"], entry["state"]
    request = make_request(entry["spec"], dataset=d["dataset"], training={"epochs": epochs},
                           provenance=entry["provenance"], request_id=entry["run"])
    spec = request["spec"]
    analysis = analyse(spec)
    run_dir = os.path.join(logdir, entry["run"])
    os.makedirs(run_dir, exist_ok=True)
    atomic_write_json(os.path.join(run_dir, metadata.REQUEST_FILE), request)
    y, k, predicted = d["y"], d["k"], np.asarray(entry["predictions"])
    last = epochs if state == "done" else max(1, epochs // 2)
    with RunWriter(run_dir) as writer:
        writer.record(metadata.MODEL_TAG, metadata.model_record(
            request, 1, d["class_names"], d["fingerprint"], analysis.total_params, len(spec["layers"]),
            spec_hash(spec)), 0)
        writer.add(hparams_summary_for(request, analysis.total_params, d["dataset"]["name"]), 0)
        writer.record(metadata.STATUS_TAG, metadata.status_record(1, metadata.RUNNING, 0, epochs), 0)
        metrics: dict = {}
        for epoch, metrics in enumerate(entry["curves"][:last], start=1):
            values = dict(metrics)
            if state == "diverged" and epoch == last:
                values["train_loss"] = values["val_loss"] = float("nan")
            writer.scalars({metadata.TRAIN_LOSS_TAG: values["train_loss"],
                            metadata.TRAIN_ACCURACY_TAG: values["train_accuracy"],
                            metadata.VAL_LOSS_TAG: values["val_loss"],
                            metadata.VAL_ACCURACY_TAG: values["val_accuracy"]}, epoch)
            if epoch < epochs:
                writer.record(metadata.STATUS_TAG, metadata.status_record(
                    1, metadata.RUNNING, epoch, epochs, metrics=metrics), epoch)
        if state == "done":
            confusion = np.zeros((k, k), dtype=np.int64)
            np.add.at(confusion, (y, predicted.astype(np.int64)), 1)
            totals = confusion.sum(axis=1)
            per_class = [float(confusion[c, c] / totals[c]) if totals[c] else 0.0 for c in range(k)]
            writer.record(metadata.EVALUATION_TAG, metadata.evaluation_record(
                1, epochs, per_class, confusion.tolist(), int(y.size)), epochs)
            writer.add(predictions_summary(predicted, k), 1)
            writer.record(metadata.STATUS_TAG, metadata.status_record(
                1, metadata.DONE, epochs, epochs, metrics=metrics), epochs)
        elif state == "diverged":
            writer.record(metadata.STATUS_TAG, metadata.status_record(
                1, metadata.DIVERGED, last, epochs, reason=f"loss is nan at epoch {last}", metrics={}), last)
        else:
            writer.record(metadata.STATUS_TAG, metadata.status_record(
                1, metadata.FAILED, last, epochs, reason=entry["reason"], metrics=metrics), last)
    return time.time()


def _write_chunk(job: tuple) -> int:
    logdir, entries, d = job
    for entry in entries:
        write_history_run(logdir, entry, d)
    return len(entries)


def scale_logdir(n: int, seed: int, cache: Path, processes: int = 1) -> tuple[Path, dict]:
    """A logdir of ``scale_history(n, seed)`` under ``cache/n<N>-seed<S>-f<FORMAT>/logdir``,
    written once (``processes`` writer processes, into a temporary folder renamed when
    complete) and reused afterwards; and a summary (run names, finished count, the dataset
    and what ``write_one_run`` needs) kept beside it as ``history.json``."""
    import multiprocessing

    home = Path(cache) / f"n{n}-seed{seed}-f{SCALE_FORMAT}"
    logdir, summary_path = home / "logdir", home / "history.json"
    if logdir.is_dir() and summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        summary["dataset"]["y"] = np.asarray(summary["dataset"]["y"], dtype=np.int64)
        return logdir, summary
    start = time.perf_counter()
    history = scale_history(n, seed)
    made = time.perf_counter() - start
    d, entries = history["dataset"], history["entries"]
    partial = home / "logdir.partial"
    import shutil

    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    size = max(1, min(200, -(-n // max(1, processes * 4))))
    jobs = [(str(partial), entries[i:i + size], d) for i in range(0, n, size)]
    if processes > 1:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            for _ in pool.imap_unordered(_write_chunk, jobs):
                pass
    else:
        for job in jobs:
            _write_chunk(job)
    partial.rename(logdir)
    summary = {"n": n, "seed": seed, "runs": [e["run"] for e in entries],
               "done": sum(e["state"] == "done" for e in entries),
               "dataset": {**d, "y": d["y"].tolist()}, "difficulty": history["difficulty"].tolist(),
               "confuser": history["confuser"].tolist()}
    from remap_tb.atomic import atomic_write_json

    atomic_write_json(str(summary_path), summary)
    print(f"wrote {n:,} runs to {logdir} ({made:.1f} s to generate, "
          f"{time.perf_counter() - start - made:.1f} s to write with {processes} process(es))", flush=True)
    summary["dataset"]["y"] = d["y"]
    return logdir, summary


def write_one_run(logdir: str, run: str, summary: dict, seed: int) -> float:
    """A new finished run in ``logdir``: a variation of a finished run of the history
    (read from its ``request.json``), at a random accuracy; returns when its file closed."""
    from remap_tb.spec.operators import variations

    rng = np.random.default_rng(seed)
    d = summary["dataset"]
    parent = summary["runs"][int(rng.integers(len(summary["runs"])))]
    with open(os.path.join(logdir, parent, "request.json")) as f:
        spec = json.load(f)["spec"]
    children = variations(spec, n=1, seed=seed)
    provenance = {"parent": parent, "origin": "variation", "changes": list(children[0].changes)} if children else {}
    accuracy = float(rng.uniform(0.3, 0.95))
    predictions = _predict(rng, d["y"], d["k"], np.asarray(summary["difficulty"]), np.asarray(summary["confuser"]),
                           accuracy)
    final = float(np.mean(predictions == d["y"]))
    entry = {"run": run, "spec": children[0].spec if children else spec, "provenance": provenance,
             "predictions": predictions, "state": "done", "epochs": 2, "curves": _curves(rng, final, 2),
             "reason": ""}
    return write_history_run(logdir, entry, d)
