import dataclasses

import numpy as np
import pytest

from tests.data.helpers import NUM_TINY, has_real_fashion, ids_of
from zoo.data import DATASET_NAMES, load_arrays, make_dataset
from zoo.errors import UsageError


def batches(dataset, n):
    return [
        tuple(t.numpy() for t in b) if isinstance(b, tuple) else b.numpy() for b in dataset.take(n)
    ]


def tiny(data_dir, **kwargs):
    kwargs.setdefault("batch_size", 7)
    return make_dataset("fashion_mnist", data_dir=data_dir, **kwargs)


def test_values_dtype_shape(tiny_idx_dir, no_system_data):
    dataset, info = tiny(tiny_idx_dir)
    assert info.name == "fashion_mnist" and info.kind == "image"
    assert info.shape == (6, 6, 1) and info.num_examples == NUM_TINY
    assert info.class_names[9] == "ankle boot" and info.skipped_files == 0
    x = next(iter(dataset)).numpy()
    assert x.shape == (7, 6, 6, 1) and x.dtype == np.float32
    ids = ids_of(x)
    np.testing.assert_allclose(
        x, np.broadcast_to((ids / 127.5 - 1)[:, None, None, None], x.shape), atol=1e-6
    )


def test_full_range_maps_to_minus_one_one(tmp_path, no_system_data):
    from tests.data.helpers import write_idx

    images = np.zeros((2, 4, 4), np.uint8)
    images[1] = 255
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 1], np.uint8))
    x = next(iter(make_dataset("mnist", batch_size=2, data_dir=str(tmp_path))[0])).numpy()
    assert sorted(x[:, 0, 0, 0].tolist()) == [-1.0, 1.0]


@pytest.mark.parametrize(
    ("size", "channels", "shape"),
    [(8, None, (8, 8, 1)), (16, 3, (16, 16, 3)), (None, 3, (6, 6, 3))],
)
def test_resize_and_channels(tiny_idx_dir, no_system_data, size, channels, shape):
    dataset, info = tiny(tiny_idx_dir, image_size=size, channels=channels)
    x = next(iter(dataset)).numpy()
    assert info.shape == shape and x.shape == (7, *shape)
    assert x.min() >= -1.0 and x.max() <= 1.0
    if channels == 3:
        np.testing.assert_array_equal(x[..., 0], x[..., 2])
    # Flat images stay flat when resized.
    np.testing.assert_allclose(x, np.broadcast_to(x[:, :1, :1, :1], x.shape), atol=1e-5)


def test_each_epoch_is_a_permutation(tiny_idx_dir, no_system_data):
    dataset, _ = tiny(tiny_idx_dir, batch_size=10, seed=5)
    ids = np.concatenate([ids_of(b) for b in batches(dataset, 10)])
    first, second = ids[:NUM_TINY], ids[NUM_TINY:]
    assert sorted(first.tolist()) == list(range(NUM_TINY))
    assert sorted(second.tolist()) == list(range(NUM_TINY))
    assert not np.array_equal(first, second)  # Reshuffled each epoch.
    assert not np.array_equal(first, np.arange(NUM_TINY))


def test_start_step_is_exact_across_epochs(tiny_idx_dir, no_system_data):
    # 50 examples, batch 7: batches span epoch boundaries (batch 7 holds 49..55).
    kwargs = dict(batch_size=7, seed=11, with_labels=True, image_size=4, channels=3)
    full = batches(tiny(tiny_idx_dir, **kwargs)[0], 20)
    for k in (1, 7, 8, 15):
        resumed = batches(tiny(tiny_idx_dir, start_step=k, **kwargs)[0], 20 - k)
        for (x_want, y_want), (x_got, y_got) in zip(full[k:], resumed, strict=True):
            np.testing.assert_array_equal(x_want, x_got)
            np.testing.assert_array_equal(y_want, y_got)


def test_resume_far_ahead_is_cheap(tiny_idx_dir, no_system_data):
    step = 10**9 + 3  # Would take hours if batches were skipped one by one.
    dataset, _ = tiny(tiny_idx_dir, start_step=step, batch_size=5, seed=2)
    ids = ids_of(next(iter(dataset)))
    epoch, offset = divmod(step * 5, NUM_TINY)
    assert offset == 15
    # The same epoch read from its start holds those ids at that offset.
    same_epoch, _ = tiny(tiny_idx_dir, start_step=epoch * NUM_TINY // 5, batch_size=5, seed=2)
    stream = np.concatenate([ids_of(b) for b in batches(same_epoch, 10)])
    assert sorted(stream.tolist()) == list(range(NUM_TINY))
    np.testing.assert_array_equal(stream[offset : offset + 5], ids)


def test_seed_controls_the_stream(tiny_idx_dir, no_system_data):
    first = np.stack(batches(tiny(tiny_idx_dir, seed=1)[0], 3))
    again = np.stack(batches(tiny(tiny_idx_dir, seed=1)[0], 3))
    other = np.stack(batches(tiny(tiny_idx_dir, seed=2)[0], 3))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_labels_follow_images(tiny_idx_dir, no_system_data):
    dataset, _ = tiny(tiny_idx_dir, with_labels=True)
    x, labels = next(iter(dataset))
    assert labels.dtype.name == "int32" and labels.shape == (7,)
    np.testing.assert_array_equal(labels.numpy(), ids_of(x) % 10)


def test_class_filter_keeps_original_indices(tiny_idx_dir, no_system_data):
    dataset, info = tiny(tiny_idx_dir, classes=["Ankle Boot", 1], with_labels=True, batch_size=10)
    assert info.num_examples == 10 and len(info.class_names) == 10
    ids = []
    for x, labels in batches(dataset, 3):
        assert set(labels.tolist()) <= {1, 9}
        ids.extend(ids_of(x).tolist())
    assert set(ids) == {i for i in range(NUM_TINY) if i % 10 in (1, 9)}


def test_batch_larger_than_dataset(tiny_idx_dir, no_system_data):
    dataset, _ = tiny(tiny_idx_dir, classes=[3], batch_size=12)
    x = next(iter(dataset)).numpy()
    assert x.shape == (12, 6, 6, 1)
    assert set(ids_of(x).tolist()) == {3, 13, 23, 33, 43}


def test_unknown_spec_lists_known_names():
    with pytest.raises(UsageError, match=r"unknown dataset 'cifar'.*fashion_mnist.*ring8.*tfds:"):
        make_dataset("cifar", batch_size=2)
    assert "fashion_mnist" in DATASET_NAMES and "grid25" in DATASET_NAMES


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=2, start_step=-1), "start_step"),
        (dict(batch_size=2, channels=2), "channels must be 1 or 3"),
        (dict(batch_size=2, image_size=0), "image_size"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(UsageError, match=message):
        make_dataset("ring8", **kwargs)


def test_load_arrays_rejects_streamed_sources():
    with pytest.raises(UsageError, match="in-memory sources"):
        load_arrays("ring8")
    with pytest.raises(UsageError, match="in-memory sources"):
        load_arrays("tfds:mnist")


@pytest.mark.skipif(not has_real_fashion, reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_stream():
    dataset, info = make_dataset(
        "fashion_mnist", batch_size=32, image_size=16, channels=3, with_labels=True, seed=4
    )
    assert info.num_examples == 60000 and info.shape == (16, 16, 3)
    x, labels = next(iter(dataset))
    assert x.shape == (32, 16, 16, 3) and x.dtype.name == "float32"
    assert -1.0 <= float(np.min(x)) < -0.9 and 0.0 < float(np.max(x)) <= 1.0
    assert int(np.min(labels)) >= 0 and int(np.max(labels)) <= 9
    resumed, _ = make_dataset(
        "fashion_mnist",
        batch_size=32,
        image_size=16,
        channels=3,
        with_labels=True,
        seed=4,
        start_step=1880,
    )  # Into epoch 2.
    second_epoch = batches(dataset.skip(1880), 1)[0]
    np.testing.assert_array_equal(batches(resumed, 1)[0][0], second_epoch[0])


def test_examples_per_class_keeps_the_first_of_each_class(tiny_idx_dir, no_system_data):
    dataset, info = tiny(tiny_idx_dir, examples_per_class=2, with_labels=True, batch_size=10)
    assert info.num_examples == 20
    ids = set()
    for x, labels in batches(dataset, 4):
        np.testing.assert_array_equal(labels, ids_of(x) % 10)
        ids |= set(ids_of(x).tolist())
    assert ids == set(range(20))  # images 0..19: the first two of each of the ten classes
    # With a class filter: the first three sandals and sneakers (5, 15, 25 and 7, 17, 27).
    dataset, info = tiny(tiny_idx_dir, classes=["sandal", 7], examples_per_class=3, batch_size=6)
    assert info.num_examples == 6
    assert set(ids_of(batches(dataset, 1)[0]).tolist()) == {5, 15, 25, 7, 17, 27}
    # More than a class holds keeps them all.
    assert tiny(tiny_idx_dir, examples_per_class=99)[1].num_examples == NUM_TINY


@pytest.mark.parametrize(
    "spec, count, message",
    [
        ("ring8", 5, "examples_per_class works on"),
        ("fashion_mnist", -1, "examples_per_class must be a non-negative integer"),
    ],
)
def test_examples_per_class_errors(tiny_idx_dir, no_system_data, spec, count, message):
    with pytest.raises(UsageError, match=message):
        make_dataset(spec, batch_size=4, data_dir=tiny_idx_dir, examples_per_class=count)


def test_the_run_flag_reaches_every_familys_training_stream(tiny_idx_dir, no_system_data):
    from zoo import registry
    from zoo.run import RunConfig

    rc = RunConfig(dataset="fashion_mnist", data_dir=tiny_idx_dir, examples_per_class=2)
    for family, overrides, expected in (
        ("dcgan", {}, 20),
        ("cgan", {}, 20),
        ("cyclegan", {"domain_a": "sandal", "domain_b": "sneaker"}, 4),
    ):
        task = registry.get(family)
        run = dataclasses.replace(rc, model=family, **overrides)
        config = dataclasses.replace(task.config_class(), image_size=8)
        _, info = task.training_dataset(run, config, batch_size=2, start_step=0)
        assert info.num_examples == expected, family
