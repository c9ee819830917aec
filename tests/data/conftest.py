"""Fixtures: a tiny IDX data_dir, and isolation from the machine's real data."""

import pytest

from tests.data.helpers import tiny_arrays, write_idx
from zoo.data import idx


@pytest.fixture
def tiny_idx_dir(tmp_path):
    """A data_dir holding a 50-image "fashion_mnist" train split (gzipped) of 6x6 images."""
    images, labels = tiny_arrays()
    directory = tmp_path / "tiny_idx"
    directory.mkdir()
    write_idx(directory / "train-images-idx3-ubyte.gz", images, compress=True)
    write_idx(directory / "train-labels-idx1-ubyte.gz", labels, compress=True)
    return str(directory)


@pytest.fixture
def no_system_data(tmp_path, monkeypatch):
    """Points every place the loaders search at empty folders; returns the fake HOME."""
    empty = tmp_path / "empty"
    home = tmp_path / "home"
    empty.mkdir()
    home.mkdir()
    monkeypatch.setattr(
        idx, "SYSTEM_DIRS", {"fashion_mnist": (str(empty),), "mnist": (str(empty),)}
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(home / "tensorflow_datasets"))
    return home
