"""Trains any ganzoo family: `python train_main.py --model=dcgan --dataset=fashion_mnist ...`.

Flags live here only; the library takes a `zoo.train.RunConfig` and config overrides.
Bad input prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "dcgan", "GAN family: gan, dcgan, ...")
flags.DEFINE_string(
    "dataset",
    "fashion_mnist",
    "fashion_mnist, mnist, tfds:NAME[:split], folder:PATH, ring8, grid25 or gaussian1d",
)
flags.DEFINE_string("data_dir", None, "Directory searched first for the dataset's files.")
flags.DEFINE_list("classes", [], "Keep only these classes (names or indices).")
flags.DEFINE_string("domain_a", "", "Image-to-image families: class of domain A.")
flags.DEFINE_string("domain_b", "", "Image-to-image families: class of domain B.")
flags.DEFINE_string("model_dir", None, "Run directory; the same one again resumes the run.")
flags.DEFINE_integer("train_steps", 1000, "Total generator steps.")
flags.DEFINE_integer("batch_size", 64, "Global batch size.")
flags.DEFINE_enum(
    "strategy", "default", ["default", "mirrored", "multi_worker", "tpu"], "tf.distribute strategy."
)
flags.DEFINE_integer("num_virtual_devices", 0, "CPU devices for --strategy=mirrored without GPUs.")
flags.DEFINE_string("tpu", "", "TPU name or grpc address for --strategy=tpu.")
flags.DEFINE_enum(
    "mixed_precision",
    "float32",
    ["float32", "mixed_float16", "mixed_bfloat16"],
    "Precision policy.",
)
flags.DEFINE_boolean("jit_compile", False, "Compile the train step with XLA.")
flags.DEFINE_integer("steps_per_execution", 1, "Train steps per call into the compiled step.")
flags.DEFINE_integer("seed", 0, "Seed of data order, weights and noise.")
flags.DEFINE_boolean("deterministic", False, "Enable op determinism (bit-exact reruns).")
flags.DEFINE_integer("checkpoint_every", 500, "Checkpoint period in steps.")
flags.DEFINE_integer("sample_every", 500, "Sample-picture period in steps.")
flags.DEFINE_integer("log_every", 100, "Metrics period in steps.")
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints to keep.")
flags.DEFINE_integer(
    "eval_every", 0, "Metrics period in steps (modes on toys, FD/KID on images); 0 = never."
)
flags.DEFINE_integer("eval_samples", 10000, "Samples per evaluation.")
flags.DEFINE_integer(
    "stage",
    0,
    "Phase of a family trained in phases (stackgan: 1 = Stage-I, then 2 = Stage-II with the "
    "same --model_dir); 0 = the family's default.",
)
flags.DEFINE_string(
    "loss", None, "Adversarial loss: minimax, non_saturating, least_squares, hinge, wgan_gp."
)
flags.DEFINE_multi_string("config", [], "Family config override key=value (repeatable).")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    logging.set_verbosity(logging.WARNING)
    from zoo import cli, registry
    from zoo.errors import UsageError

    try:
        registry.check(FLAGS.model)
    except UsageError as err:
        return cli.fail(err)
    cli.import_tensorflow_quietly()
    from zoo import train
    from zoo.core.checkpoint import CheckpointIOError

    overrides = list(FLAGS.config)
    if FLAGS.loss:
        overrides.insert(0, f"loss={FLAGS.loss}")
    rc = train.RunConfig(
        model=FLAGS.model,
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        classes=tuple(FLAGS.classes),
        model_dir=FLAGS.model_dir or "",
        train_steps=FLAGS.train_steps,
        batch_size=FLAGS.batch_size,
        strategy=FLAGS.strategy,
        num_virtual_devices=FLAGS.num_virtual_devices,
        tpu=FLAGS.tpu,
        mixed_precision=FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile,
        steps_per_execution=FLAGS.steps_per_execution,
        seed=FLAGS.seed,
        deterministic=FLAGS.deterministic,
        checkpoint_every=FLAGS.checkpoint_every,
        sample_every=FLAGS.sample_every,
        log_every=FLAGS.log_every,
        keep_checkpoints=FLAGS.keep_checkpoints,
        domain_a=FLAGS.domain_a,
        domain_b=FLAGS.domain_b,
        eval_every=FLAGS.eval_every,
        eval_samples=FLAGS.eval_samples,
        stage=FLAGS.stage,
    )
    try:
        result = train.run(rc, overrides)
    except UsageError as err:
        return cli.fail(err)
    except (train.TrainingDivergedError, CheckpointIOError) as err:
        return cli.fail(err, code=1)
    if result.status == "terminated":
        print(
            f"terminated at step {result.step}; checkpoint saved, rerun to resume", file=sys.stderr
        )
        return 143
    print(f"done: {result.step} steps in {result.model_dir}")
    return 0


def run() -> None:
    """Console entry point."""
    from zoo.cli import parse_flags

    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
