"""A pretrained text encoder saved and loaded: round trip, missing and corrupt files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from zoo import text
from zoo.errors import UsageError


def test_save_load_round_trip(pretrained, tmp_path):
    tokenizer, encoder, stats = pretrained
    directory = str(tmp_path / "text_encoder")
    text.save_text_encoder(directory, tokenizer, encoder, stats)
    assert sorted(os.listdir(directory)) == [
        "encoder.weights.h5",
        "text_encoder.json",
        "tokenizer.json",
    ]
    assert text.has_text_encoder(directory)
    loaded_tokenizer, loaded, loaded_stats = text.load_text_encoder(directory)
    assert loaded_tokenizer == tokenizer and loaded_stats == stats
    tokens = tokenizer.tokenize_numpy(["a light stripes", "", "unknown words only"])
    np.testing.assert_array_equal(loaded(tokens).numpy(), encoder(tokens).numpy())
    text.save_text_encoder(directory, tokenizer, encoder)  # overwriting works
    assert text.load_text_encoder(directory)[2] == {}


def test_missing_or_corrupt_directory_is_a_usage_error(pretrained, tmp_path):
    tokenizer, encoder, _ = pretrained
    with pytest.raises(UsageError, match=r"text_encoder\.json is missing"):
        text.load_text_encoder(str(tmp_path / "nothing"))
    directory = str(tmp_path / "saved")
    text.save_text_encoder(directory, tokenizer, encoder)
    weights = os.path.join(directory, "encoder.weights.h5")
    with open(weights, "r+b") as f:
        f.seek(100)
        f.write(b"garbage")
    with pytest.raises(UsageError, match="does not match") as err:
        text.load_text_encoder(directory)
    assert "\n" not in str(err.value)
    with open(os.path.join(directory, "text_encoder.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(UsageError, match="cannot read"):
        text.load_text_encoder(directory)
    with pytest.raises(UsageError):
        text.save_text_encoder(directory, text.Tokenizer.fit(["x"], max_length=8), encoder)
