"""The run side every text-to-image family shares (`TextTask`): the text encoder pretrained
into the run directory on first use and loaded as a warm start, caption (or embedding) data,
pictures on data embeddings, and the exports: `serving_default` on raw strings (tokenizer and
encoder in the graph), `tokens` (what TFLite takes) and `from_embedding`, with the tokenizer in
the export's JSON."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf

from zoo import text as zoo_text
from zoo.core.latent import sample_z
from zoo.data import DatasetInfo
from zoo.data.embeddings import load_embedding_arrays
from zoo.data.text_dataset import load_caption_arrays, make_text_dataset
from zoo.errors import UsageError
from zoo.models.task import SignatureTable, Task, dataset_options
from zoo.models.text_family import (
    EMBEDDINGS_PREFIX,
    TEXT_ENCODER_DIR,
    TextConditionedGAN,
    embeddings_path,
)
from zoo.run import RunConfig


def ensure_text_encoder(rc: RunConfig, config: Any) -> Any:
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


class TextTask(Task):
    """Base of the text-to-image families' tasks: run preparation (the text encoder), caption
    data, pictures on data embeddings, and the string / token / embedding exports."""

    model_class: ClassVar[type[TextConditionedGAN]] = TextConditionedGAN

    # -- run preparation and data -----------------------------------------------------------
    def prepare_run(self, rc: RunConfig, config: Any) -> Any:
        """Precomputed embeddings: their size; captions: the run's text encoder (pretrained on
        first use)."""
        path = embeddings_path(rc.dataset)
        if path is not None:
            arrays = load_embedding_arrays(path, image_size=config.image_size)
            return dataclasses.replace(
                config, text_input="embeddings", embedding_dim=int(arrays.embeddings.shape[-1])
            )
        if config.text_input != "captions":
            raise UsageError(f"text_input=embeddings needs --dataset={EMBEDDINGS_PREFIX}PATH.npz")
        return ensure_text_encoder(rc, config)

    def warm_start(self, model: TextConditionedGAN, rc: RunConfig) -> None:
        """Loads the pretrained text encoder of the run directory."""
        if model.text_encoder is None:
            return
        _, encoder, _ = zoo_text.load_text_encoder(os.path.join(rc.model_dir, TEXT_ENCODER_DIR))
        model.text_encoder.set_weights(encoder.get_weights())

    def adapt_config(self, config: Any, info: DatasetInfo) -> Any:
        config = super().adapt_config(config, info)
        return dataclasses.replace(config, class_names=tuple(info.class_names or ()))

    def training_image_size(self, config: Any) -> int:
        """Side of the training images (the config's `image_size`; StackGAN's phase 1 less)."""
        return config.image_size

    def training_dataset(
        self, rc: RunConfig, config: Any, *, batch_size: int, start_step: int
    ) -> tuple[tf.data.Dataset, DatasetInfo]:
        """(images, text, mismatching text, labels, attributes) batches; captions arrive as
        token ids; labels are -1 where the data has none (the class head's targets
        otherwise); attributes (int32 [B, 2]) what the text states of brightness and size, -1
        where it is silent (the attribute head's targets; all -1 for embeddings)."""
        dataset, info = make_text_dataset(
            rc.dataset,
            image_size=self.training_image_size(config),
            channels=config.channels,
            captions_per_image=config.captions_per_image,
            **dataset_options(rc, batch_size=batch_size, start_step=start_step),
        )
        if config.text_input == "embeddings":

            def embedding_batch(e: dict[str, tf.Tensor]) -> tuple[tf.Tensor, ...]:
                return (
                    e["images"],
                    e["embedding"],
                    e["mismatched_embedding"],
                    e["labels"],
                    e["attributes"],
                )

            return dataset.map(embedding_batch), info
        tokenizer = zoo_text.TokenizerLayer(config.vocabulary, config.max_length)

        def caption_batch(e: dict[str, tf.Tensor]) -> tuple[tf.Tensor, ...]:
            text, mismatched = tokenizer(e["text"]), tokenizer(e["mismatched_text"])
            return e["images"], text, mismatched, e["labels"], e["attributes"]

        return dataset.map(caption_batch), info

    def data_embeddings(
        self, model: TextConditionedGAN, num: int, rc: RunConfig | None, seed: int = 0
    ) -> np.ndarray:
        """Precomputed embeddings of the run's data (one per image, first `num` images)."""
        if rc is None:
            raise UsageError(
                f"a {self.name} trained on precomputed embeddings samples from its run's data"
            )
        arrays = load_embedding_arrays(
            embeddings_path(rc.dataset), image_size=model.config.image_size
        )
        rng = np.random.default_rng(seed)
        index = rng.integers(0, len(arrays.embeddings), num)
        column = rng.integers(0, arrays.embeddings.shape[1], num)
        return arrays.embeddings[index, column].astype("float32")

    def picture_inputs(
        self, model: TextConditionedGAN, num: int, rc: RunConfig | None
    ) -> tuple[dict[str, Any], list[str] | None]:
        """Inputs of the sample picture and its row names: captions, one row per class and a
        column per attribute; on precomputed embeddings, `num` of the data's (no row names)."""
        if model.tokenizer is None:
            z = sample_z(num, model.noise_dim, seed=0)
            return {"z": z, "embedding": self.data_embeddings(model, num, rc)}, None
        return model.caption_grid_inputs()

    # -- export -----------------------------------------------------------------------------
    def representative_inputs(
        self,
        model: TextConditionedGAN,
        num: int,
        seed: int = 0,
        rc: RunConfig | None = None,
        signature: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Captions of the data (test split) or of the classes; tokens or φ for the numeric
        signatures; data embeddings for an embeddings model."""
        z = sample_z(num, model.noise_dim, seed)
        if model.tokenizer is None:
            return {"z": z, "embedding": self.data_embeddings(model, num, rc, seed)}
        captions = model.class_captions(num)[0]
        if rc is not None and not embeddings_path(rc.dataset):
            try:
                arrays = load_caption_arrays(
                    rc.dataset, split="test", data_dir=rc.data_dir, per_image=1, seed=seed
                )
                rng = np.random.default_rng(seed)
                captions = arrays.captions[rng.integers(0, len(arrays.captions), num), 0]
            except UsageError:
                pass  # no test split here: the class captions stand in
        captions = np.asarray([str(t) for t in captions], dtype=object)
        tokens = model.tokenizer.tokenize_numpy(list(captions))
        if signature == "tokens":
            return {"z": z, "tokens": tokens}
        if signature == "from_embedding":
            return {"z": z, "embedding": np.asarray(model.encode(tf.constant(tokens)))}
        return {"z": z, "text": captions}

    def serving_signatures(self, model: TextConditionedGAN) -> SignatureTable:
        """`serving_default`: `z` + raw `text` strings (tokenizer and encoder in the graph);
        `tokens`: `z` + token ids (what TFLite takes); `from_embedding`: `z` + φ(t) (or a
        precomputed embedding). An embeddings model serves `from_embedding` only."""
        c = model.config
        z_spec = tf.TensorSpec([None, model.noise_dim], tf.float32, name="z")
        embedding_spec = tf.TensorSpec([None, c.embedding_dim], tf.float32, name="embedding")

        def from_embedding(z: tf.Tensor, embedding: tf.Tensor) -> dict[str, tf.Tensor]:
            return model.images_from(z, embedding)

        if model.tokenizer is None:
            return {"from_embedding": (from_embedding, {"z": z_spec, "embedding": embedding_spec})}
        tokenizer = model.tokenizer.layer

        def from_text(z: tf.Tensor, text: tf.Tensor) -> dict[str, tf.Tensor]:
            return model.images_from(z, model.encode(tokenizer(text)))

        def from_tokens(z: tf.Tensor, tokens: tf.Tensor) -> dict[str, tf.Tensor]:
            return model.images_from(z, model.encode(tokens))

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

    def tflite_signatures(self, model: TextConditionedGAN) -> list[str]:
        return ["from_embedding"] if model.tokenizer is None else ["tokens", "from_embedding"]

    def export_metadata(self, model: TextConditionedGAN) -> dict[str, Any]:
        return {} if model.tokenizer is None else {"tokenizer": model.tokenizer.to_json()}
