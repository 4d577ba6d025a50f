"""The torch module plan of a spec: which ``torch.nn`` class each step uses, with which arguments.

Torch-free. The trainer builds its ``nn.Sequential`` from this plan and the
exporter writes the same plan as Python source, so the two can never disagree
on structure or on ``state_dict`` keys. Step names: layer ``i`` is ``"i"``; a
``"flatten_<i>"`` precedes the first dense layer while the tensor is still an
image; the implicit head is ``"flatten"`` then ``"classifier"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from remap_tb.spec.analysis import Analysis, check
from remap_tb.spec.schema import Limits

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


def module_plan(spec: dict, analysis: Analysis | None = None) -> list[ModuleStep]:
    """The ordered submodules of ``spec``'s model (raises ``SpecError`` if it is invalid)."""
    analysis = analysis or check(spec, Limits(max_params=None, max_depth=None))
    steps: list[ModuleStep] = []
    flat = False
    for info, layer in zip(analysis.layers, analysis.normalised["layers"]):
        kind, name, channels = layer["type"], str(info.index), info.input_shape[0]
        if kind == "dense" and not flat:
            steps.append(ModuleStep(f"flatten_{name}", "Flatten"))
            flat = True
        if kind == "conv2d":
            step = ModuleStep(name, "Conv2d", (channels, layer["filters"], layer["kernel_size"]),
                              {"stride": layer["stride"], "padding": layer["padding"]}, info.index)
        elif kind in ("maxpool2d", "avgpool2d"):
            cls = "MaxPool2d" if kind == "maxpool2d" else "AvgPool2d"
            step = ModuleStep(name, cls, (layer["pool_size"],), {"stride": layer["stride"]}, info.index)
        elif kind == "globalavgpool":
            step = ModuleStep(name, "AdaptiveAvgPool2d", (1,), {}, info.index)
        elif kind == "dense":
            step = ModuleStep(name, "Linear", (math.prod(info.input_shape), layer["units"]), {}, info.index)
        elif kind == "activation":
            step = ModuleStep(name, ACTIVATION_CLASSES[layer["fn"]], (), {}, info.index)
        elif kind == "dropout":
            step = ModuleStep(name, "Dropout", (float(layer["rate"]),), {}, info.index)
        elif kind == "batchnorm":
            step = ModuleStep(name, "BatchNorm1d" if flat else "BatchNorm2d", (channels,), {}, info.index)
        else:  # pragma: no cover - analysis rejects unknown types
            raise ValueError(f"no torch module for layer type {kind!r}")
        steps.append(step)
    final_shape = analysis.layers[-1].output_shape if analysis.layers else analysis.input_shape
    steps.append(ModuleStep("flatten", "Flatten"))
    steps.append(ModuleStep("classifier", "Linear", (math.prod(final_shape), analysis.normalised["input"]["num_classes"])))
    return steps
