"""Killed at any point: a run killed from outside (a real SIGKILL) while it writes a checkpoint,
a sample PNG or `config.json` resumes and ends with the very weights of a run that was never
interrupted, and leaves nothing half-written behind.

Each killed run hangs inside one write (hooks installed in its own interpreter before training:
after the temporary file of `zoo.io.atomic_path` is written but before its rename; after the
checkpoint's shards are written but before TensorFlow merges them into `ckpt-N`); the test waits
for the hang, then kills it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.core.test_resume import _assert_same, _variables
from tests.families import REPO, TINY, subprocess_env

_SCRIPT = """
import contextlib, os, sys, time
from tensorflow.python.checkpoint import functional_saver
import zoo.core.images, zoo.io
from zoo import run as zoo_run
from zoo import train

model_dir, stall, marker = sys.argv[1:]

def hang(where):
    with open(marker + ".part", "w") as f:
        f.write(where)
    os.replace(marker + ".part", marker)
    time.sleep(600)

atomic_path = zoo.io.atomic_path

@contextlib.contextmanager
def slow_atomic_path(path, suffix=""):
    with atomic_path(path, suffix) as tmp:
        yield tmp
        if os.path.basename(path) == stall:
            hang(tmp)

zoo.io.atomic_path = zoo.core.images.atomic_path = slow_atomic_path
merge = functional_saver.gen_io_ops.merge_v2_checkpoints

def slow_merge(checkpoint_prefixes, destination_prefix, **kwargs):
    prefix = destination_prefix.numpy().decode()
    if os.path.basename(prefix) == stall:
        hang(prefix)
    return merge(checkpoint_prefixes, destination_prefix, **kwargs)

functional_saver.gen_io_ops.merge_v2_checkpoints = slow_merge
rc = zoo_run.RunConfig(model="dcgan", dataset={dataset!r}, model_dir=model_dir, train_steps=6,
                       batch_size=8, seed=3, deterministic=True, checkpoint_every=2,
                       sample_every=2, log_every=0)
result = train.run(rc, {overrides!r})
print("RESULT", result.status, result.resumed_from, result.step, flush=True)
"""


def _marker(tmp_path, name, stall):
    return tmp_path / f"{name}-{stall}.hung"


def _start(tmp_path, name, stall=""):
    """Starts the tiny dcgan training into `tmp_path/name`, hanging in the write of `stall`."""
    dataset, overrides = TINY["dcgan"]
    log = open(tmp_path / f"{name}-{stall}.log", "w+")  # noqa: SIM115 (closed by _finish)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SCRIPT.format(dataset=dataset, overrides=list(overrides)),
            str(tmp_path / name),
            stall,
            str(_marker(tmp_path, name, stall)),
        ],
        cwd=REPO,
        env=subprocess_env({"PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, log


def _finish(process, log, timeout=240):
    """Waits for a run to end; returns its return code and output."""
    try:
        process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.seek(0)
        output = log.read()
        log.close()
    return process.returncode, output


def _kill_inside(tmp_path, name, stall, timeout=240):
    """Runs until the run hangs inside the write of `stall`, SIGKILLs it; returns the temporary
    path it was writing."""
    process, log = _start(tmp_path, name, stall)
    marker = _marker(tmp_path, name, stall)
    deadline = time.monotonic() + timeout
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    hung = marker.exists()
    process.send_signal(signal.SIGKILL)
    returncode, output = _finish(process, log)
    assert hung, f"the run never wrote {stall}:\n{output[-3000:]}"
    assert returncode == -signal.SIGKILL, output[-3000:]
    return marker.read_text()


def _partial_writes(model_dir):
    return sorted(
        os.path.relpath(os.path.join(root, name), model_dir)
        for root, dirs, files in os.walk(model_dir)
        for name in dirs + files
        if name.startswith(".tmp-") or name.endswith("_temp")
    )


@pytest.mark.slow
def test_runs_killed_inside_each_write_resume_exactly_and_leave_nothing_partial(tmp_path):
    straight = _start(tmp_path, "straight")
    try:
        _kill_runs_and_resume(tmp_path)
    finally:
        returncode, output = _finish(*straight)
    assert returncode == 0, output[-3000:]
    assert "RESULT completed 0 6" in output

    model_dir = tmp_path / "killed"
    _assert_same(_variables(tmp_path / "straight"), _variables(model_dir))
    # Step 4's picture, lost with the kill, is drawn when the run resumes from step 4.
    pictures = sorted(p.name for p in (model_dir / "samples").iterdir())
    assert pictures == sorted(p.name for p in (tmp_path / "straight" / "samples").iterdir())
    for name in pictures:
        picture = (model_dir / "samples" / name).read_bytes()
        assert picture == (tmp_path / "straight" / "samples" / name).read_bytes(), name


def _kill_runs_and_resume(tmp_path):
    """Kills the run in `tmp_path/killed` inside each write in turn, then lets it finish."""
    model_dir = tmp_path / "killed"

    # Killed in the checkpoint of step 4: the shards are written, `ckpt-4` is not.
    shards = _kill_inside(tmp_path, "killed", "ckpt-4")
    assert os.path.isdir(shards + "_temp")
    checkpoints = sorted(p.name for p in (model_dir / "checkpoints").glob("*.index"))
    assert checkpoints == ["ckpt-2.index"]

    # Killed while writing config.json on resume: the complete old one stays.
    before = (model_dir / "config.json").read_text()
    config = _kill_inside(tmp_path, "killed", "config.json")
    assert (model_dir / "config.json").read_text() == before

    assert os.path.getsize(config) > 0

    # Killed while writing step 4's picture, just after checkpoint 4. The runs since the kills
    # above removed what those left: the unmerged shards and the temporary config.json.
    picture = _kill_inside(tmp_path, "killed", "step_00000004.png")
    assert "ckpt-4.index" in os.listdir(model_dir / "checkpoints")
    assert _partial_writes(model_dir) == [os.path.relpath(picture, model_dir)]
    assert os.path.getsize(picture) > 0

    returncode, output = _finish(*_start(tmp_path, "killed"))
    assert returncode == 0, output[-3000:]
    assert "RESULT completed 4 6" in output
    assert _partial_writes(model_dir) == []
    assert json.loads((model_dir / "config.json").read_text()) == json.loads(before)
