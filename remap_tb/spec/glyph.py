"""The per-layer glyph data the dashboard draws for a model (``GlyphLayer`` in http_api.md).

One entry per spec layer, in order, then one for the implicit classifier::

    {"index": 0, "type": "conv2d", "output_shape": [16, 6, 6], "params": 160}
    {"index": 1, "type": "activation", "output_shape": [16, 6, 6], "params": 0, "fn": "relu"}
    {"index": 2, "type": "dropout", "output_shape": [16, 6, 6], "params": 0, "rate": 0.25}
    {"index": 3, "type": "classifier", "output_shape": [10], "params": 5770}

A layer that reads anything but the previous layer (schema 2) also carries
``"inputs": [k, ...]`` (``-1`` = the network input), e.g. an ``add`` of a
residual block; chains' entries are exactly as in schema 1.

For a valid spec every shape and count is known; for an invalid one (a candidate
shown marked) ``output_shape`` and ``params`` are ``None`` from the first layer
that does not fit onwards.
"""

from __future__ import annotations

from typing import Any

from remap_tb.spec.analysis import Analysis


def glyph(spec: dict, analysis: Analysis) -> list[dict[str, Any]]:
    """The glyph entries of ``spec`` from its ``analysis`` (see the module docstring)."""
    layers = spec.get("layers") if isinstance(spec, dict) else None
    if not isinstance(layers, list):
        return []
    out: list[dict[str, Any]] = []
    for info in analysis.layers:
        entry: dict[str, Any] = {
            "index": info.index,
            "type": info.layer_type,
            "output_shape": list(info.output_shape) if info.output_shape is not None else None,
            "params": info.params,
        }
        if info.inputs and list(info.inputs) != [info.index - 1]:
            entry["inputs"] = list(info.inputs)
        layer = layers[info.index] if info.index < len(layers) else None
        if isinstance(layer, dict):
            if info.layer_type == "activation" and "fn" in layer:
                entry["fn"] = layer["fn"]
            elif info.layer_type == "dropout" and "rate" in layer:
                entry["rate"] = float(layer["rate"])
        out.append(entry)
    num_classes = (spec.get("input") or {}).get("num_classes") if isinstance(spec.get("input"), dict) else None
    out.append({
        "index": len(layers),
        "type": "classifier",
        "output_shape": [num_classes] if isinstance(num_classes, int) else None,
        "params": analysis.classifier_params,
    })
    return out
