"""cgan: the label reaches both players, the projection head is what it claims, serving checks."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import registry
from zoo.core.config import config_from_dict
from zoo.data.dataset import DatasetInfo
from zoo.errors import UsageError
from zoo.models.cgan import AUX_WEIGHT, CGAN, CGANConfig, ClassBatchNorm

TASK = registry.get("cgan")

NAMES = ("t-shirt", "trouser", "pullover", "dress")


def tiny(**changes) -> CGAN:
    config = CGANConfig(
        image_size=16,
        generator_filters=8,
        discriminator_filters=8,
        embedding_dim=4,
        num_classes=4,
        class_names=NAMES,
    )
    return CGAN(dataclasses.replace(config, **changes), seed=1)


@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_shapes_dtypes_and_the_label_changes_both_players(conditioning, spectral_norm):
    model = tiny(conditioning=conditioning, spectral_norm=spectral_norm)
    z = tf.random.stateless_normal((4, 100), seed=(1, 2))
    same = tf.zeros([4], tf.int32)
    images = model.generator([z, same], training=False)
    assert images.shape == (4, 16, 16, 1) and images.dtype == tf.float32
    assert float(tf.reduce_max(tf.abs(images))) <= 1.0
    other = model.generator([z, tf.constant([0, 1, 2, 3])], training=False)
    assert np.allclose(images[0], other[0]) and not np.allclose(images[1:], other[1:])

    logits = model.discriminate(images, training=False, condition=same)
    assert logits.shape == (4, 1) and logits.dtype == tf.float32
    relabelled = model.discriminate(images, training=False, condition=same + 1)
    assert not np.allclose(logits, relabelled)
    # In training mode too (spectral normalisation's power iteration runs there).
    trained = model.discriminate(images, training=True, condition=same)
    assert not np.allclose(trained, model.discriminate(images, training=True, condition=same + 1))


def _head_inputs(model: CGAN) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """(a model giving D's last feature map h, ψ's kernel, the class embeddings V)."""
    d = model.discriminator
    phi = d.get_layer("phi")
    trunk = keras.Model(d.inputs, phi.input)
    psi = next(
        layer for layer in d.layers if isinstance(layer, keras.layers.Conv2D) and layer.filters == 1
    )
    return trunk, psi.kernel.numpy(), d.get_layer("projection").kernel.numpy()


def test_projection_logit_is_psi_plus_the_label_embedding_dot_the_sum_pooled_features():
    """logit(x, y) = ψ(h(x)) + ⟨V_y, Σ_hw h(x)⟩ (Miyato & Koyama 2018, eq. 3, sum pooling).

    Hand-computed from D's last feature map h and its weights; an average pooling would be off
    by the number of positions (16 here).
    """
    model = tiny(conditioning="projection")
    trunk, psi, embeddings = _head_inputs(model)
    x = tf.random.stateless_uniform((3, 16, 16, 1), seed=(3, 4), minval=-1, maxval=1)
    y = np.array([0, 1, 3])
    h = trunk([x, tf.constant(y)], training=False).numpy()
    assert h.shape == (3, 4, 4, 16) and psi.shape == (4, 4, 16, 1)
    expected = np.einsum("bhwc,hwc->b", h, psi[..., 0]) + np.sum(
        embeddings[y] * h.sum(axis=(1, 2)), axis=1
    )
    logits = model.discriminate(x, False, condition=tf.constant(y)).numpy()[:, 0]
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_projection_label_term_is_not_drowned_at_the_start():
    """At initialisation D's logits spread over the labels about as much as over the images:
    the median ratio over four initialisations is ~2 (average pooling: ~0.25, its term 16x
    smaller here, 49x at 28 px)."""
    x = tf.random.stateless_uniform((8, 16, 16, 1), seed=(7, 8), minval=-1, maxval=1)
    ratios = []
    for seed in range(4):
        keras.utils.set_random_seed(seed)
        model = tiny(conditioning="projection")
        logits = np.stack(
            [
                model.discriminate(x, False, condition=tf.fill([8], k)).numpy()[:, 0]
                for k in range(4)
            ],
            axis=1,
        )
        ratios.append(logits.std(axis=1).mean() / logits.std(axis=0).mean())
    assert np.median(ratios) > 0.8, ratios


def test_class_batch_norm_is_the_batch_normalised_input_scaled_and_shifted_by_the_class():
    """Training pass: (x − mean) / √(var + ε) over the batch, then γ[y] · x̂ + β[y] per channel."""
    layer = ClassBatchNorm(3)
    x = tf.random.stateless_normal((4, 2, 2, 5), seed=(9, 10)) * 3.0 + 1.0
    y = tf.constant([0, 2, 2, 1])
    layer([x, y])
    gamma = np.arange(15, dtype="float32").reshape(3, 5) / 7 + 0.5
    beta = -np.arange(15, dtype="float32").reshape(3, 5) / 3
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    out = layer([x, y], training=True).numpy()
    xs = x.numpy()
    normalised = (xs - xs.mean(axis=(0, 1, 2))) / np.sqrt(xs.var(axis=(0, 1, 2)) + 1e-5)
    expected = normalised * gamma[y.numpy()][:, None, None] + beta[y.numpy()][:, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_generator_with_class_batch_norm_trains_a_table_row_per_class():
    model = tiny(generator_conditioning="batch_norm")
    norms = [layer for layer in model.generator.layers if isinstance(layer, ClassBatchNorm)]
    assert len(norms) == 2 and [n.gamma.shape for n in norms] == [(4, 16), (4, 8)]
    z = tf.random.stateless_normal((4, 100), seed=(1, 2))
    images = model.generator([z, tf.zeros([4], tf.int32)], training=False)
    assert images.shape == (4, 16, 16, 1) and images.dtype == tf.float32
    # Only class 0's γ changed: class 0's images change, class 1's do not.
    y = tf.constant([0, 1, 0, 1])
    before = model.generator([z, y], training=False).numpy()
    norms[0].gamma.assign(norms[0].gamma.numpy() * np.array([[2.0], [1], [1], [1]]))
    after = model.generator([z, y], training=False).numpy()
    assert not np.allclose(before[[0, 2]], after[[0, 2]])
    np.testing.assert_allclose(before[[1, 3]], after[[1, 3]], atol=1e-6)
    model.compile(train_steps=1)
    x = tf.random.stateless_uniform((8, 16, 16, 1), seed=(5, 6), minval=-1, maxval=1)
    labels = tf.constant([0, 0, 1, 1, 0, 0, 1, 1], tf.int32)
    tables = [v.numpy().copy() for n in norms for v in (n.gamma, n.beta)]
    model.fit(tf.data.Dataset.from_tensors((x, labels)).repeat(), steps_per_epoch=1, verbose=0)
    for old, new in zip(tables, [v.numpy() for n in norms for v in (n.gamma, n.beta)], strict=True):
        # Adam moves the rows of the classes in the batch; the absent classes' rows get no
        # gradient and stay put.
        assert not np.allclose(old[:2], new[:2]) and np.array_equal(old[2:], new[2:])


def test_mixed_precision_outputs_stay_float32():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        for conditioning, in_g in (("projection", "input"), ("concat", "batch_norm")):
            model = tiny(conditioning=conditioning, generator_conditioning=in_g)
            z, y = tf.zeros((2, 100)), tf.constant([1, 2])
            images = model.generator([z, y], training=False)
            assert images.dtype == tf.float32
            assert model.discriminate(images, False, condition=y).dtype == tf.float32
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_a_few_steps_train_both_players_with_the_labels():
    model = tiny()
    model.compile(train_steps=2)
    x = tf.random.stateless_uniform((8, 16, 16, 1), seed=(5, 6), minval=-1, maxval=1)
    y = tf.constant(np.arange(8) % 4, tf.int32)
    before = [v.numpy().copy() for v in model.generator.trainable_variables]
    embedding_before = model.generator.get_layer("label_embedding").embeddings.numpy().copy()
    history = model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(), steps_per_epoch=2, verbose=0)
    assert all(np.isfinite(history.history[k][-1]) for k in ("d_loss", "g_loss"))
    after = model.generator.trainable_variables
    assert all(not np.array_equal(b, a.numpy()) for b, a in zip(before, after, strict=True))
    assert not np.array_equal(
        embedding_before, model.generator.get_layer("label_embedding").embeddings.numpy()
    )


def test_config_is_adapted_to_the_data_and_checked():
    info = DatasetInfo("fashion_mnist", "image", (28, 28, 1), 10, list(NAMES))
    adapted = TASK.adapt_config(CGANConfig(), info)
    assert adapted.num_classes == 4 and adapted.class_names == NAMES
    assert TASK.adapt_config(adapted, info) == adapted  # a resumed run's saved config
    with pytest.raises(UsageError, match="num_classes=3 but fashion_mnist has 4"):
        TASK.adapt_config(CGANConfig(num_classes=3), info)
    with pytest.raises(UsageError, match="needs a labelled dataset"):
        TASK.adapt_config(CGANConfig(), DatasetInfo("folder:x", "image", (8, 8, 1), 5, None))
    with pytest.raises(UsageError, match="conditioning must be one of"):
        CGANConfig(conditioning="film")
    with pytest.raises(UsageError, match="generator_conditioning must be one of input, batch_norm"):
        CGANConfig(generator_conditioning="film")
    with pytest.raises(UsageError, match="num_classes >= 1"):
        CGAN(CGANConfig())


def test_sample_inputs_cycle_through_the_classes_and_the_picture_has_a_row_per_class():
    model = tiny()
    inputs = model.sample_inputs(6)
    assert inputs["label"].tolist() == [0, 1, 2, 3, 0, 1] and inputs["label"].dtype == np.int32
    full = TASK.sample_picture(model, 16)
    assert full.ndim == 3 and full.shape[2] == 3

    class Run:
        classes = ("trouser", "dress")

    kept = TASK.sample_picture(model, 16, rc=Run())
    # 4 rows of 64-px tiles (+2 px padding) against 2 rows: the grid follows the classes kept.
    assert full.shape[0] == 4 * 66 + 2 and kept.shape[0] == 2 * 66 + 2
    assert full[:, :20].min() < 128  # the row labels are drawn in the left margin


def test_serving_signature_rejects_out_of_range_labels():
    model = tiny()
    fn, specs = TASK.serving_signatures(model)["serving_default"]
    assert {k: (s.dtype, s.shape.as_list()) for k, s in specs.items()} == {
        "z": (tf.float32, [None, 100]),
        "label": (tf.int32, [None]),
    }
    serve = tf.function(fn, input_signature=[specs["z"], specs["label"]])
    z = tf.zeros((2, 100))
    assert serve(z, tf.constant([0, 3]))["images"].shape == (2, 16, 16, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="label must be < num_classes=4"):
        serve(z, tf.constant([0, 4]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="label must be >= 0"):
        serve(z, tf.constant([-1, 0]))


def test_auxiliary_classifier_defaults_follow_the_conditioning_and_concat_refuses_it():
    assert CGAN.resolve_aux_weight(CGANConfig(conditioning="projection")) == AUX_WEIGHT > 0
    assert CGAN.resolve_aux_weight(CGANConfig(conditioning="concat")) == 0.0
    assert CGAN.resolve_aux_weight(CGANConfig(conditioning="projection", aux_weight=0)) == 0.0
    with pytest.raises(UsageError, match="aux_weight > 0 needs conditioning=projection"):
        CGANConfig(conditioning="concat", aux_weight=0.5)
    # A run saved before the field existed had no class head.
    assert config_from_dict(CGANConfig, {"conditioning": "projection"}).aux_weight == 0.0
    concat = tiny(conditioning="concat")
    assert len(concat.discriminator.outputs) == 1 and "d_class_loss" not in concat.trackers


def test_auxiliary_class_head_sees_no_label_and_d_learns_it_on_the_real_batch():
    model = tiny(conditioning="projection", aux_weight=0.5)
    d = model.discriminator
    assert [o.shape for o in d.outputs] == [(None, 1), (None, 4)]
    x = tf.random.stateless_uniform((8, 16, 16, 1), seed=(5, 6), minval=-1, maxval=1)
    y = tf.constant(np.arange(8) % 4, tf.int32)
    logits, classes = d([x, y], training=False)
    assert model.discriminate(x, training=False, condition=y).shape == (8, 1)
    # The head reads h(x) alone: another label changes the logit, never the class scores.
    other_logits, relabelled = d([x, (y + 1) % 4], training=False)
    assert np.array_equal(classes, relabelled) and not np.allclose(logits, other_logits)
    # The step's class loss is the cross-entropy of the head on the real batch, taken before
    # the update (batch statistics in training mode, as the step sees them).
    real_logits, classes = d([x, y], training=True)
    expected = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, classes))
    model.compile(train_steps=1)
    logs = model.train_step((x, y))
    np.testing.assert_allclose(logs["d_class_loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(logs["real_logit"], tf.reduce_mean(real_logits), rtol=1e-5)
    # D's loss: softplus(-real) + softplus(fake) (non-saturating) + 0.5 × the class loss.
    real_term = float(tf.reduce_mean(tf.nn.softplus(-real_logits)))
    assert float(logs["d_loss"]) > real_term + 0.5 * float(expected) > 0


def test_generator_class_loss_is_the_heads_cross_entropy_on_its_images_for_their_labels():
    model = tiny(conditioning="projection", aux_weight=2.0)
    model.compile(train_steps=1)
    x = tf.random.stateless_uniform((8, 16, 16, 1), seed=(5, 6), minval=-1, maxval=1)
    y = tf.constant([3, 3, 2, 2, 1, 1, 0, 0], tf.int32)
    seed_state = model.seed_generator.state.numpy().copy()
    g_weights = model.generator.get_weights()
    logs = model.train_step((x, y))
    # Replay G's forward pass of the step (its noise is the step's first draw) and score it
    # with the D that G's loss saw: the updated one, which is the current one.
    model.seed_generator.state.assign(seed_state)
    model.generator.set_weights(g_weights)
    fake = model.fake_batch(8, y)
    fake_logits, classes = model.discriminator([fake, y], training=True)
    expected = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, classes))
    np.testing.assert_allclose(logs["g_class_loss"], expected, rtol=1e-5)
    adversarial = tf.reduce_mean(tf.nn.softplus(-fake_logits))  # non-saturating
    np.testing.assert_allclose(logs["g_loss"], adversarial + 2.0 * expected, rtol=1e-5)
