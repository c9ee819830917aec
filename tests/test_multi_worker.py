"""`--strategy=multi_worker` with two worker processes on loopback ports.

Both workers train the same run directory; worker 0 is the chief and owns it. Worker 1 must
take part in every checkpoint save but write nothing there (its copy goes to a temporary
directory that is removed), and a second start must resume both workers from the chief's
checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

import pytest

from tests import zygote
from tests.families import subprocess_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_MAIN = os.path.join(REPO, "train_main.py")
FLAGS = ["--model=gan", "--dataset=ring8", "--strategy=multi_worker", "--batch_size=16"]
TIMEOUT_SECONDS = 180


PORT_TAKEN = "Could not start gRPC server"  # what a worker prints when its port was taken
ATTEMPTS = 3


def free_ports(n: int) -> list[int]:
    """`n` distinct TCP ports that were free a moment ago (another process may take one before
    a worker binds it: `run_workers` then starts both again on new ports)."""
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


Watch = Callable[[list[subprocess.Popen], list[str]], None]


def worker_tmp_dirs(tmp_path) -> list:
    """An empty TMPDIR per worker (a non-chief worker must leave its own empty)."""
    dirs = [tmp_path / "tmp0", tmp_path / "tmp1"]
    for d in dirs:
        d.mkdir()
    return dirs


def run_workers_once(
    ports: list[int],
    model_dir: os.PathLike,
    train_steps: int,
    tmp_dirs: list[os.PathLike],
    flags: Sequence[str] = (),
    watch: Watch | None = None,
    outlive: float = 0,
) -> list[tuple[int, str, str, int]]:
    """Starts one worker per port, each with its own TMPDIR, and waits until every one exited,
    or one failed and the others outlived it by `outlive` seconds (they are then killed), or
    the timeout; returns (code, stdout, stderr, pid) per worker.

    `watch(processes, stdouts)` is called about 5 times a second while workers run."""
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    with contextlib.ExitStack() as stack:
        workers = []
        for index in range(len(ports)):
            task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            env = subprocess_env({"TF_CONFIG": json.dumps(task), "TMPDIR": str(tmp_dirs[index])})
            out = stack.enter_context(tempfile.TemporaryFile("w+"))
            err = stack.enter_context(tempfile.TemporaryFile("w+"))
            command = [sys.executable, TRAIN_MAIN, *FLAGS, f"--train_steps={train_steps}"]
            command += [f"--model_dir={model_dir}", *flags]
            proc = zygote.popen(command, cwd=REPO, env=env, stdout=out, stderr=err)
            workers.append((proc, out, err))
        deadline = time.monotonic() + TIMEOUT_SECONDS
        timed_out = False
        failed_at = None
        try:
            while any(proc.poll() is None for proc, _, _ in workers):
                timed_out = time.monotonic() > deadline
                if failed_at is None and any(proc.poll() for proc, _, _ in workers):
                    failed_at = time.monotonic()
                if timed_out or (failed_at is not None and time.monotonic() >= failed_at + outlive):
                    break
                if watch is not None:
                    # pread: reading must not move the offset the worker writes at.
                    outs = [os.pread(out.fileno(), 1 << 20, 0).decode() for _, out, _ in workers]
                    watch([proc for proc, _, _ in workers], outs)
                time.sleep(0.2)
        finally:
            for proc, _, _ in workers:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        results = []
        for proc, out, err in workers:
            out.seek(0)
            err.seek(0)
            results.append((proc.returncode, out.read(), err.read(), proc.pid))
    if timed_out:
        report = [
            f"--- worker {i} stdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}"
            for i, (_, out, err, _) in enumerate(results)
        ]
        pytest.fail(f"workers still running after {TIMEOUT_SECONDS} s\n" + "\n".join(report))
    return results


def run_workers(
    model_dir: os.PathLike,
    train_steps: int,
    tmp_dirs: list[os.PathLike],
    ports: Callable[[int], list[int]] = free_ports,
    flags: Sequence[str] = (),
    watch: Watch | None = None,
    outlive: float = 0,
) -> list[tuple[int, str, str, int]]:
    """Trains two workers at once; returns (code, stdout, stderr, pid) per worker.

    Each worker gets its own TMPDIR (`tmp_dirs[i]`) so that what it leaves there is visible.
    When a worker could not bind its port (taken since `ports` chose it), both start again on
    new ports (a worker fails that way before it touches the run directory). `flags` go to
    both workers; `watch` and `outlive` are `run_workers_once`'s.
    """
    for _ in range(ATTEMPTS):
        results = run_workers_once(
            ports(2), model_dir, train_steps, tmp_dirs, flags, watch, outlive
        )
        taken = [err for code, _, err, _ in results if code and PORT_TAKEN in err]
        if not taken:
            return results
    pytest.fail(f"no free ports in {ATTEMPTS} attempts:\n" + taken[0][-3000:])


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
    tmp_dirs = worker_tmp_dirs(tmp_path)

    results = run_workers(resumed_dir, 6, tmp_dirs)
    assert_both_succeeded(results)
    for _, out, _, _ in results:
        assert f"resuming {resumed_dir} from step 4" in out, out
        assert out.splitlines()[-1] == f"done: 6 steps in {resumed_dir}", out
    assert saved_step(resumed_dir) == 6
    assert os.listdir(tmp_dirs[1]) == []


@pytest.mark.slow
def test_a_port_taken_before_the_workers_bind_it_is_replaced(tmp_path):
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("localhost", 0))
    taken.listen()
    offered = [[free_ports(1)[0], taken.getsockname()[1]]]

    def ports(n: int) -> list[int]:
        return offered.pop() if offered else free_ports(n)

    tmp_dirs = worker_tmp_dirs(tmp_path)
    try:
        results = run_workers(tmp_path / "run", 1, tmp_dirs, ports)
    finally:
        taken.close()
    assert not offered  # the taken port was offered first
    assert_both_succeeded(results)
    assert saved_step(tmp_path / "run") == 1
