"""Any TFDS image dataset that is already prepared on disk (never downloaded)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from zoo.data.classes import resolve_classes
from zoo.errors import UsageError, first_line

# Elements are shuffled through a buffer this large (the split is not in memory).
SHUFFLE_BUFFER = 4096

_VERSION = re.compile(r"[\d.*]+")


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """An opened TFDS split.

    Attributes:
      dataset: Elements {"image": uint8 [H, W, C], "label": int32 []} (label only if the
        dataset has one), filtered to the chosen classes, in file order.
      name: Dataset name as given (maybe with config and version).
      image_shape: Static image shape; None entries vary between images.
      num_examples: Examples in the split, or None when unknown (after a class filter).
      class_names: Names of the "label" ClassLabel, or None.
    """

    dataset: tf.data.Dataset
    name: str
    image_shape: tuple[int | None, ...]
    num_examples: int | None
    class_names: tuple[str, ...] | None


def parse_tfds_spec(rest: str, split: str) -> tuple[str, str]:
    """Splits "NAME[:VERSION][:SPLIT]" (the part after "tfds:") into name and split.

    A last part made of digits, dots and `*` is a version ("mnist:3.0.1"), otherwise it
    is the split ("mnist:test", "mnist:3.*.*:train[:10%]" also works).
    """
    parts = rest.split(":")
    if not parts[0]:
        raise UsageError("tfds: needs a dataset name, e.g. tfds:mnist or tfds:mnist:test")
    if len(parts) == 1:
        return parts[0], split
    if len(parts) == 2:
        if _VERSION.fullmatch(parts[1]):
            return rest, split
        return parts[0], parts[1]
    return ":".join(parts[:2]), ":".join(parts[2:])


def open_tfds(
    name: str,
    split: str,
    *,
    data_dir: str | None = None,
    classes: Sequence[str | int] | None = None,
) -> TfdsSource:
    """Opens a prepared TFDS split without ever downloading.

    The check is `builder.as_dataset` itself, which fails at once when the data is not
    on disk; `builder.is_prepared()` is not used because `tfds.testing.mock_data` does
    not patch it (it would report mocked datasets as missing) while it does patch
    `as_dataset`. `download_and_prepare` is never called and GCS is not tried.

    Args:
      name: TFDS name, e.g. "mnist" or "celeb_a:2.*.*".
      split: TFDS split string, e.g. "train" or "test[:50%]".
      data_dir: TFDS data dir; default `$TFDS_DATA_DIR` or ~/tensorflow_datasets.
      classes: Keep only these classes (names or indices of the "label" feature).

    Returns:
      A `TfdsSource`.

    Raises:
      UsageError: Unknown dataset, not prepared, no "image" feature, bad split, or
        unknown class.
    """
    import tensorflow_datasets as tfds  # Slow import, only for tfds: specs.
    from google.protobuf import json_format

    try:
        builder = tfds.builder(name, data_dir=data_dir, try_gcs=False)
        features = builder.info.features
    except tfds.core.registered.DatasetNotFoundError as e:
        raise UsageError(f"unknown TFDS dataset {name!r}; see the TFDS catalog for names") from e
    except (ValueError, AssertionError, json_format.ParseError) as e:
        # A damaged dataset_info.json or features.json under data_dir lands here too.
        raise UsageError(f"cannot open TFDS dataset {name!r}: {first_line(e)}") from e
    if "image" not in features:
        raise UsageError(f"TFDS dataset {name!r} has no 'image' feature")
    image_feature = features["image"]
    if image_feature.np_dtype != np.uint8:
        raise UsageError(f"TFDS dataset {name!r} has {image_feature.np_dtype} images, not uint8")
    class_names = None
    has_label = "label" in features
    if has_label and isinstance(features["label"], tfds.features.ClassLabel):
        class_names = tuple(features["label"].names)
    try:
        dataset = builder.as_dataset(
            split=split,
            shuffle_files=False,
            read_config=tfds.ReadConfig(try_autocache=False),
        )
    except AssertionError as e:
        raise UsageError(
            f"TFDS dataset {name!r} is not prepared in {builder.data_dir}; prepare it on a "
            f"machine with network (tfds build {name}) or pass --data_dir=DIR holding it"
        ) from e
    except (ValueError, KeyError) as e:
        raise UsageError(f"bad split {split!r} for TFDS dataset {name!r}: {first_line(e)}") from e

    def select(example):
        out = {"image": example["image"]}
        if has_label:
            out["label"] = tf.cast(example["label"], tf.int32)
        return out

    dataset = dataset.map(select, num_parallel_calls=tf.data.AUTOTUNE)
    num_examples = None
    if split in builder.info.splits:
        num_examples = builder.info.splits[split].num_examples or None
    if num_examples is None:
        cardinality = int(dataset.cardinality())
        num_examples = cardinality if cardinality >= 0 else None
    if classes is not None:
        keep = tf.constant(resolve_classes(classes, class_names), tf.int32)
        dataset = dataset.filter(lambda ex: tf.reduce_any(tf.equal(ex["label"], keep)))
        num_examples = None  # Counting would read the whole split.
    return TfdsSource(
        dataset=dataset,
        name=name,
        image_shape=tuple(image_feature.shape),
        num_examples=num_examples,
        class_names=class_names,
    )
