"""Loss scaling of both players' optimizers, under every precision.

Under `mixed_float16` an optimizer is Keras' dynamic `LossScaleOptimizer`: a step with
non-finite gradients is skipped and halves the scale, 2000 finite steps in a row double it.
Otherwise it is a `UnitLossScaleOptimizer`: the same skip of a non-finite step, with a scale that
stays exactly 1 (halving it would never be undone and, over many skips, would underflow float32
gradients to zero).

Under a strategy with several replicas both skip a step when the gradients of *any* replica are
not finite (`ReplicaSafeLossScaling`). Keras' own `LossScaleOptimizer` decides on replica 0's
gradients alone, before they are summed ("each replica computed the same `finite` value, since
`grads` is all-reduced": they are not yet), so one replica's overflow was summed into the
weights: a StackGAN under `mirrored` and `mixed_float16` wrote inf into two of D's kernels at its
third step and every later step was non-finite.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class ReplicaSafeLossScaling:
    """Mixin for a `LossScaleOptimizer`: the finiteness of a step's gradients is decided over
    every replica (all-reduced in a replica context, all replicas' results in a cross-replica
    one), so all replicas skip, or apply, together."""

    def check_finite(self, grads):
        finite = super().check_finite(grads)
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return finite
        bad = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(~finite, tf.float32))
        return tf.equal(bad, 0.0)

    def _tf_apply(self, grads, trainable_variables=None):
        if tf.distribute.in_cross_replica_context():
            raise ValueError("apply() must be called in a replica context.")
        if tf.__internal__.distribute.strategy_supports_no_merge_call():
            self._common_apply(grads, trainable_variables=trainable_variables)
            return

        def handle_cross_replica(distribution, grads, trainable_variables):
            per_replica = distribution.extended.call_for_each_replica(
                super(ReplicaSafeLossScaling, self).check_finite, args=(grads,)
            )
            finite = tf.reduce_all(tf.stack(distribution.experimental_local_results(per_replica)))

            def apply_finite():
                distribution.extended.call_for_each_replica(
                    self._stateful_handle_finite_grads, args=(grads, trainable_variables)
                )

            tf.cond(finite, apply_finite, self._stateful_handle_non_finite_grads)

        tf.distribute.get_replica_context().merge_call(
            handle_cross_replica, args=(grads, trainable_variables)
        )


@keras.saving.register_keras_serializable(package="ganzoo")
class DynamicLossScaleOptimizer(ReplicaSafeLossScaling, keras.optimizers.LossScaleOptimizer):
    """Keras' dynamic `LossScaleOptimizer`, skipping a step when any replica overflowed."""


@keras.saving.register_keras_serializable(package="ganzoo")
class UnitLossScaleOptimizer(ReplicaSafeLossScaling, keras.optimizers.LossScaleOptimizer):
    """A `LossScaleOptimizer` whose scale is 1 for good: it only skips non-finite steps.

    Its variables are those of a `LossScaleOptimizer` (checkpoints stay interchangeable), but
    neither the loss nor the gradients are scaled by them.
    """

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer, **kwargs) -> None:
        kwargs.pop("initial_scale", None)
        kwargs.pop("dynamic_growth_steps", None)
        super().__init__(inner_optimizer, initial_scale=1.0, **kwargs)

    def scale_loss(self, loss):
        return loss

    def _stateful_handle_finite_grads(self, grads, trainable_variables):
        self.inner_optimizer.apply(grads, trainable_variables=trainable_variables)

    def _stateful_handle_non_finite_grads(self):
        pass


def wrap(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.LossScaleOptimizer:
    """`optimizer` with the loss scaling of the current dtype policy (see the module doc)."""
    if keras.mixed_precision.dtype_policy().name == "mixed_float16":
        return DynamicLossScaleOptimizer(optimizer)
    return UnitLossScaleOptimizer(optimizer)
