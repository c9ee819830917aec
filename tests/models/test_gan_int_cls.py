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
from tests.models.class_head_helpers import Recorder as _Recorder
from tests.models.class_head_helpers import cross_entropy as _cross_entropy
from tests.models.class_head_helpers import softplus as _softplus
from zoo import registry
from zoo.core import losses
from zoo.errors import UsageError
from zoo.models.gan_int_cls import GANIntCls, GANIntClsConfig

TASK = registry.get("gan_int_cls")

VOCABULARY = ("", "[UNK]", "a", "dark", "light", "sandal", "sneaker", "bag", "large")
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
    text = tokens(model, ["a dark sandal", "a light sneaker", "a large bag", "a sandal"][:size])
    wrong = tokens(model, ["a bag", "a dark bag", "a sneaker", "a light bag"][:size])
    labels = tf.constant([0, 1, 2, 0][:size], tf.int32)
    # What the captions state (brightness, size), -1 where silent (as the data's stream).
    attributes = tf.constant([[0, -1], [1, -1], [-1, 1], [-1, -1]][:size], tf.int32)
    return images, text, wrong, labels, attributes


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
    images, text, wrong, *_ = batch(model)
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
    images, text, wrong, labels, attributes = batch(model)
    spy = GeneratorSpy(model.generator)
    object.__setattr__(model, "generator", spy)
    logs = model.train_step((images, text, wrong, labels, attributes))
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

    from tests.families import run_export

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


# -- AC-GAN's class head (aux_weight) ---------------------------------------------------------


class _OutputSpy(GeneratorSpy):
    def __init__(self, generator):
        super().__init__(generator)
        self.outputs = []

    def __call__(self, inputs, training=False):
        out = super().__call__(inputs, training=training)
        self.outputs.append(out)
        return out


def test_class_head_losses_by_hand_and_in_the_trackers():
    model = tiny(interpolation=False, attribute_weight=0.0)
    assert model.aux_weight == 2.0  # the default on labelled captions
    model.compile(train_steps=1, run_eagerly=True)
    images, text, wrong, labels, _ = batch(model)
    recorder, spy = _Recorder(), _OutputSpy(model.generator)
    object.__setattr__(model, "apply_update", recorder)
    object.__setattr__(model, "generator", spy)
    # A batch without attributes (four elements) is enough for the class head alone.
    logs = model.train_step((images, text, wrong, labels))
    d_loss, g_loss = recorder.losses
    (fake,) = spy.outputs
    h, h_wrong = model.encode(text), model.encode(wrong)
    real_logits, real_classes = model.discriminator([images, h], training=True)
    fake_logits, fake_classes = model.discriminator([fake, h], training=True)
    wrong_logits, _ = model.discriminator([images, h_wrong], training=True)
    r, f, w = (np.asarray(t, np.float64)[:, 0] for t in (real_logits, fake_logits, wrong_logits))
    d_class = _cross_entropy(real_classes, labels.numpy())
    g_class = _cross_entropy(fake_classes, labels.numpy())
    adversarial = np.mean(_softplus(-r) + 0.5 * (_softplus(f) + _softplus(w)))
    np.testing.assert_allclose(d_loss, adversarial + 2.0 * d_class, rtol=1e-5)
    np.testing.assert_allclose(g_loss, np.mean(_softplus(-f)) + 2.0 * g_class, rtol=1e-5)
    np.testing.assert_allclose(float(logs["d_class_loss"]), d_class, rtol=1e-5)
    np.testing.assert_allclose(float(logs["g_class_loss"]), g_class, rtol=1e-5)
    np.testing.assert_allclose(float(logs["d_loss"]), d_loss, rtol=1e-6)
    assert float(model.trackers["g_class_loss"].result()) == pytest.approx(g_class, rel=1e-5)


def test_the_class_head_reads_the_image_not_the_text():
    model = tiny()
    images, text, wrong, *_ = batch(model)
    _, classes, _ = model.discriminator([images, model.encode(text)], training=False)
    _, classes_wrong, _ = model.discriminator([images, model.encode(wrong)], training=False)
    assert classes.shape == (4, 3) and classes.dtype == tf.float32
    np.testing.assert_array_equal(classes, classes_wrong)


def test_class_head_off_old_runs_and_unlabelled_data():
    from zoo.core.config import config_from_dict, config_to_dict

    off = tiny(aux_weight=0.0, attribute_weight=0.0)
    assert off.aux_weight == 0.0 and "g_class_loss" not in off.trackers
    assert len(off.discriminator.outputs) == 1
    # A run saved before the class head (no aux_weight, no attribute_weight in its
    # config.json) loads without either head.
    saved = config_to_dict(tiny().config)
    del saved["aux_weight"], saved["attribute_weight"]
    old = GANIntCls(config_from_dict(GANIntClsConfig, saved), seed=3)
    assert old.config.aux_weight == 0.0 and len(old.discriminator.outputs) == 1
    assert tiny(aux_weight=0.5).aux_weight == 0.5
    # No class names (e.g. unlabelled embeddings): the default is off, a positive weight an error.
    assert tiny(class_names=()).aux_weight == 0.0
    with pytest.raises(UsageError, match="aux_weight > 0 needs labelled data"):
        tiny(class_names=(), aux_weight=0.5)


# -- the attribute head (attribute_weight) ----------------------------------------------------


def _sigmoid_cross_entropy(logit, target):
    return _softplus(logit) - target * logit


def test_attribute_loss_by_hand_is_masked_where_the_caption_is_silent():
    from zoo.models.text_family import attribute_loss

    logits = tf.constant([[2.0, -1.0], [0.5, 3.0], [-4.0, 1.0]])
    stated = tf.constant([[1, -1], [0, 1], [-1, -1]])
    expected = [
        _softplus(-2.0),  # light, size unstated: -1's logit adds nothing
        _softplus(0.5) + _softplus(-3.0),  # dark (0) and large (1)
        0.0,  # a caption stating neither
    ]
    np.testing.assert_allclose(attribute_loss(logits, stated).numpy(), expected, rtol=1e-6)
    # The silent entries' logits get no gradient.
    with tf.GradientTape() as tape:
        tape.watch(logits)
        total = tf.reduce_sum(attribute_loss(logits, stated))
    grad = tape.gradient(total, logits).numpy()
    assert grad[0, 1] == 0.0 and (grad[2] == 0.0).all() and grad[1, 0] != 0.0


def test_attribute_head_losses_by_hand_and_in_the_trackers():
    model = tiny(interpolation=False)
    assert model.aux_weight == 2.0 and model.attribute_weight == 1.0  # defaults on captions
    model.compile(train_steps=1, run_eagerly=True)
    images, text, wrong, labels, attributes = batch(model)
    recorder, spy = _Recorder(), _OutputSpy(model.generator)
    object.__setattr__(model, "apply_update", recorder)
    object.__setattr__(model, "generator", spy)
    logs = model.train_step((images, text, wrong, labels, attributes))
    d_loss, g_loss = recorder.losses
    (fake,) = spy.outputs
    h, h_wrong = model.encode(text), model.encode(wrong)
    real_logits, real_classes, real_attributes = model.discriminator([images, h], training=True)
    fake_logits, fake_classes, fake_attributes = model.discriminator([fake, h], training=True)
    wrong_logits, *_ = model.discriminator([images, h_wrong], training=True)
    r, f, w = (np.asarray(t, np.float64)[:, 0] for t in (real_logits, fake_logits, wrong_logits))
    stated = attributes.numpy()

    def attribute_term(logits):  # the batch's mean of the stated attributes' cross-entropies
        a = np.asarray(logits, np.float64)
        per = [
            sum(
                _sigmoid_cross_entropy(a[i, j], stated[i, j]) for j in range(2) if stated[i, j] >= 0
            )
            for i in range(len(stated))
        ]
        return np.mean(per)

    d_attribute, g_attribute = attribute_term(real_attributes), attribute_term(fake_attributes)
    d_class = _cross_entropy(real_classes, labels.numpy())
    g_class = _cross_entropy(fake_classes, labels.numpy())
    adversarial = np.mean(_softplus(-r) + 0.5 * (_softplus(f) + _softplus(w)))
    np.testing.assert_allclose(d_loss, adversarial + 2.0 * d_class + d_attribute, rtol=1e-5)
    np.testing.assert_allclose(
        g_loss, np.mean(_softplus(-f)) + 2.0 * g_class + g_attribute, rtol=1e-5
    )
    np.testing.assert_allclose(float(logs["d_attribute_loss"]), d_attribute, rtol=1e-5)
    np.testing.assert_allclose(float(logs["g_attribute_loss"]), g_attribute, rtol=1e-5)
    np.testing.assert_allclose(float(logs["d_class_loss"]), d_class, rtol=1e-5)
    assert float(model.trackers["g_attribute_loss"].result()) == pytest.approx(
        g_attribute, rel=1e-5
    )
    assert float(model.trackers["d_attribute_loss"].result()) == pytest.approx(
        d_attribute, rel=1e-5
    )
    # Without the attributes in the batch the head has nothing to learn from: an error.
    with pytest.raises(ValueError, match="needs the attributes"):
        model.train_step((images, text, wrong, labels))


def test_the_attribute_head_reads_the_image_not_the_text():
    model = tiny(aux_weight=0.0)  # the attribute head alone: outputs [logits, attributes]
    images, text, wrong, *_ = batch(model)
    _, attributes = model.discriminator([images, model.encode(text)], training=False)
    _, attributes_wrong = model.discriminator([images, model.encode(wrong)], training=False)
    assert attributes.shape == (4, 2) and attributes.dtype == tf.float32
    np.testing.assert_array_equal(attributes, attributes_wrong)


def test_attribute_head_off_for_old_runs_embeddings_and_by_weight():
    from zoo.core.config import config_from_dict, config_to_dict

    # A run saved with the class head but before the attribute head loads with the class
    # head alone.
    saved = config_to_dict(tiny().config)
    del saved["attribute_weight"]
    old = GANIntCls(config_from_dict(GANIntClsConfig, saved), seed=3)
    assert old.config.attribute_weight == 0.0 and old.attribute_weight == 0.0
    assert len(old.discriminator.outputs) == 2 and "g_attribute_loss" not in old.trackers
    off = tiny(attribute_weight=0.0)
    assert off.attribute_weight == 0.0 and len(off.discriminator.outputs) == 2
    assert tiny(attribute_weight=0.5).attribute_weight == 0.5
    # Precomputed embeddings state nothing the head could learn: off by default.
    embeddings = tiny(text_input="embeddings", vocabulary=())
    assert embeddings.attribute_weight == 0.0 and embeddings.aux_weight == 2.0
