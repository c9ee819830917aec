"""Step time guards: a ratio between families on the same machine, never an absolute time."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from tests.families import REPO, TINY, run_python, subprocess_env
from zoo import train
from zoo.run import RunConfig

# A tiny CycleGAN step (its Fashion-MNIST default batch of 4: two generators and two
# discriminators, forward and back) costs a few tiny DCGAN steps (batch 64; 2.6 at batch 1)
# on the developers' 2-core machine
# (`bench/throughput.py` settings below); the bound leaves room for a loaded CI machine and
# still fails on the 40x slow-down the zoo once had (batch 64 by default, 16 s a 32 px step).
MAX_CYCLEGAN_OVER_DCGAN = 8.0

_MEASURE = """
import json, sys
sys.path.insert(0, "bench")
from throughput import measure
out = {}
for name in ("cyclegan", "dcgan"):
    dataset, overrides = TINY[name]
    out[name] = measure(name, dataset=dataset, image_size=16, channels=1, steps=8, repeats=1,
                        overrides=overrides)[0]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_tiny_cyclegan_step_costs_a_few_tiny_dcgan_steps():
    code = f"TINY = {TINY!r}\n{_MEASURE}"
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["cyclegan"]["batch_size"] == 4 and measured["dcgan"]["batch_size"] == 64
    ratio = measured["dcgan"]["steps_per_sec"] / measured["cyclegan"]["steps_per_sec"]
    assert ratio < MAX_CYCLEGAN_OVER_DCGAN, measured


# A run with no --batch_size or --train_steps gets the family's on its dataset; the steps are the
# budgets README's quality figures were measured at (bench/).
@pytest.mark.parametrize(
    ("model", "dataset", "batch_size", "train_steps"),
    [
        ("cyclegan", "fashion_mnist", 4, 3000),
        ("cyclegan", "folder:/data/horse2zebra", 1, 1000),
        ("dcgan", "fashion_mnist", 64, 3000),
        ("dcgan", "mnist", 64, 3000),
        ("dcgan", "folder:/data/faces", 64, 1000),
        ("cgan", "fashion_mnist", 64, 2000),
        ("gan_int_cls", "fashion_mnist", 64, 1500),
        ("gan", "ring8", 256, 8000),
        ("gan", "grid25", 256, 8000),
        ("gan", "mnist", 64, 1000),
        ("stackgan", "fashion_mnist", 64, 2000),
    ],
)
def test_zero_batch_size_and_train_steps_are_the_familys(model, dataset, batch_size, train_steps):
    rc = train.with_family_defaults(RunConfig(model=model, dataset=dataset))
    assert (rc.batch_size, rc.train_steps) == (batch_size, train_steps)
    given = RunConfig(model=model, dataset=dataset, batch_size=5, train_steps=7)
    assert train.with_family_defaults(given) == given


def test_a_resumed_run_keeps_its_train_steps_unless_given(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"model": "dcgan", "run": {"train_steps": 1000, "batch_size": 32}})
    )
    rc = RunConfig(model="dcgan", dataset="fashion_mnist", model_dir=str(tmp_path))
    resumed = train.with_family_defaults(rc)
    assert (resumed.train_steps, resumed.batch_size) == (1000, 32)
    more = train.with_family_defaults(RunConfig(**{**rc.__dict__, "train_steps": 5000}))
    assert (more.train_steps, more.batch_size) == (5000, 32)
    # A run directory from before the field (or a damaged value) gets the family's.
    (tmp_path / "config.json").write_text(
        json.dumps({"model": "dcgan", "run": {"train_steps": True, "batch_size": "64"}})
    )
    assert train.with_family_defaults(rc).train_steps == 3000
    assert train.with_family_defaults(rc).batch_size == 64


def test_a_resumed_run_keeps_its_batch_size(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"model": "cyclegan", "run": {"batch_size": 1}})  # the old default
    )
    rc = RunConfig(model="cyclegan", model_dir=str(tmp_path))
    assert train.with_family_defaults(rc).batch_size == 1
    (tmp_path / "config.json").write_text(json.dumps({"model": "cyclegan", "run": {}}))
    assert train.with_family_defaults(rc).batch_size == 4  # the family's, on fashion_mnist


_ONEDNN = """
import os, zoo
import tensorflow as tf
from tensorflow.python.util import _pywrap_util_port
print(os.environ.get("TF_ENABLE_ONEDNN_OPTS"), _pywrap_util_port.IsMklEnabled())
"""


@pytest.mark.slow
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86 rule")
def test_onednn_is_on_by_default_on_x86():
    env = {k: v for k, v in subprocess_env().items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    default = subprocess.run(
        [sys.executable, "-c", _ONEDNN],
        env={**env, "PYTHONPATH": REPO},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert default.stdout.split() == ["1", "True"], default.stderr[-1000:]


def test_the_users_onednn_choice_and_an_earlier_tensorflow_import_win(monkeypatch):
    import zoo

    monkeypatch.setattr(zoo.platform, "machine", lambda: "x86_64")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.delitem(sys.modules, "tensorflow")
    zoo._prefer_onednn()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    zoo._prefer_onednn()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    monkeypatch.setattr(zoo.platform, "machine", lambda: "aarch64")
    zoo._prefer_onednn()
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
    monkeypatch.setattr(zoo.platform, "machine", lambda: "x86_64")
    monkeypatch.setitem(sys.modules, "tensorflow", object())  # imported before the zoo
    zoo._prefer_onednn()
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
