"""The durable training queue in ``<logdir>/.remap/queue/`` (torch-free).

Layout (every JSON file is written atomically: temp file + rename)::

    <logdir>/.remap/queue/
        pending/<id>.json      waiting to be claimed
        running/<id>.json      claimed by a worker (``queue.worker``)
        done/<id>.json         trained (the run is complete)
        failed/<id>.json       gave up: invalid request, corrupt file, too many lost attempts
        cancelled/<id>.json    cancelled by a user
        heartbeats/<id>.json   liveness and progress of a running request
                               {worker, attempt, time, epoch, epochs}
        cancel/<id>            a cancel marker; the owner stops after the current epoch
        ids/<id>.json          registry of every id ever enqueued (exclusive create), holding
                               the entry as enqueued: ids are never reused and a request lost
                               in a crash between two steps is restored from here
        keys/<sha256>.json     idempotency record of a client key {ids, body}
    <logdir>/.remap/workers/<worker id>.json   {id, host, pid, started, last_seen, request}

An entry file is ``{"version": 1, "request": <training request>, "queue": {...}}``
with queue fields ``priority, seq, enqueued, attempts, failures, last_error,
worker, worker_host, worker_pid, claimed, finished, epoch, epochs, params,
reason``. The folder is the state; the fields are details.

State machine (each arrow is one ``move``):

* pending -> running: ``claim`` (highest priority first, then enqueue order);
  a corrupt pending file -> failed; a pending request with a cancel marker -> cancelled.
* pending -> cancelled: ``cancel``.
* running -> done | failed | cancelled: ``finish`` by its owner (a diverged run is done).
* running -> pending: ``release`` (its worker is stopping; not a failure), or ``sweep``/
  ``retry_or_fail`` after a lost heartbeat, a dead worker or an unexpected error, while
  ``failures < max_attempts``.
* running -> failed: the same at ``max_attempts`` failures, or a permanent error
  (invalid request, spec or dataset) at once.

A move is ownership-safe: the mover first renames ``<state>/<id>.json`` to a
private name ``<state>/.<id>.json.<time>-<token>.moving`` (exactly one renamer
wins), writes the new entry into the target folder, then deletes the private
file. A private file orphaned by a crash is put back by ``sweep``. So two
workers never hold the same request, and no request is lost or duplicated.

``attempts`` counts claims; a worker trains attempt N with ``attempt=N``, which
wipes the files of an earlier, interrupted attempt, so exactly one complete
run results per request. ``failures`` counts attempts that were lost or raised
an unexpected error; at ``max_attempts`` failures the request fails with the
last error. A request is stale when neither its heartbeat nor its running file
changed for ``stale_after`` seconds, or at once when its worker ran on this host
and that process is gone.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

from remap_tb import metadata
from remap_tb.atomic import atomic_write_json
from remap_tb.requests import ORIGINS, is_valid_id, parse_request
from remap_tb.spec import analyse

ENTRY_VERSION = 1
QUEUE_DIR = "queue"
WORKERS_DIR = "workers"
PENDING = "pending"
RUNNING = "running"
DONE = metadata.DONE
FAILED = metadata.FAILED
CANCELLED = metadata.CANCELLED
QUEUE_STATES = (PENDING, RUNNING, DONE, FAILED, CANCELLED)
FINISHED = (DONE, FAILED, CANCELLED)
DEFAULT_STALE_AFTER = 60.0
DEFAULT_MAX_ATTEMPTS = 3
MAX_PRIORITY = 1e9
MAX_CLIENT_KEY = 200
ORPHAN_AGE = 30.0  # seconds before a private ".moving" file counts as orphaned
RAW_KEEP = 4096  # characters of a corrupt file kept in its failed entry


class QueueError(ValueError):
    """A request the queue cannot act on; ``status`` is the HTTP code to answer with."""

    status = 400


class UnknownRequest(QueueError):
    status = 404


class StateConflict(QueueError):
    """The request is not in a state that allows the operation."""


class CorruptEntry(ValueError):
    """A queue file that cannot be read as an entry."""


@dataclass
class Claim:
    """A request a worker owns until it finishes or releases it."""

    id: str
    request: dict
    attempt: int
    worker: str
    epochs: int
    entry: dict = field(repr=False, default_factory=dict)


@dataclass
class Enqueued:
    ids: list[str]  # one per request, in order
    new: list[str]  # the ones this call created (the others existed already)


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


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


class Queue:
    """The queue of one logdir; cheap to construct, holds only caches.

    Every method is safe to call from several processes and machines at once
    (the file system is the only shared state).
    """

    def __init__(self, logdir: str, *, stale_after: float = DEFAULT_STALE_AFTER,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS):
        if not stale_after > 0:
            raise ValueError("stale_after must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.logdir = os.path.abspath(logdir)
        self.root = os.path.join(self.logdir, metadata.STATE_DIR, QUEUE_DIR)
        self.workers_dir = os.path.join(self.logdir, metadata.STATE_DIR, WORKERS_DIR)
        self.stale_after = float(stale_after)
        self.max_attempts = int(max_attempts)
        self._host = host_key()
        self._cache: dict[str, tuple[tuple, Any]] = {}  # path -> (stat key, parsed entry)
        self._lost_seen: set[str] = set()

    # ------------------------------------------------------------------ paths

    def _dir(self, name: str) -> str:
        return os.path.join(self.root, name)

    def _path(self, state: str, rid: str) -> str:
        return os.path.join(self.root, state, f"{rid}.json")

    def _ensure_dirs(self) -> None:
        for name in QUEUE_STATES + ("heartbeats", "cancel", "ids", "keys"):
            os.makedirs(self._dir(name), exist_ok=True)

    def _names(self, state: str) -> list[str]:
        """Ids of the entry files in a state folder (private and temp files skipped)."""
        try:
            names = os.listdir(self._dir(state))
        except FileNotFoundError:
            return []
        return [n[:-5] for n in names if n.endswith(".json") and not n.startswith(".")]

    # ------------------------------------------------------------------ enqueue

    def enqueue(self, requests: Iterable[dict], *, priority: float = 0,
                client_key: str | None = None) -> Enqueued:
        """Add requests to ``pending``; returns their ids.

        Each request is checked with ``parse_request`` first (``RequestError``,
        nothing written). An id that was ever enqueued is not enqueued again
        (it is returned, not written). With ``client_key`` the ids are derived
        from the key, so the same key gives the same ids and writes nothing new;
        the same key with a different body raises ``StateConflict``.
        """
        priority = _check_priority(priority)
        parsed = [parse_request(r) for r in requests]
        key_path, body = None, None
        if client_key is not None:
            if not isinstance(client_key, str) or not 0 < len(client_key) <= MAX_CLIENT_KEY:
                raise QueueError(f"client_key must be a string of 1-{MAX_CLIENT_KEY} characters")
            digest = hashlib.sha256(client_key.encode("utf-8")).hexdigest()
            key_path = os.path.join(self._dir("keys"), f"{digest[:32]}.json")
            body = _body_hash(parsed, priority)
            known = self._read_key(key_path)
            if known is not None:
                if known.get("body") != body:
                    raise StateConflict("client_key was already used for a different enqueue; use a new key")
                return Enqueued(list(known["ids"]), [])
            for index, request in enumerate(parsed):
                origin = request["provenance"]["origin"]
                tag = hashlib.sha256(f"{digest}/{index}".encode("utf-8")).hexdigest()[:12]
                request["id"] = f"{origin}-{tag}"
        ids = [r["id"] for r in parsed]
        if len(set(ids)) != len(ids):
            raise QueueError("the same request id appears more than once in one enqueue")
        self._ensure_dirs()
        base = time.time_ns()
        new = []
        for index, request in enumerate(parsed):
            entry = _new_entry(request, priority, base + index)
            if self._create(request["id"], entry):
                new.append(request["id"])
        if key_path is not None:
            atomic_write_json(key_path, {"ids": ids, "body": body, "time": time.time()})
        return Enqueued(ids, new)

    def _create(self, rid: str, entry: dict) -> bool:
        """Register ``rid`` exclusively, then publish its entry in ``pending``."""
        data = (json.dumps(entry, indent=1) + "\n").encode("utf-8")
        try:
            fd = os.open(os.path.join(self._dir("ids"), f"{rid}.json"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        atomic_write_json(self._path(PENDING, rid), entry)
        return True

    @staticmethod
    def _read_key(path: str) -> dict | None:
        try:
            with open(path, encoding="utf-8") as handle:
                value = json.load(handle)
        except (OSError, ValueError):
            return None
        if isinstance(value, dict) and isinstance(value.get("ids"), list):
            return value
        return None

    def known(self, rid: str) -> bool:
        """Whether ``rid`` was ever enqueued."""
        return os.path.exists(os.path.join(self._dir("ids"), f"{rid}.json"))

    # ------------------------------------------------------------------ moves

    def _take(self, state: str, rid: str) -> str | None:
        """Rename ``state/rid.json`` to a private name; None when another process has it."""
        private = os.path.join(self._dir(state), f".{rid}.json.{time.time_ns()}-{uuid.uuid4().hex[:8]}.moving")
        try:
            os.rename(self._path(state, rid), private)
        except FileNotFoundError:
            return None
        return private

    def _put(self, state: str, rid: str, entry: dict, private: str) -> None:
        atomic_write_json(self._path(state, rid), entry)
        os.unlink(private)

    def _give_back(self, state: str, rid: str, private: str) -> None:
        os.rename(private, self._path(state, rid))

    def _load(self, path: str) -> dict:
        try:
            with open(path, encoding="utf-8") as handle:
                value = json.load(handle)
        except (ValueError, UnicodeDecodeError) as e:
            raise CorruptEntry(f"not valid JSON: {str(e)[:200]}") from None
        if not isinstance(value, dict) or not isinstance(value.get("queue"), dict) or "request" not in value:
            raise CorruptEntry("not a queue entry (an object with 'request' and 'queue')")
        if value.get("version") != ENTRY_VERSION:
            raise CorruptEntry(f"entry version {value.get('version')!r:.20} is not {ENTRY_VERSION}")
        return value

    def _corrupt_entry(self, private: str, reason: str) -> dict:
        try:
            with open(private, "rb") as handle:
                raw = handle.read(RAW_KEEP).decode("utf-8", "replace")
        except OSError:
            raw = ""
        entry = _new_entry(None, 0, time.time_ns())
        entry["raw"] = raw
        entry["queue"].update(last_error=f"corrupt request file: {reason}", finished=_now_iso(),
                              reason=f"corrupt request file: {reason}")
        return entry

    # ------------------------------------------------------------------ claim

    def claim(self, worker: str, *, cancel_check: bool = True) -> Claim | None:
        """Take the next pending request (highest priority, then oldest) for ``worker``.

        A corrupt pending file is moved to ``failed`` with the reason; a request
        with a cancel marker goes to ``cancelled``. Returns None when nothing is
        pending.
        """
        for rid in self._pending_order():
            if not is_valid_id(rid):
                self._fail_bad_name(rid)
                continue
            private = self._take(PENDING, rid)
            if private is None:
                continue
            try:
                entry = self._load(private)
            except CorruptEntry as e:
                self._put(FAILED, rid, self._corrupt_entry(private, str(e)), private)
                continue
            q = entry["queue"]
            if cancel_check and self.cancel_requested(rid):
                q.update(finished=_now_iso(), reason="cancelled before it started", worker=None)
                self._put(CANCELLED, rid, entry, private)
                self._clear_markers(rid)
                continue
            request = entry.get("request")
            epochs = request.get("training", {}).get("epochs", 0) if isinstance(request, dict) else 0
            q.update(attempts=int(q.get("attempts", 0)) + 1, worker=worker, worker_host=self._host,
                     worker_pid=os.getpid(), claimed=_now_iso(), epoch=0,
                     epochs=epochs if isinstance(epochs, int) else 0)
            self._put(RUNNING, rid, entry, private)
            self.heartbeat(rid, worker, q["attempts"], 0, q["epochs"])
            return Claim(rid, request, q["attempts"], worker, q["epochs"], entry)
        return None

    def _pending_order(self) -> list[str]:
        keys = []
        for rid in self._names(PENDING):
            entry = self._cached(self._path(PENDING, rid))
            if entry is None:
                continue  # gone meanwhile
            if isinstance(entry, CorruptEntry):
                keys.append(((-math.inf, 0, rid), rid))  # first, so it is moved out at once
                continue
            q = entry["queue"]
            priority = q.get("priority", 0)
            seq = q.get("seq", 0)
            keys.append(((-priority if isinstance(priority, (int, float)) else 0,
                          seq if isinstance(seq, int) else 0, rid), rid))
        keys.sort()
        return [rid for _, rid in keys]

    def _cached(self, path: str) -> dict | CorruptEntry | None:
        """The entry at ``path``, re-read only when the file changed."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._cache.pop(path, None)
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        hit = self._cache.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            value: Any = self._load(path)
        except FileNotFoundError:
            return None
        except CorruptEntry as e:
            value = e
        self._cache[path] = (key, value)
        return value

    def _fail_bad_name(self, name: str) -> None:
        """A pending file whose name is not a valid request id: fail it under a safe name."""
        src = os.path.join(self._dir(PENDING), f"{name}.json")
        safe = "corrupt-" + hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:12]
        private = os.path.join(self._dir(PENDING), f".{safe}.json.{time.time_ns()}-bad.moving")
        try:
            os.rename(src, private)
        except FileNotFoundError:
            return
        entry = self._corrupt_entry(private, f"file name {name[:60]!r}.json is not a valid request id")
        self._put(FAILED, safe, entry, private)

    # ------------------------------------------------------------------ running

    def heartbeat(self, rid: str, worker: str, attempt: int, epoch: int, epochs: int) -> None:
        """Record that ``worker`` is alive on ``rid`` and how far it got."""
        atomic_write_json(os.path.join(self._dir("heartbeats"), f"{rid}.json"),
                          {"worker": worker, "attempt": attempt, "time": time.time(),
                           "epoch": epoch, "epochs": epochs})

    def owns(self, claim: Claim) -> bool:
        """Whether ``claim`` is still the current claim of its request."""
        entry = self._cached(self._path(RUNNING, claim.id))
        if not isinstance(entry, dict):
            return False
        q = entry["queue"]
        return q.get("worker") == claim.worker and q.get("attempts") == claim.attempt

    def cancel_requested(self, rid: str) -> bool:
        return os.path.exists(os.path.join(self._dir("cancel"), rid))

    def finish(self, claim: Claim, state: str, *, epoch: int = 0, reason: str | None = None,
               metrics: dict | None = None) -> bool:
        """Move an owned request to ``done``, ``failed`` or ``cancelled``.

        ``reason`` says why (the error of a failure, "cancelled after epoch 3",
        "early stopping ..."). Returns False (and changes nothing) when the
        claim was lost meanwhile.
        """
        if state not in FINISHED:
            raise ValueError(f"finish state must be one of {FINISHED}")

        def update(q: dict) -> str:
            q.update(finished=_now_iso(), epoch=epoch, reason=reason)
            if state == FAILED and reason:
                q["last_error"] = reason
            if metrics:
                q["metrics"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
            return state

        return self._move_claim(claim, update)

    def release(self, claim: Claim, reason: str) -> bool:
        """Give an owned request back to ``pending`` (its worker is stopping); not a failure."""

        def update(q: dict) -> str:
            q.update(last_error=reason, worker=None, epoch=0)
            return PENDING

        return self._move_claim(claim, update)

    def retry_or_fail(self, claim: Claim, error: str, *, permanent: bool = False) -> str | None:
        """An attempt failed: back to ``pending``, or ``failed`` when permanent or out of attempts.

        Returns the new state, or None when the claim was lost meanwhile.
        """
        outcome: list[str] = []

        def update(q: dict) -> str:
            outcome.append(self._after_failure(q, error, permanent))
            return outcome[0]

        return outcome[0] if self._move_claim(claim, update) else None

    def _after_failure(self, q: dict, error: str, permanent: bool) -> str:
        q["failures"] = int(q.get("failures", 0)) + 1
        q.update(last_error=error, worker=None)
        if permanent:
            q.update(finished=_now_iso(), reason=error)
            return FAILED
        if q["failures"] >= self.max_attempts:
            q.update(finished=_now_iso(),
                     reason=f"gave up after {q['failures']} failed attempt(s); last error: {error}")
            return FAILED
        q["epoch"] = 0
        return PENDING

    def _move_claim(self, claim: Claim, update) -> bool:
        if not self.owns(claim):
            return False
        private = self._take(RUNNING, claim.id)
        if private is None:
            return False
        try:
            entry = self._load(private)
        except CorruptEntry:
            entry = None
        if entry is None or (entry["queue"].get("worker"), entry["queue"].get("attempts")) != (claim.worker,
                                                                                               claim.attempt):
            self._give_back(RUNNING, claim.id, private)
            return False
        target = update(entry["queue"])
        self._put(target, claim.id, entry, private)
        self._clear_markers(claim.id, cancel=target in FINISHED)
        return True

    def _clear_markers(self, rid: str, cancel: bool = True) -> None:
        names = [os.path.join(self._dir("heartbeats"), f"{rid}.json")]
        if cancel:
            names.append(os.path.join(self._dir("cancel"), rid))
        for path in names:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    # ------------------------------------------------------------------ user operations

    def state_of(self, rid: str) -> str | None:
        """The state of a request, or None when the id is unknown.

        A request in the middle of a move is in no folder for a moment; that is
        retried briefly.
        """
        if not is_valid_id(rid):
            return None
        for delay in (0, 0.001, 0.005, 0.02, 0.05, 0.1):
            if delay:
                time.sleep(delay)
            for state in QUEUE_STATES:
                if os.path.exists(self._path(state, rid)):
                    return state
            if not self.known(rid):
                return None
        return None

    def get(self, rid: str) -> tuple[str, dict] | None:
        """(state, entry) of a request, or None."""
        state = self.state_of(rid)
        if state is None:
            return None
        entry = self._cached(self._path(state, rid))
        return (state, entry) if isinstance(entry, dict) else None

    def cancel(self, rid: str) -> str:
        """Cancel a pending request at once, or a running one at its next epoch end.

        Returns the state now (``cancelled`` or ``running``); raises
        ``UnknownRequest`` or ``StateConflict`` (already done or failed).
        """
        state = self.state_of(rid)
        if state is None:
            raise UnknownRequest(f"no queued request {rid[:80]!r}")
        if state == CANCELLED:
            return CANCELLED
        if state in (DONE, FAILED):
            raise StateConflict(f"request {rid} is already {state}; only pending or running requests can be cancelled")
        self._ensure_dirs()
        atomic_write_json(os.path.join(self._dir("cancel"), rid), {"time": time.time()})
        private = self._take(PENDING, rid)
        if private is not None:
            try:
                entry = self._load(private)
            except CorruptEntry as e:
                self._put(FAILED, rid, self._corrupt_entry(private, str(e)), private)
                return FAILED
            entry["queue"].update(finished=_now_iso(), reason="cancelled before it started")
            self._put(CANCELLED, rid, entry, private)
            self._clear_markers(rid)
            return CANCELLED
        return self.state_of(rid) or RUNNING

    def reorder(self, rid: str, priority: float) -> float:
        """Set the priority of a pending request (higher is claimed first)."""
        priority = _check_priority(priority)
        state = self.state_of(rid)
        if state is None:
            raise UnknownRequest(f"no queued request {rid[:80]!r}")
        if state != PENDING:
            raise StateConflict(f"request {rid} is {state}; only pending requests can be reordered")
        private = self._take(PENDING, rid)
        if private is None:
            raise StateConflict(f"request {rid} was claimed meanwhile; only pending requests can be reordered")
        try:
            entry = self._load(private)
        except CorruptEntry:
            self._give_back(PENDING, rid, private)
            raise StateConflict(f"request {rid} has a corrupt file; a worker will move it to failed") from None
        entry["queue"]["priority"] = priority
        self._put(PENDING, rid, entry, private)
        return priority

    # ------------------------------------------------------------------ sweep

    def sweep(self) -> list[tuple[str, str]]:
        """Re-queue stale claims and repair what crashes left; returns (id, new state) pairs."""
        moved = []
        now = time.time()
        for rid in self._names(RUNNING):
            outcome = self._requeue_if_stale(rid, now)
            if outcome:
                moved.append((rid, outcome))
        self._recover_orphans(now)
        moved.extend(self._recover_lost())
        self._prune_workers(now)
        return moved

    def _staleness(self, rid: str, now: float) -> str | None:
        """Why the claim on ``rid`` is stale, or None while it is alive."""
        path = self._path(RUNNING, rid)
        entry = self._cached(path)
        if entry is None:
            return None
        beat = max(_mtime(path) or 0, _mtime(os.path.join(self._dir("heartbeats"), f"{rid}.json")) or 0)
        worker = None
        if isinstance(entry, dict):
            q = entry["queue"]
            worker = q.get("worker")
            if q.get("worker_host") == self._host and not pid_alive(q.get("worker_pid")):
                return f"worker {worker} (pid {q.get('worker_pid')}) is gone"
        if now - beat > self.stale_after:
            return f"worker {worker} stopped heartbeating (no sign of life for {now - beat:.0f} s)"
        return None

    def _requeue_if_stale(self, rid: str, now: float) -> str | None:
        why = self._staleness(rid, now)
        if why is None:
            return None
        private = self._take(RUNNING, rid)
        if private is None:
            return None
        if self._staleness_of_private(rid, private, now) is None:
            self._give_back(RUNNING, rid, private)  # it came back to life meanwhile
            return None
        try:
            entry = self._load(private)
        except CorruptEntry as e:
            self._put(FAILED, rid, self._corrupt_entry(private, str(e)), private)
            self._clear_markers(rid)
            return FAILED
        target = self._after_failure(entry["queue"], why, permanent=False)
        self._put(target, rid, entry, private)
        self._clear_markers(rid, cancel=target in FINISHED)
        return target

    def _staleness_of_private(self, rid: str, private: str, now: float) -> str | None:
        heartbeat = _mtime(os.path.join(self._dir("heartbeats"), f"{rid}.json")) or 0
        try:
            entry = self._load(private)
        except CorruptEntry:
            return "corrupt"
        q = entry["queue"]
        if q.get("worker_host") == self._host and not pid_alive(q.get("worker_pid")):
            return "gone"
        return "stale" if now - max(heartbeat, _mtime(private) or 0) > self.stale_after else None

    def _recover_orphans(self, now: float) -> None:
        """Put back private ``.moving`` files and remove temp files that a crash left behind."""
        for state in QUEUE_STATES:
            folder = self._dir(state)
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                path = os.path.join(folder, name)
                if name.startswith(".tmp-") and name.endswith(".part"):
                    if now - (_mtime(path) or now) > 3600:
                        _unlink(path)
                    continue
                if not (name.startswith(".") and name.endswith(".moving")):
                    continue
                rid, stamp = _parse_private(name)
                if stamp is None or now - stamp / 1e9 < ORPHAN_AGE:
                    continue
                if rid is None or not is_valid_id(rid) or any(
                        os.path.exists(self._path(s, rid)) for s in QUEUE_STATES):
                    _unlink(path)
                    continue
                try:
                    os.rename(path, self._path(state, rid))
                except FileNotFoundError:
                    pass

    def _recover_lost(self) -> list[tuple[str, str]]:
        """Re-publish registered ids that are in no folder on two sweeps in a row."""
        registered = set(n[:-5] for n in _listdir(self._dir("ids")) if n.endswith(".json"))
        if not registered:
            return []
        present = set()
        for state in QUEUE_STATES:
            for name in _listdir(self._dir(state)):
                if name.endswith(".json") and not name.startswith("."):
                    present.add(name[:-5])
                elif name.endswith(".moving"):
                    rid, _ = _parse_private(name)
                    if rid:
                        present.add(rid)
        missing = registered - present
        lost = missing & self._lost_seen
        self._lost_seen = missing - lost
        restored = []
        for rid in sorted(lost):
            try:
                entry = self._load(os.path.join(self._dir("ids"), f"{rid}.json"))
            except (CorruptEntry, OSError):
                continue
            if any(os.path.exists(self._path(s, rid)) for s in QUEUE_STATES):
                continue
            atomic_write_json(self._path(PENDING, rid), entry)
            restored.append((rid, PENDING))
        return restored

    # ------------------------------------------------------------------ workers

    def touch_worker(self, worker: str, *, request: str | None = None, kind: str = "local",
                     started: float | None = None) -> None:
        """Write the worker's heartbeat file ``.remap/workers/<id>.json``."""
        atomic_write_json(os.path.join(self.workers_dir, f"{worker}.json"), {
            "id": worker, "host": socket.gethostname(), "host_key": self._host, "pid": os.getpid(),
            "kind": kind, "started": started or time.time(), "last_seen": time.time(), "request": request})

    def remove_worker(self, worker: str) -> None:
        _unlink(os.path.join(self.workers_dir, f"{worker}.json"))

    def workers(self) -> list[dict]:
        """Every worker that was seen recently, with ``alive`` (a heartbeat within ``stale_after``)."""
        now = time.time()
        result = []
        for name in sorted(_listdir(self.workers_dir)):
            if not name.endswith(".json") or name.startswith("."):
                continue
            try:
                with open(os.path.join(self.workers_dir, name), encoding="utf-8") as handle:
                    info = json.load(handle)
                last_seen = float(info["last_seen"])
                pid = int(info["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            alive = now - last_seen <= self.stale_after
            if alive and info.get("host_key") == self._host and not pid_alive(pid):
                alive = False
            result.append({"id": str(info.get("id", name[:-5])), "host": str(info.get("host", "")), "pid": pid,
                           "last_seen": last_seen, "alive": alive, "kind": str(info.get("kind", "local")),
                           "request": info.get("request")})
        return result

    def worker_alive(self) -> bool:
        return any(w["alive"] for w in self.workers())

    def _prune_workers(self, now: float) -> None:
        """Forget worker files silent for a day, or whose process on this host is gone."""
        for name in _listdir(self.workers_dir):
            path = os.path.join(self.workers_dir, name)
            if not name.endswith(".json") or name.startswith("."):
                continue
            if now - (_mtime(path) or now) > 86400:
                _unlink(path)
                continue
            info = _read_json_quiet(path)
            if isinstance(info, dict) and info.get("host_key") == self._host \
                    and isinstance(info.get("pid"), int) and not pid_alive(info["pid"]):
                _unlink(path)

    # ------------------------------------------------------------------ listing

    def list(self) -> dict:
        """The queue route's answer: every request by state, the workers and liveness."""
        requests = []
        for state in QUEUE_STATES:
            ids = self._pending_order() if state == PENDING else self._names(state)
            rows = []
            for rid in ids:
                entry = self._cached(self._path(state, rid))
                if entry is None:
                    continue
                rows.append(self._row(rid, state, entry))
            if state != PENDING:
                rows.sort(key=lambda r: r["_sort"], reverse=state != RUNNING)
            requests.extend(rows)
        for row in requests:
            row.pop("_sort", None)
        self._forget_deleted()
        workers = self.workers()
        return {"requests": requests,
                "workers": [{k: w[k] for k in ("id", "host", "pid", "last_seen", "alive")} for w in workers],
                "worker_alive": any(w["alive"] for w in workers)}

    def _row(self, rid: str, state: str, entry: dict | CorruptEntry) -> dict:
        if isinstance(entry, CorruptEntry):
            return {"id": rid, "state": state, "origin": None, "parent": None, "changes": [], "epoch": 0,
                    "epochs": 0, "attempts": 0, "priority": 0, "error": f"corrupt request file: {entry}",
                    "params": None, "enqueued": "", "worker": None, "_sort": ""}
        q = entry["queue"]
        request = entry.get("request") if isinstance(entry.get("request"), dict) else {}
        provenance = request.get("provenance") or {}
        epoch = q.get("epoch", 0)
        if state == RUNNING:
            beat = _read_json_quiet(os.path.join(self._dir("heartbeats"), f"{rid}.json"))
            if isinstance(beat, dict) and beat.get("attempt") == q.get("attempts"):
                epoch = beat.get("epoch", epoch)
        error = q.get("reason") if state in (FAILED, CANCELLED) else q.get("last_error") if state != DONE else None
        origin = provenance.get("origin")
        return {"id": rid, "state": state, "origin": origin if origin in ORIGINS else None,
                "parent": provenance.get("parent"), "changes": list(provenance.get("changes") or []),
                "epoch": epoch if isinstance(epoch, int) else 0, "epochs": q.get("epochs", 0),
                "attempts": q.get("attempts", 0), "priority": q.get("priority", 0), "error": error or None,
                "params": q.get("params"), "enqueued": q.get("enqueued", ""), "worker": q.get("worker"),
                "_sort": q.get("finished") or q.get("claimed") or q.get("enqueued") or ""}

    def _forget_deleted(self) -> None:
        if len(self._cache) > 4 * 4096:
            self._cache = {p: v for p, v in self._cache.items() if os.path.exists(p)}

    def specs(self, states: Iterable[str] = (PENDING, RUNNING)) -> list[dict]:
        """The specs of the requests in ``states`` (for duplicate checks)."""
        specs = []
        for state in states:
            for rid in self._names(state):
                entry = self._cached(self._path(state, rid))
                request = entry.get("request") if isinstance(entry, dict) else None
                if isinstance(request, dict) and isinstance(request.get("spec"), dict):
                    specs.append(request["spec"])
        return specs

    def counts(self) -> dict[str, int]:
        return {state: len(self._names(state)) for state in QUEUE_STATES}

    def states(self, ids: Iterable[str]) -> dict[str, str | None]:
        """The state of each id (None for unknown), from one listing of each folder."""
        where: dict[str, str] = {}
        for state in QUEUE_STATES:
            for rid in self._names(state):
                where[rid] = state
        return {rid: where.get(rid) for rid in ids}


def _new_entry(request: dict | None, priority: float, seq: int) -> dict:
    params = None
    epochs = 0
    if request is not None:
        params = analyse(request["spec"]).total_params
        epochs = request["training"]["epochs"]
    return {"version": ENTRY_VERSION, "request": request, "queue": {
        "priority": priority, "seq": seq, "enqueued": _now_iso(), "attempts": 0, "failures": 0,
        "last_error": None, "worker": None, "worker_host": None, "worker_pid": None, "claimed": None,
        "finished": None, "epoch": 0, "epochs": epochs, "params": params, "reason": None}}


def _check_priority(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or abs(value) > MAX_PRIORITY:
        raise QueueError(f"priority must be a number between {-MAX_PRIORITY:g} and {MAX_PRIORITY:g}")
    return value


def _body_hash(requests: list[dict], priority: float) -> str:
    body = [{k: v for k, v in r.items() if k not in ("id", "created")} for r in requests]
    text = json.dumps([body, priority], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _parse_private(name: str) -> tuple[str | None, int | None]:
    """(id, time in ns) of a private name ``.<id>.json.<ns>-<token>.moving``."""
    body = name[1:-len(".moving")]
    rid, sep, rest = body.rpartition(".json.")
    if not sep:
        return None, None
    try:
        stamp = int(rest.split("-", 1)[0])
    except ValueError:
        return None, None
    return (rid or None), stamp


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _read_json_quiet(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None
