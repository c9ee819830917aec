"""The training driver: a run config in, a trained, checkpointed run directory out.

`train_main.py` turns flags into a `zoo.run.RunConfig` and calls `run`; tests and notebooks call
`run` directly. What a run directory holds, and how a trained model is rebuilt from it, is
`zoo.run`'s; what differs between families (data, defaults, warm starts, pictures, phases) is
each family's task (`zoo.models.task.Task`), which the driver calls without knowing the family.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from zoo import data as zoo_data
from zoo import registry
from zoo.core import callbacks as zoo_callbacks
from zoo.core import distribute
from zoo.core.checkpoint import RunCheckpoint
from zoo.core.config import apply_overrides, config_to_dict
from zoo.errors import TrainingDivergedError, UsageError, WorkerLostError
from zoo.eval.callback import EvalCallback
from zoo.eval.evaluate import Evaluator, check_evaluable
from zoo.io import read_json
from zoo.models.task import Task
from zoo.run import (
    CONFIG_FILE,
    RunConfig,
    load_run,
    phase_dir,
    remove_partial_writes,
    write_config,
)
from zoo.rundir import owned_run_directory


@dataclasses.dataclass
class RunResult:
    """What a run did: its final step and why it stopped."""

    model_dir: str
    step: int
    resumed_from: int
    status: str  # "completed", "terminated" (SIGTERM) or "diverged"
    message: str = ""
    model: Any = None


def _check_run_config(rc: RunConfig) -> None:
    if not rc.model_dir:
        raise UsageError("--model_dir is required")
    for name in ("train_steps", "batch_size", "steps_per_execution", "keep_checkpoints"):
        if getattr(rc, name) < 1:
            raise UsageError(f"--{name} must be >= 1, got {getattr(rc, name)}")
    for name in ("checkpoint_every", "sample_every", "log_every", "num_virtual_devices", "stage"):
        if getattr(rc, name) < 0:
            raise UsageError(f"--{name} must be >= 0, got {getattr(rc, name)}")
    if rc.eval_every < 0 or rc.eval_samples < 1:
        raise UsageError(
            f"need --eval_every >= 0 and --eval_samples >= 1, got {rc.eval_every}, "
            f"{rc.eval_samples}"
        )
    if rc.strategy not in distribute.STRATEGIES:
        raise UsageError(
            f"unknown strategy {rc.strategy!r}; known: {', '.join(distribute.STRATEGIES)}"
        )
    if rc.mixed_precision not in distribute.PRECISIONS:
        raise UsageError(
            f"unknown precision {rc.mixed_precision!r}; known: {', '.join(distribute.PRECISIONS)}"
        )


def _with_phase(task: Task, config: Any, rc: RunConfig) -> Any:
    """The config with the phase `--stage` asks for (families with phases), else unchanged."""
    if not task.phases:
        if rc.stage:
            raise UsageError(
                f"--stage is for families trained in phases; {task.name} has one "
                f"(got --stage={rc.stage})"
            )
        return config
    if rc.stage and rc.stage not in task.phases:
        raise UsageError(
            f"--stage must be one of {', '.join(map(str, task.phases))} for {task.name}, "
            f"got {rc.stage}"
        )
    return task.with_phase(config, rc.stage) if rc.stage else config


def with_family_defaults(rc: RunConfig) -> RunConfig:
    """`rc` with `batch_size=0` and `train_steps=0` filled in: the saved run's when resuming,
    else the family's on `rc.dataset` (`Task.default_batch_size`, `Task.default_train_steps`)."""
    if rc.batch_size and rc.train_steps:
        return rc
    path = os.path.join(rc.model_dir, CONFIG_FILE) if rc.model_dir else ""
    saved = read_json(path) if os.path.exists(path) else {}
    saved = saved.get("run", {}) if isinstance(saved, dict) else {}
    saved = saved if isinstance(saved, dict) else {}
    task = registry.get(rc.model)
    family = {"batch_size": task.default_batch_size, "train_steps": task.default_train_steps}
    filled = {}
    for name, default in family.items():
        if getattr(rc, name):
            continue
        value = saved.get(name, 0)
        if isinstance(value, bool) or not (isinstance(value, int) and value > 0):
            value = default(rc.dataset)
        filled[name] = value
    return dataclasses.replace(rc, **filled)


def resolve_config(rc: RunConfig, overrides: Sequence[str]) -> tuple[Task, Any]:
    """The family's task and its config: from `model_dir` when resuming, else defaults + overrides.

    A family trained in phases takes its `stage` from `rc.stage` (else an override, else its
    default); the phase may differ from the saved run's, nothing else may.

    Raises:
      UsageError: unknown family or field, or overrides that contradict the saved run.
    """
    task = registry.get(rc.model)
    phased = bool(task.phases)
    path = os.path.join(rc.model_dir, CONFIG_FILE)
    if os.path.exists(path):
        saved_task, saved_config, saved = load_run(rc.model_dir)
        if saved_task is not task:
            raise UsageError(
                f"{rc.model_dir} holds a {saved['model']!r} run, not {rc.model!r}; "
                "use another --model_dir"
            )
        if phased:  # the phase comes from this run's options, not from the saved one
            saved_config = task.with_phase(saved_config, task.phase_of(task.config_class()))
        config = _with_phase(task, apply_overrides(saved_config, overrides), rc)
        changed = [
            f"{k}: {v} -> {getattr(config, k)}"
            for k, v in config_to_dict(saved_config).items()
            if config_to_dict(config)[k] != v and not (phased and k == "stage")
        ]
        if changed:
            raise UsageError(
                f"{rc.model_dir} was trained with another config ({'; '.join(changed)}); "
                "use another --model_dir"
            )
        if saved.get("run", {}).get("dataset") not in (None, rc.dataset):
            raise UsageError(
                f"{rc.model_dir} was trained on {saved['run']['dataset']!r}, not {rc.dataset!r}"
            )
        return task, config
    if rc.init_from:  # the preset's full config: its networks must fit the weights
        from zoo.presets.store import init_config

        config = apply_overrides(init_config(rc), overrides)
    else:
        config = apply_overrides(task.default_config(rc.dataset), overrides)
    return task, _with_phase(task, config, rc)


def _with_ema(model: Any, fn: Any, *args: Any) -> Any:
    """`fn(model, *args)` with the generator's averaged weights swapped in, when it has them
    (sample pictures and evaluation during training show the weights an export ships)."""
    with model.ema_weights():
        return fn(model, *args)


def build_model(task: Task, config: Any, rc: RunConfig, strategy: tf.distribute.Strategy) -> Any:
    """Builds and compiles a family's model inside the strategy's scope (optimizers built).

    Raises:
      UsageError: when the config cannot build a model.
    """
    with strategy.scope():
        model = task.build_model(config, seed=rc.seed)
        model.compile(
            train_steps=rc.train_steps,
            jit_compile=rc.jit_compile,
            steps_per_execution=rc.steps_per_execution,
        )
    return model


def run(
    rc: RunConfig,
    overrides: Sequence[str] = (),
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> RunResult:
    """Trains (or resumes) one run.

    Args:
      rc: run options.
      overrides: `key=value` overrides of the family's config.
      extra_callbacks: more Keras callbacks (tests use them to kill a run).

    Returns:
      A `RunResult`.

    Raises:
      UsageError: bad input (the mains print it as one line and exit with code 2).
      TrainingDivergedError: the losses stayed non-finite.
      WorkerLostError: another worker of a multi-worker run went away.
    """
    rc = with_family_defaults(rc)
    _check_run_config(rc)
    if rc.eval_every:
        check_evaluable(rc)  # before the run directory is made
    strategy = distribute.build_strategy(
        rc.strategy, num_virtual_devices=rc.num_virtual_devices, tpu=rc.tpu
    )
    distribute.set_precision(rc.mixed_precision)
    keras.utils.set_random_seed(rc.seed)
    if rc.deterministic:
        tf.config.experimental.enable_op_determinism()
    chief = distribute.is_chief(strategy)
    with owned_run_directory(rc.model_dir, "--model_dir", owner=chief):
        return _run_owned(rc, overrides, extra_callbacks, strategy, chief)


def _run_owned(
    rc: RunConfig,
    overrides: Sequence[str],
    extra_callbacks: Sequence[keras.callbacks.Callback],
    strategy: tf.distribute.Strategy,
    chief: bool,
) -> RunResult:
    """The rest of `run`, with the run directory checked and locked (by the chief)."""
    if chief:
        remove_partial_writes(rc.model_dir)
    task, config = resolve_config(rc, overrides)
    config = task.prepare_run(rc, config)
    d_steps = task.discriminator_steps(config)
    replicas = strategy.num_replicas_in_sync
    if rc.batch_size % replicas:
        raise UsageError(f"--batch_size={rc.batch_size} is not a multiple of {replicas} replicas")
    task.check_batch(config, rc.batch_size // replicas)

    if rc.dataset in zoo_data.TOY_NAMES and "vector" not in task.data_kinds:
        raise UsageError(f"{rc.model} needs an image dataset; {rc.dataset} gives vectors")
    evaluator = Evaluator(rc) if rc.eval_every else None

    def dataset(start_step: int) -> tuple[tf.data.Dataset, zoo_data.DatasetInfo]:
        return task.training_dataset(
            rc, config, batch_size=rc.batch_size * d_steps, start_step=start_step
        )

    ds, info = dataset(0)
    config = task.adapt_config(config, info)
    if info.skipped_files:
        print(f"skipped {info.skipped_files} unreadable file(s) in {info.name}", file=sys.stderr)

    model = build_model(task, config, rc, strategy)
    task.warm_start(model, rc)
    phase = task.phase_of(config)
    run_dir = phase_dir(rc.model_dir, phase)
    checkpoint = RunCheckpoint(
        os.path.join(run_dir, "checkpoints"),
        model.checkpoint_items(),
        keep=rc.keep_checkpoints,
        chief=chief,
    )
    try:
        start = checkpoint.restore_latest()
    except UsageError:
        checkpoint.close()
        raise
    if start:
        print(f"resuming {run_dir} from step {start}", flush=True)
    elif rc.init_from:
        from zoo.presets.store import init_weights

        init_weights(model, rc.init_from)
        print(f"starting {run_dir} from {rc.init_from}", flush=True)
    if chief:
        data = {
            "name": info.name,
            "kind": info.kind,
            "shape": list(info.shape),
            "class_names": list(info.class_names or []),
        }
        write_config(rc, task.name, config, data, phase)
    if start >= rc.train_steps:
        print(f"{rc.model_dir} already trained {start} steps (--train_steps={rc.train_steps})")
        checkpoint.close()
        return RunResult(rc.model_dir, start, start, "completed", model=model)
    if start:
        ds, _ = dataset(start)

    if chief:
        zoo_callbacks.trim_metrics(os.path.join(run_dir, "metrics.jsonl"), start)
    writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard")) if chief else None
    guard = zoo_callbacks.NonFiniteGuard(start, rc.max_nonfinite_steps)
    any_worker = distribute.any_worker(strategy)
    saver = zoo_callbacks.CheckpointCallback(
        checkpoint, start, rc.checkpoint_every, guard, any_worker
    )
    # Every worker resets its trackers at the same steps (a collective op); the chief writes.
    metrics = zoo_callbacks.MetricsCallback(
        os.path.join(run_dir, "metrics.jsonl") if chief else None,
        writer,
        start,
        rc.log_every,
        rc.train_steps,
    )
    callbacks: list[keras.callbacks.Callback] = [guard, saver, metrics]
    if chief:
        centres = None
        if info.kind == "vector":
            centres = zoo_data.toy_modes(rc.dataset)[0]
        num = rc.num_samples if info.kind == "image" else max(rc.num_samples, 512)
        callbacks.append(
            zoo_callbacks.SampleCallback(
                os.path.join(run_dir, "samples"),
                writer,
                start,
                rc.sample_every,
                lambda model: _with_ema(model, task.sample_picture, num, rc, centres),
            )
        )
        if evaluator is not None:
            callbacks.append(
                EvalCallback(
                    lambda model, n, seed: _with_ema(model, task.evaluate, evaluator, n, seed),
                    os.path.join(run_dir, "metrics.jsonl"),
                    writer,
                    start,
                    rc.eval_every,
                    rc.eval_samples,
                )
            )
    callbacks += list(extra_callbacks)
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    try:
        model.fit(
            ds,
            epochs=1,
            steps_per_epoch=rc.train_steps - start,
            callbacks=callbacks,
            verbose=1 if (chief and sys.stdout.isatty()) else 0,
        )
    except distribute.PEER_ERRORS as err:
        if any_worker is None:
            raise
        raise WorkerLostError(distribute.lost_worker_message(err, strategy)) from err
    finally:
        checkpoint.close()
    step = checkpoint.step
    if guard.message:
        raise TrainingDivergedError(guard.message)
    status = "terminated" if saver.terminated else "completed"
    return RunResult(rc.model_dir, step, start, status, model=model)
