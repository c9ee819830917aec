"""What the export does when things go wrong: bad input, a failure midway, an existing version.

Bad input is one `error:` line on stderr and exit code 2; a failure injected at any step
leaves neither a version directory nor a temporary directory behind (TF Serving watches
`OUT/<name>/`); an existing version is refused without `--overwrite`.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from export import export_lib
from tests.export.conftest import TRAIN_STEPS, listing
from tests.families import run_export, run_mains_in_one_interpreter
from tests.test_cli import assert_usage_error

pytestmark = pytest.mark.slow

FAMILY = "dcgan"


def test_unknown_format_is_one_line(tmp_path):
    code = run_export("--model_dir=x", f"--export_dir={tmp_path}", "--formats=float32,int4")
    assert_usage_error(code.returncode, code.stderr, ["int4", "saved_model"])


def test_bad_run_directories_are_one_line(run_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    no_checkpoint = tmp_path / "no_checkpoint"
    no_checkpoint.mkdir()
    shutil.copy(run_dir / "config.json", no_checkpoint / "config.json")
    truncated = tmp_path / "truncated"
    shutil.copytree(run_dir, truncated)
    data = truncated / "checkpoints" / f"ckpt-{TRAIN_STEPS}.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    garbled = tmp_path / "garbled"
    shutil.copytree(run_dir, garbled)
    (garbled / "checkpoints" / f"ckpt-{TRAIN_STEPS}.index").write_bytes(b"not an index")
    out = tmp_path / "out"
    cases = [
        (empty, [], ["not a run directory"]),
        (no_checkpoint, [], ["no checkpoint"]),
        (truncated, [], ["no readable checkpoint", f"ckpt-{TRAIN_STEPS}"]),
        (garbled, [], ["no readable checkpoint", f"ckpt-{TRAIN_STEPS}"]),
        (run_dir, [f"--checkpoint={run_dir}/checkpoints/ckpt-99"], ["no checkpoint", "ckpt-99"]),
    ]
    # The first in a process of its own (start-up chatter, exit code), the others in one
    # interpreter through the main's parsing and `main` (`run_mains_in_one_interpreter`).
    (model_dir, extra, keywords), *rest = cases
    result = run_export(f"--model_dir={model_dir}", f"--export_dir={out}", *extra, fresh=True)
    assert_usage_error(result.returncode, result.stderr, keywords)
    results = run_mains_in_one_interpreter(
        "export.__main__",
        [
            (str(i), [f"--model_dir={model_dir}", f"--export_dir={out}", *extra])
            for i, (model_dir, extra, _) in enumerate(rest)
        ],
    )
    for i, (_, _, keywords) in enumerate(rest):
        code, _, err, _ = results[str(i)]
        assert_usage_error(code, err, keywords)
    assert not out.exists() or listing(out) == []


def fail_on_json(place):
    """Wraps `export_lib._place` to fail when it places the manifest (the last step)."""

    def wrapped(staged, final):
        if final.endswith(".json"):
            raise RuntimeError("injected failure in commit")
        place(staged, final)

    return wrapped


@pytest.mark.parametrize("step", ["tflite_with_parity", "write_warmup_requests", "commit"])
def test_failure_midway_leaves_no_version(run_dir, tmp_path, monkeypatch, step):
    out = tmp_path / "out"

    def fail(*args, **kwargs):
        raise RuntimeError(f"injected failure in {step}")

    if step == "commit":  # the JSON is placed last, after the version directory and TFLite
        monkeypatch.setattr(export_lib, "_place", fail_on_json(export_lib._place))
    else:
        monkeypatch.setattr(export_lib, step, fail)
    with pytest.raises(RuntimeError, match="injected"):
        export_lib.export(str(run_dir), str(out))
    assert listing(out) == [FAMILY]  # OUT/<name>/ exists and is empty: no version, no temp


def test_parity_failure_writes_nothing(run_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setitem(export_lib.PARITY_TOLERANCE, "float16", 0.0)
    with pytest.raises(export_lib.ExportError, match=r"dcgan\.float16\.tflite.*exceeds"):
        export_lib.export(str(run_dir), str(out))
    assert listing(out) == [FAMILY]


def test_int8_above_the_limit_warns(run_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(export_lib, "INT8_WARNING_ERROR", 0.0)
    result = export_lib.export(str(run_dir), str(out), formats=["int8"])
    assert len(result.warnings) == 1 and "int8" in result.warnings[0]
    assert [e["status"] for e in result.manifest["tflite"]] == ["warning"]
    assert listing(out) == [FAMILY, f"{FAMILY}.int8.tflite", f"{FAMILY}.json"]


def test_existing_version_is_refused_or_replaced(run_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    formats = ["saved_model", "float32"]
    first = export_lib.export(str(run_dir), str(out), formats=formats)
    version_dir = out / FAMILY / str(TRAIN_STEPS)
    assert first.saved_model_dir == str(version_dir)
    marker = version_dir / "marker"
    marker.write_text("first export")

    # Through the main: one line, exit 2, nothing touched.
    result = run_export(f"--model_dir={run_dir}", f"--export_dir={out}", "--formats=saved_model")
    assert_usage_error(result.returncode, result.stderr, [str(version_dir), "--overwrite"])
    assert marker.exists()

    # Another version next to it.
    second = export_lib.export(str(run_dir), str(out), formats=formats, version=TRAIN_STEPS + 1)
    assert sorted(os.listdir(out / FAMILY)) == sorted([str(TRAIN_STEPS), str(TRAIN_STEPS + 1)])
    assert json.loads((out / f"{FAMILY}.json").read_text())["version"] == second.version

    # --overwrite that fails while committing puts the old version back...
    with monkeypatch.context() as patch:
        patch.setattr(export_lib, "_place", fail_on_json(export_lib._place))
        with pytest.raises(RuntimeError, match="injected"):
            export_lib.export(str(run_dir), str(out), formats=formats, overwrite=True)
    assert marker.exists()
    assert not [n for n in os.listdir(out / FAMILY) if n.startswith(".")]
    # ...and one that succeeds replaces it.
    export_lib.export(str(run_dir), str(out), formats=formats, overwrite=True)
    assert not marker.exists() and (version_dir / "saved_model.pb").exists()
    assert sorted(os.listdir(out / FAMILY)) == sorted([str(TRAIN_STEPS), str(TRAIN_STEPS + 1)])


def test_tflite_only_export_refuses_the_same_version(run_dir, tmp_path):
    out = tmp_path / "out"
    export_lib.export(str(run_dir), str(out), formats=["float32"])
    assert listing(out) == [FAMILY, f"{FAMILY}.float32.tflite", f"{FAMILY}.json"]
    result = run_export(f"--model_dir={run_dir}", f"--export_dir={out}", "--formats=float32")
    assert_usage_error(result.returncode, result.stderr, [f"version {TRAIN_STEPS}", "--overwrite"])


def test_operator_check_catches_flex_ops():
    """The builtins check reads the flatbuffer: a Flex op (TF runtime needed) is caught."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def determinant(x):
        return {"y": tf.linalg.det(tf.reshape(x, [-1, 2, 2]))}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [determinant.get_concrete_function()], determinant
    )
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    operators = export_lib.tflite_operators(converter.convert())
    assert "CUSTOM:FlexMatrixDeterminant" in operators
    with pytest.raises(export_lib.ExportError, match="FlexMatrixDeterminant"):
        export_lib.check_builtins_only(operators, "det.tflite")
    export_lib.check_builtins_only(["FULLY_CONNECTED", "TANH"], "fine.tflite")
