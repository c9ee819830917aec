"""Pictures of samples: image grids, scatter plots of 2-D toys and histograms of 1-D ones."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from zoo.io import atomic_path


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Maps images in [-1, 1] to uint8 [0, 255]."""
    return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(
    images: np.ndarray, columns: int | None = None, padding: int = 2, min_tile: int = 64
) -> np.ndarray:
    """Tiles a batch of images [N, H, W, C] in [-1, 1] into one uint8 picture [H', W', 3].

    Args:
      images: the batch; C is 1 or 3.
      columns: images per row (default: a near-square grid).
      padding: pixels of white between images.
      min_tile: images smaller than this are enlarged by an integer factor.

    Returns:
      The grid as uint8 RGB.
    """
    images = to_uint8(images)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    zoom = max(1, min_tile // images.shape[1])
    if zoom > 1:  # small images are enlarged (nearest neighbour) so the grid is readable
        images = images.repeat(zoom, axis=1).repeat(zoom, axis=2)
    n, h, w, _ = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.full(
        (rows * (h + padding) + padding, columns * (w + padding) + padding, 3), 255, np.uint8
    )
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top : top + h, left : left + w] = image
    return grid


def label_rows(grid: np.ndarray, labels: Sequence[str], rows: int, padding: int = 2) -> np.ndarray:
    """Adds a white margin on the left of an `image_grid` with one text label per row.

    Args:
      grid: the uint8 RGB grid (as `image_grid` returns it, with `rows` rows of tiles).
      labels: one label per row (e.g. the class names of a class-conditional grid).
      rows: number of tile rows in the grid.
      padding: the grid's padding between tiles.

    Returns:
      The labelled picture, uint8 RGB.
    """
    if len(labels) != rows:
        raise ValueError(f"{len(labels)} labels for {rows} rows")
    width = 8 + 7 * max((len(label) for label in labels), default=0)
    canvas = Image.new("RGB", (width + grid.shape[1], grid.shape[0]), "white")
    canvas.paste(Image.fromarray(grid), (width, 0))
    draw = ImageDraw.Draw(canvas)
    tile = (grid.shape[0] - padding) / rows
    for row, label in enumerate(labels):
        draw.text((4, row * tile + tile / 2 - 4), label, fill=(0, 0, 0))
    return np.asarray(canvas)


def scatter_plot(
    points: np.ndarray, size: int = 480, centres: np.ndarray | None = None
) -> np.ndarray:
    """Draws 2-D samples (blue) and optional mode centres (red) on a white canvas."""
    points = np.asarray(points, np.float32)
    extent = float(np.max(np.abs(points))) if points.size else 1.0
    if centres is not None and len(centres):
        extent = max(extent, float(np.max(np.abs(centres))))
    extent = 1.15 * max(extent, 1e-3)
    canvas = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(canvas)

    def pixel(p: np.ndarray) -> tuple[float, float]:
        return ((p[0] / extent + 1) * size / 2, (1 - p[1] / extent) * size / 2)

    draw.line([(0, size / 2), (size, size / 2)], fill=(220, 220, 220))
    draw.line([(size / 2, 0), (size / 2, size)], fill=(220, 220, 220))
    for p in points:
        x, y = pixel(p)
        draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=(31, 119, 180))
    for p in centres if centres is not None else ():
        x, y = pixel(p)
        draw.line([(x - 5, y), (x + 5, y)], fill=(214, 39, 40), width=2)
        draw.line([(x, y - 5), (x, y + 5)], fill=(214, 39, 40), width=2)
    return np.asarray(canvas)


def histogram_plot(values: np.ndarray, size: int = 480, bins: int = 60) -> np.ndarray:
    """Draws a histogram of 1-D samples."""
    values = np.asarray(values, np.float32).reshape(-1)
    counts, _ = np.histogram(values, bins=bins)
    canvas = Image.new("RGB", (size, size // 2), "white")
    draw = ImageDraw.Draw(canvas)
    width = size / bins
    top = max(int(counts.max()), 1)
    for i, count in enumerate(counts):
        height = (size // 2 - 4) * count / top
        draw.rectangle(
            [i * width, size // 2 - height, (i + 1) * width - 1, size // 2], fill=(31, 119, 180)
        )
    return np.asarray(canvas)


def render_samples(samples: np.ndarray, centres: np.ndarray | None = None) -> np.ndarray:
    """The natural picture of a batch of samples: a grid, a scatter plot or a histogram."""
    samples = np.asarray(samples)
    if samples.ndim == 4:
        return image_grid(samples)
    if samples.ndim == 2 and samples.shape[1] == 2:
        return scatter_plot(samples, centres=centres)
    return histogram_plot(samples)


def save_png(picture: np.ndarray, path: str) -> None:
    """Writes a uint8 picture to `path` atomically (temporary file, then rename)."""
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")


def line_plot(
    x: np.ndarray,
    curves: list[tuple[np.ndarray, tuple[int, int, int], str]],
    size: tuple[int, int] = (640, 400),
    y_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Draws curves y(x) with a legend: `curves` holds (y, RGB colour, label) triples."""
    width, height = size
    margin = 30
    x = np.asarray(x, np.float64)
    ys = [np.asarray(y, np.float64) for y, _, _ in curves]
    low, high = y_range or (min(float(y.min()) for y in ys), max(float(y.max()) for y in ys))
    high = high if high > low else low + 1.0
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)

    def pixel(xv: float, yv: float) -> tuple[float, float]:
        px = margin + (xv - x[0]) / (x[-1] - x[0]) * (width - 2 * margin)
        py = height - margin - (yv - low) / (high - low) * (height - 2 * margin)
        return px, py

    draw.line([pixel(x[0], low), pixel(x[-1], low)], fill=(160, 160, 160))
    draw.line([pixel(x[0], low), pixel(x[0], high)], fill=(160, 160, 160))
    draw.text((margin - 25, height - margin - 5), f"{low:.2g}", fill=(90, 90, 90))
    draw.text((margin - 25, margin - 5), f"{high:.2g}", fill=(90, 90, 90))
    for i, (y, colour, label) in enumerate(
        zip(ys, (c for _, c, _ in curves), (lab for *_, lab in curves), strict=True)
    ):
        draw.line([pixel(a, b) for a, b in zip(x, y, strict=True)], fill=colour, width=2)
        draw.line([(width - 190, 12 + 16 * i), (width - 165, 12 + 16 * i)], fill=colour, width=2)
        draw.text((width - 160, 6 + 16 * i), label, fill=(0, 0, 0))
    return np.asarray(canvas)
