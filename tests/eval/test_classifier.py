"""The zoo's feature classifier: trains, caches atomically, reloads; feature extractors."""

from __future__ import annotations

import os
import re

import keras
import numpy as np
import pytest

from zoo.data import load_arrays
from zoo.errors import UsageError
from zoo.eval import classifier


@pytest.fixture
def test_images():
    images, labels, _ = load_arrays("fashion_mnist", split="test")
    return images[:400].astype(np.float32) / 127.5 - 1.0, labels[:400]


def test_trained_classifier_is_cached_with_its_accuracy(zoo_cache):
    directory = classifier.classifier_dir("fashion_mnist")
    assert directory == os.path.join(zoo_cache, "classifiers", "fashion_mnist")
    assert os.path.isfile(os.path.join(directory, classifier.MODEL_FILE))
    _, info = classifier.load_classifier("fashion_mnist", train_if_missing=False)
    assert info["dataset"] == "fashion_mnist" and info["num_classes"] == 10
    assert info["train_examples"] == 1500 and info["test_examples"] == 10000
    assert info["test_accuracy"] > 0.5  # chance is 0.1
    assert not [n for n in os.listdir(directory) if n.startswith(".tmp-")]


def test_training_depends_on_its_seed_only_not_the_global_one(tmp_path, monkeypatch):
    """The presets' check metrics retrain a classifier in another process: the same seed must
    give the same weights whatever seeded TensorFlow before."""
    monkeypatch.setenv(classifier.CACHE_VARIABLE, str(tmp_path))
    options = {"epochs": 1, "max_examples": 300, "verbose": 0}
    keras.utils.set_random_seed(1)
    first, _ = classifier.train_classifier("fashion_mnist", **options)
    keras.utils.set_random_seed(2)
    second, _ = classifier.train_classifier("fashion_mnist", **options)
    other, _ = classifier.train_classifier("fashion_mnist", seed=1, **options)
    pairs = list(zip(first.get_weights(), second.get_weights(), other.get_weights(), strict=True))
    assert all(np.array_equal(a, b) for a, b, _ in pairs)
    assert not all(np.array_equal(a, c) for a, _, c in pairs)


def test_cached_classifier_is_reloaded_not_retrained(zoo_cache, monkeypatch, test_images):
    monkeypatch.setattr(classifier, "train_classifier", lambda *a, **k: pytest.fail("retrained"))
    model, info = classifier.load_classifier("fashion-mnist")
    images, labels = test_images
    logits = model.predict(images, verbose=0)
    assert np.mean(np.argmax(logits, 1) == labels) > 0.5
    assert info["test_accuracy"] > 0.5


def test_feature_extractor_shapes_and_input_conversion(zoo_cache, test_images):
    extractor = classifier.FeatureExtractor.for_dataset("fashion_mnist")
    images, _ = test_images
    images = images[:50]
    features = extractor.features(images)
    probabilities = extractor.probabilities(images)
    assert features.shape == (50, 128) and features.dtype == np.float32
    assert probabilities.shape == (50, 10)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
    both = extractor.features_and_probabilities(images)
    np.testing.assert_allclose(both[0], features, rtol=1e-5, atol=1e-5)
    # Gray repeated into RGB converts back to (almost) the same gray image.
    rgb = np.repeat(images, 3, axis=-1)
    np.testing.assert_allclose(extractor.features(rgb), features, rtol=1e-2, atol=1e-2)
    # Other sizes are resized to 28.
    assert extractor.features(np.zeros((3, 16, 16, 3), np.float32)).shape == (3, 128)
    extractor.batch_size = 7  # batches join up in order
    np.testing.assert_allclose(extractor.features(images), features, rtol=1e-5, atol=1e-5)
    with pytest.raises(UsageError, match="images"):
        extractor.features(np.zeros((3, 28, 28), np.float32))


def test_missing_or_unknown_classifier(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path))
    with pytest.raises(
        UsageError, match=re.escape("python -m zoo.eval.classifier --dataset=mnist")
    ):
        classifier.load_classifier("mnist", train_if_missing=False)
    with pytest.raises(UsageError, match="no zoo classifier"):
        classifier.load_classifier("folder:/x")
    with pytest.raises(UsageError, match=">= 1"):
        classifier.train_classifier("fashion_mnist", epochs=0)


def test_default_cache_is_under_home(monkeypatch, tmp_path):
    monkeypatch.delenv("GANZOO_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert classifier.classifier_dir("mnist") == os.path.join(
        str(tmp_path), ".cache", "ganzoo", "classifiers", "mnist"
    )


def test_inception_weights_must_be_a_local_file(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        classifier.inception_extractor(str(tmp_path / "missing.weights.h5"))
    bad = tmp_path / "bad.weights.h5"
    bad.write_text("not weights")
    with pytest.raises(UsageError, match="cannot load"):
        classifier.inception_extractor(str(bad), image_size=75)


@pytest.mark.slow
def test_inception_features_from_a_local_weights_file(tmp_path):
    path = str(tmp_path / "inception.weights.h5")
    keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg").save_weights(
        path
    )
    extractor = classifier.inception_extractor(path, image_size=75)
    features = extractor.features(np.zeros((2, 28, 28, 1), np.float32))
    assert features.shape == (2, 2048) and extractor.name == "inception_v3"
    with pytest.raises(UsageError, match="no classes"):
        extractor.probabilities(np.zeros((2, 28, 28, 1), np.float32))


def test_classifier_cli_errors_are_one_line(capsys):
    assert classifier.main(["--dataset=cifar10"]) == 2
    assert capsys.readouterr().err == (
        "error: no zoo classifier for 'cifar10'; known: fashion_mnist, mnist\n"
    )
    assert classifier.main(["--epochs=2"]) == 2
    assert capsys.readouterr().err == "error: the following arguments are required: --dataset\n"
