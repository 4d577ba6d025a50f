"""Operators, sampler and HParams on schema 2 specs (residual graphs): ablation, block removal, skip changes."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from remap_tb.spec.analysis import analyse
from remap_tb.spec.constraints import Constraints
from remap_tb.spec.hashing import spec_hash
from remap_tb.spec.operators import CHANGE_TYPES, DEFAULT_CHANGE_TYPES, ablations, generate, variations
from remap_tb.spec.sampler import sample_specs
from remap_tb.spec.schema import layer_inputs, spec_schema

RELU = {"type": "activation", "fn": "relu"}
BN = {"type": "batchnorm"}


def conv(filters, kernel=3, stride=1, padding=1, bias=False, **extra):
    return {"type": "conv2d", "filters": filters, "kernel_size": kernel, "stride": stride, "padding": padding,
            "bias": bias, **extra}


def resnet(stages=(16, 32, 64), blocks=3, shape=(3, 32, 32)):
    """A CIFAR ResNet (He et al. 2016): stem conv-bn-relu, basic blocks, 1x1 conv + bn projections, GAP."""
    layers = [conv(stages[0]), BN, RELU]
    channels = stages[0]
    for stage, width in enumerate(stages):
        for block in range(blocks):
            start = len(layers) - 1
            stride = 2 if stage > 0 and block == 0 else 1
            layers += [conv(width, stride=stride), BN, RELU, conv(width), BN]
            main = len(layers) - 1
            shortcut = start
            if stride != 1 or width != channels:
                layers += [conv(width, 1, stride, padding=0, inputs=[start]), BN]
                shortcut = len(layers) - 1
            layers += [{"type": "add", "inputs": [main, shortcut]}, RELU]
            channels = width
    layers.append({"type": "globalavgpool"})
    return {"schema": 2, "input": {"shape": list(shape), "num_classes": 10}, "layers": layers}


# A small residual net on digits: stem (0-2), an identity block (3-8, relu 9),
# a projection block 8 -> 16 channels, 8x8 -> 4x4 (10-14 main, 15-16 shortcut, add 17, relu 18), GAP 19.
SMALL = resnet(stages=(8, 16), blocks=1, shape=(1, 8, 8))


def types(spec):
    return [layer["type"] for layer in spec["layers"]]


def test_the_fixtures_are_what_they_say():
    assert analyse(resnet()).total_params == 272_474  # the known answer
    a = analyse(SMALL)
    assert a.ok and a.merge_count == 2 and a.depth == 20
    assert [a.layers[i].output_shape for i in (9, 14, 16, 18)] == [(8, 8, 8), (16, 4, 4), (16, 4, 4), (16, 4, 4)]
    assert a.total_params == 72 + 16 + 2 * (576 + 16) + 1152 + 32 + 2304 + 32 + 128 + 32 + 170


# --------------------------------------------------------------------------- ablation


def test_ablating_a_conv_in_a_block_reconnects_its_consumer_and_keeps_the_graph():
    parent = analyse(SMALL)
    [child] = ablations(SMALL, layers=[6])  # the block's second conv 8->8
    assert child.valid and child.changes == ("removed layer 6 conv2d (filters 8, kernel_size 3, padding 1, bias False)",)
    a = analyse(child.spec)
    assert a.ok and child.spec["schema"] == 2
    assert child.params == parent.total_params - 8 * 8 * 9 == a.total_params
    # the batchnorm (now 6) reads the relu (5); the add (now 7) reads it and the stem's relu (2)
    assert layer_inputs(child.spec["layers"][6], 6) == [5]
    assert child.spec["layers"][7] == {"type": "add", "inputs": [2, 6]}
    # the projection conv (was 15, now 14) still reads the first block's relu (was 9, now 8)
    assert child.spec["layers"][14]["inputs"] == [8]
    assert types(child.spec) == types(SMALL)[:6] + types(SMALL)[7:]


def test_ablating_the_first_layer_of_a_block_points_the_shortcut_and_the_branch_at_the_same_input():
    [child] = ablations(SMALL, layers=[9])  # the relu after the first add: both branches of block 2 read the add
    assert child.valid
    assert layer_inputs(child.spec["layers"][9], 9) == [8] and child.spec["layers"][14]["inputs"] == [8]


def test_ablating_an_add_keeps_the_residual_branch_and_drops_a_projection_shortcut():
    by_index = {int(re.match(r"removed layer (\d+)", c.changes[0]).group(1)): c for c in ablations(SMALL)}
    identity = by_index[8]  # add of the identity block: the shortcut was the stem's relu, nothing to drop
    assert identity.valid and identity.changes == ("removed layer 8 add",)
    assert analyse(identity.spec).total_params == analyse(SMALL).total_params
    assert analyse(identity.spec).merge_count == 1
    projection = by_index[17]
    assert projection.valid and projection.changes == (
        "removed layer 17 add",
        "dropped layer 15 conv2d (filters 16, kernel_size 1, stride 2, bias False): no longer used by the output",
        "dropped layer 16 batchnorm: no longer used by the output")
    assert types(projection.spec) == types(SMALL)[:15] + ["activation", "globalavgpool"]
    assert analyse(projection.spec).total_params == analyse(SMALL).total_params - 128 - 32
    assert projection.spec["schema"] == 2  # integer padding and bias false are schema 2 fields


def test_ablating_the_last_layer_of_a_graph_makes_its_input_the_output():
    spec = {"schema": 2, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
        conv(4), RELU, conv(4, inputs=[0]), {"type": "concat", "inputs": [1, 2]}]}
    [child] = ablations(spec, layers=[3])
    assert child.valid and child.spec["layers"] == [analyse(spec).normalised["layers"][0], RELU]
    assert child.changes[1:] == ("dropped layer 2 conv2d (filters 4, kernel_size 3, padding 1, bias False): "
                                 "no longer used by the output",)
    assert child.spec["schema"] == 2  # still uses integer padding


def test_ablating_the_only_layer_of_a_branch_drops_an_add_left_with_one_input():
    spec = {"schema": 2, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
        conv(4), RELU, {"type": "add", "inputs": [0, 1]}, {"type": "dense", "units": 8}]}
    [child] = ablations(spec, layers=[1])
    assert child.valid and child.changes[1:] == ("dropped layer 2 add: its inputs became the same layer",)
    assert types(child.spec) == ["conv2d", "dense"] and child.spec["schema"] == 2


def test_ablation_of_a_projection_conv_is_rejected_with_the_shape_conflict():
    [child] = ablations(SMALL, layers=[15])
    assert not child.valid
    assert child.reason.startswith("layer 16 add: input ") and "add needs identical shapes" in child.reason


def test_block_ablation_removes_whole_blocks_and_reads_the_block_input():
    children = ablations(SMALL, blocks=True)
    assert [c.changes[0] for c in children] == [
        "removed residual block layers 3-8 (conv2d, batchnorm, activation, conv2d, batchnorm, add)",
        "removed residual block layers 10-17 "
        "(conv2d, batchnorm, activation, conv2d, batchnorm, conv2d, batchnorm, add)"]
    first, second = children
    assert first.valid and types(first.spec) == types(SMALL)[:3] + types(SMALL)[9:]
    assert first.params == analyse(SMALL).total_params - 2 * (576 + 16)
    assert analyse(first.spec).merge_count == 1
    # removing the downsampling block leaves 8 channels for the head: valid, with a smaller classifier
    assert second.valid and types(second.spec) == types(SMALL)[:10] + ["activation", "globalavgpool"]
    assert second.params == analyse(SMALL).total_params - (1152 + 32 + 2304 + 32 + 128 + 32) - 80


def test_block_ablation_of_resnet20_and_selection_by_any_layer_of_the_block():
    children = ablations(resnet(), blocks=True)
    assert len(children) == 9
    # Removing a downsampling block breaks the next identity add (2 children). Removing any of a
    # stage's identical blocks leaves its relu after the previous block's relu: relu∘relu = relu,
    # so the 2nd and 3rd block of each stage give the same model as the 1st (canonical form).
    assert sum(c.valid for c in children) == 3
    shapes = [c for c in children if not c.valid and "add needs identical shapes" in c.reason]
    same = [c for c in children if not c.valid and c.reason.startswith("same model as removing the block ending at")]
    assert len(shapes) == 2 and len(same) == 4 and all("once no-ops are removed" in c.reason for c in same)
    assert all("activation relu removed" in c.reason for c in same)
    out = generate([{"id": "r", "spec": SMALL}], "ablation", {"blocks": True, "layers": [5]})
    assert [c["changes"][0].split(" (")[0] for c in out["candidates"]] == ["removed residual block layers 3-8"]
    assert out["summary"] == "1 of 1 block ablation(s) can be trained"
    chain = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
        {"type": "conv2d", "filters": 4, "kernel_size": 3}]}
    out = generate([{"id": "c", "spec": chain}], "ablation", {"blocks": True})
    assert out["candidates"] == [] and "no residual block" in out["summary"]
    with pytest.raises(ValueError, match="ablation only"):
        generate([{"id": "r", "spec": SMALL}], "variation", {"blocks": True})
    with pytest.raises(ValueError, match="blocks must be true or false"):
        generate([{"id": "r", "spec": SMALL}], "ablation", {"blocks": 1})


# --------------------------------------------------------------------------- skip connections


CHAIN = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
    {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same"}, RELU,          # 8x8x8
    {"type": "conv2d", "filters": 16, "kernel_size": 3, "padding": "same"}, RELU,         # 16x8x8
    {"type": "maxpool2d", "pool_size": 2}, {"type": "dense", "units": 16}]}              # 16x4x4, 16


def skip_children(spec, n=30, **kw):
    return variations(spec, n=n, max_changes=1, change_types=["add_skip"], max_tries=400, **kw)


def test_add_skip_without_projection_between_equal_shapes():
    children = skip_children(CHAIN, layers=[0, 1])
    texts = {c.changes[0]: c for c in children}
    assert set(texts) == {"added skip connection from layer 0 to after layer 1 (add)",  # layer 0 selected:
                          "added skip connection from the input to after layer 0 (add, with 1x1 conv2d projection 1→8)",
                          "added skip connection from the input to after layer 1 (add, with 1x1 conv2d projection 1→8)"}
    child = texts["added skip connection from layer 0 to after layer 1 (add)"]
    assert child.spec["schema"] == 2 and types(child.spec) == ["conv2d", "activation", "add", "conv2d",
                                                                "activation", "maxpool2d", "dense"]
    assert child.spec["layers"][2] == {"type": "add", "inputs": [0, 1]}
    a = analyse(child.spec)
    assert a.ok and a.total_params == analyse(CHAIN).total_params and a.merge_count == 1
    assert a.layers[2].output_shape == (8, 8, 8)


def test_add_skip_with_a_projection_when_channels_or_sides_differ():
    children = {c.changes[0]: c for c in skip_children(CHAIN)}
    channels = children["added skip connection from layer 1 to after layer 3 (add, with 1x1 conv2d projection 8→16)"]
    a = analyse(channels.spec)
    assert a.ok and a.total_params == analyse(CHAIN).total_params + 8 * 16
    assert channels.spec["layers"][4] == {"type": "conv2d", "filters": 16, "kernel_size": 1, "stride": 1,
                                          "padding": "valid", "bias": False, "inputs": [1]}
    assert channels.spec["layers"][5] == {"type": "add", "inputs": [3, 4]}
    assert a.layers[5].output_shape == (16, 8, 8)
    strided = children["added skip connection from layer 1 to after layer 4 "
                       "(add, with 1x1 conv2d projection 8→16, stride 2)"]
    a = analyse(strided.spec)
    assert a.ok and a.layers[5].output_shape == (16, 4, 4) and a.layers[5].params == 128
    assert a.total_params == analyse(CHAIN).total_params + 128
    # vectors of equal size join without a projection; the input (1x8x8) joins 8x8 maps through one
    assert "added skip connection from the input to after layer 1 (add, with 1x1 conv2d projection 1→8)" in children
    for text, child in children.items():
        assert analyse(child.spec).ok, text
        assert not re.search(r"after layer 5\b", text)  # nothing else has the dense layer's shape


def test_add_skip_respects_allowed_types():
    pools = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
        {"type": "maxpool2d", "pool_size": 2}, RELU, {"type": "maxpool2d", "pool_size": 2}]}
    allowed = frozenset({"conv2d", "activation", "maxpool2d", "add"})
    everything = {c.changes[0] for c in skip_children(pools, constraints=Constraints(allowed_types=allowed))}
    assert "added skip connection from the input to after layer 0 (add, with 1x1 conv2d projection 1→1, stride 2)" \
        in everything
    no_conv = {c.changes[0] for c in skip_children(pools, constraints=Constraints(allowed_types=allowed - {"conv2d"}))}
    assert no_conv == {t for t in everything if "projection" not in t} and no_conv
    assert not skip_children(pools, constraints=Constraints(allowed_types=allowed - {"add"}), n=1)


def test_remove_skip_drops_the_add_and_a_dead_projection_branch():
    children = variations(SMALL, n=5, max_changes=1, change_types=["remove_skip"], max_tries=50)
    texts = {c.changes[0]: c for c in children}
    assert set(texts) == {"removed skip connection into layer 8 add", "removed skip connection into layer 17 add"}
    child = texts["removed skip connection into layer 17 add"]
    assert child.changes[1:] == (
        "dropped layer 15 conv2d (filters 16, kernel_size 1, stride 2, bias False): no longer used by the output",
        "dropped layer 16 batchnorm: no longer used by the output")
    assert analyse(child.spec).merge_count == 1 and analyse(child.spec).ok


def test_default_change_types_are_the_chain_ones():
    assert DEFAULT_CHANGE_TYPES == ("replace", "reparameterise", "remove", "insert")
    assert set(CHANGE_TYPES) == set(DEFAULT_CHANGE_TYPES) | {"add_skip", "remove_skip"}
    for child in variations(SMALL, n=10, seed=3):
        assert not any(t.startswith(("added skip", "removed skip")) for t in child.changes)


def parent_inputs(spec):
    return [sorted(layer_inputs(layer, i)) for i, layer in enumerate(analyse(spec).normalised["layers"])]


def test_insert_on_a_graph_re_indexes_every_input():
    parent = parent_inputs(SMALL)
    children = variations(SMALL, n=15, max_changes=1, change_types=["insert"], seed=1)
    assert len(children) == 15
    for child in children:
        m = re.match(r"^inserted (.+) (after layer (\d+)|at the start)$", child.changes[0])
        after = int(m.group(3)) if m.group(3) is not None else -1
        new = after + 1
        inputs = parent_inputs(child.spec)
        assert inputs[new] == [after]
        # every other layer reads what it read in the parent, with `after` now read through the new layer
        back = {k: (k if k < new else after if k == new else k - 1) for k in range(-1, len(inputs))}
        for j, reads in enumerate(inputs):
            if j != new:
                assert sorted(back[k] for k in reads) == parent[j if j < new else j - 1]
                assert after not in reads or j == new


def test_remove_on_a_graph_re_indexes_every_input():
    parent = parent_inputs(SMALL)
    children = variations(SMALL, n=12, max_changes=1, change_types=["remove"], seed=2, max_tries=300)
    assert children
    for child in children:
        removed = int(re.match(r"^removed layer (\d+) ", child.changes[0]).group(1))
        if SMALL["layers"][removed]["type"] == "add":
            continue  # checked with the dropped branch in test_ablating_an_add_...
        assert len(child.changes) == 1
        inputs = parent_inputs(child.spec)
        [source] = parent[removed]
        for j, reads in enumerate(inputs):
            old = j if j < removed else j + 1
            expected = sorted(source if k == removed else k for k in parent[old])
            assert sorted(k if k < removed else k + 1 for k in reads) == expected


def test_two_hundred_seeded_variations_of_a_resnet_are_valid_or_rejected_with_a_reason():
    parent = resnet(stages=(8, 16, 32), blocks=2, shape=(1, 8, 8))
    made, rejected = 0, Counter()
    for seed in range(200):
        children = variations(parent, n=1, max_changes=3, change_types=CHANGE_TYPES, seed=seed, max_tries=3)
        made += len(children)
        rejected.update(children.rejected)
        for child in children:
            a = analyse(child.spec)
            assert a.ok and child.valid and child.key == spec_hash(child.spec) and child.params == a.total_params
            assert child.spec == a.normalised and child.spec["schema"] == spec_schema(child.spec["layers"])
    assert made > 100
    assert all(kind and not kind.startswith("layer ") for kind in rejected)  # grouped into kinds


def test_region_generate_mixes_chain_and_graph_parents():
    out = generate([{"id": "chain", "spec": CHAIN}, {"id": "res", "spec": SMALL}], "variation",
                   {"count": 6, "seed": 2, "change_types": list(CHANGE_TYPES)})
    assert out["made"] == 6
    assert [c["parent"] for c in out["candidates"]] == ["chain", "res"] * 3
    for c in out["candidates"]:
        a = analyse(c["spec"])
        assert a.ok and c["spec"] == a.normalised and c["spec"]["schema"] == spec_schema(c["spec"]["layers"])


# --------------------------------------------------------------------------- sampler


def test_residual_sampler_makes_valid_distinct_graphs_with_merges():
    budget = Constraints(max_params=100_000, max_depth=40)
    result = sample_specs(20, [1, 8, 8], 10, seed=4, constraints=budget, blocks="residual")
    assert len(result.specs) == 20
    assert len({spec_hash(s) for s in result.specs}) == 20
    for spec in result.specs:
        a = analyse(spec)
        assert a.ok and spec["schema"] == 2 and a.merge_count >= 1
        assert a.total_params <= 100_000 and a.depth <= 40
        assert spec["layers"][0]["type"] == "conv2d"
        assert a.layers[-1].output_shape is not None
        assert min(info.output_shape[-1] for info in a.layers if info.layer_type in ("conv2d", "add")) >= 2
        for info in a.layers:
            if info.layer_type == "add":
                assert all(s == info.input_shapes[0] for s in info.input_shapes)
    again = sample_specs(20, [1, 8, 8], 10, seed=4, constraints=budget, blocks="residual")
    assert again.specs == result.specs


def test_chain_sampler_is_unchanged_by_the_blocks_option():
    assert sample_specs(5, [1, 8, 8], 10, seed=9).specs == sample_specs(5, [1, 8, 8], 10, seed=9, blocks="chain").specs
    with pytest.raises(ValueError, match="blocks must be one of"):
        sample_specs(1, [1, 8, 8], 10, seed=0, blocks="dense")


# --------------------------------------------------------------------------- hparams


def test_hparams_have_merges_and_longest_path():
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import plugin_data_pb2

    from trainer.summaries import hparams_summary_for

    def columns(spec):
        request = {"id": "x", "spec": spec, "provenance": {"origin": "initial"},
                   "training": {"epochs": 1, "optimizer": "adam", "lr": 0.001}}
        summary = hparams_summary_for(request, 1, "digits")
        data = plugin_data_pb2.HParamsPluginData.FromString(summary.value[0].metadata.plugin_data.content)
        return {k: v.number_value for k, v in data.session_start_info.hparams.items() if v.HasField("number_value")}

    graph = columns(SMALL)
    assert graph["merges"] == 2 and graph["longest_path"] == analyse(SMALL).longest_path == 18
    assert graph["n_add"] == 2 and graph["n_concat"] == 0 and graph["n_conv2d"] == 6 and graph["depth"] == 20
    chain = columns(CHAIN)
    assert chain["merges"] == 0 and chain["longest_path"] == chain["depth"] == 6 and chain["n_add"] == 0
