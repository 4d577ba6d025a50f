"""A worker's own memory limit while it trains, and telling "out of memory" apart from other errors.

``memory_limit(max_bytes, device)`` is a context manager the worker (and the Ray
task) trains in. On CPU it lowers the soft ``RLIMIT_DATA`` of the process to
what the process holds now (``VmData``: the interpreter, torch, cached datasets)
plus ``max_bytes`` plus ``SLACK`` (thread stacks, allocator rounding), and puts
the old limit back afterwards. Linux counts every private writable mapping
(heap and anonymous ``mmap``, i.e. every tensor buffer) against ``RLIMIT_DATA``
since 4.7, but not the shared libraries' code, which is why it is used and not
``RLIMIT_AS`` (torch's libraries alone reserve gigabytes of address space). An
allocation over the limit then fails in the process that made it: torch raises
``RuntimeError: ... can't allocate memory``, numpy and Python ``MemoryError``;
the kernel's OOM killer is never involved. On a GPU the limit is set with
``torch.cuda.set_per_process_memory_fraction`` instead (the tensors live there)
and torch raises ``torch.OutOfMemoryError``.

``is_out_of_memory(error)`` recognises those errors; the worker turns them into
a permanent ``OutOfMemory`` failure (another attempt would run out again).

Measured on this project's 2-core CI machine (torch 2.14, CPU): ``VmData`` is
~0.77 GB after ``import torch``; under a limit of that plus 200 MB, a 300 MB
tensor fails with the RuntimeError above and the process goes on normally.
"""

from __future__ import annotations

import errno
from contextlib import contextmanager
from typing import Iterator

from remap_tb.spec.memory import format_bytes

SLACK = 128 * 1024**2  # bytes allowed on top of the limit: thread stacks, allocator rounding
_OOM_TEXTS = ("can't allocate memory", "cannot allocate memory", "out of memory", "not enough memory")


class OutOfMemory(RuntimeError):
    """Training ran out of the worker's memory limit; a permanent failure."""


def data_size() -> int | None:
    """This process's ``VmData`` (private writable memory) in bytes; None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


@contextmanager
def memory_limit(max_bytes: int | None, device: str = "cpu") -> Iterator[int | None]:
    """Train inside with at most ``max_bytes`` more memory than now; yields the limit set (or None).

    ``device``: ``"cpu"`` or a CUDA device (``torch.device`` or its name).
    """
    if max_bytes is None:
        yield None
        return
    if str(device).startswith("cuda"):
        yield _cuda_limit(max_bytes, device)
        return
    import resource

    current = data_size()
    if current is None:
        yield None
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = current + max_bytes + SLACK
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _cuda_limit(max_bytes: int, device) -> int:
    import torch

    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    total = torch.cuda.get_device_properties(index).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, max_bytes / total), index)
    return min(max_bytes, total)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says an allocation failed (torch on CPU or GPU, numpy, Python, the OS)."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    if isinstance(error, OSError) and error.errno == errno.ENOMEM:
        return True
    if isinstance(error, RuntimeError):
        text = str(error).lower()
        return any(t in text for t in _OOM_TEXTS)
    return False


def out_of_memory(error: BaseException, max_bytes: int | None, estimate: int | None) -> OutOfMemory:
    """The permanent failure for an allocation that failed under the worker's limit."""
    first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
    limit = f"this worker's memory limit of {format_bytes(max_bytes)}" if max_bytes else "the memory available"
    guess = f" (estimated {format_bytes(estimate)})" if estimate else ""
    return OutOfMemory(f"out of memory: training needed more than {limit}{guess}; {first}")

