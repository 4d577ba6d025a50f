"""Queue workers: ``remap worker LOGDIR [--workers N] [--once] [--ray ADDRESS|local]``.

A ``Worker`` claims requests from ``remap_tb.queue.Queue``, trains each with
``trainer.train.train`` and moves it to done/failed/cancelled. A heartbeat
thread (owned by the worker, started and stopped by ``run``) keeps the worker
file and the running request's heartbeat fresh, notices a lost claim and, for
a worker started by another process, the death of its parent. Epoch ends
write progress; a cancel is checked between batches (a stat of the cancel
marker at most every 0.25 s), so it takes effect within a second, also in the
middle of a long epoch. SIGTERM/SIGINT stop the worker at once: its request goes
back to pending and the next attempt wipes the half-written run. While idle the
worker polls with backoff (0.2 s up to 1 s).

Limits (``remap_tb.run_limits``, options ``--max-memory``, ``--max-epochs``,
``--max-run-seconds``): before training, a request whose estimated training
memory or epochs are over the limits fails permanently with the reason; the
training itself runs under an operating-system memory limit of that size
(``trainer.limits``), so a model that still runs out fails permanently with
"out of memory", and a run past the wall-clock limit is stopped and failed.
Before every write into the run directory the worker checks it still owns the
claim (``Queue.owns``): a worker frozen past ``--stale-after`` and resumed stops
without writing.

``Supervisor`` runs N worker processes (``--workers N``) and restarts a crashed
one. ``--ray`` hands every request to ``trainer.ray_dispatch`` instead.

Not imported by the plugin (it may import torch lazily, when training starts).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from remap_tb import metadata
from remap_tb.run_limits import (DEFAULT_MAX_EPOCHS, DEFAULT_MAX_RUN_SECONDS, LimitExceeded, RunLimits, check_values,
                                 default_max_memory, parse_bytes, request_problems)
from remap_tb.queue import (CANCELLED, DEFAULT_MAX_ATTEMPTS, DEFAULT_STALE_AFTER, DONE, FAILED, Claim, Queue,
                            new_worker_id)
from remap_tb.worker_manager import child_env, send_signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class WorkerStopping(BaseException):
    """Raised in the main thread by SIGTERM/SIGINT while a request trains.

    A BaseException, so that ``train`` does not record it as a failed run: the
    request goes back to pending and its next attempt starts from scratch.
    """


@dataclass
class WorkerOptions:
    stale_after: float = DEFAULT_STALE_AFTER
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    device: str = "auto"
    once: bool = False
    threads: int | None = None  # torch threads; None leaves torch's default
    exit_with_parent: bool = False
    poll_min: float = 0.2
    poll_max: float = 1.0
    quiet: bool = False
    limits: RunLimits = RunLimits()  # max_memory None: no memory limit (run_from_args sets the default)

    @property
    def beat_interval(self) -> float:
        return heartbeat_interval(self.stale_after)


def heartbeat_interval(stale_after: float) -> float:
    """Seconds between heartbeats (and sweeps): four per ``stale_after``, between 0.05 and 5."""
    return max(0.05, min(5.0, stale_after / 4))


@contextmanager
def stop_signals(handler: Callable[[int, object], None]) -> Iterator[None]:
    """Handle SIGTERM and SIGINT with ``handler`` inside the block, then restore the previous handlers.

    Only the main thread can set signal handlers; elsewhere (a test running a
    worker in a thread) the block runs with the handlers unchanged.
    """
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def permanent_errors() -> tuple[type[BaseException], ...]:
    """Errors that another attempt cannot fix (bad request, spec or dataset)."""
    from remap_tb.requests import RequestError
    from remap_tb.spec import SpecError
    from trainer.datasets import DatasetError
    from trainer.limits import OutOfMemory
    from trainer.train import TrainingError

    return (RequestError, SpecError, DatasetError, TrainingError, LimitExceeded, OutOfMemory)


def over_limits(request: dict, limits: RunLimits) -> LimitExceeded | None:
    """The permanent error of a request over ``limits`` (memory estimate, epochs), or None.

    A request that does not parse is left to ``train``, which reports it.
    """
    from remap_tb.requests import RequestError, parse_request
    from remap_tb.spec import SpecError

    try:
        problems = request_problems(parse_request(request), limits)
    except (RequestError, SpecError, KeyError, TypeError, ValueError):
        return None
    return LimitExceeded("; ".join(problems)) if problems else None


def train_limited(request: dict, logdir: str, limits: RunLimits, *, device: str, **kwargs):
    """``trainer.train.train`` under ``limits``: the memory limit of ``trainer.limits``, the
    wall-clock limit; an allocation that fails becomes a permanent ``OutOfMemory``.

    The dataset is loaded (into ``kwargs["datasets"]``, a ``DatasetCache``) before the
    memory limit is set, so the limit bounds training itself, as the estimate does
    (``remap_tb.spec.memory`` does not count the dataset).
    """
    from remap_tb.requests import RequestError, parse_request
    from remap_tb.spec import SpecError
    from trainer.limits import is_out_of_memory, memory_limit, out_of_memory
    from trainer.model import pick_device
    from trainer.train import DatasetCache, train

    torch_device = pick_device(device)
    datasets = kwargs["datasets"] = kwargs.get("datasets") or DatasetCache()
    try:
        dataset = parse_request(request)["dataset"]
    except (RequestError, SpecError):
        dataset = None  # train() reports it
    if dataset is not None:
        datasets.get(dataset, torch_device)
    try:
        with memory_limit(limits.max_memory, torch_device):
            return train(request, logdir, device=device, max_seconds=limits.max_run_seconds, **kwargs)
    except Exception as e:
        if not is_out_of_memory(e):
            raise
        from remap_tb.spec.memory import request_memory

        try:
            estimate = request_memory(request).total_bytes
        except Exception:  # noqa: BLE001 - the estimate only decorates the message
            estimate = None
        raise out_of_memory(e, limits.max_memory, estimate) from None


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:1000]


class Heartbeats:
    """The heartbeat thread of a worker or dispatcher (it owns the thread: ``start``/``stop``).

    Every ``interval`` seconds (and at once after ``wake``) it writes the
    worker file and a heartbeat with the progress of every tracked claim,
    and marks a claim ``lost`` when another process has taken it over. With
    ``exit_with_parent`` it sends this process SIGTERM when the parent dies.
    ``io_lock`` is held during a write; move a tracked claim inside ``moving``
    so that no heartbeat of it lands afterwards.
    """

    def __init__(self, queue: Queue, worker_id: str, interval: float, *, kind: str = "local",
                 exit_with_parent: bool = False, log=None):
        self.queue = queue
        self.worker_id = worker_id
        self.interval = interval
        self.kind = kind
        self.exit_with_parent = exit_with_parent
        self.io_lock = threading.Lock()
        self._log = log or (lambda message: None)
        self._lock = threading.Lock()
        self._claims: dict[str, list] = {}  # id -> [claim, epoch, epochs it trains]
        self._lost: set[str] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.time()
        self._parent = os.getppid()

    def start(self) -> None:
        self.queue.touch_worker(self.worker_id, kind=self.kind, started=self._started)
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{self.worker_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.queue.remove_worker(self.worker_id)

    def track(self, claim: Claim) -> None:
        with self._lock:
            self._claims[claim.id] = [claim, 0, claim.epochs]
            self._lost.discard(claim.id)
        self._wake.set()

    def untrack(self, rid: str) -> None:
        with self._lock:
            self._claims.pop(rid, None)
            self._lost.discard(rid)

    @contextmanager
    def moving(self, rid: str) -> Iterator[None]:
        """Hold around moving tracked claim ``rid`` out of running: no heartbeat of it lands
        afterwards (``io_lock``), and it is untracked at the end, also when the move raises."""
        with self.io_lock:
            try:
                yield
            finally:
                self.untrack(rid)

    def progress(self, rid: str, epoch: int, epochs: int | None = None) -> None:
        """The run's epoch, and the epochs it trains when the trainer says (a child that started
        from its parent's weights trains ``training.epochs_from_parent``, not the request's epochs)."""
        with self._lock:
            entry = self._claims.get(rid)
            if entry is not None and (entry[1] != epoch or (epochs is not None and entry[2] != epochs)):
                entry[1] = epoch
                if epochs is not None:
                    entry[2] = epochs
                self._wake.set()

    def epoch(self, rid: str) -> int:
        with self._lock:
            return self._claims[rid][1] if rid in self._claims else 0

    def lost(self, rid: str) -> bool:
        with self._lock:
            return rid in self._lost

    def _loop(self) -> None:
        next_beat = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if self._wake.is_set() or now >= next_beat:
                self._wake.clear()
                try:
                    self.beat()
                except OSError as e:
                    self._log(f"heartbeat failed: {e}")
                next_beat = now + self.interval
            if self.exit_with_parent and os.getppid() != self._parent:
                self._log("parent process is gone; stopping")
                os.kill(os.getpid(), signal.SIGTERM)
                return
            self._wake.wait(timeout=min(1.0, self.interval))

    def beat(self) -> None:
        with self.io_lock:
            with self._lock:
                claims = [(c, e, n) for c, e, n in self._claims.values()]
            current = ",".join(c.id for c, _, _ in claims)[:500] or None
            self.queue.touch_worker(self.worker_id, request=current, kind=self.kind, started=self._started)
            for claim, epoch, epochs in claims:
                with self._lock:
                    if claim.id not in self._claims:
                        continue
                if not self.queue.owns(claim):
                    with self._lock:
                        self._lost.add(claim.id)
                    continue
                self.queue.heartbeat(claim.id, self.worker_id, claim.attempt, epoch, epochs)


class Worker:
    """One process's worker loop over the queue of ``logdir``."""

    def __init__(self, logdir: str, options: WorkerOptions | None = None, worker_id: str | None = None):
        self.logdir = os.path.abspath(logdir)
        self.options = options or WorkerOptions()
        self.queue = Queue(self.logdir, stale_after=self.options.stale_after,
                           max_attempts=self.options.max_attempts)
        self.id = worker_id or new_worker_id("worker")
        self.trained = 0
        self._stop = threading.Event()
        self._claim: Claim | None = None
        self._training = False
        self._datasets = None
        self._beats: Heartbeats | None = None

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask the loop to stop (safe from any thread or a signal handler)."""
        self._stop.set()

    def run(self) -> int:
        """Serve the queue until stopped (or, with ``once``, until nothing is pending)."""
        with stop_signals(self._on_signal):
            self._beats = Heartbeats(self.queue, self.id, self.options.beat_interval,
                                     exit_with_parent=self.options.exit_with_parent, log=self._log)
            self._beats.start()
            self._log(f"started (pid {os.getpid()}) on {self.logdir}")
            try:
                self._loop()
            finally:
                self._stop.set()
                self._beats.stop()
                self._log(f"stopped after {self.trained} request(s)")
        return 0

    def _loop(self) -> None:
        idle = self.options.poll_min
        next_sweep = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_sweep:
                for rid, state in self.queue.sweep():
                    self._log(f"{rid}: stale claim moved to {state}")
                next_sweep = time.monotonic() + self.options.beat_interval
            claim = self.queue.claim(self.id)
            if claim is None:
                if self.options.once:
                    return
                self._stop.wait(idle)
                idle = min(idle * 2, self.options.poll_max)
                continue
            idle = self.options.poll_min
            self._serve(claim)

    # ------------------------------------------------------------------ one request

    def _serve(self, claim: Claim) -> None:
        self._claim = claim
        self._beats.track(claim)
        started = time.perf_counter()
        try:
            outcome = self._train(claim)
        except WorkerStopping:
            outcome = ("release", None, None)
        try:
            with self._beats.moving(claim.id):
                self._record(claim, outcome, time.perf_counter() - started)
        finally:
            self._claim = None

    def _train(self, claim: Claim) -> tuple:
        """Train ``claim``; returns (kind, result or error, permanent?)."""
        self._training = True
        try:
            if self._stop.is_set():
                raise WorkerStopping()
            over = over_limits(claim.request, self.options.limits)
            if over is not None:
                return ("error", over, True)
            from trainer.train import ClaimLost, DatasetCache

            self._setup_torch()
            if self._datasets is None:
                self._datasets = DatasetCache()
            try:
                result = train_limited(claim.request, self.logdir, self.options.limits, device=self.options.device,
                                       attempt=claim.attempt, on_epoch=self._on_epoch, datasets=self._datasets,
                                       should_stop=lambda: self._should_stop(claim),
                                       may_write=lambda: self.queue.owns(claim))
            except ClaimLost:
                return ("lost", None, None)
            except permanent_errors() as e:
                return ("error", e, True)
            except Exception as e:  # anything else may be transient (a full disk)
                return ("error", e, False)
            return ("trained", result, None)
        finally:
            self._training = False

    def _record(self, claim: Claim, outcome: tuple, seconds: float) -> None:
        kind, value, permanent = outcome
        if kind == "lost":
            self._log(f"{claim.id}: claim was lost while training; stopped without writing, left to its new owner")
            return
        if kind == "release":
            epoch = self._beats.epoch(claim.id)
            if self.queue.release(claim, f"worker {self.id} stopped during epoch {epoch + 1}; "
                                         "the request will be trained again"):
                self._log(f"{claim.id}: back to pending (worker stopping)")
            return
        if kind == "error":
            state = self.queue.retry_or_fail(claim, describe(value), permanent=permanent)
            self._log(f"{claim.id}: {describe(value).splitlines()[0][:200]} -> {state or 'claim lost'}")
            return
        result = value
        if self._beats.lost(claim.id):
            self._log(f"{claim.id}: claim was lost while training; left to its new owner")
            return
        state = result_state(result.state)
        if self.queue.finish(claim, state, epoch=result.epoch, reason=result.reason, metrics=result.metrics,
                             epochs=result.epochs):
            self.trained += 1
            accuracy = result.metrics.get("val_accuracy")
            self._log(f"{claim.id}: {result.state} after {result.epoch}/{result.epochs} epoch(s) in {seconds:.1f} s"
                      + (f", val accuracy {accuracy:.4f}" if isinstance(accuracy, float) else ""))

    def _on_epoch(self, epoch: int, epochs: int, metrics: dict) -> bool:
        claim = self._claim
        if self._stop.is_set():  # stopped from another thread (a signal raises at once)
            raise WorkerStopping()
        if claim is None:
            return False
        self._beats.progress(claim.id, epoch, epochs)
        return self._beats.lost(claim.id) or self.queue.cancel_requested(claim.id)

    def _should_stop(self, claim: Claim) -> bool:
        """Between batches: a cancel marker or a lost claim ends the run (a stat, no parsing)."""
        if self._stop.is_set():
            raise WorkerStopping()
        return self._beats.lost(claim.id) or self.queue.cancel_requested(claim.id)

    def _setup_torch(self) -> None:
        if self.options.threads:
            import torch

            if torch.get_num_threads() != self.options.threads:
                torch.set_num_threads(self.options.threads)

    # ------------------------------------------------------------------ signals and output

    def _on_signal(self, signum: int, frame) -> None:
        self.stop()
        if self._training:
            self._training = False
            raise WorkerStopping()

    def _log(self, message: str) -> None:
        if not self.options.quiet:
            log_line(sys.stdout, f"remap worker {self.id}: {message}")


def result_state(run_state: str) -> str:
    """The queue state for a run's final state (a diverged run is a complete run: done)."""
    if run_state == metadata.CANCELLED:
        return CANCELLED
    if run_state == metadata.FAILED:
        return FAILED
    return DONE


class Supervisor:
    """Runs ``count`` worker processes and restarts one that crashes.

    SIGTERM/SIGINT are passed on to the workers (which release their requests);
    a worker still alive after ``grace`` seconds is killed.
    """

    def __init__(self, logdir: str, count: int, child_args: Sequence[str], *, once: bool = False,
                 grace: float = 30.0, quiet: bool = False, exit_with_parent: bool = False):
        self.logdir = logdir
        self.exit_with_parent = exit_with_parent
        self._parent = os.getppid()
        self.count = count
        self.child_args = list(child_args)
        self.once = once
        self.grace = grace
        self.quiet = quiet
        self._stop = threading.Event()
        self._children: list[subprocess.Popen | None] = []
        self._restarts: list[list[float]] = []

    def command(self) -> list[str]:
        return [sys.executable, "-m", "trainer.worker", self.logdir, "--workers", "1",
                "--exit-with-parent", *self.child_args]

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        with stop_signals(lambda *_: self._stop.set()):
            try:
                self._children = [self._spawn() for _ in range(self.count)]
                self._restarts = [[] for _ in range(self.count)]
                while not self._stop.is_set() and any(c is not None for c in self._children):
                    self._stop.wait(0.5)
                    self._reap()
                    if self.exit_with_parent and os.getppid() != self._parent:
                        self._log("parent process is gone; stopping the workers")
                        self._stop.set()
            finally:
                self._shutdown()
        return 0

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(self.command(), env=child_env())

    def _reap(self) -> None:
        now = time.monotonic()
        for slot, child in enumerate(self._children):
            if child is None or child.poll() is None:
                continue
            code = child.returncode
            if self._stop.is_set() or (self.once and code == 0):
                self._children[slot] = None
                continue
            recent = [t for t in self._restarts[slot] if now - t < 60] + [now]
            self._restarts[slot] = recent
            if len(recent) > 5:
                self._log(f"worker {slot} exited with code {code} {len(recent)} times in a minute; not restarting it")
                self._children[slot] = None
                continue
            self._log(f"worker {slot} exited with code {code}; restarting it")
            self._children[slot] = self._spawn()

    def _shutdown(self) -> None:
        live = [c for c in self._children if c is not None and c.poll() is None]
        for child in live:
            send_signal(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in live:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                send_signal(child.pid, signal.SIGKILL)
                child.wait()

    def _log(self, message: str) -> None:
        if not self.quiet:
            log_line(sys.stderr, f"remap worker supervisor: {message}")


def log_line(stream, message: str) -> None:
    """One line in one write, so that lines of several workers sharing a log never interleave."""
    stream.write(message + "\n")
    stream.flush()


# ---------------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logdir")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--once", action="store_true", help="exit when nothing is pending")
    parser.add_argument("--stale-after", type=float, default=DEFAULT_STALE_AFTER, metavar="SECONDS",
                        help="re-queue a claim whose worker sent no heartbeat for this long (default 60)")
    parser.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS,
                        help="fail a request after this many lost or crashed attempts (default 3)")
    parser.add_argument("--device", default="auto", help="auto (GPU if available), cpu or cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per worker (default: (cores - 1) / workers, at least 1)")
    parser.add_argument("--quiet", action="store_true", help="print nothing per request")
    limits = parser.add_argument_group("limits per request")
    limits.add_argument("--max-memory", type=_size, default=None, metavar="SIZE",
                        help="largest estimated training memory, e.g. 4G or 512M; training also runs under an "
                             "operating-system limit of this size (default: a quarter of this machine's memory)")
    limits.add_argument("--max-epochs", type=int, default=DEFAULT_MAX_EPOCHS, metavar="N",
                        help=f"fail requests with more epochs (default {DEFAULT_MAX_EPOCHS})")
    limits.add_argument("--max-run-seconds", type=float, default=DEFAULT_MAX_RUN_SECONDS, metavar="SECONDS",
                        help=f"stop and fail a run that takes longer (default {DEFAULT_MAX_RUN_SECONDS:g}, 6 h)")
    ray = parser.add_argument_group("ray")
    ray.add_argument("--ray", default=None, metavar="ADDRESS|local",
                     help="run each request as a Ray task on the cluster at ADDRESS ('local': a local Ray)")
    ray.add_argument("--ray-num-cpus", type=float, default=1.0, help="CPUs per task (default 1)")
    ray.add_argument("--ray-num-gpus", type=float, default=0.0, help="GPUs per task (default 0)")
    ray.add_argument("--ray-max-retries", type=int, default=3, help="Ray retries of a task lost with a node")
    ray.add_argument("--ray-max-in-flight", type=int, default=None,
                     help="tasks at once (default: cluster CPUs / CPUs per task)")
    ray.add_argument("--ray-no-shared-fs", action="store_true",
                     help="tasks return the run's files and this process writes them into LOGDIR")
    parser.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)


def _size(text: str) -> int:
    try:
        return parse_bytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def limits_from_args(args: argparse.Namespace) -> RunLimits:
    memory = getattr(args, "max_memory", None)
    return RunLimits(memory if memory is not None else default_max_memory(),
                     getattr(args, "max_epochs", DEFAULT_MAX_EPOCHS),
                     getattr(args, "max_run_seconds", DEFAULT_MAX_RUN_SECONDS))


def limit_args(limits: RunLimits) -> list[str]:
    """``limits`` as ``remap worker`` options (for child workers)."""
    return ["--max-memory", str(limits.max_memory), "--max-epochs", str(limits.max_epochs),
            "--max-run-seconds", repr(float(limits.max_run_seconds))]


def default_threads(workers: int) -> int:
    """Torch threads per worker: the cores but one (left to TensorBoard and the rest), shared out.

    REMAP's models are small: more workers beat more threads per worker, and a
    worker whose threads outnumber the free cores slows down badly (measured:
    a 2-thread worker on a busy 2-core machine trained 4x slower than 1 thread).
    """
    return max(1, ((os.cpu_count() or 1) - 1) // max(workers, 1))


def check_arguments(args: argparse.Namespace) -> str | None:
    """A message for bad arguments, or None."""
    if args.workers < 1:
        return "--workers must be at least 1"
    if not args.stale_after > 0:
        return "--stale-after must be positive"
    if args.max_attempts < 1:
        return "--max-attempts must be at least 1"
    if args.threads is not None and args.threads < 1:
        return "--threads must be at least 1"
    if args.ray is not None and args.workers != 1:
        return "--ray dispatches to the cluster; leave out --workers"
    if args.ray is None and (args.ray_no_shared_fs or args.ray_max_in_flight is not None):
        return "--ray-* options need --ray ADDRESS|local"
    problem = check_values(limits_from_args(args))
    if problem:
        return f"{problem} (--max-memory, --max-epochs, --max-run-seconds)"
    return None


def run_from_args(args: argparse.Namespace) -> int:
    problem = check_arguments(args)
    if problem:
        print(f"remap worker: error: {problem}", file=sys.stderr)
        return 2
    if args.ray is not None:
        from trainer.ray_dispatch import RayDispatcher, RayOptions

        options = RayOptions(address=args.ray, num_cpus=args.ray_num_cpus, num_gpus=args.ray_num_gpus,
                             max_retries=args.ray_max_retries, max_in_flight=args.ray_max_in_flight,
                             shared_fs=not args.ray_no_shared_fs, device=args.device,
                             stale_after=args.stale_after, max_attempts=args.max_attempts,
                             once=args.once, quiet=args.quiet, limits=limits_from_args(args))
        return RayDispatcher(args.logdir, options).run()
    threads = args.threads or default_threads(args.workers)
    if args.workers > 1:
        child_args = ["--stale-after", str(args.stale_after), "--max-attempts", str(args.max_attempts),
                      "--device", args.device, "--threads", str(threads)]
        child_args += ["--once"] if args.once else []
        child_args += ["--quiet"] if args.quiet else []
        child_args += limit_args(limits_from_args(args))
        return Supervisor(args.logdir, args.workers, child_args, once=args.once, quiet=args.quiet,
                          exit_with_parent=args.exit_with_parent).run()
    options = WorkerOptions(stale_after=args.stale_after, max_attempts=args.max_attempts, device=args.device,
                            once=args.once, threads=threads, exit_with_parent=args.exit_with_parent,
                            quiet=args.quiet, limits=limits_from_args(args))
    return Worker(args.logdir, options).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="remap worker", description="Train queued requests of LOGDIR.")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
