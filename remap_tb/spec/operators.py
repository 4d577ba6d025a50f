"""Local-search operators: ablations and variations of a model, alone or around a region.

REMAP (Cashman et al. 2019, "Ablate, Variate, and Contemplate", §5.2) lets a
user pick a model on the map and ask for

- **ablations**: one child per selected layer with that layer removed;
- **variations**: N children, each with 1..k random changes drawn from
  {replace, reparameterise, remove, insert} on the selected layers.

Layer indexes in options and in the change texts always refer to the
*parent's* layers (0-based), however earlier changes shifted positions.

Every child is analysed (``analysis.analyse``) and checked against the user's
``Constraints`` before anyone sees it. A child that no longer fits is
*repaired* where that is unambiguous: a max/avg pool the changes did not touch
that is now larger than its input is dropped, and the drop is recorded among
the changes. Anything else that does not fit makes the child unusable, with the
reason in words. Orphaned activations/dropouts (their conv was removed) are kept:
they are still valid layers.

Randomness comes only from ``random.Random(seed)``: the same parent, options
and seed give the same children. Torch-free.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from remap_tb.spec.analysis import Analysis, analyse
from remap_tb.spec.constraints import Constraints, reason_kind
from remap_tb.spec.glyph import glyph
from remap_tb.spec.hashing import spec_hash
from remap_tb.spec.sampler import FILTERS, KERNELS, POOLS, RATES, UNITS, draw_layer
from remap_tb.spec.schema import (
    ACTIVATIONS, DEFAULT_LIMITS, LAYER_FIELDS, LAYER_TYPES, MAX_CHANNELS, MAX_KERNEL, MAX_UNITS,
    CHAIN_SCHEMA, PADDINGS, SPATIAL_TYPES, Limits, field_default, spec_schema,
)

KINDS = ("ablation", "variation")
CHANGE_TYPES = ("replace", "reparameterise", "remove", "insert")
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
            "glyph": glyph(self.spec, self.analysis) if self.analysis is not None else [],
        }


class Candidates(list):
    """A list of ``Candidate`` that also says how it was made.

    ``wanted``: how many were asked for; ``tries``: draws made; ``rejected``:
    reason kind -> number of draws (variation) or children (ablation) not usable;
    ``sources``: for a region, the position of each candidate's parent.
    """

    def __init__(self, items: Iterable[Candidate] = (), wanted: int = 0, tries: int = 0,
                 rejected: Counter | None = None):
        super().__init__(items)
        self.wanted = wanted
        self.tries = tries
        self.rejected = rejected if rejected is not None else Counter()
        self.sources: list[int] = []

    @property
    def made(self) -> int:
        return sum(1 for c in self if c.valid)

    def summary(self, kind: str = "variation", parents: int = 1) -> str:
        of = f" of {parents} parents" if parents > 1 else ""
        if kind == "ablation":
            text = f"{self.made} of {self.wanted} ablation(s){of} can be trained"
            label = "not usable"
        else:
            text = f"made {self.made} of {self.wanted} variation(s){of} in {self.tries} draw(s)"
            label = "rejected"
        if self.rejected:
            reasons = "; ".join(f"{n}x {reason}" for reason, n in self.rejected.most_common(6))
            text += f"; {label}: {reasons}"
        return text


@dataclass(frozen=True)
class Options:
    """Validated ``generate`` options (http_api.md)."""

    layers: tuple[int, ...] | None = None
    count: int = 5
    max_changes: int = 3
    change_types: tuple[str, ...] = CHANGE_TYPES
    seed: int = 0


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


@dataclass
class _Slot:
    """A layer of a child: where it came from in the parent (None: inserted) and whether a change touched it."""

    origin: int | None
    layer: dict
    touched: bool = False


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

    Returns the child spec, its analysis (``ok`` or the first remaining problem)
    and one note per dropped pool. Dropping a pool only makes what follows larger,
    so each drop can only fix, never cause, a later shape problem.
    """
    notes: list[str] = []
    while True:
        layers = [s.layer for s in slots]
        spec = {"schema": spec_schema(layers), "input": parent["input"], "layers": layers}
        analysis = analyse(spec, limits)
        if analysis.ok:
            return spec, analysis, notes
        first = next((p for p in analysis.problems if p.index is not None), None)
        if first is None:
            return spec, analysis, notes
        slot = slots[first.index]
        shape = analysis.layers[first.index].input_shape
        if (slot.origin is None or slot.touched or slot.layer["type"] not in _RESIZABLE_POOLS
                or shape is None or len(shape) != 3 or slot.layer["pool_size"] <= min(shape[1], shape[2])):
            return spec, analysis, notes
        del slots[first.index]
        notes.append(f"dropped layer {slot.origin} {describe(slot.layer)}: "
                     f"larger than its {shape[1]}x{shape[2]} input after the change")


def _judge(spec: dict, analysis: Analysis, constraints: Constraints) -> str | None:
    """Why the child cannot be trained, or None."""
    if not analysis.ok:
        return str(analysis.problems[0])
    violations = constraints.violations(spec, analysis)
    return "; ".join(violations) if violations else None


def _candidate(spec: dict, analysis: Analysis, changes: list[str], reason: str | None) -> Candidate:
    return Candidate(spec, tuple(changes), reason is None, reason, spec_hash(spec), analysis.total_params, analysis)


# --------------------------------------------------------------------------- ablation


def ablations(spec: dict, layers: Iterable[int] | None = None, constraints: Constraints = Constraints(),
              exclude_hashes: Iterable[str] = frozenset(), limits: Limits = DEFAULT_LIMITS) -> Candidates:
    """One child per selected layer (default: every layer) with that layer removed.

    Every child is returned; the ones that cannot be trained have ``valid`` False
    and a ``reason`` (over budget, a duplicate of an existing model or of an
    earlier child, a shape conflict). Raises ValueError for an invalid parent or a
    bad layer index.

    >>> spec = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10},
    ...         "layers": [{"type": "conv2d", "filters": 8, "kernel_size": 3},
    ...                    {"type": "maxpool2d", "pool_size": 2}]}
    >>> [c.changes for c in ablations(spec)]
    [('removed layer 0 conv2d (filters 8, kernel_size 3)',), ('removed layer 1 maxpool2d (pool_size 2)',)]
    """
    parent = _parent(spec, limits)
    parent_layers = parent["layers"]
    selected = _selected(layers, len(parent_layers))
    exclude = set(exclude_hashes)
    parent_key = spec_hash(parent)
    first_with: dict[str, int] = {}
    out = Candidates(wanted=len(selected), tries=len(selected))
    for index in selected:
        slots = [_Slot(k, layer) for k, layer in enumerate(parent_layers) if k != index]
        child, analysis, notes = _fit(parent, slots, limits)
        changes = [f"removed layer {index} {describe(parent_layers[index])}", *notes]
        reason = _judge(child, analysis, constraints)
        key = spec_hash(child)
        if reason is None:
            if key == parent_key:
                reason = "same model as the parent"
            elif key in exclude:
                reason = "same model as an existing model"
            elif key in first_with:
                reason = f"same model as removing layer {first_with[key]}"
        first_with.setdefault(key, index)
        if reason is not None:
            out.rejected["same model as another ablation" if "removing layer" in reason else reason_kind(reason)] += 1
        out.append(_candidate(child, analysis, changes, reason))
    return out


# --------------------------------------------------------------------------- variation


class _Variator:
    """Draws variations of one parent; shares the set of keys already made with its siblings."""

    def __init__(self, parent: dict, rng: random.Random, selected: tuple[int, ...], start_ok: bool,
                 max_changes: int, change_types: tuple[str, ...], constraints: Constraints, limits: Limits,
                 exclude: set[str], parents: set[str], made: set[str], rejected: Counter):
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

    def draw(self, budget: int) -> tuple[Candidate | None, int]:
        """Up to ``budget`` draws until one valid new candidate; (candidate or None, draws used)."""
        for used in range(1, budget + 1):
            candidate = self.attempt()
            if candidate is not None:
                return candidate, used
        return None, budget

    def attempt(self) -> Candidate | None:
        slots = [_Slot(k, dict(layer)) for k, layer in enumerate(self.parent["layers"])]
        changes: list[str] = []
        for _ in range(self.rng.randint(1, self.max_changes)):
            options = [(t, targets) for t in self.change_types if (targets := self._targets(t, slots))]
            if not options:
                break
            change_type, targets = self.rng.choice(options)
            text = getattr(self, "_" + change_type)(slots, self.rng.choice(targets))
            if text:
                changes.append(text)
        if not changes:
            return self._reject("no change is possible on the selected layers")
        child, analysis, notes = _fit(self.parent, slots, self.limits)
        reason = _judge(child, analysis, self.constraints)
        if reason is not None:
            return self._reject(reason_kind(reason))
        key = spec_hash(child)
        if key in self.parents:
            return self._reject("same model as a parent")
        if key in self.exclude:
            return self._reject("duplicate of an existing model")
        if key in self.made:
            return self._reject("duplicate of another candidate")
        self.made.add(key)
        return _candidate(child, analysis, changes + notes, None)

    def _reject(self, kind: str) -> None:
        self.rejected[kind] += 1
        return None

    def _targets(self, change_type: str, slots: list[_Slot]) -> list[int]:
        """Positions a change of this type may act on (insert: insert *after* it; -1 is the start)."""
        if change_type == "insert":
            targets = [p for p, s in enumerate(slots) if s.origin in self.selected]
            return ([-1] if self.start_ok else []) + targets
        fresh = [p for p, s in enumerate(slots) if s.origin in self.selected and not s.touched]
        if change_type == "reparameterise":
            return [p for p in fresh if _fields(slots[p].layer)]
        return fresh

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
        slots[p] = _Slot(slot.origin, new, touched=True)
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
        slots[p] = _Slot(slot.origin, layer, touched=True)
        return f"layer {slot.origin} {layer['type']}: {name} {_fmt(old)} → {_fmt(new)}"

    def _remove(self, slots: list[_Slot], p: int) -> str:
        slot = slots.pop(p)
        return f"removed layer {slot.origin} {describe(slot.layer)}"

    def _insert(self, slots: list[_Slot], p: int) -> str | None:
        prev, flat, allowed = self._allowed_at(slots, p + 1, p + 1)
        try:
            new = _complete(draw_layer(prev, self.rng, allowed, flat))
        except ValueError:
            return None
        where = "at the start" if p < 0 else f"after layer {slots[p].origin}"
        slots.insert(p + 1, _Slot(None, new, touched=True))
        return f"inserted {describe(new)} {where}"


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


def variations(spec: dict, n: int = 5, max_changes: int = 3, change_types: Iterable[str] = CHANGE_TYPES,
               layers: Iterable[int] | None = None, seed: int = 0, constraints: Constraints = Constraints(),
               exclude_hashes: Iterable[str] = frozenset(), max_tries: int | None = None,
               limits: Limits = DEFAULT_LIMITS) -> Candidates:
    """Up to ``n`` distinct valid children of ``spec``, each with 1..``max_changes`` changes.

    Each change is drawn uniformly from the enabled ``change_types`` that have a
    target among the selected ``layers`` (default: all; a parent layer is
    replaced, re-parameterised or removed at most once per child):

    - replace: a new layer from the sampler's Markov chain given the previous layer;
    - reparameterise: one field to another legal value (sampler value set or a neighbour);
    - remove: the layer;
    - insert: a layer from the chain right after a selected layer (or at the start
      when layer 0 is selected).

    Draws until ``n`` children are valid, within ``constraints``, not the parent,
    not in ``exclude_hashes`` and not already made, or ``max_tries`` draws
    (default ``100·n``). The result's ``tries``/``rejected``/``summary()`` say why
    fewer were made. Raises ValueError for an invalid parent or bad arguments.
    """
    options = _check_options({"count": n, "max_changes": max_changes, "change_types": list(change_types),
                              "seed": seed, **({"layers": list(layers)} if layers is not None else {})})
    parent = _parent(spec, limits)
    return _variations([("", parent)], options, constraints, set(exclude_hashes), max_tries, limits)


def _variations(parents: list[tuple[str, dict]], options: Options, constraints: Constraints,
                exclude: set[str], max_tries: int | None, limits: Limits) -> Candidates:
    """Round-robin over the parents' variators until ``options.count`` are made or the tries run out."""
    rejected: Counter = Counter()
    made_keys: set[str] = set()
    parent_keys = {spec_hash(spec) for _, spec in parents}
    variators = []
    for j, (_, spec) in enumerate(parents):
        rng = random.Random(options.seed) if j == 0 else random.Random(f"remap-tb/{options.seed}/{j}")
        selected = _selected(options.layers, len(spec["layers"]))
        start_ok = options.layers is None or 0 in options.layers
        variators.append((j, _Variator(spec, rng, selected, start_ok, options.max_changes, options.change_types,
                                       constraints, limits, exclude, parent_keys, made_keys, rejected)))
    budget = max_tries if max_tries is not None else TRIES_PER_CANDIDATE * options.count
    out = Candidates(wanted=options.count, rejected=rejected)
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
    known = ("layers", "count", "max_changes", "change_types", "seed")
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
    types = value.get("change_types", list(CHANGE_TYPES))
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
    return Options(layers, count, max_changes, tuple(t for t in CHANGE_TYPES if t in types), seed)


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
    exclude = set(existing_hashes)
    if kind == "variation":
        result = _variations(checked, opts, constraints, exclude, None, limits)
        candidates = [c.to_json(checked[j][0]) for c, j in zip(result, result.sources)]
        return {"candidates": candidates, "made": len(candidates), "wanted": opts.count,
                "summary": result.summary("variation", len(checked))}

    exclude |= {spec_hash(spec) for _, spec in checked}  # a child of one parent may be another parent
    per_parent = [ablations(spec, opts.layers, constraints, exclude, limits) for _, spec in checked]
    entries: list[dict] = []
    keys: set[str] = set()
    total = Candidates(wanted=sum(r.wanted for r in per_parent))
    for r in per_parent:
        total.rejected.update(r.rejected)
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
            "summary": total.summary("ablation", len(checked))}
