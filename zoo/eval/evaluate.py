"""Evaluating a model: draw samples, extract features, compute the family's metrics.

What is measured depends on the data a run was trained on:

- toys (`ring8`, `grid25`, `gaussian1d`): `modes_covered` and `high_quality_fraction`;
- `fashion_mnist`, `mnist`: in the features of the zoo classifier (or of InceptionV3 when
  local weights are given) against real test images: `fd`, `kid` (+ `kid_std`),
  `precision`, `recall`, and the classifier's `inception_score` (+ `inception_score_std`);
  `class_accuracy` too when the model's `sample_inputs` carry the classes asked for
  (a `label` entry of int class indices, as in the export contract), and with captions (a
  `text` entry) how well the images follow their other words: `class_only_accuracy`,
  `brightness_agreement`, `size_agreement` (`zoo.data.captions.caption_agreement`);
- other image datasets readable into memory (`folder:PATH`) when InceptionV3 weights are
  given: the feature metrics only.

A family whose outputs are not samples of the dataset (image-to-image translation) scores them
in its task's `evaluate(model, evaluator, num_samples, seed)` (`zoo.eval.translation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoo import data as zoo_data
from zoo.core.images import to_uint8
from zoo.core.latent import sample_z
from zoo.data.captions import caption_agreement
from zoo.errors import UsageError
from zoo.eval import metrics
from zoo.eval.classifier import FeatureExtractor, canonical_dataset, inception_extractor

DEFAULT_NUM_SAMPLES = 10000
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
INCEPTION_SCORE_SPLITS = 10
PRECISION_RECALL_K = 3
GENERATE_BATCH = 500


def _in_memory_images(dataset: str) -> bool:
    return canonical_dataset(dataset) is not None or str(dataset).startswith("folder:")


def check_evaluable(rc: Any, inception_weights: str | None = None) -> None:
    """Raises `UsageError` unless the zoo has metrics for the run's dataset.

    Args:
      rc: a `zoo.run.RunConfig` (its `dataset` is read).
      inception_weights: a local InceptionV3 weights file, if any.
    """
    dataset = rc.dataset
    if dataset in zoo_data.TOY_NAMES or canonical_dataset(dataset) is not None:
        return
    if inception_weights and _in_memory_images(dataset):
        return
    raise UsageError(
        f"no metrics for dataset {dataset!r}: the zoo evaluates the toys, fashion_mnist and "
        "mnist, and folder:PATH datasets when --inception_weights is given"
    )


def generate_samples(
    model: Any, num_samples: int, seed: int = 0, batch_size: int = GENERATE_BATCH
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`num_samples` generator outputs (float32 numpy) from `model.sample_inputs(num, seed)`.

    Returns:
      The samples and the inputs they were made from.
    """
    if num_samples < 1:
        raise UsageError(f"num_samples must be >= 1, got {num_samples}")
    inputs = model.sample_inputs(num_samples, seed=seed)
    parts = []
    for start in range(0, num_samples, batch_size):
        batch = {k: v[start : start + batch_size] for k, v in inputs.items()}
        parts.append(np.asarray(model.generate(batch), np.float32))
    return np.concatenate(parts), inputs


def _finite_rows(x: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(x.reshape(len(x), -1)), axis=1)


class Evaluator:
    """Computes a run's metrics; loads the feature network and real features once.

    The feature network (the zoo classifier, trained on first use) and the real images'
    features are loaded on the first call and reused by later ones, so that evaluating
    during training pays for them once.

    Args:
      rc: the run's `zoo.run.RunConfig` (dataset, data_dir, classes).
      inception_weights: local InceptionV3 weights: its pool features replace the
        classifier's for fd, kid, precision and recall.
      classifier_options: passed to `load_classifier` when the classifier must be trained
        (e.g. `epochs`, `max_examples`).

    Raises:
      UsageError: no metrics for the dataset (see `check_evaluable`).
    """

    def __init__(
        self,
        rc: Any,
        *,
        inception_weights: str | None = None,
        classifier_options: dict[str, Any] | None = None,
    ) -> None:
        check_evaluable(rc, inception_weights)
        self.rc = rc
        self.dataset = rc.dataset
        self.toy = rc.dataset in zoo_data.TOY_NAMES
        self.inception_weights = inception_weights
        self.classifier_options = dict(classifier_options or {})
        self.classifier: FeatureExtractor | None = None
        self.extractor: FeatureExtractor | None = None
        self._real: dict[tuple, np.ndarray] = {}

    @property
    def feature_name(self) -> str | None:
        """What the feature metrics are computed in (None for toys)."""
        if self.toy:
            return None
        if self.inception_weights:
            return "inception_v3"
        return f"{canonical_dataset(self.dataset)}_classifier"

    def load_networks(self) -> None:
        """Loads the feature network (and the classifier) on first use."""
        if self.extractor is not None:
            return
        if canonical_dataset(self.dataset) is not None:
            self.classifier = FeatureExtractor.for_dataset(
                self.dataset, data_dir=self.rc.data_dir, **self.classifier_options
            )
        if self.inception_weights:
            self.extractor = inception_extractor(self.inception_weights)
        else:
            self.extractor = self.classifier

    def real_images(self, num: int, shape: Sequence[int]) -> np.ndarray:
        """Up to `num` real images of the run's classes in [-1, 1], at the model's `shape`.

        Test split for the IDX datasets; a fixed random subset (the same at every call).
        """
        from zoo.eval.classifier import to_network_input

        split = "test" if canonical_dataset(self.dataset) else "train"
        images, _, _ = zoo_data.load_arrays(
            self.dataset,
            split=split,
            data_dir=self.rc.data_dir,
            classes=list(self.rc.classes) or None,
        )
        if len(images) == 0:
            raise UsageError(f"{self.dataset} has no real images of classes {self.rc.classes}")
        keep = np.sort(np.random.default_rng(0).permutation(len(images))[:num])
        x = images[keep].astype(np.float32) / 127.5 - 1.0
        return to_network_input(x, int(shape[0]), int(shape[-1])).numpy()

    def real_features(self, num: int, shape: Sequence[int]) -> np.ndarray:
        """Features of `real_images(num, shape)` (cached per size and shape)."""
        key = (num, tuple(shape))
        if key not in self._real:
            self.load_networks()
            self._real[key] = self.extractor.features(self.real_images(num, shape))
        return self._real[key]

    def __call__(self, model: Any, num_samples: int = DEFAULT_NUM_SAMPLES, seed: int = 0) -> dict:
        """The metrics of `model` on `num_samples` samples drawn with `seed`.

        Returns:
          A dict of metric name -> float (int for `modes_covered`); NaN when the generator
          produced non-finite samples.
        """
        samples, inputs = generate_samples(model, num_samples, seed)
        if self.toy:
            centres, std = zoo_data.toy_modes(self.dataset)
            if not np.all(np.isfinite(samples)):
                return {"modes_covered": 0, "high_quality_fraction": float("nan")}
            return metrics.toy_mode_metrics(samples.reshape(len(samples), -1), centres, std)
        class_names = getattr(getattr(model, "config", None), "class_names", None)
        return self._image_metrics(samples, inputs, seed, class_names)

    def _image_metrics(
        self,
        samples: np.ndarray,
        inputs: dict,
        seed: int,
        class_names: Sequence[str] | None = None,
    ) -> dict:
        if samples.ndim != 4:
            raise UsageError(
                f"{self.dataset} is an image dataset but the model makes "
                f"{samples.shape[1:]} samples"
            )
        names = ["fd", "kid", "kid_std", "precision", "recall"]
        self.load_networks()
        if self.classifier is not None:
            names += ["inception_score", "inception_score_std"]
        finite = _finite_rows(samples)
        if not np.all(finite):
            return dict.fromkeys(names, float("nan"))
        real = self.real_features(len(samples), samples.shape[1:])
        result: dict[str, float] = {}
        probabilities = None
        if self.classifier is self.extractor:
            fake, probabilities = self.extractor.features_and_probabilities(samples)
        else:
            fake = self.extractor.features(samples)
            if self.classifier is not None:
                probabilities = self.classifier.probabilities(samples)
        result["fd"] = metrics.frechet_distance_from_activations(real, fake)
        result["kid"], result["kid_std"] = metrics.kernel_inception_distance_from_activations(
            real, fake, KID_SUBSETS, KID_SUBSET_SIZE, seed=seed
        )
        result.update(metrics.precision_recall_knn(real, fake, k=PRECISION_RECALL_K))
        if probabilities is not None:
            splits = min(INCEPTION_SCORE_SPLITS, len(probabilities))
            score, score_std = metrics.inception_score_from_probabilities(probabilities, splits)
            result["inception_score"], result["inception_score_std"] = score, score_std
            if "label" in inputs:
                labels = np.asarray(inputs["label"])
                result["class_accuracy"] = metrics.class_accuracy(probabilities, labels)
                if "text" in inputs:  # captions: do the images also follow their other words?
                    correct = np.argmax(probabilities, axis=1) == labels
                    result.update(
                        caption_agreement(
                            to_uint8(samples), labels, inputs["text"], class_names, correct
                        )
                    )
        return result


def evaluate_model(
    model: Any,
    rc: Any,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    seed: int = 0,
    *,
    inception_weights: str | None = None,
) -> dict:
    """The family's metrics of `model` for a run (see the module docstring for which).

    Args:
      model: a ganzoo `GAN` (weights loaded).
      rc: the run's `zoo.run.RunConfig`.
      num_samples: generated samples (and at most as many real images).
      seed: seed of the generator inputs and the KID subsets.
      inception_weights: local InceptionV3 weights for the feature metrics.

    Returns:
      Metric name -> value.

    Raises:
      UsageError: no metrics for the dataset, missing data or weights.
    """
    evaluator = Evaluator(rc, inception_weights=inception_weights)
    return evaluator(model, num_samples, seed)


class ExportedSampler:
    """An exported generator (`zoo.load_generator`) with the sampling interface of a `GAN`.

    `sample_inputs` draws z exactly as `GAN.sample_inputs` does (standard normal from
    `numpy.random.default_rng(seed)`), so a run and its export evaluate on the same inputs;
    a class-conditional export also gets uniformly drawn `label`s.

    Args:
      generator: an `zoo.exported.ExportedGenerator` (`serving_default`).
      num_classes: classes of the dataset (for a `label` input).

    Raises:
      UsageError: inputs other than `z` and `label` (image-to-image and text models).
    """

    def __init__(self, generator: Any, num_classes: int = 0) -> None:
        unsupported = sorted(set(generator.inputs) - {"z", "label"})
        if unsupported or "z" not in generator.inputs:
            raise UsageError(
                f"export evaluation supports generators fed z (and label); this one takes "
                f"{', '.join(sorted(generator.inputs))}"
            )
        if "label" in generator.inputs and num_classes < 1:
            raise UsageError("the export takes a label but its JSON names no classes")
        self.generator = generator
        self.latent_dim = int(generator.inputs["z"].shape[-1])
        self.num_classes = num_classes

    def sample_inputs(self, num: int, seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        inputs = {"z": sample_z(num, self.latent_dim, rng)}
        if "label" in self.generator.inputs:
            inputs["label"] = rng.integers(0, self.num_classes, num).astype("int32")
        return inputs

    def generate(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.generator(**{k: inputs[k] for k in self.generator.inputs})


def load_exported(export_dir: str) -> tuple[ExportedSampler, Any, int]:
    """An exported model `OUT/<name>` (or one of its `.tflite` files) ready to evaluate.

    Reads `OUT/<name>.json` beside it for the dataset it was trained on and its step.

    Returns:
      (sampler, a `zoo.run.RunConfig` with the dataset, the exported step).

    Raises:
      UsageError: no export or JSON there, or a generator that is not fed z.
    """
    import os

    import zoo
    from zoo.io import read_json
    from zoo.run import RunConfig

    path = os.path.normpath(os.path.expanduser(export_dir))
    name = os.path.basename(path).split(".")[0]
    json_path = os.path.join(os.path.dirname(path), f"{name}.json")
    if not os.path.exists(json_path):
        raise UsageError(f"{export_dir} is not an export of the zoo (no {json_path})")
    manifest = read_json(json_path)
    try:
        dataset = manifest["trained_with"]["dataset"]
        step = int(manifest["step"])
    except (KeyError, TypeError, ValueError) as err:
        raise UsageError(f"{json_path} does not describe a zoo export: missing {err}") from err
    data = manifest.get("data")
    class_names = data.get("class_names") if isinstance(data, dict) else None
    num_classes = len(class_names) if isinstance(class_names, list) else 0
    sampler = ExportedSampler(zoo.load_generator(path), num_classes)
    return sampler, RunConfig(dataset=dataset), step
