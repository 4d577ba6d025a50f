"""Only the local user can drive the plugin: every route checks the Host header (DNS rebinding)."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import urllib.parse

import pytest

from remap_tb import host_guard
from remap_tb.loader import RemapLoader
from tests.browser import CHROMIUM, CHROMIUM_ARGS, TensorBoardProcess
from tests.fixtures_runs import BASE
from tests.test_plugin_http import POST_HEADERS, ROOT, make_app

EVIL = "rebind.test"


def test_host_name_drops_port_brackets_and_case():
    assert host_guard.host_name("LOCALHOST:6006") == "localhost"
    assert host_guard.host_name("[::1]:6006") == "::1"
    assert host_guard.host_name("::1") == "::1"
    assert host_guard.host_name("127.0.0.1") == "127.0.0.1"
    assert host_guard.host_name("") == ""


def test_allowed_hosts_follow_the_flags():
    def flags(**values):
        return argparse.Namespace(**values)

    assert host_guard.allowed_hosts(flags(host="127.0.0.1")) == {"localhost", "127.0.0.1", "::1"}
    assert "0.0.0.0" not in host_guard.allowed_hosts(flags(host="0.0.0.0"))
    assert "box.lan" in host_guard.allowed_hosts(flags(host="box.lan"))
    assert {"a.lan", "10.1.2.3"} <= host_guard.allowed_hosts(flags(remap_allowed_hosts="A.lan, 10.1.2.3:6006"))
    import socket
    assert socket.gethostname().lower() in host_guard.allowed_hosts(flags(bind_all=True))
    with pytest.raises(ValueError, match="--remap_allowed_hosts: 'bad host' is not a host name"):
        host_guard.parse_allowed_hosts("ok.lan,bad host")


def test_a_malformed_allowed_hosts_flag_stops_tensorboard_with_a_message():
    from tensorboard.plugins import base_plugin

    flags = argparse.Namespace(remap_workers=0, remap_max_params=10, samples_per_plugin={},
                               remap_allowed_hosts="x/y")
    with pytest.raises(base_plugin.FlagsError, match="--remap_allowed_hosts"):
        RemapLoader().fix_flags(flags)


@pytest.fixture()
def logdir_copy(remap_logdir, tmp_path):
    path = tmp_path / "logdir"
    shutil.copytree(remap_logdir.path, path)
    return str(path)


def queued(logdir: str) -> list[str]:
    found = []
    for root, _, files in os.walk(os.path.join(logdir, ".remap", "queue")):
        found += [f for f in files if f.endswith(".json")]
    return found


def test_every_route_refuses_a_foreign_host_and_writes_nothing(logdir_copy):
    client, plugin, _ = make_app(logdir_copy)
    try:
        before = queued(logdir_copy)
        for route in ("index.js", "experiments", "queue", "schema"):
            response = client.get(ROOT + route, headers={"Host": f"{EVIL}:6006"})
            assert response.status_code == 403, route
            assert "--remap_allowed_hosts rebind.test" in response.json["error"]
        body = json.dumps({"items": [{"spec": BASE, "origin": "handcrafted"}]})
        response = client.post(ROOT + "enqueue", data=body, headers={**POST_HEADERS, "Host": EVIL})
        assert response.status_code == 403
        assert queued(logdir_copy) == before
        for host in ("localhost:6006", "127.0.0.1:1234", "[::1]:6006", "LOCALHOST"):
            assert client.get(ROOT + "experiments", headers={"Host": host}).status_code == 200, host
    finally:
        plugin.close()


def test_the_allowed_hosts_flag_and_the_host_flag_let_a_name_in(logdir_copy):
    client, plugin, _ = make_app(logdir_copy, remap_allowed_hosts=EVIL, host="box.lan")
    try:
        assert client.get(ROOT + "experiments", headers={"Host": f"{EVIL}:6006"}).status_code == 200
        assert client.get(ROOT + "experiments", headers={"Host": "box.lan"}).status_code == 200
        assert client.get(ROOT + "experiments", headers={"Host": "other.lan"}).status_code == 403
    finally:
        plugin.close()


def raw_get(base: str, path: str, host: str) -> tuple[int, bytes]:
    """GET with a chosen Host header (as a browser sends it after a DNS rebinding)."""
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def tensorboard(remap_logdir, tmp_path_factory):
    with TensorBoardProcess(remap_logdir.path, tmp_path_factory.mktemp("tb-host") / "tb.log") as server:
        server.wait_ready()
        yield server


def test_real_tensorboard_refuses_a_rebound_name_with_raw_requests(tensorboard):
    port = urllib.parse.urlsplit(tensorboard.base).port
    status, body = raw_get(tensorboard.base, ROOT + "experiments", f"{EVIL}:{port}")
    assert status == 403 and b"--remap_allowed_hosts" in body
    status, _ = raw_get(tensorboard.base, ROOT + "experiments", f"127.0.0.1:{port}")
    assert status == 200
    status, _ = raw_get(tensorboard.base, "/data/plugins_listing", f"{EVIL}:{port}")
    assert status == 200  # TensorBoard's own routes are TensorBoard's business; the plugin's data is guarded


def test_chromium_on_a_rebound_name_cannot_read_or_drive_the_plugin(tensorboard, chromium):
    port = urllib.parse.urlsplit(tensorboard.base).port
    browser = chromium.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {EVIL} 127.0.0.1"])
    try:
        page = browser.new_page()
        page.goto(f"http://{EVIL}:{port}/")  # the attacker's page, same-origin with TensorBoard
        answers = page.evaluate("""async () => {
            const get = await fetch('/data/plugin/remap/experiments');
            const post = await fetch('/data/plugin/remap/enqueue', {method: 'POST',
                headers: {'Content-Type': 'application/json', 'X-Requested-With': 'remap'},
                body: JSON.stringify({items: []})});
            const js = await fetch('/data/plugin/remap/index.js');
            return [get.status, post.status, js.status, (await get.json()).error];
        }""")
        assert answers[:3] == [403, 403, 403]
        assert "--remap_allowed_hosts" in answers[3]
        page.goto(f"http://127.0.0.1:{port}/")
        assert page.evaluate("async () => (await fetch('/data/plugin/remap/experiments')).status") == 200
    finally:
        browser.close()


def test_remap_demo_warns_when_tensorboard_listens_beyond_this_machine():
    from trainer import cli

    assert cli.exposure_warning("127.0.0.1", False, 6006) is None
    assert cli.exposure_warning("localhost", False, 6006) is None
    for host, bind_all in (("0.0.0.0", False), ("127.0.0.1", True), ("box.lan", False)):
        warning = cli.exposure_warning(host, bind_all, 6006)
        assert "anyone who can reach port 6006" in warning and "--allowed-hosts" in warning
    args = cli.build_parser().parse_args(["demo", "--bind_all", "--allowed-hosts", "box.lan"])
    command = cli.demo_command(args, "/tmp/x")
    assert "--bind_all" in command and "--host" not in command
    assert command[command.index("--remap_allowed_hosts") + 1] == "box.lan"
