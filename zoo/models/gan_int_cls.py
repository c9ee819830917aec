"""Text-to-image GAN (Reed et al., 2016): GAN-CLS's matching-aware D and GAN-INT's interpolation.

A text embedding φ(t) conditions both players of DCGAN-style networks. In G it is compressed
(dense to `condition_dim`, LeakyReLU) and joined to z; in D it is compressed the same way,
replicated over the smallest feature map and stacked with it, then a 1x1 convolution and the
final convolution give the logit.

- GAN-CLS (`matching_aware`): D judges three pairs per step — (real, matching text) is real;
  (fake, matching text) and (real, mismatching text) are fake, the two fake terms averaged.
- GAN-INT (`interpolation`): G also trains on β·φ(t1) + (1 − β)·φ(t2) (β = 0.5) with no
  real image for it; t2 is the step's mismatching text (another image of another class).

Text comes as raw captions (a tokenizer and a text encoder pretrained with a joint embedding
against images, `zoo.core.text`, frozen unless `finetune_text_encoder`) or as precomputed
embeddings (`--dataset=embeddings:PATH.npz`, K embeddings per image as CUB/Oxford-102 ship).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo import registry
from zoo.core import losses
from zoo.core import text as zoo_text
from zoo.core.gan import GAN, replica_mean
from zoo.core.layers import SpatialTile, batch_norm, dcgan_init, maybe_spectral_norm
from zoo.core.networks import (
    ConvNetConfig,
    dcgan_discriminator_trunk,
    dcgan_generator_trunk,
    dcgan_layout,
    dcgan_logits,
)
from zoo.errors import UsageError

TEXT_ENCODER_DIR = "text_encoder"
EMBEDDINGS_PREFIX = "embeddings:"
ATTRIBUTE_COLUMNS = ("", "dark ", "light ", "small ", "large ", "large, light ")


@dataclasses.dataclass
class GANIntClsConfig(ConvNetConfig):
    """GAN-INT-CLS on DCGAN's networks at 32 px; the text side from the data.

    Attributes:
      matching_aware: GAN-CLS's third pair (real image, mismatching text) → fake.
      interpolation: GAN-INT's interpolated embeddings for G.
      interpolation_beta: β of β·φ(t1) + (1 − β)·φ(t2).
      condition_dim: φ(t) is compressed to this (dense + LeakyReLU) in both players.
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
    """

    latent_dim: int = 100
    image_size: int = 32
    channels: int = 1
    loss: str = "non_saturating"
    matching_aware: bool = True
    interpolation: bool = True
    interpolation_beta: float = 0.5
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

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.text_input not in ("captions", "embeddings"):
            raise UsageError(f"text_input must be captions or embeddings, got {self.text_input!r}")
        if not 0.0 <= self.interpolation_beta <= 1.0:
            raise UsageError(f"interpolation_beta must be in [0, 1], got {self.interpolation_beta}")


def _embeddings_path(dataset: str) -> str | None:
    return dataset[len(EMBEDDINGS_PREFIX) :] if dataset.startswith(EMBEDDINGS_PREFIX) else None


def _caption_classes(config: Any) -> list[str]:
    from zoo.data.captions import class_phrase

    return [class_phrase(name) for name in config.class_names]


def ensure_text_encoder(rc: Any, config: Any) -> Any:
    """The run's text encoder: copied from `text_encoder_dir`, reloaded, or pretrained now.

    Pretraining uses the run's captions (`rc.dataset`, its classes) with a progress bar and
    writes `MODEL_DIR/text_encoder/`; returns the config with the tokenizer and the encoder's
    sizes filled in.
    """
    target = os.path.join(rc.model_dir, TEXT_ENCODER_DIR)
    if zoo_text.has_text_encoder(target):
        tokenizer, encoder, _ = zoo_text.load_text_encoder(target)
    elif config.text_encoder_dir:
        tokenizer, encoder, stats = zoo_text.load_text_encoder(
            os.path.expanduser(config.text_encoder_dir)
        )
        zoo_text.save_text_encoder(target, tokenizer, encoder, stats)
    else:
        from zoo.data.text import load_caption_arrays

        arrays = load_caption_arrays(
            rc.dataset,
            data_dir=rc.data_dir,
            classes=list(rc.classes) or None,
            per_image=config.captions_per_image,
            seed=rc.seed,
        )
        print(
            f"pretraining the text encoder on {len(arrays.images)} captioned images "
            f"({config.text_encoder_steps} steps) into {target}",
            flush=True,
        )
        tokenizer, encoder, stats = zoo_text.pretrain_text_encoder(
            arrays.images,
            arrays.captions,
            arrays.labels,
            steps=config.text_encoder_steps,
            output_dim=config.embedding_dim,
            max_length=config.max_length,
            embedding_dim=config.text_embedding_dim,
            units=config.text_units,
            seed=rc.seed,
            progress=sys.stdout.isatty(),
        )
        zoo_text.save_text_encoder(target, tokenizer, encoder, stats)
        print(
            f"text encoder: held-out caption retrieval {stats.get('retrieval_accuracy', 0):.3f} "
            f"(chance {stats.get('retrieval_chance', 0):.3f})",
            flush=True,
        )
    sizes = zoo_text.encoder_config(encoder)
    return dataclasses.replace(
        config,
        vocabulary=tuple(tokenizer.vocabulary),
        max_length=tokenizer.max_length,
        embedding_dim=sizes["output_dim"],
        text_embedding_dim=sizes["embedding_dim"],
        text_units=sizes["units"],
    )


def build_text_generator(config: Any) -> keras.Model:
    """G(z, φ(t)): φ compressed (dense + LeakyReLU 0.2), joined to z, DCGAN's trunk."""
    c = config
    z = keras.Input((c.latent_dim,), name="z")
    embedding = keras.Input((c.embedding_dim,), name="embedding")
    condition = keras.layers.Dense(c.condition_dim, kernel_initializer=dcgan_init())(embedding)
    condition = keras.layers.LeakyReLU(0.2)(condition)
    x = keras.layers.Concatenate()([z, condition])
    return keras.Model([z, embedding], dcgan_generator_trunk(x, c), name="generator")


def build_text_discriminator(config: Any) -> keras.Model:
    """D(x, φ(t)): DCGAN's trunk to the smallest map, φ compressed and replicated over it,
    stacked, a 1x1 convolution (batch norm, LeakyReLU), then the final convolution."""
    c = config
    side, _ = dcgan_layout(c.image_size)
    images = keras.Input((c.image_size, c.image_size, c.channels), name="images")
    embedding = keras.Input((c.embedding_dim,), name="embedding")
    features = dcgan_discriminator_trunk(images, c)
    condition = maybe_spectral_norm(
        keras.layers.Dense(c.condition_dim, kernel_initializer=dcgan_init()), c.spectral_norm
    )(embedding)
    condition = keras.layers.LeakyReLU(0.2)(condition)
    x = keras.layers.Concatenate()([features, SpatialTile(side, side)(condition)])
    x = maybe_spectral_norm(
        keras.layers.Conv2D(features.shape[-1], 1, use_bias=False, kernel_initializer=dcgan_init()),
        c.spectral_norm,
    )(x)
    x = batch_norm(c.sync_batchnorm)(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    return keras.Model([images, embedding], dcgan_logits(x, c), name="discriminator")


@registry.register("gan_int_cls")
class GANIntCls(GAN):
    """GAN-INT-CLS; the four variants of the paper by `matching_aware` and `interpolation`."""

    config_class = GANIntClsConfig

    def __init__(self, config: GANIntClsConfig, *, seed: int = 0, **kwargs: Any) -> None:
        captions = config.text_input == "captions"
        if captions and not config.vocabulary:
            raise UsageError("gan_int_cls needs its tokenizer's vocabulary (pretrain first)")
        super().__init__(config, seed=seed, **kwargs)
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

    # -- run preparation and data -----------------------------------------------------------
    @classmethod
    def prepare_run(cls, rc: Any, config: GANIntClsConfig) -> GANIntClsConfig:
        """Precomputed embeddings: their size; captions: the run's text encoder (pretrained on
        first use)."""
        path = _embeddings_path(rc.dataset)
        if path is not None:
            from zoo.data.embeddings import load_embedding_arrays

            arrays = load_embedding_arrays(path, image_size=config.image_size)
            return dataclasses.replace(
                config, text_input="embeddings", embedding_dim=int(arrays.embeddings.shape[-1])
            )
        if config.text_input != "captions":
            raise UsageError(f"text_input=embeddings needs --dataset={EMBEDDINGS_PREFIX}PATH.npz")
        return ensure_text_encoder(rc, config)

    def warm_start(self, rc: Any) -> None:
        """Loads the pretrained text encoder of the run directory."""
        if self.text_encoder is None:
            return
        _, encoder, _ = zoo_text.load_text_encoder(os.path.join(rc.model_dir, TEXT_ENCODER_DIR))
        self.text_encoder.set_weights(encoder.get_weights())

    @classmethod
    def adapt_config(cls, config: GANIntClsConfig, info: Any) -> GANIntClsConfig:
        return dataclasses.replace(config, class_names=tuple(info.class_names or ()))

    @classmethod
    def training_dataset(
        cls, rc: Any, config: GANIntClsConfig, *, batch_size: int, start_step: int
    ) -> tuple[tf.data.Dataset, Any]:
        """(images, text, mismatching text) batches; captions arrive as token ids."""
        from zoo.data.text import make_text_dataset

        dataset, info = make_text_dataset(
            rc.dataset,
            batch_size=batch_size,
            seed=rc.seed,
            start_step=start_step,
            data_dir=rc.data_dir,
            image_size=config.image_size,
            channels=config.channels,
            classes=list(rc.classes) or None,
            captions_per_image=config.captions_per_image,
        )
        if config.text_input == "embeddings":
            return dataset.map(
                lambda e: (e["images"], e["embedding"], e["mismatched_embedding"])
            ), info
        tokenizer = zoo_text.TokenizerLayer(config.vocabulary, config.max_length)
        return dataset.map(
            lambda e: (e["images"], tokenizer(e["text"]), tokenizer(e["mismatched_text"]))
        ), info

    # -- networks ---------------------------------------------------------------------------
    def build_generator(self) -> keras.Model:
        return build_text_generator(self.config)

    def build_discriminator(self) -> keras.Model:
        return build_text_discriminator(self.config)

    @property
    def discriminator_variables(self) -> list[tf.Variable]:
        """D's weights, and the text encoder's when it is fine-tuned (with D's loss)."""
        extra = self.text_encoder.trainable_variables if self.text_encoder is not None else []
        return [*self.discriminator.trainable_variables, *extra]

    def encode(self, text: tf.Tensor, training: bool = False) -> tf.Tensor:
        """φ(t) of a batch of token ids (captions) or the embeddings as they are."""
        if self.text_encoder is None:
            return tf.cast(text, tf.float32)
        return self.text_encoder(text, training=training)

    def discriminate(
        self, x: tf.Tensor, training: bool = True, condition: tf.Tensor | None = None
    ) -> tf.Tensor:
        if condition is None:
            raise ValueError("gan_int_cls's discriminator needs φ(t) (condition=)")
        return self.discriminator([x, condition], training=training)

    # -- the game ---------------------------------------------------------------------------
    def text_discriminator_update(
        self, images: tf.Tensor, fake: tf.Tensor, text: tf.Tensor, mismatched: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """One step of D on (real, matching), (fake, matching) and, for GAN-CLS, (real,
        mismatching); φ is recomputed on D's tape when the text encoder is fine-tuned."""
        fake = tf.stop_gradient(fake)
        finetune = self.config.finetune_text_encoder
        with tf.GradientTape() as tape:
            h = self.encode(text, training=finetune)
            mismatched_logits = None
            if self.config.matching_aware:
                h_wrong = self.encode(mismatched, training=finetune)
                mismatched_logits = self.discriminate(images, True, condition=h_wrong)
            loss, logs = self.discriminator_loss(
                images, fake, self.discriminate_given(h), mismatched_logits=mismatched_logits
            )
        self.apply_update(self.d_optimizer, tape, loss, self.discriminator_variables)
        return logs

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        c = self.config
        parts = self.split_for_d_steps(data)
        batch_size = tf.shape(parts[0][0])[0]
        for images, text, mismatched in parts[:-1]:
            fake = self.generator([self.noise(batch_size), self.encode(text)], training=True)
            self.text_discriminator_update(images, fake, text, mismatched)
        images, text, mismatched = parts[-1]
        h = tf.stop_gradient(self.encode(text))
        # 1. G's forward passes (matching text; GAN-INT: interpolated text) on G's tape;
        # 2. D's update; 3. G's losses through the updated D.
        tape = tf.GradientTape()
        with tape:
            fake = self.generator([self.noise(batch_size), h], training=True)
            if c.interpolation:
                h_wrong = tf.stop_gradient(self.encode(mismatched))
                h_int = c.interpolation_beta * h + (1.0 - c.interpolation_beta) * h_wrong
                fake_int = self.generator([self.noise(batch_size), h_int], training=True)
        logs = self.text_discriminator_update(images, fake, text, mismatched)
        with tape:
            fake_logits = self.discriminate(fake, True, condition=h)
            g_loss = losses.global_batch_mean(self.loss_spec.generator(fake_logits))
            if c.interpolation:
                int_logits = self.discriminate(fake_int, True, condition=h_int)
                g_loss += losses.global_batch_mean(self.loss_spec.generator(int_logits))
        self.apply_update(self.g_optimizer, tape, g_loss, self.generator_variables)
        logs["g_loss"] = replica_mean(g_loss)
        return self.finish_step(logs)

    # -- sampling ---------------------------------------------------------------------------
    def class_captions(self, num: int) -> tuple[np.ndarray, np.ndarray]:
        """`num` captions cycling through the classes and attribute words, with their class."""
        classes = _caption_classes(self.config) or ["item"]
        labels = np.arange(num) % len(classes)
        columns = (np.arange(num) // len(classes)) % len(ATTRIBUTE_COLUMNS)
        captions = [
            f"a {ATTRIBUTE_COLUMNS[k]}{classes[y]}" for y, k in zip(labels, columns, strict=True)
        ]
        return np.asarray(captions, dtype=object), labels.astype("int32")

    def sample_inputs(self, num: int, seed: int = 0) -> dict[str, np.ndarray]:
        """z, captions naming each class in turn (`text`) and that class (`label`)."""
        if self.tokenizer is None:
            raise UsageError("a gan_int_cls trained on precomputed embeddings samples from data")
        inputs = super().sample_inputs(num, seed)
        inputs["text"], inputs["label"] = self.class_captions(num)
        return inputs

    def generate(self, inputs: dict[str, Any]) -> tf.Tensor:
        if "embedding" in inputs:
            h = tf.convert_to_tensor(inputs["embedding"], tf.float32)
        else:
            h = self.encode(tf.constant(self.tokenizer.tokenize_numpy(list(inputs["text"]))))
        z = tf.convert_to_tensor(inputs["z"], tf.float32)
        return tf.cast(self.generator([z, h], training=False), tf.float32)

    def data_embeddings(self, num: int, rc: Any, seed: int = 0) -> np.ndarray:
        """Precomputed embeddings of the run's data (one per image, first `num` images)."""
        from zoo.data.embeddings import load_embedding_arrays

        arrays = load_embedding_arrays(
            _embeddings_path(rc.dataset), image_size=self.config.image_size
        )
        rng = np.random.default_rng(seed)
        index = rng.integers(0, len(arrays.embeddings), num)
        column = rng.integers(0, arrays.embeddings.shape[1], num)
        return arrays.embeddings[index, column].astype("float32")

    def sample_picture(
        self, num: int, rc: Any = None, centres: np.ndarray | None = None
    ) -> np.ndarray:
        """Captions: one row per class, columns "a X", "a dark X", "a light X", "a small X",
        "a large X", "a large, light X" on one z per column. Embeddings: a grid of samples."""
        from zoo.core.images import image_grid, label_rows

        del centres
        if self.tokenizer is None:
            inputs = super().sample_inputs(num, seed=0)
            inputs["embedding"] = self.data_embeddings(num, rc)
            return image_grid(np.asarray(self.generate(inputs)))
        classes = _caption_classes(self.config) or ["item"]
        columns = len(ATTRIBUTE_COLUMNS)
        z = super().sample_inputs(columns, seed=0)["z"]
        captions = [f"a {a}{c}" for c in classes for a in ATTRIBUTE_COLUMNS]
        inputs = {"z": np.tile(z, (len(classes), 1)), "text": captions}
        grid = image_grid(np.asarray(self.generate(inputs)), columns=columns)
        return label_rows(grid, classes, rows=len(classes))

    # -- export -----------------------------------------------------------------------------
    def representative_inputs(
        self, num: int, seed: int = 0, rc: Any = None, signature: str | None = None
    ) -> dict[str, np.ndarray]:
        """Captions of the data (test split) or of the classes; tokens or φ for the numeric
        signatures; data embeddings for an embeddings model."""
        z = super().sample_inputs(num, seed)["z"]
        if self.tokenizer is None:
            return {"z": z, "embedding": self.data_embeddings(num, rc, seed)}
        captions = self.class_captions(num)[0]
        if rc is not None and not _embeddings_path(rc.dataset):
            try:
                from zoo.data.text import load_caption_arrays

                arrays = load_caption_arrays(
                    rc.dataset, split="test", data_dir=rc.data_dir, per_image=1, seed=seed
                )
                rng = np.random.default_rng(seed)
                captions = arrays.captions[rng.integers(0, len(arrays.captions), num), 0]
            except UsageError:
                pass  # no test split here: the class captions stand in
        captions = np.asarray([str(t) for t in captions], dtype=object)
        tokens = self.tokenizer.tokenize_numpy(list(captions))
        if signature == "tokens":
            return {"z": z, "tokens": tokens}
        if signature == "from_embedding":
            return {"z": z, "embedding": np.asarray(self.encode(tf.constant(tokens)))}
        return {"z": z, "text": captions}

    def serving_signatures(self) -> dict[str, tuple[Callable[..., dict], dict[str, tf.TensorSpec]]]:
        """`serving_default`: `z` + raw `text` strings (tokenizer and encoder in the graph);
        `tokens`: `z` + token ids (what TFLite takes); `from_embedding`: `z` + φ(t) (or a
        precomputed embedding). An embeddings model serves `from_embedding` only."""
        c = self.config
        z_spec = tf.TensorSpec([None, c.latent_dim], tf.float32, name="z")
        embedding_spec = tf.TensorSpec([None, c.embedding_dim], tf.float32, name="embedding")

        def images(z: tf.Tensor, h: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"images": tf.cast(self.generator([z, h], training=False), tf.float32)}

        def from_embedding(z: tf.Tensor, embedding: tf.Tensor) -> dict[str, tf.Tensor]:
            return images(z, embedding)

        if self.tokenizer is None:
            return {"from_embedding": (from_embedding, {"z": z_spec, "embedding": embedding_spec})}
        tokenizer = self.tokenizer.layer

        def from_text(z: tf.Tensor, text: tf.Tensor) -> dict[str, tf.Tensor]:
            return images(z, self.encode(tokenizer(text)))

        def from_tokens(z: tf.Tensor, tokens: tf.Tensor) -> dict[str, tf.Tensor]:
            return images(z, self.encode(tokens))

        return {
            "serving_default": (
                from_text,
                {"z": z_spec, "text": tf.TensorSpec([None], tf.string, name="text")},
            ),
            "tokens": (
                from_tokens,
                {
                    "z": z_spec,
                    "tokens": tf.TensorSpec([None, c.max_length], tf.int32, name="tokens"),
                },
            ),
            "from_embedding": (from_embedding, {"z": z_spec, "embedding": embedding_spec}),
        }

    def tflite_signatures(self) -> list[str]:
        return ["from_embedding"] if self.tokenizer is None else ["tokens", "from_embedding"]

    def export_metadata(self) -> dict[str, Any]:
        return {} if self.tokenizer is None else {"tokenizer": self.tokenizer.to_json()}
