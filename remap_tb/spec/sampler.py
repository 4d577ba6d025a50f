"""Random linked-list CNNs from a seeded Markov chain over layer types.

Follows the REMAP prototype's generator in spirit (Cashman et al. 2019, §5.1):
a model mostly starts with a convolution, continues with chains of
conv / activation / pool / dropout, and ends with a few dense layers. Once the
chain has gone flat (a dense layer or a global average pool), only layers that
work on vectors follow. Each draw is checked with ``analysis.analyse`` and the
user's ``Constraints``; invalid draws are rejected and counted by reason.

Randomness comes only from the ``random.Random`` passed in, so a seed fixes the
population.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from remap_tb.spec.analysis import analyse
from remap_tb.spec.constraints import Constraints, reason_kind
from remap_tb.spec.hashing import spec_hash
from remap_tb.spec.schema import CHAIN_SCHEMA, Limits

END = "end"

# P(next type | previous type). "start" is the state before the first layer.
TRANSITIONS: dict[str, dict[str, float]] = {
    "start": {"conv2d": 0.8, "dense": 0.08, "batchnorm": 0.04, "maxpool2d": 0.04, "avgpool2d": 0.04},
    "conv2d": {"activation": 0.42, "conv2d": 0.14, "maxpool2d": 0.1, "avgpool2d": 0.05, "batchnorm": 0.1,
               "dropout": 0.05, "dense": 0.06, "globalavgpool": 0.03, END: 0.05},
    "activation": {"conv2d": 0.3, "maxpool2d": 0.14, "avgpool2d": 0.07, "dropout": 0.14, "dense": 0.15,
                   "globalavgpool": 0.03, END: 0.17},
    "maxpool2d": {"conv2d": 0.38, "dropout": 0.17, "dense": 0.22, "batchnorm": 0.03, END: 0.2},
    "avgpool2d": {"conv2d": 0.38, "dropout": 0.17, "dense": 0.22, "batchnorm": 0.03, END: 0.2},
    "batchnorm": {"activation": 0.7, "conv2d": 0.1, "maxpool2d": 0.1, "dense": 0.05, END: 0.05},
    "dropout": {"conv2d": 0.25, "dense": 0.35, "maxpool2d": 0.08, "avgpool2d": 0.04, END: 0.28},
    "globalavgpool": {"dense": 0.45, "dropout": 0.1, END: 0.45},
    "dense": {"activation": 0.45, "dropout": 0.18, "dense": 0.12, "batchnorm": 0.05, END: 0.2},
}

# Layer types that work on a flat vector; after the chain goes flat only these follow.
FLAT_OK = ("dense", "activation", "dropout", "batchnorm")

FILTERS = (8, 16, 32, 64, 128)
KERNELS = (1, 3, 5)
POOLS = (2, 3)
UNITS = (16, 32, 64, 128, 256)
RATES = (0.125, 0.25, 0.5)
ACTIVATION_WEIGHTS = {"relu": 0.4, "tanh": 0.15, "sigmoid": 0.15, "elu": 0.15, "leaky_relu": 0.15}


def draw_fields(layer_type: str, rng: random.Random) -> dict:
    """A layer of ``layer_type`` with fields drawn from the sampler's value sets."""
    if layer_type == "conv2d":
        return {"type": "conv2d", "filters": rng.choice(FILTERS), "kernel_size": rng.choice(KERNELS)}
    if layer_type in ("maxpool2d", "avgpool2d"):
        return {"type": layer_type, "pool_size": rng.choice(POOLS)}
    if layer_type == "dense":
        return {"type": "dense", "units": rng.choice(UNITS)}
    if layer_type == "activation":
        names = list(ACTIVATION_WEIGHTS)
        return {"type": "activation", "fn": rng.choices(names, [ACTIVATION_WEIGHTS[n] for n in names])[0]}
    if layer_type == "dropout":
        return {"type": "dropout", "rate": rng.choice(RATES)}
    return {"type": layer_type}  # globalavgpool, batchnorm


def draw_next_type(prev_type: str | None, rng: random.Random, allowed: frozenset[str] | None = None,
                   flat: bool = False, allow_end: bool = True) -> str:
    """The next layer type (or ``END``) given the previous one, from ``TRANSITIONS``.

    ``allowed`` restricts the layer types; ``flat`` means the tensor is already a
    vector, so spatial layers are excluded. Falls back to ``END`` when nothing is left.
    """
    row = TRANSITIONS[prev_type or "start"]
    options = [(t, p) for t, p in row.items()
               if t == END and allow_end
               or t != END and (allowed is None or t in allowed) and (not flat or t in FLAT_OK)]
    if not options:
        return END
    types, weights = zip(*options)
    return rng.choices(types, weights)[0]


def draw_layer(prev_type: str | None, rng: random.Random, allowed: frozenset[str] | None = None,
               flat: bool = False) -> dict:
    """One new layer drawn from the chain given the previous layer (never ``END``)."""
    next_type = draw_next_type(prev_type, rng, allowed, flat, allow_end=False)
    if next_type == END:
        raise ValueError("no allowed layer type can follow here")
    return draw_fields(next_type, rng)


def draw_layers(rng: random.Random, allowed: frozenset[str] | None = None, max_depth: int = 12) -> list[dict]:
    """A chain of layers from start to ``END`` (at most ``max_depth`` layers)."""
    layers: list[dict] = []
    prev: str | None = None
    flat = False
    while len(layers) < max_depth:
        next_type = draw_next_type(prev, rng, allowed, flat)
        if next_type == END:
            break
        layers.append(draw_fields(next_type, rng))
        flat = flat or next_type in ("dense", "globalavgpool")
        prev = next_type
    return layers


@dataclass
class SampleResult:
    """What a sampling run produced and why draws were rejected."""

    specs: list[dict]
    tries: int
    rejected: Counter = field(default_factory=Counter)

    def summary(self, wanted: int) -> str:
        made = f"made {len(self.specs)} of {wanted} model(s) in {self.tries} draw(s)"
        if not self.rejected:
            return made
        reasons = "; ".join(f"{n}x {reason}" for reason, n in self.rejected.most_common(5))
        return f"{made}; rejected: {reasons}"


def sample_specs(n: int, input_shape: tuple[int, int, int] | list[int], num_classes: int, seed: int,
                 constraints: Constraints = Constraints(), exclude_hashes: frozenset[str] = frozenset(),
                 max_tries: int | None = None, default_max_depth: int = 12) -> SampleResult:
    """Draw ``n`` distinct valid specs that meet ``constraints``.

    Stops after ``max_tries`` draws (default ``200·n``) even if fewer were made;
    the result says how many it made and the most common rejection reasons.
    """
    rng = random.Random(seed)
    max_tries = max_tries if max_tries is not None else 200 * max(n, 1)
    depth = constraints.max_depth if constraints.max_depth is not None else default_max_depth
    seen = set(exclude_hashes)
    result = SampleResult([], 0)
    limits = Limits(max_params=None, max_depth=None)
    while len(result.specs) < n and result.tries < max_tries:
        result.tries += 1
        spec = {"schema": CHAIN_SCHEMA,
                "input": {"shape": list(input_shape), "num_classes": num_classes},
                "layers": draw_layers(rng, constraints.allowed_types, depth)}
        analysis = analyse(spec, limits)
        if not analysis.ok:
            result.rejected["invalid shape (e.g. pool larger than its input)"] += 1
            continue
        reasons = constraints.violations(spec, analysis)
        if reasons:
            result.rejected[reason_kind(reasons[0])] += 1
            continue
        digest = spec_hash(spec)
        if digest in seen:
            result.rejected["duplicate of an existing model"] += 1
            continue
        seen.add(digest)
        result.specs.append(spec)
    return result
