"""Random CNNs: linked lists from a seeded Markov chain over layer types, or residual networks.

Follows the REMAP prototype's generator in spirit (Cashman et al. 2019, §5.1):
a model mostly starts with a convolution, continues with chains of
conv / activation / pool / dropout, and ends with a few dense layers. Once the
chain has gone flat (a dense layer or a global average pool), only layers that
work on vectors follow. Each draw is checked with ``analysis.analyse`` and the
user's ``Constraints``; invalid draws are rejected and counted by reason.

``blocks="residual"`` draws small ResNets instead (``draw_residual``, schema 2):
a stem convolution, stages of basic residual blocks, a pooled or dense head.

Randomness comes only from the ``random.Random`` passed in, so a seed fixes the
population.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from remap_tb.spec.analysis import analyse
from remap_tb.spec.canonical import canonical_hash
from remap_tb.spec.constraints import Constraints, reason_kind
from remap_tb.spec.hashing import spec_hash
from remap_tb.spec.schema import CHAIN_SCHEMA, GRAPH_SCHEMA, Limits

BLOCKS = ("chain", "residual")  # what ``sample_specs`` draws

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
    # Never drawn by the chain sampler; rows for the operators' replace/insert after a merge.
    "add": {"activation": 0.6, "conv2d": 0.12, "maxpool2d": 0.05, "batchnorm": 0.05, "dropout": 0.04,
            "dense": 0.05, "globalavgpool": 0.05, END: 0.04},
    "concat": {"conv2d": 0.4, "activation": 0.2, "batchnorm": 0.15, "maxpool2d": 0.05, "dense": 0.08,
               "globalavgpool": 0.06, END: 0.06},
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


# Residual networks (``draw_residual``): widths of the first stage, blocks per stage, heads.
STEM_FILTERS = (8, 16, 32)
STEM_WEIGHTS = (0.35, 0.45, 0.2)
BLOCKS_PER_STAGE = (1, 2, 3)
BLOCK_WEIGHTS = (0.5, 0.35, 0.15)
HEADS = ("globalavgpool", "globalavgpool+dense", "dense")
HEAD_WEIGHTS = (0.6, 0.2, 0.2)
DEFAULT_MAX_DEPTH = {"chain": 12, "residual": 64}  # layers, when the constraints set none


def _conv(filters: int, kernel: int, stride: int = 1, bias: bool = True) -> dict:
    """A conv2d with integer padding kernel//2 (so stride 1 keeps the size and stride 2 halves it, rounding up)."""
    layer = {"type": "conv2d", "filters": filters, "kernel_size": kernel, "stride": stride, "padding": kernel // 2}
    if not bias:
        layer["bias"] = False
    return layer


def draw_residual(rng: random.Random, input_shape: tuple[int, int, int] | list[int], max_depth: int = 64) -> list[dict]:
    """The layers of a random small ResNet (He et al. 2016, the CIFAR variant), schema 2.

    - stem: conv2d 3x3 (filters from ``STEM_FILTERS``), then batchnorm and the activation;
    - 1 to 3 stages of ``BLOCKS_PER_STAGE`` basic blocks; stage s has ``2^s`` times
      the stem's filters. A block is conv 3x3 - bn - act - conv 3x3 - bn on the main
      branch and the identity on the shortcut, or a 1x1 conv2d (+ bn) projection when
      the channels change or the block downsamples; ``add``; the activation.
    - the first block of a later stage downsamples (stride 2 on its first conv and on
      the projection) with probability 0.75 while the side is at least 4 (digits 8x8:
      8 -> 4 -> 2 at most), else keeps the size;
    - head: globalavgpool, globalavgpool then dense + act, or dense + act on the flattened map.

    Batchnorm is in every block with probability 0.8 (convolutions then have no
    bias); the activation is relu with probability 0.8. Blocks are dropped from the
    end until the model has at most ``max_depth`` layers (one block stays).
    """
    side = min(input_shape[1], input_shape[2])
    filters = rng.choices(STEM_FILTERS, STEM_WEIGHTS)[0]
    bn = rng.random() < 0.8
    fn = "relu" if rng.random() < 0.8 else rng.choice(("elu", "leaky_relu"))
    stages = rng.choice((1, 2, 3))
    plan = []  # (filters, stride) per block
    for stage in range(stages):
        width = filters * 2 ** stage
        for block in range(rng.choices(BLOCKS_PER_STAGE, BLOCK_WEIGHTS)[0]):
            stride = 1
            if stage > 0 and block == 0 and side >= 4 and rng.random() < 0.75:
                stride, side = 2, (side + 1) // 2
            plan.append((width, stride))
    head = rng.choices(HEADS, HEAD_WEIGHTS)[0]
    units = rng.choice(UNITS)

    def act() -> dict:
        return {"type": "activation", "fn": fn}

    def build(blocks: list[tuple[int, int]]) -> list[dict]:
        layers = [_conv(filters, 3, bias=not bn)] + ([{"type": "batchnorm"}] if bn else []) + [act()]
        channels = filters
        for width, stride in blocks:
            start = len(layers) - 1
            layers += [_conv(width, 3, stride, bias=not bn)] + ([{"type": "batchnorm"}] if bn else []) + [act()]
            layers += [_conv(width, 3, bias=not bn)] + ([{"type": "batchnorm"}] if bn else [])
            main = len(layers) - 1
            shortcut = start
            if stride != 1 or width != channels:
                layers.append({**_conv(width, 1, stride, bias=not bn), "inputs": [start]})
                if bn:
                    layers.append({"type": "batchnorm"})
                shortcut = len(layers) - 1
            layers += [{"type": "add", "inputs": [main, shortcut]}, act()]
            channels = width
        if head.startswith("globalavgpool"):
            layers.append({"type": "globalavgpool"})
        if head.endswith("dense"):
            layers += [{"type": "dense", "units": units}, act()]
        return layers

    layers = build(plan)
    while len(layers) > max_depth and len(plan) > 1:
        plan.pop()
        layers = build(plan)
    return layers


def sample_specs(n: int, input_shape: tuple[int, int, int] | list[int], num_classes: int, seed: int,
                 constraints: Constraints = Constraints(), exclude_hashes: frozenset[str] = frozenset(),
                 max_tries: int | None = None, default_max_depth: int | None = None,
                 blocks: str = "chain") -> SampleResult:
    """Draw ``n`` distinct valid specs that meet ``constraints``.

    ``blocks``: ``"chain"`` (linked lists from ``TRANSITIONS``, schema 1) or
    ``"residual"`` (``draw_residual``, schema 2). ``default_max_depth`` caps the
    layers when the constraints set no ``max_depth`` (default: 12 for chains, 64
    for residual networks). Distinct: no two specs, and no spec and ``exclude_hashes``,
    share a spec hash or a canonical hash (``canonical.py``: equal once no-ops such
    as a relu after a relu are removed). Stops after ``max_tries`` draws (default ``200·n``)
    even if fewer were made; the result says how many it made and the most common
    rejection reasons.
    """
    if blocks not in BLOCKS:
        raise ValueError(f"blocks must be one of {', '.join(BLOCKS)}, got {blocks!r:.40}")
    rng = random.Random(seed)
    max_tries = max_tries if max_tries is not None else 200 * max(n, 1)
    if default_max_depth is None:
        default_max_depth = DEFAULT_MAX_DEPTH[blocks]
    depth = constraints.max_depth if constraints.max_depth is not None else default_max_depth
    seen = set(exclude_hashes)
    result = SampleResult([], 0)
    limits = Limits(max_params=None, max_depth=None)
    while len(result.specs) < n and result.tries < max_tries:
        result.tries += 1
        if blocks == "residual":
            layers, schema = draw_residual(rng, input_shape, depth), GRAPH_SCHEMA
        else:
            layers, schema = draw_layers(rng, constraints.allowed_types, depth), CHAIN_SCHEMA
        spec = {"schema": schema,
                "input": {"shape": list(input_shape), "num_classes": num_classes},
                "layers": layers}
        analysis = analyse(spec, limits)
        if not analysis.ok:
            result.rejected["invalid shape (e.g. pool larger than its input)"] += 1
            continue
        reasons = constraints.violations(spec, analysis)
        if reasons:
            result.rejected[reason_kind(reasons[0])] += 1
            continue
        digests = {spec_hash(spec), canonical_hash(spec)}  # a no-op (relu after relu) makes no new model
        if seen.intersection(digests):
            result.rejected["duplicate of an existing model"] += 1
            continue
        seen.update(digests)
        result.specs.append(spec)
    return result
