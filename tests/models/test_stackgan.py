"""StackGAN: networks at every resolution pair, the two-phase model, its driver and export."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.models.class_head_helpers import Recorder as _Recorder
from tests.models.class_head_helpers import cross_entropy as _cross_entropy
from tests.models.class_head_helpers import softplus as _softplus
from zoo import registry
from zoo.core.layers import NearestUpsampling2D
from zoo.errors import UsageError
from zoo.models import stackgan as sn

TASK = registry.get("stackgan")

LATENT, EMBEDDING, CONDITION, CHANNELS, FILTERS = 8, 6, 4, 3, 4
PAIRS = [(16, 32), (32, 64), (64, 128), (64, 256)]


def networks(low: int, high: int, spectral_norm: bool = False) -> dict[str, keras.Model]:
    common = {"embedding_dim": EMBEDDING, "condition_dim": CONDITION, "channels": CHANNELS}
    d = {"filters": FILTERS, "spectral_norm": spectral_norm, **common}
    return {
        "g1": sn.build_stage1_generator(
            latent_dim=LATENT, image_size=low, filters=FILTERS, **common
        ),
        "g2": sn.build_stage2_generator(low_size=low, high_size=high, filters=FILTERS, **common),
        "d1": sn.build_stage1_discriminator(image_size=low, **d),
        "d2": sn.build_stage2_discriminator(image_size=high, **d),
    }


def inputs(batch: int, seed: int = 0) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    z = tf.random.stateless_normal((batch, LATENT), seed=(seed, 1))
    embedding = tf.random.stateless_normal((batch, EMBEDDING), seed=(seed, 2))
    epsilon = tf.random.stateless_normal((batch, CONDITION), seed=(seed, 3))
    return z, embedding, epsilon


def scramble(model: keras.Model, seed: int) -> None:
    """He-scaled kernels and non-trivial batch-norm statistics, so outputs are far from 0."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape, name = tuple(weight.shape), weight.path.split("/")[-1]
        if name == "kernel":
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:  # beta, bias, moving_mean
            value = rng.normal(0.0, 0.1, shape)
        weight.assign(value.astype(np.float32))


@pytest.mark.parametrize(("low", "high"), PAIRS)
def test_shapes_and_dtypes_at_every_resolution_pair(low, high):
    nets = networks(low, high)
    z, embedding, epsilon = inputs(2)
    stage1 = nets["g1"]([z, embedding, epsilon], training=False)
    stage2 = nets["g2"]([stage1["images"], embedding, epsilon], training=False)
    assert stage1["images"].shape == (2, low, low, CHANNELS)
    assert stage2["images"].shape == (2, high, high, CHANNELS)
    for out in (stage1, stage2):
        assert set(out) == {"images", "mu", "log_var"}
        assert out["mu"].shape == out["log_var"].shape == (2, CONDITION)
        assert all(v.dtype == tf.float32 for v in out.values())
        assert float(tf.reduce_max(tf.abs(out["images"]))) <= 1.0
    for key, images in (("d1", stage1["images"]), ("d2", stage2["images"])):
        logits = nets[key]([images, embedding], training=False)
        assert logits.shape == (2, 1) and logits.dtype == tf.float32


def test_generator_widths_follow_the_paper_layout():
    """Stage-I: filters·2^blocks at 4×4; Stage-II: encoded to low/4 with 4·filters."""
    g1 = sn.build_stage1_generator(
        latent_dim=100, condition_dim=128, embedding_dim=32, image_size=64, channels=3, filters=64
    )
    assert g1.get_layer("to_images").input.shape[1:] == (64, 64, 64)
    reshape = next(layer for layer in g1.layers if isinstance(layer, keras.layers.Reshape))
    assert reshape.output.shape[1:] == (4, 4, 1024)
    g2 = sn.build_stage2_generator(
        low_size=64, high_size=256, channels=3, condition_dim=8, embedding_dim=8, filters=8
    )
    tile = next(layer for layer in g2.layers if layer.__class__.__name__ == "SpatialTile")
    assert tile.output.shape[1:] == (16, 16, 8)
    adds = [layer for layer in g2.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 2 and adds[0].output.shape[1:] == (16, 16, 32)


def test_discriminator_features_come_back_to_eight_times_filters_at_256():
    d = sn.build_stage2_discriminator(
        image_size=256, channels=3, embedding_dim=8, condition_dim=8, filters=2
    )
    tile = next(layer for layer in d.layers if layer.__class__.__name__ == "SpatialTile")
    concat = next(layer for layer in d.layers if isinstance(layer, keras.layers.Concatenate))
    assert tile.output.shape[1:] == (4, 4, 8)
    assert concat.output.shape[1:] == (4, 4, 16 + 8)  # 2·8 image channels + condition


def test_zero_epsilon_is_deterministic_and_epsilon_changes_the_images():
    nets = networks(16, 32)
    for net in nets.values():
        scramble(net, seed=1)
    z, embedding, epsilon = inputs(3)
    zero = tf.zeros_like(epsilon)

    def pipeline(eps):
        s1 = nets["g1"]([z, embedding, eps], training=False)
        s2 = nets["g2"]([s1["images"], embedding, eps], training=False)
        return s1, s2

    (a1, a2), (b1, b2), (c1, c2) = pipeline(zero), pipeline(zero), pipeline(epsilon)
    np.testing.assert_array_equal(a2["images"].numpy(), b2["images"].numpy())
    np.testing.assert_array_equal(a1["images"].numpy(), b1["images"].numpy())
    assert not np.allclose(a1["images"], c1["images"], atol=1e-3)
    assert not np.allclose(a2["images"], c2["images"], atol=1e-3)
    np.testing.assert_array_equal(a1["mu"].numpy(), c1["mu"].numpy())  # ε moves ĉ, not μ


def test_nearest_upsampling_equals_keras_upsampling2d_and_round_trips():
    x = tf.random.stateless_normal((2, 3, 5, 4), seed=(8, 9))
    ours = NearestUpsampling2D(2)
    theirs = keras.layers.UpSampling2D(2, interpolation="nearest")
    np.testing.assert_array_equal(ours(x).numpy(), theirs(x).numpy())
    assert ours.compute_output_shape((None, 3, 5, 4)) == (None, 6, 10, 4)
    clone = keras.layers.deserialize(keras.layers.serialize(NearestUpsampling2D(4)))
    assert clone.factor == 4 and clone(x).shape == (2, 12, 20, 4)


def test_inputs_may_be_given_by_name():
    g1 = networks(16, 32)["g1"]
    z, embedding, epsilon = inputs(2)
    by_position = g1([z, embedding, epsilon], training=False)
    by_name = g1({"epsilon": epsilon, "z": z, "embedding": embedding}, training=False)
    np.testing.assert_array_equal(by_position["images"].numpy(), by_name["images"].numpy())


def test_mixed_float16_keeps_outputs_in_float32():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        nets = networks(16, 32, spectral_norm=False)
        z, embedding, epsilon = inputs(2)
        s1 = nets["g1"]([z, embedding, epsilon], training=True)
        s2 = nets["g2"]([s1["images"], embedding, epsilon], training=True)
        logits = [
            nets["d1"]([s1["images"], embedding], training=True),
            nets["d2"]([s2["images"], embedding], training=True),
        ]
    finally:
        keras.mixed_precision.set_global_policy(previous)
    convs = [layer for layer in nets["g2"].layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs[0].compute_dtype == "float16"
    assert nets["g1"].get_layer("conditioning_augmentation").compute_dtype == "float32"
    for out in (s1, s2):
        assert all(v.dtype == tf.float32 for v in out.values())
        assert np.isfinite(out["images"].numpy()).all()
    assert all(x.dtype == tf.float32 and np.isfinite(x.numpy()).all() for x in logits)


def test_spectral_norm_discriminators_train_and_infer():
    nets = networks(16, 32, spectral_norm=True)
    _, embedding, _ = inputs(2)
    images = tf.random.stateless_uniform((2, 32, 32, CHANNELS), seed=(4, 5), minval=-1, maxval=1)
    for training in (True, False):
        logits = nets["d2"]([images, embedding], training=training)
        assert logits.shape == (2, 1) and np.isfinite(logits.numpy()).all()
    assert any(isinstance(x, keras.layers.SpectralNormalization) for x in nets["d1"].layers)


@pytest.mark.parametrize(
    ("low", "high"), [(16, 48), (32, 256), (16, 16), (8, 16), (128, 1024), (24, 48), (64, 64.0)]
)
def test_unsupported_stage2_pairs_are_usage_errors(low, high):
    with pytest.raises(UsageError) as error:
        sn.build_stage2_generator(
            low_size=low, high_size=high, channels=3, condition_dim=4, embedding_dim=4, filters=4
        )
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "builder",
    [sn.build_stage1_discriminator, sn.build_stage2_discriminator],
)
def test_unsupported_discriminator_sizes_are_usage_errors(builder):
    with pytest.raises(UsageError, match="image_size"):
        builder(image_size=28, channels=1, embedding_dim=4, condition_dim=4, filters=4)
    with pytest.raises(UsageError, match="filters"):
        builder(image_size=32, channels=1, embedding_dim=4, condition_dim=4, filters=0)


def test_unsupported_stage1_sizes_are_usage_errors():
    kwargs = {"latent_dim": 8, "condition_dim": 4, "embedding_dim": 4, "channels": 1}
    with pytest.raises(UsageError, match="image_size"):
        sn.build_stage1_generator(image_size=28, filters=4, **kwargs)
    with pytest.raises(UsageError, match="filters"):
        sn.build_stage1_generator(image_size=32, filters=-1, **kwargs)
    with pytest.raises(UsageError, match="residual_blocks"):
        sn.build_stage2_generator(
            low_size=16,
            high_size=32,
            channels=1,
            condition_dim=4,
            embedding_dim=4,
            filters=4,
            residual_blocks=-1,
        )


def test_stage1_to_stage2_pipeline_converts_to_builtin_tflite_with_parity(tmp_path):
    """What export will do: z and φ(t) in, ε = 0 inside, both images out (no random op)."""
    from ai_edge_litert.interpreter import Interpreter

    from tests.tflite_helpers import convert_builtins_only

    nets = networks(16, 32)
    g1, g2 = nets["g1"], nets["g2"]
    scramble(g1, seed=2)
    scramble(g2, seed=3)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, LATENT], tf.float32, name="z"),
            tf.TensorSpec([None, EMBEDDING], tf.float32, name="embedding"),
        ]
    )
    def serve(z, embedding):
        epsilon = tf.zeros([tf.shape(z)[0], CONDITION], tf.float32)  # serving uses ĉ = μ
        stage1 = g1([z, embedding, epsilon], training=False)["images"]
        stage2 = g2([stage1, embedding, epsilon], training=False)["images"]
        return {"images": stage2, "stage1_images": stage1}

    content, operators = convert_builtins_only(serve, tmp_path)
    assert not [op for op in operators if "RANDOM" in op], operators

    runner = Interpreter(model_content=content).get_signature_runner("serving_default")
    z, embedding, _ = inputs(3, seed=7)
    lite = runner(z=z.numpy(), embedding=embedding.numpy())
    reference = serve(z, embedding)
    assert lite["images"].shape == (3, 32, 32, CHANNELS)
    assert lite["stage1_images"].shape == (3, 16, 16, CHANNELS)
    for key in ("images", "stage1_images"):
        assert np.std(reference[key].numpy()) > 0.1  # parity on images, not on near-zeros
        np.testing.assert_allclose(lite[key], reference[key].numpy(), atol=1e-4)


# -- the model -------------------------------------------------------------------------------
VOCABULARY = ("", "[UNK]", "a", "dark", "light", "sandal", "sneaker", "bag")
NAMES = ("Sandal", "Sneaker", "Bag")


def tiny_model(stage: int = 1, **changes):
    from zoo.models.stackgan import StackGAN, StackGANConfig

    keras.utils.set_random_seed(5)
    config = StackGANConfig(
        stage=stage,
        stage1_size=16,
        image_size=32,
        stage1_generator_filters=4,
        stage1_discriminator_filters=4,
        stage2_generator_filters=4,
        stage2_discriminator_filters=4,
        residual_blocks=1,
        condition_dim=8,
        embedding_dim=16,
        text_embedding_dim=8,
        text_units=8,
        vocabulary=VOCABULARY,
        max_length=6,
        **{"class_names": NAMES, **changes},
    )
    return StackGAN(config, seed=3)


def text_batch(model, side: int, size: int = 4):
    tokenize = model.tokenizer.tokenize_numpy
    images = tf.random.stateless_uniform((size, side, side, 1), seed=(1, 2), minval=-1, maxval=1)
    text = tf.constant(tokenize(["a dark sandal", "a light sneaker", "a bag", "a sandal"][:size]))
    wrong = tf.constant(tokenize(["a bag", "a dark bag", "a sneaker", "a light bag"][:size]))
    labels = tf.constant([0, 1, 2, 0][:size], tf.int32)  # the captions' classes in NAMES
    return images, text, wrong, labels


def make_kl_visible(model) -> None:
    """CA weights large enough that μ and log σ² are far from 0 (the init gives KL ≈ 0)."""
    for generator in (model.stage1_generator, model.stage2_generator):
        dense = generator.get_layer("conditioning_augmentation").dense
        dense.kernel.assign(tf.random.stateless_normal(dense.kernel.shape, seed=(7, 8)))
        dense.bias.assign(tf.random.stateless_normal(dense.bias.shape, seed=(7, 9)))


@pytest.mark.parametrize("stage", [1, 2])
def test_generator_loss_adds_kl_weight_times_the_kl_of_the_trained_stage(stage):
    from zoo.core.losses import kl_divergence

    side = 16 if stage == 1 else 32
    results = {}
    for weight in (0.0, 2.5):
        model = tiny_model(stage, kl_weight=weight)
        make_kl_visible(model)
        model.compile(train_steps=1)
        data = text_batch(model, side)
        generator = model.trained_generator
        h = model.encode(data[1])
        first = [tf.zeros((4, 100)), h, tf.zeros((4, 8))]
        if stage == 2:
            first = [model.stage1_generator(first, training=False)["images"], h, tf.zeros((4, 8))]
        out = generator(first, training=True)  # μ, log σ² do not depend on ε, z or the image
        expected = float(tf.reduce_mean(kl_divergence(out["mu"], out["log_var"])))
        logs = model.train_step(data)
        results[weight] = logs
        assert float(logs["kl_loss"]) == pytest.approx(expected, rel=1e-5)
        assert expected > 0.1
    difference = float(results[2.5]["g_loss"]) - float(results[0.0]["g_loss"])
    assert difference == pytest.approx(2.5 * float(results[0.0]["kl_loss"]), rel=1e-4)


def test_phase_two_trains_stage2_only_and_leaves_stage1_as_it_was():
    model = tiny_model(2)
    model.compile(train_steps=2)
    assert {id(v) for v in model.generator_variables} == {
        id(v) for v in model.stage2_generator.trainable_variables
    }
    assert {id(v) for v in model.discriminator_variables} == {
        id(v) for v in model.stage2_discriminator.trainable_variables
    }
    nets = ("stage1_generator", "stage1_discriminator", "stage2_generator", "stage2_discriminator")
    before = {n: [w.numpy().copy() for w in getattr(model, n).weights] for n in nets}
    data = tf.data.Dataset.from_tensors(text_batch(model, 32)).repeat()
    model.fit(data, steps_per_epoch=2, verbose=0)
    for name in nets:
        after = [w.numpy() for w in getattr(model, name).weights]
        same = all(np.array_equal(b, a) for b, a in zip(before[name], after, strict=True))
        assert same == name.startswith("stage1"), name  # BN statistics of Stage-I included


def test_phase_one_trains_stage1_at_the_low_resolution():
    model = tiny_model(1)
    model.compile(train_steps=1)
    assert model.data_shape == (16, 16, 1)
    before = [w.numpy().copy() for w in model.stage2_generator.weights]
    logs = model.train_step(text_batch(model, 16))
    assert {"d_loss", "g_loss", "kl_loss", "mismatched_logit"} <= set(logs)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert all(
        np.array_equal(b, a.numpy())
        for b, a in zip(before, model.stage2_generator.weights, strict=True)
    )


def test_serving_after_each_phase_takes_the_noise_and_returns_both_stages_after_phase_two():
    for stage in (1, 2):
        model = tiny_model(stage)
        table = TASK.serving_signatures(model)
        assert list(table) == ["serving_default", "tokens", "from_embedding"]
        assert TASK.tflite_signatures(model) == ["tokens", "from_embedding"]
        assert model.noise_dim == 100 + 8 * stage  # z, then each trained stage's ε
        z = tf.random.stateless_normal((3, model.noise_dim), seed=(4, 5))
        captions = ["a dark sandal", "A LIGHT, unheard-of sneaker!!", ""]
        from_text = table["serving_default"][0](z=z, text=tf.constant(captions))
        again = table["serving_default"][0](z=z, text=tf.constant(captions))
        tokens = tf.constant(model.tokenizer.tokenize_numpy(captions))
        from_tokens = table["tokens"][0](z=z, tokens=tokens)
        expected = {"images": 16} if stage == 1 else {"images": 32, "stage1_images": 16}
        assert {k: v.shape[1] for k, v in from_text.items()} == expected
        for key in expected:  # no noise inside: the same inputs give the same images
            np.testing.assert_array_equal(from_text[key], again[key])
            np.testing.assert_allclose(from_text[key], from_tokens[key], atol=1e-6)
        if stage == 2:  # Stage-I's output is what phase 1's export serves as images
            stage1 = model.images_from(z, model.encode(tokens))["stage1_images"]
            np.testing.assert_allclose(stage1, from_text["stage1_images"], atol=1e-6)
        picture = TASK.sample_picture(model, 64)  # a row per class; (Stage-I, Stage-II) pairs
        assert picture.shape[0] == 3 * 66 + 2
        tiles = 6 * stage
        assert picture.shape[1] > tiles * 66 and picture.shape[1] < (tiles + 1) * 66 + 200


def test_the_served_noise_carries_each_stages_condition_noise():
    # The served noise is z ⊕ ε₁ ⊕ ε₂; with sample_condition_noise off (runs saved before it)
    # it is z alone and ε = 0, which the new layout gives for zero ε parts.
    model = tiny_model(2)
    old = tiny_model(2, sample_condition_noise=False)
    old.set_weights(model.get_weights())
    assert old.noise_dim == 100
    h = model.encode(tf.constant(model.tokenizer.tokenize_numpy(["a dark sandal"] * 2)))
    z = tf.random.stateless_normal((2, 100), seed=(1, 2))
    eps = tf.random.stateless_normal((2, 16), seed=(3, 4))
    zeros = tf.zeros((2, 16))

    def served(model, *parts):
        return model.images_from(tf.concat(parts, axis=1), h)

    base = served(model, z, zeros)
    for key, value in served(old, z).items():
        np.testing.assert_allclose(value, base[key], atol=1e-6)
    first = served(model, z, eps[:, :8], zeros[:, 8:])  # ε₁ moves both stages
    second = served(model, z, zeros[:, :8], eps[:, 8:])  # ε₂ only Stage-II

    def moved(a, b):  # an untrained G's images are small: relative to their size
        return np.abs(a - b).max() > 0.1 * np.abs(b).max() > 0

    assert moved(first["stage1_images"], base["stage1_images"])
    np.testing.assert_array_equal(second["stage1_images"], base["stage1_images"])
    assert moved(second["images"], base["images"])
    with pytest.raises(UsageError, match="116"):
        model.images_from(z, h)


def test_config_checks():
    from zoo.models.stackgan import StackGANConfig

    with pytest.raises(UsageError, match="stage must be 1 or 2"):
        StackGANConfig(stage=3)
    with pytest.raises(UsageError, match="2 or 4 times stage1_size"):
        StackGANConfig(stage1_size=16, image_size=48)
    with pytest.raises(UsageError, match="kl_weight"):
        StackGANConfig(kl_weight=-1.0)
    with pytest.raises(UsageError, match="text_input"):
        StackGANConfig(text_input="audio")


def test_stage_is_the_only_config_change_allowed_between_phases(tmp_path):
    import json

    from zoo import run as zoo_run
    from zoo import train
    from zoo.core.config import config_to_dict
    from zoo.models.stackgan import StackGANConfig

    run = tmp_path / "run"
    run.mkdir()
    saved = {"model": "stackgan", "model_config": config_to_dict(StackGANConfig())}
    saved["run"] = {"dataset": "fashion_mnist"}
    (run / "config.json").write_text(json.dumps(saved))
    rc = zoo_run.RunConfig(model="stackgan", model_dir=str(run), stage=2)
    assert train.resolve_config(rc, [])[1].stage == 2
    assert train.resolve_config(dataclasses_replace(rc, stage=0), [])[1].stage == 1
    assert train.resolve_config(dataclasses_replace(rc, stage=0), ["stage=2"])[1].stage == 2
    with pytest.raises(UsageError, match=r"another config \(kl_weight"):
        train.resolve_config(rc, ["kl_weight=2"])
    with pytest.raises(UsageError, match="--stage must be one of 1, 2"):
        train.resolve_config(dataclasses_replace(rc, stage=3), [])
    rc = zoo_run.RunConfig(model="dcgan", model_dir=str(tmp_path / "dcgan"), stage=1)
    with pytest.raises(UsageError, match="--stage is for families trained in phases"):
        train.resolve_config(rc, [])


def dataclasses_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


def test_stage_two_without_stage_one_is_one_line_and_exit_2(tmp_path):
    from tests.families import run_main, tiny_flags

    result = run_main([*tiny_flags("stackgan"), f"--model_dir={tmp_path}", "--stage=2"])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a Stage-I checkpoint" in lines[0], result.stderr
    assert not (tmp_path / "config.json").exists() and not (tmp_path / "text_encoder").exists()


# -- both phases end to end ------------------------------------------------------------------
_PHASES = """
import os, shutil, signal, sys, keras
from zoo import run as zoo_run
from zoo import train

dataset, overrides, root, part = {args!r}

class Kill(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == 3:
            os.kill(os.getpid(), signal.SIGKILL)

def run(name, stage, steps=4, kill=False, **options):
    options = {{"seed": 3, "deterministic": True, **options}}
    rc = zoo_run.RunConfig(model="stackgan", dataset=dataset, model_dir=os.path.join(root, name),
                         train_steps=steps, batch_size=8, checkpoint_every=2, sample_every=0,
                         log_every=2, stage=stage, **options)
    result = train.run(rc, overrides, extra_callbacks=[Kill()] if kill else [])
    print("RESULT", name, stage, result.status, result.resumed_from, result.step, flush=True)

if part == 1:
    run("a", 1)
    shutil.copytree(os.path.join(root, "a"), os.path.join(root, "b"))
    run("a", 2)
    run("b", 2, kill=True)  # SIGKILL after step 3 of phase 2: resumes from stage2/ckpt-2
else:
    import json
    from export import export_lib
    run("b", 2)
    out = os.path.join(root, "out")
    a = os.path.join(root, "a")
    phase1 = export_lib.export(a, out, checkpoint=os.path.join(a, "checkpoints"),
                               formats=["saved_model", "float32"])
    phase2 = export_lib.export(a, out)
    for result in (phase1, phase2):
        m = result.manifest
        print("EXPORT", json.dumps({{"version": result.version, "stage": m["model_config"]["stage"],
              "outputs": m["signatures"]["serving_default"]["outputs"],
              "inputs": sorted(m["signatures"]["serving_default"]["inputs"]),
              "tflite": sorted((e["file"], e["status"]) for e in m["tflite"])}}), flush=True)
"""


@pytest.mark.slow
def test_two_phases_train_resume_exactly_and_export_after_each(tmp_path):
    """Phase 1 then phase 2 in one run directory: a phase 2 killed and resumed ends with the
    weights of an uninterrupted one; Stage-I is the same in phase 1's and phase 2's checkpoints;
    exports after phase 1 (Stage-I only) and after phase 2 (both images, three flavours)."""
    import json
    import signal

    from tests.core.test_resume import _assert_same, _variables
    from tests.families import TINY, run_python
    from zoo import run as zoo_run

    dataset, overrides = TINY["stackgan"]
    args = (dataset, list(overrides), str(tmp_path))
    result = run_python(_PHASES.format(args=(*args, 1)), timeout=600)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT")]
    assert lines == [
        "RESULT a 1 completed 0 4",
        "RESULT a 2 completed 0 4",
    ], result.stdout
    assert sorted(p.name for p in (tmp_path / "b" / "stage2" / "checkpoints").glob("*.index")) == [
        "ckpt-2.index"
    ]
    result = run_python(_PHASES.format(args=(*args, 2)), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RESULT b 2 completed 2 4" in result.stdout

    a = tmp_path / "a"
    # Each phase has its own state; config.json records both.
    for phase in (a, a / "stage2"):
        assert (phase / "metrics.jsonl").exists() and (phase / "samples" / "latest.png").exists()
    saved = json.loads((a / "config.json").read_text())
    assert saved["model_config"]["stage"] == 2 and saved["run"]["stage"] == 2
    assert {k: v["data"]["shape"] for k, v in saved["stages"].items()} == {
        "1": [16, 16, 1],
        "2": [32, 32, 1],
    }
    # Exact resume of phase 2; Stage-I unchanged by phase 2 (BN statistics included): phase 1's
    # average of it (the shared table trains with ema_decay), frozen.
    straight = _variables(a / "stage2")
    _assert_same(straight, _variables(tmp_path / "b" / "stage2"))
    phase1 = _variables(a)
    assert any(n.startswith("model/ema/shadows/generator/") for n in phase1)
    assert any(n.startswith("model/ema/shadows/stage2_generator/") for n in straight)
    averaged = zoo_run.load_trained(str(a), str(a / "checkpoints"), weights="ema").model
    frozen = zoo_run.load_trained(str(a), weights="raw").model
    stage1 = list(zip(averaged.generator.weights, frozen.generator.weights, strict=True))
    assert stage1 and all(np.array_equal(np.array(x), np.array(y)) for x, y in stage1)
    assert int(straight["model/stage1_steps/.ATTRIBUTES/VARIABLE_VALUE"]) == 4

    exports = [json.loads(line[7:]) for line in result.stdout.splitlines() if line[:7] == "EXPORT "]
    assert [(e["version"], e["stage"]) for e in exports] == [(4, 1), (8, 2)]
    for e in exports:
        assert e["inputs"] == ["text", "z"]
    assert exports[0]["outputs"] == {"images": {"dtype": "float32", "shape": [None, 16, 16, 1]}}
    assert exports[1]["outputs"] == {
        "images": {"dtype": "float32", "shape": [None, 32, 32, 1]},
        "stage1_images": {"dtype": "float32", "shape": [None, 16, 16, 1]},
    }
    assert [f for f, _ in exports[1]["tflite"]] == sorted(
        f"stackgan.{s}.{f}.tflite"
        for s in ("tokens", "from_embedding")
        for f in ("float32", "float16", "int8")
    )
    assert all(status == "ok" for _, status in exports[1]["tflite"])
    # TF Serving serves the highest version: phase 2's.
    assert sorted(os.listdir(tmp_path / "out" / "stackgan")) == ["4", "8"]

    import zoo

    served = zoo.load_generator(str(tmp_path / "out" / "stackgan"))
    width = 100 + 2 * 8  # z, then ε of both stages (latent_dim 100, condition_dim 8)
    assert tuple(served.inputs["z"].shape)[1:] == (width,)
    z = np.random.default_rng(0).standard_normal((2, width)).astype("float32")
    outputs = served.outputs(z=z, text=np.asarray(["a dark sandal", "a bag"], dtype=object))
    assert outputs["images"].shape == (2, 32, 32, 1)
    assert outputs["stage1_images"].shape == (2, 16, 16, 1)
    lite = zoo.load_generator(str(tmp_path / "out" / "stackgan.tokens.float32.tflite"))
    tokens = np.asarray(
        json.loads((tmp_path / "out" / "stackgan.json").read_text())["tokenizer"]["vocabulary"]
    )
    assert len(tokens) > 2 and lite.inputs["tokens"].dtype == np.int32


@pytest.mark.slow
def test_phase_two_under_mirrored_and_mixed_float16(tmp_path_factory):
    """Phase 2 on two virtual devices in mixed_float16 after the session's tiny phase 1 (the
    shared `tests.shared_builds.tiny_stage2_run`, which the demo tests export too)."""
    import json
    import math

    from tests.shared_builds import TINY_RUN_STEPS, TINY_STAGE2_STEPS, tiny_stage2_run

    run_dir = tiny_stage2_run(tmp_path_factory)
    lines = [json.loads(x) for x in (run_dir / "stage2" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [TINY_STAGE2_STEPS]
    assert all(math.isfinite(v) for k, v in lines[0].items() if k.endswith("loss"))
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["stages"]["1"]["run"]["train_steps"] == TINY_RUN_STEPS
    assert saved["stages"]["2"]["run"]["mixed_precision"] == "mixed_float16"
    assert saved["stages"]["2"]["run"]["strategy"] == "mirrored"
    assert saved["model_config"]["stage"] == 2
    assert (run_dir / "stage2" / "samples" / "latest.png").exists()


# -- AC-GAN's class head (aux_weight) ---------------------------------------------------------


class _ImageSpy:
    """Records the images a generator makes (eager steps), and runs the real generator."""

    def __init__(self, generator):
        self.generator, self.images = generator, []

    def __call__(self, inputs, training=False):
        out = self.generator(inputs, training=training)
        self.images.append(out["images"])
        return out

    @property
    def trainable_variables(self):
        return self.generator.trainable_variables


@pytest.mark.parametrize("stage", [1, 2])
def test_class_head_terms_enter_both_losses_of_the_trained_stage_by_hand(stage):
    model = tiny_model(stage)
    assert model.aux_weight == 2.0  # the default on labelled captions
    model.compile(train_steps=1, run_eagerly=True)
    images, text, wrong, labels = text_batch(model, 16 if stage == 1 else 32)
    name = "generator" if stage == 1 else "stage2_generator"
    recorder, spy = _Recorder(), _ImageSpy(getattr(model, name))
    object.__setattr__(model, "apply_update", recorder)
    object.__setattr__(model, name, spy)
    logs = model.train_step((images, text, wrong, labels))
    d_loss, g_loss = recorder.losses
    (fake,) = spy.images
    d = model.trained_discriminator
    h, h_wrong = model.encode(text), model.encode(wrong)
    real_logits, real_classes = d([images, h], training=True)
    fake_logits, fake_classes = d([fake, h], training=True)
    wrong_logits, _ = d([images, h_wrong], training=True)
    r, f, w = (np.asarray(t, np.float64)[:, 0] for t in (real_logits, fake_logits, wrong_logits))
    d_class = _cross_entropy(real_classes, labels.numpy())
    g_class = _cross_entropy(fake_classes, labels.numpy())
    adversarial = np.mean(_softplus(-r) + 0.5 * (_softplus(f) + _softplus(w)))
    np.testing.assert_allclose(d_loss, adversarial + 2.0 * d_class, rtol=1e-5)
    kl = float(logs["kl_loss"])
    np.testing.assert_allclose(g_loss, np.mean(_softplus(-f)) + kl + 2.0 * g_class, rtol=1e-5)
    np.testing.assert_allclose(float(logs["d_class_loss"]), d_class, rtol=1e-5)
    np.testing.assert_allclose(float(logs["g_class_loss"]), g_class, rtol=1e-5)
    assert g_class > 0.5 and d_class > 0.5  # an untrained head: the terms are not negligible


def test_class_heads_read_the_image_not_the_text_and_only_the_trained_d_is_used():
    model = tiny_model(2)
    for d, side in ((model.stage1_discriminator, 16), (model.stage2_discriminator, 32)):
        images, text, wrong, _ = text_batch(model, side)
        logits, classes = d([images, model.encode(text)], training=False)
        _, classes_wrong = d([images, model.encode(wrong)], training=False)
        assert logits.shape == (4, 1) and classes.shape == (4, 3)
        assert classes.dtype == tf.float32 and logits.dtype == tf.float32
        np.testing.assert_array_equal(classes, classes_wrong)
    assert model.text_discriminator is model.stage2_discriminator
    assert model.discriminate(images, False, condition=model.encode(text)).shape == (4, 1)


@pytest.mark.parametrize("stage", [1, 2])
def test_aux_weight_zero_is_the_step_without_a_head(stage):
    """Off, the Ds have one output and the step's losses are those of a model built without the
    head (the same weights, the same draws)."""
    off = tiny_model(stage, aux_weight=0.0)
    assert off.aux_weight == 0.0 and "g_class_loss" not in off.trackers
    assert len(off.stage1_discriminator.outputs) == len(off.stage2_discriminator.outputs) == 1
    on = tiny_model(stage)
    for name in ("generator", "stage2_generator", "text_encoder"):
        for a, b in zip(getattr(off, name).weights, getattr(on, name).weights, strict=True):
            b.assign(a)
    for name in ("stage1_discriminator", "stage2_discriminator"):  # the head's weights aside
        head = {id(v) for v in getattr(on, name).get_layer("class_logits").weights}
        shared = [v for v in getattr(on, name).weights if id(v) not in head]
        for a, b in zip(getattr(off, name).weights, shared, strict=True):
            b.assign(a)
    data = text_batch(off, 16 if stage == 1 else 32)
    off.compile(train_steps=1)
    on.compile(train_steps=1)
    logs_off, logs_on = off.train_step(data), on.train_step(data)
    for key in ("real_logit", "fake_logit", "kl_loss"):  # same D (before its update), same G
        assert float(logs_off[key]) == pytest.approx(float(logs_on[key]), rel=1e-6), key
    assert float(logs_on["d_loss"]) > float(logs_off["d_loss"])  # plus 2 × the class loss


def test_class_head_off_for_old_runs_and_unlabelled_data():
    from zoo.core.config import config_from_dict, config_to_dict
    from zoo.models.stackgan import StackGAN, StackGANConfig

    # A run saved before the class head (no aux_weight in its config.json) loads without one.
    saved = config_to_dict(tiny_model(2).config)
    del saved["aux_weight"]
    old = StackGAN(config_from_dict(StackGANConfig, saved), seed=3)
    assert old.config.aux_weight == 0.0 and old.aux_weight == 0.0
    assert len(old.stage2_discriminator.outputs) == 1
    assert tiny_model(1, aux_weight=0.5).aux_weight == 0.5
    assert tiny_model(1, class_names=()).aux_weight == 0.0
    with pytest.raises(UsageError, match="aux_weight > 0 needs labelled data"):
        tiny_model(1, class_names=(), aux_weight=0.5)
    with pytest.raises(ValueError, match="needs labels"):
        tiny_model(1).train_step(text_batch(tiny_model(1), 16)[:3])


# -- the attribute head (attribute_weight; off by default on StackGAN) -------------------------


@pytest.mark.parametrize("stage", [1, 2])
def test_attribute_head_terms_enter_both_losses_of_the_trained_stage_by_hand(stage):
    from zoo.models.text_family import attribute_loss

    assert tiny_model(stage).attribute_weight == 0.0  # off unless asked for
    model = tiny_model(stage, attribute_weight=0.5)
    assert len(model.stage1_discriminator.outputs) == len(model.stage2_discriminator.outputs) == 3
    model.compile(train_steps=1, run_eagerly=True)
    images, text, wrong, labels = text_batch(model, 16 if stage == 1 else 32)
    stated = tf.constant([[0, -1], [1, -1], [-1, -1], [-1, -1]], tf.int32)  # the captions'
    name = "generator" if stage == 1 else "stage2_generator"
    recorder, spy = _Recorder(), _ImageSpy(getattr(model, name))
    object.__setattr__(model, "apply_update", recorder)
    object.__setattr__(model, name, spy)
    logs = model.train_step((images, text, wrong, labels, stated))
    d_loss, g_loss = recorder.losses
    (fake,) = spy.images
    d = model.trained_discriminator
    h, h_wrong = model.encode(text), model.encode(wrong)
    real_logits, real_classes, real_attributes = d([images, h], training=True)
    fake_logits, fake_classes, fake_attributes = d([fake, h], training=True)
    wrong_logits, *_ = d([images, h_wrong], training=True)
    r, f, w = (np.asarray(t, np.float64)[:, 0] for t in (real_logits, fake_logits, wrong_logits))
    # Only the brightness of the first two captions is stated: dark (0), light (1).
    a_real, a_fake = (
        np.asarray(real_attributes, np.float64),
        np.asarray(fake_attributes, np.float64),
    )
    d_attribute = (_softplus(a_real[0, 0]) + _softplus(-a_real[1, 0])) / 4
    g_attribute = (_softplus(a_fake[0, 0]) + _softplus(-a_fake[1, 0])) / 4
    assert float(np.mean(attribute_loss(real_attributes, stated))) == pytest.approx(
        d_attribute, rel=1e-5
    )
    d_class = _cross_entropy(real_classes, labels.numpy())
    g_class = _cross_entropy(fake_classes, labels.numpy())
    adversarial = np.mean(_softplus(-r) + 0.5 * (_softplus(f) + _softplus(w)))
    np.testing.assert_allclose(d_loss, adversarial + 2.0 * d_class + 0.5 * d_attribute, rtol=1e-5)
    kl = float(logs["kl_loss"])
    np.testing.assert_allclose(
        g_loss, np.mean(_softplus(-f)) + kl + 2.0 * g_class + 0.5 * g_attribute, rtol=1e-5
    )
    np.testing.assert_allclose(float(logs["d_attribute_loss"]), d_attribute, rtol=1e-5)
    np.testing.assert_allclose(float(logs["g_attribute_loss"]), g_attribute, rtol=1e-5)
    assert float(model.trackers["g_attribute_loss"].result()) == pytest.approx(
        g_attribute, rel=1e-5
    )
