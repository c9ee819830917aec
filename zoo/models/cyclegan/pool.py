"""A history of generated images for discriminator updates (Shrivastava et al., 2017)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf


class ImageHistoryPool(keras.layers.Layer):
    """A fixed-size buffer of past generated images that the discriminator also sees.

    The rule of the CycleGAN reference implementation, applied to each image of a batch in
    order: while the pool is not full, the new image is stored and returned; once it is full,
    with probability 1/2 a uniformly chosen stored image is returned and replaced by the new
    one, otherwise the new image is returned. A pool of size 0 returns its input.

    State lives in two non-trainable variables of the layer, `buffer` (float32
    [pool_size, H, W, C]) and `count` (images stored so far, int64), so a checkpoint of the
    model that owns the pool (or of the pool itself) saves and restores it exactly. `query`
    runs eagerly or inside `tf.function` (XLA-compiled too); its randomness is an explicit
    argument (draw it from the model's seed generator), so the pool is deterministic under a
    seed.

    Under `tf.distribute` each replica has its own pool of `pool_size` images: the variables
    are ON_READ (per-replica copies, written by their replica only). A checkpoint stores the
    first replica's pool and a restore gives that pool to every replica, so a multi-replica
    run resumes with a copy of replica 0's history in every replica (exact on one device).

    Args:
      pool_size: images kept (50 in CycleGAN); 0 disables the pool.
      image_shape: (H, W, C) of one image.

    Reference:
      Shrivastava et al. 2017, "Learning from Simulated and Unsupervised Images through
      Adversarial Training", section 2.3; Zhu et al. 2017 (CycleGAN), section 4.
    """

    def __init__(self, pool_size: int, image_shape: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = int(pool_size)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.buffer: keras.Variable | None = None
        self.count: keras.Variable | None = None
        if self.pool_size:
            self.buffer = keras.Variable(
                initializer="zeros",
                shape=(self.pool_size, *self.image_shape),
                dtype="float32",
                trainable=False,
                autocast=False,
                synchronization="on_read",
                aggregation="only_first_replica",
                name="buffer",
            )
            self.count = keras.Variable(
                initializer="zeros",
                shape=(),
                dtype="int64",
                trainable=False,
                autocast=False,
                synchronization="on_read",
                aggregation="only_first_replica",
                name="count",
            )
        self.built = True

    def query(self, images: tf.Tensor, uniform: tf.Tensor) -> tf.Tensor:
        """Stores a batch in the pool and returns the images to show the discriminator.

        Args:
          images: generated images [B, H, W, C] (cast to float32; pass them through
            `tf.stop_gradient`, the pool is not differentiable).
          uniform: U[0, 1) float32 [B, 2]: per image, the coin (< 0.5 swaps with a stored
            image once the pool is full) and the choice of the stored image.

        Returns:
          float32 [B, H, W, C]: for each image either itself or an older image from the pool.
        """
        images = tf.cast(images, tf.float32)
        if not self.pool_size:
            return images
        size = tf.constant(self.pool_size, tf.int64)
        batch = tf.shape(images)[0]
        uniform = tf.cast(uniform, tf.float32)

        def body(i, buffer, count, outputs):
            image = images[i]
            not_full = count < size
            chosen = tf.minimum(tf.cast(uniform[i, 1] * self.pool_size, tf.int64), size - 1)
            swap = tf.logical_and(tf.logical_not(not_full), uniform[i, 0] < 0.5)
            slot = tf.where(not_full, count, chosen)
            # tf.gather, not buffer[chosen]: XLA takes a slice's begin as a compile-time
            # constant, so an XLA-compiled step would be recompiled for every value.
            out = tf.where(swap, tf.gather(buffer, chosen), image)
            write = tf.logical_or(not_full, swap)
            kept = tf.where(write, image, tf.gather(buffer, slot))
            buffer = tf.tensor_scatter_nd_update(buffer, [[slot]], kept[None])
            count = count + tf.cast(not_full, tf.int64)
            return i + 1, buffer, count, outputs.write(i, out)

        outputs = tf.TensorArray(tf.float32, size=batch, element_shape=images.shape[1:])
        _, buffer, count, outputs = tf.while_loop(
            lambda i, *_: i < batch,
            body,
            (
                tf.constant(0),
                tf.convert_to_tensor(self.buffer.value),
                tf.convert_to_tensor(self.count.value),
                outputs,
            ),
        )
        self.buffer.assign(buffer)
        self.count.assign(count)
        result = outputs.stack()
        result.set_shape(images.shape)
        return result

    def call(self, images: tf.Tensor, uniform: tf.Tensor) -> tf.Tensor:
        return self.query(images, uniform)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "image_shape": list(self.image_shape),
        }
