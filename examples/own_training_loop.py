"""Train three models of your own in a plain PyTorch loop and put them on the REMAP map.

The two lines that matter are ``remap.log_model`` (once per model) and
``remap.log_epoch`` (once per epoch); everything else is an ordinary training loop
on scikit-learn's 8x8 digits. The data comes from ``trainer.datasets.load_dataset``
with the same config ``remap init --dataset digits`` uses, so the validation set
(and the dataset fingerprint) is the same: the three models join the sampled
population's experiment and appear on its structural and prediction maps. Logging
with ``dataset=config`` (a trainer dataset config) lets the dashboard train the
children you generate from them on the same data.

    python examples/own_training_loop.py --logdir runs/own --epochs 10 --init-models 12
    tensorboard --logdir runs/own
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import remap_tb.summary as remap  # noqa: E402
from remap_tb.requests import dataset_config  # noqa: E402
from trainer.datasets import load_dataset  # noqa: E402


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(64, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(self.flatten(x))))


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class ResidualCNN(nn.Module):
    """A conv stem and one residual block (a skip connection: ``out = x + block(x)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        h = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(x + self.bn2(self.conv2(h)))
        return self.fc(torch.flatten(self.pool(x), 1))


def train_and_log(name: str, model: nn.Module, data, config: dict, logdir: str, epochs: int, seed: int) -> float:
    torch.manual_seed(seed)
    writer = SummaryWriter(os.path.join(logdir, name))
    # Line 1: the model record (architecture, size, dataset) and its HParams session.
    remap.log_model(writer, model, input_shape=data.input_shape, class_names=data.class_names, dataset=config)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    val_accuracy = 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(data.y_train), generator=generator)
        total, correct = 0.0, 0
        for start in range(0, len(order), 64):
            index = order[start:start + 64]
            x, y = data.x_train[index], data.y_train[index]
            optimizer.zero_grad()
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
            correct += int((logits.argmax(1) == y).sum())
        model.eval()
        with torch.no_grad():
            logits = model(data.x_val)
        # Line 2: validation predictions and curves of this epoch (status done at the last one).
        metrics = remap.log_epoch(writer, epoch, epochs, predictions=logits.argmax(1), labels=data.y_val,
                                  train_accuracy=correct / len(order), train_loss=total / len(order),
                                  val_loss=loss_fn(logits, data.y_val))
        val_accuracy = metrics["val_accuracy"]
    writer.close()
    return val_accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="runs/own-training-loop")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--init-models", type=int, default=12,
                        help="first sample and train this many models with `remap init` (0: skip)")
    parser.add_argument("--init-epochs", type=int, default=None, help="epochs for `remap init` (default --epochs)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    config = dataset_config({"name": "digits"})  # what `remap init --dataset digits` uses
    if args.init_models > 0:
        subprocess.run([sys.executable, "-m", "trainer.cli", "init", args.logdir, "--dataset", "digits",
                        "--models", str(args.init_models), "--epochs", str(args.init_epochs or args.epochs),
                        "--max-params", "50000", "--seed", str(args.seed)],
                       check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    data = load_dataset(config)
    for offset, (name, model) in enumerate((("own-mlp", MLP()), ("own-cnn", SmallCNN()),
                                            ("own-residual", ResidualCNN()))):
        accuracy = train_and_log(name, model, data, config, args.logdir, args.epochs, args.seed + offset)
        print(f"{name}: validation accuracy {accuracy:.3f}")
    print(f"tensorboard --logdir {args.logdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
