"""Dispatch queued requests to a Ray cluster: ``remap worker LOGDIR --ray ADDRESS|local``.

The ``RayDispatcher`` claims requests from the queue like a worker does (so
the queue, its heartbeats and cancel work the same) and submits each as a Ray
task that trains one model (``num_cpus``/``num_gpus`` per task, ``max_retries``
for a task lost with its node). It claims only as many requests as the cluster
runs at once, so the rest stay pending (reorderable, cancellable).

With a shared file system the task writes its run straight into the logdir
(TensorBoard sees it grow). Without one (``shared_fs=False``) the task trains
into a temp folder on its node and returns the run's files, which the
dispatcher writes into ``LOGDIR/<id>/`` (event files last).

Progress and cancel travel through a small ``ProgressBoard`` actor owned by
the dispatcher: the task reports each epoch end and, between batches (at most
every 0.25 s), asks whether it was cancelled; with a shared file system it also
looks at the queue's cancel marker itself. A Ray retry of a lost task trains the
next attempt number, which wipes the lost attempt's files.

Limits (``remap_tb.run_limits``) are checked before a request is submitted (a
permanent failure); the task trains under the memory and wall-clock limits
(``trainer.worker.train_limited``) and, on a shared file system, checks that the
dispatcher still owns the claim before every write into the run directory.

Ray is imported only here, and only when a dispatcher runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from remap_tb.atomic import atomic_write_bytes
from remap_tb.queue import CANCELLED, FAILED, Claim, Queue, new_worker_id
from remap_tb.run_limits import RunLimits
from trainer.worker import (Heartbeats, describe, heartbeat_interval, log_line, over_limits, permanent_errors,
                            result_state, stop_signals, train_limited)

EVENT_FILE_MARK = "tfevents"


@dataclass
class RayOptions:
    address: str = "local"  # "local" starts a Ray instance in this process; else a cluster address
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_retries: int = 3
    max_in_flight: int | None = None
    shared_fs: bool = True
    device: str = "auto"
    stale_after: float = 60.0
    max_attempts: int = 3
    once: bool = False
    quiet: bool = False
    poll: float = 0.5
    limits: RunLimits = RunLimits()
    init_kwargs: dict = field(default_factory=dict)  # extra ray.init arguments (tests: _temp_dir, num_cpus)


class ProgressBoard:
    """Ray actor: epoch progress reported by tasks, cancels asked by the dispatcher."""

    def __init__(self):
        self._progress: dict[str, tuple[int, int]] = {}
        self._cancelled: set[str] = set()
        self._starts: dict[str, int] = {}

    def start(self, rid: str) -> int:
        """Count a start of ``rid``'s task; returns 1 for the first, 2 for a Ray retry, ..."""
        self._starts[rid] = self._starts.get(rid, 0) + 1
        return self._starts[rid]

    def report(self, rid: str, epoch: int, epochs: int) -> bool:
        self._progress[rid] = (epoch, epochs)
        return rid in self._cancelled

    def cancel(self, rid: str) -> None:
        self._cancelled.add(rid)

    def cancelled(self, rid: str) -> bool:
        return rid in self._cancelled

    def forget(self, rid: str) -> None:
        self._progress.pop(rid, None)
        self._cancelled.discard(rid)
        self._starts.pop(rid, None)

    def snapshot(self) -> dict[str, tuple[int, int]]:
        return dict(self._progress)


def train_task(request: dict, attempt: int, logdir: str | None, device: str, board,
               limits: RunLimits = RunLimits(), owner: tuple[str, int] | None = None,
               init_from=None) -> dict:
    """Ray task: train one request; returns its outcome (and the run's files without a shared logdir).

    ``owner``: the dispatcher's (worker id, queue attempt) of the claim; with a shared
    logdir the task writes only while that claim is current. ``init_from``: the parent
    to inherit from (a ``trainer.inherit.ParentRun`` with its weights' bytes), which the
    dispatcher reads when the task has no shared logdir; with one, the task reads it itself.
    """
    import ray

    rid = request["id"]
    attempt += ray.get(board.start.remote(rid)) - 1

    def on_epoch(epoch: int, epochs: int, metrics: dict) -> bool:
        return bool(ray.get(board.report.remote(rid, epoch, epochs)))

    queue = Queue(logdir) if logdir is not None else None
    marker = os.path.join(queue.root, "cancel", rid) if queue is not None else None

    def should_stop() -> bool:
        return (marker is not None and os.path.exists(marker)) or bool(ray.get(board.cancelled.remote(rid)))

    may_write = None
    if queue is not None and owner is not None:
        claim = Claim(rid, request, owner[1], owner[0], request.get("training", {}).get("epochs", 0))
        may_write = lambda: queue.owns(claim)  # noqa: E731

    scratch = None
    target = logdir
    if target is None:
        scratch = tempfile.mkdtemp(prefix="remap-ray-")
        target = scratch
    try:
        result = train_limited(request, target, limits, device=device, attempt=attempt, on_epoch=on_epoch,
                               should_stop=should_stop, may_write=may_write,
                               init_from=init_from if init_from is not None or logdir is not None else False)
        files = read_run_files(os.path.join(target, rid)) if scratch else None
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return {"state": result.state, "epoch": result.epoch, "epochs": result.epochs, "reason": result.reason,
            "metrics": result.metrics, "attempt": attempt, "files": files}


def read_run_files(run_dir: str) -> dict[str, bytes]:
    """Every file under ``run_dir`` by relative path."""
    files = {}
    for folder, _, names in os.walk(run_dir):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                files[os.path.relpath(path, run_dir)] = handle.read()
    return files


def write_run_files(logdir: str, rid: str, files: dict[str, bytes]) -> str:
    """Replace ``logdir/rid`` with ``files`` (event files written last, each atomically)."""
    run_dir = os.path.join(logdir, rid)
    if os.path.isdir(run_dir):
        for name in os.listdir(run_dir):
            path = os.path.join(run_dir, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    os.makedirs(run_dir, exist_ok=True)
    root = os.path.realpath(run_dir)
    for rel in sorted(files, key=lambda r: EVENT_FILE_MARK in os.path.basename(r)):
        path = os.path.realpath(os.path.join(run_dir, rel))
        if not path.startswith(root + os.sep):
            raise ValueError(f"refusing to write {rel!r} outside the run directory")
        atomic_write_bytes(path, files[rel])
    return run_dir


class RayDispatcher:
    """Claims requests and runs each as a Ray task; owns its heartbeat thread and board actor."""

    def __init__(self, logdir: str, options: RayOptions | None = None):
        self.logdir = os.path.abspath(logdir)
        self.options = options or RayOptions()
        self.queue = Queue(self.logdir, stale_after=self.options.stale_after,
                           max_attempts=self.options.max_attempts)
        self.id = new_worker_id("ray")
        self.finished = 0
        self._stop = threading.Event()
        self._inflight: dict = {}  # ObjectRef -> Claim
        self._cancel_sent: set[str] = set()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        import ray

        with stop_signals(lambda *_: self._stop.set()):
            owns_ray = not ray.is_initialized()
            if owns_ray:
                self._init_ray(ray)
            beats = Heartbeats(self.queue, self.id, heartbeat_interval(self.options.stale_after), kind="ray",
                               log=self._log)
            board = ray.remote(num_cpus=0)(ProgressBoard).remote()
            task = ray.remote(train_task).options(num_cpus=self.options.num_cpus, num_gpus=self.options.num_gpus,
                                                  max_retries=self.options.max_retries, retry_exceptions=False)
            beats.start()
            self._log(f"dispatching {self.logdir} to Ray ({self._limit(ray)} task(s) at once)")
            try:
                self._loop(ray, task, board, beats)
            finally:
                self._abandon(ray, beats)
                beats.stop()
                ray.kill(board)
                if owns_ray:
                    ray.shutdown()
                self._log(f"stopped after {self.finished} request(s)")
        return 0

    def _init_ray(self, ray) -> None:
        kwargs = dict(self.options.init_kwargs)
        if self.options.address == "local":
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            kwargs.setdefault("include_dashboard", False)
            ray.init(**kwargs)
        else:
            ray.init(address=self.options.address, **kwargs)

    def _limit(self, ray) -> int:
        if self.options.max_in_flight:
            return self.options.max_in_flight
        resources = ray.cluster_resources()
        if self.options.num_gpus > 0:
            return max(1, int(resources.get("GPU", 0) // self.options.num_gpus))
        return max(1, int(resources.get("CPU", 1) // max(self.options.num_cpus, 1e-3)))

    def _loop(self, ray, task, board, beats: Heartbeats) -> None:
        limit = self._limit(ray)
        next_sweep = next_sync = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_sweep:
                for rid, state in self.queue.sweep():
                    self._log(f"{rid}: stale claim moved to {state}")
                next_sweep = now + beats.interval
            claimed = False
            while len(self._inflight) < limit and not self._stop.is_set():
                claim = self.queue.claim(self.id)
                if claim is None:
                    break
                claimed = True
                over = over_limits(claim.request, self.options.limits)
                if over is not None:
                    state = self.queue.retry_or_fail(claim, describe(over), permanent=True)
                    self._log(f"{claim.id}: {describe(over)[:200]} -> {state or 'claim lost'}")
                    continue
                beats.track(claim)
                ref = task.remote(claim.request, claim.attempt, self.logdir if self.options.shared_fs else None,
                                  self.options.device, board, self.options.limits, (claim.worker, claim.attempt),
                                  None if self.options.shared_fs else self._parent(claim.request))
                self._inflight[ref] = claim
            if not self._inflight:
                if self.options.once and not claimed:
                    return
                self._stop.wait(self.options.poll)
                continue
            ready, _ = ray.wait(list(self._inflight), num_returns=1, timeout=self.options.poll)
            for ref in ready:
                self._collect(ray, ref, board, beats)
            if time.monotonic() >= next_sync:
                self._sync(ray, board, beats)
                next_sync = time.monotonic() + min(0.25, beats.interval)  # a cancel reaches the task within 2 s

    def _parent(self, request: dict):
        """The parent a task without the logdir inherits from, read here (weights as bytes); None: scratch."""
        from trainer.inherit import parent_source

        try:
            source = parent_source(request, self.logdir)
        except Exception as e:  # noqa: BLE001 - a parent that cannot be read only means training from scratch
            from trainer.inherit import ParentRun

            return ParentRun("", reason=f"cannot read the parent: {describe(e)}"[:300])
        return source.loaded() if source is not None else None

    def _sync(self, ray, board, beats: Heartbeats) -> None:
        """Progress from the board into heartbeats; cancel markers to the board."""
        for rid, (epoch, epochs) in ray.get(board.snapshot.remote()).items():
            beats.progress(rid, epoch, epochs)
        for claim in list(self._inflight.values()):
            if claim.id not in self._cancel_sent and (self.queue.cancel_requested(claim.id) or beats.lost(claim.id)):
                board.cancel.remote(claim.id)
                self._cancel_sent.add(claim.id)

    def _collect(self, ray, ref, board, beats: Heartbeats) -> None:
        claim: Claim = self._inflight.pop(ref)
        board.forget.remote(claim.id)
        self._cancel_sent.discard(claim.id)
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None) or e
            permanent = isinstance(cause, permanent_errors())
            with beats.moving(claim.id):
                state = self.queue.retry_or_fail(claim, describe(cause), permanent=permanent)
            self._log(f"{claim.id}: {describe(cause).splitlines()[0][:200]} -> {state or 'claim lost'}")
            return
        except ray.exceptions.RayError as e:  # the task was lost (node or worker died) beyond its retries
            with beats.moving(claim.id):
                state = self.queue.retry_or_fail(claim, describe(e), permanent=False)
            self._log(f"{claim.id}: task lost ({type(e).__name__}) -> {state or 'claim lost'}")
            return
        if beats.lost(claim.id):
            beats.untrack(claim.id)
            self._log(f"{claim.id}: claim was lost while training; left to its new owner")
            return
        if outcome.get("files") is not None:
            if not self.queue.owns(claim):
                beats.untrack(claim.id)
                self._log(f"{claim.id}: claim was lost while training; its files are not written")
                return
            try:
                write_run_files(self.logdir, claim.id, outcome["files"])
            except (OSError, ValueError) as e:
                with beats.moving(claim.id):
                    self.queue.retry_or_fail(claim, f"could not write the run: {describe(e)}")
                return
        state = result_state(outcome["state"])
        with beats.moving(claim.id):
            ok = self.queue.finish(claim, state, epoch=outcome["epoch"], reason=outcome["reason"],
                                   metrics=outcome["metrics"], epochs=outcome.get("epochs"))
        if ok:
            self.finished += 1
            self._log(f"{claim.id}: {outcome['state']} after {outcome['epoch']}/{outcome['epochs']} epoch(s)"
                      + (" (cancelled)" if state == CANCELLED else "" if state != FAILED else f": {outcome['reason']}"))

    def _abandon(self, ray, beats: Heartbeats) -> None:
        """On stop: cancel the tasks still running and give their requests back to pending."""
        for ref, claim in list(self._inflight.items()):
            try:
                ray.cancel(ref, force=True)
            except Exception as e:  # a task that just finished cannot be cancelled; nothing to do
                self._log(f"{claim.id}: cancel failed: {e}")
            with beats.moving(claim.id):
                self.queue.release(claim, f"dispatcher {self.id} stopped; the request will be trained again")
        self._inflight.clear()

    def _log(self, message: str) -> None:
        if not self.options.quiet:
            log_line(sys.stdout, f"remap ray {self.id}: {message}")
