"""No request can take the machine (issue 12, section 2), and a worker that lost its claim writes nothing.

The training-memory estimate against torch's measured peak; the limits at validate,
generate, enqueue and in the worker; cancel within 2 s in the middle of a long
epoch; the wall-clock limit; a worker running out of its memory limit; a frozen
and resumed worker that lost its claim.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from werkzeug.test import Client

from remap_tb import metadata, views
from remap_tb.queue import CANCELLED, DONE, FAILED, PENDING, RUNNING, Queue
from remap_tb.requests import make_request
from remap_tb.run_limits import RunLimits, default_max_memory, machine_memory, parse_bytes
from remap_tb.search_routes import generate_impl, make_routes
from remap_tb.spec.memory import training_memory
from remap_tb.spec.sampler import sample_specs

from tests.test_search_routes import HEADERS, _app
from tests.test_worker import ROOT, remap_records, start_worker, wait_for

DIGITS = {"name": "digits"}
INPUT = {"shape": [1, 8, 8], "num_classes": 10}
# ~20 s per epoch of digits at batch size 2 on one thread: an epoch long enough to cancel in the middle of.
SLOW = {"schema": 1, "input": INPUT, "layers": [
    {"type": "conv2d", "filters": 128, "kernel_size": 3, "padding": "same"}, {"type": "activation", "fn": "relu"},
    {"type": "conv2d", "filters": 128, "kernel_size": 3, "padding": "same"}, {"type": "activation", "fn": "relu"}]}
LINEAR = {"schema": 1, "input": INPUT, "layers": []}


def request(rid, spec=LINEAR, epochs=1, batch_size=64, optimizer="adam"):
    return make_request(spec, dataset=DIGITS, training={"epochs": epochs, "batch_size": batch_size,
                                                        "optimizer": optimizer},
                        provenance={"origin": "handcrafted"}, request_id=rid)


def entry(queue, rid):
    return queue.get(rid)[1]["queue"]


def status_records(run_dir):
    return [r for tag, r in remap_records(run_dir) if tag == metadata.STATUS_TAG]


# ---------------------------------------------------------------------- the estimate

def test_the_estimate_follows_its_formula_on_a_chain_and_a_residual_block():
    chain = {"schema": 1, "input": {"shape": [1, 4, 4], "num_classes": 3}, "layers": [
        {"type": "conv2d", "filters": 2, "kernel_size": 1},   # 2x4x4, freed: relu keeps its output, not its input
        {"type": "activation", "fn": "relu"},                 # 2x4x4, kept by itself (and by the pool)
        {"type": "maxpool2d", "pool_size": 2},                # 2x2x2, freed (dropout keeps its mask) + int64 indices
        {"type": "dropout", "rate": 0.5}]}                    # 2x2x2, kept by the classifier + its float mask
    m = training_memory(chain, batch_size=10, optimizer="sgd")
    a = [4 * 10 * n for n in (32, 32, 8, 8)]
    assert [layer.activation_bytes for layer in m.layers] == a
    assert [layer.saved_bytes for layer in m.layers] == [0, a[1], 2 * a[2], 2 * a[3]]
    logits = 4 * 10 * 3
    assert m.saved_bytes == a[1] + 2 * a[2] + 2 * a[3] + 2 * logits
    assert m.params == (1 * 2 + 2) + (8 * 3 + 3)
    assert m.param_bytes == 4 * m.params * 3  # weights, gradients, momentum
    assert m.input_bytes == 4 * 10 * 16 + 16 * 10
    assert m.gradient_bytes == max(a[0] + 4 * 10 * 16, a[1] + a[0], a[2] + a[1], a[3] + a[2], logits + a[3])
    assert m.total_bytes == m.param_bytes + m.input_bytes + m.saved_bytes + m.gradient_bytes
    assert sum(layer.total_bytes for layer in m.layers) + m.classifier_bytes + m.input_bytes + m.gradient_bytes \
        == m.total_bytes

    block = {"schema": 2, "input": {"shape": [2, 4, 4], "num_classes": 3}, "layers": [
        {"type": "conv2d", "filters": 2, "kernel_size": 1},          # 0: read by 1 and by the add
        {"type": "activation", "fn": "relu"},                        # 1
        {"type": "add", "inputs": [0, 1]},                           # 2: a skip connection
        {"type": "activation", "fn": "tanh"}]}                       # 3
    m = training_memory(block, batch_size=1, optimizer="adam")
    a = 4 * 32
    assert [layer.saved_bytes for layer in m.layers] == [0, a, 0, a]  # relu and tanh keep their outputs
    assert m.gradient_bytes == 3 * a + a  # add: its gradient and its two inputs'; + the skip's waiting gradient
    assert m.param_bytes == 4 * ((2 * 2 + 2) + (32 * 3 + 3)) * 4  # adam: weights, gradients, 2 states


def _probe_items():
    """20 random specs (10 chains, 10 residual networks) big enough to measure (4-96 MiB estimated)."""
    items, batch_sizes, optimizers = [], (32, 64, 128), ("adam", "sgd", "rmsprop", "adamw")
    for blocks, seed in (("chain", 3), ("residual", 4)):
        picked = []
        for spec in sample_specs(60, [3, 16, 16], 10, seed=seed, blocks=blocks).specs:
            n = len(items) + len(picked)
            batch, optimizer = batch_sizes[n % 3], optimizers[n % 4]
            if 4 * 2**20 <= training_memory(spec, batch, optimizer).total_bytes <= 96 * 2**20:
                picked.append({"spec": spec, "batch_size": batch, "optimizer": optimizer})
            if len(picked) == 10:
                break
        items += picked
    assert len(items) == 20
    return items


def _measure(items):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-m", "tests.memory_probe"], input=json.dumps(items), env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_the_estimate_is_within_a_factor_2_of_torchs_measured_peak_on_20_random_specs():
    items = _probe_items()
    halves = [items[0::2], items[1::2]]  # two processes: one per core
    with ThreadPoolExecutor(2) as pool:
        measured_halves = list(pool.map(_measure, halves))
    rows = []
    for half, measured in zip(halves, measured_halves):
        for item, peak in zip(half, measured):
            estimate = training_memory(item["spec"], item["batch_size"], item["optimizer"]).total_bytes
            rows.append((item["spec"]["schema"], len(item["spec"]["layers"]), item["batch_size"], item["optimizer"],
                         estimate, peak, estimate / peak))
    table = "\n".join(f"schema {s} {d:3d} layers  B={b:3d} {o:8s} estimate {e / 2**20:7.1f} MiB  measured "
                      f"{p / 2**20:7.1f} MiB  ratio {r:.2f}" for s, d, b, o, e, p, r in rows)
    print(table)
    assert all(0.5 <= r <= 2.0 for *_, r in rows), table


# ---------------------------------------------------------------------- flags and options

def test_sizes_parse_with_binary_suffixes_and_the_default_is_a_quarter_of_the_machine():
    assert parse_bytes("4G") == 4 * 2**30 and parse_bytes("512M") == 512 * 2**20 and parse_bytes("1.5GiB") == 3 * 2**29
    assert parse_bytes("1000") == 1000 and parse_bytes(2048) == 2048
    for bad in ("", "4X", "-1G", "0", "lots", True):
        with pytest.raises(ValueError):
            parse_bytes(bad)
    assert default_max_memory() == machine_memory() // 4
    assert RunLimits.defaults() == RunLimits(machine_memory() // 4, 500, 6 * 3600.0)


def test_tensorboard_flags_give_the_limits_and_reject_bad_values():
    import argparse

    from tensorboard.plugins import base_plugin

    from remap_tb.loader import RemapLoader

    parser = argparse.ArgumentParser()
    RemapLoader().define_flags(parser)
    flags = parser.parse_args(["--remap_max_memory", "2G", "--remap_max_epochs", "20",
                               "--remap_max_run_seconds", "60"])
    RemapLoader().fix_flags(flags)
    assert RunLimits.from_flags(flags) == RunLimits(2 * 2**30, 20, 60.0)
    assert RunLimits.from_flags(parser.parse_args([])) == RunLimits.defaults()
    for bad in (["--remap_max_memory", "4X"], ["--remap_max_epochs", "0"], ["--remap_max_run_seconds", "-1"]):
        with pytest.raises(base_plugin.FlagsError):
            RemapLoader().fix_flags(parser.parse_args(bad))


# ---------------------------------------------------------------------- validate, schema, generate, enqueue

def test_validate_shows_the_estimate_per_layer_and_in_total_and_an_error_over_the_limit():
    spec = {"schema": 1, "input": INPUT, "layers": [{"type": "conv2d", "filters": 8, "kernel_size": 3},
                                                     {"type": "activation", "fn": "relu"}]}
    body = views.validate_impl({"spec": spec, "training": {"batch_size": 32, "optimizer": "sgd"}}, None, 10**9)
    expected = training_memory(spec, 32, "sgd")
    assert body["valid"] and body["memory"] == expected.to_json() and body["max_memory"] == 10**9
    assert [layer["index"] for layer in body["memory"]["layers"]] == [0, 1]
    over = views.validate_impl(spec, None, expected.total_bytes // 2 + 64 * 64)  # default batch 64: twice as big
    assert not over["valid"] and over["memory"]["total_bytes"] > over["max_memory"]
    [error] = over["errors"]
    assert error["field"] == "memory" and "over the memory limit" in error["text"] and "--remap_max_memory" in error["text"]
    schema = views.schema_impl(1000, RunLimits(4 * 2**30, 20, 60.0))
    assert schema["limits"] == {"max_params": 1000, "max_memory": 4 * 2**30, "max_epochs": 20, "max_run_seconds": 60.0}


def _record(spec, training=None):
    return {"id": "parent", "spec": spec, "dataset": {**DIGITS}, "training": training or {"batch_size": 64},
            "fingerprint": {"id": "0123456789abcdef", "input_shape": spec["input"]["shape"],
                            "classes": [str(k) for k in range(spec["input"]["num_classes"])]}}


def test_generate_marks_candidates_over_the_memory_limit_with_the_reason(tmp_path):
    small = {"schema": 1, "input": INPUT, "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}]}
    big = {"schema": 1, "input": INPUT, "layers": [{"type": "conv2d", "filters": 4096, "kernel_size": 3,
                                                    "padding": "same"}]}
    record = _record(small, {"batch_size": 512, "optimizer": "adam"})
    limit = (training_memory(small, 512).total_bytes + training_memory(big, 512).total_bytes) // 2

    def fake_generate(parents, kind, options, constraints, existing, limits):
        return {"candidates": [{"parent": "parent", "spec": s, "valid": True, "reason": None} for s in (small, big)],
                "made": 2, "wanted": 2, "summary": "made 2 of 2"}

    body = generate_impl({"parents": ["parent"], "kind": "variation"}, {"parent": record}.get, lambda: [record],
                         Queue(tmp_path), fake_generate, run_limits=RunLimits(limit))
    fine, over = body["candidates"]
    assert fine["valid"] and fine["reason"] is None
    assert not over["valid"] and "batch size 512" in over["reason"] and "over the memory limit" in over["reason"]
    assert body["made"] == 1 and "1 over the memory limit" in body["summary"]
    assert not os.listdir(tmp_path)


def test_a_12_gb_model_is_refused_at_enqueue_with_the_reason_and_nothing_is_written(tmp_path):
    conv = {"type": "conv2d", "filters": 64, "kernel_size": 3, "padding": "same"}
    relu = {"type": "activation", "fn": "relu"}
    huge = {"schema": 1, "input": {"shape": [3, 256, 256], "num_classes": 10},
            "layers": [conv, relu] * 8 + [{"type": "maxpool2d", "pool_size": 2}, {"type": "globalavgpool"}]}
    assert 11e9 < training_memory(huge, 64).total_bytes < 13e9  # at the default batch size 64, with adam
    record = _record(huge)
    logdir = tmp_path / "logdir"
    logdir.mkdir()
    routes = make_routes(str(logdir), {"parent": record}.get, lambda: [record], run_limits=RunLimits(8 * 2**30, 500))
    client = Client(_app(routes))
    response = client.post("/enqueue", json={"items": [{"spec": huge, "parent": "parent", "origin": "handcrafted"}]},
                           headers=HEADERS)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error.startswith("items[0]: training needs about 10.8 GiB (batch size 64, adam") and "8.0 GiB" in error
    response = client.post("/enqueue", json={"items": [{"spec": huge, "parent": "parent", "origin": "handcrafted"}],
                                             "epochs": 501}, headers=HEADERS)
    assert response.status_code == 400 and "; 501 epochs is over the limit of 500" in response.get_json()["error"]
    assert [os.path.join(d, n) for d, _, names in os.walk(logdir) for n in names] == []


# ---------------------------------------------------------------------- workers

def test_the_worker_refuses_requests_over_its_limits_and_stops_a_run_past_the_wall_clock_limit(tmp_path):
    queue = Queue(tmp_path)
    big = {"schema": 1, "input": INPUT, "layers": [{"type": "conv2d", "filters": 512, "kernel_size": 3,
                                                    "padding": "same"}]}
    queue.enqueue([request("too-long", epochs=6), request("too-big", big, batch_size=1024),
                   request("slow", SLOW, epochs=5, batch_size=2), request("fine")])
    worker = start_worker(tmp_path, "--once", "--max-epochs", "5", "--max-memory", "64M", "--max-run-seconds", "3")
    started = time.monotonic()
    assert worker.wait(timeout=120) == 0
    assert time.monotonic() - started < 60
    for rid, words in (("too-long", "6 epochs is over the limit of 5 epochs per request"),
                       ("too-big", "over the memory limit of 64.0 MiB")):
        q = entry(queue, rid)
        assert queue.state_of(rid) == FAILED and q["attempts"] == 1 and words in q["reason"]
        assert not (tmp_path / rid).exists()  # refused before training: nothing written
    q = entry(queue, "slow")
    assert queue.state_of("slow") == FAILED and q["attempts"] == 1
    # stopped inside an epoch before the last (which epoch depends on the machine's speed)
    assert re.match(r"stopped in epoch [1-4] of 5: over the wall-clock limit of 3 s per request", q["reason"]), q["reason"]
    final = status_records(tmp_path / "slow")[-1]
    assert final["state"] == metadata.FAILED and final["reason"] == q["reason"]
    assert not (tmp_path / "slow" / metadata.WEIGHTS_FILE).exists()
    assert queue.state_of("fine") == DONE


def test_a_running_request_is_cancelled_in_the_middle_of_a_long_epoch_within_2_s(tmp_path):
    queue = Queue(tmp_path)
    queue.enqueue([request("long", SLOW, epochs=3, batch_size=2)])
    worker = start_worker(tmp_path)
    try:
        run = tmp_path / "long"
        wait_for(lambda: run.is_dir() and any("tfevents" in n for n in os.listdir(run)), what="training to start")
        time.sleep(1.0)  # well inside epoch 1 (about 20 s long)
        asked = time.monotonic()
        assert queue.cancel("long") == RUNNING
        wait_for(lambda: queue.state_of("long") == CANCELLED, timeout=10, what="the cancel")
        took = time.monotonic() - asked
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert took < 2.0, f"the cancel took {took:.2f} s"
    reason = entry(queue, "long")["reason"]
    assert reason == "cancelled after epoch 0 of 3 (stopped during epoch 1)"
    final = status_records(run)[-1]
    assert final["state"] == metadata.CANCELLED and final["epoch"] == 0 and final["reason"] == reason


OOM_WORKER = """
import sys
import remap_tb.run_limits as run_limits
from remap_tb.spec.memory import MemoryEstimate

# An estimate that is far too low, so the request passes the check and runs out for real.
run_limits.request_memory = lambda request: MemoryEstimate(1, "adam", 0, (), 0, 0, 0, 0, 0)
from trainer.worker import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_model_that_runs_out_of_the_workers_memory_limit_fails_permanently_and_the_worker_goes_on(tmp_path):
    wide = {"schema": 1, "input": INPUT, "layers": [
        {"type": "conv2d", "filters": 512, "kernel_size": 3, "padding": "same"}, {"type": "activation", "fn": "relu"},
        {"type": "conv2d", "filters": 512, "kernel_size": 3, "padding": "same"}, {"type": "activation", "fn": "relu"}]}
    # over twice the limit the worker sets: 64 MiB + trainer.limits.SLACK (128 MiB) above its baseline
    assert training_memory(wide, 1024).total_bytes > 2 * 192 * 2**20
    queue = Queue(tmp_path)
    queue.enqueue([request("wide", wide, batch_size=1024), request("after")])
    out = subprocess.run([sys.executable, "-c", OOM_WORKER, str(tmp_path), "--once", "--threads", "1",
                          "--max-memory", "64M"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    q = entry(queue, "wide")
    assert queue.state_of("wide") == FAILED and q["attempts"] == 1 and q["failures"] == 1  # no retry
    assert q["reason"].startswith("OutOfMemory: out of memory: training needed more than this worker's memory "
                                  "limit of 64.0 MiB"), q["reason"]
    final = status_records(tmp_path / "wide")[-1]
    assert final["state"] == metadata.FAILED and final["reason"].startswith("out of memory:")
    assert queue.state_of("after") == DONE  # the same worker process went on


def _files(run_dir):
    return {n: (os.stat(run_dir / n).st_size, os.stat(run_dir / n).st_mtime_ns) for n in os.listdir(run_dir)}


def test_a_worker_frozen_past_stale_after_and_resumed_stops_without_writing(tmp_path):
    queue = Queue(tmp_path, stale_after=2)
    queue.enqueue([request("frozen", epochs=500, batch_size=2)])  # ~0.3 s epochs: a record every 0.3 s
    log = open(tmp_path / "worker.log", "wb")
    worker = start_worker(tmp_path, "--stale-after", "2", log=log)
    alive = threading.Event()

    def heartbeats(claim):  # the new owner stays alive, so the resumed worker's sweep leaves it alone
        while not alive.wait(0.3):
            queue.heartbeat(claim.id, claim.worker, claim.attempt, 0, claim.epochs)

    try:
        run = tmp_path / "frozen"
        wait_for(lambda: run.is_dir() and len(status_records(run)) >= 3, timeout=60, what="two epochs")
        worker.send_signal(signal.SIGSTOP)
        time.sleep(2.5)
        assert ("frozen", PENDING) in queue.sweep()  # its heartbeat went stale
        claim = queue.claim("new-owner")
        assert claim.id == "frozen" and claim.attempt == 2
        threading.Thread(target=heartbeats, args=(claim,), daemon=True).start()
        before = _files(run)
        worker.send_signal(signal.SIGCONT)
        wait_for(lambda: b"claim was lost" in (tmp_path / "worker.log").read_bytes(), timeout=10,
                 what="the worker to notice")
        time.sleep(0.5)
        assert _files(run) == before  # not one byte written after the claim was lost
        assert queue.owns(claim) and entry(queue, "frozen")["worker"] == "new-owner"
        assert worker.poll() is None  # it goes on serving the queue
    finally:
        alive.set()
        worker.send_signal(signal.SIGCONT)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        log.close()


def test_train_checks_ownership_before_every_write_and_stops_at_the_first_refusal(tmp_path):
    from trainer.train import ClaimLost, train

    calls = []

    def may_write():
        calls.append(sorted(os.listdir(tmp_path / "r")) if (tmp_path / "r").exists() else [])
        return len(calls) <= 6  # the run dir, request.json, the event file, model, hparams, running 0/3

    with pytest.raises(ClaimLost):
        train(request("r", epochs=3), str(tmp_path), may_write=may_write)
    after = {n: (tmp_path / "r" / n).stat().st_size for n in os.listdir(tmp_path / "r")}
    time.sleep(0.2)
    assert {n: (tmp_path / "r" / n).stat().st_size for n in os.listdir(tmp_path / "r")} == after
    records = remap_records(tmp_path / "r")
    assert [tag for tag, _ in records] == [metadata.MODEL_TAG, metadata.STATUS_TAG]  # nothing after the refusal
    assert len(calls) == 7 and metadata.WEIGHTS_FILE not in after
