"""FusedAdam: Keras's Adam update in one TensorFlow kernel per variable."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.families import run_python
from zoo.core.optimizers import FusedAdam
from zoo.core.schedules import ConstantThenLinearDecay


def _trajectory(optimizer, steps=6, seed=0):
    """Variables after `steps` updates from fixed gradients, and the slots."""
    rng = np.random.default_rng(seed)
    variables = [
        keras.Variable(rng.normal(size=shape).astype("float32"), name=f"w{i}")
        for i, shape in enumerate([(3, 4), (7,), (2, 2, 3, 5)])
    ]
    grads = [
        [tf.constant(rng.normal(size=v.shape).astype("float32")) for v in variables]
        for _ in range(steps)
    ]
    optimizer.build(variables)

    @tf.function
    def update(gs):
        optimizer.apply(gs, variables)

    for gs in grads:
        update(gs)
    return [v.numpy() for v in variables], [v.numpy() for v in optimizer.variables]


def _by_hand(steps=6, seed=0, lr=1e-3, beta_1=0.5, beta_2=0.999, eps=1e-7):
    rng = np.random.default_rng(seed)
    theta = [rng.normal(size=s).astype("float64") for s in [(3, 4), (7,), (2, 2, 3, 5)]]
    grads = [[rng.normal(size=t.shape) for t in theta] for _ in range(steps)]
    m = [np.zeros_like(t) for t in theta]
    v = [np.zeros_like(t) for t in theta]
    for t, gs in enumerate(grads, start=1):
        alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        for i, g in enumerate(gs):
            m[i] += (g - m[i]) * (1 - beta_1)
            v[i] += (g * g - v[i]) * (1 - beta_2)
            theta[i] -= alpha * m[i] / (np.sqrt(v[i]) + eps)
    return theta


def test_matches_the_adam_formula_by_hand_and_keras_adam():
    fused, fused_slots = _trajectory(FusedAdam(1e-3, beta_1=0.5))
    keras_adam, keras_slots = _trajectory(keras.optimizers.Adam(1e-3, beta_1=0.5))
    for got, want, reference in zip(fused, keras_adam, _by_hand(), strict=True):
        np.testing.assert_allclose(got, reference, atol=1e-6)
        np.testing.assert_allclose(got, want, atol=1e-7)
    for got, want in zip(fused_slots, keras_slots, strict=True):  # iterations, m and v
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-8)  # float32 rounding


def test_follows_a_learning_rate_schedule_like_keras_adam():
    def schedule():
        return ConstantThenLinearDecay(2e-4, 6, 0.5)

    fused, _ = _trajectory(FusedAdam(schedule(), beta_1=0.5))
    reference, _ = _trajectory(keras.optimizers.Adam(schedule(), beta_1=0.5))
    for got, want in zip(fused, reference, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-7)
    assert not np.allclose(fused[0], _trajectory(FusedAdam(2e-4, beta_1=0.5))[0][0])


def test_amsgrad_takes_keras_path_and_stays_adam():
    fused, _ = _trajectory(FusedAdam(1e-3, amsgrad=True))
    reference, _ = _trajectory(keras.optimizers.Adam(1e-3, amsgrad=True))
    for got, want in zip(fused, reference, strict=True):
        np.testing.assert_array_equal(got, want)


def test_checkpoints_interchange_with_keras_adam(tmp_path):
    variables = [keras.Variable(np.ones((3,), "float32"))]
    saved = keras.optimizers.Adam(1e-3)
    saved.build(variables)
    saved.apply([tf.constant([1.0, -2.0, 3.0])], variables)
    path = tf.train.Checkpoint(optimizer=saved).write(str(tmp_path / "adam"))
    restored = FusedAdam(1e-3)
    restored.build([keras.Variable(np.ones((3,), "float32"))])
    tf.train.Checkpoint(optimizer=restored).read(path).assert_consumed()
    for got, want in zip(restored.variables, saved.variables, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    config = FusedAdam(3e-4, beta_1=0.5).get_config()
    assert keras.optimizers.Adam.from_config(config).get_config() == config


@pytest.mark.slow
def test_mirrored_replicas_update_each_copy_like_keras_adam():
    code = """
import numpy as np, keras, tensorflow as tf
from zoo.core import distribute
strategy = distribute.build_strategy("mirrored", num_virtual_devices=2)
from zoo.core.optimizers import FusedAdam

def run(make):
    with strategy.scope():
        w = keras.Variable(np.arange(4, dtype="float32"))
        opt = make()
        opt.build([w])
    @tf.function
    def step(g):
        def replica(g):
            ctx = tf.distribute.get_replica_context()
            opt.apply([g * tf.cast(ctx.replica_id_in_sync_group + 1, tf.float32)], [w])
        strategy.run(replica, args=(g,))
    for i in range(3):
        step(tf.constant([1.0, -1.0, 0.5, 2.0]) * (i + 1))
    return [c.numpy() for c in strategy.experimental_local_results(w.value)]

fused, ref = run(lambda: FusedAdam(0.1)), run(lambda: keras.optimizers.Adam(0.1))
print(len(fused), all(np.allclose(a, b, atol=1e-7) for a, b in zip(fused, ref)),
      np.array_equal(fused[0], fused[1]), not np.allclose(fused[0], np.arange(4)))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["2", "True", "True", "True"]


def _op_types(optimizer):
    variables = [keras.Variable(np.ones((3,), "float32"))]
    optimizer.build(variables)
    update = tf.function(lambda g: optimizer.apply([g], variables))
    graph = update.get_concrete_function(tf.TensorSpec([3], tf.float32)).graph
    types = {op.type for op in graph.get_operations()}
    for function in graph._functions.values():  # the update may sit in a nested function
        types |= {node.op for node in function.cached_definition.node_def}
    return types


def test_the_update_is_one_fused_kernel():
    assert "ResourceApplyAdam" in _op_types(FusedAdam(1e-3))
    assert "ResourceApplyAdam" not in _op_types(keras.optimizers.Adam(1e-3))
    assert "ResourceApplyAdam" not in _op_types(FusedAdam(1e-3, amsgrad=True))


def test_the_step_scalars_are_computed_once_per_apply_not_per_variable():
    # The powers beta^t are shared by every variable's update: a step's graph holds two `Pow`
    # whatever the number of variables (they were two per variable, ~500 ops of a CycleGAN
    # step traced at every start-up), and still one fused kernel per variable.
    def graph_ops(count):
        variables = [keras.Variable(np.ones((3,), "float32")) for _ in range(count)]
        optimizer = FusedAdam(1e-3)
        optimizer.build(variables)

        @tf.function
        def update(gs):
            optimizer.apply(gs, variables)

        graph = update.get_concrete_function([tf.TensorSpec([3], tf.float32)] * count).graph
        types = [op.type for op in graph.get_operations()]
        for function in graph._functions.values():
            types += [node.op for node in function.cached_definition.node_def]
        return types

    one, five = graph_ops(1), graph_ops(5)
    assert one.count("Pow") == five.count("Pow") == 2
    assert (one.count("ResourceApplyAdam"), five.count("ResourceApplyAdam")) == (1, 5)
    # per extra variable: its gradient and three handles (inputs), the kernel and an Identity
    assert len(five) - len(one) == 4 * 6
