"""Shared fixtures of the export tests: tiny runs trained in mixed_float16, and their exports.

Every family in `tests.families.TINY` is trained once per session (3 steps, batch 8) and
exported once through `python -m export`; the tests read what that wrote.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.families import REPO, TINY, subprocess_env
from tests.shared_builds import TINY_RUN_STEPS, build_once, tiny_run

TRAIN_STEPS = TINY_RUN_STEPS


def run_export(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs `python -m export ARGS` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "export", *args],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def train_tiny(tmp_path_factory):
    """family -> run directory of a tiny run trained with --mixed_precision=mixed_float16
    (once per session for all workers, `tests.shared_builds.tiny_run`)."""
    return lambda family: tiny_run(tmp_path_factory, family)


@dataclasses.dataclass
class Exported:
    family: str
    run_dir: pathlib.Path
    export_dir: pathlib.Path
    stdout: str
    manifest: dict


@pytest.fixture(scope="session")
def export_tiny(train_tiny, tmp_path_factory):
    """family -> its tiny run exported in every format by the thin main (once per session for
    all workers; the main's stdout is kept beside the export)."""

    def build(export_dir: pathlib.Path, family: str) -> None:
        result = run_export(f"--model_dir={train_tiny(family)}", f"--export_dir={export_dir}")
        assert result.returncode == 0, result.stderr[-3000:]
        (export_dir.parent / f"export-{family}.stdout").write_text(result.stdout)

    def export(family: str) -> Exported:
        export_dir = build_once(tmp_path_factory, f"export-{family}", lambda d: build(d, family))
        stdout = (export_dir.parent / f"export-{family}.stdout").read_text()
        manifest = json.loads((export_dir / f"{family}.json").read_text())
        return Exported(family, train_tiny(family), export_dir, stdout, manifest)

    return export


@pytest.fixture(scope="session", params=sorted(TINY))
def exported(request, export_tiny) -> Exported:
    """Each family's tiny export. pytest keeps one parameter of a session fixture at a time and
    rebuilds it when tests switch back to a family, so the exports are cached in `export_tiny`."""
    return export_tiny(request.param)


@pytest.fixture
def run_dir(train_tiny, tmp_path):
    """A private copy of the tiny DCGAN run (tests may damage it)."""
    copy = tmp_path / "run"
    shutil.copytree(train_tiny("dcgan"), copy)
    return copy


def listing(root) -> list[str]:
    """Every path under `root`, hidden ones included."""
    return sorted(
        os.path.relpath(os.path.join(d, n), root)
        for d, dirs, files in os.walk(root)
        for n in dirs + files
    )
