"""A run whose files just changed is read from its own event files, ahead of a data
provider that has not reloaded yet (``remap_tb.event_files``, ``RunReader(read_ahead=True)``):
the Rust data server sees a new run only at its next reload, seconds later over thousands
of runs (issue 13's "a new finished model placed on every map").

* ``read_run`` gives the provider's own series for every kind of run the trainer writes
  (a retried run's two event files included), so the run parses to the same summary.
* A lagging provider (the real Python multiplexer, not reloaded): the new run is in the
  next snapshot with read-ahead and absent without it; a full listing keeps it; once the
  provider reloads, its reading takes over with the same data.
* Oversized, corrupt and empty folders are left to the provider.
* A run read ahead is not listed through the provider again while it settles (over
  20,000 runs the Python loader lists every run's series for that).
* The plugin reads ahead with a local logdir under both loaders, and the real TensorBoard
  with ``--load_fast=true`` and a 30 s reload interval lists a new run in ``models`` at
  once, while its own ``/data/runs`` does not know it yet.
"""

from __future__ import annotations

import argparse
import shutil
import time

import numpy as np
import pytest
from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
from tensorboard.context import RequestContext
from tensorboard.data import provider as tb_provider
from tensorboard.plugins import base_plugin

from remap_tb import event_files, metadata, reader, views
from remap_tb.plugin import RemapPlugin
from tests.fixtures_runs import GOOD_RUNS, logdir  # noqa: F401  (logdir: fixture)


def multiplexer_over(logdir) -> pem.EventMultiplexer:
    multiplexer = pem.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    return multiplexer


def summary(data) -> dict:
    out = views._summary(data)
    out.pop("wall_time")  # the newest datum of any series: scalars of other tags count for the provider
    return out


def test_read_run_gives_the_providers_own_series(remap_logdir):
    provider = data_provider.MultiplexerDataProvider(multiplexer_over(remap_logdir.path), remap_logdir.path)
    ctx = RequestContext()
    runs = tb_provider.RunTagFilter(runs=GOOD_RUNS)
    tensors = provider.read_tensors(ctx, experiment_id="", plugin_name=metadata.PLUGIN_NAME,
                                    run_tag_filter=runs, downsample=reader.DOWNSAMPLE)
    scalars = provider.read_scalars(ctx, experiment_id="", plugin_name=reader.SCALARS_PLUGIN,
                                    run_tag_filter=tb_provider.RunTagFilter(runs=GOOD_RUNS, tags=metadata.SCALAR_TAGS),
                                    downsample=reader.DOWNSAMPLE)
    for run in GOOD_RUNS:
        series = event_files.read_run(f"{remap_logdir.path}/{run}", metadata.PLUGIN_NAME, reader.SCALARS_PLUGIN,
                                      metadata.SCALAR_TAGS)
        assert series is not None, run
        assert set(series.tensors) == set(tensors[run]) and set(series.scalars) == set(scalars[run]), run
        for tag, data in tensors[run].items():
            mine = series.tensors[tag]
            assert [(d.step, d.wall_time) for d in mine] == [(d.step, d.wall_time) for d in data], (run, tag)
            for a, b in zip(mine, data):
                np.testing.assert_array_equal(a.numpy, b.numpy)
        for tag, data in scalars[run].items():
            assert [(d.step, d.wall_time, pytest.approx(d.value)) for d in data] == \
                [(d.step, d.wall_time, d.value) for d in series.scalars[tag]], (run, tag)
        assert series.newest == max(d.wall_time for data in tensors[run].values() for d in data)
        mine = reader.parse_run(run, series.tensors, series.scalars)
        theirs = reader.parse_run(run, tensors[run], scalars[run])
        assert isinstance(mine, reader.RunData) and summary(mine) == summary(theirs), run
    assert run == "m-retry" and summary(mine)["status"]["state"] == "done"  # its stale attempt-1 file was read too


def test_read_run_leaves_oversized_corrupt_and_empty_folders_to_the_provider(remap_logdir, tmp_path):
    args = (metadata.PLUGIN_NAME, reader.SCALARS_PLUGIN, metadata.SCALAR_TAGS)
    base = f"{remap_logdir.path}/m-base"
    assert event_files.read_run(base, *args) is not None
    assert event_files.read_run(base, *args, max_bytes=100) is None
    assert event_files.read_run(f"{remap_logdir.path}/corrupt", *args) is None
    (tmp_path / "empty").mkdir()
    assert event_files.read_run(str(tmp_path / "empty"), *args) is None
    assert event_files.read_run(str(tmp_path / "missing"), *args) is None


def lagging_reader(logdir, read_ahead: bool):
    """A reader over a multiplexer that reloads only when the test says so, on a fake clock
    already past the settle time (so the probe answers refreshes)."""
    multiplexer = multiplexer_over(logdir)
    rdr = reader.RunReader(data_provider.MultiplexerDataProvider(multiplexer, str(logdir)), logdir=str(logdir),
                           read_ahead=read_ahead)
    now = [0.0]
    rdr._clock = lambda: now[0]
    rdr.snapshot()
    now[0] += reader.MAX_SNAPSHOT_AGE
    rdr.snapshot()
    now[0] += rdr._settle + reader.MAX_SNAPSHOT_AGE
    rdr.snapshot()
    return rdr, multiplexer, now


def test_a_new_run_is_read_before_the_provider_lists_it_and_the_provider_takes_over(logdir, remap_logdir):
    ahead, multiplexer, now = lagging_reader(logdir, read_ahead=True)
    behind, _, behind_now = lagging_reader(logdir, read_ahead=False)
    shutil.copytree(f"{remap_logdir.path}/m-dense", logdir / "m-dense")
    now[0] += reader.MAX_SNAPSHOT_AGE
    behind_now[0] += reader.MAX_SNAPSHOT_AGE
    assert "m-dense" not in behind.snapshot().models  # the provider has not reloaded
    snap = ahead.snapshot()
    assert set(snap.models) == {"m-base", "m-child", "m-dense"}
    entry = ahead._entries[""]["m-dense"]
    assert entry.ahead_of_provider is not None and entry.key[0] == "ahead"
    read_early = summary(snap.models["m-dense"])
    assert read_early["status"]["state"] == "done" and read_early["val_accuracy"] is not None

    now[0] += reader.LIST_AT_LEAST_EVERY  # a full listing of a provider that still lacks the run keeps it
    ahead.snapshot()
    ahead.wait_listing()
    now[0] += reader.PROBED_MAX_AGE
    assert "m-dense" in ahead.snapshot().models and ahead._entries[""]["m-dense"].ahead_of_provider is not None
    ahead._watch[""].listing_changed = now[0]  # within the settle time of news: a full listing in the request
    now[0] += reader.MAX_SNAPSHOT_AGE
    assert "m-dense" in ahead.snapshot().models and ahead._entries[""]["m-dense"].ahead_of_provider is not None

    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    now[0] += reader.LIST_AT_LEAST_EVERY
    ahead.snapshot()
    ahead.wait_listing()
    now[0] += reader.PROBED_MAX_AGE
    snap = ahead.snapshot()
    entry = ahead._entries[""]["m-dense"]
    assert entry.ahead_of_provider is None and entry.key[0] != "ahead"  # the provider's reading now
    assert summary(snap.models["m-dense"]) == read_early


def test_a_run_read_ahead_is_not_listed_through_the_provider_while_it_settles(logdir, remap_logdir):
    from unittest import mock

    rdr, _, now = lagging_reader(logdir, read_ahead=True)
    provider = rdr._provider
    with mock.patch.object(provider, "list_tensors", wraps=provider.list_tensors) as listed:
        shutil.copytree(f"{remap_logdir.path}/m-dense", logdir / "m-dense")
        now[0] += reader.MAX_SNAPSHOT_AGE
        assert "m-dense" in rdr.snapshot().models
        for _ in range(3):  # within the settle time: the probe looks, nothing is listed
            now[0] += reader.MAX_SNAPSHOT_AGE
            assert "m-dense" in rdr.snapshot().models
        assert listed.call_count == 0


def test_handing_a_run_back_to_the_provider_is_not_news_that_keeps_every_run_listed(logdir, remap_logdir):
    from unittest import mock

    rdr, multiplexer, now = lagging_reader(logdir, read_ahead=True)
    shutil.copytree(f"{remap_logdir.path}/m-dense", logdir / "m-dense")
    now[0] += reader.MAX_SNAPSHOT_AGE
    rdr.snapshot()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    now[0] += reader.LIST_AT_LEAST_EVERY
    rdr.snapshot()
    rdr.wait_listing()
    assert rdr._entries[""]["m-dense"].ahead_of_provider is None  # handed back
    provider = rdr._provider
    with mock.patch.object(provider, "list_runs", wraps=provider.list_runs) as every_run:
        for _ in range(3):
            now[0] += reader.MAX_SNAPSHOT_AGE
            assert "m-dense" in rdr.snapshot().models
        assert every_run.call_count == 0  # the probe answers, as before the run came


def test_a_run_the_provider_already_has_is_not_read_again(logdir):
    rdr, _, now = lagging_reader(logdir, read_ahead=True)
    event = next((logdir / "m-base").glob("*tfevents*"))
    event.touch()  # the probe sees a change, the files hold nothing newer than the provider read
    now[0] += reader.MAX_SNAPSHOT_AGE
    rdr.snapshot()
    assert rdr._entries[""]["m-base"].ahead_of_provider is None


def plugin_context(logdir, multiplexer):
    provider = data_provider.MultiplexerDataProvider(multiplexer_over(logdir), str(logdir))
    flags = argparse.Namespace(remap_workers=0, remap_max_params=50_000_000, reload_interval=1.0,
                               samples_per_plugin={metadata.PLUGIN_NAME: 0})
    return base_plugin.TBContext(logdir=str(logdir), data_provider=provider, flags=flags,
                                 multiplexer=multiplexer)


def test_the_plugin_reads_ahead_with_a_local_logdir_under_both_loaders(logdir):
    for multiplexer in (None, multiplexer_over(logdir)):
        plugin = RemapPlugin(plugin_context(logdir, multiplexer))
        try:
            assert plugin._reader._read_ahead is True
        finally:
            plugin.close()
    remote = base_plugin.TBContext(logdir="gs://bucket/logs", data_provider=plugin_context(logdir, None).data_provider,
                                   flags=plugin_context(logdir, None).flags)
    plugin = RemapPlugin(remote)
    try:
        assert plugin._reader._read_ahead is False
    finally:
        plugin.close()


def test_the_rust_data_server_lists_a_new_run_at_once(logdir, remap_logdir, tmp_path):
    from tests.browser import TensorBoardProcess

    with TensorBoardProcess(logdir, tmp_path / "tb.log", load_fast="true", reload_interval=30) as tb:
        tb.wait_ready(models=2)
        assert "m-dense" not in tb.get_json("/data/runs")
        shutil.copytree(f"{remap_logdir.path}/m-dense", logdir / "m-dense")
        copied = time.monotonic()
        while True:
            models = tb.plugin_json(f"models?experiment={remap_logdir.fingerprint_id}")["models"]
            if any(m["run"] == "m-dense" and m["status"]["state"] == "done" for m in models):
                break
            assert time.monotonic() - copied < 10, tb.log()
            time.sleep(0.1)
        seen = time.monotonic() - copied
        assert "m-dense" not in tb.get_json("/data/runs"), "the data server reloaded: the test proves nothing"
        assert seen < 5, f"the new run took {seen:.1f} s"
