"""Synthetic low-dimensional mixtures for mode-collapse experiments.

Batch `i` is drawn with stateless random ops keyed by (seed, i), so the stream is the
same run to run, and resuming at any step costs nothing.

Reference:
  Metz et al., "Unrolled Generative Adversarial Networks", 2017 (ring of 8 Gaussians,
  radius 2, std 0.02); Srivastava et al., "VEEGAN", 2017 (5x5 grid).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.errors import UsageError

TOY_NAMES = ("ring8", "grid25", "gaussian1d")

RING8_RADIUS = 2.0
MIXTURE_STD = 0.02
GAUSSIAN1D_MEAN = 4.0
GAUSSIAN1D_STD = 0.5


def toy_modes(name: str) -> tuple[np.ndarray, float]:
    """Mode centres and per-coordinate standard deviation of a toy distribution.

    - ring8: 8 Gaussians evenly spaced on a circle of radius 2, std 0.02.
    - grid25: 25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.02.
    - gaussian1d: one Gaussian N(4, 0.5^2) in 1-D.

    Args:
      name: One of `TOY_NAMES`.

    Returns:
      Centres float32 [M, D] and the std.

    Raises:
      UsageError: Unknown name.
    """
    if name == "ring8":
        angles = 2.0 * np.pi * np.arange(8) / 8
        centres = RING8_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        return centres.astype(np.float32), MIXTURE_STD
    if name == "grid25":
        coords = np.arange(-4.0, 5.0, 2.0)
        xs, ys = np.meshgrid(coords, coords, indexing="ij")
        return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32), MIXTURE_STD
    if name == "gaussian1d":
        return np.array([[GAUSSIAN1D_MEAN]], np.float32), GAUSSIAN1D_STD
    raise UsageError(f"unknown toy dataset {name!r}; known: {', '.join(TOY_NAMES)}")


def toy_dataset(
    name: str, *, batch_size: int, seed: int, start_step: int, with_labels: bool
) -> tf.data.Dataset:
    """Infinite batches of `name` starting at batch `start_step`.

    Args:
      name: One of `TOY_NAMES`.
      batch_size: Points per batch.
      seed: Stream seed.
      start_step: Index of the first batch.
      with_labels: Also yield the index of the mode each point was drawn from.

    Returns:
      Batches float32 [B, D], or (points, mode index int32 [B]).
    """
    centres_np, std = toy_modes(name)
    centres = tf.constant(centres_np)
    num_modes, dim = centres_np.shape

    def make_batch(step):
        key = tf.stack([tf.constant(seed, tf.int64), step])
        mode_key, noise_key = tf.unstack(tf.random.experimental.stateless_split(key, num=2))
        modes = tf.random.stateless_uniform(
            [batch_size], mode_key, minval=0, maxval=num_modes, dtype=tf.int32
        )
        noise = tf.random.stateless_normal([batch_size, dim], noise_key, stddev=std)
        points = tf.gather(centres, modes) + noise
        return (points, modes) if with_labels else points

    steps = tf.data.Dataset.range(start_step, np.iinfo(np.int64).max)
    return steps.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE)
