"""Weight inheritance: epochs a child needs when it starts from its parent's weights vs from scratch.

On a copy of ``demo_logs/`` (digits), the 3 models with the best validation
accuracy are parents; 10 children (ablations and variations from
``remap_tb.spec.operators``, drawn at random, parents in turn) are each trained
with the parent's training config (10 epochs): from scratch
(``training.init = "scratch"``), from the parent (the default: the trainer
finds ``LOGDIR/<parent>/weights.pt``, copies and morphs what maps and refits the
rest by least squares, ``trainer.refit``), and from the parent without the refit
(what the refit adds). For each child:

- target = its own from-scratch validation accuracy after 10 epochs;
- epochs to target = the first epoch whose validation accuracy is within 0.5 pp
  of the target (epoch 0: the model as initialised, before any step); ">10"
  (counted as 11) when a run never gets there;
- the final (10-epoch) validation accuracy of both runs.

Targets: median epochs with inheritance <= 1/3 of scratch; median final accuracy
with inheritance not lower than scratch by more than 0.5 pp.

Also printed: the children's accuracy from the parent after k = 1 .. ceil(epochs / 3)
epochs (no schedule depends on the total, so epoch k of these runs is what a k-epoch
run reports), the evidence for the default budget of a child that starts from its
parent, ``training.epochs_from_parent`` = ceil(epochs / 3) (``remap_tb.requests``).

    .venv/bin/python benchmarks/inheritance.py [--children 10] [--epochs 10] [--seed 0] [--max-changes 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from remap_tb import metadata  # noqa: E402
from remap_tb.requests import make_request  # noqa: E402
from remap_tb.spec.operators import generate  # noqa: E402
from remap_tb.requests import finetune_epochs  # noqa: E402
from trainer.inherit import initialise, parent_source  # noqa: E402
from trainer.model import build_model  # noqa: E402
from trainer.refit import sample_images  # noqa: E402
from trainer.summaries import read_records  # noqa: E402
from trainer.train import DatasetCache, evaluate, train  # noqa: E402

TOLERANCE = 0.005  # 0.5 percentage points


def final_accuracy(run_dir: str) -> float | None:
    """The validation accuracy of a run's final status record."""
    best = None
    for _, record in read_records(run_dir, metadata.STATUS_TAG):
        if record.get("state") == metadata.DONE:
            best = record.get("metrics", {}).get("val_accuracy")
    return best


def best_parents(logdir: str, n: int) -> list[tuple[str, float, dict]]:
    """(run, val accuracy, request) of the ``n`` best finished runs."""
    found = []
    for run in sorted(os.listdir(logdir)):
        request_path = os.path.join(logdir, run, metadata.REQUEST_FILE)
        if not os.path.isfile(request_path) or not os.path.isfile(os.path.join(logdir, run, metadata.WEIGHTS_FILE)):
            continue
        accuracy = final_accuracy(os.path.join(logdir, run))
        if accuracy is not None:
            with open(request_path, encoding="utf-8") as handle:
                found.append((run, accuracy, json.load(handle)))
    found.sort(key=lambda item: -item[1])
    return found[:n]


def children(parents: list[tuple[str, float, dict]], count: int, seed: int, max_changes: int) -> list[dict]:
    """``count`` valid children, parents in turn, ablations and variations alternating, each drawn at random
    (``seed``) among that parent's ablations and variations (1..``max_changes`` changes, the UI's default 3)."""
    rng = random.Random(seed)
    pools = []
    for i, (run, _, request) in enumerate(parents):
        record = {"id": run, "spec": request["spec"]}
        ablations = [{**c, "kind": "ablation"} for c in generate([record], "ablation")["candidates"] if c["valid"]]
        variations = [{**c, "kind": "variation"} for c in generate(
            [record], "variation", {"count": count, "seed": seed + i, "max_changes": max_changes})["candidates"]]
        rng.shuffle(ablations)
        rng.shuffle(variations)
        mixed = [c for pair in zip(ablations, variations) for c in pair]
        mixed += ablations[len(variations):] + variations[len(ablations):]
        pools.append(mixed)
    out, seen = [], set()
    while len(out) < count and any(pools):
        for pool in pools:
            while pool and len(out) < count:
                candidate = pool.pop(0)
                if candidate["key"] not in seen:
                    seen.add(candidate["key"])
                    out.append(candidate)
                    break
    return out


def initial_accuracy(request: dict, logdir: str, data, refit: bool = True) -> float:
    """Validation accuracy of the model as ``train`` initialises it (epoch 0)."""
    torch.manual_seed(request["training"]["seed"])
    model = build_model(request["spec"])
    source = parent_source(request, logdir)
    if source is not None and source.usable:
        seed = request["training"]["seed"]
        initialise(model, request["spec"], request["provenance"]["changes"], source,
                   sample_images(data.x_train, seed) if refit else None, seed)
    _, accuracy, _ = evaluate(model, nn.CrossEntropyLoss(), data.x_val, data.y_val)
    return accuracy


def run_child(logdir: str, candidate: dict, parent_request: dict, init: str, epochs: int, index: int,
              cache: DatasetCache, refit: bool = True) -> dict:
    training = {**parent_request["training"], "epochs": epochs, "init": init}
    request = make_request(candidate["spec"], parent_request["dataset"], training,
                           {"parent": candidate["parent"], "origin": candidate["kind"], "changes": candidate["changes"]},
                           request_id=f"bench-{index:02d}-{init}{'' if refit else '-norefit'}")
    curve: list[float] = []
    data = cache.get(request["dataset"], torch.device("cpu"))
    curve.append(initial_accuracy(request, logdir, data, refit))

    def on_epoch(epoch: int, total: int, metrics: dict) -> bool:
        curve.append(metrics["val_accuracy"])
        return False

    started = time.perf_counter()
    result = train(request, logdir, device="cpu", on_epoch=on_epoch, datasets=cache, refit=refit)
    return {"curve": curve, "final": curve[-1], "init": result.init, "seconds": time.perf_counter() - started}


def epochs_to(curve: list[float], target: float) -> int | None:
    return next((e for e, accuracy in enumerate(curve) if accuracy >= target - TOLERANCE), None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=10)
    parser.add_argument("--parents", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-changes", type=int, default=3, help="changes per variation, 1..N (UI default 3)")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))

    tmp = tempfile.mkdtemp(prefix="remap-inherit-bench-")
    logdir = os.path.join(tmp, "logs")
    try:
        shutil.copytree(ROOT / "demo_logs", logdir)
        parents = best_parents(logdir, args.parents)
        print("parents: " + ", ".join(f"{run} (val {acc:.4f})" for run, acc, _ in parents))
        by_run = {run: request for run, _, request in parents}
        cache = DatasetCache()
        rows = []
        started = time.perf_counter()
        for i, candidate in enumerate(children(parents, args.children, args.seed, args.max_changes)):
            parent_request = by_run[candidate["parent"]]
            scratch = run_child(logdir, candidate, parent_request, "scratch", args.epochs, i, cache)
            inherit = run_child(logdir, candidate, parent_request, "parent", args.epochs, i, cache)
            copy_only = run_child(logdir, candidate, parent_request, "parent", args.epochs, i, cache, refit=False)
            target = scratch["final"]
            rows.append({"i": i, "parent": candidate["parent"], "changes": "; ".join(candidate["changes"]),
                         "init": inherit["init"], "target": target,
                         "scratch_epochs": epochs_to(scratch["curve"], target),
                         "inherit_epochs": epochs_to(inherit["curve"], target),
                         "copy_epochs": epochs_to(copy_only["curve"], target), "copy_start": copy_only["curve"][0],
                         "copy_final": copy_only["final"],
                         "scratch_final": scratch["final"], "inherit_final": inherit["final"],
                         "inherit_start": inherit["curve"][0], "inherit_curve": inherit["curve"]})
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    never = args.epochs + 1
    print(f"\n{'#':>2} {'parent':<12} {'inherited':>9} {'refit':>5} {'start':>6} {'copy start':>10} "
          f"{'ep scratch':>10} {'ep parent':>9} {'ep copy':>7} {'final scratch':>13} {'final parent':>12} "
          f"{'final copy':>10}  changes")
    for r in rows:
        init = f"{r['init']['layers']}/{r['init']['of']}" if r["init"] else "-"
        refitted = len(r["init"].get("refitted", [])) if r["init"] else 0
        fmt = lambda e: str(e) if e is not None else f">{args.epochs}"  # noqa: E731
        print(f"{r['i']:>2} {r['parent']:<12} {init:>9} {refitted:>5} {r['inherit_start']:>6.3f} "
              f"{r['copy_start']:>10.3f} {fmt(r['scratch_epochs']):>10} {fmt(r['inherit_epochs']):>9} "
              f"{fmt(r['copy_epochs']):>7} {r['scratch_final']:>13.4f} {r['inherit_final']:>12.4f} "
              f"{r['copy_final']:>10.4f}  {r['changes'][:70]}")
    med_scratch = statistics.median(r["scratch_epochs"] if r["scratch_epochs"] is not None else never for r in rows)
    med_inherit = statistics.median(r["inherit_epochs"] if r["inherit_epochs"] is not None else never for r in rows)
    final_scratch = statistics.median(r["scratch_final"] for r in rows)
    final_inherit = statistics.median(r["inherit_final"] for r in rows)
    epochs_ok = med_inherit <= med_scratch / 3
    final_ok = final_inherit >= final_scratch - TOLERANCE
    print(f"\nmedian epochs to the 10-epoch scratch accuracy (within 0.5 pp): scratch {med_scratch:g}, "
          f"from parent {med_inherit:g} (target <= {med_scratch / 3:.2f}): {'met' if epochs_ok else 'NOT met'}")
    print(f"median final val accuracy: scratch {final_scratch:.4f}, from parent {final_inherit:.4f} "
          f"(difference {100 * (final_inherit - final_scratch):+.2f} pp; target >= -0.50 pp): "
          f"{'met' if final_ok else 'NOT met'}")
    # What a child from its parent gets if it trains only k epochs (no schedule depends on the
    # total, so epoch k of this run is what a k-epoch run reports): the basis of the default
    # fine-tuning budget, trainer.inherit.finetune_epochs (a third of the parent's epochs).
    short = finetune_epochs(args.epochs)
    for k in range(1, short + 1):
        at_k = [r["inherit_curve"][min(k, len(r["inherit_curve"]) - 1)] for r in rows]
        within = sum(a >= r["target"] - TOLERANCE for a, r in zip(at_k, rows))
        median = statistics.median(at_k)
        print(f"from parent, {k} epoch{'' if k == 1 else 's'}{' (the default budget)' if k == short else ''}: "
              f"median val accuracy {median:.4f} ({100 * (median - final_scratch):+.2f} pp vs scratch after "
              f"{args.epochs}); {within} of {len(rows)} children within 0.5 pp of their own "
              f"{args.epochs}-epoch scratch accuracy")
    med_copy = statistics.median(r["copy_epochs"] if r["copy_epochs"] is not None else never for r in rows)
    print(f"same run, copy and morph without the least-squares refit: median epochs {med_copy:g}, "
          f"median final {statistics.median(r['copy_final'] for r in rows):.4f}")
    print(f"{len(rows)} children x 3 trainings of {args.epochs} epochs in {seconds:.1f} s")
    return 0 if epochs_ok and final_ok else 1


if __name__ == "__main__":
    sys.exit(main())
