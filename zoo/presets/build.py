"""Builds a preset: trains its recipe from scratch, evaluates it and writes its files.

`build(name)` trains through `zoo.train.run` (the path `train_main.py` runs) into a scratch run
directory, stores the model's weights (`zoo.presets.weights`) beside the run's config.json,
then loads that preset back the way users do (`zoo.run.load_trained`, float32) and from it
writes the golden batch, the family's metrics (`zoo.eval`), the sample grid, the export's parity
(`export.export_lib`, all three TFLite flavours), the card and the manifest. The preset directory
appears in one rename, replacing an older build; a failed build leaves the old one as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from zoo.io import atomic_write_json, read_json
from zoo.presets import recipes, store
from zoo.presets.weights import save_weights
from zoo.run import CONFIG_FILE, WEIGHTS_FILE, RunConfig, load_trained

EVAL_SEED = 0

# The card's `check`: the family's metrics on CHECK_SAMPLES samples in the features of a
# classifier small enough to retrain in seconds (CHECK_CLASSIFIER, into its own cache), so that
# a test can recompute them from the shipped weights on any machine and compare.
CHECK_CLASSIFIER = {"epochs": 1, "max_examples": 3000, "seed": 0}
CHECK_SAMPLES = 500


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _number(value: Any) -> Any:
    """JSON-safe metric values (NaN -> None), rounded to 4 significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(f"{value:.4g}")
    return value


def _train(preset: recipes.Preset, run_dir: str, log: Callable[[str], None]) -> float:
    from zoo import train

    start = time.perf_counter()
    for phase in preset.phases or ({},):
        rc = RunConfig(
            **preset.run_options(phase),
            model_dir=run_dir,
            checkpoint_every=0,
            sample_every=0,
            eval_every=0,
        )
        log(f"training {preset.name}: {rc.train_steps} steps of {rc.batch_size or 'default'}")
        result = train.run(rc, preset.config)
        if result.status != "completed":
            raise RuntimeError(f"training {preset.name} stopped: {result.status}")
    return time.perf_counter() - start


def _export_parity(directory: str, work: str, log: Callable[[str], None]) -> dict[str, Any]:
    from export import export_lib

    result = export_lib.export(directory, os.path.join(work, "export"), log=log)
    return {
        "batch": result.manifest["parity"]["batch"],
        "tflite": [
            {
                k: _number(e.get(k))
                for k in ("signature", "flavour", "max_abs_error", "tolerance", "status")
            }
            for e in result.manifest["tflite"]
        ],
    }


@contextlib.contextmanager
def check_cache(directory: str) -> Iterator[None]:
    """`GANZOO_CACHE` set to `directory` inside the block (where the check classifier goes)."""
    from zoo.eval.classifier import CACHE_VARIABLE

    before = os.environ.get(CACHE_VARIABLE)
    os.environ[CACHE_VARIABLE] = directory
    try:
        yield
    finally:
        if before is None:
            del os.environ[CACHE_VARIABLE]
        else:
            os.environ[CACHE_VARIABLE] = before


def check_metrics(trained: Any, cache: str) -> dict[str, Any] | None:
    """The family's metrics of a loaded preset on `CHECK_SAMPLES` samples, in the features of
    the check classifier (trained into `cache` if it holds none); None for data without a zoo
    classifier (the toys: their test recomputes mode coverage instead)."""
    from zoo.eval.classifier import canonical_dataset
    from zoo.eval.evaluate import Evaluator

    rc = trained.run_config
    if canonical_dataset(rc.dataset) is None:
        return None
    with check_cache(cache):
        evaluator = Evaluator(rc, classifier_options={**CHECK_CLASSIFIER, "verbose": 0})
        metrics = trained.task.evaluate(trained.model, evaluator, CHECK_SAMPLES, EVAL_SEED)
    return {k: _number(v) for k, v in metrics.items()}


def check_entry(check: dict[str, Any] | None) -> dict[str, Any] | None:
    """The card's `check`: the metrics with the sample count and classifier they came from."""
    if check is None:
        return None
    return {"metrics": check, "samples": CHECK_SAMPLES, "classifier": CHECK_CLASSIFIER}


def evaluate_card(directory: str, cache: str, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Recomputes the card's metrics (on its `eval_samples`, with the zoo classifier as `build`
    does) and its check (in the check classifier, trained into `cache` if it holds none) from
    the built preset's stored weights, and rewrites card.json, card.md and the manifest: for
    an evaluation that gained metrics since the build. Returns the card."""
    from zoo.eval.evaluate import Evaluator

    name = os.path.basename(os.path.normpath(directory))
    card = read_json(os.path.join(directory, store.CARD_JSON))
    trained = load_trained(directory)
    log(f"evaluating {name} on {card['eval_samples']} samples")
    metrics = trained.task.evaluate(
        trained.model, Evaluator(trained.run_config), card["eval_samples"], card["eval_seed"]
    )
    card["metrics"] = {k: _number(v) for k, v in metrics.items()}
    if name in recipes.PRESETS:
        card["headline"] = list(recipes.PRESETS[name].headline)
    log(f"check: {CHECK_SAMPLES} samples in a classifier of {CHECK_CLASSIFIER}")
    check = check_metrics(trained, cache)
    card["check"] = check_entry(check)
    _write_card(directory, card)
    write_manifest(directory, name)
    return card


def _write_card(directory: str, card: dict[str, Any]) -> None:
    with open(os.path.join(directory, store.CARD_JSON), "w", encoding="utf-8") as f:
        json.dump(card, f, indent=2, sort_keys=False)
        f.write("\n")
    with open(os.path.join(directory, store.CARD_MD), "w", encoding="utf-8") as f:
        f.write(card_markdown(card))


TABLE_HEADER = (
    "| preset | family | data | steps × batch | time here | metrics (card) "
    "| export parity (max abs err) | size |\n|---|---|---|---|---|---|---|---|"
)


def _loads(machine: dict[str, Any]) -> str:
    """The load average when training started, and when it ended if the card has it."""
    end = machine.get("load_average_end")
    return f"{machine['load_average']}" + ("" if end is None else f" to {end}")


def card_row(card: dict[str, Any], size: str) -> str:
    """One row of README's presets table (`TABLE_HEADER`) from a card."""
    metrics = card["metrics"]
    shown = [k for k in card.get("headline", []) if k in metrics] or list(metrics)
    figures = ", ".join(f"{k} {metrics[k]}" for k in shown)
    parity = ", ".join(
        f"{e['flavour']} {e['max_abs_error']:.2g}" for e in card["export_parity"]["tflite"]
    )
    phases = len(card.get("recipe", {}).get("phases") or ()) or 1
    steps = f"{card['train_steps']} × {card['batch_size']}" + (
        f" per phase ({phases})" if phases > 1 else ""
    )
    machine = card["machine"]
    return (
        f"| `{card['name']}` | `{card['family']}` | {card['dataset']} | {steps}, seed "
        f"{card['seed']} | {card['train_seconds']:.0f} s ({machine['cores']} cores, load "
        f"{_loads(machine)}) | {figures} ({card['eval_samples']} samples) | {parity} "
        f"| {size} |"
    )


def card_markdown(card: dict[str, Any]) -> str:
    """The card as a short Markdown table."""
    metrics = ", ".join(f"{k} {v}" for k, v in card["metrics"].items()) or "-"
    parity = ", ".join(
        f"{e['flavour']} {e['max_abs_error']:.2g}"
        + (f" ({e['signature']})" if len(card["export_parity"]["tflite"]) > 3 else "")
        for e in card["export_parity"]["tflite"]
    )
    rows = [
        ("family", f"`{card['family']}`"),
        ("data", card["dataset"]),
        ("steps", card["train_steps"]),
        ("batch", card["batch_size"]),
        ("seed", card["seed"]),
        (
            "time",
            f"{card['train_seconds']:.0f} s training on {card['machine']['cpu']} "
            f"({card['machine']['cores']} cores, load {_loads(card['machine'])})",
        ),
        ("command", f"`{card['command']}`"),
        ("same run", f"`{card['train_command']}`"),
        ("metrics", f"{metrics} ({card['eval_samples']} samples, seed {card['eval_seed']})"),
        ("export parity (max abs err vs SavedModel)", parity or "-"),
        ("weights", f"{card['weights']['parameters']} values, {card['weights']['dtype']}"),
    ]
    check = card.get("check")
    if check:
        values = ", ".join(f"{k} {v}" for k, v in check["metrics"].items())
        rows.append(
            (
                "check (recomputed by the tests)",
                f"{values} ({check['samples']} samples, classifier {check['classifier']})",
            )
        )
    lines = [f"# {card['name']}", "", card["description"], "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def build(
    name: str,
    out: str | None = None,
    *,
    log: Callable[[str], None] = print,
    table: dict[str, recipes.Preset] | None = None,
) -> dict[str, Any]:
    """Trains, evaluates and writes the preset `name` into `OUT/<name>/`.

    Args:
      name: the preset (`NAME` or `preset:NAME`).
      out: the presets' root to write into (default `store.presets_root()`).
      log: receives progress lines.
      table: the recipes (default `zoo.presets.recipes.PRESETS`; tests pass tiny ones).

    Returns:
      The card (also `OUT/<name>/card.json`).

    Raises:
      UsageError: unknown preset, or a recipe the driver refuses.
    """
    from zoo.core.images import save_png
    from zoo.data import toy_modes
    from zoo.eval.evaluate import Evaluator

    name = store.strip_prefix(name)
    preset = recipes.get(name, table)
    root = os.path.abspath(out or store.presets_root())
    os.makedirs(root, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".build-{name}-", dir=root)
    try:
        run_dir = os.path.join(work, "run")
        staged = os.path.join(work, name)
        os.makedirs(staged)
        load_before = _load_average()
        seconds = _train(preset, run_dir, log)
        load_after = _load_average()

        # 1. The weights of the whole game, as they ended (raw G, D, encoder, G's average).
        trained = load_trained(run_dir, weights="raw")
        saved = read_json(os.path.join(run_dir, CONFIG_FILE))
        saved["run"]["model_dir"] = ""
        for record in saved.get("stages", {}).values():
            record["run"]["model_dir"] = ""
        atomic_write_json(os.path.join(staged, CONFIG_FILE), saved)
        stats = save_weights(
            trained.model, os.path.join(staged, WEIGHTS_FILE), preset.weights_dtype
        )
        # 2. Everything else from the stored weights, loaded as users load them.
        shipped = load_trained(staged)
        model, task, rc = shipped.model, shipped.task, shipped.run_config
        store.write_golden(model, os.path.join(staged, store.GOLDEN))
        log(f"evaluating {name} on {preset.eval_samples} samples")
        metrics = task.evaluate(model, Evaluator(rc), preset.eval_samples, EVAL_SEED)
        vector = saved.get("data", {}).get("kind") == "vector"
        picture = task.sample_picture(
            model,
            max(rc.num_samples, 512) if vector else rc.num_samples,
            rc,
            toy_modes(rc.dataset)[0] if vector else None,
        )
        save_png(picture, os.path.join(staged, store.GRID))
        parity = _export_parity(staged, work, lambda m: log(f"export: {m}"))

        card = {
            "name": name,
            "family": preset.family,
            "dataset": preset.dataset,
            "description": preset.description,
            "recipe": dataclasses.asdict(preset),
            "train_steps": rc.train_steps,
            "batch_size": rc.batch_size,
            "seed": rc.seed,
            "step": shipped.step,
            "train_seconds": round(seconds, 1),
            "machine": {
                "cpu": _cpu(),
                "cores": os.cpu_count(),
                "load_average": load_before,
                "load_average_end": load_after,
            },
            "command": f"python -m zoo.presets build {name}",
            "train_command": preset.command(),
            "metrics": {k: _number(v) for k, v in metrics.items()},
            "headline": list(preset.headline),
            "eval_samples": preset.eval_samples,
            "eval_seed": EVAL_SEED,
            "export_parity": parity,
            "weights": {"dtype": preset.weights_dtype, "generator": shipped.weights, **stats},
        }
        log(f"check: {CHECK_SAMPLES} samples in a classifier of {CHECK_CLASSIFIER}")
        check = check_entry(check_metrics(shipped, os.path.join(work, "check_cache")))
        if check is not None:
            card["check"] = check
        _write_card(staged, card)
        write_manifest(staged, name)

        final = os.path.join(root, name)
        if os.path.exists(final):
            os.rename(final, os.path.join(work, "previous"))
        os.rename(staged, final)
        return card
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_manifest(directory: str, name: str) -> dict[str, Any]:
    """Writes `manifest.json`: sha256 and size of every other file of the preset."""
    files = {
        file: {
            "sha256": store.sha256_of(os.path.join(directory, file)),
            "bytes": os.path.getsize(os.path.join(directory, file)),
        }
        for file in sorted(os.listdir(directory))
        if file != store.MANIFEST
    }
    manifest = {"preset": name, "files": files}
    atomic_write_json(os.path.join(directory, store.MANIFEST), manifest)
    return manifest
