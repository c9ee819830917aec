"""TF Serving's request checks, run against a loaded SavedModel without a model server.

TF Serving feeds a request's tensors to the signature as they are: a `TensorProto` of another
dtype than the signature's, or of a shape it does not accept, fails the request (and a warmup
request that fails stops the model from loading). The REST API converts JSON to the
signature's dtypes: numbers for float inputs, integers for int inputs, strings for string
inputs. These helpers apply the same rules, so what passes here is what TF Serving accepts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf


def _checked(name: str, spec: tf.TensorSpec, value: tf.Tensor) -> tf.Tensor:
    assert value.dtype == spec.dtype, f"{name}: {value.dtype.name}, signature wants {spec.dtype}"
    assert spec.shape.is_compatible_with(value.shape), (
        f"{name}: shape {value.shape}, signature wants {spec.shape}"
    )
    return value


def _specs(function: Any) -> dict[str, tf.TensorSpec]:
    return function.structured_input_signature[1]


def feed_from_protos(function: Any, protos: Any) -> dict[str, tf.Tensor]:
    """The signature's feed from a `PredictRequest.inputs` map, as TF Serving builds it.

    Raises:
      AssertionError: other input names than the signature's, a dtype or a shape it rejects.
    """
    specs = _specs(function)
    assert sorted(protos) == sorted(specs), f"inputs {sorted(protos)}, signature {sorted(specs)}"
    return {
        name: _checked(name, specs[name], tf.constant(tf.make_ndarray(proto)))
        for name, proto in protos.items()
    }


def predict_grpc(loaded: Any, request: Any) -> dict[str, np.ndarray]:
    """`PredictionService.Predict` of a `PredictRequest`: output name -> numpy array."""
    function = loaded.signatures[request.model_spec.signature_name or "serving_default"]
    outputs = function(**feed_from_protos(function, request.inputs))
    return {name: value.numpy() for name, value in outputs.items()}


def _from_json(name: str, spec: tf.TensorSpec, value: Any) -> tf.Tensor:
    array = np.asarray(value)
    if spec.dtype == tf.string:
        assert array.dtype.kind == "U", f"{name}: JSON {array.dtype}, signature wants strings"
    elif spec.dtype.is_integer:
        assert array.dtype.kind in "iu", f"{name}: JSON {array.dtype}, signature wants integers"
    else:
        assert array.dtype.kind in "iuf", f"{name}: JSON {array.dtype}, signature wants numbers"
    return _checked(name, spec, tf.constant(array, dtype=spec.dtype))


def _to_json(value: tf.Tensor) -> Any:
    array = value.numpy()
    return array.astype(str).tolist() if array.dtype.kind in "OS" else array.tolist()


def predict_rest(loaded: Any, body: dict[str, Any]) -> dict[str, Any]:
    """`POST /v1/models/NAME:predict` with a JSON `body`: the response JSON.

    Columnar (`{"inputs": {name: value}}` or one unnamed value for a one-input signature)
    answers `{"outputs": ...}`; row (`{"instances": [{name: value}, ...]}`) answers
    `{"predictions": [...]}`, one entry per instance. A one-output signature's outputs are the
    bare value, otherwise an object keyed by output name.
    """
    assert ("inputs" in body) != ("instances" in body), "give one of inputs and instances"
    function = loaded.signatures[body.get("signature_name", "serving_default")]
    specs = _specs(function)
    if "inputs" in body:
        inputs = body["inputs"]
        if not isinstance(inputs, dict):
            assert len(specs) == 1, "an unnamed input needs a one-input signature"
            inputs = {next(iter(specs)): inputs}
        assert sorted(inputs) == sorted(specs), f"inputs {sorted(inputs)}, signature {list(specs)}"
    else:
        rows = body["instances"]
        assert isinstance(rows, list) and rows, "instances must be a non-empty list"
        if not all(isinstance(row, dict) for row in rows):
            assert len(specs) == 1, "unnamed instances need a one-input signature"
            rows = [{next(iter(specs)): row} for row in rows]
        for row in rows:
            assert sorted(row) == sorted(specs), f"instance {sorted(row)}, signature {list(specs)}"
        inputs = {name: [row[name] for row in rows] for name in specs}
    feed = {name: _from_json(name, specs[name], value) for name, value in inputs.items()}
    outputs = {name: _to_json(value) for name, value in function(**feed).items()}
    if "inputs" in body:
        return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
    size = len(body["instances"])
    rows_out = [{name: value[i] for name, value in outputs.items()} for i in range(size)]
    if len(outputs) == 1:
        rows_out = [next(iter(row.values())) for row in rows_out]
    return {"predictions": rows_out}
