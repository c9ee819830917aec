"""Pretraining the text encoder with a joint embedding against images (Reed et al. 2016).

:func:`pretrain_text_encoder` trains on arrays; :func:`pretrain_and_save` loads a dataset's
captions, pretrains and saves (what a run's preparation and `python -m zoo.tools text_encoder`
both do).

Reference:
  Reed, Akata, Lee, Schiele. "Learning Deep Representations of Fine-Grained Visual
  Descriptions", CVPR 2016. https://arxiv.org/abs/1605.05395
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo.core.distribute import float32_policy
from zoo.core.losses import contrastive_joint_embedding_loss
from zoo.errors import UsageError
from zoo.text.encoder import build_text_encoder
from zoo.text.store import save_text_encoder
from zoo.text.tokenizer import Tokenizer


def _build_image_encoder(image_shape: tuple[int, ...], output_dim: int, seed: int) -> keras.Model:
    """A small CNN: uint8-range images -> [B, output_dim] (three stride-2 convolutions)."""
    images = keras.Input(shape=image_shape, dtype="float32", name="images")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(images)
    for i, filters in enumerate((32, 64, 128)):
        x = keras.layers.Conv2D(
            filters,
            3,
            strides=2,
            padding="same",
            activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 10 + i),
        )(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(
        output_dim, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 20)
    )(x)
    return keras.Model(images, outputs, name="image_encoder")


def _similarity(image_features: tf.Tensor, text_features: tf.Tensor) -> tf.Tensor:
    """Cosine similarities ``[images, captions]``."""
    return tf.matmul(
        tf.math.l2_normalize(image_features, axis=1),
        tf.math.l2_normalize(text_features, axis=1),
        transpose_b=True,
    )


def _same_rows(tokens: np.ndarray) -> np.ndarray:
    return np.all(tokens[:, None, :] == tokens[None, :, :], axis=-1)


def pretrain_text_encoder(
    images: np.ndarray,
    captions: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    steps: int = 1000,
    batch_size: int = 64,
    output_dim: int = 128,
    max_length: int = 16,
    embedding_dim: int = 64,
    units: int = 128,
    seed: int = 0,
    progress: bool = True,
    same_class_negatives: bool = True,
    learning_rate: float = 1e-3,
) -> tuple[Tokenizer, keras.Model, dict[str, Any]]:
    """Pretrains a text encoder with a joint embedding against an image encoder (Reed et al.).

    Fits the tokenizer on every caption, then trains :func:`build_text_encoder` together with a
    small CNN image encoder so that each image is closer (cosine) to one of its own captions
    than to the other captions of the batch and vice versa
    (`zoo.core.losses.contrastive_joint_embedding_loss`).
    Each step draws `batch_size` distinct training images and one caption of each. Pairs with
    token-identical captions are never negatives of each other.

    Same-class pairs: with `labels` and ``same_class_negatives=True`` (the default) they stay
    negatives, because the captions describe each image (brightness, size) and the GAN must
    follow those words, which a class-level loss would not teach. ``same_class_negatives=False``
    removes them from the negatives (Reed et al.'s class-level view).

    A held-out slice (10% of the images, at most 1000, at least 2 when there are 4 or more
    images) never trains; on it, in chunks of `batch_size`, each image is scored on whether the
    caption ranked first among the chunk's captions (each image's first caption) is its own
    (token-identical captions count as its own).

    Deterministic for a given seed on one device. Builds and trains in float32 whatever the
    global dtype policy (rebuild with :func:`encoder_config` for mixed precision), on the
    default strategy: call it outside any `strategy.scope()` and build the GAN's copy inside.

    Args:
      images: uint8 ``[N, H, W, C]``.
      captions: strings ``[N, K]`` (K captions per image).
      labels: optional int ``[N]`` class ids (for ``same_class_negatives`` and the class
        retrieval figure).
      steps: optimisation steps.
      batch_size: pairs per step (capped by the number of training images).
      output_dim: size of φ(t).
      max_length: tokens per caption.
      embedding_dim, units: the text encoder's word embedding size and filters.
      seed: seeds the split, the batches and the initial weights.
      progress: show a `keras.utils.Progbar`.
      same_class_negatives: see above.
      learning_rate: Adam's learning rate.

    Returns:
      ``(tokenizer, text_encoder, stats)``; stats has ``final_loss`` (mean of the last 10% of
      the steps), ``retrieval_accuracy`` and ``retrieval_chance`` on the held-out slice
      (NaN without one), ``class_retrieval_accuracy`` when labels are given, and the settings.

    Raises:
      UsageError: mismatched or empty inputs.

    Reference:
      Reed, Akata, Lee, Schiele (2016), "Learning Deep Representations of Fine-Grained Visual
      Descriptions", CVPR.
    """
    images = np.asarray(images)
    captions = np.asarray(captions)
    if images.ndim != 4 or len(images) < 2:
        raise UsageError(f"images must be [N >= 2, H, W, C], got shape {images.shape}")
    if captions.ndim == 1:
        captions = captions[:, None]
    if captions.ndim != 2 or len(captions) != len(images) or captions.shape[1] < 1:
        raise UsageError(
            f"captions must be [N, K] with N = {len(images)} images, got shape {captions.shape}"
        )
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(images):
            raise UsageError(f"labels must be [N = {len(images)}], got shape {labels.shape}")
    if steps < 0 or batch_size < 2:
        raise UsageError("pretraining needs steps >= 0 and batch_size >= 2")

    tokenizer = Tokenizer.fit(captions, max_length=max_length)
    # Template captions repeat a lot: tokenise each distinct one once.
    distinct, inverse = np.unique(captions.reshape(-1), return_inverse=True)
    tokens = tokenizer.tokenize_numpy(distinct)[inverse.reshape(-1)].reshape(
        len(captions), captions.shape[1], max_length
    )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    heldout_count = min(max(len(images) // 10, 2), 1000) if len(images) >= 4 else 0
    heldout, train = order[:heldout_count], order[heldout_count:]
    batch = min(batch_size, len(train))

    with float32_policy():
        text_encoder = build_text_encoder(
            vocabulary_size=tokenizer.vocabulary_size,
            max_length=max_length,
            embedding_dim=embedding_dim,
            units=units,
            output_dim=output_dim,
            seed=seed,
        )
        image_encoder = _build_image_encoder(images.shape[1:], output_dim, seed)
        optimizer = keras.optimizers.Adam(learning_rate)
        variables = text_encoder.trainable_variables + image_encoder.trainable_variables
        optimizer.build(variables)

        @tf.function(reduce_retracing=True)
        def train_step(image_batch: tf.Tensor, token_batch: tf.Tensor, positives: tf.Tensor):
            with tf.GradientTape() as tape:
                similarity = _similarity(
                    image_encoder(tf.cast(image_batch, tf.float32), training=True),
                    text_encoder(token_batch, training=True),
                )
                loss = contrastive_joint_embedding_loss(similarity, positives)
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return loss

        bar = (
            keras.utils.Progbar(steps, stateful_metrics=["loss"], unit_name="step")
            if progress and steps
            else None
        )
        losses = []
        for step in range(steps):
            rows = train[rng.choice(len(train), batch, replace=False)]
            picked = tokens[rows, rng.integers(0, tokens.shape[1], batch)]
            positives = _same_rows(picked)
            if labels is not None and not same_class_negatives:
                positives |= labels[rows][:, None] == labels[rows][None, :]
            loss = float(train_step(images[rows], picked, positives))
            losses.append(loss)
            if bar is not None:
                bar.update(step + 1, values=[("loss", loss)])

        stats = _retrieval_stats(
            image_encoder, text_encoder, images, tokens, labels, heldout, batch
        )
    tail = losses[-max(1, steps // 10) :]
    stats.update(
        final_loss=float(np.mean(tail)) if losses else math.nan,
        steps=int(steps),
        batch_size=int(batch),
        heldout_images=int(heldout_count),
        vocabulary_size=tokenizer.vocabulary_size,
        same_class_negatives=bool(same_class_negatives),
        seed=int(seed),
    )
    return tokenizer, text_encoder, stats


def _retrieval_stats(
    image_encoder: keras.Model,
    text_encoder: keras.Model,
    images: np.ndarray,
    tokens: np.ndarray,
    labels: np.ndarray | None,
    heldout: np.ndarray,
    batch: int,
) -> dict[str, float]:
    hits, chance, class_hits, count = 0.0, 0.0, 0.0, 0
    for start in range(0, len(heldout), batch):
        rows = heldout[start : start + batch]
        if len(rows) < 2:
            continue
        picked = tokens[rows, 0]
        similarity = _similarity(
            image_encoder(images[rows].astype(np.float32), training=False),
            text_encoder(picked, training=False),
        ).numpy()
        best = similarity.argmax(axis=1)
        same = _same_rows(picked)
        hits += float(same[np.arange(len(rows)), best].sum())
        chance += float(same.mean(axis=1).sum())
        if labels is not None:
            class_hits += float((labels[rows][best] == labels[rows]).sum())
        count += len(rows)
    stats = {
        "retrieval_accuracy": hits / count if count else math.nan,
        "retrieval_chance": chance / count if count else math.nan,
    }
    if labels is not None:
        stats["class_retrieval_accuracy"] = class_hits / count if count else math.nan
    return stats


def pretrain_and_save(
    directory: str,
    dataset: str,
    *,
    data_dir: str | None = None,
    classes: Sequence[str | int] | None = None,
    captions_per_image: int = 10,
    seed: int = 0,
    steps: int = 1000,
    output_dim: int = 128,
    max_length: int = 16,
    embedding_dim: int = 64,
    units: int = 128,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> tuple[Tokenizer, keras.Model, dict[str, Any]]:
    """Writes `captions_per_image` captions per image of `dataset`, pretrains on them and saves.

    Args:
      directory: where :func:`zoo.text.store.save_text_encoder` writes the encoder.
      dataset: a caption dataset spec (`zoo.data.load_caption_arrays`).
      data_dir: where the dataset's files are.
      classes: keep only these classes.
      captions_per_image: captions written per image.
      seed: seeds the captions and the pretraining.
      steps, output_dim, max_length, embedding_dim, units, progress: as in
        :func:`pretrain_text_encoder`.
      log: called with a line before pretraining and one with the held-out retrieval after.

    Returns:
      ``(tokenizer, text_encoder, stats)`` as :func:`pretrain_text_encoder` returns them.

    Raises:
      UsageError: unknown or missing data, a dataset without classes, bad sizes.
    """
    from zoo.data.text_dataset import load_caption_arrays

    arrays = load_caption_arrays(
        dataset, data_dir=data_dir, classes=classes, per_image=captions_per_image, seed=seed
    )
    if log is not None:
        log(
            f"pretraining the text encoder on {len(arrays.images)} captioned images "
            f"({steps} steps) into {directory}"
        )
    tokenizer, encoder, stats = pretrain_text_encoder(
        arrays.images,
        arrays.captions,
        arrays.labels,
        steps=steps,
        output_dim=output_dim,
        max_length=max_length,
        embedding_dim=embedding_dim,
        units=units,
        seed=seed,
        progress=progress,
    )
    save_text_encoder(directory, tokenizer, encoder, stats)
    if log is not None:
        log(
            f"text encoder: held-out caption retrieval {stats.get('retrieval_accuracy', 0):.3f} "
            f"(chance {stats.get('retrieval_chance', 0):.3f})"
        )
    return tokenizer, encoder, stats
