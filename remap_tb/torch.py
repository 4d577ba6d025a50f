"""From a PyTorch ``nn.Module`` to an architecture spec (schema 2) and matching weights.

``convert_module(module, input_shape)`` traces ``module`` with ``torch.fx``, runs
the traced graph once on a zero batch of shape ``(2, *input_shape)`` to learn
every tensor's shape, and maps the operations that lead to the output onto spec
layers; ``spec_from_module`` returns only the spec. The result is all or
nothing: anything the spec cannot express exactly raises ``ValueError`` naming
the module path (``layer4.0.conv1``; for a functional call, the function and the
module whose ``forward`` calls it), its type, and ``SUPPORTED``.

Mapping (module and functional forms alike)::

    Conv2d (groups 1, dilation 1, zero padding, square kernel/stride,
            padding an int, equal ints, "same" or "valid")       -> conv2d (bias as in the module)
    Linear                                                        -> dense; the one producing
                                                                     the output -> the classifier
    MaxPool2d / AvgPool2d (square, ceil_mode off; avg: counting
            the padding, no divisor_override)                     -> maxpool2d / avgpool2d
    AdaptiveAvgPool2d(1)                                          -> globalavgpool
    BatchNorm1d / BatchNorm2d (affine, running stats, eps 1e-5)   -> batchnorm
    ReLU, Tanh, Sigmoid, ELU (alpha 1), LeakyReLU (slope 0.01)    -> activation
    Dropout(p)                                                    -> dropout (rate p)
    Identity, Flatten, torch.flatten, x.view(x.size(0), -1),
            x.reshape / x.flatten(1) to (batch, features)         -> no layer (the wiring passes)
    a + b, a += b, torch.add, Tensor.add (same shapes, alpha 1)   -> add
    torch.cat([...], dim=1)                                       -> concat

Decisions: a ``BatchNorm`` whose ``eps`` is not 1e-5 is an error (the spec's
batchnorm uses PyTorch's default, so the outputs would differ); a ``momentum``
other than 0.1 is accepted (it only changes how training updates the running
statistics, not what the module computes; the spec, and every child trained from
it, uses 0.1). ``F.dropout`` maps to a dropout layer whatever its ``training``
argument (the spec's dropout is active in training only). A flatten followed by
element-wise layers, a ``Linear``, a ``BatchNorm1d`` on a flattened 1x1 image or
a ``cat`` of flattened images of equal height and width is the same computation
as the spec's layers on the image, so it converts; any other use of a flattened
image is an error. Submodules that ``forward`` never uses are left out of the
spec and the weights. A module with weights that is called twice (shared
weights) is an error.

Importing this module does not import torch; ``convert_module`` does (``import
torch`` here is the real PyTorch: absolute imports). Nothing else in
``remap_tb`` imports this module at import time.
"""

from __future__ import annotations

import inspect
import math
import operator
from dataclasses import dataclass
from typing import Any

from remap_tb.spec import SpecError, check
from remap_tb.spec.schema import Limits

SUPPORTED = (
    "Conv2d (groups=1, dilation 1, zero padding, square kernel and stride), Linear, MaxPool2d, AvgPool2d, "
    "AdaptiveAvgPool2d(1), BatchNorm1d, BatchNorm2d (affine, running stats, eps 1e-5), ReLU, Tanh, Sigmoid, "
    "ELU (alpha 1), LeakyReLU (slope 0.01), Dropout, Identity, Flatten (and the torch.nn.functional forms: "
    "relu, tanh, sigmoid, elu, leaky_relu, dropout, max_pool2d, avg_pool2d, adaptive_avg_pool2d), "
    "torch.relu/tanh/sigmoid, torch.flatten, x.view(x.size(0), -1) / x.reshape / x.flatten(1), "
    "+ / += / torch.add on equal shapes, torch.cat(..., dim=1); the output must come from a final Linear"
)

_NO_LIMITS = Limits(max_params=None, max_depth=None)
_BATCH = 2  # the probe batch: 2, so that a reshape that folds the batch into the features shows


class _ConversionError(ValueError):
    """A ``ValueError`` raised by the converter itself (passed through, never re-wrapped)."""


@dataclass(frozen=True)
class _Value:
    """A tensor of the traced graph, as the spec sees it.

    ``ref``: the spec layer that computes it (``-1`` = the network input);
    ``shape``: that layer's output shape in the spec (no batch); ``flat``: the
    torch tensor is that image flattened to ``(batch, C*H*W)``.
    """

    ref: int
    shape: tuple[int, ...]
    flat: bool = False


# Signatures of the functional forms, used to bind fx's args/kwargs to names.
def _sig_unary(input, inplace=False): ...  # relu, tanh, sigmoid (function or Tensor method)
def _sig_elu(input, alpha=1.0, inplace=False): ...
def _sig_leaky_relu(input, negative_slope=0.01, inplace=False): ...
def _sig_dropout(input, p=0.5, training=True, inplace=False): ...
def _sig_max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False): ...
def _sig_avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                    divisor_override=None): ...
def _sig_adaptive_avg_pool2d(input, output_size): ...
def _sig_add(input, other, alpha=1): ...
def _sig_cat(tensors, dim=0): ...


def convert_module(module: Any, input_shape: Any, num_classes: int | None = None) -> tuple[dict, dict]:
    """The spec of ``module`` and its weights under the names of ``build_model(spec)``.

    Args:
        module: a ``torch.nn.Module`` whose ``forward`` takes one image batch
            ``(N, C, H, W)`` and returns the logits of a final ``nn.Linear``.
        input_shape: ``(C, H, W)`` of one input image.
        num_classes: if given, must equal the final ``Linear``'s ``out_features``.

    Returns:
        ``(spec, state_dict)``: a valid spec in normal form (``"schema"`` 1 for a
        chain without schema 2 fields, else 2) and CPU copies of the module's
        parameters and batchnorm buffers keyed as in
        ``trainer.model.build_model(spec)`` (layer ``i`` -> ``"i.weight"``, the
        final Linear -> ``"classifier.weight"``), so that
        ``build_model(spec).load_state_dict(state_dict)`` is strict and the built
        module computes the same outputs in eval mode.

    Raises:
        ValueError: a module, function or wiring the spec cannot express (naming
            the module path, its type and ``SUPPORTED``), a forward that
            ``torch.fx`` cannot trace, or an input shape the module does not take.

    The caller's module is traced in eval mode; its train/eval flags are restored
    afterwards and its weights are not changed.

    Example::

        >>> spec, weights = convert_module(torchvision.models.resnet18(num_classes=10), (3, 32, 32))
        >>> analyse(spec).total_params
        11181642
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise ValueError(f"expected a torch.nn.Module, got {type(module).__name__}")
    shape = _input_shape(input_shape)
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise ValueError(f"num_classes must be a positive integer or None, got {num_classes!r}")
    modes = [(m, m.training) for m in module.modules()]
    try:
        module.eval()
        graph_module, scopes = _trace(torch, module)
        _propagate_shapes(torch, graph_module, module, shape)
        return _Converter(torch, graph_module, scopes, shape).convert(num_classes)
    finally:
        for m, mode in modes:
            m.training = mode


def spec_from_module(module: Any, input_shape: Any, num_classes: int | None = None) -> dict:
    """The spec of ``module`` (``convert_module(...)[0]``; same arguments and errors)."""
    return convert_module(module, input_shape, num_classes)[0]


def _torch():
    """The real PyTorch (an absolute import: this file's own name does not shadow it)."""
    import torch
    import torch.fx  # noqa: F401  (torch.fx.Tracer, torch.fx.Node)

    return torch


def _input_shape(value: Any) -> tuple[int, int, int]:
    try:
        shape = tuple(value)
    except TypeError:
        shape = ()
    if len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape):
        raise ValueError(f"input_shape must be (channels, height, width) of one image, got {value!r}")
    return shape  # type: ignore[return-value]


def _module_name(path: str, module: Any) -> str:
    kind = type(module).__name__ if not isinstance(module, type) else module.__name__
    return f"module {path!r} ({kind})" if path else f"the root module ({kind})"


def _error(where: str, detail: str) -> _ConversionError:
    return _ConversionError(f"cannot convert {where}: {detail}. Supported: {SUPPORTED}")


def _trace(torch, module):
    """``torch.fx`` trace of ``module`` -> (GraphModule, {node name: "module 'path' (Type)"})."""
    supported = _leaf_types(torch)

    class Tracer(torch.fx.Tracer):
        failed_in: str | None = None

        def call_module(self, m, forward, args, kwargs):
            path = self.path_of_module(m)
            try:
                if self.is_leaf_module(m, path) and type(m) not in supported:
                    raise _error(_module_name(path, m), f"{type(m).__name__} is not supported")
                return super().call_module(m, forward, args, kwargs)
            except Exception:
                if self.failed_in is None:
                    self.failed_in = _module_name(path, m)
                raise

    tracer = Tracer()
    try:
        graph = tracer.trace(module)
    except _ConversionError:
        raise
    except Exception as exc:  # TraceError, TypeError, ...: whatever the user's forward raised under fx
        where = tracer.failed_in or _module_name("", module)
        raise _error(where, f"torch.fx cannot trace it ({type(exc).__name__}: {exc}); the forward must not "
                            "branch on tensor values or call untraceable code") from exc
    root_name = _module_name("", module)
    scopes = {}
    for name, (path, kind) in tracer.node_name_to_scope.items():
        scopes[name] = _module_name(path, kind) if path and kind is not None else root_name
    return torch.fx.GraphModule(module, graph), scopes


def _leaf_types(torch) -> dict:
    nn = torch.nn
    return {nn.Conv2d: "conv2d", nn.Linear: "dense", nn.MaxPool2d: "maxpool2d", nn.AvgPool2d: "avgpool2d",
            nn.AdaptiveAvgPool2d: "globalavgpool", nn.BatchNorm1d: "batchnorm", nn.BatchNorm2d: "batchnorm",
            nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ELU: "elu", nn.LeakyReLU: "leaky_relu",
            nn.Dropout: "dropout", nn.Identity: "identity", nn.Flatten: "flatten"}


def _propagate_shapes(torch, graph_module, module, shape) -> None:
    """Run the graph once (no grad) so every node's ``meta["tensor_meta"]`` holds its shape."""
    from torch.fx.passes.shape_prop import ShapeProp

    first = next(iter(module.parameters()), None)
    if first is None:
        first = next(iter(module.buffers()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    try:
        with torch.no_grad():
            ShapeProp(graph_module).propagate(torch.zeros((_BATCH, *shape), device=device, dtype=dtype))
    except Exception as exc:
        raise ValueError(f"the module does not run on a batch of input_shape {tuple(shape)}: "
                         f"{type(exc).__name__}: {exc}") from exc


class _Converter:
    """One walk over a traced, shape-annotated graph (used once by ``convert_module``)."""

    def __init__(self, torch, graph_module, scopes: dict, input_shape: tuple[int, ...]) -> None:
        self.torch = torch
        self.gm = graph_module
        self.scopes = scopes
        self.input_shape = input_shape
        self.layers: list[dict] = []
        self.origins: list[str] = []  # per layer: where it came from, for messages
        self.sources: list[Any] = []  # per layer: the nn.Module whose state_dict it takes, or None
        self.linear: list[bool] = []  # per layer: made from an nn.Linear (a classifier candidate)
        self.values: dict[Any, _Value | None] = {}  # node -> its tensor, or None for a size/shape value
        self.weighted_calls: set[int] = set()
        F = torch.nn.functional
        unary = {torch.relu: "relu", F.relu: "relu", torch.tanh: "tanh", F.tanh: "tanh",
                 torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid"}
        self.functions = {
            **{fn: (self._f_activation, fn_name) for fn, fn_name in unary.items()},
            F.elu: (self._f_activation, "elu"), F.leaky_relu: (self._f_activation, "leaky_relu"),
            F.dropout: (self._f_dropout, None), F.max_pool2d: (self._f_pool, "maxpool2d"),
            F.avg_pool2d: (self._f_pool, "avgpool2d"), F.adaptive_avg_pool2d: (self._f_global, None),
            torch.flatten: (self._f_reshape, None), torch.reshape: (self._f_reshape, None),
            operator.add: (self._f_add, None), operator.iadd: (self._f_add, None), torch.add: (self._f_add, None),
            torch.cat: (self._f_cat, None), torch.concat: (self._f_cat, None),
        }
        self.methods = {"relu": (self._f_activation, "relu"), "tanh": (self._f_activation, "tanh"),
                        "sigmoid": (self._f_activation, "sigmoid"), "flatten": (self._f_reshape, None),
                        "view": (self._f_reshape, None), "reshape": (self._f_reshape, None),
                        "add": (self._f_add, None)}

    # -- the walk -----------------------------------------------------------------------------

    def convert(self, num_classes: int | None) -> tuple[dict, dict]:
        graph = self.gm.graph
        output = next(node for node in graph.nodes if node.op == "output")
        live = self._live(output)
        result, inputs = None, 0
        for node in graph.nodes:
            if node not in live:
                continue
            if node.op == "placeholder":
                inputs += 1
                if inputs > 1:
                    raise _error(self.scopes.get(node.name, "the root module"),
                                 f"forward uses a second input {node.target!r}; it must take one image batch")
                self.values[node] = _Value(-1, self.input_shape)
            elif node.op == "call_module":
                self._call_module(node)
            elif node.op in ("call_function", "call_method"):
                self._call_function(node)
            elif node.op == "get_attr":
                raise _error(self._where(node), f"forward reads the tensor attribute {node.target!r} directly "
                                                "(only the supported modules may hold weights)")
            elif node.op == "output":
                result = node.args[0]
        return self._finish(result, num_classes)

    def _live(self, output) -> set:
        live, stack = set(), [output]
        while stack:
            node = stack.pop()
            if node not in live:
                live.add(node)
                stack.extend(node.all_input_nodes)
        return live

    def _finish(self, result: Any, num_classes: int | None) -> tuple[dict, dict]:
        torch = self.torch
        value = self.values.get(result) if isinstance(result, torch.fx.Node) else None
        if value is None:
            raise _error("the output of forward", f"it returns {type(result).__name__} {result!s:.60}; it must "
                                                  "return one logits tensor, made by a final Linear")
        last = len(self.layers) - 1
        if value.ref < 0 or value.ref != last or not self.linear[last]:
            made_by = "the network input" if value.ref < 0 else f"{self.origins[value.ref]}"
            raise _error("the output of forward", f"it comes from {made_by}, not from a Linear; the final Linear "
                                                  "becomes the spec's implicit classifier")
        classifier = self.sources.pop()
        self.origins.pop()
        self.linear.pop()
        head = self.layers.pop()
        where = _module_name(self._path(classifier), classifier)
        if head["inputs"] != [last - 1]:  # everything else leads to the output, so through this input
            raise _error(where, "the final Linear does not read the last of the other layers")
        if classifier.bias is None:
            raise _error(where, "the final Linear has no bias; the spec's classifier has one")
        if num_classes is not None and num_classes != classifier.out_features:
            raise ValueError(f"num_classes={num_classes} but the final Linear {self._path(classifier)!r} has "
                             f"{classifier.out_features} outputs")
        spec = {"schema": 2, "input": {"shape": list(self.input_shape), "num_classes": classifier.out_features},
                "layers": self.layers}
        try:
            normalised = check(spec, _NO_LIMITS).normalised
        except SpecError as exc:
            origins = "; ".join(f"layer {p.index} is {self.origins[p.index]}" for p in exc.problems
                                if p.index is not None and p.index < len(self.origins))
            raise ValueError(f"the converted spec is invalid: {exc}" + (f"\n({origins})" if origins else "")) from exc
        state = {}
        for index, source in enumerate(self.sources):
            if source is not None:
                state.update(self._weights(str(index), source))
        state.update(self._weights("classifier", classifier))
        return normalised, state

    def _weights(self, prefix: str, module) -> dict:
        return {f"{prefix}.{key}": tensor.detach().to("cpu", copy=True) for key, tensor in module.state_dict().items()}

    def _path(self, module) -> str:
        for path, m in self.gm.named_modules():
            if m is module:
                return path
        return ""  # pragma: no cover - every source is a submodule

    # -- helpers ------------------------------------------------------------------------------

    def _where(self, node) -> str:
        if node.op == "call_module":
            return _module_name(node.target, self.gm.get_submodule(node.target))
        if node.op == "call_method":
            what = f"Tensor.{node.target}"
        else:
            target = node.target
            what = f"{getattr(target, '__module__', None) or 'torch'}.{getattr(target, '__name__', target)}"
            for prefix in ("torch._C._nn.", "torch._C._VariableFunctions.", "_operator."):
                if what.startswith(prefix):
                    what = ("operator." if prefix == "_operator." else "torch.nn.functional." if "_nn" in prefix
                            else "torch.") + what[len(prefix):]
        return f"{what} in {self.scopes.get(node.name, 'the root module')}"

    def _torch_shape(self, node) -> tuple[int, ...] | None:
        """The node's tensor shape without the batch dimension (None: not a tensor)."""
        meta = node.meta.get("tensor_meta")
        shape = getattr(meta, "shape", None)
        return tuple(shape[1:]) if shape is not None and len(shape) >= 1 and shape[0] == _BATCH else None

    def _full_shape(self, node) -> tuple[int, ...] | None:
        shape = getattr(node.meta.get("tensor_meta"), "shape", None)
        return tuple(shape) if shape is not None else None

    def _tensor(self, node, arg) -> _Value:
        if not isinstance(arg, self.torch.fx.Node) or self.values.get(arg) is None:
            raise _error(self._where(node), f"its input {arg!s:.60} is not a tensor of the network "
                                            "(constants and parameters cannot enter the spec)")
        return self.values[arg]

    def _image(self, node, value: _Value) -> _Value:
        if value.flat or len(value.shape) != 3:
            raise _error(self._where(node), "it needs an image batch (N, C, H, W) but reads a flattened "
                                            f"tensor of {math.prod(value.shape)} features")
        return value

    def _vector(self, node, value: _Value, what: str) -> _Value:
        if not value.flat and len(value.shape) != 1:
            raise _error(self._where(node), f"{what} reads a {'x'.join(map(str, value.shape))} tensor; it must "
                                            "read a (batch, features) tensor (flatten first)")
        return value

    def _emit(self, node, layer: dict, inputs: list[_Value], source=None, shape=None, flat=False,
              linear=False) -> None:
        self.layers.append({**layer, "inputs": [v.ref for v in inputs]})
        self.origins.append(self._where(node))
        self.sources.append(source)
        self.linear.append(linear)
        out = shape if shape is not None else self._torch_shape(node)
        if out is None:  # pragma: no cover - the supported operations keep the batch dimension
            raise _error(self._where(node), "its output does not keep the batch dimension")
        self.values[node] = _Value(len(self.layers) - 1, tuple(out), flat)

    def _elementwise(self, node, layer: dict, value: _Value, source=None) -> None:
        self._emit(node, layer, [value], source, value.shape, value.flat)

    def _bind(self, node, signature, *args, **kwargs) -> dict:
        try:
            bound = inspect.signature(signature).bind(*args, **kwargs)
        except TypeError as exc:
            raise _error(self._where(node), f"unexpected arguments ({exc})") from exc
        bound.apply_defaults()
        return dict(bound.arguments)

    # -- modules ------------------------------------------------------------------------------

    def _call_module(self, node) -> None:
        nn = self.torch.nn
        module = self.gm.get_submodule(node.target)
        kind = _leaf_types(self.torch).get(type(module))
        where = self._where(node)
        if kind is None:  # pragma: no cover - the tracer refuses these first
            raise _error(where, f"{type(module).__name__} is not supported")
        if node.kwargs or len(node.args) != 1:
            raise _error(where, "it is called with more than one argument")
        value = self._tensor(node, node.args[0])
        if any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
            if id(module) in self.weighted_calls:
                raise _error(where, "it is called more than once (shared weights have no spec form)")
            self.weighted_calls.add(id(module))
        if kind == "conv2d":
            self._image(node, value)
            if module.groups != 1:
                raise _error(where, f"groups={module.groups} (grouped or depthwise convolution)")
            if tuple(module.dilation) != (1, 1):
                raise _error(where, f"dilation={tuple(module.dilation)}")
            if module.padding_mode != "zeros":
                raise _error(where, f"padding_mode={module.padding_mode!r} (only zero padding)")
            kernel = _square(where, "kernel_size", module.kernel_size)
            stride = _square(where, "stride", module.stride)
            padding = module.padding if isinstance(module.padding, str) else _square(where, "padding", module.padding)
            self._emit(node, {"type": "conv2d", "filters": module.out_channels, "kernel_size": kernel,
                              "stride": stride, "padding": padding, "bias": module.bias is not None}, [value], module)
        elif kind == "dense":
            self._vector(node, value, "Linear")
            self._emit(node, {"type": "dense", "units": module.out_features, "bias": module.bias is not None},
                       [value], module, linear=True)
        elif kind == "maxpool2d":
            self._pool(node, value, kind, module.kernel_size, module.stride, module.padding, module.dilation,
                       module.ceil_mode, module.return_indices)
        elif kind == "avgpool2d":
            self._pool(node, value, kind, module.kernel_size, module.stride, module.padding, 1, module.ceil_mode,
                       False, module.count_include_pad, module.divisor_override)
        elif kind == "globalavgpool":
            self._global(node, value, module.output_size)
        elif kind == "batchnorm":
            self._batchnorm(node, value, module, isinstance(module, nn.BatchNorm1d))
        elif kind == "dropout":
            self._elementwise(node, {"type": "dropout", "rate": float(module.p)}, value)
        elif kind in ("identity", "flatten"):
            self._reshape(node, value)
        else:
            self._activation(node, value, kind, getattr(module, "alpha", 1.0),
                             getattr(module, "negative_slope", 0.01))

    def _pool(self, node, value, kind, kernel, stride, padding, dilation, ceil_mode, return_indices,
              count_include_pad=True, divisor_override=None) -> None:
        where = self._where(node)
        self._image(node, value)
        if _square(where, "dilation", dilation) != 1:
            raise _error(where, f"dilation={dilation!r}")
        for flag, bad, text in ((ceil_mode, True, "ceil_mode=True"), (return_indices, True, "return_indices=True"),
                                (count_include_pad, False, "count_include_pad=False")):
            if bool(flag) is bad:
                raise _error(where, text)
        if divisor_override is not None:
            raise _error(where, f"divisor_override={divisor_override!r}")
        size = _square(where, "kernel_size", kernel)
        stride = size if stride is None or stride == [] or stride == () else _square(where, "stride", stride)
        self._emit(node, {"type": kind, "pool_size": size, "stride": stride,
                          "padding": _square(where, "padding", padding)}, [value])

    def _global(self, node, value, output_size) -> None:
        self._image(node, value)
        if output_size not in (1, (1, 1), [1, 1]):
            raise _error(self._where(node), f"output_size={output_size!r} (only 1: global average pooling)")
        self._emit(node, {"type": "globalavgpool"}, [value])

    def _batchnorm(self, node, value, module, one_d: bool) -> None:
        where = self._where(node)
        if not module.affine:
            raise _error(where, "affine=False (the spec's batchnorm has a weight and a bias)")
        if not module.track_running_stats:
            raise _error(where, "track_running_stats=False (the spec's batchnorm keeps running statistics)")
        if module.eps != 1e-5:
            raise _error(where, f"eps={module.eps!r} (the spec's batchnorm uses 1e-5; outputs would differ)")
        if not one_d:
            self._image(node, value)
        elif len(self._torch_shape(node) or ()) != 1:
            raise _error(where, "BatchNorm1d on a (N, C, L) tensor (only on (N, features))")
        elif value.flat and value.shape[1:] != (1, 1):
            raise _error(where, "BatchNorm1d on a flattened image larger than 1x1 (normalises each pixel "
                                "separately, which the spec's batchnorm does not)")
        self._elementwise(node, {"type": "batchnorm"}, value, module)

    def _activation(self, node, value, fn: str, alpha=1.0, slope=0.01) -> None:
        where = self._where(node)
        if fn == "elu" and alpha != 1.0:
            raise _error(where, f"ELU alpha={alpha!r} (the spec's elu has alpha 1.0)")
        if fn == "leaky_relu" and slope != 0.01:
            raise _error(where, f"LeakyReLU negative_slope={slope!r} (the spec's leaky_relu has slope 0.01)")
        self._elementwise(node, {"type": "activation", "fn": fn}, value)

    def _reshape(self, node, value: _Value) -> None:
        """A flatten to (batch, features), a reshape that changes nothing, or an identity: no layer."""
        out, before = self._full_shape(node), (_BATCH, *(value.shape if not value.flat else (math.prod(value.shape),)))
        if out == before:
            self.values[node] = value
        elif out == (_BATCH, math.prod(before[1:])):
            self.values[node] = _Value(value.ref, value.shape, flat=len(value.shape) == 3)
        else:
            raise _error(self._where(node), f"it reshapes {before} to {out}; only a flatten to (batch, features) "
                                            "is supported (shapes shown for a batch of 2)")

    # -- functions and methods -----------------------------------------------------------------

    def _call_function(self, node) -> None:
        if self._is_size(node):
            self.values[node] = None  # an int or a shape: only reshapes may use it
            return
        target = node.target
        table = self.methods if node.op == "call_method" else self.functions
        try:
            handler, extra = table.get(target, (None, None))
        except TypeError:  # an unhashable target
            handler, extra = None, None
        if handler is None:
            raise _error(self._where(node), "this operation is not supported")
        handler(node, extra)

    def _is_size(self, node) -> bool:
        """``x.size(...)``, ``x.dim()``, ``x.shape`` or an item of a size (``x.shape[0]``)."""
        if node.op == "call_method":
            return node.target in ("size", "dim")
        if node.target is getattr:
            return node.args[1:] == ("shape",)
        if node.target is operator.getitem:
            source = node.args[0]
            return isinstance(source, self.torch.fx.Node) and source in self.values and self.values[source] is None
        return False

    def _f_activation(self, node, fn: str) -> None:
        if fn == "elu":
            args = self._bind(node, _sig_elu, *node.args, **node.kwargs)
        elif fn == "leaky_relu":
            args = self._bind(node, _sig_leaky_relu, *node.args, **node.kwargs)
        else:
            args = self._bind(node, _sig_unary, *node.args, **node.kwargs)
        self._activation(node, self._tensor(node, args["input"]), fn, args.get("alpha", 1.0),
                         args.get("negative_slope", 0.01))

    def _f_dropout(self, node, _) -> None:
        args = self._bind(node, _sig_dropout, *node.args, **node.kwargs)
        self._elementwise(node, {"type": "dropout", "rate": float(args["p"])}, self._tensor(node, args["input"]))

    def _f_pool(self, node, kind: str) -> None:
        if kind == "maxpool2d":
            a = self._bind(node, _sig_max_pool2d, *node.args, **node.kwargs)
            self._pool(node, self._tensor(node, a["input"]), kind, a["kernel_size"], a["stride"], a["padding"],
                       a["dilation"], a["ceil_mode"], a["return_indices"])
        else:
            a = self._bind(node, _sig_avg_pool2d, *node.args, **node.kwargs)
            self._pool(node, self._tensor(node, a["input"]), kind, a["kernel_size"], a["stride"], a["padding"], 1,
                       a["ceil_mode"], False, a["count_include_pad"], a["divisor_override"])

    def _f_global(self, node, _) -> None:
        a = self._bind(node, _sig_adaptive_avg_pool2d, *node.args, **node.kwargs)
        self._global(node, self._tensor(node, a["input"]), a["output_size"])

    def _f_reshape(self, node, _) -> None:
        self._reshape(node, self._tensor(node, node.args[0] if node.args else node.kwargs.get("input")))

    def _f_add(self, node, _) -> None:
        a = self._bind(node, _sig_add, *node.args, **node.kwargs)
        where = self._where(node)
        if a["alpha"] != 1:
            raise _error(where, f"alpha={a['alpha']!r} (the spec's add is a plain sum)")
        left, right = self._tensor(node, a["input"]), self._tensor(node, a["other"])
        if self._torch_shape(a["input"]) != self._torch_shape(a["other"]):
            raise _error(where, f"it adds tensors of shapes {self._torch_shape(a['input'])} and "
                                f"{self._torch_shape(a['other'])} (broadcasting has no spec form)")
        if left.ref == right.ref:
            raise _error(where, "it adds a tensor to itself (the spec's add takes distinct inputs)")
        if left.shape != right.shape:
            raise _error(where, "it adds a flattened image to a vector (the spec adds equal shapes only)")
        self._emit(node, {"type": "add"}, [left, right], shape=left.shape, flat=left.flat)

    def _f_cat(self, node, _) -> None:
        a = self._bind(node, _sig_cat, *node.args, **node.kwargs)
        where = self._where(node)
        if not isinstance(a["tensors"], (list, tuple)):
            raise _error(where, "it concatenates a tensor that is not a list of tensors")
        values = [self._tensor(node, t) for t in a["tensors"]]
        ranks = {len(self._torch_shape(t)) + 1 for t in a["tensors"]}
        dim = a["dim"]
        if len(ranks) != 1 or not isinstance(dim, int) or dim % ranks.pop() != 1:
            raise _error(where, f"dim={dim!r} (the spec concatenates along dimension 1: channels or features)")
        if len(values) == 1:
            self.values[node] = values[0]
            return
        if len({v.ref for v in values}) != len(values):
            raise _error(where, "it concatenates a tensor with itself (the spec's concat takes distinct inputs)")
        if all(not v.flat for v in values):
            self._emit(node, {"type": "concat"}, values)
        elif all(v.flat for v in values) and len({v.shape[1:] for v in values}) == 1:
            # channels first: flattening then joining equals joining channels then flattening
            shape = (sum(v.shape[0] for v in values), *values[0].shape[1:])
            self._emit(node, {"type": "concat"}, values, shape=shape, flat=True)
        else:
            raise _error(where, "it concatenates flattened images of different heights/widths, or a flattened "
                                "image with a vector (the spec joins images along channels, or vectors)")


def _square(where: str, name: str, value: Any) -> int:
    """``value`` as one int: an int, or a pair/list of equal ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (tuple, list)) and len(value) in (1, 2) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value) and len(set(value)) == 1:
        return value[0]
    raise _error(where, f"{name}={value!r} (the spec needs one integer {name} for both sides)")
