"""CycleGAN (Zhu et al. 2017): `networks` (config, ResNet G, PatchGAN D), `model` (the
`keras.Model` and its game), `pool` (the image history), `task` (data, pictures, exports,
translation metrics)."""

from zoo.models.cyclegan.model import CycleGAN
from zoo.models.cyclegan.networks import CycleGANConfig
from zoo.models.cyclegan.task import CycleGANTask

__all__ = ["CycleGAN", "CycleGANConfig", "CycleGANTask"]
