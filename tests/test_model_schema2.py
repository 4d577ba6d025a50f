"""Schema 2 graphs as torch modules: ``trainer.model.build_model`` on residual and branching specs.

Known answer: a CIFAR ResNet-20 (He et al. 2016, section 4.2, with 1x1 projection
shortcuts where the shape changes) has 272,474 parameters. Then 300 random
schema 2 specs from a seeded generator (``random_graph_spec``, torch-free)
covering every layer option: the analysis' parameter counts and per-layer output
shapes equal those of the built module, and equal the shapes the generator
computed on its own. Finally a residual spec trains through the real trainer.
"""

from __future__ import annotations

import random
from collections import Counter

import torch
from torch import nn

from remap_tb.spec import analyse
from remap_tb.spec.modules import module_plan

Shape = tuple[int, ...]


# --- specs --------------------------------------------------------------------------------------

def resnet20(input_shape=(3, 32, 32), num_classes=10) -> dict:
    """CIFAR ResNet-20: conv-bn-relu, 3 stages x 3 basic blocks (16/32/64 filters), GAP; bias-free convs."""
    layers: list[dict] = [{"type": "conv2d", "filters": 16, "kernel_size": 3, "padding": 1, "bias": False},
                          {"type": "batchnorm"}, {"type": "activation", "fn": "relu"}]
    channels = 16
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            source = len(layers) - 1
            stride = 2 if stage > 0 and block == 0 else 1
            layers += [{"type": "conv2d", "filters": filters, "kernel_size": 3, "stride": stride, "padding": 1,
                        "bias": False},
                       {"type": "batchnorm"}, {"type": "activation", "fn": "relu"},
                       {"type": "conv2d", "filters": filters, "kernel_size": 3, "padding": 1, "bias": False},
                       {"type": "batchnorm"}]
            main = len(layers) - 1
            shortcut = source
            if stride != 1 or channels != filters:
                layers += [{"type": "conv2d", "filters": filters, "kernel_size": 1, "stride": stride, "bias": False,
                            "inputs": [source]}, {"type": "batchnorm"}]
                shortcut = len(layers) - 1
            layers += [{"type": "add", "inputs": [main, shortcut]}, {"type": "activation", "fn": "relu"}]
            channels = filters
    layers.append({"type": "globalavgpool"})
    return {"schema": 2, "input": {"shape": list(input_shape), "num_classes": num_classes}, "layers": layers}


SMALL_RESIDUAL = {"schema": 2, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
    {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": 1, "bias": False},  # 0
    {"type": "batchnorm"},
    {"type": "activation", "fn": "relu"},                                              # 2
    {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": 1, "bias": False},
    {"type": "batchnorm"},
    {"type": "add", "inputs": [4, 2]},                                                 # 5: identity shortcut
    {"type": "activation", "fn": "relu"},
    {"type": "conv2d", "filters": 12, "kernel_size": 3, "stride": 2, "padding": 1},    # 7
    {"type": "conv2d", "filters": 12, "kernel_size": 1, "stride": 2, "inputs": [6]},   # 8: projection
    {"type": "add", "inputs": [7, 8]},
    {"type": "maxpool2d", "pool_size": 3, "stride": 1, "padding": 1, "inputs": [-1]},  # 10: from the input
    {"type": "avgpool2d", "pool_size": 2},
    {"type": "concat", "inputs": [9, 11]},                                             # 12: 13x4x4
    {"type": "dense", "units": 16},
]}


# --- a seeded random generator of valid schema 2 specs (torch-free) -----------------------------

def random_graph_spec(rng: random.Random) -> tuple[dict, list[Shape]]:
    """A valid random schema 2 spec and every layer's output shape, computed here independently.

    The network grows block by block from its head (the last layer, the only
    output nobody reads yet, so no branch is ever dead): plain layers on the
    head, residual blocks (identity or 1x1-conv + batchnorm projection shortcut,
    optional downsampling), branches joined by ``concat`` (of images or of
    vectors), and skips from an earlier output, the network input included,
    added or concatenated to the head (through a conv that matches the size when needed).
    """
    c, h, w = rng.randint(1, 3), rng.randint(5, 14), rng.randint(5, 14)
    graph = _Graph(rng, (c, h, w))
    for _ in range(rng.randint(1, 6)):
        kind = rng.choice(["plain", "plain", "residual", "branches", "skip"])
        if kind == "residual" and len(graph.shape(graph.head)) == 3:
            graph.residual()
        elif kind == "branches":
            graph.branches()
        elif kind == "skip":
            graph.skip()
        else:
            graph.plain()
    spec = {"schema": 2, "input": {"shape": [c, h, w], "num_classes": rng.randint(2, 6)}, "layers": graph.layers}
    return spec, [graph.shapes[i] for i in range(len(graph.layers))]


class _Graph:
    def __init__(self, rng: random.Random, input_shape: Shape) -> None:
        self.rng = rng
        self.layers: list[dict] = []
        self.shapes: dict[int, Shape] = {-1: input_shape}

    @property
    def head(self) -> int:
        return len(self.layers) - 1

    def shape(self, index: int) -> Shape:
        return self.shapes[index]

    def add(self, layer: dict, shape: Shape, inputs: list[int] | None = None) -> int:
        """Append ``layer`` (reading ``inputs``, written out when not the default or at random) and return its index."""
        index = len(self.layers)
        if inputs is not None and (inputs != [index - 1] or self.rng.random() < 0.3):
            layer = {**layer, "inputs": inputs}
        self.layers.append(layer)
        self.shapes[index] = shape
        return index

    # layers
    def conv(self, shape: Shape, keep_size: bool = False) -> tuple[dict, Shape] | None:
        """A random conv2d on ``shape`` and its output shape (None when none fits)."""
        rng = self.rng
        _, height, width = shape
        filters = rng.randint(1, 8)
        layer: dict = {"type": "conv2d", "filters": filters}
        if rng.random() < 0.4:
            layer["bias"] = rng.random() < 0.3  # explicit true sometimes, mostly false
        if keep_size:
            kernel = rng.choice([1, 3, 5])
            layer.update(kernel_size=kernel, padding="same" if rng.random() < 0.5 else kernel // 2)
            return layer, (filters, height, width)
        kernel, stride = rng.randint(1, 4), rng.randint(1, 3)
        padding = rng.choice(["valid", "same", 0, 1, 2])
        if padding == "same" and stride != 1:
            padding = "valid"
        if padding == "same":
            out = (filters, height, width)
        else:
            pad = 0 if padding == "valid" else padding
            if kernel > min(height, width) + 2 * pad:
                return None
            out = (filters, (height + 2 * pad - kernel) // stride + 1, (width + 2 * pad - kernel) // stride + 1)
        layer.update(kernel_size=kernel, padding=padding)
        if stride != 1 or rng.random() < 0.3:
            layer["stride"] = stride
        return layer, out

    def pool(self, shape: Shape) -> tuple[dict, Shape] | None:
        rng = self.rng
        channels, height, width = shape
        size = rng.randint(1, 3)
        stride, pad = rng.randint(1, size), rng.randint(0, size // 2)
        if size > min(height, width) + 2 * pad:
            return None
        layer: dict = {"type": rng.choice(["maxpool2d", "avgpool2d"]), "pool_size": size}
        if stride != size or rng.random() < 0.3:
            layer["stride"] = stride
        if pad or rng.random() < 0.2:
            layer["padding"] = pad
        return layer, (channels, (height + 2 * pad - size) // stride + 1, (width + 2 * pad - size) // stride + 1)

    def dense(self, units: int | None = None) -> tuple[dict, Shape]:
        units = units or self.rng.randint(1, 12)
        layer: dict = {"type": "dense", "units": units}
        if self.rng.random() < 0.4:
            layer["bias"] = self.rng.random() < 0.3
        return layer, (units,)

    # blocks
    def plain(self) -> None:
        """One non-merge layer reading the head."""
        rng, top = self.rng, self.head
        shape = self.shape(top)
        image = len(shape) == 3
        spatial = ["conv", "conv", "pool", "gap"] if image else []
        kind = rng.choice(["dense", "activation", "dropout", "batchnorm"] + spatial)
        made = None
        if kind == "conv":
            made = self.conv(shape)
        elif kind == "pool":
            made = self.pool(shape)
        elif kind == "gap":
            made = ({"type": "globalavgpool"}, (shape[0], 1, 1))
        elif kind == "dense":
            made = self.dense()
        elif kind == "activation":
            made = ({"type": "activation", "fn": rng.choice(["relu", "tanh", "sigmoid", "elu", "leaky_relu"])}, shape)
        elif kind == "dropout":
            made = ({"type": "dropout", "rate": rng.choice([0.0, 0.1, 0.5])}, shape)
        if made is None:  # batchnorm, or nothing else fits
            made = ({"type": "batchnorm"}, shape)
        self.add(made[0], made[1], [top])

    def residual(self) -> None:
        """conv-bn-relu-conv-bn plus an identity or 1x1-conv + batchnorm projection shortcut, then add (and relu)."""
        rng, top = self.rng, self.head
        shape = self.shape(top)
        channels, height, width = shape
        stride = 2 if min(height, width) >= 4 and rng.random() < 0.4 else 1
        filters = channels if rng.random() < 0.5 else rng.randint(1, 8)
        kernel = rng.choice([1, 3])
        out = (filters, (height - 1) // stride + 1, (width - 1) // stride + 1)  # padding kernel // 2 keeps the size
        conv = {"type": "conv2d", "filters": filters, "kernel_size": kernel, "padding": kernel // 2, "bias": False}
        first = self.add({**conv, "stride": stride} if stride != 1 else conv, out, [top])
        self.add({"type": "batchnorm"}, out, [first])
        self.add({"type": "activation", "fn": "relu"}, out, [first + 1])
        self.add(conv, out, [first + 2])
        main = self.add({"type": "batchnorm"}, out, [first + 3])
        shortcut = top
        if out != shape:
            projection = {"type": "conv2d", "filters": filters, "kernel_size": 1, "bias": rng.random() < 0.5}
            if stride != 1:
                projection["stride"] = stride
            shortcut = self.add({"type": "batchnorm"}, out, [self.add(projection, out, [top])])
        merged = self.add({"type": "add", "inputs": rng.sample([main, shortcut], 2)}, out)
        if rng.random() < 0.7:
            self.add({"type": "activation", "fn": "relu"}, out, [merged])

    def branches(self) -> None:
        """Branches from the head (size-keeping convs or pools on images, dense layers), joined by concat."""
        rng, top = self.rng, self.head
        shape = self.shape(top)
        ends = [top] if rng.random() < 0.4 else []
        dense = len(shape) == 1 or rng.random() < 0.25  # vector branches (a dense reading an image flattens it)
        if dense and len(shape) == 3:
            ends = []
        for _ in range(rng.randint(2 - len(ends), 3 - len(ends))):
            last = top
            for _ in range(rng.randint(1, 2)):
                last_shape = self.shape(last)
                if dense:
                    made = self.dense()
                elif rng.random() < 0.3:
                    made = ({"type": rng.choice(["maxpool2d", "avgpool2d"]), "pool_size": 3, "stride": 1,
                             "padding": 1}, last_shape)
                else:
                    made = self.conv(last_shape, keep_size=True)
                last = self.add(made[0], made[1], [last])
            ends.append(last)
        shapes = [self.shape(k) for k in ends]
        self.add({"type": "concat", "inputs": ends}, (sum(s[0] for s in shapes), *shapes[0][1:]))

    def skip(self) -> None:
        """Join an earlier output (maybe the network input) to the head by add or concat, projected when needed."""
        rng, top = self.rng, self.head
        head = self.shape(top)
        source = rng.choice([k for k in self.shapes if k < top] or [top])
        if source == top:
            return self.plain()
        source_shape = self.shape(source)
        if len(head) == 1:  # a vector head: a dense layer from the source (an image source is flattened)
            layer, out = self.dense(head[0] if rng.random() < 0.5 else None)
            branch = self.add(layer, out, [source])
        elif len(source_shape) == 1:  # a vector cannot join an image
            return self.plain()
        elif source_shape[1:] != head[1:] or (source_shape[0] != head[0] and rng.random() < 0.5):
            conv = _matching_conv(rng, source_shape, head)
            if conv is None:
                return self.plain()
            branch = self.add(conv, (conv["filters"], *head[1:]), [source])
        else:
            branch = source
        other = self.shape(branch)
        if other == head and rng.random() < 0.6:
            self.add({"type": "add", "inputs": rng.sample([top, branch], 2)}, head)
        else:
            self.add({"type": "concat", "inputs": rng.sample([top, branch], 2)}, (head[0] + other[0], *head[1:]))
        return None


def _matching_conv(rng: random.Random, source: Shape, target: Shape) -> dict | None:
    """A conv2d taking ``source`` to ``target``'s height and width (channels: target's, or random)."""
    _, height, width = source
    options = []
    for kernel in range(1, 5):
        for stride in range(1, 5):
            for pad in range(0, 3):
                if kernel > min(height, width) + 2 * pad:
                    continue
                if ((height + 2 * pad - kernel) // stride + 1, (width + 2 * pad - kernel) // stride + 1) == target[1:]:
                    options.append((kernel, stride, pad))
    if not options:
        return None
    kernel, stride, pad = rng.choice(options)
    return {"type": "conv2d", "filters": target[0] if rng.random() < 0.7 else rng.randint(1, 8),
            "kernel_size": kernel, "stride": stride, "padding": pad if pad or rng.random() < 0.5 else "valid"}


def random_graph_specs(count: int = 300, seed: int = 0) -> list[tuple[dict, list[Shape]]]:
    rng = random.Random(seed)
    return [random_graph_spec(rng) for _ in range(count)]


# --- what the generator covers ------------------------------------------------------------------

def coverage(specs: list[dict]) -> Counter:
    """Which layer options the specs use (each counted once per spec)."""
    seen: Counter = Counter()
    for spec in specs:
        analysis = analyse(spec)
        layers = spec["layers"]
        found = set()
        for info, layer in zip(analysis.layers, layers):
            kind = layer["type"]
            found.add(kind)
            if kind == "activation":
                found.add(f"activation {layer['fn']}")
            if kind in ("conv2d", "dense"):
                found.add(f"{kind} bias {layer.get('bias', True)}")
            if kind == "conv2d":
                padding = layer.get("padding", "valid")
                found.add(f"conv2d padding {padding if isinstance(padding, str) else 'int'}")
                if not isinstance(padding, str) and padding > 0 and layer.get("stride", 1) > 1:
                    found.add("conv2d int padding with stride")
            if kind in ("maxpool2d", "avgpool2d") and layer.get("padding", 0) > 0:
                found.add(f"{kind} padding")
            if kind == "batchnorm":
                found.add("batchnorm 1d" if len(info.input_shape) == 1 else "batchnorm 2d")
            if kind == "dense" and len(info.input_shape) == 3:
                found.add("dense reading an image")
            if kind == "concat":
                found.add("concat images" if len(info.output_shape) == 3 else "concat vectors")
            if kind == "add":
                for k in info.inputs:
                    if any(k in _ancestors(analysis, other) for other in info.inputs if other != k):
                        found.add("add identity shortcut")
                    if k >= 0 and layers[k]["type"] == "batchnorm" and layers[analysis.layers[k].inputs[0]].get(
                            "kernel_size") == 1:
                        found.add("add projection shortcut")
            if -1 in info.inputs and info.index > 0:
                found.add("inputs reach -1")
        seen.update(found)
    return seen


def _ancestors(analysis, index: int) -> set[int]:
    """Every output that ``index`` depends on (``-1`` included)."""
    out, todo = set(), [index]
    while todo:
        for k in analysis.layers[todo.pop()].inputs:
            if k not in out:
                out.add(k)
                if k >= 0:
                    todo.append(k)
    return out


EVERY_OPTION = [
    "conv2d bias True", "conv2d bias False", "conv2d padding valid", "conv2d padding same", "conv2d padding int",
    "conv2d int padding with stride", "maxpool2d padding", "avgpool2d padding", "globalavgpool",
    "dense bias True", "dense bias False", "dense reading an image", "batchnorm 1d", "batchnorm 2d", "dropout",
    "activation relu", "activation tanh", "activation sigmoid", "activation elu", "activation leaky_relu",
    "add identity shortcut", "add projection shortcut", "concat images", "concat vectors", "inputs reach -1",
]


# --- torch --------------------------------------------------------------------------------------

def torch_layer_shapes(model: nn.Module, spec: dict, x: torch.Tensor) -> tuple[list[Shape], torch.Tensor]:
    """Every spec layer's output shape (batch dimension dropped) as the built module computes it, and the logits."""
    from trainer.model import GraphModel

    if isinstance(model, GraphModel):
        outputs = model.layer_outputs(x)
        logits = model(x)
        return [tuple(outputs[i].shape[1:]) for i in range(len(spec["layers"]))], logits
    assert isinstance(model, nn.Sequential)
    seen: dict[int, Shape] = {}
    hooks = [module.register_forward_hook(lambda m, i, o, index=int(name): seen.__setitem__(index, tuple(o.shape[1:])))
             for name, module in model.named_children() if name.isdigit()]
    logits = model(x)
    for hook in hooks:
        hook.remove()
    return [seen[i] for i in range(len(spec["layers"]))], logits


def test_resnet20_has_272474_parameters_in_the_spec_and_in_the_torch_module():
    from trainer.model import GraphModel, build_model

    spec = resnet20()
    analysis = analyse(spec)
    assert analysis.ok, analysis.problems
    assert analysis.total_params == 272_474
    assert analysis.merge_count == 9 and analysis.longest_path == analysis.depth - 2 * 2  # projections off the path
    model = build_model(spec)
    assert isinstance(model, GraphModel)
    assert sum(p.numel() for p in model.parameters()) == 272_474
    assert all(conv.bias is None for conv in model.modules() if isinstance(conv, nn.Conv2d))
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(4, 3, 32, 32)).shape == (4, 10)


def test_a_graph_module_has_the_plan_names_in_plan_order_as_state_dict_keys():
    from trainer.model import build_model

    model = build_model(SMALL_RESIDUAL)
    names = [step.name for step in module_plan(SMALL_RESIDUAL)]
    assert [name for name, _ in model.named_children()] == names
    assert "flatten_13" in names and "5" not in names and "12" not in names  # merges have no module
    keys = {key.split(".")[0] for key in model.state_dict()}
    with_weights = ("Conv2d", "Linear", "BatchNorm2d")
    assert keys == {step.name for step in module_plan(SMALL_RESIDUAL) if step.cls in with_weights}
    assert model.state_dict()["7.bias"].shape == (12,) and "0.bias" not in model.state_dict()


def test_a_chain_is_still_an_nn_sequential_even_written_in_schema_2():
    from trainer.model import build_model

    chain = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
        {"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "activation", "fn": "relu"}]}
    conv, relu = chain["layers"]
    explicit = {**chain, "schema": 2, "layers": [{**conv, "inputs": [-1]}, {**relu, "inputs": [0]}]}
    no_bias = {**chain, "schema": 2, "layers": [{**conv, "bias": False, "padding": 1}, relu]}
    for spec in (chain, explicit, no_bias):
        model = build_model(spec)
        assert type(model) is nn.Sequential
        assert [name for name, _ in model.named_children()] == ["0", "1", "flatten", "classifier"]
    assert build_model(no_bias)[0].bias is None


def test_forward_equals_the_classifier_on_the_last_layer_and_keeps_only_what_is_still_read():
    from trainer.model import build_model

    torch.manual_seed(0)
    model = build_model(SMALL_RESIDUAL).eval()
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        outputs = model.layer_outputs(x)
        assert sorted(outputs) == list(range(-1, len(SMALL_RESIDUAL["layers"])))
        assert torch.equal(outputs[5], outputs[4] + outputs[2])
        assert torch.equal(outputs[12], torch.cat([outputs[9], outputs[11]], dim=1))
        assert torch.equal(model(x), model.classifier(model.flatten(outputs[13])))
        assert list(model._run(x, keep=False)) == [13]  # every other output was dropped after its last reader


def test_the_random_specs_cover_every_layer_option():
    specs = [spec for spec, _ in random_graph_specs()]
    seen = coverage(specs)
    missing = [option for option in EVERY_OPTION if seen[option] < 5]
    assert not missing, f"the generator rarely or never makes {missing}: {dict(seen)}"
    assert sum(1 for spec in specs if not analyse(spec).is_chain) >= 200  # 248 with seed 0


def test_parameter_counts_and_every_output_shape_equal_the_torch_module_on_300_random_graphs():
    from trainer.model import build_model, count_parameters

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 300 tiny models: thread start-up, not arithmetic, dominates (7 s against 1 s)
    try:
        _compare_with_torch(build_model, count_parameters)
    finally:
        torch.set_num_threads(threads)


def _compare_with_torch(build_model, count_parameters) -> None:
    for n, (spec, shapes) in enumerate(random_graph_specs()):
        analysis = analyse(spec)
        assert analysis.ok, (n, analysis.problems, spec)
        assert [info.output_shape for info in analysis.layers] == shapes, (n, spec)  # the generator agrees
        model = build_model(spec).eval()
        assert count_parameters(model) == analysis.total_params, (n, spec)
        assert [step.name for step in module_plan(spec)] == [name for name, _ in model.named_children()]
        x = torch.randn(2, *spec["input"]["shape"])
        with torch.no_grad():
            torch_shapes, logits = torch_layer_shapes(model, spec, x)
        assert torch_shapes == shapes, (n, spec)
        assert logits.shape == (2, spec["input"]["num_classes"])


def test_a_residual_spec_trains_through_the_real_trainer(tmp_path):
    from remap_tb import export, metadata
    from remap_tb.requests import make_request
    from remap_tb.spec import normalise_spec
    from tests.fixtures_runs import model_record
    from tests.test_export import load_model_class
    from trainer.model import build_model
    from trainer.train import train

    request = make_request(SMALL_RESIDUAL, training={"epochs": 2}, request_id="res-1",
                           provenance={"origin": "handcrafted", "parent": None, "changes": []})
    result = train(request, str(tmp_path), device="cpu")
    assert result.state == metadata.DONE and result.epoch == 2
    assert result.metrics["val_accuracy"] > 0.3  # digits: well above chance (0.1) after 2 epochs
    record = model_record(str(tmp_path), "res-1")
    assert record["spec"] == normalise_spec(SMALL_RESIDUAL) and record["spec"]["schema"] == 2
    assert record["params"] == analyse(SMALL_RESIDUAL).total_params
    weights = torch.load(tmp_path / "res-1" / metadata.WEIGHTS_FILE, weights_only=True)
    model = build_model(record["spec"])
    model.load_state_dict(weights)  # strict
    exported = load_model_class(export.pytorch_source(record["spec"], "res-1"))()
    exported.load_state_dict(weights)  # strict
    model.eval(), exported.eval()
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x), exported(x))


def test_remap_validate_prints_each_graph_layers_inputs_and_no_inputs_column_for_a_chain(tmp_path):
    import json
    import subprocess
    import sys

    def validate(spec: dict) -> str:
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(spec))
        out = subprocess.run([sys.executable, "-m", "trainer.cli", "validate", str(path)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    rows = {line.split()[0]: line.split() for line in validate(SMALL_RESIDUAL).splitlines() if line.split()}
    assert rows["layer"] == ["layer", "output", "params", "inputs"]
    assert rows["5"] == ["5", "add", "8x8x8", "0", "4,", "2"]
    assert rows["10"][-1] == "input" and rows["12"][-2:] == ["9,", "11"]
    assert " ".join(rows["valid:"]) == "valid: 5,178 parameters, 14 layers, 3 merge(s), longest path 11"
    chain = validate({"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10},
                      "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}]})
    assert "inputs" not in chain and "merge" not in chain and "valid: 1,490 parameters, 1 layers" in chain
