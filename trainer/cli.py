"""The ``remap`` command line: init, train, validate, evaluate (and queue commands).

Each subcommand is a small function taking parsed arguments; ``main`` maps
user errors (bad spec, missing dataset, bad request) to a clear message on
stderr and exit code 2 without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

from remap_tb import metadata
from remap_tb.atomic import atomic_write_json, read_json
from remap_tb.requests import DATASETS, OPTIMIZERS, RequestError, dataset_config, make_request, training_config
from remap_tb.spec import Constraints, Limits, SpecError, analyse


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (UserError, RequestError, SpecError, FileNotFoundError) as e:
        print(f"remap: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # DatasetError and TrainingError are ValueError/RuntimeError subclasses
        print(f"remap: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("remap: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remap", description="REMAP-style human-in-the-loop architecture search "
                                     "for TensorBoard. See README.md.")
    sub = parser.add_subparsers(title="commands")

    init = sub.add_parser("init", help="sample and train an initial population of small CNNs")
    init.add_argument("logdir")
    _add_dataset_args(init)
    _add_training_args(init)
    init.add_argument("--models", type=int, default=30, help="population size (default 30)")
    init.add_argument("--max-params", type=int, default=100_000, help="parameter budget per model")
    init.add_argument("--min-params", type=int, default=None)
    init.add_argument("--max-depth", type=int, default=12, help="maximum layers per model (default 12)")
    init.add_argument("--seed", type=int, default=0, help="seeds the sampler and training")
    init.set_defaults(run=cmd_init)

    train = sub.add_parser("train", help="train one request or spec JSON file into LOGDIR")
    train.add_argument("file", help="a training request (with 'spec') or a bare architecture spec")
    train.add_argument("logdir")
    _add_dataset_args(train)
    _add_training_args(train)
    train.add_argument("--id", default=None, help="run/request id (default: generated)")
    train.set_defaults(run=cmd_train)

    validate = sub.add_parser("validate", help="check a spec: shapes per layer and parameter count, or errors")
    validate.add_argument("file")
    validate.add_argument("--json", action="store_true", help="print the analysis as JSON")
    validate.add_argument("--max-params", type=int, default=Limits().max_params)
    validate.add_argument("--max-depth", type=int, default=Limits().max_depth)
    validate.set_defaults(run=cmd_validate)

    evaluate = sub.add_parser("evaluate", help="score a trained run on its dataset's held-out test split")
    evaluate.add_argument("run_dir", help="the run directory (LOGDIR/RUN)")
    evaluate.add_argument("--split", choices=("test",), default="test")
    evaluate.add_argument("--device", default="auto")
    evaluate.set_defaults(run=cmd_evaluate)
    return parser


def _add_dataset_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset")
    group.add_argument("--dataset", choices=DATASETS, default="digits")
    group.add_argument("--data-dir", default=None, help="folder with the dataset's files (all but digits)")
    group.add_argument("--classes", default=None, help="comma-separated class names, e.g. cat,bird")
    group.add_argument("--limit", type=int, default=None, help="use only the first N samples (per class for quickdraw)")
    group.add_argument("--val-fraction", type=float, default=0.2)
    group.add_argument("--test-fraction", type=float, default=0.0, help="quickdraw: held-out test slice per class")
    group.add_argument("--split-seed", type=int, default=0)
    group.add_argument("--no-normalise", action="store_true", help="scale to [0,1] without standardising")


def _add_training_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=10)
    group.add_argument("--batch-size", type=int, default=64)
    group.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    group.add_argument("--lr", type=float, default=0.001)
    group.add_argument("--patience", type=int, default=None, help="early stopping patience in epochs")
    group.add_argument("--device", default="auto", help="auto (GPU if available), cpu or cuda")


def dataset_from_args(args: argparse.Namespace) -> dict:
    data_dir = os.path.abspath(args.data_dir) if args.data_dir else None
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    return dataset_config({
        "name": args.dataset, "data_dir": data_dir, "classes": classes, "limit": args.limit,
        "val_fraction": args.val_fraction, "split_seed": args.split_seed,
        "normalise": not args.no_normalise, "test_fraction": args.test_fraction,
    })


def training_from_args(args: argparse.Namespace, seed: int = 0) -> dict:
    return training_config({
        "epochs": args.epochs, "batch_size": args.batch_size, "optimizer": args.optimizer,
        "lr": args.lr, "seed": seed, "early_stopping": {"patience": args.patience, "min_delta": 0.0},
    })


def experiment_path(logdir: str, fingerprint_id: str) -> str:
    return os.path.join(logdir, metadata.STATE_DIR, "experiments", f"{fingerprint_id}.json")


def cmd_init(args: argparse.Namespace) -> int:
    from remap_tb.spec.sampler import sample_specs
    from trainer.datasets import load_dataset

    if args.models < 1:
        raise UserError("--models must be at least 1")
    dataset = dataset_from_args(args)
    training = training_from_args(args, seed=args.seed)
    data = load_dataset(dataset)  # fails early, before anything is written, if the data is missing
    constraints = Constraints(min_params=args.min_params, max_params=args.max_params, max_depth=args.max_depth)
    sampled = sample_specs(args.models, data.input_shape, data.num_classes, args.seed, constraints)
    if not sampled.specs:
        raise UserError(f"could not sample any model: {sampled.summary(args.models)}; raise --max-params")
    print(f"remap: {sampled.summary(args.models)}")
    experiment = {
        "version": 1, "dataset": dataset, "training": training, "constraints": constraints.to_json(),
        "seed": args.seed, "models": args.models, "fingerprint": data.fingerprint,
    }
    os.makedirs(args.logdir, exist_ok=True)
    atomic_write_json(experiment_path(args.logdir, data.fingerprint["id"]), experiment)
    requests = [
        make_request(spec, dataset, {**training, "seed": args.seed + i},
                     {"origin": "initial", "parent": None, "changes": []},
                     request_id=f"init-s{args.seed}-{i:03d}")
        for i, spec in enumerate(sampled.specs)
    ]
    return run_population(args.logdir, requests, args.device)


def run_population(logdir: str, requests: list[dict], device: str) -> int:
    """Train the population (skipping runs that already exist, so init can resume)."""
    from tqdm import tqdm

    from trainer.train import DatasetCache, train

    datasets = DatasetCache()
    todo = [r for r in requests if not os.path.exists(os.path.join(logdir, r["id"], metadata.WEIGHTS_FILE))]
    if len(todo) < len(requests):
        print(f"remap: {len(requests) - len(todo)} model(s) already trained; training {len(todo)}")
    failures = 0
    with tqdm(todo, desc="models", unit="model") as bar:
        for request in bar:
            run_dir = os.path.join(logdir, request["id"])
            attempt = 2 if os.path.isdir(run_dir) and os.listdir(run_dir) else 1
            result = train(request, logdir, attempt=attempt, device=device, progress=True, datasets=datasets)
            failures += result.state != metadata.DONE
            bar.set_postfix(last=f"{result.state} {result.metrics.get('val_accuracy', float('nan')):.3f}")
    print(f"remap: trained {len(todo) - failures} model(s) into {logdir}; {failures} did not finish. "
          f"Now run: tensorboard --logdir {logdir}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from trainer.train import train

    value = _load_json_file(args.file)
    if isinstance(value, dict) and "spec" in value:
        request = value
        if args.id:
            request = {**request, "id": args.id}
    else:
        request = make_request(value, dataset_from_args(args), training_from_args(args),
                               {"origin": "handcrafted", "parent": None, "changes": []}, request_id=args.id)
    result = train(request, args.logdir, device=args.device, progress=True)
    print(f"remap: {result.request_id}: {result.state} after {result.epoch}/{result.epochs} epoch(s)"
          f"{'; ' + result.reason if result.reason else ''}; "
          f"val accuracy {result.metrics.get('val_accuracy', float('nan')):.4f}; run at {result.run_dir}")
    return 0 if result.state in (metadata.DONE,) else 1


def cmd_validate(args: argparse.Namespace) -> int:
    spec = _load_json_file(args.file)
    analysis = analyse(spec, Limits(max_params=args.max_params, max_depth=args.max_depth))
    if args.json:
        print(json.dumps(analysis.to_json(), indent=1))
        return 0 if analysis.ok else 1
    if analysis.input_shape:
        print(f"{'':>5} {'input':<14} {_shape(analysis.input_shape):>14}")
    for info in analysis.layers:
        params = f"{info.params:,}" if info.params is not None else "?"
        print(f"{info.index:>5} {info.layer_type:<14} {_shape(info.output_shape):>14} {params:>12}")
    if analysis.classifier_params is not None:
        print(f"{'':>5} {'classifier':<14} {spec['input']['num_classes']:>14} {analysis.classifier_params:>12,}")
    if analysis.ok:
        print(f"valid: {analysis.total_params:,} parameters, {analysis.depth} layers")
        return 0
    print(f"invalid: {len(analysis.problems)} problem(s)", file=sys.stderr)
    for problem in analysis.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from trainer.evaluate import evaluate_run

    record = evaluate_run(args.run_dir, split=args.split, device=args.device)
    per_class = ", ".join(f"{a:.3f}" for a in record["per_class_accuracy"])
    print(f"remap: {args.run_dir}: test accuracy {record['accuracy']:.4f} on {record['n_samples']} samples "
          f"(loss {record['loss']:.4f}); per class: {per_class}. Recorded in the run.")
    return 0


def _shape(shape: Any) -> str:
    return "x".join(str(v) for v in shape) if shape else "?"


def _load_json_file(path: str) -> Any:
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    try:
        return read_json(path)
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
