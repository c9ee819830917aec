"""DCGAN networks: the paper's architecture rules at every supported size."""

import keras
import numpy as np
import pytest
from keras import layers as L

from zoo import registry
from zoo.core import distribute
from zoo.core.config import apply_overrides
from zoo.errors import UsageError


def _dcgan(*overrides):
    family = registry.get("dcgan")
    config = apply_overrides(
        family.config_class(), ["generator_filters=4", "discriminator_filters=4", *overrides]
    )
    return family.build_model(config, seed=0)


@pytest.mark.parametrize("size, blocks", [(16, 2), (28, 2), (32, 3), (64, 4), (128, 5)])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_dtypes_and_range(size, blocks, channels):
    model = _dcgan(f"image_size={size}", f"channels={channels}")
    z = model.noise(2)
    images = model.generator(z, training=False)
    assert images.shape == (2, size, size, channels) and images.dtype == "float32"
    assert float(np.max(np.abs(images))) <= 1.0
    logits = model.discriminator(images, training=False)
    assert logits.shape == (2, 1) and logits.dtype == "float32"
    g_convs = [layer for layer in model.generator.layers if isinstance(layer, L.Conv2DTranspose)]
    d_convs = [layer for layer in model.discriminator.layers if isinstance(layer, L.Conv2D)]
    assert len(g_convs) == blocks and all(c.strides == (2, 2) for c in g_convs)
    # Strided blocks + the last valid convolution to a logit (+ the recipe layout's extra block
    # in D, the default at 28 px only).
    assert len(d_convs) == blocks + 1 + (size == 28)


def test_paper_architecture_rules():
    model = _dcgan("image_size=64")
    g_layers, d_layers = model.generator.layers, model.discriminator.layers
    for layer in g_layers + d_layers:
        assert "pool" not in type(layer).__name__.lower()
    dense = [layer for layer in g_layers if isinstance(layer, L.Dense)]
    assert len(dense) == 1  # only the projection of z
    assert not [layer for layer in d_layers if isinstance(layer, L.Dense)]
    # Batch norm after the projection and every hidden block of G, none after its output.
    g_bn = [layer for layer in g_layers if isinstance(layer, L.BatchNormalization)]
    assert len(g_bn) == 4 and all(abs(bn.momentum - 0.9) < 1e-9 for bn in g_bn)
    assert g_layers[-1].activation.__name__ == "tanh"
    # D: no batch norm on its input block, then one per block.
    d_bn = [layer for layer in d_layers if isinstance(layer, L.BatchNormalization)]
    assert len(d_bn) == 3
    first_conv = next(i for i, layer in enumerate(d_layers) if isinstance(layer, L.Conv2D))
    assert isinstance(d_layers[first_conv + 1], L.LeakyReLU)
    assert [layer.negative_slope for layer in d_layers if isinstance(layer, L.LeakyReLU)] == [
        0.2
    ] * 4
    kernels = np.concatenate([np.ravel(c.kernel) for c in d_layers if isinstance(c, L.Conv2D)])
    assert abs(float(np.std(kernels)) - 0.02) < 0.003 and abs(float(np.mean(kernels))) < 0.002


def test_paper_optimizer_defaults():
    model = _dcgan("image_size=16")
    model.compile(train_steps=10)
    inner = model.d_optimizer.inner_optimizer
    assert isinstance(inner, keras.optimizers.Adam)
    assert float(inner.learning_rate) == pytest.approx(2e-4) and inner.beta_1 == 0.5


def test_spectral_norm_wraps_discriminator_layers():
    model = _dcgan("image_size=16", "spectral_norm=true")
    wrapped = [
        layer for layer in model.discriminator.layers if isinstance(layer, L.SpectralNormalization)
    ]
    assert len(wrapped) == 3


def test_mixed_precision_keeps_outputs_float32():
    distribute.set_precision("mixed_float16")
    try:
        model = _dcgan("image_size=16")
        images = model.generator(model.noise(2), training=False)
        assert images.dtype == "float32"
        assert model.discriminator(images).dtype == "float32"
    finally:
        distribute.set_precision("float32")


def test_unsupported_image_size_is_a_usage_error():
    with pytest.raises(UsageError, match="image_size must be one of"):
        _dcgan("image_size=20")


# -- the 28 px layout of ../shared/ref/recipe_dcgan.py (`architecture`) -----------------------
def test_recipe_layout_at_28px_is_the_references_networks():
    family = registry.get("dcgan")
    model = family.build_model(family.config_class(image_size=28, architecture="auto"), seed=0)
    g, d = model.generator, model.discriminator
    shapes = [layer.output.shape[1:] for layer in g.layers if isinstance(layer, L.ReLU)]
    assert shapes == [(7, 7, 256), (14, 14, 128), (28, 28, 64)]
    out = g.layers[-1]
    assert isinstance(out, L.Conv2D) and not isinstance(out, L.Conv2DTranspose)
    assert out.kernel_size == (3, 3) and out.strides == (1, 1) and out.activation.__name__ == "tanh"
    # By hand: projection 100*7*7*256, BN 4*256, 4x4x256x128, BN 4*128, 4x4x128x64, BN 4*64,
    # 3x3x64x1 + bias (the reference's G, bar its projection's batch norm per channel).
    assert g.count_params() == 1254400 + 1024 + 524288 + 512 + 131072 + 256 + 577
    hidden = [layer.output.shape[1:] for layer in d.layers if isinstance(layer, L.LeakyReLU)]
    assert hidden == [(14, 14, 64), (7, 7, 128), (4, 4, 256)]
    assert d.layers[-2].kernel_size == (4, 4)  # the logit sees the whole 4 x 4 map
    # 4x4x1x64, 4x4x64x128 + BN, 3x3x128x256 (the reference's last kernel) + BN, 4x4x256 logit.
    assert d.count_params() == 1024 + 131072 + 512 + 294912 + 1024 + 4096
    images = g(model.noise(3), training=False)
    assert images.shape == (3, 28, 28, 1) and d(images).shape == (3, 1)


@pytest.mark.parametrize(
    "overrides, recipe",
    [
        (("image_size=28",), True),  # the default, auto
        (("image_size=28", "architecture=auto"), True),
        (("image_size=16", "architecture=auto"), False),
        (("image_size=64", "architecture=auto"), False),
        (("image_size=28", "architecture=paper"), False),
        (("image_size=16", "architecture=recipe"), True),
    ],
)
def test_architecture_auto_is_recipe_only_at_28px(overrides, recipe):
    model = _dcgan(*overrides)
    assert isinstance(model.generator.layers[-1], L.Conv2DTranspose) is not recipe
    assert model.config.recipe_layout is recipe


def test_unknown_architecture_is_a_usage_error():
    with pytest.raises(UsageError, match="architecture must be one of auto, paper, recipe"):
        _dcgan("architecture=wide")


def test_runs_saved_before_the_field_keep_the_paper_layout():
    from zoo.core.config import config_from_dict, config_to_dict

    values = config_to_dict(registry.get("dcgan").config_class(image_size=28, architecture="auto"))
    del values["architecture"]
    old = config_from_dict(registry.get("dcgan").config_class, values)
    assert old.architecture == "paper" and not old.recipe_layout


# Fingerprints of the trunk's old path (weights count of G and D, sum and sum of |x| of G's
# images for 4 samples of seed 0, weights from keras seed 0), taken before the recipe layout
# was added: the families sharing the trunk, and DCGAN away from 28 px, are unchanged.
OLD_TRUNK = [
    ("dcgan", ("image_size=28", "architecture=paper"), 80672, 3024, 1.19576144, 3.95703769),
    ("dcgan", ("image_size=64", "architecture=auto"), 146016, 44608, -0.068061836, 0.49430054),
    ("cgan", ("image_size=28", "num_classes=10"), 84280, 11034, -0.3815837502479553, 3.8110175),
    (
        "cgan",
        ("image_size=28", "num_classes=10", "conditioning=concat"),
        84280,
        4304,
        -0.3815837502479553,
        3.8110175132751465,
    ),
]


@pytest.mark.parametrize("name, overrides, g_params, d_params, total, magnitude", OLD_TRUNK)
def test_trunk_old_path_unchanged(name, overrides, g_params, d_params, total, magnitude):
    from tests.families import TINY

    family = registry.get(name)
    config = apply_overrides(family.config_class(), [*TINY[name][1], *overrides])
    keras.utils.set_random_seed(0)
    model = family.build_model(config, seed=0)
    images = np.asarray(model.generate(model.sample_inputs(4, seed=0)))
    assert model.generator.count_params() == g_params
    assert model.discriminator.count_params() == d_params
    assert float(np.sum(images)) == pytest.approx(total, rel=1e-4, abs=1e-5)
    assert float(np.sum(np.abs(images))) == pytest.approx(magnitude, rel=1e-5)


@pytest.mark.parametrize("dataset", ["fashion_mnist", "mnist"])
def test_idx_datasets_get_the_measured_28px_recipe(dataset):
    config = registry.get("dcgan").default_config(dataset)
    assert (config.image_size, config.channels, config.recipe_layout) == (28, 1, True)
    assert config.g_learning_rate == config.d_learning_rate == pytest.approx(1.6e-3)
    assert (config.r1_gamma, config.r1_interval, config.ema_decay) == (0.1, 16, 0.99)
    assert (config.beta_1, config.beta_2) == (0.0, 0.99)
    model = registry.get("dcgan").build_model(config, seed=0)
    model.compile(train_steps=10)
    assert float(model.d_optimizer.inner_optimizer.learning_rate) == pytest.approx(1.6e-3)
    assert model.ema is not None and "r1_penalty" in model.trackers


@pytest.mark.parametrize("dataset", ["celeb_a", "folder:/data/faces"])
def test_other_datasets_keep_the_papers_64px_recipe(dataset):
    config = registry.get("dcgan").default_config(dataset)
    assert (config.image_size, config.g_learning_rate, config.r1_gamma) == (64, 2e-4, 0.0)
    assert config.ema_decay == 0.0


def test_a_run_saved_before_the_recipe_restores_with_its_own_settings():
    from zoo.core.config import config_from_dict, config_to_dict

    family = registry.get("dcgan")
    values = config_to_dict(family.config_class(image_size=28))  # an old 28 px default run
    del values["r1_interval"]
    old = config_from_dict(family.config_class, values)
    assert (old.g_learning_rate, old.r1_gamma, old.r1_interval, old.ema_decay) == (
        2e-4,
        0.0,
        1,
        0.0,
    )
