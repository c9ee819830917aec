"""Tokenizer (one rule in Python and in TF ops), text encoder, joint-embedding pretraining."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.core import text
from zoo.errors import UsageError

CAPTIONS = ["a sandal", "A large, LIGHT ankle-boot!", "a dark sandal", "a light t-shirt"]


@pytest.fixture(scope="module")
def tokenizer() -> text.Tokenizer:
    return text.Tokenizer.fit(CAPTIONS, max_length=6)


def _random_strings(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    alphabet = [*"abcXYZ019 ,.!-_'\t\n\r\x00ÜïéßЖ中😀", "sandal", "Boot", "LIGHT", "  "]
    return ["".join(rng.choice(alphabet, size=rng.integers(0, 14))) for _ in range(count)]


# -- the rule ------------------------------------------------------------------------------
def test_rule_by_hand():
    assert text.split_words("A large, LIGHT ankle-boot!") == [
        "a",
        "large",
        "light",
        "ankle",
        "boot",
    ]
    assert text.split_words("  T-Shirt\t/ top 2") == ["t", "shirt", "top", "2"]
    assert text.split_words("Ünïcode") == ["n", "code"]  # only A-Z are lowercased
    assert text.split_words("") == [] and text.split_words("?!  \t") == []
    assert text.split_words(b"ab\xffcd") == ["ab", "cd"]  # invalid UTF-8 separates words


def test_fit_orders_by_frequency_then_alphabet(tokenizer):
    assert tokenizer.vocabulary[:4] == ["", "[UNK]", "a", "light"]  # a: 4, light: 2
    assert tokenizer.vocabulary[4:] == ["sandal", "ankle", "boot", "dark", "large", "shirt", "t"]
    assert text.Tokenizer.fit(reversed(CAPTIONS), max_length=6) == tokenizer
    small = text.Tokenizer.fit(np.array([CAPTIONS, CAPTIONS]), max_vocabulary=4)
    assert small.vocabulary == ["", "[UNK]", "a", "light"] and small.max_length == 16


def test_oov_truncation_padding_and_empty(tokenizer):
    ids = tokenizer.tokenize_numpy(
        ["a zebra", "a light sandal a light sandal a", "", "A large, LIGHT ankle-boot!"]
    )
    assert ids.dtype == np.int32 and ids.shape == (4, 6)
    v = {w: i for i, w in enumerate(tokenizer.vocabulary)}
    np.testing.assert_array_equal(ids[0], [v["a"], text.OOV_ID, 0, 0, 0, 0])
    np.testing.assert_array_equal(ids[1], [v["a"], v["light"], v["sandal"]] * 2)
    np.testing.assert_array_equal(ids[2], [0] * 6)
    np.testing.assert_array_equal(
        ids[3], [v[w] for w in ("a", "large", "light", "ankle", "boot")] + [0]
    )


def test_tensorflow_matches_python_on_random_strings(tokenizer):
    strings = [*CAPTIONS, "Ünïcode", "", *_random_strings(400, seed=0)]
    np.testing.assert_array_equal(
        tokenizer.tokenize(tf.constant(strings)).numpy(), tokenizer.tokenize_numpy(strings)
    )
    rng = np.random.default_rng(1)
    raw = [bytes(rng.integers(0, 256, rng.integers(0, 10)).astype(np.uint8)) for _ in range(300)]
    raw += [b"a\xc3light\xe2\x82sandal", b"\xf0\x9f\x98\x80boot", b"SANDAL\x80"]
    tf_ids = tokenizer.tokenize(tf.constant(raw)).numpy()
    np.testing.assert_array_equal(tf_ids, tokenizer.tokenize_numpy(raw))
    assert tf_ids.dtype == np.int32


def test_tokenizer_in_saved_module_dataset_and_strategy(tokenizer, tmp_path):
    module = tf.Module()
    module.tokenizer = tokenizer.layer
    module.serve = tf.function(
        lambda texts: module.tokenizer(texts),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path), signatures={"tokens": module.serve})
    reloaded = tf.saved_model.load(str(tmp_path))
    strings = ["a light sandal", "Ünïcode zebra", ""]
    expected = tokenizer.tokenize_numpy(strings)
    np.testing.assert_array_equal(reloaded.serve(tf.constant(strings)).numpy(), expected)
    got = reloaded.signatures["tokens"](texts=tf.constant(strings))
    np.testing.assert_array_equal(next(iter(got.values())).numpy(), expected)

    batches = tf.data.Dataset.from_tensor_slices(strings).batch(2).map(tokenizer.tokenize)
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in batches]), expected)

    strategy = tf.distribute.MirroredStrategy(
        [d.name for d in tf.config.list_logical_devices("CPU")]
    )
    with strategy.scope():
        layer = text.Tokenizer.from_json(tokenizer.to_json()).layer
    result = strategy.run(tf.function(layer), args=(tf.constant(strings),))
    for replica in strategy.experimental_local_results(result):
        np.testing.assert_array_equal(replica.numpy(), expected)


def test_tokenizer_as_keras_sub_layer_survives_saved_model(tokenizer, tmp_path):
    encoder = text.build_text_encoder(
        vocabulary_size=tokenizer.vocabulary_size, max_length=6, units=8, output_dim=4, seed=0
    )
    strings = keras.Input(shape=(), dtype="string", name="text")
    model = keras.Model(strings, encoder(tokenizer.layer(strings)))
    captions = tf.constant(["a light sandal", "", "zebra"])
    expected = encoder(tokenizer.tokenize_numpy(captions.numpy())).numpy()
    np.testing.assert_allclose(model(captions).numpy(), expected, atol=1e-6)
    serve = tf.function(lambda t: model(t), input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(model, str(tmp_path), signatures=serve)
    reloaded = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]
    np.testing.assert_allclose(next(iter(reloaded(captions).values())).numpy(), expected, atol=1e-6)


def test_json_round_trip_and_bad_json(tokenizer):
    data = json.loads(json.dumps(tokenizer.to_json()))
    assert data["pad_id"] == 0 and data["oov_id"] == 1 and data["rule"] == text.TOKENIZATION_RULE
    assert data["max_length"] == 6 and data["vocabulary"] == tokenizer.vocabulary
    assert text.Tokenizer.from_json(data) == tokenizer
    for bad in (
        {"max_length": 6},
        {**data, "rule": "something else"},
        {**data, "oov_id": 2},
        {**data, "vocabulary": ["[UNK]", "", "a"]},
        {**data, "vocabulary": ["", "[UNK]", "Boot"]},
        {**data, "vocabulary": ["", "[UNK]", "a", "a"]},
        {**data, "max_length": 0},
    ):
        with pytest.raises(UsageError):
            text.Tokenizer.from_json(bad)


# -- encoder --------------------------------------------------------------------------------
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


# -- pretraining, save / load -----------------------------------------------------------------
def _shapes_dataset(count: int = 240, seed: int = 0):
    """Three shapes (the class), dark or light; captions name both, with synonyms."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    light = rng.integers(0, 2, count).astype(bool)
    images = np.zeros((count, 16, 16, 1), np.uint8)
    names = [("stripes", "bars"), ("columns", "pillars"), ("square", "block")]
    captions = []
    for i in range(count):
        value = 230 if light[i] else 90
        if labels[i] == 0:
            images[i, ::4] = value
        elif labels[i] == 1:
            images[i, :, ::4] = value
        else:
            images[i, 5:11, 5:11] = value
        tone = "light" if light[i] else "dark"
        name, synonym = names[labels[i]]
        captions.append(
            [f"a {tone} {name}", f"{synonym}, {tone}!", f"The {name.upper()} is {tone}"]
        )
    return images, np.array(captions), labels


@pytest.fixture(scope="module")
def pretrained():
    images, captions, labels = _shapes_dataset()
    return text.pretrain_text_encoder(
        images,
        captions,
        labels,
        steps=150,
        batch_size=32,
        output_dim=32,
        max_length=8,
        seed=0,
        progress=False,
    )


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
    images, captions, labels = _shapes_dataset(60)
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


def test_joint_embedding_loss_masks_extra_positives():
    similarity = tf.constant([[1.0, 1.0], [1.0, 1.0]])
    none = tf.zeros([2, 2], tf.bool)
    np.testing.assert_allclose(text.joint_embedding_loss(similarity, none), np.log(2.0), rtol=1e-6)
    both = tf.ones([2, 2], tf.bool)
    np.testing.assert_allclose(text.joint_embedding_loss(similarity, both), 0.0, atol=1e-6)


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


def test_pretraining_shows_progress(capsys):
    images, captions, _ = _shapes_dataset(12)
    text.pretrain_text_encoder(
        images, captions, steps=3, batch_size=4, output_dim=4, max_length=4, progress=True
    )
    assert "3/3" in capsys.readouterr().out
