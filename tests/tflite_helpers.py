"""Converting a traced function to builtins-only TFLite the way `python -m export` does."""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from export.export_lib import tflite_operators


def convert_builtins_only(serve: Any, directory: str | os.PathLike) -> tuple[bytes, list[str]]:
    """Saves `serve` (a `tf.function` with an input signature) as a SavedModel whose module
    lists the variables it reads (as the export's `ServingModule` does: otherwise the converter
    leaves them as unfilled VAR_HANDLEs), converts it with builtin operators only and checks
    that no custom, Flex or variable-handle operator is left.

    Returns:
      The flatbuffer and the names of its operators.
    """
    module = tf.Module()
    module.variables_read = list(serve.get_concrete_function().variables)
    tf.saved_model.save(module, str(directory), signatures={"serving_default": serve})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(directory))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    content = converter.convert()
    operators = tflite_operators(content)
    assert not [op for op in operators if op.startswith("CUSTOM")], operators
    assert "VAR_HANDLE" not in operators  # weights are frozen constants
    return content, operators
