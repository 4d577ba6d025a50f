"""Start a child from its parent's trained weights (the torch half of ``remap_tb.spec.inherit``).

``parent_source(request, logdir, init_from)`` finds what a request inherits
from: the run ``init_from`` (``remap train --init-from RUN_DIR``) or the
request's provenance parent, ``LOGDIR/<parent>/`` (a run the trainer wrote, or
a model logged with ``remap_tb.summary`` with its ``weights.pt``). It returns a
``ParentRun`` with the parent's spec and weights file, or with the reason
there is none (no parent, no ``weights.pt`` because the parent has not
finished, an unreadable record); training then starts from scratch and records
that reason, it never fails for it. ``initialise(model, child_spec, changes,
parent)`` copies the mapped tensors into a freshly built model and returns the
model record's ``init``.

A ``ParentRun`` can carry the weights' bytes instead of a path
(``ParentRun.loaded``): the Ray dispatcher reads the parent on its machine and
ships it to a task on a node without the logdir. Reading a parent is
torch-free; only ``initialise`` imports torch.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass

from remap_tb import metadata
from remap_tb.spec.inherit import CLASSIFIER, inheritance

PARENT = "parent"
SCRATCH = "scratch"


@dataclass(frozen=True)
class ParentRun:
    """A parent to inherit from: its run name, spec and weights (a file path or the bytes).

    ``reason`` set (and ``spec`` None): there is nothing to inherit, and why.
    """

    run: str
    spec: dict | None = None
    weights_path: str | None = None
    weights: bytes | None = None
    reason: str | None = None

    @property
    def usable(self) -> bool:
        return self.reason is None and self.spec is not None and (self.weights is not None or self.weights_path)

    def loaded(self) -> "ParentRun":
        """The same parent with its weights read into memory (to ship to another machine)."""
        if not self.usable or self.weights is not None:
            return self
        try:
            with open(self.weights_path, "rb") as handle:
                data = handle.read()
        except OSError as e:
            return ParentRun(self.run, reason=f"cannot read {self.weights_path}: {e.strerror or e}")
        return ParentRun(self.run, self.spec, None, data)


def mode(request: dict) -> str | None:
    """The request's ``training.init``: "parent", "scratch" or None (absent: the parent when usable)."""
    return request.get("training", {}).get("init")


def parent_source(request: dict, logdir: str | None,
                  init_from: "str | ParentRun | bool | None" = None) -> ParentRun | None:
    """What ``request`` inherits from, or None when it starts from scratch without a word to say.

    ``init_from``: a run directory or a ``ParentRun`` (given explicitly), False for
    none (whoever read the parent found nothing to say); else the provenance parent
    under ``logdir``. ``training.init == "scratch"``: None.
    """
    wanted = mode(request)
    if wanted == SCRATCH or init_from is False:
        return None
    if isinstance(init_from, ParentRun):
        return init_from
    if init_from is not None:
        return read_parent(init_from)
    parent = (request.get("provenance") or {}).get("parent")
    if not isinstance(parent, str) or not parent:
        return ParentRun("", reason="the request has no parent to inherit from") if wanted == PARENT else None
    if logdir is None:
        return ParentRun(parent, reason=f"parent {parent} is not reachable from this worker (no logdir)")
    return read_parent(os.path.join(logdir, parent), parent)


def read_parent(run_dir: str, run: str | None = None) -> ParentRun:
    """The parent in ``run_dir``: its spec (``request.json``, else the run's model record) and weights file."""
    run = run or os.path.basename(os.path.normpath(run_dir))
    weights = os.path.join(run_dir, metadata.WEIGHTS_FILE)
    if not os.path.isdir(run_dir):
        return ParentRun(run, reason=f"parent run {run} not found ({run_dir})")
    if not os.path.isfile(weights):
        return ParentRun(run, reason=f"parent {run} has no {metadata.WEIGHTS_FILE} (it has not finished training)")
    try:
        spec = _parent_spec(run_dir)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return ParentRun(run, reason=f"parent {run}: cannot read its spec ({type(e).__name__}: {e})"[:300])
    if spec is None:
        return ParentRun(run, reason=f"parent {run} has no spec (no {metadata.REQUEST_FILE} and no model record)")
    return ParentRun(run, spec, weights)


def _parent_spec(run_dir: str) -> dict | None:
    """The spec of a trainer run (``request.json``) or, for a model logged with ``remap_tb.summary``,
    of the newest model record in its event files."""
    request_path = os.path.join(run_dir, metadata.REQUEST_FILE)
    if os.path.isfile(request_path):
        with open(request_path, encoding="utf-8") as handle:
            return json.load(handle)["spec"]
    from trainer.summaries import read_records

    best = None
    for wall_time, record in read_records(run_dir, metadata.MODEL_TAG):
        key = (int(record.get("attempt", 1) or 1), wall_time)
        if isinstance(record.get("spec"), dict) and (best is None or key >= best[0]):
            best = (key, record["spec"])
    return best[1] if best is not None else None


def initialise(model, child_spec: dict, changes, parent: ParentRun, images=None, seed: int = 0) -> dict:
    """Copy the parent's tensors into ``model`` (built from ``child_spec``) where the layers map.

    Then, given ``images`` (a sample of training inputs, ``trainer.refit.sample_images``),
    refit the layers that do not yet reproduce the parent's outputs by least squares
    (``trainer.refit``). Returns the model record's ``init``: ``{"from", "layers",
    "of", "mapping", "classifier", ...}`` with ``refitted`` when images were given.
    Raises ``ValueError`` when the parent's weights are not its spec's (a missing or
    misshapen tensor) or cannot be read; nothing is copied then.
    """
    import torch

    from trainer.morph import morph

    found = inheritance(child_spec, parent.spec, changes)
    source = io.BytesIO(parent.weights) if parent.weights is not None else parent.weights_path
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or corrupt file: pickle, zip or key errors
        raise ValueError(f"cannot read the weights of parent {parent.run} ({type(e).__name__})") from None
    own = model.state_dict()
    try:
        morphed = morph(child_spec, parent.spec, found.mapping, own, state)
    except (KeyError, RuntimeError, IndexError) as e:  # weights that are not the parent spec's
        raise ValueError(f"the weights of parent {parent.run} do not fit its spec ({type(e).__name__})") from None
    if morphed is not None:
        updates, report = morphed
        with torch.no_grad():
            for key, value in updates.items():
                own[key].copy_(value.to(own[key].dtype))
        return _refitted(model, child_spec, parent, state, found, images, seed, _record(parent.run, found, report))
    updates = {}
    for child_prefix, parent_prefix in found.key_map().items():
        keys = [k for k in own if k.startswith(child_prefix)]
        for key in keys:
            theirs = state.get(parent_prefix + key[len(child_prefix):])
            if theirs is None or tuple(theirs.shape) != tuple(own[key].shape):
                raise ValueError(f"the weights of parent {parent.run} do not fit its spec at {parent_prefix}")
            updates[key] = theirs.to(own[key].dtype)
    with torch.no_grad():
        for key, value in updates.items():
            own[key].copy_(value)
    return _refitted(model, child_spec, parent, state, found, images, seed, found.to_json(parent.run))


def _refitted(model, child_spec: dict, parent: ParentRun, state: dict, found, images, seed: int, record: dict) -> dict:
    """``record`` with ``refitted`` (``trainer.refit``) after refitting ``model``'s layers on ``images``.

    Pairs: each child layer with the parent layer the alignment gives it, in child
    order, then the classifiers. Nothing is refitted without images.
    """
    if images is None:
        return record
    if record.get("exact"):  # the child already computes its parent's function
        return {**record, "refitted": []}
    import numpy as np

    from trainer.model import build_model
    from trainer.refit import refit

    teacher = build_model(parent.spec)
    try:
        teacher.load_state_dict(state)
    except RuntimeError:  # weights that are not the parent spec's: keep what was copied
        return {**record, "refitted": []}
    teacher.to(images.device)
    pairs = [(str(c), str(p)) for c, p in enumerate(found.mapping) if p is not None] + [(CLASSIFIER, CLASSIFIER)]
    try:
        done = refit(model, teacher, pairs, images, seed)
    except (RuntimeError, ValueError, np.linalg.LinAlgError) as e:  # never fail a run over the refit
        return {**record, "refitted": [], "refit_error": f"{type(e).__name__}: {e}"[:300]}
    return {**record, "refitted": [r.to_json() for r in done]}


def _record(run: str, found, report: dict) -> dict:
    """The model record's ``init`` from a morph report (``trainer.morph``).

    ``layers``: copied + morphed layers with parameters (the classifier included) of
    ``of``; ``mapping``: [child, parent] for each layer initialised from a parent
    layer; ``copied``/``fresh``: child layers; ``morphed``: {layer, from (parent
    layer or None: inserted), how}; ``exact``: the child starts with its parent's
    function (eval mode).
    """
    layers = report["layers"]
    keys = sorted((k for k in layers if k != CLASSIFIER), key=int)
    used = [k for k in keys if layers[k] != "fresh"]
    as_int = lambda k: k if k == CLASSIFIER else int(k)  # noqa: E731
    return {
        "from": run,
        "layers": len(used) + int(layers.get(CLASSIFIER) != "fresh"),
        "of": found.of,
        "mapping": [[int(k), report["from"][k]] for k in used if k in report["from"]],
        "classifier": layers.get(CLASSIFIER) != "fresh",
        "copied": [as_int(k) for k in keys + [CLASSIFIER] if layers.get(k) == "copied"],
        "morphed": [{"layer": as_int(k), "from": report["from"].get(k), "how": report["notes"].get(k, "")}
                    for k in keys + [CLASSIFIER] if layers.get(k) == "morphed"],
        "fresh": [as_int(k) for k in keys + [CLASSIFIER] if layers.get(k) == "fresh"],
        "exact": report["exact"],
    }
