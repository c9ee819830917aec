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
    assert len(d_convs) == blocks + 1  # strided blocks + the last valid convolution to a logit


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
