"""Which layers of a child architecture can start from its parent's trained weights.

Torch-free: the trainer (``trainer/inherit.py``) copies the tensors this module
names, and tests check the mapping without torch.

Two steps.

1. **Correspondence** (``layer_mapping``): for each child layer, the parent layer
   it comes from, or None (inserted). When the child's change log is the
   operators' own (``remap_tb.spec.operators``: every text is one the operators
   write; their layer numbers are the parent's), it fixes which parent layers
   are gone (``removed layer k``, ``removed residual block layers a-b``,
   ``removed skip connection into layer k``, ``dropped layer k``) and which were
   replaced in place (``replaced layer k``). The parent layers that remain appear
   in the child in the same order, so the child is the kept parent layers with
   ``len(child) - len(kept)`` inserted layers among them; a constrained global
   alignment places them: every kept parent layer matches one child layer of the
   same type (any type for a replaced one), each extra child layer is an
   insertion. Without a usable log (a hand-crafted child, an edited copy, a log
   that does not fit), a free global alignment (Needleman-Wunsch, as the
   dashboard's compare view, ``remap_tb_frontend/src/lib/align.ts``) over layer
   signatures decides: substitution cost 0 for identical layers (type, fields
   and connections as offsets back), 0.5 for the same type with the same
   parameter shapes, 1 for the same type otherwise, never across types; a gap
   costs 1.2. Minimise the total cost; ties keep the diagonal.

2. **Inheritance** (``inheritance``): a child layer inherits when it maps to a
   parent layer of the same type whose parameter (and batchnorm buffer) shapes
   are identical; a dense layer also needs the same input shape (a flatten of a
   differently shaped image would scramble its weights). The implicit classifier
   inherits when the last layer's output shape and the number of classes match.
   Layers without parameters have nothing to inherit; every other layer starts
   fresh.

Keys: the torch submodule of spec layer i is ``"i"`` and the head is
``"classifier"`` (``remap_tb.spec.modules``), so child layer c's tensors are
``f"{c}.weight"``, ... and come from ``f"{p}.weight"``, ... of the parent.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from remap_tb.spec.analysis import Analysis, check
from remap_tb.spec.schema import Limits, layer_inputs

PARAM_TYPES = ("conv2d", "dense", "batchnorm")  # spec layers with parameters (besides the classifier)
CLASSIFIER = "classifier"
GAP = 1.2
_NO_CAPS = Limits(max_params=None, max_depth=None)

_REMOVED = (re.compile(r"^removed layer (\d+)\b"), re.compile(r"^removed skip connection into layer (\d+)\b"),
            re.compile(r"^dropped layer (\d+)\b"))
_BLOCK = re.compile(r"^removed residual block layers? ([\d, -]+) \(")
_REPLACED = re.compile(r"^replaced layer (\d+)\b")
_INSERTED = (re.compile(r"^inserted .* (?:after layer (\d+|None)|at the start)$"),
             re.compile(r"^added skip connection from .* to after layer (\d+|None) \(add"))
_NO_CONSTRAINT = (re.compile(r"^layer \d+ [a-z0-9_]+: "), re.compile(r"^inserted "),
                  re.compile(r"^added skip connection "), re.compile(r"^dropped inserted "),
                  re.compile(r"^dropped a repeated input of "))


@dataclass(frozen=True)
class ChangeLog:
    """What an operators' change log says about the parent's layers: gone, or replaced in place.

    ``after``: the parent layers right after which layers were inserted (-1: at the
    start), or None when some insertion's place is not known.
    """

    removed: frozenset[int]
    replaced: frozenset[int]
    after: frozenset[int] | None = frozenset()


@dataclass(frozen=True)
class Inheritance:
    """What a child takes from its parent.

    ``pairs``: (child layer, parent layer) whose tensors are copied, in child
    order; ``classifier``: whether the head is copied; ``of``: the child's layers
    with parameters, the classifier included; ``mapping``: the full
    correspondence, one parent index or None per child layer.
    """

    pairs: tuple[tuple[int, int], ...]
    classifier: bool
    of: int
    mapping: tuple[int | None, ...]

    @property
    def layers(self) -> int:
        """Layers that inherit, the classifier included."""
        return len(self.pairs) + int(self.classifier)

    def key_map(self) -> dict[str, str]:
        """Child ``state_dict`` key prefix -> parent prefix (``"3."`` -> ``"2."``, ``"classifier."``)."""
        out = {f"{c}.": f"{p}." for c, p in self.pairs}
        if self.classifier:
            out[f"{CLASSIFIER}."] = f"{CLASSIFIER}."
        return out

    def to_json(self, parent_run: str) -> dict[str, Any]:
        """The model record's ``init`` (http_api.md)."""
        return {"from": parent_run, "layers": self.layers, "of": self.of,
                "mapping": [[c, p] for c, p in self.pairs], "classifier": self.classifier}


def parse_changes(changes: Iterable[Any] | None, parent_depth: int) -> ChangeLog | None:
    """The removals and replacements an operators' change log names, or None when it is not one.

    None: no changes, or some text the operators do not write (a hand edit), or a
    layer number outside the parent. ``parent_depth``: the parent's layer count.
    """
    changes = list(changes or [])
    if not changes:
        return None
    removed: set[int] = set()
    replaced: set[int] = set()
    after: set[int] | None = set()
    for text in changes:
        if not isinstance(text, str):
            return None
        found = None
        inserted = next((m for pattern in _INSERTED if (m := pattern.match(text))), None)
        if inserted is not None and after is not None:
            where = inserted.group(1)
            if where == "None":
                after = None  # inserted after an inserted layer
            else:
                after.add(int(where) if where is not None else -1)
                if where is not None and not 0 <= int(where) < parent_depth:
                    return None
        elif text.startswith("dropped inserted "):
            after = None
        for pattern in _REMOVED:
            match = pattern.match(text)
            if match:
                found = [int(match.group(1))]
                removed.update(found)
                break
        if found is None and (match := _BLOCK.match(text)):
            found = _parse_ranges(match.group(1))
            if found is None:
                return None
            removed.update(found)
        if found is None and (match := _REPLACED.match(text)):
            found = [int(match.group(1))]
            replaced.update(found)
        if found is None:
            if not any(p.match(text) for p in _NO_CONSTRAINT):
                return None
            found = [int(m.group(1))] if (m := re.match(r"^layer (\d+) ", text)) else []
        if any(not 0 <= k < parent_depth for k in found):
            return None
    return ChangeLog(frozenset(removed), frozenset(replaced - removed), None if after is None else frozenset(after))


def _parse_ranges(text: str) -> list[int] | None:
    """``3-8, 11`` -> [3, 4, 5, 6, 7, 8, 11] (``operators._ranges`` written back)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            return None
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if high < low:
            return None
        out.extend(range(low, high + 1))
    return out


# --------------------------------------------------------------------------- signatures


def _signature(layer: dict, index: int) -> str:
    """Type, fields and connections as offsets back (``align.ts`` ``specLayerSignature``)."""
    fields = ",".join(f"{k}={layer[k]}" for k in sorted(layer) if k not in ("type", "inputs"))
    inputs = layer_inputs(layer, index)
    offsets = "" if inputs == [index - 1] else "+".join("in" if k < 0 else str(index - k) for k in inputs)
    return f"{layer['type']}|{fields}|{offsets}"


def param_shapes(analysis: Analysis, index: int) -> tuple | None:
    """The parameter and buffer shapes of layer ``index`` (None: no parameters).

    conv2d: weight (F, C, k, k) and bias (F,); dense: weight (U, prod(input)) and
    bias (U,), plus the input shape (the flatten order); batchnorm: weight, bias,
    running mean and variance (C,) and the batch counter.
    """
    layer = analysis.normalised["layers"][index]
    info = analysis.layers[index]
    kind = layer["type"]
    bias = layer.get("bias", True)
    if kind == "conv2d":
        c, f, k = info.input_shape[0], layer["filters"], layer["kernel_size"]
        return ("conv2d", (f, c, k, k), (f,) if bias else None)
    if kind == "dense":
        units = layer["units"]
        return ("dense", tuple(info.input_shape), (units, math.prod(info.input_shape)), (units,) if bias else None)
    if kind == "batchnorm":
        return ("batchnorm", len(info.input_shape), info.input_shape[0])
    return None


def classifier_shape(analysis: Analysis) -> tuple:
    """What the head's weights depend on: the last layer's output shape and the number of classes."""
    last = analysis.layers[-1].output_shape if analysis.layers else analysis.input_shape
    return tuple(last), int(analysis.normalised["input"]["num_classes"])


# --------------------------------------------------------------------------- alignment


def layer_mapping(child: dict, parent: dict, changes: Iterable[Any] | None = None) -> list[int | None]:
    """For each layer of ``child``, the index of the parent layer it corresponds to, or None.

    ``child``, ``parent``: valid specs (raises ``SpecError`` otherwise); ``changes``:
    the child's provenance change log (used when it is the operators' own). The
    mapping is increasing (it never crosses) and matches only layers of one type,
    except a layer the log says was replaced. See the module docstring.

    >>> conv = {"type": "conv2d", "filters": 4, "kernel_size": 3}
    >>> relu = {"type": "activation", "fn": "relu"}
    >>> pool = {"type": "maxpool2d", "pool_size": 2}
    >>> spec = lambda *layers: {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10},
    ...                         "layers": list(layers)}
    >>> layer_mapping(spec(conv, pool), spec(conv, relu, pool), ["removed layer 1 activation (fn relu)"])
    [0, 2]
    """
    return list(_mapping(check(child, _NO_CAPS), check(parent, _NO_CAPS), changes))


def _mapping(child: Analysis, parent: Analysis, changes: Iterable[Any] | None) -> tuple[int | None, ...]:
    c_layers, p_layers = child.normalised["layers"], parent.normalised["layers"]
    c_sig = [_signature(layer, i) for i, layer in enumerate(c_layers)]
    p_sig = [_signature(layer, i) for i, layer in enumerate(p_layers)]
    c_shape = [param_shapes(child, i) for i in range(len(c_layers))]
    p_shape = [param_shapes(parent, i) for i in range(len(p_layers))]

    def cost(p: int, c: int, replaced: bool = False) -> float:
        if c_layers[c]["type"] != p_layers[p]["type"]:
            return 1.0 if replaced else math.inf
        if c_sig[c] == p_sig[p]:
            return 0.0
        return 0.5 if c_shape[c] == p_shape[p] else 1.0

    log = parse_changes(changes, len(p_layers))
    if log is not None:
        kept = [p for p in range(len(p_layers)) if p not in log.removed]
        gaps = None if log.after is None else {sum(1 for k in kept if k <= a) for a in log.after}
        found = _constrained(kept, len(c_layers), lambda p, c: cost(p, c, p in log.replaced), gaps)
        if found is not None:
            return found
    return _free(len(p_layers), len(c_layers), cost)


def _constrained(kept: Sequence[int], n_child: int, cost, gaps: set[int] | None = None) -> tuple[int | None, ...] | None:
    """Every ``kept`` parent layer matched, in order, to one child layer; the other child layers inserted.

    D[i][j]: least cost of kept[:i] against child[:j]; D[i][j] = min(D[i-1][j-1] + cost,
    D[i][j-1] + g(i)) where g(i), the cost of an insertion between kept[i-1] and kept[i],
    is GAP where the log inserted something (``gaps``, None: anywhere) and GAP + 1
    elsewhere. None when no such alignment exists (the log does not fit).
    """
    n = len(kept)
    if n > n_child:
        return None
    inf = math.inf
    gap = [GAP if gaps is None or i in gaps else GAP + 1.0 for i in range(n + 1)]
    D = [[inf] * (n_child + 1) for _ in range(n + 1)]
    D[0] = [j * gap[0] for j in range(n_child + 1)]
    for i in range(1, n + 1):
        for j in range(i, n_child + 1):
            D[i][j] = min(D[i - 1][j - 1] + cost(kept[i - 1], j - 1), D[i][j - 1] + gap[i])
    if D[n][n_child] == inf:
        return None
    mapping: list[int | None] = [None] * n_child
    i, j = n, n_child
    while i > 0:
        if D[i][j] == D[i - 1][j - 1] + cost(kept[i - 1], j - 1):
            mapping[j - 1] = kept[i - 1]
            i -= 1
        j -= 1
    return tuple(mapping)


def _free(n_parent: int, n_child: int, cost) -> tuple[int | None, ...]:
    """Needleman-Wunsch of the parent's layers against the child's; substitutions only within a type."""
    D = [[0.0] * (n_child + 1) for _ in range(n_parent + 1)]
    for i in range(1, n_parent + 1):
        D[i][0] = i * GAP
    for j in range(1, n_child + 1):
        D[0][j] = j * GAP
    for i in range(1, n_parent + 1):
        for j in range(1, n_child + 1):
            D[i][j] = min(D[i - 1][j - 1] + cost(i - 1, j - 1), D[i - 1][j] + GAP, D[i][j - 1] + GAP)
    mapping: list[int | None] = [None] * n_child
    i, j = n_parent, n_child
    while i > 0 and j > 0:
        if abs(D[i][j] - (D[i - 1][j - 1] + cost(i - 1, j - 1))) < 1e-9:
            mapping[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif abs(D[i][j] - (D[i - 1][j] + GAP)) < 1e-9:
            i -= 1
        else:
            j -= 1
    return tuple(mapping)


# --------------------------------------------------------------------------- inheritance


def inheritance(child: dict, parent: dict, changes: Iterable[Any] | None = None) -> Inheritance:
    """Which child layers start from which parent layers' weights (module docstring, step 2).

    ``child``, ``parent``: valid specs; ``changes``: the child's change log.
    Raises ``SpecError`` for an invalid spec.

    >>> spec = lambda rate: {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10},
    ...     "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "dropout", "rate": rate}]}
    >>> found = inheritance(spec(0.5), spec(0.25), ["layer 1 dropout: rate 0.25 → 0.5"])
    >>> found.pairs, found.classifier, found.layers, found.of
    (((0, 0),), True, 2, 2)
    """
    c, p = check(child, _NO_CAPS), check(parent, _NO_CAPS)
    mapping = _mapping(c, p, changes)
    c_layers, p_layers = c.normalised["layers"], p.normalised["layers"]
    pairs = []
    of = 1  # the classifier
    for i, j in enumerate(mapping):
        shapes = param_shapes(c, i)
        if shapes is None:
            continue
        of += 1
        if j is not None and c_layers[i]["type"] == p_layers[j]["type"] and shapes == param_shapes(p, j):
            pairs.append((i, j))
    return Inheritance(tuple(pairs), classifier_shape(c) == classifier_shape(p), of, mapping)
