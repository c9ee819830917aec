"""gan_int_cls: the matching-aware game, GAN-INT's interpolation, text in and out, embeddings."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.families import run_main
from zoo import registry
from zoo.core import losses
from zoo.errors import UsageError
from zoo.models.gan_int_cls import GANIntCls, GANIntClsConfig

TASK = registry.get("gan_int_cls")

VOCABULARY = ("", "[UNK]", "a", "dark", "light", "sandal", "sneaker", "bag")
NAMES = ("Sandal", "Sneaker", "Bag")


def tiny(**changes) -> GANIntCls:
    config = GANIntClsConfig(
        image_size=16,
        generator_filters=8,
        discriminator_filters=8,
        condition_dim=8,
        embedding_dim=16,
        text_embedding_dim=8,
        text_units=8,
        vocabulary=VOCABULARY,
        max_length=6,
        class_names=NAMES,
    )
    return GANIntCls(dataclasses.replace(config, **changes), seed=3)


def tokens(model, captions):
    return tf.constant(model.tokenizer.tokenize_numpy(captions))


def batch(model, size=4):
    images = tf.random.stateless_uniform((size, 16, 16, 1), seed=(1, 2), minval=-1, maxval=1)
    text = tokens(model, ["a dark sandal", "a light sneaker", "a bag", "a sandal"][:size])
    wrong = tokens(model, ["a bag", "a dark bag", "a sneaker", "a light bag"][:size])
    return images, text, wrong


def test_matching_aware_loss_on_hand_made_logits():
    real, fake, wrong = tf.constant([2.0, 0.0]), tf.constant([-1.0, 1.0]), tf.constant([0.5, 3.0])
    sp = lambda x: np.log1p(np.exp(x))  # noqa: E731
    expected = sp(-real.numpy()) + 0.5 * (sp(fake.numpy()) + sp(wrong.numpy()))
    got = losses.matching_aware_discriminator_loss(
        losses.non_saturating_discriminator_loss, real, fake, wrong
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    # Least squares: (D(x) - 1)^2 / 2 + (D(fake)^2 / 2 + D(wrong)^2 / 2) / 2.
    got = losses.matching_aware_discriminator_loss(
        losses.least_squares_discriminator_loss, real, fake, wrong
    )
    expected = 0.5 * (real.numpy() - 1) ** 2 + 0.5 * (
        0.5 * fake.numpy() ** 2 + 0.5 * wrong.numpy() ** 2
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


def test_shapes_dtypes_and_the_text_reaches_both_players():
    model = tiny()
    images, text, wrong = batch(model)
    h, h_wrong = model.encode(text), model.encode(wrong)
    assert h.shape == (4, 16) and h.dtype == tf.float32
    z = tf.zeros((4, 100))
    fake = model.generator([z, h], training=False)
    assert fake.shape == (4, 16, 16, 1) and fake.dtype == tf.float32
    assert not np.allclose(fake, model.generator([z, h_wrong], training=False))
    logits = model.discriminate(images, False, condition=h)
    assert logits.shape == (4, 1) and logits.dtype == tf.float32
    assert not np.allclose(logits, model.discriminate(images, False, condition=h_wrong))


class GeneratorSpy:
    """Records the embeddings G is called with (eager steps), and runs the real G."""

    def __init__(self, generator):
        self.generator, self.embeddings = generator, []

    def __call__(self, inputs, training=False):
        self.embeddings.append(inputs[1].numpy())
        return self.generator(inputs, training=training)

    @property
    def trainable_variables(self):
        return self.generator.trainable_variables


@pytest.mark.parametrize("matching_aware", [True, False])
@pytest.mark.parametrize("interpolation", [True, False])
def test_the_four_variants_train_and_gan_int_feeds_interpolated_embeddings(
    matching_aware, interpolation
):
    model = tiny(matching_aware=matching_aware, interpolation=interpolation)
    model.compile(train_steps=1, run_eagerly=True)
    images, text, wrong = batch(model)
    spy = GeneratorSpy(model.generator)
    object.__setattr__(model, "generator", spy)
    logs = model.train_step((images, text, wrong))
    assert ("mismatched_logit" in logs) == matching_aware
    assert all(np.isfinite(float(v)) for v in logs.values())
    h, h_wrong = model.encode(text).numpy(), model.encode(wrong).numpy()
    if interpolation:
        assert len(spy.embeddings) == 2
        np.testing.assert_allclose(spy.embeddings[1], 0.5 * h + 0.5 * h_wrong, atol=1e-6)
    else:
        assert len(spy.embeddings) == 1
    np.testing.assert_allclose(spy.embeddings[0], h, atol=1e-6)


def test_frozen_text_encoder_is_unchanged_and_finetuning_changes_it():
    for finetune in (False, True):
        model = tiny(finetune_text_encoder=finetune)
        model.compile(train_steps=2)
        before = [w.copy() for w in model.text_encoder.get_weights()]
        data = tf.data.Dataset.from_tensors(batch(model)).repeat()
        model.fit(data, steps_per_epoch=2, verbose=0)
        after = model.text_encoder.get_weights()
        same = all(np.array_equal(b, a) for b, a in zip(before, after, strict=True))
        assert same != finetune


def test_config_checks():
    with pytest.raises(UsageError, match="text_input must be"):
        GANIntClsConfig(text_input="audio")
    with pytest.raises(UsageError, match="interpolation_beta"):
        GANIntClsConfig(interpolation_beta=1.5)
    with pytest.raises(UsageError, match="vocabulary"):
        GANIntCls(GANIntClsConfig())


def test_sample_inputs_name_each_class_and_the_picture_has_a_row_per_class():
    model = tiny()
    inputs = model.sample_inputs(5)
    assert list(inputs["text"][:3]) == ["a sandal", "a sneaker", "a bag"]
    assert inputs["label"].tolist() == [0, 1, 2, 0, 1]
    assert inputs["text"][3] == "a dark sandal"
    assert model.generate(inputs).shape == (5, 16, 16, 1)
    picture = TASK.sample_picture(model, 64)
    assert picture.shape[0] == 3 * 66 + 2  # three classes, 64-px tiles


def test_serving_signatures_take_strings_tokens_and_embeddings():
    model = tiny()
    table = TASK.serving_signatures(model)
    assert list(table) == ["serving_default", "tokens", "from_embedding"]
    assert TASK.tflite_signatures(model) == ["tokens", "from_embedding"]
    specs = {
        name: {k: (s.dtype, s.shape.as_list()) for k, s in sp.items()}
        for name, (_, sp) in table.items()
    }
    assert specs["serving_default"]["text"] == (tf.string, [None])
    assert specs["tokens"]["tokens"] == (tf.int32, [None, 6])
    assert specs["from_embedding"]["embedding"] == (tf.float32, [None, 16])
    z = tf.random.stateless_normal((3, 100), seed=(4, 5))
    captions = ["a dark sandal", "A LIGHT, unheard-of sneaker!!", ""]  # OOV words, empty caption
    from_text = table["serving_default"][0](z=z, text=tf.constant(captions))["images"]
    from_tokens = table["tokens"][0](z=z, tokens=tokens(model, captions))["images"]
    np.testing.assert_allclose(from_text, from_tokens, atol=1e-6)
    assert TASK.export_metadata(model)["tokenizer"]["vocabulary"] == list(VOCABULARY)


def test_text_input_errors_are_one_line(tmp_path):
    """text_input=embeddings with a caption dataset, and a missing npz, exit 2 with one line."""
    result = run_main(
        [
            "--model=gan_int_cls",
            "--dataset=fashion_mnist",
            "--config=text_input=embeddings",
            f"--model_dir={tmp_path / 'a'}",
        ]
    )
    assert (
        result.returncode == 2 and "embeddings:PATH.npz" in result.stderr.strip().splitlines()[-1]
    )
    result = run_main(
        [
            "--model=gan_int_cls",
            f"--dataset=embeddings:{tmp_path}/none.npz",
            f"--model_dir={tmp_path / 'b'}",
        ]
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_precomputed_embeddings_train_and_export_from_embedding(tmp_path):
    """An `.npz` of K embeddings per image (the CUB layout) trains and serves `from_embedding`."""
    rng = np.random.default_rng(0)
    names = []
    for i in range(12):
        (tmp_path / "images").mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(
            tmp_path / "images" / f"{i}.png"
        )
        names.append(f"{i}.png")
    np.savez(
        tmp_path / "train.npz",
        embeddings=rng.standard_normal((12, 3, 24)).astype("float32"),
        filenames=np.asarray(names),
        labels=np.arange(12) % 3,
        class_names=np.asarray(["a", "b", "c"]),
    )
    run = tmp_path / "run"
    result = run_main(
        [
            "--model=gan_int_cls",
            f"--dataset=embeddings:{tmp_path / 'train.npz'}",
            "--config=image_size=16",
            "--config=generator_filters=8",
            "--config=discriminator_filters=8",
            "--config=condition_dim=8",
            f"--model_dir={run}",
            "--train_steps=2",
            "--batch_size=4",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((run / "config.json").read_text())["model_config"]
    assert saved["text_input"] == "embeddings" and saved["embedding_dim"] == 24
    assert (run / "samples" / "latest.png").exists()

    from tests.export.conftest import run_export

    out = tmp_path / "out"
    result = run_export(
        f"--model_dir={run}", f"--export_dir={out}", "--formats=saved_model,float32"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "gan_int_cls.json").read_text())
    assert manifest["signatures"]["serving_default"]["inputs"]["embedding"]["shape"] == [None, 24]
    assert [e["file"] for e in manifest["tflite"]] == ["gan_int_cls.float32.tflite"]
    assert "tokenizer" not in manifest
    keras.backend.clear_session()
