"""zoo.tools.probe: which hidden layers it taps, how it pools them, its options' errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from zoo.errors import UsageError
from zoo.tools import probe


def _two_layer_discriminator() -> keras.Model:
    """8x8x1 -> LeakyReLU (tap 0, 8x8x1) -> 1x1 stride-2 conv of weight 2 -> LeakyReLU (tap 1,
    4x4x1) -> one logit: taps whose values are computed by hand below."""
    x_in = keras.Input((8, 8, 1))
    tap0 = keras.layers.LeakyReLU(0.2)(x_in)
    conv = keras.layers.Conv2D(
        1, 1, strides=2, use_bias=False, kernel_initializer=keras.initializers.Constant(2.0)
    )
    tap1 = keras.layers.LeakyReLU(0.2)(conv(tap0))
    logit = keras.layers.Dense(1)(keras.layers.Flatten()(tap1))
    return keras.Model(x_in, logit)


def _leaky(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, 0.2 * x)


@pytest.fixture(scope="module")
def discriminator():
    return _two_layer_discriminator()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(-1, 1, (3, 8, 8, 1)).astype("float32")


def test_every_layer_max_pooled_to_pool_to(discriminator, images):
    features = probe.discriminator_features(discriminator, images, pool_to=4)
    tap0 = _leaky(images[..., 0])
    pooled0 = tap0.reshape(3, 4, 2, 4, 2).max(axis=(2, 4)).reshape(3, -1)
    tap1 = _leaky(2.0 * tap0[:, ::2, ::2]).reshape(3, -1)  # already 4 x 4: not pooled
    np.testing.assert_allclose(features, np.concatenate([pooled0, tap1], axis=1), rtol=1e-6)


def test_layers_pick_taps_and_pool_to_one_is_global(discriminator, images):
    tap0 = _leaky(images[..., 0])
    tap1 = _leaky(2.0 * tap0[:, ::2, ::2])
    last = probe.discriminator_features(discriminator, images, layers=(-1,))
    np.testing.assert_allclose(last, tap1.reshape(3, -1), rtol=1e-6)
    pooled = probe.discriminator_features(discriminator, images, pool_to=1, layers=(0, 1))
    expected = np.stack([tap0.max(axis=(1, 2)), tap1.max(axis=(1, 2))], axis=1)
    np.testing.assert_allclose(pooled, expected, rtol=1e-6)


def test_parse_layers():
    assert probe.parse_layers("all") is None
    assert probe.parse_layers("-1") == (-1,)
    assert probe.parse_layers("0, 2") == (0, 2)
    with pytest.raises(UsageError, match="probe layers must be"):
        probe.parse_layers("last")


@pytest.mark.parametrize(
    "kwargs, message",
    [({"layers": (2,)}, "D has 2 hidden layers"), ({"pool_to": 0}, "pool_to must be >= 1")],
)
def test_bad_options_are_one_line(discriminator, images, kwargs, message):
    with pytest.raises(UsageError, match=message):
        probe.discriminator_features(discriminator, images, **kwargs)
