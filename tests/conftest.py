"""Suite-wide set-up: an environment free of the developer's shell, and which tests must share
one pytest-xdist worker.

The suite runs on two workers (`-n 2 --dist=loadgroup`, see pyproject.toml): most tests are
independent subprocess runs of TensorFlow, whose start-up and tracing keep one core busy each.
Tests that share an expensive session or module fixture (tiny trained and exported runs, the
tiny classifier, a trained run) are kept on one worker, so each fixture is built once.
"""

from __future__ import annotations

import os

import pytest

from tests.families import SESSION_ENVIRONMENT, SHELL_VARIABLES

# Directories whose tests share session fixtures, and files whose tests share module ones.
SHARED_DIRECTORIES = ("export", "demo", "eval")
SHARED_FILES = (
    "test_cli.py",
    "test_multi_worker.py",
    "test_tools_cli.py",
    "test_text.py",
    "test_checkpoint_recovery.py",
)


def pytest_configure(config: pytest.Config) -> None:
    """Drops the developer's shell variables (`tests.families.SHELL_VARIABLES`) for the session."""
    del config
    for name in SHELL_VARIABLES:
        os.environ.pop(name, None)
    SESSION_ENVIRONMENT.update(os.environ)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    del config
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        relative = os.path.relpath(str(item.path), tests_dir)
        top = relative.split(os.sep)[0]
        if top in SHARED_DIRECTORIES:
            item.add_marker(pytest.mark.xdist_group(top))
        elif os.path.basename(relative) in SHARED_FILES:
            item.add_marker(pytest.mark.xdist_group(relative))
