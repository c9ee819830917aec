"""Two image domains as one stream of unpaired (a, b) batches, for image-to-image families.

Sources:
  - `folder:PATH` with `trainA/ trainB/` (and optionally `testA/ testB/`) sub-folders: the
    layout of the public CycleGAN datasets.
  - `tfds:cycle_gan/NAME`: TFDS's CycleGAN datasets (splits trainA, trainB, testA, testB).
  - Any labelled dataset (`fashion_mnist`, `mnist`, `folder:PATH` with class sub-folders,
    `tfds:NAME`) with one class set per domain: `domain_a="sandal", domain_b="sneaker"` (names
    or indices; several classes separated by commas).

Each domain is its own `zoo.data.make_dataset` stream, shuffled with its own seed (`seed` for A,
`seed + 1` for B) and batched; the pair stream zips them, so `start_step=k` gives exactly the
uninterrupted stream with its first k pairs of batches dropped.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from zoo.data import dataset as zoo_dataset
from zoo.data import toys
from zoo.data.tfds_source import parse_tfds_spec
from zoo.errors import UsageError

UNPAIRED_FOLDERS = ("trainA", "trainB")
CYCLE_GAN_TFDS = "cycle_gan"


@dataclasses.dataclass(frozen=True)
class DomainSource:
    """Where one domain's images come from: arguments of `zoo.data.make_dataset`."""

    spec: str
    split: str
    classes: tuple[str, ...] | None


def _classes(flag: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in str(flag).split(",") if c.strip())


def _labelled_usage(spec: str) -> UsageError:
    return UsageError(
        f"{spec} is a labelled dataset: pick the two domains with --domain_a=CLASS "
        "--domain_b=CLASS (names or indices, e.g. --domain_a=sandal --domain_b=sneaker)"
    )


def domain_sources(
    spec: str, domain_a: str = "", domain_b: str = "", split: str = "train"
) -> tuple[DomainSource, DomainSource]:
    """Resolves a dataset spec and domain flags into the sources of domains A and B.

    Args:
      spec: dataset spec (see the module docstring).
      domain_a, domain_b: class(es) of each domain for labelled datasets; empty otherwise.
      split: "train" or "test" (unpaired sources read `<split>A` / `<split>B`; a folder
        without `testA/ testB/` falls back to `trainA/ trainB/`).

    Returns:
      The two `DomainSource`s.

    Raises:
      UsageError: toy data, missing or superfluous domain flags, the same class in both.
    """
    text = spec.strip() if isinstance(spec, str) else ""
    given = bool(_classes(domain_a)) or bool(_classes(domain_b))
    if text.lower().replace("-", "_") in toys.TOY_NAMES:
        raise UsageError(f"{text} gives vectors; image-to-image families need two image domains")
    if text.startswith("folder:"):
        root = os.path.expanduser(text[len("folder:") :])
        if all(os.path.isdir(os.path.join(root, d)) for d in UNPAIRED_FOLDERS):
            if given:
                raise UsageError(
                    f"{root} holds trainA/ and trainB/, which are the domains; "
                    "drop --domain_a/--domain_b"
                )
            sub = split if split in ("train", "test") else "train"
            if not all(os.path.isdir(os.path.join(root, f"{sub}{d}")) for d in "AB"):
                sub = "train"
            a, b = (
                DomainSource(f"folder:{os.path.join(root, sub + d)}", "train", None) for d in "AB"
            )
            return a, b
    if text.startswith("tfds:"):
        name, spec_split = parse_tfds_spec(text[len("tfds:") :], "")
        if name.split(":")[0].split("/")[0] == CYCLE_GAN_TFDS:
            if given:
                raise UsageError(f"{text} has its domains as splits A and B; drop --domain_a/b")
            if spec_split:
                raise UsageError(
                    f"{text}: the split is chosen per domain (trainA/trainB); drop :{spec_split}"
                )
            sub = split if split in ("train", "test") else "train"
            a, b = (DomainSource(f"tfds:{name}:{sub}{d}", sub + d, None) for d in "AB")
            return a, b
    classes_a, classes_b = _classes(domain_a), _classes(domain_b)
    if not classes_a or not classes_b:
        raise _labelled_usage(text or repr(spec))
    return DomainSource(text, split, classes_a), DomainSource(text, split, classes_b)


def _stream(
    source: DomainSource,
    *,
    batch_size: int,
    seed: int,
    start_step: int,
    data_dir: str | None,
    image_size: int | None,
    channels: int | None,
    examples_per_class: int,
) -> tuple[tf.data.Dataset, zoo_dataset.DatasetInfo]:
    return zoo_dataset.make_dataset(
        source.spec,
        batch_size=batch_size,
        seed=seed,
        start_step=start_step,
        split=source.split,
        data_dir=data_dir,
        image_size=image_size,
        channels=channels,
        classes=list(source.classes) if source.classes else None,
        examples_per_class=examples_per_class,
    )


def _label(info: zoo_dataset.DatasetInfo, source: DomainSource) -> str:
    if source.classes is None:
        return f"{info.name}:{source.split}" if source.spec.startswith("tfds:") else info.name
    return f"{info.name}[{','.join(source.classes)}]"


def make_domain_dataset(
    spec: str,
    *,
    batch_size: int,
    domain_a: str = "",
    domain_b: str = "",
    seed: int = 0,
    start_step: int = 0,
    split: str = "train",
    data_dir: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    examples_per_class: int = 0,
) -> tuple[tf.data.Dataset, zoo_dataset.DatasetInfo]:
    """An infinite stream of unpaired batches (a, b), each float32 [B, H, W, C] in [-1, 1].

    Args:
      spec: dataset spec (see the module docstring).
      batch_size: images per domain in a batch.
      domain_a, domain_b: class(es) of each domain of a labelled dataset.
      seed: shuffle seed of domain A; domain B uses `seed + 1`.
      start_step: pairs of batches to drop (the checkpoint's step); exact.
      split: "train" or "test".
      data_dir: where the dataset's files are searched first.
      image_size, channels: size and channels of the images (needed for sources whose images
        vary in size, such as `tfds:cycle_gan/*`).
      examples_per_class: the first N examples of each class of each domain (0 = all).

    Returns:
      The dataset and a `DatasetInfo` (name "A-source|B-source", shape of one image,
      examples of both domains together when known, unreadable files of both).

    Raises:
      UsageError: bad spec or flags, missing data, unknown class, domains of different shapes.
    """
    source_a, source_b = domain_sources(spec, domain_a, domain_b, split)
    if source_a.classes and source_b.classes and set(source_a.classes) == set(source_b.classes):
        raise UsageError(f"--domain_a and --domain_b are both {','.join(source_a.classes)}")
    common = dict(
        batch_size=batch_size,
        start_step=start_step,
        data_dir=data_dir,
        image_size=image_size,
        channels=channels,
        examples_per_class=examples_per_class,
    )
    stream_a, info_a = _stream(source_a, seed=seed, **common)
    stream_b, info_b = _stream(source_b, seed=seed + 1, **common)
    if info_a.shape != info_b.shape:
        raise UsageError(
            f"domains A and B hold images of different shapes ({info_a.shape} and "
            f"{info_b.shape}); set image_size and channels"
        )
    counts = (info_a.num_examples, info_b.num_examples)
    info = zoo_dataset.DatasetInfo(
        name=f"{_label(info_a, source_a)}|{_label(info_b, source_b)}",
        kind="image",
        shape=info_a.shape,
        num_examples=None if None in counts else sum(counts),
        class_names=info_a.class_names,
        skipped_files=info_a.skipped_files + info_b.skipped_files,
    )
    options = tf.data.Options()
    options.deterministic = True
    pairs = tf.data.Dataset.zip((stream_a, stream_b)).with_options(options)
    return pairs.prefetch(tf.data.AUTOTUNE), info


def load_domain_images(
    spec: str,
    num: int,
    *,
    domain_a: str = "",
    domain_b: str = "",
    seed: int = 0,
    split: str = "test",
    data_dir: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed set of `num` real images of each domain (sample pictures, export inputs).

    The test split is used when the source has one, otherwise the training split; the same
    arguments give the same images.

    Returns:
      float32 numpy arrays [num, H, W, C] in [-1, 1] for domains A and B.
    """
    kwargs: dict = dict(
        batch_size=num,
        domain_a=domain_a,
        domain_b=domain_b,
        seed=seed,
        data_dir=data_dir,
        image_size=image_size,
        channels=channels,
    )
    try:
        pairs, _ = make_domain_dataset(spec, split=split, **kwargs)
    except UsageError:
        if split == "train":
            raise
        pairs, _ = make_domain_dataset(spec, split="train", **kwargs)
    a, b = next(iter(pairs))
    return np.asarray(a), np.asarray(b)
