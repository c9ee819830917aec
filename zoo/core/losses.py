"""GAN losses as pure functions of logits, named in TF-GAN's grammar.

Every loss takes discriminator logits of any shape ``[B, ...]`` (a scalar per image, or a
PatchGAN map ``[B, H, W, 1]``), casts them to float32 first (so mixed-precision networks still
compute their losses in float32) and returns the PER-EXAMPLE loss, float32 ``[B]``: the mean over
the non-batch axes. Training code reduces it over the global batch with
:func:`global_batch_mean`, which is correct under ``tf.distribute``.

Sign conventions: every function returns a quantity its player DESCENDS. The sigmoid lives
inside the losses (logits everywhere), computed with ``softplus`` so that huge logits stay finite:
``-log(sigmoid(l)) = softplus(-l)`` and ``-log(1 - sigmoid(l)) = softplus(l)``.

Penalties (:func:`gradient_penalty`, :func:`r1_penalty`) take the discriminator as a callable and
differentiate it with their own ``tf.GradientTape``, so they can be used inside the outer tape of
the discriminator's update. :data:`LOSSES` / :func:`get_loss` select a loss by name.
:func:`contrastive_joint_embedding_loss` (the text encoder's pretraining) compares the examples
of a batch with each other and so returns the batch mean.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import tensorflow as tf

from zoo.errors import UsageError

_GRADIENT_NORM_EPSILON = 1e-10

Discriminator = Callable[[tf.Tensor], tf.Tensor]


def _to_float32(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(x, tf.float32)


def _per_example_mean(values: tf.Tensor) -> tf.Tensor:
    """Means a float32 ``[B, ...]`` tensor over its non-batch axes, giving ``[B]``."""
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def _per_example_sum(values: tf.Tensor) -> tf.Tensor:
    """Sums a float32 ``[B, ...]`` tensor over its non-batch axes, giving ``[B]``."""
    return tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def global_batch_mean(per_example: tf.Tensor) -> tf.Tensor:
    """Averages per-example losses over the GLOBAL batch: ``tf.nn.compute_average_loss``.

    Inside a replica of a ``tf.distribute`` strategy this divides the sum of the replica's
    per-example losses by (per-replica batch x ``num_replicas_in_sync``), so that gradients
    SUMMED across replicas (what strategies do) equal the gradient of the mean over the global
    batch. Outside a strategy it is the plain mean. Do not use ``tf.reduce_mean`` in a
    ``train_step``: under N replicas it would scale the gradients by N.

    Args:
        per_example: per-example losses, float ``[B]`` (any float dtype; the result is float32).

    Returns:
        A float32 scalar.

    Reference:
        TensorFlow guide "Custom training with tf.distribute.Strategy" (loss reduction).
    """
    return tf.nn.compute_average_loss(_to_float32(per_example))


# --- minimax / non-saturating ---------------------------------------------------------------


def minimax_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Discriminator loss of the minimax game: ``-log D(x) - log(1 - D(G(z)))``.

    Computed as ``softplus(-real) + softplus(fake)``, stable for any logit. Its negative is the
    value function V(D, G) per example: D descending this loss ascends V. At ``D = 1/2`` (logits
    0) it is ``log 4``.

    Args:
        real_logits: discriminator logits on real data, ``[B, ...]``.
        fake_logits: discriminator logits on generated data, ``[B, ...]``.

    Returns:
        Per-example losses, float32 ``[B]``.

    Reference:
        Goodfellow et al. 2014, "Generative Adversarial Nets", eq. 1.
    """
    real_term = _per_example_mean(tf.nn.softplus(-_to_float32(real_logits)))
    fake_term = _per_example_mean(tf.nn.softplus(_to_float32(fake_logits)))
    return real_term + fake_term


def minimax_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Generator loss of the minimax game: ``log(1 - D(G(z))) = -softplus(fake)``.

    The generator descends it. It saturates: when D confidently rejects the fakes (very negative
    logits) its gradient ``-sigmoid(fake)`` vanishes; prefer
    :func:`non_saturating_generator_loss` in practice.

    Args:
        fake_logits: discriminator logits on generated data, ``[B, ...]``.

    Returns:
        Per-example losses, float32 ``[B]``.

    Reference:
        Goodfellow et al. 2014, "Generative Adversarial Nets", eq. 1.
    """
    return _per_example_mean(-tf.nn.softplus(_to_float32(fake_logits)))


def non_saturating_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Non-saturating generator loss: ``-log D(G(z)) = softplus(-fake)``.

    Same fixed point as the minimax loss, but its gradient ``-sigmoid(-fake)`` is close to -1
    (not 0) when D confidently rejects the fakes, so G still learns early in training.

    Args:
        fake_logits: discriminator logits on generated data, ``[B, ...]``.

    Returns:
        Per-example losses, float32 ``[B]``.

    Reference:
        Goodfellow et al. 2014, "Generative Adversarial Nets", section 3.
    """
    return _per_example_mean(tf.nn.softplus(-_to_float32(fake_logits)))


def non_saturating_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Discriminator loss of the non-saturating GAN: the same as the minimax one.

    Args:
        real_logits: discriminator logits on real data, ``[B, ...]``.
        fake_logits: discriminator logits on generated data, ``[B, ...]``.

    Returns:
        Per-example losses, float32 ``[B]``.

    Reference:
        Goodfellow et al. 2014, "Generative Adversarial Nets", section 3.
    """
    return minimax_discriminator_loss(real_logits, fake_logits)


# --- least squares ------------------------------------------------------------------------


def least_squares_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Least-squares discriminator loss: ``0.5 (D(x) - 1)^2 + 0.5 D(G(z))^2``.

    The targets are a = 0 (fake) and b = 1 (real) applied to the raw outputs (no sigmoid).

    Args:
        real_logits: discriminator outputs on real data, ``[B, ...]``.
        fake_logits: discriminator outputs on generated data, ``[B, ...]``.

    Returns:
        Per-example losses, float32 ``[B]``.

    Reference:
        Mao et al. 2017, "Least Squares Generative Adversarial Networks", eq. 2 (a=0, b=1, c=1).
    """
    real_term = _per_example_mean(0.5 * tf.square(_to_float32(real_logits) - 1.0))
    fake_term = _per_example_mean(0.5 * tf.square(_to_float32(fake_logits)))
    return real_term + fake_term


def least_squares_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Least-squares generator loss: ``0.5 (D(G(z)) - 1)^2`` (target c = 1).

    Args:
        fake_logits: discriminator outputs on generated data, ``[B, ...]``.

    Returns:
        Per-example losses, float32 ``[B]``.

    Reference:
        Mao et al. 2017, "Least Squares Generative Adversarial Networks", eq. 2 (a=0, b=1, c=1).
    """
    return _per_example_mean(0.5 * tf.square(_to_float32(fake_logits) - 1.0))


# --- hinge --------------------------------------------------------------------------------


def hinge_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Hinge discriminator loss: ``relu(1 - D(x)) + relu(1 + D(G(z)))``.

    Args:
        real_logits: discriminator outputs on real data, ``[B, ...]``.
        fake_logits: discriminator outputs on generated data, ``[B, ...]``.

    Returns:
        Per-example losses, float32 ``[B]``.

    Reference:
        Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization for
        Generative Adversarial Networks", eq. 16.
    """
    real_term = _per_example_mean(tf.nn.relu(1.0 - _to_float32(real_logits)))
    fake_term = _per_example_mean(tf.nn.relu(1.0 + _to_float32(fake_logits)))
    return real_term + fake_term


def hinge_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Hinge generator loss: ``-D(G(z))``.

    Args:
        fake_logits: discriminator outputs on generated data, ``[B, ...]``.

    Returns:
        Per-example losses, float32 ``[B]``.

    Reference:
        Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization for
        Generative Adversarial Networks", eq. 17.
    """
    return _per_example_mean(-_to_float32(fake_logits))


# --- Wasserstein --------------------------------------------------------------------------


def wasserstein_discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Wasserstein critic loss: ``D(G(z)) - D(x)``.

    Needs a Lipschitz constraint on the critic; use it with :func:`gradient_penalty`.

    Args:
        real_logits: critic outputs on real data, ``[B, ...]``.
        fake_logits: critic outputs on generated data, ``[B, ...]``.

    Returns:
        Per-example losses, float32 ``[B]``.

    Reference:
        Arjovsky et al. 2017, "Wasserstein Generative Adversarial Networks", algorithm 1.
    """
    real_term = _per_example_mean(_to_float32(real_logits))
    fake_term = _per_example_mean(_to_float32(fake_logits))
    return fake_term - real_term


def wasserstein_generator_loss(fake_logits: tf.Tensor) -> tf.Tensor:
    """Wasserstein generator loss: ``-D(G(z))``.

    Args:
        fake_logits: critic outputs on generated data, ``[B, ...]``.

    Returns:
        Per-example losses, float32 ``[B]``.

    Reference:
        Arjovsky et al. 2017, "Wasserstein Generative Adversarial Networks", algorithm 1.
    """
    return _per_example_mean(-_to_float32(fake_logits))


# --- penalties ----------------------------------------------------------------------------


def _input_gradients(discriminator: Discriminator, inputs: tf.Tensor) -> tf.Tensor:
    """Gradient of the sum of the discriminator's float32 outputs w.r.t. ``inputs``.

    Each example's output depends only on its own input (no batch statistics in D, as WGAN-GP
    requires), so row i of the result is the gradient of example i's output (summed over a
    PatchGAN map). A fresh tape is used, so an enclosing tape records this computation and can
    differentiate the penalty w.r.t. the discriminator's weights.
    """
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = _to_float32(discriminator(inputs))
    return _to_float32(tape.gradient(outputs, inputs))


def gradient_penalty(
    discriminator: Discriminator,
    real: tf.Tensor,
    fake: tf.Tensor,
    alpha: tf.Tensor,
) -> tf.Tensor:
    """WGAN-GP gradient penalty ``(||∇ D(x̂)||₂ - 1)²`` at ``x̂ = α·real + (1 - α)·fake``.

    The caller owns the randomness: ``alpha`` must be drawn UNIFORM in [0, 1], one value per
    example (for example ``keras.random.uniform([B], seed=seed_generator)``). The two known bugs
    of copy-pasted versions are avoided here and by that contract: drawing α from a NORMAL
    distribution (x̂ then leaves the segment between the samples), and ``sqrt(sum(g²))`` without
    an ε, whose gradient is NaN where the input gradient is zero; the norm here is
    ``sqrt(sum(g²) + 1e-10)`` over all non-batch axes. Everything is computed in float32. The
    penalty uses its own ``tf.GradientTape``, so call it inside the discriminator's tape and
    add ``λ · global_batch_mean(penalty)`` (λ = 10) to the critic loss.

    Args:
        discriminator: callable mapping inputs ``[B, ...]`` to outputs ``[B, ...]`` (logits);
            outputs with several values per example (PatchGAN) are summed per example.
        real: real samples ``[B, ...]``.
        fake: generated samples, same shape as ``real``.
        alpha: interpolation weights, uniform per example, shape ``[B]`` or broadcastable to
            ``real`` (``[B, 1, ..., 1]``).

    Returns:
        Per-example penalties, float32 ``[B]``.

    Reference:
        Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", algorithm 1.
    """
    real = _to_float32(real)
    fake = _to_float32(fake)
    alpha = _to_float32(alpha)
    if alpha.shape.rank == 1 and real.shape.rank is not None and real.shape.rank > 1:
        alpha = tf.reshape(alpha, [-1] + [1] * (real.shape.rank - 1))
    interpolates = alpha * real + (1.0 - alpha) * fake
    gradients = _input_gradients(discriminator, interpolates)
    norms = tf.sqrt(_per_example_sum(tf.square(gradients)) + _GRADIENT_NORM_EPSILON)
    return tf.square(norms - 1.0)


def r1_penalty(discriminator: Discriminator, real: tf.Tensor) -> tf.Tensor:
    """R1 penalty ``||∇_x D(x)||²`` on real data (the caller multiplies by ``γ / 2``).

    Uses its own ``tf.GradientTape``, so call it inside the discriminator's tape. Computed in
    float32; outputs with several values per example (PatchGAN) are summed per example.

    Args:
        discriminator: callable mapping inputs ``[B, ...]`` to outputs ``[B, ...]`` (logits).
        real: real samples ``[B, ...]``.

    Returns:
        Per-example squared gradient norms, float32 ``[B]``.

    Reference:
        Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?", eq. 9.
    """
    gradients = _input_gradients(discriminator, _to_float32(real))
    return _per_example_sum(tf.square(gradients))


# --- text-to-image ------------------------------------------------------------------------


def matching_aware_discriminator_loss(
    discriminator_loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    real_logits: tf.Tensor,
    fake_logits: tf.Tensor,
    mismatched_logits: tf.Tensor,
) -> tf.Tensor:
    """GAN-CLS: (real, matching text) is real; (fake, matching) and (real, mismatching) are fake.

    The two fake terms are averaged: with any of this module's discriminator losses, which are
    a real term plus a fake term, ``(L(r, f) + L(r, w)) / 2`` is the real term plus the mean of
    the two fake terms, as Reed et al. write it.

    Args:
        discriminator_loss: a ``(real_logits, fake_logits) -> [B]`` loss of this module.
        real_logits: D(real image, matching text).
        fake_logits: D(generated image, matching text).
        mismatched_logits: D(real image, mismatching text).

    Returns:
        Per-example losses, float32 ``[B]``.

    Reference:
        Reed et al. 2016, "Generative Adversarial Text to Image Synthesis", algorithm 1.
    """
    return 0.5 * (
        discriminator_loss(real_logits, fake_logits)
        + discriminator_loss(real_logits, mismatched_logits)
    )


def auxiliary_classifier_loss(class_logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """AC-GAN's class term: the cross-entropy ``-log softmax(class_logits)[label]``.

    The discriminator's auxiliary head predicts the class of an image; D minimises this on
    real images (it learns to classify the data) and G on its own images for the labels it was
    asked for (it learns to draw what that classifier recognises).

    Args:
        class_logits: the auxiliary head's unnormalised class scores, ``[B, K]`` (any float
            dtype; computed in float32).
        labels: int class indices in ``[0, K)``, ``[B]``.

    Returns:
        Per-example losses in nats, float32 ``[B]`` (log K for uniform scores).

    Reference:
        Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier
        GANs", section 3 (L_C).
    """
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=_to_float32(class_logits)
    )


_CONTRASTIVE_TEMPERATURE = 0.1
_EXCLUDED_LOGIT = -1e9


def contrastive_joint_embedding_loss(
    similarity: tf.Tensor, positives: tf.Tensor, temperature: float = _CONTRASTIVE_TEMPERATURE
) -> tf.Tensor:
    """Symmetric InfoNCE over a batch: each image must pick its caption and each caption its image.

    A contrastive relaxation of Reed et al.'s symmetric structured joint embedding: the
    compatibility of every matching (image, caption) pair must exceed that of the mismatching
    pairs of the batch, in both directions (image -> text and text -> image). With logits
    ``S / temperature`` it is ``(CE(rows of S, diagonal) + CE(columns of S, diagonal)) / 2``,
    each cross entropy averaged over the batch; pairs marked in `positives` get the logit
    ``-1e9`` (not negatives). Unlike the GAN losses above it compares the examples of a batch
    with each other, so it returns the batch mean, not a per-example loss; it is meant for the
    encoders' pretraining on one device, not for a distributed `train_step`.

    Args:
        similarity: float ``[B, B]``, entry ``[i, j]`` = compatibility of image i and caption j;
            the diagonal holds the matching pairs.
        positives: bool ``[B, B]``: off-diagonal pairs that also match (identical captions, or
            same-class pairs when those are not to be negatives); they are removed from the
            negatives. The diagonal is ignored.
        temperature: divides the similarities.

    Returns:
        The scalar float32 loss.

    Reference:
        Reed, Akata, Lee, Schiele 2016, "Learning Deep Representations of Fine-Grained Visual
        Descriptions" (the symmetric joint embedding); van den Oord, Li, Vinyals 2018,
        "Representation Learning with Contrastive Predictive Coding" (InfoNCE); Radford et al.
        2021, "Learning Transferable Visual Models From Natural Language Supervision" (its
        symmetric form).
    """
    similarity = tf.cast(similarity, tf.float32) / temperature
    batch = tf.shape(similarity)[0]
    diagonal = tf.eye(batch, dtype=tf.bool)
    excluded = tf.logical_and(tf.cast(positives, tf.bool), tf.logical_not(diagonal))
    logits = tf.where(excluded, tf.constant(_EXCLUDED_LOGIT, tf.float32), similarity)
    logits_t = tf.where(
        tf.transpose(excluded), tf.constant(_EXCLUDED_LOGIT, tf.float32), tf.transpose(similarity)
    )
    targets = tf.range(batch)
    image_to_text = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
    text_to_image = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits_t)
    return 0.5 * (tf.reduce_mean(image_to_text) + tf.reduce_mean(text_to_image))


# -- reconstruction and regularisation losses of single families (golden-tested beside the
# adversarial ones) ------------------------------------------------------------------------
def cycle_consistency_loss(real: tf.Tensor, reconstructed: tf.Tensor) -> tf.Tensor:
    """Per-example L1 cycle loss ‖F(G(a)) − a‖₁ (mean over pixels), float32 [B].

    Reference:
      Zhu et al. 2017, eq. 2.
    """
    diff = tf.abs(tf.cast(reconstructed, tf.float32) - tf.cast(real, tf.float32))
    return tf.reduce_mean(tf.reshape(diff, [tf.shape(diff)[0], -1]), axis=1)


def identity_loss(real: tf.Tensor, mapped: tf.Tensor) -> tf.Tensor:
    """Per-example L1 identity loss ‖G(b) − b‖₁ (mean over pixels), float32 [B].

    Reference:
      Zhu et al. 2017, section 5.2 (from Taigman et al. 2017): keeps colour composition.
    """
    return cycle_consistency_loss(real, mapped)


def kl_divergence(mu: tf.Tensor, log_var: tf.Tensor) -> tf.Tensor:
    """Per-example KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1).

    Args:
      mu: means [B, N_c].
      log_var: log variances log σ² [B, N_c].

    Returns:
      float32 [B]: the divergence of each example's Gaussian from the standard normal, in nats
      (0 exactly when μ = 0 and log σ² = 0). The generator loss adds λ times its mean over the
      global batch (λ = 1 in StackGAN).

    Reference:
      Kingma & Welling 2014, appendix B; Zhang et al. 2017 (StackGAN, ICCV), eq. 3-4.
    """
    mu = keras.ops.cast(mu, "float32")
    log_var = keras.ops.cast(log_var, "float32")
    terms = keras.ops.square(mu) + keras.ops.exp(log_var) - log_var - 1.0
    return 0.5 * keras.ops.sum(terms, axis=-1)


# --- registry -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GANLoss:
    """A generator/discriminator loss pair selectable by name.

    Attributes:
        generator: ``fake_logits -> per-example loss [B]``.
        discriminator: ``(real_logits, fake_logits) -> per-example loss [B]``.
        gradient_penalty_weight: λ for :func:`gradient_penalty` (0 means no penalty).
        default_discriminator_steps: discriminator steps per generator step (WGAN-GP's
            n_critic); a family may override it.
    """

    generator: Callable[[tf.Tensor], tf.Tensor]
    discriminator: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    gradient_penalty_weight: float = 0.0
    default_discriminator_steps: int = 1


LOSSES: dict[str, GANLoss] = {
    "minimax": GANLoss(minimax_generator_loss, minimax_discriminator_loss),
    "non_saturating": GANLoss(non_saturating_generator_loss, non_saturating_discriminator_loss),
    "least_squares": GANLoss(least_squares_generator_loss, least_squares_discriminator_loss),
    "hinge": GANLoss(hinge_generator_loss, hinge_discriminator_loss),
    "wgan_gp": GANLoss(
        wasserstein_generator_loss,
        wasserstein_discriminator_loss,
        gradient_penalty_weight=10.0,
        default_discriminator_steps=5,
    ),
}


def get_loss(name: str) -> GANLoss:
    """Returns the loss pair registered under ``name``.

    Args:
        name: one of the keys of :data:`LOSSES`.

    Returns:
        The :class:`GANLoss`.

    Raises:
        UsageError: if ``name`` is unknown (the message lists the known names).

    Reference:
        See the function each entry names (Goodfellow et al. 2014; Mao et al. 2017; Lim & Ye
        2017; Gulrajani et al. 2017).
    """
    try:
        return LOSSES[name]
    except KeyError:
        known = ", ".join(LOSSES)
        raise UsageError(f"unknown loss {name!r}; known losses: {known}") from None
