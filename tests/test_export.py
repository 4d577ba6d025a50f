"""The exported PyTorch source rebuilds ``trainer.model.build_model`` exactly.

Checked on a run the trainer wrote (its ``weights.pt`` loads and gives the
same logits) and on random specs covering every layer type (same module tree,
same state_dict keys and shapes, same outputs with copied weights).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from remap_tb import export, metadata
from remap_tb.spec import SpecError
from remap_tb.spec.sampler import sample_specs
from tests.fixtures_runs import BASE, DENSE
from trainer.model import build_model

INPUT = {"shape": [3, 12, 12], "num_classes": 4}
EVERY_LAYER = {"schema": 1, "input": INPUT, "layers": [
    {"type": "conv2d", "filters": 6, "kernel_size": 3, "padding": "same"},
    {"type": "batchnorm"},
    {"type": "activation", "fn": "leaky_relu"},
    {"type": "maxpool2d", "pool_size": 2},
    {"type": "conv2d", "filters": 5, "kernel_size": 2, "stride": 2},
    {"type": "activation", "fn": "elu"},
    {"type": "avgpool2d", "pool_size": 2, "stride": 1},
    {"type": "dropout", "rate": 0.3},
    {"type": "globalavgpool"},
    {"type": "batchnorm"},
    {"type": "dense", "units": 7},
    {"type": "batchnorm"},
    {"type": "activation", "fn": "sigmoid"},
    {"type": "dense", "units": 5},
    {"type": "activation", "fn": "tanh"},
]}


def load_model_class(source: str):
    namespace: dict = {"__name__": "exported"}
    exec(compile(source, "exported.py", "exec"), namespace)
    return namespace["Model"]


def same_structure(a: torch.nn.Module, b: torch.nn.Module) -> None:
    assert [name for name, _ in a.named_children()] == [name for name, _ in b.named_children()]
    assert [repr(m) for m in a.children()] == [repr(m) for m in b.children()]
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


@pytest.mark.parametrize("run,spec", [("m-base", BASE), ("m-dense", DENSE)])
def test_exported_module_loads_the_trained_weights_and_gives_the_same_logits(remap_logdir, run, spec):
    weights = torch.load(os.path.join(remap_logdir.path, run, metadata.WEIGHTS_FILE), weights_only=True)
    model = load_model_class(export.pytorch_source(spec, run))()
    model.load_state_dict(weights)  # strict: same keys, same shapes
    reference = build_model(spec)
    reference.load_state_dict(weights)
    model.eval(), reference.eval()
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_every_layer_type_is_rebuilt_exactly():
    reference = build_model(EVERY_LAYER)
    model = load_model_class(export.pytorch_source(EVERY_LAYER))()
    same_structure(model, reference)
    model.load_state_dict(reference.state_dict())
    model.eval(), reference.eval()
    x = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_random_specs_from_the_sampler_are_rebuilt_exactly():
    specs = sample_specs(40, (1, 8, 8), 10, seed=7).specs
    for spec in specs:
        reference = build_model(spec)
        model = load_model_class(export.pytorch_source(spec))()
        same_structure(model, reference)
        assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())


def test_the_empty_model_is_flatten_and_classifier():
    spec = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": []}
    model = load_model_class(export.pytorch_source(spec))()
    assert [name for name, _ in model.named_children()] == ["flatten", "classifier"]
    assert model.classifier.in_features == 64


def test_the_source_imports_only_torch_and_runs_as_a_script(tmp_path):
    source = export.pytorch_source(EVERY_LAYER, "variation-1a2b", ["a", "b", "c", "d"])
    imports = {line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports == {"torch"}
    path = tmp_path / "model.py"
    path.write_text(source)
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "parameters; expected" in result.stdout


def test_text_from_the_logdir_cannot_break_out_of_the_source():
    hostile = 'x"""\nimport os; os.system("echo pwned")\n"""'
    source = export.pytorch_source(BASE, hostile, [hostile, "\\", "'"])
    assert "pwned" not in source.split("CLASS_NAMES = ")[0]
    namespace: dict = {}
    exec(compile(source, "exported.py", "exec"), namespace)  # still valid Python
    assert namespace["CLASS_NAMES"] == [hostile, "\\", "'"]


def test_invalid_specs_are_refused():
    with pytest.raises(SpecError):
        export.pytorch_source({**BASE, "layers": [{"type": "maxpool2d", "pool_size": 99}]})


def test_exported_preprocess_standardises_like_the_training_data(tmp_path):
    from remap_tb.requests import dataset_config
    from trainer.datasets import load_dataset

    config = dataset_config({"name": "digits"})
    data = load_dataset(config)
    normalisation = {"mean": list(data.norm_mean), "std": list(data.norm_std)}
    namespace: dict = {"__name__": "exported"}
    exec(compile(export.pytorch_source(BASE, "m", normalisation=normalisation), "exported.py", "exec"), namespace)
    raw = load_dataset({**config, "normalise": False})  # the same split, pixels in [0, 1]
    assert torch.allclose(namespace["preprocess"](raw.x_val), data.x_val, atol=1e-5)
    plain: dict = {"__name__": "exported"}
    exec(compile(export.pytorch_source(BASE, "m"), "exported.py", "exec"), plain)
    assert plain["MEAN"] is None and torch.equal(plain["preprocess"](raw.x_val), raw.x_val)


# --- schema 2 graphs ------------------------------------------------------------------------------

TINY_CHAIN = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
    {"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "activation", "fn": "relu"},
    {"type": "dense", "units": 8}]}

# The class of a chain's source, exactly as before schema 2 (an nn.Sequential-like loop over the children).
TINY_CHAIN_CLASS = '''class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers = [
            ('0', nn.Conv2d(1, 4, 3, stride=1, padding='valid')),  # [1, 8, 8] -> [4, 6, 6], 40 params
            ('1', nn.ReLU()),                                      # [4, 6, 6] -> [4, 6, 6], 0 params
            ('flatten_2', nn.Flatten()),
            ('2', nn.Linear(144, 8)),                              # [4, 6, 6] -> [8], 1,160 params
            ('flatten', nn.Flatten()),
            ('classifier', nn.Linear(8, 10)),                      # -> [10], 90 params
        ]
        for name, module in layers:
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.children():
            x = module(x)
        return x
'''


def test_a_chain_is_exported_as_before_even_written_in_schema_2():
    explicit = {**TINY_CHAIN, "schema": 2,
                "layers": [{**layer, "inputs": [i - 1], "bias": True} for i, layer in enumerate(TINY_CHAIN["layers"])]}
    explicit["layers"][1].pop("bias")
    for spec in (TINY_CHAIN, explicit):
        source = export.pytorch_source(spec)
        assert source[source.index("class Model"):].startswith(TINY_CHAIN_CLASS + "\n\nif __name__")
        assert type(build_model(spec)) is torch.nn.Sequential


def test_a_graph_forward_is_written_out_layer_by_layer():
    from tests.test_model_schema2 import SMALL_RESIDUAL

    source = export.pytorch_source(SMALL_RESIDUAL)
    forward = source[source.index("    def forward"):source.index("if __name__")]
    statements = [line.split("#")[0].strip() for line in forward.splitlines()[1:] if line.strip()]
    assert statements[:2] == ["h0 = self._modules['0'](x)", "h1 = self._modules['1'](h0)"]
    assert "h5 = h4 + h2" in statements and "h8 = self._modules['8'](h6)" in statements
    assert "h10 = self._modules['10'](x)" in statements  # a layer reading the network input
    assert "h12 = torch.cat([h9, h11], dim=1)" in statements
    assert "h13 = self._modules['13'](self._modules['flatten_13'](h12))" in statements
    assert statements[-1] == "return self.classifier(self.flatten(h13))"
    assert "# add -> [8, 8, 8]" in forward and "# concat -> [13, 4, 4]" in forward
    assert "('5'" not in source and "('12'" not in source  # merges have no module


def _round_trip(spec: dict, seed: int) -> None:
    """``build_model(spec)``'s weights (batchnorm statistics moved) load strictly into the export: same logits."""
    torch.manual_seed(seed)
    reference = build_model(spec)
    x = torch.randn(4, *spec["input"]["shape"], generator=torch.Generator().manual_seed(seed))
    reference.train()
    with torch.no_grad():
        reference(x)  # moves the batchnorm running statistics off their defaults
    model = load_model_class(export.pytorch_source(spec))()
    same_structure(model, reference)
    model.load_state_dict(reference.state_dict())  # strict
    model.eval(), reference.eval()
    with torch.no_grad():
        assert torch.equal(model(x), reference(x)), spec


def test_resnet20_round_trips_through_the_exported_source(tmp_path):
    from tests.test_model_schema2 import resnet20

    spec = resnet20()
    _round_trip(spec, 0)
    source = export.pytorch_source(spec, "resnet-20")
    imports = {line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports == {"torch"}
    path = tmp_path / "model.py"
    path.write_text(source)
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "272474 parameters; expected 272474" in result.stdout


def test_random_graphs_round_trip_through_the_exported_source():
    from tests.test_model_schema2 import random_graph_specs

    graphs = [spec for spec, _ in random_graph_specs(60, seed=1)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: thread start-up dominates
    try:
        for seed, spec in enumerate(graphs):
            _round_trip(spec, seed)
    finally:
        torch.set_num_threads(threads)
