"""``analyse`` reports every problem it can: shape inference goes on past a layer with a problem
wherever that layer's output shape is still known (issue 11), in chains and graphs alike."""

from __future__ import annotations

from remap_tb.spec import Limits, analyse

INPUT = {"shape": [1, 8, 8], "num_classes": 10}


def conv(filters=4, kernel=3, **kw):
    return {"type": "conv2d", "filters": filters, "kernel_size": kernel, **kw}


def where(analysis):
    return [(p.index, p.field) for p in analysis.problems]


def test_a_chain_goes_on_past_layers_whose_shape_is_still_known():
    analysis = analyse({"schema": 1, "input": INPUT, "layers": [
        conv(),                                          # 4x6x6
        {"type": "activation", "fn": "swish"},           # unknown fn: keeps 4x6x6
        {"type": "batchnorm", "eps": 1e-3},              # unexpected field: keeps 4x6x6, 8 parameters
        {"type": "maxpool2d", "pool_size": 2, "padding": 1},  # a schema 2 field: 4x4x4 as schema 2 reads it
        {"type": "maxpool2d", "pool_size": 5}]})         # larger than its 4x4 input: found only by going on
    assert where(analysis) == [(1, "fn"), (2, "eps"), (3, "padding"), (4, None)]
    assert "pool_size 5 is larger than its 4x4 input" in analysis.problems[-1].message
    shapes = [info.output_shape for info in analysis.layers]
    assert shapes == [(4, 6, 6), (4, 6, 6), (4, 6, 6), (4, 4, 4), None]
    assert [info.params for info in analysis.layers] == [40, 0, 8, 0, 0]
    assert analysis.total_params is None and analysis.normalised is None


def test_a_wrong_shape_field_stops_inference_there_without_follow_on_problems():
    analysis = analyse({"schema": 1, "input": INPUT, "layers": [
        conv(kernel=0), {"type": "maxpool2d", "pool_size": 7}, {"type": "dense", "units": 0}]})
    assert where(analysis) == [(0, "kernel_size"), (2, "units")]  # nothing about the pool: its input is unknown
    assert [info.output_shape for info in analysis.layers] == [None, None, None]


def test_parameters_are_unknown_when_a_field_that_sets_them_is_wrong_and_the_cap_uses_the_lower_bound():
    spec = {"schema": 2, "input": INPUT, "layers": [conv(64, 3, bias="no"), {"type": "dense", "units": 100}]}
    analysis = analyse(spec, Limits(max_params=100_000))
    assert analysis.layers[0].output_shape == (64, 6, 6) and analysis.layers[0].params is None
    assert analysis.layers[1].params == 64 * 36 * 100 + 100
    assert analysis.total_params is None and analysis.classifier_params == 100 * 10 + 10
    assert where(analysis) == [(0, "bias"), (None, "params")]
    assert "at least 231,510 parameters, over the cap of 100,000" in analysis.problems[-1].message


def test_a_graph_reports_problems_on_both_branches_and_at_the_merge():
    analysis = analyse({"schema": 2, "input": INPUT, "layers": [
        conv(4, 3, padding="same"),                                   # 0: 4x8x8
        {"type": "activation", "fn": "gelu", "inputs": [0]},          # 1: unknown fn, 4x8x8
        {**conv(8, 3), "inputs": [0], "dilation": 2},                 # 2: unexpected field, 8x6x6
        {"type": "add", "inputs": [1, 2]},                            # 3: shapes differ
        {"type": "dropout", "rate": -1}]})                            # 4: bad rate (its input is unknown)
    assert where(analysis) == [(1, "fn"), (2, "dilation"), (3, None), (4, "rate")]
    assert "input 2 has shape 8x6x6 but input 1 has shape 4x8x8" in analysis.problems[2].message
    assert [info.output_shape for info in analysis.layers][:3] == [(4, 8, 8), (4, 8, 8), (8, 6, 6)]


def test_valid_specs_analyse_as_before():
    spec = {"schema": 1, "input": INPUT, "layers": [conv(), {"type": "activation", "fn": "relu"},
                                                    {"type": "dense", "units": 16}]}
    analysis = analyse(spec)
    assert analysis.ok and analysis.total_params == 40 + 4 * 36 * 16 + 16 + 16 * 10 + 10
