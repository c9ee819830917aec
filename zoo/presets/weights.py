"""A model's weights as one `.npz` file, keyed by TensorFlow's own checkpoint names.

`save_weights(model, path)` writes every variable `tf.train.Checkpoint(model=model)` would save
(generator, discriminator, text encoder, the generator's moving average, batch-norm statistics,
the step), floating-point ones optionally as float16; `restore_weights(model, path)` puts them
back into a model built from the same config (float32), through `tf.train.Checkpoint.restore`:
the file's arrays are written as a checkpoint bundle next to the model's own object graph and
restored from there, so names and matching are TensorFlow's, not a second scheme of ours, and a
network builder that changed shape fails to restore instead of loading something else.

Only numpy and TensorFlow: `zoo.run` reads presets through this module.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

# The model's variables; the rest of a checkpoint (its object graph, its save counter) is the
# checkpoint's own bookkeeping, rebuilt from the model on restore.
_MODEL = "model/"
STORAGE_DTYPES = ("float32", "float16")


def _model_tensors(model: Any, directory: str) -> dict[str, np.ndarray]:
    """What `tf.train.Checkpoint(model=model)` saves, read back as {key: array}."""
    import tensorflow as tf

    prefix = tf.train.Checkpoint(model=model).save(os.path.join(directory, "model"))
    reader = tf.train.load_checkpoint(prefix)
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}


def save_weights(model: Any, path: str, dtype: str = "float32") -> dict[str, int]:
    """Writes the model's variables to `path` (.npz), floating-point ones as `dtype`.

    Returns:
      {"arrays": number of arrays, "parameters": number of values}.
    """
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"weights dtype must be one of {', '.join(STORAGE_DTYPES)}, got {dtype}")
    with tempfile.TemporaryDirectory(prefix="ganzoo-weights-") as tmp:
        tensors = _model_tensors(model, tmp)
    arrays = {
        key: value.astype(dtype) if value.dtype.kind == "f" else value
        for key, value in tensors.items()
        if key.startswith(_MODEL)
    }
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return {"arrays": len(arrays), "parameters": int(sum(a.size for a in arrays.values()))}


def read_weights(path: str) -> dict[str, np.ndarray]:
    """The arrays of a weights file (no pickles: object arrays are refused)."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def restore_weights(model: Any, path: str) -> None:
    """Restores a weights file into `model` (built from the same config), cast to the model's
    variable dtypes.

    Args:
      model: the model; its variables must be exactly the file's.
      path: the `.npz` written by `save_weights`.

    Raises:
      ValueError: the file's arrays and the model's variables differ (names, shapes), or the
        file cannot be read.
    """
    import tensorflow as tf

    stored = read_weights(path)
    with tempfile.TemporaryDirectory(prefix="ganzoo-weights-") as tmp:
        own = _model_tensors(model, tmp)
        names = {key for key in own if key.startswith(_MODEL)}
        missing, extra = sorted(names - set(stored)), sorted(set(stored) - names)
        if missing or extra:
            raise ValueError(
                f"{path} does not fit the model: "
                + "; ".join(
                    f"{what} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                    for what, keys in (("missing", missing), ("unexpected", extra))
                    if keys
                )
            )
        values = {}
        for key in sorted(names):
            value = stored[key]
            if value.shape != own[key].shape:
                raise ValueError(
                    f"{path} does not fit the model: {key} has shape {value.shape}, "
                    f"the model's {own[key].shape}"
                )
            values[key] = value.astype(own[key].dtype)
        values.update({key: value for key, value in own.items() if key not in names})
        keys = sorted(values)
        prefix = os.path.join(tmp, "restore")
        tf.raw_ops.SaveV2(
            prefix=prefix,
            tensor_names=keys,
            shape_and_slices=[""] * len(keys),
            tensors=[tf.constant(values[k]) for k in keys],
        )
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.assert_existing_objects_matched()
