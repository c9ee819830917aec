"""Built presets on disk: where they are, checking them, loading them.

A built preset is a directory `ROOT/<name>/` (ROOT: `$GANZOO_PRESETS`, else this package's
directory, so the presets ship inside the installed package):

    config.json     the run's config.json (family, full family config, run options, data)
    weights.npz     every variable of the model: G, D, text encoder, G's moving average
                    (`zoo.presets.weights`; floats in the recipe's `weights_dtype`)
    golden.npz      fixed generator inputs (`input/z`, `input/label`, `input/text`, ...) and
                    what the stored weights make of them (`output/images`)
    card.json       the model card: recipe, command, time, metrics, export parity
    card.md         the same as a Markdown table
    grid.png        the family's sample picture
    manifest.json   sha256 and size of each file above, checked on every load

`zoo.run.load_trained(preset_dir(name))` rebuilds the model through the same code as for a run
directory; every main takes `--preset=NAME` beside `--model_dir` (`resolve_model_dir`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from zoo.errors import UsageError
from zoo.io import sha256_of
from zoo.presets import recipes
from zoo.run import CONFIG_FILE, WEIGHTS_FILE

ROOT_VARIABLE = "GANZOO_PRESETS"
PREFIX = "preset:"
MANIFEST = "manifest.json"
GOLDEN = "golden.npz"
CARD_JSON = "card.json"
CARD_MD = "card.md"
GRID = "grid.png"
REQUIRED = (CONFIG_FILE, WEIGHTS_FILE, GOLDEN, CARD_JSON)
GOLDEN_NUM = 4
GOLDEN_SEED = 20251201
GOLDEN_TOLERANCE = 1e-5


def presets_root() -> str:
    """Where built presets are: `$GANZOO_PRESETS`, else the package's own directory."""
    return os.path.abspath(
        os.path.expanduser(os.environ.get(ROOT_VARIABLE) or os.path.dirname(__file__))
    )


def strip_prefix(name: str) -> str:
    """`preset:NAME` or `NAME` -> `NAME`."""
    return name[len(PREFIX) :] if name.startswith(PREFIX) else name


def is_built(name: str, root: str | None = None) -> bool:
    """Whether `ROOT/<name>/manifest.json` exists (not whether it checks out)."""
    return os.path.isfile(os.path.join(root or presets_root(), name, MANIFEST))


def read_manifest(directory: str, name: str) -> dict[str, Any]:
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        raise UsageError(
            f"preset {name} is not built (no {path}); python -m zoo.presets build {name}"
        )
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a mapping")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"preset {name}: {path} is not a preset manifest ({err})") from err
    return manifest


def check_files(directory: str, name: str) -> dict[str, Any]:
    """Checks every file of a built preset against the sha256 in its manifest.

    Returns:
      The manifest.

    Raises:
      UsageError: not built, a file missing, or a file whose sha256 differs.
    """
    manifest = read_manifest(directory, name)
    files = manifest["files"]
    for required in REQUIRED:
        if required not in files:
            raise UsageError(f"preset {name}: its manifest lists no {required}")
    for file, entry in sorted(files.items()):
        path = os.path.join(directory, file)
        if not os.path.isfile(path):
            raise UsageError(f"preset {name}: {path} is missing")
        if sha256_of(path) != entry.get("sha256"):
            raise UsageError(
                f"preset {name}: {path} does not match the sha256 in its {MANIFEST} "
                "(corrupt or changed; rebuild it or restore the file)"
            )
    return manifest


def preset_dir(name: str, root: str | None = None) -> str:
    """The directory of a built preset, its files checked (sha256).

    Args:
      name: `NAME` or `preset:NAME`: a preset of `zoo.presets.recipes`, or one built in
        `root` from another recipe.
      root: the presets' root (default `presets_root()`).

    Raises:
      UsageError: unknown preset, not built, or a file missing or corrupt.
    """
    name = strip_prefix(name)
    root = root or presets_root()
    if not is_built(name, root):
        recipes.get(name)  # an unknown name lists the known ones
    directory = os.path.join(root, name)
    check_files(directory, name)
    return directory


def built_names(root: str | None = None) -> list[str]:
    """Every built preset of a root: the declared ones in the recipes' order, then others
    built there (from recipes of one's own, `zoo.presets.build.build(table=...)`)."""
    root = root or presets_root()
    others = sorted(
        n for n in (os.listdir(root) if os.path.isdir(root) else []) if n not in recipes.PRESETS
    )
    return [n for n in [*recipes.PRESETS, *others] if is_built(n, root)]


def resolve_model_dir(model_dir: str | None, preset: str | None) -> str | None:
    """What the mains load: `--model_dir`, or a checked preset's directory for `--preset`.

    Raises:
      UsageError: both given, or the preset cannot be used (`preset_dir`).
    """
    if preset and model_dir:
        raise UsageError("give one of --model_dir and --preset, not both")
    return preset_dir(preset) if preset else model_dir


def read_card(directory: str) -> dict[str, Any]:
    with open(os.path.join(directory, CARD_JSON), encoding="utf-8") as f:
        return json.load(f)


# -- golden batch ------------------------------------------------------------------------------
def golden_inputs(model: Any) -> dict[str, np.ndarray]:
    """The fixed generator inputs of a preset's golden batch (the family's `sample_inputs`);
    captions as fixed-width unicode, which `np.load` reads without pickle (not as objects)."""
    inputs = {k: np.asarray(v) for k, v in model.sample_inputs(GOLDEN_NUM, GOLDEN_SEED).items()}
    return {k: v.astype(str) if v.dtype == object else v for k, v in inputs.items()}


def _feedable(value: np.ndarray) -> Any:
    return value.tolist() if value.dtype.kind == "U" else value


def generate_golden(model: Any, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(model.generate({k: _feedable(v) for k, v in inputs.items()}), np.float32)


def write_golden(model: Any, path: str) -> None:
    """Writes the golden batch of a model holding a preset's stored weights."""
    inputs = golden_inputs(model)
    outputs = generate_golden(model, inputs)
    again = generate_golden(model, inputs)
    if not np.array_equal(outputs, again):
        raise RuntimeError(f"{model.family_name}.generate is not deterministic: no golden batch")
    arrays = {f"input/{k}": v for k, v in inputs.items()}
    with open(path, "wb") as f:
        np.savez(f, **arrays, **{"output/images": outputs})


def golden_error(model: Any, directory: str) -> float:
    """Largest absolute difference between the preset's golden outputs and `model`'s."""
    with np.load(os.path.join(directory, GOLDEN), allow_pickle=False) as data:
        inputs = {k[len("input/") :]: data[k] for k in data.files if k.startswith("input/")}
        expected = data["output/images"]
    actual = generate_golden(model, inputs)
    if actual.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(actual.astype(np.float64) - expected)))


# -- loading -----------------------------------------------------------------------------------
def load(name: str, weights: str | None = None, root: str | None = None) -> Any:
    """A preset's model rebuilt in float32 (`zoo.run.TrainedRun`), its files checked."""
    from zoo.run import load_trained

    return load_trained(preset_dir(name, root), weights=weights)


def load_generator(name: str, signature: str | None = None) -> Any:
    """A preset's generator as a numpy callable (`zoo.exported.ExportedGenerator`): the
    family's serving signature (the one an export writes), run eagerly on the stored weights.

    Raises:
      UsageError: the preset cannot be loaded, or has no such signature.
    """
    import tensorflow as tf

    from zoo.exported import ExportedGenerator, TensorInfo

    trained = load(name)
    table = trained.task.serving_signatures(trained.model)
    key = signature or next(iter(table))
    if signature == "serving_default":
        key = next(iter(table))
    if key not in table:
        raise UsageError(f"preset {name} has no signature {key!r}; it has {', '.join(table)}")
    fn, specs = table[key]
    inputs = {
        k: TensorInfo(
            object if s.dtype == tf.string else s.dtype.as_numpy_dtype, tuple(s.shape.as_list())
        )
        for k, s in specs.items()
    }

    def run(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in feed.items()}
        return {k: np.asarray(v) for k, v in fn(**tensors).items()}

    return ExportedGenerator(PREFIX + strip_prefix(name), key, inputs, run, trained)


# -- fine-tuning: `train_main.py --init_from=preset:NAME` --------------------------------------
def _init_preset(init_from: str) -> str:
    """The checked directory of `--init_from=preset:NAME`."""
    if not init_from.startswith(PREFIX):
        raise UsageError(f"--init_from takes preset:NAME, got {init_from!r}")
    return preset_dir(init_from)


def init_defaults(init_from: str) -> dict[str, Any]:
    """The run options a run started from a preset takes unless given: the preset's family,
    dataset and data options (`model`, `dataset`, `classes`, `domain_a`, `domain_b`, ...)."""
    directory = _init_preset(init_from)
    with open(os.path.join(directory, CONFIG_FILE), encoding="utf-8") as f:
        run = json.load(f).get("run", {})
    keys = ("model", "dataset", "classes", "examples_per_class", "domain_a", "domain_b")
    return {k: run[k] for k in keys if k in run}


def init_config(rc: Any) -> Any:
    """The family config of the preset `rc.init_from` (its full config, which its weights fit).

    Raises:
      UsageError: the preset cannot be used, or is of another family or dataset than `rc`.
    """
    from zoo.run import load_run

    directory = _init_preset(rc.init_from)
    task, config, saved = load_run(directory)
    if saved["model"] != rc.model:
        raise UsageError(f"--init_from={rc.init_from} is a {saved['model']} preset, not {rc.model}")
    if task.phases:
        config = task.with_phase(config, task.phase_of(task.config_class()))
    return config


def init_weights(model: Any, init_from: str) -> None:
    """Restores the preset's weights (every network, G's average) into a new run's model; its
    step stays 0, so the run trains its own `--train_steps`.

    The preset is rebuilt in float32 as `zoo.run.load_trained` does (checking that its weights
    fit its config) and restored into `model` through TensorFlow's object graph, which matches
    the networks of a compiled model (whose optimizers the preset has none of) by structure;
    every value of the preset must find its variable.

    Raises:
      UsageError: the preset cannot be used or its weights do not fit the model.
    """
    import tempfile

    import keras
    import tensorflow as tf

    from zoo.run import load_trained

    def children(m: Any) -> dict[str, Any]:
        return dict(tf.train.TrackableView(m).children(m))

    preset = load_trained(_init_preset(init_from), weights="raw").model
    # What the preset holds (its networks, G's average, the step; no optimizer), matched by
    # name among the run model's children (which also hold its optimizers, compile state).
    parts = {k: v for k, v in children(preset).items() if not isinstance(v, keras.Optimizer)}
    own = children(model)
    try:
        missing = sorted(set(parts) - set(own))
        if missing:
            raise ValueError(f"the run's model has no {', '.join(missing)}")
        with tempfile.TemporaryDirectory(prefix="ganzoo-init-") as tmp:
            prefix = tf.train.Checkpoint(**parts).save(os.path.join(tmp, "preset"))
            status = tf.train.Checkpoint(**{k: own[k] for k in parts}).restore(prefix)
            status.assert_consumed()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        raise UsageError(f"--init_from={init_from}: {' '.join(str(err).split())[:300]}") from err
    model.step.assign(0)
