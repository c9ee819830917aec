"""A run and its directory: the options of a training run, `config.json`, phase directories,
and rebuilding a trained model from them.

The driver (`zoo.train`), evaluation, export, the tools and the families import this module;
it imports none of them (a family is looked up by name in `zoo.registry`). The layout of a run
directory:

    MODEL_DIR/config.json        family, family config and run options (enough to rebuild G)
    MODEL_DIR/checkpoints/       ckpt-STEP.* (model, both optimizers, noise state, step)
    MODEL_DIR/samples/           step_XXXXXXXX.png and latest.png
    MODEL_DIR/metrics.jsonl      one JSON object per logging window
    MODEL_DIR/tensorboard/       scalars and sample images

Families trained in phases (`stackgan`: `--stage=1`, then `--stage=2` with the same
`--model_dir`) keep phase 1 in that layout and each later phase N in its own directory,

    MODEL_DIR/stageN/checkpoints/, samples/, metrics.jsonl, tensorboard/

so every phase resumes on its own and phase 1's checkpoints stay for the next phase's warm
start. `config.json` holds the family config of the phase last started (with its `stage`) and,
under `stages`, each phase's run options and data; the config may only change its `stage`
between phases. `load_trained` and `latest_step` pick the latest phase with a checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from zoo import registry
from zoo.core.config import PRECISIONS, STRATEGIES, config_from_dict, config_to_dict
from zoo.errors import UsageError, first_line
from zoo.io import atomic_write_json, read_json, remove_temporaries

CONFIG_FILE = "config.json"
# A preset's directory (`zoo.presets`) holds the run's config.json and, instead of checkpoints,
# the model's weights in one file (`zoo.presets.weights`).
WEIGHTS_FILE = "weights.npz"


def _latest_checkpoint(directory: str) -> str | None:
    import tensorflow as tf  # here, not at import: the mains define flags from RunConfig first

    return tf.train.latest_checkpoint(directory)


@dataclasses.dataclass
class RunConfig:
    """Options of one training run (not of the model; those are the family's config).

    `train_main.py` makes one flag per field, with the field's default and the help below.

    Attributes:
      model: GAN family (`zoo.registry.names()`): gan, dcgan, cgan, cyclegan, gan_int_cls,
        stackgan.
      dataset: fashion_mnist, mnist, tfds:NAME[:split], folder:PATH, ring8, grid25 or
        gaussian1d.
      data_dir: directory searched first for the dataset's files.
      classes: keep only these classes of a labelled dataset (names or indices).
      examples_per_class: train on the first N examples of each class only (0 = all), e.g.
        600 for a tenth of Fashion-MNIST; labelled in-memory datasets.
      model_dir: the run directory; the same one again resumes the run.
      train_steps: total generator steps (of the phase, for a family trained in phases); 0 =
        the saved run's when resuming, else the family's on the dataset (1000; dcgan 3000,
        cgan 2000, gan_int_cls 1500, stackgan 2000 a phase and cyclegan 3000 on
        Fashion-MNIST/MNIST; gan 8000 on the toys: the budgets of README's quality figures).
      batch_size: global batch size (split over replicas); 0 = the family's default (64;
        cyclegan 1 as the paper; gan 256 on the toy datasets).
      strategy: tf.distribute strategy: default, mirrored, multi_worker or tpu.
      num_virtual_devices: CPU devices for --strategy=mirrored without GPUs.
      tpu: TPU name or grpc address for --strategy=tpu.
      mixed_precision: precision policy: float32, mixed_float16 or mixed_bfloat16.
      jit_compile: compile the train step with XLA.
      steps_per_execution: train steps per call into the compiled step.
      seed: seed of data order, weights and noise.
      deterministic: enable op determinism (bit-exact reruns on one device).
      checkpoint_every: checkpoint period in steps (0 = only at the end).
      sample_every: sample-picture period in steps (0 = only at the end).
      log_every: metrics period in steps (0 = only at the end).
      keep_checkpoints: checkpoints to keep.
      max_nonfinite_steps: stop after this many steps in a row with a non-finite loss.
      num_samples: samples in each picture.
      domain_a: image-to-image families: class of domain A.
      domain_b: image-to-image families: class of domain B.
      eval_every: metrics period in steps (modes on toys, FD/KID on images); 0 = never.
      eval_samples: samples per evaluation.
      stage: phase of a family trained in phases (stackgan: 1 = Stage-I, then 2 = Stage-II
        with the same --model_dir); 0 = the family's default.
      init_from: preset:NAME: a new run starts from that built preset's weights (G, D, text
        encoder; its family, dataset and config unless given); on resume the run's own
        checkpoints win.
    """

    model: str = "dcgan"
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    classes: tuple[str, ...] = ()
    examples_per_class: int = 0
    model_dir: str = ""
    train_steps: int = 0
    batch_size: int = 0
    strategy: str = dataclasses.field(default="default", metadata={"choices": STRATEGIES})
    num_virtual_devices: int = 0
    tpu: str = ""
    mixed_precision: str = dataclasses.field(default="float32", metadata={"choices": PRECISIONS})
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
    init_from: str = ""


def load_run(model_dir: str) -> tuple[Any, Any, dict[str, Any]]:
    """Reads a run directory's config: (family task, family config, the whole JSON)."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise UsageError(f"{model_dir} is not a run directory (no {CONFIG_FILE})")
    saved = read_json(path)
    try:
        task = registry.get(saved["model"])
        config = config_from_dict(task.config_class, saved["model_config"])
    except (KeyError, TypeError) as err:
        raise UsageError(f"{path} is not a ganzoo run config: missing {err}") from err
    return task, config, saved


def phase_dir(model_dir: str, phase: int) -> str:
    """Where a phase keeps its checkpoints, samples and metrics: the run directory for phase 1
    (and families with one phase), `MODEL_DIR/stageN` for a later phase N."""
    return model_dir if phase <= 1 else os.path.join(model_dir, f"stage{phase}")


def checkpoint_dir(model_dir: str, phase: int = 0) -> str:
    """A phase's checkpoint directory."""
    return os.path.join(phase_dir(model_dir, phase), "checkpoints")


def write_config(
    rc: RunConfig, family: str, config: Any, data: dict[str, Any], phase: int = 0
) -> None:
    """Writes `config.json`: the family config, run options and data (and, for families trained
    in phases, each phase's run options and data under `stages`).

    Args:
      rc: the run's options.
      family: the family's name.
      config: the family config the run trains with.
      data: what the training data are (`name`, `kind`, `shape`, `class_names`).
      phase: the phase this run trains (0 for a family with one phase).
    """
    path = os.path.join(rc.model_dir, CONFIG_FILE)
    run_options = config_to_dict(dataclasses.replace(rc, stage=phase))
    record = {
        "model": family,
        "model_config": config_to_dict(config),
        "run": run_options,
        "data": data,
    }
    if phase:
        phases = read_json(path).get("stages", {}) if os.path.exists(path) else {}
        record["stages"] = {**phases, str(phase): {"run": run_options, "data": data}}
    atomic_write_json(path, record)


# What TensorFlow leaves in a checkpoint directory when killed while saving: shards not yet
# merged into `ckpt-N`, files of its bundle writer, the state file's temporary.
_CHECKPOINT_PARTIALS = r"ckpt-\d+_temp|.*\.tempstate\d+|checkpoint\.tmp[0-9a-f]{32}"


def remove_partial_writes(model_dir: str) -> list[str]:
    """Removes what a run killed mid-write left in its directory, in every phase: temporaries
    of `config.json` and of sample pictures, and of checkpoints (`ckpt-N_temp/` shards never
    merged into `ckpt-N`, `checkpoint.tmp...` state files never renamed into place). Only for
    the run that holds the directory's lock.

    Returns:
      The paths removed.
    """
    phases = [model_dir] + [
        os.path.join(model_dir, name) for name in _listdir(model_dir) if _is_phase_dir(name)
    ]
    removed = remove_temporaries(model_dir)
    for directory in phases:
        removed += remove_temporaries(os.path.join(directory, "samples"))
        removed += remove_temporaries(os.path.join(directory, "checkpoints"), _CHECKPOINT_PARTIALS)
    return removed


@dataclasses.dataclass
class TrainedRun:
    """A run's model rebuilt in float32 with its checkpoint restored.

    Attributes:
      task: the family's task (`zoo.models.task.Task`): pictures, signatures, evaluation.
      model: the family's `GAN`, float32, weights from `checkpoint`.
      run_config: the run's `RunConfig` (of the checkpoint's phase).
      saved: the run's whole config JSON (`model_config`, `run` and `data` of that phase).
      checkpoint: path prefix of the restored checkpoint.
      step: the training step stored in that checkpoint, plus the steps of earlier phases
        for families trained in phases (so a later phase's export has a newer version).
      warnings: one-line warnings for the user (newer checkpoints that cannot be read).
      weights: which generator weights the model holds: `ema` (the moving average,
        `ema_decay` > 0) or `raw` (the last step's).
    """

    task: Any
    model: Any
    run_config: RunConfig
    saved: dict[str, Any]
    checkpoint: str
    step: int
    warnings: list[str] = dataclasses.field(default_factory=list)
    weights: str = "raw"


WEIGHTS = ("ema", "raw")


def _checkpoint_path(directory: str, checkpoint: str | None) -> tuple[str, str | None]:
    """The checkpoint to load (by default the newest readable one) and a warning if newer ones
    cannot be read."""
    from zoo.core.checkpoint import newest_readable

    if checkpoint:
        if os.path.isdir(checkpoint):
            return newest_readable(checkpoint)
        if not os.path.exists(checkpoint + ".index"):
            raise UsageError(f"no checkpoint at {checkpoint} (no {checkpoint}.index)")
        return checkpoint, None
    return newest_readable(os.path.join(directory, "checkpoints"))


def _checkpoint_phase(model_dir: str, phases: Sequence[int], checkpoint: str | None) -> int:
    """The phase a checkpoint belongs to; without one, the latest phase that has one."""
    if checkpoint:
        target = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
        for phase in phases:
            if os.path.realpath(target) == os.path.realpath(checkpoint_dir(model_dir, phase)):
                return phase
    from zoo.core.checkpoint import checkpoints_on_disk

    for phase in sorted(phases, reverse=True):
        if checkpoints_on_disk(checkpoint_dir(model_dir, phase)):
            return phase
    return min(phases)


def load_trained(
    model_dir: str, checkpoint: str | None = None, weights: str | None = None
) -> TrainedRun:
    """Rebuilds a run's model in float32 from its config JSON and restores a checkpoint.

    Args:
      model_dir: the run directory (holds `config.json` and `checkpoints/`), or a preset's
        (`config.json` and `weights.npz`, see `zoo.presets`).
      checkpoint: a checkpoint prefix (`.../ckpt-STEP`) or directory; default the latest
        readable one (of the latest phase, for families trained in phases).
      weights: `ema` puts the moving average of G's weights into G (for good: the model is
        for inference), `raw` keeps the last step's; default `ema` when the run has one.

    Raises:
      UsageError: not a run directory, no checkpoint, or one that cannot be read or does
        not fit the model; `weights=ema` for a run without an average; unknown `weights`.
    """
    if weights not in (None, *WEIGHTS):
        raise UsageError(f"--weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    task, config, saved = load_run(model_dir)
    directory = model_dir
    weights_file = os.path.join(model_dir, WEIGHTS_FILE)
    preset = checkpoint is None and os.path.isfile(weights_file)
    if task.phases:
        phase = (
            task.phase_of(config)
            if preset
            else _checkpoint_phase(model_dir, task.phases, checkpoint)
        )
        config = task.with_phase(config, phase)
        record = saved.get("stages", {}).get(str(phase), {})
        saved = {**saved, **record, "model_config": config_to_dict(config)}
        directory = phase_dir(model_dir, phase)
    try:
        run_config = config_from_dict(RunConfig, saved["run"])
    except (KeyError, TypeError) as err:
        raise UsageError(f"{model_dir}/{CONFIG_FILE} has no valid 'run' section") from err
    import tensorflow as tf

    from zoo.core.distribute import float32_policy

    path, warning = (weights_file, None) if preset else _checkpoint_path(directory, checkpoint)
    with float32_policy():
        model = task.build_model(config, seed=run_config.seed)
    try:
        if preset:
            from zoo.presets.weights import restore_weights

            restore_weights(model, path)
        else:
            status = tf.train.Checkpoint(model=model).restore(path)
            status.assert_existing_objects_matched()
            status.expect_partial()  # optimizers and noise state are for training only
    except Exception as err:  # corrupt files surface as OpError, IndexError, ValueError, ...
        raise UsageError(f"cannot restore checkpoint {path}: {first_line(err)}") from err
    if weights == "ema" and model.ema is None:
        raise UsageError(f"{model_dir} has no EMA weights (trained with ema_decay=0); use raw")
    weights = weights or ("ema" if model.ema is not None else "raw")
    if weights == "ema":
        model.ema.copy_to(model.ema_networks)
    step = int(model.step.numpy()) + task.steps_before_phase(model)
    return TrainedRun(
        task, model, run_config, saved, path, step, [warning] if warning else [], weights
    )


def latest_step(model_dir: str, phase: int | None = None) -> int:
    """Step of the newest checkpoint in a run directory (0 when there is none).

    `phase` picks a phase of a family trained in phases; by default the latest phase with a
    checkpoint (its own steps).
    """
    if phase is None:
        later = sorted(
            (int(name[len("stage") :]) for name in _listdir(model_dir) if _is_phase_dir(name)),
            reverse=True,
        )
        for candidate in [*later, 1]:
            step = latest_step(model_dir, candidate)
            if step:
                return step
        return 0
    path = _latest_checkpoint(checkpoint_dir(model_dir, phase))
    return int(path.rsplit("-", 1)[-1]) if path else 0


def _listdir(directory: str) -> list[str]:
    return os.listdir(directory) if os.path.isdir(directory) else []


def _is_phase_dir(name: str) -> bool:
    return name.startswith("stage") and name[len("stage") :].isdigit()
