"""Helpers shared by the data tests: tiny IDX files with readable image ids."""

import gzip
import os
import struct

import numpy as np

NUM_TINY = 50
REAL_FASHION = "/usr/share/datasets/fashion-mnist"
has_real_fashion = os.path.isfile(os.path.join(REAL_FASHION, "train-images-idx3-ubyte.gz"))


def write_idx(path, array: np.ndarray, *, compress: bool = False) -> None:
    """Writes `array` (uint8) as an IDX file, gzipped if `compress`."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)


def tiny_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Image k is filled with the value k and has label k % 10, so ids are readable."""
    ids = np.arange(NUM_TINY, dtype=np.uint8)
    images = np.broadcast_to(ids[:, None, None], (NUM_TINY, 6, 6)).copy()
    return images, (ids % 10).astype(np.uint8)


def ids_of(batch) -> np.ndarray:
    """Recovers tiny-image ids from a [-1, 1] batch."""
    return np.rint((np.asarray(batch)[:, 0, 0, 0] + 1.0) * 127.5).astype(int)
