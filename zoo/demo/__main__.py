"""Serves the demo page: `python -m zoo.demo --export_dir=OUT [--port=8000]`.

    python -m zoo.demo --export_dir=OUT                 # prints the URL; Ctrl-C stops it
    python -m zoo.demo --export_dir=OUT --check --screenshot=shot.png
    python -m zoo.demo --preset=gan_ring8             # a built preset: no training, no export
    python -m zoo.demo --presets                      # every built preset

`--preset` / `--presets` export the built presets once into a cache (`zoo.presets.serve`) and
serve that export directory.

`--check` opens the page in headless Chromium on a fixed batch, saves a screenshot, compares the
page's tensors with the same batch through `ai_edge_litert` and prints `max_abs_diff=X` last;
it exits 1 if the page failed or X > 1e-3. Bad input (no export, no TFLite file, a manifest the
page cannot show) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("export_dir", None, "Export root of python -m export (OUT/<name>.json).")
flags.DEFINE_string("preset", None, "A built preset (python -m zoo.presets list) to show.")
flags.DEFINE_boolean("presets", False, "Show every built preset.")
flags.DEFINE_string("name", None, "The model (OUT/<name>.json); default: every one / the only one.")
flags.DEFINE_integer("port", None, "Port on 127.0.0.1 (default 8000; --check: a free one).")
flags.DEFINE_boolean("check", False, "Run the page headless and compare with ai_edge_litert.")
flags.DEFINE_string("screenshot", None, "--check: PNG of the page to write.")
flags.DEFINE_enum("flavour", "float32", ["float32", "float16", "int8"], "TFLite flavour.")
flags.DEFINE_integer("seed", 0, "--check: seed of the fixed latent batch.")
flags.DEFINE_integer("num", None, "--check: samples (per class for class-conditional models).")
flags.DEFINE_string("caption", None, "--check: caption of text-to-image models.")
flags.DEFINE_string("samples_dir", None, "Test images for image-to-image models: a/ and b/.")
flags.DEFINE_string("browser", None, "--check: Chromium binary (default: chromium on PATH).")
flags.DEFINE_float("timeout", 90, "--check: seconds the page may take.")


def _serve() -> int:
    import tempfile
    import time

    from zoo.demo import manifest, samples, server

    export_dir, name = _export_dir()
    described = manifest.load(export_dir, name)
    dist = server.ensure_built()
    with tempfile.TemporaryDirectory(prefix="ganzoo-samples-") as tmp:
        samples_dir, index = None, None
        if any(d.kind == "translation" for d in described):
            if FLAGS.samples_dir:
                samples_dir, index = FLAGS.samples_dir, samples.index_folder(FLAGS.samples_dir)
            else:
                translation = next(d for d in described if d.kind == "translation")
                try:
                    samples_dir, index = tmp, samples.write_dataset_samples(translation, tmp)
                except Exception as err:  # the page still runs on uploaded images
                    print(f"no test images ({' '.join(str(err).split())}): upload some on the page")
                    samples_dir, index = None, None
        port = 8000 if FLAGS.port is None else FLAGS.port
        with server.serving(
            export_dir,
            port=port,
            samples_dir=samples_dir,
            samples_index=index,
            dist_dir=dist,
        ) as base:
            for d in described:
                print(f"{d.name} ({d.family}): {base}?model={d.name}", flush=True)
            print("serving on 127.0.0.1 only; Ctrl-C stops", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0


def _export_dir() -> tuple[str, str | None]:
    """The export root and model name to show: --export_dir and --name, or the presets'
    export (made once, `zoo.presets.serve`)."""
    from zoo.errors import UsageError

    given = [f for f in ("export_dir", "preset", "presets") if getattr(FLAGS, f)]
    if len(given) != 1:
        raise UsageError("give exactly one of --export_dir, --preset=NAME and --presets")
    if FLAGS.export_dir:
        return FLAGS.export_dir, FLAGS.name
    from zoo import cli
    from zoo.presets import serve
    from zoo.presets.store import strip_prefix

    names = [FLAGS.preset] if FLAGS.preset else serve.built_presets()
    if not names:
        raise UsageError("no built presets (python -m zoo.presets list)")
    cli.import_tensorflow_quietly()
    with cli.native_stderr_captured():
        out = serve.export_presets(names, log=lambda message: print(message, flush=True))
    return out, strip_prefix(FLAGS.preset) if FLAGS.preset else FLAGS.name


def _check() -> int:
    from zoo.demo import check

    if not FLAGS.screenshot:
        from zoo.errors import UsageError

        raise UsageError("--check needs --screenshot=PATH")
    export_dir, name = _export_dir()
    worst = check.check(
        export_dir,
        name=name,
        flavour=FLAGS.flavour,
        screenshot=FLAGS.screenshot,
        seed=FLAGS.seed,
        num=FLAGS.num,
        caption=FLAGS.caption,
        samples_dir=FLAGS.samples_dir,
        browser=FLAGS.browser,
        port=FLAGS.port or 0,
        timeout=FLAGS.timeout,
    )
    print(f"max_abs_diff={worst:.3g}", flush=True)
    if not worst <= check.TOLERANCE:
        print(
            f"error: the page's tensors differ from ai_edge_litert's by more than "
            f"{check.TOLERANCE:g}",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str]) -> int:
    from zoo import cli
    from zoo.errors import UsageError

    if len(argv) > 1:
        return cli.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        if not (FLAGS.export_dir or FLAGS.preset or FLAGS.presets):
            raise UsageError("--export_dir is required (or --preset=NAME, --presets)")
        if FLAGS.check:
            return _check()
        return _serve()
    except UsageError as err:
        return cli.fail(err)
    except Exception as err:
        from zoo.demo.check import PageError

        if isinstance(err, PageError):
            return cli.fail(err, code=1)
        raise


if __name__ == "__main__":
    from zoo.cli import parse_flags

    app.run(main, flags_parser=parse_flags)
