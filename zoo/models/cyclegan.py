"""CycleGAN (Zhu, Park, Isola & Efros, 2017): unpaired image-to-image translation.

Two generators G: A→B and F: B→A (ResNet generators with reflection padding and instance
normalisation) and two 70×70 PatchGAN discriminators, D_A on domain A and D_B on domain B.
The generators minimise least-squares adversarial losses plus λ·(‖F(G(a)) − a‖₁ +
‖G(F(b)) − b‖₁) with λ = 10 and the identity loss 0.5·λ·(‖G(b) − b‖₁ + ‖F(a) − a‖₁); the
discriminators learn from a history of 50 generated images per direction, with their objective
halved; Adam 2e-4, β1 = 0.5, the learning rate constant for the first half of the run and then
decaying linearly to zero. Weights from N(0, 0.02) as the authors' implementation.

Reference:
  Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
  Networks" (ICCV), sections 3, 4 and 7; architecture from Johnson et al. 2016.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from zoo import registry
from zoo.core import losses
from zoo.core.config import GANConfig
from zoo.core.gan import GAN, replica_mean
from zoo.core.layers import (
    InstanceNormalization,
    ReflectionPadding2D,
    dcgan_init,
    maybe_spectral_norm,
)
from zoo.core.pool import ImageHistoryPool
from zoo.core.schedules import ConstantThenLinearDecay
from zoo.errors import UsageError

# The paper's L_GAN is the loss without the ½ that the core's least-squares functions carry
# (Mao et al.'s convention): G minimises (D(G(a)) − 1)², D minimises ½[(D(b) − 1)² + D(G(a))²].
_PAPER_SCALE = {"least_squares": 2.0}

# Discriminator: 4×4 kernels, padding 1 (as the authors' PatchGAN).
_D_KERNEL = 4


@dataclasses.dataclass
class CycleGANConfig(GANConfig):
    """The paper's defaults (256 px RGB). `latent_dim` is unused: CycleGAN has no z.

    Attributes:
      image_size: side of the square images, a multiple of 4 (256 in the paper).
      channels: image channels of both domains.
      loss: adversarial loss (least squares in the paper; any core loss works).
      generator_filters: filters of G's first layer (c7s1-64); 2× and 4× after the two
        down-sampling convolutions.
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
    """

    latent_dim: int = 100
    image_size: int = 256
    channels: int = 3
    loss: str = "least_squares"
    generator_filters: int = 64
    discriminator_filters: int = 64
    residual_blocks: int = 0
    discriminator_layers: int = 3
    cycle_weight: float = 10.0
    identity_weight: float = 0.5
    pool_size: int = 50
    jitter: bool = True
    jitter_scale: float = 286 / 256
    flip: bool = True
    lr_constant_fraction: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size < 8 or self.image_size % 4:
            raise UsageError(
                f"cyclegan image_size must be a multiple of 4 >= 8, got {self.image_size}"
            )
        checks = {
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


def cycle_consistency_loss(real: tf.Tensor, reconstructed: tf.Tensor) -> tf.Tensor:
    """Per-example L1 cycle loss ‖F(G(a)) − a‖₁ (mean over pixels), float32 [B].

    Reference:
      Zhu et al. 2017, eq. 2.
    """
    diff = tf.abs(tf.cast(reconstructed, tf.float32) - tf.cast(real, tf.float32))
    return tf.reduce_mean(tf.reshape(diff, [tf.shape(diff)[0], -1]), axis=1)


def identity_loss(real: tf.Tensor, mapped: tf.Tensor) -> tf.Tensor:
    """Per-example L1 identity loss ‖G(b) − b‖₁ (mean over pixels), float32 [B].

    Reference:
      Zhu et al. 2017, section 5.2 (from Taigman et al. 2017): keeps colour composition.
    """
    return cycle_consistency_loss(real, mapped)


def _instance_norm() -> keras.layers.Layer:
    # Not GroupNormalization(groups=-1) (the same function): its one MEAN over H × W drifts
    # in float32 TFLite at 256 px; see `InstanceNormalization`.
    return InstanceNormalization(epsilon=1e-5)


def build_resnet_generator(config: CycleGANConfig, name: str) -> keras.Model:
    """c7s1-64, d128, d256, R256 × n, u128, u64, c7s1-C with tanh (float32 output).

    Reflection padding before the 7×7 and 3×3 convolutions that keep the size, instance
    normalisation after every convolution but the last; output shape = input shape.
    """
    c = config
    f = c.generator_filters
    images = keras.Input((c.image_size, c.image_size, c.channels), name="images")

    def conv(x, filters, kernel, strides=1):
        return keras.layers.Conv2D(
            filters, kernel, strides=strides, use_bias=False, kernel_initializer=dcgan_init()
        )(x)

    def norm_relu(x):
        return keras.layers.ReLU()(_instance_norm()(x))

    x = norm_relu(conv(ReflectionPadding2D(3)(images), f, 7))  # c7s1-64
    for filters in (2 * f, 4 * f):  # d128, d256
        x = norm_relu(conv(keras.layers.ZeroPadding2D(1)(x), filters, 3, strides=2))
    for _ in range(residual_blocks(c)):  # R256
        y = norm_relu(conv(ReflectionPadding2D(1)(x), 4 * f, 3))
        y = _instance_norm()(conv(ReflectionPadding2D(1)(y), 4 * f, 3))
        x = keras.layers.Add()([x, y])
    for filters in (2 * f, f):  # u128, u64
        x = keras.layers.Conv2DTranspose(
            filters,
            3,
            strides=2,
            padding="same",
            use_bias=False,
            kernel_initializer=dcgan_init(),
        )(x)
        x = norm_relu(x)
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


@registry.register("cyclegan")
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
        self._picture_images: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

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
        return keras.optimizers.Adam(schedule, beta_1=c.beta_1, beta_2=c.beta_2)

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

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        c = self.config
        real_a, real_b = data
        real_a, real_b = self.augment(real_a), self.augment(real_b)
        batch_size = tf.shape(real_a)[0]
        spec = self.loss_spec
        logs: dict[str, tf.Tensor] = {}

        # 1. Generators: G and F in one update on L_GAN(G, D_B) + L_GAN(F, D_A) + λ·L_cyc
        #    (+ 0.5·λ·L_identity), the discriminators held fixed.
        with tf.GradientTape() as tape:
            fake_b = self.generator_ab(real_a, training=True)
            reconstructed_a = self.generator_ba(fake_b, training=True)
            fake_a = self.generator_ba(real_b, training=True)
            reconstructed_b = self.generator_ab(fake_a, training=True)
            g_adversarial = losses.global_batch_mean(
                self.scale * spec.generator(self.discriminator_b(fake_b, training=True))
            )
            f_adversarial = losses.global_batch_mean(
                self.scale * spec.generator(self.discriminator_a(fake_a, training=True))
            )
            cycle = losses.global_batch_mean(
                cycle_consistency_loss(real_a, reconstructed_a)
                + cycle_consistency_loss(real_b, reconstructed_b)
            )
            g_loss = g_adversarial + f_adversarial + c.cycle_weight * cycle
            if c.identity_weight > 0:
                identity = losses.global_batch_mean(
                    identity_loss(real_b, self.generator_ab(real_b, training=True))
                    + identity_loss(real_a, self.generator_ba(real_a, training=True))
                )
                g_loss += c.identity_weight * c.cycle_weight * identity
                logs["identity_loss"] = replica_mean(identity)
        self.apply_update(self.g_optimizer, tape, g_loss, self.generator.trainable_variables)

        # 2. Discriminators: D_A on real a vs F(b), D_B on real b vs G(a), the fakes drawn from
        #    the image history pools (of this step's pre-update generators); each objective
        #    halved, as the paper does to slow D relative to G.
        pooled_a = self.pool_a.query(tf.stop_gradient(fake_a), self.uniform([batch_size, 2]))
        pooled_b = self.pool_b.query(tf.stop_gradient(fake_b), self.uniform([batch_size, 2]))
        with tf.GradientTape() as tape:
            loss_a, logs_a = self.discriminator_loss(
                real_a, pooled_a, lambda x: self.discriminator_a(x, training=True)
            )
            loss_b, logs_b = self.discriminator_loss(
                real_b, pooled_b, lambda x: self.discriminator_b(x, training=True)
            )
            d_a_loss = 0.5 * self.scale * loss_a
            d_b_loss = 0.5 * self.scale * loss_b
            d_loss = d_a_loss + d_b_loss
        self.apply_update(self.d_optimizer, tape, d_loss, self.discriminator.trainable_variables)

        # 3. Logging (per replica; `fit` averages the replicas).
        for name in logs_a:
            if name != "d_loss":
                logs[name] = 0.5 * (logs_a[name] + logs_b[name])
        logs.update(
            d_loss=replica_mean(d_loss),
            d_a_loss=replica_mean(d_a_loss),
            d_b_loss=replica_mean(d_b_loss),
            g_loss=replica_mean(g_loss),
            g_adversarial_loss=replica_mean(g_adversarial),
            f_adversarial_loss=replica_mean(f_adversarial),
            cycle_loss=replica_mean(cycle),
        )
        return self.finish_step(logs)

    # -- data -------------------------------------------------------------------------------
    @classmethod
    def training_dataset(
        cls, rc: Any, config: GANConfig, *, batch_size: int, start_step: int
    ) -> tuple[tf.data.Dataset, Any]:
        """Unpaired (a, b) batches from `rc.dataset` and `rc.domain_a` / `rc.domain_b`."""
        from zoo.data import make_domain_dataset

        if rc.classes:
            raise UsageError("cyclegan picks its classes with --domain_a/--domain_b, not --classes")
        return make_domain_dataset(
            rc.dataset,
            batch_size=batch_size,
            domain_a=rc.domain_a,
            domain_b=rc.domain_b,
            seed=rc.seed,
            start_step=start_step,
            data_dir=rc.data_dir,
            image_size=config.image_size,
            channels=config.channels,
        )

    def real_images(self, num: int, rc: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """`num` fixed real images of each domain (test split when there is one).

        Without a run config (`rc=None`), smooth random images stand in (with a warning).
        """
        if rc is None:
            logging.warning("cyclegan: no run config, so random images stand in for real ones")
            rng = np.random.default_rng(seed)
            shape = (2, num, *self.data_shape)
            noise = rng.uniform(-1.0, 1.0, shape).astype("float32")
            smooth = tf.image.resize(
                tf.image.resize(noise.reshape(-1, *self.data_shape), [4, 4]), self.data_shape[:2]
            )
            a, b = np.asarray(smooth, np.float32).reshape(shape)
            return a, b
        from zoo.data import load_domain_images

        c = self.config
        key = (rc.dataset, rc.domain_a, rc.domain_b, rc.data_dir, num, seed)
        if key not in self._picture_images:
            self._picture_images[key] = load_domain_images(
                rc.dataset,
                num,
                domain_a=rc.domain_a,
                domain_b=rc.domain_b,
                seed=seed,
                data_dir=rc.data_dir,
                image_size=c.image_size,
                channels=c.channels,
            )
        return self._picture_images[key]

    # -- evaluation -------------------------------------------------------------------------
    def evaluation_metrics(self, evaluator: Any, num_samples: int, seed: int = 0) -> dict:
        """Translation metrics both ways on real test images of the two domains.

        `zoo.eval.evaluate.translation_metrics` for A → B (G, cycled back by F) and for B → A
        (F, cycled back by G), keys prefixed `a_to_b_` and `b_to_a_`: `cycle_error`, `fd`
        against the target domain's real images, and `translation_accuracy` when the
        evaluator has a classifier and the target domain is one class of it.

        Args:
          evaluator: a `zoo.eval.evaluate.Evaluator` (its run config names the domains).
          num_samples: images per domain, at most the domain's test images on the datasets
            the zoo classifier knows (1000 per Fashion-MNIST class).
          seed: which fixed set of real images.
        """
        from zoo.eval.evaluate import translation_metrics

        rc = evaluator.rc
        num = num_samples
        targets: dict[str, int | None] = {"a": None, "b": None}
        if evaluator.classifier is not None:  # a labelled in-memory dataset
            from zoo.data import load_arrays

            for side, domain in (("a", rc.domain_a), ("b", rc.domain_b)):
                images, labels, _ = load_arrays(
                    rc.dataset, split="test", data_dir=rc.data_dir, classes=domain.split(",")
                )
                num = min(num, len(images))
                if len(set(labels.tolist())) == 1:
                    targets[side] = int(labels[0])
        a, b = self.real_images(num, rc, seed)

        def translator(network: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
            def translate(images: np.ndarray) -> np.ndarray:
                parts = [
                    np.asarray(tf.cast(network(images[i : i + 250], training=False), tf.float32))
                    for i in range(0, len(images), 250)
                ]
                return np.concatenate(parts)

            return translate

        g, f = translator(self.generator_ab), translator(self.generator_ba)
        forward = translation_metrics(evaluator, a, b, g, f, targets["b"])
        backward = translation_metrics(evaluator, b, a, f, g, targets["a"])
        return {
            **{f"a_to_b_{k}": v for k, v in forward.items()},
            **{f"b_to_a_{k}": v for k, v in backward.items()},
        }

    # -- sampling and export ----------------------------------------------------------------
    def sample_inputs(self, num: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Stand-in inputs of G without data (smooth random images); prefer `real_images`."""
        return {"images": self.real_images(num, None, seed)[0]}

    def generate(self, inputs: dict[str, Any]) -> tf.Tensor:
        """G(images): domain A → B (inference mode, float32)."""
        return tf.cast(self.generator_ab(inputs["images"], training=False), tf.float32)

    def representative_inputs(
        self, num: int, seed: int = 0, rc: Any = None, *, signature: str = "a_to_b"
    ) -> dict[str, np.ndarray]:
        """Real images of the signature's input domain (A for `a_to_b`, B for `b_to_a`)."""
        if signature not in ("a_to_b", "b_to_a", "serving_default"):
            raise ValueError(f"cyclegan has no signature {signature!r}")
        a, b = self.real_images(num, rc, seed)
        return {"images": b if signature == "b_to_a" else a}

    def sample_picture(
        self, num: int, rc: Any = None, centres: np.ndarray | None = None
    ) -> np.ndarray:
        """Rows of a, G(a), F(G(a)), b, F(b), G(F(b)) on fixed real test images (num // 6 rows)."""
        from zoo.core.images import image_grid

        del centres
        a, b = self.real_images(max(1, num // 6), rc)
        fake_b = self.generator_ab(a, training=False)
        fake_a = self.generator_ba(b, training=False)
        columns = [
            a,
            fake_b,
            self.generator_ba(fake_b, training=False),
            b,
            fake_a,
            self.generator_ab(fake_a, training=False),
        ]
        tiles = np.stack([np.asarray(tf.cast(x, tf.float32)) for x in columns], axis=1)
        return image_grid(tiles.reshape(-1, *tiles.shape[2:]), columns=len(columns))

    def serving_signatures(
        self,
    ) -> dict[str, tuple[Callable[..., dict], dict[str, tf.TensorSpec]]]:
        """`a_to_b` (G, also `serving_default`) and `b_to_a` (F): `images` in, `images` out."""
        c = self.config
        spec = {
            "images": tf.TensorSpec(
                [None, c.image_size, c.image_size, c.channels], tf.float32, name="images"
            )
        }

        def translator(network: keras.Model) -> Callable[..., dict]:
            def translate(images: tf.Tensor) -> dict[str, tf.Tensor]:
                return {"images": tf.cast(network(images, training=False), tf.float32)}

            return translate

        return {
            "a_to_b": (translator(self.generator_ab), dict(spec)),
            "b_to_a": (translator(self.generator_ba), dict(spec)),
        }

    def checkpoint_items(self) -> dict[str, Any]:
        """The base's items plus both image history pools (buffers and fill counts)."""
        return {**super().checkpoint_items(), "pool_a": self.pool_a, "pool_b": self.pool_b}
