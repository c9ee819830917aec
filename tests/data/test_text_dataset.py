import numpy as np
import pytest
import tensorflow as tf

from tests.data.helpers import NUM_TINY, ids_of
from zoo.data import load_caption_arrays, make_text_dataset
from zoo.data.captions import caption_attributes
from zoo.errors import UsageError


def tiny(data_dir, **kwargs):
    kwargs.setdefault("batch_size", 7)
    return make_text_dataset("fashion_mnist", data_dir=data_dir, **kwargs)


def batches(dataset, n):
    return [{k: v.numpy() for k, v in b.items()} for b in dataset.take(n)]


def test_element_spec_and_info(tiny_idx_dir, no_system_data):
    dataset, info = tiny(tiny_idx_dir, image_size=8, channels=3)
    spec = dataset.element_spec
    assert set(spec) == {"images", "text", "mismatched_text", "labels", "attributes"}
    assert spec["attributes"] == tf.TensorSpec([7, 2], tf.int32)
    assert spec["images"] == tf.TensorSpec([7, 8, 8, 3], tf.float32)
    assert spec["text"] == tf.TensorSpec([7], tf.string)
    assert spec["mismatched_text"] == tf.TensorSpec([7], tf.string)
    assert spec["labels"] == tf.TensorSpec([7], tf.int32)
    assert info.shape == (8, 8, 3) and info.num_examples == NUM_TINY
    assert info.name == "fashion_mnist" and info.class_names[9] == "ankle boot"
    batch = batches(dataset, 1)[0]
    assert batch["images"].min() >= -1.0 and batch["images"].max() <= 1.0


def test_text_belongs_to_the_image_and_mismatch_to_another_class(tiny_idx_dir, no_system_data):
    arrays = load_caption_arrays(data_dir=tiny_idx_dir, per_image=4, seed=2)
    assert arrays.captions.shape == (NUM_TINY, 4) and arrays.images.dtype == np.uint8
    by_caption = {}
    for i, row in enumerate(arrays.captions):
        for caption in row:
            by_caption.setdefault(caption, set()).add(i)
    dataset, _ = tiny(tiny_idx_dir, seed=2, captions_per_image=4)
    drawn = {}
    for batch in batches(dataset, 30):
        ids = ids_of(batch["images"])
        np.testing.assert_array_equal(batch["labels"], ids % 10)
        for i, text, other in zip(ids, batch["text"], batch["mismatched_text"], strict=True):
            text, other = text.decode(), other.decode()
            assert text in arrays.captions[i]
            drawn.setdefault(i, set()).add(text)
            # A caption of some image of a different class.
            assert any(j % 10 != i % 10 for j in by_caption[other])
            assert caption_attributes(other)["class"] != i % 10
        # The attributes are what the drawn caption states, -1 where it is silent.
        for text, stated in zip(batch["text"], batch["attributes"], strict=True):
            read = caption_attributes(text.decode())
            want = [-1 if read[k] is None else read[k] for k in ("brightness", "size")]
            assert stated.tolist() == want
    assert max(len(v) for v in drawn.values()) > 1  # Drawn afresh, not fixed per image.


def test_resume_is_exact(tiny_idx_dir, no_system_data):
    full = batches(tiny(tiny_idx_dir, seed=5)[0], 16)
    again = batches(tiny(tiny_idx_dir, seed=5)[0], 16)
    for k in (0, 1, 7, 15):
        resumed = batches(tiny(tiny_idx_dir, seed=5, start_step=k)[0], 16 - k)
        for want, got in zip(full[k:], resumed, strict=True):
            for key in want:
                np.testing.assert_array_equal(want[key], got[key])
    for want, got in zip(full, again, strict=True):
        np.testing.assert_array_equal(want["text"], got["text"])
    other = batches(tiny(tiny_idx_dir, seed=6)[0], 1)[0]
    assert not np.array_equal(other["images"], full[0]["images"])


def test_image_order_matches_make_dataset(tiny_idx_dir, no_system_data):
    from zoo.data import make_dataset

    plain, _ = make_dataset("fashion_mnist", batch_size=7, seed=3, data_dir=tiny_idx_dir)
    text, _ = tiny(tiny_idx_dir, seed=3)
    for x, batch in zip(plain.take(8), text.take(8), strict=True):
        np.testing.assert_array_equal(x.numpy(), batch["images"].numpy())


def test_classes_filter_and_single_class(tiny_idx_dir, no_system_data):
    dataset, info = tiny(tiny_idx_dir, classes=["sandal", "bag"])
    assert info.num_examples == 10
    for batch in batches(dataset, 5):
        assert set(batch["labels"].tolist()) <= {5, 8}
        for label, other in zip(batch["labels"], batch["mismatched_text"], strict=True):
            assert caption_attributes(other.decode())["class"] == 13 - label
    # One class: the mismatching caption comes from another image of it.
    dataset, _ = tiny(tiny_idx_dir, classes=["sandal"], batch_size=3)
    batch = batches(dataset, 1)[0]
    assert set(batch["labels"].tolist()) == {5}


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("cifar10", {}, "unknown text dataset"),
        ("ring8", {}, "unknown text dataset"),
        ("fashion_mnist", {"batch_size": 0}, "batch_size"),
        ("fashion_mnist", {"start_step": -1}, "start_step"),
        ("fashion_mnist", {"classes": ["unicorn"]}, "unknown class"),
        ("fashion_mnist", {"captions_per_image": 0}, "positive"),
        ("embeddings:", {}, "needs a path"),
    ],
)
def test_bad_input(tiny_idx_dir, no_system_data, spec, kwargs, message):
    kwargs = {"batch_size": 4, "data_dir": tiny_idx_dir, **kwargs}
    with pytest.raises(UsageError, match=message):
        make_text_dataset(spec, **kwargs)


def test_folder_without_classes_is_refused(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((4, 4), i * 80, np.uint8)).save(tmp_path / f"{i}.png")
    with pytest.raises(UsageError, match="class names"):
        make_text_dataset(f"folder:{tmp_path}", batch_size=2)


def test_folder_with_classes(tmp_path):
    from PIL import Image

    for name, value in (("cats", 40), ("dogs", 220)):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((4, 4), value + i, np.uint8)).save(tmp_path / name / f"{i}.png")
    dataset, info = make_text_dataset(f"folder:{tmp_path}", batch_size=4, image_size=8)
    assert info.class_names == ("cats", "dogs") and info.shape == (8, 8, 3)
    batch = batches(dataset, 1)[0]
    for label, text in zip(batch["labels"], batch["text"], strict=True):
        assert info.class_names[label] in text.decode()


def test_examples_per_class_keeps_images_with_their_captions(tiny_idx_dir, no_system_data):
    full = load_caption_arrays(data_dir=tiny_idx_dir, per_image=2, seed=0)
    dataset, info = tiny(tiny_idx_dir, examples_per_class=1, captions_per_image=2, batch_size=10)
    assert info.num_examples == 10
    for batch in batches(dataset, 3):
        ids = ids_of(batch["images"])
        assert set(ids.tolist()) == set(range(10))  # the first image of each class
        for i, caption in zip(ids, batch["text"], strict=True):
            assert caption.decode() in full.captions[i]
