"""ganzoo: a TensorFlow/Keras model zoo of generative adversarial networks."""

from __future__ import annotations

from typing import Any

from zoo.errors import UsageError

__all__ = ["UsageError", "load_generator"]
__version__ = "0.1.0"


def load_generator(path: str, signature: str | None = None) -> Any:
    """Loads an exported generator as a numpy callable (`zoo.exported.ExportedGenerator`).

    `path` is a SavedModel version directory, a TF Serving model directory (`OUT/<name>`,
    newest version) or a `.tflite` file. TensorFlow or LiteRT is imported only when called.

        gen = zoo.load_generator("OUT/dcgan")
        images = gen(zoo.core.latent.sample_z(16, latent_dim=100))  # float32 in [-1, 1]
    """
    from zoo.exported import load_generator as load

    return load(path, signature)
