"""Damaged files given to the readers: one `error:` line and exit code 2, never a traceback.

A garbage `saved_model.pb`, a random or empty `.tflite`, a broken `<name>.json` beside an
export, a broken `config.json` in a run directory and a broken TFDS `dataset_info.json` under
`--data_dir`, met through `zoo.load_generator` and the mains that read them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import zoo
from tests.families import REPO, run_command
from tests.test_cli import assert_usage_error

DEEP_JSON = "[" * 200_000 + "]" * 200_000
MANIFEST = {"name": "dcgan", "family": "dcgan", "trained_with": {"dataset": "ring8"}, "step": 1}


def run_module_or_script(*args: str, fresh: bool = False) -> subprocess.CompletedProcess:
    """Runs `python ARGS` from the repository root (a script path or `-m module`)."""
    return run_command([sys.executable, *args], env={"PYTHONPATH": REPO}, timeout=120, fresh=fresh)


@pytest.fixture
def export_root(tmp_path):
    """`OUT` with `dcgan.json` and a version `dcgan/1` whose saved_model.pb is garbage."""
    version = tmp_path / "dcgan" / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(os.urandom(512))
    (tmp_path / "dcgan.json").write_text(json.dumps(MANIFEST))
    (tmp_path / "dcgan.float32.tflite").write_bytes(os.urandom(512))
    (tmp_path / "empty.tflite").write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize(
    ("path", "keywords"),
    [
        ("dcgan", ["not a readable SavedModel", "saved_model.pb"]),
        ("dcgan/1", ["not a readable SavedModel"]),
        ("dcgan.float32.tflite", ["not a readable TFLite model"]),
        ("empty.tflite", ["not a readable TFLite model"]),
    ],
)
def test_load_generator_of_a_corrupt_model_is_a_usage_error(export_root, path, keywords):
    with pytest.raises(zoo.UsageError) as caught:
        zoo.load_generator(str(export_root / path))
    for keyword in keywords:
        assert keyword in str(caught.value)


def test_export_json_with_a_malformed_data_section_reads_on(export_root):
    from zoo.eval.evaluate import load_exported

    (export_root / "dcgan.json").write_text(json.dumps({**MANIFEST, "data": ["a", "b"]}))
    with pytest.raises(zoo.UsageError, match="not a readable SavedModel"):
        load_exported(str(export_root / "dcgan"))


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_load_generator_of_a_saved_model_with_damaged_variables(tmp_path, damage):
    import tensorflow as tf

    module = tf.Module()
    module.v = tf.Variable(tf.ones([4]))
    module.f = tf.function(
        lambda z: {"images": z * module.v}, input_signature=[tf.TensorSpec([None, 4])]
    )
    version = tmp_path / "m" / "1"
    tf.saved_model.save(module, str(version), signatures={"serving_default": module.f})
    assert zoo.load_generator(str(tmp_path / "m"))(np.ones([2, 4])).shape == (2, 4)
    data = version / "variables" / "variables.data-00000-of-00001"
    if damage == "truncated":
        data.write_bytes(data.read_bytes()[:3])
    else:
        data.unlink()
    with pytest.raises(zoo.UsageError, match="not a readable SavedModel"):
        zoo.load_generator(str(tmp_path / "m"))


@pytest.mark.parametrize(
    "args",
    [
        ["eval_main.py", "--num_samples=8"],
        ["-m", "zoo.tools", "interpolate"],
    ],
    ids=["eval_main", "tools"],
)
@pytest.mark.parametrize("target", ["dcgan", "dcgan.float32.tflite"])
def test_mains_given_a_corrupt_export_say_one_line(export_root, args, target):
    # In a new interpreter: nothing TensorFlow prints as it starts comes before the line.
    result = run_module_or_script(*args, f"--export_dir={export_root / target}", fresh=True)
    assert_usage_error(result.returncode, result.stderr, ["not a readable"])


@pytest.mark.parametrize("content", [DEEP_JSON, "\x00garbage"], ids=["deep", "binary"])
def test_eval_main_given_a_corrupt_export_json_says_one_line(export_root, content):
    (export_root / "dcgan.json").write_text(content)
    result = run_module_or_script(
        "eval_main.py", "--num_samples=8", f"--export_dir={export_root / 'dcgan'}"
    )
    assert_usage_error(result.returncode, result.stderr, ["dcgan.json"])


@pytest.mark.parametrize(
    "content",
    [
        DEEP_JSON,
        '{"model": "dcgan", "model_config": []}',
        '{"model": "dcgan", "model_config": {}, "run": []}',
    ],
    ids=["deep", "config-not-an-object", "run-not-an-object"],
)
@pytest.mark.parametrize(
    "args",
    [["eval_main.py", "--num_samples=8"], ["-m", "zoo.tools", "interpolate"]],
    ids=["eval_main", "tools"],
)
def test_mains_given_a_corrupt_run_config_say_one_line(tmp_path, args, content):
    (tmp_path / "config.json").write_text(content)
    result = run_module_or_script(*args, f"--model_dir={tmp_path}")
    assert_usage_error(result.returncode, result.stderr, ["config.json"])


def test_train_main_given_a_corrupt_tfds_dataset_info_says_one_line(tmp_path):
    version = tmp_path / "mnist" / "3.0.1"
    version.mkdir(parents=True)
    (version / "dataset_info.json").write_text('{"name": "mnist", garbage')
    result = run_module_or_script(
        "train_main.py",
        "--model=dcgan",
        "--dataset=tfds:mnist",
        f"--data_dir={tmp_path}",
        f"--model_dir={tmp_path / 'run'}",
        "--train_steps=1",
    )
    assert_usage_error(result.returncode, result.stderr, ["cannot open TFDS dataset 'mnist'"])
