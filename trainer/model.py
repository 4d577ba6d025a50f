"""Build a torch module from an architecture spec.

The structure comes from ``remap_tb.spec.modules.module_plan`` (shared with the
PyTorch exporter), so parameter counts equal ``analyse(spec).total_params`` and
``state_dict`` keys equal those of the exported source.

A chain (every layer reads the previous one) is an ``nn.Sequential``, exactly as
for schema 1, so old weights load and the module prints as before. A graph
(schema 2 with ``inputs``, ``add`` or ``concat``) is a ``GraphModel`` whose
``forward`` follows ``remap_tb.spec.modules.wiring``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from remap_tb.spec import check
from remap_tb.spec.modules import Wire, module_plan, wiring
from remap_tb.spec.schema import INPUT, Limits


def build_model(spec: dict) -> nn.Module:
    """The torch module of ``spec`` (raises ``SpecError`` if it is invalid).

    An ``nn.Sequential`` for a chain, a ``GraphModel`` for a graph; either way
    the submodules are the steps of ``module_plan`` under their names.
    """
    analysis = check(spec, Limits(max_params=None, max_depth=None))
    modules = OrderedDict(
        (step.name, getattr(nn, step.cls)(*step.args, **step.kwargs)) for step in module_plan(spec, analysis))
    if analysis.is_chain:
        return nn.Sequential(modules)
    return GraphModel(modules, wiring(analysis))


class GraphModel(nn.Module):
    """A model whose layers form a DAG: submodules in plan order, ``forward`` along ``wires``.

    ``wires`` has one ``Wire`` per spec layer, in layer order; the last layer's
    output goes through the ``flatten`` and ``classifier`` submodules. ``forward``
    keeps a layer's output only until its last reader has run.
    """

    def __init__(self, modules: "OrderedDict[str, nn.Module]", wires: list[Wire]) -> None:
        super().__init__()
        for name, module in modules.items():
            self.add_module(name, module)
        self.wires = tuple(wires)
        last_read: dict[int, int] = {}
        for wire in self.wires:
            for k in wire.inputs:
                last_read[k] = wire.index
        # outputs that can be dropped once layer i has run (never the last layer's: the head reads it)
        self._release = {wire.index: tuple(k for k in dict.fromkeys(wire.inputs) if last_read[k] == wire.index)
                         for wire in self.wires}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self._run(x, keep=False)[self.wires[-1].index]))

    def layer_outputs(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Every layer's output (by layer index, ``-1`` = ``x``), as ``forward`` computes them."""
        return self._run(x, keep=True)

    def _run(self, x: torch.Tensor, keep: bool) -> dict[int, torch.Tensor]:
        outputs = {INPUT: x}
        for wire in self.wires:
            outputs[wire.index] = self._layer(wire, outputs)
            if not keep:
                for k in self._release[wire.index]:
                    del outputs[k]
        return outputs

    def _layer(self, wire: Wire, outputs: dict[int, torch.Tensor]) -> torch.Tensor:
        if wire.op == "add":
            total = outputs[wire.inputs[0]]
            for k in wire.inputs[1:]:
                total = total + outputs[k]
            return total
        if wire.op == "concat":
            return torch.cat([outputs[k] for k in wire.inputs], dim=1)
        h = outputs[wire.inputs[0]]
        if wire.flatten is not None:
            h = self._modules[wire.flatten](h)
        return self._modules[str(wire.index)](h)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def pick_device(preference: str = "auto") -> torch.device:
    """``cuda`` when available (or asked for), else ``cpu``."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)
