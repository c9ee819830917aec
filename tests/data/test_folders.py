import logging

import numpy as np
import pytest
from PIL import Image

from zoo.data import load_arrays, make_dataset
from zoo.errors import UsageError


def save(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path, format=fmt)


def rgb(value, size=(12, 10)):
    return np.full((*size, 3), value, np.uint8)


@pytest.fixture
def class_folder(tmp_path):
    """cats/: 3 RGB PNGs (one nested), dogs/: 2 grey JPEGs, plus 2 broken files and noise."""
    root = tmp_path / "pets"
    save(root / "cats" / "a.png", rgb(0))
    save(root / "cats" / "b.PNG", rgb(255))
    save(root / "cats" / "deeper" / "c.png", rgb(100))
    save(root / "dogs" / "d.jpg", np.full((12, 10), 50))
    save(root / "dogs" / "e.jpeg", np.full((12, 10), 200))
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3))
    save(root / "dogs" / "truncated.png", noise)
    broken = root / "dogs" / "truncated.png"
    broken.write_bytes(broken.read_bytes()[:1500])  # Cut inside the pixel data.
    (root / "cats" / "notes.jpg").write_text("this is not a JPEG")
    (root / "dogs" / "readme.txt").write_text("ignored: not an image name")
    (root / "empty_dir").mkdir()
    return root


def test_corrupt_files_are_skipped_and_counted(class_folder, caplog):
    with caplog.at_level(logging.WARNING):
        dataset, info = make_dataset(
            f"folder:{class_folder}", batch_size=5, image_size=8, with_labels=True
        )
    assert info.skipped_files == 2
    assert any("Skipped 2 unreadable" in r.getMessage() for r in caplog.records)
    assert info.num_examples == 5
    assert info.class_names == ("cats", "dogs")
    assert info.name == f"folder:{class_folder}"
    assert info.kind == "image" and info.shape == (8, 8, 3)
    x, labels = next(iter(dataset))
    assert x.shape == (5, 8, 8, 3) and x.dtype.name == "float32"
    assert labels.dtype.name == "int32"
    assert np.min(x) >= -1.0 and np.max(x) <= 1.0
    # One epoch is one batch here: every good image once, with its folder's label.
    means = np.round(np.mean(x, axis=(1, 2, 3)), 2)
    pairs = sorted(zip(means.tolist(), labels.numpy().tolist(), strict=True))
    expected_means = np.round(np.array([0, 50, 100, 200, 255]) / 127.5 - 1, 2)
    assert [p[0] for p in pairs] == pytest.approx(expected_means.tolist(), abs=0.02)
    assert [p[1] for p in pairs] == [0, 1, 0, 1, 0]


def test_load_arrays_native_size_and_channels(class_folder):
    images, labels, names = load_arrays(f"folder:{class_folder}")
    assert images.shape == (5, 12, 10, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 0, 1, 1]
    assert names == ("cats", "dogs")
    grey, _, _ = load_arrays(f"folder:{class_folder}", channels=1)
    assert grey.shape == (5, 12, 10, 1)
    np.testing.assert_array_equal(grey[3:, 0, 0, 0], [50, 200])


def test_grayscale_output_and_16px(class_folder):
    dataset, info = make_dataset(f"folder:{class_folder}", batch_size=2, image_size=16, channels=1)
    x = next(iter(dataset))
    assert info.shape == (16, 16, 1) and x.shape == (2, 16, 16, 1)


def test_class_filter(class_folder):
    dataset, info = make_dataset(
        f"folder:{class_folder}", batch_size=4, image_size=8, classes=["DOGS"], with_labels=True
    )
    assert info.num_examples == 2
    _, labels = next(iter(dataset))
    assert set(labels.numpy().tolist()) == {1}
    with pytest.raises(UsageError, match="unknown class 'birds'"):
        make_dataset(f"folder:{class_folder}", batch_size=4, classes=["birds"])


def test_flat_folder_has_no_labels(tmp_path):
    for i in range(3):
        save(tmp_path / f"{i}.png", rgb(i * 40, size=(4, 4)))
    images, labels, names = load_arrays(f"folder:{tmp_path}")
    assert images.shape == (3, 4, 4, 3) and labels is None and names is None
    with pytest.raises(UsageError, match="no labels"):
        make_dataset(f"folder:{tmp_path}", batch_size=2, with_labels=True)
    with pytest.raises(UsageError, match="no class labels"):
        make_dataset(f"folder:{tmp_path}", batch_size=2, classes=["a"])


def test_mixed_sizes_need_image_size(tmp_path):
    save(tmp_path / "small.png", rgb(0, size=(4, 4)))
    save(tmp_path / "large.png", rgb(0, size=(6, 6)))
    with pytest.raises(UsageError, match=r"different sizes.*pass image_size"):
        load_arrays(f"folder:{tmp_path}")
    images, _, _ = load_arrays(f"folder:{tmp_path}", image_size=5)
    assert images.shape == (2, 5, 5, 3)


def test_missing_empty_and_all_broken(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        make_dataset(f"folder:{tmp_path / 'nope'}", batch_size=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no PNG or JPEG images"):
        make_dataset(f"folder:{tmp_path / 'empty'}", batch_size=2)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(UsageError, match="none of the 1 image files"):
        make_dataset(f"folder:{tmp_path / 'broken'}", batch_size=2)


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_greyscale_pngs_are_scaled_not_saturated(tmp_path, channels):
    ramp = (np.arange(12 * 10).reshape(12, 10) * 500).astype(np.uint16)  # 0 .. 59500
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    images, _, _ = load_arrays(f"folder:{tmp_path}", channels=channels)
    assert images.shape == (1, 12, 10, channels)
    want = np.rint(ramp / 257.0).astype(np.uint8)
    for c in range(channels):
        np.testing.assert_array_equal(images[0, ..., c], want)
