"""The architecture spec schema (version 1): layer types, their fields, defaults.

A spec is JSON::

    {"schema": 1,
     "input": {"shape": [C, H, W], "num_classes": K},
     "layers": [{"type": "conv2d", "filters": 16, "kernel_size": 3}, ...]}

The model is ``input -> layers[0] -> ... -> layers[-1] -> flatten -> dense(K)``;
the flatten (where the tensor is still an image) and the final classifier are
implicit. This module declares what is legal; ``analysis.py`` checks a spec
against it. It is torch-free: the plugin and the trainer both import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1

ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "leaky_relu")
PADDINGS = ("valid", "same")

# Upper bounds that keep a single field sane; the total-size caps are separate
# (``Limits``). They exist so that a typo like 10**12 filters is an error, not an
# attempt to allocate a terabyte.
MAX_CHANNELS = 4096
MAX_UNITS = 65536
MAX_KERNEL = 64
MAX_INPUT_SIDE = 1024
MAX_INPUT_CHANNELS = 64
MAX_CLASSES = 100_000


@dataclass(frozen=True)
class Field:
    """One field of a layer: its JSON type, legal range, and default (if optional)."""

    name: str
    kind: str  # "int", "float" or "choice"
    low: float | None = None
    high: float | None = None
    high_inclusive: bool = True
    choices: tuple[str, ...] = ()
    default: Any = None
    required: bool = True


LAYER_FIELDS: dict[str, tuple[Field, ...]] = {
    "conv2d": (
        Field("filters", "int", 1, MAX_CHANNELS),
        Field("kernel_size", "int", 1, MAX_KERNEL),
        Field("stride", "int", 1, MAX_KERNEL, default=1, required=False),
        Field("padding", "choice", choices=PADDINGS, default="valid", required=False),
    ),
    "maxpool2d": (
        Field("pool_size", "int", 1, MAX_KERNEL),
        # default stride is the pool size (filled in by ``normalise_layer``)
        Field("stride", "int", 1, MAX_KERNEL, required=False),
    ),
    "avgpool2d": (
        Field("pool_size", "int", 1, MAX_KERNEL),
        Field("stride", "int", 1, MAX_KERNEL, required=False),
    ),
    "globalavgpool": (),
    "dense": (Field("units", "int", 1, MAX_UNITS),),
    "activation": (Field("fn", "choice", choices=ACTIVATIONS),),
    "dropout": (Field("rate", "float", 0.0, 1.0, high_inclusive=False),),
    "batchnorm": (),
}

LAYER_TYPES = tuple(LAYER_FIELDS)

# Layers that need an image-shaped [C, H, W] input.
SPATIAL_TYPES = ("conv2d", "maxpool2d", "avgpool2d", "globalavgpool")
POOL_TYPES = ("maxpool2d", "avgpool2d", "globalavgpool")


@dataclass(frozen=True)
class Limits:
    """Caps on a whole model. ``None`` means no cap."""

    max_params: int | None = 50_000_000
    max_depth: int | None = 200


DEFAULT_LIMITS = Limits()


def field_default(layer_type: str, field: Field, layer: dict) -> Any:
    """The value an absent optional field takes (a pool's stride is its pool size)."""
    if field.name == "stride" and layer_type in ("maxpool2d", "avgpool2d"):
        return layer.get("pool_size")
    return field.default


def normalise_layer(layer: dict) -> dict:
    """A layer with every optional field filled in, keys in schema order.

    Assumes the layer is valid. Two layers that build the same torch module
    normalise to the same dict, which is what the content hash relies on.
    """
    layer_type = layer["type"]
    out: dict[str, Any] = {"type": layer_type}
    for field in LAYER_FIELDS[layer_type]:
        value = layer.get(field.name, field_default(layer_type, field, layer))
        if field.kind == "float":
            value = float(value)
        out[field.name] = value
    return out


def normalise_spec(spec: dict) -> dict:
    """The canonical form of a valid spec (defaults filled, known keys only)."""
    return {
        "schema": SCHEMA_VERSION,
        "input": {
            "shape": [int(v) for v in spec["input"]["shape"]],
            "num_classes": int(spec["input"]["num_classes"]),
        },
        "layers": [normalise_layer(layer) for layer in spec["layers"]],
    }
