"""remap_tb.torch: nn.Module -> spec and weights (known answers, round trips, every covered form, errors)."""

from __future__ import annotations

import operator
import re
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from remap_tb.spec import analyse, check  # noqa: E402
from remap_tb.torch import SUPPORTED, convert_module, spec_from_module  # noqa: E402
from trainer.model import build_model, count_parameters  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def randomise_batchnorm(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-default affine weights and running statistics, so a mis-mapped buffer changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)
    return module


def round_trip(module: nn.Module, input_shape, batch: int = 2):
    """Convert, build, load strictly, compare parameter counts and eval outputs; return (spec, built)."""
    spec, state = convert_module(module, input_shape)
    assert check(spec).normalised == spec  # normal form
    built = build_model(spec)
    built.load_state_dict(state, strict=True)
    assert count_parameters(built) == count_parameters(module) == analyse(spec).total_params
    x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(1))
    module.eval()
    built.eval()
    with torch.no_grad():
        expected, got = module(x), built(x)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), (got - expected).abs().max()
    return spec, built


# -- known answer: torchvision ResNet-18 ----------------------------------------------------------

def test_resnet18_known_parameter_count_and_outputs():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = randomise_batchnorm(torchvision.models.resnet18(num_classes=10))
    spec, built = round_trip(model, (3, 32, 32))
    assert analyse(spec).total_params == 11_181_642
    assert count_parameters(built) == 11_181_642
    assert spec["schema"] == 2
    layers = spec["layers"]
    assert sum(layer["type"] == "add" for layer in layers) == 8  # one per BasicBlock
    assert layers[0] == {"type": "conv2d", "filters": 64, "kernel_size": 7, "stride": 2, "padding": 3, "bias": False}
    assert layers[3] == {"type": "maxpool2d", "pool_size": 3, "stride": 2, "padding": 1}
    assert layers[-1] == {"type": "globalavgpool"}
    assert spec["input"] == {"shape": [3, 32, 32], "num_classes": 10}
    # the spec, built and converted again, is the same spec (GraphModel traces too)
    assert spec_from_module(built, (3, 32, 32)) == spec


def test_caller_module_mode_and_weights_are_left_alone():
    model = randomise_batchnorm(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5),
                                              nn.Flatten(), nn.Linear(4 * 6 * 6, 3)))
    model.train()
    model[2].eval()  # a mixed state must come back exactly
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec, state = convert_module(model, (1, 8, 8))
    assert [m.training for m in model.modules()] == [True, True, True, False, True, True]
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # no running-stat update, no weight change
    assert set(state) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                          "1.num_batches_tracked", "classifier.weight", "classifier.bias"}
    state["0.weight"].add_(1.0)  # a copy, not the module's own tensor
    assert torch.equal(model[0].weight, before["0.weight"])
    assert spec["schema"] == 1  # a chain without schema 2 fields normalises to schema 1


# -- a custom module with functional forms ---------------------------------------------------------

class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 3, padding=1, bias=False)
        self.fc1 = nn.Linear(16 * 3 * 3, 32)
        self.fc2 = nn.Linear(32, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), kernel_size=2, stride=2)
        x = x.view(x.size(0), -1)
        x = F.dropout(F.elu(self.fc1(x)), p=0.25, training=self.training)
        return self.fc2(x)


def test_custom_module_with_functional_forms_and_view():
    torch.manual_seed(0)
    spec, _ = round_trip(SmallNet(), (1, 16, 16))
    assert spec_from_module(SmallNet(), (1, 16, 16), num_classes=5) == spec
    with pytest.raises(ValueError, match=r"num_classes=10 but the final Linear 'fc2' has 5 outputs"):
        spec_from_module(SmallNet(), (1, 16, 16), num_classes=10)
    assert spec == {
        "schema": 2,  # conv2's bias: false is a schema 2 field
        "input": {"shape": [1, 16, 16], "num_classes": 5},
        "layers": [
            {"type": "conv2d", "filters": 6, "kernel_size": 5, "stride": 1, "padding": "valid"},
            {"type": "activation", "fn": "relu"},
            {"type": "maxpool2d", "pool_size": 2, "stride": 2},
            {"type": "conv2d", "filters": 16, "kernel_size": 3, "stride": 1, "padding": 1, "bias": False},
            {"type": "activation", "fn": "tanh"},
            {"type": "avgpool2d", "pool_size": 2, "stride": 2},
            {"type": "dense", "units": 32},  # reads the 16x3x3 image: the spec flattens
            {"type": "activation", "fn": "elu"},
            {"type": "dropout", "rate": 0.25},
        ],
    }


# -- inception-style concat --------------------------------------------------------------------------

class Inception(nn.Module):
    def __init__(self, c_in):
        super().__init__()
        self.b1 = nn.Conv2d(c_in, 8, 1)
        self.b3 = nn.Sequential(nn.Conv2d(c_in, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(c_in, 4, 5, padding=2), nn.BatchNorm2d(4))
        self.pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(c_in, 4, 1))

    def forward(self, x):
        return F.relu(torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], 1))


class InceptionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding="same")
        self.block = Inception(8)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 7))

    def forward(self, x):
        return self.head(self.block(self.stem(x)))


def test_inception_concat_module():
    torch.manual_seed(0)
    spec, built = round_trip(randomise_batchnorm(InceptionNet()), (3, 12, 12))
    layers = spec["layers"]
    concat = [i for i, layer in enumerate(layers) if layer["type"] == "concat"]
    assert len(concat) == 1
    branch_ends = layers[concat[0]]["inputs"]
    assert [layers[i]["type"] for i in branch_ends] == ["conv2d", "conv2d", "batchnorm", "conv2d"]
    assert layers[0]["padding"] == "same"
    assert analyse(spec).layers[concat[0]].output_shape == (24, 12, 12)
    assert layers[-1] == {"type": "globalavgpool"}
    assert spec_from_module(built, (3, 12, 12)) == spec


# -- every covered module and functional form --------------------------------------------------------

class Probe(nn.Module):
    """stem conv (3 -> 4 channels, 8x8) -> ``op`` -> flatten -> Linear(?, 3)."""

    def __init__(self, op, flatten=True):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        if isinstance(op, nn.Module):
            self.op = op
        else:
            self.fn = op
        self.flatten = flatten
        with torch.no_grad():
            features = self.body(torch.zeros(2, 3, 8, 8))[0].numel()
        self.fc = nn.Linear(features, 3)

    def body(self, x):
        x = self.stem(x)
        x = self.op(x) if hasattr(self, "op") else self.fn(x)
        return torch.flatten(x, 1) if self.flatten else x

    def forward(self, x):
        return self.fc(self.body(x))


def _plus_equals(x):
    y = torch.sigmoid(x)
    y += x
    return y


COVERED = [  # (id, op, the spec layers it becomes after the stem (inputs as in the normal form))
    ("Conv2d", nn.Conv2d(4, 5, 3), [{"type": "conv2d", "filters": 5, "kernel_size": 3, "stride": 1, "padding": "valid"}]),
    ("Conv2d-nobias-pad-stride", nn.Conv2d(4, 5, (3, 3), stride=(2, 2), padding=(1, 1), bias=False),
     [{"type": "conv2d", "filters": 5, "kernel_size": 3, "stride": 2, "padding": 1, "bias": False}]),
    ("Conv2d-same", nn.Conv2d(4, 5, 3, padding="same"),
     [{"type": "conv2d", "filters": 5, "kernel_size": 3, "stride": 1, "padding": "same"}]),
    ("Conv2d-valid", nn.Conv2d(4, 5, 3, padding="valid"),
     [{"type": "conv2d", "filters": 5, "kernel_size": 3, "stride": 1, "padding": "valid"}]),
    ("Linear", nn.Sequential(nn.Flatten(), nn.Linear(256, 6)), [{"type": "dense", "units": 6}]),
    ("Linear-nobias", nn.Sequential(nn.Flatten(), nn.Linear(256, 6, bias=False)),
     [{"type": "dense", "units": 6, "bias": False}]),
    ("MaxPool2d", nn.MaxPool2d(2), [{"type": "maxpool2d", "pool_size": 2, "stride": 2}]),
    ("MaxPool2d-pad", nn.MaxPool2d((3, 3), stride=1, padding=1),
     [{"type": "maxpool2d", "pool_size": 3, "stride": 1, "padding": 1}]),
    ("AvgPool2d", nn.AvgPool2d(2), [{"type": "avgpool2d", "pool_size": 2, "stride": 2}]),
    ("AvgPool2d-pad", nn.AvgPool2d(2, stride=1, padding=1),
     [{"type": "avgpool2d", "pool_size": 2, "stride": 1, "padding": 1}]),
    ("AdaptiveAvgPool2d", nn.AdaptiveAvgPool2d((1, 1)), [{"type": "globalavgpool"}]),
    ("BatchNorm2d", nn.BatchNorm2d(4, momentum=0.3), [{"type": "batchnorm"}]),
    ("BatchNorm1d", nn.Sequential(nn.Flatten(), nn.Linear(256, 6), nn.BatchNorm1d(6)),
     [{"type": "dense", "units": 6}, {"type": "batchnorm"}]),
    ("BatchNorm1d-on-flat-1x1", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(4)),
     [{"type": "globalavgpool"}, {"type": "batchnorm"}]),
    ("ReLU", nn.ReLU(inplace=True), [{"type": "activation", "fn": "relu"}]),
    ("Tanh", nn.Tanh(), [{"type": "activation", "fn": "tanh"}]),
    ("Sigmoid", nn.Sigmoid(), [{"type": "activation", "fn": "sigmoid"}]),
    ("ELU", nn.ELU(), [{"type": "activation", "fn": "elu"}]),
    ("LeakyReLU", nn.LeakyReLU(), [{"type": "activation", "fn": "leaky_relu"}]),
    ("Dropout", nn.Dropout(0.3), [{"type": "dropout", "rate": 0.3}]),
    ("Identity", nn.Identity(), []),
    ("Flatten-then-ReLU", nn.Sequential(nn.Flatten(), nn.ReLU()), [{"type": "activation", "fn": "relu"}]),
    ("F.relu", lambda x: F.relu(x, inplace=False), [{"type": "activation", "fn": "relu"}]),
    ("F.tanh", F.tanh, [{"type": "activation", "fn": "tanh"}]),
    ("F.sigmoid", F.sigmoid, [{"type": "activation", "fn": "sigmoid"}]),
    ("F.elu", lambda x: F.elu(x, alpha=1.0), [{"type": "activation", "fn": "elu"}]),
    ("F.leaky_relu", lambda x: F.leaky_relu(x, 0.01), [{"type": "activation", "fn": "leaky_relu"}]),
    ("F.dropout", lambda x: F.dropout(x, 0.2, training=False), [{"type": "dropout", "rate": 0.2}]),
    ("F.max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1), [{"type": "maxpool2d", "pool_size": 3, "stride": 2, "padding": 1}]),
    ("F.avg_pool2d", lambda x: F.avg_pool2d(x, (2, 2)), [{"type": "avgpool2d", "pool_size": 2, "stride": 2}]),
    ("F.adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, 1), [{"type": "globalavgpool"}]),
    ("torch.relu", torch.relu, [{"type": "activation", "fn": "relu"}]),
    ("torch.tanh", torch.tanh, [{"type": "activation", "fn": "tanh"}]),
    ("torch.sigmoid", torch.sigmoid, [{"type": "activation", "fn": "sigmoid"}]),
    ("Tensor.relu", lambda x: x.relu(), [{"type": "activation", "fn": "relu"}]),
    ("view-size", lambda x: torch.tanh(x.view(x.size(0), -1)), [{"type": "activation", "fn": "tanh"}]),
    ("view-minus-one", lambda x: x.view(-1, 256), []),
    ("reshape-shape", lambda x: x.reshape(x.shape[0], -1), []),
    ("Tensor.flatten", lambda x: x.flatten(1), []),
    ("add", lambda x: x + F.relu(x), [{"type": "activation", "fn": "relu"}, {"type": "add", "inputs": [0, 1]}]),
    ("torch.add", lambda x: torch.add(torch.tanh(x), x),
     [{"type": "activation", "fn": "tanh"}, {"type": "add", "inputs": [0, 1]}]),
    ("Tensor.add", lambda x: F.elu(x).add(x), [{"type": "activation", "fn": "elu"}, {"type": "add", "inputs": [0, 1]}]),
    ("plus-equals", _plus_equals, [{"type": "activation", "fn": "sigmoid"}, {"type": "add", "inputs": [0, 1]}]),
    ("torch.cat", lambda x: torch.cat([x, torch.tanh(x)], dim=1),
     [{"type": "activation", "fn": "tanh"}, {"type": "concat", "inputs": [0, 1]}]),
    ("torch.cat-flattened", lambda x: torch.cat((torch.flatten(x, 1), torch.flatten(F.relu(x), 1)), -1),
     [{"type": "activation", "fn": "relu"}, {"type": "concat", "inputs": [0, 1]}]),
]


@pytest.mark.parametrize("op, expected", [pytest.param(op, expected, id=name) for name, op, expected in COVERED])
def test_every_covered_form(op, expected):
    torch.manual_seed(0)
    spec, _ = round_trip(randomise_batchnorm(Probe(op)), (3, 8, 8))
    stem = {"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": 1, "padding": 1}
    assert spec["layers"] == [stem, *expected]


def test_dense_reading_the_network_input_and_an_mlp():
    torch.manual_seed(0)
    spec, _ = round_trip(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), (1, 8, 8))
    assert spec["layers"] == []  # flatten + classifier only
    spec, _ = round_trip(nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 4)), (1, 8, 8))
    assert spec["layers"] == [{"type": "dense", "units": 16}, {"type": "activation", "fn": "relu"}]


# -- errors: path, type and the supported list -------------------------------------------------------

def _error(module, input_shape=(3, 8, 8), **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        convert_module(module, input_shape, **kwargs)
    return str(info.value)


class Block(nn.Module):
    def __init__(self, act):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.act = act

    def forward(self, x):
        return self.act(self.conv(x))


def _net(block, features=4 * 8 * 8):
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Sequential(block), nn.Flatten(), nn.Linear(features, 3))


@pytest.mark.parametrize("module, pattern", [
    pytest.param(_net(Block(nn.GELU())), r"module '1\.0\.act' \(GELU\): GELU is not supported", id="GELU"),
    pytest.param(_net(nn.Conv2d(4, 4, 3, padding=1, groups=2)), r"module '1\.0' \(Conv2d\): groups=2", id="grouped"),
    pytest.param(_net(nn.Conv2d(4, 4, 3, padding=2, dilation=2)), r"module '1\.0' \(Conv2d\): dilation=\(2, 2\)",
                 id="dilated"),
    pytest.param(_net(nn.Conv2d(4, 4, (3, 1), padding=(1, 0))), r"module '1\.0' \(Conv2d\): kernel_size=\(3, 1\)",
                 id="non-square"),
    pytest.param(_net(nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")), r"padding_mode='reflect'",
                 id="reflect"),
    pytest.param(_net(nn.LeakyReLU(0.2)), r"module '1\.0' \(LeakyReLU\): LeakyReLU negative_slope=0\.2", id="slope"),
    pytest.param(_net(nn.ELU(alpha=0.5)), r"module '1\.0' \(ELU\): ELU alpha=0\.5", id="elu-alpha"),
    pytest.param(_net(nn.BatchNorm2d(4, eps=1e-3)), r"module '1\.0' \(BatchNorm2d\): eps=0\.001", id="bn-eps"),
    pytest.param(_net(nn.BatchNorm2d(4, affine=False)), r"\(BatchNorm2d\): affine=False", id="bn-affine"),
    pytest.param(_net(nn.BatchNorm2d(4, track_running_stats=False)), r"track_running_stats=False", id="bn-stats"),
    pytest.param(_net(nn.MaxPool2d(2, ceil_mode=True), 4 * 4 * 4), r"\(MaxPool2d\): ceil_mode=True", id="ceil"),
    pytest.param(_net(nn.AvgPool2d(2, padding=1, count_include_pad=False), 4 * 5 * 5), r"count_include_pad=False",
                 id="count-pad"),
    pytest.param(_net(nn.AdaptiveAvgPool2d(2), 16), r"\(AdaptiveAvgPool2d\): output_size=2", id="adaptive-2"),
    pytest.param(_net(nn.Dropout2d(0.1)), r"module '1\.0' \(Dropout2d\): Dropout2d is not supported", id="Dropout2d"),
    pytest.param(_net(Block(F.gelu)), r"torch\.nn\.functional\.gelu in module '1\.0' \(Block\): this operation",
                 id="F.gelu"),
    pytest.param(_net(Block(lambda x: x * 2)), r"operator\.mul in module '1\.0' \(Block\)", id="mul"),
    pytest.param(_net(Block(lambda x: x + 1.0)), r"operator\.add in module '1\.0' \(Block\): its input 1\.0 is not",
                 id="add-constant"),
    pytest.param(_net(Block(lambda x: x + x)), r"adds a tensor to itself", id="add-self"),
    pytest.param(_net(Block(lambda x: x + x.mean(dim=1, keepdim=True)), 4 * 8 * 8), r"Tensor\.mean in module",
                 id="mean"),
    pytest.param(_net(Block(lambda x: x.view(x.size(0), 4, 64)), 4 * 64), r"reshapes \(2, 4, 8, 8\) to \(2, 4, 64\)",
                 id="reshape"),
    pytest.param(_net(Block(lambda x: torch.cat([x, F.relu(x)], 0))), r"torch\.cat in module .*dim=0", id="cat-0"),
])
def test_unsupported_forms_name_path_type_and_supported_list(module, pattern):
    message = _error(module)
    assert re.search(pattern, message), message
    assert message.endswith(f"Supported: {SUPPORTED}")


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(192, 16))
        self.rnn = nn.LSTM(16, 16, batch_first=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        out, _ = self.rnn(self.encoder(x).unsqueeze(1))
        return self.fc(out[:, -1])


class Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # Python control flow on a tensor value: fx cannot trace it
            return x
        return -x


class GatedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), Gate())
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


def test_lstm_and_untraceable_control_flow():
    message = _error(LSTMNet())
    assert "module 'rnn' (LSTM): LSTM is not supported" in message and SUPPORTED in message
    message = _error(GatedNet())
    assert "module 'features.1' (Gate): torch.fx cannot trace it" in message, message
    assert SUPPORTED in message


def test_output_and_classifier_errors():
    ends_in_relu = nn.Sequential(nn.Flatten(), nn.Linear(192, 3), nn.ReLU())
    assert "comes from module '2' (ReLU), not from a Linear" in _error(ends_in_relu)
    no_linear = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert "not from a Linear" in _error(no_linear)
    assert "it comes from the network input" in _error(nn.Identity())
    class TwoOutputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(192, 3)

        def forward(self, x):
            y = self.fc(x.flatten(1))
            return y, y

    assert "it returns tuple" in _error(TwoOutputs())
    no_bias = nn.Sequential(nn.Flatten(), nn.Linear(192, 3, bias=False))
    assert "module '1' (Linear): the final Linear has no bias" in _error(no_bias)
    on_image = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(6, 3))  # acts on the last dimension only
    assert "module '1' (Linear): Linear reads a 4x6x6 tensor" in _error(on_image)


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(192, 2)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(self.conv(x)), 1))


def test_shared_weights_wrong_inputs_and_arguments():
    assert "module 'conv' (Conv2d): it is called more than once" in _error(Shared())
    assert "does not run on a batch of input_shape (1, 8, 8)" in _error(Shared(), (1, 8, 8))
    with pytest.raises(ValueError, match=r"input_shape must be \(channels, height, width\)"):
        convert_module(Shared(), (192,))
    with pytest.raises(ValueError, match="expected a torch.nn.Module, got dict"):
        convert_module({"layers": []}, (3, 8, 8))
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        convert_module(Shared(), (3, 8, 8), num_classes=0)


def test_spec_over_the_schema_range_names_the_module():
    too_wide = nn.Sequential(nn.Conv2d(1, 4097, 1), nn.Flatten(), nn.Linear(4097, 2))
    with pytest.raises(ValueError) as info:
        convert_module(too_wide, (1, 1, 1))
    assert "layer 0 conv2d" in str(info.value) and "layer 0 is module '0' (Conv2d)" in str(info.value)


def test_unused_submodules_are_left_out():
    class WithSpare(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(192, 3)
            self.spare = nn.LSTM(2, 2)  # never called: not traced, not converted

        def forward(self, x):
            return self.fc(x.flatten(1))

    spec, state = convert_module(WithSpare(), (3, 8, 8))
    assert spec["layers"] == [] and set(state) == {"classifier.weight", "classifier.bias"}


# -- import hygiene ----------------------------------------------------------------------------------

def test_import_is_torch_free_and_torch_inside_is_the_real_torch():
    code = ("import sys, remap_tb, remap_tb.plugin, remap_tb.export, remap_tb.reader, remap_tb.spec\n"
            "assert 'remap_tb.torch' not in sys.modules, 'a remap_tb module imported remap_tb.torch'\n"
            "had_torch = 'torch' in sys.modules\n"
            "import remap_tb.torch as rt\n"
            "assert ('torch' in sys.modules) == had_torch, 'remap_tb.torch imported torch at import time'\n"
            "t = rt._torch()\n"
            "assert t is sys.modules['torch'] and t is not rt and hasattr(t, 'nn') and hasattr(t.fx, 'Tracer')\n"
            "assert 'remap_tb' not in t.__file__, t.__file__\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_no_remap_tb_module_imports_remap_tb_torch_at_import_time():
    top_level = re.compile(r"^(import remap_tb\.torch|from remap_tb\.torch import|from remap_tb import .*\btorch\b|"
                           r"from \. import .*\btorch\b|from \.torch import)", re.MULTILINE)
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "remap_tb").rglob("*.py")
                 if path.name != "torch.py" and top_level.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
