"""Vanilla GAN: MLP generator and discriminator (Goodfellow et al., 2014), optional PacGAN.

Works on images (flattened for the discriminator, reshaped back for pictures) and on the 2-D
and 1-D toys. With `pack = m` the discriminator judges m samples concatenated, which
penalises a generator that collapses onto a few modes (Lin et al., 2018, "PacGAN").
"""

from __future__ import annotations

import dataclasses
import math

import keras
import tensorflow as tf

from zoo import registry
from zoo.core.config import GANConfig
from zoo.core.gan import GAN
from zoo.core.layers import maybe_spectral_norm
from zoo.errors import UsageError


@dataclasses.dataclass
class VanillaGANConfig(GANConfig):
    """Defaults of the MNIST experiment: z of 100, one hidden layer of 128 in each player.

    Attributes:
      generator_units: hidden layer sizes of G (ReLU).
      discriminator_units: hidden layer sizes of D (LeakyReLU 0.2).
      data_dim: 0 for images (image_size x image_size x channels); the vector size for toys.
      pack: PacGAN packing degree m (1 = off); the batch size must be a multiple of it.
    """

    latent_dim: int = 100
    image_size: int = 28
    channels: int = 1
    loss: str = "non_saturating"
    generator_units: tuple[int, ...] = (128,)
    discriminator_units: tuple[int, ...] = (128,)
    data_dim: int = 0
    pack: int = 1


@registry.register("gan")
class VanillaGAN(GAN):
    """MLP GAN; `train_step` is the shared unconditional game with D seeing packed samples."""

    config_class = VanillaGANConfig
    supports_vectors = True

    @property
    def data_shape(self) -> tuple[int, ...]:
        c = self.config
        return (c.data_dim,) if c.data_dim else (c.image_size, c.image_size, c.channels)

    def build_generator(self) -> keras.Model:
        c = self.config
        z = keras.Input((c.latent_dim,), name="z")
        x = z
        for units in c.generator_units:
            x = keras.layers.Dense(units, activation="relu")(x)
        # Images live in [-1, 1]; toy data do not, so their output is linear.
        activation = None if c.data_dim else "tanh"
        x = keras.layers.Dense(math.prod(self.data_shape), activation=activation, dtype="float32")(
            x
        )
        x = keras.layers.Reshape(self.data_shape, dtype="float32")(x)
        return keras.Model(z, x, name="generator")

    def build_discriminator(self) -> keras.Model:
        c = self.config
        if c.pack < 1:
            raise UsageError(f"pack must be >= 1, got {c.pack}")
        x_in = keras.Input((c.pack * math.prod(self.data_shape),), name="x")
        x = x_in
        for units in c.discriminator_units:
            x = maybe_spectral_norm(keras.layers.Dense(units), c.spectral_norm)(x)
            x = keras.layers.LeakyReLU(0.2)(x)
        logits = maybe_spectral_norm(keras.layers.Dense(1, dtype="float32"), c.spectral_norm)(x)
        return keras.Model(x_in, logits, name="discriminator")

    def discriminate(self, x: tf.Tensor, training: bool = True) -> tf.Tensor:
        """Flattens and packs `pack` consecutive samples into one discriminator input."""
        width = self.config.pack * math.prod(self.data_shape)
        return self.discriminator(tf.reshape(x, [-1, width]), training=training)
