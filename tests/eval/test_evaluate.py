"""Evaluating models in process: toy and image metrics, the training callback."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from zoo import train
from zoo.data import load_arrays, toy_modes
from zoo.data.toys import toy_dataset
from zoo.errors import UsageError
from zoo.eval.callback import EvalCallback
from zoo.eval.evaluate import (
    Evaluator,
    check_evaluable,
    evaluate_model,
    generate_samples,
)
from zoo.eval.translation import translation_metrics
from zoo.models.gan import VanillaGAN, VanillaGANConfig
from zoo.run import RunConfig


class Replay:
    """A stand-in generator that returns given samples (the `GAN` sampling interface)."""

    def __init__(
        self,
        samples: np.ndarray,
        labels: np.ndarray | None = None,
        texts: list[str] | None = None,
    ) -> None:
        self.samples = samples.astype(np.float32)
        self.labels = labels
        self.texts = texts

    def sample_inputs(self, num: int, seed: int = 0) -> dict[str, np.ndarray]:
        inputs = {"index": np.arange(num) % len(self.samples)}
        if self.labels is not None:
            inputs["label"] = self.labels[inputs["index"]]
        if self.texts is not None:
            inputs["text"] = np.asarray(self.texts, dtype=object)[inputs["index"]]
        return inputs

    def generate(self, inputs: dict) -> np.ndarray:
        return self.samples[inputs["index"]]


def toy_points(name: str, n: int) -> np.ndarray:
    ds = toy_dataset(name, batch_size=n, seed=1, start_step=0, with_labels=False)
    return next(iter(ds)).numpy()


def test_toy_metrics_of_a_perfect_and_a_collapsed_generator():
    rc = RunConfig(dataset="ring8")
    perfect = evaluate_model(Replay(toy_points("ring8", 4000)), rc, num_samples=4000)
    assert perfect["modes_covered"] == 8 and perfect["high_quality_fraction"] > 0.98
    centres, _ = toy_modes("ring8")
    collapsed = evaluate_model(Replay(centres[:1]), rc, num_samples=1000)
    assert collapsed == {"modes_covered": 1, "high_quality_fraction": 1.0}


def test_toy_metrics_of_a_real_model_and_non_finite_samples():
    model = VanillaGAN(VanillaGANConfig(data_dim=2, generator_units=(8,)))
    result = evaluate_model(model, RunConfig(dataset="grid25"), num_samples=700)
    assert set(result) == {"modes_covered", "high_quality_fraction"}
    assert 0 <= result["modes_covered"] <= 25
    samples, inputs = generate_samples(model, 700, seed=3)
    assert samples.shape == (700, 2) and inputs["z"].shape == (700, model.config.latent_dim)
    nan = evaluate_model(Replay(np.full((4, 2), np.nan)), RunConfig(dataset="ring8"), 10)
    assert nan["modes_covered"] == 0 and np.isnan(nan["high_quality_fraction"])


def test_datasets_without_metrics_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no metrics for dataset 'tfds:cifar10'"):
        check_evaluable(RunConfig(dataset="tfds:cifar10"))
    with pytest.raises(UsageError, match="--inception_weights"):
        Evaluator(RunConfig(dataset=f"folder:{tmp_path}"))
    check_evaluable(RunConfig(dataset=f"folder:{tmp_path}"), inception_weights="w.h5")
    check_evaluable(RunConfig(dataset="mnist"))


def test_image_metrics_of_real_images_against_noise(zoo_cache):
    rc = RunConfig(dataset="fashion_mnist")
    evaluator = Evaluator(rc)
    # Training images stand in for a perfect generator (the reference is the test split).
    train, train_labels, _ = load_arrays("fashion_mnist", split="train")
    good = Replay(train[:600].astype(np.float32) / 127.5 - 1.0, train_labels[:600])
    noise = Replay(np.random.default_rng(0).uniform(-1, 1, (600, 28, 28, 1)))
    real = evaluator(good, num_samples=600)
    bad = evaluator(noise, num_samples=600)
    assert set(real) == {
        "fd", "kid", "kid_std", "precision", "recall", "inception_score",
        "inception_score_std", "class_accuracy",
    }  # fmt: skip
    assert real["fd"] < 0.1 * bad["fd"] and real["kid"] < 0.1 * bad["kid"]
    assert real["precision"] > 0.6 and real["recall"] > 0.6
    # Noise has no recall; some noise lands in the large k-NN balls of sparse real regions
    # (more so in the features of the tiny test classifier, one epoch on 1500 images, whose
    # weights vary with the threads' reduction order: 0.25 to 0.6 of the real precision seen),
    # so its precision is only lower.
    assert bad["recall"] < 0.05 and bad["precision"] < 0.75 * real["precision"]
    assert real["inception_score"] > 2 * bad["inception_score"]
    assert real["class_accuracy"] > 0.5
    assert "class_accuracy" not in bad
    assert evaluator.feature_name == "fashion_mnist_classifier"


def test_captioned_samples_are_scored_on_their_words_too(zoo_cache):
    """Images made from captions: how often they look as the caption's brightness and size
    words say (measured, `zoo.data.captions`), and the class accuracy of class-only captions."""
    from zoo.data import captions
    from zoo.data.idx import FASHION_MNIST_CLASSES

    images, labels, _ = load_arrays("fashion_mnist", split="train")
    images, labels = images[:300], labels[:300]
    measured = captions.measure_attributes(images)  # no class names: the global medians

    def caption(i: int, flip: bool) -> str:
        if i % 3 == 0:
            return f"a {captions.class_phrase(FASHION_MNIST_CLASSES[labels[i]])}"
        b, z = (
            (1 - measured["brightness"][i], 1 - measured["size"][i])
            if flip
            else (
                measured["brightness"][i],
                measured["size"][i],
            )
        )
        noun = captions.class_phrase(FASHION_MNIST_CLASSES[labels[i]])
        return f"a {captions.BRIGHTNESS_WORDS[b]} {captions.SIZE_WORDS[z]} {noun}"

    x = images.astype(np.float32) / 127.5 - 1.0
    evaluator = Evaluator(RunConfig(dataset="fashion_mnist"))
    true = evaluator(Replay(x, labels, [caption(i, False) for i in range(300)]), 300)
    flipped = evaluator(Replay(x, labels, [caption(i, True) for i in range(300)]), 300)
    assert true["brightness_agreement"] == true["size_agreement"] == 1.0
    assert flipped["brightness_agreement"] == flipped["size_agreement"] == 0.0
    assert true["brightness_captions"] == true["size_captions"] == 200
    assert true["class_only_accuracy"] > 0.5 and true["class_accuracy"] > 0.5


def test_image_metrics_of_a_small_dcgan_and_the_model_resolution(zoo_cache):
    from zoo.models.dcgan import DCGAN, DCGANConfig

    model = DCGAN(DCGANConfig(image_size=16, generator_filters=8, discriminator_filters=8))
    evaluator = Evaluator(RunConfig(dataset="fashion_mnist", classes=("sandal", "bag")))
    result = evaluator(model, num_samples=200, seed=1)
    assert all(np.isfinite(v) for v in result.values()) and result["fd"] > 0
    # Real images are brought to the model's resolution and kept to its classes.
    real = evaluator.real_images(50, model.data_shape)
    assert real.shape == (50, 16, 16, 1) and real.min() >= -1 and real.max() <= 1
    assert (200, (16, 16, 1)) in evaluator._real
    nan = evaluator(Replay(np.full((3, 16, 16, 1), np.nan)), num_samples=10)
    assert all(np.isnan(v) for v in nan.values())


def test_eval_callback_appends_lines_on_boundaries(tmp_path):
    path = tmp_path / "metrics.jsonl"
    centres, _ = toy_modes("ring8")
    writer = tf.summary.create_file_writer(str(tmp_path / "tensorboard"))
    callback = EvalCallback(Evaluator(RunConfig(dataset="ring8")), str(path), writer, 10, 5, 100)
    callback.set_model(Replay(centres))
    for batch in range(12):  # steps 11..22: boundaries 15 and 20
        callback.on_train_batch_end(batch, {})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["step"] for line in lines] == [15, 20]
    assert lines[0]["modes_covered"] == 8 and lines[0]["high_quality_fraction"] == 1.0
    assert callback.history[-1]["step"] == 20
    assert os.listdir(tmp_path / "tensorboard")


def test_run_rejects_eval_settings_and_datasets_without_metrics(tmp_path):
    with pytest.raises(UsageError, match="--eval_every >= 0"):
        train.run(RunConfig(model="gan", dataset="ring8", eval_every=-1, model_dir=str(tmp_path)))
    with pytest.raises(UsageError, match="no metrics for dataset"):
        train.run(
            RunConfig(
                model="dcgan",
                dataset=f"folder:{tmp_path}",
                eval_every=10,
                model_dir=str(tmp_path / "run"),
            )
        )
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_image_run_evaluates_with_the_cached_classifier(zoo_cache, tmp_path):
    rc = RunConfig(
        model="dcgan",
        batch_size=8,
        train_steps=2,
        eval_every=2,
        eval_samples=200,
        model_dir=str(tmp_path),
    )
    overrides = ("image_size=16", "generator_filters=8", "discriminator_filters=8")
    assert train.run(rc, overrides).status == "completed"
    with open(tmp_path / "metrics.jsonl") as f:
        evals = [json.loads(line) for line in f if '"fd"' in line]
    assert [line["step"] for line in evals] == [2]
    assert {"fd", "kid", "precision", "recall", "inception_score"} <= set(evals[0])


def test_translation_metrics_of_an_identity_and_a_swap(zoo_cache):
    images, labels, _ = load_arrays("fashion_mnist", split="test", classes=["trouser", "bag"])
    x = images.astype(np.float32) / 127.5 - 1.0
    a, b = x[labels == 1][:200], x[labels == 8][:200]
    evaluator = Evaluator(RunConfig(dataset="fashion_mnist"))
    identity = translation_metrics(evaluator, a, b, lambda v: v, lambda v: v, class_b=8)
    assert identity["cycle_error"] == 0.0
    assert identity["translation_accuracy"] < 0.5  # trousers are not bags
    swap = translation_metrics(evaluator, a, b, lambda v: b, lambda v: a, class_b=8)
    assert swap["cycle_error"] == 0.0 and swap["fd"] == pytest.approx(0.0, abs=1e-3)
    assert swap["translation_accuracy"] > 0.5 and identity["fd"] > 10 * swap["fd"] + 1.0
