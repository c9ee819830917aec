"""Conditioning augmentation: closed-form KL, sampling statistics, ε = 0, precision, TFLite."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.core.losses import kl_divergence
from zoo.models.stackgan.conditioning import ConditioningAugmentation


def built_layer(condition_dim: int, embedding_dim: int, seed: int, **kwargs):
    """A built layer with weights large enough that μ and log σ² vary (not N(0, 0.02) tiny)."""
    layer = ConditioningAugmentation(condition_dim, **kwargs)
    layer.build([(None, embedding_dim), (None, condition_dim)])
    rng = np.random.default_rng(seed)
    layer.dense.kernel.assign(rng.normal(0, 0.5, (embedding_dim, 2 * condition_dim)))
    layer.dense.bias.assign(rng.normal(0, 0.5, 2 * condition_dim))
    return layer


# -- KL(N(μ, σ²) ‖ N(0, I)) -------------------------------------------------------------------
def test_kl_is_zero_at_the_standard_normal():
    kl = kl_divergence(np.zeros((3, 5), np.float32), np.zeros((3, 5), np.float32))
    assert kl.shape == (3,) and kl.dtype == "float32"
    np.testing.assert_array_equal(np.asarray(kl), 0.0)


def test_kl_one_dimension_by_hand():
    # μ = 1, σ² = 2: ½ (1 + 2 − ln 2 − 1) = 1 − ½ ln 2.
    # μ = 0, σ² = e⁻²: ½ (e⁻² + 2 − 1).
    mu = np.array([[1.0], [0.0]], np.float32)
    log_var = np.array([[math.log(2.0)], [-2.0]], np.float32)
    expected = [1.0 - 0.5 * math.log(2.0), 0.5 * (math.exp(-2.0) + 1.0)]
    np.testing.assert_allclose(np.asarray(kl_divergence(mu, log_var)), expected, rtol=1e-6)


def test_kl_sums_over_dimensions_and_takes_float16():
    mu = np.array([[1.0, 0.0, -0.5]], np.float32)
    log_var = np.array([[math.log(2.0), 0.0, -1.0]], np.float32)
    per_dim = [kl_divergence(mu[:, i : i + 1], log_var[:, i : i + 1]) for i in range(3)]
    total = kl_divergence(mu, log_var)
    np.testing.assert_allclose(np.asarray(total), np.sum(per_dim, axis=0), rtol=1e-6)
    half = kl_divergence(tf.constant(mu, tf.float16), tf.constant(log_var, tf.float16))
    assert half.dtype == tf.float32
    np.testing.assert_allclose(half.numpy(), total.numpy(), rtol=1e-3)


def test_kl_matches_a_monte_carlo_estimate():
    """E_q[log q(x) − log p(x)] with x ~ q = N(μ, σ²), p = N(0, I), to 2%."""
    rng = np.random.default_rng(0)
    mu = np.array([0.8, -0.3, 1.5, 0.0], np.float64)
    log_var = np.array([-0.7, 0.4, 0.0, -1.6], np.float64)
    sigma = np.exp(0.5 * log_var)
    x = mu + sigma * rng.standard_normal((400_000, mu.size))
    log_q = -0.5 * (((x - mu) / sigma) ** 2 + log_var + math.log(2 * math.pi))
    log_p = -0.5 * (x**2 + math.log(2 * math.pi))
    estimate = float(np.mean(np.sum(log_q - log_p, axis=1)))
    closed = float(kl_divergence(mu[None].astype(np.float32), log_var[None].astype(np.float32))[0])
    assert closed == pytest.approx(estimate, rel=0.02)


# -- the layer --------------------------------------------------------------------------------
def test_hand_weights_give_mu_log_var_and_the_reparameterised_sample():
    layer = ConditioningAugmentation(2, negative_slope=0.2)
    layer.build([(None, 3), (None, 2)])
    layer.dense.kernel.assign(np.zeros((3, 4), np.float32))
    layer.dense.bias.assign(np.array([1.0, -1.0, 0.5, -2.0], np.float32))
    embedding = np.ones((1, 3), np.float32)
    epsilon = np.array([[2.0, -1.0]], np.float32)
    c_hat, mu, log_var = layer([embedding, epsilon])
    np.testing.assert_allclose(mu.numpy(), [[1.0, -0.2]], rtol=1e-6)  # LeakyReLU(0.2)
    np.testing.assert_allclose(log_var.numpy(), [[0.5, -0.4]], rtol=1e-6)
    sigma = np.exp(0.5 * np.array([0.5, -0.4]))
    np.testing.assert_allclose(c_hat.numpy(), [[1.0, -0.2]] + sigma * [2.0, -1.0], rtol=1e-6)


def test_negative_slope_one_is_a_linear_head():
    layer = built_layer(3, 5, seed=1, negative_slope=1.0)
    x = np.random.default_rng(2).normal(size=(4, 5)).astype(np.float32)
    _, mu, log_var = layer([x, np.zeros((4, 3), np.float32)])
    linear = x @ layer.dense.kernel.numpy() + layer.dense.bias.numpy()
    np.testing.assert_allclose(np.concatenate([mu, log_var], 1), linear, rtol=1e-5, atol=1e-6)


def test_zero_epsilon_gives_mu():
    layer = built_layer(4, 6, seed=3)
    x = np.random.default_rng(4).normal(size=(5, 6)).astype(np.float32)
    c_hat, mu, log_var = layer([x, np.zeros((5, 4), np.float32)])
    np.testing.assert_array_equal(c_hat.numpy(), mu.numpy())
    assert np.std(log_var.numpy()) > 0.1  # σ ≠ 1 in this test, so ε = 0 is what removes it


def test_sampling_statistics_match_mu_and_sigma():
    """ĉ over many ε ~ N(0, I) for one caption: mean ≈ μ, standard deviation ≈ σ."""
    count, dim = 20_000, 4
    layer = built_layer(dim, 6, seed=5)
    embedding = np.repeat(np.random.default_rng(6).normal(size=(1, 6)), count, 0).astype("f4")
    epsilon = np.random.default_rng(7).standard_normal((count, dim)).astype(np.float32)
    c_hat, mu, log_var = (t.numpy() for t in layer([embedding, epsilon]))
    sigma = np.exp(0.5 * log_var[0])
    assert np.all(np.abs(c_hat.mean(0) - mu[0]) < 4 * sigma / math.sqrt(count))
    np.testing.assert_allclose(c_hat.std(0), sigma, rtol=0.03)
    assert np.ptp(sigma) > 0.1  # the dimensions do have different spreads


def test_mixed_float16_policy_computes_in_float32():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        embedding = keras.Input((6,), name="embedding")
        epsilon = keras.Input((4,), name="epsilon")
        hidden = keras.layers.Dense(6)(embedding)  # a float16 embedding reaches the layer
        layer = ConditioningAugmentation(4)
        outputs = layer([hidden, epsilon])
        model = keras.Model([embedding, epsilon], list(outputs))
        values = model([tf.ones((2, 6)), tf.random.normal((2, 4), seed=1)])
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert hidden.dtype == "float16"
    assert layer.compute_dtype == "float32" and layer.dense.kernel.dtype == "float32"
    assert [v.dtype for v in values] == [tf.float32] * 3
    assert kl_divergence(values[1], values[2]).dtype == tf.float32


def test_serialisation_round_trip():
    layer = built_layer(3, 5, seed=8, negative_slope=0.0, name="ca")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, ConditioningAugmentation)
    assert clone.get_config() == layer.get_config()
    assert clone.built  # from the serialised build config
    clone.set_weights(layer.get_weights())
    x = [np.ones((2, 5), np.float32), np.full((2, 3), 0.5, np.float32)]
    for a, b in zip(layer(x), clone(x), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_epsilon_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="epsilon"):
        ConditioningAugmentation(4)([np.ones((2, 6), np.float32), np.ones((2, 3), np.float32)])


def test_tflite_with_epsilon_as_input_is_builtins_only_and_matches(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from tests.tflite_helpers import convert_builtins_only

    embedding = keras.Input((6,), name="embedding")
    epsilon = keras.Input((4,), name="epsilon")
    c_hat, mu, log_var = built_layer(4, 6, seed=9)([embedding, epsilon])
    model = keras.Model([embedding, epsilon], {"c_hat": c_hat, "mu": mu, "log_var": log_var})
    serve = tf.function(
        lambda embedding, epsilon: model([embedding, epsilon], training=False),
        input_signature=[
            tf.TensorSpec([None, 6], tf.float32, name="embedding"),
            tf.TensorSpec([None, 4], tf.float32, name="epsilon"),
        ],
    )
    content, operators = convert_builtins_only(serve, tmp_path)
    assert not [op for op in operators if "RANDOM" in op or "MULTINOMIAL" in op], operators

    runner = Interpreter(model_content=content).get_signature_runner("serving_default")
    rng = np.random.default_rng(10)
    x = rng.normal(size=(3, 6)).astype(np.float32)
    for eps in (np.zeros((3, 4), np.float32), rng.normal(size=(3, 4)).astype(np.float32)):
        lite = runner(embedding=x, epsilon=eps)
        reference = model([x, eps])
        for key in ("c_hat", "mu", "log_var"):
            np.testing.assert_allclose(lite[key], reference[key].numpy(), atol=1e-5)
    zero = runner(embedding=x, epsilon=np.zeros((3, 4), np.float32))
    np.testing.assert_array_equal(zero["c_hat"], zero["mu"])
