"""ConstantThenLinearDecay: constant for the first half, linear to zero over the second."""

import keras
import numpy as np
import pytest

from zoo.core.schedules import ConstantThenLinearDecay


def test_values_at_start_middle_and_end():
    schedule = ConstantThenLinearDecay(2e-4, 100)
    values = {step: float(schedule(step)) for step in (0, 25, 49, 50, 75, 99, 100, 150)}
    assert values[0] == values[25] == values[49] == values[50] == pytest.approx(2e-4)
    assert values[75] == pytest.approx(1e-4)
    assert values[99] == pytest.approx(2e-4 / 50)
    assert values[100] == 0.0 and values[150] == 0.0


def test_other_constant_fraction_and_odd_lengths():
    schedule = ConstantThenLinearDecay(1.0, 7, constant_fraction=0.0)
    np.testing.assert_allclose([float(schedule(s)) for s in range(8)], np.arange(7, -1, -1) / 7)
    assert float(ConstantThenLinearDecay(1.0, 1)(0)) == 1.0
    with pytest.raises(ValueError):
        ConstantThenLinearDecay(1.0, 0)


def test_serialises_and_follows_the_optimizer_iterations():
    schedule = ConstantThenLinearDecay(1e-3, 10)
    clone = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert (
        isinstance(clone, ConstantThenLinearDecay) and clone.get_config() == schedule.get_config()
    )
    optimizer = keras.optimizers.Adam(schedule)
    variable = keras.Variable(1.0)
    optimizer.build([variable])
    optimizer.iterations.assign(8)  # what a checkpoint restores
    assert float(optimizer.learning_rate) == pytest.approx(1e-3 * 2 / 5)
