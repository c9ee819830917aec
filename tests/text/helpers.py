"""A tiny captioned image set the text tests pretrain on."""

from __future__ import annotations

import numpy as np


def shapes_dataset(count: int = 240, seed: int = 0):
    """Three shapes (the class), dark or light; captions name both, with synonyms."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    light = rng.integers(0, 2, count).astype(bool)
    images = np.zeros((count, 16, 16, 1), np.uint8)
    names = [("stripes", "bars"), ("columns", "pillars"), ("square", "block")]
    captions = []
    for i in range(count):
        value = 230 if light[i] else 90
        if labels[i] == 0:
            images[i, ::4] = value
        elif labels[i] == 1:
            images[i, :, ::4] = value
        else:
            images[i, 5:11, 5:11] = value
        tone = "light" if light[i] else "dark"
        name, synonym = names[labels[i]]
        captions.append(
            [f"a {tone} {name}", f"{synonym}, {tone}!", f"The {name.upper()} is {tone}"]
        )
    return images, np.array(captions), labels
