"""StackGAN (Zhang et al., 2017): conditioning augmentation and two stages trained in two phases.

Text φ(t) (captions through the shared text encoder, or precomputed embeddings; see
`zoo.core.text_conditioning`) reaches each generator through conditioning augmentation
(`zoo.core.conditioning`): a Gaussian N(μ(φ), σ²(φ)) whose sample ĉ = μ + σ·ε joins the
generator's input, with λ·KL(N(μ, σ²) ‖ N(0, I)) (λ = `kl_weight` = 1) added to G's loss.

- Stage-I: ĉ ⊕ z → a low-resolution image (`stage1_size`); a matching-aware discriminator at
  that resolution (GAN-CLS pairs, Reed et al. 2016).
- Stage-II: encodes the Stage-I image, joins its own ĉ, residual blocks, upsamples ×2 or ×4
  to `image_size` and corrects defects; a matching-aware discriminator at high resolution.

Training runs in two phases in one run directory, chosen by `stage` (`--stage`): phase 1
trains Stage-I on images resized to `stage1_size`; phase 2 loads Stage-I (and the text
encoder) from phase 1's latest checkpoint, freezes it (`trainable=False`, inference mode) and
trains Stage-II on Stage-I's output at `image_size`. The model always holds all four networks,
so both phases' checkpoints have one layout; `zoo.train` keeps each phase's state apart.

Serving never draws ε: exported graphs pass ε = 0, so ĉ = μ (deterministic, builtins-only
TFLite). After phase 2 the export returns `images` (Stage-II) and `stage1_images`; after phase
1 only, `images` (Stage-I) from the same inputs.

Network layouts follow the authors' PyTorch code (StackGAN-v1) with sizes from the arguments:

- Stage-I G: [ĉ, z] → dense → 4×4 → upsampling blocks (nearest ×2, 3×3 conv, BN, ReLU) →
  3×3 conv → tanh. ``filters`` are the last block's; each block nearer z doubles them (64 at
  64 px gives 1024 channels at 4×4, the authors' ``gf_dim · 8`` with ``gf_dim = 128``).
- Stage-II G: low image → 3×3 conv + ReLU (``filters``) → two 4×4 stride-2 convs + BN + ReLU
  (low/4 side, ``4·filters``) → joined with ĉ tiled over the map → 3×3 conv + BN + ReLU →
  residual blocks → upsampling blocks (halving filters) to the high side → 3×3 conv → tanh.
- Discriminators: 4×4 stride-2 convs (BN on all but the first, LeakyReLU 0.2) down to 4×4,
  doubling ``filters`` per block; beyond 8·filters, 3×3 convs bring the channels back to
  8·filters (the PyTorch Stage-II D at 256 px). φ(t) is compressed (dense to
  ``condition_dim``, LeakyReLU 0.2), tiled 4×4 and stacked on the features; a 1×1 conv + BN +
  LeakyReLU and a 4×4 'valid' conv give one logit per example, as the authors' TF code.

Every generator takes ε as an input, never draws it. Every network's last layer computes in
float32; the rest follows the global dtype policy.

Reference:
  Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with Stacked
  Generative Adversarial Networks", ICCV (section 3 and the supplementary architecture).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo import registry
from zoo.core import losses
from zoo.core.conditioning import ConditioningAugmentation, kl_divergence
from zoo.core.config import GANConfig
from zoo.core.gan import GAN, replica_mean
from zoo.core.layers import SpatialTile, batch_norm, dcgan_init, maybe_spectral_norm
from zoo.core.text_conditioning import ATTRIBUTE_COLUMNS, TextConditionedGAN, TextConfig
from zoo.errors import UsageError

# Sides an image may have (a power of two, down or up to the 4×4 map).
STAGE1_SIZES = (16, 32, 64, 128, 256)
# Stage-II's low side: encoded to low/4 (>= 4) before joining ĉ.
STAGE2_LOW_SIZES = (16, 32, 64, 128)
STAGE2_SCALES = (2, 4)
_SIDE = 4  # the smallest feature map (the paper's 4×4)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise UsageError(f"stackgan {name} must be a positive integer, got {value!r}")


def _check_size(what: str, size: int, allowed: tuple[int, ...]) -> None:
    if size not in allowed:
        raise UsageError(
            f"stackgan {what} must be one of {', '.join(map(str, allowed))}, got {size!r}"
        )


def _conv(filters: int, kernel: int, strides: int = 1, **kwargs) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=kwargs.pop("padding", "same"),
        use_bias=kwargs.pop("use_bias", False),
        kernel_initializer=dcgan_init(),
        **kwargs,
    )


@keras.saving.register_keras_serializable(package="zoo")
class NearestUpsampling2D(keras.layers.Layer):
    """Nearest-neighbour upsampling of NHWC maps by an integer factor, as reshape and tile.

    The same function as `keras.layers.UpSampling2D(interpolation="nearest")`, whose
    `ops.repeat` loses the static height and width in a TF graph with a dynamic batch, so the
    TFLite converter can no longer lower the next convolution to a builtin. Here the spatial
    sides stay static (TFLite: RESHAPE, TILE, RESHAPE), and the gradient (a sum) is
    deterministic on GPU, unlike that of a nearest-neighbour resize.

    Args:
      factor: how many times each pixel is repeated along height and along width.
    """

    def __init__(self, factor: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, inputs):
        _, height, width, channels = inputs.shape
        f = self.factor
        x = keras.ops.reshape(inputs, (-1, height, 1, width, 1, channels))
        x = keras.ops.tile(x, (1, 1, f, 1, f, 1))
        return keras.ops.reshape(x, (-1, height * f, width * f, channels))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, height * self.factor, width * self.factor, channels)

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor}


def _up_block(x: keras.KerasTensor, filters: int, sync_batchnorm: bool) -> keras.KerasTensor:
    """Nearest-neighbour ×2, 3×3 conv, BN, ReLU (StackGAN's `upBlock`)."""
    x = NearestUpsampling2D(2)(x)
    x = _conv(filters, 3)(x)
    x = batch_norm(sync_batchnorm)(x)
    return keras.layers.ReLU()(x)


def _residual_block(x: keras.KerasTensor, sync_batchnorm: bool) -> keras.KerasTensor:
    """conv3×3-BN-ReLU-conv3×3-BN, added to the input, then ReLU (StackGAN's `ResBlock`)."""
    filters = x.shape[-1]
    y = _conv(filters, 3)(x)
    y = batch_norm(sync_batchnorm)(y)
    y = keras.layers.ReLU()(y)
    y = _conv(filters, 3)(y)
    y = batch_norm(sync_batchnorm)(y)
    return keras.layers.ReLU()(keras.layers.Add()([x, y]))


def _to_images(x: keras.KerasTensor, channels: int) -> keras.KerasTensor:
    """3×3 conv to the image channels and tanh, in float32."""
    return _conv(channels, 3, activation="tanh", dtype="float32", name="to_images")(x)


def _generator_inputs(
    first: keras.KerasTensor, embedding_dim: int, condition_dim: int
) -> tuple[list[keras.KerasTensor], keras.KerasTensor, keras.KerasTensor, keras.KerasTensor]:
    embedding = keras.Input((embedding_dim,), name="embedding")
    epsilon = keras.Input((condition_dim,), name="epsilon")
    c_hat, mu, log_var = ConditioningAugmentation(condition_dim, name="conditioning_augmentation")(
        [embedding, epsilon]
    )
    return [first, embedding, epsilon], c_hat, mu, log_var


def build_stage1_generator(
    *,
    latent_dim: int,
    condition_dim: int,
    embedding_dim: int,
    image_size: int,
    channels: int,
    filters: int,
    sync_batchnorm: bool = False,
    name: str = "stage1_generator",
) -> keras.Model:
    """Stage-I generator: (z, φ(t), ε) → low-resolution images and the CA's μ, log σ².

    Args:
      latent_dim: size of z (100 in the paper).
      condition_dim: size N_c of ĉ (128 in the paper).
      embedding_dim: size of φ(t).
      image_size: side of the images, one of 16, 32, 64, 128, 256 (64 in the paper).
      channels: image channels.
      filters: filters of the last upsampling block; each block nearer z doubles them
        (64 at 64 px reproduces the paper's 1024 channels at 4×4).
      sync_batchnorm: batch-norm statistics over all replicas instead of per replica.
      name: the model's name.

    Returns:
      A functional model with inputs ``[z, embedding, epsilon]`` (float32 [B, latent_dim],
      [B, embedding_dim], [B, condition_dim]; a dict keyed by those names works too) and
      outputs ``{"images": [B, S, S, channels] in [-1, 1], "mu": [B, N_c], "log_var": [B, N_c]}``,
      all float32. Pass ε ~ N(0, I) to train, zeros to serve (ĉ = μ).

    Raises:
      UsageError: an unsupported image size or a non-positive size.

    Reference:
      Zhang et al. 2017 (StackGAN, ICCV), section 3.2 and the authors' `STAGE1_G`.
    """
    _check_positive(
        latent_dim=latent_dim,
        condition_dim=condition_dim,
        embedding_dim=embedding_dim,
        channels=channels,
        filters=filters,
    )
    _check_size("Stage-I image_size", image_size, STAGE1_SIZES)
    blocks = int(math.log2(image_size // _SIDE))
    z = keras.Input((latent_dim,), name="z")
    inputs, c_hat, mu, log_var = _generator_inputs(z, embedding_dim, condition_dim)
    x = keras.layers.Concatenate()([c_hat, z])
    width = filters * 2**blocks
    x = keras.layers.Dense(_SIDE * _SIDE * width, use_bias=False, kernel_initializer=dcgan_init())(
        x
    )
    x = keras.layers.Reshape((_SIDE, _SIDE, width))(x)
    x = batch_norm(sync_batchnorm)(x)
    x = keras.layers.ReLU()(x)
    for _ in range(blocks):
        width //= 2
        x = _up_block(x, width, sync_batchnorm)
    outputs = {"images": _to_images(x, channels), "mu": mu, "log_var": log_var}
    return keras.Model(inputs, outputs, name=name)


def build_stage2_generator(
    *,
    low_size: int,
    high_size: int,
    channels: int,
    condition_dim: int,
    embedding_dim: int,
    filters: int,
    residual_blocks: int = 2,
    sync_batchnorm: bool = False,
    name: str = "stage2_generator",
) -> keras.Model:
    """Stage-II generator: (Stage-I images, φ(t), ε) → high-resolution images, μ, log σ².

    Args:
      low_size: side of the Stage-I images, one of 16, 32, 64, 128 (64 in the paper).
      high_size: side of the output, 2 or 4 times `low_size` (256 in the paper).
      channels: image channels.
      condition_dim: size N_c of this stage's own ĉ.
      embedding_dim: size of φ(t).
      filters: filters of the encoder's first conv (the paper's ``gf_dim``, 128); the encoded
        map and the residual blocks have 4·filters, each upsampling block halves them.
      residual_blocks: residual blocks after joining ĉ (2 in the authors' Stage-II configs).
      sync_batchnorm: batch-norm statistics over all replicas instead of per replica.
      name: the model's name.

    Returns:
      A functional model with inputs ``[low_images, embedding, epsilon]`` (float32
      [B, low, low, channels] in [-1, 1], [B, embedding_dim], [B, condition_dim]; a dict keyed
      by those names works too) and outputs ``{"images": [B, high, high, channels] in [-1, 1],
      "mu": [B, N_c], "log_var": [B, N_c]}``, all float32.

    Raises:
      UsageError: an unsupported pair of sizes (e.g. 32 → 96) or a non-positive size.

    Reference:
      Zhang et al. 2017 (StackGAN, ICCV), section 3.3 and the authors' `STAGE2_G`.
    """
    _check_positive(
        channels=channels, condition_dim=condition_dim, embedding_dim=embedding_dim, filters=filters
    )
    if not isinstance(residual_blocks, numbers.Integral) or residual_blocks < 0:
        raise UsageError(f"stackgan residual_blocks must be >= 0, got {residual_blocks!r}")
    _check_size("Stage-II low_size", low_size, STAGE2_LOW_SIZES)
    if not isinstance(high_size, numbers.Integral) or high_size not in [
        low_size * s for s in STAGE2_SCALES
    ]:
        raise UsageError(
            f"stackgan Stage-II high_size must be 2 or 4 times low_size={low_size}, "
            f"got {high_size!r}"
        )
    low_images = keras.Input((low_size, low_size, channels), name="low_images")
    inputs, c_hat, mu, log_var = _generator_inputs(low_images, embedding_dim, condition_dim)
    # 1. Encode the Stage-I image to low/4 × low/4.
    x = keras.layers.ReLU()(_conv(filters, 3)(low_images))
    for width in (2 * filters, 4 * filters):
        x = _conv(width, 4, strides=2)(x)
        x = batch_norm(sync_batchnorm)(x)
        x = keras.layers.ReLU()(x)
    # 2. Join ĉ replicated over the map.
    side = low_size // 4
    x = keras.layers.Concatenate()([SpatialTile(side, side)(c_hat), x])
    x = _conv(4 * filters, 3)(x)
    x = batch_norm(sync_batchnorm)(x)
    x = keras.layers.ReLU()(x)
    # 3. Residual blocks, then upsample to the high side.
    for _ in range(residual_blocks):
        x = _residual_block(x, sync_batchnorm)
    width = 4 * filters
    for _ in range(int(math.log2(high_size // side))):
        width = max(1, width // 2)
        x = _up_block(x, width, sync_batchnorm)
    outputs = {"images": _to_images(x, channels), "mu": mu, "log_var": log_var}
    return keras.Model(inputs, outputs, name=name)


def _matching_discriminator(
    *,
    image_size: int,
    channels: int,
    embedding_dim: int,
    condition_dim: int,
    filters: int,
    spectral_norm: bool,
    sync_batchnorm: bool,
    name: str,
) -> keras.Model:
    _check_positive(
        channels=channels, embedding_dim=embedding_dim, condition_dim=condition_dim, filters=filters
    )
    _check_size("discriminator image_size", image_size, STAGE1_SIZES)
    images = keras.Input((image_size, image_size, channels), name="images")
    embedding = keras.Input((embedding_dim,), name="embedding")
    x = images
    for block in range(int(math.log2(image_size // _SIDE))):
        x = maybe_spectral_norm(_conv(filters * 2**block, 4, strides=2), spectral_norm)(x)
        if block > 0:
            x = batch_norm(sync_batchnorm)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    # Beyond 8·filters (128 px and up), 3×3 convs halve the channels back to 8·filters.
    while x.shape[-1] > 8 * filters:
        x = maybe_spectral_norm(_conv(x.shape[-1] // 2, 3), spectral_norm)(x)
        x = batch_norm(sync_batchnorm)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    condition = maybe_spectral_norm(
        keras.layers.Dense(condition_dim, kernel_initializer=dcgan_init()), spectral_norm
    )(embedding)
    condition = keras.layers.LeakyReLU(0.2)(condition)
    x = keras.layers.Concatenate()([x, SpatialTile(_SIDE, _SIDE)(condition)])
    x = maybe_spectral_norm(_conv(x.shape[-1] - condition_dim, 1), spectral_norm)(x)
    x = batch_norm(sync_batchnorm)(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    logits = maybe_spectral_norm(
        _conv(1, _SIDE, padding="valid", use_bias=True, dtype="float32", name="logits"),
        spectral_norm,
    )(x)
    logits = keras.layers.Flatten(dtype="float32")(logits)
    return keras.Model([images, embedding], logits, name=name)


def build_stage1_discriminator(
    *,
    image_size: int,
    channels: int,
    embedding_dim: int,
    condition_dim: int,
    filters: int,
    spectral_norm: bool = False,
    sync_batchnorm: bool = False,
    name: str = "stage1_discriminator",
) -> keras.Model:
    """Stage-I's matching-aware discriminator: (images, φ(t)) → one logit per example.

    Args:
      image_size: side of the images, one of 16, 32, 64, 128, 256 (Stage-I's low side).
      channels: image channels.
      embedding_dim: size of φ(t).
      condition_dim: size φ(t) is compressed to before meeting the 4×4 features (128).
      filters: filters of the first conv; each deeper block doubles them (64 in the paper).
      spectral_norm: wrap every weight layer in spectral normalisation (Miyato et al. 2018).
      sync_batchnorm: batch-norm statistics over all replicas instead of per replica.
      name: the model's name.

    Returns:
      A functional model with inputs ``[images, embedding]`` (float32 [B, S, S, channels] in
      [-1, 1] and [B, embedding_dim]) and float32 logits [B, 1]. Which (image, text) pairs
      are real is the caller's: (real, matching) real; (fake, matching) and (real,
      mismatching) fake.

    Raises:
      UsageError: an unsupported image size or a non-positive size.

    Reference:
      Zhang et al. 2017 (StackGAN, ICCV), section 3.2; Reed et al. 2016 (matching-aware D).
    """
    return _matching_discriminator(
        image_size=image_size,
        channels=channels,
        embedding_dim=embedding_dim,
        condition_dim=condition_dim,
        filters=filters,
        spectral_norm=spectral_norm,
        sync_batchnorm=sync_batchnorm,
        name=name,
    )


def build_stage2_discriminator(
    *,
    image_size: int,
    channels: int,
    embedding_dim: int,
    condition_dim: int,
    filters: int,
    spectral_norm: bool = False,
    sync_batchnorm: bool = False,
    name: str = "stage2_discriminator",
) -> keras.Model:
    """Stage-II's matching-aware discriminator at the high resolution.

    The same design as :func:`build_stage1_discriminator` with more downsampling blocks
    (log2(image_size / 4)); at 128 px and up 3×3 convs bring the channels back to 8·filters,
    as the authors' `STAGE2_D` (64 → 2048 → 512 filters at 256 px).

    Args:
      image_size: the high side, one of 16, 32, 64, 128, 256.
      channels, embedding_dim, condition_dim, filters, spectral_norm, sync_batchnorm, name: as
        :func:`build_stage1_discriminator`.

    Returns:
      A functional model ``[images, embedding]`` → float32 logits [B, 1].

    Raises:
      UsageError: an unsupported image size or a non-positive size.

    Reference:
      Zhang et al. 2017 (StackGAN, ICCV), section 3.3.
    """
    return _matching_discriminator(
        image_size=image_size,
        channels=channels,
        embedding_dim=embedding_dim,
        condition_dim=condition_dim,
        filters=filters,
        spectral_norm=spectral_norm,
        sync_batchnorm=sync_batchnorm,
        name=name,
    )


# -- the family ------------------------------------------------------------------------------
@dataclasses.dataclass
class StackGANConfig(TextConfig, GANConfig):
    """StackGAN at 16 → 32 px for Fashion-MNIST (the paper: 64 → 256); the text side
    (`TextConfig`) from the data.

    Attributes:
      image_size: Stage-II's (high) side: 2 or 4 times `stage1_size`.
      stage1_size: Stage-I's (low) side: 16, 32, 64 or 128.
      stage: the phase a run trains: 1 (Stage-I) or 2 (Stage-II on a frozen Stage-I); set by
        `--stage`, not compared when a run directory moves from phase 1 to phase 2.
      kl_weight: λ of the conditioning augmentation's KL term in G's loss (1 in the paper).
      stage1_generator_filters: filters of Stage-I G's last block (doubled per block nearer
        z; the paper: 64 at 64 px).
      stage1_discriminator_filters: Stage-I D's first filters (the paper: 64).
      stage2_generator_filters: Stage-II G's first encoder filters (the paper: 128).
      stage2_discriminator_filters: Stage-II D's first filters (the paper: 64).
      residual_blocks: Stage-II G's residual blocks (2 in the authors' configs).
      sync_batchnorm: batch-norm statistics over all replicas instead of per replica.
      (and `TextConfig`'s: matching_aware, condition_dim = N_c (128), the text encoder's.)

    The default widths (32) are a CPU budget; the paper's are given above.
    """

    latent_dim: int = 100
    image_size: int = 32
    stage1_size: int = 16
    channels: int = 1
    loss: str = "non_saturating"
    stage: int = 1
    kl_weight: float = 1.0
    stage1_generator_filters: int = 32
    stage1_discriminator_filters: int = 32
    stage2_generator_filters: int = 32
    stage2_discriminator_filters: int = 32
    residual_blocks: int = 2
    sync_batchnorm: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stage not in StackGAN.stages:
            raise UsageError(f"stackgan stage must be 1 or 2, got {self.stage!r}")
        if not self.kl_weight >= 0:
            raise UsageError(f"kl_weight must be >= 0, got {self.kl_weight}")
        if self.image_size not in [self.stage1_size * s for s in STAGE2_SCALES]:
            raise UsageError(
                f"stackgan image_size must be 2 or 4 times stage1_size={self.stage1_size}, "
                f"got {self.image_size}"
            )


def _stage1_checkpoints(model_dir: str) -> str:
    from zoo.train import phase_dir

    return os.path.join(phase_dir(model_dir, 1), "checkpoints")


@registry.register("stackgan")
class StackGAN(TextConditionedGAN):
    """StackGAN: `generator`/`discriminator` are Stage-I's, `stage2_generator`/
    `stage2_discriminator` Stage-II's; `config.stage` says which pair trains."""

    config_class = StackGANConfig
    tracker_names = ("d_loss", "g_loss", "kl_loss", "real_logit", "fake_logit")
    stages = (1, 2)
    default_stage = 1

    def __init__(self, config: StackGANConfig, *, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(config, seed=seed, **kwargs)
        c = config
        self.stage2_generator = build_stage2_generator(
            low_size=c.stage1_size,
            high_size=c.image_size,
            channels=c.channels,
            condition_dim=c.condition_dim,
            embedding_dim=c.embedding_dim,
            filters=c.stage2_generator_filters,
            residual_blocks=c.residual_blocks,
            sync_batchnorm=c.sync_batchnorm,
        )
        self.stage2_discriminator = build_stage2_discriminator(
            image_size=c.image_size,
            channels=c.channels,
            embedding_dim=c.embedding_dim,
            condition_dim=c.condition_dim,
            filters=c.stage2_discriminator_filters,
            spectral_norm=c.spectral_norm,
            sync_batchnorm=c.sync_batchnorm,
        )
        # Generator steps of the phase-1 checkpoint Stage-I came from (0 in phase 1): with the
        # phase's own steps, the total that versions an export.
        self.stage1_steps = self.add_weight(
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            name="stage1_steps",
        )
        if c.stage == 2:  # Stage-I is frozen: no optimizer sees it, its BN runs in inference
            self.generator.trainable = False
            self.discriminator.trainable = False

    # -- networks ---------------------------------------------------------------------------
    def build_generator(self) -> keras.Model:
        c = self.config
        return build_stage1_generator(
            latent_dim=c.latent_dim,
            condition_dim=c.condition_dim,
            embedding_dim=c.embedding_dim,
            image_size=c.stage1_size,
            channels=c.channels,
            filters=c.stage1_generator_filters,
            sync_batchnorm=c.sync_batchnorm,
        )

    def build_discriminator(self) -> keras.Model:
        c = self.config
        return build_stage1_discriminator(
            image_size=c.stage1_size,
            channels=c.channels,
            embedding_dim=c.embedding_dim,
            condition_dim=c.condition_dim,
            filters=c.stage1_discriminator_filters,
            spectral_norm=c.spectral_norm,
            sync_batchnorm=c.sync_batchnorm,
        )

    @property
    def stage1_generator(self) -> keras.Model:
        return self.generator

    @property
    def stage1_discriminator(self) -> keras.Model:
        return self.discriminator

    @property
    def steps_before_phase(self) -> int:
        """Generator steps of earlier phases (phase 1's, in phase 2): `zoo.train.load_trained`
        adds them to the phase's own steps, so an export after phase 2 gets a newer version."""
        return int(self.stage1_steps.numpy()) if self.config.stage == 2 else 0

    @property
    def trained_generator(self) -> keras.Model:
        """The generator the run's phase trains."""
        return self.generator if self.config.stage == 1 else self.stage2_generator

    @property
    def trained_discriminator(self) -> keras.Model:
        """The discriminator the run's phase trains."""
        return self.discriminator if self.config.stage == 1 else self.stage2_discriminator

    @property
    def generator_variables(self) -> list[tf.Variable]:
        return list(self.trained_generator.trainable_variables)

    @property
    def discriminator_variables(self) -> list[tf.Variable]:
        return [*self.trained_discriminator.trainable_variables, *self.text_encoder_variables]

    @property
    def data_shape(self) -> tuple[int, ...]:
        c = self.config
        return (*[self.training_image_size(c)] * 2, c.channels)

    def discriminate(
        self, x: tf.Tensor, training: bool = True, condition: tf.Tensor | None = None
    ) -> tf.Tensor:
        if condition is None:
            raise ValueError("stackgan's discriminators need φ(t) (condition=)")
        return self.trained_discriminator([x, condition], training=training)

    # -- run preparation and data -----------------------------------------------------------
    @classmethod
    def training_image_size(cls, config: StackGANConfig) -> int:
        """Phase 1 trains on images resized to `stage1_size`, phase 2 at `image_size`."""
        return config.stage1_size if config.stage == 1 else config.image_size

    @classmethod
    def prepare_run(cls, rc: Any, config: StackGANConfig) -> StackGANConfig:
        """Phase 2 needs phase 1's checkpoint (checked before any data or encoder work)."""
        if config.stage == 2:
            directory = _stage1_checkpoints(rc.model_dir)
            if not tf.train.latest_checkpoint(directory):
                raise UsageError(
                    f"--stage=2 needs a Stage-I checkpoint in {directory}; train --stage=1 "
                    "with the same --model_dir first"
                )
        return super().prepare_run(rc, config)

    def warm_start(self, rc: Any) -> None:
        """The text encoder; in phase 2 also Stage-I G (and the text encoder as phase 1 left
        it) from phase 1's latest checkpoint. The phase's own checkpoint overrides on resume."""
        super().warm_start(rc)
        if self.config.stage != 2:
            return
        path = tf.train.latest_checkpoint(_stage1_checkpoints(rc.model_dir))
        parts = {"generator": self.generator}
        if self.text_encoder is not None:
            parts["text_encoder"] = self.text_encoder
        try:
            status = tf.train.Checkpoint(model=tf.train.Checkpoint(**parts)).restore(path)
            status.assert_existing_objects_matched().expect_partial()
        except (tf.errors.OpError, AssertionError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            raise UsageError(f"cannot load Stage-I from {path}: {first[:200]}") from err
        self.stage1_steps.assign(int(path.rsplit("-", 1)[-1]))

    # -- the game ---------------------------------------------------------------------------
    def epsilon(self, batch_size: tf.Tensor | int) -> tf.Tensor:
        """Conditioning augmentation's ε ~ N(0, I) from the model's seed generator."""
        return self.normal([batch_size, self.config.condition_dim])

    def stage_fake(self, z: tf.Tensor, h: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(images, μ, log σ²) of the trained stage's G in training mode on sampled ε; in phase
        2 Stage-I (frozen, inference mode, its own sampled ε) draws the low image."""
        batch_size = tf.shape(z)[0]
        first = self.generator([z, h, self.epsilon(batch_size)], training=self.config.stage == 1)
        if self.config.stage == 1:
            return first["images"], first["mu"], first["log_var"]
        low = tf.stop_gradient(first["images"])
        second = self.stage2_generator([low, h, self.epsilon(batch_size)], training=True)
        return second["images"], second["mu"], second["log_var"]

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        parts = self.split_for_d_steps(data)
        batch_size = tf.shape(parts[0][0])[0]
        for images, text, mismatched in parts[:-1]:
            fake, _, _ = self.stage_fake(self.noise(batch_size), self.encode(text))
            self.text_discriminator_update(images, fake, text, mismatched)
        images, text, mismatched = parts[-1]
        h = tf.stop_gradient(self.encode(text))
        # 1. G's forward pass (with its CA) on G's tape; 2. D's matching-aware update;
        # 3. G's adversarial loss through the updated D plus λ·KL of the CA's Gaussian.
        tape = tf.GradientTape()
        with tape:
            fake, mu, log_var = self.stage_fake(self.noise(batch_size), h)
        logs = self.text_discriminator_update(images, fake, text, mismatched)
        with tape:
            fake_logits = self.discriminate(fake, True, condition=h)
            g_loss = losses.global_batch_mean(self.loss_spec.generator(fake_logits))
            kl = losses.global_batch_mean(kl_divergence(mu, log_var))
            g_loss += self.config.kl_weight * kl
        self.apply_update(self.g_optimizer, tape, g_loss, self.generator_variables)
        logs["g_loss"] = replica_mean(g_loss)
        logs["kl_loss"] = replica_mean(kl)
        return self.finish_step(logs)

    # -- sampling and export ----------------------------------------------------------------
    def images_from(self, z: tf.Tensor, h: tf.Tensor) -> dict[str, tf.Tensor]:
        """Served outputs with ε = 0 (ĉ = μ): `images` of the last trained stage; after phase 2
        also `stage1_images`."""
        epsilon = tf.zeros([tf.shape(z)[0], self.config.condition_dim], tf.float32)
        low = tf.cast(self.generator([z, h, epsilon], training=False)["images"], tf.float32)
        if self.config.stage == 1:
            return {"images": low}
        high = self.stage2_generator([low, h, epsilon], training=False)["images"]
        return {"images": tf.cast(high, tf.float32), "stage1_images": low}

    def generate_stages(self, inputs: dict[str, Any]) -> dict[str, tf.Tensor]:
        """`images_from` for inputs like `sample_inputs` gives (captions or `embedding`)."""
        z = tf.convert_to_tensor(inputs["z"], tf.float32)
        return self.images_from(z, self.embedding_of(inputs))

    def generate(self, inputs: dict[str, Any]) -> tf.Tensor:
        return self.generate_stages(inputs)["images"]

    def _stage_tiles(self, inputs: dict[str, Any]) -> tuple[np.ndarray, int]:
        """Tiles of a picture: after phase 2 each Stage-I image (upsampled by repetition)
        beside its Stage-II image; and how many tiles one sample takes."""
        out = {k: np.asarray(v) for k, v in self.generate_stages(inputs).items()}
        if "stage1_images" not in out:
            return out["images"], 1
        factor = self.config.image_size // self.config.stage1_size
        low = out["stage1_images"].repeat(factor, axis=1).repeat(factor, axis=2)
        return np.stack([low, out["images"]], axis=1).reshape(-1, *out["images"].shape[1:]), 2

    def sample_picture(
        self, num: int, rc: Any = None, centres: np.ndarray | None = None
    ) -> np.ndarray:
        """Captions: one row per class, columns "a X", "a dark X", ... on one z per column;
        after phase 2 each column is a pair (Stage-I, Stage-II) of the same caption and z.
        Embeddings: a grid of samples (pairs after phase 2)."""
        from zoo.core.images import image_grid, label_rows

        del centres
        if self.tokenizer is None:
            inputs = GAN.sample_inputs(self, num, seed=0)
            inputs["embedding"] = self.data_embeddings(num, rc)
            tiles, per_sample = self._stage_tiles(inputs)
            return image_grid(tiles, columns=8 * per_sample)
        inputs, classes = self.caption_grid_inputs()
        tiles, per_sample = self._stage_tiles(inputs)
        grid = image_grid(tiles, columns=len(ATTRIBUTE_COLUMNS) * per_sample)
        return label_rows(grid, classes, rows=len(classes))
