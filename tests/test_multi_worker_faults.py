"""Faults under `--strategy=multi_worker`, two worker processes on loopback ports.

A SIGTERM to one worker makes every worker save the same step and exit 143, and the same
command resumes; a worker that dies (SIGKILL) or stops answering (SIGSTOP) makes the other
exit 1 within a bound with one line naming it, not hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.test_multi_worker import (
    Watch,
    assert_both_succeeded,
    run_workers,
    saved_step,
    worker_tmp_dirs,
)

# How long a worker may outlive one that failed or was signalled before the test kills it.
LOST_WORKER_SECONDS = 60
FLAGS = ["--log_every=1"]  # the chief prints every step: the tests signal after a given one
# Steps of the SIGTERM'd run: it is signalled after step 3 and must stop well before its end
# (a step takes ~0.8 s here), and the resumed run trains what is left.
TERMINATED_RUN_STEPS = 16


def signal_after_step(step: int, worker: int, signum: int, sent: list[float]) -> Watch:
    """A `watch` that sends `signum` to `worker` once the chief logged `step` (once; the time
    it was sent is appended to `sent`)."""

    def watch(processes: list[subprocess.Popen], outs: list[str]) -> None:
        if not sent and f"step {step}/" in outs[0]:
            processes[worker].send_signal(signum)
            sent.append(time.monotonic())

    return watch


def lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


@pytest.mark.slow
def test_sigterm_to_one_worker_saves_the_same_step_on_both_and_the_same_command_resumes(
    tmp_path,
):
    tmp_dirs = worker_tmp_dirs(tmp_path)
    model_dir = tmp_path / "run"
    sent: list[float] = []
    watch = signal_after_step(3, 1, signal.SIGTERM, sent)
    results = run_workers(
        model_dir,
        TERMINATED_RUN_STEPS,
        tmp_dirs,
        flags=FLAGS,
        watch=watch,
        outlive=LOST_WORKER_SECONDS,
    )
    assert sent, results
    stopped = []
    for i, (code, out, err, _) in enumerate(results):
        assert code == 143, f"worker {i} exited with {code}\n{out[-3000:]}\n{err[-5000:]}"
        assert "Traceback" not in err, err
        (line,) = lines(err, "terminated at step ")
        stopped.append(int(line.split()[3].rstrip(";")))
    step = saved_step(model_dir)
    assert stopped == [step, step]
    assert 3 <= step < TERMINATED_RUN_STEPS

    results = run_workers(model_dir, TERMINATED_RUN_STEPS, tmp_dirs, flags=FLAGS)
    assert_both_succeeded(results)
    for _, out, _, _ in results:
        assert f"resuming {model_dir} from step {step}" in out, out
        assert out.splitlines()[-1] == f"done: {TERMINATED_RUN_STEPS} steps in {model_dir}", out
    assert saved_step(model_dir) == TERMINATED_RUN_STEPS
    assert os.listdir(tmp_dirs[1]) == []


@pytest.mark.slow
def test_sigkill_of_the_chief_stops_the_other_worker_with_one_line(tmp_path):
    tmp_dirs = worker_tmp_dirs(tmp_path)
    sent: list[float] = []
    watch = signal_after_step(3, 0, signal.SIGKILL, sent)
    results = run_workers(
        tmp_path / "run", 100_000, tmp_dirs, flags=FLAGS, watch=watch, outlive=LOST_WORKER_SECONDS
    )
    assert sent, results
    # `run_workers` returns within 0.2 s of the last exit, and kills a worker that outlives a
    # failed one by LOST_WORKER_SECONDS.
    assert time.monotonic() - sent[0] < LOST_WORKER_SECONDS
    assert results[0][0] == -signal.SIGKILL
    code, out, err, _ = results[1]
    assert code == 1, f"worker 1 exited with {code}\n{out[-3000:]}\n{err[-5000:]}"
    assert "Traceback" not in err, err
    (line,) = lines(err, "error:")
    assert line.startswith("error: lost contact with worker 0 ("), line
    assert err.splitlines()[-1] == line


@pytest.mark.slow
def test_a_chief_that_stops_answering_stops_the_other_worker_within_a_bound(tmp_path):
    # SIGSTOP keeps the chief's sockets open (SIGKILL resets them at once): the other worker
    # notices only through the coordination service's missing heartbeats.
    tmp_dirs = worker_tmp_dirs(tmp_path)
    sent: list[float] = []
    stop = signal_after_step(3, 0, signal.SIGSTOP, sent)

    def watch(processes: list[subprocess.Popen], outs: list[str]) -> None:
        stop(processes, outs)
        if processes[1].poll() is not None:
            processes[0].kill()

    results = run_workers(
        tmp_path / "run", 100_000, tmp_dirs, flags=FLAGS, watch=watch, outlive=LOST_WORKER_SECONDS
    )
    assert sent, results
    assert time.monotonic() - sent[0] < LOST_WORKER_SECONDS
    code, out, err, _ = results[1]
    assert code == 1, f"worker 1 exited with {code}\n{out[-3000:]}\n{err[-5000:]}"
    assert "Traceback" not in err, err
    (line,) = lines(err, "error:")
    assert line.startswith("error: lost contact with worker 0 ("), line
