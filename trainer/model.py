"""Build a torch module from an architecture spec.

The module's parameter count equals ``remap_tb.spec.analyse(spec).total_params``
(tested on hundreds of random specs), because both follow the same layer rules.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from remap_tb.spec import check

ACTIVATION_MODULES = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def build_model(spec: dict) -> nn.Sequential:
    """An ``nn.Sequential`` for ``spec`` (raises ``SpecError`` if it is invalid).

    Layers keep their spec index as their name ("0", "1", ...); the implicit
    flatten and classifier are named "flatten" and "classifier".
    """
    analysis = check(spec)
    channels = analysis.input_shape[0]
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    flat = False
    for info, layer in zip(analysis.layers, analysis.normalised["layers"]):
        kind = layer["type"]
        name = str(info.index)
        if kind == "dense" and not flat:
            modules[f"flatten_{name}"] = nn.Flatten()
            flat = True
        if kind == "conv2d":
            modules[name] = nn.Conv2d(channels, layer["filters"], layer["kernel_size"],
                                      stride=layer["stride"], padding=layer["padding"])
        elif kind == "maxpool2d":
            modules[name] = nn.MaxPool2d(layer["pool_size"], stride=layer["stride"])
        elif kind == "avgpool2d":
            modules[name] = nn.AvgPool2d(layer["pool_size"], stride=layer["stride"])
        elif kind == "globalavgpool":
            modules[name] = nn.AdaptiveAvgPool2d(1)
        elif kind == "dense":
            modules[name] = nn.Linear(math.prod(info.input_shape), layer["units"])
        elif kind == "activation":
            modules[name] = ACTIVATION_MODULES[layer["fn"]]()
        elif kind == "dropout":
            modules[name] = nn.Dropout(layer["rate"])
        elif kind == "batchnorm":
            modules[name] = nn.BatchNorm2d(channels) if not flat else nn.BatchNorm1d(channels)
        channels = info.output_shape[0]
    final_shape = analysis.layers[-1].output_shape if analysis.layers else analysis.input_shape
    modules["flatten"] = nn.Flatten()
    modules["classifier"] = nn.Linear(math.prod(final_shape), analysis.normalised["input"]["num_classes"])
    return nn.Sequential(modules)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def pick_device(preference: str = "auto") -> torch.device:
    """``cuda`` when available (or asked for), else ``cpu``."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)
