"""A tiny logdir written by the project's own trainer, plus broken runs, for plugin tests.

``build_logdir(path)`` trains on digits for 1 epoch (the embedded data set, no
download) and adds the runs a real logdir can hold besides good ones:

============  ==================================================================
run           what it is
============  ==================================================================
``m-base``    conv/relu/maxpool, done (``initial``)
``m-child``   ablation of ``m-base`` (relu removed), done
``m-dense``   dense/tanh/dropout/batchnorm, done
``m-retry``   trained as attempt 2, beside a stale attempt-1 event file that
              says "running" (the reader must show attempt 2 only)
``half``      a model record and a "running" status, no final record
``newer``     a model record of a newer record version than this plugin reads
``mistyped``  a current-version model record with params null and changes not a list
``corrupt``   an event file of random bytes
``partial``   remap status records but no model record
============  ==================================================================

``remap_logdir`` is the session-scoped pytest fixture over it (read-only: tests
that write must copy it).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import pytest

INPUT = {"shape": [1, 8, 8], "num_classes": 10}
BASE = {"schema": 1, "input": INPUT, "layers": [
    {"type": "conv2d", "filters": 4, "kernel_size": 3},
    {"type": "activation", "fn": "relu"},
    {"type": "maxpool2d", "pool_size": 2}]}
CHILD = {"schema": 1, "input": INPUT, "layers": [
    {"type": "conv2d", "filters": 4, "kernel_size": 3},
    {"type": "maxpool2d", "pool_size": 2}]}
DENSE = {"schema": 1, "input": INPUT, "layers": [
    {"type": "dense", "units": 16},
    {"type": "activation", "fn": "tanh"},
    {"type": "dropout", "rate": 0.25},
    {"type": "batchnorm"}]}
RETRY = {"schema": 1, "input": INPUT, "layers": [{"type": "dense", "units": 8}]}

GOOD_RUNS = ("m-base", "m-child", "m-dense", "m-retry")
UNREADABLE_RUNS = ("newer", "corrupt", "partial", "mistyped")  # "corrupt" is listed by the Python loader only


@dataclass(frozen=True)
class Logdir:
    path: str
    fingerprint_id: str


def build_logdir(path: str) -> Logdir:
    from remap_tb import metadata
    from remap_tb.requests import make_request
    from remap_tb.spec import analyse, spec_hash
    from trainer.summaries import RunWriter
    from trainer.train import DatasetCache, train

    cache = DatasetCache()
    training = {"epochs": 1, "batch_size": 128}

    def request(spec, run_id, provenance=None):
        return make_request(spec, dataset={"name": "digits"}, training=training,
                            provenance=provenance, request_id=run_id)

    train(request(BASE, "m-base"), path, datasets=cache)
    train(request(CHILD, "m-child", {"parent": "m-base", "origin": "ablation",
                                     "changes": ["removed layer 1 (activation relu)"]}), path, datasets=cache)
    train(request(DENSE, "m-dense", {"parent": None, "origin": "handcrafted", "changes": []}), path, datasets=cache)

    # A retry: a stale attempt-1 file (written first, so its records are older) next to attempt 2.
    retry = request(RETRY, "m-retry")
    stale_dir = tempfile.mkdtemp(prefix="stale-", dir=path)
    fingerprint = model_record(path, "m-base")["fingerprint"]
    params = analyse(RETRY).total_params
    with RunWriter(os.path.join(stale_dir, "a1")) as writer:
        writer.record(metadata.MODEL_TAG, metadata.model_record(
            retry, 1, [str(i) for i in range(10)], fingerprint, params, 1, spec_hash(RETRY)), 0)
        writer.record(metadata.STATUS_TAG, metadata.status_record(1, metadata.RUNNING, 0, 1), 0)
        writer.scalars({metadata.VAL_ACCURACY_TAG: 0.01}, 1)
    time.sleep(0.01)
    train(retry, path, attempt=2, datasets=cache)
    (stale_file,) = os.listdir(os.path.join(stale_dir, "a1"))
    shutil.move(os.path.join(stale_dir, "a1", stale_file),
                os.path.join(path, "m-retry", "events.out.tfevents.1000000000.stale.1.0"))
    shutil.rmtree(stale_dir)

    # Half-written: started, never finished.
    half = request(BASE, "half")
    with RunWriter(os.path.join(path, "half")) as writer:
        writer.record(metadata.MODEL_TAG, metadata.model_record(
            half, 1, [str(i) for i in range(10)], fingerprint, analyse(BASE).total_params, 3,
            spec_hash(BASE)), 0)
        writer.record(metadata.STATUS_TAG, metadata.status_record(1, metadata.RUNNING, 0, 1), 0)

    # A newer record version.
    with RunWriter(os.path.join(path, "newer")) as writer:
        record = {**metadata.model_record(request(BASE, "newer"), 1, [], fingerprint, 1, 3, "x"),
                  "version": metadata.RECORD_VERSION + 1}
        writer.add(_raw_json_summary(metadata.MODEL_TAG, json.dumps(record).encode()), 0)

    # A model record of the current version with mistyped fields.
    with RunWriter(os.path.join(path, "mistyped")) as writer:
        record = {**metadata.model_record(request(BASE, "mistyped"), 1, [str(i) for i in range(10)], fingerprint,
                                          1, 3, "x"), "params": None, "version": metadata.RECORD_VERSION}
        record["provenance"] = {**record["provenance"], "changes": 3}
        writer.add(_raw_json_summary(metadata.MODEL_TAG, json.dumps(record).encode()), 0)

    # Status records without a model record.
    with RunWriter(os.path.join(path, "partial")) as writer:
        writer.record(metadata.STATUS_TAG, metadata.status_record(1, metadata.RUNNING, 0, 1), 0)

    # Garbage.
    os.makedirs(os.path.join(path, "corrupt"))
    rng = np.random.default_rng(0)
    with open(os.path.join(path, "corrupt", "events.out.tfevents.1000000000.corrupt"), "wb") as handle:
        handle.write(rng.integers(0, 256, 400, dtype=np.uint8).tobytes())
    return Logdir(path, fingerprint["id"])


def _raw_json_summary(tag: str, content: bytes):
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.util import tensor_util

    from remap_tb import metadata

    meta = summary_pb2.SummaryMetadata(data_class=summary_pb2.DATA_CLASS_TENSOR)
    meta.plugin_data.plugin_name = metadata.PLUGIN_NAME
    tensor = tensor_util.make_tensor_proto(np.array(content, dtype=object))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)])


def model_record(logdir: str, run: str) -> dict:
    """Read a run's model record straight from its event file (test helper only)."""
    from tensorboard.backend.event_processing import event_file_loader

    from remap_tb import metadata

    folder = os.path.join(logdir, run)
    for name in sorted(os.listdir(folder)):
        if not name.startswith("events.out.tfevents"):
            continue
        for event in event_file_loader.EventFileLoader(os.path.join(folder, name)).Load():
            for value in event.summary.value:
                if value.tag == metadata.MODEL_TAG:
                    return metadata.decode_json(value.tensor.string_val[0])
    raise LookupError(f"no model record in {folder}")


@pytest.fixture(scope="session")
def remap_logdir(tmp_path_factory) -> Logdir:
    return build_logdir(str(tmp_path_factory.mktemp("remap_logdir")))


@pytest.fixture
def logdir(tmp_path, remap_logdir):
    """A private logdir of two of ``remap_logdir``'s runs (m-base and its child m-child), for tests
    that add, grow or remove runs (the reader's refresh and read-ahead tests)."""
    out = tmp_path / "logdir"
    for run in ("m-base", "m-child"):
        shutil.copytree(f"{remap_logdir.path}/{run}", out / run)
    return out
