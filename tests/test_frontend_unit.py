"""The dashboard's TypeScript unit tests and type check, run from pytest so the README's
single test command covers them (``npm test`` bundles test/*.test.ts and runs
``node --test``; ``npm run typecheck`` is ``tsc --noEmit`` over src and test)."""

from __future__ import annotations

import re
import shutil
import subprocess

from tests.browser import REPO

FRONTEND = REPO / "remap_tb_frontend"


def npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    exe = shutil.which("npm")
    assert exe, "npm is not on PATH (the README's set-up installs Node 20 with npm)"
    assert (FRONTEND / "node_modules").is_dir(), "remap_tb_frontend/node_modules is missing: run npm ci there"
    return subprocess.run([exe, *args], cwd=FRONTEND, capture_output=True, text=True, timeout=timeout)


def test_typescript_unit_tests_pass():
    done = npm("test")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    counts = {key: int(value) for key, value in re.findall(r"^# (tests|pass|fail|cancelled) (\d+)$", out, re.M)}
    assert counts.get("tests", 0) > 0 and counts.get("pass") == counts["tests"], out[-3000:]
    assert counts.get("fail") == 0 and counts.get("cancelled", 0) == 0, out[-3000:]


def test_typescript_typechecks():
    done = npm("run", "typecheck")
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
