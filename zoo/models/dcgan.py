"""DCGAN (Radford, Metz & Chintala, 2016): the all-convolutional GAN and its training recipe.

Strided convolutions in D, fractionally-strided convolutions in G, no pooling and no hidden
dense layer beyond the projection of z; batch norm everywhere except G's output and D's input;
ReLU in G with tanh out, LeakyReLU(0.2) in D; weights from N(0, 0.02); Adam 2e-4, β1 = 0.5.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

import keras

from zoo import registry
from zoo.core.gan import GAN
from zoo.core.networks import (
    ConvNetConfig,
    dcgan_discriminator_trunk,
    dcgan_generator_trunk,
    dcgan_logits,
)
from zoo.data import IDX_NAMES
from zoo.errors import UsageError
from zoo.models.task import Task

ARCHITECTURES = ("auto", "paper", "recipe")


@dataclasses.dataclass
class DCGANConfig(ConvNetConfig):
    """The paper's defaults (64 px); `image_size` 28, 32, 64 or 128 (16 for tests) sets the depth.

    The network fields (filters, kernel size, synchronised batch norm) are
    `zoo.core.networks.ConvNetConfig`'s.

    Attributes:
      architecture: `paper` -- the pytorch/examples layout (G's last up-sampling makes the
        image, D ends in a side x side convolution); `recipe` -- one more hidden block in G,
        the last at full resolution before a 3x3 convolution to the image, and one more
        strided block in D (at 28 px G 256-128-64 from 7 x 7 and D 64-128-256, as
        `../shared/ref/recipe_dcgan.py`); `auto` -- `recipe` at 28 px, `paper` at every
        other size (the default: at 28 px, 3000 x 64, FD 6.34 against the paper layout's
        15.98, README; 64 px, the throughput bench, is unchanged).
    """

    latent_dim: int = 100
    image_size: int = 64
    channels: int = 1
    loss: str = "non_saturating"
    architecture: str = "auto"

    absent_from_old_runs: typing.ClassVar[dict[str, Any]] = {
        **ConvNetConfig.absent_from_old_runs,
        "architecture": "paper",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.architecture not in ARCHITECTURES:
            raise UsageError(
                f"architecture must be one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}"
            )

    @property
    def recipe_layout(self) -> bool:
        """Whether the networks take the `recipe` layout (`auto` resolved by image size)."""
        if self.architecture == "auto":
            return self.image_size == 28
        return self.architecture == "recipe"


class DCGAN(GAN):
    """Deep convolutional GAN; trains with the shared unconditional `train_step`."""

    config_class = DCGANConfig

    def build_generator(self) -> keras.Model:
        z = keras.Input((self.config.latent_dim,), name="z")
        images = dcgan_generator_trunk(
            z, self.config, full_resolution_block=self.config.recipe_layout
        )
        return keras.Model(z, images, name="generator")

    def build_discriminator(self) -> keras.Model:
        c = self.config
        images = keras.Input((c.image_size, c.image_size, c.channels), name="images")
        features = dcgan_discriminator_trunk(images, c, extra_block=c.recipe_layout)
        logits = dcgan_logits(features, c)
        return keras.Model(images, logits, name="discriminator")


# The defaults on 28 px grayscale data (Fashion-MNIST, MNIST), measured with
# `python bench/quality.py --model=dcgan` (3000 x 64, seed 0, FD in the zoo classifier's
# features on 10 000 samples; README, Evaluation, has the table); the paper's recipe (Adam
# 2e-4, no penalty, no average) gave FD 5.75, the 40-line reference 5.21:
# - image_size=28: the data's own size, where `architecture=auto` takes the reference's layout.
# - g_learning_rate = d_learning_rate = 1.6e-3: eight times the paper's. With R1: FD 5.70 at
#   2e-4 (no average); with the average 3.64 at 4e-4 (R1 every step), 3.13 at 8e-4, 2.81 at
#   1.6e-3, 3.65 at 3.2e-3. Two time-scales (D 4e-4, G 1e-4, R1) were worse (FD 9.40).
# - beta_1=0.0, beta_2=0.99 (StyleGAN2's, where R1 keeps D in check): FD 2.42 against 2.81
#   with the paper's 0.5, 0.999 (raw G 3.52 against 3.02: the average gains more without
#   momentum).
# - r1_gamma=0.1, r1_interval=16: R1 on real data, lazily (StyleGAN2), for a sixteenth of its
#   cost: FD 3.13 lazy, 3.14 every step (8e-4), which takes the 64 px throughput bench from
#   99.5 to 63.8 images/s (`--steps=16`; lazy 97.8-106.7, the paper's config 100.0-110.8).
# - ema_decay=0.99: G's average scores FD 2.81 where its last step scores 3.02 (at 8e-4: 3.13
#   against 3.64; 0.98 gave 3.12, 0.995 3.40, and 0.999 was worse than none with the paper's
#   learning rate, 6.89 against 6.34).
IDX_DEFAULTS = dict(
    image_size=28,
    g_learning_rate=1.6e-3,
    d_learning_rate=1.6e-3,
    beta_1=0.0,
    beta_2=0.99,
    r1_gamma=0.1,
    r1_interval=16,
    ema_decay=0.99,
)


@registry.register("dcgan")
class DCGANTask(Task):
    """DCGAN's run side: the shared defaults (the run's images, a z-only signature)."""

    model_class = DCGAN
    # The paper's config (64 px, Adam 2e-4), but the measured 28 px recipe on the 28 px
    # grayscale IDX datasets (Fashion-MNIST, MNIST).
    dataset_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        name: IDX_DEFAULTS for name in IDX_NAMES
    }
    # The budget of its quality figures there (`bench/quality.py --model=dcgan`: 3000 × 64).
    dataset_train_steps: ClassVar[dict[str, int]] = {name: 3000 for name in IDX_NAMES}
