"""StackGAN (Zhang et al. 2017): `conditioning` (conditioning augmentation), `networks`
(Stage-I/II generators and matching-aware discriminators), `model` (the `keras.Model`, its
config and the game of each phase), `task` (phases, warm start, pictures)."""

from zoo.models.stackgan.model import StackGAN, StackGANConfig
from zoo.models.stackgan.networks import (
    build_stage1_discriminator,
    build_stage1_generator,
    build_stage2_discriminator,
    build_stage2_generator,
)
from zoo.models.stackgan.task import StackGANTask

__all__ = [
    "StackGAN",
    "StackGANConfig",
    "StackGANTask",
    "build_stage1_discriminator",
    "build_stage1_generator",
    "build_stage2_discriminator",
    "build_stage2_generator",
]
