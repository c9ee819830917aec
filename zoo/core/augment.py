"""Differentiable augmentation of the discriminator's inputs (DiffAugment, Zhao et al. 2020).

The same random transform T is applied to real and generated images before D, in D's step
and in G's, so D never sees an un-augmented image and G's gradient flows through T. The
policies, applied in the paper's order color → translation → cutout:

- `color`: brightness x + b, b ~ U[-0.5, 0.5); saturation (x − mean_c) · s + mean_c,
  s ~ U[0, 2) (a no-op on one channel); contrast (x − mean) · k + mean, k ~ U[0.5, 1.5),
  the mean over the whole image.
- `translation`: a shift of up to 1/8 of the side (rounded) along each axis, per example,
  the uncovered border filled with zeros.
- `cutout`: a square of half the side (rounded) set to zero, centred at a random place (it
  may be clipped by the border), per example.

The constants are those of the authors' code, whose images are in [-1, 1] as the zoo's are
(StyleGAN2's and BigGAN-CIFAR's data ranges), so nothing is rescaled: zero fill is the
mid-grey of that range, and the brightness shift is a quarter of the range at most.

Every transform is a function of the images and of a matrix of U[0, 1) numbers with one row
per example (`uniforms`), drawn by the caller from the model's seed generator: stateless, so
exact resume and XLA work. Pairing real and fake means passing both the same matrix.

Reference:
  Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training" (NeurIPS); the transforms follow `DiffAugment_tf.py` of the authors' repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from zoo.core.config import AUGMENT_POLICIES

# U[0, 1) numbers per example each policy reads from its slice of `uniforms`.
UNIFORMS_PER_POLICY = {"color": 3, "translation": 2, "cutout": 2}
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def num_uniforms(policies: Sequence[str]) -> int:
    """Columns of the `uniforms` matrix that `apply` reads for these policies."""
    return sum(UNIFORMS_PER_POLICY[p] for p in policies)


def _per_example(values: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    return tf.reshape(tf.cast(values, x.dtype), [-1, 1, 1, 1])


def brightness(x: tf.Tensor, delta: tf.Tensor) -> tf.Tensor:
    """x + delta, one delta [B] per example."""
    return x + _per_example(delta, x)


def saturation(x: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Each pixel's channels scaled by factor [B] around their mean (identity on one channel)."""
    if x.shape[-1] == 1:
        return x
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    return (x - mean) * _per_example(factor, x) + mean


def contrast(x: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Each image scaled by factor [B] around its mean over pixels and channels."""
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * _per_example(factor, x) + mean


def max_shift(side: int) -> int:
    """The largest translation along an axis of this length: 1/8 of it, rounded."""
    return int(side * TRANSLATION_RATIO + 0.5)


def _shift_axis(x: tf.Tensor, shift: tf.Tensor, axis: int) -> tf.Tensor:
    """out[i] = x[i + shift] along `axis` (1 or 2) where that is inside, else 0."""
    side = x.shape[axis]
    pad = [[0, 0]] * 4
    pad[axis] = [1, 1]
    padded = tf.pad(x, pad)
    index = tf.clip_by_value(tf.range(side)[None, :] + shift[:, None] + 1, 0, side + 1)
    return tf.gather(padded, index, axis=axis, batch_dims=1)


def translate(x: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """Moves each image by (-rows, -cols) pixels [B] int32 (out[i, j] = x[i + rows, j + cols]),
    zero-filled; a gather, so the gradient flows back to the moved pixels."""
    return _shift_axis(_shift_axis(x, rows, 1), cols, 2)


def cutout_size(side: int) -> int:
    """Side of the cut-out square: half the image's, rounded."""
    return int(side * CUTOUT_RATIO + 0.5)


def cutout(x: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """Zeroes, in each image, the square of side `cutout_size` whose top-left corner is at
    (rows − size // 2, cols − size // 2) [B] int32, clipped by the border (a mask product)."""
    height, width = x.shape[1], x.shape[2]
    size_h, size_w = cutout_size(height), cutout_size(width)
    top = rows[:, None] - size_h // 2
    left = cols[:, None] - size_w // 2
    r = tf.range(height)[None, :]
    c = tf.range(width)[None, :]
    in_rows = (r >= top) & (r < top + size_h)
    in_cols = (c >= left) & (c < left + size_w)
    inside = in_rows[:, :, None] & in_cols[:, None, :]
    return x * tf.cast(~inside, x.dtype)[..., None]


def _integers(u: tf.Tensor, low: int, count: int) -> tf.Tensor:
    """Integers uniform on [low, low + count) from U[0, 1) numbers."""
    k = tf.minimum(tf.cast(tf.floor(u * count), tf.int32), count - 1)
    return low + k


def apply(x: tf.Tensor, uniforms: tf.Tensor, policies: Sequence[str]) -> tf.Tensor:
    """T(x): the policies, in the paper's order, with parameters read from `uniforms`.

    Args:
      x: images [B, H, W, C] (static H, W, C).
      uniforms: U[0, 1) numbers [B, num_uniforms(policies)]; the same matrix gives the same
        transform (real and fake batches of a D step share one).
      policies: names from `AUGMENT_POLICIES`.

    Returns:
      The augmented images, same shape and dtype.
    """
    if not policies:
        return x
    if x.shape.rank != 4:
        raise ValueError(f"DiffAugment needs images [B, H, W, C], got shape {x.shape}")
    with tf.name_scope("diff_augment"):
        column = 0

        def take(n: int) -> list[tf.Tensor]:
            nonlocal column
            out = [uniforms[:, column + i] for i in range(n)]
            column += n
            return out

        for policy in AUGMENT_POLICIES:  # the paper's order, whatever order was asked
            if policy not in policies:
                continue
            if policy == "color":
                b, s, k = take(3)
                x = brightness(x, b - 0.5)
                x = saturation(x, s * 2.0)
                x = contrast(x, k + 0.5)
            elif policy == "translation":
                u_rows, u_cols = take(2)
                sh, sw = max_shift(x.shape[1]), max_shift(x.shape[2])
                rows = _integers(u_rows, -sh, 2 * sh + 1)
                x = translate(x, rows, _integers(u_cols, -sw, 2 * sw + 1))
            elif policy == "cutout":
                u_rows, u_cols = take(2)
                # The authors' range of centres: [0, side + 1 - size % 2).
                ch, cw = cutout_size(x.shape[1]), cutout_size(x.shape[2])
                rows = _integers(u_rows, 0, x.shape[1] + 1 - ch % 2)
                cols = _integers(u_cols, 0, x.shape[2] + 1 - cw % 2)
                x = cutout(x, rows, cols)
        return x


def apply_to_input(inputs: Any, uniforms: tf.Tensor, policies: Sequence[str]) -> Any:
    """`apply` on a discriminator input: an image batch, or a structure whose first leaf is
    the image batch (e.g. [images, condition]); the other leaves pass unchanged."""
    leaves = tf.nest.flatten(inputs)
    leaves[0] = apply(leaves[0], uniforms, policies)
    return tf.nest.pack_sequence_as(inputs, leaves)
