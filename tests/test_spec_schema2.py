"""Schema 2 (branching architectures): validation, shapes, parameter counts, normal form and glyph data."""

from __future__ import annotations

import pytest

from remap_tb.spec import analyse, check, spec_hash
from remap_tb.spec.glyph import glyph
from remap_tb.spec.schema import normalise_spec

DIGITS = {"shape": [1, 8, 8], "num_classes": 10}


def spec(layers: list[dict], version: int = 2, input_: dict = DIGITS) -> dict:
    return {"schema": version, "input": input_, "layers": layers}


def conv(filters: int, kernel: int = 3, **extra) -> dict:
    return {"type": "conv2d", "filters": filters, "kernel_size": kernel, **extra}


def resnet20() -> dict:
    """CIFAR ResNet-20 (He et al. 2016, §4.2) with 1x1 conv + batchnorm projection shortcuts."""
    layers = [conv(16, padding=1, bias=False), {"type": "batchnorm"}, {"type": "activation", "fn": "relu"}]
    channels = 16
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            block_input = len(layers) - 1
            stride = 2 if stage > 0 and block == 0 else 1
            layers += [conv(filters, stride=stride, padding=1, bias=False), {"type": "batchnorm"},
                       {"type": "activation", "fn": "relu"}, conv(filters, padding=1, bias=False), {"type": "batchnorm"}]
            main = len(layers) - 1
            shortcut = block_input
            if stride != 1 or channels != filters:
                layers += [conv(filters, 1, stride=stride, bias=False, inputs=[block_input]), {"type": "batchnorm"}]
                shortcut = len(layers) - 1
            layers += [{"type": "add", "inputs": [main, shortcut]}, {"type": "activation", "fn": "relu"}]
            channels = filters
    layers.append({"type": "globalavgpool"})
    return spec(layers, input_={"shape": [3, 32, 32], "num_classes": 10})


def messages(s: dict) -> list[str]:
    return [str(p) for p in analyse(s).problems]


def test_resnet20_has_the_known_parameter_count():
    a = check(resnet20())
    assert a.total_params == 272_474
    assert a.merge_count == 9
    assert a.layers[-1].output_shape == (64, 1, 1)
    assert a.longest_path < a.depth  # the projection shortcuts are not on the longest path


def test_residual_block_shapes_and_inputs():
    s = spec([conv(4, padding="same"), {"type": "activation", "fn": "relu"}, conv(4, padding="same"),
              {"type": "add", "inputs": [2, 0]}, {"type": "concat", "inputs": [3, 0, -1]}])
    a = check(s)
    assert [info.inputs for info in a.layers] == [(-1,), (0,), (1,), (2, 0), (3, 0, -1)]
    assert a.layers[3].output_shape == (4, 8, 8)
    assert a.layers[4].output_shape == (9, 8, 8)  # 4 + 4 + 1 channels
    assert a.layers[4].input_shapes == ((4, 8, 8), (4, 8, 8), (1, 8, 8))
    assert a.merge_count == 2 and a.longest_path == 5 and not a.is_chain
    assert a.classifier_params == 9 * 8 * 8 * 10 + 10


def test_concat_of_vectors_and_dense_without_bias():
    s = spec([{"type": "dense", "units": 16, "bias": False}, {"type": "dense", "units": 8, "inputs": [-1]},
              {"type": "concat", "inputs": [0, 1]}])
    a = check(s)
    assert a.layers[0].params == 64 * 16
    assert a.layers[1].params == 64 * 8 + 8
    assert a.layers[2].output_shape == (24,)


def test_integer_padding_with_stride_and_pool_padding():
    s = spec([conv(2, 3, stride=2, padding=1), {"type": "maxpool2d", "pool_size": 3, "stride": 1, "padding": 1}])
    a = check(s)
    assert a.layers[0].output_shape == (2, 4, 4)  # (8 + 2 - 3) // 2 + 1
    assert a.layers[1].output_shape == (2, 4, 4)


@pytest.mark.parametrize("layers, expected", [
    ([conv(4), conv(4, inputs=[-1, 0])], "layer 1 conv2d: inputs [-1, 0]: only add and concat take several inputs"),
    ([conv(4), {"type": "add", "inputs": [0, -1]}],
     "layer 1 add: input -1 has shape 1x8x8 but input 0 has shape 4x6x6"),
    ([conv(4), {"type": "dropout", "rate": 0.5, "inputs": [-1]}, conv(2, inputs=[0])],
     "layer 1 dropout: not used by the output"),
    ([conv(4), conv(4, inputs=[3])], "layer 1 conv2d: input 3 is not an earlier layer (use 0..0, or -1 for the network input)"),
    ([conv(4), {"type": "add", "inputs": [0]}], "layer 1 add: add needs at least two inputs"),
    ([conv(4), {"type": "add"}], "layer 1 add: add needs \"inputs\""),
    ([conv(4), {"type": "add", "inputs": [0, 0]}], "layer 1 add: input 0 is listed twice"),
    ([conv(4), {"type": "concat", "inputs": [0, -1]}], "layer 1 concat: input -1 has shape 1x8x8 but input 0 has shape 4x6x6"),
    ([{"type": "dense", "units": 4}, {"type": "concat", "inputs": [0, -1]}], "concat joins images of equal height and width, or vectors"),
    ([conv(4, inputs="0")], "layer 0 conv2d: inputs must be a non-empty list"),
    ([conv(4, bias=1)], "layer 0 conv2d: bias must be true or false"),
    ([conv(4, padding=-1)], "layer 0 conv2d: padding must be in [0, 64], got -1"),
    ([conv(4, padding="full")], "padding must be one of valid, same or an integer >= 0"),
    ([{"type": "maxpool2d", "pool_size": 2, "padding": 2}], "layer 0 maxpool2d: padding 2 is more than half of pool_size 2"),
    ([conv(4, 11, padding=1)], "layer 0 conv2d: kernel_size 11 is larger than its 8x8 input padded by 1"),
])
def test_errors_name_the_layer_its_type_and_the_cause(layers, expected):
    found = messages(spec(layers))
    assert any(expected in m for m in found), found


def test_every_problem_is_reported_and_inference_goes_on_past_a_bad_branch():
    s = spec([conv(4), conv(4, inputs=[-1, 0]), {"type": "dropout", "rate": 0.5, "inputs": [0]},
              conv(2, 1, inputs=[0]), conv(99999, inputs=[0]), {"type": "add", "inputs": [3, 2]}])
    a = analyse(s)
    found = [str(p) for p in a.problems]
    assert any(m.startswith("layer 1 conv2d: inputs [-1, 0]") for m in found)
    assert any(m.startswith("layer 4 conv2d: filters must be") for m in found)
    assert any(m.startswith("layer 5 add: input 2 has shape 4x6x6 but input 3 has shape 2x6x6") for m in found)
    assert a.layers[3].output_shape == (2, 6, 6)  # known although layer 1 is broken


def test_schema_1_spec_using_schema_2_fields_says_to_use_schema_2():
    for layer in (conv(4, bias=True), conv(4, inputs=[-1]), conv(4, padding=1),
                  {"type": "maxpool2d", "pool_size": 2, "padding": 0}, {"type": "dense", "units": 3, "bias": False}):
        found = messages(spec([layer], version=1))
        assert len(found) == 1 and 'set "schema": 2' in found[0], found
    found = messages(spec([conv(1), {"type": "add", "inputs": [0, -1]}], version=1))
    assert any("add is a schema 2 layer type" in m for m in found)


def test_schema_1_specs_keep_their_normal_form_and_hash():
    chain = spec([conv(4), {"type": "activation", "fn": "relu"}, {"type": "maxpool2d", "pool_size": 2},
                  {"type": "dense", "units": 8}], version=1)
    normal = normalise_spec(chain)
    assert normal["schema"] == 1
    assert normal["layers"][0] == {"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": 1, "padding": "valid"}
    assert normal["layers"][2] == {"type": "maxpool2d", "pool_size": 2, "stride": 2}
    assert normal["layers"][3] == {"type": "dense", "units": 8}
    explicit = spec([conv(4, inputs=[-1], bias=True, padding=0), {"type": "activation", "fn": "relu", "inputs": [0]},
                     {"type": "maxpool2d", "pool_size": 2, "padding": 0}, {"type": "dense", "units": 8, "inputs": [2]}])
    assert normalise_spec(explicit) == normal
    assert spec_hash(explicit) == spec_hash(chain)


def test_graph_normal_form_writes_schema_2_fields_only_where_they_differ():
    s = spec([conv(4, padding="same", bias=False), conv(4, padding="same", inputs=[-1]),
              {"type": "add", "inputs": [1, 0]}, {"type": "concat", "inputs": [2, 0]}])
    normal = normalise_spec(s)
    assert normal["schema"] == 2
    assert normal["layers"][0]["bias"] is False and "inputs" not in normal["layers"][0]
    assert "bias" not in normal["layers"][1] and normal["layers"][1]["inputs"] == [-1]
    assert normal["layers"][2]["inputs"] == [0, 1]  # a sum does not depend on order
    assert normal["layers"][3]["inputs"] == [2, 0]  # a concatenation does
    swapped = spec([*s["layers"][:2], {"type": "add", "inputs": [0, 1]}, s["layers"][3]])
    assert spec_hash(swapped) == spec_hash(s)
    assert spec_hash(spec([*s["layers"][:3], {"type": "concat", "inputs": [0, 2]}])) != spec_hash(s)


def test_glyph_carries_inputs_only_for_non_default_connections():
    s = spec([conv(4, padding="same"), {"type": "activation", "fn": "relu"}, {"type": "add", "inputs": [1, -1]}],
             input_={"shape": [4, 8, 8], "num_classes": 10})
    entries = glyph(s, check(s))
    assert "inputs" not in entries[0] and "inputs" not in entries[1]
    assert entries[2]["inputs"] == [1, -1] and entries[2]["type"] == "add"
    assert entries[3]["type"] == "classifier" and "inputs" not in entries[3]
