"""The TPU readiness proxy: every family trains as a TPU runs it, XLA-compiled in bfloat16, on CPU.

A TPU runs the train step only XLA-compiled, in bfloat16 (the TPU precision); nothing here has
a TPU. So every family of the shared test table (`tests.families.TINY`) trains two steps with
`jit_compile=True` under `mixed_precision="mixed_bfloat16"`, all families in one fresh
interpreter (one TensorFlow start-up); each family's result is checked in its own test. (XLA in
float32 and bfloat16 without XLA are the same two switches one at a time: until this session
they were two interpreters of their own, 100 s of both cores, for no check the combination
lacks.)

Beyond "it ran": both steps complete with finite losses, the checkpoint holds step 2 and
restores into the float32 model export builds; XLA really compiled the step (its HLO module is
dumped) and compiled it once (no value of the model's state became a compile-time constant,
which would recompile every step); the networks compute in bfloat16 with float32 variables and
float32 outputs.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import pathlib

import pytest

from tests.families import TINY, run_python, tiny_run_options
from zoo import registry

FAMILIES = sorted(TINY)
MODE = {"jit_compile": True, "mixed_precision": "mixed_bfloat16"}
STEPS = 2

# Trains every job in this interpreter and prints one JSON object: family -> what the test
# checks (or the traceback). XLA dumps each compiled module's HLO into `dump` (jit_compile).
_TRAIN = """
import collections, json, os, traceback
import keras
from zoo import run as zoo_run
from zoo import train

mode_options, dump, jobs = {mode_options!r}, {dump!r}, {jobs!r}

class StepLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append({{k: float(v) for k, v in (logs or {{}}).items()}})

def compiled_steps():
    names = os.listdir(dump) if os.path.isdir(dump) else []
    return sorted(
        n for n in names if "one_step_on_data" in n and n.endswith(".before_optimizations.txt")
    )

def layer_dtypes(network):
    counts = collections.Counter(
        layer.compute_dtype
        for layer in network._flatten_layers(include_self=False, recursive=True)
        if layer.weights and not isinstance(layer, keras.Model)
    )
    return dict(counts)

def outputs(network):
    return {{str(t.dtype) for t in keras.tree.flatten(network.outputs)}}

report = {{}}
for family, dataset, overrides, options, model_dir in jobs:
    try:
        before = compiled_steps()
        logs = StepLogs()
        rc = zoo_run.RunConfig(
            model=family, dataset=dataset, model_dir=model_dir, train_steps={steps},
            batch_size=8, log_every=1, **options, **mode_options,
        )
        result = train.run(rc, overrides, extra_callbacks=[logs])
        model = result.model
        report[family] = {{
            "status": result.status,
            "step": result.step,
            "steps": logs.steps,
            "jit_compile": model.jit_compile,
            "compiled": [n for n in compiled_steps() if n not in before],
            "generator": layer_dtypes(model.generator),
            "discriminator": layer_dtypes(model.discriminator),
            "outputs": sorted(outputs(model.generator) | outputs(model.discriminator)),
            "policies": sorted({{model.generator.dtype_policy.name,
                                 model.discriminator.dtype_policy.name}}),
            "variables": sorted({{v.dtype for v in model.trainable_variables}}),
            "restored_step": zoo_run.load_trained(model_dir).step,
            "latest_step": zoo_run.latest_step(model_dir),
        }}
    except Exception:
        report[family] = {{"error": traceback.format_exc()[-3000:]}}
    keras.backend.clear_session()
print(json.dumps(report))
"""


def _train_all(root: pathlib.Path) -> dict:
    """Trains every family in one fresh interpreter: family -> its report."""
    dump = root / "xla"
    jobs = [
        (family, *TINY[family], tiny_run_options(family), str(root / family)) for family in FAMILIES
    ]
    code = _TRAIN.format(mode_options=MODE, dump=str(dump), jobs=jobs, steps=STEPS)
    # Without LLVM's optimisations of the compiled code (the checks are about what XLA compiles
    # and how often, not its speed) the interpreter takes 50 s instead of 90 s here.
    flags = "--xla_dump_hlo_as_text --xla_backend_optimization_level=0"
    env = {"XLA_FLAGS": f"--xla_dump_to={dump} {flags}"}
    result = run_python(code, env=env, timeout=900)
    if result.returncode:
        error = f"the interpreter exited with {result.returncode}:\n{result.stderr[-3000:]}"
        return {family: {"error": error} for family in FAMILIES}
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def proxy_runs(tmp_path_factory) -> dict[str, dict]:
    """family -> what its tiny run did.

    Trained on the first request; the report is shared by the xdist workers of the session
    through a locked file, so whichever worker asks first trains and the other reads.
    """
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "accelerator-proxy"
    root.mkdir(exist_ok=True)
    reports = root / "reports.json"
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not reports.exists():
            partial = reports.with_suffix(".partial")
            partial.write_text(json.dumps(_train_all(root)))
            partial.rename(reports)
    return json.loads(reports.read_text())


def test_every_family_is_covered():
    """A family registered without a tiny entry in `tests.families.TINY` is not proxy-tested."""
    assert registry.names() == FAMILIES


def _trained(report: dict, family: str) -> dict:
    """The family's report, checked for what every run promises."""
    run = report.get(family, {"error": "not run"})
    assert "error" not in run, f"{family} did not train:\n{run['error']}"
    assert run["status"] == "completed" and run["step"] == STEPS
    assert len(run["steps"]) == STEPS
    for logs in run["steps"]:
        assert logs["finite"] == 1.0, logs
        for name, value in logs.items():
            assert math.isfinite(value), (name, logs)
    assert run["latest_step"] == STEPS and run["restored_step"] == STEPS
    assert run["variables"] == ["float32"]
    assert run["outputs"] == ["float32"]
    return run


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_xla_compiled_in_bfloat16(proxy_runs, family):
    run = _trained(proxy_runs, family)
    assert run["jit_compile"] is True and run["policies"] == ["mixed_bfloat16"]
    # One HLO module of the train step for both steps: XLA compiled it, and only once.
    assert len(run["compiled"]) == 1, run["compiled"]
    # Most layers compute in bfloat16; those kept in float32 are the output layers (logits,
    # images) and parts float32 by design (StackGAN's conditioning augmentation).
    for network in ("generator", "discriminator"):
        dtypes = run[network]
        assert set(dtypes) <= {"bfloat16", "float32"}, (network, dtypes)
        assert dtypes.get("bfloat16", 0) >= max(1, dtypes.get("float32", 0)), (network, dtypes)
