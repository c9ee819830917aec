"""Latent-space helpers: draw z, walk between two z, and do vector arithmetic on concepts.

Plain numpy, so they feed an exported generator (`zoo.load_generator`), a phone app's test
harness or a model in training alike. `sample_z(num, d, seed)` draws exactly the z that
`GAN.sample_inputs(num, seed)` gives a family with `latent_dim = d`.

Reference: Radford, Metz & Chintala (2016), "Unsupervised Representation Learning with Deep
Convolutional GANs" (interpolation, vector arithmetic); White (2016), "Sampling Generative
Networks" (spherical interpolation for Gaussian latents).
"""

from __future__ import annotations

import numpy as np

METHODS = ("linear", "spherical")


def sample_z(num: int, latent_dim: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Draws `num` latent vectors z ~ N(0, I) as float32 [num, latent_dim], repeatable by seed
    (or drawn from a numpy `Generator`, which then goes on to draw more)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((num, latent_dim)).astype("float32")


def _as_t(t: float | np.ndarray) -> np.ndarray:
    """`t` with a trailing axis, so it broadcasts as one value per vector."""
    return np.asarray(t, dtype=np.float64)[..., None] if np.ndim(t) else np.float64(t)


def lerp(z0: np.ndarray, z1: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Linear interpolation (1 - t) z0 + t z1 over the last axis; exact at t = 0 and t = 1.

    Args:
      z0, z1: vectors of shape [..., d].
      t: a scalar, or one value per vector (shape broadcastable to `z0.shape[:-1]`).
    """
    z0 = np.asarray(z0, dtype=np.float64)
    z1 = np.asarray(z1, dtype=np.float64)
    t = _as_t(t)
    return ((1.0 - t) * z0 + t * z1).astype("float32")


def slerp(z0: np.ndarray, z1: np.ndarray, t: float | np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Spherical interpolation along the great circle from z0 to z1; exact at t = 0 and t = 1.

    For Gaussian z of high dimension nearly all mass sits near a sphere, and linear paths cut
    through its low-density inside; the spherical path stays at the endpoints' norm (for
    endpoints of equal norm). Where z0 and z1 are parallel or opposite (the circle is not
    defined) it falls back to `lerp`.

    Args:
      z0, z1: vectors of shape [..., d].
      t: a scalar, or one value per vector.
      eps: below this sin(angle) the vectors count as parallel.
    """
    z0 = np.asarray(z0, dtype=np.float64)
    z1 = np.asarray(z1, dtype=np.float64)
    t = _as_t(t)
    n0 = np.linalg.norm(z0, axis=-1, keepdims=True)
    n1 = np.linalg.norm(z1, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.sum(z0 * z1, axis=-1, keepdims=True) / (n0 * n1)
    cos = np.clip(np.nan_to_num(cos, nan=1.0), -1.0, 1.0)
    omega = np.arccos(cos)
    sin = np.sin(omega)
    parallel = np.abs(sin) < eps
    safe = np.where(parallel, 1.0, sin)
    spherical = (np.sin((1.0 - t) * omega) / safe) * z0 + (np.sin(t * omega) / safe) * z1
    linear = (1.0 - t) * z0 + t * z1
    return np.where(parallel, linear, spherical).astype("float32")


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, method: str = "linear") -> np.ndarray:
    """`steps` points from z0 to z1 inclusive, evenly spaced in t.

    Args:
      z0, z1: vectors of shape [d] (or [n, d] for n walks at once).
      steps: number of points (>= 2).
      method: `linear` (`lerp`) or `spherical` (`slerp`).

    Returns:
      float32 [steps, d] (or [n, steps, d]); the first point is z0 and the last z1, exactly.
    """
    if method not in METHODS:
        raise ValueError(f"unknown interpolation {method!r}; known: {', '.join(METHODS)}")
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    z0 = np.asarray(z0, dtype=np.float64)[..., None, :]
    z1 = np.asarray(z1, dtype=np.float64)[..., None, :]
    t = np.linspace(0.0, 1.0, steps)
    walk = lerp if method == "linear" else slerp
    return walk(z0, z1, t)


def concept_vector(zs: np.ndarray) -> np.ndarray:
    """The mean z of a few samples showing one concept (DCGAN averages three), float32 [d]."""
    zs = np.asarray(zs, dtype=np.float64)
    if zs.ndim != 2 or not len(zs):
        raise ValueError(f"expected a non-empty [n, d] array of z, got shape {zs.shape}")
    return zs.mean(axis=0).astype("float32")


def latent_arithmetic(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """mean(a) - mean(b) + mean(c): e.g. smiling woman - neutral woman + neutral man.

    Each argument is [n, d] (the z of samples showing one concept) or one z [d].
    """
    vectors = [concept_vector(np.atleast_2d(v)) for v in (a, b, c)]
    return (vectors[0] - vectors[1] + vectors[2]).astype("float32")
