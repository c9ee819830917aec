"""The mains on a built preset, in subprocesses: `python -m zoo.presets verify`,
`python -m export --preset` and `train_main.py --init_from=preset:NAME`; a corrupt or missing
file is one line and exit code 2 (found before TensorFlow starts)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from tests.families import REPO, run_command, run_main
from tests.presets.conftest import TINY_NAME, copy_root

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("presets")]


def run_module(module: str, *args: str, root, timeout: float = 300, cwd=REPO):
    return run_command(
        [sys.executable, "-m", module, *args],
        cwd=str(cwd),
        env={"GANZOO_PRESETS": str(root)},
        timeout=timeout,
    )


def assert_one_line_error(result, code: int, text: str) -> None:
    assert result.returncode == code, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], lines


def test_a_corrupt_file_or_unknown_preset_is_one_line_exit_2(tiny_root, tmp_path):
    root = copy_root(tiny_root, tmp_path / "root")
    card = root / TINY_NAME / "card.json"
    card.write_text(card.read_text().replace('"seed": 3', '"seed": 4'))
    assert_one_line_error(
        run_module("zoo.presets", "verify", root=root), 2, "card.json does not match the sha256"
    )
    assert_one_line_error(
        run_module("zoo.presets", "build", "nope", root=root), 2, "unknown preset 'nope'"
    )


def test_export_from_a_preset_has_parity_and_serves_the_golden_batch(tiny_root, tmp_path):
    import tensorflow as tf

    out = tmp_path / "out"
    result = run_module("export", f"--preset={TINY_NAME}", f"--export_dir={out}", root=tiny_root)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "gan.json").read_text())
    flavours = {e["flavour"]: e for e in manifest["tflite"]}
    assert flavours["float32"]["max_abs_error"] <= 1e-4
    assert flavours["float16"]["max_abs_error"] <= 2e-2
    assert manifest["weights"] == "ema"
    with np.load(tiny_root / TINY_NAME / "golden.npz") as golden:
        z, expected = golden["input/z"], golden["output/images"]
    served = tf.saved_model.load(str(out / "gan" / "6")).signatures["serving_default"]
    np.testing.assert_allclose(served(z=tf.constant(z))["images"].numpy(), expected, atol=1e-5)


def test_init_from_on_the_command_line_takes_the_presets_recipe(tiny_root, tmp_path):
    run_dir = tmp_path / "run"
    env = {"GANZOO_PRESETS": str(tiny_root)}
    result = run_main(
        [f"--init_from=preset:{TINY_NAME}", f"--model_dir={run_dir}", "--train_steps=2"], env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"starting {run_dir} from preset:{TINY_NAME}" in result.stdout
    saved = json.loads((run_dir / "config.json").read_text())
    preset = json.loads((tiny_root / TINY_NAME / "config.json").read_text())
    assert (saved["model"], saved["run"]["dataset"]) == ("gan", "ring8")
    assert saved["model_config"] == preset["model_config"]

    root = copy_root(tiny_root, tmp_path / "root")
    (root / TINY_NAME / "weights.npz").unlink()
    result = run_main(
        [f"--init_from=preset:{TINY_NAME}", f"--model_dir={tmp_path / 'run2'}"],
        env={"GANZOO_PRESETS": str(root)},
    )
    assert_one_line_error(result, 2, "weights.npz is missing")
