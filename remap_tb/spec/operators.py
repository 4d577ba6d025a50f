"""Local-search operators: ablations and variations of a model, alone or around a region.

REMAP (Cashman et al. 2019, "Ablate, Variate, and Contemplate", §5.2) lets a
user pick a model on the map and ask for

- **ablations**: one child per selected layer with that layer removed;
- **variations**: N children, each with 1..k random changes drawn from
  {replace, reparameterise, remove, insert} on the selected layers, and on
  request {add_skip, remove_skip}.

Layer indexes in options and in the change texts always refer to the
*parent's* layers (0-based), however earlier changes shifted positions.

Graphs (schema 2). While a child is edited each layer holds references to the
layers it reads, not indexes, so removing or inserting layers re-indexes every
``inputs`` for free. Removing a layer reconnects its consumers to its *main
input*: its only input; the first input of a ``concat``; for an ``add`` (whose
inputs are unordered) the input on the longest path from the network input,
i.e. the residual branch, not the shortcut. Removing the last layer makes its
main input the output. Then a merge left with one distinct input is dropped
too, and so is every layer that no longer leads to the output (the other
branches of a removed merge); each such drop is recorded among the changes
("dropped ..."). Inserting a layer after layer k puts it on k's output: every
layer that read k reads the new layer. A replaced layer keeps its inputs;
merges are never replaced by a single-input layer.

Every child is analysed (``analysis.analyse``) and checked against the user's
``Constraints`` before anyone sees it. A child that no longer fits is
*repaired* where that is unambiguous: a max/avg pool the changes did not touch
that is now larger than its input is dropped, and the drop is recorded among
the changes. Anything else that does not fit makes the child unusable, with the
reason in words. Orphaned activations/dropouts (their conv was removed) are kept:
they are still valid layers.

Duplicates. A child is a duplicate when its spec hash or its canonical hash
(``canonical.py``: the normal form with no-ops such as a relu right after a relu
removed) equals that of the parent, of an existing model (``exclude_hashes``;
a ``canonical.KnownModels`` also says whose each hash is) or of a child made
before. Duplicates of a model with an id carry it as ``duplicate_of``.

Randomness comes only from ``random.Random(seed)``: the same parent, options
and seed give the same children. Torch-free.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from remap_tb.spec.analysis import Analysis, analyse
from remap_tb.spec.canonical import KnownModels, canonicalise, owner_of
from remap_tb.spec.constraints import Constraints, reason_kind
from remap_tb.spec.glyph import glyph
from remap_tb.spec.hashing import spec_hash
from remap_tb.spec.sampler import FILTERS, KERNELS, POOLS, RATES, UNITS, draw_layer
from remap_tb.spec.schema import (
    ACTIVATIONS, DEFAULT_LIMITS, INPUT, LAYER_FIELDS, LAYER_TYPES, MAX_CHANNELS, MAX_KERNEL, MAX_UNITS,
    MERGE_TYPES, CHAIN_SCHEMA, PADDINGS, SPATIAL_TYPES, Limits, default_inputs, field_default, layer_inputs,
    spec_schema,
)

KINDS = ("ablation", "variation")
CHANGE_TYPES = ("replace", "reparameterise", "remove", "insert", "add_skip", "remove_skip")
# What a variation draws from when ``change_types`` is not given: the skip changes are asked for
# explicitly, so a seed gives the same children of a chain as before they existed.
DEFAULT_CHANGE_TYPES = ("replace", "reparameterise", "remove", "insert")
MAX_COUNT = 100
MAX_CHANGES = 10
MAX_PARENTS = 200
TRIES_PER_CANDIDATE = 100  # default bound on draws: this many per wanted candidate

_FLATTENING = ("dense", "globalavgpool")
_RESIZABLE_POOLS = ("maxpool2d", "avgpool2d")


@dataclass(frozen=True)
class Candidate:
    """One child: its (normalised) spec, what changed, and whether it can be trained."""

    spec: dict
    changes: tuple[str, ...]
    valid: bool
    reason: str | None = None
    key: str | None = None  # spec hash
    params: int | None = None
    analysis: Analysis | None = field(default=None, compare=False, repr=False)
    duplicate_of: str | None = None  # the run or request id of the model this child duplicates

    def to_json(self, parent: str) -> dict[str, Any]:
        """The ``generate`` response entry (http_api.md)."""
        return {
            "key": self.key,
            "parent": parent,
            "spec": self.spec,
            "params": self.params,
            "changes": list(self.changes),
            "valid": self.valid,
            "reason": self.reason,
            "duplicate_of": self.duplicate_of,
            "glyph": glyph(self.spec, self.analysis) if self.analysis is not None else [],
        }


class Candidates(list):
    """A list of ``Candidate`` that also says how it was made.

    ``wanted``: how many were asked for; ``tries``: draws made; ``rejected``:
    reason kind -> number of draws (variation) or children (ablation) not usable;
    ``duplicates``: run or request id -> draws or children rejected as the same model;
    ``sources``: for a region, the position of each candidate's parent.
    """

    def __init__(self, items: Iterable[Candidate] = (), wanted: int = 0, tries: int = 0,
                 rejected: Counter | None = None, duplicates: Counter | None = None):
        super().__init__(items)
        self.wanted = wanted
        self.tries = tries
        self.rejected = rejected if rejected is not None else Counter()
        self.duplicates = duplicates if duplicates is not None else Counter()
        self.sources: list[int] = []

    @property
    def made(self) -> int:
        return sum(1 for c in self if c.valid)

    def summary(self, kind: str = "variation", parents: int = 1, blocks: bool = False) -> str:
        of = f" of {parents} parents" if parents > 1 else ""
        if kind == "ablation" and blocks and not self.wanted:
            return f"no residual block (add layer) to remove in the parent{'s' if parents > 1 else ''}"
        if kind == "ablation":
            what = "block ablation(s)" if blocks else "ablation(s)"
            text = f"{self.made} of {self.wanted} {what}{of} can be trained"
            label = "not usable"
        else:
            text = f"made {self.made} of {self.wanted} variation(s){of} in {self.tries} draw(s)"
            label = "rejected"
        if self.rejected:
            reasons = "; ".join(f"{n}x {reason}" for reason, n in self.rejected.most_common(6))
            text += f"; {label}: {reasons}"
        if self.duplicates:
            owners = ", ".join(f"{owner} ({n}x)" if n > 1 else owner for owner, n in self.duplicates.most_common(6))
            text += f"; same model as {owners}"
        return text

    def duplicates_json(self) -> list[dict[str, Any]]:
        """``[{"duplicate_of": id, "count": n}, ...]``, most frequent first (http_api.md)."""
        return [{"duplicate_of": owner, "count": n} for owner, n in self.duplicates.most_common()]


@dataclass(frozen=True)
class Options:
    """Validated ``generate`` options (http_api.md)."""

    layers: tuple[int, ...] | None = None
    count: int = 5
    max_changes: int = 3
    change_types: tuple[str, ...] = DEFAULT_CHANGE_TYPES
    seed: int = 0
    blocks: bool = False  # ablation: remove whole residual blocks instead of single layers


# --------------------------------------------------------------------------- words


def describe(layer: dict) -> str:
    """``conv2d (filters 16, kernel_size 3)``: the type and its non-default fields."""
    layer_type = layer["type"]
    parts = []
    for f in LAYER_FIELDS[layer_type]:
        if f.name not in layer:
            continue
        value = layer[f.name]
        if not f.required and value == field_default(layer_type, f, layer):
            continue
        parts.append(f"{f.name} {_fmt(value)}")
    return f"{layer_type} ({', '.join(parts)})" if parts else layer_type


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


# --------------------------------------------------------------------------- shared pieces


@dataclass(eq=False)
class _Slot:
    """A layer of a child being edited.

    ``origin``: its index in the parent (None: inserted); ``touched``: a change
    acted on it; ``layer``: its fields without ``inputs``; ``reads``: the slots
    it reads, None for the network input (so positions can shift freely).
    """

    origin: int | None
    layer: dict
    touched: bool = False
    reads: list = field(default_factory=list)


def _slots(layers: list[dict]) -> list[_Slot]:
    """Editable slots of a (normalised, valid) parent's layers."""
    slots: list[_Slot] = []
    for k, layer in enumerate(layers):
        slot = _Slot(k, {key: value for key, value in layer.items() if key != "inputs"})
        slot.reads = [slots[j] if j != INPUT else None for j in layer_inputs(layer, k)]
        slots.append(slot)
    return slots


def _layers(slots: list[_Slot]) -> list[dict]:
    """The spec layers of the slots, ``inputs`` written only where they are not the previous layer."""
    position = {id(slot): i for i, slot in enumerate(slots)}
    out = []
    for i, slot in enumerate(slots):
        inputs = [position[id(r)] if r is not None else INPUT for r in slot.reads]
        if slot.layer["type"] == "add":
            inputs.sort()  # as in the normal form: a sum does not depend on the order
        layer = dict(slot.layer)
        if inputs != default_inputs(i):
            layer["inputs"] = inputs
        out.append(layer)
    return out


def _name(slot: _Slot) -> str:
    """``layer 3 conv2d (filters 8, kernel_size 3)`` (a parent layer) or ``inserted dropout (rate 0.25)``."""
    where = f"layer {slot.origin}" if slot.origin is not None else "inserted"
    return f"{where} {describe(slot.layer)}"


def _replace_reads(slots: list[_Slot], old: _Slot | None, new: _Slot | None) -> None:
    """Every slot that read ``old`` reads ``new`` instead."""
    for slot in slots:
        if any(r is old for r in slot.reads):
            slot.reads = [new if r is old else r for r in slot.reads]


def _main_input(slots: list[_Slot], slot: _Slot) -> _Slot | None:
    """What a slot's consumers read once it is gone (see the module docstring)."""
    if slot.layer["type"] != "add" or len(slot.reads) < 2:
        return slot.reads[0] if slot.reads else None
    longest: dict[int, int] = {}
    for s in slots:
        longest[id(s)] = 1 + max((longest.get(id(r), 0) if r is not None else 0 for r in s.reads), default=0)
    best = max(longest.get(id(r), 0) if r is not None else 0 for r in slot.reads)
    return next(r for r in slot.reads if (longest.get(id(r), 0) if r is not None else 0) == best)


def _cut(slots: list[_Slot], position: int) -> list[str]:
    """Remove ``slots[position]``, reconnect its consumers to its main input, tidy up; the notes of the tidying."""
    slot = slots[position]
    keep = _main_input(slots, slot)
    was_output = position == len(slots) - 1
    del slots[position]
    _replace_reads(slots, slot, keep)
    return _tidy(slots, keep if was_output else (slots[-1] if slots else None))


def _tidy(slots: list[_Slot], output: _Slot | None) -> list[str]:
    """Drop merges left with one distinct input and every layer not on a path to ``output``; one note per drop.

    ``output`` (None: the network input) becomes the last slot.
    """
    notes: list[str] = []
    changed = True
    while changed:
        changed = False
        for position, slot in enumerate(slots):
            if slot.layer["type"] not in MERGE_TYPES:
                continue
            distinct: list[_Slot | None] = []
            for r in slot.reads:
                if not any(r is d for d in distinct):
                    distinct.append(r)
            if len(distinct) >= 2:
                if len(distinct) < len(slot.reads):
                    notes.append(f"dropped a repeated input of {_name(slot)}")
                    slot.reads = distinct
                continue
            notes.append(f"dropped {_name(slot)}: its inputs became the same layer")
            del slots[position]
            _replace_reads(slots, slot, distinct[0])
            if slot is output:
                output = distinct[0]
            changed = True
            break
    live: set[int] = set()
    stack = [output] if output is not None else []
    while stack:
        slot = stack.pop()
        if id(slot) in live:
            continue
        live.add(id(slot))
        stack.extend(r for r in slot.reads if r is not None)
    notes.extend(f"dropped {_name(s)}: no longer used by the output" for s in slots if id(s) not in live)
    slots[:] = [s for s in slots if id(s) in live]
    return notes


def _block(slots: list[_Slot], position: int) -> tuple[list[_Slot], _Slot | None]:
    """The residual block that ends in the ``add`` at ``position``: (its layers in order, its input).

    The block input is the add's immediate dominator (the last layer every path
    from the network input to the add passes through); the block is the add and
    the layers between the two that nothing outside the block reads.
    """
    index = {id(s): i for i, s in enumerate(slots)}

    def at(r: _Slot | None) -> int:
        return index[id(r)] if r is not None else INPUT

    dominators: dict[int, set[int]] = {INPUT: {INPUT}}
    for i, slot in enumerate(slots[:position + 1]):
        common = set.intersection(*(dominators[at(r)] for r in slot.reads)) if slot.reads else {INPUT}
        dominators[i] = common | {i}
    start = max(dominators[position] - {position})
    ancestors = {position}
    for i in range(position, -1, -1):
        if i in ancestors:
            ancestors.update(at(r) for r in slots[i].reads)
    members = {i for i in ancestors if i > start and start in dominators[i]}
    changed = True
    while changed:  # a layer that something outside the block reads stays, and so do its inputs
        changed = False
        for i in sorted(members - {position}):
            if any(any(r is slots[i] for r in s.reads) for j, s in enumerate(slots) if j not in members):
                members.discard(i)
                changed = True
    return [slots[i] for i in sorted(members)], slots[start] if start != INPUT else None


def _cut_block(slots: list[_Slot], position: int) -> tuple[list[_Slot], list[str]]:
    """Remove the residual block ending at ``slots[position]``; (its layers, notes of the tidying)."""
    members, start = _block(slots, position)
    add = slots[position]
    was_output = position == len(slots) - 1
    slots[:] = [s for s in slots if not any(s is m for m in members)]
    _replace_reads(slots, add, start)
    return members, _tidy(slots, start if was_output else (slots[-1] if slots else None))


def _ranges(indexes: list[int]) -> str:
    """``3-8, 11`` for [3, 4, 5, 6, 7, 8, 11]."""
    runs: list[list[int]] = []
    for i in sorted(indexes):
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _parent(spec: Any, limits: Limits) -> dict:
    """The normalised parent spec; ValueError if it is not a valid spec."""
    analysis = analyse(spec, limits)
    if not analysis.ok:
        raise ValueError(f"the parent is not a valid spec: {analysis.problems[0]}")
    return analysis.normalised


def _selected(layers: Iterable[int] | None, depth: int) -> tuple[int, ...]:
    if layers is None:
        return tuple(range(depth))
    out = []
    for index in layers:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < depth:
            raise ValueError(f"layer index {index!r:.20} is out of range (the parent has {depth} layers)")
        if index not in out:
            out.append(index)
    return tuple(sorted(out))


def _fit(parent: dict, slots: list[_Slot], limits: Limits) -> tuple[dict, Analysis, list[str]]:
    """Analyse the child; drop untouched parent pools that no longer fit their input.

    Returns the child spec (normalised when valid), its analysis (``ok`` or the
    first remaining problem) and one note per dropped pool. Dropping a pool only
    makes what follows larger, so each drop can only fix, never cause, a later
    shape problem in a chain (in a graph a merge may still disagree).
    """
    notes: list[str] = []
    while True:
        layers = _layers(slots)
        spec = {"schema": spec_schema(layers), "input": parent["input"], "layers": layers}
        analysis = analyse(spec, limits)
        if analysis.ok:
            return analysis.normalised, analysis, notes
        first = next((p for p in analysis.problems if p.index is not None), None)
        if first is None:
            return spec, analysis, notes
        slot = slots[first.index]
        shape = analysis.layers[first.index].input_shape
        if (slot.origin is None or slot.touched or slot.layer["type"] not in _RESIZABLE_POOLS
                or shape is None or len(shape) != 3 or slot.layer["pool_size"] <= min(shape[1], shape[2])):
            return spec, analysis, notes
        notes.append(f"dropped layer {slot.origin} {describe(slot.layer)}: "
                     f"larger than its {shape[1]}x{shape[2]} input after the change")
        notes.extend(_cut(slots, first.index))


def _judge(spec: dict, analysis: Analysis, constraints: Constraints) -> str | None:
    """Why the child cannot be trained, or None."""
    if not analysis.ok:
        return str(analysis.problems[0])
    violations = constraints.violations(spec, analysis)
    return "; ".join(violations) if violations else None


def _candidate(spec: dict, analysis: Analysis, changes: list[str], reason: str | None,
               duplicate_of: str | None = None) -> Candidate:
    return Candidate(spec, tuple(changes), reason is None, reason, spec_hash(spec), analysis.total_params, analysis,
                     duplicate_of)


def _keys(spec: dict, analysis: Analysis) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the child's spec hash and canonical hash, the notes of the no-ops its canonical form removes)."""
    key = spec_hash(spec)
    try:
        canonical = canonicalise(spec, analysis)
    except ValueError:
        return (key,), ()
    return ((key, canonical.hash) if canonical.hash != key else (key,)), canonical.notes


def _no_ops(keys: tuple[str, ...], known: Any, notes: tuple[str, ...]) -> str:
    """`` once no-ops are removed (...)`` when only the canonical hash matched, else ``""``."""
    if keys[0] in known or not notes:
        return ""
    shown = sorted(notes, key=lambda note: "padding" in note)[:2]  # removals first, padding rewrites last
    more = f"; {len(notes) - 2} more" if len(notes) > 2 else ""
    return f" once no-ops are removed ({'; '.join(shown)}{more})"


# --------------------------------------------------------------------------- ablation


def ablations(spec: dict, layers: Iterable[int] | None = None, constraints: Constraints = Constraints(),
              exclude_hashes: Iterable[str] = frozenset(), limits: Limits = DEFAULT_LIMITS,
              blocks: bool = False, parent_id: str | None = None) -> Candidates:
    """One child per selected layer (default: every layer) with that layer removed.

    The layer's consumers read its main input instead, and layers that no longer
    lead to the output are dropped too (module docstring). With ``blocks``: one
    child per residual block (an ``add`` and the layers only its branches use,
    see ``_block``) that holds a selected layer, with the whole block removed and
    its consumers reading the block's input.

    Every child is returned; the ones that cannot be trained have ``valid`` False
    and a ``reason`` (over budget, a duplicate of an existing model or of an
    earlier child, a shape conflict). A duplicate of the parent (``parent_id``) or of
    an existing model whose id ``exclude_hashes`` records has ``duplicate_of``. Raises
    ValueError for an invalid parent or a bad layer index.

    >>> spec = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10},
    ...         "layers": [{"type": "conv2d", "filters": 8, "kernel_size": 3},
    ...                    {"type": "maxpool2d", "pool_size": 2}]}
    >>> [c.changes for c in ablations(spec)]
    [('removed layer 0 conv2d (filters 8, kernel_size 3)',), ('removed layer 1 maxpool2d (pool_size 2)',)]
    """
    parent = _parent(spec, limits)
    parent_layers = parent["layers"]
    selected = _selected(layers, len(parent_layers))
    children: list[tuple[int, list[_Slot], list[str]]] = []  # (index named in duplicates, slots, changes)
    if blocks:
        for index, layer in enumerate(parent_layers):
            if layer["type"] != "add":
                continue
            slots = _slots(parent_layers)
            members, notes = _cut_block(slots, index)
            origins = [m.origin for m in members]
            if layers is not None and not set(origins) & set(selected):
                continue
            what = "layer" if len(origins) == 1 else "layers"
            types = ", ".join(m.layer["type"] for m in members)
            children.append((index, slots, [f"removed residual block {what} {_ranges(origins)} ({types})", *notes]))
    else:
        for index in selected:
            slots = _slots(parent_layers)
            notes = _cut(slots, index)
            children.append((index, slots, [f"removed layer {index} {describe(parent_layers[index])}", *notes]))
    exclude = exclude_hashes if isinstance(exclude_hashes, (set, frozenset)) else set(exclude_hashes)
    parent_keys_all, parent_no_ops = _keys(parent, analyse(parent, limits))
    parent_keys, parent_keys_exact = set(parent_keys_all), parent_keys_all[0]
    first_with: dict[str, int] = {}
    out = Candidates(wanted=len(children), tries=len(children))
    for index, slots, changes in children:
        child, analysis, notes = _fit(parent, slots, limits)
        changes = [*changes, *notes]
        reason = _judge(child, analysis, constraints)
        keys, no_ops = _keys(child, analysis) if reason is None else ((spec_hash(child),), ())
        owner = None
        if reason is None:
            if parent_keys.intersection(keys):
                reason = "same model as the parent" + ("" if keys[0] == parent_keys_exact else
                                                       _no_ops(keys, (), no_ops or parent_no_ops))
                owner = parent_id
            elif exclude.intersection(keys):
                owner = owner_of(exclude, keys)
                reason = (f"same model as existing model {owner}" if owner else "same model as an existing model") \
                    + _no_ops(keys, exclude, no_ops)
            elif any(k in first_with for k in keys):
                what = "the block ending at layer" if blocks else "layer"
                earlier = next(first_with[k] for k in keys if k in first_with)
                reason = f"same model as removing {what} {earlier}" + _no_ops(keys, first_with, no_ops)
        for k in keys:
            first_with.setdefault(k, index)
        if reason is not None:
            duplicate = reason.startswith("same model as removing")
            kind = "same model as another ablation" if duplicate else (
                "same model as an existing model" if reason.startswith("same model as existing model")
                else "same model as the parent" if reason.startswith("same model as the parent")
                else reason_kind(reason))
            out.rejected[kind] += 1
            if owner:
                out.duplicates[owner] += 1
        out.append(_candidate(child, analysis, changes, reason, owner))
    return out


# --------------------------------------------------------------------------- variation


class _Variator:
    """Draws variations of one parent; shares the set of keys already made with its siblings."""

    def __init__(self, parent: dict, rng: random.Random, selected: tuple[int, ...], start_ok: bool,
                 max_changes: int, change_types: tuple[str, ...], constraints: Constraints, limits: Limits,
                 exclude: set[str], parents: dict[str, str], made: set[str], rejected: Counter,
                 duplicates: Counter | None = None):
        self.parent = parent
        self.rng = rng
        self.selected = frozenset(selected)
        self.start_ok = start_ok
        self.max_changes = max_changes
        self.change_types = change_types
        self.constraints = constraints
        self.allowed = frozenset(constraints.allowed_types) if constraints.allowed_types is not None else frozenset(LAYER_TYPES)
        self.limits = limits
        self.exclude = exclude
        self.parents = parents
        self.made = made
        self.rejected = rejected
        self.duplicates = duplicates if duplicates is not None else Counter()
        self._skips: dict[int, list[tuple[int, tuple[int, ...] | None]]] = {}  # add_skip targets, see _skip_pairs

    def draw(self, budget: int) -> tuple[Candidate | None, int]:
        """Up to ``budget`` draws until one valid new candidate; (candidate or None, draws used)."""
        for used in range(1, budget + 1):
            candidate = self.attempt()
            if candidate is not None:
                return candidate, used
        return None, budget

    def attempt(self) -> Candidate | None:
        slots = _slots(self.parent["layers"])
        changes: list[str] = []
        for _ in range(self.rng.randint(1, self.max_changes)):
            options = [(t, targets) for t in self.change_types if (targets := self._targets(t, slots))]
            if not options:
                break
            change_type, targets = self.rng.choice(options)
            text = getattr(self, "_" + change_type)(slots, self.rng.choice(targets))
            if isinstance(text, list):
                changes.extend(text)
            elif text:
                changes.append(text)
        if not changes:
            return self._reject("no change is possible on the selected layers")
        child, analysis, notes = _fit(self.parent, slots, self.limits)
        reason = _judge(child, analysis, self.constraints)
        if reason is not None:
            return self._reject(reason_kind(reason))
        keys, _ = _keys(child, analysis)
        parent = next((self.parents[k] for k in keys if k in self.parents), None)
        if parent is not None:
            if parent:
                self.duplicates[parent] += 1
            return self._reject("same model as a parent")
        if self.exclude.intersection(keys):
            owner = owner_of(self.exclude, keys)
            if owner:
                self.duplicates[owner] += 1
            return self._reject("duplicate of an existing model")
        if self.made.intersection(keys):
            return self._reject("duplicate of another candidate")
        self.made.update(keys)
        return _candidate(child, analysis, changes + notes, None)

    def _reject(self, kind: str) -> None:
        self.rejected[kind] += 1
        return None

    def _targets(self, change_type: str, slots: list[_Slot]) -> list[int]:
        """Positions a change of this type may act on (insert, add_skip: *after* it; -1 is the start)."""
        if change_type == "insert":
            targets = [p for p, s in enumerate(slots) if s.origin in self.selected]
            return ([-1] if self.start_ok else []) + targets
        if change_type == "add_skip":
            self._skips = self._skip_pairs(slots)
            return sorted(self._skips)
        fresh = [p for p, s in enumerate(slots) if s.origin in self.selected and not s.touched]
        if change_type == "reparameterise":
            return [p for p in fresh if _fields(slots[p].layer)]
        if change_type == "replace":
            return [p for p in fresh if slots[p].layer["type"] not in MERGE_TYPES]
        if change_type == "remove_skip":
            return [p for p in fresh if slots[p].layer["type"] == "add"]
        return fresh

    def _skip_pairs(self, slots: list[_Slot]) -> dict[int, list[tuple[int, tuple[int, ...] | None]]]:
        """Where a skip connection can go: {b: [(a, projection or None), ...]} for positions a < b.

        a and b are selected parent layers (a may be -1, the network input, when
        the start is selected). The add after b reads b and a when their shapes
        are equal; an image a whose side is s times b's (s integral, the same for
        height and width) is projected by a 1x1 conv2d with stride s and b's
        channels: the projection is ``(C_a, C_b, s)``. Other pairs are skipped.
        """
        if "add" not in self.allowed:
            return {}
        layers = _layers(slots)
        analysis = analyse({"schema": spec_schema(layers), "input": self.parent["input"], "layers": layers},
                           Limits(max_params=None, max_depth=None))
        shapes = {INPUT: analysis.input_shape, **{info.index: info.output_shape for info in analysis.layers}}
        starts = ([INPUT] if self.start_ok else []) + [
            p for p, s in enumerate(slots) if s.origin in self.selected]
        pairs: dict[int, list[tuple[int, tuple[int, ...] | None]]] = {}
        for b, slot in enumerate(slots):
            if slot.origin not in self.selected or shapes.get(b) is None:
                continue
            for a in starts:
                if a >= b or shapes.get(a) is None:
                    continue
                fits, projection = _skip_shape(shapes[a], shapes[b])
                if fits and (projection is None or "conv2d" in self.allowed):
                    pairs.setdefault(b, []).append((a, projection))
        return pairs

    def _allowed_at(self, slots: list[_Slot], position: int, after: int) -> tuple[str | None, bool, frozenset[str]]:
        """(previous type, flat, allowed types) for a layer placed at ``position`` with ``slots[after:]`` following."""
        before = slots[:position]
        prev = before[-1].layer["type"] if before else None
        flat = any(s.layer["type"] in _FLATTENING for s in before)
        allowed = self.allowed
        if any(s.layer["type"] in SPATIAL_TYPES for s in slots[after:]):
            allowed = allowed - set(_FLATTENING)
        return prev, flat, allowed

    def _replace(self, slots: list[_Slot], p: int) -> str | None:
        slot = slots[p]
        prev, flat, allowed = self._allowed_at(slots, p, p + 1)
        for _ in range(5):
            try:
                new = draw_layer(prev, self.rng, allowed, flat)
            except ValueError:
                return None
            new = _complete(new)
            if new != slot.layer:
                break
        else:
            return None
        text = f"replaced layer {slot.origin} {slot.layer['type']} with {describe(new)}"
        slot.layer, slot.touched = new, True  # in place: its consumers keep reading it, and it keeps its inputs
        return text

    def _reparameterise(self, slots: list[_Slot], p: int) -> str:
        slot = slots[p]
        layer = dict(slot.layer)
        name = self.rng.choice(_fields(layer))
        old = layer[name]
        new = self.rng.choice(_values(layer, name))
        layer[name] = new
        if name == "pool_size" and layer.get("stride") == old:
            layer["stride"] = new  # a default stride follows the pool size
        padding = layer.get("padding")
        if name == "kernel_size" and isinstance(padding, int) and padding == old // 2:
            layer["padding"] = new // 2  # "same"-like integer padding (as in residual blocks) follows the kernel
        slot.layer, slot.touched = layer, True
        return f"layer {slot.origin} {layer['type']}: {name} {_fmt(old)} → {_fmt(new)}"

    def _remove(self, slots: list[_Slot], p: int) -> list[str]:
        slot = slots[p]
        return [f"removed layer {slot.origin} {describe(slot.layer)}", *_cut(slots, p)]

    def _remove_skip(self, slots: list[_Slot], p: int) -> list[str]:
        return [f"removed skip connection into layer {slots[p].origin} add", *_cut(slots, p)]

    def _add_skip(self, slots: list[_Slot], p: int) -> str:
        a, projection = self.rng.choice(self._skips[p])
        end = slots[p]
        start = slots[a] if a != INPUT else None
        add = _Slot(None, {"type": "add"}, touched=True)
        _replace_reads(slots, end, add)
        source = "the input" if start is None else f"layer {start.origin}"
        if projection is None:
            add.reads = [end, start]
            slots.insert(p + 1, add)
            return f"added skip connection from {source} to after layer {end.origin} (add)"
        c_in, c_out, stride = projection
        conv = _Slot(None, {"type": "conv2d", "filters": c_out, "kernel_size": 1, "stride": stride,
                            "padding": "valid", "bias": False}, touched=True, reads=[start])
        add.reads = [end, conv]
        slots[p + 1:p + 1] = [conv, add]
        strided = f", stride {stride}" if stride > 1 else ""
        return (f"added skip connection from {source} to after layer {end.origin} "
                f"(add, with 1x1 conv2d projection {c_in}→{c_out}{strided})")

    def _insert(self, slots: list[_Slot], p: int) -> str | None:
        prev, flat, allowed = self._allowed_at(slots, p + 1, p + 1)
        try:
            new = _complete(draw_layer(prev, self.rng, allowed, flat))
        except ValueError:
            return None
        where = "at the start" if p < 0 else f"after layer {slots[p].origin}"
        source = slots[p] if p >= 0 else None
        inserted = _Slot(None, new, touched=True, reads=[source])
        _replace_reads(slots, source, inserted)  # on the output of layer p: all its consumers read the new layer
        slots.insert(p + 1, inserted)
        return f"inserted {describe(new)} {where}"


def _skip_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[bool, tuple[int, int, int] | None]:
    """Whether an add can join outputs of shapes ``a`` (earlier) and ``b``: (fits, projection or None).

    Equal shapes need no projection. Images whose sides shrink by one integral
    factor s (``H_a = s·H_b``, ``W_a = s·W_b``) or whose channels differ take a
    1x1 conv2d projection ``(C_a, C_b, s)``: with stride s and no padding it
    maps ``H_a`` to ``(H_a - 1)//s + 1 = H_b``.
    """
    if a == b:
        return True, None
    if len(a) != 3 or len(b) != 3:
        return False, None
    (c_a, h_a, w_a), (c_b, h_b, w_b) = a, b
    if h_a % h_b or w_a % w_b or h_a // h_b != w_a // w_b or h_a // h_b > MAX_KERNEL:
        return False, None
    return True, (c_a, c_b, h_a // h_b)


def _complete(layer: dict) -> dict:
    """A drawn layer with its optional fields filled in (as in a normalised spec)."""
    out = {"type": layer["type"]}
    for f in LAYER_FIELDS[layer["type"]]:
        if f.name in layer or f.since == CHAIN_SCHEMA:
            out[f.name] = layer.get(f.name, field_default(layer["type"], f, layer))
    return out


def _fields(layer: dict) -> list[str]:
    """The fields of a layer that re-parameterisation may change."""
    layer_type = layer["type"]
    if layer_type == "conv2d":
        return ["filters", "kernel_size"] + (["padding"] if layer.get("stride", 1) == 1 else [])
    return {"maxpool2d": ["pool_size"], "avgpool2d": ["pool_size"], "dense": ["units"],
            "activation": ["fn"], "dropout": ["rate"]}.get(layer_type, [])


def _values(layer: dict, name: str) -> list:
    """Legal new values of a field: the sampler's value set and the neighbours of the current value."""
    cur = layer[name]
    if name == "fn":
        return [a for a in ACTIVATIONS if a != cur]
    if name == "padding":
        return [p for p in PADDINGS if p != cur]
    if name == "filters":
        pool, low, high = set(FILTERS) | {cur * 2, cur // 2}, 1, MAX_CHANNELS
    elif name == "units":
        pool, low, high = set(UNITS) | {cur * 2, cur // 2}, 1, MAX_UNITS
    elif name == "kernel_size":
        pool, low, high = set(KERNELS) | {cur - 2, cur + 2}, 1, MAX_KERNEL
    elif name == "pool_size":
        pool, low, high = set(POOLS) | {cur - 1, cur + 1}, 2, MAX_KERNEL
    else:  # rate
        return sorted(r for r in set(RATES) | {cur - 0.125, cur + 0.125} if 0 < r < 1 and r != cur)
    return sorted(v for v in pool if low <= v <= high and v != cur)


def variations(spec: dict, n: int = 5, max_changes: int = 3, change_types: Iterable[str] = DEFAULT_CHANGE_TYPES,
               layers: Iterable[int] | None = None, seed: int = 0, constraints: Constraints = Constraints(),
               exclude_hashes: Iterable[str] = frozenset(), max_tries: int | None = None,
               limits: Limits = DEFAULT_LIMITS) -> Candidates:
    """Up to ``n`` distinct valid children of ``spec``, each with 1..``max_changes`` changes.

    Each change is drawn uniformly from the enabled ``change_types`` that have a
    target among the selected ``layers`` (default: all; a parent layer is
    replaced, re-parameterised or removed at most once per child):

    - replace: a new layer from the sampler's Markov chain given the previous layer;
    - reparameterise: one field to another legal value (sampler value set or a neighbour);
    - remove: the layer (its consumers read its main input; see the module docstring);
    - insert: a layer from the chain right after a selected layer (or at the start
      when layer 0 is selected), on that layer's output;
    - add_skip (only when asked for): an ``add`` right after a selected layer b
      that also reads an earlier selected layer a (or the network input), through
      a 1x1 conv2d projection without bias when the shapes differ (``_skip_shape``);
    - remove_skip (only when asked for): a selected ``add`` is removed, its
      consumers read its main input and the shortcut branch is dropped.

    ``change_types`` defaults to the first four (``DEFAULT_CHANGE_TYPES``).

    Draws until ``n`` children are valid, within ``constraints``, not the parent,
    not in ``exclude_hashes`` and not already made, or ``max_tries`` draws
    (default ``100·n``). The result's ``tries``/``rejected``/``summary()`` say why
    fewer were made. Raises ValueError for an invalid parent or bad arguments.
    """
    options = _check_options({"count": n, "max_changes": max_changes, "change_types": list(change_types),
                              "seed": seed, **({"layers": list(layers)} if layers is not None else {})})
    parent = _parent(spec, limits)
    exclude = exclude_hashes if isinstance(exclude_hashes, (set, frozenset)) else set(exclude_hashes)
    return _variations([("", parent)], options, constraints, exclude, max_tries, limits)


def _variations(parents: list[tuple[str, dict]], options: Options, constraints: Constraints,
                exclude: set[str], max_tries: int | None, limits: Limits) -> Candidates:
    """Round-robin over the parents' variators until ``options.count`` are made or the tries run out."""
    rejected: Counter = Counter()
    duplicates: Counter = Counter()
    made_keys: set[str] = set()
    parent_keys: dict[str, str] = {}
    for parent_id, spec in parents:
        for key in _keys(spec, analyse(spec, limits))[0]:
            parent_keys.setdefault(key, parent_id)
    variators = []
    for j, (_, spec) in enumerate(parents):
        rng = random.Random(options.seed) if j == 0 else random.Random(f"remap-tb/{options.seed}/{j}")
        selected = _selected(options.layers, len(spec["layers"]))
        start_ok = options.layers is None or 0 in options.layers
        variators.append((j, _Variator(spec, rng, selected, start_ok, options.max_changes, options.change_types,
                                       constraints, limits, exclude, parent_keys, made_keys, rejected,
                                       duplicates)))
    budget = max_tries if max_tries is not None else TRIES_PER_CANDIDATE * options.count
    out = Candidates(wanted=options.count, rejected=rejected, duplicates=duplicates)
    turn = 0
    while len(out) < options.count and out.tries < budget:
        turn %= len(variators)
        j, variator = variators[turn]
        candidate, used = variator.draw(min(TRIES_PER_CANDIDATE, budget - out.tries))
        out.tries += used
        if candidate is None:
            if len(variators) > 1:
                del variators[turn]  # a fair share of draws gave nothing: leave this parent to the others
            continue
        out.append(candidate)
        out.sources.append(j)
        turn += 1
    return out


# --------------------------------------------------------------------------- region / route


def _check_options(value: Any, depths: Iterable[int] = ()) -> Options:
    """Parse ``generate`` options; ValueError with a readable message."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError("options must be an object")
    known = ("layers", "count", "max_changes", "change_types", "seed", "blocks")
    unknown = sorted(map(str, set(value) - set(known)))
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(unknown)} (known: {', '.join(known)})")

    def integer(key: str, low: int, high: int, default: int) -> int:
        v = value.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise ValueError(f"options.{key} must be an integer {low}..{high}, got {v!r:.40}")
        return v

    count = integer("count", 1, MAX_COUNT, 5)
    max_changes = integer("max_changes", 1, MAX_CHANGES, 3)
    seed = integer("seed", -(2**63), 2**63 - 1, 0)
    types = value.get("change_types", list(DEFAULT_CHANGE_TYPES))
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise ValueError(f"options.change_types must be a non-empty list of {', '.join(CHANGE_TYPES)}")
    bad = sorted(set(types) - set(CHANGE_TYPES))
    if bad:
        raise ValueError(f"options.change_types has unknown type(s) {', '.join(repr(b)[:30] for b in bad)} "
                         f"(known: {', '.join(CHANGE_TYPES)})")
    layers = value.get("layers")
    if layers is not None:
        if not isinstance(layers, list) or not layers:
            raise ValueError("options.layers must be a non-empty list of layer indexes (leave it out for every layer)")
        for index in layers:
            if isinstance(index, bool) or not isinstance(index, int):
                raise ValueError(f"options.layers must hold integers, got {index!r:.40}")
        if len(set(layers)) != len(layers):
            raise ValueError("options.layers has a repeated index")
        for depth in depths:
            bad_index = next((i for i in layers if not 0 <= i < depth), None)
            if bad_index is not None:
                raise ValueError(f"options.layers: index {bad_index} is out of range for a parent with {depth} layer(s)")
        layers = tuple(sorted(layers))
    blocks = value.get("blocks", False)
    if not isinstance(blocks, bool):
        raise ValueError(f"options.blocks must be true or false, got {blocks!r:.40}")
    return Options(layers, count, max_changes, tuple(t for t in CHANGE_TYPES if t in types), seed, blocks)


def _check_parents(parents: Any, limits: Limits) -> list[tuple[str, dict]]:
    if not isinstance(parents, list) or not parents:
        raise ValueError("parents must be a non-empty list of models")
    if len(parents) > MAX_PARENTS:
        raise ValueError(f"at most {MAX_PARENTS} parents at once, got {len(parents)}")
    out = []
    for record in parents:
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) or "spec" not in record:
            raise ValueError("each parent must be a model record with an 'id' and a 'spec'")
        analysis = analyse(record["spec"], limits)
        if not analysis.ok:
            raise ValueError(f"parent {record['id']!r:.80} has an invalid spec: {analysis.problems[0]}")
        out.append((record["id"], analysis.normalised))
    return out


def generate(parents: list[dict], kind: str, options: dict | None = None,
             constraints: Constraints = Constraints(), existing_hashes: Iterable[str] = frozenset(),
             limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Ablation or variation candidates of one model or of a region (several), JSON-ready.

    ``parents``: model records with at least ``id`` and ``spec``. For several
    parents the candidates are spread over them round-robin (parent order, then
    the seed, fix the result). Ablation returns every child, the unusable ones
    with ``valid`` False and a reason (one entry per distinct spec); variation
    returns the valid ones and says in ``summary`` why other draws were rejected.
    Raises ValueError for a bad kind, parent or option. No side effects.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r:.40}")
    checked = _check_parents(parents, limits)
    opts = _check_options(options, [len(spec["layers"]) for _, spec in checked])
    if opts.blocks and kind != "ablation":
        raise ValueError("options.blocks applies to ablation only (remove whole residual blocks)")
    exclude = KnownModels(getattr(existing_hashes, "owners", None))
    exclude.update(existing_hashes)
    if kind == "variation":
        result = _variations(checked, opts, constraints, exclude, None, limits)
        candidates = [c.to_json(checked[j][0]) for c, j in zip(result, result.sources)]
        return {"candidates": candidates, "made": len(candidates), "wanted": opts.count,
                "summary": result.summary("variation", len(checked)), "duplicates": result.duplicates_json()}

    for parent_id, spec in checked:  # a child of one parent may be another parent
        exclude.add_model(spec, parent_id)
    per_parent = [ablations(spec, opts.layers, constraints, exclude, limits, opts.blocks, parent_id)
                  for parent_id, spec in checked]
    entries: list[dict] = []
    keys: set[str] = set()
    total = Candidates(wanted=sum(r.wanted for r in per_parent))
    for r in per_parent:
        total.rejected.update(r.rejected)
        total.duplicates.update(r.duplicates)
    for i in range(max((len(r) for r in per_parent), default=0)):
        for (parent_id, _), r in zip(checked, per_parent):
            if i >= len(r):
                continue
            c = r[i]
            if c.key in keys:
                if c.valid:  # the same child from another parent of the region
                    total.rejected["same model as a child of another parent"] += 1
                continue
            keys.add(c.key)
            entries.append(c.to_json(parent_id))
            if c.valid:
                total.append(c)
    return {"candidates": entries, "made": total.made, "wanted": total.wanted,
            "summary": total.summary("ablation", len(checked), opts.blocks), "duplicates": total.duplicates_json()}
