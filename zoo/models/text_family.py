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
# What the attribute head predicts, in the order of `zoo.data.text_dataset`'s "attributes".
ATTRIBUTES = ("brightness", "size")


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
      attribute_weight: weight of the attribute head, AC-GAN's auxiliary loss for the
        attributes captions state (brightness, size; `zoo.data.captions`): two logits on D's
        text-free image features, trained on real images for what their caption states, G
        trained to make its image of a caption read as the caption states; both masked where
        the caption is silent (`attribute_loss`). 0 = off, negative = the family's default
        (`TextConditionedGAN.default_attribute_weight`; off on precomputed embeddings,
        which state nothing known). Like the class head it reads D's input, so under
        `augment` with a colour transform it sees the transformed brightness.
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
    attribute_weight: float = -1.0

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


def attribute_head(features: keras.KerasTensor, config: Any) -> keras.KerasTensor:
    """The attribute head: one logit per attribute captions state (brightness: light, size:
    large; `ATTRIBUTES`), a linear layer (float32) on D's flattened text-free image features,
    like `class_head` (a head that saw φ(t) could read the attribute off the caption)."""
    flat = keras.layers.Flatten(dtype="float32")(features)
    return maybe_spectral_norm(
        keras.layers.Dense(
            len(ATTRIBUTES),
            kernel_initializer=dcgan_init(),
            dtype="float32",
            name="attribute_logits",
        ),
        config.spectral_norm,
    )(flat)


def attribute_loss(attribute_logits: tf.Tensor, stated: tf.Tensor) -> tf.Tensor:
    """The attribute head's term: per example, the sum over the attributes its caption states
    of the sigmoid cross-entropy of the head's logit against the stated value (1: light /
    large, 0: dark / small); an attribute the caption does not state (-1) adds nothing.

    Args:
      attribute_logits: float [B, A] (`attribute_head`).
      stated: int [B, A], BRIGHTNESS_WORDS / SIZE_WORDS indices, -1 where silent.

    Returns:
      float32 [B] (0 for a caption stating no attribute).
    """
    stated = tf.cast(stated, tf.int32)
    known = tf.cast(stated >= 0, tf.float32)
    per_attribute = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.cast(tf.maximum(stated, 0), tf.float32),
        logits=tf.cast(attribute_logits, tf.float32),
    )
    return tf.reduce_sum(known * per_attribute, axis=-1)


def caption_classes(config: Any) -> list[str]:
    """The class phrases captions use ("ankle boot", ...) for the config's class names."""
    return [class_phrase(name) for name in config.class_names]


class TextConditionedGAN(GAN):
    """Base of the text-to-image families' models: tokenizer, text encoder, φ(t), the
    matching-aware D step, caption sample inputs.

    Subclasses build their networks, write `train_step` (with `encode` and
    `text_discriminator_update`), `generate`, and `images_from(z, h)` for the exports. With
    the AC-GAN class head on (`resolve_aux_weight` > 0) D returns [logits, class logits] (the
    family builds it with `class_head`) and batches carry the labels as a fourth element. With
    the attribute head on (`resolve_attribute_weight` > 0), D returns [logits, (class logits,)
    attribute logits] (`attribute_head`) and batches carry the stated attributes as a fifth
    element. `text_discriminator_update` adds the heads' terms on the real batch to D's loss;
    a family's G step takes the heads' logits on its images from `generator_head_logits` and
    their terms from `head_terms`.
    """

    # aux_weight when the config's is negative (GAN-INT-CLS: bench, README).
    default_aux_weight: ClassVar[float] = 0.0
    # attribute_weight when the config's is negative, on captions (GAN-INT-CLS: its docstring).
    default_attribute_weight: ClassVar[float] = 0.0
    # Families whose discriminators can carry the attribute head (`attribute_head`).
    has_attribute_head: ClassVar[bool] = False

    def __init__(self, config: Any, *, seed: int = 0, **kwargs: Any) -> None:
        captions = config.text_input == "captions"
        if captions and not config.vocabulary:
            raise UsageError(
                f"{self.family_name} needs its tokenizer's vocabulary (pretrain first)"
            )
        aux_weight = self.resolve_aux_weight(config)
        if aux_weight and not config.class_names:
            raise UsageError("aux_weight > 0 needs labelled data (class names) for the class head")
        attribute_weight = self.resolve_attribute_weight(config)
        if attribute_weight and not self.has_attribute_head:
            raise UsageError(f"{self.family_name} has no attribute head; set attribute_weight=0")
        super().__init__(config, seed=seed, **kwargs)
        self.aux_weight = aux_weight
        self.attribute_weight = attribute_weight
        if self.aux_weight:
            for name in ("d_class_loss", "g_class_loss"):
                self.trackers[name] = keras.metrics.Mean(name=name)
        if self.attribute_weight:
            for name in ("d_attribute_loss", "g_attribute_loss"):
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

    @classmethod
    def resolve_attribute_weight(cls, config: Any) -> float:
        """The attribute head's weight: the config's, or the family's default on captions."""
        if config.attribute_weight >= 0:
            return float(config.attribute_weight)
        return float(cls.default_attribute_weight) if config.text_input == "captions" else 0.0

    def text_batches(self, data: Any) -> list[tuple[Any, Any, Any, Any, Any]]:
        """The step's batch split for d_steps, each part as (images, text, mismatching text,
        labels, stated attributes); labels are None for a batch of three (one made without
        them), which the class head cannot train on, attributes None for a batch of three or
        four, which the attribute head cannot train on."""
        parts = [tuple(part) for part in self.split_for_d_steps(tuple(data))]
        if len(parts[0]) == 3 and self.aux_weight:
            raise ValueError("the class head (aux_weight > 0) needs labels in the batch")
        if len(parts[0]) < 5 and self.attribute_weight:
            raise ValueError("the attribute head (attribute_weight > 0) needs the attributes")
        return [(*part, *[None] * (5 - len(part))) for part in parts]

    def head_outputs(self, outputs: Any) -> tuple[tf.Tensor, Any, Any]:
        """D's outputs as (logits, class logits or None, attribute logits or None)."""
        if not (self.aux_weight or self.attribute_weight):
            return outputs, None, None
        outputs = list(outputs)
        classes = outputs[1] if self.aux_weight else None
        return outputs[0], classes, outputs[-1] if self.attribute_weight else None

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
        return self.head_outputs(self.discriminator([x, condition], training=training))[0]

    def text_discriminator_update(
        self,
        images: tf.Tensor,
        fake: tf.Tensor,
        text: tf.Tensor,
        mismatched: tf.Tensor,
        labels: tf.Tensor | None = None,
        attributes: tf.Tensor | None = None,
    ) -> dict[str, tf.Tensor]:
        """One step of D on (real, matching), (fake, matching) and, for GAN-CLS, (real,
        mismatching); φ is recomputed on D's tape when the text encoder is fine-tuned. With the
        class head on, plus aux_weight × its loss on the real batch for `labels`; with the
        attribute head, plus attribute_weight × its loss on the real batch for what the
        matching captions state (`attributes`)."""
        fake = tf.stop_gradient(fake)
        finetune = self.config.finetune_text_encoder
        draw = self.augment_draw(images)  # one T for all three pairs (None when off)
        head_logits: list[tuple[Any, Any]] = []

        def discriminate_with(h: tf.Tensor) -> Any:
            if not (self.aux_weight or self.attribute_weight):
                return self.discriminate_given(h)

            def discriminate(x: tf.Tensor) -> tf.Tensor:
                logits, classes, attribute_logits = self.head_outputs(
                    self.text_discriminator([x, h], training=True)
                )
                head_logits.append((classes, attribute_logits))
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
            # discriminator_loss scores the real batch (through T when `augment` is on)
            # first: the first head outputs are the real images'.
            if head_logits:
                head_loss, head_logs = self.head_terms(*head_logits[0], labels, attributes)
                loss += head_loss
                logs.update({f"d_{k}": v for k, v in head_logs.items()})
                logs["d_loss"] = replica_mean(loss)
        self.apply_update(self.d_optimizer, tape, loss, self.discriminator_variables)
        return logs

    def head_terms(
        self,
        class_logits: Any,
        attribute_logits: Any,
        labels: Any,
        attributes: Any,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """aux_weight × the class head's loss for `labels` plus attribute_weight × the attribute
        head's for the stated `attributes` (each only when its head is on), and the unweighted
        losses' replica means to log (`class_loss`, `attribute_loss`)."""
        total = tf.constant(0.0, tf.float32)
        logs = {}
        if self.aux_weight:
            class_loss = losses.global_batch_mean(
                losses.auxiliary_classifier_loss(class_logits, labels)
            )
            total += self.aux_weight * class_loss
            logs["class_loss"] = replica_mean(class_loss)
        if self.attribute_weight:
            stated_loss = losses.global_batch_mean(attribute_loss(attribute_logits, attributes))
            total += self.attribute_weight * stated_loss
            logs["attribute_loss"] = replica_mean(stated_loss)
        return total, logs

    def generator_head_logits(self, fake: tf.Tensor, h: tf.Tensor) -> tuple[tf.Tensor, Any, Any]:
        """D's logits on G's images in G's step (through T when `augment` is on), the class
        head's and the attribute head's (None when off)."""
        x = self.diff_augment(fake)
        if not (self.aux_weight or self.attribute_weight):
            return self.discriminate(x, True, condition=h), None, None
        return self.head_outputs(self.text_discriminator([x, h], training=True))

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
