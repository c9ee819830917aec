"""An exponential moving average of the generator's weights (G_ema), for sampling and export.

BigGAN, StyleGAN2-ADA (`G_ema`) and StudioGAN sample, evaluate and ship an average of the
generator's recent weights rather than its last ones: the average sits near the middle of the
generator's late oscillation around the game's equilibrium and usually scores better. After each
generator step every shadow variable s of a weight w moves towards it,

    s ← s − (1 − d_t)·(s − w),   d_t = min(ema_decay, (1 + t) / (10 + t)),

with t the number of updates so far (TensorFlow's `ExponentialMovingAverage` `num_updates`
ramp-up): the first updates follow w almost fully (d_0 = 0.1), so early samples are not stuck
at the initialisation, and d_t reaches `ema_decay` after (10·d − 1)/(1 − d) updates (8991 for
0.999).

What is averaged: every floating-point weight of the networks the generator player trains
(`GAN.ema_networks`), trainable or not. Batch-norm moving statistics are averaged like the
weights (BigGAN's choice, `statistics="average"`, the default), so the statistics the averaged
generator normalises with come from the same window of training as its weights;
`statistics="copy"` copies G's own instead (StyleGAN2-ADA copies buffers), which pairs the
averaged weights with statistics of the last weights' activations. Neither is the statistics
of the averaged weights' own activations (averaging kernels that keep turning shrinks them),
and neither helped the 28 px DCGAN on Fashion-MNIST (`bench/quality.py --model=dcgan`, seed
0, zoo classifier FD on 10 000 samples): 1500 steps, raw G 26.05, average (ema_decay=0.999)
with copied statistics 29.21, the same average with standing statistics (recomputed from 10 000
z through the averaged G in training mode, after training) 28.53; 3000 steps, raw 15.98,
average with averaged statistics 17.33. The statistics are not what holds the average back
(standing ones, the right ones, gain 0.7 of the 3.2 it loses): at this budget G still improves
fast and the average lags behind it (with the paper's Adam, 2e-4). With R1 and Adam at 1.6e-3,
β = (0, 0.99), the average (0.99, averaged statistics) scores FD 2.42 where raw G scores 3.52:
the DCGAN's Fashion-MNIST/MNIST defaults (`zoo.models.dcgan.IDX_DEFAULTS`). `GANConfig`'s
`ema_decay` stays 0 (off) for the rest.

A step whose logged values are not all finite (its update skipped by the loss-scale optimizer,
see `zoo.core.loss_scaling`) moves neither the average nor t, so a NaN never enters it.

The shadow variables are float32 whatever the precision policy, created where the model is (in
the strategy's scope: mirrored variables that take replica 0's update, as the model's step),
and tracked by the model, so its checkpoint holds them and a resumed run continues the same
average bit for bit. The average holds no reference to the networks: the model passes them in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import keras
import tensorflow as tf

# Mirrored variables: every replica computes the same update; replica 0's is applied to all.
_AGGREGATION = tf.VariableAggregation.ONLY_FIRST_REPLICA
# How the shadows of non-trainable weights (batch-norm moving statistics) follow them.
STATISTICS = ("average", "copy")


def averaged_weights(network: keras.Model) -> list[keras.Variable]:
    """The weights of `network` an average covers: all floating-point ones, in `weights` order
    (integer ones such as a dropout layer's seed state are left out)."""
    return [w for w in network.weights if tf.as_dtype(w.dtype).is_floating]


def ramp_decay(decay: float, num_updates: tf.Tensor) -> tf.Tensor:
    """d_t = min(decay, (1 + t) / (10 + t)) as a float32 scalar, t = updates so far."""
    t = tf.cast(num_updates, tf.float32)
    return tf.minimum(tf.constant(decay, tf.float32), (1.0 + t) / (10.0 + t))


class GeneratorEMA(tf.Module):
    """Shadow copies of networks' weights, moved towards them after each generator step.

    Args:
      networks: name -> network whose `averaged_weights` are shadowed (the names key the
        shadows in checkpoints: `model/ema/shadows/<name>/<index>`).
      decay: `ema_decay`, in (0, 1).
      statistics: how shadows of non-trainable weights (batch-norm moving statistics) follow
        them, one of `STATISTICS`: "average" (default) like the weights, or "copy" (G's own,
        bit for bit, after every counted step).

    Attributes:
      shadows: name -> list of float32 shadow variables (in `averaged_weights` order).
      num_updates: int64 count t of the updates applied so far.
      swapped_in: whether `swapped` has put the shadows into the networks right now.
    """

    def __init__(
        self, networks: Mapping[str, keras.Model], decay: float, statistics: str = "average"
    ) -> None:
        super().__init__(name="ema")
        if statistics not in STATISTICS:
            raise ValueError(f"statistics must be one of {STATISTICS}, got {statistics!r}")
        self.statistics = statistics
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.shadows = {
            name: [
                tf.Variable(
                    tf.cast(w.value, tf.float32),
                    trainable=False,
                    name=f"ema_{i}",
                    aggregation=_AGGREGATION,
                )
                for i, w in enumerate(averaged_weights(network))
            ]
            for name, network in networks.items()
        }
        self.num_updates = tf.Variable(
            tf.constant(0, tf.int64), trainable=False, name="num_updates", aggregation=_AGGREGATION
        )
        self.swapped_in = False

    def _pairs(
        self, networks: Mapping[str, keras.Model]
    ) -> Iterator[tuple[tf.Variable, keras.Variable]]:
        if sorted(networks) != sorted(self.shadows):
            raise ValueError(f"EMA of {sorted(self.shadows)} given networks {sorted(networks)}")
        for name, network in networks.items():
            weights = averaged_weights(network)
            if len(weights) != len(self.shadows[name]):
                raise ValueError(
                    f"{name} has {len(weights)} weights, its EMA has shadows of "
                    f"{len(self.shadows[name])}"
                )
            yield from zip(self.shadows[name], weights, strict=True)

    def update(self, networks: Mapping[str, keras.Model], finite: tf.Tensor) -> None:
        """One step of the average towards the networks' current weights (in `train_step`).

        Args:
          networks: the same names as at construction.
          finite: scalar bool; False leaves the average and t as they are.
        """
        decay = ramp_decay(self.decay, self.num_updates)
        rate = tf.where(finite, 1.0 - decay, 0.0)
        for shadow, weight in self._pairs(networks):
            if not weight.trainable and self.statistics == "copy":
                # batch-norm statistics of a skipped step may be NaN: kept as they were
                shadow.assign(tf.where(finite, tf.cast(weight.value, tf.float32), shadow))
                continue
            difference = shadow - tf.cast(weight.value, tf.float32)
            if not weight.trainable:  # batch-norm statistics of a skipped step may be NaN
                difference = tf.where(finite, difference, 0.0)
            if type(shadow).__name__ == "ResourceVariable":
                # s ← s − rate·(s − w) in one kernel (half the time of `assign_sub` of a
                # product on the 64 px DCGAN's G); distributed variables take `assign_sub`.
                tf.raw_ops.ResourceApplyGradientDescent(
                    var=shadow.handle, alpha=rate, delta=difference, use_locking=False
                )
            else:
                shadow.assign_sub(rate * difference)
        self.num_updates.assign_add(tf.cast(finite, tf.int64))

    def copy_to(self, networks: Mapping[str, keras.Model]) -> None:
        """Puts the averaged weights into the networks for good (an inference-only model)."""
        for shadow, weight in self._pairs(networks):
            weight.assign(tf.cast(shadow, weight.dtype))

    @contextlib.contextmanager
    def swapped(self, networks: Mapping[str, keras.Model]) -> Iterator[None]:
        """The networks hold the averaged weights inside the block and their own, bit for bit,
        after it (also when it raises). Not re-entrant: a checkpoint must not be saved inside."""
        if self.swapped_in:
            raise RuntimeError("the EMA weights are already swapped in")
        pairs = list(self._pairs(networks))
        raw = [tf.identity(weight.value) for _, weight in pairs]
        self.swapped_in = True
        try:
            for shadow, weight in pairs:
                weight.assign(tf.cast(shadow, weight.dtype))
            yield
        finally:
            for value, (_, weight) in zip(raw, pairs, strict=True):
                weight.assign(value)
            self.swapped_in = False
