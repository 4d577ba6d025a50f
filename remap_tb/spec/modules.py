"""The torch module plan of a spec: which ``torch.nn`` class each step uses, with which arguments.

Torch-free. The trainer builds its module from this plan and the exporter
writes the same plan as Python source, so the two can never disagree on
structure or on ``state_dict`` keys. Step names: layer ``i`` is ``"i"``; a
``"flatten_<i>"`` precedes a dense layer that reads an image; the implicit head
is ``"flatten"`` then ``"classifier"``. Merge layers (``add``, ``concat``) have
no module.

A chain (every layer reads the previous one) runs its steps in order, as an
``nn.Sequential``. A graph (schema 2) runs ``wiring``: one ``Wire`` per spec
layer, saying which outputs it reads and what it does with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from remap_tb.spec.analysis import Analysis, check
from remap_tb.spec.schema import MERGE_TYPES, Limits

ACTIVATION_CLASSES = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "elu": "ELU", "leaky_relu": "LeakyReLU"}


@dataclass(frozen=True)
class ModuleStep:
    """One submodule: ``getattr(torch.nn, cls)(*args, **kwargs)`` registered as ``name``."""

    name: str
    cls: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    index: int | None = None  # the spec layer it implements, None for flatten/classifier

    def source(self) -> str:
        """The constructor call as Python source, e.g. ``nn.Conv2d(1, 16, 3, stride=1, padding='valid')``."""
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"nn.{self.cls}({', '.join(parts)})"


@dataclass(frozen=True)
class Wire:
    """How layer ``index`` of a graph computes its output in ``forward``.

    ``op``: ``"module"`` (call submodule ``str(index)``, after submodule
    ``flatten`` when that is set), ``"add"`` (sum of the inputs) or ``"concat"``
    (``torch.cat`` of the inputs along dimension 1, channels or vector entries).
    ``inputs``: the layer outputs it reads, ``-1`` = the network input.
    """

    index: int
    op: str
    inputs: tuple[int, ...]
    flatten: str | None = None


def module_plan(spec: dict, analysis: Analysis | None = None) -> list[ModuleStep]:
    """The ordered submodules of ``spec``'s model (raises ``SpecError`` if it is invalid)."""
    analysis = analysis or check(spec, Limits(max_params=None, max_depth=None))
    steps: list[ModuleStep] = []
    for info, layer in zip(analysis.layers, analysis.normalised["layers"]):
        kind, name, channels = layer["type"], str(info.index), info.input_shape[0]
        flat = len(info.input_shape) == 1
        if kind == "dense" and not flat:
            steps.append(ModuleStep(f"flatten_{name}", "Flatten"))
        no_bias = {} if layer.get("bias", True) else {"bias": False}
        if kind == "conv2d":
            step = ModuleStep(name, "Conv2d", (channels, layer["filters"], layer["kernel_size"]),
                              {"stride": layer["stride"], "padding": layer["padding"], **no_bias}, info.index)
        elif kind in ("maxpool2d", "avgpool2d"):
            cls = "MaxPool2d" if kind == "maxpool2d" else "AvgPool2d"
            padding = {"padding": layer["padding"]} if layer.get("padding", 0) else {}
            step = ModuleStep(name, cls, (layer["pool_size"],), {"stride": layer["stride"], **padding}, info.index)
        elif kind == "globalavgpool":
            step = ModuleStep(name, "AdaptiveAvgPool2d", (1,), {}, info.index)
        elif kind == "dense":
            step = ModuleStep(name, "Linear", (math.prod(info.input_shape), layer["units"]), no_bias, info.index)
        elif kind == "activation":
            step = ModuleStep(name, ACTIVATION_CLASSES[layer["fn"]], (), {}, info.index)
        elif kind == "dropout":
            step = ModuleStep(name, "Dropout", (float(layer["rate"]),), {}, info.index)
        elif kind == "batchnorm":
            step = ModuleStep(name, "BatchNorm1d" if flat else "BatchNorm2d", (channels,), {}, info.index)
        elif kind in MERGE_TYPES:
            continue  # no module: ``wiring`` sums or concatenates
        else:  # pragma: no cover - analysis rejects unknown types
            raise ValueError(f"no torch module for layer type {kind!r}")
        steps.append(step)
    final_shape = analysis.layers[-1].output_shape if analysis.layers else analysis.input_shape
    steps.append(ModuleStep("flatten", "Flatten"))
    steps.append(ModuleStep("classifier", "Linear", (math.prod(final_shape), analysis.normalised["input"]["num_classes"])))
    return steps


def wiring(analysis: Analysis) -> list[Wire]:
    """The forward pass of a valid spec's model, one ``Wire`` per layer in order.

    The output of the last layer goes through ``flatten`` and ``classifier``.
    """
    wires = []
    for info in analysis.layers:
        if info.layer_type in MERGE_TYPES:
            wires.append(Wire(info.index, info.layer_type, info.inputs))
            continue
        flatten = f"flatten_{info.index}" if info.layer_type == "dense" and len(info.input_shape) != 1 else None
        wires.append(Wire(info.index, "module", info.inputs, flatten))
    return wires
