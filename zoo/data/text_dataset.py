"""Images with text for text-to-image families: captions or precomputed embeddings.

Specs:
  - `fashion_mnist`, `mnist`, `folder:PATH` (class sub-folders needed): images with
    captions written by `zoo.data.captions` from the class and the measured brightness
    and size. Elements: {"images", "text", "mismatched_text", "labels", "attributes"}
    ("attributes": what the drawn caption states of brightness and size, -1 where silent).
  - `embeddings:PATH.npz`: images with precomputed embeddings (layout in
    `zoo.data.embeddings`). Elements: {"images", "embedding", "mismatched_embedding",
    "labels", "attributes"} (attributes all -1: nothing is known of what they state).

Per step each image gets one of its K captions (or embeddings) drawn at random, and a
mismatching one: a caption (embedding) of another image of a different class where
classes are known, else of any other image. Images visit in the same order as
`zoo.data.make_dataset` with the same seed; all draws are stateless functions of (seed,
step), so `start_step=k` yields exactly the uninterrupted stream minus its first k
batches, in O(1).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from zoo.data import captions as captions_lib
from zoo.data.classes import first_per_class, resolve_classes
from zoo.data.dataset import DatasetInfo, _check_args, _output_shape, _preprocess, load_arrays
from zoo.errors import UsageError

EMBEDDINGS_PREFIX = "embeddings:"
CAPTION_SPECS = ("fashion_mnist", "mnist", "folder:PATH")

_INT64_MAX = np.iinfo(np.int64).max
# Salt that keeps the text draws' random stream apart from the shuffle's.
_DRAW_SALT = 0x7E47


@dataclasses.dataclass(frozen=True)
class CaptionArrays:
    """A labelled image set with generated captions.

    Attributes:
      images: uint8 [N, H, W, C].
      labels: int32 [N], indices into class_names.
      class_names: All class names of the dataset.
      captions: str [N, K].
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    captions: np.ndarray


def load_caption_arrays(
    spec: str = "fashion_mnist",
    *,
    split: str = "train",
    data_dir: str | None = None,
    classes: Sequence[str | int] | None = None,
    per_image: int = 10,
    seed: int = 0,
    image_size: int | None = None,
    channels: int | None = None,
) -> CaptionArrays:
    """Loads a labelled in-memory dataset and writes `per_image` captions per image.

    Captions are measured on the images as stored (before any resizing in the stream).

    Args:
      spec: "fashion_mnist", "mnist" or "folder:PATH" with class sub-folders.
      split: "train" or "test" (IDX sources).
      data_dir: Folder with the IDX files, searched first.
      classes: Keep only these classes (names or indices).
      per_image: Captions per image (K).
      seed: Caption seed (see `zoo.data.captions.make_captions`).
      image_size: Folders only: resize while decoding (needed for mixed sizes).
      channels: Folders only: 1 decodes to grayscale, 3 (default) to RGB.

    Returns:
      A `CaptionArrays`.

    Raises:
      UsageError: Unknown spec, missing data, a dataset without classes, bad arguments.
    """
    images, labels, class_names = load_arrays(
        spec,
        split=split,
        data_dir=data_dir,
        classes=classes,
        image_size=image_size,
        channels=channels,
    )
    if labels is None or class_names is None:
        raise UsageError(
            f"captions are written from class names, and {spec} has none; use class "
            "sub-folders or an embeddings:PATH.npz dataset"
        )
    if len(images) == 0:
        raise UsageError(f"{spec} has no examples of classes {list(classes or [])}")
    text = captions_lib.make_captions(images, labels, class_names, per_image=per_image, seed=seed)
    return CaptionArrays(images, labels.astype(np.int32), tuple(class_names), text)


def _mismatch_tables(
    labels: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Examples sorted by class (`order`), and each example's class block in it.

    Another example of a different class than example i is `order[u]` for u drawn from
    the n - count[i] positions outside [start[i], start[i] + count[i]). None without
    labels or with fewer than two classes.
    """
    if labels is None or len(np.unique(labels)) < 2:
        return None
    order = np.argsort(labels, kind="stable").astype(np.int64)
    values, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    where = np.searchsorted(values, labels)
    return order, starts[where].astype(np.int64), counts[where].astype(np.int64)


def _text_stream(
    images: np.ndarray,
    labels: np.ndarray | None,
    texts: np.ndarray,
    attributes: np.ndarray,
    *,
    text_key: str,
    batch_size: int,
    seed: int,
    start_step: int,
    image_size: int | None,
    channels: int | None,
) -> tf.data.Dataset:
    """The stream of {images, <text_key>, mismatched_<text_key>, labels, attributes} batches
    (`attributes`: int32 [N, K, 2], what each of the K texts states, gathered with the text).

    Epoch e visits the examples in the permutation keyed by (seed, e), as
    `zoo.data.make_dataset` does; the caption choices and mismatching partners of step
    s are stateless draws keyed by (seed, s).
    """
    n, per_image = texts.shape[:2]
    if n < 2:
        raise UsageError("a text dataset needs at least 2 images (for mismatching text)")
    tables = _mismatch_tables(labels)
    if labels is None:
        labels = np.full(n, -1, np.int32)
    elif tables is None:
        logging.warning("Only one class: mismatching text comes from other images of it")
    no_classes = tables is None
    order, class_start, class_count = tables or (np.zeros(1, np.int64),) * 3
    images_t = tf.constant(images)
    labels_t = tf.constant(labels.astype(np.int32))
    texts_t = tf.constant(texts)
    attributes_t = tf.constant(attributes.astype(np.int32))
    order_t = tf.constant(order)
    start_t = tf.constant(class_start)
    count_t = tf.constant(class_count)
    seed_t = tf.constant(seed, tf.int64)
    start_epoch, offset = divmod(start_step * batch_size, n)

    def epoch_indices(epoch):
        permutation = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([seed_t, epoch])
        )
        begin = tf.where(epoch == start_epoch, tf.constant(offset, tf.int64), 0)
        return permutation[begin:]

    def make_batch(indices, step):
        key = tf.random.experimental.stateless_fold_in(
            tf.stack([seed_t, tf.constant(_DRAW_SALT, tf.int64)]), step
        )
        draws = tf.random.stateless_uniform(
            [batch_size, 3], seed=key, minval=None, maxval=None, dtype=tf.int64
        )
        choice = tf.math.floormod(draws[:, 0], per_image)
        if no_classes:  # Any other example: skip over the example itself.
            u = tf.math.floormod(draws[:, 1], n - 1)
            partner = u + tf.cast(u >= indices, tf.int64)
        else:  # An example outside the class's block of `order`.
            start, count = tf.gather(start_t, indices), tf.gather(count_t, indices)
            u = tf.math.floormod(draws[:, 1], n - count)
            partner = tf.gather(order_t, u + tf.where(u >= start, count, 0))
        partner_choice = tf.math.floormod(draws[:, 2], per_image)
        drawn = tf.stack([indices, choice], axis=1)
        return {
            "images": _preprocess(tf.gather(images_t, indices), image_size, channels),
            text_key: tf.gather_nd(texts_t, drawn),
            f"mismatched_{text_key}": tf.gather_nd(
                texts_t, tf.stack([partner, partner_choice], axis=1)
            ),
            "labels": tf.gather(labels_t, indices),
            "attributes": tf.gather_nd(attributes_t, drawn),
        }

    dataset = tf.data.Dataset.range(start_epoch, _INT64_MAX).map(epoch_indices).unbatch()
    dataset = dataset.batch(batch_size, drop_remainder=True)
    steps = tf.data.Dataset.range(start_step, _INT64_MAX)
    dataset = tf.data.Dataset.zip(dataset, steps)
    return dataset.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE)


def make_text_dataset(
    spec: str,
    *,
    batch_size: int,
    seed: int = 0,
    start_step: int = 0,
    split: str = "train",
    data_dir: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    classes: Sequence[str | int] | None = None,
    captions_per_image: int = 10,
    examples_per_class: int = 0,
) -> tuple[tf.data.Dataset, DatasetInfo]:
    """Builds an infinite, shuffled, batched, prefetched stream of images with text.

    Caption specs ("fashion_mnist", "mnist", "folder:PATH") give elements
    {"images": float32 [B, H, W, C] in [-1, 1], "text": tf.string [B], "mismatched_text":
    tf.string [B], "labels": int32 [B], "attributes": int32 [B, 2]} (the brightness and size
    the drawn caption states, `zoo.data.captions.stated_attributes`: indices into
    BRIGHTNESS_WORDS / SIZE_WORDS, -1 where it states none); `embeddings:PATH.npz` gives
    {"images", "embedding": float32 [B, D], "mismatched_embedding": float32 [B, D],
    "labels": int32 [B], -1 when the npz has no labels, "attributes": int32 [B, 2], all -1}.
    "text"/"embedding" is one of the image's K drawn afresh each step; the mismatched one
    belongs to another image of a different class (any other image when classes are unknown
    or only one is kept).

    Resuming: `start_step=k` yields exactly the uninterrupted stream with its first k
    batches dropped, without touching them. Same arguments, same stream.

    Args:
      spec: "fashion_mnist", "mnist", "folder:PATH" or "embeddings:PATH.npz".
      batch_size: The global batch size.
      seed: Stream seed (shuffle order, text draws) and caption seed.
      start_step: Number of batches to drop from the start (the checkpoint's step).
      split: "train" or "test" (IDX sources; ignored by folders and npz files).
      data_dir: Folder with the IDX files, searched first.
      image_size: Resize images to image_size x image_size.
      channels: Convert images to 1 (grayscale) or 3 (RGB) channels.
      classes: Keep only these classes (names or indices; npz files need class_names).
      captions_per_image: Captions written per image (caption specs only).
      examples_per_class: Keep only the first N images of each class, with their text
        (0 = all; npz files need labels).

    Returns:
      The dataset and its `DatasetInfo` (shape is the image shape).

    Raises:
      UsageError: Unknown spec, missing or corrupt data, no classes for captions,
        unknown class, bad arguments.
    """
    _check_args(batch_size, start_step, image_size, channels)
    batch_size, start_step = int(batch_size), int(start_step)
    text = spec.strip() if isinstance(spec, str) else ""
    if text.startswith(EMBEDDINGS_PREFIX):
        path = os.path.abspath(os.path.expanduser(text[len(EMBEDDINGS_PREFIX) :]))
        if not text[len(EMBEDDINGS_PREFIX) :]:
            raise UsageError("embeddings: needs a path, e.g. embeddings:/data/cub/train.npz")
        from zoo.data.embeddings import load_embedding_arrays  # `python -m` runs it as main.

        loaded = load_embedding_arrays(path, image_size=image_size, channels=channels)
        images, labels, texts = loaded.images, loaded.labels, loaded.embeddings
        class_names, skipped = loaded.class_names, loaded.skipped_files
        attributes = np.full((*texts.shape[:2], 2), -1, np.int32)
        if classes is not None:
            if labels is None or class_names is None:
                raise UsageError(f"{path} has no 'labels' and 'class_names'; drop classes")
            keep = np.isin(labels, resolve_classes(classes, class_names))
            if not keep.any():
                raise UsageError(f"{path} has no examples of classes {list(classes)}")
            images, labels, texts = images[keep], labels[keep], texts[keep]
            attributes = attributes[keep]
        name, text_key = EMBEDDINGS_PREFIX + path, "embedding"
        stream_size, stream_channels = None, channels
    else:
        if text.lower().replace("-", "_") not in ("fashion_mnist", "mnist") and not (
            text.startswith("folder:")
        ):
            raise UsageError(
                f"unknown text dataset {spec!r}; known: {', '.join(CAPTION_SPECS)}, "
                "embeddings:PATH.npz"
            )
        arrays = load_caption_arrays(
            text,
            split=split,
            data_dir=data_dir,
            classes=classes,
            per_image=captions_per_image,
            seed=seed,
            image_size=image_size if text.startswith("folder:") else None,
            channels=channels if text.startswith("folder:") else None,
        )
        images, labels, texts = arrays.images, arrays.labels, arrays.captions.astype(object)
        class_names, skipped = arrays.class_names, 0
        attributes = captions_lib.stated_attributes(arrays.captions, class_names)
        if text.startswith("folder:"):
            name = "folder:" + os.path.abspath(os.path.expanduser(text[len("folder:") :]))
        else:
            name = text.lower().replace("-", "_")
        text_key = "text"
        stream_size, stream_channels = image_size, channels
    if examples_per_class:
        keep = first_per_class(labels, examples_per_class, name)
        images, labels, texts = images[keep], labels[keep], texts[keep]
        attributes = attributes[keep]
    dataset = _text_stream(
        images,
        labels,
        texts,
        attributes,
        text_key=text_key,
        batch_size=batch_size,
        seed=seed,
        start_step=start_step,
        image_size=stream_size,
        channels=stream_channels,
    )
    shape = _output_shape(images.shape[1:], image_size, channels)
    info = DatasetInfo(name, "image", shape, len(images), class_names, skipped)
    options = tf.data.Options()
    options.deterministic = True
    dataset = dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
    logging.info("Text dataset %s: %s", spec, info)
    return dataset, info
