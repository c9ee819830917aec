"""ImageHistoryPool: fills first, then returns a stored image half of the time; seeded; saved."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.models.cyclegan.pool import ImageHistoryPool

SHAPE = (2, 2, 1)


def batch(ids):
    """Images whose every pixel is their id."""
    return tf.constant(np.asarray(ids, np.float32)[:, None, None, None] * np.ones((1, *SHAPE)))


def ids(images):
    return np.asarray(images)[:, 0, 0, 0].astype(int).tolist()


def uniform(n, seed):
    return tf.random.stateless_uniform([n, 2], seed=[seed, 0])


def test_fills_first_and_returns_the_new_images():
    pool = ImageHistoryPool(5, SHAPE)
    assert ids(pool.query(batch([1, 2, 3]), uniform(3, 0))) == [1, 2, 3]
    assert int(pool.count.numpy()) == 3
    assert ids(pool.query(batch([4, 5]), uniform(2, 1))) == [4, 5]
    assert int(pool.count.numpy()) == 5
    assert sorted(ids(pool.buffer.numpy())) == [1, 2, 3, 4, 5]


def test_full_pool_swaps_with_probability_one_half():
    pool = ImageHistoryPool(10, SHAPE)
    pool.query(batch(range(1, 11)), uniform(10, 0))
    query = tf.function(pool.query)
    new = np.arange(100, 2100)
    out = np.concatenate(
        [ids(query(batch(new[i : i + 100]), uniform(100, i + 1))) for i in range(0, 2000, 100)]
    )
    from_history = out != new
    assert 0.46 < from_history.mean() < 0.54
    # A returned old image left the pool; the new image took its place.
    assert len(set(out[from_history].tolist())) == from_history.sum()
    assert int(pool.count.numpy()) == 10
    assert set(ids(pool.buffer.numpy())) <= set(new.tolist())


def test_exact_rule_on_hand_picked_coins():
    pool = ImageHistoryPool(2, SHAPE)
    coins = tf.constant([[0.9, 0.0], [0.9, 0.0], [0.7, 0.0], [0.2, 0.6], [0.1, 0.1]])
    # fill, fill, keep new (coin >= 0.5), swap slot 1, swap slot 0
    assert ids(pool.query(batch([1, 2, 3, 4, 5]), coins)) == [1, 2, 3, 2, 1]
    assert ids(pool.buffer.numpy()) == [5, 4]


def test_deterministic_under_a_seed():
    outputs = []
    for _ in range(2):
        pool = ImageHistoryPool(4, SHAPE)
        outputs.append([ids(pool.query(batch(range(k, k + 3)), uniform(3, k))) for k in range(6)])
    assert outputs[0] == outputs[1]


def test_size_zero_passes_through():
    pool = ImageHistoryPool(0, SHAPE)
    assert ids(pool.query(batch([7, 8]), uniform(2, 0))) == [7, 8]
    assert not pool.weights
    with pytest.raises(ValueError):
        ImageHistoryPool(-1, SHAPE)


def test_checkpoint_round_trip(tmp_path):
    pool = ImageHistoryPool(3, SHAPE)
    pool.query(batch([1, 2, 3, 4]), uniform(4, 3))
    path = tf.train.Checkpoint(pool=pool).save(str(tmp_path / "ckpt"))
    restored = ImageHistoryPool(3, SHAPE)
    tf.train.Checkpoint(pool=restored).restore(path).assert_consumed()
    np.testing.assert_array_equal(restored.buffer.numpy(), pool.buffer.numpy())
    assert int(restored.count.numpy()) == 3
    coins = uniform(5, 9)
    np.testing.assert_array_equal(
        pool.query(batch(range(10, 15)), coins), restored.query(batch(range(10, 15)), coins)
    )


def test_per_replica_pools_under_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        pool = ImageHistoryPool(2, SHAPE)

    @tf.function
    def step(images):
        return strategy.run(pool.query, (images, uniform(2, 0)))

    assert ids(step(batch([1, 2]))) == [1, 2]
    assert int(pool.count.numpy()) == 2
