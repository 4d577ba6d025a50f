"""``cancel`` answers only ``cancelled`` or ``running`` (http_api.md), also when it races
with ``reorder`` and with claims, in threads, in processes and over HTTP.

Regression: a cancel that met a reorder holding the request's file answered
``pending`` (the state after the reorder put it back), or ``running`` for a
request nobody had claimed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time

import pytest
from werkzeug.test import Client

from remap_tb.queue import CANCELLED, DONE, PENDING, RUNNING, Queue, StateConflict
from remap_tb.requests import make_request
from remap_tb.search_routes import make_routes

SPEC = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
    {"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "activation", "fn": "relu"}]}
HEADERS = {"X-Requested-With": "remap"}
ROUNDS = 150


def request(rid):
    return make_request(SPEC, training={"epochs": 1}, provenance={"origin": "handcrafted"}, request_id=rid)


def reorder_storm(queue: Queue, ids: list[str], stop: threading.Event | None = None, rounds: int = 0) -> int:
    """Reorder every id over and over; returns how many reorders succeeded."""
    done = 0
    n = 0
    while (stop is None and n < rounds) or (stop is not None and not stop.is_set()):
        n += 1
        for rid in ids:
            try:
                queue.reorder(rid, n % 7)
                done += 1
            except StateConflict:
                pass
    return done


def leftovers(logdir) -> list[str]:
    root = os.path.join(logdir, ".remap", "queue")
    return [os.path.join(d, n) for d, _, names in os.walk(root) for n in names if n.endswith(".moving")]


def test_cancel_racing_reorder_in_threads_always_answers_cancelled(tmp_path):
    queue = Queue(tmp_path)
    answers = []
    for k in range(ROUNDS):
        rid = f"t-{k}"
        queue.enqueue([request(rid)])
        start = threading.Barrier(3)
        result = {}

        def cancel():
            start.wait()
            result["cancel"] = queue.cancel(rid)

        def reorder():
            start.wait()
            reorder_storm(Queue(tmp_path), [rid], rounds=20)

        threads = [threading.Thread(target=cancel), threading.Thread(target=reorder), threading.Thread(target=reorder)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        answers.append(result.get("cancel"))
        # Nobody claims: the only true answer is cancelled, and the request ends cancelled.
        assert result.get("cancel") == CANCELLED, (k, result)
        assert queue.state_of(rid) == CANCELLED, k
    assert set(answers) == {CANCELLED}
    assert leftovers(tmp_path) == []


def test_cancel_racing_reorder_and_a_claiming_worker_answers_cancelled_or_running(tmp_path):
    queue = Queue(tmp_path)
    seen = {CANCELLED: 0, RUNNING: 0}
    for k in range(ROUNDS):
        rid = f"w-{k}"
        queue.enqueue([request(rid)])
        start = threading.Barrier(3)
        result = {}

        def cancel():
            start.wait()
            result["cancel"] = queue.cancel(rid)

        def reorder():
            start.wait()
            reorder_storm(Queue(tmp_path), [rid], rounds=10)

        def claim():
            start.wait()
            result["claim"] = Queue(tmp_path).claim("worker")

        threads = [threading.Thread(target=f) for f in (cancel, reorder, claim)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        answer = result.get("cancel")
        assert answer in (CANCELLED, RUNNING), (k, result)
        seen[answer] += 1
        claim_ = result.get("claim")
        if answer == RUNNING:
            # It was claimed before the marker was seen: its worker stops at the next epoch end.
            assert claim_ is not None and queue.state_of(rid) == RUNNING and queue.cancel_requested(rid)
            assert queue.finish(claim_, CANCELLED, reason="cancelled after epoch 0")
        assert queue.state_of(rid) == CANCELLED, (k, answer)
    assert leftovers(tmp_path) == []
    assert seen[CANCELLED] > 0


def _storm_process(logdir: str, ids: list[str], stop_file: str) -> None:
    queue = Queue(logdir)
    while not os.path.exists(stop_file):
        for rid in ids:
            try:
                queue.reorder(rid, time.time_ns() % 1000)
            except Exception:  # StateConflict once cancelled; UnknownRequest never (ids exist)
                pass


def test_cancel_racing_reorder_in_other_processes(tmp_path):
    logdir = str(tmp_path)
    queue = Queue(logdir)
    ids = [f"p-{k}" for k in range(ROUNDS)]
    queue.enqueue([request(rid) for rid in ids])
    stop_file = os.path.join(logdir, "stop")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_storm_process, args=(logdir, ids, stop_file)) for _ in range(3)]
    for p in procs:
        p.start()
    try:
        time.sleep(1.0)  # let the storms run (spawned interpreters start slowly)
        answers = [queue.cancel(rid) for rid in ids]
    finally:
        open(stop_file, "w").close()
        for p in procs:
            p.join(30)
    assert all(p.exitcode == 0 for p in procs)
    assert answers == [CANCELLED] * len(ids)
    assert queue.counts()[CANCELLED] == len(ids) and queue.counts()[PENDING] == 0
    assert leftovers(logdir) == []


def _app(routes):
    def app(environ, start_response):
        return routes[environ["PATH_INFO"]](environ, start_response)

    return app


def test_cancel_route_racing_reorder_route_answers_only_cancelled_or_running(tmp_path):
    routes = make_routes(str(tmp_path), lambda run: None, lambda: [])
    queue = Queue(tmp_path)
    ids = [f"h-{k}" for k in range(60)]
    queue.enqueue([request(rid) for rid in ids])
    stop = threading.Event()
    bad: list = []

    def reorders():
        client = Client(_app(routes))
        while not stop.is_set():
            for rid in ids:
                r = client.post("/reorder", data=json.dumps({"id": rid, "priority": 3}), headers=HEADERS,
                                content_type="application/json")
                if r.status_code not in (200, 400):
                    bad.append((rid, r.status_code, r.get_data(as_text=True)[:200]))

    storms = [threading.Thread(target=reorders) for _ in range(3)]
    for t in storms:
        t.start()
    client = Client(_app(routes))
    try:
        time.sleep(0.05)
        answers = []
        for rid in ids:
            r = client.post("/cancel", data=json.dumps({"id": rid}), headers=HEADERS, content_type="application/json")
            assert r.status_code == 200, r.get_data(as_text=True)
            answers.append(r.get_json())
    finally:
        stop.set()
        for t in storms:
            t.join(30)
    assert bad == []
    assert [a["state"] for a in answers] == [CANCELLED] * len(ids)
    assert all(queue.state_of(rid) == CANCELLED for rid in ids)


def test_a_reorder_of_a_request_marked_cancelled_cancels_it(tmp_path):
    queue = Queue(tmp_path)
    queue.enqueue([request("m-1")])
    os.makedirs(os.path.join(tmp_path, ".remap", "queue", "cancel"), exist_ok=True)
    open(os.path.join(tmp_path, ".remap", "queue", "cancel", "m-1"), "w").close()  # a cancel mid-way
    with pytest.raises(StateConflict, match="cancelled"):
        queue.reorder("m-1", 5)
    assert queue.state_of("m-1") == CANCELLED and not queue.cancel_requested("m-1")


def test_a_cancel_that_comes_too_late_is_a_conflict_and_leaves_no_marker(tmp_path):
    queue = Queue(tmp_path)
    queue.enqueue([request("late-1")])
    queue.finish(queue.claim("w"), DONE)
    with pytest.raises(StateConflict, match="already done"):
        queue.cancel("late-1")
    assert not queue.cancel_requested("late-1")
