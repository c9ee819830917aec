"""Test images of each domain for an image-to-image export, as PNG files the page reads.

An export holds no images, so the demo takes a few from the test split of the dataset the run
trained on: the run's `config.json` (beside the checkpoint the manifest names) gives the dataset,
the domains and the data directory; `--samples_dir` with `a/` and `b/` folders of images replaces
them. Written as `DIR/a/0.png ...`, `DIR/b/0.png ...`; the server serves the index as
`/samples/index.json`:
`{"a": ["a/0.png", ...], "b": [...], "names": {"a": "sandal", "b": "sneaker"}, "source": ...}`
(the source names the dataset or folder without its directories: the page is not told paths).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np
from PIL import Image

from zoo.demo.manifest import Described
from zoo.errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def _run_config(manifest: dict[str, Any]) -> dict[str, Any]:
    """The training run's `config.json` (found from the manifest's checkpoint), or {}."""
    checkpoint = manifest.get("checkpoint")
    if not isinstance(checkpoint, str):
        return {}
    path = os.path.join(os.path.dirname(os.path.dirname(checkpoint)), "config.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def domain_source(manifest: dict[str, Any]) -> dict[str, Any]:
    """Dataset, domains, data_dir, image_size and channels of the run behind an export."""
    run = _run_config(manifest).get("run", {})
    config = manifest.get("model_config") or {}
    dataset = run.get("dataset") or (manifest.get("trained_with") or {}).get("dataset")
    domain_a, domain_b = run.get("domain_a", ""), run.get("domain_b", "")
    if not run:  # the run is elsewhere: data.name reads "fashion_mnist[sandal]|fashion_mnist[..]"
        data_name = (manifest.get("data") or {}).get("name", "")
        match = re.fullmatch(r"(.+)\[(.+)\]\|(.+)\[(.+)\]", data_name)
        if match:
            domain_a, domain_b = match.group(2), match.group(4)
    return {
        "dataset": dataset,
        "domain_a": domain_a or "",
        "domain_b": domain_b or "",
        "data_dir": run.get("data_dir"),
        "image_size": config.get("image_size"),
        "channels": config.get("channels"),
    }


def _without_directories(name: str) -> str:
    """A dataset name as the page shows it: `folder:/data/shoes` becomes `folder:shoes`."""
    return re.sub(r"(?<=folder:)[^|\[\]]*", lambda m: os.path.basename(m[0].rstrip("/")), name)


def _save(image: np.ndarray, path: str) -> None:
    pixels = np.clip(np.rint((image.astype(np.float64) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "L" if pixels.shape[-1] == 1 else "RGB"
    Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode).save(path, format="PNG")


def write_dataset_samples(described: Described, out_dir: str, count: int = 4) -> dict[str, Any]:
    """Writes `count` test images of each domain of the run's dataset; returns the index.

    Raises:
      UsageError: the dataset cannot be read here (say so, and how to give images instead).
    """
    source = domain_source(described.manifest)
    if not source["dataset"]:
        raise UsageError(
            f"{described.name}.json does not say which dataset trained it; "
            "give --samples_dir=DIR with a/ and b/ images"
        )
    from zoo import cli

    cli.import_tensorflow_quietly()
    from zoo.data import make_domain_dataset

    try:
        with cli.native_stderr_captured():
            stream, info = make_domain_dataset(
                source["dataset"],
                batch_size=count,
                domain_a=source["domain_a"],
                domain_b=source["domain_b"],
                seed=0,
                split="test",
                data_dir=source["data_dir"],
                image_size=source["image_size"],
                channels=source["channels"],
            )
            a, b = next(iter(stream.take(1)))
    except UsageError as err:
        raise UsageError(
            f"no test images for {described.name} ({err}); give "
            "--samples_dir=DIR with a/ and b/ images"
        ) from err
    shown = f"{_without_directories(info.name)}, test split"
    index: dict[str, Any] = {"a": [], "b": [], "names": {}, "source": shown}
    for key, batch, domain in (("a", a, source["domain_a"]), ("b", b, source["domain_b"])):
        for i, image in enumerate(np.asarray(batch)):
            _save(image, os.path.join(out_dir, key, f"{i}.png"))
            index[key].append(f"{key}/{i}.png")
        if domain:
            index["names"][key] = domain
    return index


def index_folder(samples_dir: str) -> dict[str, Any]:
    """The index of a user's `--samples_dir` (images in `a/` and `b/`).

    Raises:
      UsageError: no `a/` or `b/` folder with images.
    """
    source = os.path.basename(os.path.normpath(os.path.abspath(samples_dir)))
    index: dict[str, Any] = {"a": [], "b": [], "names": {}, "source": source}
    for key in ("a", "b"):
        folder = os.path.join(samples_dir, key)
        files = sorted(
            f
            for f in (os.listdir(folder) if os.path.isdir(folder) else [])
            if f.lower().endswith(IMAGE_SUFFIXES)
        )
        if not files:
            raise UsageError(f"--samples_dir {samples_dir} needs images in {key}/")
        index[key] = [f"{key}/{f}" for f in files]
    return index


def read_samples(
    samples_dir: str, index: dict[str, Any], shape: list[int]
) -> dict[str, np.ndarray]:
    """The index's images as float32 [N, H, W, C] in [-1, 1] per domain, read as the page reads
    them (resized to H x W; grey = luma 0.299 R + 0.587 G + 0.114 B, exact for grey files).

    Raises:
      UsageError: a file that is not a readable image, or not of the model's size.
    """
    from zoo.data.folders import eight_bit  # here: zoo.data brings TensorFlow

    height, width, channels = shape
    out = {}
    for key in ("a", "b"):
        images = []
        for file in index[key]:
            try:
                with Image.open(os.path.join(samples_dir, file)) as image:
                    rgb = np.asarray(eight_bit(image).convert("RGB"))
            except (OSError, ValueError, SyntaxError) as err:
                raise UsageError(f"--samples_dir: {file} is not a readable image ({err})") from err
            if rgb.shape[:2] != (height, width):
                raise UsageError(
                    f"{file} is {rgb.shape[1]}x{rgb.shape[0]}, not {width}x{height}: "
                    "the check compares images of the model's size only"
                )
            if channels == 1:
                r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
                luma = np.floor(0.299 * r + 0.587 * g + 0.114 * b + 0.5)
                grey = np.where((r == g) & (g == b), r, luma)
                pixels = grey[..., None]
            else:
                pixels = rgb.astype(np.float64)
            images.append((pixels / 127.5 - 1.0).astype(np.float32))
        out[key] = np.stack(images)
    return out
