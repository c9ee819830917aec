"""Metrics of image-to-image translation (CycleGAN): cycle error, FD against the target domain
and translation accuracy, in both directions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from zoo.data import load_arrays
from zoo.eval import metrics
from zoo.eval.evaluate import Evaluator

TRANSLATE_BATCH = 250


def translation_metrics(
    evaluator: Evaluator,
    a: np.ndarray,
    b: np.ndarray,
    a_to_b: Any,
    b_to_a: Any,
    class_b: int | None = None,
) -> dict[str, float]:
    """Metrics of an image-to-image model in one direction (A → B).

    Args:
      evaluator: gives the feature network (and the classifier for translation accuracy).
      a, b: real images of domains A and B in [-1, 1].
      a_to_b, b_to_a: the two generators, images -> images (numpy or tensors).
      class_b: the classifier's class of domain B (e.g. the index of `--domain_b`).

    Returns:
      `cycle_error` (mean |F(G(a)) − a|), `fd` of G(a) against b in the evaluator's
      features, and `translation_accuracy` (G(a) classified as `class_b`) when the
      evaluator has a classifier and `class_b` is given.
    """
    fake_b = np.asarray(a_to_b(a), np.float32)
    cycled = np.asarray(b_to_a(fake_b), np.float32)
    result = {"cycle_error": metrics.cycle_error(a, cycled)}
    evaluator.load_networks()
    result["fd"] = metrics.frechet_distance_from_activations(
        evaluator.extractor.features(b), evaluator.extractor.features(fake_b)
    )
    if class_b is not None and evaluator.classifier is not None:
        result["translation_accuracy"] = metrics.translation_accuracy(
            evaluator.classifier.probabilities(fake_b), class_b
        )
    return result


def _translator(network: Any) -> Callable[[np.ndarray], np.ndarray]:
    def translate(images: np.ndarray) -> np.ndarray:
        parts = []
        for start in range(0, len(images), TRANSLATE_BATCH):
            batch = images[start : start + TRANSLATE_BATCH]
            parts.append(np.asarray(tf.cast(network(batch, training=False), tf.float32)))
        return np.concatenate(parts)

    return translate


def evaluate_translation(
    evaluator: Evaluator,
    a_to_b: Any,
    b_to_a: Any,
    real_images: Callable[[int], tuple[np.ndarray, np.ndarray]],
    num_samples: int,
) -> dict[str, float]:
    """`translation_metrics` for A → B (G, cycled back by F) and for B → A (F, cycled back by
    G), keys prefixed `a_to_b_` and `b_to_a_`, on real test images of the run's two domains.

    `translation_accuracy` is there when the evaluator has a classifier and the target domain
    is one class of it.

    Args:
      evaluator: the run's `Evaluator` (its run config names the dataset and the domains).
      a_to_b, b_to_a: the two generators (Keras models, images -> images).
      real_images: `num` -> (images of A, images of B), fixed real images in [-1, 1].
      num_samples: images per domain, at most the domain's test images on the datasets the
        zoo classifier knows (1000 per Fashion-MNIST class).
    """
    rc = evaluator.rc
    num = num_samples
    targets: dict[str, int | None] = {"a": None, "b": None}
    if not evaluator.toy:
        evaluator.load_networks()
    if evaluator.classifier is not None:  # a labelled in-memory dataset
        for side, domain in (("a", rc.domain_a), ("b", rc.domain_b)):
            images, labels, _ = load_arrays(
                rc.dataset, split="test", data_dir=rc.data_dir, classes=domain.split(",")
            )
            num = min(num, len(images))
            if len(set(labels.tolist())) == 1:
                targets[side] = int(labels[0])
    a, b = real_images(num)
    g, f = _translator(a_to_b), _translator(b_to_a)
    forward = translation_metrics(evaluator, a, b, g, f, targets["b"])
    backward = translation_metrics(evaluator, b, a, f, g, targets["a"])
    return {
        **{f"a_to_b_{k}": v for k, v in forward.items()},
        **{f"b_to_a_{k}": v for k, v in backward.items()},
    }
