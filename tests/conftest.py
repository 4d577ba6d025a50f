"""Shared pytest fixtures (registered once here so session scope means once per run)."""

from tests.browser import chromium  # noqa: F401  (fixture: one Chromium for every browser test)
from tests.fixtures_runs import remap_logdir  # noqa: F401  (fixture)
