"""DCGAN's convolutional trunks, shared by every family built on them (DCGAN, cGAN, GAN-INT-CLS).

The conditional families differ from DCGAN only in what enters the generator's projection
(z joined to a label or text embedding) and in how the discriminator's last feature map meets
the condition, so the trunks are written once here and each family file adds its conditioning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from zoo.core.config import GANConfig
from zoo.core.layers import batch_norm, dcgan_init, maybe_spectral_norm
from zoo.errors import UsageError

# Image side -> (side of the first feature map, number of x2 up/down-sampling blocks).
DCGAN_LAYOUTS = {16: (4, 2), 28: (7, 2), 32: (4, 3), 64: (4, 4), 128: (4, 5)}


@dataclasses.dataclass
class ConvNetConfig(GANConfig):
    """Fields of the DCGAN-style networks (Radford et al., 2016).

    Attributes:
      generator_filters: filters of G's last hidden block; each block nearer z doubles them
        (64 gives 512-256-128-64 at 64 px, as pytorch/examples).
      discriminator_filters: filters of D's first block; each deeper block doubles them.
      kernel_size: side of every convolution kernel (4 as pytorch/examples; the paper used 5).
      sync_batchnorm: batch-norm statistics over all replicas instead of per replica.
    """

    generator_filters: int = 64
    discriminator_filters: int = 64
    kernel_size: int = 4
    sync_batchnorm: bool = False


def dcgan_layout(image_size: int) -> tuple[int, int]:
    """(side of the smallest feature map, number of x2 blocks) for an image side.

    Raises:
      UsageError: for a side without a layout.
    """
    if image_size not in DCGAN_LAYOUTS:
        raise UsageError(f"image_size must be one of {sorted(DCGAN_LAYOUTS)}, got {image_size}")
    return DCGAN_LAYOUTS[image_size]


def dcgan_generator_trunk(
    x: keras.KerasTensor,
    config: ConvNetConfig,
    norm: Callable[[keras.KerasTensor], keras.KerasTensor] | None = None,
    full_resolution_block: bool = False,
) -> keras.KerasTensor:
    """Projection of a latent vector and the fractionally-strided blocks up to tanh images.

    Args:
      x: the generator's input vector [B, D] (z, or z joined to a condition).
      config: the network's fields.
      norm: applies each hidden block's normalisation to a tensor; default DCGAN's batch norm
        (a conditional family passes a class-conditional one).
      full_resolution_block: the last up-sampling is a hidden block too (batch norm, ReLU,
        `generator_filters` filters at full resolution), followed by a 3x3 stride-1
        convolution to the image; every block is then twice as wide (at 28 px G is
        256-128-64 from 7 x 7, the layout of `../shared/ref/recipe_dcgan.py`). Off: the
        pytorch/examples layout, whose last up-sampling makes the image.

    Returns:
      Images [B, image_size, image_size, channels] in [-1, 1], float32.
    """
    c = config
    if norm is None:

        def norm(t: keras.KerasTensor) -> keras.KerasTensor:
            return batch_norm(c.sync_batchnorm)(t)

    side, blocks = dcgan_layout(c.image_size)
    hidden_blocks = blocks if full_resolution_block else blocks - 1
    filters = c.generator_filters * 2**hidden_blocks
    # The projection of z (a 1x1 -> side x side transposed convolution in pytorch/examples).
    x = keras.layers.Dense(side * side * filters, use_bias=False, kernel_initializer=dcgan_init())(
        x
    )
    x = keras.layers.Reshape((side, side, filters))(x)
    x = norm(x)
    x = keras.layers.ReLU()(x)
    for _ in range(hidden_blocks):
        filters //= 2
        x = keras.layers.Conv2DTranspose(
            filters,
            c.kernel_size,
            strides=2,
            padding="same",
            use_bias=False,
            kernel_initializer=dcgan_init(),
        )(x)
        x = norm(x)
        x = keras.layers.ReLU()(x)
    if full_resolution_block:
        return keras.layers.Conv2D(
            c.channels,
            3,
            padding="same",
            activation="tanh",
            kernel_initializer=dcgan_init(),
            dtype="float32",
        )(x)
    return keras.layers.Conv2DTranspose(
        c.channels,
        c.kernel_size,
        strides=2,
        padding="same",
        use_bias=False,
        activation="tanh",
        kernel_initializer=dcgan_init(),
        dtype="float32",
    )(x)


def dcgan_discriminator_trunk(
    images: keras.KerasTensor, config: ConvNetConfig, extra_block: bool = False
) -> keras.KerasTensor:
    """Strided convolutions from images down to the smallest feature map (after LeakyReLU).

    Batch norm in every block but the first, as the paper. Returns [B, side, side, F].
    `extra_block` adds one more strided block (3x3 kernel, twice the filters) after the
    layout's: at 28 px D is 64-128-256 down to 4 x 4, as `../shared/ref/recipe_dcgan.py`.
    """
    c = config
    _, blocks = dcgan_layout(c.image_size)
    x = images
    for block in range(blocks + int(extra_block)):
        conv = keras.layers.Conv2D(
            c.discriminator_filters * 2**block,
            c.kernel_size if block < blocks else 3,
            strides=2,
            padding="same",
            use_bias=False,
            kernel_initializer=dcgan_init(),
        )
        x = maybe_spectral_norm(conv, c.spectral_norm)(x)
        if block > 0:
            x = batch_norm(c.sync_batchnorm)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    return x


def dcgan_logits(features: keras.KerasTensor, config: ConvNetConfig) -> keras.KerasTensor:
    """One logit per example from the last feature map: a side x side 'valid' convolution."""
    side = features.shape[1]
    logits = maybe_spectral_norm(
        keras.layers.Conv2D(
            1,
            side,
            padding="valid",
            use_bias=False,
            kernel_initializer=dcgan_init(),
            dtype="float32",
        ),
        config.spectral_norm,
    )(features)
    return keras.layers.Flatten(dtype="float32")(logits)
