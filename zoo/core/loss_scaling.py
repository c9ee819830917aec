"""Loss scaling of both players' optimizers, under every precision.

Under `mixed_float16` an optimizer is Keras' dynamic `LossScaleOptimizer`: a step with
non-finite gradients is skipped and halves the scale, 2000 finite steps in a row double it.
Otherwise it is a `UnitLossScaleOptimizer`: the same skip of a non-finite step, with a scale that
stays exactly 1 (halving it would never be undone and, over many skips, would underflow float32
gradients to zero).
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="ganzoo")
class UnitLossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
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
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return UnitLossScaleOptimizer(optimizer)
