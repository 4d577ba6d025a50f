"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync and rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a logdir may be shared with other users' workers
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: str, value: Any, indent: int | None = 1) -> None:
    """``atomic_write_bytes`` of ``value`` as UTF-8 JSON, indented unless ``indent`` is None
    (Python's C encoder only writes unindented JSON: 20,000 points take ~0.3 s indented)."""
    text = json.dumps(value, indent=indent, sort_keys=False, separators=None if indent is not None else (",", ":"))
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
