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

Keras's element-wise path is kept where the fused kernel does not apply: AMSGrad, a
non-float32 variable, or a variable that is not a plain resource variable (e.g. a TPU
variable: XLA fuses the element-wise ops there anyway).
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="zoo")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` updating each variable with `tf.raw_ops.ResourceApplyAdam`."""

    def update_step(self, gradient, variable, learning_rate):
        if (
            self.amsgrad
            or variable.dtype != tf.float32
            or not isinstance(variable, tf.Variable)
            or type(variable).__name__ != "ResourceVariable"
            or isinstance(self._distribution_strategy, tf.distribute.TPUStrategy)
        ):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=m.handle,
            v=v.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )
