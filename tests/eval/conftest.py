"""A tiny Fashion-MNIST classifier, trained once per session in a temporary zoo cache."""

from __future__ import annotations

import os

import pytest

# Enough for accuracy well above chance in a few seconds; the real one trains on all 60000.
TINY_CLASSIFIER = {"epochs": 1, "max_examples": 1500, "verbose": 0}


@pytest.fixture(scope="session")
def zoo_cache(tmp_path_factory):
    """A `GANZOO_CACHE` holding a tiny fashion_mnist classifier (set for the whole session)."""
    from zoo.eval import classifier

    cache = str(tmp_path_factory.mktemp("ganzoo_cache"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANZOO_CACHE", cache)
        classifier.train_classifier("fashion_mnist", **TINY_CLASSIFIER)
        yield cache
    assert os.environ.get("GANZOO_CACHE") != cache
