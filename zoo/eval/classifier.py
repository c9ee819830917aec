"""The zoo's own feature networks: a small CNN per dataset, or InceptionV3 from a local file.

This machine-independent setup needs no download: the classifier of a dataset is trained on
its train split the first time it is needed and cached as

    $GANZOO_CACHE/classifiers/<dataset>/classifier.keras   (default cache: ~/.cache/ganzoo)
    $GANZOO_CACHE/classifiers/<dataset>/classifier.json    its test accuracy and settings

Train or refresh it by hand (prints its test accuracy):

    python -m zoo.eval.classifier --dataset=fashion_mnist [--epochs=N]

Its penultimate layer, `features` (128 units), plays the role of InceptionV3's pool features
for FD, KID and precision/recall; its softmax gives the class probabilities of the
Inception-Score-style score and of class-conditional accuracy. Scores computed with it are
comparable within the zoo, not with published FIDs; for those, pass local InceptionV3 weights
(`inception_extractor`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import keras
import numpy as np
import tensorflow as tf

from zoo.errors import UsageError, first_line
from zoo.io import atomic_path, atomic_write_json, read_json

CLASSIFIER_DATASETS = ("fashion_mnist", "mnist")
CLASSIFIER_IMAGE_SIZE = 28
MODEL_FILE = "classifier.keras"
INFO_FILE = "classifier.json"
DEFAULT_EPOCHS = 3
CACHE_VARIABLE = "GANZOO_CACHE"
INCEPTION_IMAGE_SIZE = 299


def canonical_dataset(spec: str) -> str | None:
    """The classifier name of a dataset spec (`fashion_mnist`, `mnist`), or None."""
    name = str(spec).strip().lower().replace("-", "_")
    return name if name in CLASSIFIER_DATASETS else None


def cache_root() -> str:
    """The zoo's cache directory: `$GANZOO_CACHE`, else `~/.cache/ganzoo`."""
    return os.environ.get(CACHE_VARIABLE) or os.path.join(
        os.path.expanduser("~"), ".cache", "ganzoo"
    )


def classifier_dir(dataset: str) -> str:
    """Where the classifier of `dataset` is cached."""
    return os.path.join(cache_root(), "classifiers", dataset)


def to_network_input(images: Any, image_size: int, channels: int) -> tf.Tensor:
    """Images in [-1, 1] of any size and 1 or 3 channels -> float32 [N, size, size, channels].

    Grayscale is repeated into RGB; RGB is converted to luma for grayscale networks.
    """
    x = tf.convert_to_tensor(images, tf.float32)
    if x.shape.rank != 4 or x.shape[-1] not in (1, 3):
        raise UsageError(f"expected images [N, H, W, 1 or 3], got shape {tuple(x.shape)}")
    if channels == 3 and x.shape[-1] == 1:
        x = tf.image.grayscale_to_rgb(x)
    elif channels == 1 and x.shape[-1] == 3:
        x = tf.image.rgb_to_grayscale((x + 1.0) / 2.0) * 2.0 - 1.0
    if tuple(x.shape[1:3]) != (image_size, image_size):
        x = tf.image.resize(x, [image_size, image_size], antialias=True)
    return tf.clip_by_value(x, -1.0, 1.0)


def build_classifier(num_classes: int, seed: int = 0) -> keras.Model:
    """The zoo's feature CNN: conv32-conv64-pool-dense128 ("features") -> logits.

    Args:
      num_classes: classes of the dataset.
      seed: seed of the weight initialisers.

    Returns:
      A functional model from [N, 28, 28, 1] images in [-1, 1] to logits [N, num_classes].
    """
    size = CLASSIFIER_IMAGE_SIZE

    def init(offset: int) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=seed * 100 + offset)

    images = keras.Input((size, size, 1), name="images")
    x = keras.layers.Conv2D(32, 3, activation="relu", kernel_initializer=init(0))(images)
    x = keras.layers.Conv2D(64, 3, activation="relu", kernel_initializer=init(1))(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu", kernel_initializer=init(2), name="features")(x)
    logits = keras.layers.Dense(num_classes, kernel_initializer=init(3), name="logits")(x)
    return keras.Model(images, logits, name="classifier")


def _load_split(
    dataset: str, split: str, data_dir: str | None, max_examples: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from zoo.data import load_arrays

    images, labels, class_names = load_arrays(dataset, split=split, data_dir=data_dir)
    if max_examples is not None and max_examples < len(images):
        keep = np.sort(np.random.default_rng(seed).permutation(len(images))[:max_examples])
        images, labels = images[keep], labels[keep]
    x = images.astype(np.float32) / 127.5 - 1.0
    x = to_network_input(x, CLASSIFIER_IMAGE_SIZE, 1).numpy()
    return x, labels.astype(np.int32), tuple(class_names or ())


def _save_model_atomically(model: keras.Model, path: str) -> None:
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def train_classifier(
    dataset: str,
    *,
    epochs: int = DEFAULT_EPOCHS,
    max_examples: int | None = None,
    data_dir: str | None = None,
    batch_size: int = 128,
    seed: int = 0,
    verbose: int | str | None = None,
) -> tuple[keras.Model, dict[str, Any]]:
    """Trains the classifier of `dataset` on its train split and caches it.

    The model file and then the JSON (test accuracy and settings) are written atomically to
    `classifier_dir(dataset)`; a reader never sees a half-written classifier.

    Args:
      dataset: one of `CLASSIFIER_DATASETS`.
      epochs: passes over the training examples.
      max_examples: train on this many examples only (tests); None = the whole split.
      data_dir: folder searched first for the dataset's files.
      batch_size: training batch size.
      seed: seed of the weights, the example order and the subset.
      verbose: Keras verbosity; default a progress bar on a terminal, a line per epoch else.

    Returns:
      The trained model (logits out) and its info dict.

    Raises:
      UsageError: unknown dataset, missing data, bad settings.
    """
    name = canonical_dataset(dataset)
    if name is None:
        raise UsageError(
            f"no zoo classifier for {dataset!r}; known: {', '.join(CLASSIFIER_DATASETS)}"
        )
    if epochs < 1 or batch_size < 1 or (max_examples is not None and max_examples < 1):
        raise UsageError(
            f"epochs, batch_size and max_examples must be >= 1, got {epochs}, {batch_size}, "
            f"{max_examples}"
        )
    x_train, y_train, class_names = _load_split(name, "train", data_dir, max_examples, seed)
    x_test, y_test, _ = _load_split(name, "test", data_dir, None, seed)
    num_classes = max(len(class_names), int(y_train.max()) + 1)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    directory = classifier_dir(name)
    print(
        f"training the {name} classifier for evaluation ({len(x_train)} images, {epochs} "
        f"epoch(s)); it is cached in {directory}",
        flush=True,
    )
    model = build_classifier(num_classes, seed)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # Each epoch's order is drawn here from `seed` alone: `Dataset.shuffle(seed=)` also depends
    # on TensorFlow's global seed, which whatever ran before in the process may have set.
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(x_train)) for _ in range(epochs)])
    images, labels = tf.constant(x_train), tf.constant(y_train)
    train = (
        tf.data.Dataset.from_tensor_slices(order.reshape(epochs, -1))
        .flat_map(lambda epoch: tf.data.Dataset.from_tensor_slices(epoch).batch(batch_size))
        .map(lambda index: (tf.gather(images, index), tf.gather(labels, index)))
    )
    steps = -(-len(x_train) // batch_size)
    model.fit(train, epochs=epochs, steps_per_epoch=steps, shuffle=False, verbose=verbose)
    logits = model.predict(x_test, batch_size=1000, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    info = {
        "dataset": name,
        "test_accuracy": accuracy,
        "test_examples": len(x_test),
        "train_examples": len(x_train),
        "epochs": epochs,
        "num_classes": num_classes,
        "class_names": list(class_names),
        "image_size": CLASSIFIER_IMAGE_SIZE,
        "seed": seed,
    }
    _save_model_atomically(model, os.path.join(directory, MODEL_FILE))
    atomic_write_json(os.path.join(directory, INFO_FILE), info)
    return model, info


def load_classifier(
    dataset: str, *, train_if_missing: bool = True, **train_kwargs: Any
) -> tuple[keras.Model, dict[str, Any]]:
    """The cached classifier of `dataset` (trained first if there is none).

    Args:
      dataset: one of `CLASSIFIER_DATASETS` (spec spellings like `fashion-mnist` work).
      train_if_missing: train it when the cache has none; else raise.
      **train_kwargs: passed to `train_classifier`.

    Returns:
      The model (logits out) and its info dict.

    Raises:
      UsageError: unknown dataset; no cached classifier and `train_if_missing=False`; an
        unreadable cache.
    """
    name = canonical_dataset(dataset)
    if name is None:
        raise UsageError(
            f"no zoo classifier for {dataset!r}; known: {', '.join(CLASSIFIER_DATASETS)}"
        )
    directory = classifier_dir(name)
    model_path = os.path.join(directory, MODEL_FILE)
    info_path = os.path.join(directory, INFO_FILE)
    if not (os.path.exists(model_path) and os.path.exists(info_path)):
        if not train_if_missing:
            raise UsageError(
                f"no {name} classifier in {directory}; "
                f"train it with: python -m zoo.eval.classifier --dataset={name}"
            )
        return train_classifier(name, **train_kwargs)
    info = read_json(info_path)
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except (OSError, ValueError) as err:
        raise UsageError(
            f"cannot load {model_path} ({first_line(err)}); "
            f"retrain it with: python -m zoo.eval.classifier --dataset={name}"
        ) from err
    return model, info


class FeatureExtractor:
    """Features (and class probabilities, when the network has classes) of images.

    Images come in [-1, 1], float [N, H, W, C] with C = 1 or 3, any size; they are resized
    and converted to what the network takes, and run in batches in inference mode.

    Args:
      feature_model: maps network input to [N, D] features, or to (features, logits).
      image_size: side of the network's input.
      channels: channels of the network's input.
      name: what the features are, e.g. "fashion_mnist_classifier" or "inception_v3".
      batch_size: images per forward pass.
    """

    def __init__(
        self,
        feature_model: keras.Model,
        *,
        image_size: int,
        channels: int,
        name: str,
        batch_size: int = 500,
    ) -> None:
        self.network = feature_model
        self.image_size = image_size
        self.channels = channels
        self.name = name
        self.batch_size = batch_size
        self.has_classes = isinstance(feature_model.output, (list, tuple))
        self._forward = tf.function(
            lambda x: feature_model(x, training=False), reduce_retracing=True
        )

    @classmethod
    def from_classifier(cls, classifier: keras.Model, name: str) -> FeatureExtractor:
        """Wraps a `build_classifier` model: its `features` layer and its logits."""
        both = keras.Model(
            classifier.inputs, [classifier.get_layer("features").output, classifier.outputs[0]]
        )
        shape = classifier.inputs[0].shape
        return cls(both, image_size=int(shape[1]), channels=int(shape[3]), name=name)

    @classmethod
    def for_dataset(cls, dataset: str, **train_kwargs: Any) -> FeatureExtractor:
        """The zoo classifier of `dataset` (loaded from the cache, or trained first)."""
        model, info = load_classifier(dataset, **train_kwargs)
        return cls.from_classifier(model, f"{info['dataset']}_classifier")

    def _run(self, images: Any) -> list[np.ndarray]:
        images = np.asarray(images, np.float32)
        outputs: list[list[np.ndarray]] = []
        for start in range(0, len(images), self.batch_size):
            x = to_network_input(
                images[start : start + self.batch_size], self.image_size, self.channels
            )
            out = self._forward(x)
            outputs.append([np.asarray(o) for o in (out if self.has_classes else [out])])
        if not outputs:
            raise UsageError("no images to extract features from")
        return [np.concatenate(parts) for parts in zip(*outputs, strict=True)]

    def features(self, images: Any) -> np.ndarray:
        """float32 [N, D] features of images in [-1, 1]."""
        return self._run(images)[0].reshape(len(images), -1)

    def features_and_probabilities(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """Features [N, D] and class probabilities [N, K] in one pass."""
        if not self.has_classes:
            raise UsageError(f"{self.name} features have no classes (no probabilities)")
        features, logits = self._run(images)
        return features.reshape(len(images), -1), tf.nn.softmax(logits).numpy()

    def probabilities(self, images: Any) -> np.ndarray:
        """float32 [N, K] class probabilities of images in [-1, 1].

        Raises:
          UsageError: the network has no classes (InceptionV3 pool features).
        """
        return self.features_and_probabilities(images)[1]


def inception_extractor(
    weights_path: str, image_size: int = INCEPTION_IMAGE_SIZE
) -> FeatureExtractor:
    """InceptionV3 pool features (2048-D, as in FID) from a local weights file; never downloads.

    Args:
      weights_path: a Keras weights file of `InceptionV3(include_top=False)`.
      image_size: input side (299 as in FID; at least 75).

    Raises:
      UsageError: the file is missing or does not fit the network.
    """
    path = os.path.expanduser(weights_path)
    if not os.path.isfile(path):
        raise UsageError(f"--inception_weights: no such file {weights_path}")
    try:
        network = keras.applications.InceptionV3(
            weights=path,
            include_top=False,
            pooling="avg",
            input_shape=(image_size, image_size, 3),
        )
    except (OSError, ValueError) as err:
        raise UsageError(
            f"--inception_weights: cannot load {weights_path}: {first_line(err)}"
        ) from err
    return FeatureExtractor(network, image_size=image_size, channels=3, name="inception_v3")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are `UsageError`s (one line, exit code 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m zoo.eval.classifier --dataset=NAME`: trains (or refreshes) a classifier."""
    from zoo import cli

    parser = _Parser(
        prog="python -m zoo.eval.classifier",
        description="Train the zoo's feature classifier of a dataset and cache it.",
    )
    parser.add_argument("--dataset", required=True, help=", ".join(CLASSIFIER_DATASETS))
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--max_examples", type=int, default=None, help="Train on a subset.")
    parser.add_argument("--data_dir", default=None, help="Folder searched first for the data.")
    parser.add_argument("--seed", type=int, default=0)
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            raise UsageError(f"unexpected arguments: {' '.join(unknown)}")
        _, info = train_classifier(
            args.dataset,
            epochs=args.epochs,
            max_examples=args.max_examples,
            data_dir=args.data_dir,
            seed=args.seed,
        )
    except UsageError as err:
        return cli.fail(err)
    print(
        f"{info['dataset']} classifier: test accuracy {info['test_accuracy']:.4f} "
        f"({classifier_dir(info['dataset'])})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
