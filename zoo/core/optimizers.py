"""Adam as one fused TensorFlow kernel per variable.

Keras 3's `Adam.update_step` writes the update as about ten element-wise ops per variable
(two `assign_add`, an `assign_sub`, square, sqrt, divide, ...), each a pass over the
variable's memory. TensorFlow's `ResourceApplyAdam` kernel computes the same update in one
pass: with α = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ),

    m ← m + (g − m)(1 − β₁),   v ← v + (g² − v)(1 − β₂),   θ ← θ − α·m/(√v + ε),

which is Keras's formula term for term (ε added to √v, not bias-corrected), so `FusedAdam`
is a drop-in replacement: the same slot variables (`momentums`, `velocities`), the same
config and checkpoints. On the CycleGAN step (21 M parameters at batch 1) it took about 15%
of the step's kernel time off (`bench/throughput.py`).

The step's scalars (β₁ᵗ, β₂ᵗ, the learning rate) are computed once per `apply`, not once per
variable: Keras hands `update_step` the learning rate only, and recomputing the powers beside
each of a CycleGAN's ~60 variables made ~500 of its train function's ~5300 graph ops, traced
at every start-up.

Keras's element-wise path is kept where the fused kernel does not apply: AMSGrad, a
non-float32 variable, or a variable that is not a plain resource variable (e.g. a TPU
variable: XLA fuses the element-wise ops there anyway).
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import tensorflow as tf


class _StepScalars(NamedTuple):
    """What every variable's update of one step shares (float32 scalars)."""

    learning_rate: tf.Tensor
    beta1_power: tf.Tensor
    beta2_power: tf.Tensor
    beta_1: tf.Tensor
    beta_2: tf.Tensor
    epsilon: tf.Tensor


@keras.saving.register_keras_serializable(package="zoo")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` updating each variable with `tf.raw_ops.ResourceApplyAdam`."""

    def _step_scalars(self, learning_rate) -> _StepScalars:
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1 = tf.constant(self.beta_1, tf.float32)
        beta_2 = tf.constant(self.beta_2, tf.float32)
        return _StepScalars(
            learning_rate=tf.cast(learning_rate, tf.float32),
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=tf.constant(self.epsilon, tf.float32),
        )

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        # Keras's loop, with the step's scalars computed once per device (the first of its
        # variables) and shared by the rest. Under a strategy `learning_rate` may be a
        # per-replica value, unwrapped only inside `update`, so they are made there.
        scalars_by_device: dict[str, _StepScalars] = {}

        def apply_grad_to_update_var(var, grad, learning_rate):
            scalars = scalars_by_device.get(var.device)
            if scalars is None:
                scalars = scalars_by_device[var.device] = self._step_scalars(learning_rate)
            return self.update_step(grad, var, scalars)

        for grad, var in grads_and_vars:
            distribution.extended.update(
                var, apply_grad_to_update_var, args=(grad, learning_rate), group=False
            )

    def update_step(self, gradient, variable, learning_rate):
        scalars = learning_rate if isinstance(learning_rate, _StepScalars) else None
        if scalars is not None:
            learning_rate = scalars.learning_rate
        if (
            self.amsgrad
            or variable.dtype != tf.float32
            or not isinstance(variable, tf.Variable)
            or type(variable).__name__ != "ResourceVariable"
            or isinstance(self._distribution_strategy, tf.distribute.TPUStrategy)
        ):
            return super().update_step(gradient, variable, learning_rate)
        if scalars is None:  # called directly, not through `apply`
            scalars = self._step_scalars(learning_rate)
        index = self._get_variable_index(variable)
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=scalars.beta1_power,
            beta2_power=scalars.beta2_power,
            lr=scalars.learning_rate,
            beta1=scalars.beta_1,
            beta2=scalars.beta_2,
            epsilon=scalars.epsilon,
            grad=tf.cast(gradient, tf.float32),
            use_locking=False,
        )
