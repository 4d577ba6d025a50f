"""Build step of remap-tb: the wheel carries the dashboard bundle built from remap_tb_frontend/.

Metadata lives in pyproject.toml. ``build_py`` (which every wheel build runs)
first builds ``remap_tb/static/index.js`` with Node.js and npm: ``npm ci`` when
``remap_tb_frontend/node_modules`` is missing or older than the lockfile, then
``npm run build`` (esbuild). Without Node.js/npm the build stops with an error
saying what to install, so no wheel without its dashboard is ever made. An
editable install (``pip install -e .``) skips the step: it serves the checkout's
``remap_tb/static/``, which ``.ci/setup`` (or ``npm run build``) fills.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.errors import ExecError

HERE = os.path.dirname(os.path.abspath(__file__))
FRONTEND = os.path.join(HERE, "remap_tb_frontend")
BUNDLE = os.path.join(HERE, "remap_tb", "static", "index.js")
MIN_NODE = 18  # esbuild's minimum

NO_NODE = ("remap-tb: building the wheel needs Node.js (>= {min}) and npm to build the dashboard bundle "
           "remap_tb/static/index.js from remap_tb_frontend/, and {what}. Install them (Debian/Ubuntu: "
           "apt-get install nodejs npm; or https://nodejs.org) and build again; a wheel without the bundle "
           "would show an empty REMAP tab, so none is made.")


def _run(command: list[str], cwd: str) -> None:
    print(f"remap-tb: running {' '.join(command)} in {cwd}", flush=True)
    try:
        done = subprocess.run(command, cwd=cwd, check=False)
    except OSError as e:
        raise ExecError(f"remap-tb: could not run {' '.join(command)}: {e}") from e
    if done.returncode != 0:
        raise ExecError(f"remap-tb: '{' '.join(command)}' failed (exit code {done.returncode}) in {cwd}; "
                        "its output is above. The wheel needs the dashboard bundle, so none is made.")


def _check_node() -> str:
    """Path of npm, after checking that node and npm exist and node is new enough."""
    npm = shutil.which("npm")
    node = shutil.which("node")
    if npm is None or node is None:
        raise ExecError(NO_NODE.format(min=MIN_NODE, what=f"{'npm' if npm is None else 'node'} is not on PATH"))
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    found = re.match(r"v(\d+)\.", version)
    if found is None or int(found.group(1)) < MIN_NODE:
        raise ExecError(NO_NODE.format(min=MIN_NODE, what=f"{node} is version {version or 'unknown'}"))
    return npm


def build_frontend() -> None:
    """Build remap_tb/static/index.js from remap_tb_frontend/ (``npm ci`` if needed, ``npm run build``)."""
    if not os.path.isfile(os.path.join(FRONTEND, "package.json")):
        if os.path.isfile(BUNDLE):
            return  # a source tree that ships the bundle without its sources
        raise ExecError("remap-tb: neither remap_tb_frontend/ (the dashboard sources) nor a built "
                        "remap_tb/static/index.js is here; build from a full clone or the sdist.")
    npm = _check_node()
    lock = os.path.join(FRONTEND, "package-lock.json")
    installed = os.path.join(FRONTEND, "node_modules", ".package-lock.json")  # npm writes it on install
    if not os.path.isfile(installed) or os.path.getmtime(lock) > os.path.getmtime(installed):
        _run([npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], FRONTEND)
    _run([npm, "run", "build"], FRONTEND)
    if not os.path.isfile(BUNDLE) or os.path.getsize(BUNDLE) == 0:
        raise ExecError(f"remap-tb: 'npm run build' finished but wrote no {BUNDLE}")


class BuildPyWithDashboard(build_py):
    """``build_py`` that builds the dashboard bundle first (not in editable mode)."""

    def run(self) -> None:
        if not self.editable_mode:
            build_frontend()
            # The package-data list may have been computed (by egg_info) before the
            # bundle existed; drop it so static/index.js is found now.
            self.__dict__.pop("data_files", None)
        super().run()


setup(cmdclass={"build_py": BuildPyWithDashboard})
