"""How much memory training a spec takes: a torch-free estimate, per layer and in total.

``training_memory(spec, batch_size, optimizer)`` estimates the peak memory of one
training step of ``trainer.train`` (float32 on CPU or GPU), the step being the
largest thing a worker holds besides its dataset (evaluation runs in batches of
the training batch size and keeps no gradients, so it needs less).

With ``B`` the batch size, ``n_i`` the output elements per sample of layer ``i``
(``analysis.LayerInfo.output_shape``), ``a_i = 4·B·n_i`` bytes its output
activation, ``P`` the parameter count, ``n_0`` the input elements per sample and
``K`` the number of classes::

    M = M_params + M_input + M_saved + M_grad

    M_params = 4·P·(2 + s)          weights, their gradients and s optimiser states
                                     (s = 2 for adam and adamw: exp_avg, exp_avg_sq;
                                      s = 1 for sgd with momentum and for rmsprop)
    M_input  = 4·B·n_0 + 16·B        the batch copied out of the dataset, its labels
                                     and the index (int64)
    M_saved  = Σ_i a_i·(k_i + e_i)   what autograd keeps for the backward pass: the output
               + 2·4·B·K             of a layer that needs it (k_i = 1 for relu, tanh,
                                     sigmoid, elu) or whose reader needs its input (k_i = 1
                                     when read by a conv, pool, dense, batchnorm, leaky relu
                                     or the classifier; else 0: an output read only by
                                     dropout, add or concat is freed in the forward pass),
                                     plus e_i = 2 for max pooling (int64 indices, 8 bytes
                                     per output element) and e_i = 1 for dropout (its mask,
                                     a float tensor on CPU); the logits and their log-softmax
    M_grad   = max_i (a_i + Σ_{k ∈ inputs(i)} a_k) + max_{j shared} a_j
                                     gradients: while layer i runs backward, the gradient
                                     of its output and those of its inputs are alive; in a
                                     graph, the gradient of an output read by several layers
                                     (a skip connection) waits while the other branch
                                     runs backward (the largest such output)

Not counted: batchnorm's running and saved statistics (a few floats per channel),
the loss, the dataset (held by the worker once for all its requests), the
process's own baseline (the interpreter and torch's libraries, ~0.7 GB of RSS on
CPU), kernel workspaces and allocator slack: which is why workers also run under
a memory limit of their own (``trainer.limits``).

Measured against torch 2.14 on CPU (``tests/test_limits.py``: the high-water mark of
the resident set around one training step, 20 random chain and residual specs,
batch 32-128, every optimiser), estimate / measured peak was 0.58-1.42, median 1.06;
the test asserts a factor of 2.

>>> spec = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10},
...         "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}]}
>>> m = training_memory(spec, batch_size=2, optimizer="sgd")
>>> m.layers[0].activation_bytes  # 4 bytes x 2 samples x 4x6x6
1152
>>> m.params, m.param_bytes  # (1·4·9 + 4) + (144·10 + 10) parameters, x 4 bytes x (weights, grads, momentum)
(1490, 17880)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from remap_tb.spec.analysis import Analysis, SpecError, analyse
from remap_tb.spec.schema import Limits

FLOAT_BYTES = 4
INDEX_BYTES = 8
# Optimiser states per parameter, as trainer.train.make_optimizer builds them.
OPTIMIZER_STATES = {"adam": 2, "adamw": 2, "sgd": 1, "rmsprop": 1}
# Extra bytes autograd keeps per output byte of a layer type (max-pool indices, dropout's mask:
# a float tensor on CPU, where dropout is input * mask).
_EXTRA_SAVED = {"maxpool2d": INDEX_BYTES / FLOAT_BYTES, "dropout": 1.0}
_NO_LIMITS = Limits(max_params=None, max_depth=None)


@dataclass(frozen=True)
class LayerMemory:
    """One layer's share: its output activation, what autograd keeps of it, its parameters' bytes."""

    index: int
    layer_type: str
    activation_bytes: int  # a_i: the output at the training batch size
    saved_bytes: int  # a_i·(1 + e_i): kept for the backward pass
    param_bytes: int  # 4·p_i·(2 + s): weights, gradients, optimiser state

    @property
    def total_bytes(self) -> int:
        return self.saved_bytes + self.param_bytes

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "type": self.layer_type, "activation_bytes": self.activation_bytes,
                "saved_bytes": self.saved_bytes, "param_bytes": self.param_bytes, "total_bytes": self.total_bytes}


@dataclass(frozen=True)
class MemoryEstimate:
    """The terms of the module docstring's formula, in bytes."""

    batch_size: int
    optimizer: str
    params: int
    layers: tuple[LayerMemory, ...]
    classifier_bytes: int  # the classifier's share: its parameters, the logits and their log-softmax
    param_bytes: int  # M_params (every layer and the classifier)
    input_bytes: int  # M_input
    saved_bytes: int  # M_saved
    gradient_bytes: int  # M_grad

    @property
    def total_bytes(self) -> int:
        return self.param_bytes + self.input_bytes + self.saved_bytes + self.gradient_bytes

    def to_json(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "optimizer": self.optimizer, "params": self.params,
                "layers": [layer.to_json() for layer in self.layers], "classifier_bytes": self.classifier_bytes,
                "param_bytes": self.param_bytes, "input_bytes": self.input_bytes, "saved_bytes": self.saved_bytes,
                "gradient_bytes": self.gradient_bytes, "total_bytes": self.total_bytes}


def training_memory(spec: Any, batch_size: int, optimizer: str = "adam",
                    analysis: Analysis | None = None) -> MemoryEstimate:
    """The estimate of the module docstring for ``spec`` trained in batches of ``batch_size``.

    ``spec``: a valid architecture spec (schema 1 or 2); ``analysis``: its
    ``analyse`` result when the caller has it. Raises ``SpecError`` for an invalid
    spec and ``ValueError`` for a bad batch size or optimiser.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r:.40}")
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_STATES)}, got {optimizer!r:.40}")
    if analysis is None or not analysis.ok:
        analysis = analyse(spec, _NO_LIMITS)
    if not analysis.ok:
        raise SpecError(analysis.problems)
    per_param = FLOAT_BYTES * (2 + OPTIMIZER_STATES[optimizer])
    per_sample = FLOAT_BYTES * batch_size

    normalised = analysis.normalised["layers"]
    activation = {-1: per_sample * math.prod(analysis.input_shape)}  # a_k by layer, -1 = the input
    readers: dict[int, int] = {}
    kept = {analysis.layers[-1].index} if analysis.layers else set()  # the classifier saves its input
    for info, layer in zip(analysis.layers, normalised):
        activation[info.index] = per_sample * math.prod(info.output_shape)
        for k in info.inputs:
            readers[k] = readers.get(k, 0) + 1
        if _saves_input(layer):
            kept.update(info.inputs)
        if _saves_output(layer):
            kept.add(info.index)
    layers = []
    for info in analysis.layers:
        a = activation[info.index]
        saved = int(a * ((info.index in kept) + _EXTRA_SAVED.get(info.layer_type, 0)))
        layers.append(LayerMemory(info.index, info.layer_type, a, saved, per_param * (info.params or 0)))

    classes = analysis.normalised["input"]["num_classes"]
    logits = per_sample * classes
    classifier_bytes = per_param * analysis.classifier_params + 2 * logits
    grads = [logits + activation[analysis.layers[-1].index if analysis.layers else -1]]
    grads += [activation[info.index] + sum(activation[k] for k in info.inputs) for info in analysis.layers]
    shared = [activation[k] for k, n in readers.items() if n > 1 and k >= 0]
    return MemoryEstimate(
        batch_size=batch_size, optimizer=optimizer, params=analysis.total_params, layers=tuple(layers),
        classifier_bytes=classifier_bytes,
        param_bytes=per_param * analysis.total_params,
        input_bytes=activation[-1] + 2 * INDEX_BYTES * batch_size,
        saved_bytes=sum(layer.saved_bytes for layer in layers) + 2 * logits,
        gradient_bytes=max(grads) + max(shared, default=0))


def _saves_input(layer: dict) -> bool:
    """Whether the layer's backward needs its input (convolutions, pools, dense, batchnorm, leaky relu)."""
    kind = layer["type"]
    return kind not in ("activation", "dropout", "add", "concat") or layer.get("fn") == "leaky_relu"


def _saves_output(layer: dict) -> bool:
    """Whether the layer's backward needs its own output (relu, tanh, sigmoid, elu)."""
    return layer["type"] == "activation" and layer["fn"] != "leaky_relu"


def request_memory(request: dict) -> MemoryEstimate:
    """``training_memory`` of a (normalised) training request, with its batch size and optimiser."""
    training = request["training"]
    return training_memory(request["spec"], training["batch_size"], training["optimizer"])


def format_bytes(value: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; binary units, as ``--remap_max_memory 4G`` means 4 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover
