"""Local-search and queue routes: POST generate, enqueue, cancel, reorder; GET queue.

``make_routes(logdir, find_model, list_models)`` returns the handlers the
plugin mounts (see ``http_api.md``). Each route is thin: it reads the body with
``read_json_body`` (the POST rules), checks every field, and calls an ``*_impl``
function that tests call directly. Every bad input is a 4xx with a message
and writes nothing. Torch-free.

``find_model(run)`` returns a run's ``remap/model`` record (id, spec, dataset,
training, fingerprint, provenance, class_names, ...) or None; ``list_models()``
returns every model record.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Callable

from remap_tb import metadata
from remap_tb.atomic import read_json
from remap_tb.http_util import HttpError, json_response, json_route, read_json_body
from remap_tb.queue import Queue, QueueError
from remap_tb.requests import (ENQUEUE_ORIGINS, INIT_MODES, MAX_EPOCHS, RequestError, dataset_config,
                               TRAINING_DEFAULTS, finetune_epochs, is_valid_id, make_request, training_config)
from remap_tb.run_limits import RunLimits, memory_problem, request_problems
from remap_tb.spec import DEFAULT_LIMITS, Constraints, Limits, spec_hash
from remap_tb.spec.canonical import KnownModels, canonicalise
from remap_tb.spec.memory import format_bytes, training_memory

logger = logging.getLogger(__name__)

MAX_ITEMS = 200  # requests per enqueue
MAX_PARENTS = 50  # models per generate (a region of the map)
MAX_RUN_NAME = 500
KINDS = ("ablation", "variation")
_FINGERPRINT_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")

FindModel = Callable[[str], "dict | None"]
ListModels = Callable[[], "list[dict]"]
Generate = Callable[..., dict]
# finished_models(parent runs) -> the finished models of their experiment ({"id", "spec",
# "accuracy", "params"}); model_distances(those models) -> their normalised OTMANN matrix.
FinishedModels = Callable[[list], "list[dict]"]
ModelDistances = Callable[[list], Any]
SORTS = ("predicted", "ei")
MAX_SUGGEST = 20


def make_routes(logdir: str, find_model: FindModel, list_models: ListModels, *,
                queue: Queue | None = None, generate: Generate | None = None,
                limits: Limits = DEFAULT_LIMITS, run_limits: RunLimits | None = None,
                finished_models: FinishedModels | None = None,
                model_distances: ModelDistances | None = None) -> dict[str, Callable]:
    """The route table ``{"/generate": handler, ...}`` for the plugin's ``get_plugin_apps``.

    ``limits`` caps what generate proposes and enqueue accepts (TensorBoard's
    ``--remap_max_params``); so do ``run_limits`` (training memory and epochs,
    ``--remap_max_memory`` and ``--remap_max_epochs``). ``finished_models`` and
    ``model_distances`` feed generate's predicted accuracy (``remap_tb.surrogate``);
    without ``finished_models`` no candidate gets a prediction.
    """
    queue = queue or Queue(logdir)
    memo: dict[str, str] = {}  # spec hash -> canonical hash, for the duplicate checks

    @json_route(("POST",))
    def generate_route(request):
        find, models = _memoised(find_model, list_models)
        return generate_impl(read_json_body(request), find, models, queue, generate, limits, run_limits,
                             finished_models=finished_models, model_distances=model_distances, memo=memo)

    @json_route(("POST",))
    def enqueue_route(request):
        find, models = _memoised(find_model, list_models)
        try:
            return enqueue_impl(read_json_body(request), logdir, find, models, queue, limits, run_limits, memo)
        except DuplicateError as e:
            return json_response(e.to_json(), e.status)

    @json_route(("GET",))
    def queue_route(request):
        return queue.list()

    @json_route(("POST",))
    def cancel_route(request):
        return cancel_impl(read_json_body(request), queue)

    @json_route(("POST",))
    def reorder_route(request):
        return reorder_impl(read_json_body(request), queue)

    return {"/generate": generate_route, "/enqueue": enqueue_route, "/queue": queue_route,
            "/cancel": cancel_route, "/reorder": reorder_route}


# ---------------------------------------------------------------------- generate

def generate_impl(body: Any, find_model: FindModel, list_models: ListModels, queue: Queue,
                  generate: Generate | None = None, limits: Limits = DEFAULT_LIMITS,
                  run_limits: RunLimits | None = None, *, finished_models: FinishedModels | None = None,
                  model_distances: ModelDistances | None = None, memo: dict[str, str] | None = None) -> dict:
    """Candidates around one or more parent runs; no side effect.

    A candidate whose training memory (at its parent's batch size and optimiser) is
    over ``run_limits.max_memory`` is marked ``valid: false`` with the reason. Each
    candidate carries ``predicted`` (``remap_tb.surrogate``, from the finished models of
    the parents' experiment) and the result a ``surrogate`` block; options ``sort`` and
    ``suggest`` order the candidates or keep the k with the highest expected improvement.
    """
    body = _object(body, "body", required=("parents", "kind"), optional=("options", "constraints"))
    parents = body["parents"]
    if not isinstance(parents, list) or not 1 <= len(parents) <= MAX_PARENTS:
        raise HttpError(400, f"parents must be a list of 1 to {MAX_PARENTS} run names")
    records = []
    for index, run in enumerate(parents):
        _check_run_name(run, f"parents[{index}]")
        record = _find(run, find_model, list_models)
        if record is None:
            raise HttpError(404, f"parents[{index}]: no model in run {run[:100]!r}")
        records.append(record)
    kind = body["kind"]
    if kind not in KINDS:
        raise HttpError(400, f"kind must be one of {', '.join(KINDS)}, got {_short(kind)}")
    options = body.get("options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise HttpError(400, "options must be an object")
    options = dict(options)
    sort, suggest = options.pop("sort", None), options.pop("suggest", None)
    if sort is not None and sort not in SORTS:
        raise HttpError(400, f"options.sort must be one of {', '.join(SORTS)}, got {_short(sort)}")
    if suggest is not None and (isinstance(suggest, bool) or not isinstance(suggest, int)
                                or not 1 <= suggest <= MAX_SUGGEST):
        raise HttpError(400, f"options.suggest must be an integer 1..{MAX_SUGGEST}, got {_short(suggest)}")
    try:
        constraints = Constraints.from_json(body.get("constraints"))
    except ValueError as e:
        raise HttpError(400, str(e)) from None
    existing = _existing_hashes(list_models(), queue, memo)
    if generate is None:
        from remap_tb.spec.operators import generate
    try:
        result = generate(records, kind, options, constraints, existing, limits)
    except (ValueError, TypeError) as e:  # bad options are the caller's error
        raise HttpError(400, str(e)[:1000]) from None
    if run_limits is not None and run_limits.max_memory is not None:
        _mark_over_memory(result, records, run_limits.max_memory)
    _predict(result, parents, records, constraints, finished_models, model_distances)
    if suggest is not None:
        _suggest(result, suggest)
    elif sort is not None:
        key = "accuracy" if sort == "predicted" else "ei"
        result["candidates"].sort(key=lambda c: (c["predicted"] is None,
                                                 -(c["predicted"] or {}).get(key, 0.0)))
    return result


def _predict(result: dict, parents: list[str], records: list[dict], constraints: Constraints,
             finished_models: FinishedModels | None, model_distances: ModelDistances | None) -> None:
    """Add ``predicted`` to every candidate and the ``surrogate`` block (http_api.md)."""
    from remap_tb import surrogate

    candidates = result.setdefault("candidates", [])
    if finished_models is None:
        predicted = [None] * len(candidates)
        info = {"n_models": 0, "ready": False, "best": None,
                "reason": "this server does not say which models finished"}
    else:
        if model_distances is None:
            from remap_tb import otmann

            def model_distances(models):
                return otmann.distance_matrix_both([m["spec"] for m in models])[1]
        try:
            predicted, info = surrogate.predict_candidates(
                finished_models(parents), candidates, model_distances, constraints.min_params,
                constraints.max_params, parent_specs={r.get("id"): r.get("spec") for r in records})
        except Exception as e:  # never lose the candidates over a prediction
            logger.exception("remap: surrogate failed")
            predicted = [None] * len(candidates)
            info = {"n_models": 0, "ready": False, "best": None,
                    "reason": f"the surrogate failed: {type(e).__name__}: {str(e)[:200]}"}
    for candidate, value in zip(candidates, predicted):
        candidate["predicted"] = value
    result["surrogate"] = info


def _suggest(result: dict, k: int) -> None:
    """Keep the k valid candidates with the highest expected improvement, marked ``suggested``."""
    info = result["surrogate"]
    if not info["ready"]:
        raise HttpError(400, f"suggest needs predicted accuracies: {info['reason']}")
    pool = [c for c in result["candidates"] if c.get("valid") and c.get("predicted") is not None]
    pool.sort(key=lambda c: -c["predicted"]["ei"])
    chosen = pool[:k]
    for candidate in chosen:
        candidate["suggested"] = True
    result["candidates"], result["made"] = chosen, len(chosen)
    result["summary"] = (f"{result.get('summary', '')}; suggested {len(chosen)} of {len(pool)} "
                         f"by expected improvement over {info['best']:.4f}")


def _mark_over_memory(result: dict, records: list[dict], max_memory: int) -> None:
    """Mark the valid candidates of ``result`` whose training needs more than ``max_memory``."""
    training = {}
    for record in records:
        try:
            training[record.get("id")] = training_config(record.get("training"))
        except (RequestError, TypeError, ValueError):
            training[record.get("id")] = training_config({})
    over = 0
    for candidate in result.get("candidates", []):
        if not candidate.get("valid"):
            continue
        config = training.get(candidate.get("parent")) or training_config({})
        try:
            estimate = training_memory(candidate["spec"], config["batch_size"], config["optimizer"])
        except (KeyError, TypeError, ValueError):
            continue
        problem = memory_problem(estimate, max_memory)
        if problem:
            candidate["valid"], candidate["reason"] = False, problem
            over += 1
    if over:
        result["made"] = max(0, result.get("made", 0) - over)
        result["summary"] = f"{result.get('summary', '')}; {over} over the memory limit of {format_bytes(max_memory)}"


def _existing_hashes(models: list[dict], queue: Queue | None, memo: dict[str, str] | None = None) -> KnownModels:
    """Spec hashes and canonical hashes of every model and of every pending or running request.

    A set (what generate excludes) whose ``owners`` maps each hash to the run id of
    its model or the id of its request, so a duplicate can name it. Canonical hashes
    (``remap_tb.spec.canonical``) make a spec that differs only by no-ops (a relu right
    after a relu, dropout 0, ...) a duplicate too. ``memo``: see ``KnownModels.add_model``.
    """
    known = KnownModels()
    for record in models:
        if not isinstance(record, dict):
            continue
        owner = str(record.get("run") or record.get("id") or "")
        digest = record.get("spec_hash") if isinstance(record.get("spec_hash"), str) else None
        if isinstance(record.get("spec"), dict) or digest:
            known.add_model(record.get("spec"), owner, digest, memo)
    for rid, spec in queue.specs() if queue is not None else ():
        known.add_model(spec, rid, memo=memo)
    return known


def duplicate_json(body: Any, list_models: ListModels, queue: Queue | None,
                   memo: dict[str, str] | None = None) -> dict:
    """``{"duplicate_of": id or None}`` for the ``validate`` route: the run (or pending/running
    request) whose model a valid spec is, by spec hash or canonical hash; ``{}`` for an invalid one."""
    spec = body["spec"] if isinstance(body, dict) and "spec" in body and "layers" not in body else body
    try:
        canonical = canonicalise(spec)
    except ValueError:
        return {}
    known = _existing_hashes(list_models(), queue, memo)
    key = spec_hash(spec)
    return {"duplicate_of": known.exact.get(key) or known.owners.get(canonical.hash) or None}


# ---------------------------------------------------------------------- enqueue

class DuplicateError(HttpError):
    """An enqueue item that is an existing model once no-ops are removed: a 409 that names it."""

    def __init__(self, message: str, duplicate_of: str, item: int):
        super().__init__(409, message)
        self.duplicate_of = duplicate_of
        self.item = item

    def to_json(self) -> dict:
        return {"error": self.message, "duplicate_of": self.duplicate_of, "item": self.item}


def enqueue_impl(body: Any, logdir: str, find_model: FindModel, list_models: ListModels, queue: Queue,
                 limits: Limits = DEFAULT_LIMITS, run_limits: RunLimits | None = None,
                 memo: dict[str, str] | None = None) -> dict:
    """Validate every item into a training request, then enqueue them all (or nothing).

    With ``run_limits``, an item over the memory or epoch limit is a 400 with the reason.
    """
    body = _object(body, "body", required=("items",),
                   optional=("epochs", "epochs_from_parent", "experiment", "client_key"))
    items = body["items"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise HttpError(400, f"items must be a list of 1 to {MAX_ITEMS} models")
    epochs, from_parent = body.get("epochs"), body.get("epochs_from_parent")
    for name, value in (("epochs", epochs), ("epochs_from_parent", from_parent)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= MAX_EPOCHS):
            raise HttpError(400, f"{name} must be an integer from 0 to {MAX_EPOCHS}")
    experiment = body.get("experiment")
    if experiment is not None and (not isinstance(experiment, str) or not _FINGERPRINT_ID.match(experiment)):
        raise HttpError(400, "experiment must be an experiment id (letters, digits, '_', '-'), "
                             f"got {_short(experiment)}")
    client_key = body.get("client_key")
    if client_key is not None and (not isinstance(client_key, str) or not 0 < len(client_key) <= 200):
        raise HttpError(400, "client_key must be a string of 1 to 200 characters")

    requests = []
    default_config = None
    for index, item in enumerate(items):
        where = f"items[{index}]"
        item = _object(item, where, required=("spec", "origin"), optional=("parent", "changes", "init", "suggested"))
        init, suggested = item.get("init"), item.get("suggested")
        if init is not None and init not in INIT_MODES:
            raise HttpError(400, f"{where}.init must be one of {', '.join(INIT_MODES)}, got {_short(init)}")
        if suggested is not None and not isinstance(suggested, bool):
            raise HttpError(400, f"{where}.suggested must be true or false, got {_short(suggested)}")
        origin = item["origin"]
        if origin not in ENQUEUE_ORIGINS:
            raise HttpError(400, f"{where}.origin must be one of {', '.join(ENQUEUE_ORIGINS)}, got {_short(origin)}"
                                 + (" (external marks models logged with remap_tb.summary)"
                                    if origin == metadata.EXTERNAL else ""))
        parent = item.get("parent")
        if parent is not None:
            _check_run_name(parent, f"{where}.parent")
            record = _find(parent, find_model, list_models)
            if record is None:
                raise HttpError(404, f"{where}.parent: no model {parent[:100]!r}")
            if metadata.is_external(record.get("fingerprint")):
                config = external_config(record, logdir, list_models, where)
            else:
                config = _config_of_record(record, where)
            parent_id = record.get("id")
        else:
            if default_config is None:
                default_config = experiment_config(logdir, experiment, list_models)
            config = default_config
            parent_id = None
        training = dict(config["training"])
        training.pop("init", None)  # the parent's own choices are not the child's
        training.pop("epochs_from_parent", None)
        if epochs is not None:
            training["epochs"] = epochs  # what every child trains, from its parent or not
        if init is not None:
            training["init"] = init  # absent: the parent's weights when it finished with them (trainer.inherit)
        if from_parent is not None:
            training["epochs_from_parent"] = from_parent
        elif epochs is None and parent_id is not None and init != "scratch":
            # Started from its parent's weights, a child trains a third of the epochs (used only
            # if it does start from them: trainer.train; the full budget stays its fallback).
            training["epochs_from_parent"] = finetune_epochs(training.get("epochs", TRAINING_DEFAULTS["epochs"]))
        provenance = {"parent": parent_id, "origin": origin, "changes": item.get("changes", [])}
        if suggested:
            provenance["suggested"] = True
        _check_fits(item["spec"], config, where)
        try:
            requests.append(make_request(item["spec"], config["dataset"], training, provenance, limits=limits))
        except RequestError as e:
            raise HttpError(400, f"{where}: " + "; ".join(e.problems)[:2000]) from None
        over = request_problems(requests[-1], run_limits) if run_limits is not None else []
        if over:
            raise HttpError(400, f"{where}: " + "; ".join(over)[:2000])
    duplicates = find_duplicates(requests, list_models, queue, memo)
    try:
        result = queue.enqueue(requests, client_key=client_key)
    except QueueError as e:
        raise HttpError(e.status, str(e)) from None
    except RequestError as e:
        raise HttpError(400, "; ".join(e.problems)[:2000]) from None
    own = set(result.ids)  # a repeated client_key gives the same requests: not duplicates of themselves
    return {"request_ids": result.ids,
            "duplicates": [d for d in duplicates if d["duplicate_of"] not in own]}


def find_duplicates(requests: list[dict], list_models: ListModels, queue: Queue,
                memo: dict[str, str] | None = None) -> list[dict]:
    """The items that are an existing model or a pending/running request again.

    The same spec (equal spec hash) is queued as asked (training a model again is
    allowed, e.g. for more epochs) and listed as ``{"item", "duplicate_of"}``. A spec
    that differs only by no-ops (equal canonical hash, ``remap_tb.spec.canonical``)
    is refused with a 409 ``DuplicateError`` that names the model: it is the same
    model in disguise, and queueing its own spec is the way to train it again.
    """
    known = None
    out = []
    for index, request in enumerate(requests):
        if known is None:
            known = _existing_hashes(list_models(), queue, memo)
        key = spec_hash(request["spec"])
        if key in known.exact:
            out.append({"item": index, "duplicate_of": known.exact[key] or None})
            continue
        canonical = canonicalise(request["spec"])
        owner = known.owners.get(canonical.hash)
        if canonical.hash in known:
            notes = "; ".join(sorted(canonical.notes, key=lambda n: "padding" in n)[:2]) \
                or f"{owner or 'that model'} has layers that do nothing"
            raise DuplicateError(
                f"items[{index}]: the same model as {owner or 'an existing model'!s} once no-ops are removed "
                f"({notes}), so training it would repeat that model. Change the model, or enqueue "
                f"{owner or 'that model'}'s own spec to train it again.", owner or "", index)
    return out


def experiment_config(logdir: str, experiment: str | None, list_models: ListModels) -> dict:
    """{dataset, training, fingerprint} of an experiment, from ``remap init``'s file or a model of it."""
    if experiment is None:
        known = metadata.experiment_ids(logdir)
        if not known:
            known = sorted({(m.get("fingerprint") or {}).get("id") for m in list_models()
                            if isinstance(m, dict) and isinstance(m.get("fingerprint"), dict)} - {None})
        if len(known) != 1:
            raise HttpError(400, "a model without a parent needs 'experiment' (the experiment id whose dataset "
                                 f"and training config to use); this logdir has {len(known)} experiment(s)")
        experiment = known[0]
    path = metadata.experiment_path(logdir, experiment)
    if os.path.isfile(path):
        try:
            value = read_json(path)
            return {"dataset": value["dataset"], "training": value["training"], "fingerprint": value["fingerprint"]}
        except (OSError, ValueError, KeyError, TypeError):
            pass  # fall back to a model of that experiment
    externals = []
    for record in list_models():
        if isinstance(record, dict) and (record.get("fingerprint") or {}).get("id") == experiment:
            if not metadata.is_external(record["fingerprint"]):
                return _config_of_record(record, "experiment")
            externals.append(record)
    if externals:  # an experiment of models logged with remap_tb.summary only
        for record in externals:
            if _trainable(record.get("dataset")):
                return external_config(record, logdir, list_models, "experiment")
        return external_config(externals[0], logdir, list_models, "experiment")
    raise HttpError(404, f"no experiment {experiment!r} in this logdir")


def external_config(record: dict, logdir: str, list_models: ListModels, where: str) -> dict:
    """{dataset, training, fingerprint} for children of a model logged with ``remap_tb.summary``.

    The dataset: the model's own when it was logged with a trainer dataset config
    (``dataset=dict``), else that of the trainer experiment the model belongs to
    (``metadata.group_experiments``; ``remap init``'s config files count), else a 400.
    The training config: the model's own (``log_model(training=...)``), else the
    experiment's, else the defaults. The fingerprint (input shape, classes) is the
    model's, so children fit it.
    """
    fingerprint = record.get("fingerprint") or {}
    own = {"input_shape": fingerprint.get("input_shape"),
           "classes": fingerprint.get("classes") or record.get("class_names")}
    training = record.get("training")
    own_training = training if _trainable(training, training_config) else None
    experiment = None
    group = _trainer_experiment_of(record, logdir, list_models)
    if group is not None:
        try:
            experiment = experiment_config(logdir, group, list_models)
        except HttpError:
            experiment = None
    dataset = record.get("dataset")
    if _trainable(dataset):
        base_training = own_training or (experiment or {}).get("training") or training_config({})
        return {"dataset": dataset, "training": base_training, "fingerprint": own}
    if experiment is not None:
        return {"dataset": experiment["dataset"], "training": own_training or experiment["training"],
                "fingerprint": experiment["fingerprint"]}
    name = (dataset or {}).get("name") if isinstance(dataset, dict) else None
    raise HttpError(400, f"{where}: model {str(record.get('id'))[:80]!r} was logged with remap_tb.summary on "
                         f"dataset {str(name)[:80]!r}, which the trainer cannot load, and no remap-trained "
                         "experiment in this logdir has its validation set; pass a trainable dataset to "
                         "log_model (dataset={'name': 'npz', 'data_dir': '/abs/path/data.npz'} or another "
                         "trainer dataset config) so its children can be trained")


def _trainable(config: Any, normalise: Callable[[Any], dict] = dataset_config) -> bool:
    """A complete trainer config (as ``remap_tb.requests`` normalises it), not just a name."""
    if not isinstance(config, dict) or not config:
        return False
    try:
        return normalise(config) == config
    except (RequestError, TypeError, ValueError):
        return False


def _trainer_experiment_of(record: dict, logdir: str, list_models: ListModels) -> str | None:
    """The trainer experiment an external model belongs to, or None."""
    fingerprints = [m["fingerprint"] for m in list_models()
                    if isinstance(m, dict) and isinstance(m.get("fingerprint"), dict)
                    and isinstance(m["fingerprint"].get("id"), str)]
    files = []
    for fid in metadata.experiment_ids(logdir):
        try:
            fp = read_json(metadata.experiment_path(logdir, fid))["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(fp, dict) and isinstance(fp.get("id"), str):
            files.append(fp)
    group = metadata.group_experiments([record["fingerprint"]], tuple(fingerprints) + tuple(files))[0]
    return None if group == record["fingerprint"].get("id") else group


def _config_of_record(record: dict, where: str) -> dict:
    try:
        config = {"dataset": record["dataset"], "training": record["training"], "fingerprint": record["fingerprint"]}
    except (KeyError, TypeError):
        raise HttpError(400, f"{where}: that model's record has no dataset/training config") from None
    if not all(isinstance(v, dict) for v in config.values()):
        raise HttpError(400, f"{where}: that model's record has no dataset/training config")
    if "class_names" in record and "classes" not in config["fingerprint"]:
        config["fingerprint"] = {**config["fingerprint"], "classes": record["class_names"]}
    return config


def _check_fits(spec: Any, config: dict, where: str) -> None:
    """The spec's input must be the experiment's dataset shape and class count."""
    fingerprint = config.get("fingerprint") or {}
    shape, classes = fingerprint.get("input_shape"), fingerprint.get("classes")
    if not isinstance(spec, dict) or not isinstance(spec.get("input"), dict):
        return  # make_request reports the malformed spec
    given = spec["input"]
    if isinstance(shape, list) and given.get("shape") != shape:
        raise HttpError(400, f"{where}.spec: input shape {_short(given.get('shape'))} does not match the "
                             f"dataset's {shape}")
    if isinstance(classes, list) and given.get("num_classes") != len(classes):
        raise HttpError(400, f"{where}.spec: num_classes {_short(given.get('num_classes'))} does not match the "
                             f"dataset's {len(classes)} classes")


# ---------------------------------------------------------------------- cancel, reorder

def cancel_impl(body: Any, queue: Queue) -> dict:
    body = _object(body, "body", required=("id",))
    rid = _request_id(body["id"])
    try:
        return {"id": rid, "state": queue.cancel(rid)}
    except QueueError as e:
        raise HttpError(e.status, str(e)) from None


def reorder_impl(body: Any, queue: Queue) -> dict:
    body = _object(body, "body", required=("id", "priority"))
    rid = _request_id(body["id"])
    try:
        return {"id": rid, "priority": queue.reorder(rid, body["priority"])}
    except QueueError as e:
        raise HttpError(e.status, str(e)) from None


# ---------------------------------------------------------------------- helpers

def _object(value: Any, where: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, dict):
        raise HttpError(400, f"{where} must be a JSON object")
    allowed = set(required) | set(optional)
    unknown = sorted(str(k)[:40] for k in value if k not in allowed)
    if unknown:
        raise HttpError(400, f"{where}: unknown field(s) {', '.join(unknown[:5])} "
                             f"(known: {', '.join(sorted(allowed))})")
    missing = [k for k in required if k not in value]
    if missing:
        raise HttpError(400, f"{where}: missing field(s) {', '.join(missing)}")
    return value


def _check_run_name(value: Any, where: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_RUN_NAME or "\x00" in value:
        raise HttpError(400, f"{where} must be a run name (a non-empty string of at most {MAX_RUN_NAME} characters)")


def _memoised(find_model: FindModel, list_models: ListModels) -> tuple[FindModel, ListModels]:
    """Lookups answered once per request: each call of the originals re-reads the run list,
    and an enqueue of 200 children of one parent must not do that 200 times."""
    found: dict[str, dict | None] = {}
    every: list[list[dict]] = []

    def find(run: str) -> dict | None:
        if run not in found:
            found[run] = find_model(run)
        return found[run]

    def models() -> list[dict]:
        if not every:
            every.append(list_models())
        return every[0]

    return find, models


def _find(run: str, find_model: FindModel, list_models: ListModels) -> dict | None:
    """A model record by run name, or else by model id."""
    record = find_model(run)
    if isinstance(record, dict):
        return record
    for candidate in list_models():
        if isinstance(candidate, dict) and candidate.get("id") == run:
            return candidate
    return None


def _request_id(value: Any) -> str:
    if not is_valid_id(value):
        raise HttpError(400, f"id must be a request id, got {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

