"""Precomputed text embeddings per image, the form public text-to-image datasets ship.

The `.npz` layout read by `load_embedding_arrays` (and by the `embeddings:PATH.npz`
dataset spec of `zoo.data.text_dataset.make_text_dataset`):

  - `embeddings`: float [N, K, D], K embeddings (one per caption) of image n; [N, D] is
    read as K = 1. CUB and Oxford-102 ship K = 10, D = 1024 (char-CNN-RNN).
  - `filenames`: str [N], image paths relative to the images folder. A name without an
    image extension (as in StackGAN's `filenames.pickle`) is looked up with `.jpg`,
    `.jpeg` and `.png` appended.
  - `images_dir` (optional): str scalar, the images folder; a relative path is relative
    to the npz's folder. Default: `images/` beside the npz.
  - `labels` (optional): int [N], class of each image (>= 0). Without it, mismatching
    embeddings come from any other image.
  - `class_names` (optional): str [C]; labels then index into it.

StackGAN's pickles (`char-CNN-RNN-embeddings.pickle`, `filenames.pickle`,
`class_info.pickle`, written under Python 2) convert to this layout with
`convert_stackgan_pickles`, or from the shell:

  python -m zoo.data.embeddings --pickle=train/char-CNN-RNN-embeddings.pickle \\
      --out=train/embeddings.npz --images_dir=../CUB_200_2011/images

A pickle is a program: `restricted_load` runs only the opcodes that rebuild numpy
arrays, lists, dicts, strings and numbers, and refuses every other global.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
import pickle
import struct
import sys
import zipfile
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np
from absl import logging

from zoo.data import folders
from zoo.errors import UsageError

DEFAULT_IMAGES_DIR = "images"
_IMAGE_EXTENSIONS = ("", ".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


@dataclasses.dataclass(frozen=True)
class EmbeddingArrays:
    """Images with their precomputed text embeddings, as read from an npz.

    Attributes:
      images: uint8 [N, H, W, C].
      embeddings: float32 [N, K, D].
      labels: int32 [N], or None when the npz has no labels.
      class_names: Names the labels index into, or None.
      filenames: The npz's filenames of the kept images, [N].
      skipped_files: Images that exist but could not be decoded (dropped with their
        embeddings).
    """

    images: np.ndarray
    embeddings: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None
    filenames: np.ndarray
    skipped_files: int = 0


# ----------------------------------------------------------------------------------------
# Restricted unpickling


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """`_codecs.encode` as Python 3 pickles of bytes (protocol < 3) use it: latin-1 only."""
    if str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise UsageError(f"refusing _codecs.encode with encoding {encoding!r} in a pickle")
    return text.encode("latin-1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The globals numpy arrays and scalars need to unpickle, under old and new names."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        if hasattr(numeric, "_frombuffer"):
            allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays, lists, dicts, strings and numbers only.

    Lists, dicts, tuples, strings, bytes and numbers are native pickle opcodes; the only
    globals it resolves are those numpy needs to rebuild arrays, dtypes and scalars
    (`numpy.ndarray`, `numpy.dtype`, `numpy[._]core.multiarray._reconstruct` and
    `.scalar`, `numpy[._]core.numeric._frombuffer`, and `_codecs.encode` restricted to
    latin-1). Any other global (`os.system`, `builtins.eval`, ...) raises `UsageError`
    when the pickle names it, before anything could call it.
    """

    _ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        """Returns an allowed global; raises `UsageError` naming any other."""
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise UsageError(
                f"refusing to unpickle global {module}.{name}: only numpy arrays, lists, "
                "dicts, strings and numbers are allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        """Persistent ids would load outside objects: refused."""
        raise UsageError(f"refusing a persistent id in a pickle: {pid!r}")


def restricted_load(file: str | os.PathLike | BinaryIO, *, encoding: str = "latin1") -> Any:
    """Unpickles numpy arrays, lists, dicts, strings and numbers, and nothing else.

    Args:
      file: A path or a binary file object.
      encoding: How Python 2 `str` objects are decoded; "latin1" (the default) is what
        numpy arrays pickled under Python 2 need.

    Returns:
      The unpickled object.

    Raises:
      UsageError: A missing or corrupt file, or a pickle naming any other global.
    """
    if isinstance(file, (str, os.PathLike)):
        path = os.fspath(file)
        if not os.path.isfile(path):
            raise UsageError(f"pickle {path} does not exist")
        with open(path, "rb") as f:
            return restricted_load(f, encoding=encoding)
    where = getattr(file, "name", "pickle")
    try:
        return RestrictedUnpickler(file, encoding=encoding).load()
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        struct.error,
    ) as e:
        raise UsageError(f"corrupt pickle {where}: {e}") from e


# ----------------------------------------------------------------------------------------
# StackGAN pickles -> npz


def _as_strings(values: Any, what: str, source: str) -> np.ndarray:
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise UsageError(f"{source}: {what} must be a list, got {type(values).__name__}")
    out = []
    for v in values:
        if isinstance(v, bytes):
            v = v.decode("utf-8", errors="replace")
        if not isinstance(v, str):
            raise UsageError(f"{source}: {what} must be strings, got {type(v).__name__}")
        out.append(v)
    return np.asarray(out, dtype=str)


def _as_embeddings(values: Any, source: str) -> np.ndarray:
    try:
        array = np.asarray(values)
    except ValueError as e:  # ragged lists
        raise UsageError(f"{source}: embeddings have different shapes ({e})") from None
    if array.dtype.kind not in "fiu" or array.ndim not in (2, 3) or not array.size:
        raise UsageError(
            f"{source}: embeddings must be numbers [N, K, D] or [N, D], "
            f"got {array.dtype} {array.shape}"
        )
    array = array.astype(np.float32)
    return array[:, None, :] if array.ndim == 2 else array


def convert_stackgan_pickles(
    embeddings_pickle: str,
    filenames_pickle: str,
    out_npz: str,
    *,
    class_info_pickle: str | None = None,
    images_dir: str | None = None,
) -> str:
    """Converts StackGAN-style pickles into the npz layout, with the restricted unpickler.

    Args:
      embeddings_pickle: `char-CNN-RNN-embeddings.pickle`: a list of [K, D] arrays or an
        array [N, K, D] (or [N, D]).
      filenames_pickle: `filenames.pickle`: a list of N image paths.
      out_npz: Where to write the npz (atomically).
      class_info_pickle: `class_info.pickle`: a list of N class ids (stored as labels).
      images_dir: Stored as the npz's images folder (see the module docstring); default
        `images/` beside the npz.

    Returns:
      The path written.

    Raises:
      UsageError: Missing or corrupt pickles, refused globals, lengths that disagree.
    """
    from zoo.io import atomic_path

    embeddings = _as_embeddings(restricted_load(embeddings_pickle), embeddings_pickle)
    filenames = _as_strings(restricted_load(filenames_pickle), "filenames", filenames_pickle)
    if len(filenames) != len(embeddings):
        raise UsageError(
            f"{len(embeddings)} embeddings in {embeddings_pickle} but {len(filenames)} "
            f"filenames in {filenames_pickle}"
        )
    arrays: dict[str, np.ndarray] = {"embeddings": embeddings, "filenames": filenames}
    if class_info_pickle is not None:
        class_info = restricted_load(class_info_pickle)
        try:
            labels = np.asarray(class_info, dtype=np.int64)
        except (TypeError, ValueError):
            labels = np.zeros((0,), np.int64) - 1
        if labels.shape != (len(filenames),) or (labels.size and labels.min() < 0):
            raise UsageError(
                f"{class_info_pickle}: expected {len(filenames)} non-negative class ids"
            )
        arrays["labels"] = labels.astype(np.int32)
    if images_dir is not None:
        arrays["images_dir"] = np.asarray(str(images_dir))
    with atomic_path(out_npz, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    logging.info("Wrote %s: embeddings %s", out_npz, embeddings.shape)
    return out_npz


# ----------------------------------------------------------------------------------------
# npz -> arrays


def _read_npz(path: str) -> dict[str, np.ndarray]:
    if not os.path.isfile(path):
        raise UsageError(f"embeddings file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise UsageError(f"corrupt embeddings file {path}: {' '.join(str(e).split())}") from e


def _validated(data: dict[str, np.ndarray], path: str) -> tuple:
    """Checks the npz's arrays; returns (embeddings, filenames, labels, class_names)."""
    for key in ("embeddings", "filenames"):
        if key not in data:
            raise UsageError(f"{path} has no {key!r} array (it has {sorted(data)})")
    embeddings = data["embeddings"]
    if embeddings.dtype.kind != "f" or embeddings.ndim not in (2, 3) or not embeddings.size:
        raise UsageError(
            f"{path}: 'embeddings' must be float [N, K, D], got {embeddings.dtype} "
            f"{embeddings.shape}"
        )
    embeddings = embeddings.astype(np.float32)
    if embeddings.ndim == 2:
        embeddings = embeddings[:, None, :]
    if not np.all(np.isfinite(embeddings)):
        raise UsageError(f"{path}: 'embeddings' holds NaN or infinite values")
    filenames = data["filenames"]
    if filenames.dtype.kind not in "US" or filenames.shape != (len(embeddings),):
        raise UsageError(
            f"{path}: 'filenames' must be {len(embeddings)} strings, got {filenames.dtype} "
            f"{filenames.shape}"
        )
    filenames = filenames.astype(str)
    labels = data.get("labels")
    if labels is not None:
        if labels.dtype.kind not in "iu" or labels.shape != (len(embeddings),):
            raise UsageError(
                f"{path}: 'labels' must be {len(embeddings)} integers, got {labels.dtype} "
                f"{labels.shape}"
            )
        if labels.size and labels.min() < 0:
            raise UsageError(f"{path}: 'labels' must be >= 0, got {labels.min()}")
        labels = labels.astype(np.int32)
    class_names = data.get("class_names")
    if class_names is not None:
        if class_names.dtype.kind not in "US" or class_names.ndim != 1:
            raise UsageError(f"{path}: 'class_names' must be a list of strings")
        class_names = tuple(class_names.astype(str).tolist())
        if labels is None:
            raise UsageError(f"{path} has 'class_names' but no 'labels'")
        if labels.size and labels.max() >= len(class_names):
            raise UsageError(
                f"{path}: label {labels.max()} out of range for {len(class_names)} class names"
            )
    return embeddings, filenames, labels, class_names


def images_dir_of(path: str, data: dict[str, np.ndarray] | None = None) -> str:
    """The images folder of an npz: its `images_dir` entry or `images/` beside it."""
    folder = os.path.dirname(os.path.abspath(path))
    stored = data.get("images_dir") if data is not None else None
    if stored is None:
        return os.path.join(folder, DEFAULT_IMAGES_DIR)
    if stored.dtype.kind not in "US" or stored.ndim != 0:
        raise UsageError(f"{path}: 'images_dir' must be one string")
    return os.path.join(folder, os.path.expanduser(str(stored)))


def _find_image(images_dir: str, name: str) -> str | None:
    base = os.path.join(images_dir, name)
    for ext in _IMAGE_EXTENSIONS:
        if os.path.isfile(base + ext):
            return base + ext
    return None


def load_embedding_arrays(
    path: str, *, image_size: int | None = None, channels: int | None = None
) -> EmbeddingArrays:
    """Reads an embeddings npz (layout in the module docstring) and decodes its images.

    Args:
      path: The `.npz` file.
      image_size: Resize every image to image_size x image_size (bicubic). Without it all
        images must have the same size.
      channels: 1 decodes to grayscale, 3 (the default) to RGB.

    Returns:
      An `EmbeddingArrays`; images that exist but cannot be decoded are dropped with
      their embeddings and counted.

    Raises:
      UsageError: Missing or corrupt npz, wrong shapes or dtypes, missing images, no
        decodable image, mixed sizes without `image_size`.
    """
    path = os.path.expanduser(str(path))
    data = _read_npz(path)
    embeddings, filenames, labels, class_names = _validated(data, path)
    images_dir = images_dir_of(path, data)
    if not os.path.isdir(images_dir):
        raise UsageError(
            f"images folder {images_dir} of {path} does not exist; store 'images_dir' in "
            "the npz or put the images there"
        )
    files = [_find_image(images_dir, str(name)) for name in filenames]
    missing = [str(name) for name, file in zip(filenames, files, strict=True) if file is None]
    if missing:
        raise UsageError(
            f"{len(missing)} of {len(files)} images listed in {path} are missing from "
            f"{images_dir}, e.g. {missing[0]!r}"
        )
    mode = "L" if channels == 1 else "RGB"
    with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        decoded = list(pool.map(lambda f: folders._decode(f, mode, image_size), files))
    good = np.asarray([i for i, a in enumerate(decoded) if a is not None], np.int64)
    skipped = len(files) - len(good)
    if skipped:
        logging.warning("Skipped %d undecodable images of %d in %s", skipped, len(files), path)
    if not len(good):
        raise UsageError(f"none of the {len(files)} images of {path} could be decoded")
    shapes = {decoded[i].shape for i in good}
    if len(shapes) > 1:
        raise UsageError(f"images of {path} have different sizes; pass image_size")
    return EmbeddingArrays(
        images=np.stack([decoded[i] for i in good]),
        embeddings=embeddings[good],
        labels=None if labels is None else labels[good],
        class_names=class_names,
        filenames=filenames[good],
        skipped_files=skipped,
    )


# ----------------------------------------------------------------------------------------
# Thin main


def main(argv: Sequence[str]) -> int:
    """`python -m zoo.data.embeddings --pickle=... --out=...`: StackGAN pickles -> npz.

    Its flags live in their own `FlagValues`, so calling it never touches the global
    flags other mains define. Returns the exit code (2 with one line for bad input).
    """
    from absl import flags

    from zoo.cli import fail

    flag_values = flags.FlagValues()
    define = functools.partial(flags.DEFINE_string, flag_values=flag_values)
    define("pickle", None, "char-CNN-RNN-embeddings.pickle to convert.")
    define("filenames", None, "filenames.pickle (default: the one beside --pickle).")
    define("class_info", None, "class_info.pickle (default: the one beside --pickle, if any).")
    define("images_dir", None, "Images folder stored in the npz (relative to the npz).")
    define("out", None, "The .npz to write.")
    try:
        flag_values(list(argv))
    except flags.Error as e:
        return fail(str(e))
    if not flag_values.pickle or not flag_values.out:
        return fail("--pickle and --out are required")
    folder = os.path.dirname(os.path.abspath(flag_values.pickle))
    class_info = flag_values.class_info
    if class_info is None and os.path.isfile(os.path.join(folder, "class_info.pickle")):
        class_info = os.path.join(folder, "class_info.pickle")
    try:
        out = convert_stackgan_pickles(
            flag_values.pickle,
            flag_values.filenames or os.path.join(folder, "filenames.pickle"),
            flag_values.out,
            class_info_pickle=class_info,
            images_dir=flag_values.images_dir,
        )
        with np.load(out) as written:
            shape = written["embeddings"].shape
    except UsageError as e:
        return fail(str(e))
    print(f"wrote {out}: embeddings {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
