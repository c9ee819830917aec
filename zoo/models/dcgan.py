"""DCGAN (Radford, Metz & Chintala, 2016): the all-convolutional GAN and its training recipe.

Strided convolutions in D, fractionally-strided convolutions in G, no pooling and no hidden
dense layer beyond the projection of z; batch norm everywhere except G's output and D's input;
ReLU in G with tanh out, LeakyReLU(0.2) in D; weights from N(0, 0.02); Adam 2e-4, β1 = 0.5.
"""

from __future__ import annotations

import dataclasses

import keras

from zoo import registry
from zoo.core.config import GANConfig
from zoo.core.gan import GAN
from zoo.core.layers import batch_norm, dcgan_init, maybe_spectral_norm
from zoo.errors import UsageError

# Image side -> (side of the first feature map, number of x2 up/down-sampling blocks).
_LAYOUTS = {16: (4, 2), 28: (7, 2), 32: (4, 3), 64: (4, 4), 128: (4, 5)}


@dataclasses.dataclass
class DCGANConfig(GANConfig):
    """The paper's defaults (64 px); `image_size` 28, 32, 64 or 128 (16 for tests) sets the depth.

    Attributes:
      generator_filters: filters of G's last hidden block; each block nearer z doubles them
        (64 gives 512-256-128-64 at 64 px, as pytorch/examples).
      discriminator_filters: filters of D's first block; each deeper block doubles them.
      kernel_size: side of every convolution kernel (4 as pytorch/examples; the paper used 5).
      sync_batchnorm: batch-norm statistics over all replicas instead of per replica.
    """

    latent_dim: int = 100
    image_size: int = 64
    channels: int = 1
    loss: str = "non_saturating"
    generator_filters: int = 64
    discriminator_filters: int = 64
    kernel_size: int = 4
    sync_batchnorm: bool = False


def _layout(image_size: int) -> tuple[int, int]:
    if image_size not in _LAYOUTS:
        raise UsageError(f"dcgan image_size must be one of {sorted(_LAYOUTS)}, got {image_size}")
    return _LAYOUTS[image_size]


@registry.register("dcgan")
class DCGAN(GAN):
    """Deep convolutional GAN; trains with the shared unconditional `train_step`."""

    config_class = DCGANConfig

    def build_generator(self) -> keras.Model:
        c = self.config
        side, blocks = _layout(c.image_size)
        filters = c.generator_filters * 2 ** (blocks - 1)
        z = keras.Input((c.latent_dim,), name="z")
        # The projection of z (a 1x1 -> side x side transposed convolution in pytorch/examples).
        x = keras.layers.Dense(
            side * side * filters, use_bias=False, kernel_initializer=dcgan_init()
        )(z)
        x = keras.layers.Reshape((side, side, filters))(x)
        x = batch_norm(c.sync_batchnorm)(x)
        x = keras.layers.ReLU()(x)
        for _ in range(blocks - 1):
            filters //= 2
            x = keras.layers.Conv2DTranspose(
                filters,
                c.kernel_size,
                strides=2,
                padding="same",
                use_bias=False,
                kernel_initializer=dcgan_init(),
            )(x)
            x = batch_norm(c.sync_batchnorm)(x)
            x = keras.layers.ReLU()(x)
        images = keras.layers.Conv2DTranspose(
            c.channels,
            c.kernel_size,
            strides=2,
            padding="same",
            use_bias=False,
            activation="tanh",
            kernel_initializer=dcgan_init(),
            dtype="float32",
        )(x)
        return keras.Model(z, images, name="generator")

    def build_discriminator(self) -> keras.Model:
        c = self.config
        side, blocks = _layout(c.image_size)
        images = keras.Input((c.image_size, c.image_size, c.channels), name="images")
        x = images
        for block in range(blocks):
            conv = keras.layers.Conv2D(
                c.discriminator_filters * 2**block,
                c.kernel_size,
                strides=2,
                padding="same",
                use_bias=False,
                kernel_initializer=dcgan_init(),
            )
            x = maybe_spectral_norm(conv, c.spectral_norm)(x)
            if block > 0:
                x = batch_norm(c.sync_batchnorm)(x)
            x = keras.layers.LeakyReLU(0.2)(x)
        logits = maybe_spectral_norm(
            keras.layers.Conv2D(
                1,
                side,
                padding="valid",
                use_bias=False,
                kernel_initializer=dcgan_init(),
                dtype="float32",
            ),
            c.spectral_norm,
        )(x)
        logits = keras.layers.Flatten(dtype="float32")(logits)
        return keras.Model(images, logits, name="discriminator")
