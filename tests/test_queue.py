"""The durable queue (remap_tb.queue): states, atomic claims, staleness, recovery. Torch-free."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from remap_tb import queue as queue_module
from remap_tb.queue import (CANCELLED, DONE, FAILED, PENDING, RUNNING, Queue, QueueError, StateConflict,
                            UnknownRequest)
from remap_tb.requests import make_request

SPEC = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
    {"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "activation", "fn": "relu"}]}


def request(rid=None, epochs=0, origin="handcrafted"):
    return make_request(SPEC, training={"epochs": epochs}, provenance={"origin": origin}, request_id=rid)


def files_under(path):
    return sorted(os.path.relpath(os.path.join(d, n), path) for d, _, names in os.walk(path) for n in names)


def test_a_request_goes_pending_running_done(tmp_path):
    queue = Queue(tmp_path)
    ids = queue.enqueue([request("a-1", epochs=3)]).ids
    assert ids == ["a-1"] and queue.state_of("a-1") == PENDING
    claim = queue.claim("w1")
    assert claim.id == "a-1" and claim.attempt == 1 and claim.epochs == 3
    assert queue.state_of("a-1") == RUNNING and queue.claim("w2") is None
    queue.heartbeat("a-1", "w1", 1, 2, 3)
    [row] = queue.list()["requests"]
    assert (row["state"], row["epoch"], row["epochs"], row["worker"], row["attempts"]) == ("running", 2, 3, "w1", 1)
    assert queue.finish(claim, DONE, epoch=3, metrics={"val_accuracy": 0.5})
    [row] = queue.list()["requests"]
    assert (row["state"], row["epoch"], row["error"], row["params"]) == ("done", 3, None, 1490)
    assert set(row) == {"id", "state", "origin", "parent", "changes", "epoch", "epochs", "attempts", "priority",
                        "error", "params", "enqueued", "worker"}
    assert not os.listdir(tmp_path / ".remap" / "queue" / "heartbeats")


def test_finished_requests_are_listed_newest_first_whatever_their_state(tmp_path):
    queue = Queue(tmp_path)
    queue.enqueue([request("a"), request("b"), request("c"), request("d")])
    queue.finish(queue.claim("w"), DONE)
    queue.cancel("c")  # cancelled after a finished: it must not sink below the done ones
    queue.finish(queue.claim("w"), DONE)
    states = [(row["id"], row["state"]) for row in queue.list()["requests"]]
    assert states == [("d", PENDING), ("b", DONE), ("c", CANCELLED), ("a", DONE)]


def test_claims_follow_priority_then_enqueue_order_and_reorder_changes_it(tmp_path):
    queue = Queue(tmp_path)
    queue.enqueue([request("r-1"), request("r-2"), request("r-3")])
    queue.enqueue([request("r-4")], priority=5)
    assert queue.reorder("r-3", 10) == 10
    assert [r["id"] for r in queue.list()["requests"]] == ["r-3", "r-4", "r-1", "r-2"]
    assert [queue.claim("w").id for _ in range(4)] == ["r-3", "r-4", "r-1", "r-2"]
    with pytest.raises(StateConflict):
        queue.reorder("r-1", 1)  # running
    with pytest.raises(UnknownRequest):
        queue.reorder("nope", 1)
    with pytest.raises(QueueError):
        queue.reorder("r-1", float("inf"))


def test_two_processes_racing_to_claim_never_share_a_request(tmp_path):
    queue = Queue(tmp_path)
    queue.enqueue([request(f"c-{i}") for i in range(200)])
    claimed: list[list[str]] = [[] for _ in range(4)]

    def grab(slot):
        mine = Queue(tmp_path)  # a separate instance, as another worker would have
        while (claim := mine.claim(f"w{slot}")) is not None:
            claimed[slot].append(claim.id)

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [rid for ids in claimed for rid in ids]
    assert sorted(everything) == sorted(f"c-{i}" for i in range(200))
    assert queue.counts() == {PENDING: 0, RUNNING: 200, DONE: 0, FAILED: 0, CANCELLED: 0}


def test_eight_threads_enqueue_fifty_each_none_lost_or_duplicated(tmp_path):
    errors = []

    def enqueue(slot):
        try:
            queue = Queue(tmp_path)
            for i in range(50):
                queue.enqueue([request()])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=enqueue, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    queue = Queue(tmp_path)
    rows = queue.list()["requests"]
    assert len(rows) == 400 and len({r["id"] for r in rows}) == 400
    assert len(os.listdir(tmp_path / ".remap" / "queue" / "ids")) == 400


def test_the_same_client_key_gives_the_same_ids_and_writes_nothing(tmp_path):
    queue = Queue(tmp_path)
    first = queue.enqueue([request(), request()], client_key="click-1")
    before = {p: os.stat(tmp_path / p).st_mtime_ns for p in files_under(tmp_path)}
    again = queue.enqueue([request(), request()], client_key="click-1")
    assert again.ids == first.ids and again.new == []
    assert {p: os.stat(tmp_path / p).st_mtime_ns for p in files_under(tmp_path)} == before
    with pytest.raises(StateConflict):
        queue.enqueue([request(epochs=5)], client_key="click-1")
    assert queue.enqueue([request()], client_key="click-2").ids != first.ids
    assert len(queue.list()["requests"]) == 3


def test_concurrent_enqueues_with_one_client_key_enqueue_one_body_once(tmp_path):
    """Threads race with the same key: one body wins, its twins get its ids, the other body a conflict."""
    for round_ in range(15):
        key = f"race-{round_}"
        start = threading.Barrier(6)
        results, conflicts, errors = [], [], []

        def enqueue(slot):
            body = [request(), request()] if slot % 2 else [request(epochs=5)]
            start.wait()
            try:
                results.append((slot % 2, Queue(tmp_path).enqueue(body, client_key=key).ids))
            except StateConflict:
                conflicts.append(slot % 2)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=enqueue, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len({kind for kind, _ in results}) == 1, f"round {round_}: both bodies were enqueued"
        winner = results[0][0]
        assert len(results) == 3 and conflicts == [1 - winner] * 3
        assert len({tuple(ids) for _, ids in results}) == 1
    queue = Queue(tmp_path)
    rows = queue.list()["requests"]
    assert len(rows) == len({r["id"] for r in rows}) == len(os.listdir(tmp_path / ".remap" / "queue" / "ids"))
    assert not [p for p in files_under(tmp_path) if ".tmp-" in p]


def test_a_repeat_of_a_client_key_completes_the_requests_of_a_crashed_first_call(tmp_path, monkeypatch):
    queue = Queue(tmp_path)
    real = Queue._create

    def crash(self, rid, entry):
        raise OSError("crash")

    monkeypatch.setattr(Queue, "_create", crash)
    with pytest.raises(OSError):
        queue.enqueue([request(), request()], client_key="k")  # the key is claimed, no request created
    monkeypatch.setattr(Queue, "_create", real)
    result = queue.enqueue([request(), request()], client_key="k")
    assert result.new == result.ids and [queue.state_of(rid) for rid in result.ids] == [PENDING, PENDING]


def test_a_write_cut_short_leaves_no_partial_registry_file(tmp_path):
    """A registry file is complete or absent: here a disk-full error (a file size limit) hits its write."""
    body = json.dumps(request("cut", epochs=1))
    script = (
        "import json, resource, signal, sys\n"
        "from remap_tb.queue import Queue\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
        "try:\n"
        f"    Queue({str(tmp_path)!r}).enqueue([json.loads({body!r})])\n"
        "except OSError as e:\n"
        "    print('write failed:', e)\n"
        "    sys.exit(0)\n"
        "sys.exit(3)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    ids = tmp_path / ".remap" / "queue" / "ids"
    for name in os.listdir(ids):
        json.loads((ids / name).read_text())  # no truncated registry file
    queue = Queue(tmp_path)
    assert queue.enqueue([request("cut", epochs=1)]).new == ["cut"]  # the id was not burned
    assert queue.state_of("cut") == PENDING


def test_sweep_repairs_a_truncated_registry_file_of_an_older_version(tmp_path):
    queue = Queue(tmp_path)
    queue.enqueue([request("fine")])
    ids = tmp_path / ".remap" / "queue" / "ids"
    (ids / "t-1.json").write_text('{"version": 1, "requ')  # created, then a crash mid-write; never published
    assert queue.sweep() == []
    assert queue.sweep() == [("t-1", FAILED)]
    row = next(r for r in queue.list()["requests"] if r["id"] == "t-1")
    assert row["state"] == FAILED and "registry file ids/t-1.json is damaged" in row["error"]
    assert json.loads((ids / "t-1.json").read_text())["request"] is None  # repaired
    assert queue.sweep() == [] and queue.sweep() == [] and queue.state_of("fine") == PENDING


def test_a_known_id_is_never_enqueued_twice(tmp_path):
    queue = Queue(tmp_path)
    assert queue.enqueue([request("same")]).new == ["same"]
    claim = queue.claim("w")
    queue.finish(claim, DONE)
    result = queue.enqueue([request("same")])
    assert result.ids == ["same"] and result.new == [] and queue.state_of("same") == DONE


def test_cancel_pending_at_once_and_running_through_a_marker(tmp_path):
    queue = Queue(tmp_path)
    queue.enqueue([request("p-1"), request("p-2")])
    assert queue.cancel("p-1") == CANCELLED and queue.cancel("p-1") == CANCELLED
    claim = queue.claim("w")
    assert claim.id == "p-2"
    assert queue.cancel("p-2") == RUNNING and queue.cancel_requested("p-2")
    assert queue.finish(claim, CANCELLED, epoch=1, reason="cancelled after epoch 1 of 3")
    assert not queue.cancel_requested("p-2")
    rows = {r["id"]: r for r in queue.list()["requests"]}
    assert rows["p-1"]["error"] == "cancelled before it started"
    assert rows["p-2"]["state"] == CANCELLED
    with pytest.raises(UnknownRequest):
        queue.cancel("nope")
    queue.enqueue([request("d-1")])
    queue.finish(queue.claim("w"), DONE)
    with pytest.raises(StateConflict):
        queue.cancel("d-1")


def test_a_cancel_that_meets_a_requeued_request_cancels_it_at_claim(tmp_path):
    queue = Queue(tmp_path)
    queue.enqueue([request("x-1")])
    claim = queue.claim("w")
    queue.cancel("x-1")
    assert queue.release(claim, "worker stopping")
    assert queue.claim("w2") is None and queue.state_of("x-1") == CANCELLED


def test_a_stale_claim_is_requeued_and_fails_after_max_attempts(tmp_path):
    queue = Queue(tmp_path, stale_after=0.2, max_attempts=2)
    queue.enqueue([request("s-1")])
    _disown(queue, queue.claim("w1"))
    assert queue.sweep() == []  # still fresh
    time.sleep(0.3)
    assert queue.sweep() == [("s-1", PENDING)]
    state, entry = queue.get("s-1")
    assert entry["queue"]["failures"] == 1 and "stopped heartbeating" in entry["queue"]["last_error"]
    claim = queue.claim("w2")
    assert claim.attempt == 2
    _disown(queue, claim)
    time.sleep(0.3)
    assert queue.sweep() == [("s-1", FAILED)]
    [row] = queue.list()["requests"]
    assert row["state"] == FAILED and "gave up after 2" in row["error"] and "heartbeating" in row["error"]


def test_a_claim_whose_local_process_is_gone_is_requeued_at_once(tmp_path):
    queue = Queue(tmp_path, stale_after=3600)
    queue.enqueue([request("k-1")])
    queue.claim("w1")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _set_running_field(tmp_path, "k-1", worker_pid=dead.pid)
    assert queue.sweep() == [("k-1", PENDING)]
    assert "is gone" in queue.get("k-1")[1]["queue"]["last_error"]


def test_a_lost_claim_cannot_be_finished_by_its_old_owner(tmp_path):
    queue = Queue(tmp_path, stale_after=0.1)
    queue.enqueue([request("l-1")])
    old = queue.claim("w1")
    _disown(queue, old)
    time.sleep(0.2)
    queue.sweep()
    new = queue.claim("w2")
    assert not queue.owns(old) and queue.owns(new)
    assert not queue.finish(old, DONE)
    assert queue.finish(new, DONE) and queue.state_of("l-1") == DONE


def test_release_keeps_attempts_and_the_next_claim_is_the_next_attempt(tmp_path):
    queue = Queue(tmp_path)
    queue.enqueue([request("r-1")])
    assert queue.release(queue.claim("w1"), "worker stopped")
    entry = queue.get("r-1")[1]
    assert entry["queue"]["attempts"] == 1 and entry["queue"]["failures"] == 0
    assert queue.claim("w2").attempt == 2


def test_errors_retry_until_max_attempts_unless_permanent(tmp_path):
    queue = Queue(tmp_path, max_attempts=2)
    queue.enqueue([request("e-1"), request("e-2")])
    assert queue.retry_or_fail(queue.claim("w"), "RuntimeError: out of memory") == PENDING
    retried = queue.claim("w")  # a retried request keeps its place in the queue
    assert retried.id == "e-1" and retried.attempt == 2
    assert queue.retry_or_fail(retried, "RuntimeError: out of memory") == FAILED
    assert queue.retry_or_fail(queue.claim("w"), "RequestError: bad spec", permanent=True) == FAILED
    rows = {r["id"]: r for r in queue.list()["requests"]}
    assert rows["e-2"]["error"] == "RequestError: bad spec"
    assert rows["e-1"]["error"].startswith("gave up after 2 failed attempt(s)")


def test_a_corrupt_request_file_goes_to_failed_with_a_reason(tmp_path):
    queue = Queue(tmp_path)
    queue.enqueue([request("good")])
    pending = tmp_path / ".remap" / "queue" / "pending"
    (pending / "broken.json").write_text("{not json")
    (pending / "wrong-shape.json").write_text("[1, 2]")
    (pending / "bad name!.json").write_text("{}")  # not a request id: ignored (the queue never writes one)
    claim = queue.claim("w")
    assert claim.id == "good"
    rows = {r["id"]: r for r in queue.list()["requests"] if r["state"] == FAILED}
    assert "not valid JSON" in rows["broken"]["error"] and "not a queue entry" in rows["wrong-shape"]["error"]
    assert set(rows) == {"broken", "wrong-shape"} and queue.claim("w") is None
    failed = json.loads((tmp_path / ".remap" / "queue" / "failed" / "broken.json").read_text())
    assert failed["raw"] == "{not json"


def test_sweep_puts_back_an_orphaned_move_aged_on_the_file_servers_clock(tmp_path, monkeypatch):
    queue = Queue(tmp_path)
    queue.enqueue([request("o-1")])
    pending = tmp_path / ".remap" / "queue" / "pending"
    # A move in flight on a host whose clock is two minutes behind: its name's stamp looks old here.
    stamp = time.time_ns() - 120 * 10**9
    os.rename(pending / "o-1.json", pending / f".o-1.json.{stamp}-skew.moving")
    assert queue.state_of("o-1") is None
    queue.sweep()
    assert queue.state_of("o-1") is None, "another host's move in flight was taken back"
    monkeypatch.setattr(queue_module, "ORPHAN_AGE", 0.3)
    time.sleep(0.4)  # now it was renamed longer ago than ORPHAN_AGE (file system time): a crash left it
    queue.sweep()
    assert queue.state_of("o-1") == PENDING and queue.claim("w").id == "o-1"
    assert not [p for p in files_under(tmp_path) if ".tmp-" in p or ".moving" in p]


def test_sweep_restores_a_registered_request_lost_before_it_was_published(tmp_path):
    queue = Queue(tmp_path)
    queue.enqueue([request("z-1")])
    os.unlink(tmp_path / ".remap" / "queue" / "pending" / "z-1.json")  # the crash window of enqueue
    assert queue.sweep() == []  # missing once: maybe just moving
    assert queue.sweep() == [("z-1", PENDING)]
    assert queue.claim("w").id == "z-1"


def test_workers_are_alive_while_their_heartbeat_is_fresh(tmp_path):
    queue = Queue(tmp_path, stale_after=0.3)
    assert queue.list()["worker_alive"] is False
    queue.touch_worker("w-1")
    listing = queue.list()
    assert listing["worker_alive"] is True
    assert listing["workers"][0]["pid"] == os.getpid() and set(listing["workers"][0]) == {
        "id", "host", "pid", "last_seen", "alive"}
    time.sleep(0.4)
    assert queue.worker_alive() is False
    queue.remove_worker("w-1")
    assert queue.list()["workers"] == []


def test_invalid_requests_and_keys_are_refused_before_anything_is_written(tmp_path):
    queue = Queue(tmp_path)
    bad = request("ok")
    bad["spec"] = {"schema": 1}
    with pytest.raises(ValueError):
        queue.enqueue([request("fine"), bad])
    with pytest.raises(QueueError):
        queue.enqueue([request("dup"), request("dup")])
    with pytest.raises(QueueError):
        queue.enqueue([request()], client_key="")
    assert files_under(tmp_path) == []


def _disown(queue: Queue, claim) -> None:
    """Make a claim look like it belongs to a worker on another host (so only time makes it stale)."""
    _set_running_field(queue.logdir, claim.id, worker_host="elsewhere:0")
    hb = os.path.join(queue.root, "heartbeats", f"{claim.id}.json")
    if os.path.exists(hb):
        os.unlink(hb)


def _set_running_field(logdir, rid, **fields):
    path = os.path.join(logdir, ".remap", "queue", "running", f"{rid}.json")
    with open(path, encoding="utf-8") as handle:
        entry = json.load(handle)
    entry["queue"].update(fields)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(entry, handle)
