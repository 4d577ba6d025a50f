"""The demo's one slower request (issue 11).

Digits models train in about a second, so a person trying ``remap demo`` never sees a
request make progress or gets the chance to cancel one. When ``remap demo`` makes its
copy of ``demo_logs/``, it enqueues one longer run: a child of the first demo model
with its first ``dense`` (or ``conv2d``) layer twice as wide, trained for
``SLOW_EPOCHS`` epochs (tens of seconds instead of one). The local worker picks it up
as TensorBoard starts; the Queue tab shows it epoch by epoch with a Cancel button.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from remap_tb import metadata
from remap_tb.atomic import read_json
from remap_tb.queue import Queue
from remap_tb.requests import parse_request

SLOW_ID = "demo-long-run"
SLOW_EPOCHS = 200
_WIDEN = {"dense": "units", "conv2d": "filters"}


def slow_request(logdir: str) -> dict[str, Any] | None:
    """The long request for the demo copy at ``logdir`` (None when no demo model can be its parent)."""
    runs = sorted(r for r in os.listdir(logdir) if not r.startswith(".")
                  and os.path.isfile(os.path.join(logdir, r, metadata.REQUEST_FILE)))
    for run in runs:
        parent = read_json(os.path.join(logdir, run, metadata.REQUEST_FILE))
        spec = copy.deepcopy(parent["spec"])
        for index, layer in enumerate(spec["layers"]):
            field = _WIDEN.get(layer.get("type"))
            if field and isinstance(layer.get(field), int):
                old = layer[field]
                layer[field] = old * 2
                return parse_request({
                    "id": SLOW_ID, "spec": spec, "dataset": parent["dataset"],
                    "training": {**parent["training"], "epochs": SLOW_EPOCHS},
                    "provenance": {"origin": "handcrafted", "parent": parent["id"],
                                   "changes": [f"layer {index} {layer['type']}: {field} {old} → {old * 2}"]},
                })
    return None


def enqueue_slow_request(logdir: str) -> str | None:
    """Enqueue the long request (once: an id is never enqueued twice); its id, or None."""
    request = slow_request(logdir)
    if request is None:
        return None
    Queue(logdir).enqueue([request])
    return request["id"]
