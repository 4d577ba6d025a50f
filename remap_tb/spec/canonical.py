"""The canonical form of a spec: the normal form with layers that do nothing removed.

Two specs can build different torch modules that compute the same function with
the same parameters, so that training them is the same experiment twice: a
``relu`` right after a ``relu``, a ``dropout`` of rate 0, a 1x1 convolution
whose padding is switched from ``"valid"`` to ``"same"``. ``spec_hash``
(``hashing.py``) tells such specs apart (it must: it names event-log content and
never changes); ``canonical_hash`` does not. The duplicate checks of the sampler,
the local-search operators and the enqueue route compare canonical hashes in
addition to spec hashes.

Rules, applied to the normal form (``schema.normalise_spec``) until none applies.
Each keeps the function the model computes, its parameters and, almost
everywhere, its gradients, so the two specs train the same way:

1. **relu on a non-negative input** is removed. An output is non-negative after
   ``relu`` or ``sigmoid``, and stays so through max/avg/global pools, dropout,
   ``add`` and ``concat`` of non-negative inputs (conv2d, dense, batchnorm and the
   network input may be negative). So relu∘relu = relu, relu∘sigmoid = sigmoid,
   relu∘maxpool∘relu = maxpool∘relu. (Where the input is exactly 0 the relu's
   gradient is 0 and the identity's is 1, but the layer that made the 0 already
   passes no gradient there.) ``relu`` is the only idempotent activation here:
   ``leaky_relu``, ``elu``, ``tanh`` and ``sigmoid`` change a second time.
2. **dropout of rate 0** is removed (the identity in training and evaluation).
3. **Two dropouts in a row merge**: rates p then q keep a unit with probability
   (1-p)(1-q) and scale it by 1/((1-p)(1-q)), which is one dropout of rate
   1-(1-p)(1-q) (rounded to 12 decimals).
4. **Pools that do nothing** are removed: max/avg pool with pool_size 1, stride 1
   and no padding; a globalavgpool whose input is already 1x1.
5. **conv2d padding**: with stride 1 and an odd kernel k, ``"same"`` is ``(k-1)/2``
   pixels a side, so an integer padding of ``(k-1)/2`` is written ``"same"`` and a
   1x1 convolution's ``"same"`` is written ``"valid"``.
6. **An activation right after a max pool** moves before it (when the pool feeds
   only that activation): every activation here is non-decreasing, so
   act(max(x)) = max(act(x)).

The canonical form is a key for comparing models, not a model to train: it is a
valid spec except where a removal leaves a merge reading one layer twice
(``add(x, relu(x))`` with x non-negative is ``add(x, x)``, which the canonical
form keeps as such). ``canonical_hash`` of a spec that no rule changes equals
its ``spec_hash``; ``canonical_hash(canonical_spec(s)) == canonical_hash(s)``.
Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from remap_tb.spec.analysis import Analysis, analyse
from remap_tb.spec.hashing import spec_hash
from remap_tb.spec.schema import INPUT, Limits, layer_inputs, normalise_spec

_NO_LIMITS = Limits(max_params=None, max_depth=None)
MEMO_LIMIT = 100_000  # entries of a ``KnownModels.add_model`` memo before it starts over
# Layers whose output is non-negative whenever all their inputs are.
_KEEPS_SIGN = ("maxpool2d", "avgpool2d", "globalavgpool", "dropout", "add", "concat")
_NON_NEGATIVE_FNS = ("relu", "sigmoid")


@dataclass(frozen=True)
class Canonical:
    """A canonical form: ``spec`` (normal form, no-ops removed) and what was removed or rewritten.

    ``notes`` name layers by their index in the spec given to ``canonicalise``.
    """

    spec: dict
    notes: tuple[str, ...] = ()

    @property
    def hash(self) -> str:
        return spec_hash(self.spec)


@dataclass(eq=False)
class _Node:
    origin: int
    layer: dict
    reads: list = field(default_factory=list)  # _Node or None (the network input)
    shape: tuple[int, ...] | None = None  # output shape


def canonicalise(spec: Any, analysis: Analysis | None = None) -> Canonical:
    """The canonical form of a valid spec (module docstring); ValueError if the spec is invalid.

    ``analysis``: ``analyse(spec)`` when the caller has it already.
    """
    if analysis is None or not analysis.ok:
        analysis = analyse(spec, _NO_LIMITS)
    if not analysis.ok:
        raise ValueError(f"not a valid spec: {analysis.problems[0]}")
    normal = analysis.normalised
    nodes: list[_Node] = []
    for k, layer in enumerate(normal["layers"]):
        node = _Node(k, {key: v for key, v in layer.items() if key != "inputs"}, shape=analysis.layers[k].output_shape)
        node.reads = [nodes[j] if j != INPUT else None for j in layer_inputs(layer, k)]
        nodes.append(node)
    input_shape = analysis.input_shape
    notes = [note for node in nodes if (note := _pad(node))]
    while True:
        note = _rewrite(nodes, input_shape)
        if note is None:
            break
        notes.append(note)
    position = {id(n): i for i, n in enumerate(nodes)}
    layers = []
    for node in nodes:
        layer = dict(node.layer)
        layer["inputs"] = [position[id(r)] if r is not None else INPUT for r in node.reads]
        layers.append(layer)
    canonical = normalise_spec({"schema": normal["schema"], "input": normal["input"], "layers": layers})
    return Canonical(canonical, tuple(notes))


def canonical_spec(spec: Any) -> dict:
    """``canonicalise(spec).spec``."""
    return canonicalise(spec).spec


def canonical_hash(spec: Any) -> str:
    """``spec_hash`` of the canonical form: equal for specs that differ only by no-ops (module docstring).

    Raises ValueError for an invalid spec.
    """
    return canonicalise(spec).hash


def _name(node: _Node) -> str:
    layer = node.layer
    detail = {"activation": "fn", "dropout": "rate", "maxpool2d": "pool_size", "avgpool2d": "pool_size"}.get(layer["type"])
    what = f"{layer['type']} {layer[detail]:g}" if detail == "rate" else (
        f"{layer['type']} {layer[detail]}" if detail else layer["type"])
    return f"layer {node.origin} {what}"


def _pad(node: _Node) -> str | None:
    """Rule 5: rewrite a conv2d padding to its canonical equivalent (in place); the note or None."""
    layer = node.layer
    if layer["type"] != "conv2d" or layer.get("stride", 1) != 1 or layer["kernel_size"] % 2 == 0:
        return None
    half = (layer["kernel_size"] - 1) // 2
    padding = layer["padding"]
    same = padding == "same" or padding == half
    if not same:
        return None
    new = "same" if half > 0 else "valid"
    if padding == new:
        return None
    layer["padding"] = new
    return f"layer {node.origin} conv2d: padding {padding!r} is padding {new!r} for this kernel"


def _non_negative(nodes: list[_Node]) -> dict[int, bool]:
    """Whether each node's output is >= 0 everywhere (rule 1)."""
    out: dict[int, bool] = {}
    for node in nodes:
        t = node.layer["type"]
        if t == "activation":
            out[id(node)] = node.layer["fn"] in _NON_NEGATIVE_FNS
        elif t in _KEEPS_SIGN:
            out[id(node)] = all(r is not None and out[id(r)] for r in node.reads)
        else:
            out[id(node)] = False
    return out


def _consumers(nodes: list[_Node], node: _Node) -> int:
    return sum(1 for n in nodes for r in n.reads if r is node)


def _rewrite(nodes: list[_Node], input_shape: tuple[int, ...] | None) -> str | None:
    """Apply the first rule that matches (in layer order); its note, or None when none does."""
    positive = _non_negative(nodes)
    for position, node in enumerate(nodes):
        layer, t = node.layer, node.layer["type"]
        source = node.reads[0] if len(node.reads) == 1 else None
        single = len(node.reads) == 1
        if t == "activation" and layer["fn"] == "relu" and single and source is not None and positive[id(source)]:
            return _remove(nodes, position, f"{_name(node)} removed: its input ({_name(source)}) is never negative")
        if t == "dropout" and float(layer["rate"]) == 0.0:
            return _remove(nodes, position, f"{_name(node)} removed: a dropout of rate 0 does nothing")
        if t == "dropout" and single and source is not None and source.layer["type"] == "dropout" \
                and _consumers(nodes, source) == 1:
            p, q = float(layer["rate"]), float(source.layer["rate"])
            rate = round(1 - (1 - p) * (1 - q), 12)
            note = f"{_name(source)} and {_name(node)} merged into one dropout of rate {rate:g}"
            node.layer = {**layer, "rate": rate}
            return _remove(nodes, nodes.index(source), note)
        if t in ("maxpool2d", "avgpool2d") and layer["pool_size"] == 1 and layer.get("stride", 1) == 1 \
                and not layer.get("padding", 0):
            return _remove(nodes, position, f"{_name(node)} removed: a 1x1 pool with stride 1 does nothing")
        if t == "globalavgpool":
            shape = source.shape if source is not None else input_shape
            if shape is not None and len(shape) == 3 and shape[1:] == (1, 1):
                return _remove(nodes, position, f"{_name(node)} removed: its input is already 1x1")
        if t == "activation" and single and source is not None and source.layer["type"] == "maxpool2d" \
                and len(source.reads) == 1 and _consumers(nodes, source) == 1:
            return _swap(nodes, source, node, input_shape)
    return None


def _remove(nodes: list[_Node], position: int, note: str) -> str:
    """Drop a single-input node; its consumers read its input."""
    node = nodes.pop(position)
    keep = node.reads[0]
    for other in nodes:
        if any(r is node for r in other.reads):
            other.reads = [keep if r is node else r for r in other.reads]
    return note


def _swap(nodes: list[_Node], pool: _Node, act: _Node, input_shape: tuple[int, ...] | None) -> str:
    """Rule 6: ``pool -> act`` becomes ``act -> pool`` (the act's consumers read the pool)."""
    for other in nodes:
        if any(r is act for r in other.reads):
            other.reads = [pool if r is act else r for r in other.reads]
    source = pool.reads[0]
    act.reads, pool.reads = [source], [act]
    act.shape = source.shape if source is not None else input_shape
    nodes.remove(act)
    nodes.insert(nodes.index(pool), act)
    return f"{_name(act)} moved before {_name(pool)}: an activation after a max pool is the same before it"


class KnownModels(set):
    """Hashes of existing models, spec hashes and canonical hashes alike, that remember whose they are.

    A ``set`` (so code that only tests membership takes it as before) with
    ``owners``: hash -> the run or request id of the model it belongs to, and
    ``exact``: the spec hashes alone (hash -> owner).
    """

    def __init__(self, owners: dict[str, str] | None = None):
        owners = dict(owners or {})
        super().__init__(owners)
        self.owners = owners
        self.exact: dict[str, str] = {}

    def add_model(self, spec: Any, owner: str, digest: str | None = None,
                  memo: dict[str, str] | None = None) -> None:
        """Add a model's spec hash (``digest`` when given) and canonical hash; the first owner of a hash stays.

        ``memo``: spec hash -> canonical hash, filled and read here (the canonical hash depends
        on the normal form only, which the spec hash names), so a caller that keeps it across
        calls canonicalises each model once.
        """
        canonical = None
        try:
            digest = digest or spec_hash(spec)
            canonical = memo.get(digest) if memo is not None else None
            if canonical is None:
                canonical = canonical_hash(spec)
                if memo is not None:
                    if len(memo) >= MEMO_LIMIT:
                        memo.clear()
                    memo[digest] = canonical
        except (KeyError, TypeError, ValueError):
            pass
        if digest:
            self.exact.setdefault(digest, owner)
        for d in (digest, canonical):
            if d:
                self.add(d)
                self.owners.setdefault(d, owner)


def owner_of(known: Any, digests: Any) -> str | None:
    """The owner (run or request id) that ``known`` records for the first of ``digests`` it holds, or None."""
    owners = getattr(known, "owners", None) or {}
    return next((owners[d] for d in digests if d in owners), None)
