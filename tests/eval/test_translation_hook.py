"""CycleGAN's task `evaluate` hook: both directions, real test images, capped counts."""

from __future__ import annotations

import numpy as np
import pytest

from zoo import registry
from zoo.eval.evaluate import Evaluator
from zoo.models.cyclegan import CycleGAN, CycleGANConfig
from zoo.run import RunConfig


def test_identity_translators_score_zero_cycle_error_and_the_source_class(zoo_cache):
    config = CycleGANConfig(
        image_size=28, channels=1, generator_filters=4, discriminator_filters=4, residual_blocks=1
    )
    model = CycleGAN(config)
    seen = {"a_to_b": 0, "b_to_a": 0}

    def identity(name):
        def translate(images, training=False):
            assert not training
            seen[name] += len(images)
            return images

        return translate

    model.generator_ab, model.generator_ba = identity("a_to_b"), identity("b_to_a")
    rc = RunConfig(model="cyclegan", dataset="fashion_mnist", domain_a="sandal", domain_b="sneaker")
    result = registry.get("cyclegan").evaluate(model, Evaluator(rc), 5000, seed=0)  # the hook

    assert set(result) == {
        f"{d}_{k}"
        for d in ("a_to_b", "b_to_a")
        for k in ("cycle_error", "fd", "translation_accuracy")
    }
    # Capped at the 1000 test images per class; each generator translates and cycles both.
    assert seen == {"a_to_b": 2000, "b_to_a": 2000}
    assert result["a_to_b_cycle_error"] == result["b_to_a_cycle_error"] == 0.0
    # Untranslated sandals are rarely called sneakers (and vice versa).
    assert result["a_to_b_translation_accuracy"] < 0.5
    assert result["b_to_a_translation_accuracy"] < 0.5
    assert result["a_to_b_fd"] > 0 and result["b_to_a_fd"] > 0
    assert result["a_to_b_fd"] == pytest.approx(result["b_to_a_fd"], rel=1e-3)  # symmetric
    assert np.isfinite(list(result.values())).all()
