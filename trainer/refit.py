"""Refit a child's layers to its parent's outputs by least squares (layer-wise reconstruction).

After ``trainer.inherit`` has copied and morphed what it can, a child whose
change could not be made function-preserving (a removed k>1 convolution, an
inserted pool, a classifier whose input grid changed, a removed activation)
computes something far from its parent: its new or misshapen layers start
random. This module moves those layers towards the parent's function with no
training step: for each child layer with parameters that the layer alignment
pairs with a parent layer of the same type and output shape (the classifier
always pairs with the parent's classifier), in layer order,

    W*, b* = argmin_{W,b}  ||X W + 1 b^T - Y||_F^2 + lambda ||W||_F^2,

where the rows of X are the child layer's inputs on a sample of training images
(a dense layer: the input vector; a convolution: the k x k x C_in patch under
each output position, as ``F.unfold`` lays it out, on a random subset of
positions) computed through the child as initialised so far, and the rows of Y
are the parent layer's outputs at the same images and positions. With X and Y
centred, W* = (X^T X + lambda I)^-1 X^T Y and b* = mean(Y) - mean(X) W*
(ridge regression; Hoerl & Kennard 1970). This is the output reconstruction
pruning methods use to repair the layer after a removed channel (ThiNet, Luo
et al. 2017; He et al. 2017, "Channel pruning"), applied to every change the
operators make, and for the classifier it is a linear probe on the child's
features with the parent's logits as targets (Kumar et al. 2022 show that a
fitted head before fine-tuning keeps the features from being distorted).

lambda is chosen on held-out images: the sample is split in two halves; the
eigendecomposition of the first half's Gram matrix gives the solution for every
lambda in a grid at once; the lambda with the lowest relative error
||Y - Y_hat||^2 / ||Y - mean(Y)||^2 on the second half wins, and the layer is
refitted on both halves with it. A layer is replaced only when its held-out
error drops below ``ACCEPT`` times the error of the weights it already has, so
a copied layer that already reproduces its parent (an exact morph) is left as
it is, and a refit never makes the sample fit worse.

A layer whose input is wider than it has rows (a dense layer or classifier over a
large flattened map: one row per image) is solved in the dual form,
W* = X^T (X X^T + lambda I)^-1 Y, whose matrix is rows x rows; such a layer uses
fewer images when X would exceed ``MAX_ENTRIES`` entries. Skipped: layers without a
paired parent layer of the same output shape, convolutions wider than
``MAX_FEATURES`` (C_in k^2; their Gram matrix and patches would be too costly), and
any convolution whose patch layout does not reproduce the module's own output (a
self-check).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits
import torch.nn.functional as F
from torch import nn

from remap_tb.spec.inherit import CLASSIFIER

SAMPLE = 1024  # training images used
MAX_ROWS = 24_000  # rows of X per half (convolutions: random output positions)
MAX_FEATURES = 4_608  # widest convolution input (C_in * k * k) refitted (a d x d Gram matrix)
MAX_ENTRIES = 1 << 24  # entries of X per layer: wide dense layers use fewer images (dual form)
PATCH_ENTRIES = 1 << 23  # entries of one unfolded batch of patches
ACCEPT = 0.9  # refit only when the held-out error falls below this fraction of the current one
RIDGE_GRID = (1e-9, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # lambda / mean eigenvalue of X^T X


@dataclass(frozen=True)
class Refit:
    """One refitted layer: child layer (int or "classifier"), its parent layer, held-out errors."""

    layer: int | str
    parent: int | str
    before: float
    after: float

    def to_json(self) -> dict:
        return {"layer": self.layer, "from": self.parent, "error": [round(self.before, 4), round(self.after, 4)]}


def sample_images(x_train: torch.Tensor, seed: int, n: int = SAMPLE) -> torch.Tensor:
    """``n`` training images (all when fewer), drawn with a generator seeded by ``seed``."""
    if len(x_train) <= n:
        return x_train
    generator = torch.Generator().manual_seed(seed)
    return x_train[torch.randperm(len(x_train), generator=generator)[:n].to(x_train.device)]


def refit(child: nn.Module, parent: nn.Module, pairs: list[tuple[str, str]], images: torch.Tensor,
          seed: int = 0) -> list[Refit]:
    """Refit each child module of ``pairs`` (child name, parent name), in order, to the parent's output.

    Both models are evaluated in eval mode on ``images`` (restored after); the
    child's weights are changed in place. Returns what was refitted.
    """
    generator = torch.Generator().manual_seed(seed)
    modules = dict(child.named_modules())
    theirs = dict(parent.named_modules())
    child_mode, parent_mode = child.training, parent.training
    child.eval()
    parent.eval()
    done: list[Refit] = []
    try:
        if len(images) < 16:
            return done
        for c_name, p_name in pairs:
            module, source = modules.get(c_name), theirs.get(p_name)
            if not isinstance(module, (nn.Linear, nn.Conv2d)) or type(source) is not type(module):
                continue
            if isinstance(module, nn.Conv2d) and module.in_channels * math.prod(module.kernel_size) > MAX_FEATURES:
                continue
            use = images
            if isinstance(module, nn.Linear) and module.in_features * len(images) > MAX_ENTRIES:
                use = images[:max(16, MAX_ENTRIES // module.in_features)]
            half = len(use) // 2
            rows = _collect(child, module, parent, source, use, generator)
            if rows is None:
                continue
            x, y, current, per_image = rows
            with threadpool_limits(limits=1, user_api="blas"):  # small matrices: threads only contend
                result = _ridge(x, y, current, half * per_image, centre=module.bias is not None)
            if result is None:
                continue
            weight, bias, before, after = result
            _write(module, weight, bias)
            done.append(Refit(_layer_name(c_name), _layer_name(p_name), before, after))
    finally:
        child.train(child_mode)
        parent.train(parent_mode)
    return done


def _collect(child: nn.Module, module: nn.Module, parent: nn.Module, source: nn.Module, images: torch.Tensor,
             generator: torch.Generator, chunk: int = 64):
    """(X, Y, current outputs, rows per image) over ``images``, a chunk at a time, or None (skipped)."""
    xs, ys, nows, per_image = [], [], [], None
    for start in range(0, len(images), chunk):
        batch = images[start:start + chunk]
        inputs, output = _io(child, module, batch)
        target = _io(parent, source, batch)[1]
        if output.shape != target.shape:
            return None
        if per_image is None:
            per_image = 1 if isinstance(module, nn.Linear) else min(
                _out_positions(module, inputs), max(1, MAX_ROWS // max(1, len(images) // 2)))
        rows = _rows(module, inputs, output, target, generator, per_image)
        if rows is None:
            return None
        for found, into in zip(rows, (xs, ys, nows)):
            into.append(found)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(nows), per_image


def _layer_name(name: str) -> int | str:
    return CLASSIFIER if name == CLASSIFIER else int(name)


@torch.no_grad()
def _io(model: nn.Module, module: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``module``'s input and output when ``model`` runs on ``images``."""
    found: list[tuple[torch.Tensor, torch.Tensor]] = []
    hook = module.register_forward_hook(lambda mod, args, out: found.append((args[0].detach(), out.detach())))
    try:
        model(images)
    finally:
        hook.remove()
    return found[0]


def _out_positions(module: nn.Conv2d, inputs: torch.Tensor) -> int:
    padded = _pad(module, inputs)
    k, s = module.kernel_size, module.stride
    return ((padded.shape[2] - k[0]) // s[0] + 1) * ((padded.shape[3] - k[1]) // s[1] + 1)


def _pad(module: nn.Conv2d, inputs: torch.Tensor) -> torch.Tensor:
    """``inputs`` padded as the convolution pads them ('same': the extra pixel right and below, as torch does)."""
    if module.padding == "same":
        pads = []
        for k in reversed(module.kernel_size):
            total = k - 1
            pads += [total // 2, total - total // 2]
        return F.pad(inputs, pads)
    if module.padding == "valid":
        return inputs
    p = module.padding
    return F.pad(inputs, (p[1], p[1], p[0], p[0]))


@torch.no_grad()
def _rows(module: nn.Module, inputs: torch.Tensor, output: torch.Tensor, target: torch.Tensor,
          generator: torch.Generator, keep: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(X, Y, X's current outputs) as float64 rows, or None when the layer is skipped."""
    if isinstance(module, nn.Linear):
        x, y, now = inputs.flatten(1), target.flatten(1), output.flatten(1)
    else:
        padded = _pad(module, inputs)
        n, d, length = len(inputs), module.in_channels * math.prod(module.kernel_size), output.shape[2] * output.shape[3]
        index = torch.stack([torch.randperm(length, generator=generator)[:keep] for _ in range(n)]).to(inputs.device)
        pick = lambda t, rows: torch.gather(t, 2, rows.unsqueeze(1).expand(-1, t.shape[1], -1))  # noqa: E731
        step = max(1, PATCH_ENTRIES // max(1, d * length))  # images unfolded at once
        x = torch.cat([pick(F.unfold(padded[i:i + step], module.kernel_size, stride=module.stride), index[i:i + step])
                       for i in range(0, n, step)]).permute(0, 2, 1).reshape(-1, d)
        y = pick(target.flatten(2), index).permute(0, 2, 1).reshape(-1, target.shape[1])
        now = pick(output.flatten(2), index).permute(0, 2, 1).reshape(-1, output.shape[1])
        # self-check: the patches times the module's weights must give its output
        weight = module.weight.detach().flatten(1)
        again = x @ weight.T + (module.bias.detach() if module.bias is not None else 0)
        if not torch.allclose(again, now, rtol=1e-3, atol=1e-4 * (1 + now.abs().max().item())):
            return None
    return (x.detach().cpu().double().numpy(), y.detach().cpu().double().numpy(),
            now.detach().cpu().double().numpy())


def _relative_error(prediction: np.ndarray, target: np.ndarray) -> float:
    spread = float(((target - target.mean(0)) ** 2).sum())
    return float(((prediction - target) ** 2).sum()) / max(spread, 1e-12)


def _ridge(x: np.ndarray, y: np.ndarray, current: np.ndarray, half_rows: int, centre: bool = True):
    """(W, b, held-out error before, after) of the best lambda, or None when it does not help enough.

    ``centre`` False (a layer without a bias): no intercept, X and Y are not centred.
    (numpy, not ``torch.linalg``: its first call imports torch's decompositions, seconds.)
    """
    xa, ya, xb, yb = x[:half_rows], y[:half_rows], x[half_rows:], y[half_rows:]
    if len(xb) == 0 or len(xa) == 0:
        return None
    before = _relative_error(current[half_rows:], yb)
    if before < 1e-8:
        return None
    mean = (lambda t: t.mean(0)) if centre else (lambda t: np.zeros(t.shape[1]))  # noqa: E731
    mx, my = mean(xa), mean(ya)
    xa_c, ya_c = xa - mx, ya - my
    dual = x.shape[1] > len(x)  # wider than the rows: solve in the (rows x rows) dual form
    if dual:
        values, vectors = np.linalg.eigh(xa_c @ xa_c.T)
        q = vectors.T @ ya_c
        p = ((xb - mx) @ xa_c.T) @ vectors
    else:
        values, vectors = np.linalg.eigh(xa_c.T @ xa_c)
        q = vectors.T @ (xa_c.T @ ya_c)
        p = (xb - mx) @ vectors
    values = np.clip(values, 0, None)
    scale = max(float(values.mean()), 1e-12)
    best = None
    for factor in RIDGE_GRID:
        error = _relative_error(p @ (q / (values + factor * scale)[:, None]) + my, yb)
        if math.isfinite(error) and (best is None or error < best[1]):
            best = (factor, error)
    if best is None or best[1] >= ACCEPT * before:
        return None
    factor, after = best
    mx, my = mean(x), mean(y)
    x_c, y_c = x - mx, y - my
    ridge = factor * scale * len(x) / len(xa)
    if dual:  # W = X^T (X X^T + lambda I)^-1 Y
        gram = x_c @ x_c.T
        gram[np.diag_indices_from(gram)] += ridge
        weight = x_c.T @ np.linalg.solve(gram, y_c)
    else:  # W = (X^T X + lambda I)^-1 X^T Y
        gram = x_c.T @ x_c
        gram[np.diag_indices_from(gram)] += ridge
        weight = np.linalg.solve(gram, x_c.T @ y_c)
    return weight, my - mx @ weight, before, after


@torch.no_grad()
def _write(module: nn.Module, weight: np.ndarray, bias: np.ndarray) -> None:
    """Write the fitted (features x outputs) ``weight`` and ``bias`` into ``module``."""
    shape = module.weight.shape
    module.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight.T)).reshape(shape).to(module.weight))
    if module.bias is not None:
        module.bias.copy_(torch.from_numpy(bias).to(module.bias))
