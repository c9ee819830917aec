"""The shared GAN base: non-finite steps, discriminator steps, penalties, noise, divergence."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.families import run_python
from zoo import registry, train
from zoo import run as zoo_run
from zoo.core import distribute
from zoo.core.config import apply_overrides
from zoo.errors import TrainingDivergedError, UsageError


def _toy_gan(*overrides, data_dim=2):
    family = registry.get("gan")
    config = apply_overrides(
        family.config_class(),
        [f"data_dim={data_dim}", "generator_units=8", "discriminator_units=8", *overrides],
    )
    model = family.build_model(config, seed=1)
    model.compile(train_steps=10)
    return model


def _weights(network):
    return [np.array(v) for v in network.weights]


def test_non_finite_step_is_skipped_and_reported():
    model = _toy_gan()
    good = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    bad = good.copy()
    bad[3, 1] = np.nan
    d_before, g_before = _weights(model.discriminator), _weights(model.generator)
    logs = model.train_on_batch(bad, return_dict=True)
    assert logs["finite"] == 0.0
    # D's loss saw the NaN: its update is skipped. G's loss never touches real data.
    for a, b in zip(d_before, _weights(model.discriminator), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b) for a, b in zip(g_before, _weights(model.generator), strict=True)
    )
    # A float32 scale stays exactly 1: halved, it would never grow back (nor should it).
    assert float(model.d_optimizer.dynamic_scale.numpy()) == 1.0
    assert int(model.d_optimizer.inner_optimizer.iterations.numpy()) == 0
    assert int(model.step.numpy()) == 1
    assert model.trackers["d_loss"].count.numpy() == 0  # the NaN did not enter the mean
    assert model.trackers["g_loss"].count.numpy() == 1
    logs = model.train_on_batch(good, return_dict=True)
    assert logs["finite"] == 1.0 and np.isfinite(logs["d_loss"]) and np.isfinite(logs["g_loss"])
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(d_before, _weights(model.discriminator), strict=True)
    )


def test_d_steps_take_fresh_minibatches():
    model = _toy_gan("d_steps=3")
    assert model.d_steps == 3
    batch = np.random.default_rng(0).normal(size=(3 * 4, 2)).astype("float32")
    model.train_on_batch(batch, return_dict=True)
    assert int(model.d_optimizer.inner_optimizer.iterations.numpy()) == 3
    assert int(model.g_optimizer.inner_optimizer.iterations.numpy()) == 1
    parts = model.split_for_d_steps(tf.constant(batch))
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in parts]), batch)


def test_wgan_gp_defaults_to_five_critic_steps_and_tracks_the_penalty():
    model = _toy_gan("loss=wgan_gp")
    assert model.d_steps == 5 and model.gp_weight == 10.0
    batch = np.random.default_rng(0).normal(size=(5 * 4, 2)).astype("float32")
    logs = model.train_on_batch(batch, return_dict=True)
    assert logs["gradient_penalty"] > 0 and np.isfinite(logs["gradient_penalty"])
    assert int(model.d_optimizer.inner_optimizer.iterations.numpy()) == 5


def test_r1_penalty_is_tracked_when_enabled():
    model = _toy_gan("r1_gamma=10")
    logs = model.train_on_batch(np.ones((8, 2), "float32"), return_dict=True)
    assert "r1_penalty" in logs and logs["r1_penalty"] >= 0


def test_lazy_r1_weighs_k_times_on_every_kth_step_and_nothing_between():
    real = tf.constant(np.random.default_rng(0).normal(size=(8, 2)).astype("float32"))
    fake = tf.constant(np.random.default_rng(1).normal(size=(8, 2)).astype("float32"))
    plain, every, lazy = (
        _toy_gan(*flags) for flags in ([], ["r1_gamma=0.5"], ["r1_gamma=0.5", "r1_interval=4"])
    )
    for model in (every, lazy):  # one set of weights: the losses differ by the penalty alone
        model.discriminator.set_weights(plain.discriminator.get_weights())

    def d_loss(model, step):
        model.step.assign(step)
        loss, logs = tf.function(model.discriminator_loss)(real, fake)
        return float(loss), logs

    base, _ = d_loss(plain, 0)
    with_r1, logs = d_loss(every, 5)
    term = with_r1 - base
    penalty = float(logs["r1_penalty"])
    assert term > 1e-4 and term == pytest.approx(0.5 * 0.5 * penalty, rel=1e-4)
    for step in (0, 8):  # due: 4 times the term, logged as 4 times the penalty
        loss, logs = d_loss(lazy, step)
        assert loss - base == pytest.approx(4 * term, rel=1e-4)
        assert float(logs["r1_penalty"]) == pytest.approx(4 * penalty, rel=1e-4)
    for step in (1, 3, 6):  # between: no penalty, and none logged
        loss, logs = d_loss(lazy, step)
        assert loss == base and float(logs["r1_penalty"]) == 0.0
    # Trains through fit's function (tf.cond around the double back-propagation).
    for _ in range(2):
        logs = lazy.train_on_batch(real.numpy(), return_dict=True)
        assert logs["finite"] == 1.0 and np.isfinite(logs["d_loss"])


def test_r1_interval_below_one_is_refused():
    with pytest.raises(UsageError, match="r1_interval must be >= 1"):
        _toy_gan("r1_interval=0")


def test_pacgan_packs_samples_for_the_discriminator():
    model = _toy_gan("pack=4")
    assert model.discriminator.input_shape == (None, 8)
    logits = model.discriminate(tf.zeros((8, 2)), training=False)
    assert logits.shape == (2, 1)
    logs = model.train_on_batch(np.ones((8, 2), "float32"), return_dict=True)
    assert np.isfinite(logs["d_loss"])


def test_noise_is_repeatable_by_seed_and_advances():
    a, b = _toy_gan(), _toy_gan()
    z1, z2 = a.noise(4).numpy(), a.noise(4).numpy()
    np.testing.assert_array_equal(z1, b.noise(4).numpy())
    assert not np.allclose(z1, z2)
    assert z1.dtype == np.float32 and z1.shape == (4, a.config.latent_dim)


def test_noise_differs_between_replicas():
    code = """
from zoo.core import distribute
strategy = distribute.build_strategy("mirrored", num_virtual_devices=2)
from zoo import registry
from zoo.core.config import apply_overrides
family = registry.get("gan")
with strategy.scope():
    model = family.build_model(apply_overrides(family.config_class(), ["data_dim=2"]), seed=0)
values = strategy.experimental_local_results(strategy.run(lambda: model.noise(3)))
print(len(values), float(abs(values[0] - values[1]).numpy().max()))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    replicas, difference = result.stdout.split()
    assert replicas == "2" and float(difference) > 0.1


def test_float32_loss_scale_stays_one_through_skipped_steps():
    model = _toy_gan()
    bad = np.full((8, 2), np.inf, np.float32)
    for _ in range(3):
        assert model.train_on_batch(bad, return_dict=True)["finite"] == 0.0
    good = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    for _ in range(2):
        assert model.train_on_batch(good, return_dict=True)["finite"] == 1.0
    for optimizer in (model.d_optimizer, model.g_optimizer):
        assert float(optimizer.dynamic_scale.numpy()) == 1.0
        assert float(optimizer.scale_loss(tf.constant(3.0))) == 3.0
    assert int(model.d_optimizer.inner_optimizer.iterations.numpy()) == 2


def _mirrored_toy_gan(precision: str = "float32") -> str:
    """Code that builds and compiles a toy GAN `model` on two virtual devices under `precision`
    and keeps D's weights in `before` (the start of the mirrored snippets below)."""
    return f"""
import numpy as np, tensorflow as tf
from zoo.core import distribute
strategy = distribute.build_strategy("mirrored", num_virtual_devices=2)
distribute.set_precision({precision!r})
from zoo import registry
from zoo.core.config import apply_overrides
family = registry.get("gan")
config = apply_overrides(family.config_class(), ["data_dim=2", "discriminator_units=8"])
with strategy.scope():
    model = family.build_model(config, seed=0)
    model.compile(train_steps=10)
before = [np.array(v) for v in model.discriminator.weights]
"""


def test_float32_skip_under_a_mirrored_strategy_keeps_the_scale_and_the_weights():
    code = (
        _mirrored_toy_gan()
        + """
finite = model.train_on_batch(np.full((8, 2), np.nan, np.float32), return_dict=True)["finite"]
same = all(np.array_equal(a, np.array(b)) for a, b in zip(before, model.discriminator.weights))
good = np.ones((8, 2), np.float32)
print(finite, same, float(model.d_optimizer.dynamic_scale.numpy()),
      model.train_on_batch(good, return_dict=True)["finite"])
"""
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["0.0", "True", "1.0", "1.0"]


@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_one_replicas_non_finite_gradients_skip_the_step_on_every_replica(precision):
    """Replica 0's half of the batch is good, replica 1's is NaN: the summed gradients are not
    finite, so nothing is applied anywhere (Keras' `LossScaleOptimizer` asks replica 0 alone)."""
    code = (
        _mirrored_toy_gan(precision)
        + """
scale = float(model.d_optimizer.dynamic_scale.numpy())
batch = np.ones((8, 2), np.float32)
batch[4:] = np.nan  # the second replica's examples (fit splits a dataset's batch in order)
model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
finite = all(np.isfinite(np.array(v)).all() for v in model.discriminator.weights)
same = all(np.array_equal(a, np.array(b)) for a, b in zip(before, model.discriminator.weights))
print(finite, same, float(model.d_optimizer.dynamic_scale.numpy()) / scale,
      int(model.d_optimizer.inner_optimizer.iterations.numpy()))
"""
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    halved = "0.5" if precision == "mixed_float16" else "1.0"
    assert result.stdout.split() == ["True", "True", halved, "0"]


def _optimizer_state(optimizer):
    return {v.path: np.array(v) for v in optimizer.variables}


def test_float16_overflow_skips_the_step_keeps_the_state_and_halves_the_scale():
    distribute.set_precision("mixed_float16")
    model = _toy_gan()
    good = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    model.train_on_batch(good)  # the optimizers' slots hold values, not only zeros
    scale = float(model.d_optimizer.dynamic_scale.numpy())
    d_weights, d_state = _weights(model.discriminator), _optimizer_state(model.d_optimizer)
    # Finite in float32, past float16's range (65504) in D's float16 layers.
    overflow = np.full((8, 2), 1e6, np.float32)
    logs = model.train_on_batch(overflow, return_dict=True)
    assert logs["finite"] == 0.0
    for before, after in zip(d_weights, _weights(model.discriminator), strict=True):
        np.testing.assert_array_equal(before, after)
    state = _optimizer_state(model.d_optimizer)
    assert float(state.pop(model.d_optimizer.dynamic_scale.path)) == scale / 2
    assert int(state.pop(model.d_optimizer.step_counter.path)) == 0  # finite steps since: none
    assert len(state) == len(d_state) - 2 and len(state) > 2  # Adam's iterations, m and v
    for path, value in state.items():
        np.testing.assert_array_equal(d_state[path], value, err_msg=path)
    for _ in range(3):
        logs = model.train_on_batch(good, return_dict=True)
        assert logs["finite"] == 1.0, logs
        assert np.isfinite(logs["d_loss"]) and np.isfinite(logs["g_loss"])
    assert float(model.d_optimizer.dynamic_scale.numpy()) == scale / 2  # grows after 2000
    assert int(model.d_optimizer.inner_optimizer.iterations.numpy()) == 4
    assert not np.array_equal(d_weights[0], _weights(model.discriminator)[0])


def test_mixed_float16_wraps_optimizers_in_dynamic_loss_scaling():
    distribute.set_precision("mixed_float16")
    model = _toy_gan()
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(model.d_optimizer.dynamic_scale.numpy()) > 1.0
    assert model.generator.output.dtype == "float32"
    assert model.discriminator.output.dtype == "float32"
    distribute.set_precision("float32")
    assert float(_toy_gan().g_optimizer.dynamic_scale.numpy()) == 1.0


class _Poison(keras.callbacks.Callback):
    """Turns the discriminator's weights into NaN after step 2."""

    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            for v in self.model.discriminator.trainable_variables:
                v.assign(tf.fill(v.shape, np.nan))


def test_diverging_run_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    rc = zoo_run.RunConfig(
        model="gan",
        dataset="ring8",
        model_dir=str(tmp_path),
        train_steps=50,
        batch_size=8,
        checkpoint_every=2,
        sample_every=0,
        log_every=0,
        max_nonfinite_steps=3,
    )
    with pytest.raises(TrainingDivergedError, match="3 steps in a row"):
        train.run(rc, ["generator_units=8", "discriminator_units=8"], extra_callbacks=[_Poison()])
    assert zoo_run.latest_step(str(tmp_path)) == 2
    reader = tf.train.load_checkpoint(os.path.join(tmp_path, "checkpoints", "ckpt-2"))
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.all(np.isfinite(value)), name


def _image_critic(norm):
    images = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, strides=2)(images)
    x = keras.layers.Dense(1)(keras.layers.Flatten()(norm()(x)))
    return keras.Model(images, x)


def test_joint_scoring_equals_separate_calls_for_a_per_example_critic():
    from zoo.core.layers import InstanceNormalization

    model = _toy_gan()
    rng = np.random.default_rng(0)
    real, fake = (tf.constant(rng.normal(size=(3, 8, 8, 2)), tf.float32) for _ in "rf")

    def loss_and_grads(critic, joint):
        with tf.GradientTape() as tape:
            loss, logs = model.discriminator_loss(
                real, fake, lambda x: critic(x, training=True), joint=joint
            )
        return loss, logs, tape.gradient(loss, critic.trainable_variables)

    critic = _image_critic(InstanceNormalization)
    loss, logs, grads = loss_and_grads(critic, joint=True)
    ref_loss, ref_logs, ref_grads = loss_and_grads(critic, joint=False)
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-6)
    assert float(logs["real_logit"]) == pytest.approx(float(ref_logs["real_logit"]), abs=1e-6)
    for got, want in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # Batch norm's statistics would mix real and fake: why `joint` is the caller's choice.
    batch_norm = _image_critic(keras.layers.BatchNormalization)
    joint_bn, _, _ = loss_and_grads(batch_norm, joint=True)
    separate_bn, _, _ = loss_and_grads(batch_norm, joint=False)
    assert abs(float(joint_bn) - float(separate_bn)) > 1e-4
