"""The architecture spec schema (versions 1 and 2): layer types, their fields, defaults.

A spec is JSON::

    {"schema": 1,
     "input": {"shape": [C, H, W], "num_classes": K},
     "layers": [{"type": "conv2d", "filters": 16, "kernel_size": 3}, ...]}

Schema 1 is a chain: ``input -> layers[0] -> ... -> layers[-1] -> flatten -> dense(K)``;
the flatten (where the tensor is still an image) and the final classifier are
implicit. Schema 2 is a DAG: any layer may carry ``"inputs": [k, ...]`` (earlier
layer indexes, ``-1`` = the network input; absent = the previous layer), the merge
layers ``add`` and ``concat`` take several inputs, ``conv2d`` / ``dense`` take
``bias`` and ``conv2d`` / pools take an integer ``padding``. The last layer still
feeds the implicit classifier. This module declares what is legal; ``analysis.py``
checks a spec against it. It is torch-free: the plugin and the trainer both import it.

The normal form (``normalise_spec``) writes a schema 2 field only where it differs
from its default, and says ``"schema": 1`` when none is left (``spec_schema``), so
a chain written in schema 2 and every schema 1 spec normalise, and hash, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHAIN_SCHEMA = 1
GRAPH_SCHEMA = 2
SCHEMA_VERSIONS = (CHAIN_SCHEMA, GRAPH_SCHEMA)
SCHEMA_VERSION = GRAPH_SCHEMA  # the newest version this code reads

ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "leaky_relu")
PADDINGS = ("valid", "same")
MERGE_TYPES = ("add", "concat")  # the only layers with several inputs
INPUT = -1  # the network input, in ``inputs``

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
    kind: str  # "int", "float", "choice", "bool" or "padding" (a choice or an int >= low)
    low: float | None = None
    high: float | None = None
    high_inclusive: bool = True
    choices: tuple[str, ...] = ()
    default: Any = None
    required: bool = True
    since: int = CHAIN_SCHEMA  # the first schema version with this field (or this value kind)


LAYER_FIELDS: dict[str, tuple[Field, ...]] = {
    "conv2d": (
        Field("filters", "int", 1, MAX_CHANNELS),
        Field("kernel_size", "int", 1, MAX_KERNEL),
        Field("stride", "int", 1, MAX_KERNEL, default=1, required=False),
        # "valid", "same" (stride 1) or, from schema 2, zero padding of that many pixels per side
        Field("padding", "padding", 0, MAX_KERNEL, choices=PADDINGS, default="valid", required=False),
        Field("bias", "bool", default=True, required=False, since=GRAPH_SCHEMA),
    ),
    "maxpool2d": (
        Field("pool_size", "int", 1, MAX_KERNEL),
        # default stride is the pool size (filled in by ``normalise_layer``)
        Field("stride", "int", 1, MAX_KERNEL, required=False),
        Field("padding", "int", 0, MAX_KERNEL // 2, default=0, required=False, since=GRAPH_SCHEMA),
    ),
    "avgpool2d": (
        Field("pool_size", "int", 1, MAX_KERNEL),
        Field("stride", "int", 1, MAX_KERNEL, required=False),
        Field("padding", "int", 0, MAX_KERNEL // 2, default=0, required=False, since=GRAPH_SCHEMA),
    ),
    "globalavgpool": (),
    "dense": (
        Field("units", "int", 1, MAX_UNITS),
        Field("bias", "bool", default=True, required=False, since=GRAPH_SCHEMA),
    ),
    "activation": (Field("fn", "choice", choices=ACTIVATIONS),),
    "dropout": (Field("rate", "float", 0.0, 1.0, high_inclusive=False),),
    "batchnorm": (),
    "add": (),
    "concat": (),
}

LAYER_TYPES = tuple(LAYER_FIELDS)
CHAIN_LAYER_TYPES = tuple(t for t in LAYER_TYPES if t not in MERGE_TYPES)  # the schema 1 types

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


def default_inputs(index: int) -> list[int]:
    """What a layer without ``inputs`` reads: the previous layer (layer 0: the network input)."""
    return [index - 1]


def layer_inputs(layer: dict, index: int) -> list[int]:
    """The inputs a (valid) layer reads: its ``inputs``, or the previous layer."""
    inputs = layer.get("inputs")
    return list(inputs) if inputs is not None else default_inputs(index)


def normalise_layer(layer: dict, index: int | None = None) -> dict:
    """A layer with every schema 1 field filled in, keys in schema order.

    Assumes the layer is valid. Schema 2 fields are written only where they are
    not the default (``bias`` false, a pool ``padding`` > 0, ``inputs`` other than
    the previous layer; an ``add``'s inputs sorted, since a sum does not depend on
    their order); an integer conv padding 0 is written ``"valid"``. Two layers
    that build the same torch module normalise to the same dict, which is what the
    content hash relies on. ``index`` is the layer's position (needed to tell
    whether its ``inputs`` are the default; ``None`` keeps them as given).
    """
    layer_type = layer["type"]
    out: dict[str, Any] = {"type": layer_type}
    for field in LAYER_FIELDS[layer_type]:
        default = field_default(layer_type, field, layer)
        value = layer.get(field.name, default)
        if field.kind == "float":
            value = float(value)
        if field.name == "padding" and layer_type == "conv2d" and value == 0 and not isinstance(value, bool):
            value = "valid"
        if field.since > CHAIN_SCHEMA and value == default:
            continue
        out[field.name] = value
    inputs = layer.get("inputs")
    if inputs is not None and (index is None or list(inputs) != default_inputs(index)):
        out["inputs"] = sorted(inputs) if layer_type == "add" else list(inputs)
    return out


def spec_schema(layers: list[dict]) -> int:
    """The schema version a list of *normalised* layers needs: 1 for a chain without schema 2 fields."""
    for layer in layers:
        if layer["type"] in MERGE_TYPES or "inputs" in layer or uses_graph_fields(layer):
            return GRAPH_SCHEMA
    return CHAIN_SCHEMA


def uses_graph_fields(layer: dict) -> list[str]:
    """The schema 2 fields (or values) a layer uses: ``inputs``, ``bias``, pool padding, integer conv padding."""
    layer_type = layer.get("type")
    used = ["inputs"] if "inputs" in layer else []
    for field in LAYER_FIELDS.get(layer_type, ()):
        if field.name not in layer:
            continue
        value = layer[field.name]
        if field.since > CHAIN_SCHEMA or (field.kind == "padding" and not isinstance(value, str)):
            used.append(field.name)
    return used


def normalise_spec(spec: dict) -> dict:
    """The canonical form of a valid spec (defaults filled, known keys only, the lowest schema that holds it)."""
    layers = [normalise_layer(layer, index) for index, layer in enumerate(spec["layers"])]
    return {
        "schema": spec_schema(layers),
        "input": {
            "shape": [int(v) for v in spec["input"]["shape"]],
            "num_classes": int(spec["input"]["num_classes"]),
        },
        "layers": layers,
    }
