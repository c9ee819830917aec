"""Suite-wide set-up: an environment free of the developer's shell.

The suite runs on two pytest-xdist workers (`-n 2`, see pyproject.toml): most tests are
independent subprocess runs of TensorFlow, whose start-up and tracing keep one core busy each.
The expensive session fixtures (the tiny trained and exported runs of every family that the
export and demo tests read) are built once for both workers by `tests.shared_builds`.
"""

from __future__ import annotations

import os

import pytest

from tests.families import SESSION_ENVIRONMENT, SHELL_VARIABLES


def pytest_configure(config: pytest.Config) -> None:
    """Drops the developer's shell variables (`tests.families.SHELL_VARIABLES`) for the session."""
    del config
    for name in SHELL_VARIABLES:
        os.environ.pop(name, None)
    SESSION_ENVIRONMENT.update(os.environ)
