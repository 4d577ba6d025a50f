"""Tests for remap_tb.spec.operators (ablation, variation, region generation) and spec.glyph."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remap_tb.spec.analysis import analyse
from remap_tb.spec.constraints import Constraints
from remap_tb.spec.glyph import glyph
from remap_tb.spec.hashing import spec_hash
from remap_tb.spec.operators import CHANGE_TYPES, ablations, describe, generate, variations
from remap_tb.spec.sampler import sample_specs
from remap_tb.spec.schema import LAYER_TYPES, normalise_spec


def make_spec(layers, shape=(1, 8, 8), classes=10):
    return {"schema": 1, "input": {"shape": list(shape), "num_classes": classes}, "layers": layers}


def conv(filters, kernel, **extra):
    return {"type": "conv2d", "filters": filters, "kernel_size": kernel, **extra}


def pool(size, kind="maxpool2d"):
    return {"type": kind, "pool_size": size}


# A small CNN on 8x8 digits: conv 6x6 -> relu -> pool 3x3 -> dropout -> dense 32 -> relu.
SMALL = make_spec([conv(16, 3), {"type": "activation", "fn": "relu"}, pool(2), {"type": "dropout", "rate": 0.25},
                   {"type": "dense", "units": 32}, {"type": "activation", "fn": "relu"}])


def fifteen_layers():
    same = {"padding": "same"}
    return make_spec([
        conv(16, 3, **same), {"type": "batchnorm"}, {"type": "activation", "fn": "relu"},
        conv(16, 3, **same), {"type": "activation", "fn": "relu"}, pool(2),
        conv(32, 3, **same), {"type": "batchnorm"}, {"type": "activation", "fn": "relu"}, pool(2),
        conv(64, 3, **same), {"type": "activation", "fn": "relu"}, pool(2),
        {"type": "dropout", "rate": 0.25}, {"type": "dense", "units": 64},
    ], shape=(3, 32, 32))


# --------------------------------------------------------------------------- ablation


def test_ablation_one_child_per_layer_without_that_layer():
    parent = normalise_spec(SMALL)
    children = ablations(SMALL)
    assert len(children) == len(SMALL["layers"])
    for i, child in enumerate(children):
        assert child.valid and child.reason is None
        assert child.spec["layers"] == parent["layers"][:i] + parent["layers"][i + 1:]
        assert child.key == spec_hash(child.spec)
        assert child.params == analyse(child.spec).total_params
    assert children[2].changes == ("removed layer 2 maxpool2d (pool_size 2)",)
    assert children[0].changes == ("removed layer 0 conv2d (filters 16, kernel_size 3)",)
    assert children[3].changes == ("removed layer 3 dropout (rate 0.25)",)


def test_ablation_of_selected_layers_only():
    children = ablations(SMALL, layers=[4, 1])
    assert [c.changes[0].split(" ")[2] for c in children] == ["1", "4"]
    with pytest.raises(ValueError, match="out of range"):
        ablations(SMALL, layers=[6])


def test_ablation_over_budget_child_is_marked_with_the_reason():
    # conv 26x26 -> pool 13x13 -> dense: removing the pool quadruples the dense layer.
    parent = make_spec([conv(8, 3), pool(2), {"type": "dense", "units": 64}], shape=(1, 28, 28))
    budget = Constraints(max_params=100_000)
    children = ablations(parent, constraints=budget)
    removed_pool = children[1]
    assert not removed_pool.valid
    assert "over the budget of 100,000" in removed_pool.reason
    assert removed_pool.params == analyse(removed_pool.spec).total_params > 100_000
    assert children[0].valid and children[2].valid
    assert children.made == 2 and children.rejected["over the parameter budget"] == 1


def test_ablation_duplicates_and_existing_models_are_marked():
    # tanh, unlike relu, is not idempotent: removing one of two tanh layers changes the model
    # (removing one of two relus does not: tests/test_canonical.py).
    tanh = {"type": "activation", "fn": "tanh"}
    parent = make_spec([conv(8, 3), tanh, tanh])
    existing = {spec_hash(make_spec([tanh, tanh]))}
    children = ablations(parent, exclude_hashes=existing)
    assert children[0].reason == "same model as an existing model"
    assert children[1].valid
    assert children[2].reason == "same model as removing layer 1" and children[2].key == children[1].key


def test_ablation_never_needs_a_repair_because_removal_only_enlarges_what_follows():
    # Removing a layer can only make later feature maps larger (every layer maps
    # H -> (H-k)//s + 1 <= H, monotone in H), so a valid parent's ablations all fit.
    for spec in sample_specs(40, [1, 8, 8], 10, seed=5).specs:
        parent = normalise_spec(spec)
        for i, child in enumerate(ablations(spec)):
            assert child.spec["layers"] == parent["layers"][:i] + parent["layers"][i + 1:]
            assert analyse(child.spec).ok


def test_ablation_children_respect_other_constraints():
    parent = make_spec([conv(8, 3), {"type": "batchnorm"}, {"type": "activation", "fn": "relu"}])
    children = ablations(parent, constraints=Constraints(allowed_types=frozenset({"conv2d", "activation"})))
    assert [c.valid for c in children] == [False, True, False]
    assert "not allowed: batchnorm" in children[0].reason


# --------------------------------------------------------------------------- repair


def test_variation_drops_a_following_pool_that_no_longer_fits():
    # conv k3: 8 -> 6, pool 3: 6 -> 2, pool 2: 2 -> 1. A kernel of 5 gives 4 -> 1, so the last pool no longer fits.
    parent = make_spec([conv(8, 3), pool(3), pool(2)])
    children = variations(parent, n=8, max_changes=1, change_types=["reparameterise"], layers=[0], seed=0)
    assert len(children) == 8  # filters 4/16/32/64/128, kernel 1/5, padding same
    grown = [c for c in children if c.changes[0] == "layer 0 conv2d: kernel_size 3 → 5"]
    assert len(grown) == 1
    assert grown[0].changes[1:] == ("dropped layer 2 maxpool2d (pool_size 2): larger than its 1x1 input after the change",)
    assert [layer["type"] for layer in grown[0].spec["layers"]] == ["conv2d", "maxpool2d"]
    for child in children:
        assert analyse(child.spec).ok
        if child is not grown[0]:
            assert len(child.changes) == 1 and len(child.spec["layers"]) == 3


def test_variation_does_not_drop_the_layer_it_changed():
    # Growing the only pool past its input cannot be repaired by dropping it: no such child is made.
    parent = make_spec([conv(8, 5), pool(2)])  # 8 -> 4 -> 2
    children = variations(parent, n=10, max_changes=1, change_types=["reparameterise"], layers=[1], seed=0,
                          max_tries=50)
    assert [c.changes for c in children] == [("layer 1 maxpool2d: pool_size 2 → 3",)]
    assert children.rejected == {"duplicate of another candidate": 49}


# --------------------------------------------------------------------------- variation


def test_variation_is_reproducible_with_a_seed():
    a = variations(SMALL, n=6, seed=7)
    b = variations(SMALL, n=6, seed=7)
    c = variations(SMALL, n=6, seed=8)
    assert len(a) == 6
    assert [(x.spec, x.changes) for x in a] == [(x.spec, x.changes) for x in b]
    assert [x.key for x in a] != [x.key for x in c]


def test_variation_changes_count_and_uniqueness():
    children = variations(SMALL, n=20, max_changes=2, seed=1)
    assert len(children) == 20
    keys = [c.key for c in children]
    assert len(set(keys)) == 20 and spec_hash(SMALL) not in keys
    for c in children:
        assert 1 <= len([t for t in c.changes if not t.startswith("dropped")]) <= 2


def text(value):
    return format(value, "g") if isinstance(value, float) else str(value)


def test_reparameterise_text_names_the_layer_and_both_values():
    pattern = re.compile(r"^layer (\d+) (\w+): (\w+) (\S+) → (\S+)$")
    parent = normalise_spec(SMALL)
    children = variations(SMALL, n=15, max_changes=1, change_types=["reparameterise"], seed=3)
    assert len(children) == 15
    for child in children:
        index, layer_type, name, old, new = pattern.match(child.changes[0]).groups()
        index = int(index)
        assert parent["layers"][index]["type"] == layer_type
        assert text(parent["layers"][index][name]) == old
        assert text(child.spec["layers"][index][name]) == new != old


def test_remove_insert_replace_texts_match_the_child():
    parent = normalise_spec(SMALL)
    for child in variations(SMALL, n=10, max_changes=1, change_types=["remove"], seed=0):
        index = int(re.match(r"^removed layer (\d+) ", child.changes[0]).group(1))
        assert child.changes[0] == f"removed layer {index} {describe(parent['layers'][index])}"
        assert child.spec["layers"] == parent["layers"][:index] + parent["layers"][index + 1:]
    for child in variations(SMALL, n=10, max_changes=1, change_types=["insert"], seed=0):
        m = re.match(r"^inserted (.+) (after layer (\d+)|at the start)$", child.changes[0])
        position = int(m.group(3)) + 1 if m.group(3) is not None else 0
        assert describe(child.spec["layers"][position]) == m.group(1)
        assert child.spec["layers"][:position] == parent["layers"][:position]
        assert child.spec["layers"][position + 1:] == parent["layers"][position:]
    for child in variations(SMALL, n=10, max_changes=1, change_types=["replace"], seed=0):
        m = re.match(r"^replaced layer (\d+) (\w+) with (.+)$", child.changes[0])
        index = int(m.group(1))
        assert parent["layers"][index]["type"] == m.group(2)
        assert describe(child.spec["layers"][index]) == m.group(3)
        assert child.spec["layers"][index] != parent["layers"][index]


def test_changes_touch_only_the_selected_layers():
    parent = normalise_spec(SMALL)
    for child in variations(SMALL, n=10, change_types=["replace", "reparameterise", "remove"], layers=[0, 4], seed=2):
        for text in child.changes:
            assert re.search(r"layer (0|4)\b", text), text
        for i in (1, 2, 3, 5):
            assert parent["layers"][i] in child.spec["layers"]


def test_no_duplicates_of_excluded_hashes():
    first = variations(SMALL, n=10, max_changes=1, seed=4)
    again = variations(SMALL, n=10, max_changes=1, seed=4, exclude_hashes={c.key for c in first})
    assert len(again) == 10
    assert not {c.key for c in first} & {c.key for c in again}
    assert again.rejected["duplicate of an existing model"] > 0


def test_allowed_types_are_respected_by_insert_and_replace():
    allowed = frozenset({"conv2d", "activation", "maxpool2d", "dense"})
    parent = make_spec([conv(8, 3), {"type": "activation", "fn": "relu"}, pool(2)])
    children = variations(parent, n=20, change_types=["insert", "replace"], seed=0,
                          constraints=Constraints(allowed_types=allowed))
    assert len(children) == 20
    for child in children:
        assert {layer["type"] for layer in child.spec["layers"]} <= allowed


def test_impossible_constraints_make_nothing_and_say_why():
    children = variations(SMALL, n=5, seed=0, constraints=Constraints(max_params=10), max_tries=300)
    assert len(children) == 0 and children.tries == 300
    assert children.rejected["over the parameter budget"] > 0
    assert children.summary().startswith("made 0 of 5 variation(s) in 300 draw(s); rejected: ")


@st.composite
def parents_and_constraints(draw):
    shape = draw(st.sampled_from([(1, 8, 8), (3, 32, 32), (1, 28, 28)]))
    parent = sample_specs(1, shape, 10, seed=draw(st.integers(0, 10_000))).specs[0]
    max_params = draw(st.none() | st.integers(500, 3_000_000))
    min_params = draw(st.none() | st.integers(0, 2_000))
    if max_params is not None and min_params is not None and min_params > max_params:
        min_params = None
    allowed = draw(st.none() | st.sets(st.sampled_from(LAYER_TYPES), min_size=1).map(frozenset))
    max_depth = draw(st.none() | st.integers(1, 14))
    return parent, Constraints(min_params, max_params, allowed, max_depth)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parents_and_constraints(), st.integers(0, 2**32), st.integers(1, 4),
       st.sets(st.sampled_from(CHANGE_TYPES), min_size=1))
def test_every_child_is_valid_and_within_constraints(case, seed, max_changes, change_types):
    parent, constraints = case
    exclude = {spec_hash(c.spec) for c in ablations(parent)}
    children = variations(parent, n=5, max_changes=max_changes, change_types=sorted(change_types), seed=seed,
                          constraints=constraints, exclude_hashes=exclude, max_tries=150)
    assert len(children) <= 5
    assert len(children) == 5 or children.tries == 150
    assert len({c.key for c in children}) == len(children)
    for child in children:
        analysis = analyse(child.spec)
        assert analysis.ok and child.valid
        assert constraints.violations(child.spec, analysis) == []
        assert child.key == spec_hash(child.spec) not in exclude | {spec_hash(parent)}
        assert child.params == analysis.total_params
        assert 1 <= len([t for t in child.changes if not t.startswith("dropped")]) <= max_changes
    for child in ablations(parent, constraints=constraints):
        analysis = analyse(child.spec)
        if child.valid:
            assert analysis.ok and constraints.violations(child.spec, analysis) == []
        else:
            assert child.reason


# --------------------------------------------------------------------------- region / generate


def region():
    other = make_spec([conv(8, 3), pool(2), {"type": "dense", "units": 16}])
    third = make_spec([conv(32, 5), {"type": "activation", "fn": "tanh"}])
    return [{"id": "run-a", "spec": SMALL}, {"id": "run-b", "spec": other}, {"id": "run-c", "spec": third}]


def test_region_variations_are_spread_round_robin_and_deterministic():
    parents = region()
    out = generate(parents, "variation", {"count": 7, "seed": 11}, Constraints(), set())
    assert out["made"] == out["wanted"] == 7 and len(out["candidates"]) == 7
    assert [c["parent"] for c in out["candidates"]] == ["run-a", "run-b", "run-c"] * 2 + ["run-a"]
    assert out == generate(parents, "variation", {"count": 7, "seed": 11}, Constraints(), set())
    single = generate(parents[:1], "variation", {"count": 3, "seed": 11}, Constraints(), set())
    assert [c["key"] for c in single["candidates"]] == [c.key for c in variations(SMALL, n=3, seed=11)]


def test_generate_candidate_shape_matches_http_api():
    out = generate(region()[:1], "variation", {"count": 2}, Constraints(), set())
    for c in out["candidates"]:
        assert set(c) == {"key", "parent", "spec", "params", "changes", "valid", "reason", "glyph", "duplicate_of"}
        assert c["duplicate_of"] is None
        analysis = analyse(c["spec"])
        assert c["valid"] is True and c["reason"] is None and c["spec"] == analysis.normalised
        assert c["key"] == spec_hash(c["spec"]) and c["params"] == analysis.total_params
        assert c["glyph"] == glyph(c["spec"], analysis)
        assert sum(g["params"] for g in c["glyph"]) == c["params"]
    assert out["summary"].startswith("made 2 of 2 variation(s)")


def test_region_ablation_lists_every_child_once_with_invalid_ones_marked():
    parents = region()
    existing = {spec_hash(p["spec"]) for p in parents}
    out = generate(parents, "ablation", {}, Constraints(max_params=5_000), existing)
    assert [c["parent"] for c in out["candidates"][:3]] == ["run-a", "run-b", "run-c"]
    assert len(out["candidates"]) == 6 + 3 + 2 == out["wanted"]
    assert len({c["key"] for c in out["candidates"]}) == len(out["candidates"])
    invalid = [c for c in out["candidates"] if not c["valid"]]
    assert invalid and all(c["reason"] for c in invalid)
    assert out["made"] == len(out["candidates"]) - len(invalid)
    assert "can be trained" in out["summary"] and "not usable" in out["summary"]


def test_region_ablation_reports_the_same_child_of_two_parents_once():
    a = make_spec([conv(8, 3), {"type": "activation", "fn": "relu"}])
    b = make_spec([conv(8, 3), {"type": "activation", "fn": "tanh"}])
    out = generate([{"id": "a", "spec": a}, {"id": "b", "spec": b}], "ablation", {"layers": [1]}, Constraints(), set())
    assert [c["parent"] for c in out["candidates"]] == ["a"]
    assert "same model as a child of another parent" in out["summary"]


def test_glyph_has_fn_rate_and_classifier():
    analysis = analyse(SMALL)
    entries = glyph(analysis.normalised, analysis)
    assert [e["type"] for e in entries] == [layer["type"] for layer in SMALL["layers"]] + ["classifier"]
    assert entries[1]["fn"] == "relu" and entries[3]["rate"] == 0.25
    assert entries[0] == {"index": 0, "type": "conv2d", "output_shape": [16, 6, 6], "params": 160}
    assert entries[-1] == {"index": 6, "type": "classifier", "output_shape": [10], "params": 330}


@pytest.mark.parametrize("kind, options, message", [
    ("mutation", {}, "kind must be one of"),
    ("variation", [], "options must be an object"),
    ("variation", {"colour": 1}, "unknown option"),
    ("variation", {"layers": [6]}, "out of range"),
    ("ablation", {"layers": [-1]}, "out of range"),
    ("variation", {"layers": []}, "non-empty list"),
    ("variation", {"layers": [True]}, "integers"),
    ("variation", {"layers": [1, 1]}, "repeated"),
    ("variation", {"count": 0}, "count must be an integer 1..100"),
    ("variation", {"count": 101}, "count must be an integer 1..100"),
    ("variation", {"count": "5"}, "count must be an integer"),
    ("variation", {"max_changes": 11}, "max_changes must be an integer 1..10"),
    ("variation", {"change_types": ["swap"]}, "unknown type"),
    ("variation", {"change_types": []}, "non-empty list"),
    ("variation", {"seed": 1.5}, "seed must be an integer"),
    ("variation", {"seed": None}, "seed must be an integer"),
])
def test_bad_options_raise_value_error(kind, options, message):
    with pytest.raises(ValueError, match=message):
        generate([{"id": "a", "spec": SMALL}], kind, options, Constraints(), set())


def test_bad_parents_raise_value_error():
    with pytest.raises(ValueError, match="non-empty list"):
        generate([], "ablation", {}, Constraints(), set())
    with pytest.raises(ValueError, match="'id' and a 'spec'"):
        generate([{"spec": SMALL}], "ablation", {}, Constraints(), set())
    with pytest.raises(ValueError, match="invalid spec"):
        generate([{"id": "x", "spec": make_spec([pool(9)])}], "variation", {}, Constraints(), set())


def test_fifteen_layer_model_gives_twenty_variations():
    out = generate([{"id": "big", "spec": fifteen_layers()}], "variation", {"count": 20}, Constraints(), set())
    assert out["made"] == 20
