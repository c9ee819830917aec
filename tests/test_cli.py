"""`train_main.py` as a user meets it: one-line errors with exit code 2, and what a run leaves.

Every bad input must end the process with exit code 2 and exactly one line on stderr that
starts with "error:" and says what is wrong (no traceback, no TensorFlow start-up chatter).
A good run writes the run directory, resumes when started again, and saves a checkpoint and
exits with code 143 on SIGTERM.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

from tests import zygote
from tests.families import run_command, subprocess_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_MAIN = os.path.join(REPO, "train_main.py")

GAN = ["--model=gan", "--dataset=ring8", "--batch_size=16"]
DCGAN = [
    "--model=dcgan",
    "--config=image_size=16",
    "--config=generator_filters=8",
    "--config=discriminator_filters=8",
    "--batch_size=8",
]


def train(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, fresh: bool = False
) -> tuple[int, str, str]:
    """Runs `python train_main.py ARGS` from the repository root; returns (code, out, err).
    Forked from the worker's TensorFlow-imported server unless `fresh` (`tests/zygote.py`)."""
    proc = run_command([sys.executable, TRAIN_MAIN, *args], env=env, timeout=timeout, fresh=fresh)
    return proc.returncode, proc.stdout, proc.stderr


def assert_usage_error(code: int, stderr: str, keywords: Sequence[str]) -> str:
    """Exit code 2 and exactly one non-empty `error:` line holding every keyword."""
    assert code == 2, f"exit code {code}, stderr:\n{stderr}"
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), f"not one line:\n{stderr}"
    line = stderr.rstrip("\n")
    assert line.startswith("error: "), line
    assert line[len("error: ") :].strip(), line
    for keyword in keywords:
        assert keyword in line, f"{keyword!r} not in {line!r}"
    return line


def checkpoint_steps(model_dir: os.PathLike) -> list[int]:
    """Steps of the checkpoints in a run directory, from their index files."""
    names = glob.glob(os.path.join(model_dir, "checkpoints", "ckpt-*.index"))
    return sorted(int(re.search(r"ckpt-(\d+)\.index$", n).group(1)) for n in names)


def latest_checkpoint_step(model_dir: os.PathLike) -> int:
    """The step stored in the checkpoint the `checkpoint` state file points at."""
    import tensorflow as tf

    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    assert path is not None, f"no checkpoint in {model_dir}"
    step = int(tf.train.load_variable(path, "model/step/.ATTRIBUTES/VARIABLE_VALUE"))
    assert path.endswith(f"ckpt-{step}")
    return step


def metrics_records(model_dir: os.PathLike) -> list[dict]:
    with open(os.path.join(model_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def snapshot(directory: os.PathLike) -> dict[str, bytes]:
    """Every file under `directory` with its bytes."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files


# -- bad input ----------------------------------------------------------------------------------

# Rejected by flag parsing or the registry, before TensorFlow is imported.
FLAG_ERRORS = [
    pytest.param(["--model=nope"], ["unknown model 'nope'", "gan", "dcgan"], id="unknown-model"),
    pytest.param([*GAN, "--no_such_flag=1"], ["no_such_flag"], id="unknown-flag"),
    pytest.param([*GAN, "--strategy=nope"], ["--strategy", "mirrored"], id="bad-strategy"),
    pytest.param(
        [*GAN, "--mixed_precision=fp8"], ["--mixed_precision", "mixed_float16"], id="bad-precision"
    ),
    pytest.param([*GAN, "--train_steps=many"], ["--train_steps", "many"], id="not-an-integer"),
    pytest.param([*GAN, "stray"], ["unexpected arguments", "stray"], id="positional-argument"),
]


@pytest.mark.parametrize(("args", "keywords"), FLAG_ERRORS)
def test_flag_error_is_one_line(args, keywords, tmp_path):
    code, out, err = train(*args, f"--model_dir={tmp_path / 'run'}", fresh=True)
    assert_usage_error(code, err, keywords)
    assert out == ""
    assert not (tmp_path / "run").exists()


def _image_folder(root: os.PathLike | str) -> str:
    """A folder of four 8x8 RGB PNGs."""
    rng = np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    for i in range(4):
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(root, f"{i}.png"))
    return str(root)


# (args, keywords, env); "{tmp}" stands for the test's temporary directory. Every case gets
# --model_dir={tmp}/run, and --train_steps=3 unless it sets its own.
BAD_INPUT = [
    pytest.param(
        [*GAN, "--dataset=nosuch"], ["unknown dataset 'nosuch'", "ring8"], {}, id="dataset"
    ),
    pytest.param(
        [*GAN, "--config=nosuch=1"], ["unknown config field 'nosuch'", "latent_dim"], {}, id="field"
    ),
    pytest.param([*GAN, "--config=latent_dim"], ["key=value", "latent_dim"], {}, id="malformed"),
    pytest.param(
        [*GAN, "--config=latent_dim=abc"], ["latent_dim", "'abc'", "int"], {}, id="wrong-type"
    ),
    pytest.param([*GAN, "--config=latent_dim=0"], ["latent_dim", ">= 1"], {}, id="zero-latent"),
    pytest.param([*GAN, "--config=d_steps=-1"], ["d_steps", ">= 0"], {}, id="negative-d-steps"),
    pytest.param(
        [*DCGAN, "--dataset=folder:{tmp}/images", "--config=image_size=20"],
        ["image_size", "20", "16"],
        {},
        id="dcgan-cannot-build",
    ),
    pytest.param(
        [*GAN, "--config=generator_units=0"], ["gan config cannot build", "units"], {}, id="units"
    ),
    # --train_steps=0 is the family's budget (tests/test_step_time.py); below it is refused.
    pytest.param(
        [*GAN, "--train_steps=-1"], ["--train_steps", ">= 1", "got -1"], {}, id="negative-steps"
    ),
    pytest.param(
        [*GAN, "--config=pack=3"], ["per-replica batch 16", "pack=3"], {}, id="batch-not-packable"
    ),
    pytest.param(
        [*DCGAN, "--dataset=ring8"], ["dcgan", "image dataset", "ring8"], {}, id="dcgan-on-toy"
    ),
    pytest.param(
        [*GAN, "--dataset=folder:/nonexistent"],
        ["/nonexistent", "does not exist"],
        {},
        id="missing-folder",
    ),
    pytest.param(
        # Fashion-MNIST cannot be hidden from a subprocess (its system folder is searched and
        # installed here), so MNIST, which is not installed, stands for missing data.
        [*GAN, "--dataset=mnist", "--data_dir={tmp}/empty"],
        ["mnist not found", "{tmp}/empty", "--data_dir"],
        {"HOME": "{tmp}/home", "KERAS_HOME": "{tmp}/keras", "TFDS_DATA_DIR": "{tmp}/tfds"},
        id="missing-data",
        marks=pytest.mark.skipif(
            os.path.isdir("/usr/share/datasets/mnist"), reason="MNIST is installed here"
        ),
    ),
    pytest.param([*GAN, "--strategy=tpu"], ["--strategy=tpu", "no TPU"], {}, id="no-tpu"),
    pytest.param(
        [*GAN, "--strategy=multi_worker"], ["multi_worker", "TF_CONFIG"], {}, id="no-tf-config"
    ),
    pytest.param(
        [*GAN, "--strategy=multi_worker"],
        ["TF_CONFIG", "not valid"],
        {"TF_CONFIG": "{not json"},
        id="bad-tf-config",
    ),
]


def _substitute(args, keywords, env, tmp: str):
    """The case with "{tmp}" replaced by `tmp`."""
    return (
        [a.replace("{tmp}", tmp) for a in args],
        [k.replace("{tmp}", tmp) for k in keywords],
        {k: v.replace("{tmp}", tmp) for k, v in env.items()},
    )


def _case_dirs(root) -> str:
    """The directories and image folder the cases name under "{tmp}"."""
    for sub in ("empty", "home", "keras", "tfds"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    _image_folder(os.path.join(root, "images"))
    return str(root)


# Cases that need no environment of their own run one after the other in one interpreter
# (`tests.families.run_mains_in_one_interpreter`). Those left in a process of their own show
# what only a fresh process shows: no start-up chatter before the line, and the exit code.
OWN_PROCESS = {"dataset", "wrong-type", "missing-data", "no-tf-config", "bad-tf-config"}


@pytest.fixture(scope="session")
def in_process_results(tmp_path_factory) -> dict:
    """case id -> (code, stdout, stderr, seconds) of every BAD_INPUT case not in OWN_PROCESS,
    run once per session for both workers (`tests.shared_builds.build_once`)."""
    from tests.families import run_mains_in_one_interpreter
    from tests.shared_builds import build_once

    def build(root) -> None:
        cases = []
        for case in BAD_INPUT:
            if case.id in OWN_PROCESS:
                continue
            args, _, _ = _substitute(*case.values, _case_dirs(root / case.id))
            model_dir = root / case.id / "run"
            cases.append((case.id, ["--train_steps=3", *args, f"--model_dir={model_dir}"]))
        results = run_mains_in_one_interpreter("train_main", cases)
        (root / "results.json").write_text(json.dumps(results))

    root = build_once(tmp_path_factory, "cli-bad-input", build)
    return {"root": str(root), **json.loads((root / "results.json").read_text())}


@pytest.mark.slow
@pytest.mark.parametrize(("args", "keywords", "env"), BAD_INPUT)
def test_bad_input_is_one_line(args, keywords, env, request, tmp_path, fast_fail_seconds):
    case = request.node.callspec.id
    if case not in OWN_PROCESS:
        results = request.getfixturevalue("in_process_results")
        _, keywords, _ = _substitute(args, keywords, env, os.path.join(results["root"], case))
        code, out, err, elapsed = results[case]
    else:
        args, keywords, env = _substitute(args, keywords, env, _case_dirs(tmp_path))
        start = time.monotonic()
        code, out, err = train(
            "--train_steps=3", *args, f"--model_dir={tmp_path / 'run'}", env=env, fresh=True
        )
        elapsed = time.monotonic() - start
    assert_usage_error(code, err, keywords)
    assert elapsed < fast_fail_seconds, f"took {elapsed:.1f} s (bound {fast_fail_seconds:.1f} s)"
    assert "done:" not in out


@pytest.mark.slow
def test_missing_model_dir_is_one_line():
    code, _, err = train(*GAN, "--train_steps=3")
    assert_usage_error(code, err, ["--model_dir", "required"])


# -- a good run ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A 2-step gan run on ring8 (metrics every step): (model_dir, code, stdout, stderr)."""
    model_dir = tmp_path_factory.mktemp("cli") / "run"
    code, out, err = train(*GAN, "--train_steps=2", "--log_every=1", f"--model_dir={model_dir}")
    return model_dir, code, out, err


@pytest.mark.slow
def test_run_writes_the_run_directory(trained_run):
    import tensorflow as tf

    model_dir, code, out, err = trained_run
    assert code == 0, err
    assert err == ""
    assert out.splitlines()[-1] == f"done: 2 steps in {model_dir}"

    with open(model_dir / "config.json") as f:
        saved = json.load(f)
    assert saved["model"] == "gan"
    assert saved["model_config"]["latent_dim"] == 2  # the toy default (images: 100)
    assert saved["model_config"]["data_dim"] == 2  # filled in from the toy data
    assert saved["run"]["train_steps"] == 2
    assert saved["run"]["dataset"] == "ring8"
    assert saved["data"]["kind"] == "vector"

    assert checkpoint_steps(model_dir) == [2]
    assert latest_checkpoint_step(model_dir) == 2

    with Image.open(model_dir / "samples" / "latest.png") as picture:
        picture.verify()
    with Image.open(model_dir / "samples" / "latest.png") as picture:
        assert picture.format == "PNG"
        assert min(picture.size) >= 64 and max(picture.size) <= 4096
        assert picture.mode in ("L", "RGB", "RGBA")
        low, high = np.asarray(picture).min(), np.asarray(picture).max()
        assert low < high  # not a blank picture
    assert (model_dir / "samples" / "step_00000002.png").exists()

    records = metrics_records(model_dir)
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        assert math.isfinite(record["d_loss"]) and math.isfinite(record["g_loss"])

    events = glob.glob(str(model_dir / "tensorboard" / "events.out.tfevents.*"))
    assert len(events) == 1
    plugins: dict[str, set[str]] = {}
    scalars: dict[str, list[float]] = {}
    for raw in tf.data.TFRecordDataset(events[0]):
        event = tf.compat.v1.Event.FromString(raw.numpy())
        for value in event.summary.value:
            plugins.setdefault(value.tag, set()).add(value.metadata.plugin_data.plugin_name)
            if value.metadata.plugin_data.plugin_name == "scalars":
                scalars.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    assert plugins["d_loss"] == {"scalars"}
    assert plugins["g_loss"] == {"scalars"}
    assert plugins["samples"] == {"images"}
    assert len(scalars["d_loss"]) == 2 and all(math.isfinite(v) for v in scalars["d_loss"])
    assert len(scalars["g_loss"]) == 2 and all(math.isfinite(v) for v in scalars["g_loss"])


@pytest.mark.slow
def test_rerun_resumes_then_reports_already_trained(trained_run, tmp_path):
    model_dir = tmp_path / "run"
    shutil.copytree(trained_run[0], model_dir)
    flags = [*GAN, "--log_every=1", f"--model_dir={model_dir}"]

    code, out, err = train(*flags, "--train_steps=4")
    assert code == 0, err
    assert f"resuming {model_dir} from step 2" in out
    assert out.splitlines()[-1] == f"done: 4 steps in {model_dir}"
    assert checkpoint_steps(model_dir) == [2, 4]
    assert latest_checkpoint_step(model_dir) == 4
    assert [r["step"] for r in metrics_records(model_dir)] == [1, 2, 3, 4]

    code, out, err = train(*flags, "--train_steps=4")
    assert code == 0, err
    assert "already trained 4 steps" in out
    assert checkpoint_steps(model_dir) == [2, 4]
    assert len(metrics_records(model_dir)) == 4


# (args, keywords); each is refused before the run directory is touched.
REFUSED_RESUMES = [
    pytest.param([*GAN, "--config=latent_dim=7"], ["latent_dim", "2 -> 7"], id="other-config"),
    pytest.param(DCGAN, ["'gan' run", "'dcgan'", "--model_dir"], id="other-family"),
    pytest.param(
        ["--model=gan", "--dataset=grid25", "--batch_size=16"], ["'ring8'", "'grid25'"], id="data"
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("args", "keywords"), REFUSED_RESUMES)
def test_contradicting_resume_is_refused(args, keywords, trained_run):
    model_dir = trained_run[0]
    before = snapshot(model_dir)
    code, out, err = train(*args, "--train_steps=4", f"--model_dir={model_dir}")
    assert_usage_error(code, err, [str(model_dir), *keywords])
    assert "resuming" not in out
    assert snapshot(model_dir) == before


@pytest.mark.slow
@pytest.mark.parametrize(
    "content", ["{not json", '{"run": {}}'], ids=["not-json", "not-a-run-config"]
)
def test_corrupt_config_json_is_one_line(content, tmp_path):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(content)
    code, _, err = train(*GAN, "--train_steps=2", f"--model_dir={model_dir}")
    assert_usage_error(code, err, [str(model_dir / "config.json")])
    assert (model_dir / "config.json").read_text() == content


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path):
    model_dir = tmp_path / "run"
    flags = [*GAN, "--checkpoint_every=0", "--log_every=5", f"--model_dir={model_dir}"]
    with zygote.popen(
        [sys.executable, TRAIN_MAIN, *flags, "--train_steps=100000"],
        cwd=REPO,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            deadline = time.monotonic() + 90
            while not (model_dir / "metrics.jsonl").exists():  # training has started
                assert proc.poll() is None, f"exited early with {proc.returncode}"
                assert time.monotonic() < deadline, "no metrics after 90 s"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 143, err
    match = re.fullmatch(r"terminated at step (\d+); checkpoint saved, rerun to resume\n", err)
    assert match, f"stderr is not the one termination line:\n{err}"
    step = int(match.group(1))
    assert 5 <= step < 100000
    assert "done:" not in out
    assert checkpoint_steps(model_dir) == [step]
    assert latest_checkpoint_step(model_dir) == step

    code, out, err = train(*flags, f"--train_steps={step + 2}")
    assert code == 0, err
    assert f"resuming {model_dir} from step {step}" in out
    assert out.splitlines()[-1] == f"done: {step + 2} steps in {model_dir}"
    assert latest_checkpoint_step(model_dir) == step + 2
