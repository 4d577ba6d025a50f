"""Validation, shape inference and exact parameter counts for architecture specs.

``analyse(spec)`` never raises on bad input: it returns an ``Analysis`` holding
every problem it found (each tied to a layer index, type and field where there
is one) plus the per-layer shapes and parameter counts it could infer.
``check(spec)`` is the strict form for code paths that must not go on with an
invalid spec: it raises ``SpecError``.

Layer indexes are 0-based positions in ``spec["layers"]``.

Parameter counts equal ``sum(p.numel() for p in module.parameters())`` of the
torch module that ``trainer.model.build_model`` makes:

- conv2d: ``C_in·F·k² + F`` (weights + bias; ``C_in·F·k²`` with ``bias: false``)
- dense: ``N_in·U + U`` where ``N_in`` is the flattened input size (``N_in·U`` without bias)
- batchnorm: ``2·C`` (affine weight and bias; running stats are buffers)
- classifier (implicit): ``N_in·K + K``
- pools, activations, dropout, add, concat: 0

Schema 2 graphs: each layer reads the layers in its ``inputs`` (default: the
previous one). ``add`` needs identical input shapes and passes that shape on;
``concat`` joins images of equal height and width along channels (or vectors).
A layer whose input shapes are unknown (an earlier problem) gets no shape, and
inference goes on for every layer whose inputs are known. Every layer must lie
on a path to the last layer (the output).

Inference goes on past a layer with a problem wherever its output shape is still
known, in chains and graphs alike, so that one run reports every problem: a layer
of a known type whose shape-setting fields are valid (conv2d: filters, kernel_size,
stride, padding; pools: pool_size, stride, padding; dense: units; the other types
keep the shape) gets its shape even when another field is wrong (an unknown
activation ``fn``, a dropout ``rate`` of 2, a misspelt extra field, a schema 2
field in a schema 1 spec, where the layer reads the previous one). Its parameter
count is unknown when a field that sets it (``bias``) is wrong; then
``total_params`` is None and the cap is checked against the known lower bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from remap_tb.spec import schema
from remap_tb.spec.schema import DEFAULT_LIMITS, LAYER_FIELDS, Limits

Shape = tuple[int, ...]

# Past this many layers we report the depth problem only: a million-layer list
# is an attack or an accident, not a model worth a per-layer report.
_MAX_LAYERS_EXAMINED = 10_000


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, located as precisely as possible."""

    message: str
    index: int | None = None  # layer index, None for the spec as a whole
    layer_type: str | None = None
    field: str | None = None

    @property
    def where(self) -> str:
        if self.index is None:
            return self.field or "spec"
        if self.layer_type:
            return f"layer {self.index} {self.layer_type}"
        return f"layer {self.index}"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "type": self.layer_type,
            "field": self.field,
            "message": self.message,
            "text": str(self),
        }


@dataclass(frozen=True)
class LayerInfo:
    """What shape inference found for one layer (shapes are None when unknown).

    ``inputs``: the layers it reads (``-1`` = the network input; empty when its
    ``inputs`` field is invalid); ``input_shapes``: one per input;
    ``input_shape``: the first of them.
    """

    index: int
    layer_type: str
    input_shape: Shape | None
    output_shape: Shape | None
    params: int | None
    inputs: tuple[int, ...] = ()
    input_shapes: tuple[Shape | None, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "type": self.layer_type,
            "inputs": list(self.inputs),
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "output_shape": list(self.output_shape) if self.output_shape else None,
            "params": self.params,
        }


@dataclass(frozen=True)
class Analysis:
    """The result of ``analyse``: problems, per-layer shapes and parameter counts."""

    problems: tuple[Problem, ...]
    layers: tuple[LayerInfo, ...] = ()
    input_shape: Shape | None = None
    classifier_params: int | None = None
    total_params: int | None = None
    normalised: dict | None = None  # the canonical spec, only when valid

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def merge_count(self) -> int:
        """How many merge layers (add, concat) the model has."""
        return sum(1 for info in self.layers if info.layer_type in schema.MERGE_TYPES)

    @property
    def longest_path(self) -> int:
        """Layers on the longest path from the input to the output (the classifier not counted).

        Equals ``depth`` for a chain. Layers with invalid inputs count as reading the input.
        """
        longest: dict[int, int] = {schema.INPUT: 0}
        for info in self.layers:
            longest[info.index] = 1 + max((longest.get(k, 0) for k in info.inputs), default=0)
        return longest[self.layers[-1].index] if self.layers else 0

    @property
    def is_chain(self) -> bool:
        """Every layer reads the previous one (schema 1 structure)."""
        return all(info.inputs == (info.index - 1,) for info in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.ok,
            "errors": [p.to_json() for p in self.problems],
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "layers": [info.to_json() for info in self.layers],
            "classifier_params": self.classifier_params,
            "total_params": self.total_params,
            "depth": self.depth,
            "merge_count": self.merge_count,
            "longest_path": self.longest_path,
        }


class SpecError(ValueError):
    """An invalid spec; ``problems`` lists everything that is wrong."""

    def __init__(self, problems: tuple[Problem, ...] | list[Problem]):
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid architecture spec ({len(self.problems)} problem(s)):\n{lines}")


def check(spec: Any, limits: Limits = DEFAULT_LIMITS) -> Analysis:
    """``analyse`` that raises ``SpecError`` unless the spec is valid."""
    result = analyse(spec, limits)
    if not result.ok:
        raise SpecError(result.problems)
    return result


def analyse(spec: Any, limits: Limits = DEFAULT_LIMITS) -> Analysis:
    """Check ``spec`` against its schema (1 or 2) and infer shapes and parameter counts."""
    problems: list[Problem] = []
    if not isinstance(spec, dict):
        return Analysis((Problem(f"a spec must be a JSON object, got {_json_type(spec)}"),))

    for key in sorted(set(spec) - {"schema", "input", "layers"}, key=str):
        problems.append(Problem(f"unexpected key {key!r} (a spec has schema, input and layers)"))
    version = spec.get("schema")
    if version is None:
        problems.append(Problem("missing 'schema' (1 for a chain of layers, 2 for a graph with inputs or merges)", field="schema"))
    elif _is_bool(version) or version not in schema.SCHEMA_VERSIONS:
        problems.append(Problem(f"schema {_short(version)} is not supported (this version reads schema 1 and 2)", field="schema"))
        version = None

    input_shape, num_classes = _check_input(spec.get("input"), problems)

    layers = spec.get("layers")
    if layers is None:
        problems.append(Problem("missing 'layers' (a list; it may be empty)", field="layers"))
        layers = []
    elif not isinstance(layers, list):
        problems.append(Problem(f"'layers' must be a list, got {_json_type(layers)}", field="layers"))
        layers = []
    if limits.max_depth is not None and len(layers) > limits.max_depth:
        problems.append(Problem(f"the model has {len(layers)} layers, over the depth cap of {limits.max_depth}", field="layers"))
    if len(layers) > _MAX_LAYERS_EXAMINED:
        return Analysis(tuple(problems))

    infos: list[LayerInfo] = []
    shapes: dict[int, Shape | None] = {schema.INPUT: input_shape}  # output shape of each layer
    total = 0
    unknown_params = False
    for index, layer in enumerate(layers):
        layer_type = _check_fields(index, layer, problems)
        if layer_type is not None and version == schema.CHAIN_SCHEMA:
            layer_type = _check_chain(index, layer, layer_type, problems)
        inputs = _check_inputs(index, layer, layer_type, problems)
        in_shapes = tuple(shapes.get(k) for k in inputs)
        first = in_shapes[0] if in_shapes else None
        if layer_type is None:
            out_shape, params = _infer_past_problem(index, layer, version, shapes, problems)
            unknown_params = unknown_params or params is None
            infos.append(LayerInfo(index, _type_name(layer), first, out_shape, params, inputs, in_shapes))
            shapes[index] = out_shape
            total += params or 0
            continue
        out_shape, params = (None, None)
        if inputs and all(s is not None for s in in_shapes):
            if layer_type in schema.MERGE_TYPES:
                out_shape, params, message = _merge(layer_type, inputs, in_shapes)
            else:
                out_shape, params, message = _infer(layer_type, layer, first)
            if message:
                problems.append(Problem(message, index, layer_type))
        infos.append(LayerInfo(index, layer_type, first, out_shape, params, inputs, in_shapes))
        shapes[index] = out_shape
        unknown_params = unknown_params or params is None
        total += params or 0
    problems.extend(_unused(infos))
    shape = shapes[len(layers) - 1] if layers else input_shape

    classifier_params = None
    total_params = None
    if shape is not None and num_classes is not None:
        classifier_params = math.prod(shape) * num_classes + num_classes
        known = total + classifier_params
        total_params = None if unknown_params else known
        if limits.max_params is not None and known > limits.max_params:
            problems.append(Problem(
                f"the model has {'at least ' if unknown_params else ''}{known:,} parameters, over the cap of "
                f"{limits.max_params:,}; use fewer filters/units or pool earlier", field="params"))

    normalised = schema.normalise_spec(spec) if not problems else None
    return Analysis(tuple(problems), tuple(infos), input_shape, classifier_params, total_params, normalised)


# The fields that set a layer's output shape, and those that set its parameter count.
_SHAPE_FIELDS: dict[str, frozenset[str]] = {
    "conv2d": frozenset({"filters", "kernel_size", "stride", "padding"}),
    "maxpool2d": frozenset({"pool_size", "stride", "padding"}),
    "avgpool2d": frozenset({"pool_size", "stride", "padding"}),
    "dense": frozenset({"units"}),
}
_PARAM_FIELDS: dict[str, frozenset[str]] = {
    "conv2d": frozenset({"filters", "kernel_size", "bias"}),
    "dense": frozenset({"units", "bias"}),
}


def _infer_past_problem(index: int, layer: Any, version: Any, shapes: dict[int, Shape | None],
                        problems: list[Problem]) -> tuple[Shape | None, int | None]:
    """(output shape, params) of a layer with a problem, where they are still known; else (None, None).

    The layer must be of a known single-input type whose shape-setting fields are
    valid, and read layers of known shape: its ``inputs`` (schema 2, when valid) or
    the previous layer. Fields with problems take their defaults; a problem of the
    shape inference itself (e.g. a kernel larger than its input) is reported too.
    """
    if not isinstance(layer, dict):
        return None, None
    layer_type = layer.get("type")
    if not isinstance(layer_type, str) or layer_type not in LAYER_FIELDS or layer_type in schema.MERGE_TYPES:
        return None, None
    bad = set()
    for f in LAYER_FIELDS[layer_type]:
        if f.name not in layer:
            if f.required:
                bad.add(f.name)
        elif _check_value(f, layer[f.name]):
            bad.add(f.name)
    if bad & _SHAPE_FIELDS.get(layer_type, frozenset()):
        return None, None
    inputs = layer.get("inputs") if version == schema.GRAPH_SCHEMA else None
    if inputs is None:
        inputs = schema.default_inputs(index)
    if not (isinstance(inputs, list) and len(inputs) == 1 and _is_int(inputs[0]) and -1 <= inputs[0] < index):
        return None, None
    shape = shapes.get(inputs[0])
    if shape is None:
        return None, None
    view = {k: v for k, v in layer.items() if k not in bad}
    out_shape, params, message = _infer(layer_type, view, shape)
    if message:
        problems.append(Problem(message, index, layer_type))
    if bad & _PARAM_FIELDS.get(layer_type, frozenset()):
        params = None
    return out_shape, params


def _check_input(value: Any, problems: list[Problem]) -> tuple[Shape | None, int | None]:
    if value is None:
        problems.append(Problem('missing \'input\' (e.g. {"shape": [1, 8, 8], "num_classes": 10})', field="input"))
        return None, None
    if not isinstance(value, dict):
        problems.append(Problem(f"'input' must be an object, got {_json_type(value)}", field="input"))
        return None, None
    for key in sorted(set(value) - {"shape", "num_classes"}, key=str):
        problems.append(Problem(f"unexpected key {key!r} (input has shape and num_classes)", field="input"))
    shape = value.get("shape")
    good_shape: Shape | None = None
    if (
        isinstance(shape, list)
        and len(shape) == 3
        and all(_is_int(v) for v in shape)
        and 1 <= shape[0] <= schema.MAX_INPUT_CHANNELS
        and all(1 <= v <= schema.MAX_INPUT_SIDE for v in shape[1:])
    ):
        good_shape = (shape[0], shape[1], shape[2])
    else:
        problems.append(Problem(
            f"input.shape must be [channels, height, width] with channels 1..{schema.MAX_INPUT_CHANNELS} "
            f"and sides 1..{schema.MAX_INPUT_SIDE}, got {_short(shape)}", field="input.shape"))
    classes = value.get("num_classes")
    good_classes: int | None = None
    if _is_int(classes) and 2 <= classes <= schema.MAX_CLASSES:
        good_classes = classes
    else:
        problems.append(Problem(f"input.num_classes must be an integer 2..{schema.MAX_CLASSES}, got {_short(classes)}", field="input.num_classes"))
    return good_shape, good_classes


def _check_fields(index: int, layer: Any, problems: list[Problem]) -> str | None:
    """Check one layer's type and fields; its type if they are all fine, else None."""
    if not isinstance(layer, dict):
        problems.append(Problem(f"a layer must be an object, got {_json_type(layer)}", index))
        return None
    layer_type = layer.get("type")
    if layer_type is None:
        problems.append(Problem(f"missing 'type' (one of {', '.join(schema.LAYER_TYPES)})", index, field="type"))
        return None
    if not isinstance(layer_type, str) or layer_type not in LAYER_FIELDS:
        problems.append(Problem(f"unknown layer type {_short(layer_type)} (known: {', '.join(schema.LAYER_TYPES)})", index, field="type"))
        return None
    fields = LAYER_FIELDS[layer_type]
    known = {f.name for f in fields}
    before = len(problems)
    for key in sorted(set(layer) - known - {"type", "inputs"}, key=str):
        takes = ", ".join(sorted(known)) or "no fields"
        problems.append(Problem(f"unexpected field {key!r} ({layer_type} takes {takes})", index, layer_type, str(key)))
    for f in fields:
        if f.name not in layer:
            if f.required:
                problems.append(Problem(f"missing field {f.name!r}", index, layer_type, f.name))
            continue
        message = _check_value(f, layer[f.name])
        if message:
            problems.append(Problem(f"{f.name} {message}", index, layer_type, f.name))
    return layer_type if len(problems) == before else None


def _check_chain(index: int, layer: dict, layer_type: str, problems: list[Problem]) -> str | None:
    """A ``"schema": 1`` layer that uses schema 2 (a merge type or a schema 2 field) is a problem."""
    if layer_type in schema.MERGE_TYPES:
        problems.append(Problem(f"{layer_type} is a schema 2 layer type; set \"schema\": 2 to use it",
                                index, layer_type, "type"))
        return None
    used = schema.uses_graph_fields(layer)
    for name in used:
        problems.append(Problem(f"{name} is a schema 2 field; set \"schema\": 2 to use it", index, layer_type, name))
    return None if used else layer_type


def _check_inputs(index: int, layer: Any, layer_type: str | None, problems: list[Problem]) -> tuple[int, ...]:
    """The layers this layer reads (its ``inputs`` or the previous layer); () when ``inputs`` is invalid."""
    where = dict(index=index, layer_type=layer_type, field="inputs")
    merge = layer_type in schema.MERGE_TYPES
    value = layer.get("inputs") if isinstance(layer, dict) else None
    if value is None:
        if merge:
            problems.append(Problem(f"{layer_type} needs \"inputs\": at least two earlier layers "
                                    f"(e.g. [{index - 1}, {max(index - 3, -1)}])", **where))
            return ()
        return tuple(schema.default_inputs(index))
    if not isinstance(value, list) or not value or not all(_is_int(k) for k in value):
        problems.append(Problem(f"inputs must be a non-empty list of layer indexes (-1 for the network input), "
                                f"got {_short(value)}", **where))
        return ()
    bad = [k for k in value if not -1 <= k < index]
    if bad:
        earlier = f"0..{index - 1}, or -1" if index > 0 else "-1"
        problems.append(Problem(f"input {bad[0]} is not an earlier layer (use {earlier} for the network input)", **where))
        return ()
    repeated = sorted({k for k in value if value.count(k) > 1})
    if repeated:
        problems.append(Problem(f"input {repeated[0]} is listed twice", **where))
        return ()
    if merge and len(value) < 2:
        problems.append(Problem(f"{layer_type} needs at least two inputs, got {value}", **where))
        return ()
    if not merge and len(value) > 1 and layer_type is not None:
        problems.append(Problem(f"inputs {value}: only {' and '.join(schema.MERGE_TYPES)} take several inputs", **where))
        return ()
    return tuple(value)


def _merge(layer_type: str, inputs: tuple[int, ...], shapes: tuple[Shape, ...]) -> tuple[Shape | None, int, str | None]:
    """(output shape, 0 parameters, problem or None) of an ``add`` or ``concat``."""
    first = shapes[0]
    if layer_type == "add":
        for k, shape in zip(inputs[1:], shapes[1:]):
            if shape != first:
                return None, 0, (f"input {k} has shape {_dims(shape)} but input {inputs[0]} has shape {_dims(first)}; "
                                 "add needs identical shapes (use a 1x1 conv2d to match them)")
        return first, 0, None
    for k, shape in zip(inputs[1:], shapes[1:]):
        if len(shape) != len(first) or shape[1:] != first[1:]:
            return None, 0, (f"input {k} has shape {_dims(shape)} but input {inputs[0]} has shape {_dims(first)}; "
                             "concat joins images of equal height and width, or vectors")
    return (sum(s[0] for s in shapes), *first[1:]), 0, None


def _unused(infos: list[LayerInfo]) -> list[Problem]:
    """A problem for every layer that does not lie on a path to the output (the last layer).

    A layer whose ``inputs`` are invalid reads unknown layers, so only the layers
    after the last such layer can be judged.
    """
    if not infos:
        return []
    used = {infos[-1].index}
    for info in reversed(infos):
        if info.index in used:
            used.update(info.inputs)
    judged_from = max((info.index for info in infos if not info.inputs), default=-1) + 1
    return [Problem("not used by the output (every layer must lead to the last layer)", info.index, info.layer_type,
                    "inputs") for info in infos[judged_from:] if info.index not in used]


def _dims(shape: Shape) -> str:
    return "x".join(str(v) for v in shape)


def _check_value(f: schema.Field, value: Any) -> str | None:
    if f.kind == "choice" or (f.kind == "padding" and not _is_int(value)):
        if not isinstance(value, str) or value not in f.choices:
            extra = " or an integer >= 0" if f.kind == "padding" else ""
            return f"must be one of {', '.join(f.choices)}{extra}, got {_short(value)}"
        return None
    if f.kind == "bool":
        return None if _is_bool(value) else f"must be true or false, got {_short(value)}"
    if f.kind in ("int", "padding"):
        if not _is_int(value):
            return f"must be an integer, got {_short(value)}"
    elif f.kind == "float":
        if _is_bool(value) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"must be a number, got {_short(value)}"
    low_ok = f.low is None or value >= f.low
    high_ok = f.high is None or (value <= f.high if f.high_inclusive else value < f.high)
    if not (low_ok and high_ok):
        close = "]" if f.high_inclusive else ")"
        return f"must be in [{_num(f.low)}, {_num(f.high)}{close}, got {_short(value)}"
    return None


def _infer(layer_type: str, layer: dict, shape: Shape) -> tuple[Shape | None, int | None, str | None]:
    """(output shape, parameter count, problem message or None) for one layer."""
    if layer_type in schema.SPATIAL_TYPES and len(shape) != 3:
        return None, None, (f"needs an image input [channels, height, width] but gets a flat vector of "
                            f"{shape[0]} (spatial layers cannot follow a dense layer)")
    if layer_type == "conv2d":
        channels, height, width = shape
        filters, kernel = layer["filters"], layer["kernel_size"]
        stride, padding = layer.get("stride", 1), layer.get("padding", "valid")
        params = channels * filters * kernel * kernel + (filters if layer.get("bias", True) else 0)
        if padding == "same":
            if stride != 1:
                return None, params, f"padding 'same' needs stride 1, got stride {stride}; use padding 'valid' or stride 1"
            return (filters, height, width), params, None
        pad = 0 if padding == "valid" else padding
        if kernel > height + 2 * pad or kernel > width + 2 * pad:
            return None, params, f"kernel_size {kernel} is larger than its {height}x{width} input{_padded(pad)}"
        return (filters, (height + 2 * pad - kernel) // stride + 1, (width + 2 * pad - kernel) // stride + 1), params, None
    if layer_type in ("maxpool2d", "avgpool2d"):
        channels, height, width = shape
        size = layer["pool_size"]
        stride, pad = layer.get("stride", size), layer.get("padding", 0)
        if 2 * pad > size:
            return None, 0, f"padding {pad} is more than half of pool_size {size} (PyTorch's limit)"
        if size > height + 2 * pad or size > width + 2 * pad:
            return None, 0, f"pool_size {size} is larger than its {height}x{width} input{_padded(pad)}"
        return (channels, (height + 2 * pad - size) // stride + 1, (width + 2 * pad - size) // stride + 1), 0, None
    if layer_type == "globalavgpool":
        return (shape[0], 1, 1), 0, None
    if layer_type == "dense":
        units = layer["units"]
        return (units,), math.prod(shape) * units + (units if layer.get("bias", True) else 0), None
    if layer_type == "batchnorm":
        return shape, 2 * shape[0], None
    return shape, 0, None  # activation, dropout


def _padded(pad: int) -> str:
    return f" padded by {pad}" if pad else ""


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _num(value: float | None) -> str:
    if value is None:
        return "..."
    return str(int(value)) if float(value).is_integer() else str(value)


def _type_name(layer: Any) -> str:
    if isinstance(layer, dict) and isinstance(layer.get("type"), str):
        return layer["type"][:40]
    return "?"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    """A bounded repr for messages (inputs may be huge or hostile)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
