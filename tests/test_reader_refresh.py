"""Route cost at scale (issue 13): what a warm request does not redo.

* The reader asks the file system (``reader.LogdirProbe``) before listing every run's
  series through the data provider: once the logdir's event files and the provider's
  answer have stayed the same for the settle time, a request lists nothing; a new run
  (or any event file that grows) is listed and read on the next request; and the
  provider is listed anyway every ``LIST_AT_LEAST_EVERY`` seconds.
* A refresh that parses many runs (a logdir's load) freezes what is alive
  (``gc.freeze``), so later full collections skip it.
* The projection route keeps the encoded body of a finished layout, and a load has the
  models' summaries built in the background (the first `models` does not pay for them).

On the real Python loader (``MultiplexerDataProvider``) over runs the trainer wrote.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import time
from unittest import mock

import pytest
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
from tensorboard.plugins import base_plugin
from werkzeug.test import Client

from remap_tb import metadata, reader, views
from remap_tb.plugin import RemapPlugin
from tests.fixtures_runs import logdir  # noqa: F401  (fixture)

ROOT = "/data/plugin/remap/"


def make_app(logdir: str):
    multiplexer = pem.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    flags = argparse.Namespace(remap_workers=0, remap_max_params=50_000_000, reload_interval=1.0,
                               samples_per_plugin={metadata.PLUGIN_NAME: 0})
    plugin = RemapPlugin(base_plugin.TBContext(logdir=logdir, data_provider=provider, flags=flags))
    return Client(application.TensorBoardWSGI([plugin], data_provider=provider)), plugin, multiplexer


def runs_of(client: Client, experiment: str) -> set[str]:
    response = client.get(ROOT + f"models?experiment={experiment}")
    assert response.status_code == 200, response.data[:300]
    return {m["run"] for m in response.json["models"]}


def on_a_fake_clock(logdir, read_ahead: bool = True):
    """``make_app`` with the reader on a clock the test moves (``now[0]``); ``read_ahead=False``
    takes the provider's path (runs that cannot be read ahead: ``test_read_ahead.py``)."""
    client, plugin, multiplexer = make_app(str(logdir))
    rdr = plugin._reader
    rdr._read_ahead = read_ahead
    now = [0.0]
    rdr._clock = lambda: now[0]
    return client, plugin, multiplexer, rdr, now


def settle(client, experiment: str, rdr, now: list[float]) -> None:
    """List the logdir, let the probe take its first look, then wait out the settle time:
    from here on the probe answers refreshes."""
    runs_of(client, experiment)
    now[0] += reader.MAX_SNAPSHOT_AGE
    runs_of(client, experiment)
    now[0] += rdr._settle + reader.MAX_SNAPSHOT_AGE
    runs_of(client, experiment)


def test_a_settled_logdir_is_not_listed_and_a_new_run_is(logdir, remap_logdir):
    client, plugin, multiplexer, rdr, now = on_a_fake_clock(logdir, read_ahead=False)
    settle = rdr._settle
    assert settle >= reader.SETTLE_AFTER_CHANGE
    provider = rdr._provider
    fid = remap_logdir.fingerprint_id
    try:
        with mock.patch.object(provider, "list_tensors", wraps=provider.list_tensors) as listed:
            assert runs_of(client, fid) == {"m-base", "m-child"}
            assert listed.call_count == 1
            now[0] += reader.MAX_SNAPSHOT_AGE  # the probe's first look: listed (nothing to compare with)
            runs_of(client, fid)
            assert listed.call_count == 2
            now[0] += settle + reader.MAX_SNAPSHOT_AGE  # unchanged for the settle time: not listed
            assert runs_of(client, fid) == {"m-base", "m-child"}
            assert listed.call_count == 2
            now[0] += reader.MAX_SNAPSHOT_AGE
            runs_of(client, fid)
            assert listed.call_count == 2
            with mock.patch.object(rdr._probe, "top", wraps=rdr._probe.top) as looked:
                now[0] += reader.PROBED_MAX_AGE / 2  # a probed snapshot is reused a short while
                runs_of(client, fid)
                assert looked.call_count == 0
                now[0] += reader.PROBED_MAX_AGE  # then the probe looks again (and lists nothing)
                runs_of(client, fid)
                assert looked.call_count == 1 and listed.call_count == 2

            shutil.copytree(f"{remap_logdir.path}/m-dense", logdir / "m-dense")  # a new run
            multiplexer.AddRunsFromDirectory(str(logdir))
            multiplexer.Reload()
            now[0] += reader.MAX_SNAPSHOT_AGE
            assert runs_of(client, fid) == {"m-base", "m-child", "m-dense"}
            assert listed.call_count == 3
            now[0] += reader.MAX_SNAPSHOT_AGE  # within the settle time after a change: listed again
            runs_of(client, fid)
            assert listed.call_count == 4

            now[0] += settle + reader.MAX_SNAPSHOT_AGE
            runs_of(client, fid)
            assert listed.call_count == 4
            now[0] += reader.LIST_AT_LEAST_EVERY  # listed anyway now and then (in the background)
            runs_of(client, fid)
            rdr.wait_listing()
            assert listed.call_count == 5
    finally:
        plugin.close()


def test_the_periodic_listing_runs_in_the_background_and_finds_what_the_probe_does_not(logdir, remap_logdir):
    import threading

    client, plugin, multiplexer, rdr, now = on_a_fake_clock(logdir)
    provider = rdr._provider
    fid = remap_logdir.fingerprint_id
    try:
        settle(client, fid, rdr, now)
        shutil.copytree(f"{remap_logdir.path}/m-dense", logdir / "deeper" / "m-dense")  # a run the probe does not watch
        multiplexer.AddRunsFromDirectory(str(logdir))
        multiplexer.Reload()
        gate = threading.Event()
        real = provider.list_tensors

        def slow_listing(*args, **kwargs):
            if kwargs.get("run_tag_filter") is None:
                assert gate.wait(30)
            return real(*args, **kwargs)

        with mock.patch.object(provider, "list_tensors", side_effect=slow_listing):
            now[0] += reader.PROBED_MAX_AGE
            assert runs_of(client, fid) == {"m-base", "m-child"}
            now[0] += reader.LIST_AT_LEAST_EVERY
            started = time.monotonic()
            assert runs_of(client, fid) == {"m-base", "m-child"}  # answered while the listing waits
            assert time.monotonic() - started < 5 and not gate.is_set()
            gate.set()
            rdr.wait_listing()
        now[0] += reader.PROBED_MAX_AGE
        assert runs_of(client, fid) == {"m-base", "m-child", "deeper/m-dense"}
    finally:
        plugin.close()


def test_the_probe_sees_an_event_file_grow_and_runs_come_and_go(logdir):
    probe = reader.LogdirProbe(str(logdir))
    top, before = probe.top(), probe.run_signature("m-base")
    assert probe.folders() == {"m-base", "m-child"}
    assert probe.run_signature("m-base") == before
    event = next((logdir / "m-base").glob("*tfevents*"))
    with open(event, "ab") as f:
        f.write(b"\0")
    assert probe.run_signature("m-base") != before
    shutil.rmtree(logdir / "m-child")
    assert probe.run_signature("m-child") is None and probe.folders() == {"m-base"}
    assert probe.top() != top


def test_a_targeted_listing_asks_for_the_changed_runs_alone(logdir, remap_logdir):
    client, plugin, multiplexer, rdr, now = on_a_fake_clock(logdir, read_ahead=False)
    provider = rdr._provider
    fid = remap_logdir.fingerprint_id
    try:
        settle(client, fid, rdr, now)
        shutil.copytree(f"{remap_logdir.path}/m-dense", logdir / "m-dense")
        multiplexer.AddRunsFromDirectory(str(logdir))
        multiplexer.Reload()
        now[0] += reader.MAX_SNAPSHOT_AGE
        with mock.patch.object(provider, "list_tensors", wraps=provider.list_tensors) as listed, \
                mock.patch.object(provider, "list_runs", wraps=provider.list_runs) as all_runs:
            assert runs_of(client, fid) == {"m-base", "m-child", "m-dense"}
            assert listed.call_args.kwargs["run_tag_filter"].runs == frozenset({"m-dense"})
            assert all_runs.call_count == 0
    finally:
        plugin.close()


def test_parsing_many_runs_freezes_what_is_alive(logdir, remap_logdir, monkeypatch):
    monkeypatch.setattr(reader, "FREEZE_AFTER_RUNS", 2)
    gc.unfreeze()
    client, plugin, _ = make_app(str(logdir))
    try:
        assert gc.get_freeze_count() == 0
        assert runs_of(client, remap_logdir.fingerprint_id) == {"m-base", "m-child"}
        assert gc.get_freeze_count() > 0
    finally:
        plugin.close()
        gc.unfreeze()


def test_the_projection_body_is_encoded_once_per_layout(logdir, remap_logdir):
    client, plugin, _ = make_app(str(logdir))
    url = ROOT + f"projection?experiment={remap_logdir.fingerprint_id}&kind=structural"
    try:
        deadline = time.monotonic() + 60
        while True:
            body = client.get(url).json
            if not body["computing"] and len(body["points"]) == 2:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.1)
        with mock.patch.object(views, "mds_projection", wraps=views.mds_projection) as built:
            first = client.get(url)
            second = client.get(url)
            assert first.data == second.data
            assert {p["id"] for p in first.json["points"]} == {"m-base", "m-child"}
            assert built.call_count <= 1
    finally:
        plugin.close()


def test_a_load_warms_the_summaries_in_the_background(logdir, remap_logdir, monkeypatch):
    from remap_tb import plugin as plugin_module

    monkeypatch.setattr(plugin_module, "WARM_SUMMARIES_FROM", 2)
    client, plugin, _ = make_app(str(logdir))
    try:
        assert client.get(ROOT + "experiments").status_code == 200  # no models route asked
        snap = plugin._reader.snapshot()
        deadline = time.monotonic() + 30
        while not all("summary_json" in d.derived for d in snap.models.values()):
            assert time.monotonic() < deadline, "summaries were not built"
            time.sleep(0.05)
        assert {json.loads(d.derived["summary_json"])["run"] for d in snap.models.values()} == {"m-base", "m-child"}
        assert not any("summary" in d.derived for d in snap.models.values())  # the bytes only are kept
    finally:
        plugin.close()


def test_the_models_body_is_joined_from_each_models_encoded_summary(remap_logdir):
    """Byte for byte the encoding of ``models_impl`` (a stale mark and a queue status
    included), and a second body re-encodes only the models with an overlay."""
    from remap_tb.http_util import json_bytes
    from tests.fixtures_runs import GOOD_RUNS

    multiplexer = pem.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(remap_logdir.path)
    multiplexer.Reload()
    snap = reader.RunReader(data_provider.MultiplexerDataProvider(multiplexer, remap_logdir.path)).snapshot()
    fid = remap_logdir.fingerprint_id
    assert {d.run for d in views.experiment_models(snap, fid)} >= set(GOOD_RUNS)
    stale = frozenset({"m-child"})
    statuses = {"m-dense": {"state": "failed", "epoch": 1, "epochs": 1, "reason": "worker gone"}}
    from remap_tb.models_versions import Delta

    delta = Delta([snap.models["m-dense"], snap.models["m-base"]], ["gone"])
    for args in ((stale, statuses, "v2", "v1", delta), (frozenset(), {}, "v2"), (stale, statuses)):
        body = views.models_body(snap, fid, *args)
        assert body == json_bytes(views.models_impl(snap, fid, *args))
    by_run = {m["run"]: m for m in json.loads(body)["models"]}
    assert by_run["m-dense"]["status"]["reason"] == "worker gone"
    assert by_run["m-child"]["status"]["reason"] == views.STALE_REASON
    assert by_run["m-base"]["status"]["reason"] is None
    with mock.patch.object(views, "json_bytes", wraps=json_bytes) as encoded:
        assert views.models_body(snap, fid, stale, statuses) == body
    assert encoded.call_count == 1 + 2  # the head, and the two models with an overlay


def test_runs_share_the_parts_of_their_records_they_repeat(remap_logdir):
    """The fingerprint, dataset, class names and training config most runs repeat are one
    object (memory over 20,000 runs); what the reader hands out stays a private copy."""
    multiplexer = pem.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(remap_logdir.path)
    multiplexer.Reload()
    rdr = reader.RunReader(data_provider.MultiplexerDataProvider(multiplexer, remap_logdir.path))
    models = rdr.snapshot().models
    base, child = models["m-base"].model, models["m-child"].model
    assert base["fingerprint"] == child["fingerprint"] and base["fingerprint"] is child["fingerprint"]
    assert base["class_names"] is child["class_names"] and base["dataset"] is child["dataset"]
    assert base["spec"] is not child["spec"]
    copy = rdr.find_model("m-base")
    copy["fingerprint"]["name"] = "changed"
    assert child["fingerprint"]["name"] != "changed"


def test_the_projection_body_is_written_as_the_generic_encoder_would():
    from remap_tb.http_util import json_bytes

    points = [{"id": "m-1", "x": 0.1, "y": -2.5e-7}, {"id": 'q"uote\\é', "x": 3, "y": float("nan")},
              {"id": "m-3", "x": 1e300, "y": float("-inf")}]
    for layout in ({"version": 4, "computing": True, "points": points, "stress": 0.12, "error": None},
                   {"version": 0, "points": [], "stress": None, "error": "ValueError: bad"}):
        for kind in ("structural", "posthoc"):
            body = views.projection_body('exp "points":null', kind, layout)
            assert body == json_bytes(views.mds_projection('exp "points":null', kind, layout))
    assert json.loads(body)["points"] == []


def test_many_new_run_folders_are_listed_not_watched_one_by_one(logdir, remap_logdir, monkeypatch):
    """A load (more new folders than ``MAX_NEW_FOLDERS``) is left to a listing of every run:
    watching each folder would stat thousands of them on every refresh."""
    monkeypatch.setattr(reader, "MAX_NEW_FOLDERS", 1)
    client, plugin, multiplexer, rdr, now = on_a_fake_clock(logdir)
    fid = remap_logdir.fingerprint_id
    try:
        settle(client, fid, rdr, now)
        for run in ("m-dense", "m-retry"):
            shutil.copytree(f"{remap_logdir.path}/{run}", logdir / run)
        multiplexer.AddRunsFromDirectory(str(logdir))
        multiplexer.Reload()
        provider = rdr._provider
        with mock.patch.object(provider, "list_runs", wraps=provider.list_runs) as every_run:
            now[0] += reader.MAX_SNAPSHOT_AGE
            assert runs_of(client, fid) == {"m-base", "m-child", "m-dense", "m-retry"}
            assert every_run.call_count == 1
        assert not rdr._watch[""].changed
    finally:
        plugin.close()
