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

from tests.families import run_export, run_main, tiny_flags

# Steps and batch of the shared tiny runs (`tiny_run`), and how often they sample and log (they
# checkpoint at the end only: the export tests damage that one checkpoint).
TINY_RUN_STEPS = 4
TINY_RUN_BATCH = 8
TINY_RUN_EVERY = 2
# The shared tiny runs train under `mirrored` on two virtual CPU devices: the same driver and
# run directory as the default strategy plus the strategy's own paths (tests/test_smoke.py
# checks what they wrote).
TINY_RUN_STRATEGY = ["--strategy=mirrored", "--num_virtual_devices=2"]


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


def tiny_run_stdout(run_dir: pathlib.Path) -> str:
    """What `train_main.py` printed while training the tiny run in `run_dir`."""
    return (run_dir.parent / f"{run_dir.name}.stdout").read_text()


def tiny_run(
    tmp_path_factory: pytest.TempPathFactory, family: str, precision: str = "mixed_float16"
) -> pathlib.Path:
    """The run directory of `family`'s tiny run (`tests.families.TINY`), trained by
    `train_main.py` for TINY_RUN_STEPS steps of TINY_RUN_BATCH under `precision` and
    TINY_RUN_STRATEGY, once per session for all workers (the export, smoke and demo tests read
    the same runs; `tiny_run_stdout` gives what the run printed)."""

    def build(run_dir: pathlib.Path) -> None:
        every = TINY_RUN_EVERY
        result = run_main(
            [
                *tiny_flags(family),
                f"--model_dir={run_dir}",
                f"--train_steps={TINY_RUN_STEPS}",
                f"--batch_size={TINY_RUN_BATCH}",
                "--checkpoint_every=0",
                f"--sample_every={every}",
                f"--log_every={every}",
                f"--mixed_precision={precision}",
                *TINY_RUN_STRATEGY,
            ]
        )
        assert result.returncode == 0, result.stderr[-3000:]
        (run_dir.parent / f"{run_dir.name}.stdout").write_text(result.stdout)

    name = f"run-{family}" if precision == "mixed_float16" else f"run-{family}-{precision}"
    return build_once(tmp_path_factory, name, build)


def tiny_export(tmp_path_factory: pytest.TempPathFactory, family: str) -> pathlib.Path:
    """`family`'s tiny run (mixed_float16) exported in every format by `python -m export`, once
    per session for all workers (the export and demo tests read it); the main's stdout is kept
    beside it (`tiny_export_stdout`)."""

    def build(export_dir: pathlib.Path) -> None:
        result = run_export(
            f"--model_dir={tiny_run(tmp_path_factory, family)}", f"--export_dir={export_dir}"
        )
        assert result.returncode == 0, result.stderr[-3000:]
        (export_dir.parent / f"{export_dir.name}.stdout").write_text(result.stdout)

    return build_once(tmp_path_factory, f"export-{family}", build)


def tiny_export_stdout(export_dir: pathlib.Path) -> str:
    """What `python -m export` printed while writing the tiny export in `export_dir`."""
    return (export_dir.parent / f"{export_dir.name}.stdout").read_text()


# Phase-2 steps of the shared StackGAN phase-2 run (`tiny_stage2_run`).
TINY_STAGE2_STEPS = 2


def tiny_stage2_run(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """StackGAN's tiny run (phase 1, `tiny_run`) copied and trained TINY_STAGE2_STEPS steps of
    phase 2 under TINY_RUN_STRATEGY in mixed_float16, once per session for all workers
    (tests/models/test_stackgan.py checks it, the demo tests export it)."""

    def build(run_dir: pathlib.Path) -> None:
        shutil.rmtree(run_dir)
        shutil.copytree(tiny_run(tmp_path_factory, "stackgan"), run_dir)
        result = run_main(
            [
                *tiny_flags("stackgan"),
                f"--model_dir={run_dir}",
                f"--batch_size={TINY_RUN_BATCH}",
                "--stage=2",
                f"--train_steps={TINY_STAGE2_STEPS}",
                f"--log_every={TINY_STAGE2_STEPS}",
                "--mixed_precision=mixed_float16",
                *TINY_RUN_STRATEGY,
            ]
        )
        assert result.returncode == 0, result.stderr[-3000:]

    return build_once(tmp_path_factory, "run-stackgan-stage2", build)
