"""Write a run's TensorBoard event file without TensorFlow.

Builders (pure, return ``Summary`` protos) come in pairs with ``RunWriter``
methods that write them. Tags and record content come from
``remap_tb.metadata``, the single codec of the plugin's data.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from remap_tb import metadata
from remap_tb.spec.analysis import analyse
from remap_tb.spec.schema import LAYER_TYPES, Limits


def scalar_summary(tag: str, value: float) -> summary_pb2.Summary:
    """A standard rank-0 float32 scalar (what the Scalars tab and the Rust loader read)."""
    meta = summary_pb2.SummaryMetadata(data_class=summary_pb2.DATA_CLASS_SCALAR)
    meta.plugin_data.plugin_name = "scalars"
    tensor = tensor_util.make_tensor_proto(np.float32(value), dtype=np.float32)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)])


def _remap_metadata() -> summary_pb2.SummaryMetadata:
    meta = summary_pb2.SummaryMetadata(data_class=summary_pb2.DATA_CLASS_TENSOR)
    meta.plugin_data.plugin_name = metadata.PLUGIN_NAME
    meta.plugin_data.content = str(metadata.RECORD_VERSION).encode()
    return meta


def json_summary(tag: str, record: dict) -> summary_pb2.Summary:
    """A ``remap`` JSON record as a rank-0 string tensor."""
    tensor = tensor_util.make_tensor_proto(np.array(metadata.encode_json(record), dtype=object))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=_remap_metadata(), tensor=tensor)])


def predictions_summary(predicted: np.ndarray, num_classes: int) -> summary_pb2.Summary:
    """The predicted label of every validation sample, as a compact integer tensor."""
    dtype = np.dtype(metadata.prediction_dtype(num_classes))
    tensor = tensor_util.make_tensor_proto(np.asarray(predicted).astype(dtype))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=metadata.PREDICTIONS_TAG, metadata=_remap_metadata(), tensor=tensor)])


def hparams_summary_for(request: dict, params: int, dataset_name: str) -> summary_pb2.Summary:
    """The HParams session of one model: size, depth, shape of the graph, layer-type counts, origin, dataset.

    ``merges``: the number of merge layers (add, concat); ``longest_path``: the
    layers on the longest input-to-output path (0 and ``depth`` for a chain).
    ``n_<type>`` for every layer type, merge types included (0 when absent).
    """
    layers = request["spec"]["layers"]
    counts = Counter(layer["type"] for layer in layers)
    analysis = analyse(request["spec"], Limits(max_params=None, max_depth=None))
    training = request["training"]
    hparams: dict[str, object] = {
        "params": int(params),
        "depth": len(layers),
        "merges": analysis.merge_count,
        "longest_path": analysis.longest_path,
        "origin": request["provenance"]["origin"],
        "dataset": dataset_name,
        "epochs": int(training["epochs"]),
        "optimizer": training["optimizer"],
        "lr": float(training["lr"]),
    }
    for layer_type in LAYER_TYPES:
        hparams[f"n_{layer_type}"] = counts.get(layer_type, 0)
    return hparams_summary.hparams_pb(hparams, trial_id=request["id"], start_time_secs=time.time())


class RunWriter:
    """Writes one run's event file; ``flush()`` after each epoch so progress shows."""

    def __init__(self, run_dir: str):
        self._writer = EventFileWriter(run_dir, flush_secs=5)

    def add(self, summary: summary_pb2.Summary, step: int) -> None:
        self._writer.add_event(_event(summary, step))

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.add(scalar_summary(tag, value), step)

    def record(self, tag: str, record: dict, step: int) -> None:
        self.add(json_summary(tag, record), step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _event(summary: summary_pb2.Summary, step: int) -> event_pb2.Event:
    return event_pb2.Event(wall_time=time.time(), step=step, summary=summary)
