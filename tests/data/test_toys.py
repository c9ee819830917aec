import numpy as np
import pytest

from zoo.data import make_dataset, toy_modes
from zoo.errors import UsageError


def take(dataset, n):
    return [b if isinstance(b, tuple) else b.numpy() for b in dataset.take(n)]


def test_toy_modes():
    ring, ring_std = toy_modes("ring8")
    assert ring.shape == (8, 2) and ring_std == 0.02
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 2.0, rtol=1e-6)
    grid, grid_std = toy_modes("grid25")
    assert grid.shape == (25, 2) and grid_std == 0.02
    assert {tuple(p) for p in grid.tolist()} == {
        (x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)
    }
    line, line_std = toy_modes("gaussian1d")
    assert line.tolist() == [[4.0]] and line_std == 0.5
    with pytest.raises(UsageError, match="unknown toy"):
        toy_modes("ring9")


def test_ring8_points_sit_on_the_ring_near_the_centres():
    dataset, info = make_dataset("ring8", batch_size=256, seed=3, with_labels=True)
    assert info.kind == "vector" and info.shape == (2,) and info.num_examples is None
    points, modes = next(iter(dataset))
    points, modes = points.numpy(), modes.numpy()
    assert points.shape == (256, 2) and points.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(points, axis=1), 2.0, atol=0.12)
    centres, std = toy_modes("ring8")
    dist = np.linalg.norm(points[:, None] - centres[None], axis=2)
    assert dist.min(axis=1).max() < 6 * std
    np.testing.assert_array_equal(dist.argmin(axis=1), modes)
    assert set(modes.tolist()) == set(range(8))
    assert abs(np.std(points - centres[modes]) - std) < 0.004


def test_grid25_covers_all_modes():
    dataset, info = make_dataset("grid25", batch_size=500)
    assert info.name == "grid25" and info.shape == (2,)
    points = np.concatenate(take(dataset, 2))
    centres, std = toy_modes("grid25")
    dist = np.linalg.norm(points[:, None] - centres[None], axis=2)
    assert dist.min(axis=1).max() < 6 * std
    counts = np.bincount(dist.argmin(axis=1), minlength=25)
    assert counts.min() > 10  # 1000 points over 25 modes: ~40 each.


def test_gaussian1d_moments():
    dataset, info = make_dataset("gaussian1d", batch_size=4000)
    x = next(iter(dataset)).numpy()
    assert info.shape == (1,) and x.shape == (4000, 1)
    assert abs(x.mean() - 4.0) < 0.05 and abs(x.std() - 0.5) < 0.03


@pytest.mark.parametrize("name", ["ring8", "grid25", "gaussian1d"])
def test_start_step_is_exact(name):
    full, _ = make_dataset(name, batch_size=16, seed=7)
    batches = take(full, 6)
    for k in (1, 4):
        resumed, _ = make_dataset(name, batch_size=16, seed=7, start_step=k)
        for want, got in zip(batches[k:], take(resumed, 6 - k), strict=True):
            np.testing.assert_array_equal(want, got)


def test_seed_controls_the_stream():
    first = take(make_dataset("ring8", batch_size=8, seed=1)[0], 2)
    again = take(make_dataset("ring8", batch_size=8, seed=1)[0], 2)
    other = take(make_dataset("ring8", batch_size=8, seed=2)[0], 2)
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert not np.allclose(first[0], other[0])
    assert not np.allclose(first[0], first[1])


def test_toys_have_no_classes():
    with pytest.raises(UsageError, match="without classes"):
        make_dataset("ring8", batch_size=8, classes=[0])
