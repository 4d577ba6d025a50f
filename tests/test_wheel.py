"""The wheel: built from a clean copy of the repository, installed outside it, serving the REMAP tab.

A copy of the files a clone has (git's tracked files plus untracked ones git does
not ignore: no ``node_modules``, no built bundle) is built with ``python -m build``
(sdist, then a wheel from the sdist) and with ``pip wheel . --no-deps``. The wheel
goes into a fresh virtual environment outside the repository, with no access to
the checkout. Its third-party packages are the repository venv's distributions
that the wheel's declared dependencies need (and pip), linked into a folder named
by a ``.pth`` file (see docs/ARCHITECTURE.md, "Packaging"): ``pip install
--no-index`` must find every declared dependency there, ``pip check`` must pass
and every module of ``remap_tb`` and ``trainer`` must import. TensorBoard started from that venv, in a folder outside
the repository, on a copy of ``demo_logs``, must serve the wheel's own bundle and
draw the map in Chromium without console errors.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import remap_tb
from remap_tb import assets
from tests.browser import REPO, Dashboard, TensorBoardProcess, models_json, no_errors

BUILD_TIMEOUT = 600
VERSION = remap_tb.__version__
WHEEL = f"remap_tb-{VERSION}-py3-none-any.whl"
SDIST = f"remap_tb-{VERSION}.tar.gz"
# Entries of the checkout itself, which no third-party distribution may ship.
OWN_ENTRIES = re.compile(r"^(remap_tb\b.*|trainer|__editable__.*|.*\.pth|__pycache__)$")


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = BUILD_TIMEOUT,
        check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} (in {cwd}) failed ({done.returncode}):\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-4000:]}")
    return done


def clean_copy(dst: Path) -> Path:
    """The files a clone of this checkout would have (tracked and not-ignored untracked files)."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO).stdout
    for name in filter(None, listed.split("\0")):
        src = REPO / name
        if src.is_file():  # a tracked file deleted in the working tree is not copied
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    return dst


def isolated_env(venv: Path | None = None, path: str | None = None) -> dict[str, str]:
    """This environment without anything that points Python at the checkout or at its venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", PYTHONWARNINGS="ignore", PIP_DISABLE_PIP_VERSION_CHECK="1")
    if path is not None:
        env["PATH"] = path
    elif venv is not None:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(venv)
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """A clean copy of the repository and what ``python -m build`` made of it (sdist, wheel)."""
    root = tmp_path_factory.mktemp("wheel")
    clone = clean_copy(root / "clone")
    assert not (clone / "remap_tb_frontend" / "node_modules").exists()
    assert not (clone / "remap_tb" / "static" / "index.js").exists(), "the bundle is a build output, not a source"
    dist = root / "dist"
    started = time.monotonic()
    run([sys.executable, "-m", "build", "--outdir", dist], clone, env=isolated_env())
    return {"root": root, "clone": clone, "wheel": dist / WHEEL, "sdist": dist / SDIST,
            "seconds": time.monotonic() - started}


def wheel_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as wheel:
        return {name: wheel.read(name) for name in wheel.namelist()}


def test_sdist_carries_the_frontend_sources_and_the_wheel_the_built_dashboard(built):
    with tarfile.open(built["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for needed in ("remap_tb_frontend/package.json", "remap_tb_frontend/package-lock.json",
                   "remap_tb_frontend/tsconfig.json", "remap_tb_frontend/src/index.ts", "setup.py",
                   "pyproject.toml", "LICENSE", "remap_tb/http_api.md"):
        assert needed in names, f"sdist lacks {needed}"
    assert not [n for n in names if "node_modules" in n or n.startswith("remap_tb/static/")]

    files = wheel_files(built["wheel"])
    bundle = files.get("remap_tb/static/index.js")
    assert bundle, "the wheel has no dashboard bundle"
    assert bundle != assets.FALLBACK_INDEX_JS.encode() and b"built-in placeholder" not in bundle
    assert "remap_tb/http_api.md" in files and "trainer/cli.py" in files
    meta = files[f"remap_tb-{VERSION}.dist-info/METADATA"].decode()
    assert re.search(rf"^Version: {re.escape(VERSION)}$", meta, re.M)
    assert re.search(r"^License-Expression: MIT$", meta, re.M)
    assert f"remap_tb-{VERSION}.dist-info/licenses/LICENSE" in files
    assert re.search(r"^Project-URL: \w+, https://", meta, re.M)
    requires = re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+)(.*)$", meta, re.M)
    plain = {name.lower() for name, rest in requires if "extra ==" not in rest}
    assert {"tensorboard", "numpy", "scikit-learn", "pot", "werkzeug", "torch", "torchvision"} <= plain
    extras = {(name.lower(), re.search(r'extra == "(\w+)"', rest).group(1)) for name, rest in requires
              if "extra ==" in rest}
    assert ("ray", "ray") in extras and ("pytest", "test") in extras and ("playwright", "test") in extras
    entry_points = files[f"remap_tb-{VERSION}.dist-info/entry_points.txt"].decode()
    assert re.search(r"\[tensorboard_plugins\]\s*\nremap = remap_tb\.loader:RemapLoader", entry_points)
    assert re.search(r"\[console_scripts\]\s*\nremap = trainer\.cli:main", entry_points)


def test_pip_wheel_in_the_clone_builds_the_same_bundle(built):
    """``pip wheel . --no-deps`` in a clone with no node_modules runs npm ci and the build itself."""
    out = built["root"] / "pip-wheel"
    run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", out], built["clone"], env=isolated_env())
    files = wheel_files(out / WHEEL)
    static = {n for n in files if n.startswith("remap_tb/static/")}
    built_here = {f"remap_tb/static/{p.name}" for p in (built["clone"] / "remap_tb" / "static").iterdir()}
    assert static == built_here and "remap_tb/static/index.js" in static  # everything the build writes
    assert files["remap_tb/static/index.js"] == wheel_files(built["wheel"])["remap_tb/static/index.js"]


def test_without_node_the_wheel_build_fails_loudly_and_the_editable_build_does_not_need_it(built, tmp_path):
    no_tools = tmp_path / "empty-bin"  # PATH without node, npm (and anything else)
    no_tools.mkdir()
    out = tmp_path / "out"
    failed = run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out], built["clone"],
                 env=isolated_env(path=str(no_tools)), check=False)
    said = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "needs Node.js" in said and "npm is not on PATH" in said and "apt-get install nodejs npm" in said, said[-3000:]
    assert not out.exists() or not list(out.glob("*.whl")), "a wheel without the bundle was written"
    out.mkdir(exist_ok=True)

    editable = run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                    "print(build_meta.build_editable(sys.argv[1]))", out], built["clone"],
                   env=isolated_env(path=str(no_tools)))
    assert (out / editable.stdout.strip().splitlines()[-1]).is_file()


class VenvTensorBoard(TensorBoardProcess):
    """``python -m tensorboard.main`` (what the ``tensorboard`` script runs) of another venv, in ``cwd``."""

    def __init__(self, python: Path, cwd: Path, env: dict[str, str], logdir: str, log_path: Path):
        # TensorBoard's defaults; one local worker is the plugin's default too
        super().__init__(logdir, log_path, load_fast=None, workers=1, reload_interval=None)
        self.command[0] = str(python)
        self.cwd = cwd
        self.env = env

    def start(self) -> "VenvTensorBoard":
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self


def requirement_closure(requirements: list[str]) -> dict[str, importlib.metadata.Distribution]:
    """The repository venv's distributions that ``requirements`` need, transitively.

    A requirement's extras (``cuda-toolkit[cublas]``) bring the requirements their
    markers select; ``requirements`` themselves are taken without extras.
    """
    found: dict[str, importlib.metadata.Distribution] = {}
    done: set[tuple[str, str]] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name not in found:
            found[name] = importlib.metadata.distribution(name)
        for wanted in ["", *sorted(requirement.extras)]:
            if (name, wanted) not in done:
                done.add((name, wanted))
                todo += [(Requirement(r), wanted) for r in found[name].requires or []]
    return found


def fresh_venv(root: Path, requirements: list[str]) -> tuple[Path, Path]:
    """A venv (no pip of its own) that sees only ``requirements`` (and pip), linked from this venv.

    Each distribution of their closure contributes the top-level entries of its
    RECORD (packages, modules, ``.libs``, its dist-info); namespace folders such as
    ``google/`` come whole. Returns (venv, its site-packages).
    """
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], root)
    site = Path(run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    root, env=isolated_env(venv)).stdout.strip())
    deps = root / "deps"
    deps.mkdir()
    for dist in requirement_closure([*requirements, "pip"]).values():
        for file in dist.files or []:
            top = file.parts[0]
            source = Path(dist.locate_file(top))
            if top in ("..", "__pycache__") or top.endswith(".pth") or (deps / top).exists():
                continue
            assert not OWN_ENTRIES.match(top), f"{dist.metadata['Name']} ships {top}"
            (deps / top).symlink_to(source)
    (site / "remap_test_deps.pth").write_text(f"{deps}\n")
    return venv, site


def test_installed_wheel_serves_the_remap_tab_outside_the_repository(built, chromium, tmp_path):
    meta = wheel_files(built["wheel"])[f"remap_tb-{VERSION}.dist-info/METADATA"].decode()
    venv, site = fresh_venv(tmp_path, [r for r in re.findall(r"^Requires-Dist: (.*)$", meta, re.M)
                                       if "extra ==" not in r])
    python = venv / "bin" / "python"
    env = isolated_env(venv)
    user = tmp_path / "user"  # where a user would run tensorboard: no remap_tb/ or trainer/ beside it
    shutil.copytree(built["clone"] / "demo_logs", user / "demo_logs")

    before = run([python, "-c", "import remap_tb"], user, env=env, check=False)
    assert before.returncode != 0 and "No module named 'remap_tb'" in before.stderr, "the venv sees the checkout"
    run([python, "-m", "pip", "install", "--no-index", built["wheel"]], user, env=env)
    run([python, "-m", "pip", "check"], user, env=env)
    where = json.loads(run([python, "-c", "import json, remap_tb, trainer, importlib.metadata as m; "
                            "print(json.dumps({'remap_tb': remap_tb.__file__, 'trainer': trainer.__file__, "
                            "'version': remap_tb.__version__, 'dists': [str(d.locate_file('')) for d in "
                            "m.distributions() if d.metadata['Name'] == 'remap-tb'], 'plugins': "
                            "[e.value for e in m.entry_points(group='tensorboard_plugins')]}))"],
                           user, env=env).stdout)
    assert Path(where["remap_tb"]).is_relative_to(site) and Path(where["trainer"]).is_relative_to(site), where
    assert where["version"] == VERSION and where["dists"] == [str(site)], where
    assert where["plugins"].count("remap_tb.loader:RemapLoader") == 1, where
    # every module imports with the declared dependencies only (ray, the tests' packages: absent)
    run([python, "-c", "import importlib, pkgutil, remap_tb, trainer\n"
         "for package in (remap_tb, trainer):\n"
         "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
         "        importlib.import_module(module.name)"], user, env=env)
    absent = run([python, "-c", "import ray"], user, env=env, check=False)
    assert "No module named 'ray'" in absent.stderr, "the venv sees more than the declared dependencies"
    version = run([venv / "bin" / "remap", "--version"], user, env=env)
    assert version.stdout.strip() == f"remap-tb {VERSION}"

    expected = sum(1 for p in (user / "demo_logs").iterdir() if p.is_dir() and not p.name.startswith("."))
    server = VenvTensorBoard(python, user, env, "demo_logs", tmp_path / "tb.log").start()
    try:
        server.wait_ready(timeout=120, models=expected)
        status, content_type, served = server.get("/data/plugin/remap/index.js")
        installed = (site / "remap_tb" / "static" / "index.js").read_bytes()
        assert status == 200 and content_type.startswith("text/javascript")
        assert served == installed == wheel_files(built["wheel"])["remap_tb/static/index.js"]

        models = models_json(server)
        dash = Dashboard(chromium, server)
        try:
            try:
                dash.wait_drawn(len(models), timeout=60)
            except Exception as e:  # say why: the page's errors and TensorBoard's log
                raise AssertionError(f"the map never drew {len(models)} points: {e}\npage errors: {dash.errors}\n"
                                     f"tensorboard log:\n{server.log()}") from e
            assert sorted(p["id"] for p in dash.points()) == sorted(m["id"] for m in models)
            no_errors(dash)
        finally:
            dash.close()
        # the local worker TensorBoard started runs the installed trainer
        deadline = time.monotonic() + 90
        while not (alive := [w for w in server.plugin_json("queue")["workers"] if w["alive"]]):
            assert time.monotonic() < deadline, f"no worker came alive:\n{server.log()}"
            time.sleep(0.5)
        command = Path(f"/proc/{alive[0]['pid']}/cmdline").read_bytes().split(b"\0")
        assert command[0] == str(python).encode() and b"trainer.worker" in command, command
    finally:
        server.stop()
    assert "Traceback" not in server.log(20000), server.log()
