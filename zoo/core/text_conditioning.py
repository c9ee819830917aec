"""What every text-to-image family shares: the text side of the model, its data and its export.

A text-conditioned family (`gan_int_cls`, `stackgan`) subclasses `TextConditionedGAN` and its
config mixes in `TextConfig`. Text comes as raw captions (a tokenizer and a text encoder
pretrained with a joint embedding against images, `zoo.text`, frozen unless
`finetune_text_encoder`) or as precomputed embeddings (`--dataset=embeddings:PATH.npz`, K
embeddings per image as CUB/Oxford-102 ship). The base gives:

- run preparation: the text encoder pretrained into `MODEL_DIR/text_encoder/` on first use
  (`ensure_text_encoder`), loaded into the model in `warm_start`; class names from the data;
- the training stream: (images, text, mismatching text) batches, captions as token ids;
- `encode` (φ(t)) and the matching-aware discriminator update (GAN-CLS, Reed et al. 2016);
- sample inputs: captions naming each class with attribute words (`class_captions`);
- export: `serving_default` on raw strings (tokenizer and encoder in the graph), `tokens` (what
  TFLite takes) and `from_embedding` (φ(t) or a precomputed embedding), the tokenizer in the
  export's JSON. Families say what their generator makes of (z, φ(t)) in `images_from`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo import text as zoo_text
from zoo.core.gan import GAN
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

    def __post_init__(self) -> None:
        if self.text_input not in ("captions", "embeddings"):
            raise UsageError(f"text_input must be captions or embeddings, got {self.text_input!r}")
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()


def embeddings_path(dataset: str) -> str | None:
    """The `.npz` path of an `embeddings:PATH` dataset spec, else None."""
    return dataset[len(EMBEDDINGS_PREFIX) :] if dataset.startswith(EMBEDDINGS_PREFIX) else None


def caption_classes(config: Any) -> list[str]:
    """The class phrases captions use ("ankle boot", ...) for the config's class names."""
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
        tokenizer, encoder, _ = zoo_text.pretrain_and_save(
            target,
            rc.dataset,
            data_dir=rc.data_dir,
            classes=list(rc.classes) or None,
            captions_per_image=config.captions_per_image,
            seed=rc.seed,
            steps=config.text_encoder_steps,
            output_dim=config.embedding_dim,
            max_length=config.max_length,
            embedding_dim=config.text_embedding_dim,
            units=config.text_units,
            progress=sys.stdout.isatty(),
            log=functools.partial(print, flush=True),
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


class TextConditionedGAN(GAN):
    """Base of the text-to-image families: tokenizer, text encoder, caption data, export.

    Subclasses build their networks, write `train_step` (with `encode` and
    `text_discriminator_update`), `generate`, and `images_from(z, h)` for the exports.
    """

    def __init__(self, config: Any, *, seed: int = 0, **kwargs: Any) -> None:
        captions = config.text_input == "captions"
        if captions and not config.vocabulary:
            raise UsageError(
                f"{self.family_name} needs its tokenizer's vocabulary (pretrain first)"
            )
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
    def prepare_run(cls, rc: Any, config: Any) -> Any:
        """Precomputed embeddings: their size; captions: the run's text encoder (pretrained on
        first use)."""
        path = embeddings_path(rc.dataset)
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
    def adapt_config(cls, config: Any, info: Any) -> Any:
        return dataclasses.replace(config, class_names=tuple(info.class_names or ()))

    @classmethod
    def training_image_size(cls, config: Any) -> int:
        """Side of the training images (the config's `image_size`; StackGAN's phase 1 less)."""
        return config.image_size

    @classmethod
    def training_dataset(
        cls, rc: Any, config: Any, *, batch_size: int, start_step: int
    ) -> tuple[tf.data.Dataset, Any]:
        """(images, text, mismatching text) batches; captions arrive as token ids."""
        from zoo.data.text_dataset import make_text_dataset

        dataset, info = make_text_dataset(
            rc.dataset,
            batch_size=batch_size,
            seed=rc.seed,
            start_step=start_step,
            data_dir=rc.data_dir,
            image_size=cls.training_image_size(config),
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

    # -- text and the matching-aware discriminator ------------------------------------------
    @property
    def text_encoder_variables(self) -> list[tf.Variable]:
        """The text encoder's weights when fine-tuned (trained with D's loss), else none."""
        return list(self.text_encoder.trainable_variables) if self.text_encoder is not None else []

    @property
    def discriminator_variables(self) -> list[tf.Variable]:
        """D's weights, and the text encoder's when it is fine-tuned (with D's loss)."""
        return [*self.discriminator.trainable_variables, *self.text_encoder_variables]

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
        return self.discriminator([x, condition], training=training)

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
        z = GAN.sample_inputs(self, len(ATTRIBUTE_COLUMNS), seed=0)["z"]
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

    def data_embeddings(self, num: int, rc: Any, seed: int = 0) -> np.ndarray:
        """Precomputed embeddings of the run's data (one per image, first `num` images)."""
        from zoo.data.embeddings import load_embedding_arrays

        arrays = load_embedding_arrays(
            embeddings_path(rc.dataset), image_size=self.config.image_size
        )
        rng = np.random.default_rng(seed)
        index = rng.integers(0, len(arrays.embeddings), num)
        column = rng.integers(0, arrays.embeddings.shape[1], num)
        return arrays.embeddings[index, column].astype("float32")

    # -- export -----------------------------------------------------------------------------
    def representative_inputs(
        self, num: int, seed: int = 0, rc: Any = None, signature: str | None = None
    ) -> dict[str, np.ndarray]:
        """Captions of the data (test split) or of the classes; tokens or φ for the numeric
        signatures; data embeddings for an embeddings model."""
        z = GAN.sample_inputs(self, num, seed)["z"]
        if self.tokenizer is None:
            return {"z": z, "embedding": self.data_embeddings(num, rc, seed)}
        captions = self.class_captions(num)[0]
        if rc is not None and not embeddings_path(rc.dataset):
            try:
                from zoo.data.text_dataset import load_caption_arrays

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

    def images_from(self, z: tf.Tensor, h: tf.Tensor) -> dict[str, tf.Tensor]:
        """The served outputs (float32, `images` first) for z and φ(t); no noise drawn."""
        raise NotImplementedError

    def serving_signatures(self) -> dict[str, tuple[Callable[..., dict], dict[str, tf.TensorSpec]]]:
        """`serving_default`: `z` + raw `text` strings (tokenizer and encoder in the graph);
        `tokens`: `z` + token ids (what TFLite takes); `from_embedding`: `z` + φ(t) (or a
        precomputed embedding). An embeddings model serves `from_embedding` only."""
        c = self.config
        z_spec = tf.TensorSpec([None, c.latent_dim], tf.float32, name="z")
        embedding_spec = tf.TensorSpec([None, c.embedding_dim], tf.float32, name="embedding")

        def from_embedding(z: tf.Tensor, embedding: tf.Tensor) -> dict[str, tf.Tensor]:
            return self.images_from(z, embedding)

        if self.tokenizer is None:
            return {"from_embedding": (from_embedding, {"z": z_spec, "embedding": embedding_spec})}
        tokenizer = self.tokenizer.layer

        def from_text(z: tf.Tensor, text: tf.Tensor) -> dict[str, tf.Tensor]:
            return self.images_from(z, self.encode(tokenizer(text)))

        def from_tokens(z: tf.Tensor, tokens: tf.Tensor) -> dict[str, tf.Tensor]:
            return self.images_from(z, self.encode(tokens))

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
