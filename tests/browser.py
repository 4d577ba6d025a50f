"""Real TensorBoard processes and headless Chromium for end-to-end tests (and scripts).

``TensorBoardProcess`` starts ``python -m tensorboard.main`` on a logdir with the
remap plugin (``--port 0``: it reads the port TensorBoard prints, so there is no
race for a free port), waits until the plugin answers, and stops the process by
its PID (SIGTERM: TensorBoard runs its ``atexit`` handlers, which stop the local
workers it started; SIGKILL if it does not exit).

``launch_chromium`` starts Debian's Chromium through Playwright for Python with
the settings of ``shared/design/TENSORBOARD.md`` (never ``playwright install``).
``Dashboard`` opens TensorBoard's REMAP tab, finds the plugin's iframe and
collects every console error and page error of the page.

``train_logdir`` writes a logdir with the project's own trainer
(``python -m trainer.cli init``).

Session fixtures, registered once in ``tests/conftest.py`` (a fixture imported into
several modules would run once per module): ``trained_logdir`` (6 models, digits,
1 epoch) and ``chromium``. ``conftest.py`` also has ``dashboard``: the REMAP tab of
the test module's own ``tensorboard`` fixture. ``shot``, ``no_errors`` and
``models_json`` are helpers the browser tests share.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PLUGIN = "remap"
PLUGIN_FRAME = "plugin_entry.html?name=remap"

# The session's trained logdir (small on purpose: the e2e tests must stay fast).
TRAIN_MODELS = 6
TRAIN_ARGS = ("--dataset", "digits", "--epochs", "1", "--max-params", "50000", "--seed", "0")


# ---------------------------------------------------------------- logdirs


def train_logdir(path: str | os.PathLike, models: int = TRAIN_MODELS, args: Sequence[str] = TRAIN_ARGS,
                 timeout: float = 300) -> Path:
    """Sample and train ``models`` models into ``path`` with ``trainer.cli init``."""
    cmd = [sys.executable, "-m", "trainer.cli", "init", str(path), "--models", str(models), *args]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return Path(path)


def copy_logdir(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """A private copy of a logdir (tests that train into it must not share one)."""
    shutil.copytree(src, dst)
    return Path(dst)


# ---------------------------------------------------------------- TensorBoard


class TensorBoardProcess:
    """One ``tensorboard`` subprocess serving ``logdir`` with the remap plugin."""

    def __init__(self, logdir: str | os.PathLike, log_path: str | os.PathLike, *, load_fast: str | None = "false",
                 workers: int = 0, path_prefix: str = "", reload_interval: float | None = 1,
                 extra_args: Sequence[str] = (), cwd: str | os.PathLike = REPO):
        """``load_fast=None`` / ``reload_interval=None``: leave the flag out (TensorBoard's default).
        ``cwd``: where TensorBoard starts; ``python -m`` puts it first on ``sys.path``, so its
        ``remap_tb`` is the plugin TensorBoard loads (a benchmark's baseline)."""
        self.cwd = str(cwd)
        self.logdir = str(logdir)
        self.log_path = str(log_path)
        self.load_fast = load_fast
        self.workers = workers
        self.path_prefix = path_prefix.rstrip("/")
        self.command = [sys.executable, "-m", "tensorboard.main", "--logdir", self.logdir,
                        "--host", "127.0.0.1", "--port", "0", "--remap_workers", str(workers)]
        if load_fast is not None:
            self.command.append(f"--load_fast={load_fast}")
        if reload_interval is not None:
            self.command += ["--reload_interval", str(reload_interval)]
        if self.path_prefix:
            self.command += ["--path_prefix", self.path_prefix]
        self.command += list(extra_args)
        self.process: subprocess.Popen | None = None
        self.base: str | None = None  # http://127.0.0.1:PORT (without the path prefix)
        self._log = None

    # lifecycle
    def start(self) -> "TensorBoardProcess":
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.command, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        return self

    def wait_for_port(self, deadline: float) -> str:
        """Wait until TensorBoard prints its URL; returns ``base``."""
        while self.base is None:
            found = re.search(rb"http://127\.0\.0\.1:(\d+)/", Path(self.log_path).read_bytes())
            if found:
                self.base = f"http://127.0.0.1:{int(found.group(1))}"
            elif self.process is None or self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"tensorboard (load_fast={self.load_fast}) did not start:\n{self.log()}")
            else:
                time.sleep(0.1)
        return self.base

    def wait_ready(self, timeout: float = 60, models: int | None = None) -> "TensorBoardProcess":
        """Wait for the port and for the plugin to list an experiment (with ``models`` models, if given)."""
        deadline = time.monotonic() + timeout
        self.wait_for_port(deadline)
        while True:
            status, _, body = self.get(f"/data/plugin/{PLUGIN}/experiments")
            if status == 200:
                experiments = json.loads(body)["experiments"]
                n = sum(e["n_models"] for e in experiments)
                if experiments and (models is None or n >= models):
                    return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the remap plugin never listed the models (last answer {status}):\n{self.log()}")
            time.sleep(0.2)

    def stop(self) -> int | None:
        """SIGTERM by PID (TensorBoard exits through atexit, stopping its workers), then SIGKILL."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.process.returncode if self.process is not None else None

    def __enter__(self) -> "TensorBoardProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # URLs and requests
    @property
    def root(self) -> str:
        """TensorBoard's root URL, with the path prefix."""
        assert self.base is not None, "not started"
        return self.base + self.path_prefix

    def url(self, path: str) -> str:
        return self.root + path

    def plugin_url(self, route: str) -> str:
        return self.url(f"/data/plugin/{PLUGIN}/{route.lstrip('/')}")

    def get(self, path: str) -> tuple[int, str, bytes]:
        """GET ``root + path``: (status, content type, body)."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=30) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read()

    def get_json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, (self.load_fast, path, status, body[:300])
        return json.loads(body)

    def plugin_json(self, route: str) -> Any:
        return self.get_json(f"/data/plugin/{PLUGIN}/{route.lstrip('/')}")

    def post_json(self, route: str, body: Any) -> Any:
        request = urllib.request.Request(self.plugin_url(route), method="POST", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json", "X-Requested-With": "remap"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def log(self, tail: int = 4000) -> str:
        try:
            return Path(self.log_path).read_bytes().decode(errors="replace")[-tail:]
        except OSError:
            return ""


# ---------------------------------------------------------------- Chromium


def launch_chromium(playwright: Any, **kwargs: Any) -> Any:
    """Debian's Chromium, headless, with the project's flags (no browser download)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, **kwargs)


class Dashboard:
    """TensorBoard's REMAP tab in a fresh page; ``frame`` is the plugin's iframe.

    Every console message of type ``error`` and every uncaught page error of the
    page (TensorBoard's shell and the plugin frame) is collected in ``errors``.
    """

    def __init__(self, browser: Any, tensorboard: TensorBoardProcess, *, width: int = 1280, height: int = 800,
                 hash_: str = "#remap", ignore: Sequence[str] = (), init_script: str | None = None):
        self.tensorboard = tensorboard
        self.errors: list[str] = []
        self.ignore = [re.compile(p) for p in ignore]  # errors matching one go to `ignored`, not `errors`
        self.ignored: list[str] = []
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        if init_script:  # runs in every frame before its scripts (e.g. window.__remapPolling)
            self.page.add_init_script(init_script)
        self.page.goto(tensorboard.url("/" + hash_))
        self.frame = self.wait_for_frame()

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if isinstance(message.location, dict) else ""
            text = f"console.error: {message.text} ({where})"
            (self.ignored if any(p.search(text) for p in self.ignore) else self.errors).append(text)

    def wait_for_frame(self, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in self.page.frames:
                if PLUGIN_FRAME in frame.url or f"/data/plugin/{PLUGIN}" in frame.url:
                    return frame
            self.page.wait_for_timeout(100)
        raise AssertionError(f"no REMAP plugin frame; frames: {[f.url for f in self.page.frames]}; errors: {self.errors}")

    # waiting
    def wait_drawn(self, points: int = 1, timeout: float = 30) -> None:
        """Wait until the map has drawn at least ``points`` points."""
        self.frame.wait_for_function(
            "n => document.body.dataset.mapDrawn && window.__remapMap && window.__remapMap.points().length >= n",
            arg=points, timeout=timeout * 1000)

    def points(self) -> list[dict]:
        return self.frame.evaluate("window.__remapMap.points()")

    def point_of(self, model_id: str) -> dict:
        """The map point of ``model_id``, once it is drawn."""
        self.frame.wait_for_function("id => window.__remapMap && window.__remapMap.points().some(p => p.id === id)",
                                     arg=model_id, timeout=30000)
        return next(p for p in self.points() if p["id"] == model_id)

    def wait_inspected(self, model_id: str) -> None:
        """Wait until the inspector shows ``model_id`` with its layer table."""
        self.frame.wait_for_function(
            "id => { const el = document.querySelector('[data-testid=inspector]');"
            " return el && el.dataset.modelId === id && document.querySelector('[data-testid=spec-table]'); }",
            arg=model_id, timeout=15000)

    def inspect(self, model_id: str) -> None:
        """Open the Inspector tab (a click on the map does not leave the editor) and inspect ``model_id``."""
        self.testid("tab-inspector").click()
        self.click(self.point_of(model_id))
        self.wait_inspected(model_id)

    def free_points(self) -> list[dict]:
        """Points not covered by another element (legend, banners), in the frame's coordinates."""
        return self.frame.evaluate("""window.__remapMap.points().filter(p =>
            document.elementFromPoint(p.x, p.y) === document.querySelector('[data-testid=map-canvas]'))""")

    def frame_offset(self) -> tuple[float, float]:
        box = self.frame.frame_element().bounding_box()
        return box["x"], box["y"]

    def to_page(self, point: dict) -> tuple[float, float]:
        """A point in the frame's viewport to page (mouse) coordinates."""
        ox, oy = self.frame_offset()
        return ox + point["x"], oy + point["y"]

    def hover(self, point: dict) -> None:
        self.page.mouse.move(*self.to_page(point))

    def click(self, point: dict, shift: bool = False) -> None:
        x, y = self.to_page(point)
        self.page.mouse.move(x, y)
        if shift:
            self.page.keyboard.down("Shift")
        self.page.mouse.click(x, y)
        if shift:
            self.page.keyboard.up("Shift")

    def testid(self, name: str) -> Any:
        return self.frame.get_by_test_id(name)

    def fetch(self, url: str) -> dict:
        """Fetch ``url`` from inside the plugin frame (relative URLs resolve against its <base>)."""
        return self.frame.evaluate("""async (u) => {
            const r = await fetch(u);
            const body = await r.text();
            return {status: r.status, type: r.headers.get("content-type"), body, url: r.url};
        }""", url)

    def screenshot(self, path: str | os.PathLike, **kwargs: Any) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), **kwargs)
        return path

    def close(self) -> None:
        self.page.close()


# ---------------------------------------------------------------- pytest fixtures


@pytest.fixture(scope="session")
def trained_logdir(tmp_path_factory) -> Path:
    """A logdir of TRAIN_MODELS models the trainer wrote (read-only: copy it to train into it)."""
    return train_logdir(tmp_path_factory.mktemp("e2e") / "logdir")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


# ---------------------------------------------------------------- new-model latency


def new_model_latencies(dash: Dashboard, tensorboard: TensorBoardProcess, n: int, *, seed: int = 0,
                        timeout: float = 120) -> list[float]:
    """Enqueue ``n`` variations one after the other (through the plugin's routes, as a script
    would) and return, for each, the seconds from the worker writing its "done" record to
    the dashboard drawing its point as done.

    "Done written": the model's ``wall_time`` (its newest record, the final status).
    "Drawn": the map's ``__remapPerf.drawn[id].t``, stamped in the frame that first draws
    the point with state done. Both are this machine's wall clock.
    """
    experiments = tensorboard.plugin_json("experiments")["experiments"]
    experiment = experiments[0]["id"]
    models = tensorboard.plugin_json(f"models?experiment={experiment}")["models"]
    parent = next(m for m in models if m["status"]["state"] == "done")
    candidates: list[dict] = []
    k = 0
    while len(candidates) < n and k < 20:
        answer = tensorboard.post_json("generate", {"parents": [parent["run"]], "kind": "variation",
                                                    "options": {"count": n, "seed": seed + k}})
        known = {repr(c["spec"]["layers"]) for c in candidates}
        candidates += [c for c in answer["candidates"] if c["valid"] and repr(c["spec"]["layers"]) not in known]
        k += 1
    assert len(candidates) >= n, f"generate gave {len(candidates)} candidates"
    out = []
    for index, candidate in enumerate(candidates[:n]):
        body = {"items": [{"spec": candidate["spec"], "parent": parent["run"], "origin": "variation",
                           "changes": candidate["changes"]}], "epochs": 1,
                "client_key": f"latency-{seed}-{index}-{time.time_ns()}"}
        (rid,) = tensorboard.post_json("enqueue", body)["request_ids"]
        dash.frame.wait_for_function(
            "id => { const d = (window.__remapPerf || {}).drawn; return d && d[id] && d[id].state === 'done'; }",
            arg=rid, timeout=timeout * 1000)
        drawn_ms = dash.frame.evaluate("id => window.__remapPerf.drawn[id].t", rid)
        run = tensorboard.plugin_json(f"model?run={rid}")
        out.append(drawn_ms / 1000 - run["wall_time"])
    return out


SHOTS = REPO / "test-output" / "screenshots"


def shot(dash: "Dashboard", name: str) -> None:
    """Save a screenshot of the page under test-output/screenshots/ (after transitions finish)."""
    dash.page.wait_for_timeout(300)
    dash.screenshot(SHOTS / f"{name}.png")


def no_errors(dash: "Dashboard") -> None:
    """No console or page error so far, and no error banner on the tab."""
    assert not dash.errors, f"console/page errors: {dash.errors}"
    banner = dash.testid("error-banner")
    assert banner.count() == 0 or not banner.first.is_visible(), banner.first.inner_text()


def wait_models(server: TensorBoardProcess, ok, timeout: float = 180) -> list[dict]:
    """The ``models`` answer once ``ok(models)`` holds (polled every 0.5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        models = models_json(server)
        if ok(models):
            return models
        if time.monotonic() > deadline:
            raise AssertionError(f"models never got there: {[(m['id'], m['status']) for m in models]}\n{server.log()}")
        time.sleep(0.5)


def models_json(server: TensorBoardProcess) -> list[dict]:
    """The ``models`` answer of the logdir's only experiment."""
    import urllib.parse

    experiments = server.plugin_json("experiments")["experiments"]
    assert len(experiments) == 1, experiments
    return server.plugin_json(f"models?experiment={urllib.parse.quote(experiments[0]['id'])}")["models"]
