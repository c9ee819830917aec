"""Expensive fixtures built once per test session, whichever pytest-xdist worker asks first.

The suite runs on two xdist workers (pyproject.toml). A session fixture is per worker, so the
tiny trained and exported runs that the export and demo tests read would be built by each worker
that runs one of those tests. Grouping such tests on one worker (`--dist=loadgroup`) silently
stopped working with pytest 9.2 (pytest-dev/pytest-xdist#1386: xdist's group suffix on node ids
no longer takes effect, so the tests are dealt out one by one and both workers built every
fixture), and it left the other worker without that work anyway. Instead, `build_once` builds
into a directory shared by the workers of the session, under a file lock: the first worker
builds it, a worker that asks meanwhile waits for it, and later ones reuse it. What it builds
is read-only for the tests (a test that damages a run works on its own copy).
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import shutil
from collections.abc import Callable

import pytest

from tests.families import run_main, tiny_flags

# Steps and batch of the shared tiny runs (`tiny_run`).
TINY_RUN_STEPS = 3
TINY_RUN_BATCH = 8


def session_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A directory every worker of this session shares (the workers' common base temp)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    shared = root / "shared"
    shared.mkdir(exist_ok=True)
    return shared


def build_once(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    build: Callable[[pathlib.Path], None],
) -> pathlib.Path:
    """`session_root/name`, made by `build(directory)` in the first worker that asks for it.

    A failed build leaves no mark, so the next request builds again (and fails in its own
    test). Locks are taken in the order the fixtures call each other (an export before the
    run it exports), so two workers cannot wait on each other.
    """
    return build_in(session_root(tmp_path_factory), name, build)


def build_in(root: pathlib.Path, name: str, build: Callable[[pathlib.Path], None]) -> pathlib.Path:
    """`build_once` in a given shared directory `root`."""
    directory, done = root / name, root / f"{name}.built"  # the mark beside it, not in it
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            build(directory)
            done.touch()
    return directory


def tiny_run(
    tmp_path_factory: pytest.TempPathFactory, family: str, precision: str = "mixed_float16"
) -> pathlib.Path:
    """The run directory of `family`'s tiny run (`tests.families.TINY`), trained for
    TINY_RUN_STEPS steps of TINY_RUN_BATCH under `precision`, once per session for all workers
    (the export tests and tests/test_smoke.py read the same runs)."""

    def build(run_dir: pathlib.Path) -> None:
        result = run_main(
            [
                *tiny_flags(family),
                f"--model_dir={run_dir}",
                f"--train_steps={TINY_RUN_STEPS}",
                f"--batch_size={TINY_RUN_BATCH}",
                f"--mixed_precision={precision}",
            ]
        )
        assert result.returncode == 0, result.stderr[-3000:]

    name = f"run-{family}" if precision == "mixed_float16" else f"run-{family}-{precision}"
    return build_once(tmp_path_factory, name, build)
