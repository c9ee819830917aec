"""ganzoo: a TensorFlow/Keras model zoo of generative adversarial networks."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from zoo.errors import UsageError


def _prefer_onednn() -> None:
    """Turns TensorFlow's oneDNN CPU kernels on for every x86-64 CPU, before TF is imported.

    TensorFlow enables them by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on others
    (e.g. AMD Zen 3, AVX2 only) it runs its Eigen kernels, which made the DCGAN step 2.1x
    slower there (28.7 against 60.5 images/s, `bench/throughput.py`), and XLA was slower than
    oneDNN on both CPU kinds measured. `TF_ENABLE_ONEDNN_OPTS` set by the user (0 or 1) is
    left alone, and so is a process that imported TensorFlow before the zoo.
    """
    if "TF_ENABLE_ONEDNN_OPTS" in os.environ or "tensorflow" in sys.modules:
        return
    if platform.machine().lower() in ("x86_64", "amd64"):
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"


_prefer_onednn()

__all__ = ["UsageError", "load_generator"]
__version__ = "0.1.0"


def load_generator(path: str, signature: str | None = None) -> Any:
    """Loads an exported generator as a numpy callable (`zoo.exported.ExportedGenerator`).

    `path` is a SavedModel version directory, a TF Serving model directory (`OUT/<name>`,
    newest version), a `.tflite` file, or `preset:NAME`, a built preset (`python -m
    zoo.presets list`; its serving signature on its stored weights, files checked first).
    TensorFlow or LiteRT is imported only when called.

        gen = zoo.load_generator("OUT/dcgan")
        images = gen(zoo.core.latent.sample_z(16, latent_dim=100))  # float32 in [-1, 1]
        gen = zoo.load_generator("preset:gan_ring8")
    """
    if str(path).startswith("preset:"):
        from zoo.presets.store import load_generator as load_preset

        return load_preset(str(path), signature)
    from zoo.exported import load_generator as load

    return load(path, signature)
