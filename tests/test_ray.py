"""Requests trained as Ray tasks on a local Ray instance (loopback only, temp dir under /tmp)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from remap_tb import metadata
from remap_tb.queue import DONE, Queue
from remap_tb.requests import make_request

ray = pytest.importorskip("ray")

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


@pytest.fixture
def short_tmp():
    path = tempfile.mkdtemp(prefix="r", dir="/tmp")  # Ray's socket paths must stay short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_worker_command_with_ray_local_trains_one_request_end_to_end(tmp_path, short_tmp):
    logdir = str(tmp_path / "runs")
    Queue(logdir).enqueue([request("via-ray", epochs=2)])
    env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": short_tmp}
    out = subprocess.run([sys.executable, "-m", "trainer.cli", "worker", logdir, "--ray", "local", "--once",
                          "--ray-num-cpus", "1"], capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "via-ray: done after 2/2 epoch(s)" in out.stdout
    assert_complete_run(logdir, "via-ray", 2)
    assert not Queue(logdir).workers()


def test_without_a_shared_file_system_the_dispatcher_writes_the_returned_run(tmp_path, short_tmp, monkeypatch):
    from trainer.ray_dispatch import RayDispatcher, RayOptions

    for key, value in RAY_ENV.items():
        monkeypatch.setenv(key, value)
    logdir = str(tmp_path / "runs")
    Queue(logdir).enqueue([request("copied", epochs=1)])
    options = RayOptions(address="local", once=True, shared_fs=False, quiet=True,
                         init_kwargs={"num_cpus": 2, "_temp_dir": short_tmp})
    assert RayDispatcher(logdir, options).run() == 0
    assert not ray.is_initialized()  # the dispatcher started Ray, so it shut it down
    assert_complete_run(logdir, "copied", 1)
