import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from zoo.data import make_dataset, tfds_source
from zoo.data.tfds_source import parse_tfds_spec
from zoo.errors import UsageError


@pytest.fixture
def mock_mnist():
    with tfds.testing.mock_data(num_examples=40):
        yield


def take(dataset, n):
    return [
        tuple(t.numpy() for t in b) if isinstance(b, tuple) else b.numpy() for b in dataset.take(n)
    ]


@pytest.mark.parametrize(
    ("rest", "want"),
    [
        ("mnist", ("mnist", "train")),
        ("mnist:test", ("mnist", "test")),
        ("mnist:3.0.1", ("mnist:3.0.1", "train")),
        ("mnist:3.*.*:test[:10%]", ("mnist:3.*.*", "test[:10%]")),
        ("celeb_a/align", ("celeb_a/align", "train")),
    ],
)
def test_parse_tfds_spec(rest, want):
    assert parse_tfds_spec(rest, "train") == want


def test_mock_mnist_stream(mock_mnist):
    dataset, info = make_dataset("tfds:mnist", batch_size=8, with_labels=True)
    assert info.name == "tfds:mnist" and info.kind == "image"
    assert info.shape == (28, 28, 1) and info.num_examples == 40
    assert info.class_names == tuple("0123456789")
    x, labels = next(iter(dataset))
    assert x.shape == (8, 28, 28, 1) and x.dtype.name == "float32"
    assert labels.shape == (8,) and labels.dtype.name == "int32"
    assert float(np.min(x)) >= -1.0 and float(np.max(x)) <= 1.0
    assert float(np.max(x)) > float(np.min(x))
    assert int(np.min(labels)) >= 0 and int(np.max(labels)) <= 9


def test_mock_resize_channels_and_split(mock_mnist):
    dataset, info = make_dataset("tfds:mnist:test", batch_size=4, image_size=8, channels=3)
    assert info.shape == (8, 8, 3)
    assert next(iter(dataset)).shape == (4, 8, 8, 3)


def test_mock_start_step_is_exact(mock_mnist):
    kwargs = dict(batch_size=6, seed=3, with_labels=True, image_size=8)
    full = take(make_dataset("tfds:mnist", **kwargs)[0], 12)  # 72 > 40: crosses an epoch.
    for k in (1, 7):
        resumed = take(make_dataset("tfds:mnist", start_step=k, **kwargs)[0], 12 - k)
        for (x_want, y_want), (x_got, y_got) in zip(full[k:], resumed, strict=True):
            np.testing.assert_array_equal(x_want, x_got)
            np.testing.assert_array_equal(y_want, y_got)


def test_mock_seed_controls_order(mock_mnist):
    first = take(make_dataset("tfds:mnist", batch_size=8, seed=1)[0], 2)
    again = take(make_dataset("tfds:mnist", batch_size=8, seed=1)[0], 2)
    other = take(make_dataset("tfds:mnist", batch_size=8, seed=2)[0], 2)
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert not np.array_equal(np.stack(first), np.stack(other))


def test_mock_class_filter(mock_mnist, monkeypatch):
    monkeypatch.setattr(tfds_source, "SHUFFLE_BUFFER", 16)  # Size unknown after filtering.
    dataset, info = make_dataset("tfds:mnist", batch_size=4, classes=["3", 7], with_labels=True)
    assert info.num_examples is None
    for _, labels in take(dataset, 3):
        assert set(labels.tolist()) <= {3, 7}
    with pytest.raises(UsageError, match="unknown class"):
        make_dataset("tfds:mnist", batch_size=4, classes=["seven"])


def test_not_prepared_is_a_fast_usage_error(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    start = time.monotonic()
    with pytest.raises(UsageError, match="'mnist' is not prepared") as e:
        make_dataset("tfds:mnist", batch_size=2, data_dir=str(tmp_path))
    assert time.monotonic() - start < 5.0
    assert "\n" not in str(e.value)


def test_unknown_tfds_name(tmp_path):
    with pytest.raises(UsageError, match="unknown TFDS dataset 'no_such_set'") as e:
        make_dataset("tfds:no_such_set", batch_size=2, data_dir=str(tmp_path))
    assert "\n" not in str(e.value)
