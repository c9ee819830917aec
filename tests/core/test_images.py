"""Sample pictures: grids, scatter plots, histograms and atomic PNG writes."""

import numpy as np
from PIL import Image

from zoo.core.images import image_grid, render_samples, save_png, to_uint8


def test_to_uint8_maps_the_range_ends():
    np.testing.assert_array_equal(to_uint8(np.array([-1.0, 0.0, 1.0, 3.0])), [0, 128, 255, 255])


def test_grid_places_each_image_and_enlarges_small_ones():
    images = np.stack([np.full((8, 8, 1), v, np.float32) for v in (-1.0, 1.0, -1.0)])
    grid = image_grid(images, columns=2, padding=2, min_tile=16)  # zoom x2 -> 16 px tiles
    assert grid.shape == (2 * 18 + 2, 2 * 18 + 2, 3) and grid.dtype == np.uint8
    assert (grid[2:18, 2:18] == 0).all()  # first image black
    assert (grid[2:18, 20:36] == 255).all()  # second image white
    assert (grid[20:36, 2:18] == 0).all()  # third image, second row
    assert (grid[20:36, 20:36] == 255).all()  # empty cell stays white


def test_render_picks_a_picture_for_each_kind_of_sample():
    rng = np.random.default_rng(0)
    scatter = render_samples(rng.normal(size=(100, 2)), centres=np.zeros((1, 2)))
    histogram = render_samples(rng.normal(size=(100, 1)))
    assert scatter.shape == (480, 480, 3) and (scatter != 255).any()
    assert histogram.shape == (240, 480, 3) and (histogram != 255).any()


def test_save_png_writes_atomically(tmp_path):
    picture = np.zeros((4, 5, 3), np.uint8)
    save_png(picture, str(tmp_path / "a" / "x.png"))
    assert np.asarray(Image.open(tmp_path / "a" / "x.png")).shape == (4, 5, 3)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.png"]  # no temporary left
