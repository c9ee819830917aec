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

family, dataset, overrides, model_dir, kill_at, signum, runs, run_options = {args!r}

class Kill(keras.callbacks.Callback):
    def __init__(self, start):
        super().__init__()
        self.start = start
    def on_train_batch_end(self, batch, logs=None):
        if kill_at and self.start + batch + 1 == kill_at:
            os.kill(os.getpid(), signum)

for _ in range(runs):
    rc = zoo_run.RunConfig(model=family, dataset=dataset, model_dir=model_dir, train_steps={steps},
                         batch_size=8, seed=3, deterministic=True, checkpoint_every=2,
                         sample_every=0, log_every=0, **run_options)
    start = zoo_run.latest_step(model_dir)
    result = train.run(rc, overrides, extra_callbacks=[Kill(start)])
    print("RESULT", result.status, result.resumed_from, result.step, flush=True)
"""


def _train(tmp_path, family, name, kill_at=0, signum=signal.SIGKILL, runs=1):
    dataset, overrides = TINY[family]
    model_dir = str(tmp_path / name)
    args = (
        family,
        dataset,
        list(overrides),
        model_dir,
        kill_at,
        int(signum),
        runs,
        tiny_run_options(family),
    )
    result = run_python(_SCRIPT.format(args=args, steps=STEPS))
    return model_dir, result


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
# family; it is checked on two families with different state (CycleGAN adds its image pools).
TERMINATED_FAMILIES = ("dcgan", "cyclegan")


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(TINY))
def test_killed_and_terminated_runs_resume_exactly(family, tmp_path):
    straight, result = _train(tmp_path, family, "straight")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RESULT completed 0 6" in result.stdout

    # SIGKILL after step 3: nothing is saved at the kill; the run resumes from ckpt-2.
    killed, result = _train(tmp_path, family, "killed", kill_at=3)
    assert result.returncode == -signal.SIGKILL
    assert sorted(p.name for p in (tmp_path / "killed" / "checkpoints").glob("*.index")) == [
        "ckpt-2.index"
    ]
    killed, result = _train(tmp_path, family, "killed")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RESULT completed 2 6" in result.stdout

    reference = _variables(straight)
    assert any("seed_generator" in n for n in reference)
    assert any("d_optimizer" in n for n in reference) and any("g_optimizer" in n for n in reference)
    assert any(n.startswith("model/ema/shadows/") for n in reference)  # the table averages G
    _assert_same(reference, _variables(killed))
    config = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert config["model"] == family
    if family not in TERMINATED_FAMILIES:
        return

    # SIGTERM during step 3 or 4: a checkpoint is saved at the next step end, then it resumes.
    terminated, result = _train(
        tmp_path, family, "terminated", kill_at=3, signum=signal.SIGTERM, runs=2
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT")]
    status, _, stopped = lines[0].split()[1:]
    assert status == "terminated" and int(stopped) in (3, 4), lines
    assert lines[1] == f"RESULT completed {stopped} 6", lines
    _assert_same(reference, _variables(terminated))
