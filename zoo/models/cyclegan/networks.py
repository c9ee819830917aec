"""CycleGAN's networks and config: ResNet generators and 70×70 PatchGAN discriminators.

Reference:
  Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
  Networks" (ICCV), section 4 and appendix 7.2; generator from Johnson et al. 2016.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import keras

from zoo.core.config import GANConfig
from zoo.core.layers import (
    InstanceNormalization,
    ReflectionPadding2D,
    dcgan_init,
    maybe_spectral_norm,
)
from zoo.errors import UsageError

# Discriminator: 4×4 kernels, padding 1 (as the authors' PatchGAN).
_D_KERNEL = 4
# G's up-sampling layers (`CycleGANConfig.upsample`).
UPSAMPLING = ("transpose", "resize")


@dataclasses.dataclass
class CycleGANConfig(GANConfig):
    """The paper's defaults (256 px RGB). `latent_dim` is unused: CycleGAN has no z.

    Attributes:
      image_size: side of the square images, a multiple of 4 (256 in the paper).
      channels: image channels of both domains.
      loss: adversarial loss (least squares in the paper; any core loss works).
      generator_filters: filters of G's first layer (c7s1-64); doubled by each down-sampling
        convolution (2× and 4× after the paper's two).
      downsamplings: G's stride-2 convolutions before the residual blocks (and up-samplings
        after them): the paper's 2 (d128, d256, R256 at a quarter of the side), or 1 (d128,
        R128 at half the side: four times the positions at half the width, the same
        multiply-adds per residual block), or 0 (R64 at full size).
      discriminator_filters: filters of D's first layer (C64); doubled per layer up to 8×.
      residual_blocks: residual blocks of each generator; 0 picks the paper's 9 above 128 px
        and 6 at 128 px or less.
      discriminator_layers: stride-2 layers of the PatchGAN (3: C64-C128-C256, then C512 and
        the output at stride 1: 70×70 receptive field). Fewer are used when the image is too
        small for the output to be at least 1×1 (2 layers: 34×34, 1 layer: 16×16).
      cycle_weight: λ of the cycle-consistency loss.
      identity_weight: weight of the identity loss as a fraction of λ (0.5); 0 disables it.
      pool_size: generated images kept per direction for D's updates; 0 disables the pool.
      jitter: random jitter: resize up by `jitter_scale`, then crop back at a random offset.
      jitter_scale: 286/256, the paper's 286 → 256 crops.
      flip: random horizontal flips.
      lr_constant_fraction: share of `--train_steps` at the constant learning rate.
      input_norm: instance normalisation after G's first convolution (c7s1-64), as the paper.
        The convolution is linear and the normalisation removes each channel's per-image
        offset and scale, so G is blind to the input's global contrast: an image x and
        x0 + c·(x − x0) (c > 0, x0 the background, e.g. a shoe 30% fainter on black) give the
        same output, and F(G(a)) cannot bring back how bright a was. False: that convolution
        has a bias and no normalisation (ReLU only), so its output keeps the contrast.
      upsample: G's two up-sampling layers: `transpose` (the paper's 3×3 stride-2 transposed
        convolutions) or `resize` (nearest-neighbour ×2, then a 3×3 convolution on reflection
        padding: Odena et al. 2016's resize-convolution, free of checkerboard artefacts).
    """

    absent_from_old_runs: typing.ClassVar[dict[str, Any]] = {
        **GANConfig.absent_from_old_runs,
        "upsample": "transpose",
        "downsamplings": 2,
        "input_norm": True,
    }

    latent_dim: int = 100
    image_size: int = 256
    channels: int = 3
    loss: str = "least_squares"
    generator_filters: int = 64
    discriminator_filters: int = 64
    downsamplings: int = 2
    residual_blocks: int = 0
    discriminator_layers: int = 3
    cycle_weight: float = 10.0
    identity_weight: float = 0.5
    pool_size: int = 50
    jitter: bool = True
    jitter_scale: float = 286 / 256
    flip: bool = True
    lr_constant_fraction: float = 0.5
    input_norm: bool = True
    upsample: str = "transpose"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size < 8 or self.image_size % 4:
            raise UsageError(
                f"cyclegan image_size must be a multiple of 4 >= 8, got {self.image_size}"
            )
        checks = {
            "downsamplings": self.downsamplings in (0, 1, 2),
            "residual_blocks": self.residual_blocks >= 0,
            "discriminator_layers": self.discriminator_layers >= 1,
            "generator_filters": self.generator_filters >= 1,
            "discriminator_filters": self.discriminator_filters >= 1,
            "cycle_weight": self.cycle_weight >= 0,
            "identity_weight": self.identity_weight >= 0,
            "pool_size": self.pool_size >= 0,
            "jitter_scale": self.jitter_scale >= 1.0,
            "lr_constant_fraction": 0.0 <= self.lr_constant_fraction <= 1.0,
        }
        if self.upsample not in UPSAMPLING:
            raise UsageError(
                f"cyclegan upsample={self.upsample!r}; choose one of {', '.join(UPSAMPLING)}"
            )
        for name, ok in checks.items():
            if not ok:
                raise UsageError(f"cyclegan config {name}={getattr(self, name)} is out of range")


def residual_blocks(config: CycleGANConfig) -> int:
    """Residual blocks per generator: the config's, or 9 above 128 px and 6 at ≤ 128 px."""
    if config.residual_blocks > 0:
        return config.residual_blocks
    return 9 if config.image_size > 128 else 6


def discriminator_layers(config: CycleGANConfig) -> int:
    """Stride-2 layers of the PatchGAN: the config's, fewer if the output would be < 1×1."""

    def conv(side: int, stride: int) -> int:
        return (side + 2 - _D_KERNEL) // stride + 1

    for layers in range(config.discriminator_layers, 0, -1):
        side = config.image_size
        for _ in range(layers):
            side = conv(side, 2)
        if conv(conv(side, 1), 1) >= 1:
            return layers
    raise UsageError(f"cyclegan image_size={config.image_size} is too small for a PatchGAN")


def jitter_size(config: CycleGANConfig) -> int:
    """Side the images are resized to before the random crop (286 for 256)."""
    return max(config.image_size, round(config.image_size * config.jitter_scale))


def _instance_norm() -> keras.layers.Layer:
    # Not GroupNormalization(groups=-1) (the same function): its one MEAN over H × W drifts
    # in float32 TFLite at 256 px; see `InstanceNormalization`.
    return InstanceNormalization(epsilon=1e-5)


def upsample(x: keras.KerasTensor, filters: int, mode: str) -> keras.KerasTensor:
    """Doubles the side of `x` and maps it to `filters` channels (no bias, no normalisation).

    `transpose`: a 3×3 stride-2 transposed convolution (the paper's u-layers); its kernel
    overlaps output pixels unevenly, so even a constant input comes out in a 2-pixel pattern.
    `resize`: nearest-neighbour ×2, reflection padding, a 3×3 convolution; a constant input
    stays constant (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts").
    """
    if mode == "resize":
        x = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
        return keras.layers.Conv2D(filters, 3, use_bias=False, kernel_initializer=dcgan_init())(
            ReflectionPadding2D(1)(x)
        )
    return keras.layers.Conv2DTranspose(
        filters,
        3,
        strides=2,
        padding="same",
        use_bias=False,
        kernel_initializer=dcgan_init(),
    )(x)


def build_resnet_generator(config: CycleGANConfig, name: str) -> keras.Model:
    """c7s1-64, d128, d256, R256 × n, u128, u64, c7s1-C with tanh (float32 output); with
    `config.downsamplings=1`: c7s1-64, d128, R128 × n, u64, c7s1-C.

    The u-layers are transposed convolutions or resize-convolutions (`config.upsample`).
    Reflection padding before the 7×7 and 3×3 convolutions that keep the size, instance
    normalisation after every convolution but the last (and but the first with
    `config.input_norm=False`); output shape = input shape.
    """
    c = config
    f = c.generator_filters
    images = keras.Input((c.image_size, c.image_size, c.channels), name="images")

    def conv(x, filters, kernel, strides=1, bias=False):
        return keras.layers.Conv2D(
            filters, kernel, strides=strides, use_bias=bias, kernel_initializer=dcgan_init()
        )(x)

    def norm_relu(x):
        return keras.layers.ReLU()(_instance_norm()(x))

    if c.input_norm:  # c7s1-64
        x = norm_relu(conv(ReflectionPadding2D(3)(images), f, 7))
    else:
        x = keras.layers.ReLU()(conv(ReflectionPadding2D(3)(images), f, 7, bias=True))
    widths = [f * 2**k for k in range(1, c.downsamplings + 1)]
    for filters in widths:  # d128, d256
        x = norm_relu(conv(keras.layers.ZeroPadding2D(1)(x), filters, 3, strides=2))
    width = f * 2**c.downsamplings
    for _ in range(residual_blocks(c)):  # R256
        y = norm_relu(conv(ReflectionPadding2D(1)(x), width, 3))
        y = _instance_norm()(conv(ReflectionPadding2D(1)(y), width, 3))
        x = keras.layers.Add()([x, y])
    for filters in [w // 2 for w in reversed(widths)]:  # u128, u64
        x = norm_relu(upsample(x, filters, c.upsample))
    outputs = keras.layers.Conv2D(  # c7s1-C
        c.channels,
        7,
        activation="tanh",
        kernel_initializer=dcgan_init(),
        dtype="float32",
    )(ReflectionPadding2D(3)(x))
    return keras.Model(images, outputs, name=name)


def build_patch_discriminator(config: CycleGANConfig, name: str) -> keras.Model:
    """PatchGAN: C64-C128-C256 at stride 2, C512 at stride 1, then a 1-channel map (float32).

    No normalisation on the first layer, instance normalisation on the others, LeakyReLU 0.2.
    At 256 px the output is 30×30 logits, each seeing a 70×70 patch; smaller images use fewer
    stride-2 layers (see `discriminator_layers`).
    """
    c = config
    images = keras.Input((c.image_size, c.image_size, c.channels), name="images")

    def conv(x, filters, strides, dtype=None):
        layer = keras.layers.Conv2D(
            filters,
            _D_KERNEL,
            strides=strides,
            use_bias=dtype is not None,
            kernel_initializer=dcgan_init(),
            dtype=dtype,
        )
        return maybe_spectral_norm(layer, c.spectral_norm)(keras.layers.ZeroPadding2D(1)(x))

    layers = discriminator_layers(c)
    x = images
    for i in range(layers + 1):  # the last one at stride 1
        x = conv(x, c.discriminator_filters * min(2**i, 8), 2 if i < layers else 1)
        if i > 0:
            x = _instance_norm()(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    logits = conv(x, 1, 1, dtype="float32")
    return keras.Model(images, logits, name=name)
