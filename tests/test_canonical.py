"""The canonical form of a spec (no-ops removed) and the duplicate checks built on it (issue 11).

Each rule is checked two ways: its known answer (the canonical layers), and with torch that
the two specs compute the same function with the same parameters (weights copied from one
model to the other give equal outputs), which is what makes them the same model.
"""

from __future__ import annotations

import copy
import os
import random

import pytest
import torch

from remap_tb.spec import analyse, spec_hash
from remap_tb.spec.canonical import KnownModels, canonical_hash, canonical_spec, canonicalise
from remap_tb.spec.operators import ablations, generate, variations
from remap_tb.spec.sampler import sample_specs
from remap_tb.spec.schema import normalise_spec
from tests.fixtures_runs import model_record
from trainer.model import build_model

INPUT = {"shape": [1, 8, 8], "num_classes": 10}
RELU = {"type": "activation", "fn": "relu"}
TANH = {"type": "activation", "fn": "tanh"}
SIGMOID = {"type": "activation", "fn": "sigmoid"}
LEAKY = {"type": "activation", "fn": "leaky_relu"}


def chain(*layers, schema=1):
    return {"schema": schema, "input": INPUT, "layers": [dict(layer) for layer in layers]}


def conv(filters=4, kernel=3, **kw):
    return {"type": "conv2d", "filters": filters, "kernel_size": kernel, **kw}


def pool(size=2, kind="maxpool2d", **kw):
    return {"type": kind, "pool_size": size, **kw}


def dropout(rate):
    return {"type": "dropout", "rate": rate}


def same_function(a: dict, b: dict) -> bool:
    """Build both specs with torch, give b a's weights (same parameters in the same order), compare outputs."""
    torch.manual_seed(0)
    model_a, model_b = build_model(a).eval(), build_model(b).eval()
    params_a, params_b = list(model_a.parameters()), list(model_b.parameters())
    assert [p.shape for p in params_a] == [p.shape for p in params_b]
    with torch.no_grad():
        for pa, pb in zip(params_a, params_b):
            pb.copy_(pa)
        for ma, mb in zip([m for m in model_a.modules() if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d)],
                          [m for m in model_b.modules() if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d)]):
            mb.load_state_dict(ma.state_dict())
        x = torch.randn(16, *INPUT["shape"])
        return torch.allclose(model_a(x), model_b(x), atol=1e-6)


# Pairs (spec with a no-op, the same model without it) and the rule that relates them.
EQUAL = [
    ("relu∘relu = relu", chain(conv(), RELU, RELU), chain(conv(), RELU)),
    ("relu after sigmoid", chain(conv(), SIGMOID, RELU), chain(conv(), SIGMOID)),
    ("relu after a pool of a relu", chain(conv(), RELU, pool(), RELU), chain(conv(), RELU, pool())),
    ("dropout 0", chain(conv(), dropout(0.0), RELU), chain(conv(), RELU)),
    ("1x1 pool, stride 1", chain(conv(), pool(1), RELU), chain(conv(), RELU)),
    ("1x1 avg pool, stride 1", chain(conv(), pool(1, "avgpool2d", stride=1), RELU), chain(conv(), RELU)),
    ("globalavgpool of a 1x1 map", chain(conv(kernel=8), {"type": "globalavgpool"}, RELU), chain(conv(kernel=8), RELU)),
    ("1x1 conv: same is valid", chain(conv(kernel=1, padding="same"), RELU), chain(conv(kernel=1), RELU)),
    ("padding (k-1)/2 is same", chain(conv(kernel=3, padding=1), RELU, schema=2),
     chain(conv(kernel=3, padding="same"), RELU)),
    ("activation after max pool", chain(conv(), pool(), TANH), chain(conv(), TANH, pool())),
]
DIFFERENT = [
    ("tanh∘tanh is not tanh", chain(conv(), TANH, TANH), chain(conv(), TANH)),
    ("leaky_relu∘leaky_relu is not leaky_relu", chain(conv(), LEAKY, LEAKY), chain(conv(), LEAKY)),
    ("relu after a conv is no no-op", chain(conv(), conv(), RELU), chain(conv(), conv())),
    ("relu after tanh clips", chain(conv(), TANH, RELU), chain(conv(), TANH)),
    ("activation after an avg pool", chain(conv(), pool(kind="avgpool2d"), TANH),
     chain(conv(), TANH, pool(kind="avgpool2d"))),
    ("a 1x1 pool with stride 2", chain(conv(), pool(1, stride=2)), chain(conv())),
    ("3x3 conv: same is not valid", chain(conv(padding="same"), RELU), chain(conv(), RELU)),
]


@pytest.mark.parametrize("name,noisy,clean", EQUAL, ids=[e[0] for e in EQUAL])
def test_no_ops_give_the_canonical_form_of_the_model_without_them(name, noisy, clean):
    assert spec_hash(noisy) != spec_hash(clean)
    assert canonical_spec(noisy) == canonical_spec(clean)
    assert canonical_hash(noisy) == canonical_hash(clean)
    assert canonicalise(noisy).notes  # says what it removed or rewrote
    assert analyse(noisy).total_params == analyse(clean).total_params
    assert same_function(noisy, clean)


@pytest.mark.parametrize("name,a,b", DIFFERENT, ids=[d[0] for d in DIFFERENT])
def test_layers_that_change_the_function_are_kept(name, a, b):
    assert canonical_hash(a) != canonical_hash(b)


def test_two_dropouts_merge_into_one_of_the_combined_rate():
    # Keep probabilities multiply: (1 - 0.5)(1 - 0.25) = 0.375, a rate of 0.625.
    merged = canonical_spec(chain(conv(), dropout(0.5), dropout(0.25)))
    assert merged["layers"][1:] == [{"type": "dropout", "rate": 0.625}]
    assert canonical_hash(chain(conv(), dropout(0.5), dropout(0.25))) == canonical_hash(chain(conv(), dropout(0.625)))


def test_rules_compose_and_the_form_is_a_fixed_point():
    noisy = chain(conv(), pool(), RELU, dropout(0.0), RELU, pool(1), {"type": "dense", "units": 8}, SIGMOID, RELU)
    canonical = canonicalise(noisy)
    assert [layer["type"] for layer in canonical.spec["layers"]] == ["conv2d", "activation", "maxpool2d", "dense",
                                                                     "activation"]
    assert len(canonical.notes) == 5
    assert canonical_spec(canonical.spec) == canonical.spec and not canonicalise(canonical.spec).notes
    assert same_function(noisy, canonical.spec)


def test_graphs_keep_their_merges_and_reconnect_around_removed_layers():
    graph = {"schema": 2, "input": INPUT, "layers": [
        conv(4, 3, padding="same"), RELU,
        {**RELU, "inputs": [1]},                         # 2: relu of a relu: removed
        conv(4, 3, padding="same"),                      # 3 reads 2, then 1
        {"type": "add", "inputs": [3, 2]}, RELU]}
    canonical = canonical_spec(graph)
    assert [layer["type"] for layer in canonical["layers"]] == ["conv2d", "activation", "conv2d", "add", "activation"]
    assert canonical["layers"][3]["inputs"] == [1, 2]
    clean = {"schema": 2, "input": INPUT, "layers": [
        conv(4, 3, padding="same"), RELU, conv(4, 3, padding="same"), {"type": "add", "inputs": [2, 1]}, RELU]}
    assert canonical_hash(graph) == canonical_hash(clean)
    assert same_function(graph, clean)


def test_spec_hashes_never_change_and_equal_the_canonical_hash_where_no_rule_applies():
    """Spec hashes name event-log content: the canonical form is a separate key."""
    demo = os.path.join(os.path.dirname(os.path.dirname(__file__)), "demo_logs")
    runs = sorted(r for r in os.listdir(demo) if os.path.isfile(os.path.join(demo, r, "request.json")))[:12]
    for run in runs:  # the hash recorded in the event file when the demo was trained
        record = model_record(demo, run)
        assert spec_hash(record["spec"]) == record["spec_hash"]
    assert len(runs) >= 10
    # a fixed value: this chain's spec hash from before canonical forms existed
    assert spec_hash(chain(conv(), RELU)) == "60446ef73c600a9c"
    rng = random.Random(3)
    clean = 0
    for spec in sample_specs(60, [1, 8, 8], 10, seed=rng.randrange(1000)).specs:
        c = canonicalise(spec)
        if not c.notes:
            clean += 1
            assert c.hash == spec_hash(spec) and c.spec == normalise_spec(spec)
        else:
            assert c.hash != spec_hash(spec)
    assert clean > 0


def test_canonicalise_refuses_an_invalid_spec():
    with pytest.raises(ValueError, match="not a valid spec"):
        canonicalise(chain(pool(20)))


# --------------------------------------------------------------------------- duplicate checks


def test_a_variation_that_changes_nothing_is_a_duplicate_of_the_parent_named_in_the_summary():
    # Removing either relu of relu∘relu leaves the same model: every draw is the parent.
    parent = chain(conv(), RELU, RELU, {"type": "dense", "units": 16})
    out = generate([{"id": "run-p", "spec": parent}], "variation",
                   {"count": 3, "max_changes": 1, "change_types": ["remove"], "layers": [1, 2], "seed": 1})
    assert out["candidates"] == [] and out["made"] == 0
    assert out["duplicates"] == [{"duplicate_of": "run-p", "count": 300}]
    assert "300x same model as a parent" in out["summary"] and "same model as run-p (300x)" in out["summary"]
    # A 1x1 convolution's padding "valid" -> "same" is a no-op reparameterisation.
    parent = chain(conv(8, 1), TANH, {"type": "dense", "units": 16})
    out = generate([{"id": "run-q", "spec": parent}], "variation",
                   {"count": 20, "max_changes": 1, "change_types": ["reparameterise"], "layers": [0], "seed": 2})
    assert out["duplicates"] and out["duplicates"][0]["duplicate_of"] == "run-q"
    for c in out["candidates"]:
        assert canonical_hash(c["spec"]) != canonical_hash(parent) and c["duplicate_of"] is None
        assert "padding" not in c["changes"][0]


def test_variations_never_repeat_an_existing_model_in_disguise():
    parent = chain(conv(), RELU, pool(), {"type": "dense", "units": 16})
    first = variations(parent, n=30, max_changes=2, seed=5)
    known = KnownModels()
    for i, c in enumerate(first):
        known.add_model(c.spec, f"run-{i}")
    # The same draws again, with the made ones now existing models: none may come back, even with a no-op added.
    again = variations(parent, n=30, max_changes=2, seed=5, exclude_hashes=known)
    made = {canonical_hash(c.spec) for c in first}
    assert not made & {canonical_hash(c.spec) for c in again}
    assert again.rejected["duplicate of an existing model"] >= len(first)
    assert set(again.duplicates) <= {f"run-{i}" for i in range(len(first))} and again.duplicates
    assert "same model as run-" in again.summary()


def test_ablation_of_a_no_op_is_the_parent_and_names_it():
    parent = chain(conv(), RELU, RELU, {"type": "dense", "units": 16})
    out = generate([{"id": "run-p", "spec": parent}], "ablation", {"layers": [1, 2, 3]})
    by_change = {c["changes"][0].split(" ")[2]: c for c in out["candidates"]}
    assert sorted(by_change) == ["1", "3"]  # removing layer 2 makes the same child as removing layer 1
    c = by_change["1"]
    assert not c["valid"] and c["duplicate_of"] == "run-p"
    assert c["reason"].startswith("same model as the parent once no-ops are removed (layer 2 activation relu")
    assert by_change["3"]["valid"] and by_change["3"]["duplicate_of"] is None
    assert out["duplicates"] == [{"duplicate_of": "run-p", "count": 2}]


def test_ablation_names_the_existing_model_it_duplicates():
    parent = chain(conv(), TANH, pool(), {"type": "dense", "units": 16})
    known = KnownModels()
    known.add_model(chain(conv(), pool(), TANH, {"type": "dense", "units": 16}, dropout(0.0)), "init-s0-007")
    known.add_model(chain(conv(), TANH, pool(), RELU), "init-s0-009")  # not a child of this parent
    children = ablations(parent, exclude_hashes=known, layers=[3], parent_id="run-p")
    assert children[0].valid  # removing the dense layer: no existing model
    children = ablations(chain(conv(), TANH, pool(), {"type": "dense", "units": 16}, {"type": "dense", "units": 8}),
                         exclude_hashes=known, layers=[4], parent_id="run-p")
    (child,) = children
    assert not child.valid and child.duplicate_of == "init-s0-007"
    assert child.reason.startswith("same model as existing model init-s0-007")
    assert children.duplicates == {"init-s0-007": 1}


def test_the_sampler_never_draws_an_existing_model_in_disguise():
    base = sample_specs(20, [1, 8, 8], 10, seed=2)
    noisy = [dict(spec, layers=spec["layers"] + [dropout(0.0)]) for spec in base.specs]
    excluded = frozenset(spec_hash(s) for s in noisy) | frozenset(canonical_hash(s) for s in noisy)
    again = sample_specs(20, [1, 8, 8], 10, seed=2, exclude_hashes=excluded)
    assert not {canonical_hash(s) for s in again.specs} & {canonical_hash(s) for s in base.specs}
    assert again.rejected["duplicate of an existing model"] >= 20
    # and within one population no two models are the same once no-ops are removed
    population = sample_specs(60, [1, 8, 8], 10, seed=4).specs
    assert len({canonical_hash(s) for s in population}) == len(population)


def test_known_models_remember_the_first_owner_and_the_exact_hashes():
    known = KnownModels()
    known.add_model(chain(conv(), RELU, RELU), "a")
    known.add_model(chain(conv(), RELU), "b")
    assert known.owners[canonical_hash(chain(conv(), RELU))] == "a"
    assert known.exact == {spec_hash(chain(conv(), RELU, RELU)): "a", spec_hash(chain(conv(), RELU)): "b"}
    assert copy.copy(set(known)) == set(known.owners)
