"""``models?experiment=ID&since=VERSION`` answers only what changed (``remap_tb.models_versions``):
over 20,000 models the whole body is about 20 MB, and a dashboard polls it while models train.

On the real Python loader (``MultiplexerDataProvider``) over runs the trainer wrote, through
TensorBoard's WSGI app.
"""

from __future__ import annotations

import dataclasses
import shutil

from remap_tb import models_versions, reader
from tests.fixtures_runs import logdir  # noqa: F401  (fixture)
from tests.test_reader_refresh import ROOT, make_app, on_a_fake_clock


def models(client, experiment: str, since: str | None = None) -> dict:
    url = ROOT + f"models?experiment={experiment}" + (f"&since={since}" if since else "")
    response = client.get(url)
    assert response.status_code == 200, response.data[:300]
    return response.json


def apply(old: list[dict], delta: dict) -> list[dict]:
    """What the dashboard does with a delta (``remap_tb_frontend/src/lib/models_delta.ts``)."""
    by_run = {m["run"]: m for m in old if m["run"] not in delta["removed"]}
    by_run.update({m["run"]: m for m in delta["models"]})
    return sorted(by_run.values(), key=lambda m: (m["created"], m["run"]))


def test_a_version_answers_what_changed_since_and_an_unknown_one_the_whole_body(logdir, remap_logdir):
    client, plugin, multiplexer, _, now = on_a_fake_clock(logdir)
    fid = remap_logdir.fingerprint_id
    try:
        first = models(client, fid)
        assert "since" not in first and {m["run"] for m in first["models"]} == {"m-base", "m-child"}
        v1 = first["version"]
        same = models(client, fid, since=v1)
        assert same["version"] == v1 and same["since"] == v1 and same["models"] == [] and same["removed"] == []

        shutil.copytree(f"{remap_logdir.path}/m-dense", logdir / "m-dense")
        multiplexer.AddRunsFromDirectory(str(logdir))
        multiplexer.Reload()
        now[0] += reader.MAX_SNAPSHOT_AGE
        delta = models(client, fid, since=v1)
        assert delta["since"] == v1 and delta["version"] != v1
        assert [m["run"] for m in delta["models"]] == ["m-dense"] and delta["removed"] == []
        whole = models(client, fid)
        assert whole["version"] == delta["version"]
        assert apply(first["models"], delta) == whole["models"]

        unknown = models(client, fid, since="not-a-version")
        assert "since" not in unknown and unknown["models"] == whole["models"]
    finally:
        plugin.close()


def test_runs_read_again_removed_or_overlaid_are_in_the_delta(remap_logdir):
    client, plugin, _ = make_app(remap_logdir.path)
    try:
        snap = plugin._reader.snapshot()
        group = list(snap.models.values())
        runs = [d.run for d in group]
        versions = models_versions.ModelsVersions(keep=2)
        v1 = versions.version("e", ("k1",), group, frozenset({runs[0]}))
        assert versions.version("e", ("k1",), group, frozenset()) is v1  # remembered by key

        again = reader.RunData(**{f.name: getattr(group[1], f.name) for f in dataclasses.fields(reader.RunData)
                                  if f.init})
        assert again.serial > group[1].serial
        now = [group[0], again, *group[3:]]  # run 1 read again, run 2 gone, run 0 no longer overlaid
        delta = versions.since("e", v1.token, now, frozenset({runs[3]}))
        assert [d.run for d in delta.changed] == [runs[0], runs[1], runs[3]]
        assert delta.removed == [runs[2]]
        assert versions.since("e", v1.token, group, frozenset({runs[0]})).changed == [group[0]]  # its overlay

        versions.version("e", ("k2",), group, ())
        versions.version("e", ("k3",), group, ())
        assert versions.since("e", v1.token, group, frozenset()) is None  # forgotten beyond `keep`
        assert versions.since("other", v1.token, group, frozenset()) is None
    finally:
        plugin.close()
