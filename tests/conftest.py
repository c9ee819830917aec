"""Suite-wide set-up: an environment free of the developer's shell.

The suite runs on two pytest-xdist workers (`-n 2`, see pyproject.toml): most tests are
independent subprocess runs of TensorFlow, whose start-up and tracing keep one core busy each.
The expensive session fixtures (the tiny trained and exported runs of every family that the
export and demo tests read) are built once for both workers by `tests.shared_builds`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.families import SESSION_ENVIRONMENT, SHELL_VARIABLES, subprocess_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config: pytest.Config) -> None:
    """Drops the developer's shell variables (`tests.families.SHELL_VARIABLES`) for the session."""
    del config
    for name in SHELL_VARIABLES:
        os.environ.pop(name, None)
    SESSION_ENVIRONMENT.update(os.environ)


# How long a user error may take beyond twice the imports' time on this machine now (the
# hang it guards against, tfds.load of unprepared data offline, takes minutes).
FAST_FAIL_SECONDS = 10.0


@pytest.fixture(scope="session")
def fast_fail_seconds() -> float:
    """FAST_FAIL_SECONDS plus twice what importing the zoo's dependencies takes here, so the
    bound holds on a machine busy with other tests but not for a hang."""
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import zoo, tensorflow, keras, tensorflow_datasets"],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    return FAST_FAIL_SECONDS + 2 * (time.monotonic() - start)
