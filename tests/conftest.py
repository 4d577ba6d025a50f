"""Shared pytest fixtures (registered once here so session scope means once per run)."""

import pytest

from tests.browser import Dashboard, chromium, trained_logdir  # noqa: F401  (session fixtures: one Chromium,
#                                                        one trained logdir for every browser test)
from tests.fixtures_runs import remap_logdir  # noqa: F401  (fixture)


@pytest.fixture
def dashboard(chromium, tensorboard):  # noqa: F811
    """The REMAP tab of the test module's own ``tensorboard`` fixture; fails on any console error."""
    dash = Dashboard(chromium, tensorboard)
    yield dash
    errors = list(dash.errors)
    dash.close()
    assert not errors, f"console/page errors: {errors}"
