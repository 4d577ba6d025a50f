"""Local worker processes started and stopped by their owner (the plugin or ``remap init``).

Torch-free: the workers are separate processes (``python -m trainer.worker``),
so the TensorBoard process never imports torch. ``LocalWorkers.start`` runs
one process (a supervisor of ``count`` workers when ``count`` > 1) that exits
by itself when its parent dies; ``stop`` sends SIGTERM (the workers put their
requests back to pending), waits, then kills. ``start`` registers ``stop`` with
``atexit``, so workers never outlive a normally exiting owner.

``child_env`` and ``send_signal`` are shared with ``trainer.worker`` (which may
import this module; this module never imports ``trainer``).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
from typing import Sequence

from remap_tb import metadata

LOG_FILE = os.path.join("logs", "workers.log")  # under <logdir>/.remap/


class LocalWorkers:
    """``count`` local workers serving the queue of ``logdir``.

    ``args`` are extra ``remap worker`` options (e.g. ``["--stale-after", "30"]``).
    Output goes to ``<logdir>/.remap/logs/workers.log`` unless ``log_path`` is
    given (``None`` there means "inherit this process's stdout/stderr").
    """

    def __init__(self, logdir: str, count: int, *, args: Sequence[str] = (), log_path: str | None | bool = True,
                 python: str = sys.executable, stop_timeout: float = 30.0):
        if count < 0:
            raise ValueError("count must be >= 0")
        self.logdir = os.path.abspath(logdir)
        self.count = count
        self.args = list(args)
        self.python = python
        self.stop_timeout = stop_timeout
        if log_path is True:
            log_path = os.path.join(self.logdir, metadata.STATE_DIR, LOG_FILE)
        self.log_path = log_path or None
        self._process: subprocess.Popen | None = None
        self._log_handle = None
        self._atexit = False

    def command(self) -> list[str]:
        return [self.python, "-m", "trainer.worker", self.logdir, "--workers", str(self.count),
                "--exit-with-parent", *self.args]

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> "LocalWorkers":
        """Start the workers (no-op for count 0 or when already running).

        A start after the workers exited (``--once``, a crash) first reaps the
        old process and closes its log handle.
        """
        if self.count == 0 or self.running():
            return self
        if self._process is not None or self._log_handle is not None:
            self.stop()
        output = None
        if self.log_path:
            os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
            self._log_handle = open(self.log_path, "ab")
            output = self._log_handle
        self._process = subprocess.Popen(self.command(), stdout=output, stderr=subprocess.STDOUT if output else None,
                                         stdin=subprocess.DEVNULL, env=child_env(), start_new_session=True)
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        return self

    def stop(self) -> int | None:
        """SIGTERM the workers, wait up to ``stop_timeout`` s, then kill; returns the exit code."""
        process, self._process = self._process, None
        code = None
        if process is not None:
            if process.poll() is None:
                send_signal(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    send_signal(process.pid, signal.SIGKILL)
                    process.wait()
            code = process.returncode
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        if self._atexit:
            atexit.unregister(self.stop)
            self._atexit = False
        return code

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the workers to exit by themselves (``--once``); returns the exit code or None."""
        if self._process is None:
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._process.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.1)
        return self._process.returncode

    def __enter__(self) -> "LocalWorkers":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def send_signal(pid: int, sig: int) -> None:
    """``os.kill`` that ignores a process that is already gone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def child_env() -> dict[str, str]:
    """The environment for a worker subprocess: this project importable, output unbuffered."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
