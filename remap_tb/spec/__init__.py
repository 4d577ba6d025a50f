"""The architecture spec: schema, validation, shapes, parameter counts, hashing,
sampling and (later) local-search operators. Torch-free; shared by the plugin
and the trainer."""

from remap_tb.spec.analysis import Analysis, LayerInfo, Problem, SpecError, analyse, check
from remap_tb.spec.constraints import Constraints
from remap_tb.spec.hashing import canonical_json, spec_hash
from remap_tb.spec.schema import ACTIVATIONS, DEFAULT_LIMITS, LAYER_TYPES, SCHEMA_VERSION, Limits, normalise_spec

__all__ = [
    "ACTIVATIONS", "Analysis", "Constraints", "DEFAULT_LIMITS", "LAYER_TYPES", "LayerInfo", "Limits",
    "Problem", "SCHEMA_VERSION", "SpecError", "analyse", "canonical_json", "check", "normalise_spec",
    "spec_hash",
]
