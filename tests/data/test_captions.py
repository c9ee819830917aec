import numpy as np
import pytest

from tests.data.helpers import REAL_FASHION, has_real_fashion
from zoo.data import captions
from zoo.data.idx import FASHION_MNIST_CLASSES
from zoo.errors import UsageError

DARK = int(captions.BRIGHTNESS_THRESHOLD) - 20
LIGHT = int(captions.BRIGHTNESS_THRESHOLD) + 20


def object_images(specs, size=10):
    """One [size, size] image per (object pixels, intensity); object pixels come first."""
    images = np.zeros((len(specs), size, size), np.uint8)
    for image, (count, value) in zip(images, specs, strict=True):
        image.reshape(-1)[:count] = value
    return images


# 10x10 images: 20 or 80 object pixels (area 0.2 / 0.8), dark or light, plus faint noise
# below the object threshold that must not count.
SPECS = [(20, DARK), (20, LIGHT), (80, DARK), (80, LIGHT)]
WANT_BRIGHTNESS = [0, 1, 0, 1]
WANT_SIZE = [0, 0, 1, 1]


def fake_images():
    images = object_images(SPECS)
    images[images == 0] = captions.OBJECT_PIXEL_THRESHOLD  # Halo: not the object.
    return images


def test_measure_attributes_on_known_pixels():
    got = captions.measure_attributes(fake_images())
    np.testing.assert_array_equal(got["brightness"], WANT_BRIGHTNESS)
    np.testing.assert_array_equal(got["size"], WANT_SIZE)
    np.testing.assert_allclose(got["area"], [0.2, 0.2, 0.8, 0.8])
    np.testing.assert_allclose(got["mean_intensity"], [DARK, LIGHT, DARK, LIGHT])
    assert got["brightness"].shape == (4,) and got["brightness"].dtype.kind == "i"


def test_measure_attributes_channels_and_blank():
    gray = fake_images()
    want = captions.measure_attributes(gray)
    for images in (gray[..., None], np.repeat(gray[..., None], 3, -1), gray.astype(np.float32)):
        got = captions.measure_attributes(images)
        np.testing.assert_array_equal(got["brightness"], want["brightness"])
        np.testing.assert_array_equal(got["size"], want["size"])
    blank = captions.measure_attributes(np.zeros((1, 5, 5), np.uint8))
    assert blank["brightness"][0] == 0 and blank["size"][0] == 0  # dark, small


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 4, 4), np.float32) - 1, "0..255"),
        (np.zeros((4, 4), np.uint8), r"\[N, H, W\]"),
        (np.zeros((2, 4, 4, 5), np.uint8), "channels"),
        (np.array([["a"]]), "dtype"),
    ],
)
def test_measure_attributes_rejects_bad_images(images, message):
    with pytest.raises(UsageError, match=message):
        captions.measure_attributes(images)


def test_class_phrase():
    assert captions.class_phrase("T-shirt/top") == "t-shirt"
    assert captions.class_phrase("Ankle_boot") == "ankle boot"
    assert captions.class_phrase("ankle boot") == "ankle boot"
    assert captions.class_nouns("7") == ("digit 7", "number 7")
    assert captions.class_nouns("sandal")[0] == "sandal"


def make(per_image=10, seed=0, repeats=5):
    images = np.tile(fake_images(), (repeats, 1, 1))
    labels = np.arange(len(images)) % 10
    return (
        images,
        labels,
        captions.make_captions(
            images, labels, FASHION_MNIST_CLASSES, per_image=per_image, seed=seed
        ),
    )


def test_captions_state_what_the_pixels_show():
    images, labels, text = make()
    assert text.shape == (20, 10) and isinstance(text[0, 0], str)
    measured = captions.measure_attributes(images)
    kinds = set()
    for i, row in enumerate(text):
        assert len(set(row)) == 10  # All different.
        for caption in row:
            stated = captions.caption_attributes(caption)
            assert stated["class"] == labels[i], caption
            assert stated["brightness"] in (None, measured["brightness"][i]), caption
            assert stated["size"] in (None, measured["size"][i]), caption
            kinds.add((stated["brightness"] is not None, stated["size"] is not None))
        # The four kinds (class only, +brightness, +size, all) all appear per image.
        stated_rows = [captions.caption_attributes(c) for c in row]
        assert {(s["brightness"] is None, s["size"] is None) for s in stated_rows} == {
            (True, True),
            (False, True),
            (True, False),
            (False, False),
        }
    assert len(kinds) == 4


def test_short_and_long_forms():
    _, _, text = make(per_image=40, repeats=20)
    flat = set(text.ravel().tolist())
    assert {"a sandal", "an ankle boot", "a t-shirt"} <= flat
    assert any(c.endswith("on a dark background") and "," in c for c in flat)
    lengths = [len(c.split()) for c in flat]
    assert min(lengths) == 2 and max(lengths) >= 8


def test_captions_deterministic_by_seed():
    _, _, a = make(seed=3)
    _, _, b = make(seed=3)
    _, _, c = make(seed=4)
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.5


def test_an_image_captions_do_not_depend_on_the_others():
    images, labels, text = make(seed=1)
    sub = captions.make_captions(images[:7], labels[:7], FASHION_MNIST_CLASSES, seed=1)
    np.testing.assert_array_equal(sub, text[:7])


def test_make_captions_bad_input():
    images = fake_images()
    with pytest.raises(UsageError, match="positive"):
        captions.make_captions(images, [0, 1, 2, 3], FASHION_MNIST_CLASSES, per_image=0)
    with pytest.raises(UsageError, match="one label per image"):
        captions.make_captions(images, [0, 1], FASHION_MNIST_CLASSES)
    with pytest.raises(UsageError, match=r"0\.\.9"):
        captions.make_captions(images, [0, 1, 2, 10], FASHION_MNIST_CLASSES)


@pytest.mark.parametrize(
    ("caption", "want"),
    [
        ("a large, light ankle boot on a dark background", (9, 1, 1)),
        ("a sandal", (5, None, None)),
        ("A dark T-shirt", (0, 0, None)),
        ("a shirt on a black background", (6, None, None)),
        ("a big pair of trousers", (1, None, 1)),
        ("a little dim boot", (9, 0, 0)),
        ("a glittering unicorn", (None, None, None)),
        ("a light dark sneaker", (7, None, None)),  # Contradiction: nothing stated.
        ("a sandal and a bag", (None, None, None)),
    ],
)
def test_caption_attributes(caption, want):
    got = captions.caption_attributes(caption)
    assert (got["class"], got["brightness"], got["size"]) == want


def test_stated_attributes_reads_each_caption():
    texts = np.asarray(
        [
            ["a dark sandal", "a big pair of trousers", "a sandal"],
            ["a little dim boot", "a shirt on a black background", "a light dark sneaker"],
        ]
    )
    got = captions.stated_attributes(texts)
    assert got.dtype == np.int32 and got.shape == (2, 3, 2)
    # (brightness, size), -1 where silent; a background word and a contradiction state none.
    want = [[[0, -1], [-1, 1], [-1, -1]], [[0, 0], [-1, -1], [-1, -1]]]
    np.testing.assert_array_equal(got, want)


def test_stated_attributes_of_made_captions_are_the_measured_ones():
    images = fake_images()
    labels = np.zeros(len(images), np.int64)
    made = captions.make_captions(images, labels, ["t-shirt"], per_image=8, seed=1)
    stated = captions.stated_attributes(made)
    for column, want in enumerate((WANT_BRIGHTNESS, WANT_SIZE)):
        known = stated[..., column] >= 0
        assert 0 < known.mean() < 1  # some captions state it, some do not
        truth = np.broadcast_to(np.asarray(want)[:, None], known.shape)
        np.testing.assert_array_equal(stated[..., column][known], truth[known])


@pytest.mark.skipif(not has_real_fashion, reason="Fashion-MNIST not installed")
def test_thresholds_split_fashion_mnist_in_half():
    from zoo.data.idx import load_mnist_like

    images, labels, names = load_mnist_like("fashion_mnist", "train", REAL_FASHION)
    overall = captions.measure_attributes(images)
    assert abs(overall["brightness"].mean() - 0.5) < 0.01
    assert abs(overall["size"].mean() - 0.5) < 0.01
    # With the labels each class is split about in half too (per-class medians), so a size
    # or brightness word says something the class does not.
    measured = captions.measure_attributes(images, labels, names)
    for k in range(10):
        for key in ("brightness", "size"):
            assert abs(measured[key][labels == k].mean() - 0.5) < 0.02, (k, key)
    text = captions.make_captions(images[:300], labels[:300], names, per_image=10)
    for i in range(300):
        for caption in text[i]:
            stated = captions.caption_attributes(caption, names)
            assert stated["class"] == labels[i]
            assert stated["brightness"] in (None, measured["brightness"][i])
            assert stated["size"] in (None, measured["size"][i])


def test_caption_agreement_by_hand():
    images = np.zeros((4, 10, 10), np.uint8)
    images[0] = 255  # light, large
    images[1, :2, :2] = 100  # dark, small
    images[2] = 100  # dark, large
    texts = ["a light large sandal", "a light small sandal", "a sandal", "a dark sandal"]
    correct = np.array([True, False, True, False])
    got = captions.caption_agreement(images, np.full(4, 5), texts, None, correct)
    assert got == {
        "class_only_accuracy": 1.0,  # "a sandal" only, classified right
        "brightness_agreement": 2 / 3,  # light yes, light no (dark), dark yes
        "brightness_captions": 3,
        "size_agreement": 1.0,  # large yes, small yes
        "size_captions": 2,
    }
    none = captions.caption_agreement(images[:1], np.full(1, 5), ["a sandal"], None, [False])
    assert none["class_only_accuracy"] == 0.0 and np.isnan(none["size_agreement"])
    assert none["size_captions"] == 0
