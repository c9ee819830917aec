"""The shared test base: tiny settings of every registered family and how to run them.

Adding a family to `zoo.registry` without an entry in `TINY` fails `test_every_family_is_covered`,
so every family gets the same end-to-end checks (tests/test_smoke.py), resume checks
(tests/core/test_resume.py) and XLA / bfloat16 checks (tests/test_accelerator_proxy.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests import zygote

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# family -> (dataset, config overrides): 8-16 px images or toys, a few units per layer. Every
# entry averages G's weights (`ema_decay`, see EMA below), so the shared tests (exact resume, export
# parity, the demo) hold with the average on; its off path is tests/core/test_ema.py's and the
# unit tests'.
EMA = "ema_decay=0.9"
TINY: dict[str, tuple[str, tuple[str, ...]]] = {
    "gan": ("ring8", ("generator_units=16,16", "discriminator_units=16", EMA)),
    "dcgan": (
        "fashion_mnist",
        # Fashion-MNIST's defaults put R1 on every 16th step; every 2nd here, so that
        # exact resume also covers the penalty's steps after a restart.
        ("image_size=16", "generator_filters=8", "discriminator_filters=8", "r1_interval=2", EMA),
    ),
    "cgan": (
        "fashion_mnist",
        (
            "image_size=16",
            "generator_filters=8",
            "discriminator_filters=8",
            "embedding_dim=4",
            EMA,
        ),
    ),
    "cyclegan": (
        "fashion_mnist",
        (
            "image_size=16",
            "channels=1",
            "generator_filters=8",
            "discriminator_filters=8",
            "residual_blocks=1",
            "pool_size=6",  # full after the first step of a batch of 8: the pool mixes
            EMA,
        ),
    ),
    "gan_int_cls": (
        "fashion_mnist",
        (
            "image_size=16",
            "generator_filters=8",
            "discriminator_filters=8",
            "condition_dim=8",
            "embedding_dim=16",
            "text_embedding_dim=8",
            "text_units=8",
            "text_encoder_steps=5",
            "captions_per_image=2",
            EMA,
        ),
    ),
    # 16 -> 32 px; the shared tests run phase 1 (the default stage), tests/models/test_stackgan.py
    # runs phase 2 after it (mirrored + mixed_float16, exact resume after a kill, export).
    "stackgan": (
        "fashion_mnist",
        (
            "stage1_size=16",
            "image_size=32",
            "stage1_generator_filters=4",
            "stage1_discriminator_filters=4",
            "stage2_generator_filters=4",
            "stage2_discriminator_filters=4",
            "residual_blocks=1",
            "condition_dim=8",
            "embedding_dim=16",
            "text_embedding_dim=8",
            "text_units=8",
            "text_encoder_steps=5",
            "captions_per_image=2",
            EMA,
        ),
    ),
}

# family -> more run options (`zoo.run.RunConfig` fields, also `--NAME=VALUE` flags).
TINY_RUN_OPTIONS: dict[str, dict[str, str]] = {
    "cyclegan": {"domain_a": "sandal", "domain_b": "sneaker"},
}


def tiny_run_options(family: str) -> dict[str, str]:
    """The `zoo.run.RunConfig` fields beyond dataset and model that `family`'s tiny run sets."""
    return dict(TINY_RUN_OPTIONS.get(family, {}))


def tiny_flags(family: str) -> list[str]:
    """Command-line flags that train `family` on its tiny settings."""
    dataset, overrides = TINY[family]
    return [
        f"--model={family}",
        f"--dataset={dataset}",
        *(f"--config={o}" for o in overrides),
        *(f"--{key}={value}" for key, value in tiny_run_options(family).items()),
    ]


# Variables of a developer's shell that change which strategy, accelerator, cache or data a run
# uses, or what TensorFlow prints: tests/conftest.py removes them for the whole session, so a test
# sees only what it sets itself (a fixture's `GANZOO_CACHE`, a test's `TF_CONFIG`).
SHELL_VARIABLES = (
    "TF_CONFIG",
    "TPU_NAME",
    "GANZOO_CACHE",
    "KERAS_HOME",
    "TFDS_DATA_DIR",
    "TF_CPP_MIN_LOG_LEVEL",
)
# The environment as the session started, after tests/conftest.py dropped SHELL_VARIABLES (tests
# and the code they call may set some of them later, e.g. a classifier cache or TF's log level).
SESSION_ENVIRONMENT: dict[str, str] = {}


def subprocess_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a test's subprocess: the session's, without a strategy's variables,
    writing no bytecode (Python would put `__pycache__` for TensorFlow's generated code into
    TMPDIR), plus `env`."""
    base = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "TPU_NAME")}
    return {**base, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}


def run_command(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str = REPO,
    timeout: float = 300,
    fresh: bool = False,
) -> subprocess.CompletedProcess:
    """`subprocess.run(ARGV)` with output captured as text, in `subprocess_env(env)`; a
    `python` command is forked from the worker's TensorFlow-imported server (`tests/zygote.py`)
    unless `fresh` (what only a new interpreter shows: start-up chatter, import-time variables)."""
    return zygote.run(argv, cwd=cwd, env=subprocess_env(env), timeout=timeout, fresh=fresh)


def run_main(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    fresh: bool = False,
) -> subprocess.CompletedProcess:
    """Runs `python train_main.py ARGS` from the repository root (forked from the worker's
    TensorFlow-imported server, `tests/zygote.py`; `fresh` for a new interpreter)."""
    return zygote.run(
        [sys.executable, os.path.join(REPO, "train_main.py"), *args],
        cwd=REPO,
        env=subprocess_env(env),
        timeout=timeout,
        fresh=fresh,
    )


def run_export(
    *args: str, timeout: float = 300, fresh: bool = False
) -> subprocess.CompletedProcess:
    """Runs `python -m export ARGS` from the repository root (as `run_main`)."""
    return run_command([sys.executable, "-m", "export", *args], timeout=timeout, fresh=fresh)


def run_python(
    code: str, *, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Runs a Python snippet in a new process (its own TensorFlow devices and policy), forked
    as `run_main`."""
    return zygote.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=subprocess_env({"PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}),
        timeout=timeout,
    )


# Runs `main(argv)` of one main module for each case in this interpreter, file descriptors 1 and 2
# captured (TensorFlow's C++ logging included); prints {case: [code, stdout, stderr, seconds]}.
_MAINS_IN_ONE_INTERPRETER = """
import importlib, json, os, sys, tempfile, time
import tensorflow  # its start-up chatter before the first case
from absl import flags
main_module = importlib.import_module({module!r})

def run(argv):
    flags.FLAGS.unparse_flags()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        sys.stdout.flush(); sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
        start = time.monotonic()
        try:
            try:
                flags.FLAGS(argv)
                code = main_module.main(argv[:1])
            except SystemExit as exit:
                code = exit.code
            except Exception as exc:
                code = f"{{type(exc).__name__}}: {{exc}}"
        finally:
            elapsed = time.monotonic() - start
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        out.seek(0); err.seek(0)
        return [code, out.read(), err.read(), elapsed]

results = {{case: run([{module!r}, *args]) for case, args in {cases!r}}}
print(json.dumps(results))
"""


def run_mains_in_one_interpreter(
    module: str, cases: list[tuple[str, list[str]]], timeout: float = 600
) -> dict[str, tuple]:
    """Runs `module`'s `main` (an absl main: `train_main`, `export.__main__`, ...) on each
    case's flags, one after the other in one fresh interpreter: the same parsing and code path
    as a process per case, one TensorFlow start-up for all. What only a fresh process shows (no
    start-up chatter before an error line, the exit code) needs a process of its own.

    Returns case -> (exit code, stdout, stderr, seconds the case took).
    """
    import json

    result = run_python(
        _MAINS_IN_ONE_INTERPRETER.format(module=module, cases=cases), timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
