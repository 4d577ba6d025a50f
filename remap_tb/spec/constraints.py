"""User constraints on generated models (parameter budget, layer types, depth)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from remap_tb.spec.analysis import Analysis
from remap_tb.spec.schema import LAYER_TYPES


@dataclass(frozen=True)
class Constraints:
    """What every generator (initial sampler, ablation, variation) must respect.

    ``allowed_types`` None means every layer type (merge layers ``add`` and
    ``concat`` included: leave them out to keep generated models chains);
    ``max_depth`` counts layers in the spec, merge layers included, however they
    branch (the implicit classifier is not counted).
    """

    min_params: int | None = None
    max_params: int | None = None
    allowed_types: frozenset[str] | None = None
    max_depth: int | None = None

    @classmethod
    def from_json(cls, value: Any) -> "Constraints":
        """Parse the JSON form; raises ValueError with a readable message."""
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise ValueError("constraints must be an object")
        unknown = set(value) - {"min_params", "max_params", "allowed_types", "max_depth"}
        if unknown:
            raise ValueError(f"unknown constraint(s): {', '.join(sorted(map(str, unknown)))} "
                             "(known: min_params, max_params, allowed_types, max_depth)")
        ints = {}
        for key in ("min_params", "max_params", "max_depth"):
            v = value.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > 10**12):
                raise ValueError(f"constraints.{key} must be a non-negative integer or null, got {v!r:.40}")
            ints[key] = v
        if ints["min_params"] is not None and ints["max_params"] is not None and ints["min_params"] > ints["max_params"]:
            raise ValueError("constraints.min_params is larger than constraints.max_params")
        types = value.get("allowed_types")
        allowed = None
        if types is not None:
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise ValueError("constraints.allowed_types must be a list of layer type names")
            bad = sorted(set(types) - set(LAYER_TYPES))
            if bad:
                raise ValueError(f"constraints.allowed_types has unknown type(s) {', '.join(bad)} (known: {', '.join(LAYER_TYPES)})")
            allowed = frozenset(types)
        return cls(ints["min_params"], ints["max_params"], allowed, ints["max_depth"])

    def to_json(self) -> dict[str, Any]:
        return {
            "min_params": self.min_params,
            "max_params": self.max_params,
            "allowed_types": sorted(self.allowed_types) if self.allowed_types is not None else None,
            "max_depth": self.max_depth,
        }

    def violations(self, spec: dict, analysis: Analysis) -> list[str]:
        """Why a valid spec breaks these constraints (empty when it does not)."""
        reasons = []
        params = analysis.total_params
        if params is not None and self.max_params is not None and params > self.max_params:
            reasons.append(f"{params:,} parameters is over the budget of {self.max_params:,}")
        if params is not None and self.min_params is not None and params < self.min_params:
            reasons.append(f"{params:,} parameters is under the minimum of {self.min_params:,}")
        depth = len(spec.get("layers", []))
        if self.max_depth is not None and depth > self.max_depth:
            reasons.append(f"{depth} layers is over the maximum depth of {self.max_depth}")
        if self.allowed_types is not None:
            used = sorted({layer["type"] for layer in spec.get("layers", [])} - self.allowed_types)
            if used:
                reasons.append(f"uses layer type(s) not allowed: {', '.join(used)}")
        return reasons


def reason_kind(reason: str) -> str:
    """Group reasons for a summary (the numbers in them differ per child)."""
    for key, kind in (("over the budget", "over the parameter budget"),
                      ("under the minimum", "under the parameter minimum"),
                      ("maximum depth", "too deep"),
                      ("not allowed", "uses a layer type that is not allowed"),
                      ("over the cap", "over the model size cap"),
                      ("over the depth cap", "over the depth cap"),
                      ("larger than its", "a layer is larger than its input"),
                      ("flat vector", "a spatial layer after a dense layer"),
                      ("padding 'same'", "padding 'same' with a stride"),
                      ("add needs identical shapes", "an add whose inputs differ in shape"),
                      ("concat joins", "a concat whose inputs differ in height and width"),
                      ("not used by the output", "a layer not used by the output")):
        if key in reason:
            return kind
    return reason
