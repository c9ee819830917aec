"""StackGAN's networks: Stage-I and Stage-II generators and their matching-aware discriminators.

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

import functools
import math
import numbers
import types

import keras

from zoo.core.layers import (
    NearestUpsampling2D,
    SpatialTile,
    batch_norm,
    dcgan_init,
    maybe_spectral_norm,
)
from zoo.errors import UsageError
from zoo.models.stackgan.conditioning import ConditioningAugmentation
from zoo.models.text_family import attribute_head, class_head

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
      all float32. Pass ε ~ N(0, I) to sample (the served noise carries it), zeros for ĉ = μ.

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


def build_matching_discriminator(
    *,
    image_size: int,
    channels: int,
    embedding_dim: int,
    condition_dim: int,
    filters: int,
    spectral_norm: bool = False,
    sync_batchnorm: bool = False,
    num_classes: int = 0,
    attributes: bool = False,
    name: str = "discriminator",
) -> keras.Model:
    """A matching-aware discriminator: ``[images, embedding]`` → float32 logits [B, 1].

    4×4 stride-2 convs down to 4×4 (see the module docstring), φ(t) compressed to
    `condition_dim` and tiled over the map, then one logit per example. With `num_classes`,
    the outputs are ``[logits, class_logits]``: AC-GAN's class head
    (`zoo.models.text_family.class_head`, float32 [B, num_classes]) on the 4×4 image features
    before φ(t) joins them; with `attributes`, the attribute head's logits
    (`text_family.attribute_head`, float32 [B, 2]) from the same features come last.

    Raises:
      UsageError: an unsupported image size or a non-positive size.

    Reference:
      Zhang et al. 2017 (StackGAN, ICCV), sections 3.2-3.3; Reed et al. 2016 (GAN-CLS).
    """
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
    features = x  # text-free: what the class head sees
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
    # The heads read the number of classes and spectral_norm off a config.
    head = types.SimpleNamespace(class_names=range(num_classes), spectral_norm=spectral_norm)
    heads = [class_head(features, head)] if num_classes else []
    if attributes:
        heads.append(attribute_head(features, head))
    return keras.Model([images, embedding], [logits, *heads] if heads else logits, name=name)


# Stage-I's discriminator judges `stage1_size` images (section 3.2), Stage-II's the high side
# with more downsampling blocks (section 3.3, the authors' `STAGE2_D`): one design.
build_stage1_discriminator = functools.partial(
    build_matching_discriminator, name="stage1_discriminator"
)
build_stage2_discriminator = functools.partial(
    build_matching_discriminator, name="stage2_discriminator"
)
