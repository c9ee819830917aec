"""bench/throughput.py's starting point: the dataset's defaults, or the family's own."""

from __future__ import annotations

import sys

from tests.families import REPO
from zoo import registry

sys.path.insert(0, f"{REPO}/bench")
from throughput import starting_point


def test_cyclegan_on_fashion_mnist_starts_from_its_small_gray_defaults():
    config, batch = starting_point(registry.get("cyclegan"), "fashion_mnist")
    assert (config.image_size, config.channels, config.generator_filters, batch) == (32, 1, 32, 4)
    assert config.identity_weight == 0.0 and not config.jitter


def test_without_dataset_defaults_cyclegan_is_the_papers_as_the_pytorch_reference():
    config, batch = starting_point(registry.get("cyclegan"), "fashion_mnist", False)
    assert (config.generator_filters, config.discriminator_filters, batch) == (64, 64, 1)
    assert (config.identity_weight, config.downsamplings, config.input_norm) == (0.5, 2, True)
    assert config.jitter and config.flip


def test_dcgan_on_fashion_mnist_times_its_recipe_and_without_the_papers():
    task = registry.get("dcgan")
    config, batch = starting_point(task, "fashion_mnist")
    assert (config.r1_interval, config.ema_decay, batch) == (16, 0.99, 64)
    config, batch = starting_point(task, "fashion_mnist", False)
    assert (config.image_size, config.r1_gamma, config.ema_decay, batch) == (64, 0.0, 0.0, 64)
