"""Vanilla GAN networks on images and on toy vectors."""

import numpy as np
import pytest

from zoo import registry
from zoo.core.config import apply_overrides
from zoo.errors import UsageError


def _gan(*overrides):
    family = registry.get("gan")
    return family(apply_overrides(family.config_class(), list(overrides)), seed=0)


def test_paper_sizes_on_images():
    model = _gan()
    assert model.generator.input_shape == (None, 100)
    units = [layer.units for layer in model.generator.layers if hasattr(layer, "units")]
    assert units == [128, 784]
    images = model.generator(model.noise(3))
    assert images.shape == (3, 28, 28, 1) and float(np.max(np.abs(images))) <= 1.0
    assert model.discriminator.input_shape == (None, 784)
    assert model.discriminate(images).shape == (3, 1)


def test_toy_vectors_use_a_linear_output():
    model = _gan("data_dim=2", "generator_units=8,8")
    samples = model.generator(model.noise(4))
    assert samples.shape == (4, 2)
    assert model.generator.layers[-2].activation.__name__ == "linear"


def test_bad_pack_is_a_usage_error():
    with pytest.raises(UsageError, match="pack"):
        _gan("pack=0")
