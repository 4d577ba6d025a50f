"""Requests trained as Ray tasks on one local Ray instance shared by the module (loopback, temp dir in /tmp)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest
import ray  # pinned in requirements.txt: a broken install must fail here, not skip

from remap_tb import metadata
from remap_tb.queue import DONE, Queue
from remap_tb.requests import make_request
from trainer.ray_dispatch import RayDispatcher, RayOptions

SPEC = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
    {"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "activation", "fn": "relu"}]}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def request(rid, epochs):
    return make_request(SPEC, dataset={"name": "digits"}, training={"epochs": epochs, "batch_size": 128},
                        provenance={"origin": "handcrafted"}, request_id=rid)


def assert_complete_run(logdir, rid, epochs):
    run_dir = os.path.join(logdir, rid)
    names = os.listdir(run_dir)
    assert sum("tfevents" in n for n in names) == 1
    assert {metadata.WEIGHTS_FILE, metadata.REQUEST_FILE} <= set(names)
    row = next(r for r in Queue(logdir).list()["requests"] if r["id"] == rid)
    assert (row["state"], row["epoch"], row["epochs"], row["attempts"]) == (DONE, epochs, epochs, 1)


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance for the module (starting one takes seconds); yields its address."""
    temp = tempfile.mkdtemp(prefix="r", dir="/tmp")  # Ray's socket paths must stay short
    with pytest.MonkeyPatch.context() as patch:
        for key, value in RAY_ENV.items():
            patch.setenv(key, value)
        patch.setenv("RAY_TMPDIR", temp)
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp)
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def test_worker_command_with_ray_trains_one_request_end_to_end(tmp_path, ray_address):
    logdir = str(tmp_path / "runs")
    Queue(logdir).enqueue([request("via-ray", epochs=2)])
    out = subprocess.run([sys.executable, "-m", "trainer.cli", "worker", logdir, "--ray", ray_address, "--once",
                          "--ray-num-cpus", "1"], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "via-ray: done after 2/2 epoch(s)" in out.stdout
    assert_complete_run(logdir, "via-ray", 2)
    assert not Queue(logdir).workers()


def test_without_a_shared_file_system_the_dispatcher_writes_the_returned_run(tmp_path, ray_address):
    logdir = str(tmp_path / "runs")
    Queue(logdir).enqueue([request("copied", epochs=1)])
    options = RayOptions(address="local", once=True, shared_fs=False, quiet=True)
    assert RayDispatcher(logdir, options).run() == 0
    assert ray.is_initialized()  # the dispatcher did not start this Ray, so it left it running
    assert_complete_run(logdir, "copied", 1)


def test_ray_local_starts_ray_in_process_and_an_address_connects(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # _init_ray sets it by default
    calls = []

    class FakeRay:
        def init(self, **kwargs):
            calls.append(kwargs)

    RayDispatcher(str(tmp_path), RayOptions(address="local", init_kwargs={"num_cpus": 2}))._init_ray(FakeRay())
    RayDispatcher(str(tmp_path), RayOptions(address="10.0.0.1:6379"))._init_ray(FakeRay())
    assert calls == [{"num_cpus": 2, "include_dashboard": False}, {"address": "10.0.0.1:6379"}]


def test_a_ray_task_is_cancelled_in_the_middle_of_a_long_epoch_within_2_s(tmp_path, ray_address):
    import threading
    import time

    from remap_tb.queue import CANCELLED, RUNNING

    slow = {"schema": 1, "input": {"shape": [1, 8, 8], "num_classes": 10}, "layers": [
        {"type": "conv2d", "filters": 128, "kernel_size": 3, "padding": "same"}, {"type": "activation", "fn": "relu"},
        {"type": "conv2d", "filters": 128, "kernel_size": 3, "padding": "same"}, {"type": "activation", "fn": "relu"}]}
    logdir = str(tmp_path / "runs")
    queue = Queue(logdir)
    queue.enqueue([make_request(slow, dataset={"name": "digits"}, training={"epochs": 3, "batch_size": 2},
                                provenance={"origin": "handcrafted"}, request_id="long")])  # ~20 s epochs
    dispatcher = RayDispatcher(logdir, RayOptions(address="local", quiet=True))
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    try:
        run = os.path.join(logdir, "long")
        deadline = time.monotonic() + 120
        while not (os.path.isdir(run) and any("tfevents" in n for n in os.listdir(run))):
            assert time.monotonic() < deadline, "the task did not start training"
            time.sleep(0.05)
        time.sleep(1.0)  # inside epoch 1
        asked = time.monotonic()
        assert queue.cancel("long") == RUNNING
        while queue.state_of("long") != CANCELLED:
            assert time.monotonic() - asked < 10, "the cancel did not arrive"
            time.sleep(0.02)
        took = time.monotonic() - asked
    finally:
        dispatcher.stop()
        thread.join(timeout=60)
    assert took < 2.0, f"the cancel took {took:.2f} s"
    assert queue.get("long")[1]["queue"]["reason"] == "cancelled after epoch 0 of 3 (stopped during epoch 1)"
