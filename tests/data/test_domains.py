"""Two domains as unpaired (a, b) batches: unpaired folders, TFDS cycle_gan, labelled classes."""

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from tests.data.helpers import ids_of
from zoo.data import load_domain_images, make_domain_dataset
from zoo.data.domains import domain_sources
from zoo.errors import UsageError


def take(dataset, n):
    return [(a.numpy(), b.numpy()) for a, b in dataset.take(n)]


@pytest.fixture
def unpaired_dir(tmp_path):
    """trainA/ (values 0..9), trainB/ (100..104), testA/ (200), testB/ (210): 4x4 grey PNGs."""
    root = tmp_path / "horse2zebra"
    for folder, values in {
        "trainA": range(10),
        "trainB": range(100, 105),
        "testA": [200],
        "testB": [210],
    }.items():
        (root / folder).mkdir(parents=True)
        for v in values:
            Image.fromarray(np.full((4, 4), v, np.uint8)).save(root / folder / f"{v}.png")
    return root


def test_labelled_domains_are_class_filtered_and_resume_exactly(tiny_idx_dir):
    kwargs = dict(batch_size=3, domain_a="sandal", domain_b="7", data_dir=tiny_idx_dir, seed=4)
    dataset, info = make_domain_dataset("fashion_mnist", **kwargs)
    assert info.name == "fashion_mnist[sandal]|fashion_mnist[7]" and info.shape == (6, 6, 1)
    full = take(dataset, 8)
    for a, b in full:
        assert a.shape == b.shape == (3, 6, 6, 1) and a.dtype == np.float32
        assert set(ids_of(a) % 10) == {5} and set(ids_of(b) % 10) == {7}
    resumed = take(make_domain_dataset("fashion_mnist", start_step=5, **kwargs)[0], 3)
    for (a, b), (ra, rb) in zip(full[5:], resumed, strict=True):
        np.testing.assert_array_equal(a, ra)
        np.testing.assert_array_equal(b, rb)


def test_domains_shuffle_with_different_seeds(tiny_idx_dir):
    dataset, _ = make_domain_dataset(
        "fashion_mnist", batch_size=5, domain_a="1,2", domain_b="3,4", data_dir=tiny_idx_dir
    )
    a, b = take(dataset, 1)[0]
    # Same positions in both class pairs would mean the same permutation.
    assert not np.array_equal(ids_of(a) // 10, ids_of(b) // 10)


@pytest.mark.parametrize(
    ("spec", "a", "b", "match"),
    [
        ("fashion_mnist", "", "", "--domain_a=CLASS --domain_b=CLASS"),
        ("fashion_mnist", "sandal", "", "--domain_a=CLASS"),
        ("fashion_mnist", "sandal", "sandal", "both sandal"),
        ("fashion_mnist", "sandal", "hat", "unknown class"),
        ("ring8", "", "", "image-to-image"),
        ("tfds:cycle_gan/horse2zebra:trainA", "", "", "drop :trainA"),
        ("tfds:cycle_gan/horse2zebra", "1", "2", "drop --domain_a"),
    ],
)
def test_bad_domain_arguments_are_one_line_usage_errors(tiny_idx_dir, spec, a, b, match):
    with pytest.raises(UsageError, match=match) as err:
        make_domain_dataset(spec, batch_size=2, domain_a=a, domain_b=b, data_dir=tiny_idx_dir)
    assert "\n" not in str(err.value)


def test_unpaired_folders(unpaired_dir):
    dataset, info = make_domain_dataset(f"folder:{unpaired_dir}", batch_size=4, channels=1)
    assert info.shape == (4, 4, 1) and info.num_examples == 15
    a, b = take(dataset, 1)[0]
    assert set(ids_of(a)) <= set(range(10)) and set(ids_of(b)) <= set(range(100, 105))
    test_a, test_b = load_domain_images(f"folder:{unpaired_dir}", 2, channels=1)
    assert ids_of(test_a).tolist() == [200, 200] and ids_of(test_b).tolist() == [210, 210]
    with pytest.raises(UsageError, match="drop --domain_a"):
        domain_sources(f"folder:{unpaired_dir}", "x", "y")


def test_unpaired_folder_without_test_split_falls_back_to_train(unpaired_dir):
    for folder in ("testA", "testB"):
        for f in (unpaired_dir / folder).iterdir():
            f.unlink()
        (unpaired_dir / folder).rmdir()
    test_a, _ = load_domain_images(f"folder:{unpaired_dir}", 3, channels=1)
    assert set(ids_of(test_a)) <= set(range(10))


def test_tfds_cycle_gan_splits():
    with tfds.testing.mock_data(num_examples=6):
        dataset, info = make_domain_dataset(
            "tfds:cycle_gan/horse2zebra", batch_size=2, image_size=8, channels=3
        )
        assert info.name.startswith("tfds:cycle_gan/horse2zebra:trainA|")
        assert info.shape == (8, 8, 3)
        a, b = take(dataset, 1)[0]
        assert a.shape == b.shape == (2, 8, 8, 3)
        assert a.min() >= -1.0 and a.max() <= 1.0
        test_a, test_b = load_domain_images("tfds:cycle_gan/horse2zebra", 2, image_size=8)
        assert test_a.shape == test_b.shape == (2, 8, 8, 3)
    sources = domain_sources("tfds:cycle_gan/horse2zebra", split="test")
    assert [s.split for s in sources] == ["testA", "testB"]


def test_examples_per_class_applies_to_each_domain(tiny_idx_dir):
    dataset, info = make_domain_dataset(
        "fashion_mnist",
        batch_size=2,
        domain_a="sandal",
        domain_b="sneaker",
        data_dir=tiny_idx_dir,
        examples_per_class=2,
    )
    assert info.num_examples == 4
    a_ids, b_ids = set(), set()
    for a, b in take(dataset, 4):
        a_ids |= set(ids_of(a).tolist())
        b_ids |= set(ids_of(b).tolist())
    assert a_ids == {5, 15} and b_ids == {7, 17}
