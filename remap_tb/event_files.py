"""Read one local run's remap and scalar series straight from its event files.

The reader gets everything through TensorBoard's data provider. With the Rust data
server (``--load_fast``) the provider sees a new event file only at its next reload,
which over thousands of runs comes a second or more after the file was closed. For the
few runs whose files the reader's ``LogdirProbe`` just saw change, ``read_run`` reads
the folder's event files itself (TensorBoard's own ``EventFileLoader``, with its
read-time compat layers) and returns the series in the provider's shapes
(``TensorDatum`` / ``ScalarDatum`` lists per tag), so ``reader.parse_run`` parses them
exactly as it parses the provider's answer. The provider's data takes over as soon as
it has caught up (``RunReader._refresh``).

Only a run's own folder is read (its direct ``*tfevents*`` files, as the data provider
defines a run), and only up to ``MAX_BYTES``: a larger run is left to the provider.
Nothing here raises on bad data: an unreadable or oversized folder gives ``None``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Collection

from tensorboard.data import provider

logger = logging.getLogger(__name__)

#: event files of one run larger than this (bytes, all files together) are left to the provider
MAX_BYTES = 8 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class RunSeries:
    """One run's series as the data provider would give them, and the newest wall time of
    its ``plugin_name`` tensors (what the reader compares with the provider's listing)."""

    tensors: dict[str, list[provider.TensorDatum]]
    scalars: dict[str, list[provider.ScalarDatum]]
    newest: float


def read_run(folder: str, plugin_name: str, scalar_plugin: str, scalar_tags: Collection[str],
             max_bytes: int = MAX_BYTES) -> RunSeries | None:
    """The ``plugin_name`` tensors and the ``scalar_tags`` scalars (of ``scalar_plugin``) in
    ``folder``'s event files, in file-name then write order; None when there are none, when
    they are larger than ``max_bytes`` together, or when a file cannot be read.

    A tag's plugin comes from the first summary metadata seen for it in the run, as
    TensorBoard decides it. A record still being written at the end of a file is not read
    (the loader stops before it), as the provider would not have it either.
    """
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    try:
        names = sorted(n for n in os.listdir(folder) if "tfevents" in n)
        paths = [os.path.join(folder, n) for n in names]
        paths = [p for p in paths if os.path.isfile(p)]
        if not paths or sum(os.path.getsize(p) for p in paths) > max_bytes:
            return None
    except OSError:
        return None
    tensors: dict[str, list[provider.TensorDatum]] = {}
    scalars: dict[str, list[provider.ScalarDatum]] = {}
    plugins: dict[str, str] = {}  # tag -> plugin name, from its first metadata
    newest = float("-inf")
    try:
        for path in paths:
            for event in EventFileLoader(path).Load():
                for value in event.summary.value:
                    if value.tag not in plugins and value.HasField("metadata"):
                        plugins[value.tag] = value.metadata.plugin_data.plugin_name
                    plugin = plugins.get(value.tag)
                    if not value.HasField("tensor") or plugin not in (plugin_name, scalar_plugin):
                        continue
                    array = tensor_util.make_ndarray(value.tensor)
                    if plugin == plugin_name:
                        tensors.setdefault(value.tag, []).append(
                            provider.TensorDatum(step=event.step, wall_time=event.wall_time, numpy=array))
                        newest = max(newest, event.wall_time)
                    elif value.tag in scalar_tags and array.size == 1:
                        scalars.setdefault(value.tag, []).append(
                            provider.ScalarDatum(step=event.step, wall_time=event.wall_time,
                                                 value=float(array.reshape(()).item())))
    except Exception as e:  # a corrupt file: the provider's reading (and its error handling) decides
        logger.info("remap: could not read %s ahead of the data provider: %s", folder, e)
        return None
    if not tensors:
        return None
    for series in (*tensors.values(), *scalars.values()):
        series.sort(key=lambda d: d.step)  # the provider's order; sort is stable for equal steps
    return RunSeries(tensors, scalars, newest)
