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


@keras.saving.register_keras_serializable(package="zoo")
class ReflectionPadding2D(keras.layers.Layer):
    """Pads the two spatial axes of NHWC images by mirroring them (edge pixel not repeated).

    Keras has no reflection padding layer; `keras.ops.pad(mode="reflect")` lowers to
    `tf.pad(mode="REFLECT")`, which TFLite runs as its builtin MIRROR_PAD.

    Args:
      padding: pixels added on each side of both spatial axes.

    Reference:
      Johnson et al. 2016 and Zhu et al. 2017 pad with reflection in their ResNet generators.
    """

    def __init__(self, padding: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        return keras.ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = 2 * self.padding
        return (
            batch,
            None if height is None else height + grow,
            None if width is None else width + grow,
            channels,
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": self.padding}
