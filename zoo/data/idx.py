"""MNIST-style datasets from IDX files, the Keras cache or an already prepared TFDS copy.

Nothing here downloads: with no network a download would hang, so a dataset that is
nowhere on disk is a `UsageError` saying how to install it.
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib

import numpy as np
from absl import logging

from zoo.errors import UsageError

FASHION_MNIST_CLASSES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
MNIST_CLASSES = tuple(str(i) for i in range(10))

CLASS_NAMES = {"fashion_mnist": FASHION_MNIST_CLASSES, "mnist": MNIST_CLASSES}

# Where system packages put the IDX files; tests replace this mapping.
SYSTEM_DIRS: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("/usr/share/datasets/fashion-mnist",),
    "mnist": ("/usr/share/datasets/mnist",),
}

_INSTALL_HINTS = {
    "fashion_mnist": "install it with `apt-get install -y dataset-fashion-mnist` or pass "
    "--data_dir=DIR holding its IDX files",
    "mnist": "pass --data_dir=DIR holding its IDX files (train-images-idx3-ubyte.gz, ...) "
    "or put mnist.npz in the Keras cache",
}

_SPLIT_PREFIX = {"train": "train", "test": "t10k"}

# IDX type codes -> big-endian numpy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (raw or gzipped, told apart by content, not by name).

    Args:
      path: The file.

    Returns:
      The array, in native byte order; read-only, as it may be shared through a cache.

    Raises:
      UsageError: The file is missing, truncated, or not an IDX file.
    """
    try:
        stat = os.stat(path)
    except OSError as e:
        raise UsageError(f"cannot read IDX file {path}: {e.strerror}") from e
    return _read_idx_cached(os.path.abspath(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    del mtime_ns, size  # Cache keys only: a changed file is read again.
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise UsageError(f"corrupt IDX file {path}: {e}") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise UsageError(f"corrupt IDX file {path}: bad magic number {data[:4].hex()}")
    dtype = _IDX_DTYPES[data[2]]
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise UsageError(f"corrupt IDX file {path}: bad header")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise UsageError(
            f"corrupt IDX file {path}: {len(data)} bytes, expected {expected} for shape {dims}"
        )
    array = np.frombuffer(data, dtype, offset=header).reshape(dims)
    array = array.astype(dtype.newbyteorder("="), copy=False)
    array.flags.writeable = False
    return array


def _keras_datasets_dir() -> str:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


def _tfds_data_dir() -> str:
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"
    )


def _idx_pair(directory: str, split: str) -> tuple[str, str] | None:
    """Returns the (images, labels) files of `split` in `directory`, if both are there."""
    prefix = _SPLIT_PREFIX[split]
    found = []
    for kind, nd in (("images", 3), ("labels", 1)):
        names = [f"{prefix}-{kind}-idx{nd}-ubyte{ext}" for ext in (".gz", "")]
        names += [f"{prefix}-{kind}.idx{nd}-ubyte{ext}" for ext in (".gz", "")]
        hit = next(
            (
                os.path.join(directory, n)
                for n in names
                if os.path.isfile(os.path.join(directory, n))
            ),
            None,
        )
        if hit is None:
            return None
        found.append(hit)
    return found[0], found[1]


def _from_idx(images_path: str, labels_path: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise UsageError(
            f"corrupt IDX file {images_path}: expected uint8 images [N, H, W], "
            f"got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise UsageError(
            f"corrupt IDX file {labels_path}: expected {len(images)} labels, got shape "
            f"{labels.shape}"
        )
    return images[..., None], labels.astype(np.int32)


def _from_tfds(name: str, split: str, tfds_dir: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Loads a split from an already prepared TFDS copy; never downloads."""
    if not os.path.isdir(os.path.join(tfds_dir, name)):
        return None  # Checked first so that no builder is made (and nothing fetched).
    import tensorflow_datasets as tfds  # Slow import, rarely needed.

    builder = tfds.builder(name, data_dir=tfds_dir, try_gcs=False)
    if not builder.is_prepared():
        return None
    data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    return data["image"].astype(np.uint8), data["label"].astype(np.int32)


def load_mnist_like(
    name: str, split: str, data_dir: str | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Loads Fashion-MNIST or MNIST from the first place that has it.

    Search order: `data_dir`, `SYSTEM_DIRS[name]`, the Keras cache
    (`$KERAS_HOME/datasets/fashion-mnist/` with the gzipped IDX files, or
    `$KERAS_HOME/datasets/mnist.npz`), then a TFDS copy that is already prepared in
    `$TFDS_DATA_DIR` (default `~/tensorflow_datasets`).

    Args:
      name: "fashion_mnist" or "mnist".
      split: "train" or "test".
      data_dir: A folder holding the IDX files, searched first.

    Returns:
      Images uint8 [N, 28, 28, 1], labels int32 [N] and the class names.

    Raises:
      UsageError: Unknown split, data found nowhere, or corrupt files.
    """
    if split not in _SPLIT_PREFIX:
        raise UsageError(f"{name} has splits 'train' and 'test', not {split!r}")
    keras_dir = _keras_datasets_dir()
    idx_dirs = [data_dir] if data_dir else []
    idx_dirs += list(SYSTEM_DIRS.get(name, ()))
    if name == "fashion_mnist":
        idx_dirs.append(os.path.join(keras_dir, "fashion-mnist"))
    places = list(idx_dirs)
    for directory in idx_dirs:
        pair = _idx_pair(directory, split)
        if pair is not None:
            logging.info("Loading %s %s from %s", name, split, directory)
            images, labels = _from_idx(*pair)
            return images, labels, CLASS_NAMES[name]
    if name == "mnist":
        npz = os.path.join(keras_dir, "mnist.npz")
        places.append(npz)
        if os.path.isfile(npz):
            logging.info("Loading %s %s from %s", name, split, npz)
            try:
                with np.load(npz) as f:
                    images, labels = f[f"x_{split}"], f[f"y_{split}"]
            except (OSError, ValueError, KeyError, zlib.error) as e:
                raise UsageError(f"corrupt file {npz}: {e}") from e
            return images[..., None].astype(np.uint8), labels.astype(np.int32), MNIST_CLASSES
    tfds_dir = _tfds_data_dir()
    places.append(os.path.join(tfds_dir, name))
    loaded = _from_tfds(name, split, tfds_dir)
    if loaded is not None:
        logging.info("Loading %s %s from TFDS in %s", name, split, tfds_dir)
        return loaded[0], loaded[1], CLASS_NAMES[name]
    raise UsageError(f"{name} not found in {', '.join(places)}; {_INSTALL_HINTS[name]}")
