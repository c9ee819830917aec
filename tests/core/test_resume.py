"""Exact resume: a run killed mid-way and restarted ends with the very weights of a run that
was never interrupted (one device, `seed` and `deterministic`), for every family.

Compared: every variable of the final checkpoint — both networks (batch-norm statistics too),
both optimizers (Adam moments, iteration counts, loss scale), the seed generator, the step and
the generator's moving average (the table trains with `ema_decay`).
"""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import tensorflow as tf

from tests.families import TINY, run_python, tiny_run_options

STEPS = 6

_SCRIPT = """
import os, signal, sys, keras
from zoo import run as zoo_run
from zoo import train

family, dataset, overrides, jobs, run_options = {args!r}

class Kill(keras.callbacks.Callback):
    def __init__(self, start, kill_at, signum):
        super().__init__()
        self.start, self.kill_at, self.signum = start, kill_at, signum
    def on_train_batch_end(self, batch, logs=None):
        if self.kill_at and self.start + batch + 1 == self.kill_at:
            os.kill(os.getpid(), self.signum)

for model_dir, kill_at, signum, runs in jobs:
    for _ in range(runs):
        rc = zoo_run.RunConfig(model=family, dataset=dataset, model_dir=model_dir,
                               train_steps={steps}, batch_size=8, seed=3, deterministic=True,
                               checkpoint_every=2, sample_every=0, log_every=0, **run_options)
        start = zoo_run.latest_step(model_dir)
        result = train.run(rc, overrides, extra_callbacks=[Kill(start, kill_at, signum)])
        print("RESULT", os.path.basename(model_dir), result.status, result.resumed_from,
              result.step, flush=True)
"""


def _train(tmp_path, family, jobs):
    """Runs `jobs` ((name, kill_at, signal, runs), ...) one after the other in one fresh
    interpreter: each trains run `name` `runs` times, sending itself `signal` at step `kill_at`
    (0: never). Returns the interpreter's result and its `RESULT name status resumed step`
    lines."""
    dataset, overrides = TINY[family]
    jobs = [(str(tmp_path / name), at, int(signum), runs) for name, at, signum, runs in jobs]
    args = (family, dataset, list(overrides), jobs, tiny_run_options(family))
    result = run_python(_SCRIPT.format(args=args, steps=STEPS))
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    return result, [line.removeprefix("RESULT ") for line in lines]


def _variables(model_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(f"{model_dir}/checkpoints"))
    names = [n for n in reader.get_variable_to_shape_map() if "save_counter" not in n]
    names = [n for n in names if not n.startswith("_CHECKPOINTABLE")]
    return {n: reader.get_tensor(n) for n in names}


def _assert_same(a, b):
    assert sorted(a) == sorted(b)
    different = [n for n in a if not np.array_equal(a[n], b[n])]
    assert not different, f"{len(different)} of {len(a)} variables differ, e.g. {different[:5]}"


# SIGTERM is handled by the driver (a checkpoint at the next step end), the same for every
# family, so one family's run checks it here (each family's own state, CycleGAN's image pools
# included, is checked by the SIGKILL'd run; tests/test_cli.py and tests/test_multi_worker_faults.py
# send SIGTERM to train_main.py itself).
TERMINATED_FAMILIES = ("dcgan",)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(TINY))
def test_killed_and_terminated_runs_resume_exactly(family, tmp_path):
    # SIGKILL after step 3: nothing is saved at the kill; the run resumes from ckpt-2.
    result, lines = _train(tmp_path, family, [("killed", 3, signal.SIGKILL, 1)])
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert lines == []
    assert sorted(p.name for p in (tmp_path / "killed" / "checkpoints").glob("*.index")) == [
        "ckpt-2.index"
    ]
    # Then, in a second interpreter, the same command resumes it, a run that is never
    # interrupted trains beside it and, where checked, a run stopped by SIGTERM during step 3
    # or 4 saves at the next step end and resumes (the driver handles SIGTERM).
    terminated = family in TERMINATED_FAMILIES
    jobs = [("killed", 0, 0, 1), ("straight", 0, 0, 1)]
    if terminated:
        jobs.append(("terminated", 3, signal.SIGTERM, 2))
    result, lines = _train(tmp_path, family, jobs)
    assert result.returncode == 0, result.stderr[-3000:]
    assert lines[:2] == ["killed completed 2 6", "straight completed 0 6"], lines

    reference = _variables(tmp_path / "straight")
    assert any("seed_generator" in n for n in reference)
    assert any("d_optimizer" in n for n in reference) and any("g_optimizer" in n for n in reference)
    assert any(n.startswith("model/ema/shadows/") for n in reference)  # the table averages G
    _assert_same(reference, _variables(tmp_path / "killed"))
    config = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert config["model"] == family
    if not terminated:
        assert len(lines) == 2, lines
        return
    name, status, _, stopped = lines[2].split()
    assert (name, status) == ("terminated", "terminated") and int(stopped) in (3, 4), lines
    assert lines[3:] == [f"terminated completed {stopped} 6"], lines
    _assert_same(reference, _variables(tmp_path / "terminated"))
