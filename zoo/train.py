"""The training driver: a run config in, a trained, checkpointed run directory out.

`train_main.py` turns flags into a `RunConfig` and calls `run`; tests and notebooks call `run`
directly. The layout of a run directory:

    MODEL_DIR/config.json        family, family config and run options (enough to rebuild G)
    MODEL_DIR/checkpoints/       ckpt-STEP.* (model, both optimizers, noise state, step)
    MODEL_DIR/samples/           step_XXXXXXXX.png and latest.png
    MODEL_DIR/metrics.jsonl      one JSON object per logging window
    MODEL_DIR/tensorboard/       scalars and sample images

Families trained in phases (`stackgan`: `--stage=1`, then `--stage=2` with the same
`--model_dir`) keep phase 1 in that layout and each later phase N in its own directory,

    MODEL_DIR/stageN/checkpoints/, samples/, metrics.jsonl, tensorboard/

so every phase resumes on its own and phase 1's checkpoints stay for the next phase's
`warm_start`. `config.json` holds the family config of the phase last started (with its
`stage`) and, under `stages`, each phase's run options and data; the config may only change its
`stage` between phases. `load_trained` and `latest_step` pick the latest phase with a checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import tensorflow as tf

from zoo import data as zoo_data
from zoo import registry
from zoo.core import callbacks as zoo_callbacks
from zoo.core import distribute
from zoo.core.checkpoint import RunCheckpoint, checkpoints_on_disk, newest_readable
from zoo.core.config import apply_overrides, config_from_dict, config_to_dict
from zoo.core.io import atomic_write_json, read_json
from zoo.errors import UsageError
from zoo.eval.callback import EvalCallback
from zoo.eval.evaluate import Evaluator

CONFIG_FILE = "config.json"


@dataclasses.dataclass
class RunConfig:
    """Options of one training run (not of the model; those are the family's config).

    Attributes:
      model: family name (`zoo.registry.names()`).
      dataset: dataset spec (`fashion_mnist`, `mnist`, `tfds:NAME[:split]`, `folder:PATH`,
        `ring8`, `grid25`, `gaussian1d`).
      data_dir: where to look for the dataset's files first.
      classes: keep only these classes of a labelled dataset (names or indices).
      model_dir: the run directory; running again with the same one resumes.
      train_steps: total generator steps.
      batch_size: global batch size (split over replicas).
      strategy: `default`, `mirrored`, `multi_worker` or `tpu`.
      num_virtual_devices: CPU devices for `mirrored` when there is no GPU.
      tpu: TPU name or address for `tpu`.
      mixed_precision: `float32`, `mixed_float16` or `mixed_bfloat16`.
      jit_compile: compile the train step with XLA.
      steps_per_execution: train steps per call into the compiled function.
      seed: seed of the data order, weights and training noise.
      deterministic: enable TensorFlow op determinism (bit-exact reruns on one device).
      checkpoint_every, sample_every, log_every: periods in steps (0 = only at the end).
      keep_checkpoints: how many checkpoints to keep.
      max_nonfinite_steps: stop after this many steps in a row with a non-finite loss.
      num_samples: samples in each picture.
      domain_a, domain_b: the two domains of image-to-image families (class names or indices
        of a labelled dataset).
      eval_every: compute the family's metrics (`zoo.eval`) every this many steps (0 = never).
      eval_samples: samples per evaluation.
      stage: the phase of a family trained in phases (`stackgan`: 1 or 2); 0 = the family's
        default. Families with one phase refuse anything else.
    """

    model: str = "dcgan"
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    classes: tuple[str, ...] = ()
    model_dir: str = ""
    train_steps: int = 1000
    batch_size: int = 64
    strategy: str = "default"
    num_virtual_devices: int = 0
    tpu: str = ""
    mixed_precision: str = "float32"
    jit_compile: bool = False
    steps_per_execution: int = 1
    seed: int = 0
    deterministic: bool = False
    checkpoint_every: int = 500
    sample_every: int = 500
    log_every: int = 100
    keep_checkpoints: int = 3
    max_nonfinite_steps: int = 20
    num_samples: int = 64
    domain_a: str = ""
    domain_b: str = ""
    eval_every: int = 0
    eval_samples: int = 10000
    stage: int = 0


@dataclasses.dataclass
class RunResult:
    """What a run did: its final step and why it stopped."""

    model_dir: str
    step: int
    resumed_from: int
    status: str  # "completed", "terminated" (SIGTERM) or "diverged"
    message: str = ""
    model: Any = None


class TrainingDivergedError(RuntimeError):
    """Raised when the losses stay non-finite; the last good checkpoint is kept."""


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


def load_run(model_dir: str) -> tuple[type, Any, dict[str, Any]]:
    """Reads a run directory's config: (family class, family config, the whole JSON)."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise UsageError(f"{model_dir} is not a run directory (no {CONFIG_FILE})")
    saved = read_json(path)
    try:
        family = registry.get(saved["model"])
        config = config_from_dict(family.config_class, saved["model_config"])
    except (KeyError, TypeError) as err:
        raise UsageError(f"{path} is not a ganzoo run config: missing {err}") from err
    return family, config, saved


def phase_dir(model_dir: str, stage: int) -> str:
    """Where a phase keeps its checkpoints, samples and metrics: the run directory for phase 1
    (and families with one phase), `MODEL_DIR/stageN` for a later phase N."""
    return model_dir if stage <= 1 else os.path.join(model_dir, f"stage{stage}")


def _stages(family: type) -> tuple[int, ...]:
    return tuple(getattr(family, "stages", ()))


def _with_stage(family: type, config: Any, rc: RunConfig) -> Any:
    """The config with the phase `--stage` asks for (families with phases), else unchanged."""
    stages = _stages(family)
    if not stages:
        if rc.stage:
            raise UsageError(
                f"--stage is for families trained in phases; {family.family_name} has one "
                f"(got --stage={rc.stage})"
            )
        return config
    if rc.stage and rc.stage not in stages:
        raise UsageError(
            f"--stage must be one of {', '.join(map(str, stages))} for {family.family_name}, "
            f"got {rc.stage}"
        )
    return dataclasses.replace(config, stage=rc.stage) if rc.stage else config


def resolve_config(rc: RunConfig, overrides: Sequence[str]) -> tuple[type, Any]:
    """The family and its config: from `model_dir` when resuming, else defaults + overrides.

    A family trained in phases takes its `stage` from `rc.stage` (else an override, else its
    default); the phase may differ from the saved run's, nothing else may.

    Raises:
      UsageError: unknown family or field, or overrides that contradict the saved run.
    """
    family = registry.get(rc.model)
    phased = bool(_stages(family))
    path = os.path.join(rc.model_dir, CONFIG_FILE)
    if os.path.exists(path):
        saved_family, saved_config, saved = load_run(rc.model_dir)
        if saved_family is not family:
            raise UsageError(
                f"{rc.model_dir} holds a {saved['model']!r} run, not {rc.model!r}; "
                "use another --model_dir"
            )
        if phased:  # the phase comes from this run's options, not from the saved one
            saved_config = dataclasses.replace(saved_config, stage=family.config_class().stage)
        config = _with_stage(family, apply_overrides(saved_config, overrides), rc)
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
        return family, config
    config = apply_overrides(family.default_config(rc.dataset), overrides)
    return family, _with_stage(family, config, rc)


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (for one-line user errors)."""
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


@dataclasses.dataclass
class TrainedRun:
    """A run's generator rebuilt in float32 with its checkpoint restored.

    Attributes:
      model: the family's `GAN`, float32, weights from `checkpoint`.
      run_config: the run's `zoo.RunConfig` (of the checkpoint's phase).
      saved: the run's whole config JSON (`model_config`, `run` and `data` of that phase).
      checkpoint: path prefix of the restored checkpoint.
      step: the training step stored in that checkpoint, plus the steps of earlier phases
        for families trained in phases (so a later phase's export has a newer version).
      warnings: one-line warnings for the user (newer checkpoints that cannot be read).
    """

    model: Any
    run_config: Any
    saved: dict[str, Any]
    checkpoint: str
    step: int
    warnings: list[str] = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def float32_policy() -> Iterator[None]:
    """Builds inside use float32 layers (a mixed_float16 generator does not convert)."""
    previous = keras.mixed_precision.dtype_policy().name
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _checkpoint_path(model_dir: str, checkpoint: str | None) -> tuple[str, str | None]:
    """The checkpoint to load (by default the newest readable one) and a warning if newer ones
    cannot be read."""
    if checkpoint:
        if os.path.isdir(checkpoint):
            return newest_readable(checkpoint)
        if not os.path.exists(checkpoint + ".index"):
            raise UsageError(f"no checkpoint at {checkpoint} (no {checkpoint}.index)")
        return checkpoint, None
    return newest_readable(os.path.join(model_dir, "checkpoints"))


def _checkpoint_stage(model_dir: str, stages: Sequence[int], checkpoint: str | None) -> int:
    """The phase a checkpoint belongs to; without one, the latest phase that has one."""
    if checkpoint:
        target = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
        for stage in stages:
            here = os.path.join(phase_dir(model_dir, stage), "checkpoints")
            if os.path.realpath(target) == os.path.realpath(here):
                return stage
    for stage in sorted(stages, reverse=True):
        if checkpoints_on_disk(os.path.join(phase_dir(model_dir, stage), "checkpoints")):
            return stage
    return min(stages)


def load_trained(model_dir: str, checkpoint: str | None = None) -> TrainedRun:
    """Rebuilds a run's model in float32 from its config JSON and restores a checkpoint.

    Args:
      model_dir: the run directory (holds `config.json` and `checkpoints/`).
      checkpoint: a checkpoint prefix (`.../ckpt-STEP`) or directory; default the latest
        readable one (of the latest phase, for families trained in phases).

    Raises:
      UsageError: not a run directory, no checkpoint, or one that cannot be read or does
        not fit the model.
    """
    family, config, saved = load_run(model_dir)
    directory = model_dir
    if _stages(family):
        stage = _checkpoint_stage(model_dir, _stages(family), checkpoint)
        config = dataclasses.replace(config, stage=stage)
        record = saved.get("stages", {}).get(str(stage), {})
        saved = {**saved, **record, "model_config": config_to_dict(config)}
        directory = phase_dir(model_dir, stage)
    try:
        run_config = config_from_dict(RunConfig, saved["run"])
    except (KeyError, TypeError) as err:
        raise UsageError(f"{model_dir}/{CONFIG_FILE} has no valid 'run' section") from err
    path, warning = _checkpoint_path(directory, checkpoint)
    with float32_policy():
        try:
            model = family(config, seed=run_config.seed)
        except (ValueError, TypeError) as err:
            raise UsageError(
                f"{family.family_name} config cannot build: {first_line(err)}"
            ) from err
    try:
        status = tf.train.Checkpoint(model=model).restore(path)
        status.assert_existing_objects_matched()
    except Exception as err:  # corrupt files surface as OpError, IndexError, ValueError, ...
        raise UsageError(f"cannot restore checkpoint {path}: {first_line(err)}") from err
    status.expect_partial()  # optimizers and noise state are for training only
    step = int(model.step.numpy()) + int(getattr(model, "steps_before_phase", 0))
    return TrainedRun(model, run_config, saved, path, step, [warning] if warning else [])


# -- signatures and the SavedModel -----------------------------------------------------------
def latest_step(model_dir: str, stage: int | None = None) -> int:
    """Step of the newest checkpoint in a run directory (0 when there is none).

    `stage` picks a phase of a family trained in phases; by default the latest phase with a
    checkpoint (its own steps).
    """
    if stage is None:
        later = sorted(
            (int(name[len("stage") :]) for name in _listdir(model_dir) if _is_stage(name)),
            reverse=True,
        )
        for candidate in [*later, 1]:
            step = latest_step(model_dir, candidate)
            if step:
                return step
        return 0
    path = tf.train.latest_checkpoint(os.path.join(phase_dir(model_dir, stage), "checkpoints"))
    return int(path.rsplit("-", 1)[-1]) if path else 0


def _listdir(directory: str) -> list[str]:
    return os.listdir(directory) if os.path.isdir(directory) else []


def _is_stage(name: str) -> bool:
    return name.startswith("stage") and name[len("stage") :].isdigit()


def _adapt_to_data(family: type, config: Any, info: zoo_data.DatasetInfo) -> Any:
    """Fills the config's data-dependent fields (vector size of toy data)."""
    if info.kind == "vector":
        if not getattr(family, "supports_vectors", False):
            raise UsageError(
                f"{family.family_name} needs an image dataset; {info.name} gives vectors"
            )
        if config.data_dim not in (0, info.shape[0]):
            raise UsageError(f"data_dim={config.data_dim} but {info.name} has {info.shape[0]}")
        return dataclasses.replace(config, data_dim=info.shape[0])
    if getattr(config, "data_dim", 0):
        raise UsageError(f"data_dim={config.data_dim} is for toy data; {info.name} holds images")
    return family.adapt_config(config, info)


def build_model(family: type, config: Any, rc: RunConfig, strategy: tf.distribute.Strategy) -> Any:
    """Builds and compiles a family's model inside the strategy's scope (optimizers built).

    Raises:
      UsageError: when the config cannot build a model.
    """
    with strategy.scope():
        try:
            model = family(config, seed=rc.seed)
        except (ValueError, TypeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            raise UsageError(f"{family.family_name} config cannot build: {first}") from err
        model.compile(
            train_steps=rc.train_steps,
            jit_compile=rc.jit_compile,
            steps_per_execution=rc.steps_per_execution,
        )
    return model


def _write_config(
    rc: RunConfig, family: type, config: Any, info: zoo_data.DatasetInfo, stage: int
) -> None:
    """Writes `config.json`: the family config, run options and data (and, for families trained
    in phases, each phase's run options and data under `stages`)."""
    path = os.path.join(rc.model_dir, CONFIG_FILE)
    run_options = config_to_dict(dataclasses.replace(rc, stage=stage))
    data = {
        "name": info.name,
        "kind": info.kind,
        "shape": list(info.shape),
        "class_names": list(info.class_names or []),
    }
    record = {
        "model": family.family_name,
        "model_config": config_to_dict(config),
        "run": run_options,
        "data": data,
    }
    if stage:
        stages = read_json(path).get("stages", {}) if os.path.exists(path) else {}
        record["stages"] = {**stages, str(stage): {"run": run_options, "data": data}}
    atomic_write_json(path, record)


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
    """
    _check_run_config(rc)
    strategy = distribute.build_strategy(
        rc.strategy, num_virtual_devices=rc.num_virtual_devices, tpu=rc.tpu
    )
    distribute.set_precision(rc.mixed_precision)
    keras.utils.set_random_seed(rc.seed)
    if rc.deterministic:
        tf.config.experimental.enable_op_determinism()
    chief = distribute.is_chief(strategy)

    family, config = resolve_config(rc, overrides)
    config = family.prepare_run(rc, config)
    d_steps = family.discriminator_steps(config)
    replicas = strategy.num_replicas_in_sync
    if rc.batch_size % replicas:
        raise UsageError(f"--batch_size={rc.batch_size} is not a multiple of {replicas} replicas")
    pack = getattr(config, "pack", 1)
    if pack > 1 and (rc.batch_size // replicas) % pack:
        raise UsageError(
            f"per-replica batch {rc.batch_size // replicas} is not a multiple of pack={pack}"
        )

    if rc.dataset in zoo_data.TOY_NAMES and not getattr(family, "supports_vectors", False):
        raise UsageError(f"{rc.model} needs an image dataset; {rc.dataset} gives vectors")
    evaluator = Evaluator(rc) if rc.eval_every else None

    def dataset(start_step: int) -> tuple[tf.data.Dataset, zoo_data.DatasetInfo]:
        return family.training_dataset(
            rc, config, batch_size=rc.batch_size * d_steps, start_step=start_step
        )

    ds, info = dataset(0)
    config = _adapt_to_data(family, config, info)
    if info.skipped_files:
        print(f"skipped {info.skipped_files} unreadable file(s) in {info.name}", file=sys.stderr)

    model = build_model(family, config, rc, strategy)
    model.warm_start(rc)
    stage = getattr(config, "stage", 0) if _stages(family) else 0
    run_dir = phase_dir(rc.model_dir, stage)
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
    if chief:
        _write_config(rc, family, config, info, stage)
    if start >= rc.train_steps:
        print(f"{rc.model_dir} already trained {start} steps (--train_steps={rc.train_steps})")
        checkpoint.close()
        return RunResult(rc.model_dir, start, start, "completed", model=model)
    if start:
        ds, _ = dataset(start)

    writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard")) if chief else None
    guard = zoo_callbacks.NonFiniteGuard(start, rc.max_nonfinite_steps)
    saver = zoo_callbacks.CheckpointCallback(checkpoint, start, rc.checkpoint_every, guard)
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
        callbacks += [
            zoo_callbacks.SampleCallback(
                os.path.join(run_dir, "samples"),
                writer,
                start,
                rc.sample_every,
                rc.num_samples if info.kind == "image" else max(rc.num_samples, 512),
                centres,
                rc,
            ),
        ]
        if evaluator is not None:
            callbacks.append(
                EvalCallback(
                    evaluator,
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
    finally:
        checkpoint.close()
    step = checkpoint.step
    if guard.message:
        raise TrainingDivergedError(guard.message)
    status = "terminated" if saver.terminated else "completed"
    return RunResult(rc.model_dir, step, start, status, model=model)
