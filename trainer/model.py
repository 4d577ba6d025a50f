"""Build a torch module from an architecture spec.

The structure comes from ``remap_tb.spec.modules.module_plan`` (shared with the
PyTorch exporter), so parameter counts equal ``analyse(spec).total_params`` and
``state_dict`` keys equal those of the exported source.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from remap_tb.spec.modules import module_plan


def build_model(spec: dict) -> nn.Sequential:
    """An ``nn.Sequential`` for ``spec`` (raises ``SpecError`` if it is invalid)."""
    return nn.Sequential(OrderedDict(
        (step.name, getattr(nn, step.cls)(*step.args, **step.kwargs)) for step in module_plan(spec)))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def pick_device(preference: str = "auto") -> torch.device:
    """``cuda`` when available (or asked for), else ``cpu``."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)
