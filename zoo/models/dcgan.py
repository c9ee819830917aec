"""DCGAN (Radford, Metz & Chintala, 2016): the all-convolutional GAN and its training recipe.

Strided convolutions in D, fractionally-strided convolutions in G, no pooling and no hidden
dense layer beyond the projection of z; batch norm everywhere except G's output and D's input;
ReLU in G with tanh out, LeakyReLU(0.2) in D; weights from N(0, 0.02); Adam 2e-4, β1 = 0.5.
"""

from __future__ import annotations

import dataclasses

import keras

from zoo import registry
from zoo.core.gan import GAN
from zoo.core.networks import (
    ConvNetConfig,
    dcgan_discriminator_trunk,
    dcgan_generator_trunk,
    dcgan_logits,
)
from zoo.models.task import Task


@dataclasses.dataclass
class DCGANConfig(ConvNetConfig):
    """The paper's defaults (64 px); `image_size` 28, 32, 64 or 128 (16 for tests) sets the depth.

    The network fields (filters, kernel size, synchronised batch norm) are
    `zoo.core.networks.ConvNetConfig`'s.
    """

    latent_dim: int = 100
    image_size: int = 64
    channels: int = 1
    loss: str = "non_saturating"


class DCGAN(GAN):
    """Deep convolutional GAN; trains with the shared unconditional `train_step`."""

    config_class = DCGANConfig

    def build_generator(self) -> keras.Model:
        z = keras.Input((self.config.latent_dim,), name="z")
        return keras.Model(z, dcgan_generator_trunk(z, self.config), name="generator")

    def build_discriminator(self) -> keras.Model:
        c = self.config
        images = keras.Input((c.image_size, c.image_size, c.channels), name="images")
        logits = dcgan_logits(dcgan_discriminator_trunk(images, c), c)
        return keras.Model(images, logits, name="discriminator")


@registry.register("dcgan")
class DCGANTask(Task):
    """DCGAN's run side: the shared defaults (the run's images, a z-only signature)."""

    model_class = DCGAN
