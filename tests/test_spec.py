"""The architecture spec: validation messages, shapes, parameter counts, hashing."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from remap_tb.spec import Constraints, Limits, SpecError, analyse, check, spec_hash
from remap_tb.spec.sampler import sample_specs

REMAP_POPULATION = Path(__file__).resolve().parents[2] / "shared" / "data" / "remap_quickdraw_100.json"


def spec(*layers, shape=(1, 8, 8), classes=10):
    return {"schema": 1, "input": {"shape": list(shape), "num_classes": classes}, "layers": list(layers)}


EXAMPLE = spec(
    {"type": "conv2d", "filters": 16, "kernel_size": 3},
    {"type": "activation", "fn": "relu"},
    {"type": "maxpool2d", "pool_size": 2},
    {"type": "dense", "units": 64},
    {"type": "dropout", "rate": 0.25},
)


def test_example_shapes_and_params():
    a = check(EXAMPLE)
    assert [info.output_shape for info in a.layers] == [(16, 6, 6), (16, 6, 6), (16, 3, 3), (64,), (64,)]
    assert [info.params for info in a.layers] == [16 * 9 + 16, 0, 0, 144 * 64 + 64, 0]
    assert a.classifier_params == 64 * 10 + 10
    assert a.total_params == 160 + 9280 + 650


def test_empty_layer_list_is_flatten_plus_classifier():
    a = check(spec())
    assert a.total_params == 64 * 10 + 10
    assert a.depth == 0


def test_pool_larger_than_input_names_layer_and_shape():
    a = analyse(spec({"type": "conv2d", "filters": 4, "kernel_size": 3},
                     {"type": "maxpool2d", "pool_size": 2},
                     {"type": "activation", "fn": "relu"},
                     {"type": "maxpool2d", "pool_size": 5}))
    assert [str(p) for p in a.problems] == ["layer 3 maxpool2d: pool_size 5 is larger than its 3x3 input"]
    assert a.layers[3].output_shape is None


def test_every_problem_is_reported_with_index_type_and_field():
    a = analyse(spec({"type": "conv3d"},
                     {"type": "dense"},
                     {"type": "dropout", "rate": 1.0},
                     {"type": "activation", "fn": "swish", "alpha": 1},
                     {"type": "conv2d", "filters": 0, "kernel_size": "3"},
                     "not a layer"))
    texts = [str(p) for p in a.problems]
    assert any(t.startswith("layer 0: unknown layer type 'conv3d'") for t in texts)
    assert "layer 1 dense: missing field 'units'" in texts
    assert "layer 2 dropout: rate must be in [0, 1), got 1.0" in texts
    assert any(t.startswith("layer 3 activation: unexpected field 'alpha'") for t in texts)
    assert any(t.startswith("layer 3 activation: fn must be one of relu") for t in texts)
    assert "layer 4 conv2d: filters must be in [1, 4096], got 0" in texts
    assert "layer 4 conv2d: kernel_size must be an integer, got '3'" in texts
    assert "layer 5: a layer must be an object, got a string" in texts
    fields = {(p.index, p.field) for p in a.problems}
    assert (4, "filters") in fields and (1, "units") in fields


def test_booleans_are_not_integers():
    a = analyse(spec({"type": "dense", "units": True}))
    assert [p.field for p in a.problems] == ["units"]


def test_spatial_layer_after_dense_is_rejected():
    a = analyse(spec({"type": "dense", "units": 8}, {"type": "conv2d", "filters": 4, "kernel_size": 1}))
    assert len(a.problems) == 1
    assert a.problems[0].index == 1 and "flat vector of 8" in a.problems[0].message


def test_same_padding_with_stride_is_rejected_with_advice():
    a = analyse(spec({"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": 2, "padding": "same"}))
    assert "needs stride 1" in a.problems[0].message


@pytest.mark.parametrize("bad, where", [
    ([], "spec"),
    ({"input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": []}, "schema"),
    ({"schema": 3, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": []}, "schema"),
    ({"schema": 1, "input": {"shape": [1, 8], "num_classes": 10}, "layers": []}, "input.shape"),
    ({"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 1}, "layers": []}, "input.num_classes"),
    ({"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}}, "layers"),
    ({"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": {}}, "layers"),
    ({"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [], "x": 1}, "spec"),
])
def test_top_level_problems(bad, where):
    a = analyse(bad)
    assert not a.ok
    assert a.problems[0].where == where


def test_parameter_and_depth_caps():
    big = spec({"type": "dense", "units": 60000}, shape=(3, 100, 100))
    a = analyse(big, Limits(max_params=1_000_000))
    assert any("over the cap of 1,000,000" in str(p) for p in a.problems)
    deep = spec(*[{"type": "activation", "fn": "relu"}] * 5)
    assert "over the depth cap of 4" in str(analyse(deep, Limits(max_depth=4)).problems[0])
    assert analyse(deep, Limits(max_depth=5)).ok


def test_huge_layer_list_is_rejected_cheaply():
    a = analyse(spec(*[{"type": "dropout", "rate": 0.1}] * 20_000))
    assert [p.field for p in a.problems] == ["layers"]


def test_check_raises_with_every_problem():
    with pytest.raises(SpecError) as e:
        check(spec({"type": "dense"}, {"type": "nope"}))
    assert len(e.value.problems) == 2
    assert "layer 1" in str(e.value)


def test_hash_ignores_defaults_and_key_order_but_not_architecture():
    a = spec({"type": "conv2d", "filters": 8, "kernel_size": 3}, {"type": "maxpool2d", "pool_size": 2})
    b = spec({"kernel_size": 3, "type": "conv2d", "filters": 8, "stride": 1, "padding": "valid"},
             {"type": "maxpool2d", "pool_size": 2, "stride": 2})
    c = spec({"type": "conv2d", "filters": 8, "kernel_size": 5}, {"type": "maxpool2d", "pool_size": 2})
    assert spec_hash(a) == spec_hash(b)
    assert spec_hash(a) != spec_hash(c)
    assert spec_hash(a) != spec_hash(spec(*a["layers"], shape=(1, 28, 28)))
    assert len(spec_hash(a)) == 16


def test_remap_prototype_population_validates_with_its_own_parameter_counts():
    population = json.loads(REMAP_POPULATION.read_text())["models"]
    assert len(population) == 100
    for model in population:
        a = analyse(model["spec"])
        assert a.ok, (model["id"], a.problems)
        assert a.total_params == model["remap_parameters"], model["id"]


def random_spec(rng: random.Random) -> dict:
    """A random spec over every layer type and option (valid or not)."""
    shape = rng.choice([(1, 8, 8), (3, 12, 10), (2, 16, 16)])
    layers = []
    flat = False
    for _ in range(rng.randint(0, 9)):
        choices = ["dense", "activation", "dropout", "batchnorm"]
        if not flat:
            choices += ["conv2d", "conv2d", "maxpool2d", "avgpool2d", "globalavgpool"]
        kind = rng.choice(choices)
        if kind == "conv2d":
            layer = {"type": kind, "filters": rng.randint(1, 12), "kernel_size": rng.randint(1, 4)}
            if rng.random() < 0.3:
                layer["padding"] = "same"
            elif rng.random() < 0.3:
                layer["stride"] = rng.randint(1, 3)
        elif kind in ("maxpool2d", "avgpool2d"):
            layer = {"type": kind, "pool_size": rng.randint(1, 3)}
            if rng.random() < 0.3:
                layer["stride"] = rng.randint(1, 3)
        elif kind == "dense":
            layer = {"type": kind, "units": rng.randint(1, 40)}
            flat = True
        elif kind == "activation":
            layer = {"type": kind, "fn": rng.choice(["relu", "tanh", "sigmoid", "elu", "leaky_relu"])}
        elif kind == "dropout":
            layer = {"type": kind, "rate": rng.choice([0.0, 0.1, 0.5])}
        else:
            layer = {"type": kind}
        layers.append(layer)
    return spec(*layers, shape=shape, classes=rng.randint(2, 12))


def test_parameter_count_and_shapes_equal_the_torch_module_on_random_specs():
    import torch

    from trainer.model import build_model

    rng = random.Random(1234)
    checked = 0
    while checked < 300:
        s = random_spec(rng)
        a = analyse(s)
        if not a.ok:
            continue
        module = build_model(s)
        assert sum(p.numel() for p in module.parameters()) == a.total_params, s
        x = torch.zeros((2, *s["input"]["shape"]))
        for name, layer in module.named_children():
            x = layer(x)
            if name.isdigit():
                assert tuple(x.shape[1:]) == a.layers[int(name)].output_shape, (s, name)
        assert tuple(x.shape) == (2, s["input"]["num_classes"])
        checked += 1


def test_sampler_is_seeded_valid_and_respects_constraints():
    c = Constraints(max_params=20_000, allowed_types=frozenset({"conv2d", "activation", "maxpool2d", "dense"}),
                    max_depth=6)
    first = sample_specs(20, (1, 8, 8), 10, seed=3, constraints=c)
    again = sample_specs(20, (1, 8, 8), 10, seed=3, constraints=c)
    other = sample_specs(20, (1, 8, 8), 10, seed=4, constraints=c)
    assert first.specs == again.specs
    assert first.specs != other.specs
    assert len(first.specs) == 20
    assert len({spec_hash(s) for s in first.specs}) == 20
    for s in first.specs:
        a = check(s)
        assert a.total_params <= 20_000 and a.depth <= 6
        assert {layer["type"] for layer in s["layers"]} <= c.allowed_types
    starts = [s["layers"][0]["type"] for s in sample_specs(200, (1, 28, 28), 10, seed=0).specs if s["layers"]]
    assert starts.count("conv2d") > len(starts) / 2  # REMAP's chain mostly starts with a convolution


def test_sampler_reports_why_it_could_not_make_enough():
    result = sample_specs(5, (1, 8, 8), 10, seed=0, constraints=Constraints(max_params=100), max_tries=50)
    assert len(result.specs) < 5
    assert "over the parameter budget" in result.summary(5)


def test_remap_tb_never_loads_torch_even_when_computing_distances_and_layouts():
    code = ("import sys, numpy as np, remap_tb.spec, remap_tb.spec.sampler, remap_tb.requests, remap_tb.metadata\n"
            "import remap_tb.plugin, remap_tb.loader, remap_tb.queue, remap_tb.search_routes\n"
            "from remap_tb import otmann, projection, prediction_distance\n"
            "specs = remap_tb.spec.sampler.sample_specs(12, (1, 8, 8), 10, 0).specs\n"
            "D = otmann.distance_matrix(specs)\n"
            "projection.StableMDS().fit(D)\n"
            "prediction_distance.hamming_matrix(np.zeros((3, 5), dtype=np.uint8))\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
