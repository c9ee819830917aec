"""A run directory has one writer: the lock on `MODEL_DIR/.lock`, and writability checked first.

Through `train_main.py`: a second run on a directory a training run holds is refused with one
line naming the holder and exit code 2 while the first trains on; a SIGKILLed run leaves no
stale lock; a `--model_dir` that cannot be a writable directory fails in seconds, before any
data or model is built. The tests run as root here, which ignores permission bits, so
unwritable directories are ones that refuse root too: a path through a regular file, `/proc`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests import zygote
from tests.families import run_command, subprocess_env
from tests.test_cli import (
    GAN,
    REPO,
    TRAIN_MAIN,
    assert_usage_error,
    checkpoint_steps,
    metrics_records,
    train,
)
from zoo.errors import UsageError
from zoo.rundir import LOCK_FILE, RunDirectoryLock, check_writable_dir, this_host


def test_a_second_lock_is_refused_naming_the_holder(tmp_path):
    with RunDirectoryLock(str(tmp_path)) as lock:
        assert (tmp_path / LOCK_FILE).read_text() == f"pid {os.getpid()} on host {this_host()}\n"
        with pytest.raises(UsageError, match=f"pid {os.getpid()} on host {this_host()}"):
            RunDirectoryLock(str(tmp_path)).acquire()
        assert lock.path == str(tmp_path / LOCK_FILE)
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released: emptied, not removed
    with RunDirectoryLock(str(tmp_path)):
        pass


def test_writable_directories_are_checked(tmp_path):
    new = tmp_path / "a" / "b"
    check_writable_dir(str(new), "--model_dir")
    assert new.is_dir() and list(new.iterdir()) == []  # the probe file is gone
    a_file = tmp_path / "file"
    a_file.write_text("x")
    unwritable = [
        (a_file, "exists and is not a directory"),
        (a_file / "sub", "Not a directory"),
        ("/proc/ganzoo_test", "cannot create"),  # /proc refuses root too
        ("/proc", "cannot write"),
    ]
    for path, message in unwritable:
        with pytest.raises(UsageError, match=message) as raised:
            check_writable_dir(str(path), "--model_dir")
        assert f"--model_dir={path}" in str(raised.value)
    assert a_file.read_text() == "x"


@pytest.mark.slow
def test_run_releases_the_lock_when_it_fails(tmp_path):
    from zoo import train as zoo_train

    rc = zoo_train.RunConfig(model="gan", dataset="nosuch", model_dir=str(tmp_path), batch_size=16)
    with pytest.raises(UsageError, match="unknown dataset"):  # raised with the lock held
        zoo_train.run(rc)
    assert (tmp_path / LOCK_FILE).exists()
    with RunDirectoryLock(str(tmp_path)):
        pass


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", "under-file", "proc-missing", "proc"])
def test_unusable_model_dir_is_one_line_and_fast(tmp_path, kind, fast_fail_seconds):
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    model_dir = {
        "file": a_file,
        "under-file": a_file / "run",
        "proc-missing": "/proc/ganzoo_test",
        "proc": "/proc",
    }[kind]
    start = time.monotonic()
    code, out, err = train(*GAN, "--train_steps=3", f"--model_dir={model_dir}")
    elapsed = time.monotonic() - start
    assert_usage_error(code, err, [f"--model_dir={model_dir}"])
    assert elapsed < fast_fail_seconds, f"took {elapsed:.1f} s (bound {fast_fail_seconds:.1f} s)"
    assert out == ""
    assert a_file.read_text() == "not a directory"
    assert os.listdir(tmp_path) == ["file"]


def _start_training(model_dir, *extra: str) -> subprocess.Popen:
    """A long gan run in the background; returns once it is training (metrics written)."""
    proc = zygote.popen(
        [sys.executable, TRAIN_MAIN, *GAN, f"--model_dir={model_dir}", *extra],
        cwd=REPO,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 90
    while not (model_dir / "metrics.jsonl").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"run did not start training (exit {proc.returncode}):\n{err[-2000:]}")
        time.sleep(0.05)
    return proc


@pytest.mark.slow
def test_second_run_on_a_training_directory_is_refused(tmp_path):
    model_dir = tmp_path / "run"
    flags = ["--train_steps=100000", "--checkpoint_every=0", "--log_every=5"]
    first = _start_training(model_dir, *flags)
    try:
        code, out, err = train(*GAN, f"--model_dir={model_dir}", *flags)
        assert_usage_error(
            code, err, [str(model_dir), f"pid {first.pid}", this_host(), "--model_dir"]
        )
        assert "resuming" not in out and "done:" not in out
        assert first.poll() is None, "the first run stopped"
        first.send_signal(signal.SIGTERM)  # it checkpoints and exits 143
        _, first_err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 143, first_err
    steps = [r["step"] for r in metrics_records(model_dir)]
    assert steps == sorted(set(steps)), "metrics.jsonl has duplicate or out-of-order steps"
    assert len(checkpoint_steps(model_dir)) == 1


@pytest.mark.slow
def test_a_killed_run_leaves_no_stale_lock(tmp_path):
    model_dir = tmp_path / "run"
    killed = _start_training(model_dir, "--train_steps=100000", "--checkpoint_every=0")
    killed.kill()
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL
    assert f"pid {killed.pid}" in (model_dir / LOCK_FILE).read_text()  # the file stays

    code, out, err = train(*GAN, f"--model_dir={model_dir}", "--train_steps=3")
    assert code == 0, err
    assert out.splitlines()[-1] == f"done: 3 steps in {model_dir}"
    assert (model_dir / LOCK_FILE).read_text() == ""


@pytest.mark.slow
def test_eval_reads_a_run_that_holds_its_lock(tmp_path):
    model_dir = tmp_path / "run"
    code, _, err = train(*GAN, f"--model_dir={model_dir}", "--train_steps=3")
    assert code == 0, err
    with RunDirectoryLock(str(model_dir)):  # as a training run holds it
        result = run_command(
            [
                sys.executable,
                os.path.join(REPO, "eval_main.py"),
                f"--model_dir={model_dir}",
                "--num_samples=200",
            ],
            timeout=120,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"step": 3' in result.stdout
