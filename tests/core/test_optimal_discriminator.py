"""The theory behind the minimax loss (Goodfellow et al. 2014), checked through zoo.core.losses.

- For a fixed G the optimal discriminator is D*(x) = p_data(x) / (p_data(x) + p_g(x)).
- At the game's optimum p_g = p_data: D* = 1/2 and V = -log 4.
- C(G) = max_D V(D, G) = -log 4 + 2 JS(p_data || p_g).

The minimax discriminator loss is -V per example, so V = -mean(loss).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from zoo.core import losses
from zoo.tools import theory

GRID = np.linspace(-1.5, 2.5, 41, dtype=np.float32)  # where both densities have mass


def _normal_pdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2.0 * math.pi))


def _trained_d_on_grid(fake_mean: float, fake_std: float, seed: int) -> np.ndarray:
    """sigmoid(D) on GRID for a D trained (the theory lab's routine) against N(fake_mean, ..)."""
    d = theory.fit_discriminator(
        theory.Gaussian(0.0, 1.0), theory.Gaussian(fake_mean, fake_std), steps=1000, seed=seed
    )
    return d(GRID)


def test_trained_discriminator_matches_optimal_discriminator():
    tolerance = 0.06  # observed max error ~0.01-0.03 over seeds at 1000 steps
    p_data = _normal_pdf(GRID, 0.0, 1.0)
    p_g = _normal_pdf(GRID, 1.5, 0.7)
    optimal = p_data / (p_data + p_g)
    # The tolerance discriminates: D's that ignore p_g (1/2 everywhere) or swap the roles of the
    # two densities are far from D* on this grid.
    for wrong in (np.full_like(optimal, 0.5), p_g / (p_data + p_g)):
        assert np.max(np.abs(wrong - optimal)) > 4 * tolerance

    np.testing.assert_allclose(_trained_d_on_grid(1.5, 0.7, seed=1), optimal, atol=tolerance)


def test_identical_distributions_give_one_half():
    np.testing.assert_allclose(_trained_d_on_grid(0.0, 1.0, seed=2), 0.5, atol=0.05)


def test_value_at_the_optimum_is_minus_log_4():
    # D* = 1/2 (logits 0): loss = -log(1/2) - log(1 - 1/2) = log 4, so V = -log 4.
    loss = losses.minimax_discriminator_loss(tf.zeros([4, 1]), tf.zeros([4, 1]))
    np.testing.assert_allclose(loss.numpy(), np.full(4, math.log(4.0)), rtol=1e-6)


def _jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    m = 0.5 * (p + q)
    return 0.5 * float(np.sum(p * np.log(p / m))) + 0.5 * float(np.sum(q * np.log(q / m)))


def _value(p_counts: np.ndarray, q_counts: np.ndarray, logits: np.ndarray) -> float:
    """V(D, G) = -mean minimax loss over batches drawn EXACTLY as p_data and p_g.

    Support point k appears p_counts[k] times among the real examples and q_counts[k] times among
    the fakes (both batches have the same size), so the batch mean is the exact expectation.
    """
    real = np.repeat(logits, p_counts).astype(np.float32)
    fake = np.repeat(logits, q_counts).astype(np.float32)
    return -float(tf.reduce_mean(losses.minimax_discriminator_loss(real, fake)))


@pytest.mark.parametrize(
    ("p_counts", "q_counts"),
    [
        ([4, 2, 1, 1], [1, 1, 2, 4]),
        ([3, 7, 5, 1, 4], [6, 2, 2, 5, 5]),
        ([2, 3, 5], [2, 3, 5]),  # p_g = p_data: JS = 0, C(G) = -log 4
    ],
)
def test_value_of_optimal_discriminator_is_jensen_shannon(p_counts, q_counts):
    p_counts, q_counts = np.array(p_counts), np.array(q_counts)
    assert p_counts.sum() == q_counts.sum()
    p = p_counts / p_counts.sum()
    q = q_counts / q_counts.sum()
    optimal_logits = np.log(p / q)  # logit of D* = p / (p + q)

    value = _value(p_counts, q_counts, optimal_logits)
    np.testing.assert_allclose(value, -math.log(4.0) + 2.0 * _jensen_shannon(p, q), rtol=1e-5)
    # D* maximises V: moving its logits either way lowers the value.
    for shift in (-0.3, 0.3):
        assert _value(p_counts, q_counts, optimal_logits + shift) < value
