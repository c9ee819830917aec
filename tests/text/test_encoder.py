"""The text encoder: shapes, padding, mixed precision, TFLite builtins."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import text
from zoo.errors import UsageError


def _tokens(count: int = 6, length: int = 8, vocabulary: int = 30) -> np.ndarray:
    tokens = np.random.default_rng(0).integers(1, vocabulary, (count, length)).astype(np.int32)
    tokens[0] = 0  # empty caption
    tokens[1, 3:] = 0
    return tokens


def test_encoder_shape_dtype_finite_and_padding_excluded():
    encoder = text.build_text_encoder(vocabulary_size=30, max_length=8, output_dim=16, seed=0)
    tokens = _tokens()
    out = encoder(tokens).numpy()
    assert out.shape == (6, 16) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out[0], encoder.get_layer("projection").bias.numpy(), atol=1e-6)
    # Padding changes nothing: the same three words at length 8 and at length 5.
    short = text.build_text_encoder(vocabulary_size=30, max_length=5, output_dim=16)
    short.set_weights(encoder.get_weights())
    np.testing.assert_allclose(short(tokens[1:2, :5]).numpy(), out[1:2], atol=1e-5)
    assert text.encoder_config(encoder) == {
        "vocabulary_size": 30,
        "max_length": 8,
        "embedding_dim": 64,
        "units": 128,
        "output_dim": 16,
        "name": "text_encoder",
    }
    with pytest.raises(UsageError):
        text.build_text_encoder(vocabulary_size=0, max_length=8)


def test_encoder_under_mixed_float16_returns_float32():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        encoder = text.build_text_encoder(vocabulary_size=30, max_length=8, units=8, seed=0)
        out = encoder(_tokens())
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert encoder.get_layer("conv1").compute_dtype == "float16"
    assert out.dtype == tf.float32 and np.isfinite(out.numpy()).all()


def test_encoder_converts_to_builtin_tflite_with_parity(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from tests.tflite_helpers import convert_builtins_only

    encoder = text.build_text_encoder(
        vocabulary_size=30, max_length=8, embedding_dim=16, units=32, output_dim=16, seed=3
    )
    serve = tf.function(
        lambda tokens: {"embedding": encoder(tokens, training=False)},
        input_signature=[tf.TensorSpec([None, 8], tf.int32, name="tokens")],
    )
    content, _ = convert_builtins_only(serve, tmp_path)
    runner = Interpreter(model_content=content).get_signature_runner("serving_default")
    tokens = _tokens()
    lite = runner(tokens=tokens)["embedding"]
    np.testing.assert_allclose(lite, encoder(tokens).numpy(), atol=1e-4)
