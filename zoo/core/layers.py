"""Small layer helpers the families share."""

from __future__ import annotations

import keras


def dcgan_init() -> keras.initializers.Initializer:
    """Weights drawn from N(0, 0.02), as in Radford et al. (2016)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def batch_norm(synchronized: bool = False, momentum: float = 0.9) -> keras.layers.Layer:
    """Batch norm with DCGAN's settings; per-replica statistics unless `synchronized`."""
    return keras.layers.BatchNormalization(
        momentum=momentum,
        epsilon=1e-5,
        gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.02),
        synchronized=synchronized,
    )


def maybe_spectral_norm(layer: keras.layers.Layer, enabled: bool) -> keras.layers.Layer:
    """Wraps a weight layer in spectral normalisation (Miyato et al., 2018) when enabled."""
    return keras.layers.SpectralNormalization(layer) if enabled else layer
