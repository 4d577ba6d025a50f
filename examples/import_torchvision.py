"""Put existing PyTorch models on the REMAP structural map without training them.

torchvision's ResNet-18 (10 classes, 3x32x32 inputs) and a small custom module are
converted to specs (``remap_tb.torch``) and logged with ``remap_tb.summary.log_model``
only: their runs have status ``untrained``, so they appear on the structural map
(where they sit among the other architectures) but not on the accuracy or
prediction maps. Their weights are saved with the runs, so the dashboard exports them.

    python examples/import_torchvision.py --logdir runs/imports
    tensorboard --logdir runs/imports
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import remap_tb.summary as remap  # noqa: E402

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu(self.conv1(x))
        x = nn.functional.relu(self.conv2(x))
        return self.fc(self.drop(self.pool(x).view(x.size(0), -1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="runs/imports")
    parser.add_argument("--dataset", default="cifar10", help="the dataset name these models are for")
    parser.add_argument("--skip-resnet", action="store_true", help="only the small custom module (faster)")
    args = parser.parse_args(argv)

    models = [("tinynet", TinyNet())]
    if not args.skip_resnet:
        from torchvision.models import resnet18

        models.insert(0, ("resnet18", resnet18(num_classes=10)))
    for name, model in models:
        path = os.path.join(args.logdir, name)
        record = remap.log_model(path, model.eval(), input_shape=(3, 32, 32), class_names=CIFAR10_CLASSES,
                                 dataset=args.dataset)
        remap.close(path)
        print(f"{name}: {record['params']:,} parameters, {record['depth']} layers -> {path}")
    print(f"tensorboard --logdir {args.logdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
