import gzip
import os
import shutil
import time

import numpy as np
import pytest

from tests.data.helpers import REAL_FASHION, has_real_fashion, tiny_arrays, write_idx
from zoo.data import load_arrays, read_idx
from zoo.data.idx import FASHION_MNIST_CLASSES
from zoo.errors import UsageError


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_raw_and_gzipped(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("x.idx" + (".gz" if compress else ""))
    write_idx(path, array, compress=compress)
    got = read_idx(str(path))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, array)


def test_read_idx_other_dtype(tmp_path):
    path = tmp_path / "i32.idx"
    values = np.array([1, -2, 70000], dtype=">i4")
    path.write_bytes(bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big") + values.tobytes())
    np.testing.assert_array_equal(read_idx(str(path)), [1, -2, 70000])


def test_bad_magic_names_the_file(tmp_path):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x01" + (1).to_bytes(4, "big") + b"\x00")
    with pytest.raises(UsageError, match=r"corrupt IDX file .*bad-idx3-ubyte: bad magic"):
        read_idx(str(path))


def test_truncated_raw_file(tmp_path):
    path = tmp_path / "short-idx3-ubyte"
    write_idx(path, np.zeros((4, 5, 5), np.uint8))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(UsageError, match=r"short-idx3-ubyte: 109 bytes, expected 116"):
        read_idx(str(path))


def test_truncated_gzip_file(tmp_path):
    path = tmp_path / "cut-idx3-ubyte.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 255, (20, 8, 8)), compress=True)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UsageError, match=r"corrupt IDX file .*cut-idx3-ubyte\.gz"):
        read_idx(str(path))


def test_corrupt_file_in_data_dir_is_reported(tmp_path, no_system_data):
    images, _ = tiny_arrays()
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(UsageError, match="train-labels-idx1-ubyte"):
        load_arrays("fashion_mnist", data_dir=str(tmp_path))


def test_label_count_mismatch(tmp_path, no_system_data):
    images, labels = tiny_arrays()
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels[:-1])
    with pytest.raises(UsageError, match="expected 50 labels"):
        load_arrays("fashion_mnist", data_dir=str(tmp_path))


def test_tiny_data_dir(tiny_idx_dir, no_system_data):
    images, labels, names = load_arrays("fashion_mnist", data_dir=tiny_idx_dir)
    expected_images, expected_labels = tiny_arrays()
    assert images.shape == (50, 6, 6, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(images[..., 0], expected_images)
    np.testing.assert_array_equal(labels, expected_labels)
    assert names == FASHION_MNIST_CLASSES


def test_class_filter_keeps_original_indices(tiny_idx_dir, no_system_data):
    images, labels, _ = load_arrays(
        "fashion_mnist", data_dir=tiny_idx_dir, classes=["ankle_boot", "trouser"]
    )
    assert sorted(set(labels.tolist())) == [1, 9]
    assert len(images) == 10
    np.testing.assert_array_equal(images[:, 0, 0, 0] % 10, labels)


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_missing_data_is_a_fast_one_line_usage_error(name, tmp_path, no_system_data):
    start = time.monotonic()
    with pytest.raises(UsageError, match=f"{name} not found in .*data_dir") as e:
        load_arrays(name, data_dir=str(tmp_path / "nothing_here"))
    assert time.monotonic() - start < 5.0
    assert "\n" not in str(e.value)
    if name == "fashion_mnist":
        assert "apt-get install -y dataset-fashion-mnist" in str(e.value)


def test_unprepared_tfds_copy_is_not_downloaded(no_system_data, monkeypatch):
    import tensorflow_datasets as tfds

    def no_download(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    os.makedirs(no_system_data / "tensorflow_datasets" / "fashion_mnist")
    start = time.monotonic()
    with pytest.raises(UsageError, match="fashion_mnist not found"):
        load_arrays("fashion_mnist")
    assert time.monotonic() - start < 5.0


def test_keras_cache_fashion(tiny_idx_dir, no_system_data):
    cache = no_system_data / ".keras" / "datasets" / "fashion-mnist"
    shutil.copytree(tiny_idx_dir, cache)
    images, labels, _ = load_arrays("fashion_mnist")
    assert images.shape == (50, 6, 6, 1) and labels.shape == (50,)


def test_keras_cache_mnist_npz(no_system_data):
    cache = no_system_data / ".keras" / "datasets"
    cache.mkdir(parents=True)
    images, labels = tiny_arrays()
    np.savez(
        cache / "mnist.npz", x_train=images, y_train=labels, x_test=images[:5], y_test=labels[:5]
    )
    test_images, test_labels, names = load_arrays("mnist", split="test")
    assert test_images.shape == (5, 6, 6, 1) and test_labels.dtype == np.int32
    assert names == tuple("0123456789")


def test_raw_and_gz_names_both_found(tmp_path, no_system_data):
    images, labels = tiny_arrays()
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    with open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(gzip.compress(bytes([0, 0, 8, 1]) + (50).to_bytes(4, "big") + labels.tobytes()))
    got, _, _ = load_arrays("mnist", split="test", data_dir=str(tmp_path))
    assert got.shape == (50, 6, 6, 1)


def test_bad_split(tiny_idx_dir):
    with pytest.raises(UsageError, match="splits 'train' and 'test'"):
        load_arrays("fashion_mnist", split="validation", data_dir=tiny_idx_dir)


@pytest.mark.skipif(not has_real_fashion, reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    images, labels, names = load_arrays("fashion_mnist", data_dir=REAL_FASHION)
    assert images.shape == (60000, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.int32
    assert labels.min() == 0 and labels.max() == 9
    np.testing.assert_array_equal(np.bincount(labels), [6000] * 10)
    assert names[0] == "t-shirt" and names[9] == "ankle boot" and len(names) == 10
    test_images, test_labels, _ = load_arrays("fashion_mnist", split="test")
    assert test_images.shape == (10000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(test_labels), [1000] * 10)
    assert 0 < images.mean() < 255
