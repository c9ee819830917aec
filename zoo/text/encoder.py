"""Token ids -> φ(t): the convolutional text encoder of the text-to-image families.

A small convolutional network (embedding, two 1-D convolutions, a mean over the non-padding
positions, a dense projection) that converts to TFLite with builtin operators only. As in Reed
et al. (2016) it is pretrained with a joint embedding against image features
(`zoo.text.pretrain`) and then frozen while the GAN trains.

Reference:
  Reed, Akata, Lee, Schiele. "Learning Deep Representations of Fine-Grained Visual
  Descriptions", CVPR 2016. https://arxiv.org/abs/1605.05395
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from zoo.errors import UsageError
from zoo.text.tokenizer import PAD_ID


@keras.saving.register_keras_serializable(package="zoo")
class ZeroPadding(keras.layers.Layer):
    """Zeroes the positions of padding tokens: ``(features [B, L, C], tokens [B, L]) -> [B, L, C]``.

    Applied before each convolution, it makes a caption's encoding independent of how much
    padding follows it.
    """

    def call(self, inputs: Sequence[Any]) -> Any:
        features, tokens = inputs
        mask = keras.ops.cast(keras.ops.not_equal(tokens, PAD_ID), features.dtype)
        return features * keras.ops.expand_dims(mask, -1)

    def compute_output_shape(self, input_shape: Sequence[Any]) -> Any:
        return input_shape[0]


@keras.saving.register_keras_serializable(package="zoo")
class MaskedMeanPooling(keras.layers.Layer):
    """Masked mean ``sum(x·mask) / max(sum(mask), 1)``: ``[B, L, C] -> [B, C]``.

    An all-padding caption gives zeros (then the projection's bias), never NaN. Build it with
    ``dtype="float32"`` to average in float32 under a mixed policy.
    """

    def call(self, inputs: Sequence[Any]) -> Any:
        features, tokens = inputs
        mask = keras.ops.cast(keras.ops.not_equal(tokens, PAD_ID), features.dtype)
        total = keras.ops.sum(features * keras.ops.expand_dims(mask, -1), axis=1)
        count = keras.ops.maximum(keras.ops.sum(mask, axis=1, keepdims=True), 1.0)
        return total / count

    def compute_output_shape(self, input_shape: Sequence[Any]) -> Any:
        features = input_shape[0]
        return (features[0], features[2])


def _seeded(initializer: type, seed: int | None, offset: int, **kwargs: Any) -> Any:
    return initializer(seed=None if seed is None else seed + offset, **kwargs)


def build_text_encoder(
    *,
    vocabulary_size: int,
    max_length: int,
    embedding_dim: int = 64,
    units: int = 128,
    output_dim: int = 128,
    name: str = "text_encoder",
    seed: int | None = None,
) -> keras.Model:
    """The convolutional text encoder: tokens int32 ``[B, max_length]`` -> φ(t) float32 ``[B, D]``.

    Embedding -> Conv1D(units, 3, ReLU) x 2 (padding positions zeroed before each) -> mean over
    the non-padding positions -> Dense(output_dim, float32). Every op has a TFLite builtin
    kernel. The hidden layers follow the global dtype policy; the pooling and the projection
    compute in float32, so φ(t) is float32 under a mixed policy.

    Args:
      vocabulary_size: embedding rows (:attr:`Tokenizer.vocabulary_size`).
      max_length: tokens per caption.
      embedding_dim: word embedding size.
      units: filters of each convolution.
      output_dim: size D of φ(t).
      name: the model's name.
      seed: seeds the initial weights (None: Keras' global seed state).

    Returns:
      A functional `keras.Model` with input ``tokens`` and output φ(t).

    Reference:
      Reed et al. (2016), "Learning Deep Representations of Fine-Grained Visual Descriptions"
      (the convolutional branch of their text encoders).
    """
    for arg, value in (
        ("vocabulary_size", vocabulary_size),
        ("max_length", max_length),
        ("embedding_dim", embedding_dim),
        ("units", units),
        ("output_dim", output_dim),
    ):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise UsageError(f"text encoder {arg} must be a positive integer, got {value!r}")
    tokens = keras.Input(shape=(max_length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(
        vocabulary_size,
        embedding_dim,
        embeddings_initializer=_seeded(
            keras.initializers.RandomUniform, seed, 0, minval=-0.05, maxval=0.05
        ),
        name="embedding",
    )(tokens)
    for i in (1, 2):
        x = ZeroPadding(name=f"zero_padding{i}")([x, tokens])
        x = keras.layers.Conv1D(
            units,
            3,
            padding="same",
            activation="relu",
            kernel_initializer=_seeded(keras.initializers.GlorotUniform, seed, i),
            name=f"conv{i}",
        )(x)
    x = MaskedMeanPooling(dtype="float32", name="masked_mean")([x, tokens])
    outputs = keras.layers.Dense(
        output_dim,
        dtype="float32",
        kernel_initializer=_seeded(keras.initializers.GlorotUniform, seed, 3),
        name="projection",
    )(x)
    return keras.Model(tokens, outputs, name=name)


def encoder_config(encoder: keras.Model) -> dict[str, Any]:
    """The :func:`build_text_encoder` arguments that rebuild `encoder` (e.g. in float32 at export).

    Raises:
      UsageError: `encoder` was not made by :func:`build_text_encoder`.
    """
    try:
        embedding = encoder.get_layer("embedding")
        return {
            "vocabulary_size": int(embedding.input_dim),
            "max_length": int(encoder.inputs[0].shape[1]),
            "embedding_dim": int(embedding.output_dim),
            "units": int(encoder.get_layer("conv1").filters),
            "output_dim": int(encoder.get_layer("projection").units),
            "name": encoder.name,
        }
    except (ValueError, AttributeError, IndexError) as err:
        raise UsageError(f"{encoder.name!r} is not a zoo text encoder: {err}") from err
