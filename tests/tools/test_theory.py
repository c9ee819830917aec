"""The theory lab: closed forms on Gaussians and the trained discriminator against D*."""

import math

import numpy as np
import pytest

from zoo.tools import theory


def test_js_is_zero_for_equal_and_log2_for_disjoint_densities():
    same = theory.Gaussian(0.0, 1.0)
    assert theory.jensen_shannon(same, same) == pytest.approx(0.0, abs=1e-9)
    far = theory.Gaussian(100.0, 1.0)
    assert theory.jensen_shannon(same, far) == pytest.approx(math.log(2.0), abs=1e-6)


def test_value_of_optimal_d_is_minus_log4_plus_2js():
    p_data, p_g = theory.Gaussian(0.0, 1.0), theory.Gaussian(1.5, 0.7)
    optimal = theory.value(lambda x: theory.optimal_discriminator(x, p_data, p_g), p_data, p_g)
    expected = -math.log(4.0) + 2.0 * theory.jensen_shannon(p_data, p_g)
    assert optimal == pytest.approx(expected, abs=1e-6)
    # D* maximises V: a constant 1/2 or a slightly wrong D scores less.
    assert theory.value(lambda x: np.full_like(x, 0.5), p_data, p_g) == pytest.approx(
        -math.log(4.0)
    )
    assert theory.value(lambda x: np.full_like(x, 0.5), p_data, p_g) < optimal
    shifted = theory.Gaussian(1.3, 0.7)
    wrong = theory.value(lambda x: theory.optimal_discriminator(x, p_data, shifted), p_data, p_g)
    assert wrong < optimal


@pytest.mark.slow
def test_theory_lab_reports_a_trained_d_close_to_the_optimum():
    report, picture = theory.theory_lab(
        theory.Gaussian(0.0, 1.0), theory.Gaussian(1.5, 0.7), steps=600, seed=0
    )
    assert report["max_abs_error_d_vs_optimal"] < 0.1
    assert report["value_optimal_d"] == pytest.approx(report["minus_log4_plus_2js"], abs=1e-6)
    # A trained D cannot beat the optimum, and gets close to it.
    assert report["value_learned_d"] <= report["value_optimal_d"] + 1e-6
    assert report["value_learned_d"] > report["value_optimal_d"] - 0.02
    assert picture.shape == (400, 640, 3) and (picture != 255).any()
