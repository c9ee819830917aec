"""Exports a trained run: `python -m export --model_dir=RUN --export_dir=OUT`.

`--preset=NAME` exports a built preset (`python -m zoo.presets list`) in the same way.

Writes `OUT/<name>/<version>/` (TF Serving SavedModel with warmup requests), the builtins-only
TFLite files beside it and `OUT/<name>.json`. As it goes it prints one `export: ...` line per
step with its time (SavedModel, each int8 calibration, conversion, parity run and latency, then
the total; the JSON's `timings` keeps them), then what it wrote and the parity of each TFLite
flavour against the SavedModel. Flags live here only; the work is `export_lib.export`.
Bad input prints one line on stderr and exits with code 2; an export that fails its checks
(conversion, operators, parity) prints one line and exits with code 1, writing nothing.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Training run directory (config.json, checkpoints/).")
flags.DEFINE_string("preset", None, "A built preset (python -m zoo.presets list) for --model_dir.")
flags.DEFINE_string("export_dir", None, "Export root: OUT/<name>/<version>/, OUT/<name>.*")
flags.DEFINE_string("name", None, "Served model name (default: the family name).")
flags.DEFINE_integer("version", None, "SavedModel version (default: the checkpoint's step).")
flags.DEFINE_list(
    "formats",
    ["saved_model", "float32", "float16", "int8"],
    "What to write: saved_model, float32, float16, int8 (TFLite flavours).",
)
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or directory (default: the latest).")
flags.DEFINE_boolean("overwrite", False, "Replace an existing version.")
flags.DEFINE_enum(
    "weights",
    None,
    ["ema", "raw"],
    "Generator weights: ema (their moving average) or raw (default: ema when the run has one).",
)


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 1024:.1f} KiB" if num_bytes < 1 << 20 else f"{num_bytes / 2**20:.1f} MiB"


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    logging.set_verbosity(logging.WARNING)
    from export import parse_formats
    from zoo import cli
    from zoo.errors import UsageError
    from zoo.presets.store import resolve_model_dir

    try:
        formats = parse_formats(FLAGS.formats)
        model_dir = resolve_model_dir(FLAGS.model_dir, FLAGS.preset)
        if not model_dir:
            raise UsageError("--model_dir (or --preset) is required")
        if not FLAGS.export_dir:
            raise UsageError("--export_dir is required")
    except UsageError as err:
        return cli.fail(err)
    cli.import_tensorflow_quietly()
    from export import export_lib

    try:
        # The converter and the calibrator chatter on stderr; shown only if the export fails.
        with cli.native_stderr_captured():
            result = export_lib.export(
                model_dir,
                FLAGS.export_dir,
                name=FLAGS.name,
                version=FLAGS.version,
                formats=formats,
                checkpoint=FLAGS.checkpoint,
                overwrite=FLAGS.overwrite,
                # One line per step as it ends (stdout is not captured), with its time.
                log=lambda message: print(f"export: {message}", flush=True),
                weights=FLAGS.weights,
            )
    except UsageError as err:
        return cli.fail(err)
    except export_lib.ExportError as err:
        return cli.fail(err, code=1)

    manifest = result.manifest
    root = os.path.abspath(FLAGS.export_dir)
    if result.saved_model_dir:
        sigs = ", ".join(manifest["signatures"])
        print(
            f"wrote {result.saved_model_dir}/  SavedModel ({sigs}; {manifest['weights']} weights; "
            f"{manifest['saved_model']['warmup_requests']} warmup requests; "
            f"{_size(manifest['saved_model']['size_bytes'])})"
        )
    for entry in manifest["tflite"]:
        print(f"wrote {os.path.join(root, entry['file'])}  ({_size(entry['size_bytes'])})")
    print(f"wrote {result.json_path}")
    if manifest["tflite"]:
        print(f"parity against the SavedModel on a batch of {manifest['parity']['batch']}:")
        print(
            f"  {'file':<40} {'max abs err':>11} {'mean abs err':>12} {'limit':>7} "
            f"{'ms/batch':>9}  status"
        )
        for e in manifest["tflite"]:
            print(
                f"  {e['file']:<40} {e['max_abs_error']:>11.3g} {e['mean_abs_error']:>12.3g} "
                f"{e['tolerance']:>7g} {e['latency_ms']:>9.3f}  {e['status']}"
            )
        for sig, ms in manifest["saved_model"]["latency_ms"].items():
            print(f"  SavedModel {sig}: {ms:.3f} ms/batch")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def run() -> None:
    """Console entry point."""
    from zoo.cli import parse_flags

    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
