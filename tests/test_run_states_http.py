"""Every state shown is true: the queue's word on runs whose log is unfinished, over HTTP.

A worker killed with -9 never writes a final status, so its run's log says "running"
for ever; the queue fails the request after its attempts (or a user cancels it, or it
waits for a retry). ``models`` and ``model`` must then show the queue's state and
reason, never "running". And a run the queue finished is read at once, not at
TensorBoard's next periodic reload (the Python loader's multiplexer reloads it).

The app is TensorBoard's WSGI app over an ``EventMultiplexer`` that is loaded once
and never reloaded in the background, so anything new the routes show was read
because the queue said so.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from remap_tb import metadata
from remap_tb.queue import CANCELLED, FAILED, PENDING, Queue
from remap_tb.requests import make_request
from remap_tb.spec import analyse, spec_hash
from tests.fixtures_runs import BASE, CHILD, model_record
from tests.test_plugin_http import get


def make_app(logdir: str):
    """TensorBoard's WSGI app with the Python loader, as ``tensorboard --load_fast=false``
    builds it: the plugin's context carries the multiplexer (loaded once, never reloaded here)."""
    import argparse

    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    from tensorboard.plugins import base_plugin
    from werkzeug.test import Client

    from remap_tb.plugin import RemapPlugin

    multiplexer = pem.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    flags = argparse.Namespace(remap_workers=0, remap_max_params=50_000_000,
                               samples_per_plugin={metadata.PLUGIN_NAME: 0})
    plugin = RemapPlugin(base_plugin.TBContext(logdir=logdir, data_provider=provider, flags=flags,
                                               multiplexer=multiplexer))
    return Client(application.TensorBoardWSGI([plugin], data_provider=provider)), plugin, multiplexer


def _request(rid, spec=BASE):
    return make_request(spec, dataset={"name": "digits"}, training={"epochs": 3, "batch_size": 128},
                        provenance={"origin": "handcrafted"}, request_id=rid)


def write_unfinished_run(logdir: str, rid: str, fingerprint: dict, epoch: int = 1, spec=BASE) -> None:
    """A run whose worker died after ``epoch`` epochs: model record and "running" status only."""
    from trainer.summaries import RunWriter

    request = _request(rid, spec)
    with RunWriter(os.path.join(logdir, rid)) as writer:
        writer.record(metadata.MODEL_TAG, metadata.model_record(
            request, 1, [str(i) for i in range(10)], fingerprint, analyse(spec).total_params,
            len(spec["layers"]), spec_hash(spec)), 0)
        writer.record(metadata.STATUS_TAG, metadata.status_record(1, metadata.RUNNING, epoch, 3), epoch)


def fail_after_attempts(queue: Queue, rid: str, error: str) -> None:
    queue.enqueue([_request(rid)])
    for _ in range(queue.max_attempts):
        claim = queue.claim("w")
        assert claim is not None and claim.id == rid
        queue.retry_or_fail(claim, error)
    assert queue.state_of(rid) == FAILED


@pytest.fixture
def states_app(tmp_path, remap_logdir):
    logdir = str(tmp_path / "logdir")
    shutil.copytree(remap_logdir.path, logdir)
    fingerprint = model_record(logdir, "m-base")["fingerprint"]
    queue = Queue(logdir)
    # Killed with -9 three times: the queue gave up.
    write_unfinished_run(logdir, "gave-up", fingerprint, epoch=2)
    fail_after_attempts(queue, "gave-up", "worker w (pid 4242) is gone")
    # Cancelled while its worker was gone: the request was cancelled at its next claim.
    write_unfinished_run(logdir, "cancel-me", fingerprint)
    queue.enqueue([_request("cancel-me")])
    claim = queue.claim("w")
    assert queue.cancel("cancel-me") == "running"
    queue.release(claim, "worker w stopped during epoch 2; the request will be trained again")
    assert queue.claim("w2") is None and queue.state_of("cancel-me") == CANCELLED
    # Lost once, waiting for its second attempt.
    write_unfinished_run(logdir, "again", fingerprint)
    queue.enqueue([_request("again")])
    queue.retry_or_fail(queue.claim("w"), "worker w stopped heartbeating (no sign of life for 61 s)")
    assert queue.state_of("again") == PENDING
    client, plugin, multiplexer = make_app(logdir)
    yield client, logdir, fingerprint["id"], queue
    plugin.close()


def by_run(client, experiment):
    return {m["run"]: m for m in get(client, f"models?experiment={experiment}").json["models"]}


def test_a_request_the_queue_gave_up_on_is_failed_with_the_queues_reason(states_app):
    client, _, experiment, _ = states_app
    status = by_run(client, experiment)["gave-up"]["status"]
    assert status["state"] == "failed", status
    assert status["reason"].startswith("gave up after 3 failed attempt(s)") and "pid 4242" in status["reason"]
    assert status["epoch"] == 2
    detail = get(client, "model?run=gave-up").json
    assert detail["status"] == status


def test_a_request_cancelled_in_the_queue_is_cancelled_never_running(states_app):
    client, _, experiment, _ = states_app
    status = by_run(client, experiment)["cancel-me"]["status"]
    assert status["state"] == "cancelled" and status["reason"] == "cancelled before it started"
    assert get(client, "model?run=cancel-me").json["status"]["state"] == "cancelled"


def test_a_request_waiting_for_a_retry_is_queued_with_the_last_error(states_app):
    client, _, experiment, _ = states_app
    status = by_run(client, experiment)["again"]["status"]
    assert status["state"] == "queued" and "attempt 2" in status["reason"]
    assert "no sign of life" in status["reason"] and status["epoch"] == 0


def test_the_queues_state_wins_over_the_silent_run_note(states_app):
    from unittest import mock

    client, _, experiment, _ = states_app
    with mock.patch("remap_tb.views._clock", return_value=2e10):  # every running run is long silent
        models = by_run(client, experiment)
    assert models["gave-up"]["status"]["state"] == "failed"
    assert "no new record" not in models["gave-up"]["status"]["reason"]
    assert "no new record" in models["half"]["status"]["reason"]  # not in the queue: as before
    assert not any(m["status"]["state"] == "running" for run, m in models.items() if run != "half")


def test_runs_the_queue_does_not_know_keep_their_logged_state(states_app):
    client, _, experiment, _ = states_app
    models = by_run(client, experiment)
    assert models["m-base"]["status"]["state"] == "done"
    assert models["half"]["status"]["state"] == "running"


def test_a_run_the_queue_finished_is_read_at_once_not_at_the_next_reload(states_app):
    """The multiplexer never reloads in the background here: the done record is read
    because the queue moved the request to done (``RemapPlugin._current_snapshot``)."""
    from trainer.train import train

    client, logdir, experiment, queue = states_app
    write_unfinished_run(logdir, "late", model_record(logdir, "m-base")["fingerprint"], spec=CHILD)
    before = by_run(client, experiment)
    assert "late" not in before  # not discovered: TensorBoard has not reloaded since
    queue.enqueue([make_request(CHILD, dataset={"name": "digits"}, training={"epochs": 1, "batch_size": 128},
                                provenance={"origin": "handcrafted"}, request_id="late")], priority=10)
    claim = queue.claim("w")
    assert claim.id == "late"
    shutil.rmtree(os.path.join(logdir, "late"))
    result = train(claim.request, logdir, attempt=claim.attempt)
    assert queue.finish(claim, "done", epoch=result.epoch, metrics=result.metrics)
    started = time.monotonic()
    models = by_run(client, experiment)
    assert "late" in models, (sorted(models), queue.finished(), os.listdir(logdir))
    late = models["late"]
    assert late["status"]["state"] == "done" and late["val_accuracy"] is not None
    assert time.monotonic() - started < 1.0
    assert get(client, "model?run=late").json["status"]["state"] == "done"
