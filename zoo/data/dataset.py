"""One entry point from a dataset spec string to an infinite, resumable `tf.data` stream.

Specs:
  - `fashion_mnist`, `mnist`: IDX files (see `zoo.data.idx`), in memory.
  - `folder:PATH`: PNG/JPEG files under PATH, sub-folders are classes, in memory.
  - `tfds:NAME[:SPLIT]`: a TFDS image dataset already prepared on disk, streamed.
  - `ring8`, `grid25`, `gaussian1d`: synthetic 2-D/1-D mixtures (see `zoo.data.toys`).

Every stream is a pure function of (spec, split, seed, batch_size, filters): resuming
with `start_step=k` gives exactly the uninterrupted stream with its first k batches
dropped.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from zoo.data import folders, idx, tfds_source, toys
from zoo.data.classes import first_per_class, resolve_classes
from zoo.errors import UsageError

IDX_NAMES = ("fashion_mnist", "mnist")
DATASET_NAMES = IDX_NAMES + toys.TOY_NAMES
SPEC_FORMS = ("tfds:NAME[:SPLIT]", "folder:PATH")

_INT64_MAX = np.iinfo(np.int64).max


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a stream made by `make_dataset` holds.

    Attributes:
      name: Canonical name: "fashion_mnist", "tfds:mnist", "folder:/abs/path", "ring8".
      kind: "image" or "vector".
      shape: Shape of one element after preprocessing: (H, W, C) or (D,).
      num_examples: Examples in the split after class filtering; None for the infinite
        toys, and for class-filtered TFDS splits (counting would read the whole split).
      class_names: All class names of the dataset (not only the kept ones), or None.
      skipped_files: Corrupt or unreadable files skipped (folders only).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    num_examples: int | None
    class_names: tuple[str, ...] | None
    skipped_files: int = 0


@dataclasses.dataclass(frozen=True)
class _InMemory:
    name: str
    images: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None
    skipped_files: int


def _parse_spec(spec: str) -> tuple[str, str]:
    """Returns (source kind, argument): ("idx", name), ("toy", name), ("tfds", rest), ..."""
    text = spec.strip() if isinstance(spec, str) else ""
    if text.startswith("tfds:"):
        return "tfds", text[len("tfds:") :]
    if text.startswith("folder:"):
        if not text[len("folder:") :]:
            raise UsageError("folder: needs a path, e.g. folder:/data/faces")
        return "folder", text[len("folder:") :]
    name = text.lower().replace("-", "_")
    if name in IDX_NAMES:
        return "idx", name
    if name in toys.TOY_NAMES:
        return "toy", name
    raise UsageError(f"unknown dataset {spec!r}; known: {', '.join(DATASET_NAMES + SPEC_FORMS)}")


def _load_in_memory(
    kind: str,
    arg: str,
    *,
    split: str,
    data_dir: str | None,
    classes: Sequence[str | int] | None,
    image_size: int | None = None,
    channels: int | None = None,
) -> _InMemory:
    if kind == "idx":
        images, labels, class_names = idx.load_mnist_like(arg, split, data_dir)
        if classes is not None:
            keep = np.isin(labels, resolve_classes(classes, class_names))
            images, labels = images[keep], labels[keep]
        return _InMemory(arg, images, labels, class_names, 0)
    if kind == "folder":
        loaded = folders.load_folder(arg, image_size=image_size, channels=channels, classes=classes)
        name = "folder:" + os.path.abspath(os.path.expanduser(arg))
        return _InMemory(
            name, loaded.images, loaded.labels, loaded.class_names, loaded.skipped_files
        )
    raise UsageError(
        f"load_arrays reads in-memory sources ({', '.join(IDX_NAMES)}, folder:PATH), "
        f"not {kind} datasets"
    )


def load_arrays(
    spec: str,
    *,
    split: str = "train",
    data_dir: str | None = None,
    classes: Sequence[str | int] | None = None,
    image_size: int | None = None,
    channels: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...] | None]:
    """Loads an in-memory source as numpy arrays (e.g. real images for metrics).

    Args:
      spec: "fashion_mnist", "mnist" or "folder:PATH".
      split: "train" or "test" (IDX sources; folders have one split).
      data_dir: Folder searched first for IDX files.
      classes: Keep only these classes (names or indices); labels keep their original
        class indices.
      image_size: Folders only: resize while decoding (needed for mixed sizes).
      channels: Folders only: 1 decodes to grayscale, 3 (default) to RGB.

    Returns:
      Images uint8 [N, H, W, C] (C = 1 or 3), labels int32 [N] or None, class names or
      None.

    Raises:
      UsageError: Unknown spec, a streamed or toy source, missing data, unknown class.
    """
    kind, arg = _parse_spec(spec)
    source = _load_in_memory(
        kind,
        arg,
        split=split,
        data_dir=data_dir,
        classes=classes,
        image_size=image_size,
        channels=channels,
    )
    return source.images, source.labels, source.class_names


def _preprocess(images: tf.Tensor, image_size: int | None, channels: int | None) -> tf.Tensor:
    """uint8 [..., H, W, C] -> float32 in [-1, 1], resized and with `channels` channels."""
    x = tf.cast(images, tf.float32)
    if x.shape[-1] in (2, 4):  # Drop alpha.
        x = x[..., : x.shape[-1] - 1]
    if channels == 3 and x.shape[-1] == 1:
        x = tf.image.grayscale_to_rgb(x)
    elif channels == 1 and x.shape[-1] == 3:
        x = tf.image.rgb_to_grayscale(x)
    if image_size is not None and tuple(x.shape[-3:-1]) != (image_size, image_size):
        x = tf.image.resize(x, [image_size, image_size], antialias=True)
    return tf.clip_by_value(x / 127.5 - 1.0, -1.0, 1.0)


def _output_shape(
    image_shape: Sequence[int | None], image_size: int | None, channels: int | None
) -> tuple[int | None, ...]:
    height, width, depth = image_shape
    if depth in (2, 4):
        depth -= 1
    if image_size is not None:
        height = width = image_size
    return (height, width, channels or depth)


def _in_memory_stream(
    source: _InMemory,
    *,
    batch_size: int,
    seed: int,
    start_step: int,
    image_size: int | None,
    channels: int | None,
    with_labels: bool,
) -> tf.data.Dataset:
    """Epoch e visits the examples in the order of a permutation keyed by (seed, e).

    Resuming computes the epoch and offset of element start_step * batch_size and starts
    there, so nothing before it is touched.
    """
    n = len(source.images)
    start_epoch, offset = divmod(start_step * batch_size, n)
    images = tf.constant(source.images)
    labels = tf.constant(source.labels) if with_labels else None
    seed_t = tf.constant(seed, tf.int64)

    def epoch_indices(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([seed_t, epoch])
        )
        begin = tf.where(epoch == start_epoch, tf.constant(offset, tf.int64), 0)
        return order[begin:]

    def gather(indices):
        x = _preprocess(tf.gather(images, indices), image_size, channels)
        return (x, tf.gather(labels, indices)) if with_labels else x

    dataset = tf.data.Dataset.range(start_epoch, _INT64_MAX).map(epoch_indices).unbatch()
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE)


def _tfds_stream(
    source: tfds_source.TfdsSource,
    *,
    batch_size: int,
    seed: int,
    start_step: int,
    image_size: int | None,
    channels: int | None,
    with_labels: bool,
) -> tf.data.Dataset:
    """Repeat, shuffle through a buffer with a fixed seed, skip the resumed elements.

    The buffer holds `tfds_source.SHUFFLE_BUFFER` elements, or the whole split if smaller.

    Resuming skips start_step * batch_size elements, which reads and decodes them: exact,
    but slower than the in-memory sources. The shuffle order depends on `seed` and on
    TensorFlow's global seed, which the trainer sets from the same config every run.
    """

    def preprocess(example):
        x = _preprocess(example["image"], image_size, channels)
        return (x, example["label"]) if with_labels else x

    buffer = min(tfds_source.SHUFFLE_BUFFER, source.num_examples or tfds_source.SHUFFLE_BUFFER)
    dataset = source.dataset.repeat().shuffle(buffer, seed=seed)
    if start_step:
        dataset = dataset.skip(start_step * batch_size)
    dataset = dataset.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True)


def _check_args(
    batch_size: int, start_step: int, image_size: int | None, channels: int | None
) -> None:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(start_step, (int, np.integer)) or start_step < 0:
        raise UsageError(f"start_step must be a non-negative integer, got {start_step!r}")
    if image_size is not None and (not isinstance(image_size, (int, np.integer)) or image_size < 1):
        raise UsageError(f"image_size must be a positive integer, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise UsageError(f"channels must be 1 or 3, got {channels!r}")


def make_dataset(
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
    with_labels: bool = False,
    examples_per_class: int = 0,
) -> tuple[tf.data.Dataset, DatasetInfo]:
    """Builds an infinite, shuffled, batched, prefetched stream from a dataset spec.

    Images come as float32 [B, H, W, C] in [-1, 1]; toys as float32 [B, D]. Batches
    never run short (drop_remainder) and may span epoch boundaries. With
    `with_labels=True` each element is (x, labels int32 [B]); labels are the dataset's
    original class indices (indices into `DatasetInfo.class_names`, which always lists
    every class), also when `classes` keeps only some; for toys the label is the index
    of the mode (see `toy_modes`) a point was drawn from.

    Resuming: `start_step=k` yields exactly the uninterrupted stream with its first k
    batches dropped. It is O(1) for toys and in-memory sources (no skipped image is
    touched); for `tfds:` the skipped elements are read and dropped (exact but slower).
    Same arguments and seed give the same stream, run to run.

    Args:
      spec: "fashion_mnist", "mnist", "tfds:NAME[:SPLIT]", "folder:PATH", "ring8",
        "grid25" or "gaussian1d".
      batch_size: The global batch size (a distribution strategy splits it).
      seed: Stream seed (shuffle order, toy samples).
      start_step: Number of batches to drop from the start (the checkpoint's step).
      split: Dataset split ("train"/"test" for IDX, any TFDS split string); a split in a
        `tfds:` spec overrides it. Ignored by folders and toys.
      data_dir: Folder with the IDX files, or the TFDS data dir; searched first.
      image_size: Resize images to image_size x image_size.
      channels: Convert images to 1 (grayscale) or 3 (RGB) channels.
      classes: Keep only these classes (names, case-insensitive, or indices).
      with_labels: Yield (x, labels) instead of x.
      examples_per_class: Keep only the first N examples of each (kept) class, in the
        files' order (0 = all); labelled in-memory sources (IDX, class folders) only.

    Returns:
      The dataset and its `DatasetInfo`.

    Raises:
      UsageError: Unknown spec, missing or corrupt data, unknown class, bad arguments.
    """
    _check_args(batch_size, start_step, image_size, channels)
    batch_size, start_step = int(batch_size), int(start_step)
    kind, arg = _parse_spec(spec)
    stream_args = dict(
        batch_size=batch_size, seed=seed, start_step=start_step, with_labels=with_labels
    )
    if examples_per_class and kind not in ("idx", "folder"):
        raise UsageError(
            f"examples_per_class works on {', '.join(IDX_NAMES)} and folder:PATH, not {spec!r}"
        )
    if kind == "toy":
        if image_size is not None or channels is not None:
            logging.warning("%s is a vector dataset: image_size and channels are ignored", arg)
        if classes is not None:
            raise UsageError(f"{arg} is a toy dataset without classes; drop --classes")
        dataset = toys.toy_dataset(arg, **stream_args)
        dim = toys.toy_modes(arg)[0].shape[1]
        info = DatasetInfo(arg, "vector", (dim,), None, None)
    elif kind == "tfds":
        name, tfds_split = tfds_source.parse_tfds_spec(arg, split)
        source = tfds_source.open_tfds(name, tfds_split, data_dir=data_dir, classes=classes)
        if with_labels and source.class_names is None:
            raise UsageError(f"tfds:{name} has no 'label' class feature; drop with_labels")
        shape = _output_shape(source.image_shape, image_size, channels)
        if None in shape:
            raise UsageError(f"tfds:{name} images vary in size; pass image_size")
        dataset = _tfds_stream(source, image_size=image_size, channels=channels, **stream_args)
        info = DatasetInfo(f"tfds:{name}", "image", shape, source.num_examples, source.class_names)
    else:
        source = _load_in_memory(
            kind,
            arg,
            split=split,
            data_dir=data_dir,
            classes=classes,
            image_size=image_size,
            channels=channels,
        )
        if len(source.images) == 0:
            raise UsageError(f"{source.name} has no examples of classes {list(classes or [])}")
        if examples_per_class:
            keep = first_per_class(source.labels, examples_per_class, source.name)
            labels = source.labels[keep]
            source = dataclasses.replace(source, images=source.images[keep], labels=labels)
        if with_labels and source.labels is None:
            raise UsageError(
                f"{source.name} has no labels (no class sub-folders); drop with_labels"
            )
        dataset = _in_memory_stream(source, image_size=image_size, channels=channels, **stream_args)
        shape = _output_shape(source.images.shape[1:], image_size, channels)
        info = DatasetInfo(
            source.name,
            "image",
            shape,
            len(source.images),
            source.class_names,
            source.skipped_files,
        )
    options = tf.data.Options()
    options.deterministic = True
    dataset = dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
    logging.info("Dataset %s: %s", spec, info)
    return dataset, info
