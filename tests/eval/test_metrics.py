"""Known-answer tests of `zoo.eval.metrics` (references computed independently with numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.data import toy_modes
from zoo.data.toys import toy_dataset
from zoo.errors import UsageError
from zoo.eval import metrics


def gaussian(n: int, mean, std, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return mean + std * rng.standard_normal((n, len(mean)))


# -- Fréchet distance -------------------------------------------------------------------------
def test_fd_of_identical_sets_is_zero():
    a = gaussian(500, np.zeros(8), np.ones(8), seed=0)
    assert metrics.frechet_distance_from_activations(a, a) == pytest.approx(0.0, abs=1e-8)


def test_fd_of_diagonal_gaussians_matches_the_closed_form():
    # With diagonal covariances, tr((Σ1 Σ2)^½) = Σ_i s1_i s2_i, so the closed form is
    # ‖μ1 − μ2‖² + Σ_i (s1_i − s2_i)²; computed here from the samples' own moments.
    a = gaussian(4000, np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 2.0]), seed=1)
    b = gaussian(4000, np.array([3.0, 1.0, 0.0]), np.array([2.0, 0.5, 1.0]), seed=2)
    # Decorrelate the samples exactly so the sample covariances are diagonal.
    a = whiten_to(a, np.array([1.0, 0.5, 2.0]), np.array([0.0, 1.0, -2.0]))
    b = whiten_to(b, np.array([2.0, 0.5, 1.0]), np.array([3.0, 1.0, 0.0]))
    expected = (3.0**2 + 0 + 2.0**2) + (1.0 - 2.0) ** 2 + 0 + (2.0 - 1.0) ** 2
    assert metrics.frechet_distance_from_activations(a, b) == pytest.approx(expected, rel=1e-9)


def whiten_to(x: np.ndarray, std: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """x with sample mean `mean` and sample covariance exactly diag(std²) (ddof=1)."""
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred / (len(x) - 1)
    w, v = np.linalg.eigh(cov)
    white = centred @ v @ np.diag(w**-0.5) @ v.T
    return white * std + mean


def test_fd_matches_a_reference_with_full_covariances():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((300, 4)) @ rng.standard_normal((4, 4)) + 1.0
    b = rng.standard_normal((200, 4)) @ rng.standard_normal((4, 4))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Reference: square root of the (non-symmetric) product from its eigendecomposition.
    w, v = np.linalg.eig(s1 @ s2)
    root = (v * np.sqrt(w.astype(complex))) @ np.linalg.inv(v)
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s1 + s2 - 2 * root.real)
    assert metrics.frechet_distance_from_activations(a, b) == pytest.approx(expected, rel=1e-8)


def test_fd_is_symmetric_and_handles_rank_deficient_covariances():
    rng = np.random.default_rng(4)
    a = np.concatenate([rng.standard_normal((50, 2)), np.zeros((50, 3))], axis=1)  # rank 2
    b = rng.standard_normal((60, 5))
    ab = metrics.frechet_distance_from_activations(a, b)
    assert np.isfinite(ab) and ab > 0
    assert ab == pytest.approx(metrics.frechet_distance_from_activations(b, a), rel=1e-6)


def test_fd_rejects_bad_shapes():
    with pytest.raises(UsageError, match="width"):
        metrics.frechet_distance_from_activations(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(UsageError, match="at least 2"):
        metrics.frechet_distance_from_activations(np.zeros((1, 2)), np.zeros((5, 2)))


# -- KID --------------------------------------------------------------------------------------
def test_mmd_matches_a_loop_reference():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((6, 3)) + 0.5

    def k(u, v):
        return (u @ v / 3 + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(6) for j in range(6) if i != j) / (6 * 5)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(6)) / (7 * 6)
    assert metrics.unbiased_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_of_identical_distributions_is_near_zero_and_shift_is_positive():
    a = gaussian(1000, np.zeros(16), np.ones(16), seed=6)
    same = gaussian(1000, np.zeros(16), np.ones(16), seed=7)
    shifted = gaussian(1000, np.full(16, 0.5), np.ones(16), seed=8)
    kid, kid_std = metrics.kernel_inception_distance_from_activations(
        a, same, num_subsets=20, subset_size=500
    )
    assert abs(kid) < 3e-3 and kid_std >= 0
    kid_shift, _ = metrics.kernel_inception_distance_from_activations(
        a, shifted, num_subsets=20, subset_size=500
    )
    assert kid_shift > 100 * abs(kid)
    # The same set twice: overlapping subsets share points, so the estimate is a little
    # negative (see the exact value below), still tiny beside a real shift.
    self_kid, _ = metrics.kernel_inception_distance_from_activations(
        a, a, num_subsets=20, subset_size=500
    )
    assert -0.03 < self_kid <= 0 and abs(self_kid) < 0.03 * kid_shift


def test_kid_of_a_whole_set_against_itself_has_the_exact_small_negative_value():
    # Both subsets are the whole set: MMD² = −2/(n−1)·(mean of diag k − mean of all k).
    a = gaussian(50, np.zeros(4), np.ones(4), seed=18)
    k = metrics.polynomial_kernel(a, a)
    expected = -2 / 49 * (np.mean(np.diag(k)) - np.mean(k))
    kid, std = metrics.kernel_inception_distance_from_activations(a, a, 3, 1000)
    assert kid == pytest.approx(expected, rel=1e-9) and std == pytest.approx(0, abs=1e-12)


def test_kid_is_unbiased():
    # Many small independent draws from one distribution: the unbiased estimates average to
    # zero, while the biased (V-statistic) estimate stays clearly positive.
    rng = np.random.default_rng(9)
    unbiased, biased = [], []
    for _ in range(400):
        x, y = rng.standard_normal((10, 2)), rng.standard_normal((10, 2))
        unbiased.append(metrics.unbiased_mmd2(x, y))
        kxx, kyy = metrics.polynomial_kernel(x, x), metrics.polynomial_kernel(y, y)
        biased.append(kxx.mean() + kyy.mean() - 2 * metrics.polynomial_kernel(x, y).mean())
    standard_error = np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3 * standard_error
    assert np.mean(biased) > 10 * standard_error


def test_kid_subsets_are_repeatable_by_seed():
    a, b = gaussian(300, np.zeros(4), np.ones(4), 10), gaussian(300, np.ones(4), np.ones(4), 11)
    first = metrics.kernel_inception_distance_from_activations(a, b, 5, 100, seed=1)
    assert first == metrics.kernel_inception_distance_from_activations(a, b, 5, 100, seed=1)
    assert first != metrics.kernel_inception_distance_from_activations(a, b, 5, 100, seed=2)


# -- Inception Score --------------------------------------------------------------------------
def test_inception_score_of_uniform_predictions_is_one():
    mean, std = metrics.inception_score_from_probabilities(np.full((100, 10), 0.1), splits=5)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0)


def test_inception_score_of_confident_balanced_predictions_is_k():
    p = np.eye(10)[np.arange(200) % 10]
    mean, std = metrics.inception_score_from_probabilities(p, splits=4)
    assert mean == pytest.approx(10.0) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_of_one_class_is_one_and_matches_a_reference():
    assert metrics.inception_score_from_probabilities(np.eye(5)[[2] * 40], 2)[0] == (
        pytest.approx(1.0)
    )
    rng = np.random.default_rng(12)
    p = rng.dirichlet(np.ones(4) * 0.3, size=60)
    py = p.mean(0)
    expected = np.exp(np.mean(np.sum(p * (np.log(p) - np.log(py)), axis=1)))
    assert metrics.inception_score_from_probabilities(p, 1)[0] == pytest.approx(expected)


# -- precision / recall -----------------------------------------------------------------------
def test_precision_recall_on_hand_made_points():
    # Real: 4 points 1 apart; with k=1 every ball has radius 1, so the real manifold is
    # [-1, 4]. Fake: 0 and 0.5 (balls of radius 0.5), 10 and 11 (radius 1).
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.0], [0.5], [10.0], [11.0]])
    result = metrics.precision_recall_knn(real, fake, k=1)
    assert result["precision"] == pytest.approx(0.5)  # 0 and 0.5 inside, 10 and 11 not
    # Reals inside the fake manifold [-0.5, 1] ∪ [9, 12]: 0 and 1.
    assert result["recall"] == pytest.approx(0.5)


def test_precision_recall_of_identical_and_disjoint_sets():
    a = gaussian(200, np.zeros(3), np.ones(3), 13)
    assert metrics.precision_recall_knn(a, a, k=3) == {"precision": 1.0, "recall": 1.0}
    far = metrics.precision_recall_knn(a, a + 100.0, k=3)
    assert far == {"precision": 0.0, "recall": 0.0}


def test_precision_recall_of_a_collapsed_generator():
    # All fakes sit on one real point: precise but with almost no recall.
    real = gaussian(300, np.zeros(2), np.ones(2), 14)
    fake = real[:1] + 1e-3 * gaussian(300, np.zeros(2), np.ones(2), 15)
    result = metrics.precision_recall_knn(real, fake, k=3)
    assert result["precision"] == 1.0 and result["recall"] < 0.05


def test_precision_recall_blocks_match_one_block(monkeypatch):
    real = gaussian(130, np.zeros(2), np.ones(2), 16)
    fake = gaussian(110, np.full(2, 0.5), np.ones(2), 17)
    whole = metrics.precision_recall_knn(real, fake, k=3)
    monkeypatch.setattr(metrics, "_DISTANCE_BLOCK", 7)
    assert metrics.precision_recall_knn(real, fake, k=3) == whole


# -- accuracies and cycle error ---------------------------------------------------------------
def test_class_accuracy_with_probabilities_and_logits():
    logits = np.array([[2.0, -1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    labels = np.array([0, 1, 0, 0])
    assert metrics.class_accuracy(logits, labels) == 0.75
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert metrics.class_accuracy(probabilities, labels) == 0.75
    with pytest.raises(UsageError, match="labels"):
        metrics.class_accuracy(logits, labels[:2])


def test_translation_accuracy_and_cycle_error():
    p = np.array([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6]])
    assert metrics.translation_accuracy(p, 1) == pytest.approx(2 / 3)
    assert metrics.translation_accuracy(p, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    x = np.zeros((2, 4, 4, 1))
    assert metrics.cycle_error(x, x) == 0.0
    assert metrics.cycle_error(x, x + 0.5) == pytest.approx(0.5)
    assert metrics.cycle_error(x, np.concatenate([x[:1], x[1:] - 1.0])) == pytest.approx(0.5)
    with pytest.raises(UsageError, match="shapes"):
        metrics.cycle_error(x, x[:1])


# -- toys -------------------------------------------------------------------------------------
def toy_samples(name: str, n: int) -> np.ndarray:
    ds = toy_dataset(name, batch_size=n, seed=0, start_step=0, with_labels=False)
    return next(iter(ds)).numpy()


@pytest.mark.parametrize("name, modes", [("ring8", 8), ("grid25", 25)])
def test_toy_metrics_of_exact_samples(name, modes):
    centres, std = toy_modes(name)
    result = metrics.toy_mode_metrics(toy_samples(name, 10000), centres, std)
    assert result["modes_covered"] == modes
    # P(‖n‖ <= 3σ) for a 2-D Gaussian is 1 − exp(−4.5) = 0.989.
    assert result["high_quality_fraction"] == pytest.approx(1 - np.exp(-4.5), abs=0.005)


def test_toy_metrics_of_a_collapsed_generator():
    centres, std = toy_modes("ring8")
    collapsed = centres[3] + std * np.random.default_rng(0).standard_normal((1000, 2))
    result = metrics.toy_mode_metrics(collapsed, centres, std)
    assert result["modes_covered"] == 1
    assert result["high_quality_fraction"] > 0.97


def test_toy_metrics_count_only_high_quality_samples_and_the_1_percent_rule():
    centres, std = toy_modes("ring8")
    # 95 points on mode 0, 5 far off between modes, 1 point on mode 1 (1% of 101 is 1.01).
    points = np.concatenate([np.repeat(centres[:1], 95, 0), np.zeros((5, 2)), centres[1:2]])
    result = metrics.toy_mode_metrics(points, centres, std)
    assert result == {"modes_covered": 1, "high_quality_fraction": pytest.approx(96 / 101)}
    points = np.concatenate([np.repeat(centres[:1], 98, 0), np.repeat(centres[1:2], 2, 0)])
    assert metrics.toy_mode_metrics(points, centres, std)["modes_covered"] == 2


def test_toy_metrics_in_one_dimension():
    centres, std = toy_modes("gaussian1d")
    samples = 4.0 + 0.5 * np.random.default_rng(0).standard_normal(5000)
    result = metrics.toy_mode_metrics(samples, centres, std)
    assert result["modes_covered"] == 1
    assert result["high_quality_fraction"] == pytest.approx(0.9973, abs=0.004)
