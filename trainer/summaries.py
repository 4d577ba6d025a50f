"""Write a run's TensorBoard event file without TensorFlow.

Builders (pure, return ``Summary`` protos) come in pairs with ``RunWriter``
methods that write them. Tags and record content come from
``remap_tb.metadata``, the single codec of the plugin's data.
"""

from __future__ import annotations

import os
import time
from typing import Iterator

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from remap_tb import metadata
from remap_tb.summary import hparams_pb, json_pb, predictions_pb, scalar_pb

# The builders live in ``remap_tb.summary`` (torch-free), shared with the public API that
# logs models from the user's own training loop, so both write the same records.
scalar_summary = scalar_pb
json_summary = json_pb
predictions_summary = predictions_pb


def hparams_summary_for(request: dict, params: int, dataset_name: str,
                        inherited: bool = False, epochs: int | None = None) -> summary_pb2.Summary:
    """The HParams session of one model: size, depth, shape of the graph, layer-type counts, origin,
    dataset, the epochs it trains (``epochs``, default the training config's), optimizer and lr,
    and ``init``: "parent" when it started from its parent's weights, else "scratch" (see
    ``remap_tb.summary.hparams_pb``)."""
    training = request["training"]
    epochs = int(training["epochs"]) if epochs is None else int(epochs)
    return hparams_pb(request["spec"], params, request["provenance"]["origin"], dataset_name, request["id"],
                      {"epochs": epochs, "optimizer": training["optimizer"],
                       "lr": float(training["lr"]), "init": "parent" if inherited else "scratch"})


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


def read_records(run_dir: str, tag: str) -> Iterator[tuple[float, dict]]:
    """(wall time, record) of every readable JSON record ``tag`` in the event files of
    ``run_dir``, in file then write order (records that do not decode are skipped)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    for name in sorted(os.listdir(run_dir)):
        if "tfevents" not in name:
            continue
        for event in EventFileLoader(os.path.join(run_dir, name)).Load():
            for value in event.summary.value:
                if value.tag != tag or not value.HasField("tensor"):
                    continue
                raw = tensor_util.make_ndarray(value.tensor).reshape(()).item()
                try:
                    record = metadata.decode_json(raw)
                except metadata.RecordError:
                    continue
                yield event.wall_time, record


def _event(summary: summary_pb2.Summary, step: int) -> event_pb2.Event:
    return event_pb2.Event(wall_time=time.time(), step=step, summary=summary)
