"""Worker identity and liveness files in ``<logdir>/.remap/workers/`` (torch-free).

Each worker (or Ray dispatcher) keeps ``<id>.json`` = ``{id, host, host_key,
pid, kind, started, last_seen, request}`` fresh from its heartbeat thread. A
worker is alive while ``last_seen`` is within ``stale_after`` seconds and, on
this host, while its process exists. ``Queue`` owns one ``WorkerRegistry``
(``Queue.workers()``, ``Queue.touch_worker`` ... delegate to it); the queue's
own staleness checks use ``host_key`` and ``pid_alive`` from here.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from typing import Any

from remap_tb.atomic import atomic_write_json

PRUNE_AFTER = 86400.0  # seconds before a silent worker file is forgotten


def host_key() -> str:
    """This machine's identity: host name plus boot id (so a pid is checked on its own host)."""
    boot = ""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot = handle.read().strip()[:8]
    except OSError:
        pass
    return f"{socket.gethostname()}:{boot}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def new_worker_id(kind: str = "worker") -> str:
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())[:30] or "host"
    return f"{kind}-{host}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


class WorkerRegistry:
    """The worker files of one logdir."""

    def __init__(self, folder: str, stale_after: float, host: str | None = None):
        self.folder = folder
        self.stale_after = stale_after
        self.host = host or host_key()

    def _path(self, worker: str) -> str:
        return os.path.join(self.folder, f"{worker}.json")

    def touch(self, worker: str, *, request: str | None = None, kind: str = "local",
              started: float | None = None) -> None:
        """Write the worker's liveness file."""
        atomic_write_json(self._path(worker), {
            "id": worker, "host": socket.gethostname(), "host_key": self.host, "pid": os.getpid(),
            "kind": kind, "started": started or time.time(), "last_seen": time.time(), "request": request})

    def remove(self, worker: str) -> None:
        unlink_quiet(self._path(worker))

    def list(self) -> list[dict]:
        """Every worker that was seen recently, with ``alive`` (a heartbeat within ``stale_after``)."""
        now = time.time()
        result = []
        for name in sorted(self._names()):
            info = read_json_quiet(os.path.join(self.folder, name))
            try:
                last_seen = float(info["last_seen"])
                pid = int(info["pid"])
            except (ValueError, KeyError, TypeError):
                continue
            alive = now - last_seen <= self.stale_after
            if alive and info.get("host_key") == self.host and not pid_alive(pid):
                alive = False
            result.append({"id": str(info.get("id", name[:-5])), "host": str(info.get("host", "")), "pid": pid,
                           "last_seen": last_seen, "alive": alive, "kind": str(info.get("kind", "local")),
                           "request": info.get("request")})
        return result

    def alive(self) -> bool:
        return any(w["alive"] for w in self.list())

    def prune(self, now: float) -> None:
        """Forget worker files silent for a day, or whose process on this host is gone."""
        for name in self._names():
            path = os.path.join(self.folder, name)
            if now - (mtime_quiet(path) or now) > PRUNE_AFTER:
                unlink_quiet(path)
                continue
            info = read_json_quiet(path)
            if isinstance(info, dict) and info.get("host_key") == self.host \
                    and isinstance(info.get("pid"), int) and not pid_alive(info["pid"]):
                unlink_quiet(path)

    def _names(self) -> list[str]:
        return [n for n in listdir_quiet(self.folder) if n.endswith(".json") and not n.startswith(".")]


# ---------------------------------------------------------------------- small file helpers (shared with queue.py)

def listdir_quiet(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def mtime_quiet(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def read_json_quiet(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None
