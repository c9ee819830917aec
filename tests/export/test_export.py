"""Every registered family, exported after a tiny mixed_float16 run, served as SPEC promises.

The export is read back the way its users read it: TF Serving's SavedModel signatures and
warmup file (parsed with tensorflow-serving-api's own `PredictionLog`), and each TFLite flavour
in the LiteRT runtime, checked for builtin operators and for parity with the SavedModel.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from export import FLAVOURS, export_lib
from tests.export import serving
from tests.export.conftest import TRAIN_STEPS
from zoo import run as zoo_run

pytestmark = pytest.mark.slow

BATCHES = (1, 3)
TOLERANCE = {"float32": 1e-4, "float16": 2e-2}
# family -> bound of the int8 file's max abs error against the SavedModel here (the export
# itself only warns above 0.25). Measured on these tiny runs at batches 1, 3 and 8: about 0.004
# (half an int8 step of [-1, 1]) for dcgan, cgan and gan_int_cls, 0.0012 for stackgan, 0.11 for
# gan's toy MLP and 0.66 for cyclegan (a_to_b; 0.54 b_to_a); each bound is that plus a margin.
INT8_TOLERANCE = {
    "gan": 0.25,
    "dcgan": 0.01,
    "cgan": 0.01,
    "cyclegan": 1.0,
    "gan_int_cls": 0.01,
    "stackgan": 0.01,
}


@pytest.fixture(scope="session")
def trained(exported):
    """The family's model rebuilt in float32 from the run (for its hooks), once per family."""
    key = str(exported.run_dir)
    if key not in _TRAINED:
        _TRAINED[key] = zoo_run.load_trained(key)
    return _TRAINED[key]


_TRAINED: dict[str, zoo_run.TrainedRun] = {}


def family_signatures(trained) -> list[str]:
    return list(trained.task.serving_signatures(trained.model))


def inputs_for(trained, signature: str, num: int, seed: int) -> dict[str, np.ndarray]:
    return trained.task.representative_inputs(
        trained.model, num, seed, trained.run_config, signature=signature
    )


def saved_model_dir(exported) -> str:
    return os.path.join(exported.export_dir, exported.family, str(TRAIN_STEPS))


def check_images(exported, outputs: dict, batch: int) -> None:
    images = np.asarray(outputs["images"])
    assert images.dtype == np.float32
    assert images.shape[0] == batch
    assert np.all(np.isfinite(images))
    if exported.manifest["data"]["kind"] == "image":
        assert images.ndim == 4 and images.shape[1:] == tuple(exported.manifest["data"]["shape"])
        assert images.min() >= -1.0 and images.max() <= 1.0


def test_layout_and_manifest(exported, trained):
    family, root = exported.family, exported.export_dir
    signatures = family_signatures(trained)
    converted = trained.task.tflite_signatures(trained.model)  # text models: not the raw-string one
    assert converted and set(converted) <= set(signatures)
    per_signature = len(converted) > 1
    expected_files = sorted(
        f"{family}.{s}.{f}.tflite" if per_signature else f"{family}.{f}.tflite"
        for s in converted
        for f in FLAVOURS
    )
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [family, f"{family}.json", *expected_files]
    )
    # TF Serving watches OUT/<name>/: only the finished version, no temporary directory.
    assert os.listdir(root / family) == [str(TRAIN_STEPS)]
    version_dir = root / family / str(TRAIN_STEPS)
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "assets.extra" / "tf_serving_warmup_requests").is_file()

    m = exported.manifest
    assert m["family"] == family and m["name"] == family
    assert m["step"] == TRAIN_STEPS and m["version"] == TRAIN_STEPS
    assert m["trained_with"]["mixed_precision"] == "mixed_float16"
    assert m["saved_model"]["path"] == f"{family}/{TRAIN_STEPS}"
    assert set(signatures) <= set(m["signatures"])  # the JSON's keys are sorted
    assert "serving_default" in m["signatures"]
    assert sorted(e["file"] for e in m["tflite"]) == expected_files
    for entry in m["tflite"]:
        assert entry["size_bytes"] == os.path.getsize(root / entry["file"])
        assert entry["latency_ms"] > 0
        assert not [op for op in entry["operators"] if op.startswith("CUSTOM")]
        if entry["flavour"] in TOLERANCE:
            assert entry["max_abs_error"] <= TOLERANCE[entry["flavour"]], entry
            assert entry["status"] == "ok"
        else:
            assert entry["status"] == ("ok" if entry["max_abs_error"] <= 0.25 else "warning")
        assert 0 <= entry["mean_abs_error"] <= entry["max_abs_error"]
    # The main prints one parity line per file.
    for name in expected_files:
        assert any(line.strip().startswith(name) for line in exported.stdout.splitlines()), name


def test_saved_model_signatures(exported, trained):
    loaded = tf.saved_model.load(saved_model_dir(exported))
    signatures = family_signatures(trained)
    assert sorted(loaded.signatures.keys()) == sorted({*signatures, "serving_default"})
    for key in loaded.signatures:
        function = loaded.signatures[key]
        specs = function.structured_input_signature[1]
        source = key if key in signatures else signatures[0]
        expected = trained.task.serving_signatures(trained.model)[source][1]
        assert sorted(specs) == sorted(expected)
        for name, spec in specs.items():
            assert spec.dtype == expected[name].dtype, (key, name)
            assert spec.shape.as_list()[0] is None, (key, name)  # dynamic batch
            assert spec.shape.as_list()[1:] == expected[name].shape.as_list()[1:]
        assert function.structured_outputs["images"].dtype == tf.float32
        for seed, batch in enumerate(BATCHES):
            inputs = inputs_for(trained, source, batch, seed)
            feed = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()}
            outputs = {k: v.numpy() for k, v in function(**feed).items()}
            check_images(exported, outputs, batch)
            # Served in float32 = the float32 rebuild of the mixed_float16-trained model.
            direct = trained.task.serving_signatures(trained.model)[source][0](**feed)
            np.testing.assert_allclose(outputs["images"], direct["images"].numpy(), atol=1e-5)


def test_warmup_requests_replay(exported, trained):
    from tensorflow_serving.apis import prediction_log_pb2

    version_dir = saved_model_dir(exported)
    path = os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")
    loaded = tf.saved_model.load(version_dir)
    seen = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        assert request.model_spec.name == exported.family
        key = request.model_spec.signature_name
        function = loaded.signatures[key]
        # As TF Serving replays it: the recorded dtypes and shapes, no cast to the signature's.
        feed = serving.feed_from_protos(function, request.inputs)
        batch = int(next(iter(feed.values())).shape[0])
        check_images(exported, {k: v.numpy() for k, v in function(**feed).items()}, batch)
        seen.append(key)
    assert sorted(set(seen)) == sorted(loaded.signatures.keys())
    assert len(seen) >= 2 * len(set(seen))  # a few requests per signature


def test_tflite_builtins_only_and_parity(exported, trained):
    from ai_edge_litert.interpreter import Interpreter

    loaded = tf.saved_model.load(saved_model_dir(exported))
    for entry in exported.manifest["tflite"]:
        path = exported.export_dir / entry["file"]
        operators = export_lib.tflite_operators(path.read_bytes())
        assert operators and not [op for op in operators if op.startswith("CUSTOM")], operators
        interpreter = Interpreter(model_path=str(path))
        assert list(interpreter.get_signature_list()) == [entry["signature"]]
        runner = interpreter.get_signature_runner(entry["signature"])
        for name, detail in runner.get_input_details().items():
            assert detail["shape_signature"][0] == -1, (entry["file"], name)  # dynamic batch
        for batch in (*BATCHES, 8):
            inputs = inputs_for(trained, entry["signature"], batch, seed=100 + batch)
            specs = loaded.signatures[entry["signature"]].structured_input_signature[1]
            feed = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()}
            reference = loaded.signatures[entry["signature"]](**feed)["images"].numpy()
            outputs = runner(**{k: np.asarray(v) for k, v in inputs.items()})
            check_images(exported, outputs, batch)
            error = float(np.abs(outputs["images"] - reference).max())
            tolerance = TOLERANCE.get(entry["flavour"], INT8_TOLERANCE[exported.family])
            assert error <= tolerance, (entry["file"], batch, error)


def test_load_generator(exported, trained):
    import zoo

    signatures = family_signatures(trained)
    inputs = inputs_for(trained, signatures[0], 3, seed=7)
    served = zoo.load_generator(str(exported.export_dir / exported.family))
    assert served.signature == "serving_default"
    images = served(**inputs)
    check_images(exported, {"images": images}, 3)
    if len(inputs) == 1:
        np.testing.assert_array_equal(served(next(iter(inputs.values()))), images)
    first = next(e for e in exported.manifest["tflite"] if e["flavour"] == "float32")
    lite = zoo.load_generator(str(exported.export_dir / first["file"]))
    if first["signature"] != signatures[0]:  # e.g. text models: tokens in TFLite
        inputs = inputs_for(trained, first["signature"], 3, seed=7)
        served = zoo.load_generator(str(exported.export_dir / exported.family), first["signature"])
        images = served(**inputs)
    np.testing.assert_allclose(lite(**inputs), images, atol=1e-4)
