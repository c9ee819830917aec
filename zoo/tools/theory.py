"""The theory lab: the optimal discriminator and the value of the game on 1-D Gaussians.

For a fixed generator with density p_g, the discriminator maximising
V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))] is D*(x) = p_data(x) / (p_data(x) + p_g(x)),
and V(D*, G) = −log 4 + 2·JS(p_data‖p_g) (Goodfellow et al. 2014, Prop. 1 and Thm. 1). The lab
trains a discriminator with the zoo's minimax loss on samples of two Gaussians whose densities
are known, and compares it with D* and the closed forms.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Gaussian:
    """A 1-D normal distribution N(mean, std²)."""

    mean: float
    std: float

    def pdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return np.exp(-0.5 * ((x - self.mean) / self.std) ** 2) / (
            self.std * math.sqrt(2 * math.pi)
        )


def optimal_discriminator(x: np.ndarray, p_data: Gaussian, p_g: Gaussian) -> np.ndarray:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x))."""
    a, b = p_data.pdf(x), p_g.pdf(x)
    return a / (a + b)


def integration_grid(p_data: Gaussian, p_g: Gaussian, points: int = 4001) -> np.ndarray:
    """A grid covering both densities to ±8 standard deviations."""
    low = min(p_data.mean - 8 * p_data.std, p_g.mean - 8 * p_g.std)
    high = max(p_data.mean + 8 * p_data.std, p_g.mean + 8 * p_g.std)
    return np.linspace(low, high, points)


def value(d: Callable[[np.ndarray], np.ndarray], p_data: Gaussian, p_g: Gaussian) -> float:
    """V(D, G) = ∫ p_data log D + p_g log(1 − D) dx, by the trapezoidal rule."""
    x = integration_grid(p_data, p_g)
    dx = np.clip(np.asarray(d(x), np.float64), 1e-12, 1 - 1e-12)
    integrand = p_data.pdf(x) * np.log(dx) + p_g.pdf(x) * np.log1p(-dx)
    return float(np.trapezoid(integrand, x))


def jensen_shannon(p_data: Gaussian, p_g: Gaussian) -> float:
    """JS(p_data‖p_g) in nats, by the trapezoidal rule."""
    x = integration_grid(p_data, p_g)
    p, q = p_data.pdf(x), p_g.pdf(x)
    m = 0.5 * (p + q)
    tiny = 1e-300
    kl_pm = p * (np.log(p + tiny) - np.log(m + tiny))
    kl_qm = q * (np.log(q + tiny) - np.log(m + tiny))
    return float(0.5 * np.trapezoid(kl_pm, x) + 0.5 * np.trapezoid(kl_qm, x))


def fit_discriminator(
    p_data: Gaussian,
    p_g: Gaussian,
    *,
    steps: int = 1000,
    batch_size: int = 512,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> Callable[[np.ndarray], np.ndarray]:
    """Trains an MLP discriminator (32-32 tanh, logit out) for the fixed "generator" p_g.

    Each step draws fresh samples of both densities (stateless, keyed by seed and step) and
    descends the zoo's `minimax_discriminator_loss`.

    Returns:
      D: numpy x -> probability that x is real.
    """
    import keras
    import tensorflow as tf

    from zoo.core import losses

    keras.utils.set_random_seed(seed)
    discriminator = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(32, activation="tanh"),
            keras.layers.Dense(32, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step(step_seed: tf.Tensor) -> tf.Tensor:
        real = p_data.mean + p_data.std * tf.random.stateless_normal(
            [batch_size, 1], seed=tf.stack([step_seed, 0])
        )
        fake = p_g.mean + p_g.std * tf.random.stateless_normal(
            [batch_size, 1], seed=tf.stack([step_seed, 1])
        )
        with tf.GradientTape() as tape:
            per_example = losses.minimax_discriminator_loss(
                discriminator(real), discriminator(fake)
            )
            loss = losses.global_batch_mean(per_example)
        variables = discriminator.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    for i in range(steps):
        step(tf.constant(seed * 100_000 + i, tf.int32))

    def d(x: np.ndarray) -> np.ndarray:
        logits = discriminator(np.asarray(x, np.float32).reshape(-1, 1), training=False)
        return tf.sigmoid(logits).numpy().reshape(np.shape(x))

    return d


def theory_lab(
    p_data: Gaussian, p_g: Gaussian, *, steps: int = 1000, seed: int = 0
) -> tuple[dict[str, float], np.ndarray]:
    """Trains D for fixed p_g and compares it with D* and the closed forms.

    Returns:
      A report (max |D − D*| where the densities have mass, V(D, G), V(D*, G),
      −log 4 + 2·JS) and a picture of p_data, p_g, D* and D as the lecture draws them.
    """
    from zoo.core.images import line_plot

    d = fit_discriminator(p_data, p_g, steps=steps, seed=seed)
    x = integration_grid(p_data, p_g, points=801)
    mass = (p_data.pdf(x) + p_g.pdf(x)) > 0.05 * max(p_data.pdf(x).max(), p_g.pdf(x).max())
    learned, optimal = d(x), optimal_discriminator(x, p_data, p_g)
    js = jensen_shannon(p_data, p_g)
    report = {
        "max_abs_error_d_vs_optimal": float(np.max(np.abs(learned - optimal)[mass])),
        "value_learned_d": value(d, p_data, p_g),
        "value_optimal_d": value(lambda v: optimal_discriminator(v, p_data, p_g), p_data, p_g),
        "minus_log4_plus_2js": -math.log(4.0) + 2.0 * js,
        "jensen_shannon": js,
    }
    shown = (x > min(p_data.mean - 4 * p_data.std, p_g.mean - 4 * p_g.std)) & (
        x < max(p_data.mean + 4 * p_data.std, p_g.mean + 4 * p_g.std)
    )
    scale = 1.0 / max(p_data.pdf(x).max(), p_g.pdf(x).max())  # densities drawn to height 1
    picture = line_plot(
        x[shown],
        [
            (scale * p_data.pdf(x[shown]), (0, 0, 0), "p_data (scaled)"),
            (scale * p_g.pdf(x[shown]), (44, 160, 44), "p_g (scaled)"),
            (optimal[shown], (214, 39, 40), "D* = p_data/(p_data+p_g)"),
            (learned[shown], (31, 119, 180), "D (trained)"),
        ],
        y_range=(0.0, 1.05),
    )
    return report, picture
