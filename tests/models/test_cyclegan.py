"""CycleGAN: paper defaults, architecture, losses, train step, data hooks and export hooks."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import registry
from zoo.core.config import config_from_dict, config_to_dict
from zoo.core.layers import InstanceNormalization, ReflectionPadding2D
from zoo.errors import UsageError
from zoo.models.cyclegan import CycleGAN, CycleGANConfig
from zoo.models.cyclegan.networks import (
    discriminator_layers,
    jitter_size,
    residual_blocks,
    upsample,
)
from zoo.run import RunConfig

TASK = registry.get("cyclegan")

TINY = dict(
    image_size=16,
    channels=1,
    generator_filters=4,
    discriminator_filters=4,
    residual_blocks=1,
    pool_size=3,
)


def tiny(**changes):
    return CycleGANConfig(**{**TINY, **changes})


def test_registered_with_the_paper_defaults():
    assert registry.get("cyclegan").model_class is CycleGAN
    c = CycleGANConfig()
    assert (c.image_size, c.channels, c.loss) == (256, 3, "least_squares")
    assert (c.generator_filters, c.discriminator_filters, c.pool_size) == (64, 64, 50)
    assert (c.cycle_weight, c.identity_weight) == (10.0, 0.5)
    assert (c.g_learning_rate, c.d_learning_rate, c.beta_1) == (2e-4, 2e-4, 0.5)
    assert jitter_size(c) == 286 and c.flip


@pytest.mark.parametrize("dataset", ["fashion_mnist", "mnist"])
def test_small_gray_datasets_get_the_measured_defaults(dataset):
    c = TASK.default_config(dataset)
    assert (c.image_size, c.channels, c.generator_filters, c.identity_weight) == (32, 1, 32, 0)
    assert (c.discriminator_filters, c.cycle_weight) == (16, 20.0) and not c.input_norm
    paper = CycleGANConfig()
    assert (c.residual_blocks, c.pool_size, c.upsample) == (
        paper.residual_blocks,
        paper.pool_size,
        paper.upsample,
    )
    assert TASK.default_batch_size(dataset) == 4
    assert not (c.jitter or c.flip)


def test_small_gray_default_trains_on_the_images_as_they_are():
    # No jitter, no flip: the train step sees the batch itself (the test images are aligned).
    model = CycleGAN(dataclasses.replace(TASK.default_config("fashion_mnist"), **TINY), seed=3)
    x = tf.random.uniform([8, 16, 16, 1], -1, 1, seed=2)
    np.testing.assert_array_equal(np.asarray(model.augment(x)), np.asarray(x))


def test_old_small_gray_runs_keep_their_jitter_and_flip():
    # A run made before jitter and flip were switched off wrote them (True) in its config.json.
    # Older still: 64 discriminator filters (their config.json writes every field).
    old = {
        **config_to_dict(TASK.default_config("fashion_mnist")),
        "jitter": True,
        "flip": True,
        "discriminator_filters": 64,
    }
    restored = config_from_dict(CycleGANConfig, old)
    assert restored.jitter and restored.flip and jitter_size(restored) == 36
    assert restored.discriminator_filters == 64


@pytest.mark.parametrize("dataset", ["folder:/data/horse2zebra", "tfds:cycle_gan/horse2zebra"])
def test_rgb_folder_datasets_keep_the_papers_defaults(dataset):
    assert TASK.default_config(dataset) == CycleGANConfig()
    assert TASK.default_batch_size(dataset) == 1


@pytest.mark.parametrize(
    ("size", "override", "blocks"), [(256, 0, 9), (128, 0, 6), (32, 0, 6), (256, 2, 2)]
)
def test_residual_blocks_follow_the_image_size(size, override, blocks):
    assert residual_blocks(CycleGANConfig(image_size=size, residual_blocks=override)) == blocks


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(image_size=30), "multiple of 4"),
        (dict(pool_size=-1), "pool_size"),
        (dict(jitter_scale=0.9), "jitter_scale"),
        (dict(downsamplings=3), "downsamplings"),
        (dict(downsamplings=-1), "downsamplings"),
    ],
)
def test_bad_configs_are_usage_errors(changes, match):
    with pytest.raises(UsageError, match=match):
        tiny(**changes)


def test_one_discriminator_step_only():
    assert CycleGAN.discriminator_steps(tiny()) == 1
    with pytest.raises(UsageError, match="once per step"):
        CycleGAN.discriminator_steps(tiny(d_steps=5))


@pytest.mark.parametrize("size", [8, 16, 32])
def test_generator_output_shape_equals_input_shape(size):
    model = CycleGAN(tiny(image_size=size, channels=3))
    x = tf.random.uniform([2, size, size, 3], -1, 1)
    for network in (model.generator_ab, model.generator_ba):
        y = network(x)
        assert y.shape == x.shape and y.dtype == tf.float32
        assert float(tf.reduce_max(tf.abs(y))) <= 1.0


@pytest.mark.parametrize("size", [128, 256])
def test_generator_shapes_at_paper_sizes(size):
    model = CycleGAN(CycleGANConfig(image_size=size, generator_filters=2, discriminator_filters=2))
    assert model.generator_ab.output_shape == (None, size, size, 3)
    kinds = [type(layer) for layer in model.generator_ab.layers]
    # c7s1-64, d128, d256, 2 per residual block, c7s1-3; u128 and u64 transposed.
    assert kinds.count(keras.layers.Conv2D) == 1 + 2 + 2 * residual_blocks(model.config) + 1
    assert kinds.count(keras.layers.Conv2DTranspose) == 2
    assert InstanceNormalization in kinds and ReflectionPadding2D in kinds


@pytest.mark.parametrize(("downsamplings", "side", "width"), [(2, 4, 16), (1, 8, 8), (0, 16, 4)])
def test_downsamplings_set_the_residual_blocks_side_and_width(downsamplings, side, width):
    # 16 px, 4 filters: the paper's d8, d16, R16 at 4 x 4, or d8, R8 at 8 x 8 (the same
    # multiply-adds per residual block: 4 x 4 x 16 x 16 = 8 x 8 x 8 x 8).
    model = CycleGAN(tiny(downsamplings=downsamplings))
    g = model.generator_ab
    adds = [layer for layer in g.layers if isinstance(layer, keras.layers.Add)]
    assert [tuple(a.output.shape[1:]) for a in adds] == [(side, side, width)]
    kinds = [type(layer) for layer in g.layers]
    strided = [
        layer
        for layer in g.layers
        if isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.Conv2DTranspose)
        and layer.strides == (2, 2)
    ]
    assert len(strided) == kinds.count(keras.layers.Conv2DTranspose) == downsamplings
    assert g.output_shape == (None, 16, 16, 1)
    x = tf.random.uniform([2, 16, 16, 1], -1, 1, seed=4)
    assert g(x).shape == x.shape


def test_old_runs_keep_two_downsamplings():
    old = config_to_dict(tiny())
    del old["downsamplings"]
    assert config_from_dict(CycleGANConfig, old).downsamplings == 2


def _shoe_and_fainter_shoe():
    # A shape on a black (-1) background, and the same shape at 40% of its contrast.
    x = np.full([2, 16, 16, 1], -1.0, np.float32)
    x[:, 4:12, 3:13] = np.random.default_rng(0).uniform(-0.2, 1.0, [2, 8, 10, 1])
    return x, -1.0 + 0.4 * (x + 1.0)


@pytest.mark.parametrize("downsamplings", [2, 1])
def test_instance_norm_after_the_first_conv_makes_g_blind_to_the_inputs_contrast(downsamplings):
    x, faint = _shoe_and_fainter_shoe()
    paper = CycleGAN(tiny(downsamplings=downsamplings), seed=1).generator_ab
    # Equal but for the normalisation's epsilon, which weighs more at the lower contrast.
    np.testing.assert_allclose(paper(faint), paper(x), atol=5e-3)
    config = tiny(downsamplings=downsamplings, input_norm=False)
    g = CycleGAN(config, seed=1).generator_ab
    first = next(layer for layer in g.layers if isinstance(layer, keras.layers.Conv2D))
    assert first.kernel_size == (7, 7) and first.use_bias
    norms = sum(isinstance(layer, InstanceNormalization) for layer in g.layers)
    assert norms == sum(isinstance(layer, InstanceNormalization) for layer in paper.layers) - 1
    assert float(np.abs(g(faint) - g(x)).max()) > 0.05


def test_old_runs_keep_the_input_norm():
    old = config_to_dict(tiny(input_norm=False))
    del old["input_norm"]
    assert config_from_dict(CycleGANConfig, old).input_norm is True


def test_patchgan_is_70x70_with_30x30_logits_at_256():
    config = CycleGANConfig(generator_filters=1, discriminator_filters=2)
    model = CycleGAN(config)
    d = model.discriminator_b
    assert d.output_shape == (None, 30, 30, 1) and discriminator_layers(config) == 3
    field = 1  # receptive field of one logit, from the last convolution back to the input
    for layer in reversed(d.layers):
        if isinstance(layer, keras.layers.Conv2D):
            field = (field - 1) * layer.strides[0] + layer.kernel_size[0]
    assert field == 70


@pytest.mark.parametrize(("size", "side"), [(16, 2), (28, 1), (32, 2)])
def test_small_images_keep_a_patch_map(size, side):
    model = CycleGAN(tiny(image_size=size))
    assert model.discriminator_a.output_shape == (None, side, side, 1)


def test_resize_upsampling_is_nearest_then_a_reflection_padded_conv():
    inputs = keras.Input((3, 3, 2))
    net = keras.Model(inputs, upsample(inputs, 1, "resize"))
    conv = net.layers[-1]
    kernel = np.zeros((3, 3, 2, 1), "float32")
    kernel[1, 1, 0, 0] = 1.0  # the centre tap of channel 0 ...
    kernel[0, 1, 1, 0] = 10.0  # ... plus 10 x channel 1 one row up
    conv.set_weights([kernel])
    x = np.arange(18, dtype="float32").reshape(1, 3, 3, 2)
    y = np.asarray(net(x))[0, :, :, 0]
    near = x[0].repeat(2, axis=0).repeat(2, axis=1)  # 6x6 nearest neighbour
    up = np.concatenate([near[1:2], near[:-1]])  # one row up, reflected at the top
    np.testing.assert_allclose(y, near[:, :, 0] + 10 * up[:, :, 1])
    assert y.shape == (6, 6)


def test_resize_upsampling_keeps_a_constant_map_constant_and_transpose_does_not():
    # The checkerboard: a stride-2 3x3 transposed kernel covers even and odd output pixels a
    # different number of times; nearest-neighbour then a conv treats every pixel alike.
    x = np.ones((1, 4, 4, 3), "float32")
    for mode, constant in (("resize", True), ("transpose", False)):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((4, 4, 3))
        y = np.asarray(keras.Model(inputs, upsample(inputs, 2, mode))(x))
        assert y.shape == (1, 8, 8, 2)
        assert np.allclose(y, y[:, :1, :1, :], atol=1e-6) == constant, mode


def test_upsample_config():
    model = CycleGAN(tiny(upsample="resize"))
    kinds = [type(layer) for layer in model.generator_ab.layers]
    assert kinds.count(keras.layers.UpSampling2D) == 2
    assert keras.layers.Conv2DTranspose not in kinds
    assert model.generator_ab.output_shape == (None, 16, 16, 1)
    with pytest.raises(UsageError, match="upsample='bilinear'; choose one of transpose, resize"):
        tiny(upsample="bilinear")


def test_reflection_padding():
    x = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
    padded = np.asarray(ReflectionPadding2D(1)(x))[0, :, :, 0]
    np.testing.assert_array_equal(padded[0], [4, 3, 4, 5, 4])
    np.testing.assert_array_equal(padded[:, 0], [4, 1, 4, 7, 4])
    layer = ReflectionPadding2D.from_config(ReflectionPadding2D(3).get_config())
    assert layer.padding == 3 and layer.compute_output_shape((None, 8, 8, 2)) == (None, 14, 14, 2)


def test_augment_crops_and_flips_per_image():
    model = CycleGAN(tiny(jitter=False, flip=True), seed=3)
    x = tf.random.uniform([32, 16, 16, 1])
    y = np.asarray(model.augment(x))
    flipped = [np.array_equal(y[i], np.asarray(x[i])[:, ::-1]) for i in range(32)]
    kept = [np.array_equal(y[i], np.asarray(x[i])) for i in range(32)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and 0 < sum(flipped) < 32
    jittered = CycleGAN(tiny(), seed=3).augment(x)
    assert jittered.shape == x.shape


def fit(model, steps=3, batch=4):
    a = tf.random.uniform([batch, 16, 16, 1], -1, 1, seed=1)
    dataset = tf.data.Dataset.from_tensors((a, -a)).repeat()
    return model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0).history


def test_train_step_updates_everything_and_fills_the_pools():
    model = CycleGAN(tiny(), seed=1)
    model.compile(train_steps=4)
    before = {v.path: v.numpy() for v in model.trainable_variables}
    history = fit(model)
    for key in ("d_loss", "g_loss", "d_a_loss", "d_b_loss", "cycle_loss", "identity_loss"):
        assert np.isfinite(history[key][-1]), key
    assert all(not np.array_equal(before[v.path], v.numpy()) for v in model.trainable_variables)
    assert int(model.pool_a.count.numpy()) == int(model.pool_b.count.numpy()) == 3
    # 3 updates of 4: the rate is constant for 2, then 2e-4 * (4 - 3) / 2.
    assert float(model.g_optimizer.inner_optimizer.learning_rate) == pytest.approx(1e-4)
    assert int(model.step.numpy()) == 3
    items = model.checkpoint_items()
    assert items["pool_a"] is model.pool_a and items["pool_b"] is model.pool_b


def test_identity_off_and_other_losses():
    model = CycleGAN(tiny(identity_weight=0.0, loss="non_saturating"), seed=1)
    model.compile(train_steps=2)
    history = fit(model, steps=1)
    assert "identity_loss" not in history and np.isfinite(history["g_loss"][-1])


def test_data_and_export_hooks(tiny_fashion):
    rc = RunConfig(
        model="cyclegan",
        dataset="fashion_mnist",
        data_dir=tiny_fashion,
        domain_a="sandal",
        domain_b="sneaker",
    )
    config = tiny()
    dataset, info = TASK.training_dataset(rc, config, batch_size=2, start_step=0)
    a, b = next(iter(dataset))
    assert a.shape == b.shape == (2, 16, 16, 1) and info.shape == (16, 16, 1)
    with pytest.raises(UsageError, match="--domain_a=CLASS"):
        TASK.training_dataset(
            dataclasses.replace(rc, domain_a=""), config, batch_size=2, start_step=0
        )
    with pytest.raises(UsageError, match="not --classes"):
        TASK.training_dataset(
            dataclasses.replace(rc, classes=("bag",)), config, batch_size=2, start_step=0
        )

    model = CycleGAN(config)
    inputs_a = TASK.representative_inputs(model, 3, seed=1, rc=rc)["images"]
    inputs_b = TASK.representative_inputs(model, 3, seed=1, rc=rc, signature="b_to_a")["images"]
    assert inputs_a.shape == inputs_b.shape == (3, 16, 16, 1)
    assert not np.array_equal(inputs_a, inputs_b)

    signatures = TASK.serving_signatures(model)
    assert list(signatures) == ["a_to_b", "b_to_a"]
    for name, network in (("a_to_b", model.generator_ab), ("b_to_a", model.generator_ba)):
        function, specs = signatures[name]
        assert specs["images"].shape.as_list() == [None, 16, 16, 1]
        out = function(images=tf.constant(inputs_a))["images"]
        assert out.shape == inputs_a.shape and out.dtype == tf.float32
        np.testing.assert_allclose(out, network(inputs_a, training=False), atol=1e-6)

    picture = TASK.sample_picture(model, 13, rc)  # 2 rows of a, G(a), F(G(a)), b, F(b), G(F(b))
    assert picture.dtype == np.uint8 and picture.shape == (2 + 2 * 66, 2 + 6 * 66, 3)
    np.testing.assert_array_equal(picture, TASK.sample_picture(model, 13, rc))


@pytest.fixture
def tiny_fashion(tmp_path):
    """A data_dir with a 50-image "fashion_mnist" train split (labels id % 10), 6x6 images."""
    from tests.data.helpers import tiny_arrays, write_idx

    images, labels = tiny_arrays()
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, compress=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, compress=True)
    return str(tmp_path)


@pytest.mark.parametrize("identity_weight", [0.5, 0.0])
def test_generator_objective_is_the_papers_six_generator_calls(identity_weight):
    # The step stacks batches into three generator calls; the paper's six separate calls
    # must give the same loss and the same gradients.
    model = CycleGAN(tiny(identity_weight=identity_weight, residual_blocks=2), seed=3)
    model.compile(train_steps=2)
    rng = np.random.default_rng(0)
    real_a, real_b = (tf.constant(rng.uniform(-1, 1, (2, 16, 16, 1)), tf.float32) for _ in "ab")
    variables = model.generator.trainable_variables
    with tf.GradientTape() as tape:
        loss, parts, (fake_a, fake_b) = model.generator_objective(real_a, real_b)
    grads = tape.gradient(loss, variables)

    def lsgan(logits):  # (D(x) − 1)², the paper's generator loss
        return tf.reduce_mean(tf.square(logits - 1.0))

    g, f = model.generator_ab, model.generator_ba
    with tf.GradientTape() as tape:
        ref_b, ref_a = g(real_a, training=True), f(real_b, training=True)
        cycle = tf.reduce_mean(tf.abs(f(ref_b, training=True) - real_a)) + tf.reduce_mean(
            tf.abs(g(ref_a, training=True) - real_b)
        )
        ref = lsgan(model.discriminator_b(ref_b)) + lsgan(model.discriminator_a(ref_a))
        ref += 10.0 * cycle
        if identity_weight:
            identity = tf.reduce_mean(tf.abs(g(real_b, training=True) - real_b))
            identity += tf.reduce_mean(tf.abs(f(real_a, training=True) - real_a))
            ref += 0.5 * 10.0 * identity
            assert float(parts["identity_loss"]) == pytest.approx(float(identity), rel=1e-5)
        else:
            assert "identity_loss" not in parts
    ref_grads = tape.gradient(ref, variables)
    assert float(parts["cycle_loss"]) == pytest.approx(float(cycle), rel=1e-5)
    assert float(loss) == pytest.approx(float(ref), rel=1e-5)
    np.testing.assert_allclose(fake_b, ref_b, atol=1e-6)
    np.testing.assert_allclose(fake_a, ref_a, atol=1e-6)
    for got, want, v in zip(grads, ref_grads, variables, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4, err_msg=v.path)
