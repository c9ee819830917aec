"""The export directory as a real user meets it: unusable directories, killed exports, runs
that are training.

`--export_dir` that cannot be a writable directory is one line and exit 2 before the run is
loaded. An export SIGKILLed mid-way leaves no version, and the next export removes the staging
it left (`.tmp-<pid>@<host>-*`) but not the staging of an export that is still alive. Export
only reads a run directory, so it works while a training run holds the run's lock. (Tests run
as root, which ignores permission bits: the unwritable directories refuse root too.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from export.staging import prefix as staging_prefix
from tests import zygote
from tests.export.conftest import TRAIN_STEPS, listing
from tests.families import REPO, run_export, subprocess_env
from tests.test_cli import assert_usage_error
from zoo.rundir import RunDirectoryLock, host_tag

pytestmark = pytest.mark.slow

FAMILY = "dcgan"


def staging_left(root) -> list[str]:
    """Every `.tmp-*` path under `root`."""
    return [path for path in listing(root) if os.path.basename(path).startswith(".tmp-")]


def test_unusable_export_dir_is_one_line(run_dir, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    for export_dir in (a_file, a_file / "out", "/proc"):
        result = run_export(f"--model_dir={run_dir}", f"--export_dir={export_dir}")
        assert_usage_error(result.returncode, result.stderr, [f"--export_dir={export_dir}"])
    assert a_file.read_text() == "not a directory"


def test_export_works_while_a_run_holds_the_lock(run_dir, tmp_path):
    out = tmp_path / "out"
    with RunDirectoryLock(str(run_dir)):
        result = run_export(
            f"--model_dir={run_dir}", f"--export_dir={out}", "--formats=saved_model"
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / FAMILY / str(TRAIN_STEPS) / "saved_model.pb").exists()


def test_export_killed_midway_is_cleaned_by_the_next(run_dir, tmp_path):
    out = tmp_path / "out"
    proc = zygote.popen(
        [sys.executable, "-m", "export", f"--model_dir={run_dir}", f"--export_dir={out}"],
        cwd=REPO,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        # Killed once a TFLite file is staged: the SavedModel is staged too, nothing committed.
        while not [n for n in staging_left(out) if n.endswith(".tflite")]:
            assert proc.poll() is None, f"export ended ({proc.returncode}) before it was killed"
            assert time.monotonic() < deadline, "no staged TFLite file after 180 s"
            time.sleep(0.02)
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    left = staging_left(out)
    assert any(n.startswith(f"{FAMILY}{os.sep}.tmp-") for n in left), left
    assert any(n.endswith(".tflite") for n in left), left
    assert all(n.startswith(".tmp-") for n in os.listdir(out / FAMILY))  # no version
    assert not (out / f"{FAMILY}.json").exists()

    result = run_export(f"--model_dir={run_dir}", f"--export_dir={out}", "--formats=saved_model")
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(out / FAMILY) == [str(TRAIN_STEPS)]
    assert staging_left(out) == []


def test_staging_of_a_live_export_is_kept(run_dir, tmp_path):
    out = tmp_path / "out"
    (out / FAMILY).mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    live = staging_prefix()  # this test process: alive, and not the export's
    kept = [
        f"{FAMILY}/{live}{TRAIN_STEPS}-abcd",
        f"{live}efgh.tflite",
        f".tmp-{dead_pid}@elsewhere-ijkl.tflite",  # another host: its PID means nothing here
        ".tmp-mnop.tflite",  # no owner in the name
    ]
    removed = [
        f"{FAMILY}/.tmp-{dead_pid}@{host_tag()}-{TRAIN_STEPS}-qrst",
        f".tmp-{dead_pid}@{host_tag()}-uvwx.json",
    ]
    for name in kept + removed:
        if name.endswith((".tflite", ".json")):
            (out / name).write_text("staged")
        else:
            (out / name).mkdir()
            (out / name / "saved_model.pb").write_text("staged")

    result = run_export(f"--model_dir={run_dir}", f"--export_dir={out}", "--formats=saved_model")
    assert result.returncode == 0, result.stderr[-3000:]
    assert staging_left(out) == sorted(os.path.normpath(n) for n in kept)
    assert (out / FAMILY / str(TRAIN_STEPS) / "saved_model.pb").exists()
