"""`--eval_every` on `train_main.py` and `eval_main.py` as a user meets them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.families import REPO, run_command, run_main

EVAL_MAIN = os.path.join(REPO, "eval_main.py")


def run_eval(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_command([sys.executable, EVAL_MAIN, *args], env=env)


def assert_one_line_error(proc: subprocess.CompletedProcess, keyword: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert keyword in proc.stderr
    assert proc.stdout == ""


@pytest.fixture(scope="module")
def ring8_run(tmp_path_factory):
    """The done-when run: 40 steps of `gan` on ring8, evaluated every 20 steps."""
    model_dir = str(tmp_path_factory.mktemp("runs") / "ring8")
    proc = run_main(
        [
            "--model=gan",
            "--dataset=ring8",
            "--train_steps=40",
            "--batch_size=128",
            "--eval_every=20",
            f"--model_dir={model_dir}",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    return model_dir


@pytest.mark.slow
def test_train_main_writes_mode_coverage_and_eval_main_prints_one_json_line(ring8_run):
    with open(os.path.join(ring8_run, "metrics.jsonl")) as f:
        lines = [json.loads(line) for line in f]
    evals = [line for line in lines if "modes_covered" in line]
    assert [line["step"] for line in evals] == [20, 40]
    for line in evals:
        assert 0 <= line["modes_covered"] <= 8 and 0 <= line["high_quality_fraction"] <= 1
    proc = run_eval(f"--model_dir={ring8_run}", "--num_samples=2000", "--seed=3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1
    record = json.loads(proc.stdout)
    assert record["step"] == 40 and record["num_samples"] == 2000 and record["seed"] == 3
    assert {"modes_covered", "high_quality_fraction"} <= set(record)


@pytest.mark.slow
def test_eval_main_on_a_run_without_checkpoints(ring8_run, tmp_path):
    shutil.copy(os.path.join(ring8_run, "config.json"), tmp_path / "config.json")
    assert_one_line_error(run_eval(f"--model_dir={tmp_path}"), "no checkpoint")


def test_eval_main_usage_errors(tmp_path):
    assert_one_line_error(run_eval(), "exactly one of --model_dir")
    assert_one_line_error(run_eval(f"--model_dir={tmp_path}/missing"), "no such directory")
    assert_one_line_error(run_eval(f"--model_dir={tmp_path}"), "not a run directory")
    assert_one_line_error(
        run_eval(f"--model_dir={tmp_path}", "--inception_weights=/no/such.h5"), "no such file"
    )
    assert_one_line_error(run_eval(f"--export_dir={tmp_path}/missing"), "nothing at")
    assert_one_line_error(run_eval(f"--export_dir={tmp_path}"), "not an export of the zoo")


@pytest.mark.slow
def test_eval_main_on_an_export_matches_its_checkpoint(ring8_run, tmp_path):
    from export import export_lib

    export_lib.export(ring8_run, str(tmp_path), formats=["saved_model"])
    from_export = run_eval(f"--export_dir={tmp_path}/gan", "--num_samples=3000")
    from_run = run_eval(f"--model_dir={ring8_run}", "--num_samples=3000")
    assert from_export.returncode == 0, from_export.stderr
    assert from_run.returncode == 0, from_run.stderr
    exported, trained = json.loads(from_export.stdout), json.loads(from_run.stdout)
    assert exported["step"] == trained["step"] == 40
    assert exported["modes_covered"] == trained["modes_covered"]
    assert exported["high_quality_fraction"] == pytest.approx(
        trained["high_quality_fraction"], abs=1e-3
    )


@pytest.mark.slow
def test_weights_choose_the_runs_average_or_its_last_step(zoo_cache, tmp_path_factory, tmp_path):
    from tests.shared_builds import tiny_run

    run = tiny_run(tmp_path_factory, "dcgan")  # ema_decay=0.9 (tests.families.TINY)
    env = {"GANZOO_CACHE": zoo_cache}
    records = {}
    for weights in (None, "ema", "raw"):
        flag = [f"--weights={weights}"] if weights else []
        proc = run_eval(f"--model_dir={run}", "--num_samples=64", *flag, env=env)
        assert proc.returncode == 0, proc.stderr
        records[weights] = json.loads(proc.stdout)
    assert records[None]["weights"] == records["ema"]["weights"] == "ema"
    assert records["raw"]["weights"] == "raw"
    assert records[None]["fd"] == records["ema"]["fd"] != records["raw"]["fd"]
    assert_one_line_error(
        run_eval(f"--export_dir={tmp_path}", "--weights=raw"), "--weights is for --model_dir"
    )
    assert_one_line_error(run_eval(f"--model_dir={run}", "--weights=best"), "--weights")
