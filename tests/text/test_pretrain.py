"""Joint-embedding pretraining of the text encoder."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.text.helpers import shapes_dataset
from zoo import text
from zoo.errors import UsageError


def test_pretraining_learns_a_joint_embedding(pretrained):
    tokenizer, encoder, stats = pretrained
    assert tokenizer.max_length == 8 and "stripes" in tokenizer.vocabulary
    assert encoder(tokenizer.tokenize_numpy(["a dark block"])).shape == (1, 32)
    assert stats["heldout_images"] == 24 and stats["steps"] == 150
    assert stats["retrieval_chance"] < 0.3
    assert stats["retrieval_accuracy"] > 0.8, stats
    assert stats["class_retrieval_accuracy"] > 0.9, stats
    assert np.isfinite(stats["final_loss"])
    # Captions of one class and tone land closer to each other than to the other classes.
    phi = encoder(tokenizer.tokenize_numpy(["a dark stripes", "bars, dark", "a light square"]))
    phi = tf.math.l2_normalize(phi, axis=1).numpy()
    assert phi[0] @ phi[1] > phi[0] @ phi[2]


def test_pretraining_is_deterministic_by_seed(pretrained):
    images, captions, labels = shapes_dataset(60)
    kwargs = dict(steps=5, batch_size=8, output_dim=8, max_length=8, progress=False)
    _, a, stats_a = text.pretrain_text_encoder(images, captions, labels, seed=1, **kwargs)
    _, b, stats_b = text.pretrain_text_encoder(images, captions, labels, seed=1, **kwargs)
    _, c, _ = text.pretrain_text_encoder(images, captions, labels, seed=2, **kwargs)
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)
    assert stats_a == stats_b
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    with pytest.raises(UsageError):
        text.pretrain_text_encoder(images, captions[:10], progress=False)


def test_pretraining_shows_progress(capsys):
    images, captions, _ = shapes_dataset(12)
    text.pretrain_text_encoder(
        images, captions, steps=3, batch_size=4, output_dim=4, max_length=4, progress=True
    )
    assert "3/3" in capsys.readouterr().out


def _tiny_fashion_dir(tmp_path) -> str:
    from tests.data.helpers import tiny_arrays, write_idx

    images, labels = tiny_arrays()
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    return str(tmp_path)


def test_pretrain_and_save_passes_every_size_and_saves(tmp_path):
    lines = []
    directory = str(tmp_path / "encoder")
    tokenizer, encoder, stats = text.pretrain_and_save(
        directory,
        "fashion_mnist",
        data_dir=_tiny_fashion_dir(tmp_path),
        classes=["sandal", "bag"],
        captions_per_image=2,
        steps=2,
        output_dim=4,
        max_length=5,
        embedding_dim=6,
        units=7,
        progress=False,
        log=lines.append,
    )
    assert text.encoder_config(encoder) == {
        "vocabulary_size": tokenizer.vocabulary_size,
        "max_length": 5,
        "embedding_dim": 6,
        "units": 7,
        "output_dim": 4,
        "name": "text_encoder",
    }
    loaded_tokenizer, loaded, loaded_stats = text.load_text_encoder(directory)
    assert loaded_tokenizer == tokenizer and loaded_stats == stats and stats["steps"] == 2
    assert text.encoder_config(loaded) == text.encoder_config(encoder)
    assert "sandal" in tokenizer.vocabulary and "shirt" not in tokenizer.vocabulary
    assert len(lines) == 2
    assert lines[0] == (
        f"pretraining the text encoder on 10 captioned images (2 steps) into {directory}"
    )
    assert lines[1].startswith("text encoder: held-out caption retrieval ")
