"""StackGAN (Zhang et al., 2017): conditioning augmentation and two stages trained in two phases.

Text φ(t) (captions through the shared text encoder, or precomputed embeddings; see
`zoo.models.text_family`) reaches each generator through conditioning augmentation
(`zoo.models.stackgan.conditioning`): a Gaussian N(μ(φ), σ²(φ)) whose sample ĉ = μ + σ·ε joins the
generator's input, with λ·KL(N(μ, σ²) ‖ N(0, I)) (λ = `kl_weight`) added to G's loss.

- Stage-I: ĉ ⊕ z → a low-resolution image (`stage1_size`); a matching-aware discriminator at
  that resolution (GAN-CLS pairs, Reed et al. 2016).
- Stage-II: encodes the Stage-I image, joins its own ĉ, residual blocks, upsamples ×2 or ×4
  to `image_size` and corrects defects; a matching-aware discriminator at high resolution.
- AC-GAN's class head (`aux_weight`, 2 by default on labelled captions; Odena et al. 2017) on
  each discriminator's 4×4 image features before φ(t) joins them (`text_family.class_head`):
  D learns the class of real images, G (of the stage being trained) is trained to make its
  image of a caption classified as the caption's class. Runs saved before it load without it.

The KL term is summed over ĉ's N_c = 128 dimensions, and the authors' code averages it over
them, so λ = 1 (the old default) held μ near 0 against σ·ε: after 2000 Stage-I steps (class
head on) the KL was 3.2 nats, ‖μ‖² ≲ 6 against E‖σ·ε‖² ≈ 128, and the condition reaching G
was mostly noise. λ = 2/128 (the default) lets the condition through.
`python bench/stackgan_quality.py` (2000 + 2000 steps of 64, seed 0; Stage-I images upsampled
to 32 px; class accuracy / FD in the zoo classifier's features):

| config | Stage-I class / FD | Stage-II class / FD |
| --- | --- | --- |
| before: aux_weight=0, kl_weight=1 (README's earlier run) | 0.513 / 24.5 | 0.548 / 23.3 |
| aux_weight=0, kl_weight=1 (shared encoder, as the next two) | 0.532 / 34.4 | 0.570 / 26.5 |
| aux_weight=2, kl_weight=1 | 0.800 / 28.1 | 0.811 / 20.7 |
| aux_weight=2, kl_weight=2/128 | 0.894 / 25.8 | 1.000 / 16.2 |

(the last three with one text encoder pretrained by `python -m zoo.tools text_encoder`; the
default run, which pretrains its own: 0.900 / 25.4 and 0.985 / 23.8; within-class recall in the
README.)

Training runs in two phases in one run directory, chosen by `stage` (`--stage`): phase 1
trains Stage-I on images resized to `stage1_size`; phase 2 loads Stage-I (and the text
encoder) from phase 1's latest checkpoint, freezes it (`trainable=False`, inference mode) and
trains Stage-II on Stage-I's output at `image_size`. The model always holds all four networks,
so both phases' checkpoints have one layout; the run directory keeps each phase's state apart
(`zoo.run.phase_dir`).

Serving never draws ε either: it is part of the noise input. With `sample_condition_noise`
(the default) the served `z` is z ⊕ ε₁ (⊕ ε₂ after phase 2): `latent_dim` + `condition_dim` per
trained stage N(0, 1) values (`noise_dim`), so samples, grids, evaluation and exports draw ĉ
from the CA's Gaussian as training does and as the paper samples at test time. The
generators take their diversity within a class from ε more than from z: on the shipped
preset's weights (`python bench/stackgan_quality.py --model_dir=zoo/presets/
stackgan_fashion_mnist`, 5000 samples) Stage-I / Stage-II score class 0.779 / 0.924, FD
24.8 / 15.7, within-class recall 0.011 / 0.111 with ε drawn; with ε = 0 (ĉ = μ, the only
choice before, which runs saved then keep) the same weights score 0.900 / 0.985, 25.4 /
23.8, 0.000 / 0.001. After phase 2 the export returns `images` (Stage-II) and
`stage1_images`; after phase 1 only, `images` (Stage-I) from the same inputs.

Every generator takes ε as an input, never draws it. Every network's last layer computes in
float32; the rest follows the global dtype policy.

Reference:
  Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with Stacked
  Generative Adversarial Networks", ICCV (section 3 and the supplementary architecture).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo.core import losses
from zoo.core.config import GANConfig
from zoo.core.gan import replica_mean
from zoo.errors import UsageError
from zoo.models.stackgan.networks import (
    STAGE2_SCALES,
    build_stage1_discriminator,
    build_stage1_generator,
    build_stage2_discriminator,
    build_stage2_generator,
)
from zoo.models.text_family import TextConditionedGAN, TextConfig

PHASES = (1, 2)
# λ of the KL term, which `losses.kl_divergence` sums over ĉ's N_c dimensions. The authors'
# PyTorch code (`KL_loss`) averages the elementwise KL over batch *and* dimensions, so its
# coefficient acts as coefficient / N_c on this sum; λ = 1 here was N_c = 128 times stronger than
# a coefficient of 1 there. 2 / 128 (bench figures in the module docstring).
KL_WEIGHT = 2.0 / 128
# AC-GAN's class-loss weight by default (`aux_weight` < 0) on labelled captions, in both stages
# (bench figures in the module docstring).
AUX_WEIGHT = 2.0


@dataclasses.dataclass
class StackGANConfig(TextConfig, GANConfig):
    """StackGAN at 16 → 32 px for Fashion-MNIST (the paper: 64 → 256); the text side
    (`TextConfig`) from the data.

    Attributes:
      image_size: Stage-II's (high) side: 2 or 4 times `stage1_size`.
      stage1_size: Stage-I's (low) side: 16, 32, 64 or 128.
      stage: the phase a run trains: 1 (Stage-I) or 2 (Stage-II on a frozen Stage-I); set by
        `--stage`, not compared when a run directory moves from phase 1 to phase 2.
      kl_weight: λ of the conditioning augmentation's KL term (summed over N_c) in G's loss;
        2/128 by default (the paper's λ = 1 is on the authors' mean over N_c; see above).
      stage1_generator_filters: filters of Stage-I G's last block (doubled per block nearer
        z; the paper: 64 at 64 px).
      stage1_discriminator_filters: Stage-I D's first filters (the paper: 64).
      stage2_generator_filters: Stage-II G's first encoder filters (the paper: 128).
      stage2_discriminator_filters: Stage-II D's first filters (the paper: 64).
      residual_blocks: Stage-II G's residual blocks (2 in the authors' configs).
      sync_batchnorm: batch-norm statistics over all replicas instead of per replica.
      sample_condition_noise: the served noise holds the CA's ε of each trained stage after
        z (`noise_dim` values), as in training; off (runs saved before it), ε = 0, ĉ = μ.
      (and `TextConfig`'s: matching_aware, condition_dim = N_c (128), aux_weight (AC-GAN's
      class head on both stages' Ds, 2 by default), the text encoder's.)

    The default widths (32) are a CPU budget; the paper's are given above.
    """

    latent_dim: int = 100
    image_size: int = 32
    stage1_size: int = 16
    channels: int = 1
    loss: str = "non_saturating"
    stage: int = 1
    kl_weight: float = KL_WEIGHT
    stage1_generator_filters: int = 32
    stage1_discriminator_filters: int = 32
    stage2_generator_filters: int = 32
    stage2_discriminator_filters: int = 32
    residual_blocks: int = 2
    sync_batchnorm: bool = False
    sample_condition_noise: bool = True

    # Runs saved before the auxiliary classifier had none (their Ds have no class head).
    absent_from_old_runs: typing.ClassVar[dict[str, Any]] = {
        **GANConfig.absent_from_old_runs,
        "aux_weight": 0.0,
        "attribute_weight": 0.0,
        "kl_weight": 1.0,  # the default before 2 / 128 (saved configs all hold the field)
        "sample_condition_noise": False,  # their exports take z alone and pass ε = 0
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stage not in PHASES:
            raise UsageError(f"stackgan stage must be 1 or 2, got {self.stage!r}")
        if not self.kl_weight >= 0:
            raise UsageError(f"kl_weight must be >= 0, got {self.kl_weight}")
        if self.image_size not in [self.stage1_size * s for s in STAGE2_SCALES]:
            raise UsageError(
                f"stackgan image_size must be 2 or 4 times stage1_size={self.stage1_size}, "
                f"got {self.image_size}"
            )


class StackGAN(TextConditionedGAN):
    """StackGAN: `generator`/`discriminator` are Stage-I's, `stage2_generator`/
    `stage2_discriminator` Stage-II's; `config.stage` says which pair trains."""

    config_class = StackGANConfig
    default_aux_weight = AUX_WEIGHT
    has_attribute_head = True  # off by default (not measured on StackGAN yet)
    tracker_names = ("d_loss", "g_loss", "kl_loss", "real_logit", "fake_logit")

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
            num_classes=self.head_classes(c),
            attributes=bool(self.resolve_attribute_weight(c)),
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
        self.ema = self.build_ema()  # now that Stage-II exists (the base's call made none)

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
            num_classes=self.head_classes(c),
            attributes=bool(self.resolve_attribute_weight(c)),
        )

    @classmethod
    def head_classes(cls, config: StackGANConfig) -> int:
        """Classes of the Ds' AC-GAN heads (0: no head, aux_weight off)."""
        return len(config.class_names) if cls.resolve_aux_weight(config) else 0

    @property
    def stage1_generator(self) -> keras.Model:
        return self.generator

    @property
    def stage1_discriminator(self) -> keras.Model:
        return self.discriminator

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
    def ema_networks(self) -> dict[str, keras.Model]:
        """The trained stage's G, conditioning augmentation included (phase 2's frozen
        Stage-I is not averaged: it is phase 1's average when phase 1 had one)."""
        if self.config.stage == 1:
            return {"generator": self.generator}
        return {"stage2_generator": self.stage2_generator}

    def build_ema(self) -> Any:
        if not hasattr(self, "stage2_generator"):  # the base's call, before Stage-II is built
            return None
        return super().build_ema()

    @property
    def discriminator_variables(self) -> list[tf.Variable]:
        return [*self.trained_discriminator.trainable_variables, *self.text_encoder_variables]

    @property
    def text_discriminator(self) -> keras.Model:
        return self.trained_discriminator

    @property
    def data_shape(self) -> tuple[int, ...]:
        c = self.config
        return (*[training_image_size(c)] * 2, c.channels)

    def discriminate(
        self, x: tf.Tensor, training: bool = True, condition: tf.Tensor | None = None
    ) -> tf.Tensor:
        if condition is None:
            raise ValueError("stackgan's discriminators need φ(t) (condition=)")
        return self.head_outputs(self.trained_discriminator([x, condition], training=training))[0]

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
        parts = self.text_batches(data)
        batch_size = tf.shape(parts[0][0])[0]
        for images, text, mismatched, labels, attributes in parts[:-1]:
            fake, _, _ = self.stage_fake(self.noise(batch_size), self.encode(text))
            self.text_discriminator_update(images, fake, text, mismatched, labels, attributes)
        images, text, mismatched, labels, attributes = parts[-1]
        h = tf.stop_gradient(self.encode(text))
        # 1. G's forward pass (with its CA) on G's tape; 2. D's matching-aware update (plus
        # the class head's loss on the real batch); 3. G's adversarial loss through the updated
        # D, plus λ·KL of the CA's Gaussian and the class head's loss on G's images.
        tape = tf.GradientTape()
        with tape:
            fake, mu, log_var = self.stage_fake(self.noise(batch_size), h)
        logs = self.text_discriminator_update(images, fake, text, mismatched, labels, attributes)
        with tape:
            fake_logits, class_logits, attribute_logits = self.generator_head_logits(fake, h)
            g_loss = losses.global_batch_mean(self.loss_spec.generator(fake_logits))
            kl = losses.global_batch_mean(losses.kl_divergence(mu, log_var))
            g_loss += self.config.kl_weight * kl
            head_loss, head_logs = self.head_terms(
                class_logits, attribute_logits, labels, attributes
            )
            g_loss += head_loss
        self.apply_update(self.g_optimizer, tape, g_loss, self.generator_variables)
        logs["g_loss"] = replica_mean(g_loss)
        logs["kl_loss"] = replica_mean(kl)
        logs.update({f"g_{k}": v for k, v in head_logs.items()})
        return self.finish_step(logs)

    # -- sampling ----------------------------------------------------------------
    @property
    def noise_dim(self) -> int:
        """`latent_dim`, plus `condition_dim` per trained stage with `sample_condition_noise`."""
        c = self.config
        return c.latent_dim + (c.condition_dim * c.stage if c.sample_condition_noise else 0)

    def split_noise(self, noise: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(z, ε₁, ε₂) of a served noise batch (`noise_dim` wide); ε = 0 where it holds none."""
        c = self.config
        noise = tf.convert_to_tensor(noise, tf.float32)
        if noise.shape[-1] is not None and noise.shape[-1] != self.noise_dim:
            raise UsageError(
                f"stackgan's noise z has {self.noise_dim} values per sample (latent_dim "
                f"{c.latent_dim} + condition_dim {c.condition_dim} per trained stage), "
                f"got {noise.shape[-1]}"
            )
        zeros = tf.zeros([tf.shape(noise)[0], c.condition_dim], tf.float32)
        z = noise[:, : c.latent_dim]
        if not c.sample_condition_noise:
            return z, zeros, zeros
        first = noise[:, c.latent_dim : c.latent_dim + c.condition_dim]
        second = noise[:, c.latent_dim + c.condition_dim :] if c.stage == 2 else zeros
        return z, first, second

    def images_from(self, z: tf.Tensor, h: tf.Tensor) -> dict[str, tf.Tensor]:
        """Served outputs for the noise `z` (`split_noise`): `images` of the last trained
        stage; after phase 2 also `stage1_images`."""
        z, first, second = self.split_noise(z)
        low = tf.cast(self.generator([z, h, first], training=False)["images"], tf.float32)
        if self.config.stage == 1:
            return {"images": low}
        high = self.stage2_generator([low, h, second], training=False)["images"]
        return {"images": tf.cast(high, tf.float32), "stage1_images": low}

    def generate_stages(self, inputs: dict[str, Any]) -> dict[str, tf.Tensor]:
        """`images_from` for inputs like `sample_inputs` gives (captions or `embedding`)."""
        z = tf.convert_to_tensor(inputs["z"], tf.float32)
        return self.images_from(z, self.embedding_of(inputs))

    def generate(self, inputs: dict[str, Any]) -> tf.Tensor:
        return self.generate_stages(inputs)["images"]

    def stage_tiles(self, inputs: dict[str, Any]) -> tuple[np.ndarray, int]:
        """Tiles of a picture: after phase 2 each Stage-I image (upsampled by repetition)
        beside its Stage-II image; and how many tiles one sample takes."""
        out = {k: np.asarray(v) for k, v in self.generate_stages(inputs).items()}
        if "stage1_images" not in out:
            return out["images"], 1
        factor = self.config.image_size // self.config.stage1_size
        low = out["stage1_images"].repeat(factor, axis=1).repeat(factor, axis=2)
        return np.stack([low, out["images"]], axis=1).reshape(-1, *out["images"].shape[1:]), 2


def training_image_size(config: StackGANConfig) -> int:
    """Phase 1 trains on images resized to `stage1_size`, phase 2 at `image_size`."""
    return config.stage1_size if config.stage == 1 else config.image_size
