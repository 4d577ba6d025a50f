"""Training throughput: our in-memory batch loop vs a plain DataLoader(TensorDataset) loop.

Both loops train the same model (same initial weights) on the same digits
tensors for the same number of epochs; the script prints samples/s for each and
their ratio (target: ours / DataLoader >= 1.0). With ``--population`` it also
times ``remap init`` of the 30-model digits population (10 epochs each; target
<= 2 minutes on a 2-core machine).

    .venv/bin/python benchmarks/train_throughput.py [--epochs 5] [--population]
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from remap_tb.requests import dataset_config
from trainer.datasets import load_dataset
from trainer.model import build_model
from trainer.train import train_epoch

SPECS = {
    "small conv": {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
        {"type": "conv2d", "filters": 16, "kernel_size": 3}, {"type": "activation", "fn": "relu"},
        {"type": "maxpool2d", "pool_size": 2}, {"type": "dense", "units": 64}, {"type": "dropout", "rate": 0.25}]},
    "dense only": {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
        {"type": "dense", "units": 32}, {"type": "activation", "fn": "relu"}]},
}


def dataloader_epoch(model, optimizer, loss_fn, loader) -> None:
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()


def measure(spec: dict, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int) -> tuple[float, float]:
    torch.manual_seed(0)
    base = build_model(spec)
    loss_fn = nn.CrossEntropyLoss()

    model = copy.deepcopy(base)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    train_epoch(model, optimizer, loss_fn, x, y, batch_size, generator)  # warm-up
    start = time.perf_counter()
    for _ in range(epochs):
        train_epoch(model, optimizer, loss_fn, x, y, batch_size, generator)
    ours = epochs * len(x) / (time.perf_counter() - start)

    model = copy.deepcopy(base)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    dataloader_epoch(model, optimizer, loss_fn, loader)  # warm-up
    start = time.perf_counter()
    for _ in range(epochs):
        dataloader_epoch(model, optimizer, loss_fn, loader)
    baseline = epochs * len(x) / (time.perf_counter() - start)
    return ours, baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--population", action="store_true", help="also time the 30-model remap init")
    args = parser.parse_args()

    data = load_dataset(dataset_config({"name": "digits"}))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, digits train {len(data.x_train)} samples, "
          f"batch {args.batch_size}, {args.epochs} epochs")
    print(f"{'model':<12} {'ours (samples/s)':>18} {'DataLoader (samples/s)':>24} {'ratio':>7}")
    for name, spec in SPECS.items():
        ours, baseline = measure(spec, data.x_train, data.y_train, args.epochs, args.batch_size)
        print(f"{name:<12} {ours:>18,.0f} {baseline:>24,.0f} {ours / baseline:>7.2f}")

    if args.population:
        with tempfile.TemporaryDirectory() as logdir:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "trainer.cli", "init", logdir, "--dataset", "digits",
                            "--models", "30", "--epochs", "10", "--max-params", "100000", "--seed", "0"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"remap init: 30 digits models x 10 epochs in {time.perf_counter() - start:.1f} s (target <= 120 s)")


if __name__ == "__main__":
    main()
