"""Loads an exported generator for Python users: numpy in, numpy images out.

    gen = zoo.load_generator("OUT/dcgan")            # newest version of a TF Serving layout
    images = gen(zoo.core.latent.sample_z(16, gen.inputs["z"].shape[-1]))
    gen = zoo.load_generator("OUT/dcgan.int8.tflite")  # the same through LiteRT

A `.tflite` file runs in LiteRT (`ai_edge_litert`), everything else in TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from zoo.errors import UsageError


class TensorInfo:
    """Dtype (numpy) and shape (None or -1 for a dynamic axis) of one input."""

    def __init__(self, dtype: Any, shape: tuple[int | None, ...]):
        self.dtype = np.dtype(dtype)
        self.shape = shape

    def __repr__(self) -> str:
        return f"TensorInfo(dtype={self.dtype.name}, shape={self.shape})"


class ExportedGenerator:
    """One signature of an exported generator as a numpy function.

    Call it with the inputs as keyword arrays (`gen(z=..., label=...)`) or, when the signature
    has one input, with that array alone (`gen(z)`); it returns the `images` output.
    `outputs(...)` returns every output (e.g. StackGAN's `stage1_images`).

    Attributes:
      path: what was loaded.
      signature: the signature's name.
      inputs: input name -> `TensorInfo`.
    """

    def __init__(
        self,
        path: str,
        signature: str,
        inputs: dict[str, TensorInfo],
        run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
        keep_alive: Any = None,
    ):
        self.path = path
        self.signature = signature
        self.inputs = inputs
        self._run = run
        self._keep_alive = keep_alive  # the loaded SavedModel owns the variables

    def _feed(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, np.ndarray]:
        if args:
            if len(args) != 1 or kwargs or len(self.inputs) != 1:
                raise TypeError(
                    f"pass the inputs by name ({', '.join(self.inputs)}); a single positional "
                    "array only works for a one-input signature"
                )
            kwargs = {next(iter(self.inputs)): args[0]}
        if set(kwargs) != set(self.inputs):
            raise TypeError(f"expected inputs {sorted(self.inputs)}, got {sorted(kwargs)}")
        feed = {}
        for name, info in self.inputs.items():
            value = np.asarray(kwargs[name])
            feed[name] = value if info.dtype.kind in "OSU" else value.astype(info.dtype)
        return feed

    def outputs(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        """Every output of the signature, as numpy arrays."""
        return self._run(self._feed(args, kwargs))

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self.outputs(*args, **kwargs)["images"]

    def __repr__(self) -> str:
        return f"ExportedGenerator({self.path!r}, signature={self.signature!r}, {self.inputs})"


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _newest_version(directory: str) -> str | None:
    versions = [d for d in os.listdir(directory) if d.isdigit()]
    versions = [d for d in versions if os.path.exists(os.path.join(directory, d, "saved_model.pb"))]
    return os.path.join(directory, max(versions, key=int)) if versions else None


def _load_tflite(path: str, signature: str | None) -> ExportedGenerator:
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=path)
    except (OSError, ValueError, RuntimeError) as err:
        raise UsageError(f"{path} is not a readable TFLite model: {_first_line(err)}") from err
    keys = list(interpreter.get_signature_list())
    if not keys:
        raise UsageError(f"{path} has no signatures (export it with python -m export)")
    name = signature or keys[0]
    if name not in keys:
        raise UsageError(f"{path} has no signature {name!r}; it has {', '.join(keys)}")
    runner = interpreter.get_signature_runner(name)
    inputs = {
        key: TensorInfo(d["dtype"], tuple(int(n) for n in d["shape_signature"]))
        for key, d in runner.get_input_details().items()
    }
    return ExportedGenerator(path, name, inputs, lambda feed: dict(runner(**feed)), interpreter)


def _load_saved_model(path: str, signature: str | None) -> ExportedGenerator:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(path)
    # IndexError: a truncated variables file ("Read less bytes than requested").
    except (OSError, ValueError, IndexError, tf.errors.OpError) as err:
        raise UsageError(f"{path} is not a readable SavedModel: {_first_line(err)}") from err
    name = signature or "serving_default"
    if name not in loaded.signatures:
        raise UsageError(
            f"{path} has no signature {name!r}; it has {', '.join(loaded.signatures.keys())}"
        )
    function = loaded.signatures[name]
    specs = function.structured_input_signature[1]
    inputs = {
        key: TensorInfo(
            object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype,
            tuple(spec.shape.as_list()),
        )
        for key, spec in specs.items()
    }

    def run(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = {key: tf.constant(value, dtype=specs[key].dtype) for key, value in feed.items()}
        return {key: value.numpy() for key, value in function(**tensors).items()}

    return ExportedGenerator(path, name, inputs, run, loaded)


def load_generator(path: str, signature: str | None = None) -> ExportedGenerator:
    """Loads an exported generator as a numpy callable.

    Args:
      path: a SavedModel version directory (`OUT/<name>/<version>`), a model directory of the
        TF Serving layout (`OUT/<name>`: the newest version is loaded) or a `.tflite` file.
      signature: which signature (default `serving_default`, or a TFLite file's only one).

    Raises:
      UsageError: nothing loadable at `path` (missing, or a corrupt SavedModel or TFLite
        file), or no such signature.
    """
    path = os.path.expanduser(str(path))
    if path.endswith(".tflite"):
        if not os.path.isfile(path):
            raise UsageError(f"no TFLite file at {path}")
        return _load_tflite(path, signature)
    if not os.path.isdir(path):
        raise UsageError(f"no exported model at {path}")
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        version = _newest_version(path)
        if version is None:
            raise UsageError(f"{path} holds neither a SavedModel nor numbered versions of one")
        path = version
    return _load_saved_model(path, signature)
