"""What every text-to-image family shares: the text side of the model, its data and its export.

A text-conditioned family (`gan_int_cls`, `stackgan`) subclasses `TextConditionedGAN` (the
model) and `TextTask` (its run side), and its config mixes in `TextConfig`. Text comes as raw
captions (a tokenizer and a text encoder pretrained with a joint embedding against images,
`zoo.text`, frozen unless `finetune_text_encoder`) or as precomputed embeddings
(`--dataset=embeddings:PATH.npz`, K embeddings per image as CUB/Oxford-102 ship). This module
holds the config fields and the model's side: the tokenizer and encoder, `encode` (φ(t)), the
matching-aware discriminator update (GAN-CLS, Reed et al. 2016) and caption sample inputs
(`class_captions`); `zoo.models.text_task` the run's side (text encoder preparation, caption
data, exports). Families say what their generator makes of (z, φ(t)) in `images_from`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from zoo import text as zoo_text
from zoo.core import losses
from zoo.core.gan import GAN, replica_mean
from zoo.core.latent import sample_z
from zoo.core.layers import dcgan_init, maybe_spectral_norm
from zoo.data.captions import class_phrase
from zoo.errors import UsageError

TEXT_ENCODER_DIR = "text_encoder"
EMBEDDINGS_PREFIX = "embeddings:"
ATTRIBUTE_COLUMNS = ("", "dark ", "light ", "small ", "large ", "large, light ")


@dataclasses.dataclass
class TextConfig:
    """Config fields of the text side; mixed into a family's config (listed first among its
    bases, so its checks run before the network config's).

    Attributes:
      matching_aware: GAN-CLS's third pair (real image, mismatching text) → fake.
      condition_dim: φ(t) is compressed (or conditioning-augmented) to this in the players.
      class_names: the data's class names (filled from the data; sample rows and captions).
      text_input: `captions` (tokenizer + text encoder in the model) or `embeddings`
        (precomputed; filled from `--dataset`).
      embedding_dim: size of φ(t): the text encoder's output, or the precomputed embeddings'.
      vocabulary, max_length: the tokenizer (filled when the text encoder is pretrained).
      text_embedding_dim, text_units: the text encoder's word embedding and filters.
      text_encoder_dir: a text encoder made by `python -m zoo.tools text_encoder` to start
        from (copied into the run); empty: pretrain one into the run directory on first use.
      text_encoder_steps: joint-embedding pretraining steps (batch 64).
      finetune_text_encoder: train the text encoder with D's loss instead of freezing it.
      captions_per_image: captions generated per training image.
      aux_weight: weight of AC-GAN's auxiliary classifier (Odena et al. 2017): a linear class
        head on D's text-free image features, trained on real images with the caption's class,
        G trained to make its images classified as the class of its caption
        (`losses.auxiliary_classifier_loss`); 0 = off, negative = the family's default
        (`TextConditionedGAN.default_aux_weight`; off on data without class names).
    """

    matching_aware: bool = True
    condition_dim: int = 128
    class_names: tuple[str, ...] = ()
    text_input: str = "captions"
    embedding_dim: int = 128
    vocabulary: tuple[str, ...] = ()
    max_length: int = 16
    text_embedding_dim: int = 64
    text_units: int = 128
    text_encoder_dir: str = ""
    text_encoder_steps: int = 1000
    finetune_text_encoder: bool = False
    captions_per_image: int = 10
    aux_weight: float = -1.0

    def __post_init__(self) -> None:
        if self.text_input not in ("captions", "embeddings"):
            raise UsageError(f"text_input must be captions or embeddings, got {self.text_input!r}")
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()


def embeddings_path(dataset: str) -> str | None:
    """The `.npz` path of an `embeddings:PATH` dataset spec, else None."""
    return dataset[len(EMBEDDINGS_PREFIX) :] if dataset.startswith(EMBEDDINGS_PREFIX) else None


def class_head(features: keras.KerasTensor, config: Any) -> keras.KerasTensor:
    """AC-GAN's class head: a linear layer (float32) on D's flattened image features, before
    any text joins them (a head that saw φ(t) could read the class off the caption)."""
    flat = keras.layers.Flatten(dtype="float32")(features)
    return maybe_spectral_norm(
        keras.layers.Dense(
            len(config.class_names),
            kernel_initializer=dcgan_init(),
            dtype="float32",
            name="class_logits",
        ),
        config.spectral_norm,
    )(flat)


def caption_classes(config: Any) -> list[str]:
    """The class phrases captions use ("ankle boot", ...) for the config's class names."""
    return [class_phrase(name) for name in config.class_names]


class TextConditionedGAN(GAN):
    """Base of the text-to-image families' models: tokenizer, text encoder, φ(t), the
    matching-aware D step, caption sample inputs.

    Subclasses build their networks, write `train_step` (with `encode` and
    `text_discriminator_update`), `generate`, and `images_from(z, h)` for the exports. With
    the AC-GAN class head on (`resolve_aux_weight` > 0) D returns [logits, class logits] (the
    family builds it with `class_head`), batches carry the labels as a fourth element, and
    `text_discriminator_update` / `generator_logits` give the class terms.
    """

    # aux_weight when the config's is negative (GAN-INT-CLS: bench, README).
    default_aux_weight: ClassVar[float] = 0.0

    def __init__(self, config: Any, *, seed: int = 0, **kwargs: Any) -> None:
        captions = config.text_input == "captions"
        if captions and not config.vocabulary:
            raise UsageError(
                f"{self.family_name} needs its tokenizer's vocabulary (pretrain first)"
            )
        aux_weight = self.resolve_aux_weight(config)
        if aux_weight and not config.class_names:
            raise UsageError("aux_weight > 0 needs labelled data (class names) for the class head")
        super().__init__(config, seed=seed, **kwargs)
        self.aux_weight = aux_weight
        if self.aux_weight:
            for name in ("d_class_loss", "g_class_loss"):
                self.trackers[name] = keras.metrics.Mean(name=name)
        if config.matching_aware:
            self.trackers["mismatched_logit"] = keras.metrics.Mean(name="mismatched_logit")
        self.tokenizer = (
            zoo_text.Tokenizer(config.vocabulary, config.max_length) if captions else None
        )
        self.text_encoder = None
        if captions:
            self.text_encoder = zoo_text.build_text_encoder(
                vocabulary_size=len(config.vocabulary),
                max_length=config.max_length,
                embedding_dim=config.text_embedding_dim,
                units=config.text_units,
                output_dim=config.embedding_dim,
            )
            self.text_encoder.trainable = config.finetune_text_encoder

    @classmethod
    def resolve_aux_weight(cls, config: Any) -> float:
        """The class head's weight: the config's, or the family's default on labelled data."""
        if config.aux_weight >= 0:
            return float(config.aux_weight)
        return float(cls.default_aux_weight) if config.class_names else 0.0

    def text_batches(self, data: Any) -> list[tuple[Any, Any, Any, Any]]:
        """The step's batch split for d_steps, each part as (images, text, mismatching text,
        labels); labels are None for a batch of three (one made without them), which the
        class head cannot train on."""
        parts = self.split_for_d_steps(tuple(data))
        if len(parts[0]) == 3:
            if self.aux_weight:
                raise ValueError("the class head (aux_weight > 0) needs labels in the batch")
            return [(*part, None) for part in parts]
        return [tuple(part) for part in parts]

    # -- text and the matching-aware discriminator ------------------------------------------
    @property
    def text_encoder_variables(self) -> list[tf.Variable]:
        """The text encoder's weights when fine-tuned (trained with D's loss), else none."""
        return list(self.text_encoder.trainable_variables) if self.text_encoder is not None else []

    @property
    def discriminator_variables(self) -> list[tf.Variable]:
        """D's weights, and the text encoder's when it is fine-tuned (with D's loss)."""
        return [*self.discriminator.trainable_variables, *self.text_encoder_variables]

    @property
    def text_discriminator(self) -> keras.Model:
        """The D the step trains (StackGAN's phase 2: Stage-II's)."""
        return self.discriminator

    def encode(self, text: tf.Tensor, training: bool = False) -> tf.Tensor:
        """φ(t) of a batch of token ids (captions) or the embeddings as they are."""
        if self.text_encoder is None:
            return tf.cast(text, tf.float32)
        return self.text_encoder(text, training=training)

    def discriminate(
        self, x: tf.Tensor, training: bool = True, condition: tf.Tensor | None = None
    ) -> tf.Tensor:
        if condition is None:
            raise ValueError(f"{self.family_name}'s discriminator needs φ(t) (condition=)")
        outputs = self.discriminator([x, condition], training=training)
        return outputs[0] if self.aux_weight else outputs

    def text_discriminator_update(
        self,
        images: tf.Tensor,
        fake: tf.Tensor,
        text: tf.Tensor,
        mismatched: tf.Tensor,
        labels: tf.Tensor | None = None,
    ) -> dict[str, tf.Tensor]:
        """One step of D on (real, matching), (fake, matching) and, for GAN-CLS, (real,
        mismatching); φ is recomputed on D's tape when the text encoder is fine-tuned. With the
        class head on, plus aux_weight × its loss on the real batch for `labels`."""
        fake = tf.stop_gradient(fake)
        finetune = self.config.finetune_text_encoder
        draw = self.augment_draw(images)  # one T for all three pairs (None when off)
        class_logits: list[tf.Tensor] = []

        def discriminate_with(h: tf.Tensor) -> Any:
            if not self.aux_weight:
                return self.discriminate_given(h)

            def discriminate(x: tf.Tensor) -> tf.Tensor:
                logits, classes = self.text_discriminator([x, h], training=True)
                class_logits.append(classes)
                return logits

            return discriminate

        with tf.GradientTape() as tape:
            h = self.encode(text, training=finetune)
            mismatched_logits = None
            if self.config.matching_aware:
                h_wrong = self.encode(mismatched, training=finetune)
                mismatched_logits = self.discriminate(
                    self.diff_augment(images, draw), True, condition=h_wrong
                )
            loss, logs = self.discriminator_loss(
                images,
                fake,
                discriminate_with(h),
                mismatched_logits=mismatched_logits,
                augment_draw=draw,
            )
            if self.aux_weight:
                # discriminator_loss scores the real batch (through T when `augment` is on)
                # first: the first head output is the real images'.
                class_loss = losses.global_batch_mean(
                    losses.auxiliary_classifier_loss(class_logits[0], labels)
                )
                loss += self.aux_weight * class_loss
                logs["d_class_loss"] = replica_mean(class_loss)
                logs["d_loss"] = replica_mean(loss)
        self.apply_update(self.d_optimizer, tape, loss, self.discriminator_variables)
        return logs

    def generator_logits(self, fake: tf.Tensor, h: tf.Tensor) -> tuple[tf.Tensor, Any]:
        """D's logits on G's images in G's step (through T when `augment` is on), and the class
        head's (None when it is off)."""
        x = self.diff_augment(fake)
        if not self.aux_weight:
            return self.discriminate(x, True, condition=h), None
        logits, classes = self.text_discriminator([x, h], training=True)
        return logits, classes

    # -- sampling ---------------------------------------------------------------------------
    def class_captions(self, num: int) -> tuple[np.ndarray, np.ndarray]:
        """`num` captions cycling through the classes and attribute words, with their class."""
        classes = caption_classes(self.config) or ["item"]
        labels = np.arange(num) % len(classes)
        columns = (np.arange(num) // len(classes)) % len(ATTRIBUTE_COLUMNS)
        captions = [
            f"a {ATTRIBUTE_COLUMNS[k]}{classes[y]}" for y, k in zip(labels, columns, strict=True)
        ]
        return np.asarray(captions, dtype=object), labels.astype("int32")

    def caption_grid_inputs(self) -> tuple[dict[str, Any], list[str]]:
        """Inputs of the sample grid (one row per class, columns "a X", "a dark X", ... on one
        z per column) and the row names."""
        classes = caption_classes(self.config) or ["item"]
        z = sample_z(len(ATTRIBUTE_COLUMNS), self.noise_dim, seed=0)
        captions = [f"a {a}{c}" for c in classes for a in ATTRIBUTE_COLUMNS]
        return {"z": np.tile(z, (len(classes), 1)), "text": captions}, classes

    def sample_inputs(self, num: int, seed: int = 0) -> dict[str, np.ndarray]:
        """z, captions naming each class in turn (`text`) and that class (`label`)."""
        if self.tokenizer is None:
            raise UsageError(
                f"a {self.family_name} trained on precomputed embeddings samples from data"
            )
        inputs = super().sample_inputs(num, seed)
        inputs["text"], inputs["label"] = self.class_captions(num)
        return inputs

    def embedding_of(self, inputs: dict[str, Any]) -> tf.Tensor:
        """φ(t) for inputs holding `embedding` or caption strings (`text`)."""
        if "embedding" in inputs:
            return tf.convert_to_tensor(inputs["embedding"], tf.float32)
        return self.encode(tf.constant(self.tokenizer.tokenize_numpy(list(inputs["text"]))))

    def images_from(self, z: tf.Tensor, h: tf.Tensor) -> dict[str, tf.Tensor]:
        """The served outputs (float32, `images` first) for z and φ(t); no noise drawn."""
        raise NotImplementedError
