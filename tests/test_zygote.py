"""The forked test subprocesses (`tests/zygote.py`) behave as `python ARGV` would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests import zygote
from tests.families import REPO, run_command, run_main, subprocess_env
from tests.test_cli import GAN as GAN_FLAGS

pytestmark = pytest.mark.skipif(not zygote.enabled(), reason="GANZOO_TEST_FORK=0")

_PROBE = """
import json, os, sys
import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)
print(json.dumps({
    "argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0], "value": os.environ.get("PROBE"),
    "pid": os.getpid(), "devices": len(tf.config.list_logical_devices("CPU")),
}))
print("to stderr", file=sys.stderr)
raise SystemExit(3)
"""


def test_a_forked_child_is_a_new_process_with_its_own_environment_and_runtime(tmp_path):
    argv = [sys.executable, "-c", _PROBE, "a", "b"]
    env = {"PROBE": "seen", "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    assert zygote.forkable(argv, subprocess_env(env))
    forked = run_command(argv, env=env, cwd=str(tmp_path))
    fresh = run_command(argv, env=env, cwd=str(tmp_path), fresh=True)
    assert forked.returncode == fresh.returncode == 3
    assert forked.stdout == fresh.stdout.replace(str(_pid(fresh)), str(_pid(forked)))
    out = forked.stdout
    assert '"argv": ["-c", "a", "b"]' in out and f'"cwd": "{tmp_path}"' in out
    assert '"value": "seen"' in out and '"devices": 2' in out and '"path0": ""' in out
    assert _pid(forked) != os.getpid()
    assert forked.stderr.endswith("to stderr\n")


def _pid(result: subprocess.CompletedProcess) -> int:
    import json

    return json.loads(result.stdout.splitlines()[-1])["pid"]


def test_a_main_gives_the_same_exit_code_and_one_line_as_in_a_fresh_interpreter(tmp_path):
    # Fails after TensorFlow is imported (the config is checked by the family's task).
    args = [*GAN_FLAGS, "--config=no_such_key=1", "--train_steps=2"]
    forked = run_main([*args, f"--model_dir={tmp_path / 'a'}"])
    fresh = run_main([*args, f"--model_dir={tmp_path / 'b'}"], fresh=True)
    assert forked.returncode == fresh.returncode == 2
    assert forked.stderr == fresh.stderr and forked.stderr.count("\n") == 1, forked.stderr
    assert forked.stdout == fresh.stdout == ""


def test_signals_and_timeouts_reach_the_child():
    process = zygote.ForkedProcess(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
        subprocess_env(),
        REPO,
    )
    try:
        deadline = time.monotonic() + 30
        while "up" not in process.output()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
    finally:
        process.close()
    with pytest.raises(subprocess.TimeoutExpired):
        run_command(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            env={"TF_CPP_MIN_LOG_LEVEL": "2"},
            timeout=1,
        )


@pytest.mark.parametrize(
    ("argv_tail", "env"),
    [
        (["-c", "pass"], {"TF_CPP_MIN_LOG_LEVEL": "0"}),  # read when TensorFlow starts
        (["-c", "pass"], {}),  # unset: code that imports TensorFlow logs everything
        (["-c", "pass"], {"TF_ENABLE_ONEDNN_OPTS": "0"}),
        (["-W", "error", "-c", "pass"], {"TF_CPP_MIN_LOG_LEVEL": "2"}),  # Python's own flags
    ],
)
def test_what_only_a_new_interpreter_shows_is_not_forked(argv_tail, env):
    forkable_env = subprocess_env({"TF_CPP_MIN_LOG_LEVEL": "2"})
    assert zygote.forkable([sys.executable, "-c", "pass"], forkable_env)
    variables = {k: v for k, v in forkable_env.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    assert not zygote.forkable([sys.executable, *argv_tail], {**variables, **env})


def test_the_child_ends_as_an_interpreter_does(tmp_path):
    # An uncaught exception: its traceback, exit code 1, then the atexit functions (TF's
    # autograph removes its generated files there); TMPDIR read again.
    code = (
        "import atexit, tempfile; atexit.register(print, 'bye', tempfile.gettempdir()); "
        "raise ValueError('x')"
    )
    argv = [sys.executable, "-c", code]
    env = {"TMPDIR": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2"}
    assert zygote.forkable(argv, subprocess_env(env))
    forked = run_command(argv, env=env)
    fresh = run_command(argv, env=env, fresh=True)
    assert forked.returncode == fresh.returncode == 1
    assert forked.stdout == fresh.stdout == f"bye {tmp_path}\n"
    assert forked.stderr.startswith("Traceback (most recent call last):\n"), forked.stderr
    assert forked.stderr.endswith("ValueError: x\n") and fresh.stderr.endswith("ValueError: x\n")
