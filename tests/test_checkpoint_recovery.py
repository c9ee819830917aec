"""Damaged checkpoints and full disks as a user meets them through the mains.

A run whose newest checkpoint cannot be read (random bytes, truncated) is started again with
the same command: it says in one line which checkpoint it set aside, resumes from the one
before, retrains, and its final checkpoint is a fresh readable one that `python -m export`
takes. Export and eval of such a run fall back to the newest readable checkpoint with a
warning. A save that fails mid-run (here a file-size limit makes the write fail for real) is
one line and exit code 1, leaves no staging behind, and the next run resumes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.families import REPO, run_command, run_export, run_main, tiny_flags
from tests.shared_builds import build_once
from tests.test_cli import checkpoint_steps, latest_checkpoint_step
from zoo.core.checkpoint import unreadable

pytestmark = pytest.mark.slow

FLAGS = [*tiny_flags("dcgan"), "--batch_size=8", "--checkpoint_every=2", "--log_every=2"]
TOY_FLAGS = ["--model=gan", "--dataset=ring8", "--batch_size=16", "--checkpoint_every=2"]


def _train(model_dir, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    return run_main([*FLAGS, f"--model_dir={model_dir}", *extra], **kwargs)


@pytest.fixture(scope="module")
def four_steps(tmp_path_factory):
    """A tiny DCGAN run of 4 steps with checkpoints ckpt-2 and ckpt-4 (built once for both
    workers; tests damage copies of it)."""

    def build(model_dir):
        result = _train(model_dir, "--train_steps=4")
        assert result.returncode == 0, result.stderr[-3000:]
        assert checkpoint_steps(model_dir) == [2, 4]

    return build_once(tmp_path_factory, "recovery-four-steps", build)


@pytest.fixture
def run_dir(four_steps, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(four_steps, copy)
    return copy


def _data_file(model_dir, step: int):
    return model_dir / "checkpoints" / f"ckpt-{step}.data-00000-of-00001"


def _random_bytes(path):
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def _truncate(path):
    os.truncate(path, 1000)


@pytest.mark.parametrize("damage", [_random_bytes, _truncate], ids=["random-bytes", "truncated"])
def test_rerun_sets_the_damaged_checkpoint_aside_retrains_and_exports(run_dir, tmp_path, damage):
    damage(_data_file(run_dir, 4))
    result = _train(run_dir, "--train_steps=4")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("warning: checkpoint ckpt-4 cannot be read (")
    assert lines[0].endswith("set aside as ckpt-4.corrupt")
    assert f"resuming {run_dir} from step 2" in result.stdout
    assert result.stdout.splitlines()[-1] == f"done: 4 steps in {run_dir}"

    checkpoints = run_dir / "checkpoints"
    assert checkpoint_steps(run_dir) == [2, 4]
    assert latest_checkpoint_step(run_dir) == 4
    assert unreadable(str(checkpoints / "ckpt-4")) is None
    assert (checkpoints / "ckpt-4.corrupt" / "ckpt-4.index").exists()

    out = tmp_path / "out"
    result = run_export(f"--model_dir={run_dir}", f"--export_dir={out}", "--formats=saved_model")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    assert (out / "dcgan" / "4" / "saved_model.pb").exists()


def test_export_falls_back_to_the_newest_readable_checkpoint(run_dir, tmp_path):
    _truncate(_data_file(run_dir, 4))
    before = sorted(os.listdir(run_dir / "checkpoints"))
    out = tmp_path / "out"
    result = run_export(f"--model_dir={run_dir}", f"--export_dir={out}", "--formats=saved_model")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("warning: checkpoint ckpt-4 (Read less bytes than requested)")
    assert "using ckpt-2" in lines[0]
    assert (out / "dcgan" / "2" / "saved_model.pb").exists()  # the version is its step
    assert sorted(os.listdir(run_dir / "checkpoints")) == before  # export moves nothing


def _run_eval(model_dir) -> subprocess.CompletedProcess:
    return run_command(
        [sys.executable, os.path.join(REPO, "eval_main.py"), f"--model_dir={model_dir}"]
    )


def test_eval_falls_back_and_says_so_then_refuses_when_none_is_readable(tmp_path):
    model_dir = tmp_path / "toy"
    result = run_main([*TOY_FLAGS, "--train_steps=4", f"--model_dir={model_dir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    _truncate(_data_file(model_dir, 4))

    result = _run_eval(model_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["step"] == 2
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "ckpt-4" in warnings[0] and "using ckpt-2" in warnings[0]

    _truncate(_data_file(model_dir, 2))
    result = _run_eval(model_dir)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: no readable checkpoint in ")
    assert "ckpt-4" in result.stderr and "ckpt-2" in result.stderr


def _file_size_limit(limit: int):
    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond it fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_file_size


def test_a_failing_save_is_one_line_exit_1_and_the_next_run_resumes(run_dir):
    limit = _data_file(run_dir, 4).stat().st_size // 2  # logs and pictures stay far below it
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "train_main.py"),
            *FLAGS,
            f"--model_dir={run_dir}",
            "--train_steps=6",
        ],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "TPU_NAME")},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_file_size_limit(limit),
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.count("\n") == 1, proc.stderr
    line = proc.stderr.rstrip("\n")
    assert line.startswith("error: cannot save checkpoint ckpt-6 in "), line
    assert "File too large" in line and "ckpt-4 is kept" in line
    assert "done:" not in proc.stdout
    assert sorted(os.listdir(run_dir / "checkpoints")) == [
        "checkpoint",
        "ckpt-2.data-00000-of-00001",
        "ckpt-2.index",
        "ckpt-4.data-00000-of-00001",
        "ckpt-4.index",
    ]
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-4")

    result = _train(run_dir, "--train_steps=6")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    assert f"resuming {run_dir} from step 4" in result.stdout
    assert checkpoint_steps(run_dir) == [2, 4, 6]
    assert latest_checkpoint_step(run_dir) == 6


@pytest.mark.slow
@pytest.mark.parametrize("target", ["metrics.jsonl", "samples/latest.png"])
def test_a_failing_write_of_metrics_or_pictures_is_one_line_exit_1_and_resumes(tmp_path, target):
    # A directory where the file goes: its write fails as on a full disk (an OSError).
    model_dir = tmp_path / "toy"
    flags = [*TOY_FLAGS, "--log_every=1", "--sample_every=1", f"--model_dir={model_dir}"]
    result = run_main([*flags, "--train_steps=2"])
    assert result.returncode == 0, result.stderr[-3000:]
    path = model_dir / target
    saved = path.read_bytes()
    path.unlink()
    (path / "blocker").mkdir(parents=True)
    result = run_main([*flags, "--train_steps=4"])
    assert result.returncode == 1, result.stderr[-3000:]
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, result.stderr
    assert line.startswith(f"error: cannot write {path}: ") and "rerun" in line, line
    assert latest_checkpoint_step(model_dir) == 2
    shutil.rmtree(path)
    path.write_bytes(saved)
    result = run_main([*flags, "--train_steps=4"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming {model_dir} from step 2" in result.stdout
    assert latest_checkpoint_step(model_dir) == 4


@pytest.mark.slow
def test_a_resumed_run_logs_each_step_once_after_a_kill_past_its_checkpoint(tmp_path):
    # As a run killed at step 7 after ckpt-4 leaves it: records of steps 5-6, a torn line.
    model_dir = tmp_path / "toy"
    flags = [*TOY_FLAGS, "--log_every=1", f"--model_dir={model_dir}"]
    result = run_main([*flags, "--train_steps=4"])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = model_dir / "metrics.jsonl"
    with open(metrics, "a") as f:
        f.write('{"step": 5, "time": 0}\n{"step": 6, "time": 0}\n{"step": 7, "d_lo')
    result = run_main([*flags, "--train_steps=6"])
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all(r["time"] > 0 for r in records)  # steps 5 and 6 are the resumed run's
