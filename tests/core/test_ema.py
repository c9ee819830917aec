"""The generator's moving average (`zoo.core.ema`): the update rule and its ramp-up by hand,
skipped steps, the swap, checkpoints, the driver's and load_trained's use, mirrored replicas.

Exact resume and export parity with the average on are the shared table's (tests/families.py
trains every family with `ema_decay`): tests/core/test_resume.py, tests/export/."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.families import run_python
from zoo import registry
from zoo.core import distribute
from zoo.core.config import apply_overrides
from zoo.core.ema import GeneratorEMA, ramp_decay
from zoo.errors import UsageError

TINY_DCGAN = ["image_size=16", "generator_filters=4", "discriminator_filters=4", "latent_dim=8"]


def _dcgan(*overrides, seed=1):
    family = registry.get("dcgan")
    config = apply_overrides(family.config_class(), [*TINY_DCGAN, *overrides])
    model = family.build_model(config, seed=seed)
    model.compile(train_steps=10)
    return model


def _images(seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (8, 16, 16, 1)).astype("float32")


def _values(variables):
    return [np.array(v) for v in variables]


def _assign_random(weights, rng) -> list[np.ndarray]:
    """Sets each weight to fresh N(0, 1) values (a stand-in for a training step); returns them."""
    new = [rng.normal(size=w.shape).astype("float32") for w in weights]
    for w, value in zip(weights, new, strict=True):
        w.assign(value)
    return new


def test_ramp_up_by_hand():
    # d_t = min(decay, (1 + t) / (10 + t)): 1/10, 2/11, 11/20, then capped.
    for t, expected in [(0, 0.1), (1, 2 / 11), (10, 11 / 20), (8991, 0.999), (10**6, 0.999)]:
        assert float(ramp_decay(0.999, t)) == pytest.approx(expected, rel=1e-6), t
    assert float(ramp_decay(0.5, 10)) == 0.5
    assert float(ramp_decay(0.5, 5)) == pytest.approx(6 / 15)


def _tiny_network():
    x = keras.Input((2,))
    y = keras.layers.BatchNormalization()(keras.layers.Dense(3)(x))
    return keras.Model(x, y)


def test_update_rule_by_hand_with_batch_norm_statistics_and_a_skipped_step():
    network = _tiny_network()
    ema = GeneratorEMA({"g": network}, decay=0.3)
    weights = network.weights  # kernel, bias, gamma, beta, moving mean, moving variance
    assert len(weights) == 6 and len(ema.shadows["g"]) == 6
    rng = np.random.default_rng(0)
    expected = _values(weights)
    for t in range(3):
        new = _assign_random(weights, rng)
        ema.update({"g": network}, tf.constant(True))
        decay = min(0.3, (1 + t) / (10 + t))  # 0.1, 2/11, 0.25
        expected = [s - np.float32(1 - decay) * (s - w) for s, w in zip(expected, new, strict=True)]
        for got, want in zip(_values(ema.shadows["g"]), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert int(ema.num_updates.numpy()) == 3
    # A skipped step (non-finite) with NaN batch-norm statistics moves nothing, not even t.
    weights[4].assign(np.full(3, np.nan, np.float32))
    before = _values(ema.shadows["g"])
    ema.update({"g": network}, tf.constant(False))
    for a, b in zip(before, _values(ema.shadows["g"]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(ema.num_updates.numpy()) == 3


def test_average_in_training_follows_the_rule_and_leaves_training_unchanged():
    model, plain = _dcgan("ema_decay=0.5"), _dcgan()
    assert plain.ema is None
    for a, b in zip(plain.weights, model.weights, strict=True):
        a.assign(b)
    networks = model.ema_networks
    assert list(networks) == ["generator"]
    assert len(model.ema.shadows["generator"]) == len(model.generator.weights)
    assert all(s.dtype == tf.float32 for s in model.ema.shadows["generator"])
    expected = _values(model.generator.weights)
    for t in range(3):
        model.train_on_batch(_images(t))
        plain.train_on_batch(_images(t))
        decay = min(0.5, (1 + t) / (10 + t))
        w = _values(model.generator.weights)
        expected = [s - np.float32(1 - decay) * (s - x) for s, x in zip(expected, w, strict=True)]
    for got, want in zip(_values(model.ema.shadows["generator"]), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The average only watches: both networks train exactly as without it.
    for a, b in zip(_values(model.weights), _values(plain.weights), strict=True):
        np.testing.assert_array_equal(a, b)


def test_swap_gives_the_average_and_restores_g_bit_for_bit():
    model = _dcgan("ema_decay=0.5")
    for t in range(2):
        model.train_on_batch(_images(t))
    raw = _values(model.generator.weights)
    inputs = model.sample_inputs(4)
    raw_out = np.array(model.generate(inputs))
    with model.ema_weights():
        for w, s in zip(model.generator.weights, model.ema.shadows["generator"], strict=True):
            np.testing.assert_array_equal(np.array(w), np.array(s))
        ema_out = np.array(model.generate(inputs))
        with pytest.raises(RuntimeError, match="already swapped"), model.ema_weights():
            pass
    assert not np.allclose(ema_out, raw_out, rtol=1e-3, atol=0)
    with pytest.raises(ValueError, match="inside"), model.ema_weights():
        raise ValueError("inside")
    assert not model.ema.swapped_in
    for a, b in zip(raw, _values(model.generator.weights), strict=True):
        np.testing.assert_array_equal(a, b)
    plain = _dcgan()
    with plain.ema_weights():  # no average: a no-op
        np.testing.assert_array_equal(np.array(plain.generate(inputs)).shape, raw_out.shape)


def test_checkpoint_holds_the_average_and_restores_it_exactly(tmp_path):
    model = _dcgan("ema_decay=0.5")
    for t in range(2):
        model.train_on_batch(_images(t))
    path = tf.train.Checkpoint(**model.checkpoint_items()).save(str(tmp_path / "ckpt"))
    names = tf.train.load_checkpoint(path).get_variable_to_shape_map()
    assert sum("model/ema/shadows/generator/" in n for n in names) == len(model.generator.weights)
    other = _dcgan("ema_decay=0.5", seed=7)
    tf.train.Checkpoint(**other.checkpoint_items()).restore(path).assert_consumed()
    saved, restored = model.ema.shadows["generator"], other.ema.shadows["generator"]
    for a, b in zip(_values(saved), _values(restored), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(other.ema.num_updates.numpy()) == 2
    plain = _dcgan()
    path = tf.train.Checkpoint(**plain.checkpoint_items()).save(str(tmp_path / "plain"))
    assert not any("ema" in n for n in tf.train.load_checkpoint(path).get_variable_to_shape_map())


@pytest.mark.parametrize("value", ["1", "-0.1", "1.5"])
def test_ema_decay_outside_zero_to_one_is_a_usage_error(value):
    family = registry.get("dcgan")
    with pytest.raises(UsageError, match="ema_decay"):
        apply_overrides(family.config_class(), [f"ema_decay={value}"])


def test_checkpoint_callback_refuses_to_save_while_swapped(tmp_path):
    from zoo.core.callbacks import CheckpointCallback, NonFiniteGuard

    model = _dcgan("ema_decay=0.5")

    class Never:
        latest_step = -1

        def save(self):
            raise AssertionError("saved")

    callback = CheckpointCallback(Never(), 0, 1, NonFiniteGuard(0))
    callback.set_model(model)
    with model.ema_weights(), pytest.raises(RuntimeError, match="EMA"):
        callback._save()


@pytest.mark.slow
def test_run_samples_loads_and_exports_the_average(tmp_path):
    from export import export_lib
    from zoo import run as zoo_run
    from zoo import train

    rc = zoo_run.RunConfig(
        model="dcgan",
        dataset="fashion_mnist",
        model_dir=str(tmp_path / "run"),
        train_steps=3,
        batch_size=8,
        seed=3,
        sample_every=0,
        log_every=0,
    )
    result = train.run(rc, [*TINY_DCGAN, "ema_decay=0.5"])
    trained = result.model
    assert not trained.ema.swapped_in
    inputs = trained.sample_inputs(4, seed=5)
    raw_out = np.array(trained.generate(inputs))
    with trained.ema_weights():
        ema_out = np.array(trained.generate(inputs))
    assert not np.allclose(ema_out, raw_out, rtol=1e-3, atol=0)

    loaded = zoo_run.load_trained(rc.model_dir)
    assert loaded.weights == "ema"
    np.testing.assert_allclose(np.array(loaded.model.generate(inputs)), ema_out, atol=1e-6)
    raw = zoo_run.load_trained(rc.model_dir, weights="raw")
    assert raw.weights == "raw"
    np.testing.assert_allclose(np.array(raw.model.generate(inputs)), raw_out, atol=1e-6)
    with pytest.raises(UsageError, match="weights"):
        zoo_run.load_trained(rc.model_dir, weights="average")

    for weights, expected in [(None, ema_out), ("raw", raw_out)]:
        out = str(tmp_path / f"export_{weights}")
        export = export_lib.export(rc.model_dir, out, formats="saved_model", weights=weights)
        assert export.manifest["weights"] == (weights or "ema")
        served = tf.saved_model.load(export.saved_model_dir).signatures["serving_default"]
        images = served(z=tf.constant(inputs["z"]))["images"].numpy()
        np.testing.assert_allclose(images, expected, atol=1e-5)

    plain = zoo_run.RunConfig(**{**rc.__dict__, "model_dir": str(tmp_path / "plain")})
    train.run(plain, [*TINY_DCGAN, "ema_decay=0"])  # Fashion-MNIST's DCGAN default is 0.99
    assert zoo_run.load_trained(plain.model_dir).weights == "raw"
    with pytest.raises(UsageError, match="no EMA weights"):
        zoo_run.load_trained(plain.model_dir, weights="ema")


def test_replicas_of_a_mirrored_strategy_hold_the_same_average():
    code = f"""
import numpy as np
from zoo.core import distribute
strategy = distribute.build_strategy("mirrored", num_virtual_devices=2)
from zoo import registry
from zoo.core.config import apply_overrides
family = registry.get("dcgan")
config = apply_overrides(family.config_class(), {[*TINY_DCGAN, "ema_decay=0.5"]!r})
with strategy.scope():
    model = family.build_model(config, seed=0)
    model.compile(train_steps=10)
expected = [np.array(w) for w in model.generator.weights]
rng = np.random.default_rng(0)
for t in range(2):
    model.train_on_batch(rng.uniform(-1, 1, (8, 16, 16, 1)).astype("float32"))
    decay = min(0.5, (1 + t) / (10 + t))
    w = [np.array(v) for v in model.generator.weights]
    expected = [s - np.float32(1 - decay) * (s - x) for s, x in zip(expected, w)]
shadows = model.ema.shadows["generator"]
locals_ = [strategy.experimental_local_results(s) for s in shadows]
same = all(np.array_equal(np.array(r[0]), np.array(r[1])) for r in locals_)
error = max(float(np.abs(np.array(r[0]) - e).max()) for r, e in zip(locals_, expected))
counts = [int(c) for c in strategy.experimental_local_results(model.ema.num_updates)]
print(len(locals_[0]), same, error < 1e-5, counts)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["2", "True", "True", "[2,", "2]"], result.stdout


def test_shadows_are_float32_under_mixed_float16():
    distribute.set_precision("mixed_float16")
    model = _dcgan("ema_decay=0.5")
    assert any(w.dtype == "float32" and w.trainable for w in model.generator.weights)
    finite = model.train_on_batch(_images(), return_dict=True)["finite"]
    shadows = model.ema.shadows["generator"]
    assert {s.dtype for s in shadows} == {tf.float32}
    assert all(np.isfinite(np.array(s)).all() for s in shadows)
    assert int(model.ema.num_updates.numpy()) == int(finite)  # a skipped step is not counted


def test_a_config_saved_before_the_average_existed_has_none():
    import dataclasses

    from zoo.core.config import config_from_dict, config_to_dict

    @dataclasses.dataclass
    class Averaged(registry.get("dcgan").config_class):
        ema_decay: float = 0.999  # a family that turned the average on by default

    saved = config_to_dict(Averaged())
    assert config_from_dict(Averaged, saved).ema_decay == 0.999
    del saved["ema_decay"]  # a config.json from before the field
    assert config_from_dict(Averaged, saved).ema_decay == 0.0


def test_stackgan_phase_two_starts_from_phase_one_s_averaged_stage_one(tmp_path):
    from zoo import run as zoo_run

    task = registry.get("stackgan")
    overrides = [
        "text_input=embeddings",
        "stage1_size=16",
        "image_size=32",
        *(f"stage{s}_{p}_filters=4" for s in (1, 2) for p in ("generator", "discriminator")),
        "residual_blocks=1",
        "condition_dim=4",
        "embedding_dim=8",
        "latent_dim=4",
        "ema_decay=0.5",
    ]
    config = apply_overrides(task.config_class(), overrides)
    first = task.build_model(config, seed=0)
    assert list(first.ema_networks) == ["generator"]
    for shadow in first.ema.shadows["generator"]:
        shadow.assign(shadow + 1.0)  # an average unlike the raw weights
    directory = zoo_run.checkpoint_dir(str(tmp_path), 1)
    tf.train.Checkpoint(model=first).save(f"{directory}/ckpt")
    second = task.build_model(apply_overrides(config, ["stage=2"]), seed=0)
    assert list(second.ema_networks) == ["stage2_generator"]
    rc = zoo_run.RunConfig(model="stackgan", dataset="fashion_mnist", model_dir=str(tmp_path))
    task.warm_start(second, rc)
    for shadow, weight in zip(
        first.ema.shadows["generator"], second.generator.weights, strict=True
    ):
        np.testing.assert_array_equal(np.array(shadow), np.array(weight))


def test_copied_batch_norm_statistics_are_g_s_own_bit_for_bit_and_kept_on_a_skipped_step():
    network = _tiny_network()
    ema = GeneratorEMA({"g": network}, decay=0.3, statistics="copy")
    weights = network.weights  # kernel, bias, gamma, beta, moving mean, moving variance
    rng = np.random.default_rng(1)
    expected = _values(weights)
    for t in range(2):
        new = _assign_random(weights, rng)
        ema.update({"g": network}, tf.constant(True))
        decay = min(0.3, (1 + t) / (10 + t))  # 0.1, 2/11
        expected = [s - np.float32(1 - decay) * (s - w) for s, w in zip(expected, new, strict=True)]
        got = _values(ema.shadows["g"])
        for i in range(4):  # the weights are averaged
            np.testing.assert_allclose(got[i], expected[i], rtol=1e-6, atol=1e-7)
        for i in (4, 5):  # the moving statistics are G's, exactly
            np.testing.assert_array_equal(got[i], new[i])
    last = _values(ema.shadows["g"])
    weights[4].assign(np.full(3, np.nan, np.float32))
    ema.update({"g": network}, tf.constant(False))
    for a, b in zip(last, _values(ema.shadows["g"]), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="statistics"):
        GeneratorEMA({"g": network}, decay=0.3, statistics="standing")
