"""`python -m zoo.tools ...` on a tiny DCGAN run and on its export."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.families import run_command, run_export, run_main, tiny_flags
from tests.shared_builds import build_once


def _tools(*args: str) -> subprocess.CompletedProcess:
    return run_command([sys.executable, "-m", "zoo.tools", *args])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 2-step tiny DCGAN run the tools read (built once for both workers)."""

    def build(model_dir):
        result = run_main(
            [*tiny_flags("dcgan"), f"--model_dir={model_dir}", "--train_steps=2", "--batch_size=8"]
        )
        assert result.returncode == 0, result.stderr[-2000:]

    return build_once(tmp_path_factory, "tools-dcgan", build)


@pytest.mark.slow
def test_interpolate_samples_and_arithmetic_write_grids(run_dir, tmp_path):
    out = tmp_path / "walk.png"
    result = _tools(
        "interpolate",
        f"--model_dir={run_dir}",
        "--rows=3",
        "--steps=5",
        "--method=linear",
        f"--out={out}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["picture"] == str(out)
    # 3 rows x 5 columns of 16 px images enlarged to 64 px, 2 px gaps.
    assert np.asarray(Image.open(out)).shape == (3 * 66 + 2, 5 * 66 + 2, 3)

    result = _tools("arithmetic", f"--model_dir={run_dir}", "--a=0,1,2", "--b=3", "--c=4,5")
    assert result.returncode == 0, result.stderr[-2000:]
    picture = np.asarray(Image.open(json.loads(result.stdout)["picture"]))
    assert picture.shape[1] == 8 * 66 + 2  # A, B, C means, the result and 4 neighbours

    result = _tools("samples", f"--model_dir={run_dir}", "--num=16")
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_probe_reports_both_accuracies(run_dir):
    result = _tools(
        "probe", f"--model_dir={run_dir}", "--train_examples=300", "--test_examples=200"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["step"] == 2 and report["feature_dim"] > 0
    # Even an untrained discriminator's random features beat chance (10 classes) clearly.
    assert report["probe_accuracy_discriminator"] > 0.3
    assert report["probe_accuracy_pixels"] > 0.3


@pytest.mark.slow
def test_interpolate_on_an_exported_generator(run_dir, tmp_path):
    export = run_export(
        f"--model_dir={run_dir}", f"--export_dir={tmp_path}", "--formats=saved_model"
    )
    assert export.returncode == 0, export.stderr[-2000:]
    result = _tools(
        "interpolate",
        f"--export_dir={tmp_path}/dcgan",
        "--rows=2",
        "--steps=3",
        f"--out={tmp_path}/walk.png",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.asarray(Image.open(tmp_path / "walk.png")).shape == (2 * 66 + 2, 3 * 66 + 2, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["nosuch"], "usage"),
        (["interpolate"], "exactly one of --model_dir and --export_dir"),
        (["probe"], "probe needs --model_dir"),
        (["probe", "--probe_layers=last"], "probe layers must be 'all' or integers"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = _tools(*args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


@pytest.mark.slow
def test_bad_sample_numbers_are_usage_errors(run_dir):
    result = _tools(
        "arithmetic", f"--model_dir={run_dir}", "--a=0,99", "--b=1", "--c=2", "--num=16"
    )
    assert result.returncode == 2 and "sample numbers in [0, 16)" in result.stderr
