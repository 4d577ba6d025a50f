"""The ``remap`` command line: init, train, validate, evaluate, worker, enqueue, queue.

Each subcommand is a small function taking parsed arguments; ``main`` maps
user errors (bad spec, missing dataset, bad request) to a clear message on
stderr and exit code 2 without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import time
from typing import Any, Sequence

import remap_tb
from remap_tb import host_guard, metadata
from remap_tb.atomic import atomic_write_json, read_json
from remap_tb.requests import (DATASETS, OPTIMIZERS, RequestError, dataset_config, is_valid_id, make_request,
                               training_config)
from remap_tb.spec import Constraints, Limits, SpecError, analyse


DEFAULT_INIT_WORKERS = 2


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
        print("remap: interrupted; queued requests stay queued (run the same command again to resume)",
              file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remap", description="REMAP-style human-in-the-loop architecture search "
                                     "for TensorBoard. See README.md.")
    parser.add_argument("--version", action="version", version=f"remap-tb {remap_tb.__version__}",
                        help="print the installed remap-tb version and exit")
    sub = parser.add_subparsers(title="commands")

    init = sub.add_parser("init", help="sample and train an initial population of small CNNs")
    init.add_argument("logdir", help="folder for the runs, the queue and the experiment config (created if missing)")
    _add_dataset_args(init)
    _add_training_args(init)
    init.add_argument("--models", type=int, default=30, help="population size (default 30)")
    init.add_argument("--max-params", type=int, default=100_000, help="parameter budget per model")
    init.add_argument("--min-params", type=int, default=None, help="smallest parameter count per model (default: none)")
    init.add_argument("--max-depth", type=int, default=None,
                      help="maximum layers per model (default 12 for chains, 64 for residual networks)")
    init.add_argument("--blocks", choices=("chain", "residual"), default="chain",
                      help="what to sample: linked-list CNNs (chain, the default) or small ResNets of "
                           "basic residual blocks (residual)")
    init.add_argument("--seed", type=int, default=0, help="seeds the sampler and training")
    init.add_argument("--workers", type=int, default=DEFAULT_INIT_WORKERS,
                      help=f"local worker processes that train the population (default {DEFAULT_INIT_WORKERS})")
    init.set_defaults(run=cmd_init)

    train = sub.add_parser("train", help="train one request or spec JSON file into LOGDIR")
    train.add_argument("file", help="a training request (with 'spec') or a bare architecture spec")
    train.add_argument("logdir", help="folder the run is written into, as LOGDIR/ID (created if missing)")
    _add_dataset_args(train)
    _add_training_args(train)
    train.add_argument("--id", default=None, help="run/request id (default: generated)")
    train.add_argument("--init-from", default=None, metavar="RUN_DIR",
                       help="start from the trained weights of this run wherever the layers map "
                            "(the others start fresh); the run becomes the model's parent")
    train.set_defaults(run=cmd_train)

    validate = sub.add_parser("validate", help="check a spec: shapes per layer and parameter count, or errors")
    validate.add_argument("file", help="the architecture spec, a JSON file")
    validate.add_argument("--json", action="store_true", help="print the analysis as JSON")
    validate.add_argument("--max-params", type=int, default=Limits().max_params,
                          help=f"parameter cap (default {Limits().max_params:,})")
    validate.add_argument("--max-depth", type=int, default=Limits().max_depth,
                          help=f"layer cap (default {Limits().max_depth})")
    validate.add_argument("--batch-size", type=int, default=64, help="training batch size of the memory estimate")
    validate.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="optimiser of the memory estimate")
    validate.add_argument("--max-memory", default=None, metavar="SIZE",
                          help="memory limit, e.g. 4G (default: a quarter of this machine's memory)")
    validate.set_defaults(run=cmd_validate)

    worker = sub.add_parser("worker", help="train queued requests of LOGDIR (locally or on a Ray cluster)")
    from trainer.worker import add_arguments as add_worker_arguments

    add_worker_arguments(worker)
    _help(worker, "logdir", "an existing logdir whose queue to train (made by 'remap init' or 'remap enqueue')")
    worker.set_defaults(run=cmd_worker)

    enqueue = sub.add_parser("enqueue", help="queue specs or training requests (JSON files) for the workers")
    enqueue.add_argument("logdir", help="an existing logdir (made by 'remap init' or a trainer run)")
    enqueue.add_argument("files", nargs="+", metavar="FILE.json",
                         help="a training request (with 'spec'), a bare spec, or a list of them")
    enqueue.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    enqueue.add_argument("--priority", type=float, default=0, help="higher is trained first (default 0)")
    enqueue.add_argument("--experiment", default=None,
                         help="experiment id whose dataset/training config bare specs use "
                              "(needed when LOGDIR has several)")
    enqueue.set_defaults(run=cmd_enqueue)

    queue = sub.add_parser("queue", help="print the queue of LOGDIR")
    queue.add_argument("logdir", help="a logdir with a queue (made by 'remap init' or 'remap enqueue')")
    queue.add_argument("--json", action="store_true", help="print the queue route's JSON")
    queue.set_defaults(run=cmd_queue)

    evaluate = sub.add_parser("evaluate", help="score a trained run on its dataset's held-out test split")
    evaluate.add_argument("run_dir", help="the run directory (LOGDIR/RUN)")
    evaluate.add_argument("--split", choices=("test",), default="test",
                          help="the split to score (test: the dataset's held-out test split)")
    evaluate.add_argument("--device", default="auto", help="auto (GPU if available), cpu or cuda")
    evaluate.set_defaults(run=cmd_evaluate)

    demo = sub.add_parser("demo", help="start TensorBoard with the REMAP tab on a copy of the bundled demo_logs/")
    demo.add_argument("--logdir", default=os.path.join("runs", "demo"),
                      help="where the copy lives (default runs/demo; created from demo_logs/ if missing)")
    demo.add_argument("--reset", action="store_true", help="replace an existing copy with a fresh one")
    demo.add_argument("--host", default="127.0.0.1",
                      help="address TensorBoard binds to (default 127.0.0.1: this machine only)")
    demo.add_argument("--bind_all", action="store_true",
                      help="serve on every network interface (TensorBoard's --bind_all)")
    demo.add_argument("--allowed-hosts", default="",
                      help="host names (comma-separated) by which browsers may reach the REMAP tab "
                           "besides this machine's own (TensorBoard's --remap_allowed_hosts)")
    demo.add_argument("--port", type=int, default=6006, help="TensorBoard's port (default 6006)")
    demo.add_argument("--workers", type=int, default=1, help="local workers that train enqueued runs (default 1)")
    demo.set_defaults(run=cmd_demo)
    return parser


def _help(parser: argparse.ArgumentParser, dest: str, text: str) -> None:
    """Give the argument ``dest`` of ``parser`` help text where it has none."""
    for action in parser._actions:  # argparse keeps its actions here; there is no public accessor
        if action.dest == dest and not action.help:
            action.help = text


def _add_dataset_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset")
    group.add_argument("--dataset", choices=DATASETS, default="digits",
                       help="which dataset (default digits: scikit-learn's bundled 8x8 digits)")
    group.add_argument("--data-dir", default=None,
                       help="folder with the dataset's files (all but digits); for npz, the .npz file")
    group.add_argument("--classes", default=None, help="comma-separated class names, e.g. cat,bird")
    group.add_argument("--limit", type=int, default=None,
                       help="use only the first N training samples (per class for quickdraw and imagefolder)")
    group.add_argument("--val-fraction", type=float, default=0.2,
                       help="share of the training samples held out for validation (default 0.2)")
    group.add_argument("--test-fraction", type=float, default=0.0, help="quickdraw: held-out test slice per class")
    group.add_argument("--split-seed", type=int, default=0, help="seeds the train/validation split (default 0)")
    group.add_argument("--no-normalise", action="store_true", help="scale to [0,1] without standardising")
    group.add_argument("--image-size", type=_image_size, default=None, metavar="H,W",
                       help="imagefolder, npz: resize every image to H x W (needed when sizes differ)")
    group.add_argument("--channels", type=int, choices=(1, 3), default=None,
                       help="imagefolder, npz: 1 (grayscale) or 3 (RGB); default: 1 if every image is grayscale")


def _image_size(text: str) -> list[int]:
    """``--image-size`` as ``[H, W]``: ``32,32`` (or ``32x32``; one number for a square)."""
    parts = text.replace("x", ",").split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected H,W (two positive integers, e.g. 32,32), got {text!r}")
    return values


def _add_training_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=10, help="training epochs per model (default 10)")
    group.add_argument("--batch-size", type=int, default=64, help="training batch size (default 64)")
    group.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="optimiser (default adam)")
    group.add_argument("--lr", type=float, default=0.001, help="learning rate (default 0.001)")
    group.add_argument("--patience", type=int, default=None, help="early stopping patience in epochs")
    group.add_argument("--device", default="auto", help="auto (GPU if available), cpu or cuda")


# Config fields (remap_tb.requests, trainer.datasets) -> the flags that set them, for error
# messages about values that came from flags. Bare names are those that cannot be English words.
FLAGS = {
    "dataset.name": "--dataset", "dataset.data_dir": "--data-dir", "dataset.classes": "--classes",
    "dataset.limit": "--limit", "dataset.val_fraction": "--val-fraction", "dataset.test_fraction": "--test-fraction",
    "dataset.split_seed": "--split-seed", "dataset.normalise": "--no-normalise", "dataset.image_size": "--image-size",
    "dataset.channels": "--channels", "training.epochs": "--epochs", "training.batch_size": "--batch-size",
    "training.optimizer": "--optimizer", "training.lr": "--lr", "training.seed": "--seed",
    "training.early_stopping.patience": "--patience",
    "data_dir": "--data-dir", "val_fraction": "--val-fraction", "test_fraction": "--test-fraction",
    "split_seed": "--split-seed", "image_size": "--image-size", "batch_size": "--batch-size", "limit": "--limit",
}
_FLAG_PATTERN = re.compile(r"(?<![\w.\-/])(" + "|".join(re.escape(k) for k in sorted(FLAGS, key=len, reverse=True))
                           + r")(?![\w\-])")


def flag_names(text: str) -> str:
    """``text`` with config field names replaced by their flags: ``dataset.data_dir is required`` ->
    ``--data-dir is required``."""
    return _FLAG_PATTERN.sub(lambda m: FLAGS[m.group(1)], text)


def _from_flags(error: Exception) -> UserError:
    """A config or dataset error about values given as flags, worded with the flags."""
    text = "; ".join(error.problems) if isinstance(error, RequestError) else str(error)
    return UserError(flag_names(text))


def dataset_from_args(args: argparse.Namespace) -> dict:
    data_dir = os.path.abspath(args.data_dir) if args.data_dir else None
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    try:
        return dataset_config({
            "name": args.dataset, "data_dir": data_dir, "classes": classes, "limit": args.limit,
            "val_fraction": args.val_fraction, "split_seed": args.split_seed,
            "normalise": not args.no_normalise, "test_fraction": args.test_fraction,
            "image_size": args.image_size, "channels": args.channels,
        })
    except RequestError as e:
        raise _from_flags(e) from None


def training_from_args(args: argparse.Namespace, seed: int = 0) -> dict:
    try:
        return training_config({
            "epochs": args.epochs, "batch_size": args.batch_size, "optimizer": args.optimizer,
            "lr": args.lr, "seed": seed, "early_stopping": {"patience": args.patience, "min_delta": 0.0},
        })
    except RequestError as e:
        raise _from_flags(e) from None


def existing_logdir(path: str) -> str:
    """``path`` if it is a folder; else a UserError (every command but init and train reads a logdir)."""
    if os.path.isdir(path):
        return path
    what = "is a file, not a logdir" if os.path.exists(path) else "does not exist"
    raise UserError(f"{path} {what}; give the logdir that 'remap init' made (or run 'remap init {path}' first)")


def cmd_init(args: argparse.Namespace) -> int:
    from remap_tb.spec.sampler import DEFAULT_MAX_DEPTH, sample_specs
    from trainer.datasets import load_dataset

    if args.models < 1:
        raise UserError("--models must be at least 1")
    from trainer.datasets import DatasetError

    dataset = dataset_from_args(args)
    training = training_from_args(args, seed=args.seed)
    try:
        data = load_dataset(dataset)  # fails early, before anything is written, if the data is missing
    except DatasetError as e:
        raise _from_flags(e) from None
    max_depth = args.max_depth if args.max_depth is not None else DEFAULT_MAX_DEPTH[args.blocks]
    constraints = Constraints(min_params=args.min_params, max_params=args.max_params, max_depth=max_depth)
    sampled = sample_specs(args.models, data.input_shape, data.num_classes, args.seed, constraints,
                           blocks=args.blocks)
    if not sampled.specs:
        raise UserError(f"could not sample any model: {sampled.summary(args.models)}; raise --max-params")
    print(f"remap: {sampled.summary(args.models)}")
    experiment = {
        "version": 1, "dataset": dataset, "training": training, "constraints": constraints.to_json(),
        "seed": args.seed, "models": args.models, "blocks": args.blocks, "fingerprint": data.fingerprint,
    }
    os.makedirs(args.logdir, exist_ok=True)
    atomic_write_json(metadata.experiment_path(args.logdir, data.fingerprint["id"]), experiment)
    requests = [
        make_request(spec, dataset, {**training, "seed": args.seed + i},
                     {"origin": "initial", "parent": None, "changes": []},
                     request_id=f"init-s{args.seed}-{i:03d}")
        for i, spec in enumerate(sampled.specs)
    ]
    return run_population(args.logdir, requests, args.workers, args.device)


def run_population(logdir: str, requests: list[dict], workers: int, device: str) -> int:
    """Queue the population and run local workers until every one of its requests is final.

    Resumable: ids already queued (or runs already trained before the queue
    existed) are not queued again, so re-running init continues where it stopped.
    """
    from remap_tb.queue import FINISHED, Queue
    from remap_tb.worker_manager import LocalWorkers

    if workers < 1:
        raise UserError("--workers must be at least 1")
    queue = Queue(logdir)
    todo = [r for r in requests if queue.known(r["id"])
            or not os.path.exists(os.path.join(logdir, r["id"], metadata.WEIGHTS_FILE))]
    new = queue.enqueue([r for r in todo if not queue.known(r["id"])]).new
    if len(new) < len(requests):
        print(f"remap: {len(requests) - len(new)} of {len(requests)} model(s) were queued or trained before; "
              f"queued {len(new)}")
    ids = [r["id"] for r in todo]
    states = queue.states(ids)
    finished = sum(states[i] in FINISHED for i in ids)
    if finished < len(ids):
        pool = LocalWorkers(logdir, workers, args=["--device", device])
        print(f"remap: training with {workers} local worker(s); their log: {pool.log_path}")
        previous = signal.signal(signal.SIGTERM, _interrupt)  # stop the workers cleanly on SIGTERM too
        try:
            finished = _train_population(queue, pool, ids, finished)
        finally:
            signal.signal(signal.SIGTERM, previous)
    return _population_summary(logdir, queue, ids, len(requests) - len(todo))


def _interrupt(signum, frame):
    raise KeyboardInterrupt()


def _train_population(queue, pool, ids: list[str], finished: int) -> int:
    """Run ``pool`` until every id is final, with a progress bar over models; returns the count."""
    from tqdm import tqdm

    from remap_tb.queue import FINISHED

    restarts = 0
    with pool, tqdm(total=len(ids), initial=finished, desc="models", unit="model") as bar:
        while finished < len(ids):
            time.sleep(0.25)
            states = queue.states(ids)
            now = sum(states[i] in FINISHED for i in ids)
            if now != finished:
                bar.update(now - finished)
            finished = now
            if not pool.running() and finished < len(ids):
                restarts += 1
                if restarts > 3:
                    raise UserError(f"the workers keep exiting; see {pool.log_path}")
                pool.start()
    return finished


def _population_summary(logdir: str, queue, ids: list[str], trained_before: int) -> int:
    states = queue.states(ids)
    done = [i for i in ids if states[i] == "done"]
    print(f"remap: {len(done) + trained_before} of {len(ids) + trained_before} model(s) trained in {logdir}. "
          f"Now run: tensorboard --logdir {logdir}")
    for rid in ids:
        if states[rid] != "done":
            found = queue.get(rid)
            reason = found[1]["queue"].get("reason") if found else None
            print(f"remap: {rid}: {states[rid]}{': ' + reason if reason else ''}", file=sys.stderr)
    return 0 if len(done) == len(ids) else 1


def cmd_worker(args: argparse.Namespace) -> int:
    from trainer.worker import run_from_args

    existing_logdir(args.logdir)
    return run_from_args(args)


def cmd_enqueue(args: argparse.Namespace) -> int:
    from remap_tb.queue import Queue, QueueError
    from remap_tb.requests import new_request_id, parse_request

    existing_logdir(args.logdir)
    if args.epochs is not None and args.epochs < 0:
        raise UserError("--epochs must be >= 0")
    requests: list[dict] = []
    wheres: list[str] = []
    config = None
    for path in args.files:
        value = _load_json_file(path)
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            where = f"{path}" + (f"[{index}]" if isinstance(value, list) else "")
            if isinstance(item, dict) and "spec" in item:
                request = {**item, "id": item.get("id") or new_request_id(
                    (item.get("provenance") or {}).get("origin", "handcrafted"))}
            else:
                config = config or _experiment_config(args.logdir, args.experiment)
                request = {"id": new_request_id("handcrafted"), "spec": item, "dataset": config["dataset"],
                           "training": config["training"],
                           "provenance": {"origin": "handcrafted", "parent": None, "changes": []}}
            if args.epochs is not None:
                request["training"] = {**(request.get("training") or {}), "epochs": args.epochs}
            try:
                requests.append(parse_request(request))
            except RequestError as e:
                raise UserError(f"{where}: {e}") from None
            wheres.append(where)
    queue = Queue(args.logdir)
    duplicates = _enqueue_duplicates(args.logdir, queue, requests, wheres)
    try:
        result = queue.enqueue(requests, priority=args.priority)
    except QueueError as e:
        raise UserError(str(e)) from None
    for index, owner in duplicates:
        if owner != result.ids[index]:
            print(f"remap: note: {wheres[index]}: the same model as {owner}; queued to train it again",
                  file=sys.stderr)
    for rid in result.ids:
        print(f"{rid}\t{'queued' if rid in result.new else 'already queued'}")
    return 0


def _enqueue_duplicates(logdir: str, queue, requests: list[dict], wheres: list[str]) -> list[tuple[int, str]]:
    """The rule of the enqueue route (``remap_tb.search_routes.find_duplicates``) over the logdir's runs
    (their request files) and pending/running requests: (item, owner) of each exact duplicate;
    an item that is an existing model only once no-ops are removed is a UserError naming it."""
    from remap_tb.search_routes import DuplicateError, find_duplicates

    def runs() -> list[dict]:
        records = []
        for name in sorted(os.listdir(logdir)):
            path = os.path.join(logdir, name, metadata.REQUEST_FILE)
            if not name.startswith(".") and os.path.isfile(path):
                try:
                    records.append({"id": name, "spec": read_json(path)["spec"]})
                except (OSError, ValueError, KeyError, TypeError):
                    continue
        return records

    try:
        found = find_duplicates(requests, runs, queue)
    except DuplicateError as e:
        raise UserError(f"{wheres[e.item]}: {e.message.split(': ', 1)[1]}") from None
    return [(d["item"], d["duplicate_of"]) for d in found if d["duplicate_of"]]


def _experiment_config(logdir: str, experiment: str | None) -> dict:
    known = metadata.experiment_ids(logdir)
    if experiment is None:
        if not known:
            raise UserError(f"{logdir} has no experiment config; run 'remap init' there first, "
                            "or enqueue full training requests (with dataset and training)")
        if len(known) > 1:
            raise UserError(f"{logdir} has {len(known)} experiments ({', '.join(known)}); choose one with --experiment")
        experiment = known[0]
    if experiment not in known:
        raise UserError(f"no experiment {experiment!r} in {logdir} (known: {', '.join(known) or 'none'})")
    return read_json(metadata.experiment_path(logdir, experiment))


def cmd_queue(args: argparse.Namespace) -> int:
    from remap_tb.queue import Queue

    queue = Queue(existing_logdir(args.logdir))
    if not os.path.isdir(queue.root):
        raise UserError(f"{args.logdir} has no queue ({os.path.relpath(queue.root, queue.logdir)} is missing): "
                        "nothing was ever queued there. Queue models with 'remap init' or 'remap enqueue', "
                        "or give the logdir that has them")
    listing = queue.list()
    if args.json:
        print(json.dumps(listing, indent=1))
        return 0
    print(f"{'state':<10} {'id':<28} {'origin':<12} {'progress':>9} {'attempts':>8}  error")
    for row in listing["requests"]:
        progress = f"{row['epoch']}/{row['epochs']}"
        error = (row["error"] or "").splitlines()[0][:80] if row["error"] else ""
        print(f"{row['state']:<10} {row['id']:<28} {row['origin'] or '?':<12} {progress:>9} "
              f"{row['attempts']:>8}  {error}")
    alive = [w for w in listing["workers"] if w["alive"]]
    counts = {}
    for row in listing["requests"]:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in counts.items()) or "empty"
    print(f"queue: {summary}; {len(alive)} worker(s) alive" +
          ("" if alive else " (start one with: remap worker " + args.logdir + ")"))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from trainer.datasets import DatasetError
    from trainer.train import train

    value = _load_json_file(args.file)
    if isinstance(value, dict) and "spec" in value:
        request = value
        if args.id:
            request = {**request, "id": args.id}
    else:
        request = make_request(value, dataset_from_args(args), training_from_args(args),
                               {"origin": "handcrafted", "parent": None, "changes": []}, request_id=args.id)
    init_from = None
    if args.init_from is not None:
        init_from = _init_source(args.init_from)
        request = {**request, "training": {**(request.get("training") or {}), "init": "parent"},
                   "provenance": {**_provenance(request),
                                  "parent": init_from.run if is_valid_id(init_from.run) else None}}
    try:
        result = train(request, args.logdir, device=args.device, progress=True, init_from=init_from)
    except DatasetError as e:  # raised before anything is written
        if isinstance(value, dict) and "spec" in value:
            raise  # the dataset came from the request file: its field names are the right words
        raise _from_flags(e) from None
    if result.init is not None:
        print(f"remap: initialised from {result.init['from']}: {result.init['layers']} of {result.init['of']} layers")
    elif result.init_reason:
        print(f"remap: {result.init_reason}")
    print(f"remap: {result.request_id}: {result.state} after {result.epoch}/{result.epochs} epoch(s)"
          f"{'; ' + result.reason if result.reason else ''}; "
          f"val accuracy {result.metrics.get('val_accuracy', float('nan')):.4f}; run at {result.run_dir}")
    return 0 if result.state in (metadata.DONE,) else 1


def _init_source(run_dir: str):
    """The run ``--init-from`` names, read. Not a directory: a UserError; a run without usable
    weights: a warning, and the model trains from scratch with the reason in its record."""
    from trainer.inherit import read_parent

    if not os.path.isdir(run_dir):
        raise UserError(f"--init-from {run_dir}: no such run directory")
    parent = read_parent(run_dir)
    if not parent.usable:
        print(f"remap: warning: --init-from {run_dir}: {parent.reason}; training from scratch", file=sys.stderr)
    return parent


def _provenance(request: dict) -> dict:
    """The request's provenance (its parent becomes the ``--init-from`` run)."""
    provenance = request.get("provenance")
    return dict(provenance) if isinstance(provenance, dict) else {"origin": "handcrafted", "changes": []}


def cmd_validate(args: argparse.Namespace) -> int:
    spec = _load_json_file(args.file)
    analysis = analyse(spec, Limits(max_params=args.max_params, max_depth=args.max_depth))
    memory, over = _validate_memory(spec, analysis, args)
    if args.json:
        print(json.dumps({**analysis.to_json(), "memory": memory.to_json() if memory else None,
                          **({"valid": False, "memory_error": over} if over else {})}, indent=1))
        return 0 if analysis.ok and not over else 1
    graph = not analysis.is_chain  # a column of inputs only when some layer does not read the previous one
    if graph:
        print(f"{'':>5} {'layer':<14} {'output':>14} {'params':>12}  inputs")
    if analysis.input_shape:
        print(f"{'':>5} {'input':<14} {_shape(analysis.input_shape):>14}")
    for info in analysis.layers:
        params = f"{info.params:,}" if info.params is not None else "?"
        inputs = f"  {_inputs(info.inputs)}" if graph else ""
        print(f"{info.index:>5} {info.layer_type:<14} {_shape(info.output_shape):>14} {params:>12}{inputs}")
    if analysis.classifier_params is not None:
        print(f"{'':>5} {'classifier':<14} {spec['input']['num_classes']:>14} {analysis.classifier_params:>12,}")
    if memory is not None:
        _print_memory(memory)
    if over:
        print(f"invalid: {over}", file=sys.stderr)
        return 1
    if analysis.ok:
        merges = f", {analysis.merge_count} merge(s), longest path {analysis.longest_path}" if graph else ""
        print(f"valid: {analysis.total_params:,} parameters, {analysis.depth} layers{merges}")
        return 0
    print(f"invalid: {len(analysis.problems)} problem(s)", file=sys.stderr)
    for problem in analysis.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def _validate_memory(spec: Any, analysis, args: argparse.Namespace):
    """(training memory estimate or None, the over-the-limit message or None) for ``remap validate``."""
    from remap_tb.run_limits import default_max_memory, memory_problem, parse_bytes
    from remap_tb.spec.memory import training_memory

    if not analysis.ok:
        return None, None
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    try:
        limit = parse_bytes(args.max_memory) if args.max_memory is not None else default_max_memory()
    except ValueError as e:
        raise UserError(f"--max-memory: {e}") from None
    estimate = training_memory(spec, args.batch_size, args.optimizer, analysis)
    return estimate, memory_problem(estimate, limit)


def _print_memory(memory) -> None:
    """The estimate per layer (what autograd keeps + parameters, gradients, optimiser state) and in total."""
    from remap_tb.spec.memory import format_bytes

    print(f"memory at batch size {memory.batch_size} with {memory.optimizer} (per layer: activations kept for "
          "the backward pass + parameters, gradients, optimiser state):")
    for layer in memory.layers:
        print(f"memory {layer.index:>5} {layer.layer_type:<14} {format_bytes(layer.total_bytes):>12}")
    print(f"memory {'':>5} {'classifier':<14} {format_bytes(memory.classifier_bytes):>12}")
    print(f"memory {'':>5} {'input batch':<14} {format_bytes(memory.input_bytes):>12}")
    print(f"memory {'':>5} {'gradients':<14} {format_bytes(memory.gradient_bytes):>12}  (peak of the backward pass)")
    print(f"memory total: {format_bytes(memory.total_bytes)} to train ({memory.total_bytes:,} bytes)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from trainer.evaluate import evaluate_run

    if not os.path.isdir(args.run_dir):
        raise UserError(f"{args.run_dir}: no such run directory (give LOGDIR/RUN of a trained run)")
    record = evaluate_run(args.run_dir, split=args.split, device=args.device)
    per_class = ", ".join(f"{a:.3f}" for a in record["per_class_accuracy"])
    print(f"remap: {args.run_dir}: test accuracy {record['accuracy']:.4f} on {record['n_samples']} samples "
          f"(loss {record['loss']:.4f}); per class: {per_class}. Recorded in the run.")
    return 0


def demo_logs_dir() -> str:
    """The ``demo_logs/`` folder of this checkout."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo_logs")


def cmd_demo(args: argparse.Namespace) -> int:
    """Copy demo_logs/ (once) and replace this process with TensorBoard on the copy.

    The copy keeps the committed demo_logs/ untouched while the local worker trains
    what the user enqueues.
    """
    source = demo_logs_dir()
    if not os.path.isdir(source) or not os.listdir(source):
        raise UserError(f"no demo logs at {source}; make them with: remap init {source} --dataset digits "
                        "--models 30 --epochs 10 --max-params 100000 --seed 0")
    if args.workers < 0:
        raise UserError("--workers must be 0 or more")
    logdir = os.path.abspath(args.logdir)
    if args.reset and os.path.isdir(logdir):
        shutil.rmtree(logdir)
    if not os.path.isdir(logdir):
        staging = f"{logdir}.copying-{os.getpid()}"
        shutil.copytree(source, staging)
        os.replace(staging, logdir)
        print(f"remap: copied {source} to {logdir}")
        if args.workers > 0:  # one longer run to watch and cancel (trainer/demo_request.py)
            from trainer.demo_request import SLOW_EPOCHS, enqueue_slow_request

            if enqueue_slow_request(logdir):
                print(f"remap: queued one longer run ({SLOW_EPOCHS} epochs) to watch in the Queue tab and cancel")
    warning = exposure_warning(args.host, args.bind_all, args.port)
    if warning:
        print(f"remap: warning: {warning}", file=sys.stderr, flush=True)
    print(f"remap: starting TensorBoard at http://{args.host}:{args.port}/#remap (Ctrl-C stops it)", flush=True)
    os.execv(sys.executable, demo_command(args, logdir))
    return 0  # not reached


def demo_command(args: argparse.Namespace, logdir: str) -> list[str]:
    """The ``tensorboard`` command line that ``remap demo`` runs."""
    bind = ["--bind_all"] if args.bind_all else ["--host", args.host]
    return [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, *bind, "--port", str(args.port),
            "--remap_workers", str(args.workers), "--remap_allowed_hosts", args.allowed_hosts]


def exposure_warning(host: str, bind_all: bool, port: int) -> str | None:
    """What to tell a person whose TensorBoard will listen beyond this machine (None when it does not)."""
    if not bind_all and host_guard.host_name(host) in host_guard.LOOPBACK_HOSTS:
        return None
    return (f"TensorBoard will listen beyond this machine: anyone who can reach port {port} can see every "
            "model, enqueue training on this machine and download weights. Browsers must reach it by a "
            "name given with --allowed-hosts (or --host).")


def _inputs(inputs: Sequence[int]) -> str:
    """``7, 3`` or ``input`` for -1; ``?`` when the layer's inputs are invalid."""
    return ", ".join("input" if k == -1 else str(k) for k in inputs) or "?"


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
