"""Evaluates a run or an export: `python eval_main.py --model_dir=RUN | --export_dir=OUT/NAME`.

With `--model_dir` the model is rebuilt from the run's config.json and latest checkpoint (in
float32); with `--export_dir` the exported SavedModel (or a `.tflite` file) is loaded with
`zoo.load_generator` and the dataset read from `OUT/NAME.json`. Both draw the same generator
inputs for a seed. The family's metrics (`zoo.eval.evaluate`) are printed as ONE JSON line
(`--num_samples`, `--seed`, `--inception_weights=PATH` for InceptionV3 features, `--weights=ema|raw`
for a run's generator, named in the line). Bad input prints
one line on stderr and exits with code 2. `--preset=NAME` scores a built preset like a run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Run directory (config.json and checkpoints/).")
flags.DEFINE_string("preset", None, "A built preset (python -m zoo.presets list) for --model_dir.")
flags.DEFINE_string("export_dir", None, "An exported model directory (OUT/<name>).")
flags.DEFINE_integer("num_samples", 10000, "Generated samples (and at most as many real images).")
flags.DEFINE_integer("seed", 0, "Seed of the generator inputs and the KID subsets.")
flags.DEFINE_string(
    "inception_weights", None, "Local InceptionV3 weights file for the feature metrics."
)
flags.DEFINE_enum(
    "weights",
    None,
    ["ema", "raw"],
    "A run's generator weights: ema (their moving average) or raw (default: ema when the run "
    "has one, as export and the sample grids).",
)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        from zoo import cli

        return cli.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    from zoo import cli
    from zoo.errors import UsageError
    from zoo.presets.store import resolve_model_dir

    try:
        model_dir = resolve_model_dir(FLAGS.model_dir, FLAGS.preset)
    except UsageError as err:
        return cli.fail(err)
    if bool(model_dir) == bool(FLAGS.export_dir):
        return cli.fail(
            "give exactly one of --model_dir=RUN (or --preset=NAME) and --export_dir=OUT/<name>"
        )
    if FLAGS.weights and FLAGS.export_dir:
        return cli.fail("--weights is for --model_dir (an export holds the weights it was made of)")
    if FLAGS.num_samples < 2:
        return cli.fail(f"--num_samples must be >= 2, got {FLAGS.num_samples}")
    if FLAGS.inception_weights and not os.path.isfile(FLAGS.inception_weights):
        return cli.fail(f"--inception_weights: no such file {FLAGS.inception_weights}")
    if model_dir and not os.path.isdir(model_dir):
        return cli.fail(f"--model_dir: no such directory {model_dir}")
    if model_dir and not os.path.isfile(os.path.join(model_dir, "config.json")):
        return cli.fail(f"{model_dir} is not a run directory (no config.json)")
    if FLAGS.export_dir and not os.path.exists(FLAGS.export_dir):
        return cli.fail(f"--export_dir: nothing at {FLAGS.export_dir}")
    cli.import_tensorflow_quietly()
    from zoo.eval.evaluate import Evaluator, load_exported

    try:
        # stdout carries the JSON line only; training the classifier on first use reports
        # its progress on stderr.
        with contextlib.redirect_stdout(sys.stderr):
            if FLAGS.export_dir:
                model, rc, step = load_exported(FLAGS.export_dir)
                task = None  # an export is scored on its samples
                weights = None
            else:
                from zoo.run import load_trained

                trained = load_trained(model_dir, weights=FLAGS.weights)
                for warning in trained.warnings:
                    print(f"warning: {warning}", file=sys.stderr)
                model, rc, step = trained.model, trained.run_config, trained.step
                task, weights = trained.task, trained.weights
            evaluator = Evaluator(rc, inception_weights=FLAGS.inception_weights)
            if task is None:
                values = evaluator(model, FLAGS.num_samples, FLAGS.seed)
            else:
                values = task.evaluate(model, evaluator, FLAGS.num_samples, FLAGS.seed)
    except UsageError as err:
        return cli.fail(err)
    record = {
        "step": step,
        "num_samples": FLAGS.num_samples,
        "seed": FLAGS.seed,
        **({"features": evaluator.feature_name} if evaluator.feature_name else {}),
        **({"weights": weights} if weights else {}),
        **{
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in values.items()
        },
    }
    print(json.dumps(record), flush=True)
    return 0


def run() -> None:
    """Console entry point."""
    from zoo.cli import parse_flags

    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
