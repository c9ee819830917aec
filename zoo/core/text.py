"""Captions -> token ids -> φ(t): the tokenizer and the text encoder of the text-to-image families.

The tokenizer follows one exact rule (:data:`TOKENIZATION_RULE`) written twice: in plain Python
(:meth:`Tokenizer.tokenize_numpy`, what a phone app reimplements from the export's JSON) and in
TensorFlow ops (:class:`TokenizerLayer`, what a SavedModel serving raw strings runs). Tests hold
the two to exact parity.

The text encoder is a small convolutional network (embedding, two 1-D convolutions, a mean over
the non-padding positions, a dense projection) that converts to TFLite with builtin operators
only. As in Reed et al. (2016) it is pretrained with a joint embedding against image features
(:func:`pretrain_text_encoder`) and then frozen while the GAN trains.

Reference:
  Reed, Akata, Lee, Schiele. "Learning Deep Representations of Fine-Grained Visual
  Descriptions", CVPR 2016. https://arxiv.org/abs/1605.05395
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo.errors import UsageError
from zoo.io import atomic_path, atomic_write_json, read_json

TOKENIZATION_RULE = (
    "lowercase ASCII letters A-Z only (every other character unchanged); replace every maximal "
    "run of characters (Unicode code points; each invalid UTF-8 sequence counts as a character "
    "U+FFFD) not in [a-z0-9] by one space; split on spaces dropping empty pieces; map each "
    "word to its index in the vocabulary (unknown words -> 1); keep the first max_length ids; "
    "pad with 0 at the end to max_length"
)
PAD_ID = 0
OOV_ID = 1
PAD_TOKEN = ""
OOV_TOKEN = "[UNK]"

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_SEPARATORS = "[^a-z0-9]+"
_SEPARATORS_RE = re.compile(_SEPARATORS)
_WORD_RE = re.compile("[a-z0-9]+")

_ENCODER_FORMAT = "ganzoo.text_encoder"
_ENCODER_FORMAT_VERSION = 1
_TOKENIZER_FILE = "tokenizer.json"
_WEIGHTS_FILE = "encoder.weights.h5"
_DESCRIPTION_FILE = "text_encoder.json"


def split_words(text: str | bytes) -> list[str]:
    """The words of one caption under :data:`TOKENIZATION_RULE` (before the vocabulary lookup).

    Bytes are decoded as UTF-8 with invalid sequences replaced by U+FFFD, which, like any
    character outside [a-z0-9], separates words (the TensorFlow side transcodes the same way).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return [
        word for word in _SEPARATORS_RE.sub(" ", text.translate(_ASCII_LOWER)).split(" ") if word
    ]


def _flatten_texts(texts: Iterable[Any]) -> Iterator[str | bytes]:
    if isinstance(texts, np.ndarray):
        texts = texts.ravel().tolist()
    for text in texts:
        if isinstance(text, (str, bytes)):
            yield text
        elif isinstance(text, Iterable):  # a row of captions, e.g. the K of one image
            yield from _flatten_texts(text)
        else:
            raise UsageError(f"captions must be strings, got {type(text).__name__}")


_HASH_BUCKETS = 2**63 - 1  # `to_hash_bucket_fast` = FarmHash Fingerprint64 modulo this


@keras.saving.register_keras_serializable(package="zoo")
class TokenizerLayer(keras.layers.Layer):
    """:data:`TOKENIZATION_RULE` in TensorFlow ops: string ``[batch]`` -> int32 ``[batch, L]``.

    The vocabulary is held as graph constants, not in a lookup-table resource: a word's
    64-bit fingerprint is binary-searched among the vocabulary's sorted fingerprints and the
    word itself is then compared with the vocabulary entry found (so a fingerprint collision
    can never give a wrong id). Without a table there is no resource to track and no
    initializer in a SavedModel, so a model holding this layer saves, serves, runs under
    `tf.distribute` and in `tf.data.Dataset.map`, and the SavedModel's other signatures (the
    ``tokens`` one) still convert to TFLite with `from_saved_model` (a `StaticHashTable`'s
    session initializer makes the converter ask for Flex ops). About as fast as a hash table
    (0.4 ms for 64 captions and 2000 words on one CPU core). Not trainable; int32 outputs
    whatever the dtype policy.

    Args:
      vocabulary: token strings, index = id; ``vocabulary[0] == ""`` (padding) and
        ``vocabulary[1] == "[UNK]"`` (out of vocabulary).
      max_length: ids per caption (longer captions are truncated, shorter ones padded with 0).
    """

    def __init__(self, vocabulary: Sequence[str], max_length: int, **kwargs: Any):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        _check_vocabulary(vocabulary, max_length)
        self.vocabulary = list(vocabulary)
        self.max_length = int(max_length)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        with tf.init_scope():  # eager, even when the layer is made inside a tf.function
            fingerprints = tf.strings.to_hash_bucket_fast(self.vocabulary, _HASH_BUCKETS).numpy()
        order = np.argsort(fingerprints, kind="stable")
        self._fingerprints = fingerprints[order]
        if np.any(self._fingerprints[1:] == self._fingerprints[:-1]):
            raise UsageError("two vocabulary words share a 64-bit fingerprint; drop one of them")
        self._ids = order.astype(np.int32)
        self.built = True

    def _lookup(self, words: tf.Tensor) -> tf.Tensor:
        """Flat words -> ids (OOV_ID for a word not in the vocabulary)."""
        sorted_fingerprints = tf.constant(self._fingerprints, tf.int64)
        fingerprints = tf.strings.to_hash_bucket_fast(words, _HASH_BUCKETS)
        position = tf.minimum(
            tf.searchsorted(sorted_fingerprints, fingerprints, out_type=tf.int32),
            len(self.vocabulary) - 1,
        )
        ids = tf.gather(tf.constant(self._ids, tf.int32), position)
        found = tf.logical_and(
            tf.equal(tf.gather(sorted_fingerprints, position), fingerprints),
            tf.equal(tf.gather(tf.constant(self.vocabulary, tf.string), ids), words),
        )
        return tf.where(found, ids, OOV_ID)

    def call(self, texts: Any) -> tf.Tensor:
        texts = tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1])
        # Invalid UTF-8 becomes U+FFFD (a separator, as in Python's `errors="replace"`); RE2
        # would otherwise keep invalid bytes inside words. `lower` changes ASCII A-Z only.
        texts = tf.strings.unicode_transcode(
            texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        spaced = tf.strings.regex_replace(tf.strings.lower(texts), _SEPARATORS, " ")
        words = tf.strings.split(spaced)  # on whitespace, dropping empty pieces
        ids = tf.ragged.map_flat_values(self._lookup, words)
        return ids.to_tensor(default_value=PAD_ID, shape=[None, self.max_length])

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, int]:
        return (input_shape[0] if input_shape else None, self.max_length)

    def compute_output_spec(self, texts: Any) -> keras.KerasTensor:
        return keras.KerasTensor(self.compute_output_shape(texts.shape), dtype="int32")

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary,
            "max_length": self.max_length,
        }


def _check_vocabulary(vocabulary: Sequence[str], max_length: int) -> None:
    if not isinstance(max_length, (int, np.integer)) or max_length < 1:
        raise UsageError(f"tokenizer max_length must be a positive integer, got {max_length!r}")
    if len(vocabulary) < 2 or vocabulary[PAD_ID] != PAD_TOKEN or vocabulary[OOV_ID] != OOV_TOKEN:
        raise UsageError(
            f"tokenizer vocabulary must start with {PAD_TOKEN!r} (padding) and {OOV_TOKEN!r} "
            "(out of vocabulary)"
        )
    words = vocabulary[2:]
    bad = [w for w in words if not isinstance(w, str) or not _WORD_RE.fullmatch(w)]
    if bad:
        raise UsageError(f"tokenizer vocabulary has words outside [a-z0-9]+: {bad[:3]!r}")
    if len(set(words)) != len(words):
        raise UsageError("tokenizer vocabulary has duplicate words")


class Tokenizer:
    """Words -> ids under :data:`TOKENIZATION_RULE`, in plain Python and in TensorFlow.

    Id 0 is padding (``""``), id 1 is out of vocabulary (``"[UNK]"``); an unknown word is never
    an error. :meth:`to_json` is what an app needs to tokenise without TensorFlow.

    Args:
      vocabulary: token strings, index = id, starting with ``""`` and ``"[UNK]"``; the words
        are unique and made of [a-z0-9] only (anything else could never be produced by the rule).
      max_length: ids per caption.

    Raises:
      UsageError: a vocabulary or length that breaks those conditions.
    """

    def __init__(self, vocabulary: Sequence[str], max_length: int):
        _check_vocabulary(vocabulary, max_length)
        self.vocabulary = list(vocabulary)
        self.max_length = int(max_length)
        self._ids = {word: i for i, word in enumerate(self.vocabulary) if i >= 2}

    @classmethod
    def fit(
        cls, captions: Iterable[str], *, max_length: int = 16, max_vocabulary: int = 2000
    ) -> Tokenizer:
        """Builds the vocabulary from captions: most frequent words first, ties alphabetical.

        Args:
          captions: strings (or nested sequences / arrays of strings, e.g. ``[N, K]``).
          max_length: ids per caption.
          max_vocabulary: vocabulary size including the padding and OOV tokens.

        Returns:
          A deterministic tokenizer (the same captions give the same vocabulary).
        """
        if max_vocabulary < 2:
            raise UsageError(f"max_vocabulary must be at least 2, got {max_vocabulary}")
        counts: Counter[str] = Counter()
        for caption, repeats in Counter(_flatten_texts(captions)).items():
            for word in split_words(caption):
                counts[word] += repeats
        words = sorted(counts, key=lambda word: (-counts[word], word))[: max_vocabulary - 2]
        return cls([PAD_TOKEN, OOV_TOKEN, *words], max_length)

    @property
    def vocabulary_size(self) -> int:
        """Number of ids, padding and OOV included (the text encoder's embedding rows)."""
        return len(self.vocabulary)

    def words(self, text: str | bytes) -> list[str]:
        """The words of one caption (before the vocabulary lookup)."""
        return split_words(text)

    def tokenize_numpy(self, texts: Sequence[str | bytes]) -> np.ndarray:
        """Tokenises in plain Python (no TensorFlow): int32 ``[N, max_length]``.

        Args:
          texts: N captions (str, or UTF-8 bytes as TensorFlow returns them); an array of any
            shape is flattened, so ``[N, K]`` gives ``[N·K, max_length]``.
        """
        if isinstance(texts, (str, bytes)):
            raise UsageError("tokenize_numpy takes a sequence of captions, not one string")
        texts = texts.ravel().tolist() if isinstance(texts, np.ndarray) else list(texts)
        out = np.zeros((len(texts), self.max_length), np.int32)
        for row, text in enumerate(texts):
            ids = [self._ids.get(word, OOV_ID) for word in split_words(text)][: self.max_length]
            out[row, : len(ids)] = ids
        return out

    @functools.cached_property
    def layer(self) -> TokenizerLayer:
        """The Keras layer running the rule in TensorFlow (one per tokenizer, shared)."""
        return TokenizerLayer(self.vocabulary, self.max_length, name="tokenizer")

    def tokenize(self, texts: tf.Tensor) -> tf.Tensor:
        """Tokenises in TensorFlow: tf.string ``[batch]`` -> int32 ``[batch, max_length]``."""
        return self.layer(texts)

    def to_json(self) -> dict[str, Any]:
        """The vocabulary and the rule, as the export's JSON carries them."""
        return {
            "vocabulary": list(self.vocabulary),
            "max_length": self.max_length,
            "pad_id": PAD_ID,
            "oov_id": OOV_ID,
            "rule": TOKENIZATION_RULE,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tokenizer:
        """Inverse of :meth:`to_json`.

        Raises:
          UsageError: missing keys, other special ids, or a rule other than this module's.
        """
        if not isinstance(data, dict) or not {"vocabulary", "max_length"} <= set(data):
            raise UsageError("tokenizer JSON needs 'vocabulary' and 'max_length'")
        if data.get("pad_id", PAD_ID) != PAD_ID or data.get("oov_id", OOV_ID) != OOV_ID:
            raise UsageError(f"tokenizer JSON must use pad_id={PAD_ID} and oov_id={OOV_ID}")
        if data.get("rule", TOKENIZATION_RULE) != TOKENIZATION_RULE:
            raise UsageError("tokenizer JSON was written for another tokenisation rule")
        return cls(data["vocabulary"], data["max_length"])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Tokenizer)
            and self.vocabulary == other.vocabulary
            and self.max_length == other.max_length
        )

    def __hash__(self) -> int:
        return hash((tuple(self.vocabulary), self.max_length))

    def __repr__(self) -> str:
        return f"Tokenizer(vocabulary_size={self.vocabulary_size}, max_length={self.max_length})"


# --------------------------------------------------------------------------- text encoder


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


# --------------------------------------------------------------------------- pretraining


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


@contextlib.contextmanager
def _float32_policy() -> Iterator[None]:
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


_TEMPERATURE = 0.1


def _similarity(image_features: tf.Tensor, text_features: tf.Tensor) -> tf.Tensor:
    """Cosine similarities ``[images, captions]``."""
    return tf.matmul(
        tf.math.l2_normalize(image_features, axis=1),
        tf.math.l2_normalize(text_features, axis=1),
        transpose_b=True,
    )


def joint_embedding_loss(
    similarity: tf.Tensor, positives: tf.Tensor, temperature: float = _TEMPERATURE
) -> tf.Tensor:
    """Symmetric InfoNCE over a batch: each image must pick its caption and each caption its image.

    A contrastive relaxation of Reed et al.'s symmetric structured joint embedding: the
    compatibility of every matching (image, caption) pair must exceed that of the mismatching
    pairs of the batch, in both directions (image -> text and text -> image).

    Args:
      similarity: float ``[B, B]``, entry ``[i, j]`` = compatibility of image i and caption j;
        the diagonal holds the matching pairs.
      positives: bool ``[B, B]``: off-diagonal pairs that also match (identical captions, or
        same-class pairs when those are not to be negatives); they are removed from the
        negatives. The diagonal is ignored.
      temperature: divides the similarities.

    Returns:
      The scalar float32 loss.
    """
    similarity = tf.cast(similarity, tf.float32) / temperature
    batch = tf.shape(similarity)[0]
    diagonal = tf.eye(batch, dtype=tf.bool)
    excluded = tf.logical_and(tf.cast(positives, tf.bool), tf.logical_not(diagonal))
    logits = tf.where(excluded, tf.constant(-1e9, tf.float32), similarity)
    logits_t = tf.where(
        tf.transpose(excluded), tf.constant(-1e9, tf.float32), tf.transpose(similarity)
    )
    targets = tf.range(batch)
    image_to_text = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
    text_to_image = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits_t)
    return 0.5 * (tf.reduce_mean(image_to_text) + tf.reduce_mean(text_to_image))


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
    than to the other captions of the batch and vice versa (:func:`joint_embedding_loss`).
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

    with _float32_policy():
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
                loss = joint_embedding_loss(similarity, positives)
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


# --------------------------------------------------------------------------- save / load


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if value is None or isinstance(value, str):
        return value
    return str(value)


def save_text_encoder(
    directory: str,
    tokenizer: Tokenizer,
    encoder: keras.Model,
    stats: dict[str, Any] | None = None,
) -> None:
    """Writes ``tokenizer.json``, ``encoder.weights.h5`` and ``text_encoder.json`` to `directory`.

    Each file is written atomically; ``text_encoder.json`` (architecture, stats and the SHA-256
    of the other two) goes last, so a reader sees the previous complete set, the new complete
    set, or a set whose checksums do not match (which :func:`load_text_encoder` refuses).
    """
    config = encoder_config(encoder)
    if config["vocabulary_size"] != tokenizer.vocabulary_size:
        raise UsageError(
            f"the encoder has {config['vocabulary_size']} embedding rows but the tokenizer "
            f"{tokenizer.vocabulary_size} ids"
        )
    if config["max_length"] != tokenizer.max_length:
        raise UsageError(
            f"the encoder takes {config['max_length']} tokens but the tokenizer makes "
            f"{tokenizer.max_length}"
        )
    os.makedirs(directory, exist_ok=True)
    tokenizer_path = os.path.join(directory, _TOKENIZER_FILE)
    weights_path = os.path.join(directory, _WEIGHTS_FILE)
    atomic_write_json(tokenizer_path, tokenizer.to_json())
    with atomic_path(weights_path, suffix=".weights.h5") as tmp:
        encoder.save_weights(tmp, overwrite=True)
    atomic_write_json(
        os.path.join(directory, _DESCRIPTION_FILE),
        {
            "format": _ENCODER_FORMAT,
            "version": _ENCODER_FORMAT_VERSION,
            "config": config,
            "stats": _json_value(dict(stats or {})),
            "sha256": {
                _TOKENIZER_FILE: _sha256(tokenizer_path),
                _WEIGHTS_FILE: _sha256(weights_path),
            },
        },
    )


def has_text_encoder(directory: str) -> bool:
    """Whether `directory` holds a saved text encoder (its description file exists)."""
    return os.path.isfile(os.path.join(directory, _DESCRIPTION_FILE))


def load_text_encoder(directory: str) -> tuple[Tokenizer, keras.Model, dict[str, Any]]:
    """Reads what :func:`save_text_encoder` wrote: ``(tokenizer, encoder, stats)``.

    The encoder is built under the current global dtype policy.

    Raises:
      UsageError: (one line) the directory or a file is missing, corrupt or from another save.
    """
    description_path = os.path.join(directory, _DESCRIPTION_FILE)
    if not os.path.isfile(description_path):
        raise UsageError(f"no text encoder in {directory}: {_DESCRIPTION_FILE} is missing")
    description = read_json(description_path)
    if not isinstance(description, dict) or description.get("format") != _ENCODER_FORMAT:
        raise UsageError(f"{description_path} is not a zoo text encoder description")
    if description.get("version") != _ENCODER_FORMAT_VERSION:
        raise UsageError(
            f"{description_path} has format version {description.get('version')!r}; this zoo "
            f"reads version {_ENCODER_FORMAT_VERSION}"
        )
    checksums = description.get("sha256") or {}
    for file in (_TOKENIZER_FILE, _WEIGHTS_FILE):
        path = os.path.join(directory, file)
        if not os.path.isfile(path):
            raise UsageError(f"text encoder in {directory} is incomplete: {file} is missing")
        if _sha256(path) != checksums.get(file):
            raise UsageError(
                f"text encoder in {directory}: {file} does not match {_DESCRIPTION_FILE} "
                "(corrupt, or an interrupted save); pretrain it again"
            )
    tokenizer = Tokenizer.from_json(read_json(os.path.join(directory, _TOKENIZER_FILE)))
    config = description.get("config")
    try:
        encoder = build_text_encoder(**config)
        encoder.load_weights(os.path.join(directory, _WEIGHTS_FILE))
    except (TypeError, ValueError, OSError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"cannot load the text encoder in {directory}: {first}") from err
    if encoder_config(encoder)["vocabulary_size"] != tokenizer.vocabulary_size:
        raise UsageError(f"text encoder in {directory}: tokenizer and encoder sizes differ")
    return tokenizer, encoder, dict(description.get("stats") or {})
