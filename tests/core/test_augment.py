"""Differentiable augmentation (DiffAugment): each policy by hand, one T for real and fake in a
D step, gradients through T, nothing added when off, config errors, repeatable by seed."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.families import TINY
from zoo import registry
from zoo.core import augment, distribute
from zoo.core.config import apply_overrides, parse_augment
from zoo.errors import UsageError

ALL = "color,translation,cutout"


@pytest.fixture(autouse=True)
def _float32():
    distribute.set_precision("float32")
    yield
    distribute.set_precision("float32")


def _model(family="dcgan", *overrides, seed=1):
    keras.utils.set_random_seed(0)  # the same initial weights every time
    task = registry.get(family)
    extra = ["num_classes=3"] if family == "cgan" else []
    config = apply_overrides(task.config_class(), [*TINY[family][1], *extra, *overrides])
    model = task.build_model(config, seed=seed)
    model.compile(train_steps=10)
    return model


def _images(n=8, side=16, channels=1, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, side, side, channels)).astype("float32")


# -- each policy by hand ---------------------------------------------------------------------
def test_translation_shifts_with_zero_fill():
    x = np.arange(1, 17, dtype="float32").reshape(1, 4, 4, 1)
    out = augment.translate(tf.constant(x), tf.constant([1]), tf.constant([-1])).numpy()[0, ..., 0]
    # out[i, j] = x[i + 1, j - 1]: up one row, right one column, zeros where nothing came from.
    expected = np.array(
        [[0, 5, 6, 7], [0, 9, 10, 11], [0, 13, 14, 15], [0, 0, 0, 0]], dtype="float32"
    )
    np.testing.assert_array_equal(out, expected)


def test_translation_is_per_example_and_bounded_by_an_eighth_of_the_side():
    x = np.ones((2, 16, 16, 1), "float32")
    out = augment.translate(tf.constant(x), tf.constant([0, 2]), tf.constant([0, -2])).numpy()
    np.testing.assert_array_equal(out[0], x[0])
    assert out[1, 14:].sum() == 0 and out[1, :, :2].sum() == 0 and out[1, :14, 2:].min() == 1
    assert augment.max_shift(16) == 2 and augment.max_shift(28) == 4 and augment.max_shift(64) == 8
    # Through `apply`: u = 0 is the largest shift one way, u -> 1 the other.
    u = tf.constant([[0.0, 0.0], [0.9999, 0.9999]])
    moved = augment.apply(tf.constant(x), u, ("translation",)).numpy()
    assert moved[0, :2].sum() == 0 and moved[0, :, :2].sum() == 0 and moved[0, 2:, 2:].min() == 1
    assert moved[1, 14:].sum() == 0 and moved[1, :, 14:].sum() == 0


def test_cutout_zeroes_a_square_of_half_the_side():
    x = np.ones((3, 8, 8, 2), "float32")
    out = augment.cutout(tf.constant(x), tf.constant([4, 0, 7]), tf.constant([4, 0, 3])).numpy()
    zero = out == 0
    # Size 4, centred at (4, 4): rows and columns 2..5; the same square in every channel.
    expected = np.zeros((8, 8), bool)
    expected[2:6, 2:6] = True
    np.testing.assert_array_equal(zero[0, ..., 0], expected)
    np.testing.assert_array_equal(zero[0, ..., 1], expected)
    # Clipped by the border: centre (0, 0) keeps the 2x2 corner, (7, 3) rows 5..7 x cols 1..4.
    assert zero[1, :2, :2].all() and zero[1].sum() == 4 * 2
    assert zero[2, 5:, 1:5].all() and zero[2].sum() == 3 * 4 * 2
    assert augment.cutout_size(16) == 8 and augment.cutout_size(28) == 14


def test_brightness_adds_and_contrast_scales_around_the_mean():
    x = tf.constant([[[[1.0], [3.0]]], [[[0.0], [-1.0]]]])  # two 1x2 images
    np.testing.assert_array_equal(
        augment.brightness(x, tf.constant([0.5, -0.25])).numpy().ravel(), [1.5, 3.5, -0.25, -1.25]
    )
    # means 2 and -0.5; (x - m) * k + m with k = 1.5 and 0.5
    np.testing.assert_allclose(
        augment.contrast(x, tf.constant([1.5, 0.5])).numpy().ravel(), [0.5, 3.5, -0.25, -0.75]
    )


def test_saturation_scales_around_the_channel_mean_and_is_a_no_op_on_one_channel():
    x = tf.constant([[[[0.0, 0.3, 0.9]]]])  # one RGB pixel, mean 0.4
    np.testing.assert_allclose(
        augment.saturation(x, tf.constant([2.0])).numpy().ravel(), [-0.4, 0.2, 1.4], atol=1e-6
    )
    gray = tf.constant(_images(2, 4, 1))
    assert augment.saturation(gray, tf.constant([0.0, 2.0])) is gray


def test_color_maps_uniforms_to_the_papers_ranges():
    x = tf.constant(_images(1, 4, 1))
    # u = (0, *, 1) -> brightness -0.5, contrast 1.5; one channel: saturation does nothing.
    out = augment.apply(x, tf.constant([[0.0, 0.7, 1.0]]), ("color",)).numpy()
    y = x.numpy() - 0.5
    np.testing.assert_allclose(out, (y - y.mean()) * 1.5 + y.mean(), atol=1e-6)


def test_policies_apply_in_the_papers_order_whatever_order_is_asked():
    x = tf.constant(_images(4, 16, 3))
    u = tf.random.stateless_uniform([4, augment.num_uniforms(("translation", "cutout"))], [1, 2])
    a = augment.apply(x, u, ("translation", "cutout"))
    b = augment.apply(x, u, ("cutout", "translation"))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


# -- the game ----------------------------------------------------------------------------------
def _recording(seen):
    def discriminate(x):
        seen.append(x)
        return tf.reduce_mean(x, axis=[1, 2, 3])[:, None]

    return discriminate


@pytest.mark.parametrize("joint", [False, True])
def test_a_d_step_applies_one_transform_to_real_and_fake(joint):
    model = _model("dcgan", f"augment={ALL}")
    same = np.repeat(_images(1), 8, axis=0)  # eight copies of one image
    seen = []
    model.discriminator_loss(tf.constant(same), tf.constant(same), _recording(seen), joint=joint)
    if joint:
        real_t, fake_t = np.split(seen[0].numpy(), 2)
    else:
        real_t, fake_t = seen[0].numpy(), seen[1].numpy()
    np.testing.assert_array_equal(real_t, fake_t)  # the same T on real i and fake i
    assert not np.array_equal(real_t, same)  # T did something
    assert len({real_t[i].tobytes() for i in range(8)}) == 8  # per example


def _text_model(*overrides):
    family = registry.get("gan_int_cls")
    config = apply_overrides(
        family.config_class(), [*TINY["gan_int_cls"][1], "text_input=embeddings", *overrides]
    )
    model = family.build_model(config, seed=1)
    model.compile(train_steps=10)
    return model


def _text_inputs(model):
    images = tf.constant(np.repeat(_images(1), 4, axis=0))
    text = tf.random.stateless_normal([4, model.config.embedding_dim], [0, 1])
    return images, images, text, text[::-1]


def test_matching_aware_mismatched_real_images_get_the_same_transform():
    model = _text_model(f"augment={ALL}")
    seen = []
    original = model.discriminate

    def discriminate(x, training=True, condition=None):
        seen.append(x)
        return original(x, training, condition=condition)

    model.discriminate = discriminate
    images = _text_inputs(model)[0]
    model.text_discriminator_update(*_text_inputs(model))
    mismatched, real, fake = (s.numpy() for s in seen)
    np.testing.assert_array_equal(mismatched, real)
    np.testing.assert_array_equal(real, fake)
    assert not np.array_equal(real, images.numpy())


def test_gradient_flows_through_the_transform_to_the_generated_images():
    x = tf.constant(np.ones((1, 8, 8, 1), "float32"))
    u = tf.constant([[0.5, 0.5, 0.0, 0.0]])  # no shift; cutout centred at (0, 0): 2x2 corner
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(augment.apply(x, u, ("translation", "cutout")) * 3.0)
    grad = tape.gradient(y, x).numpy()[0, ..., 0]
    expected = np.full((8, 8), 3.0, "float32")
    expected[:2, :2] = 0.0
    np.testing.assert_array_equal(grad, expected)

    model = _model("dcgan", "augment=translation,cutout")
    fake = tf.constant(_images(4))
    with tf.GradientTape() as tape:
        tape.watch(fake)
        logits = model.adversarial_logits(fake)
    grad = tape.gradient(logits, fake).numpy()
    assert np.abs(grad).sum() > 0 and (grad == 0).any()  # through D; zero on cut-out pixels


def _trace_ops(model, data):
    graph = tf.function(model.train_step).get_concrete_function(tf.constant(data)).graph
    return [op.name for op in graph.get_operations()]


def test_off_adds_no_ops_and_draws_nothing():
    off = _model("dcgan")
    x = _images()
    assert off.augment_policies == () and off.augment_draw(x) is None
    assert off.diff_augment(x) is x
    assert not any("diff_augment" in name for name in _trace_ops(off, x))
    on = _model("dcgan", "augment=translation")
    assert any("diff_augment" in name for name in _trace_ops(on, x))
    # One step draws z once when off; with augment also T's parameters in D's and G's step.
    for model, draws in ((_model("dcgan"), 1), (_model("dcgan", "augment=translation"), 3)):
        model.train_step(tf.constant(x))
        reference = keras.random.SeedGenerator(1)
        for _ in range(draws):
            reference.next()
        np.testing.assert_array_equal(model.seed_generator.state.numpy(), reference.state.numpy())
    # The text families' matching-aware D step draws nothing either when off.
    text_model = _text_model()
    before = text_model.seed_generator.state.numpy()
    text_model.text_discriminator_update(*_text_inputs(text_model))
    np.testing.assert_array_equal(text_model.seed_generator.state.numpy(), before)


def test_same_seed_same_run_and_resume_from_the_seed_state_is_exact(tmp_path):
    batches = [tf.constant(_images(seed=s)) for s in range(3)]

    def weights(model):
        return [np.array(v) for v in model.weights]

    a, b = _model("dcgan", f"augment={ALL}"), _model("dcgan", f"augment={ALL}")
    for batch in batches:
        logs_a, logs_b = a.train_step(batch), b.train_step(batch)
        assert float(logs_a["d_loss"]) == float(logs_b["d_loss"])
    for x, y in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(x, y)

    c = _model("dcgan", f"augment={ALL}")
    c.train_step(batches[0])
    path = tf.train.Checkpoint(**c.checkpoint_items()).save(str(tmp_path / "ckpt"))
    d = _model("dcgan", f"augment={ALL}", seed=7)  # another seed: the state comes from the file
    tf.train.Checkpoint(**d.checkpoint_items()).restore(path).assert_consumed()
    for batch in batches[1:]:
        d.train_step(batch)
    for x, y in zip(weights(a), weights(d), strict=True):
        np.testing.assert_array_equal(x, y)


def test_cyclegan_discriminators_and_generators_see_the_transform():
    model = _model("cyclegan", "augment=cutout")
    seen = []
    for network in (model.discriminator_a, model.discriminator_b):
        original = network.call

        def call(x, *args, _original=original, **kwargs):
            seen.append(x)
            return _original(x, *args, **kwargs)

        network.call = call
    a, b = tf.constant(_images(2)), tf.constant(_images(2, seed=1))
    model.train_step((a, b))
    # G's two adversarial terms and D's two joint calls: every D input has a zeroed square.
    assert len(seen) == 4
    for x in seen:
        x = x.numpy()
        for i in range(len(x)):
            assert (x[i] == 0).sum() >= 4 * 4  # at least the smallest clipped square


# -- config ------------------------------------------------------------------------------------
def test_augment_config_parses_and_rejects_unknown_policies():
    assert parse_augment("") == ()
    assert parse_augment(" Translation, cutout ") == ("translation", "cutout")
    config = apply_overrides(registry.get("dcgan").config_class(), ["augment=color,cutout"])
    assert config.augment_policies == ("color", "cutout")
    with pytest.raises(UsageError, match="unknown augment policy 'flip'; policies: color, transl"):
        apply_overrides(registry.get("dcgan").config_class(), ["augment=translation,flip"])
    with pytest.raises(UsageError, match="twice"):
        parse_augment("cutout,cutout")
    with pytest.raises(UsageError, match="needs images"):
        _model("gan", "data_dim=2", "augment=translation")


@pytest.mark.parametrize(
    "family, extra_draws",
    [
        ("dcgan", 2),  # D's step (real and fake share one), G's fake
        ("cgan", 2),
        ("cyclegan", 4),  # D_A's and D_B's steps, G's and F's adversarial terms
        ("gan_int_cls", 3),  # D's step (three pairs share one), G's fake and interpolated fake
        ("stackgan", 2),
    ],
)
def test_every_family_draws_t_once_per_d_step_and_per_g_adversarial_term(family, extra_draws):
    def draws_of_one_step(*overrides):
        task = registry.get(family)
        extra = {
            "cgan": ["num_classes=3"],
            "gan_int_cls": ["text_input=embeddings"],
            "stackgan": ["text_input=embeddings"],
        }.get(family, [])
        config = apply_overrides(task.config_class(), [*TINY[family][1], *extra, *overrides])
        model = task.build_model(config, seed=1)
        model.compile(train_steps=10)
        side = model.data_shape[0]
        x = tf.constant(_images(4, side))
        data = {
            "dcgan": x,
            "cgan": (x, tf.constant([0, 1, 2, 0])),
            "cyclegan": (x, x[::-1]),
        }.get(family)
        if data is None:
            text = tf.random.stateless_normal([4, config.embedding_dim], [0, 1])
            data = (x, text, text[::-1])
        model.train_step(data)
        return int(model.seed_generator.state.numpy()[1])

    assert draws_of_one_step(f"augment={ALL}") - draws_of_one_step() == extra_draws
