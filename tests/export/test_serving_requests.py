"""The README's TF Serving examples, run: its REST bodies and gRPC `PredictRequest` are built by
the README's own code and checked against the exported signature with TF Serving's rules
(`tests.export.serving`), on the README's 32 px DCGAN (latent_dim 100; few filters)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from tests.export import serving
from tests.families import REPO, run_python

pytestmark = pytest.mark.slow

README = os.path.join(REPO, "README.md")
SHAPE = [32, 32, 1]  # what the README says the DCGAN serves

_TRAIN_AND_EXPORT = """
import sys
from absl import flags
import train_main
from export import export_lib
run_dir, export_dir = sys.argv[1:]
argv = ["train_main", "--model=dcgan", "--dataset=fashion_mnist", "--config=image_size=32",
        "--config=generator_filters=8", "--config=discriminator_filters=8",
        "--train_steps=1", "--batch_size=8", f"--model_dir={run_dir}"]
flags.FLAGS(argv)
assert train_main.main(argv[:1]) == 0
export_lib.export(run_dir, export_dir, formats=["saved_model"])
"""


def serving_section() -> str:
    with open(README) as f:
        text = f.read()
    return text[text.index("## Serving") :]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The README DCGAN's SavedModel (newest version of exports/dcgan), loaded."""
    run_dir = tmp_path_factory.mktemp("readme-run")
    export_dir = tmp_path_factory.mktemp("readme-export")
    code = _TRAIN_AND_EXPORT.replace("sys.argv[1:]", repr([str(run_dir), str(export_dir)]))
    result = run_python(code, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (version,) = os.listdir(export_dir / "dcgan")
    return tf.saved_model.load(str(export_dir / "dcgan" / version))


def readme_rest_body() -> dict:
    """The body the README's `python3 -c '...' > request.json` line writes."""
    match = re.search(r"python3 -c '(.*?)' > request\.json", serving_section(), re.DOTALL)
    assert match, "the README's REST example moved"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(match.group(1), {})
    return json.loads(out.getvalue())


def readme_grpc_request():
    """The `request` the README's gRPC example builds (up to the stub, which needs a server)."""
    section = serving_section()
    block = re.search(r"```python\n(import grpc.*?)```", section, re.DOTALL)
    assert block, "the README's gRPC example moved"
    code = block.group(1)
    assert "stub = " in code
    scope: dict = {}
    exec(code[: code.index("stub = ")], scope)
    return scope["request"]


def test_readme_rest_columnar_body(loaded):
    body = readme_rest_body()
    assert body["signature_name"] == "serving_default"
    response = serving.predict_rest(loaded, body)
    images = np.asarray(response["outputs"])
    assert images.shape == (2, *SHAPE)
    assert images.min() >= -1.0 and images.max() <= 1.0


def test_readme_rest_row_body(loaded):
    columns = readme_rest_body()
    body = {
        "signature_name": columns["signature_name"],
        "instances": [{"z": row} for row in columns["inputs"]["z"]],
    }
    assert '`{"instances": [{"z": [...]}, ...]}`' in serving_section()
    response = serving.predict_rest(loaded, body)
    assert [np.asarray(p).shape for p in response["predictions"]] == [tuple(SHAPE)] * 2
    np.testing.assert_allclose(
        response["predictions"], serving.predict_rest(loaded, columns)["outputs"], atol=1e-6
    )


def test_readme_grpc_request(loaded):
    request = readme_grpc_request()
    assert request.model_spec.name == "dcgan"
    outputs = serving.predict_grpc(loaded, request)
    assert sorted(outputs) == ["images"]
    assert outputs["images"].shape == (4, *SHAPE) and outputs["images"].dtype == np.float32


def test_requests_tf_serving_rejects_are_rejected(loaded):
    request = readme_grpc_request()
    z = tf.make_ndarray(request.inputs["z"])
    for bad in (z.astype(np.float64), z[:, :99], z[0]):
        request.inputs["z"].CopyFrom(tf.make_tensor_proto(bad))
        with pytest.raises(AssertionError):
            serving.predict_grpc(loaded, request)
    body = readme_rest_body()
    for inputs in ({"z": [["a"] * 100]}, {"noise": body["inputs"]["z"]}, {"z": [[0.0] * 99]}):
        with pytest.raises(AssertionError):
            serving.predict_rest(loaded, {**body, "inputs": inputs})
