"""Shared fixtures of the export tests: tiny runs trained in mixed_float16, and their exports.

Every family in `tests.families.TINY` is trained once per session (`tests.shared_builds.tiny_run`)
and exported once through `python -m export` (`tiny_export`); the tests read what that wrote.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil

import pytest

from tests.families import TINY
from tests.shared_builds import TINY_RUN_STEPS, tiny_export, tiny_export_stdout, tiny_run

TRAIN_STEPS = TINY_RUN_STEPS


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
    all workers, `tests.shared_builds.tiny_export`; the main's stdout is kept beside it)."""

    def export(family: str) -> Exported:
        export_dir = tiny_export(tmp_path_factory, family)
        manifest = json.loads((export_dir / f"{family}.json").read_text())
        stdout = tiny_export_stdout(export_dir)
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
