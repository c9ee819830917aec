"""Tests for zoo.core.losses: golden values by hand, shared checks for every loss (TF-GAN style)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Callable

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.core import losses
from zoo.core.losses import (
    auxiliary_classifier_loss,
    cycle_consistency_loss,
    identity_loss,
    kl_divergence,
)
from zoo.errors import UsageError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

# Hand-made logits shared by every golden value below (batch of 3).
REAL_LOGITS = [0.0, 2.0, 0.5]
FAKE_LOGITS = [0.0, -1.0, 0.5]
# softplus(l) = log(1 + e^l), softplus(l) = l + softplus(-l):
SP_0 = 0.6931472  # softplus(0) = log 2
SP_M2 = 0.1269280  # softplus(-2) = log(1 + e^-2) = log(1.1353353)
SP_M1 = 0.3132617  # softplus(-1) = log(1 + e^-1) = log(1.3678794)
SP_1 = 1.3132617  # softplus(1) = 1 + softplus(-1)
SP_MH = 0.4740770  # softplus(-0.5) = log(1 + e^-0.5) = log(1.6065307)
SP_H = 0.9740770  # softplus(0.5) = 0.5 + softplus(-0.5)


class _LossTests:
    """Checks every loss must pass. Subclasses set `loss`, `is_discriminator`, `expected`.

    `expected` is the per-example loss on (REAL_LOGITS, FAKE_LOGITS), worked out by hand.
    """

    loss: Callable[..., tf.Tensor]
    is_discriminator: bool
    expected: tuple[float, ...]

    def call(self, real, fake) -> tf.Tensor:
        if self.is_discriminator:
            return self.loss(real, fake)
        return self.loss(fake)

    def test_golden_values(self):
        got = self.call(tf.constant(REAL_LOGITS), tf.constant(FAKE_LOGITS))
        np.testing.assert_allclose(got.numpy(), self.expected, rtol=1e-6, atol=1e-6)

    @pytest.mark.parametrize("extra_shape", [(), (1,), (4, 4, 1)], ids=["B", "B1", "B441"])
    def test_per_example_shape_any_logit_shape(self, extra_shape):
        # Each example's logit repeated over the non-batch axes: the mean is the golden value.
        def expand(values):
            column = tf.reshape(tf.constant(values), [-1] + [1] * len(extra_shape))
            return column * tf.ones([len(values), *extra_shape])

        got = self.call(expand(REAL_LOGITS), expand(FAKE_LOGITS))
        assert got.shape == (3,)
        np.testing.assert_allclose(got.numpy(), self.expected, rtol=1e-6, atol=1e-6)

    def test_mean_over_non_batch_axes(self):
        # A PatchGAN map [2, 2, 2, 1] scores like the mean of its patches scored one by one.
        rng = np.random.default_rng(0)
        real = rng.normal(size=(2, 2, 2, 1)).astype(np.float32)
        fake = rng.normal(size=(2, 2, 2, 1)).astype(np.float32)
        got = self.call(real, fake).numpy()
        patchwise = self.call(real.reshape(-1), fake.reshape(-1)).numpy().reshape(2, 4)
        np.testing.assert_allclose(got, patchwise.mean(axis=1), rtol=1e-5, atol=1e-6)

    @pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16], ids=["float16", "bfloat16"])
    def test_float32_for_mixed_precision_logits(self, dtype):
        # The hand-made logits are exact in both 16-bit formats.
        got = self.call(tf.constant(REAL_LOGITS, dtype), tf.constant(FAKE_LOGITS, dtype))
        assert got.dtype == tf.float32
        np.testing.assert_allclose(got.numpy(), self.expected, rtol=1e-6, atol=1e-6)

    @pytest.mark.parametrize("dtype", [tf.float32, tf.float16], ids=["float32", "float16"])
    def test_finite_for_huge_logits(self, dtype):
        real = tf.constant([100.0, 100.0, -100.0, -100.0], dtype)
        fake = tf.constant([100.0, -100.0, 100.0, -100.0], dtype)
        with tf.GradientTape() as tape:
            tape.watch([real, fake])
            value = self.call(real, fake)
        grads = tape.gradient(value, [real, fake])
        assert np.all(np.isfinite(value.numpy()))
        for grad in grads:
            assert grad is None or np.all(np.isfinite(tf.cast(grad, tf.float32).numpy()))

    def test_gradient_direction(self):
        # Descending the loss must raise D's score on real data and lower it on fakes (D), and
        # raise D's score on fakes (G); checked where every loss is in its active region
        # (least squares pulls fakes to 0 and reals to 1; hinge is flat beyond its margins).
        real = tf.constant([0.25, 0.5, 0.75])
        fake = tf.constant([0.25, 0.5, 0.75])
        with tf.GradientTape() as tape:
            tape.watch([real, fake])
            value = tf.reduce_sum(self.call(real, fake))
        d_real, d_fake = tape.gradient(value, [real, fake])
        if self.is_discriminator:
            assert np.all(d_real.numpy() < 0)
            assert np.all(d_fake.numpy() > 0)
        else:
            assert d_real is None
            assert np.all(d_fake.numpy() < 0)


class TestMinimaxDiscriminatorLoss(_LossTests):
    loss = staticmethod(losses.minimax_discriminator_loss)
    is_discriminator = True
    # softplus(-real) + softplus(fake)
    expected = (SP_0 + SP_0, SP_M2 + SP_M1, SP_MH + SP_H)  # [1.3862944, 0.4401897, 1.4481540]


class TestNonSaturatingDiscriminatorLoss(TestMinimaxDiscriminatorLoss):
    loss = staticmethod(losses.non_saturating_discriminator_loss)


class TestMinimaxGeneratorLoss(_LossTests):
    loss = staticmethod(losses.minimax_generator_loss)
    is_discriminator = False
    expected = (-SP_0, -SP_M1, -SP_H)  # -softplus(fake)


class TestNonSaturatingGeneratorLoss(_LossTests):
    loss = staticmethod(losses.non_saturating_generator_loss)
    is_discriminator = False
    expected = (SP_0, SP_1, SP_MH)  # softplus(-fake)


class TestLeastSquaresDiscriminatorLoss(_LossTests):
    loss = staticmethod(losses.least_squares_discriminator_loss)
    is_discriminator = True
    # 0.5 (real - 1)^2 + 0.5 fake^2: [0.5*1 + 0, 0.5*1 + 0.5*1, 0.5*0.25 + 0.5*0.25]
    expected = (0.5, 1.0, 0.25)


class TestLeastSquaresGeneratorLoss(_LossTests):
    loss = staticmethod(losses.least_squares_generator_loss)
    is_discriminator = False
    expected = (0.5, 2.0, 0.125)  # 0.5 (fake - 1)^2: [0.5*1, 0.5*4, 0.5*0.25]


class TestHingeDiscriminatorLoss(_LossTests):
    loss = staticmethod(losses.hinge_discriminator_loss)
    is_discriminator = True
    # relu(1 - real) + relu(1 + fake): [1 + 1, 0 + 0, 0.5 + 1.5]
    expected = (2.0, 0.0, 2.0)


class TestHingeGeneratorLoss(_LossTests):
    loss = staticmethod(losses.hinge_generator_loss)
    is_discriminator = False
    expected = (0.0, 1.0, -0.5)  # -fake


class TestWassersteinDiscriminatorLoss(_LossTests):
    loss = staticmethod(losses.wasserstein_discriminator_loss)
    is_discriminator = True
    expected = (0.0, -3.0, 0.0)  # fake - real: [0 - 0, -1 - 2, 0.5 - 0.5]


class TestWassersteinGeneratorLoss(_LossTests):
    loss = staticmethod(losses.wasserstein_generator_loss)
    is_discriminator = False
    expected = (0.0, 1.0, -0.5)  # -fake


def _logit_gradient(loss: Callable[[tf.Tensor], tf.Tensor], logit: float) -> float:
    x = tf.constant([logit])
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_sum(loss(x))
    return float(tape.gradient(value, x)[0])


def test_minimax_generator_saturates_where_non_saturating_does_not():
    # D confidently rejects the fake (logit -10, D = 4.5e-5):
    # d/dl [-softplus(l)] = -sigmoid(-10) ~ -4.5e-5 ; d/dl [softplus(-l)] = -sigmoid(10) ~ -1.
    minimax = _logit_gradient(losses.minimax_generator_loss, -10.0)
    non_saturating = _logit_gradient(losses.non_saturating_generator_loss, -10.0)
    assert abs(minimax) < 1e-4
    assert abs(non_saturating) > 0.999
    assert minimax < 0 and non_saturating < 0


# --- gradient penalty and R1 ----------------------------------------------------------------


def _linear_discriminator(w: np.ndarray) -> Callable[[tf.Tensor], tf.Tensor]:
    """D(x) = <w, x> per example: its input gradient is w everywhere."""
    weights = tf.constant(w, tf.float32)
    return lambda x: tf.reduce_sum(x * weights, axis=[1, 2, 3])


def _half_squared_norm(x: tf.Tensor) -> tf.Tensor:
    """D(x) = 0.5 ||x||^2 per example: its input gradient is x."""
    return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])


@pytest.mark.parametrize(
    ("w", "expected"),
    [
        ([0.6, 0.8, 0.0, 0.0], 0.0),  # ||w|| = sqrt(0.36 + 0.64) = 1 -> (1 - 1)^2 = 0
        ([2.0, 2.0, 1.0, 0.0], 4.0),  # ||w|| = sqrt(4 + 4 + 1) = 3 -> (3 - 1)^2 = 4
    ],
)
def test_gradient_penalty_linear_discriminator(w, expected):
    rng = np.random.default_rng(1)
    real = rng.normal(size=(5, 2, 2, 1)).astype(np.float32)
    fake = rng.normal(size=(5, 2, 2, 1)).astype(np.float32)
    alpha = np.array([0.0, 0.1, 0.5, 0.9, 1.0], np.float32)  # any alpha: the gradient is w
    penalty = losses.gradient_penalty(
        _linear_discriminator(np.reshape(w, (2, 2, 1))), real, fake, alpha
    )
    assert penalty.shape == (5,)
    assert penalty.dtype == tf.float32
    np.testing.assert_allclose(penalty.numpy(), np.full(5, expected), atol=1e-5)


@pytest.mark.parametrize("alpha_shape", [(3,), (3, 1, 1, 1)], ids=["B", "B111"])
def test_gradient_penalty_interpolates_per_example(alpha_shape):
    # D = 0.5 ||x||^2 has gradient x̂ = alpha * ones(4) (real = 1, fake = 0), ||x̂|| = 2 alpha,
    # penalty (2 alpha - 1)^2: alpha 0.25 -> 0.25, 0.5 -> 0, 1 -> 1.
    real = tf.ones([3, 2, 2, 1])
    fake = tf.zeros([3, 2, 2, 1])
    alpha = tf.reshape(tf.constant([0.25, 0.5, 1.0]), alpha_shape)
    penalty = losses.gradient_penalty(_half_squared_norm, real, fake, alpha)
    np.testing.assert_allclose(penalty.numpy(), [0.25, 0.0, 1.0], atol=1e-5)


def test_gradient_penalty_float32_for_float16_inputs():
    real = tf.ones([3, 2, 2, 1], tf.float16)
    fake = tf.zeros([3, 2, 2, 1], tf.float16)
    alpha = tf.constant([0.25, 0.5, 1.0], tf.float16)
    penalty = losses.gradient_penalty(_half_squared_norm, real, fake, alpha)
    assert penalty.dtype == tf.float32
    np.testing.assert_allclose(penalty.numpy(), [0.25, 0.0, 1.0], atol=1e-5)


def test_gradient_penalty_nested_in_discriminator_tape():
    keras.utils.set_random_seed(0)
    discriminator = keras.Sequential(
        [keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(8, "tanh"),
         keras.layers.Dense(1)]
    )  # fmt: skip
    real = tf.random.stateless_normal([4, 2, 2, 1], seed=[0, 1])
    fake = tf.random.stateless_normal([4, 2, 2, 1], seed=[0, 2])
    alpha = tf.random.stateless_uniform([4], seed=[0, 3])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            critic = losses.wasserstein_discriminator_loss(discriminator(real), discriminator(fake))
            penalty = losses.gradient_penalty(discriminator, real, fake, alpha)
            total = losses.global_batch_mean(critic + 10.0 * penalty)
        penalty_grads = tf.gradients(penalty, discriminator.trainable_variables)
        return tape.gradient(total, discriminator.trainable_variables), penalty_grads

    grads, penalty_grads = step()
    assert len(grads) == len(discriminator.trainable_variables) == 4
    for grad in grads:
        assert grad is not None and np.all(np.isfinite(grad.numpy()))
    # The penalty itself reaches the first layer's weights (second-order path through the tape).
    assert np.any(penalty_grads[0].numpy() != 0)


def test_gradient_penalty_where_input_gradient_is_zero():
    # D = sum(v x^2) has gradient 2 v x = 0 at x̂ = 0: the norm is sqrt(0 + 1e-10) = 1e-5, the
    # penalty (1e-5 - 1)^2 ~ 1, and d penalty / d v is finite (NaN without the epsilon).
    v = tf.Variable(tf.ones([2, 2, 1]))
    zeros = tf.zeros([2, 2, 2, 1])
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty(
            lambda x: tf.reduce_sum(v * tf.square(x), axis=[1, 2, 3]),
            zeros, zeros, tf.constant([0.3, 0.7]),
        )  # fmt: skip
    np.testing.assert_allclose(penalty.numpy(), [1.0, 1.0], atol=1e-4)
    grad = tape.gradient(penalty, v)
    assert grad is not None and np.all(np.isfinite(grad.numpy()))


def test_r1_penalty_half_squared_norm():
    # D = 0.5 ||x||^2 -> gradient x -> ||x||^2: [1,1,1,1] -> 4 ; [1,2,0,0] -> 5 ; [0,0,0,3] -> 9.
    real = tf.reshape(
        tf.constant([[1, 1, 1, 1], [1, 2, 0, 0], [0, 0, 0, 3]], tf.float16), [3, 2, 2, 1]
    )
    penalty = losses.r1_penalty(_half_squared_norm, real)
    assert penalty.dtype == tf.float32
    np.testing.assert_allclose(penalty.numpy(), [4.0, 5.0, 9.0], rtol=1e-6)


# --- global batch mean --------------------------------------------------------------------


def test_global_batch_mean_without_strategy_is_the_mean():
    got = losses.global_batch_mean(tf.constant([1.0, 2.0, 3.0, 10.0]))
    assert got.dtype == tf.float32
    assert float(got) == pytest.approx(4.0)  # (1 + 2 + 3 + 10) / 4


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    from zoo.core.losses import global_batch_mean

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    per_replica = [[1.0, 2.0], [3.0, 10.0]]
    values = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(per_replica[ctx.replica_id_in_sync_group])
    )

    @tf.function
    def step(x):
        return strategy.run(global_batch_mean, args=(x,))

    total = strategy.reduce(tf.distribute.ReduceOp.SUM, step(values), axis=None)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "sum": float(total)}))
    """
)


def test_global_batch_mean_under_mirrored_strategy():
    # Run in a subprocess: virtual devices must be configured before TensorFlow initialises.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    # Summed over replicas: (1 + 2 + 3 + 10) / global batch 4 = 4 (a per-replica mean would give
    # 1.5 + 6.5 = 8).
    assert out["sum"] == pytest.approx(4.0)


# --- joint embedding ----------------------------------------------------------------------


def test_contrastive_joint_embedding_loss_masks_extra_positives():
    similarity = tf.constant([[1.0, 1.0], [1.0, 1.0]])
    none = tf.zeros([2, 2], tf.bool)
    np.testing.assert_allclose(
        losses.contrastive_joint_embedding_loss(similarity, none), np.log(2.0), rtol=1e-6
    )
    both = tf.ones([2, 2], tf.bool)
    np.testing.assert_allclose(
        losses.contrastive_joint_embedding_loss(similarity, both), 0.0, atol=1e-6
    )


def test_contrastive_joint_embedding_loss_golden_3x3():
    # S[i, j] = image i vs caption j. (image 0, caption 2) also match: caption 2 is no negative
    # of image 0 (row 0) and image 0 none of caption 2 (column 2). Temperature 1; the target of
    # row / column i is i, and CE(v, i) = log(sum(e^v)) - v[i].
    similarity = tf.constant([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    positives = tf.constant([[False, False, True], [False, False, False], [False] * 3])
    e = math.e
    image_to_text = [
        math.log(e**2 + 1) - 2,  # row 0: [2, 0, masked]
        math.log(2 + e) - 1,  # row 1: [0, 1, 0]
        math.log(e + 2),  # row 2: [1, 0, 0]
    ]
    text_to_image = [
        math.log(e**2 + 1 + e) - 2,  # column 0: [2, 0, 1]
        math.log(2 + e) - 1,  # column 1: [0, 1, 0]
        math.log(2),  # column 2: [masked, 0, 0]
    ]
    expected = 0.5 * (sum(image_to_text) / 3 + sum(text_to_image) / 3)
    assert expected == pytest.approx(0.647003, abs=1e-6)
    got = losses.contrastive_joint_embedding_loss(similarity, positives, temperature=1.0)
    assert got.dtype == tf.float32 and got.shape == ()
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    # The temperature divides the similarities; float16 similarities compute in float32.
    halved = tf.cast(similarity / 2, tf.float16)
    got = losses.contrastive_joint_embedding_loss(halved, positives, temperature=0.5)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


# --- registry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "generator", "discriminator", "weight", "steps"),
    [
        ("minimax", losses.minimax_generator_loss, losses.minimax_discriminator_loss, 0.0, 1),
        ("non_saturating", losses.non_saturating_generator_loss,
         losses.non_saturating_discriminator_loss, 0.0, 1),
        ("least_squares", losses.least_squares_generator_loss,
         losses.least_squares_discriminator_loss, 0.0, 1),
        ("hinge", losses.hinge_generator_loss, losses.hinge_discriminator_loss, 0.0, 1),
        ("wgan_gp", losses.wasserstein_generator_loss, losses.wasserstein_discriminator_loss,
         10.0, 5),
    ],
)  # fmt: skip
def test_get_loss(name, generator, discriminator, weight, steps):
    loss = losses.get_loss(name)
    assert loss is losses.LOSSES[name]
    assert loss.generator is generator
    assert loss.discriminator is discriminator
    assert loss.gradient_penalty_weight == weight
    assert loss.default_discriminator_steps == steps


def test_registry_names_and_frozen_entries():
    assert set(losses.LOSSES) == {"minimax", "non_saturating", "least_squares", "hinge", "wgan_gp"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        losses.get_loss("hinge").gradient_penalty_weight = 1.0  # type: ignore[misc]


def test_get_loss_unknown_name_is_a_usage_error():
    with pytest.raises(UsageError) as error:
        losses.get_loss("wasserstein")
    message = str(error.value)
    assert "\n" not in message
    assert "'wasserstein'" in message
    for name in losses.LOSSES:
        assert name in message


def test_minimax_value_at_half_is_minus_log_4():
    # D = 1/2 everywhere (logits 0): loss = log 2 + log 2 = log 4.
    value = losses.minimax_discriminator_loss(tf.zeros([2]), tf.zeros([2]))
    np.testing.assert_allclose(value.numpy(), [math.log(4.0)] * 2, rtol=1e-6)


# -- AC-GAN's auxiliary classifier loss --------------------------------------------------------
def test_auxiliary_classifier_loss_is_the_cross_entropy_by_hand():
    ln3 = float(np.log(3.0))
    # Scores (0, ln 3, 0): softmax = (1/5, 3/5, 1/5); equal scores over 4 classes: 1/4 each.
    logits = tf.constant([[0.0, ln3, 0.0, -1e4], [0.0, ln3, 0.0, -1e4], [1.0, 1.0, 1.0, 1.0]])
    got = auxiliary_classifier_loss(logits, tf.constant([1, 0, 3]))
    np.testing.assert_allclose(got, [np.log(5 / 3), np.log(5.0), np.log(4.0)], rtol=1e-6)
    half = auxiliary_classifier_loss(tf.cast(logits[2:], tf.float16), tf.constant([2], tf.int64))
    assert half.dtype == tf.float32 and half.shape == (1,)
    np.testing.assert_allclose(half, [np.log(4.0)], rtol=1e-6)


# -- cycle consistency, identity (CycleGAN) and conditioning augmentation's KL (StackGAN) --
def test_cycle_and_identity_losses_on_hand_made_tensors():
    real = tf.constant([[[[1.0], [-1.0]]], [[[0.0], [0.5]]]])  # [2, 1, 2, 1]
    other = tf.constant([[[[0.0], [-1.0]]], [[[0.5], [-0.5]]]])
    np.testing.assert_allclose(cycle_consistency_loss(real, other), [0.5, 0.75])
    np.testing.assert_allclose(identity_loss(real, other), [0.5, 0.75])
    np.testing.assert_allclose(cycle_consistency_loss(real, real), [0.0, 0.0])
    assert cycle_consistency_loss(real, tf.cast(other, tf.float16)).dtype == tf.float32


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
