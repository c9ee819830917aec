"""Shared layers: InstanceNormalization (TF equivalence, serialisation, mixed precision, TFLite)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.core.layers import InstanceNormalization


def random_affine(layer: keras.layers.Layer, seed: int) -> None:
    rng = np.random.default_rng(seed)
    channels = layer.gamma.shape[0]
    layer.gamma.assign(rng.uniform(0.5, 2.0, channels).astype(np.float32))
    layer.beta.assign(rng.normal(0.0, 0.5, channels).astype(np.float32))


def inputs(shape, seed=0, offset=3.0):
    """Channels with different means and spreads (an offset mean is what drifts in float32)."""
    rng = np.random.default_rng(seed)
    spread = rng.uniform(0.1, 2.0, shape[-1])
    return (rng.standard_normal(shape) * spread + offset).astype(np.float32)


def saved_generator(model: keras.Model, shape, directory) -> str:
    """`model` as a SavedModel with one `images` -> `images` signature (as the export)."""
    fn = tf.function(
        lambda images: {"images": tf.cast(model(images, training=False), tf.float32)},
        input_signature=[tf.TensorSpec([None, *shape], tf.float32, name="images")],
    )
    concrete = fn.get_concrete_function()
    module = tf.Module()
    module.generator_variables = list(concrete.variables)
    tf.saved_model.save(module, str(directory), signatures={"serving_default": concrete})
    return str(directory)


def tflite_error(model: keras.Model, x: np.ndarray, directory) -> tuple[float, list[str]]:
    """Float32 builtins-only TFLite vs the SavedModel through the export's own functions."""
    pytest.importorskip("ai_edge_litert.interpreter")
    from export import export_lib

    path = saved_generator(model, x.shape[1:], directory)
    reference = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(x))
    content, _ = export_lib.convert(path, "serving_default", "float32")
    operators = export_lib.tflite_operators(content)
    export_lib.check_builtins_only(operators, "test model")
    runner = export_lib.litert_runner(content, signature="serving_default")
    output = runner(images=x)["images"]
    error = np.abs(output.astype(np.float64) - reference["images"].numpy()).max()
    return float(error), operators


@pytest.mark.parametrize("shape", [(3, 8, 8, 5), (2, 16, 12, 4), (2, 9, 3)])
def test_equals_group_normalization_with_one_group_per_channel(shape):
    x = inputs(shape, seed=len(shape))
    ours = InstanceNormalization(epsilon=1e-5)
    theirs = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)
    ours.build(x.shape)
    theirs.build(x.shape)
    random_affine(ours, 1)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x).numpy(), theirs(x).numpy(), atol=1e-5)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights] == ["gamma", "beta"]


def test_normalises_each_example_and_channel():
    x = inputs((2, 16, 16, 3))
    y = InstanceNormalization()(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1.0, atol=1e-3)  # var / (var + 1e-5)


def test_without_center_and_scale_has_no_weights():
    layer = InstanceNormalization(center=False, scale=False)
    y = layer(inputs((1, 4, 4, 2)))
    assert not layer.weights and y.shape == (1, 4, 4, 2)


def test_serialises_in_a_keras_file(tmp_path):
    layer = InstanceNormalization(epsilon=1e-3, center=False, gamma_initializer="zeros")
    config = layer.get_config()
    assert (config["epsilon"], config["center"], config["scale"]) == (1e-3, False, True)
    assert InstanceNormalization.from_config(config).get_config() == config

    model = keras.Sequential([keras.Input((6, 6, 3)), InstanceNormalization(name="norm")])
    random_affine(model.get_layer("norm"), 2)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("norm"), InstanceNormalization)
    x = inputs((2, 6, 6, 3))
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)


def test_mixed_precision_statistics_in_float32():
    # float16 squares of deviations of ~±600 overflow (> 65504); float32 statistics do not.
    x = (np.random.default_rng(0).standard_normal((2, 8, 8, 4)) * 200.0 + 300.0).astype(np.float32)
    reference = InstanceNormalization()
    expected = reference(x).numpy()
    layer = InstanceNormalization(dtype="mixed_float16")
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    y = layer(x)
    assert y.dtype == tf.float16
    assert all(w.dtype == "float32" for w in layer.weights)
    # Only the float16 inputs (steps of 0.5 near 600, spread 200) and outputs are rounded.
    assert np.all(np.isfinite(y.numpy()))
    np.testing.assert_allclose(y.numpy().astype(np.float32), expected, atol=2e-2)


def test_tflite_float32_parity_of_one_layer_at_256_px(tmp_path):
    # One MEAN over H × W (GroupNormalization(groups=-1)) is 1.3e-4 off here; one axis at a
    # time 1.3e-5 (the channel with mean 3 and spread 0.1 amplifies rounding 10×).
    x = inputs((2, 256, 256, 8))
    images = keras.Input((256, 256, 8))
    norm = InstanceNormalization()
    model = keras.Model(images, norm(images))
    random_affine(norm, 3)
    error, operators = tflite_error(model, x, tmp_path / "saved")
    assert "MEAN" in operators
    assert error < 3e-5, error


@pytest.mark.slow
def test_cyclegan_generator_converts_to_builtins_with_parity_at_64_px(tmp_path):
    from zoo.models.cyclegan.networks import CycleGANConfig, build_resnet_generator

    keras.utils.set_random_seed(0)
    config = CycleGANConfig(image_size=64)  # 64 filters, 6 residual blocks
    generator = build_resnet_generator(config, "generator")
    for layer in generator.layers:
        if isinstance(layer, InstanceNormalization):
            random_affine(layer, 4)
    rng = np.random.default_rng(5)
    x = tf.image.resize(rng.uniform(-1.0, 1.0, (2, 4, 4, 3)), [64, 64]).numpy()
    error, _ = tflite_error(generator, x.astype(np.float32), tmp_path / "saved")
    assert error < 1e-4, error


def test_fused_batch_norm_equals_keras_batch_norm():
    from zoo.core.layers import FusedBatchNormalization

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, size=(6, 5, 4, 3)).astype("float32"))
    fused = FusedBatchNormalization(momentum=0.9, epsilon=1e-5)
    plain = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    fused.build(x.shape)
    plain.build(x.shape)
    for layer in (fused, plain):
        layer.gamma.assign(rng.normal(1.0, 0.1, 3).astype("float32"))
    plain.gamma.assign(fused.gamma)
    outputs, grads = [], []
    for layer in (fused, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.range(3, dtype=tf.float32))
        outputs.append(y.numpy())
        grads.append([g.numpy() for g in tape.gradient(loss, [x, layer.gamma, layer.beta])])
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)
    for a, b in zip(grads[0], grads[1], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(
        fused.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-5
    )
    # Inference uses the moving statistics, as Keras does.
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), atol=1e-5)


def _output_and_grads(layer, x, training):
    weights = tf.constant(np.random.default_rng(9).standard_normal(x.shape).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
    return [y.numpy().astype(np.float32)] + [
        g.numpy() for g in tape.gradient(loss, [x, *layer.trainable_weights])
    ]


@pytest.mark.parametrize(
    "shape, options",
    [((1, 32, 32, 8), {}), ((3, 16, 12, 5), {}), ((2, 8, 8, 4), {"center": False, "scale": False})],
)
def test_training_pass_is_the_fused_kernel_with_the_export_paths_function(shape, options):
    x = tf.constant(inputs(shape, seed=2))
    layer = InstanceNormalization(**options)
    layer.build(x.shape)
    if layer.weights:
        random_affine(layer, 6)
    graph = tf.function(lambda v: layer(v, training=True)).get_concrete_function(x).graph
    assert "FusedBatchNormV3" in {op.type for op in graph.get_operations()}
    fused, exported = _output_and_grads(layer, x, True), _output_and_grads(layer, x, False)
    np.testing.assert_allclose(fused[0], exported[0], atol=2e-5)
    np.testing.assert_allclose(fused[1], exported[1], atol=2e-5)
    for a, b in zip(fused[2:], exported[2:], strict=True):  # γ, β: sums over B·H·W
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_fused_training_pass_under_mixed_precision():
    x = tf.constant(inputs((2, 8, 8, 4)))
    layer = InstanceNormalization(dtype="mixed_float16")
    layer.build(x.shape)
    fused, exported = _output_and_grads(layer, x, True), _output_and_grads(layer, x, False)
    assert layer(x, training=True).dtype == tf.float16
    np.testing.assert_allclose(fused[0], exported[0], atol=2e-3)


def _r1_like_grads(layer, x, training):
    """Gradients of a penalty on dL/dx (as R1 takes it) w.r.t. x, γ and β: second derivatives."""
    weights = tf.constant(np.random.default_rng(4).standard_normal(x.shape).astype(np.float32))
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            loss = tf.reduce_sum(tf.square(layer(x, training=training)) * weights)
        penalty = tf.reduce_sum(tf.square(inner.gradient(loss, x)))
    return [g.numpy() for g in outer.gradient(penalty, [x, *layer.trainable_weights])]


@pytest.mark.parametrize("shape", [(1, 8, 8, 3), (3, 6, 5, 4)])
def test_fused_training_pass_has_the_export_paths_second_derivatives(shape):
    x = tf.constant(inputs(shape, seed=5, offset=0.5))
    layer = InstanceNormalization()
    layer.build(x.shape)
    random_affine(layer, 7)
    fused, exported = _r1_like_grads(layer, x, True), _r1_like_grads(layer, x, False)
    for a, b in zip(fused, exported, strict=True):
        assert np.all(np.isfinite(a)) and np.abs(b).max() > 0
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3 * np.abs(b).max())


def test_fused_training_pass_with_an_unknown_batch_size_in_a_graph():
    x = tf.constant(inputs((3, 8, 6, 4), seed=8))
    layer = InstanceNormalization()
    layer.build(x.shape)
    random_affine(layer, 2)
    weights = tf.constant(np.random.default_rng(9).standard_normal(x.shape).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 6, 4], tf.float32)])
    def fused(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            y = layer(v, training=True)
            loss = tf.reduce_sum(y * weights)
        return [y, *tape.gradient(loss, [v, *layer.trainable_weights])]

    got = [t.numpy() for t in fused(x)]
    assert got[0].shape == x.shape
    for a, b in zip(got, _output_and_grads(layer, x, False), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_fused_training_pass_and_its_gradient_stay_small_graphs():
    # TF's derived gradient through the transposes and tiles took 102 ops here (forward,
    # gradient and the loss); the CycleGAN step traces ~40 norms at every start-up.
    layer = InstanceNormalization()
    layer.build((4, 16, 16, 8))

    @tf.function
    def step(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            loss = tf.reduce_sum(tf.square(layer(v, training=True)))
        return tape.gradient(loss, [v, *layer.trainable_weights])

    graph = step.get_concrete_function(tf.TensorSpec([4, 16, 16, 8])).graph
    types = [op.type for op in graph.get_operations()]
    assert types.count("FusedBatchNormGradV3") == 1
    assert len(types) <= 64, len(types)
