"""Killed at any point: a run killed from outside (a real SIGKILL) while it writes a checkpoint,
a sample PNG or `config.json` resumes and ends with the very weights of a run that was never
interrupted, and leaves nothing half-written behind.

Each killed run hangs inside one write, through hooks installed in its own interpreter before
training: after the temporary file of `zoo.io.atomic_path` is written, before its rename; in a
checkpoint, after `ckpt-N` is written, before TensorFlow's temporary `checkpoint` state file
that names it is renamed into place. The test waits for the hang, then kills the run. Shards a
kill leaves unmerged (`ckpt-N_temp/`) are covered in tests/core/test_io.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests import zygote
from tests.core.test_resume import _assert_same, _variables
from tests.families import REPO, TINY, subprocess_env

_SCRIPT = """
import contextlib, os, sys, time
from tensorflow.python.lib.io import file_io
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
rename = file_io.rename

def slow_rename(old, new, overwrite=False):
    if os.path.basename(new) == "checkpoint":
        with open(old) as f:
            if stall == "checkpoint of " + f.readline().split('"')[1]:
                hang(old)
    return rename(old, new, overwrite)

file_io.rename = slow_rename
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
    process = zygote.popen(
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
        if name.startswith(".tmp-") or name.endswith("_temp") or name.startswith("checkpoint.tmp")
    )


@pytest.mark.slow
def test_a_run_killed_inside_each_write_resumes_exactly_and_leaves_nothing_partial(tmp_path):
    straight = _start(tmp_path, "straight")  # beside the killed runs
    try:
        model_dir = _kill_inside_each_write_then_finish(tmp_path)
    finally:
        returncode, output = _finish(*straight)
    assert returncode == 0, output[-3000:]
    assert "RESULT completed 0 6" in output

    _assert_same(_variables(tmp_path / "straight"), _variables(model_dir))
    # Step 4's picture, lost with a kill, is drawn when the run resumes from step 4.
    pictures = sorted(p.name for p in (tmp_path / "straight" / "samples").iterdir())
    assert sorted(p.name for p in (model_dir / "samples").iterdir()) == pictures
    for name in pictures:
        picture = (model_dir / "samples" / name).read_bytes()
        assert picture == (tmp_path / "straight" / "samples" / name).read_bytes(), name


def _kill_inside_each_write_then_finish(tmp_path):
    model_dir = tmp_path / "killed"
    state = model_dir / "checkpoints" / "checkpoint"

    # Killed before the checkpoint state names ckpt-4: the run resumes from ckpt-2.
    left = _kill_inside(tmp_path, "killed", "checkpoint of ckpt-4")
    assert "ckpt-4.index" in os.listdir(model_dir / "checkpoints")
    assert 'model_checkpoint_path: "ckpt-2"' in state.read_text()
    assert _partial_writes(model_dir) == [os.path.relpath(left, model_dir)]

    # Killed on resume while writing config.json: the complete old one stays.
    before = (model_dir / "config.json").read_text()
    left = _kill_inside(tmp_path, "killed", "config.json")
    assert (model_dir / "config.json").read_text() == before
    assert os.path.getsize(left) > 0
    assert _partial_writes(model_dir) == [os.path.relpath(left, model_dir)]

    # Killed while writing step 4's picture, just after ckpt-4.
    left = _kill_inside(tmp_path, "killed", "step_00000004.png")
    assert 'model_checkpoint_path: "ckpt-4"' in state.read_text()
    assert os.path.getsize(left) > 0
    assert _partial_writes(model_dir) == [os.path.relpath(left, model_dir)]

    returncode, output = _finish(*_start(tmp_path, "killed"))
    assert returncode == 0, output[-3000:]
    assert "RESULT completed 4 6" in output
    assert _partial_writes(model_dir) == []
    assert json.loads((model_dir / "config.json").read_text()) == json.loads(before)
    return model_dir
