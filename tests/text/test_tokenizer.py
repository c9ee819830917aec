"""The tokenizer: one rule in plain Python and in TensorFlow ops, exact parity between them."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import text
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


def test_split_words_tf_matches_split_words():
    strings = [*CAPTIONS, "Ünïcode", "", "  T-Shirt\t/ top 2", *_random_strings(100, seed=2)]
    raw = [b"ab\xffcd", b"a\xc3light\xe2\x82sandal", b"SANDAL\x80"]
    words = text.split_words_tf(tf.constant([*strings, *raw])).to_list()
    assert [[w.decode() for w in row] for row in words] == [
        text.split_words(s) for s in [*strings, *raw]
    ]


def test_rule_prose_is_unchanged():
    # Apps and `Tokenizer.from_json` compare this text; it is written from the rule's constants.
    assert text.TOKENIZATION_RULE == (
        "lowercase ASCII letters A-Z only (every other character unchanged); replace every maximal "
        "run of characters (Unicode code points; each invalid UTF-8 sequence counts as a character "
        "U+FFFD) not in [a-z0-9] by one space; split on spaces dropping empty pieces; map each "
        "word to its index in the vocabulary (unknown words -> 1); keep the first max_length ids; "
        "pad with 0 at the end to max_length"
    )


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
