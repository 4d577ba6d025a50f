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
        cancel/<id>            a cancel marker; the owner stops between two batches (within ~1 s)
        ids/<id>.json          registry of every id ever enqueued, holding the entry as enqueued:
                               ids are never reused and a request lost in a crash between two
                               steps is restored from here
        keys/<sha256>.json     idempotency record of a client key {ids, body}
    <logdir>/.remap/workers/<worker id>.json   worker liveness (``remap_tb.workers_registry``)

``ids/`` and ``keys/`` files are created exclusively and complete: a temp file
in the same folder is written and fsynced, then hard-linked to its final name
(``link`` fails when the name exists, on local file systems and NFS alike).

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
file. A private file orphaned by a crash is put back by ``sweep`` (aged on the
file server's clock, see ``_recover_orphans``). So two workers never hold the
same request, and no request is lost or duplicated.

``attempts`` counts claims; a worker trains attempt N with ``attempt=N``, which
wipes the files of an earlier, interrupted attempt, so exactly one complete
run results per request. ``failures`` counts attempts that were lost or raised
an unexpected error; at ``max_attempts`` failures the request fails with the
last error. A request is stale when neither its heartbeat nor its running file
changed for ``stale_after`` seconds, or at once when its worker ran on this host
and that process is gone.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

from remap_tb import metadata
from remap_tb.atomic import atomic_write_json
from remap_tb.requests import ORIGINS, is_valid_id, parse_request
from remap_tb.spec import analyse
from remap_tb.workers_registry import (WorkerRegistry, host_key, listdir_quiet, mtime_quiet, new_worker_id,
                                       pid_alive, read_json_quiet, unlink_quiet)

__all__ = ["Queue", "QueueError", "UnknownRequest", "StateConflict", "CorruptEntry", "Claim", "Enqueued",
           "host_key", "pid_alive", "new_worker_id", "PENDING", "RUNNING", "DONE", "FAILED", "CANCELLED",
           "QUEUE_STATES", "FINISHED", "DEFAULT_STALE_AFTER", "DEFAULT_MAX_ATTEMPTS"]

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
ORPHAN_AGE = 30.0  # seconds (file server clock) before a private ".moving" file counts as orphaned
TEMP_AGE = 3600.0  # seconds (file server clock) before a ".tmp-*.part" file counts as left over
KEY_WAIT = (0, 0.01, 0.05, 0.1, 0.25, 0.5)  # delays while re-reading a client key record
RAW_KEEP = 4096  # characters of a corrupt file kept in its failed entry
CANCEL_WAIT = 2.0  # seconds a cancel keeps trying to take a pending request that others keep moving


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


def _now_iso() -> str:
    """UTC time with milliseconds (ISO 8601); sorts as text in time order."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


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
        self.registry = WorkerRegistry(self.workers_dir, self.stale_after, self._host)
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
        """Ids of the entry files in a state folder.

        Private and temp files are skipped, and so is any file whose name is not
        a valid request id (only a hand-made file can have one: the queue never
        writes such a name), so no invalid id ever reaches a route or a run dir.
        """
        return [n[:-5] for n in listdir_quiet(self._dir(state)) if n.endswith(".json") and is_valid_id(n[:-5])]

    # ------------------------------------------------------------------ enqueue

    def enqueue(self, requests: Iterable[dict], *, priority: float = 0,
                client_key: str | None = None) -> Enqueued:
        """Add requests to ``pending``; returns their ids.

        Each request is checked with ``parse_request`` first (``RequestError``,
        nothing written). An id that was ever enqueued is not enqueued again
        (it is returned, not written). With ``client_key`` the ids are derived
        from the key, so the same key gives the same ids and writes nothing new;
        the same key with a different body raises ``StateConflict``. The key is
        claimed before any request is created, so this holds for concurrent
        calls too.
        """
        priority = _check_priority(priority)
        parsed = [parse_request(r) for r in requests]
        key_path = None
        if client_key is not None:
            if not isinstance(client_key, str) or not 0 < len(client_key) <= MAX_CLIENT_KEY:
                raise QueueError(f"client_key must be a string of 1-{MAX_CLIENT_KEY} characters")
            digest = hashlib.sha256(client_key.encode("utf-8")).hexdigest()
            key_path = os.path.join(self._dir("keys"), f"{digest[:32]}.json")
            for index, request in enumerate(parsed):
                origin = request["provenance"]["origin"]
                tag = hashlib.sha256(f"{digest}/{index}".encode("utf-8")).hexdigest()[:12]
                request["id"] = f"{origin}-{tag}"
        ids = [r["id"] for r in parsed]
        if len(set(ids)) != len(ids):
            raise QueueError("the same request id appears more than once in one enqueue")
        self._ensure_dirs()
        if key_path is not None:
            known = self._claim_key(key_path, ids, _body_hash(parsed, priority))
            if known is not None and known != ids:
                return Enqueued(known, [])  # written under another id scheme; its requests are its own
            # A repeat (known == ids) goes on: creating an existing id writes nothing, and the
            # requests of a first call that crashed after claiming the key are completed here.
        base = time.time_ns()
        new = []
        for index, request in enumerate(parsed):
            entry = _new_entry(request, priority, base + index)
            if self._create(request["id"], entry):
                new.append(request["id"])
        return Enqueued(ids, new)

    def _create(self, rid: str, entry: dict) -> bool:
        """Register ``rid`` exclusively (a complete registry file or none), then publish it in ``pending``."""
        if not _create_exclusive(os.path.join(self._dir("ids"), f"{rid}.json"), _json_bytes(entry)):
            return False
        atomic_write_json(self._path(PENDING, rid), entry)
        return True

    def _claim_key(self, path: str, ids: list[str], body: str) -> list[str] | None:
        """Claim a client key for ``ids`` before any request is created.

        Returns None when this call claimed it, or the ids of the earlier
        enqueue with the same body; raises ``StateConflict`` for a different
        body. Of two concurrent calls exactly one creates the key file.
        """
        known = self._read_key(path, KEY_WAIT[:1])
        if known is None:
            if _create_exclusive(path, _json_bytes({"ids": ids, "body": body, "time": time.time()})):
                return None
            known = self._read_key(path, KEY_WAIT)
        if known is None:
            raise StateConflict("client_key has an unreadable record; use a new key")
        if known.get("body") != body:
            raise StateConflict("client_key was already used for a different enqueue; use a new key")
        return [str(rid) for rid in known["ids"]]

    @staticmethod
    def _read_key(path: str, delays: Iterable[float]) -> dict | None:
        """The key record at ``path``; re-read after each delay while it is missing or unreadable.

        A record is published complete (``_create_exclusive``), so waiting only
        covers a file system that shows a new name before its content.
        """
        for delay in delays:
            if delay:
                time.sleep(delay)
            value = read_json_quiet(path)
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
               metrics: dict | None = None, epochs: int | None = None) -> bool:
        """Move an owned request to ``done``, ``failed`` or ``cancelled``.

        ``reason`` says why (the error of a failure, "cancelled after epoch 3",
        "early stopping ..."). ``epochs``: the epochs the run set out to train when
        they differ from the request's (a child that started from its parent's
        weights trains ``training.epochs_from_parent``). Returns False (and changes
        nothing) when the claim was lost meanwhile.
        """
        if state not in FINISHED:
            raise ValueError(f"finish state must be one of {FINISHED}")

        def update(q: dict) -> str:
            q.update(finished=_now_iso(), epoch=epoch, reason=reason)
            if epochs is not None:
                q["epochs"] = epochs
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
        """Cancel a pending request at once, or a running one between two batches (within ~1 s).

        Returns the state now, always ``cancelled`` or ``running`` (the contract);
        raises ``UnknownRequest`` or ``StateConflict`` (already done or failed).

        The cancel marker is written first, so whoever holds the request next
        honours it: ``claim`` and ``reorder`` move a marked pending request to
        ``cancelled``. A ``reorder`` (or a claim) that holds the file for a
        moment only makes this loop look again; it never answers ``pending``.
        """
        state = self.state_of(rid)
        if state is None and not self.known(rid):
            raise UnknownRequest(f"no queued request {rid[:80]!r}")
        if state == CANCELLED:
            return CANCELLED
        if state in (DONE, FAILED):
            raise StateConflict(f"request {rid} is already {state}; only pending or running requests can be cancelled")
        self._ensure_dirs()
        atomic_write_json(os.path.join(self._dir("cancel"), rid), {"time": time.time()})
        deadline = time.monotonic() + CANCEL_WAIT
        while True:
            private = self._take(PENDING, rid)
            if private is not None:
                try:
                    entry = self._load(private)
                except CorruptEntry as e:
                    self._put(FAILED, rid, self._corrupt_entry(private, str(e)), private)
                    self._clear_markers(rid)
                    raise StateConflict(f"request {rid} had a corrupt file; it was moved to failed") from None
                entry["queue"].update(finished=_now_iso(), reason="cancelled before it started")
                self._put(CANCELLED, rid, entry, private)
                self._clear_markers(rid)
                return CANCELLED
            state = self._state_now(rid)
            if state in (RUNNING, CANCELLED):
                return state
            if state in (DONE, FAILED):
                self._clear_markers(rid)  # the marker came too late; leave nothing behind
                raise StateConflict(f"request {rid} finished ({state}) before the cancel took effect")
            if time.monotonic() > deadline:
                # Someone keeps moving it (a reorder storm): the marker stands, so the next
                # claim or reorder moves it to cancelled; it will never train.
                return CANCELLED
            time.sleep(0.001)  # pending (a reorder put it back) or in the middle of a move: look again

    def _state_now(self, rid: str) -> str | None:
        """The folder ``rid`` is in right now (None while it is being moved), without waiting."""
        for state in QUEUE_STATES:
            if os.path.exists(self._path(state, rid)):
                return state
        return None

    def reorder(self, rid: str, priority: float) -> float:
        """Set the priority of a pending request (higher is claimed first).

        A request with a cancel marker is cancelled instead (``StateConflict``):
        a cancel that raced with this reorder wins.
        """
        priority = _check_priority(priority)
        state = self.state_of(rid)
        if state is None:
            if self.known(rid):
                raise StateConflict(f"request {rid} is being moved by another process; try again")
            raise UnknownRequest(f"no queued request {rid[:80]!r}")
        if state != PENDING:
            raise StateConflict(f"request {rid} is {state}; only pending requests can be reordered")
        private = self._take(PENDING, rid)
        if private is None:
            raise StateConflict(f"request {rid} was claimed or cancelled meanwhile; only pending requests "
                                "can be reordered")
        try:
            entry = self._load(private)
        except CorruptEntry:
            self._give_back(PENDING, rid, private)
            raise StateConflict(f"request {rid} has a corrupt file; a worker will move it to failed") from None
        if self.cancel_requested(rid):
            entry["queue"].update(finished=_now_iso(), reason="cancelled before it started")
            self._put(CANCELLED, rid, entry, private)
            self._clear_markers(rid)
            raise StateConflict(f"request {rid} was cancelled; only pending requests can be reordered")
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
        self._recover_orphans()
        moved.extend(self._recover_lost())
        self.registry.prune(now)
        return moved

    def _staleness(self, rid: str, now: float) -> str | None:
        """Why the claim on ``rid`` is stale, or None while it is alive."""
        path = self._path(RUNNING, rid)
        entry = self._cached(path)
        if entry is None:
            return None
        beat = max(mtime_quiet(path) or 0, mtime_quiet(os.path.join(self._dir("heartbeats"), f"{rid}.json")) or 0)
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
        heartbeat = mtime_quiet(os.path.join(self._dir("heartbeats"), f"{rid}.json")) or 0
        try:
            entry = self._load(private)
        except CorruptEntry:
            return "corrupt"
        q = entry["queue"]
        if q.get("worker_host") == self._host and not pid_alive(q.get("worker_pid")):
            return "gone"
        return "stale" if now - max(heartbeat, mtime_quiet(private) or 0) > self.stale_after else None

    def _recover_orphans(self) -> None:
        """Put back private ``.moving`` files and remove temp files that a crash left behind.

        Ages are measured on the file server's clock only, never on this host's:
        on a shared file system the time stamp in a private name comes from the
        mover's clock, and a host whose clock is behind ours would have its
        in-flight moves "recovered" under it. A rename sets the inode change time
        (ctime) of the renamed file -- Linux local file systems, tmpfs and NFS
        servers all do -- and the file server sets it from its own clock; a probe
        file created in the same folder just now carries that clock's "now". So
        ``probe mtime - max(ctime, mtime)`` is the time since the private rename,
        whatever the clocks of the hosts involved. (The stamp in the name only
        keeps private names unique.)
        """
        for state in QUEUE_STATES + ("ids", "keys", "heartbeats", "cancel"):
            folder = self._dir(state)
            server_now = None
            for name in listdir_quiet(folder):
                moving = state in QUEUE_STATES and name.startswith(".") and name.endswith(".moving")
                temp = name.startswith(".tmp-") and name.endswith(".part")
                if not (moving or temp):
                    continue
                if server_now is None:
                    server_now = _server_now(folder)
                    if server_now is None:
                        break  # cannot write here (read-only?): cannot repair here either
                path = os.path.join(folder, name)
                age = _server_age(path, server_now)
                if age is None or age < (ORPHAN_AGE if moving else TEMP_AGE):
                    continue
                if temp:
                    unlink_quiet(path)
                    continue
                rid, _ = _parse_private(name)
                if rid is None or not is_valid_id(rid) or any(
                        os.path.exists(self._path(s, rid)) for s in QUEUE_STATES):
                    unlink_quiet(path)
                    continue
                try:
                    os.rename(path, self._path(state, rid))
                except FileNotFoundError:
                    pass

    def _recover_lost(self) -> list[tuple[str, str]]:
        """Re-publish registered ids that are in no folder on two sweeps in a row.

        A registry file truncated by a crash (versions before 2 wrote it in
        place, without fsync) cannot give its request back: it is published in
        ``failed`` with the text that survived, and the registry file is
        replaced by that entry.
        """
        registered = set(n[:-5] for n in listdir_quiet(self._dir("ids"))
                         if n.endswith(".json") and not n.startswith("."))
        if not registered:
            return []
        present = set()
        for state in QUEUE_STATES:
            for name in listdir_quiet(self._dir(state)):
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
            registry = os.path.join(self._dir("ids"), f"{rid}.json")
            repair = False
            try:
                entry = self._load(registry)
            except OSError:
                continue
            except CorruptEntry as e:
                entry = self._corrupt_entry(registry, f"its registry file ids/{rid}.json is damaged ({e}); "
                                                      "the request was lost in a crash while it was enqueued")
                repair = True
            if any(os.path.exists(self._path(s, rid)) for s in QUEUE_STATES):
                continue
            target = PENDING if entry.get("request") is not None else FAILED
            atomic_write_json(self._path(target, rid), entry)
            if repair:
                atomic_write_json(registry, entry)
            restored.append((rid, target))
        return restored

    # ------------------------------------------------------------------ workers (see workers_registry)

    def touch_worker(self, worker: str, *, request: str | None = None, kind: str = "local",
                     started: float | None = None) -> None:
        """Write the worker's liveness file ``.remap/workers/<id>.json``."""
        self.registry.touch(worker, request=request, kind=kind, started=started)

    def remove_worker(self, worker: str) -> None:
        self.registry.remove(worker)

    def workers(self) -> list[dict]:
        """Every worker that was seen recently, with ``alive`` (a heartbeat within ``stale_after``)."""
        return self.registry.list()

    def worker_alive(self) -> bool:
        return self.registry.alive()

    # ------------------------------------------------------------------ listing

    def list(self) -> dict:
        """The queue route's answer: every request by state, the workers and liveness."""
        def rows(state: str, ids: Iterable[str]) -> list[dict]:
            entries = ((rid, self._cached(self._path(state, rid))) for rid in ids)
            return [self._row(rid, state, entry) for rid, entry in entries if entry is not None]

        running = sorted(rows(RUNNING, self._names(RUNNING)), key=lambda r: r["_sort"])
        # Finished requests in one list, newest first, so a failed or cancelled one is not
        # buried under every done request of the population.
        finished = sorted((row for state in (DONE, FAILED, CANCELLED) for row in rows(state, self._names(state))),
                          key=lambda r: r["_sort"], reverse=True)
        requests = rows(PENDING, self._pending_order()) + running + finished
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
            beat = read_json_quiet(os.path.join(self._dir("heartbeats"), f"{rid}.json"))
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

    def specs(self, states: Iterable[str] = (PENDING, RUNNING)) -> list[tuple[str, dict]]:
        """(request id, spec) of the requests in ``states`` (for duplicate checks)."""
        specs = []
        for state in states:
            for rid in self._names(state):
                entry = self._cached(self._path(state, rid))
                request = entry.get("request") if isinstance(entry, dict) else None
                if isinstance(request, dict) and isinstance(request.get("spec"), dict):
                    specs.append((rid, request["spec"]))
        return specs

    def counts(self) -> dict[str, int]:
        return {state: len(self._names(state)) for state in QUEUE_STATES}

    def finished(self) -> dict[str, str]:
        """The state of every finished request (done, failed, cancelled), from one listing each."""
        return {rid: state for state in FINISHED for rid in self._names(state)}

    def age(self, state: str, rid: str) -> float | None:
        """Seconds since ``rid``'s entry in ``state`` was written (None if it is not there)."""
        mtime = mtime_quiet(self._path(state, rid))
        return None if mtime is None else max(0.0, time.time() - mtime)

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


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=1) + "\n").encode("utf-8")


# errors of a file system without hard links (some FUSE and SMB mounts)
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}


def _create_exclusive(path: str, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists; False when it exists.

    The data is written to a temp file in the same folder and fsynced, then
    hard-linked to ``path``: ``link`` is atomic and fails when the name exists,
    so ``path`` appears complete or not at all (a crash leaves at most a temp
    file, removed by ``sweep``), and of two creators exactly one wins -- also
    on NFS, where a link whose reply was lost is recognised by the temp file's
    link count.
    """
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)  # mkstemp makes 0600; a logdir may be shared with other users
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return os.stat(tmp).st_nlink == 2  # 2: our link landed and a retried request reported EEXIST
        except OSError as e:
            if e.errno not in _NO_LINKS:
                raise
            return _create_exclusive_without_links(path, data)
        return True
    finally:
        unlink_quiet(tmp)


def _create_exclusive_without_links(path: str, data: bytes) -> bool:
    """``O_EXCL`` create, write and fsync: exclusive, but a crash can leave a partial file."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _server_now(folder: str) -> float | None:
    """The file server's clock now: the mtime of a probe file created in ``folder``; None if it cannot."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".tmp-probe-", suffix=".part", dir=folder)
    except OSError:
        return None
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        unlink_quiet(probe)


def _server_age(path: str, server_now: float) -> float | None:
    """Seconds since ``path`` was last written or renamed, on the file server's clock."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return server_now - max(st.st_ctime, st.st_mtime)


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
