"""The shared GAN base model: every family subclasses `GAN` and overrides little else.

The shape follows the Keras 3 guide on customising `fit` for GANs: the sub-networks, loss
trackers and a seed generator live on the model, `compile` takes one optimizer per player,
and `train_step` has one tape per player. What is common to every family lives here once:
noise drawing that is repeatable and different per replica, the optimizer set-up with loss
scaling, the discriminator update with optional penalties, and the metrics returned to `fit`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from zoo.core import augment, loss_scaling, losses, optimizers
from zoo.core.config import GANConfig
from zoo.core.ema import GeneratorEMA
from zoo.core.latent import sample_z
from zoo.errors import UsageError


def _random_seed(seed_generator: keras.random.SeedGenerator) -> tf.Tensor:
    """Next seed pair of the model's generator, folded with the replica id under a strategy."""
    seed = tf.cast(seed_generator.next(), tf.int64)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        replica = tf.cast(context.replica_id_in_sync_group, tf.int64)
        seed = tf.random.experimental.stateless_fold_in(seed, replica)
    return seed


def replica_mean(global_mean: tf.Tensor) -> tf.Tensor:
    """This replica's mean of a loss that `losses.global_batch_mean` averaged over the global
    batch (for logging: `fit` then averages the replicas' values into the global mean)."""
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    return global_mean * replicas


class GAN(keras.Model):
    """Base of every family: networks, trackers, seed generator, optimizers, shared steps.

    Subclasses implement `build_generator` and `build_discriminator` (and may override
    `discriminate`, `sample_inputs`, `generate` or `train_step`). The default `train_step` is the
    unconditional game of Goodfellow et al. (2014): `d_steps` discriminator updates on fresh
    minibatches, then one generator update. The last discriminator update and the generator
    update share one generator forward pass, as the reference PyTorch DCGAN does; the
    generator's loss is computed with the freshly updated discriminator.

    Args:
      config: the family's config dataclass.
      seed: seed of the model's `SeedGenerator`, the source of all training noise.
    """

    family_name: ClassVar[str] = "gan"
    config_class: ClassVar[type] = GANConfig
    tracker_names: ClassVar[tuple[str, ...]] = ("d_loss", "g_loss", "real_logit", "fake_logit")

    def __init__(self, config: GANConfig, *, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(name=kwargs.pop("name", self.family_name), **kwargs)
        self.config = config
        self.loss_spec = losses.get_loss(config.loss)
        self.d_steps = self.discriminator_steps(config)
        self.gp_weight = float(
            config.gp_weight if config.gp_weight >= 0 else self.loss_spec.gradient_penalty_weight
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.augment_policies = config.augment_policies
        if self.augment_policies and len(self.data_shape) != 3:
            raise UsageError(f"augment={config.augment} needs images; this data is vectors")
        self.generator = self.build_generator()
        self.discriminator = self.build_discriminator()
        self.step = self.add_weight(
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            name="step",
        )
        names = list(self.tracker_names)
        if self.gp_weight > 0:
            names.append("gradient_penalty")
        if config.r1_gamma > 0:
            names.append("r1_penalty")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}
        self.ema = self.build_ema()
        self.d_optimizer: keras.optimizers.Optimizer | None = None
        self.g_optimizer: keras.optimizers.Optimizer | None = None
        self.built = True

    @staticmethod
    def discriminator_steps(config: GANConfig) -> int:
        """Discriminator steps per generator step: the config's, or the loss's default."""
        steps = int(config.d_steps or losses.get_loss(config.loss).default_discriminator_steps)
        if steps < 1:
            raise UsageError(f"d_steps must be >= 1, got {config.d_steps}")
        return steps

    # -- networks ---------------------------------------------------------------------------
    def build_generator(self) -> keras.Model:
        """Returns the generator, built from `keras.Input`s."""
        raise NotImplementedError

    def build_discriminator(self) -> keras.Model:
        """Returns the discriminator (logits out), built from `keras.Input`s."""
        raise NotImplementedError

    @property
    def data_shape(self) -> tuple[int, ...]:
        """Shape of one real example (without the batch axis)."""
        c = self.config
        return (c.image_size, c.image_size, c.channels)

    def discriminate(self, x: tf.Tensor, training: bool = True) -> tf.Tensor:
        """Discriminator logits for a batch; families that transform D's input override it.

        Conditional families take the batch's condition too, as `condition=` (see
        `unpack_batch`); the shared steps pass it only when there is one.
        """
        return self.discriminator(x, training=training)

    def discriminate_given(self, condition: Any) -> Callable[[Any], tf.Tensor]:
        """D in training mode as a function of its input alone, the condition bound."""
        if condition is None:
            return lambda x: self.discriminate(x, training=True)
        return lambda x: self.discriminate(x, training=True, condition=condition)

    def unpack_batch(self, data: Any) -> tuple[Any, Any]:
        """(real data, condition) of a training batch; the condition is None when unconditional.

        The default drops labels; class-conditional families return them as the condition.
        """
        real, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return real, None

    def fake_batch(self, batch_size: tf.Tensor, condition: Any = None) -> tf.Tensor:
        """G's output in training mode on fresh noise (and the condition, when there is one)."""
        del condition
        return self.generator(self.noise(batch_size), training=True)

    # -- randomness -------------------------------------------------------------------------
    def normal(self, shape: Sequence[Any]) -> tf.Tensor:
        """N(0, 1) float32 noise from the model's seed generator (different per replica)."""
        return tf.random.stateless_normal(shape, seed=_random_seed(self.seed_generator))

    def uniform(self, shape: Sequence[Any]) -> tf.Tensor:
        """U[0, 1) float32 noise from the model's seed generator (different per replica)."""
        return tf.random.stateless_uniform(shape, seed=_random_seed(self.seed_generator))

    def noise(self, batch_size: tf.Tensor | int) -> tf.Tensor:
        """The generator's latent input z ~ N(0, I) for a batch."""
        return self.normal([batch_size, self.config.latent_dim])

    # -- differentiable augmentation --------------------------------------------------------
    def augment_draw(self, inputs: Any) -> tf.Tensor | None:
        """One draw of DiffAugment's per-example parameters for a batch of D inputs (None, and
        nothing drawn, when `augment` is off); see `zoo.core.augment`."""
        if not self.augment_policies:
            return None
        batch_size = tf.shape(tf.nest.flatten(inputs)[0])[0]
        return self.uniform([batch_size, augment.num_uniforms(self.augment_policies)])

    def diff_augment(self, inputs: Any, draw: tf.Tensor | None = None) -> Any:
        """T(inputs) with the parameters `draw` (a fresh draw when None); the inputs unchanged
        when `augment` is off. Structures ([image, condition]) have their image augmented."""
        if not self.augment_policies:
            return inputs
        if draw is None:
            draw = self.augment_draw(inputs)
        return augment.apply_to_input(inputs, draw, self.augment_policies)

    def adversarial_logits(self, fake: Any, condition: Any = None) -> tf.Tensor:
        """D's logits on generated data in G's step; through T, freshly drawn, when `augment`
        is on."""
        return self.discriminate_given(condition)(self.diff_augment(fake))

    # -- optimizers -------------------------------------------------------------------------
    def make_optimizer(self, learning_rate: float, train_steps: int) -> keras.optimizers.Optimizer:
        """One player's Adam (the families' papers all use Adam); override for schedules."""
        del train_steps
        c = self.config
        return optimizers.FusedAdam(learning_rate, beta_1=c.beta_1, beta_2=c.beta_2)

    def compile(
        self,
        *,
        train_steps: int,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        g_optimizer: keras.optimizers.Optimizer | None = None,
        **kwargs: Any,
    ) -> None:
        """Sets up both players' optimizers with loss scaling and builds them.

        Call inside the strategy's scope. Under a `mixed_float16` policy each optimizer is a
        dynamic `LossScaleOptimizer`; otherwise a loss-scale wrapper whose scale stays exactly 1,
        so a non-finite step is skipped under every precision (`zoo.core.loss_scaling`).

        Args:
          train_steps: total generator steps of the run (for learning-rate schedules).
          d_optimizer, g_optimizer: optimizers to use instead of the family's defaults.
          **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`, `steps_per_execution`).
        """
        super().compile(**kwargs)
        c = self.config
        d_optimizer = d_optimizer or self.make_optimizer(c.d_learning_rate, train_steps)
        g_optimizer = g_optimizer or self.make_optimizer(c.g_learning_rate, train_steps)
        self.d_optimizer = loss_scaling.wrap(d_optimizer)
        self.g_optimizer = loss_scaling.wrap(g_optimizer)
        self.d_optimizer.build(self.discriminator_variables)
        self.g_optimizer.build(self.generator_variables)

    @property
    def discriminator_variables(self) -> list[tf.Variable]:
        """What D's optimizer trains (families with more than D in that player extend it)."""
        return list(self.discriminator.trainable_variables)

    @property
    def generator_variables(self) -> list[tf.Variable]:
        """What G's optimizer trains."""
        return list(self.generator.trainable_variables)

    # -- shared steps -----------------------------------------------------------------------
    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers.values())

    def apply_update(
        self,
        optimizer: keras.optimizers.Optimizer,
        tape: tf.GradientTape,
        loss: tf.Tensor,
        variables: Sequence[tf.Variable],
    ) -> None:
        """Scales the loss, takes gradients and applies them (skipped when non-finite).

        The tape is entered once more so that it records the scaling too.
        """
        with tape:
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        optimizer.apply(grads, variables)

    def discriminator_loss(
        self,
        real: Any,
        fake: Any,
        discriminate: Callable[[Any], tf.Tensor] | None = None,
        mismatched_logits: tf.Tensor | None = None,
        joint: bool = False,
        augment_draw: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """Adversarial loss of D plus its penalties, averaged over the global batch.

        With `augment` on, D is D∘T: it sees T(real) and T(fake) under one draw of T's
        parameters (`augment_draw`, or drawn here), and the penalties are D∘T's at the
        un-augmented inputs, as the authors' code takes R1 (the gradient penalty's
        interpolates commute with T, affine with shared parameters).

        Args:
          real, fake: D's inputs for real and generated data (tensors, or structures that
            `discriminate` understands, e.g. (image, condition)).
          discriminate: maps an input to logits; defaults to `self.discriminate`.
          mismatched_logits: D's logits on real data with a mismatching condition; given, the
            loss is matching-aware (`losses.matching_aware_discriminator_loss`).
          joint: score real and fake in one call of `discriminate` on both batches stacked
            (the same logits for a D without statistics across examples, e.g. instance norm;
            never with batch norm, whose statistics would mix real and fake).
          augment_draw: DiffAugment's parameters when the caller drew them (to give the real
            images of `mismatched_logits` the same T); ignored when `augment` is off.

        Returns:
          The loss and a dict of values to track.
        """
        discriminate = discriminate or (lambda x: self.discriminate(x, training=True))
        if self.augment_policies:
            draw = self.augment_draw(real) if augment_draw is None else augment_draw
            discriminate_plain = discriminate

            def discriminate(x: Any) -> tf.Tensor:
                return discriminate_plain(self.diff_augment(x, draw))

        if joint:
            stacked = tf.nest.map_structure(lambda r, f: tf.concat([r, f], 0), real, fake)
            if self.augment_policies:  # real i and fake i under the same T
                both = discriminate_plain(self.diff_augment(stacked, tf.concat([draw, draw], 0)))
            else:
                both = discriminate(stacked)
            real_logits, fake_logits = tf.split(both, 2, axis=0)
        else:
            real_logits = discriminate(real)
            fake_logits = discriminate(fake)
        logs = {
            "real_logit": tf.reduce_mean(tf.cast(real_logits, tf.float32)),
            "fake_logit": tf.reduce_mean(tf.cast(fake_logits, tf.float32)),
        }
        if mismatched_logits is None:
            per_example = self.loss_spec.discriminator(real_logits, fake_logits)
        else:
            per_example = losses.matching_aware_discriminator_loss(
                self.loss_spec.discriminator, real_logits, fake_logits, mismatched_logits
            )
            logs["mismatched_logit"] = tf.reduce_mean(tf.cast(mismatched_logits, tf.float32))
        loss = losses.global_batch_mean(per_example)
        if self.gp_weight > 0:
            real_x = tf.nest.flatten(real)[0]
            alpha = self.uniform([tf.shape(real_x)[0]])
            penalty = losses.gradient_penalty(discriminate, real, fake, alpha)
            penalty = losses.global_batch_mean(penalty)
            loss += self.gp_weight * penalty
            logs["gradient_penalty"] = replica_mean(penalty)
        if self.config.r1_gamma > 0:
            penalty, weight = self.r1_term(discriminate, real)
            loss += 0.5 * self.config.r1_gamma * weight * penalty
            # Lazy R1 logs weight·penalty (0 between its steps): the tracker's mean over a
            # log window of whole intervals is the penalty's mean, as with r1_interval=1.
            logs["r1_penalty"] = replica_mean(weight * penalty)
        logs["d_loss"] = replica_mean(loss)
        return loss, logs

    def r1_term(self, discriminate: Any, real: Any) -> tuple[tf.Tensor, tf.Tensor]:
        """The R1 penalty's batch mean and its weight this step: (penalty, 1) every step, or
        with `r1_interval=k` (penalty, k) on the steps divisible by k and (0, 0) between them,
        where `tf.cond` skips the penalty's double back-propagation."""
        k = self.config.r1_interval

        def penalty() -> tf.Tensor:
            return losses.global_batch_mean(losses.r1_penalty(discriminate, real))

        if k == 1:
            return penalty(), tf.constant(1.0)
        due = tf.equal(self.step % k, 0)
        value = tf.cond(due, penalty, lambda: tf.constant(0.0))
        return value, tf.where(due, float(k), 0.0)

    def discriminator_update(
        self, real: Any, fake: Any, condition: Any = None
    ) -> dict[str, tf.Tensor]:
        """One discriminator step on a real and a generated batch (G receives no gradient)."""
        fake = tf.nest.map_structure(tf.stop_gradient, fake)
        variables = self.discriminator_variables
        with tf.GradientTape() as tape:
            loss, logs = self.discriminator_loss(real, fake, self.discriminate_given(condition))
        self.apply_update(self.d_optimizer, tape, loss, variables)
        return logs

    def split_for_d_steps(self, data: Any) -> list[Any]:
        """Splits a step's batch (d_steps fresh minibatches stacked) into d_steps parts."""
        if self.d_steps == 1:
            return [data]
        leaves = [
            [leaf] * self.d_steps if leaf is None else tf.split(leaf, self.d_steps)
            for leaf in tf.nest.flatten(data)
        ]
        return [
            tf.nest.pack_sequence_as(data, [parts[i] for parts in leaves])
            for i in range(self.d_steps)
        ]

    def finish_step(self, logs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Updates the trackers with the finite values of a step and returns what `fit` logs.

        A non-finite value is left out of its mean (its step's update was skipped by the
        loss-scale optimizer); the extra key `finite` (1 or 0) tells callbacks about it.
        """
        finite = tf.constant(True)
        for name, value in logs.items():
            value = tf.cast(value, tf.float32)
            ok = tf.reduce_all(tf.math.is_finite(value))
            finite = tf.logical_and(finite, ok)
            self.trackers[name].update_state(
                tf.where(ok, value, 0.0), sample_weight=tf.cast(ok, tf.float32)
            )
        if self.ema is not None:
            self.ema.update(self.ema_networks, finite)
        self.step.assign_add(1)
        results = {m.name: m.result() for m in self.metrics}
        results["finite"] = tf.cast(finite, tf.float32)
        return results

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        parts = self.split_for_d_steps(self.unpack_batch(data))
        batch_size = tf.shape(tf.nest.flatten(parts[0][0])[0])[0]
        logs: dict[str, tf.Tensor] = {}
        for real, condition in parts[:-1]:
            self.discriminator_update(real, self.fake_batch(batch_size, condition), condition)
        real, condition = parts[-1]
        # 1. G forward once, recorded on G's tape; 2. D's update on that batch (G's tape is
        # paused, D has its own); 3. G's loss through the updated D, on the same tape.
        tape = tf.GradientTape()
        with tape:
            fake = self.fake_batch(batch_size, condition)
        logs.update(self.discriminator_update(real, fake, condition))
        with tape:
            g_loss, g_logs = self.generator_loss(fake, condition)
        self.apply_update(self.g_optimizer, tape, g_loss, self.generator_variables)
        logs["g_loss"] = replica_mean(g_loss)
        logs.update({name: replica_mean(value) for name, value in g_logs.items()})
        return self.finish_step(logs)

    def generator_loss(self, fake: Any, condition: Any = None) -> tuple[tf.Tensor, dict]:
        """G's loss on its batch `fake` (inside G's tape) and any of its parts to log by name:
        the adversarial loss through D. Families add terms here (cgan's class head)."""
        fake_logits = self.adversarial_logits(fake, condition)
        return losses.global_batch_mean(self.loss_spec.generator(fake_logits)), {}

    # -- sampling ---------------------------------------------------------------------------
    @property
    def noise_dim(self) -> int:
        """Width of the noise `z` that sampling and the exports take: `latent_dim`, and more
        where a family's generator draws other noise in training (StackGAN's ε)."""
        return self.config.latent_dim

    def sample_inputs(self, num: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Fixed generator inputs for sample grids and exports (numpy, repeatable by seed)."""
        return {"z": sample_z(num, self.noise_dim, seed)}

    def generate(self, inputs: dict[str, Any]) -> tf.Tensor:
        """Generator output (inference mode, float32) for inputs like `sample_inputs` gives."""
        return tf.cast(self.generator(inputs["z"], training=False), tf.float32)

    # -- the generator's moving average (`zoo.core.ema`) -------------------------------------
    @property
    def ema_networks(self) -> dict[str, keras.Model]:
        """The networks the generator player trains, whose weights `ema_decay` averages
        (families whose trained generator is another network override it)."""
        return {"generator": self.generator}

    def build_ema(self) -> GeneratorEMA | None:
        """The average of `ema_networks` when the config asks for one (`ema_decay` > 0)."""
        decay = self.config.ema_decay
        return GeneratorEMA(self.ema_networks, decay) if decay else None

    @contextlib.contextmanager
    def ema_weights(self) -> Iterator[None]:
        """Inside the block the generator holds its averaged weights (samples, evaluation);
        after it its own again, bit for bit. Without an average (`ema_decay` = 0) a no-op."""
        if self.ema is None:
            yield
            return
        with self.ema.swapped(self.ema_networks):
            yield

    def checkpoint_items(self) -> dict[str, Any]:
        """Everything exact resume needs: weights (and their average, `self.ema`, tracked
        by the model), both optimizers, noise state, step."""
        return {
            "model": self,
            "d_optimizer": self.d_optimizer,
            "g_optimizer": self.g_optimizer,
            "seed_generator": self.seed_generator.state,
        }
