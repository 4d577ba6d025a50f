"""The JSON bodies of the read routes (``http_api.md``), built from a ``Snapshot``.

Each ``*_impl`` takes already-parsed arguments and returns JSON-ready data or
raises ``HttpError``; the routes in ``plugin.py`` only parse the request.
Per-model summaries are cached on the ``RunData`` they come from, so a warm
``models`` request over 1,000 runs only assembles cached dicts.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Callable

import numpy as np

from remap_tb import metadata
from remap_tb.http_util import HttpError, json_bytes
from remap_tb.reader import RunData, Snapshot
from remap_tb.requests import RequestError, training_config
from remap_tb.run_limits import RunLimits, memory_problem
from remap_tb.spec import Problem, analyse
from remap_tb.spec.memory import training_memory
from remap_tb.spec.glyph import glyph
from remap_tb.spec import schema
from remap_tb.spec.schema import Limits

PROJECTION_KINDS = ("structural", "structural_normalised", "posthoc", "size")
MAX_COMPARE = 8
MAX_CHAIN = 1000
# A running model whose newest record is older than this is probably orphaned.
STALE_SECONDS = 600.0
STALE_REASON = ("no new record for over 10 minutes and no final status: the worker may have stopped "
                "(the queue re-runs stale requests)")

SIZE_AXES = {"x": "log10(parameters)", "y": "validation accuracy"}
MDS_AXES = {"x": "", "y": ""}


# -- experiments and models --------------------------------------------------------------


def experiments_impl(snap: Snapshot) -> dict[str, Any]:
    experiments = []
    for fid, group in snap.experiments.items():
        # Describe it by a trainer model when it has one (external runs join trainer experiments).
        first = next((d.model for d in group if not metadata.is_external(d.model["fingerprint"])), group[0].model)
        fingerprint = first["fingerprint"]
        experiments.append({
            "id": fid,
            "dataset": str(fingerprint.get("name") or first["dataset"].get("name") or ""),
            "class_names": list(first["class_names"]),
            "n_models": len(group),
            "input_shape": list(first["spec"]["input"]["shape"]),
            "num_classes": int(first["spec"]["input"]["num_classes"]),
            "fingerprint": fingerprint,
        })
    experiments.sort(key=lambda e: (e["dataset"], e["id"]))
    return {"experiments": experiments, "unreadable": [u.to_json() for u in snap.unreadable]}


def schema_impl(max_params: int | None, run_limits: RunLimits | None = None) -> dict[str, Any]:
    """The layer types and their fields, for the editor's palette (spec schema 2).

    Field kinds: ``int``, ``float``, ``choice``, ``bool`` and ``padding`` (one of
    ``choices`` or an integer >= ``min``). Every layer may also carry ``inputs``;
    ``merge_types`` take several. ``limits``: what one request may take
    (``remap_tb.run_limits``; ``validate`` shows a spec's memory estimate).
    """
    layers = {}
    for layer_type, fields in schema.LAYER_FIELDS.items():
        layers[layer_type] = [{
            "name": f.name, "kind": f.kind, "min": f.low, "max": f.high,
            "max_inclusive": f.high_inclusive, "choices": list(f.choices) or None,
            "required": f.required,
            "default": "pool_size" if f.name == "stride" and layer_type in ("maxpool2d", "avgpool2d") else f.default,
            "schema": max(f.since, schema.CHAIN_SCHEMA),
        } for f in fields]
    return {"schema": schema.SCHEMA_VERSION, "layer_types": list(schema.LAYER_TYPES), "fields": layers,
            "merge_types": list(schema.MERGE_TYPES), "inputs": True, "max_params": max_params,
            "limits": {"max_params": max_params, **(run_limits or RunLimits()).to_json()}}


def models_impl(snap: Snapshot, experiment: str, stale: frozenset[str] | None = None,
                statuses: dict[str, dict] | None = None, version: str | None = None,
                since: str | None = None, delta: Any = None) -> dict[str, Any]:
    """``stale``: runs to mark as silent (default: computed now, see ``stale_runs``);
    ``statuses``: the true status of runs whose log lags behind the queue (``run_states``);
    ``version``: the body's version (``models_versions``); with ``delta`` (a
    ``models_versions.Delta`` since the version ``since``) only the changed summaries and the
    runs that left."""
    group, stale, statuses = _models_of(snap, experiment, stale, statuses)
    return {**_models_head(group, experiment, version, since, delta),
            "models": [summary(data, data.run in stale, statuses.get(data.run))
                       for data in (delta.changed if delta is not None else group)]}


def models_body(snap: Snapshot, experiment: str, stale: frozenset[str] | None = None,
                statuses: dict[str, dict] | None = None, version: str | None = None,
                since: str | None = None, delta: Any = None) -> bytes:
    """``models_impl`` encoded, byte for byte ``json_bytes(models_impl(...))``, joined from
    each model's encoded summary (``encoded_summary``, kept on the model): a snapshot that
    brings one new model encodes that one, not all of them (encoding 5,000 summaries
    takes about 0.2 s)."""
    group, stale, statuses = _models_of(snap, experiment, stale, statuses)
    parts = [json_bytes(summary(data, data.run in stale, statuses.get(data.run)))
             if data.run in stale or data.run in statuses else encoded_summary(data)
             for data in (delta.changed if delta is not None else group)]
    head = json_bytes(_models_head(group, experiment, version, since, delta))
    return head[:-1] + b',"models":[' + b",".join(parts) + b"]}"


def _models_of(snap: Snapshot, experiment: str, stale: frozenset[str] | None, statuses: dict[str, dict] | None):
    group = experiment_models(snap, experiment)
    return group, stale_runs(group) if stale is None else stale, statuses or {}


def _models_head(group: list[RunData], experiment: str, version: str | None, since: str | None,
                 delta: Any) -> dict[str, Any]:
    head: dict[str, Any] = {"experiment": experiment, "class_names": list(group[0].model["class_names"])}
    if version is not None:
        head["version"] = version
    if delta is not None:
        head["since"] = since
        head["removed"] = list(delta.removed)
    return head


def encoded_summary(data: RunData) -> bytes:
    """``json_bytes(summary(data))``, cached on ``data`` (the bytes only: the summary's
    Python objects, glyph dicts included, took about 50 MB more over 20,000 models)."""
    encoded = data.derived.get("summary_json")
    if encoded is None:
        cached = data.derived.get("summary")
        encoded = data.derived["summary_json"] = json_bytes(cached if cached is not None else _summary(data))
    return encoded


def stale_runs(group: list[RunData], now: float | None = None) -> frozenset[str]:
    """Runs still "running" whose newest record is older than ``STALE_SECONDS``."""
    now = _clock() if now is None else now
    return frozenset(d.run for d in group if d.state == metadata.RUNNING and d.wall_time is not None
                     and now - d.wall_time >= STALE_SECONDS)


def summary(data: RunData, stale: bool = False, status: dict | None = None) -> dict[str, Any]:
    """The compact ``ModelSummary`` of one model (cached on ``data``; a fresh top-level dict).
    ``status``: the queue's word on a run whose log lags behind (it replaces the log's)."""
    cached = data.derived.get("summary")
    if cached is None:
        cached = data.derived["summary"] = _summary(data)
    out = dict(cached)
    if status is not None:
        out["status"] = dict(status)
    elif stale and out["status"]["reason"] is None:
        out["status"] = {**out["status"], "reason": STALE_REASON}
    return out


def _summary(data: RunData) -> dict[str, Any]:
    model = data.model
    provenance = model["provenance"]
    analysis = data.analysis
    evaluation = data.evaluation or {}
    return {
        "id": data.id,
        "run": data.run,
        "parent": provenance.get("parent"),
        "origin": provenance.get("origin", "initial"),
        "changes": list(provenance.get("changes") or []),
        "init": _init(model.get("init")),
        "status": _status(data),
        "params": int(model.get("params", analysis.total_params or 0)),
        "depth": int(model.get("depth", analysis.depth)),
        "spec_hash": str(model.get("spec_hash", "")),
        "train_accuracy": data.metric("train_accuracy"),
        "val_accuracy": data.metric("val_accuracy"),
        "val_loss": data.metric("val_loss"),
        "per_class_accuracy": evaluation.get("per_class_accuracy"),
        "glyph": glyph(data.spec, analysis),
        "created": str(model.get("created", "")),
        "wall_time": data.wall_time,
        "epochs_trained": epochs_trained(data),
    }


def epochs_trained(data: RunData) -> int:
    """Epochs the model trained: its status's epoch, or the number of epochs with a
    validation score when that is larger (a run that failed after some epochs)."""
    status = data.status or {}
    epoch = status.get("epoch", 0)
    epoch = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch > 0 else 0
    scored = sum(1 for point in data.curves if point.get("val_accuracy") is not None)
    return max(epoch, scored)


def _init(value: Any) -> dict[str, Any] | None:
    """The model record's ``init`` (what it inherited from its parent), read tolerantly: None unless well formed."""
    if not isinstance(value, dict) or not isinstance(value.get("from"), str):
        return None
    layers, of = value.get("layers"), value.get("of")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (layers, of)):
        return None
    mapping = value.get("mapping")
    pairs = [[int(c), int(p)] for c, p in mapping if isinstance(c, int) and isinstance(p, int)] \
        if isinstance(mapping, list) and all(isinstance(m, list) and len(m) == 2 for m in mapping) else []
    out = {"from": value["from"], "layers": layers, "of": of, "mapping": pairs,
           "classifier": bool(value.get("classifier", False))}
    for key in ("copied", "fresh"):  # layer indexes or "classifier" (trainer/morph.py)
        if isinstance(value.get(key), list):
            out[key] = [v for v in value[key] if v == "classifier" or (isinstance(v, int) and not isinstance(v, bool))]
    if isinstance(value.get("morphed"), list):
        out["morphed"] = [{"layer": m["layer"], "from": m.get("from"), "how": str(m.get("how", ""))[:200]}
                          for m in value["morphed"] if isinstance(m, dict) and "layer" in m]
    if isinstance(value.get("exact"), bool):
        out["exact"] = value["exact"]
    return out


def _status(data: RunData) -> dict[str, Any]:
    status = data.status
    epochs = data.model["training"].get("epochs", 0)
    if status is None:
        return {"state": metadata.RUNNING, "epoch": 0, "epochs": epochs, "reason": None}
    return {"state": status["state"], "epoch": status.get("epoch", 0),
            "epochs": status.get("epochs", epochs), "reason": status.get("reason")}


def model_impl(snap: Snapshot, run: str, status: dict | None = None) -> dict[str, Any]:
    data = get_model(snap, run)
    analysis = data.analysis
    model = data.model
    return {
        **summary(data, bool(stale_runs([data])), status),
        "spec": model["spec"],
        "layers": [info.to_json() for info in analysis.layers],
        "classifier_params": analysis.classifier_params,
        "curves": [dict(point) for point in data.curves],
        "confusion": (data.evaluation or {}).get("confusion"),
        "provenance_chain": provenance_chain(snap, data),
        "training": model["training"],
        "init_reason": model.get("init_reason") if isinstance(model.get("init_reason"), str) else None,
        "dataset": model["dataset"],
        "test": data.test,
    }


def provenance_chain(snap: Snapshot, data: RunData) -> list[dict[str, Any]]:
    """This model, then its parent, grandparent, ... while they are known (cycles stop it)."""
    chain, seen = [], set()
    current: RunData | None = data
    while current is not None and current.id not in seen and len(chain) < MAX_CHAIN:
        seen.add(current.id)
        provenance = current.model["provenance"]
        chain.append({"id": current.id, "origin": provenance.get("origin", "initial"),
                      "changes": list(provenance.get("changes") or []),
                      "val_accuracy": current.metric("val_accuracy")})
        parent = provenance.get("parent")
        current = snap.by_id.get(parent) if isinstance(parent, str) else None
    return chain


# -- compare ----------------------------------------------------------------------------


def compare_impl(snap: Snapshot, runs: list[str], structural_matrix: Callable,
                 hamming_matrix: Callable[[np.ndarray], np.ndarray]) -> dict[str, Any]:
    """The models plus their pairwise OTMANN and prediction distances.

    ``structural_matrix(specs) -> (d, d_normalised)``; ``hamming_matrix(preds[n, m])``.
    """
    if not 2 <= len(runs) <= MAX_COMPARE:
        raise HttpError(400, f"compare takes 2 to {MAX_COMPARE} runs, got {len(runs)}")
    if len(set(runs)) != len(runs):
        raise HttpError(400, "compare: each run may appear only once")
    items = [get_model(snap, run) for run in runs]
    d, d_norm = structural_matrix([item.spec for item in items])
    n = len(items)
    prediction: list[list[float | None]] = [[None] * n for _ in range(n)]
    groups: dict[tuple[str, int], list[int]] = {}
    for i, item in enumerate(items):
        if item.predictions is not None:
            groups.setdefault((snap.experiment_of.get(item.run, item.experiment), item.predictions.shape[0]),
                              []).append(i)
    for members in groups.values():
        block = hamming_matrix(np.stack([items[i].predictions for i in members]))
        for a, i in enumerate(members):
            for b, j in enumerate(members):
                prediction[i][j] = float(block[a, b])
    return {"models": [model_impl(snap, run) for run in runs],
            "structural": np.asarray(d, dtype=float).tolist(),
            "structural_normalised": np.asarray(d_norm, dtype=float).tolist(),
            "prediction": prediction}


# -- projections ------------------------------------------------------------------------


def projection_items(snap: Snapshot, experiment: str, kind: str) -> list[tuple[str, Any]]:
    """What the projection service lays out: (model id, spec) or (model id, predictions)."""
    group, seen = [], set()
    for data in experiment_models(snap, experiment):  # a copied run repeats its model id: keep the first
        if data.id not in seen:
            seen.add(data.id)
            group.append(data)
    if kind in ("structural", "structural_normalised"):
        return [(data.id, data.spec) for data in group]
    if kind == "posthoc":
        done = [d for d in group if d.state == metadata.DONE and d.predictions is not None]
        if not done:
            return []
        # Comparable only on the same validation set: keep the commonest length.
        lengths = [d.predictions.shape[0] for d in done]
        length = max(set(lengths), key=lengths.count)
        return [(d.id, d.predictions) for d in done if d.predictions.shape[0] == length]
    raise HttpError(400, f"unknown projection kind {kind!r}")


def size_projection(snap: Snapshot, experiment: str) -> dict[str, Any]:
    """Validation accuracy against log10(parameter count); no background work."""
    points = []
    for data in experiment_models(snap, experiment):
        accuracy = data.metric("val_accuracy")
        params = data.model.get("params")
        if accuracy is None or not isinstance(params, int) or params <= 0:
            continue
        points.append({"id": data.id, "x": math.log10(params), "y": accuracy})
    return {"experiment": experiment, "kind": "size", "version": snap.generation, "computing": False,
            "points": points, "stress": None, "axes": dict(SIZE_AXES), "error": None}


def projection_body(experiment: str, kind: str, layout: dict[str, Any]) -> bytes:
    """``json_bytes(mds_projection(...))``, byte for byte, with the points written by hand:
    the generic encoder walks every point twice (``_finite``, then the encoder), about
    0.3 s for 20,000 points on every new layout of each map."""
    points = layout.get("points", ())
    head = json_bytes({**mds_projection(experiment, kind, {**layout, "points": ()}), "points": None})

    def number(value: Any) -> str:
        value = float(value)
        return repr(value) if math.isfinite(value) else "null"

    body = ",".join(f'{{"id":{json.dumps(p["id"])},"x":{number(p["x"])},"y":{number(p["y"])}}}' for p in points)
    return head.replace(b'"points":null', b'"points":[' + body.encode("utf-8") + b"]", 1)


def mds_projection(experiment: str, kind: str, layout: dict[str, Any]) -> dict[str, Any]:
    """Wrap a ``ProjectionService.layout`` result into the route's response."""
    return {"experiment": experiment, "kind": kind, "version": int(layout.get("version", 0)),
            "computing": bool(layout.get("computing", False)),
            "points": [{"id": p["id"], "x": float(p["x"]), "y": float(p["y"])} for p in layout.get("points", ())],
            "stress": layout.get("stress"), "axes": dict(MDS_AXES), "error": layout.get("error")}


# -- validate ---------------------------------------------------------------------------


def validate_impl(body: Any, max_params_cap: int | None, max_memory: int | None = None) -> dict[str, Any]:
    """Shapes, parameter counts and training memory of a spec, or its errors.

    ``body`` is a spec, or ``{"spec": spec, "max_params": n, "training": {...}}``; the
    cap used is the smaller of ``max_params`` and the server's ``--remap_max_params``.
    ``memory`` is ``remap_tb.spec.memory.training_memory`` at the training config's
    batch size and optimiser (``training``, default: the request defaults); over
    ``max_memory`` (``--remap_max_memory``) the spec gets an error on field ``memory``.
    """
    spec, cap, training = body, max_params_cap, None
    if isinstance(body, dict) and "spec" in body and "layers" not in body:
        unknown = sorted(set(body) - {"spec", "max_params", "training"}, key=str)
        if unknown:
            raise HttpError(400, f"unexpected key {unknown[0]!r:.40} (the body is a spec or "
                                 "{spec, max_params, training})")
        spec = body["spec"]
        training = body.get("training")
        asked = body.get("max_params")
        if asked is not None:
            if isinstance(asked, bool) or not isinstance(asked, int) or asked < 1:
                raise HttpError(400, f"max_params must be a positive integer, got {asked!r:.40}")
            cap = asked if cap is None else min(asked, cap)
    try:
        training = training_config(training)
    except RequestError as e:
        raise HttpError(400, "; ".join(e.problems)[:1000]) from None
    analysis = analyse(spec, Limits(max_params=cap))
    out = {**analysis.to_json(), "max_params": cap, "max_memory": max_memory, "memory": None}
    if analysis.ok:
        estimate = training_memory(spec, training["batch_size"], training["optimizer"], analysis)
        out["memory"] = estimate.to_json()
        problem = memory_problem(estimate, max_memory)
        if problem:
            out["valid"] = False
            out["errors"] = [*out["errors"], Problem(problem, field="memory").to_json()]
    return out


# -- helpers ----------------------------------------------------------------------------


def _clock() -> float:
    return time.time()


def experiment_models(snap: Snapshot, experiment: str) -> list[RunData]:
    """The models of one experiment (fingerprint id); 404 if there are none."""
    group = snap.experiments.get(experiment)
    if not group:
        known = ", ".join(sorted(snap.experiments)[:10]) or "none yet"
        raise HttpError(404, f"unknown experiment {experiment!r:.80} (known: {known}); "
                             "see ./experiments")
    return group


def get_model(snap: Snapshot, run: str) -> RunData:
    """The readable model of ``run``; 404 (with the reason when it is unreadable) otherwise."""
    data = snap.models.get(run)
    if data is not None:
        return data
    for item in snap.unreadable:
        if item.run == run:
            raise HttpError(404, f"run {run!r:.80} cannot be read: {item.reason}")
    raise HttpError(404, f"unknown run {run!r:.80}: no model with that run name")
