"""Measure the peak memory of one training step of each spec (run as a subprocess by test_limits.py).

Reads ``[{"spec", "batch_size", "optimizer"}, ...]`` as JSON on stdin and prints one
line of JSON: the measured peak in bytes per item.

Method: the kernel's high-water mark of this process's resident set (``VmHWM``),
reset just before the step by writing 5 to ``/proc/self/clear_refs`` and read just
after it; the peak minus the resident set before the step is what the step took.
It counts what the step really touched, is independent of timing (so stable on a
busy 2-core machine) and needs no profiler. Three things make it exact enough:

- ``MALLOC_MMAP_THRESHOLD_`` is fixed (the caller sets it to 64 KiB), so every
  tensor buffer is its own mmap, returned to the system when freed: the resident
  set before a step holds nothing a step could reuse unseen;
- each spec runs a warm-up step first (batch 2), so one-time costs (kernel code paged in,
  oneDNN primitives) are not charged to the measured step;
- one thread (``torch.set_num_threads(1)``), as workers on small machines run.

The step is ``trainer.train``'s: the batch taken from a dataset tensor with
``index_select`` (the dataset itself, allocated before the reset, is not counted),
the model built by ``trainer.model.build_model``, the optimiser by
``trainer.train.make_optimizer``, cross-entropy, backward, optimiser step.
"""

from __future__ import annotations

import ctypes
import gc
import json
import sys

import torch
from torch import nn

from remap_tb.requests import TRAINING_DEFAULTS
from trainer.model import build_model
from trainer.train import make_optimizer


def _status(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _step(spec: dict, batch_size: int, optimizer: str, x: torch.Tensor, y: torch.Tensor) -> None:
    model = build_model(spec)
    training = {**TRAINING_DEFAULTS, "optimizer": optimizer}
    opt = make_optimizer(model, training)
    model.train()
    index = torch.randperm(x.shape[0])[:batch_size]
    xb, yb = x.index_select(0, index), y.index_select(0, index)
    opt.zero_grad(set_to_none=True)
    loss = nn.CrossEntropyLoss()(model(xb), yb)
    loss.backward()
    opt.step()


def measure(spec: dict, batch_size: int, optimizer: str, libc) -> int:
    torch.manual_seed(0)
    shape, classes = spec["input"]["shape"], spec["input"]["num_classes"]
    x = torch.randn(batch_size, *shape)
    y = torch.randint(0, classes, (batch_size,))
    _step(spec, 2, optimizer, x, y)  # warm-up: kernels paged in, one-time setup done
    gc.collect()
    libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = _status("VmRSS")
    _step(spec, batch_size, optimizer, x, y)
    peak = _status("VmHWM")
    gc.collect()
    return peak - before


def main() -> int:
    torch.set_num_threads(1)
    libc = ctypes.CDLL("libc.so.6")
    items = json.load(sys.stdin)
    print(json.dumps([measure(i["spec"], i["batch_size"], i["optimizer"], libc) for i in items]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
