"""Trains any family: `python train_main.py --model=dcgan --dataset=fashion_mnist ...`.

One flag per `zoo.run.RunConfig` field (its default and help), `--config=key=value` overrides
of the family's config and `--loss`. Bad input is one line on stderr and exit code 2.
`--init_from=preset:NAME` starts a new run from a built preset's weights, with its family,
dataset and config unless the flags say otherwise (`zoo.presets.store.init_defaults`).
"""

from __future__ import annotations

import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging

from zoo import cli, registry
from zoo.errors import (
    CheckpointIOError,
    RunDirectoryIOError,
    TrainingDivergedError,
    UsageError,
    WorkerLostError,
)
from zoo.run import RunConfig

FLAGS = flags.FLAGS
cli.define_dataclass_flags(RunConfig)
flags.adopt_module_key_flags(cli)  # `--help` lists them as this main's
flags.DEFINE_string(
    "loss", None, "Adversarial loss: minimax, non_saturating, least_squares, hinge, wgan_gp."
)
flags.DEFINE_multi_string("config", [], "Family config override key=value (repeatable).")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        return cli.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    overrides = [*([f"loss={FLAGS.loss}"] if FLAGS.loss else []), *FLAGS.config]
    try:
        rc = cli.dataclass_from_flags(RunConfig)
        if rc.init_from:
            from zoo.presets.store import init_defaults

            preset = {k: v for k, v in init_defaults(rc.init_from).items() if not FLAGS[k].present}
            rc = dataclasses.replace(
                rc, **{k: tuple(v) if isinstance(v, list) else v for k, v in preset.items()}
            )
        registry.check(rc.model)  # before TensorFlow is imported
        cli.import_tensorflow_quietly()
        from zoo import train

        result = train.run(rc, overrides)
    except UsageError as err:
        return cli.fail(err)
    except (
        TrainingDivergedError,
        CheckpointIOError,
        RunDirectoryIOError,
        WorkerLostError,
    ) as err:
        return cli.fail(err, code=1)
    if result.status == "terminated":
        step = result.step
        print(f"terminated at step {step}; checkpoint saved, rerun to resume", file=sys.stderr)
        return 143
    print(f"done: {result.step} steps in {result.model_dir}")
    return 0


def run() -> None:
    """Console entry point."""
    app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
    run()
