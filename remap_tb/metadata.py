"""The event-log contract of the ``remap`` plugin: names, tags and the codec.

Only this module encodes and parses the plugin's summary content; the trainer's
writer and the plugin's reader both import it. Every record carries a
``version``; readers accept older versions they know and report newer ones as
unreadable instead of failing (logs on disk are a permanent format).

Each trained model is one TensorBoard run (directory ``<logdir>/<model id>``).
Tags, all with plugin name ``remap`` (TENSOR data class) unless noted:

=====================  ====  ==========================================================
tag                    step  content
=====================  ====  ==========================================================
``remap/model``        0     JSON: id, attempt, spec, provenance, dataset config and
                             fingerprint, class names, params, depth, training config
``remap/status``       e     JSON: state running|untrained|done|failed|diverged|cancelled,
                             epoch e of epochs, losses/accuracies so far, reason
``remap/evaluation``   e     JSON: per-class validation accuracy, confusion matrix
``remap/predictions``  a     uint8 tensor [n_val] (int16 above 256 classes): predicted
                             label per validation sample; its step is the attempt ``a``
``remap/test``         0     JSON: accuracy on the held-out test split (``remap evaluate``)
=====================  ====  ==========================================================

Standard scalars (plugin ``scalars``, float32): ``train/loss``, ``train/accuracy``,
``val/loss``, ``val/accuracy`` at step = epoch (1-based). An hparams session
(plugin ``hparams``) makes the HParams tab list every model.

Models logged by a user's own training loop (``remap_tb.summary``) carry the same
records with provenance origin ``external``, an external fingerprint (see
``external_fingerprint``) and state ``untrained`` until their first epoch; their
model record is written again (step = that epoch) once the validation labels are
known, and readers take the newest model record of an attempt.

A retried request writes its run again with a higher ``attempt``; readers keep
only the records of the highest attempt they see, so a half-written earlier
attempt never shows.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

PLUGIN_NAME = "remap"
RECORD_VERSION = 1

MODEL_TAG = "remap/model"
STATUS_TAG = "remap/status"
EVALUATION_TAG = "remap/evaluation"
PREDICTIONS_TAG = "remap/predictions"
TEST_TAG = "remap/test"
JSON_TAGS = (MODEL_TAG, STATUS_TAG, EVALUATION_TAG, TEST_TAG)

TRAIN_LOSS_TAG = "train/loss"
TRAIN_ACCURACY_TAG = "train/accuracy"
VAL_LOSS_TAG = "val/loss"
VAL_ACCURACY_TAG = "val/accuracy"
SCALAR_TAGS = (TRAIN_LOSS_TAG, TRAIN_ACCURACY_TAG, VAL_LOSS_TAG, VAL_ACCURACY_TAG)

# Run states (in the event log and the queue alike).
RUNNING = "running"
DONE = "done"
FAILED = "failed"
DIVERGED = "diverged"
CANCELLED = "cancelled"
FINAL_STATES = (DONE, FAILED, DIVERGED, CANCELLED)
# A model logged with ``remap_tb.summary.log_model`` and no epoch yet (e.g. an imported module).
UNTRAINED = "untrained"
STATES = (RUNNING, UNTRAINED) + FINAL_STATES

# Provenance origin of a model logged by the user's own code (``remap_tb.summary``).
EXTERNAL = "external"

# Files a run directory holds besides its event files.
WEIGHTS_FILE = "weights.pt"  # torch state_dict of the trained model
REQUEST_FILE = "request.json"  # the training request the run came from

# The plugin's own folder inside a logdir (queue, caches, experiment configs).
STATE_DIR = ".remap"
# ``remap init`` writes one experiment config per dataset fingerprint:
# ``<logdir>/.remap/experiments/<fingerprint id>.json`` =
# ``{"version", "dataset", "training", "constraints", "seed", "models", "fingerprint"}``;
# enqueue takes a hand-crafted model's dataset and training config from it.
EXPERIMENTS_DIR = "experiments"


def experiments_dir(logdir: str) -> str:
    return os.path.join(logdir, STATE_DIR, EXPERIMENTS_DIR)


def experiment_path(logdir: str, fingerprint_id: str) -> str:
    """Where the config of experiment ``fingerprint_id`` lives in ``logdir``."""
    return os.path.join(experiments_dir(logdir), f"{fingerprint_id}.json")


def experiment_ids(logdir: str) -> list[str]:
    """The fingerprint ids of the experiment configs in ``logdir`` (sorted)."""
    try:
        names = os.listdir(experiments_dir(logdir))
    except OSError:
        return []
    return sorted(name[:-5] for name in names if name.endswith(".json") and not name.startswith("."))


class RecordError(ValueError):
    """A summary record that cannot be read (corrupt, or from a newer version)."""


def encode_json(record: dict[str, Any]) -> bytes:
    """The bytes stored in a rank-0 string tensor for a JSON record."""
    return json.dumps({"version": RECORD_VERSION, **record}, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def decode_json(value: bytes | str) -> dict[str, Any]:
    """Parse a JSON record; raises ``RecordError`` on garbage or a newer version."""
    try:
        record = json.loads(value)
    except (ValueError, UnicodeDecodeError) as e:
        raise RecordError(f"not a JSON record: {e}") from None
    if not isinstance(record, dict):
        raise RecordError("a record must be a JSON object")
    version = record.get("version")
    if not isinstance(version, int) or version < 1:
        raise RecordError(f"record has no valid version: {version!r:.20}")
    if version > RECORD_VERSION:
        raise RecordError(f"record version {version} is newer than this plugin reads ({RECORD_VERSION}); "
                          "upgrade remap-tb")
    return record


def model_record(request: dict, attempt: int, class_names: list[str], fingerprint: dict,
                 params: int, depth: int, spec_hash: str,
                 normalisation: dict[str, list[float]] | None = None) -> dict[str, Any]:
    """The ``remap/model`` record for a run trained from ``request``.

    ``normalisation`` is ``{"mean": [...], "std": [...]}`` per input channel, applied
    after pixels are scaled to [0, 1] (None when the dataset is not standardised).
    """
    return {
        "id": request["id"],
        "attempt": attempt,
        "spec": request["spec"],
        "spec_hash": spec_hash,
        "provenance": request["provenance"],
        "dataset": request["dataset"],
        "fingerprint": fingerprint,
        "class_names": list(class_names),
        "params": params,
        "depth": depth,
        "training": request["training"],
        "normalisation": normalisation,
        "created": request["created"],
    }


def status_record(attempt: int, state: str, epoch: int, epochs: int, *, reason: str | None = None,
                  metrics: dict[str, float] | None = None) -> dict[str, Any]:
    """A ``remap/status`` record: where training is, and how it went so far."""
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    return {"attempt": attempt, "state": state, "epoch": epoch, "epochs": epochs,
            "reason": reason, "metrics": dict(metrics or {})}


def evaluation_record(attempt: int, epoch: int, per_class_accuracy: list[float],
                      confusion: list[list[int]], n_samples: int) -> dict[str, Any]:
    """A ``remap/evaluation`` record: per-class accuracy and the confusion matrix.

    ``confusion[i][j]`` counts validation samples of true class i predicted as j.
    """
    return {"attempt": attempt, "epoch": epoch, "per_class_accuracy": per_class_accuracy,
            "confusion": confusion, "n_samples": n_samples}


def test_record(accuracy: float, loss: float, per_class_accuracy: list[float], n_samples: int,
                fingerprint_id: str) -> dict[str, Any]:
    """A ``remap/test`` record: the score on the held-out test split."""
    return {"accuracy": accuracy, "loss": loss, "per_class_accuracy": per_class_accuracy,
            "n_samples": n_samples, "fingerprint_id": fingerprint_id}


def prediction_dtype(num_classes: int) -> str:
    """Predicted labels are stored as uint8 when they fit, else int16 (numpy names)."""
    return "uint8" if num_classes <= 256 else "int16"


# -- dataset fingerprints and experiments ---------------------------------------------------

# What an external fingerprint shares with the trainer's: runs that agree on these
# belong to one experiment (the same validation set, so one prediction map).
MATCH_FIELDS = ("name", "classes", "input_shape", "val_labels_sha256")


def fingerprint_id(fp: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of ``fp`` without its ``id``
    (the trainer's ``trainer.datasets.fingerprint_id``, torch-free)."""
    body = {k: v for k, v in fp.items() if k != "id"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def external_fingerprint(name: str, classes: list[str], input_shape: list[int],
                         val_labels_sha256: str | None = None, n_val: int | None = None) -> dict[str, Any]:
    """The fingerprint of a model logged by ``remap_tb.summary`` (``source`` = ``external``).

    ``val_labels_sha256`` is computed like the trainer's (SHA-256 of the labels as
    little-endian int64, 16 hex digits); None until the labels are known.
    """
    fp: dict[str, Any] = {"source": EXTERNAL, "name": name, "classes": list(classes),
                          "input_shape": list(input_shape), "n_val": n_val,
                          "val_labels_sha256": val_labels_sha256}
    fp["id"] = fingerprint_id(fp)
    return fp


def is_external(fingerprint: Any) -> bool:
    return isinstance(fingerprint, dict) and fingerprint.get("source") == EXTERNAL


def group_experiments(fingerprints: list[dict[str, Any]],
                      trainer_fingerprints: tuple[dict[str, Any], ...] = ()) -> list[str]:
    """The experiment id of each fingerprint (parallel to ``fingerprints``).

    A trainer fingerprint is its own experiment (its id, unchanged). An external one
    joins the trainer experiment (of ``fingerprints`` or ``trainer_fingerprints``, the
    smallest id when several) that agrees on ``MATCH_FIELDS``; one without validation
    labels yet (an untrained import) joins the first that agrees on name, classes and
    input shape, trainer experiments first. Otherwise it is an experiment of its own
    (its own id): external runs with the same validation set share it.
    """
    def key(fp: dict, fields: tuple[str, ...]) -> str:
        return json.dumps([fp.get(f) for f in fields], sort_keys=True)

    loose_fields = MATCH_FIELDS[:3]
    trainer = sorted((fp for fp in (*fingerprints, *trainer_fingerprints) if not is_external(fp)),
                     key=lambda fp: str(fp.get("id")))
    exact: dict[str, str] = {}
    loose: dict[str, str] = {}
    for fp in trainer:
        exact.setdefault(key(fp, MATCH_FIELDS), fp["id"])
        loose.setdefault(key(fp, loose_fields), fp["id"])
    out = [fp.get("id") for fp in fingerprints]
    own: dict[str, str] = {}  # loose key -> an external-only experiment id
    for index in sorted(range(len(fingerprints)), key=lambda i: str(fingerprints[i].get("id"))):
        fp = fingerprints[index]
        if not is_external(fp) or not fp.get("val_labels_sha256"):
            continue
        out[index] = exact.get(key(fp, MATCH_FIELDS), fp["id"])
        own.setdefault(key(fp, loose_fields), out[index])
    for index, fp in enumerate(fingerprints):
        if is_external(fp) and not fp.get("val_labels_sha256"):
            k = key(fp, loose_fields)
            out[index] = loose.get(k) or own.get(k) or fp["id"]
    return out
