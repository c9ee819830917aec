"""Conditioning augmentation: a text embedding becomes a Gaussian over conditions.

StackGAN does not feed the text embedding φ(t) to its generators directly. A fully connected
layer predicts the mean μ(φ(t)) and the log variance log σ²(φ(t)) of a Gaussian, the
generator sees a sample ĉ = μ + σ ⊙ ε with ε ~ N(0, I), and the generator loss gains the
regulariser λ · KL(N(μ, σ²) ‖ N(0, I)) (λ = 1). Sampling gives the generator many nearby
conditions per caption (smoother conditioning manifold, more variety for the few captions of a
dataset); the KL term keeps the manifold close to N(0, I).

ε is an input of the layer, never drawn inside it: during training the caller draws it from the
model's seed generator (so every randomness source stays repeatable), and an exported graph
takes it as part of its noise input (`StackGAN.split_noise`; zeros, ĉ = μ, for runs saved
before that), so it has no random op, converts to TFLite with builtin operators only and
answers deterministically for given inputs.

Reference:
  Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with Stacked
  Generative Adversarial Networks", ICCV, section 3.1 (conditioning augmentation, eq. 3-4).
  Kingma & Welling 2014, "Auto-Encoding Variational Bayes" (the reparameterisation ĉ = μ + σ ⊙ ε
  and the closed-form Gaussian KL, appendix B).
"""

from __future__ import annotations

from typing import Any

import keras

from zoo.core.layers import dcgan_init


@keras.saving.register_keras_serializable(package="zoo")
class ConditioningAugmentation(keras.layers.Layer):
    """φ(t) and ε to (ĉ, μ, log σ²), with ĉ = μ + exp(½ log σ²) ⊙ ε.

    One dense layer maps φ(t) [B, E] to 2·condition_dim values, followed by a LeakyReLU, as the
    authors' TensorFlow code (`generate_condition`: fully connected, leaky ReLU 0.2); the first
    half is μ and the second log σ². `negative_slope=0` gives their PyTorch code's ReLU and
    `negative_slope=1` a purely linear head. Everything is computed in float32 (the layer's
    default dtype policy is "float32" whatever the global policy), so μ, log σ² and the KL term
    are float32 under mixed precision.

    Call it with a list ``[embedding, epsilon]`` (both [B, ·]; ε of shape [B, condition_dim]),
    always both: pass ``epsilon`` drawn from N(0, I) to sample (training, and evaluation and
    export with the served noise's ε) and zeros to get ĉ = μ. It returns the tuple
    ``(c_hat, mu, log_var)``, each float32 [B, condition_dim]; add
    :func:`zoo.core.losses.kl_divergence` of ``(mu, log_var)`` to the generator loss.

    Args:
      condition_dim: size N_c of the condition ĉ (128 in the paper).
      negative_slope: slope of the LeakyReLU after the dense layer (0.2 as the authors' TF code).
      **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`: "float32" unless given).

    Reference:
      Zhang et al. 2017 (StackGAN, ICCV), section 3.1.
    """

    def __init__(self, condition_dim: int = 128, negative_slope: float = 0.2, **kwargs: Any):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if int(condition_dim) < 1:
            raise ValueError(f"condition_dim must be >= 1, got {condition_dim}")
        self.condition_dim = int(condition_dim)
        self.negative_slope = float(negative_slope)
        self.dense = keras.layers.Dense(
            2 * self.condition_dim,
            kernel_initializer=dcgan_init(),
            dtype=self.dtype_policy,
            name="dense",
        )

    def build(self, input_shape: Any) -> None:
        embedding_shape, epsilon_shape = input_shape
        if epsilon_shape[-1] is not None and epsilon_shape[-1] != self.condition_dim:
            raise ValueError(
                f"epsilon must have {self.condition_dim} values per example, got {epsilon_shape}"
            )
        if not self.dense.built:
            self.dense.build(embedding_shape)

    def call(self, inputs: Any) -> tuple[Any, Any, Any]:
        embedding, epsilon = inputs
        embedding = keras.ops.cast(embedding, "float32")
        epsilon = keras.ops.cast(epsilon, "float32")
        x = self.dense(embedding)
        if self.negative_slope != 1.0:
            x = keras.ops.leaky_relu(x, negative_slope=self.negative_slope)
        mu = x[:, : self.condition_dim]
        log_var = x[:, self.condition_dim :]
        c_hat = mu + keras.ops.exp(0.5 * log_var) * epsilon
        return c_hat, mu, log_var

    def compute_output_shape(self, input_shape: Any) -> tuple[tuple[Any, ...], ...]:
        shape = (input_shape[0][0], self.condition_dim)
        return shape, shape, shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "condition_dim": self.condition_dim,
            "negative_slope": self.negative_slope,
        }
