"""CycleGAN (Zhu, Park, Isola & Efros, 2017): unpaired image-to-image translation.

Two generators G: A→B and F: B→A (ResNet generators with reflection padding and instance
normalisation) and two 70×70 PatchGAN discriminators, D_A on domain A and D_B on domain B.
The generators minimise least-squares adversarial losses plus λ·(‖F(G(a)) − a‖₁ +
‖G(F(b)) − b‖₁) with λ = 10 and the identity loss 0.5·λ·(‖G(b) − b‖₁ + ‖F(a) − a‖₁); the
discriminators learn from a history of 50 generated images per direction, with their objective
halved; Adam 2e-4, β1 = 0.5, the learning rate constant for the first half of the run and then
decaying linearly to zero. Weights from N(0, 0.02) as the authors' implementation. On the
28 px grayscale datasets the task's defaults are smaller and drop the identity loss, the
jitter and the flips (`zoo.models.cyclegan.task.SMALL_GRAY`, measured there).

Reference:
  Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
  Networks" (ICCV), sections 3, 4 and 7; architecture from Johnson et al. 2016.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo.core import losses, optimizers
from zoo.core.config import GANConfig
from zoo.core.gan import GAN, replica_mean
from zoo.core.schedules import ConstantThenLinearDecay
from zoo.errors import UsageError
from zoo.models.cyclegan.networks import (
    CycleGANConfig,
    build_patch_discriminator,
    build_resnet_generator,
    jitter_size,
)
from zoo.models.cyclegan.pool import ImageHistoryPool

# The paper's L_GAN is the loss without the ½ that the core's least-squares functions carry
# (Mao et al.'s convention): G minimises (D(G(a)) − 1)², D minimises ½[(D(b) − 1)² + D(G(a))²].
_PAPER_SCALE = {"least_squares": 2.0}


def stand_in_images(
    num: int, shape: tuple[int, ...], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`num` smooth random images of each domain, for a model without data (e.g. in tests)."""
    rng = np.random.default_rng(seed)
    full = (2, num, *shape)
    noise = rng.uniform(-1.0, 1.0, full).astype("float32")
    smooth = tf.image.resize(tf.image.resize(noise.reshape(-1, *shape), [4, 4]), shape[:2])
    a, b = np.asarray(smooth, np.float32).reshape(full)
    return a, b


class CycleGAN(GAN):
    """Two generators and two discriminators trained in the paper's order.

    `self.generator` and `self.discriminator` (what the base optimizers are built over) are
    pair models holding G and F, and D_A and D_B: one Adam updates both generators and one both
    discriminators, as the authors' implementation. Under `tf.distribute` the image history
    pools are per replica (see `ImageHistoryPool`).
    """

    config_class = CycleGANConfig
    tracker_names = (
        "d_loss",
        "g_loss",
        "real_logit",
        "fake_logit",
        "d_a_loss",
        "d_b_loss",
        "g_adversarial_loss",
        "f_adversarial_loss",
        "cycle_loss",
        "identity_loss",
    )

    def __init__(self, config: CycleGANConfig, *, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(config, seed=seed, **kwargs)
        self.scale = _PAPER_SCALE.get(config.loss, 1.0)
        if config.identity_weight == 0:
            self.trackers.pop("identity_loss")
        self.pool_a = ImageHistoryPool(config.pool_size, self.data_shape, name="pool_a")
        self.pool_b = ImageHistoryPool(config.pool_size, self.data_shape, name="pool_b")

    @staticmethod
    def discriminator_steps(config: GANConfig) -> int:
        """CycleGAN updates each discriminator once per step (d_steps must be 0 or 1)."""
        if config.d_steps not in (0, 1):
            raise UsageError(f"cyclegan updates D once per step; d_steps={config.d_steps}")
        return 1

    # -- networks ---------------------------------------------------------------------------
    def build_generator(self) -> keras.Model:
        c = self.config
        self.generator_ab = build_resnet_generator(c, "generator_a_to_b")  # G
        self.generator_ba = build_resnet_generator(c, "generator_b_to_a")  # F
        a = keras.Input(self.data_shape, name="a")
        b = keras.Input(self.data_shape, name="b")
        return keras.Model([a, b], [self.generator_ab(a), self.generator_ba(b)], name="generators")

    def build_discriminator(self) -> keras.Model:
        c = self.config
        self.discriminator_a = build_patch_discriminator(c, "discriminator_a")
        self.discriminator_b = build_patch_discriminator(c, "discriminator_b")
        a = keras.Input(self.data_shape, name="a")
        b = keras.Input(self.data_shape, name="b")
        return keras.Model(
            [a, b], [self.discriminator_a(a), self.discriminator_b(b)], name="discriminators"
        )

    def make_optimizer(self, learning_rate: float, train_steps: int) -> keras.optimizers.Optimizer:
        """Adam with the learning rate constant for the first half, then linear decay to 0."""
        c = self.config
        schedule = ConstantThenLinearDecay(learning_rate, train_steps, c.lr_constant_fraction)
        return optimizers.FusedAdam(schedule, beta_1=c.beta_1, beta_2=c.beta_2)

    # -- training ---------------------------------------------------------------------------
    def augment(self, images: tf.Tensor) -> tf.Tensor:
        """Random jitter (resize up, random crop back) and horizontal flip, per image."""
        c = self.config
        if not (c.jitter or c.flip):
            return images
        size = c.image_size
        load = jitter_size(c) if c.jitter else size
        if load != size:
            images = tf.image.resize(images, [load, load])
        noise = self.uniform([tf.shape(images)[0], 3])
        span = load - size + 1
        top = tf.minimum(tf.cast(noise[:, 0] * span, tf.int32), span - 1)
        left = tf.minimum(tf.cast(noise[:, 1] * span, tf.int32), span - 1)
        pixels = tf.range(size)
        rows = top[:, None] + pixels
        cols = left[:, None] + pixels
        if c.flip:
            cols = tf.where(noise[:, 2:] < 0.5, left[:, None] + size - 1 - pixels, cols)
        images = tf.gather(images, rows, axis=1, batch_dims=1)
        return tf.gather(images, cols, axis=2, batch_dims=1)

    def generator_objective(
        self, real_a: tf.Tensor, real_b: tf.Tensor
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
        """L_GAN(G, D_B) + L_GAN(F, D_A) + λ·L_cyc (+ 0.5·λ·L_identity) on one batch.

        Three generator calls instead of the paper's six, each on stacked batches: G on
        (a, b) gives G(a) and the identity term's G(b); F on (b, a, G(a)) gives F(b), F(a) and
        the cycle F(G(a)); then G(F(b)). Instance norm is per example, so this is the same
        function (tested against the six calls), with fewer, larger kernel calls: at batch 1
        a call leaves most of the CPU idle.

        Returns:
          The loss, its parts by tracker name (global-batch means) and (F(b), G(a)).
        """
        c = self.config
        spec = self.loss_spec
        identity_on = c.identity_weight > 0

        def stacked(generator: keras.Model, parts: list[tf.Tensor]) -> list[tf.Tensor]:
            out = generator(tf.concat(parts, 0), training=True)
            return tf.split(out, len(parts), axis=0)

        g_out = stacked(self.generator_ab, [real_a, real_b] if identity_on else [real_a])
        fake_b = g_out[0]
        f_out = stacked(
            self.generator_ba, [real_b, real_a, fake_b] if identity_on else [real_b, fake_b]
        )
        fake_a, reconstructed_a = f_out[0], f_out[-1]
        reconstructed_b = self.generator_ab(fake_a, training=True)
        parts = {
            "g_adversarial_loss": losses.global_batch_mean(
                self.scale
                * spec.generator(self.discriminator_b(self.diff_augment(fake_b), training=True))
            ),
            "f_adversarial_loss": losses.global_batch_mean(
                self.scale
                * spec.generator(self.discriminator_a(self.diff_augment(fake_a), training=True))
            ),
            "cycle_loss": losses.global_batch_mean(
                losses.cycle_consistency_loss(real_a, reconstructed_a)
                + losses.cycle_consistency_loss(real_b, reconstructed_b)
            ),
        }
        loss = (
            parts["g_adversarial_loss"]
            + parts["f_adversarial_loss"]
            + c.cycle_weight * parts["cycle_loss"]
        )
        if identity_on:
            parts["identity_loss"] = losses.global_batch_mean(
                losses.identity_loss(real_b, g_out[1]) + losses.identity_loss(real_a, f_out[1])
            )
            loss += c.identity_weight * c.cycle_weight * parts["identity_loss"]
        return loss, parts, (fake_a, fake_b)

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        real_a, real_b = data
        real_a, real_b = self.augment(real_a), self.augment(real_b)
        batch_size = tf.shape(real_a)[0]

        # 1. Generators: G and F in one update, the discriminators held fixed.
        with tf.GradientTape() as tape:
            g_loss, parts, (fake_a, fake_b) = self.generator_objective(real_a, real_b)
        self.apply_update(self.g_optimizer, tape, g_loss, self.generator.trainable_variables)

        # 2. Discriminators: D_A on real a vs F(b), D_B on real b vs G(a), the fakes drawn from
        #    the image history pools (of this step's pre-update generators); each objective
        #    halved, as the paper does to slow D relative to G. Real and pooled images go
        #    through each D in one call (`joint`: instance norm is per example).
        pooled_a = self.pool_a.query(tf.stop_gradient(fake_a), self.uniform([batch_size, 2]))
        pooled_b = self.pool_b.query(tf.stop_gradient(fake_b), self.uniform([batch_size, 2]))
        with tf.GradientTape() as tape:
            loss_a, logs_a = self.discriminator_loss(
                real_a, pooled_a, lambda x: self.discriminator_a(x, training=True), joint=True
            )
            loss_b, logs_b = self.discriminator_loss(
                real_b, pooled_b, lambda x: self.discriminator_b(x, training=True), joint=True
            )
            d_a_loss = 0.5 * self.scale * loss_a
            d_b_loss = 0.5 * self.scale * loss_b
            d_loss = d_a_loss + d_b_loss
        self.apply_update(self.d_optimizer, tape, d_loss, self.discriminator.trainable_variables)

        # 3. Logging (per replica; `fit` averages the replicas).
        logs = {name: 0.5 * (logs_a[name] + logs_b[name]) for name in logs_a if name != "d_loss"}
        logs.update(
            d_loss=replica_mean(d_loss),
            d_a_loss=replica_mean(d_a_loss),
            d_b_loss=replica_mean(d_b_loss),
            g_loss=replica_mean(g_loss),
            **{name: replica_mean(value) for name, value in parts.items()},
        )
        return self.finish_step(logs)

    # -- sampling -------------------------------------------------------------------------------
    def sample_inputs(self, num: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Stand-in inputs of G without data (smooth random images; the task feeds real ones)."""
        return {"images": stand_in_images(num, self.data_shape, seed)[0]}

    def generate(self, inputs: dict[str, Any]) -> tf.Tensor:
        """G(images): domain A → B (inference mode, float32)."""
        return tf.cast(self.generator_ab(inputs["images"], training=False), tf.float32)

    def checkpoint_items(self) -> dict[str, Any]:
        """The base's items plus both image history pools (buffers and fill counts)."""
        return {**super().checkpoint_items(), "pool_a": self.pool_a, "pool_b": self.pool_b}
