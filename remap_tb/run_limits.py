"""What one training request may take: memory, epochs, wall-clock time (torch-free).

``RunLimits`` holds the three limits; TensorBoard sets them with
``--remap_max_memory``, ``--remap_max_epochs`` and ``--remap_max_run_seconds``,
``remap worker`` with ``--max-memory``, ``--max-epochs`` and ``--max-run-seconds``.

- **memory**: ``remap_tb.spec.memory.request_memory`` (the estimated peak of a
  training step at the request's batch size, with its optimiser) must not exceed
  ``max_memory``. Checked at validate, generate (candidates marked), enqueue (400)
  and by the worker before it trains (a permanent failure); the worker also trains
  under an operating-system limit of that size (``trainer.limits``). Default: a
  quarter of this machine's memory.
- **epochs**: ``training.epochs`` at most ``max_epochs`` (default 500); checked at
  enqueue and by the worker.
- **time**: a run that takes longer than ``max_run_seconds`` (default 6 h) is
  stopped between two batches and fails with that reason.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any

from remap_tb.spec.memory import MemoryEstimate, format_bytes, request_memory

DEFAULT_MAX_EPOCHS = 500
DEFAULT_MAX_RUN_SECONDS = 6 * 3600.0
FALLBACK_MEMORY = 8 * 1024**3  # when the machine's memory cannot be read
MEMORY_FLAGS = "--remap_max_memory in TensorBoard, --max-memory for remap worker"
EPOCH_FLAGS = "--remap_max_epochs in TensorBoard, --max-epochs for remap worker"
TIME_FLAGS = "--remap_max_run_seconds in TensorBoard, --max-run-seconds for remap worker"

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
          "g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4, "tb": 1024**4, "tib": 1024**4}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*$")


class LimitExceeded(ValueError):
    """A request over a run limit; another attempt cannot fix it (a permanent failure)."""


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (``os.sysconf``), or None when it cannot be read."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def default_max_memory() -> int:
    """A quarter of this machine's memory (8 GiB when it cannot be read)."""
    total = machine_memory()
    return total // 4 if total else FALLBACK_MEMORY


def parse_bytes(text: Any) -> int:
    """A size such as ``4G``, ``512M``, ``1.5GiB`` or ``1000000`` in bytes (K, M, G, T are powers of 1024).

    Raises ``ValueError`` for anything else, zero included.
    """
    if isinstance(text, bool):
        raise ValueError(f"a memory size must be like 4G, 512M or 1000000, got {text!r}")
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE.match(str(text))
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _UNITS:
            raise ValueError(f"a memory size must be like 4G, 512M or 1000000 (bytes), got {str(text)[:40]!r}")
        value = int(float(match.group(1)) * _UNITS[unit])
    if value < 1:
        raise ValueError(f"a memory size must be positive, got {str(text)[:40]!r}")
    return value


@dataclass(frozen=True)
class RunLimits:
    """The limits of one request; ``None`` means no limit."""

    max_memory: int | None = None
    max_epochs: int | None = DEFAULT_MAX_EPOCHS
    max_run_seconds: float | None = DEFAULT_MAX_RUN_SECONDS

    @classmethod
    def defaults(cls) -> "RunLimits":
        """The defaults: a quarter of this machine's memory, 500 epochs, 6 hours."""
        return cls(default_max_memory(), DEFAULT_MAX_EPOCHS, DEFAULT_MAX_RUN_SECONDS)

    @classmethod
    def from_flags(cls, flags: Any) -> "RunLimits":
        """The limits of TensorBoard's ``--remap_max_*`` flags (defaults for missing or empty ones)."""
        memory = getattr(flags, "remap_max_memory", None)
        epochs = getattr(flags, "remap_max_epochs", None)
        seconds = getattr(flags, "remap_max_run_seconds", None)
        return cls(parse_bytes(memory) if memory not in (None, "") else default_max_memory(),
                   DEFAULT_MAX_EPOCHS if epochs is None else int(epochs),
                   DEFAULT_MAX_RUN_SECONDS if seconds is None else float(seconds))

    def to_json(self) -> dict[str, Any]:
        return {"max_memory": self.max_memory, "max_epochs": self.max_epochs,
                "max_run_seconds": self.max_run_seconds}


def check_values(limits: RunLimits) -> str | None:
    """A message when a limit is not a positive number, else None."""
    if limits.max_memory is not None and not limits.max_memory >= 1:
        return "the memory limit must be positive"
    if limits.max_epochs is not None and not limits.max_epochs >= 1:
        return "the epoch limit must be at least 1"
    if limits.max_run_seconds is not None and not (limits.max_run_seconds > 0 and math.isfinite(limits.max_run_seconds)):
        return "the wall-clock limit must be a positive number of seconds"
    return None


def memory_problem(estimate: MemoryEstimate, max_memory: int | None) -> str | None:
    """Why a model over ``max_memory`` cannot be trained, or None."""
    if max_memory is None or estimate.total_bytes <= max_memory:
        return None
    activations = estimate.input_bytes + estimate.saved_bytes + estimate.gradient_bytes
    return (f"training needs about {format_bytes(estimate.total_bytes)} (batch size {estimate.batch_size}, "
            f"{estimate.optimizer}: {format_bytes(activations)} of activations and their gradients, "
            f"{format_bytes(estimate.param_bytes)} of parameters, gradients and optimiser state), over the "
            f"memory limit of {format_bytes(max_memory)} ({MEMORY_FLAGS}); use fewer filters or units, "
            "pool earlier or train with a smaller batch size")


def epochs_problem(epochs: int, max_epochs: int | None) -> str | None:
    if max_epochs is None or epochs <= max_epochs:
        return None
    return f"{epochs} epochs is over the limit of {max_epochs} epochs per request ({EPOCH_FLAGS})"


def request_problems(request: dict, limits: RunLimits) -> list[str]:
    """What is over the limits in a normalised training request (empty when it fits)."""
    problems = []
    why = memory_problem(request_memory(request), limits.max_memory)
    if why:
        problems.append(why)
    training = request["training"]
    why = epochs_problem(max(training["epochs"], training.get("epochs_from_parent") or 0), limits.max_epochs)
    if why:
        problems.append(why)
    return problems


def time_limit_reason(seconds: float, epoch: int, epochs: int) -> str:
    """The failure reason of a run stopped by the wall-clock limit."""
    return (f"stopped in epoch {epoch} of {epochs}: over the wall-clock limit of {format_seconds(seconds)} "
            f"per request ({TIME_FLAGS})")


def format_seconds(seconds: float) -> str:
    """``21600`` -> ``"6 h"``, ``90`` -> ``"90 s"``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
