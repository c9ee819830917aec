"""Text-to-image tools: pretrain a text encoder, interpolate between two captions (Reed et al.)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zoo.core import latent
from zoo.core.images import image_grid
from zoo.errors import UsageError


def pretrain_encoder(
    dataset: str,
    out_dir: str,
    *,
    data_dir: str | None = None,
    classes: Sequence[str] | None = None,
    steps: int = 1000,
    output_dim: int = 128,
    max_length: int = 16,
    embedding_dim: int = 64,
    units: int = 128,
    captions_per_image: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """Pretrains a text encoder on a dataset's captions and saves it to `out_dir`.

    A run starts from it with `--config=text_encoder_dir=OUT_DIR` (its `max_length`,
    `text_embedding_dim`, `text_units` and `embedding_dim` then come from this encoder).

    Args:
      dataset, data_dir, classes, captions_per_image, seed: the captioned data
        (`zoo.text.pretrain_and_save`).
      steps, output_dim, max_length, embedding_dim, units: the pretraining and the encoder's
        sizes (`zoo.text.pretrain_text_encoder`).

    Returns:
      The pretraining statistics (held-out caption retrieval and chance).
    """
    from zoo.text import pretrain_and_save

    _, _, stats = pretrain_and_save(
        out_dir,
        dataset,
        data_dir=data_dir,
        classes=classes,
        captions_per_image=captions_per_image,
        seed=seed,
        steps=steps,
        output_dim=output_dim,
        max_length=max_length,
        embedding_dim=embedding_dim,
        units=units,
        progress=True,
    )
    return dict(stats)


def split_captions(text: str, count: int) -> list[str]:
    """'a dark sandal|a light sneaker' -> the captions; exactly `count` of them."""
    captions = [part.strip() for part in text.split("|")]
    if len(captions) != count or not all(captions):
        raise UsageError(f"give {count} non-empty captions separated by '|', got {text!r}")
    return captions


def caption_interpolation_grid(
    generate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    encode: Callable[[list[str]], np.ndarray],
    latent_dim: int,
    captions: Sequence[str],
    *,
    rows: int = 8,
    steps: int = 8,
    seed: int = 0,
) -> np.ndarray:
    """Rows of fixed z; columns walk φ(t1) → φ(t2) linearly (Reed et al. 2016, figure 8).

    Args:
      generate: (z [N, latent], φ [N, D]) -> images.
      encode: captions -> φ [N, D].
      latent_dim: size of z.
      captions: the two captions.
      rows, steps: z values and images per walk.
      seed: seed of the z values.
    """
    if rows < 1 or steps < 2:
        raise UsageError("interpolation needs rows >= 1 and steps >= 2")
    ends = np.asarray(encode(list(captions)), np.float32)
    walk = latent.interpolate(ends[0], ends[1], steps, "linear")
    z = latent.sample_z(rows, latent_dim, seed)
    zs = np.repeat(z, steps, axis=0)
    embeddings = np.tile(walk, (rows, 1))
    return image_grid(np.asarray(generate(zs, embeddings)), columns=steps)
