"""Images from a folder tree, decoded with PIL into memory."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from collections.abc import Sequence

import numpy as np
from absl import logging
from PIL import Image

from zoo.data.classes import resolve_classes
from zoo.errors import UsageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# Above this many files a progress bar is shown.
PROGRESS_MIN_FILES = 300


@dataclasses.dataclass(frozen=True)
class FolderImages:
    """What `load_folder` found.

    Attributes:
      images: uint8 [N, H, W, C].
      labels: int32 [N] (indices into the unfiltered `class_names`), or None.
      class_names: Sorted sub-folder names, or None when the images sit in one folder.
      skipped_files: Files with an image extension that could not be decoded.
    """

    images: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None
    skipped_files: int


def eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit greyscale image (PIL mode `I;16*` or `I`, as PNG decodes) scaled to 8-bit `L`
    (value / 257, rounded); any other image unchanged. PIL's own `convert("L")` clips such an
    image to 255 instead of scaling it."""
    if not (image.mode == "I" or image.mode.startswith("I;16")):
        return image
    values = np.asarray(image).astype(np.float64)
    return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")


def _image_files(root: str) -> list[str]:
    """All image files under `root`, sorted, skipping hidden files and folders."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(dirpath, name))
    return found


def _decode(path: str, mode: str, image_size: int | None) -> np.ndarray | None:
    """Decodes one file to a [H, W, C] uint8 array, or None when it is unreadable."""
    try:
        with Image.open(path) as image:
            image = eight_bit(image).convert(mode)  # Forces the full decode.
            if image_size is not None and image.size != (image_size, image_size):
                image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
            array = np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        logging.debug("Skipping unreadable image %s: %s", path, e)
        return None
    return array[..., None] if array.ndim == 2 else array


def _progress(iterable, total: int, desc: str):
    if total < PROGRESS_MIN_FILES:
        return iterable
    try:
        from tqdm import tqdm  # Optional: TFDS depends on it.
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="img", mininterval=0.5)


def load_folder(
    path: str,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    classes: Sequence[str | int] | None = None,
) -> FolderImages:
    """Loads every PNG/JPEG under `path` into memory (16-bit PNGs scaled to 8 bits).

    If `path` has sub-folders that hold images, each sub-folder (sorted by name) is a
    class and its images (found recursively) are labelled with its index; images lying
    directly in `path` are then ignored. Otherwise all images are unlabelled.
    Corrupt or unreadable files are skipped, counted and reported with one warning.

    Args:
      path: The root folder.
      image_size: Resize every image to image_size x image_size (bicubic, aspect ratio
        not kept). Without it all images must have the same size.
      channels: 1 decodes to grayscale, 3 (the default) to RGB.
      classes: Keep only these classes (names or indices); needs class sub-folders.

    Returns:
      A `FolderImages`.

    Raises:
      UsageError: Missing path, no (readable) images, unknown class, or mixed sizes
        without `image_size`.
    """
    root = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(root):
        raise UsageError(f"folder {root} does not exist")
    subdirs = sorted(
        d
        for d in os.listdir(root)
        if not d.startswith(".") and os.path.isdir(os.path.join(root, d))
    )
    per_class = [(d, _image_files(os.path.join(root, d))) for d in subdirs]
    per_class = [(d, files) for d, files in per_class if files]
    if per_class:
        class_names: tuple[str, ...] | None = tuple(d for d, _ in per_class)
        top_level = [
            f
            for f in os.listdir(root)
            if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(root, f))
        ]
        if top_level:
            logging.warning(
                "Ignoring %d images directly in %s: its sub-folders are the classes",
                len(top_level),
                root,
            )
        keep = range(len(per_class))
        if classes is not None:
            keep = resolve_classes(classes, class_names)
        files = [f for i in keep for f in per_class[i][1]]
        file_labels = [i for i in keep for _ in per_class[i][1]]
    else:
        class_names = None
        if classes is not None:
            resolve_classes(classes, None)  # Raises: no classes here.
        files = _image_files(root)
        file_labels = []
    if not files:
        raise UsageError(f"no PNG or JPEG images found in {root}")

    mode = "L" if channels == 1 else "RGB"
    workers = min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        decoded = list(
            _progress(
                pool.map(lambda f: _decode(f, mode, image_size), files),
                total=len(files),
                desc=f"Loading {root}",
            )
        )
    good = [i for i, a in enumerate(decoded) if a is not None]
    skipped = len(files) - len(good)
    if skipped:
        logging.warning("Skipped %d unreadable image files of %d in %s", skipped, len(files), root)
    if not good:
        raise UsageError(f"none of the {len(files)} image files in {root} could be decoded")
    shapes = {decoded[i].shape for i in good}
    if len(shapes) > 1:
        examples = ", ".join("x".join(map(str, s[:2])) for s in sorted(shapes)[:3])
        raise UsageError(
            f"images in {root} have different sizes ({examples}, ...); pass image_size"
        )
    images = np.stack([decoded[i] for i in good])
    labels = np.asarray([file_labels[i] for i in good], np.int32) if class_names else None
    return FolderImages(images, labels, class_names, skipped)
