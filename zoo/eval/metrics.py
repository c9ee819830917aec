"""GAN metrics as pure numpy functions of activations, probabilities or samples.

Every function takes arrays that some feature network (or the generator itself) produced
and knows nothing of the network, in the style of TF-GAN's `*_from_activations`. All
arithmetic is in float64; the results are Python floats (or dicts of them).
"""

from __future__ import annotations

import numpy as np

from zoo.errors import UsageError

# Rows of the pairwise-distance matrix computed at once (bounds memory to ~rows * N * 8 bytes).
_DISTANCE_BLOCK = 1024


def _as_matrix(x: np.ndarray, name: str, min_rows: int = 1) -> np.ndarray:
    """A [N, D] float64 copy of `x`; [N] is read as N one-dimensional points."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise UsageError(f"{name} must be [N, D] activations, got shape {x.shape}")
    if len(x) < min_rows:
        raise UsageError(f"{name} needs at least {min_rows} rows, got {len(x)}")
    return x


def _same_width(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise UsageError(f"activations differ in width: {a.shape[1]} vs {b.shape[1]}")


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues,
    rounding errors, are clamped to zero)."""
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """tr((Σa Σb)^½) for covariance matrices Σa, Σb.

    Σa Σb is not symmetric, but it is similar to the symmetric PSD matrix
    sqrt(Σa) Σb sqrt(Σa), which has the same eigenvalues; taking the eigenvalues of that one
    avoids the complex results of a general matrix square root.
    """
    root_a = _symmetric_sqrt(sigma_a)
    product = root_a @ sigma_b @ root_a
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2)
    return float(np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None))))


def frechet_distance_from_activations(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of activations (FID when the
    activations are InceptionV3 pool features).

    FD = ‖μa − μb‖² + tr(Σa + Σb − 2 (Σa Σb)^½), with unbiased (N − 1) covariances.

    Args:
      a: activations [N, D] of one set (e.g. real images).
      b: activations [M, D] of the other (e.g. generated images).

    Returns:
      The distance (>= 0; a rounding-error negative is returned as 0).

    Raises:
      UsageError: fewer than 2 rows, or different widths.

    Reference:
      Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
      Equilibrium", NeurIPS 2017. Dowson & Landau, "The Fréchet distance between
      multivariate normal distributions", 1982.
    """
    a = _as_matrix(a, "a", 2)
    b = _as_matrix(b, "b", 2)
    _same_width(a, b)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    sigma_a = np.atleast_2d(np.cov(a, rowvar=False))
    sigma_b = np.atleast_2d(np.cov(b, rowvar=False))
    distance = (
        np.sum((mu_a - mu_b) ** 2)
        + np.trace(sigma_a)
        + np.trace(sigma_b)
        - 2.0 * trace_sqrt_product(sigma_a, sigma_b)
    )
    return max(float(distance), 0.0)


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x·y / d + 1)³, the kernel of KID, for all pairs of rows."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased estimate of MMD² under `polynomial_kernel` (diagonals of k(x, x) and k(y, y)
    left out); needs at least 2 rows in each set."""
    m, n = len(x), len(y)
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    term_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    term_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(term_xx + term_yy - 2.0 * k_xy.mean())


def kernel_inception_distance_from_activations(
    a: np.ndarray,
    b: np.ndarray,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance: the unbiased MMD² with the kernel (x·y/d + 1)³, averaged
    over random subsets.

    Each of `num_subsets` draws takes `min(subset_size, N, M)` rows of each set without
    replacement. The estimate is unbiased, so it can be slightly negative when the two sets
    come from the same distribution.

    Args:
      a: activations [N, D].
      b: activations [M, D].
      num_subsets: number of subset pairs.
      subset_size: rows per subset (at most the smaller set's size is used).
      seed: seed of the subset draws.

    Returns:
      (mean, standard deviation) of the subsets' estimates.

    Raises:
      UsageError: fewer than 2 rows, different widths, or num_subsets < 1.

    Reference:
      Bińkowski et al., "Demystifying MMD GANs", ICLR 2018.
    """
    a = _as_matrix(a, "a", 2)
    b = _as_matrix(b, "b", 2)
    _same_width(a, b)
    if num_subsets < 1 or subset_size < 2:
        raise UsageError(
            f"need num_subsets >= 1 and subset_size >= 2, got {num_subsets}, {subset_size}"
        )
    size = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    estimates = [
        unbiased_mmd2(
            a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)]
        )
        for _ in range(num_subsets)
    ]
    return float(np.mean(estimates)), float(np.std(estimates))


def inception_score_from_probabilities(
    probabilities: np.ndarray, splits: int = 10
) -> tuple[float, float]:
    """Inception-Score-style score exp(E_x KL(p(y|x) ‖ p(y))) of class probabilities.

    p(y) is the mean of p(y|x) within each split; the score ranges from 1 (every sample gets
    the same prediction) to K (confident predictions, spread evenly over K classes).

    Args:
      probabilities: class probabilities [N, K] (rows sum to 1).
      splits: number of equal parts the score is computed on.

    Returns:
      (mean, standard deviation) over the splits.

    Raises:
      UsageError: not [N, K], negative values, or fewer rows than splits.

    Reference:
      Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016.
    """
    p = _as_matrix(probabilities, "probabilities", max(splits, 1))
    if splits < 1:
        raise UsageError(f"splits must be >= 1, got {splits}")
    if np.any(p < 0):
        raise UsageError("probabilities must be non-negative")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        ratio = np.divide(part, marginal, out=np.ones_like(part), where=part > 0)
        kl = np.sum(part * np.log(ratio), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def pairwise_squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """‖x_i − y_j‖² for all pairs of rows, [len(x), len(y)] (clamped at 0)."""
    sq = np.sum(x**2, axis=1)[:, None] + np.sum(y**2, axis=1)[None, :] - 2.0 * x @ y.T
    return np.maximum(sq, 0.0)


def _knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each row of x to its k-th nearest other row."""
    radii = np.empty(len(x))
    for start in range(0, len(x), _DISTANCE_BLOCK):
        block = pairwise_squared_distances(x[start : start + _DISTANCE_BLOCK], x)
        # Index 0 of each sorted row is the point itself (distance 0).
        radii[start : start + len(block)] = np.partition(block, k, axis=1)[:, k]
    return radii


def _inside_manifold(points: np.ndarray, support: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Whether each point lies in some ball B(support_j, radius_j)."""
    inside = np.empty(len(points), bool)
    for start in range(0, len(points), _DISTANCE_BLOCK):
        block = pairwise_squared_distances(points[start : start + _DISTANCE_BLOCK], support)
        inside[start : start + len(block)] = np.any(block <= radii[None, :], axis=1)
    return inside


def precision_recall_knn(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float]:
    """Improved precision and recall with k-nearest-neighbour manifolds.

    Each set's manifold is the union of balls around its points, each ball reaching the
    point's k-th nearest neighbour within the set. Precision is the fraction of fake points
    inside the real manifold (quality); recall is the fraction of real points inside the fake
    manifold (coverage).

    Args:
      real: activations [N, D] of real data.
      fake: activations [M, D] of generated data.
      k: neighbour that sets each ball's radius.

    Returns:
      {"precision": float, "recall": float}.

    Raises:
      UsageError: k < 1, a set with k points or fewer, or different widths.

    Reference:
      Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing Generative
      Models", NeurIPS 2019.
    """
    if k < 1:
        raise UsageError(f"k must be >= 1, got {k}")
    real = _as_matrix(real, "real", k + 1)
    fake = _as_matrix(fake, "fake", k + 1)
    _same_width(real, fake)
    precision = _inside_manifold(fake, real, _knn_radii(real, k)).mean()
    recall = _inside_manifold(real, fake, _knn_radii(fake, k)).mean()
    return {"precision": float(precision), "recall": float(recall)}


def class_accuracy(probabilities_or_logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose most likely class is the label (e.g. a classifier's verdict on
    class-conditional samples, against the classes they were asked for).

    Args:
      probabilities_or_logits: [N, K] class scores (argmax is the same for both).
      labels: [N] integer classes.

    Returns:
      Accuracy in [0, 1].

    Raises:
      UsageError: shapes that do not match.
    """
    scores = _as_matrix(probabilities_or_logits, "probabilities_or_logits")
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(scores):
        raise UsageError(f"{len(scores)} predictions but {len(labels)} labels")
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def translation_accuracy(target_probabilities: np.ndarray, target_class: int | np.ndarray) -> float:
    """Fraction of translated images that a classifier assigns to the target domain's class.

    Args:
      target_probabilities: classifier scores [N, K] of the translated images.
      target_class: the class of the target domain, one int or [N] ints.

    Returns:
      Accuracy in [0, 1].

    Reference:
      Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
      Networks", ICCV 2017 (its FCN-score is the same idea with a segmentation network).
    """
    scores = _as_matrix(target_probabilities, "target_probabilities")
    labels = np.broadcast_to(np.asarray(target_class), (len(scores),))
    return class_accuracy(scores, labels)


def cycle_error(x: np.ndarray, reconstructed: np.ndarray) -> float:
    """Mean absolute error ‖F(G(x)) − x‖₁ / size between inputs and their round trips (the
    cycle-consistency loss of CycleGAN, as a metric).

    Raises:
      UsageError: shapes that differ.

    Reference:
      Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
      Networks", ICCV 2017.
    """
    x = np.asarray(x, np.float64)
    reconstructed = np.asarray(reconstructed, np.float64)
    if x.shape != reconstructed.shape:
        raise UsageError(f"shapes differ: {x.shape} vs {reconstructed.shape}")
    return float(np.mean(np.abs(x - reconstructed)))


def toy_mode_metrics(
    samples: np.ndarray, centres: np.ndarray, std: float, *, min_fraction: float = 0.01
) -> dict[str, float]:
    """Mode coverage and sample quality on a mixture of Gaussians with known centres.

    A sample is high quality if it lies within 3 standard deviations (Euclidean distance
    3·std) of some centre; a mode is covered if at least `min_fraction` of all samples are
    high-quality samples whose nearest centre is that mode.

    Args:
      samples: generated points [N, D] (or [N] for 1-D).
      centres: mode centres [M, D], e.g. `zoo.data.toy_modes(name)[0]`.
      std: per-coordinate standard deviation of each mode.
      min_fraction: share of samples a mode needs to count as covered.

    Returns:
      {"modes_covered": int, "high_quality_fraction": float}.

    Reference:
      Srivastava et al., "VEEGAN", NeurIPS 2017; Metz et al., "Unrolled Generative
      Adversarial Networks", ICLR 2017.
    """
    samples = _as_matrix(samples, "samples")
    centres = _as_matrix(centres, "centres")
    _same_width(samples, centres)
    distances = np.sqrt(pairwise_squared_distances(samples, centres))
    nearest = np.argmin(distances, axis=1)
    good = distances[np.arange(len(samples)), nearest] <= 3.0 * std
    counts = np.bincount(nearest[good], minlength=len(centres))
    return {
        "modes_covered": int(np.sum(counts >= min_fraction * len(samples))),
        "high_quality_fraction": float(np.mean(good)),
    }
