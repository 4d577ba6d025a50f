"""Layer-wise least-squares refit of a child to its parent's outputs (``trainer.refit``)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")

from trainer.model import build_model  # noqa: E402
from trainer.refit import refit, sample_images  # noqa: E402

INPUT = {"shape": [1, 8, 8], "num_classes": 10}
RELU = {"type": "activation", "fn": "relu"}


def spec(*layers: dict, schema: int = 2) -> dict:
    return {"schema": schema, "input": INPUT, "layers": list(layers)}


def conv(filters: int, k: int, **more) -> dict:
    return {"type": "conv2d", "filters": filters, "kernel_size": k, **more}


def models(parent: dict, child: dict, seed: int = 0):
    torch.manual_seed(seed)
    teacher = build_model(parent)
    with torch.no_grad():
        for name, tensor in teacher.state_dict().items():
            if name.endswith("bias"):
                tensor.copy_(torch.randn_like(tensor))  # a non-zero intercept to recover
    torch.manual_seed(seed + 1)
    return teacher.eval(), build_model(child)


@pytest.mark.parametrize("layers", [
    [conv(6, 3), RELU, conv(5, 3), RELU],
    [conv(4, 2, padding="same"), RELU, conv(3, 3, stride=2, padding=1), RELU],  # even kernel 'same', stride
    [{"type": "dense", "units": 12}, RELU, {"type": "dense", "units": 7}],
])
def test_a_random_copy_of_the_parent_is_refitted_to_the_parents_function(layers):
    """Every layer sees its parent layer's exact input in turn, so least squares recovers every layer."""
    parent = spec(*layers)
    teacher, child = models(parent, parent)
    pairs = [(str(i), str(i)) for i, layer in enumerate(layers) if layer["type"] != "activation"]
    x = torch.randn(400, 1, 8, 8)
    done = refit(child, teacher, pairs + [("classifier", "classifier")], x)
    assert [r.layer for r in done] == [int(a) for a, _ in pairs] + ["classifier"]
    assert all(r.after < 1e-3 < r.before for r in done), done  # (a unit dead on one half: not exactly 0)
    fresh = torch.randn(64, 1, 8, 8)
    with torch.no_grad():
        assert (child(fresh) - teacher(fresh)).abs().max() < 1e-2 * teacher(fresh).abs().max()
    assert child.training  # the mode is restored


def test_a_layer_that_already_reproduces_its_parent_is_left_alone():
    parent = spec(conv(6, 3), RELU)
    teacher, child = models(parent, parent)
    child.load_state_dict(teacher.state_dict())
    before = {k: v.clone() for k, v in child.state_dict().items()}
    assert refit(child, teacher, [("0", "0"), ("classifier", "classifier")], torch.randn(200, 1, 8, 8)) == []
    assert all(torch.equal(before[k], v) for k, v in child.state_dict().items())


def test_layers_of_another_output_shape_or_type_are_skipped():
    teacher, child = models(spec(conv(6, 3), RELU), spec(conv(6, 5), RELU))  # 6x6 vs 4x4 outputs
    before = child.state_dict()["0.weight"].clone()
    done = refit(child, teacher, [("0", "0"), ("1", "0"), ("classifier", "classifier")], torch.randn(200, 1, 8, 8))
    assert torch.equal(child.state_dict()["0.weight"], before)
    assert [r.layer for r in done] == ["classifier"]  # a linear probe on the child's features


def test_a_removed_convolution_is_bridged_towards_the_parents_predictions():
    """The child lost the middle conv: refit moves its classifier so its predictions agree with the parent's."""
    parent = spec(conv(8, 3, padding="same"), RELU, conv(8, 3, padding="same"), RELU)
    child = spec(conv(8, 3, padding="same"), RELU, RELU)
    teacher, student = models(parent, child)
    student.load_state_dict({k: v for k, v in teacher.state_dict().items() if not k.startswith("2.")}, strict=False)
    x, test = torch.randn(600, 1, 8, 8), torch.randn(300, 1, 8, 8)

    def agreement() -> float:
        with torch.no_grad():
            return (student(test).argmax(1) == teacher(test).argmax(1)).float().mean().item()

    start = agreement()
    done = refit(student, teacher, [("0", "0"), ("classifier", "classifier")], x)
    assert [r.layer for r in done] == ["classifier"] and done[0].after < 0.9 * done[0].before
    assert agreement() > max(0.5, start + 0.2)


def test_sample_images_is_seeded_and_bounded():
    x = torch.arange(5000).float().reshape(5000, 1, 1, 1)
    a, b = sample_images(x, 3, 100), sample_images(x, 3, 100)
    assert torch.equal(a, b) and len(a) == 100 and len(set(a.flatten().tolist())) == 100
    assert not torch.equal(a, sample_images(x, 4, 100))
    assert sample_images(x[:50], 3, 100) is not None and len(sample_images(x[:50], 3, 100)) == 50


def test_a_classifier_wider_than_the_sample_is_fitted_in_the_dual_form():
    """4,096 features, 300 images: more unknowns than rows; the dual solve still moves the child's
    predictions onto the parent's (a copied conv, a fresh classifier)."""
    import trainer.refit as refit_module

    parent = spec(conv(64, 3, padding="same"), RELU)
    teacher, student = models(parent, parent)
    student.load_state_dict({k: v for k, v in teacher.state_dict().items() if not k.startswith("classifier")},
                            strict=False)
    x, test = torch.randn(300, 1, 8, 8), torch.randn(200, 1, 8, 8)
    assert student.classifier.in_features > len(x)

    def agreement() -> float:
        with torch.no_grad():
            return (student(test).argmax(1) == teacher(test).argmax(1)).float().mean().item()

    start = agreement()
    done = refit(student, teacher, [("0", "0"), ("classifier", "classifier")], x)
    assert [r.layer for r in done] == ["classifier"] and done[0].after < 0.5 * done[0].before
    assert agreement() > max(0.6, start + 0.3)
    assert refit_module.MAX_ENTRIES >= 4096 * 300  # all 300 images were used (no cap hit here)
