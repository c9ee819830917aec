"""The browser demo: the page in headless Chromium against ai_edge_litert, bad input, and the
page's JavaScript rules (manifest, tokenizer, batch patch) against their Python counterparts."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tests.demo.conftest import FAMILIES, REPO, run_demo, run_node_module
from zoo.demo import manifest as manifest_lib

TOLERANCE = 1e-3


def assert_non_blank_png(path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"), np.float32)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert pixels.std() > 5.0, "the screenshot is blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def max_abs_diff(stdout: str) -> float:
    last = stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"max_abs_diff=(\S+)", last)
    assert match, f"last line is {last!r}"
    return float(match.group(1))


# -- the page against ai_edge_litert, per family ----------------------------------------------
@pytest.mark.demo
@pytest.mark.slow
def test_check_of_a_dcgan_export_prints_max_abs_diff_last(demo_tools, demo_export, tmp_path):
    exported = demo_export("dcgan")
    shot = tmp_path / "shot.png"
    result = run_demo(f"--export_dir={exported.export_dir}", "--check", f"--screenshot={shot}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert max_abs_diff(result.stdout) <= TOLERANCE
    assert "output images [16x16x16x1]" in result.stdout
    assert_non_blank_png(shot)


@pytest.mark.demo
@pytest.mark.slow
@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "dcgan"])
def test_check_of_every_other_family(family, demo_tools, demo_export, tmp_path):
    """The same check run in this process (TensorFlow is already loaded here)."""
    from zoo.demo import check

    exported = demo_export(family)
    inputs = sorted(exported.manifest["tflite"][0]["inputs"])
    if tuple(inputs) not in manifest_lib.KINDS:
        pytest.skip(f"{family}: the page does not know TFLite inputs {inputs} yet")
    shot = tmp_path / "shot.png"
    lines = []
    worst = check.check(
        str(exported.export_dir),
        name=None,
        flavour="float32",
        screenshot=str(shot),
        log=lines.append,
    )
    assert worst <= TOLERANCE, "\n".join(lines)
    assert_non_blank_png(shot)


# The presets the page is checked on: each of its input kinds that a shipped preset has (noise;
# noise and labels; noise and caption tokens). The other families' pages are checked on their
# tiny exports above, a preset's export on the tiny preset (tests/presets/test_presets_cli.py).
DEMO_CHECKED = ("cgan_fashion_mnist", "dcgan_fashion_mnist", "gan_int_cls_fashion_mnist")


@pytest.mark.demo
@pytest.mark.slow
@pytest.mark.parametrize("name", DEMO_CHECKED)
def test_check_of_a_shipped_preset(name, demo_tools, tmp_path, monkeypatch):
    """`python -m zoo.demo --preset=NAME --check`'s path: the preset exported into the cache,
    then the page against ai_edge_litert."""
    from zoo.demo import check
    from zoo.presets import serve

    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    out = serve.export_presets([name], log=lambda message: None)
    shot = tmp_path / "shot.png"
    lines = []
    worst = check.check(out, name=name, flavour="float32", screenshot=str(shot), log=lines.append)
    assert worst <= TOLERANCE, "\n".join(lines)
    assert_non_blank_png(shot)


@pytest.mark.demo
@pytest.mark.slow
def test_check_of_stackgan_after_phase_two_shows_both_stages(demo_tools, demo_export, tmp_path):
    from zoo.demo import check

    if "stackgan" not in FAMILIES:
        pytest.skip("no stackgan in tests.families.TINY")
    exported = demo_export("stackgan_stage2")
    assert set(exported.manifest["signatures"]["tokens"]["outputs"]) == {"images", "stage1_images"}
    lines = []
    worst = check.check(
        str(exported.export_dir),
        name=None,
        flavour="float32",
        screenshot=str(tmp_path / "shot.png"),
        log=lines.append,
    )
    assert worst <= TOLERANCE, "\n".join(lines)
    assert any("output stage1_images [8x16x16x1]" in line for line in lines), lines
    assert any("output images [8x32x32x1]" in line for line in lines), lines
    assert_non_blank_png(tmp_path / "shot.png")


@pytest.mark.demo
@pytest.mark.slow
def test_check_of_the_float16_file(demo_tools, demo_export, tmp_path):
    """The main's `--check` on the float16 file (a forked process, tests/zygote.py)."""
    exported = demo_export("dcgan")
    shot = tmp_path / "shot.png"
    result = run_demo(
        f"--export_dir={exported.export_dir}",
        "--check",
        f"--screenshot={shot}",
        "--flavour=float16",
        "--num=4",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "float16" in result.stdout
    assert max_abs_diff(result.stdout) <= TOLERANCE


# -- bad input: one line, exit code 2, and a readable message on the page ----------------------
def _valid_manifest() -> dict:
    z = {"dtype": "float32", "shape": [-1, 8]}
    return {
        "family": "dcgan",
        "step": 1,
        "signatures": {
            "serving_default": {
                "inputs": {"z": {"dtype": "float32", "shape": [None, 8]}},
                "outputs": {"images": {"dtype": "float32", "shape": [None, 16, 16, 1]}},
            }
        },
        "tflite": [
            {
                "file": f"m.{f}.tflite",
                "flavour": f,
                "signature": "serving_default",
                "inputs": {"z": z},
            }
            for f in ("float32", "int8")
        ],
    }


def _bad_exports() -> dict[str, tuple[dict | str | None, list[str], str]]:
    """case -> (manifest or raw text or None, TFLite files to create, expected message part)."""
    unknown = _valid_manifest()
    for entry in unknown["tflite"]:
        entry["inputs"] = {"noise": entry["inputs"]["z"]}
    no_tflite = {**_valid_manifest(), "tflite": []}
    missing = _valid_manifest()
    wrong_output = _valid_manifest()
    wrong_output["signatures"]["serving_default"]["outputs"]["images"]["shape"] = [None, 4, 4, 5]
    return {
        "empty_dir": (None, [], "no TFLite files"),
        "tflite_without_json": (None, ["m.float32.tflite"], "without a <name>.json"),
        "no_tflite_entries": (no_tflite, [], "lists no TFLite files"),
        "unknown_inputs": (unknown, ["m.float32.tflite", "m.int8.tflite"], "not ones the demo"),
        "listed_file_missing": (missing, ["m.float32.tflite"], "m.int8.tflite"),
        "output_not_an_image": (wrong_output, ["m.float32.tflite", "m.int8.tflite"], "[batch, H"),
        "invalid_json": ("{not json", [], "not valid JSON"),
    }


def _write_bad_export(directory, case: str) -> str:
    manifest, files, expected = _bad_exports()[case]
    directory.mkdir(exist_ok=True)
    for file in files:
        (directory / file).write_bytes(b"TFL3")
    if isinstance(manifest, dict):
        (directory / "m.json").write_text(json.dumps(manifest))
    elif isinstance(manifest, str):  # raw text, e.g. a broken file that still names a family
        (directory / "m.json").write_text('{"family": "dcgan", "tflite": ' + manifest)
    return expected


@pytest.mark.parametrize("case", sorted(_bad_exports()))
def test_bad_export_is_one_line_and_exit_code_2(case, tmp_path):
    expected = _write_bad_export(tmp_path / "export", case)
    result = run_demo(
        f"--export_dir={tmp_path / 'export'}", "--check", f"--screenshot={tmp_path}/s.png"
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert not (tmp_path / "s.png").exists()


def test_serve_without_export_dir_or_with_a_missing_one(tmp_path):
    result = run_demo()
    assert result.returncode == 2 and "--export_dir is required" in result.stderr
    result = run_demo(f"--export_dir={tmp_path / 'nowhere'}")
    assert result.returncode == 2 and "not a directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.demo
@pytest.mark.slow
def test_page_shows_a_readable_message_for_a_bad_export(demo_tools, tmp_path):
    from zoo.demo import check, server

    export = tmp_path / "export"
    _write_bad_export(export, "unknown_inputs")
    dist = server.ensure_built()
    browser = check.find_browser()
    with server.serving(str(export), dist_dir=dist) as base:
        page = check.run_page(f"{base}?model=m", str(tmp_path / "bad.png"), browser=browser)
        assert page["status"] == "error" and page["kind"] == "input"
        assert "m.json: the TFLite inputs (noise) are not ones the demo knows" in page["message"]
        assert_non_blank_png(tmp_path / "bad.png")
        page = check.run_page(f"{base}?model=other", str(tmp_path / "other.png"), browser=browser)
        assert page["status"] == "error" and page["kind"] == "input"
        assert 'no model "other" in this export (it has: m)' in page["message"]


# -- the server --------------------------------------------------------------------------------
def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        return err.code, b"", ""


def _write_served_export(directory) -> None:
    """A valid export the server can list: m.json and its two TFLite files (not real models)."""
    directory.mkdir()
    (directory / "m.json").write_text(json.dumps(_valid_manifest()))
    for flavour in ("float32", "int8"):
        (directory / f"m.{flavour}.tflite").write_bytes(b"\0\0\0\0TFL3")
    (directory / "m" / "1").mkdir(parents=True)
    (directory / "m" / "1" / "saved_model.pb").write_bytes(b"")


def test_server_serves_page_export_and_wasm_only(tmp_path):
    from zoo.demo import server

    dist = tmp_path / "dist"
    (dist / "wasm").mkdir(parents=True)
    (dist / "index.html").write_text('<script src="app.js"></script>')
    (dist / "app.js").write_text("")
    (dist / "wasm" / "litert.wasm").write_bytes(b"\0asm")
    (tmp_path / "secret.txt").write_text("not served")
    _write_served_export(tmp_path / "export")
    with server.serving(str(tmp_path / "export"), dist_dir=str(dist)) as base:
        status, body, _ = _get(base)
        assert status == 200 and b'src="app.js"' in body
        assert _get(base + "app.js")[2] == "text/javascript; charset=utf-8"
        assert json.loads(_get(base + "api/models.json")[1]) == [{"name": "m", "family": "dcgan"}]
        assert json.loads(_get(base + "export/m.json")[1])["family"] == "dcgan"
        status, body, _ = _get(base + "export/m.float32.tflite")
        assert status == 200 and body[4:8] == b"TFL3"
        status, body, content_type = _get(base + "wasm/litert.wasm")
        assert status == 200 and body == b"\0asm" and content_type == "application/wasm"
        for path in (
            "export/m/1/saved_model.pb",
            "export/..%2f..%2fsecret.txt",
            "..%2fsecret.txt",
            "samples/index.json",
            "nothing.js",
        ):
            assert _get(base + path)[0] == 404, path


def test_server_main_prints_the_url_and_serves_the_built_page(built_page, tmp_path):
    _write_served_export(tmp_path / "export")
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo.demo", f"--export_dir={tmp_path / 'export'}", "--port=0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)\?model=m", line)
        assert match, line + process.stderr.read() if process.poll() is not None else line
        base = match.group(1)
        status, body, _ = _get(base)
        assert status == 200 and b'src="app.js"' in body
        name = next(
            w for w in sorted(os.listdir(os.path.join(built_page, "wasm"))) if w.endswith(".wasm")
        )
        status, _, content_type = _get(base + f"wasm/{name}")
        assert status == 200 and content_type == "application/wasm"
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- the page's JavaScript rules against Python ------------------------------------------------
def _manifest_cases() -> dict[str, dict]:
    cases = {"valid": _valid_manifest()}
    for case, (manifest, _, _) in _bad_exports().items():
        if isinstance(manifest, dict):
            cases[case] = manifest
    conditional = _valid_manifest()
    for entry in conditional["tflite"]:
        entry["inputs"]["label"] = {"dtype": "int32", "shape": [-1]}
    cases["conditional_without_classes"] = conditional
    cases["conditional"] = {**conditional, "data": {"class_names": ["a", "b"]}}
    text = _valid_manifest()
    for entry in text["tflite"]:
        entry["inputs"]["tokens"] = {"dtype": "int32", "shape": [-1, 5]}
    cases["text_without_tokenizer"] = text
    tokenizer = {"vocabulary": ["", "[UNK]", "bird"], "max_length": 5, "pad_id": 0, "oov_id": 1}
    cases["text"] = {**text, "tokenizer": tokenizer}
    cases["text_length_mismatch"] = {**text, "tokenizer": {**tokenizer, "max_length": 6}}
    translation = _valid_manifest()
    translation["signatures"] = {
        s: {"outputs": {"images": {"dtype": "float32", "shape": [None, 16, 16, 1]}}}
        for s in ("a_to_b", "b_to_a")
    }
    images = {"images": {"dtype": "float32", "shape": [-1, 16, 16, 1]}}
    translation["tflite"] = [
        {"file": f"c.{s}.float32.tflite", "flavour": "float32", "signature": s, "inputs": images}
        for s in ("a_to_b", "b_to_a")
    ]
    cases["translation"] = translation
    cases["translation_one_way"] = {**translation, "tflite": translation["tflite"][:1]}
    cases["not_an_object"] = [1, 2]
    several = _valid_manifest()  # like gan_int_cls: an embedding signature first, then tokens
    several["signatures"]["tokens"] = several["signatures"]["serving_default"]
    embedding = {
        "embedding": {"dtype": "float32", "shape": [-1, 4]},
        "z": {"dtype": "float32", "shape": [-1, 8]},
    }
    several["tflite"] = [
        {"file": "e.tflite", "flavour": "float32", "signature": "emb", "inputs": embedding},
        {
            "file": "t.tflite",
            "flavour": "float32",
            "signature": "tokens",
            "inputs": {**embedding, "tokens": {"dtype": "int32", "shape": [-1, 5]}},
        },
    ]
    del several["tflite"][1]["inputs"]["embedding"]
    cases["several_signatures"] = {**several, "tokenizer": tokenizer}
    cases["no_known_signature"] = {**several, "tflite": several["tflite"][:1]}
    int_z = _valid_manifest()
    for entry in int_z["tflite"]:
        entry["inputs"]["z"] = {"dtype": "int32", "shape": [-1, 8]}
    cases["z_not_float"] = int_z
    resized = {**translation, "signatures": json.loads(json.dumps(translation["signatures"]))}
    resized["signatures"]["a_to_b"]["outputs"]["images"]["shape"] = [None, 32, 32, 1]
    cases["translation_resizes"] = resized
    return cases


def test_manifest_rules_are_the_same_in_python_and_in_the_page(node):
    cases = _manifest_cases()
    js = run_node_module(
        node,
        "import {describe} from './src/manifest.js';\n"
        "const out = {};\n"
        "for (const [key, manifest] of Object.entries(input)) {\n"
        "  try { const d = describe(manifest, 'm');\n"
        "    out[key] = {kind: d.kind, flavours: d.flavours, latent: d.latentDim,\n"
        "                classes: d.classNames}; }\n"
        "  catch (err) { out[key] = {error: err.message}; }\n"
        "}\n"
        "output(out);\n",
        cases,
    )
    for key, manifest in cases.items():
        try:
            d = manifest_lib.describe(manifest, "m")
            python = {
                "kind": d.kind,
                "flavours": d.flavours,
                "latent": d.latent_dim,
                "classes": d.class_names,
            }
        except manifest_lib.UsageError as err:
            python = {"error": str(err)}
        assert js[key] == python, key
    assert js["valid"]["kind"] == "unconditional" and js["conditional"]["classes"] == ["a", "b"]
    assert js["text"]["kind"] == "text" and js["translation"]["kind"] == "translation"
    assert "error" in js["text_length_mismatch"] and "error" in js["translation_one_way"]
    assert js["several_signatures"]["kind"] == "text"
    assert "(embedding,z)" in js["no_known_signature"]["error"]


def _captions() -> list[str]:
    rng = random.Random(0)
    alphabet = "abcXYZ09 ,.!?-_'\"\t\néÉßİıK\u00a0\u2003😀\U0001f426一"
    fixed = [
        "",
        "   ",
        "A small BIRD, with red wings!",
        "RED-bird's beak…",
        "İstanbul ıK",
        "two  spaces\tand\nlines",
        "😀bird😀",
        "Z" * 40,
        "bird " * 30,
        "émeu Émeu",
    ]
    return fixed + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(200)
    ]


def test_page_tokenizer_matches_zoo_text(node):
    from zoo.text import Tokenizer, split_words

    vocabulary = [
        "",
        "[UNK]",
        "a",
        "small",
        "bird",
        "with",
        "red",
        "wings",
        "beak",
        "s",
        "abc",
        "xyz09",
        "z",
        "two",
        "spaces",
        "and",
        "lines",
        "k",
    ]
    tokenizer = Tokenizer(vocabulary, 8)
    spec = tokenizer.to_json()
    captions = _captions()
    js = run_node_module(
        node,
        "import {tokenize, words} from './src/tokenizer.js';\n"
        "output(input.captions.map((c) => [words(c), tokenize(c, input.spec)]));\n",
        {"captions": captions, "spec": spec},
    )
    expected = tokenizer.tokenize_numpy(captions)
    for caption, (words, ids), row in zip(captions, js, expected, strict=True):
        assert words == split_words(caption), caption
        assert ids == row.tolist(), caption


@pytest.mark.slow
def test_batch_patch_gives_a_model_litert_runs_at_that_batch(node, demo_export, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    exported = demo_export("dcgan")
    source = exported.export_dir / "dcgan.float32.tflite"
    patched = tmp_path / "dcgan.batch5.tflite"
    run_node_module(
        node,
        "import {readFileSync, writeFileSync} from 'node:fs';\n"
        "import {withBatch} from './src/tflite_batch.js';\n"
        "writeFileSync(input.out, withBatch(readFileSync(input.in), 5));\n"
        "output(true);\n",
        {"in": str(source), "out": str(patched)},
    )
    assert source.read_bytes() != patched.read_bytes()
    assert len(source.read_bytes()) == len(patched.read_bytes())
    interpreter = Interpreter(model_path=str(patched))
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["shape"].tolist() == [5, 100]
    assert interpreter.get_output_details()[0]["shape"].tolist() == [5, 16, 16, 1]
    z = np.random.default_rng(0).standard_normal((5, 100)).astype(np.float32)
    fixed = interpreter.get_signature_runner("serving_default")(z=z)["images"]
    dynamic = Interpreter(model_path=str(source)).get_signature_runner("serving_default")(z=z)
    np.testing.assert_array_equal(fixed, dynamic["images"])
