"""Learning-rate schedules the families share.

A schedule is a function of the optimizer's iteration count, which the run checkpoints with
the optimizer, so a resumed run continues the schedule exactly where it stopped.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="zoo")
class ConstantThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate, then a linear decay to zero at `total_steps`.

    lr(step) = initial_learning_rate                                  for step < decay_start,
               initial_learning_rate · (total_steps − step) / (total_steps − decay_start)
                                                                      for decay_start ≤ step,
    clipped at zero past `total_steps`; decay_start = round(constant_fraction · total_steps).
    `step` is the optimizer's iteration count (updates applied so far; a step whose update was
    skipped as non-finite does not advance it).

    Args:
      initial_learning_rate: the rate of the constant phase.
      total_steps: the step at which the rate reaches zero (the run's `--train_steps`).
      constant_fraction: share of `total_steps` at the constant rate (0.5 in CycleGAN).

    Reference:
      Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
      Networks", section 7.1: the same rate for the first 100 epochs, then a linear decay to
      zero over the next 100.
    """

    def __init__(
        self, initial_learning_rate: float, total_steps: int, constant_fraction: float = 0.5
    ) -> None:
        super().__init__()
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        if not 0.0 <= constant_fraction <= 1.0:
            raise ValueError(f"constant_fraction must be in [0, 1], got {constant_fraction}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = int(total_steps)
        self.constant_fraction = float(constant_fraction)

    @property
    def decay_start(self) -> int:
        """The first step of the linear decay."""
        return round(self.constant_fraction * self.total_steps)

    def __call__(self, step: Any) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        decay_steps = float(max(self.total_steps - self.decay_start, 1))
        remaining = (float(self.total_steps) - step) / decay_steps
        factor = tf.clip_by_value(remaining, 0.0, 1.0)
        return self.initial_learning_rate * factor

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "constant_fraction": self.constant_fraction,
        }
