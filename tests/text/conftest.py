"""The text encoder pretrained once per session on `tests.text.helpers.shapes_dataset`."""

from __future__ import annotations

import pytest

from tests.text.helpers import shapes_dataset
from zoo import text


@pytest.fixture(scope="session")
def pretrained():
    images, captions, labels = shapes_dataset()
    return text.pretrain_text_encoder(
        images,
        captions,
        labels,
        steps=150,
        batch_size=32,
        output_dim=32,
        max_length=8,
        seed=0,
        progress=False,
    )
