"""`--strategy=multi_worker` with two worker processes on loopback ports.

Both workers train the same run directory; worker 0 is the chief and owns it. Worker 1 must
take part in every checkpoint save but write nothing there (its copy goes to a temporary
directory that is removed), and a second start must resume both workers from the chief's
checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_MAIN = os.path.join(REPO, "train_main.py")
FLAGS = ["--model=gan", "--dataset=ring8", "--strategy=multi_worker", "--batch_size=16"]
TIMEOUT_SECONDS = 180


def free_ports(n: int) -> list[int]:
    """`n` distinct TCP ports that were free a moment ago."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("localhost", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def run_workers(
    model_dir: os.PathLike, train_steps: int, tmp_dirs: list[os.PathLike]
) -> list[tuple[int, str, str, int]]:
    """Starts two workers at once and waits; returns (code, stdout, stderr, pid) per worker.

    Each worker gets its own TMPDIR (`tmp_dirs[i]`) so that what it leaves there is visible.
    """
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {k: v for k, v in os.environ.items() if k != "TPU_NAME"}
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        env["TMPDIR"] = str(tmp_dirs[index])
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    TRAIN_MAIN,
                    *FLAGS,
                    f"--train_steps={train_steps}",
                    f"--model_dir={model_dir}",
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT_SECONDS)
            results.append((proc.returncode, out, err, proc.pid))
    except subprocess.TimeoutExpired:
        report = []
        for index, proc in enumerate(procs):
            proc.kill()
            out, err = proc.communicate()
            report.append(f"--- worker {index} stdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}")
        pytest.fail(f"workers still running after {TIMEOUT_SECONDS} s\n" + "\n".join(report))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def assert_both_succeeded(results: list[tuple[int, str, str, int]]) -> None:
    failed = [
        f"--- worker {i} exited with {code}\nstdout:\n{out[-3000:]}\nstderr:\n{err[-5000:]}"
        for i, (code, out, err, _) in enumerate(results)
        if code != 0
    ]
    assert not failed, "\n".join(failed)


def files_under(directory: os.PathLike) -> set[str]:
    return {
        os.path.relpath(os.path.join(root, name), directory)
        for root, _, names in os.walk(directory)
        for name in names
    }


def saved_step(model_dir: os.PathLike) -> int:
    """The model step stored in the newest checkpoint of a run directory."""
    import tensorflow as tf

    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    assert path is not None, f"no checkpoint in {model_dir}"
    return int(tf.train.load_variable(path, "model/step/.ATTRIBUTES/VARIABLE_VALUE"))


@pytest.fixture(scope="module")
def four_steps(tmp_path_factory):
    """Two workers trained 4 steps: (model_dir, results, worker TMPDIRs)."""
    root = tmp_path_factory.mktemp("multi_worker")
    tmp_dirs = [root / "tmp0", root / "tmp1"]
    for d in tmp_dirs:
        d.mkdir()
    model_dir = root / "run"
    return model_dir, run_workers(model_dir, 4, tmp_dirs), tmp_dirs


@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_writes(four_steps):
    model_dir, results, tmp_dirs = four_steps
    assert_both_succeeded(results)
    for _, out, _, _ in results:
        assert out.splitlines()[-1] == f"done: 4 steps in {model_dir}", out

    chief_pid = results[0][3]
    files = files_under(model_dir)
    events = {f for f in files if f.startswith("tensorboard/")}
    # One event file, written by the chief (TensorFlow puts the writer's pid in its name).
    assert len(events) == 1, events
    assert re.fullmatch(
        rf"tensorboard/events\.out\.tfevents\.\d+\..+\.{chief_pid}\.\d+\.v2", *events
    )
    assert files - events == {
        ".lock",  # the chief's lock on the run directory (the other worker takes none)
        "config.json",
        "metrics.jsonl",
        "checkpoints/checkpoint",
        "checkpoints/ckpt-4.index",
        "checkpoints/ckpt-4.data-00000-of-00001",
        "samples/latest.png",
        "samples/step_00000004.png",
    }
    with open(model_dir / "config.json") as f:
        assert json.load(f)["run"]["strategy"] == "multi_worker"
    assert saved_step(model_dir) == 4
    # Worker 1 saved into a temporary directory and removed it.
    assert os.listdir(tmp_dirs[1]) == []


@pytest.mark.slow
def test_two_workers_resume_from_the_chiefs_checkpoint(four_steps, tmp_path):
    model_dir, results, _ = four_steps
    assert_both_succeeded(results)
    resumed_dir = tmp_path / "run"
    shutil.copytree(model_dir, resumed_dir)
    tmp_dirs = [tmp_path / "tmp0", tmp_path / "tmp1"]
    for d in tmp_dirs:
        d.mkdir()

    results = run_workers(resumed_dir, 6, tmp_dirs)
    assert_both_succeeded(results)
    for _, out, _, _ in results:
        assert f"resuming {resumed_dir} from step 4" in out, out
        assert out.splitlines()[-1] == f"done: 6 steps in {resumed_dir}", out
    assert saved_step(resumed_dir) == 6
    assert os.listdir(tmp_dirs[1]) == []
