"""`python -m zoo.tools COMMAND [flags]`: the lectures' tools.

    interpolate  --model_dir=RUN | --export_dir=OUT/<name>  [--method=spherical|linear]
    samples      --model_dir=RUN | --export_dir=...          (numbered samples for arithmetic)
    arithmetic   --model_dir=RUN | --export_dir=...  --a=3,17,22 --b=5,9 --c=40,41
    probe        --model_dir=RUN                              (discriminator features)
    theory       [--fake_mean=1.5 --fake_std=0.7]             (D* on 1-D Gaussians)
    text_encoder --dataset=fashion_mnist --out=DIR                (pretrain a text encoder)
    text_interpolate --model_dir=RUN --captions="a dark sandal|a light sneaker"

Conditional generators take their condition from `--label=K` (cgan) or `--caption=TEXT`
(gan_int_cls) in interpolate, samples and arithmetic.

`--preset=NAME` (a built preset, `python -m zoo.presets list`) works wherever `--model_dir`
does; its pictures go to `./tools/` unless `--out` says otherwise.

Each writes a PNG (`--out`) and prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from absl import app, flags, logging

COMMANDS = (
    "interpolate",
    "samples",
    "arithmetic",
    "probe",
    "theory",
    "text_encoder",
    "text_interpolate",
)

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A run directory (its latest checkpoint).")
flags.DEFINE_string("preset", None, "A built preset (python -m zoo.presets list) for --model_dir.")
flags.DEFINE_string("checkpoint", None, "A checkpoint of the run instead of the latest.")
flags.DEFINE_string("export_dir", None, "An exported generator (OUT/<name>, a version or .tflite).")
flags.DEFINE_string("out", None, "PNG to write (default: next to the run or export).")
flags.DEFINE_integer("seed", 0, "Seed of the latent samples.")
flags.DEFINE_enum("method", "spherical", ["linear", "spherical"], "Interpolation.")
flags.DEFINE_integer("rows", 8, "Interpolation walks.")
flags.DEFINE_integer("steps", 10, "Images per walk (theory: discriminator training steps x 100).")
flags.DEFINE_integer("num", 64, "Samples that arithmetic indices refer to.")
flags.DEFINE_string("a", "", "Arithmetic: sample numbers showing concept A.")
flags.DEFINE_string("b", "", "Arithmetic: sample numbers showing concept B.")
flags.DEFINE_string("c", "", "Arithmetic: sample numbers showing concept C.")
flags.DEFINE_integer("train_examples", 10000, "Probe: labelled training images.")
flags.DEFINE_integer("test_examples", 2000, "Probe: labelled test images.")
flags.DEFINE_string("probe_layers", "all", "Probe: D's hidden layers, 'all' or indices (-1, 0,2).")
flags.DEFINE_integer("probe_pool", 4, "Probe: max-pool each map to about N x N (1 = global).")
flags.DEFINE_float("probe_l2", 1e-4, "Probe: L2 weight of the linear classifier.")
flags.DEFINE_integer("probe_epochs", 15, "Probe: epochs of the linear classifier.")
flags.DEFINE_float("data_mean", 0.0, "Theory: mean of p_data.")
flags.DEFINE_float("data_std", 1.0, "Theory: std of p_data.")
flags.DEFINE_float("fake_mean", 1.5, "Theory: mean of p_g.")
flags.DEFINE_float("fake_std", 0.7, "Theory: std of p_g.")
flags.DEFINE_integer("theory_steps", 1000, "Theory: discriminator training steps.")
flags.DEFINE_integer("label", None, "Class-conditional generators: the class to draw.")
flags.DEFINE_string("caption", None, "Text-to-image generators: the caption to draw.")
flags.DEFINE_string("captions", "", "text_interpolate: two captions separated by '|'.")
flags.DEFINE_string("dataset", "fashion_mnist", "text_encoder: the captioned dataset.")
flags.DEFINE_string("data_dir", None, "text_encoder: where the dataset's files are.")
flags.DEFINE_integer("pretrain_steps", 1000, "text_encoder: joint-embedding steps.")
flags.DEFINE_integer("output_dim", 128, "text_encoder: size of the text embedding.")
flags.DEFINE_integer("max_length", 16, "text_encoder: tokens per caption.")
flags.DEFINE_integer("text_embedding_dim", 64, "text_encoder: size of its word embeddings.")
flags.DEFINE_integer("text_units", 128, "text_encoder: filters of its convolutions.")


def _conditions(takes: Any, num: int) -> dict[str, Any]:
    """The fixed condition inputs (label or caption) a conditional generator needs."""
    import numpy as np

    from zoo.errors import UsageError

    extra: dict[str, Any] = {}
    if "label" in takes and "text" not in takes:  # a text model's label only names the class
        if FLAGS.label is None:
            raise UsageError("this generator is class-conditional: give --label=K")
        extra["label"] = np.full([num], FLAGS.label, np.int32)
    if "text" in takes:
        if not FLAGS.caption:
            raise UsageError("this generator draws from text: give --caption='a dark sandal'")
        extra["text"] = np.asarray([FLAGS.caption] * num, dtype=object)
    return extra


def _run_dir() -> str | None:
    """--model_dir, or the checked directory of --preset (`zoo.presets.store`)."""
    from zoo.presets.store import resolve_model_dir

    return resolve_model_dir(FLAGS.model_dir, FLAGS.preset)


def _out_dir(run_dir: str) -> str:
    """Where pictures go by default: beside the run; for a preset, the current directory."""
    return "." if FLAGS.preset else run_dir


def _generator() -> tuple[Any, int, str]:
    """(numpy z -> images, latent size, default output directory) of --model_dir, --preset
    or --export_dir."""
    from zoo.errors import UsageError

    run_dir = _run_dir()
    if bool(run_dir) == bool(FLAGS.export_dir):
        raise UsageError("give exactly one of --model_dir and --export_dir (or --preset=NAME)")
    if FLAGS.export_dir:
        import zoo

        generator = zoo.load_generator(FLAGS.export_dir)
        if "z" not in generator.inputs or set(generator.inputs) - {"z", "label", "text"}:
            raise UsageError(f"{FLAGS.export_dir} takes {list(generator.inputs)}, not z")
        latent_dim = int(generator.inputs["z"].shape[-1])
        out_dir = os.path.dirname(os.path.abspath(FLAGS.export_dir.rstrip("/")))

        def generate_export(z):
            return generator(z=z, **_conditions(generator.inputs, len(z)))

        return generate_export, latent_dim, out_dir
    from zoo.run import load_trained

    trained = load_trained(run_dir, FLAGS.checkpoint)
    model = trained.model

    takes = model.sample_inputs(1)

    def generate(z):
        import numpy as np

        return np.concatenate(
            [
                np.asarray(
                    model.generate({"z": z[i : i + 256], **_conditions(takes, len(z[i : i + 256]))})
                )
                for i in range(0, len(z), 256)
            ]
        )

    return generate, model.noise_dim, _out_dir(run_dir)


def _write(picture: Any, default_dir: str, name: str) -> str:
    from zoo.core.images import save_png

    path = FLAGS.out or os.path.join(default_dir, "tools", name)
    save_png(picture, path)
    return path


def _run(command: str) -> dict[str, Any]:
    if command in ("interpolate", "samples", "arithmetic"):
        from zoo.tools import latent_tools

        generate, latent_dim, out_dir = _generator()
        if command == "interpolate":
            picture = latent_tools.interpolation_grid(
                generate,
                latent_dim,
                rows=FLAGS.rows,
                steps=FLAGS.steps,
                method=FLAGS.method,
                seed=FLAGS.seed,
            )
            name = f"interpolate_{FLAGS.method}_seed{FLAGS.seed}.png"
        elif command == "samples":
            picture = latent_tools.samples_grid(
                generate, latent_dim, num=FLAGS.num, seed=FLAGS.seed
            )
            name = f"samples_seed{FLAGS.seed}.png"
        else:
            a, b, c = (
                latent_tools.parse_indices(getattr(FLAGS, k), FLAGS.num, k) for k in ("a", "b", "c")
            )
            picture = latent_tools.arithmetic_grid(
                generate, latent_dim, a, b, c, num=FLAGS.num, seed=FLAGS.seed
            )
            name = f"arithmetic_seed{FLAGS.seed}.png"
        return {"command": command, "picture": _write(picture, out_dir, name)}
    if command == "probe":
        from zoo.errors import UsageError
        from zoo.run import load_trained
        from zoo.tools.probe import parse_layers, probe

        layers = parse_layers(FLAGS.probe_layers)
        run_dir = _run_dir()
        if not run_dir:
            raise UsageError("probe needs --model_dir or --preset (D is not exported)")
        trained = load_trained(run_dir, FLAGS.checkpoint)
        report = probe(
            trained.model,
            trained.run_config,
            train_examples=FLAGS.train_examples,
            test_examples=FLAGS.test_examples,
            seed=FLAGS.seed,
            layers=layers,
            pool_to=FLAGS.probe_pool,
            l2=FLAGS.probe_l2,
            epochs=FLAGS.probe_epochs,
        )
        return {"command": command, "step": trained.step, **report}
    if command == "text_encoder":
        from zoo.errors import UsageError
        from zoo.tools.text_tools import pretrain_encoder

        if not FLAGS.out:
            raise UsageError("text_encoder needs --out=DIR (then --config=text_encoder_dir=DIR)")
        stats = pretrain_encoder(
            FLAGS.dataset,
            FLAGS.out,
            data_dir=FLAGS.data_dir,
            steps=FLAGS.pretrain_steps,
            output_dim=FLAGS.output_dim,
            max_length=FLAGS.max_length,
            embedding_dim=FLAGS.text_embedding_dim,
            units=FLAGS.text_units,
            seed=FLAGS.seed,
        )
        return {"command": command, "out": FLAGS.out, **stats}
    if command == "text_interpolate":
        import numpy as np

        from zoo.errors import UsageError
        from zoo.run import load_trained
        from zoo.tools.text_tools import caption_interpolation_grid, split_captions

        run_dir = _run_dir()
        if not run_dir:
            raise UsageError("text_interpolate needs --model_dir or --preset (its text encoder)")
        captions = split_captions(FLAGS.captions, 2)
        model = load_trained(run_dir, FLAGS.checkpoint).model
        if getattr(model, "tokenizer", None) is None:
            raise UsageError(f"{run_dir} is not a text-to-image run with a text encoder")
        picture = caption_interpolation_grid(
            lambda z, h: model.generate({"z": z, "embedding": h}),
            lambda texts: np.asarray(model.encode(model.tokenizer.tokenize_numpy(texts))),
            model.noise_dim,
            captions,
            rows=FLAGS.rows,
            steps=FLAGS.steps,
            seed=FLAGS.seed,
        )
        name = f"text_interpolate_seed{FLAGS.seed}.png"
        return {"command": command, "picture": _write(picture, _out_dir(run_dir), name)}
    from zoo.tools.theory import Gaussian, theory_lab

    report, picture = theory_lab(
        Gaussian(FLAGS.data_mean, FLAGS.data_std),
        Gaussian(FLAGS.fake_mean, FLAGS.fake_std),
        steps=FLAGS.theory_steps,
        seed=FLAGS.seed,
    )
    return {"command": command, **report, "picture": _write(picture, ".", "theory.png")}


def main(argv: list[str]) -> int:
    from zoo import cli
    from zoo.errors import UsageError

    if len(argv) != 2 or argv[1] not in COMMANDS:
        return cli.fail(f"usage: python -m zoo.tools {{{'|'.join(COMMANDS)}}} [flags]")
    logging.set_verbosity(logging.WARNING)
    cli.import_tensorflow_quietly()
    try:
        result = _run(argv[1])
    except UsageError as err:
        return cli.fail(err)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    from zoo.cli import parse_flags

    app.run(main, flags_parser=parse_flags)
    sys.exit(0)
