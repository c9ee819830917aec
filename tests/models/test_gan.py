"""Vanilla GAN networks on images and on toy vectors."""

import dataclasses

import numpy as np
import pytest

from zoo import registry
from zoo.core.config import apply_overrides, config_from_dict, config_to_dict
from zoo.errors import UsageError
from zoo.models.gan import VECTOR_DEFAULTS


def _gan(*overrides):
    family = registry.get("gan")
    return family.build_model(apply_overrides(family.config_class(), list(overrides)), seed=0)


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


def _config(*overrides, data_dim=0):
    """A gan config as the driver makes it: the dataset's defaults, overrides, the data's size."""
    family = registry.get("gan")
    config = family.default_config("ring8" if data_dim else "fashion_mnist")
    config = apply_overrides(config, list(overrides))
    return dataclasses.replace(config, data_dim=data_dim) if data_dim else config


def test_images_keep_the_mnist_defaults():
    config = _config()
    assert (config.latent_dim, config.generator_units, config.discriminator_units) == (
        100,
        (128,),
        (128,),
    )
    assert (config.g_learning_rate, config.d_learning_rate, config.lr_constant_fraction) == (
        2e-4,
        2e-4,
        1.0,
    )


def test_vectors_get_the_toy_defaults_and_record_them():
    config = _config(data_dim=2)
    assert {name: getattr(config, name) for name in VECTOR_DEFAULTS} == VECTOR_DEFAULTS
    assert VECTOR_DEFAULTS["latent_dim"] == 2 and VECTOR_DEFAULTS["lr_constant_fraction"] < 1
    saved = config_to_dict(config)
    assert saved["generator_units"] == [256, 256, 256] and saved["latent_dim"] == 2
    assert config_from_dict(type(config), saved) == config


def test_the_toys_penalise_d_with_r1_and_old_runs_keep_theirs():
    assert _config(data_dim=2).r1_gamma == 0.1
    assert _config().r1_gamma == 0.0  # images: off
    assert _config("r1_gamma=0", data_dim=2).r1_gamma == 0.0
    # A toy run from before the change recorded r1_gamma=0.0 and restores with it, as does a
    # config.json older than the field (the shipped gan_ring8 preset's is the first kind).
    saved = config_to_dict(_config("r1_gamma=0", data_dim=2))
    config_class = registry.get("gan").config_class
    assert config_from_dict(config_class, saved).r1_gamma == 0.0
    del saved["r1_gamma"]
    assert config_from_dict(config_class, saved).r1_gamma == 0.0


def test_overrides_win_on_vectors_even_when_equal_to_the_image_default():
    config = _config("latent_dim=100", "generator_units=64", "d_learning_rate=2e-4", data_dim=2)
    assert (config.latent_dim, config.generator_units, config.d_learning_rate) == (100, (64,), 2e-4)
    assert config.discriminator_units == VECTOR_DEFAULTS["discriminator_units"]
    assert config.g_learning_rate == VECTOR_DEFAULTS["g_learning_rate"]


def test_toy_model_is_built_from_the_toy_defaults():
    model = registry.get("gan").build_model(_config(data_dim=2), seed=0)
    assert model.generator.input_shape == (None, 2)
    units = [layer.units for layer in model.discriminator.layers if hasattr(layer, "units")]
    assert units == [256, 256, 256, 1]
    optimizer = model.make_optimizer(1e-3, train_steps=100)
    rates = []
    for step in (0, 30, 65, 100):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    assert rates == pytest.approx([1e-3, 1e-3, 5e-4, 0.0])  # constant for 30%, then to zero


def test_images_train_at_a_constant_rate():
    optimizer = _gan().make_optimizer(2e-4, train_steps=100)
    optimizer.iterations.assign(100)
    assert float(optimizer.learning_rate) == pytest.approx(2e-4)
