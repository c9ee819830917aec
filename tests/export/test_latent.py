"""Latent helpers: sampling, linear and spherical interpolation, concept arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.core import latent


def test_sample_z_is_repeatable_standard_normal():
    z = latent.sample_z(4096, 16, seed=3)
    assert z.shape == (4096, 16) and z.dtype == np.float32
    np.testing.assert_array_equal(z, latent.sample_z(4096, 16, seed=3))
    assert not np.array_equal(z, latent.sample_z(4096, 16, seed=4))
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02


def test_sample_z_matches_the_models_sample_inputs():
    """The z an exported model is fed here is the z its training pictures used."""
    from zoo.core.gan import GAN

    class Stub:
        noise_dim = 8  # GAN.noise_dim: config.latent_dim but for StackGAN's ε

    expected = GAN.sample_inputs(Stub(), 5, seed=11)["z"]
    np.testing.assert_array_equal(latent.sample_z(5, 8, seed=11), expected)


@pytest.mark.parametrize("method", latent.METHODS)
def test_interpolation_endpoints_are_exact(method):
    z0, z1 = latent.sample_z(2, 32, seed=0)
    path = latent.interpolate(z0, z1, 7, method)
    assert path.shape == (7, 32) and path.dtype == np.float32
    np.testing.assert_array_equal(path[0], z0)
    np.testing.assert_array_equal(path[-1], z1)


def test_linear_interpolation_is_evenly_spaced():
    z0, z1 = np.zeros(3, np.float32), np.array([4.0, 0.0, -8.0], np.float32)
    np.testing.assert_allclose(latent.interpolate(z0, z1, 5)[:, 0], [0, 1, 2, 3, 4])
    np.testing.assert_allclose(latent.lerp(z0, z1, 0.25), [1.0, 0.0, -2.0])


def test_slerp_keeps_the_norm_of_unit_vectors_and_walks_evenly():
    z0, z1 = latent.sample_z(2, 64, seed=1)
    z0, z1 = z0 / np.linalg.norm(z0), z1 / np.linalg.norm(z1)
    path = latent.interpolate(z0, z1, 9, "spherical")
    np.testing.assert_allclose(np.linalg.norm(path, axis=-1), 1.0, atol=1e-6)
    # Equal angles between neighbours (constant speed along the great circle).
    angles = np.arccos(np.clip(np.sum(path[:-1] * path[1:], axis=-1), -1, 1))
    np.testing.assert_allclose(angles, angles[0], rtol=1e-4)
    # The midpoint of orthogonal unit vectors is their normalised sum.
    e0, e1 = np.eye(2, dtype=np.float32)
    np.testing.assert_allclose(latent.slerp(e0, e1, 0.5), [2**-0.5, 2**-0.5], atol=1e-7)


def test_slerp_of_parallel_vectors_falls_back_to_lerp():
    z = np.array([1.0, 2.0, 3.0], np.float32)
    for other in (z, 2 * z, np.zeros_like(z)):
        out = latent.slerp(z, other, 0.5)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, latent.lerp(z, other, 0.5), rtol=1e-6)


def test_batched_interpolation():
    z0, z1 = latent.sample_z(3, 10, seed=2), latent.sample_z(3, 10, seed=5)
    for method in latent.METHODS:
        paths = latent.interpolate(z0, z1, 4, method)
        assert paths.shape == (3, 4, 10)
        for i in range(3):
            np.testing.assert_allclose(paths[i], latent.interpolate(z0[i], z1[i], 4, method))


def test_interpolate_rejects_bad_arguments():
    z = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="cubic"):
        latent.interpolate(z, z, 3, "cubic")
    with pytest.raises(ValueError, match="steps"):
        latent.interpolate(z, z, 1)


def test_latent_arithmetic_averages_each_concept():
    a = np.array([[1.0, 0.0], [3.0, 0.0]], np.float32)  # mean (2, 0)
    b = np.array([[0.0, 1.0]], np.float32)
    c = np.array([0.0, 5.0], np.float32)  # a single z works too
    np.testing.assert_allclose(latent.concept_vector(a), [2.0, 0.0])
    np.testing.assert_allclose(latent.latent_arithmetic(a, b, c), [2.0, 4.0])
    with pytest.raises(ValueError):
        latent.concept_vector(np.zeros((0, 2)))
