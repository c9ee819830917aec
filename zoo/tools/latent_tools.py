"""Latent interpolation and vector arithmetic on a trained or exported generator (DCGAN §6)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zoo.core import latent
from zoo.core.images import image_grid
from zoo.errors import UsageError

Generator = Callable[[np.ndarray], np.ndarray]


def interpolation_grid(
    generate: Generator,
    latent_dim: int,
    *,
    rows: int = 8,
    steps: int = 10,
    method: str = "spherical",
    seed: int = 0,
) -> np.ndarray:
    """A picture of `rows` walks of `steps` images between pairs of random z."""
    if method not in latent.METHODS:
        raise UsageError(f"unknown interpolation {method!r}; known: {', '.join(latent.METHODS)}")
    if rows < 1 or steps < 2:
        raise UsageError("interpolation needs rows >= 1 and steps >= 2")
    ends = latent.sample_z(2 * rows, latent_dim, seed)
    walks = [latent.interpolate(ends[2 * r], ends[2 * r + 1], steps, method) for r in range(rows)]
    images = np.asarray(generate(np.concatenate(walks)))
    return image_grid(images, columns=steps)


def parse_indices(text: str, num: int, what: str) -> list[int]:
    """'3,17,22' -> [3, 17, 22], each in [0, num)."""
    try:
        indices = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise UsageError(f"--{what} expects comma-separated sample numbers, got {text!r}") from err
    if not indices or any(i < 0 or i >= num for i in indices):
        raise UsageError(f"--{what} needs sample numbers in [0, {num}), got {text!r}")
    return indices


def arithmetic_grid(
    generate: Generator,
    latent_dim: int,
    a: list[int],
    b: list[int],
    c: list[int],
    *,
    num: int = 64,
    seed: int = 0,
    variations: int = 5,
    noise: float = 0.25,
) -> np.ndarray:
    """mean z(A) − mean z(B) + mean z(C), decoded, beside the three concept means.

    Sample numbers refer to `sample_z(num, latent_dim, seed)`, the samples that `samples_grid`
    shows numbered. The result is shown with `variations` − 1 neighbours (z + noise·ε), as the
    DCGAN paper shows several decodings of one arithmetic result.
    """
    zs = latent.sample_z(num, latent_dim, seed)
    means = [latent.concept_vector(zs[idx]) for idx in (a, b, c)]
    result = latent.latent_arithmetic(zs[a], zs[b], zs[c])
    rng = np.random.default_rng(seed + 1)
    around = result + noise * rng.standard_normal((variations - 1, latent_dim)).astype("float32")
    row = np.concatenate([np.stack(means), result[None], around])
    return image_grid(np.asarray(generate(row)), columns=len(row))


def samples_grid(
    generate: Generator, latent_dim: int, *, num: int = 64, seed: int = 0
) -> np.ndarray:
    """The numbered samples (row-major, from 0) that `arithmetic_grid` indices refer to."""
    return image_grid(np.asarray(generate(latent.sample_z(num, latent_dim, seed))))
