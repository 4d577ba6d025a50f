"""A stable content hash of an architecture (same architecture, same hash)."""

from __future__ import annotations

import hashlib
import json

from remap_tb.spec.schema import normalise_spec


def canonical_json(spec: dict) -> str:
    """The spec's canonical JSON text: defaults filled, keys sorted, no spaces.

    Assumes a valid spec (see ``analysis.check``).
    """
    return json.dumps(normalise_spec(spec), sort_keys=True, separators=(",", ":"))


def spec_hash(spec: dict) -> str:
    """First 16 hex digits of SHA-256 over ``canonical_json(spec)``.

    Omitted defaults (a conv's stride 1, a pool's stride = pool size) and key
    order do not change it; the input shape and class count do, because the
    same layers on another input are another model.
    """
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()[:16]
