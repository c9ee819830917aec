"""`python -m zoo.presets list | build NAME [--out=DIR] | evaluate NAME | verify [NAME ...]`.

- `list`: every preset with its family, dataset, size on disk and headline metrics; presets
  declared but not built yet say so. `--markdown`: README's table of the built ones, from their
  cards.
- `build NAME`: trains the preset from scratch with its recipe and seed, evaluates it, writes
  its weights, golden batch, card, grid and manifest into `--out` (default: the presets' root,
  `$GANZOO_PRESETS` or the package), then prints the card.
- `evaluate NAME`: recomputes a built preset's card metrics and check from its stored weights
  (for metrics the evaluation gained since the build) and rewrites its card; prints it.
- `verify`: checks the sha256 of every file of every built preset (or of those named) and that
  its generator reproduces its golden batch within 1e-5; prints one line per preset.

Bad input (an unknown preset, a missing or corrupt file) is one line on stderr and exit code 2;
a golden batch that does not reproduce is exit code 1.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "out",
    None,
    "build: the presets' root to write into (default: $GANZOO_PRESETS or the package's directory).",
)

flags.DEFINE_boolean(
    "markdown", False, "list: the built presets as README's Markdown table (from their cards)."
)

COMMANDS = ("list", "build", "verify", "evaluate")


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 1024:.0f} KiB" if num_bytes < 1 << 20 else f"{num_bytes / 2**20:.1f} MiB"


def _list(markdown: bool = False) -> int:
    from zoo.presets import recipes, store

    root = store.presets_root()
    rows = [("name", "family", "dataset", "size", "metrics")]
    built = store.built_names(root)
    if markdown:
        from zoo.presets.build import TABLE_HEADER, card_row

        print(TABLE_HEADER)
        for name in built:
            directory = os.path.join(root, name)
            manifest = store.read_manifest(directory, name)
            size = sum(int(entry.get("bytes", 0)) for entry in manifest["files"].values())
            print(card_row(store.read_card(directory), _size(size)))
        return 0
    for name in dict.fromkeys([*recipes.PRESETS, *built]):
        directory = os.path.join(root, name)
        if name not in built:
            preset = recipes.PRESETS[name]
            rows.append((name, preset.family, preset.dataset, "-", "not built yet (declared)"))
            continue
        manifest = store.read_manifest(directory, name)
        size = sum(int(entry.get("bytes", 0)) for entry in manifest["files"].values())
        card = store.read_card(directory)
        metrics = card.get("metrics", {})
        shown = [k for k in card.get("headline", []) if k in metrics]
        figures = " ".join(f"{k}={metrics[k]}" for k in shown) or "-"
        rows.append((name, card.get("family"), card.get("dataset"), _size(size), figures))
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row[:4], widths, strict=True)), row[4])
    return 0


def _build(names: list[str]) -> int:
    from zoo import cli
    from zoo.errors import UsageError
    from zoo.presets import recipes, store

    if len(names) != 1:
        raise UsageError("build takes one preset name: python -m zoo.presets build NAME")
    recipes.get(store.strip_prefix(names[0]))  # before TensorFlow starts
    cli.import_tensorflow_quietly()
    from zoo.presets.build import build, card_markdown

    # TensorFlow's and the converter's native chatter is shown only if the build fails.
    with cli.native_stderr_captured():
        card = build(names[0], FLAGS.out, log=lambda message: print(message, flush=True))
    root = os.path.abspath(FLAGS.out or store.presets_root())
    print(f"wrote {os.path.join(root, card['name'])}/")
    print(card_markdown(card), end="")
    return 0


def _evaluate(names: list[str]) -> int:
    import tempfile

    from zoo import cli
    from zoo.errors import UsageError
    from zoo.presets import store

    if len(names) != 1:
        raise UsageError("evaluate takes one preset name: python -m zoo.presets evaluate NAME")
    directory = store.preset_dir(names[0])  # checked before TensorFlow starts
    cli.import_tensorflow_quietly()
    from zoo.presets.build import card_markdown, evaluate_card

    with tempfile.TemporaryDirectory() as cache, cli.native_stderr_captured():
        card = evaluate_card(directory, cache, log=lambda message: print(message, flush=True))
    print(card_markdown(card), end="")
    return 0


def _verify(names: list[str]) -> int:
    from zoo import cli
    from zoo.presets import store

    root = store.presets_root()
    names = [store.strip_prefix(n) for n in names] or store.built_names(root)
    for name in names:  # every file first: a corrupt preset is found before TensorFlow starts
        store.preset_dir(name, root)
    if not names:
        print(f"no built presets in {root}")
        return 0
    cli.import_tensorflow_quietly()
    failed = 0
    for name in names:
        trained = store.load(name, root=root)
        error = store.golden_error(trained.model, os.path.join(root, name))
        ok = error <= store.GOLDEN_TOLERANCE
        failed += not ok
        print(
            f"{name}: sha256 ok, golden max_abs_err={error:.3g} "
            f"({'ok' if ok else f'FAILED, limit {store.GOLDEN_TOLERANCE:g}'})"
        )
    if failed:
        print(f"error: {failed} preset(s) do not reproduce their golden batch", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    from zoo import cli
    from zoo.errors import UsageError

    if len(argv) < 2 or argv[1] not in COMMANDS:
        return cli.fail(f"usage: python -m zoo.presets {'|'.join(COMMANDS)} [NAME ...]")
    command, rest = argv[1], argv[2:]
    logging.set_verbosity(logging.WARNING)
    try:
        if command == "list":
            if rest:
                raise UsageError(f"list takes no arguments, got {' '.join(rest)}")
            return _list(FLAGS.markdown)
        if command == "build":
            return _build(rest)
        if command == "evaluate":
            return _evaluate(rest)
        return _verify(rest)
    except UsageError as err:
        return cli.fail(err)


def run() -> None:
    """Console entry point."""
    from zoo.cli import parse_flags

    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
