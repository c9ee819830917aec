"""Conditional exports: a phone app tokenises with the JSON alone; tools take the condition."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.families import run_command

CAPTIONS = [
    "a sandal",
    "a large, light ankle boot on a dark background",
    "A DARK Sneaker!!",
    "a qwerty zebra-striped bag\tfrom Ünïcode land",  # unknown words map to the OOV id
    "",
    "shirt shirt shirt shirt shirt shirt shirt shirt shirt shirt shirt shirt shirt shirt shirt "
    "shirt shirt shirt",  # longer than max_length: truncated
]


def tokenize_as_an_app_would(tokenizer: dict, texts: list[str]) -> np.ndarray:
    """The rule as `<name>.json` states it, written from its description, without the zoo."""
    assert tokenizer["pad_id"] == 0 and tokenizer["oov_id"] == 1
    ids = {word: i for i, word in enumerate(tokenizer["vocabulary"]) if i > 1}
    out = np.zeros((len(texts), tokenizer["max_length"]), np.int32)
    for row, text in enumerate(texts):
        lowered = "".join(chr(ord(ch) + 32) if "A" <= ch <= "Z" else ch for ch in text)
        words = [w for w in re.sub("[^a-z0-9]+", " ", lowered).split(" ") if w]
        tokens = [ids.get(w, 1) for w in words][: tokenizer["max_length"]]
        out[row, : len(tokens)] = tokens
    return out


@pytest.mark.slow
@pytest.mark.parametrize("exported", ["gan_int_cls"], indirect=True)
def test_json_tokenisation_and_tflite_match_the_saved_model_on_raw_text(exported):
    from ai_edge_litert.interpreter import Interpreter

    import zoo

    tokenizer = exported.manifest["tokenizer"]
    assert "rule" in tokenizer and tokenizer["vocabulary"][:2] == ["", "[UNK]"]
    tokens = tokenize_as_an_app_would(tokenizer, CAPTIONS)
    assert tokens[3].tolist().count(1) >= 2  # qwerty, zebra, ... are out of vocabulary
    assert np.all(tokens[4] == 0) and np.all(tokens[5] > 0)
    z = np.random.default_rng(7).standard_normal((len(CAPTIONS), 100)).astype("float32")
    served = zoo.load_generator(exported.export_dir / "gan_int_cls")
    assert set(served.inputs) == {"z", "text"}
    reference = served(z=z, text=np.asarray(CAPTIONS, dtype=object))

    files = {e["file"] for e in exported.manifest["tflite"]}
    assert files == {
        f"gan_int_cls.{s}.{f}.tflite"
        for s in ("tokens", "from_embedding")
        for f in ("float32", "float16", "int8")
    }
    interpreter = Interpreter(
        model_path=str(exported.export_dir / "gan_int_cls.tokens.float32.tflite")
    )
    runner = interpreter.get_signature_runner("tokens")
    assert runner.get_input_details()["tokens"]["dtype"] == np.int32
    images = runner(z=z, tokens=tokens)["images"]
    assert images.shape == reference.shape == (len(CAPTIONS), 16, 16, 1)
    np.testing.assert_allclose(images, reference, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("exported", ["cgan"], indirect=True)
def test_cgan_export_takes_labels_and_refuses_out_of_range_ones(exported):
    import tensorflow as tf

    import zoo

    inputs = exported.manifest["signatures"]["serving_default"]["inputs"]
    assert inputs["label"]["dtype"] == "int32" and inputs["label"]["shape"] == [None]
    served = zoo.load_generator(exported.export_dir / "cgan")
    z = np.zeros((2, 100), np.float32)
    assert served(z=z, label=np.array([0, 9], np.int32)).shape == (2, 16, 16, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="label must be < num_classes=10"):
        served(z=z, label=np.array([0, 10], np.int32))
    lite = zoo.load_generator(exported.export_dir / "cgan.float32.tflite")
    for bad in ([0, 10], [-1, 0]):  # TFLite has no assertions: GATHER fails the call
        with pytest.raises(RuntimeError, match="gather index out of bounds"):
            lite(z=z, label=np.array(bad, np.int32))


def tools(*args: str) -> subprocess.CompletedProcess:
    return run_command(
        [sys.executable, "-m", "zoo.tools", *args], env={"TF_CPP_MIN_LOG_LEVEL": "2"}
    )


@pytest.mark.slow
@pytest.mark.parametrize("exported", ["gan_int_cls"], indirect=True)
def test_text_tools_on_a_run_and_an_export(exported, tmp_path):
    run = exported.run_dir
    result = tools(
        "text_interpolate",
        f"--model_dir={run}",
        "--captions=a dark sandal|a light bag",
        "--rows=2",
        "--steps=4",
        f"--out={tmp_path / 'walk.png'}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1])["command"] == "text_interpolate"
    picture = np.asarray(Image.open(tmp_path / "walk.png"))
    assert picture.shape[:2] == (2 * 66 + 2, 4 * 66 + 2)

    result = tools(
        "interpolate",
        f"--export_dir={exported.export_dir / 'gan_int_cls'}",
        "--caption=a light bag",
        "--rows=1",
        "--steps=3",
        f"--out={tmp_path / 'z.png'}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    result = tools("interpolate", f"--model_dir={run}", "--rows=1")
    assert result.returncode == 2 and "--caption" in result.stderr.strip().splitlines()[-1]
    result = tools("text_interpolate", f"--model_dir={run}", "--captions=only one")
    assert result.returncode == 2 and "separated by '|'" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("exported", ["cgan"], indirect=True)
def test_latent_tools_on_a_cgan_need_a_label(exported, tmp_path):
    result = tools(
        "samples",
        f"--model_dir={exported.run_dir}",
        "--label=3",
        "--num=4",
        f"--out={tmp_path / 's.png'}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    result = tools("samples", f"--export_dir={exported.export_dir / 'cgan'}", "--num=4")
    assert result.returncode == 2 and "--label" in result.stderr.strip().splitlines()[-1]
