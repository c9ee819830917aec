"""Small layer helpers the families share."""

from __future__ import annotations

from typing import Any

import keras


def dcgan_init() -> keras.initializers.Initializer:
    """Weights drawn from N(0, 0.02), as in Radford et al. (2016)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _fused_batch_norm_training(x: Any, gamma: Any, beta: Any, epsilon: float) -> tuple:
    """TF's fused batch norm in training mode on an NHWC map: (y, batch mean, variance), the
    variance as the kernel returns it (unbiased). One oneDNN kernel forward and one backward."""
    y, mean, variance, *_ = _fused_batch_norm_v3(x, gamma, beta, epsilon)
    return y, mean, variance


def _fused_batch_norm_v3(x: Any, gamma: Any, beta: Any, epsilon: float) -> tuple:
    """`FusedBatchNormV3` in training mode on an NHWC map: all six outputs (y, mean, variance
    and the three reserve spaces its gradient kernel takes)."""
    import tensorflow as tf

    return tf.raw_ops.FusedBatchNormV3(
        x=x,
        scale=gamma,
        offset=beta,
        mean=tf.zeros([0]),
        variance=tf.zeros([0]),
        epsilon=epsilon,
        exponential_avg_factor=1.0,
        data_format="NHWC",
        is_training=True,
    )


def _fused_instance_norm(x: Any, gamma: Any, beta: Any, epsilon: float) -> Any:
    """Instance norm of an NHWC float32 map as TF's fused batch norm, with a lean gradient.

    Each example's channel becomes one channel of a batch of one ([1, H, W, B·C]; a batch of
    one is that map already), so `FusedBatchNormV3` (one oneDNN kernel forward) and
    `FusedBatchNormGradV3` (one backward) compute the same function as the axis-by-axis path.
    The gradient is written here rather than derived through the transposes, reshapes and
    tiles: TF's derived one took ~100 graph ops per norm (44% of a CycleGAN train step's
    ops, traced and optimised at every start-up); this one takes about a third of that. It
    is the registered gradient's own kernel, so second derivatives (R1) still exist.
    """
    import tensorflow as tf

    batch, height, width, channels = x.shape
    if None in (batch, height, width):
        shape = tf.shape(x)
        batch = batch or shape[0]
        height = height or shape[1]
        width = width or shape[2]
    single = isinstance(batch, int) and batch == 1

    def to_flat(t):
        return t if single else tf.reshape(tf.transpose(t, [1, 2, 0, 3]), [1, height, width, -1])

    def from_flat(t):
        if single:
            return t
        return tf.transpose(tf.reshape(t, [height, width, batch, channels]), [2, 0, 1, 3])

    def per_example(v):  # [C] -> [B·C]
        return v if single else tf.tile(v, [batch])

    def summed(v):  # [B·C] -> [C], the adjoint of `per_example`
        return v if single else tf.reduce_sum(tf.reshape(v, [batch, channels]), axis=0)

    @tf.custom_gradient
    def norm(x, gamma, beta):
        flat, scale = to_flat(x), per_example(gamma)
        y, _, _, reserve_1, reserve_2, reserve_3 = _fused_batch_norm_v3(
            flat, scale, per_example(beta), epsilon
        )

        def grad(dy):
            dx, dscale, doffset, _, _ = tf.raw_ops.FusedBatchNormGradV3(
                y_backprop=to_flat(dy),
                x=flat,
                scale=scale,
                reserve_space_1=reserve_1,
                reserve_space_2=reserve_2,
                reserve_space_3=reserve_3,
                epsilon=epsilon,
                data_format="NHWC",
                is_training=True,
            )
            return from_flat(dx), summed(dscale), summed(doffset)

        return from_flat(y), grad

    return norm(x, gamma, beta)


@keras.saving.register_keras_serializable(package="zoo")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training pass on NHWC maps is TF's fused kernel.

    Keras 3 normalises with separate moments and arithmetic ops; TensorFlow's
    `FusedBatchNormV3` (and its fused gradient) does the same in one oneDNN/cuDNN kernel, which
    makes the DCGAN training step about 6% faster on CPU. Same function, same variables, same
    moving-average rule (with the biased batch variance, as Keras); every other case
    (inference, masks, renorm, synchronised statistics, other ranks) is the Keras path.
    """

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        import tensorflow as tf

        axis = self.axis if isinstance(self.axis, int) else list(self.axis)
        fusable = (
            training
            and self.trainable
            and mask is None
            and len(inputs.shape) == 4
            and axis in (-1, 3, [3])
            and not self.synchronized
            and not self.renorm
        )
        if not fusable:
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        y, mean, variance = _fused_batch_norm_training(x, gamma, beta, self.epsilon)
        count = tf.cast(tf.size(x) // channels, tf.float32)
        variance = variance * (count - 1.0) / count  # the kernel returns the unbiased one
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))
        return tf.cast(y, self.compute_dtype)


def batch_norm(synchronized: bool = False, momentum: float = 0.9) -> keras.layers.Layer:
    """Batch norm with DCGAN's settings; per-replica statistics unless `synchronized`."""
    return FusedBatchNormalization(
        momentum=momentum,
        epsilon=1e-5,
        gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.02),
        synchronized=synchronized,
    )


def maybe_spectral_norm(layer: keras.layers.Layer, enabled: bool) -> keras.layers.Layer:
    """Wraps a weight layer in spectral normalisation (Miyato et al., 2018) when enabled."""
    return keras.layers.SpectralNormalization(layer) if enabled else layer


@keras.saving.register_keras_serializable(package="zoo")
class ReflectionPadding2D(keras.layers.Layer):
    """Pads the two spatial axes of NHWC images by mirroring them (edge pixel not repeated).

    Keras has no reflection padding layer; `keras.ops.pad(mode="reflect")` lowers to
    `tf.pad(mode="REFLECT")`, which TFLite runs as its builtin MIRROR_PAD.

    Args:
      padding: pixels added on each side of both spatial axes.

    Reference:
      Johnson et al. 2016 and Zhu et al. 2017 pad with reflection in their ResNet generators.
    """

    def __init__(self, padding: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        return keras.ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = 2 * self.padding
        return (
            batch,
            None if height is None else height + grow,
            None if width is None else width + grow,
            channels,
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="zoo")
class InstanceNormalization(keras.layers.Layer):
    """Normalises each example's channels over their spatial positions (channels last).

    y = γ · (x − μ) / √(σ² + ε) + β, with μ and σ² the mean and (biased) variance of one
    channel of one example over H and W, and γ, β learned per channel: the same function as
    `keras.layers.GroupNormalization(groups=-1)`, computed so that a float32 TFLite model
    matches TensorFlow at large images. TFLite's MEAN (builtin, reference and XNNPACK kernels
    alike) sums its inputs one after another in float32, so one mean over the 65,536 pixels of
    a 256 × 256 map is off by up to ~1e-5 of its magnitude; 20 such norms put the CycleGAN
    generator ~5e-3 away from its SavedModel. Here every mean is taken one spatial axis at a
    time (over W, then over H: equal counts, so mathematically the same mean) and the
    variance is the mean of squared deviations from that mean (two passes, not
    E[x²] − E[x]²). Statistics and the affine transform run in float32 whatever the compute
    dtype; the output is cast back to it. The training pass on NHWC maps computes the same
    function with TF's fused batch-norm kernel instead (see `_fused_call`; exports trace
    `training=False`, so no TFLite model contains it).

    Args:
      epsilon: added to the variance (1e-5, as PyTorch's `InstanceNorm2d`).
      center: learn the offset β.
      scale: learn the gain γ.
      beta_initializer, gamma_initializer: initializers of β and γ.

    Reference:
      Ulyanov, Vedaldi & Lempitsky 2016, "Instance Normalization: The Missing Ingredient for
      Fast Stylization".
    """

    def __init__(
        self,
        epsilon: float = 1e-5,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.supports_masking = True

    def build(self, input_shape) -> None:
        if len(input_shape) < 3:
            raise ValueError(
                f"InstanceNormalization needs (batch, *spatial, channels) inputs, got {input_shape}"
            )
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"InstanceNormalization needs a known channel count: {input_shape}")
        self.input_spec = keras.layers.InputSpec(ndim=len(input_shape), axes={-1: channels})
        # Float32 variables read as float32 under mixed precision (no autocast).
        self.gamma = (
            self.add_weight(
                shape=(channels,), name="gamma", initializer=self.gamma_initializer, autocast=False
            )
            if self.scale
            else None
        )
        self.beta = (
            self.add_weight(
                shape=(channels,), name="beta", initializer=self.beta_initializer, autocast=False
            )
            if self.center
            else None
        )

    def _spatial_mean(self, x):
        for axis in range(len(x.shape) - 2, 0, -1):  # one spatial axis at a time
            x = keras.ops.mean(x, axis=axis, keepdims=True)
        return x

    def call(self, inputs, training=None):
        if training and len(inputs.shape) == 4 and keras.backend.backend() == "tensorflow":
            return self._fused_call(inputs)
        x = keras.ops.cast(inputs, "float32")
        mean = self._spatial_mean(x)
        centred = x - mean
        variance = self._spatial_mean(keras.ops.square(centred))
        inv = keras.ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            inv = inv * keras.ops.cast(self.gamma, "float32")
        outputs = centred * inv
        if self.beta is not None:
            outputs = outputs + keras.ops.cast(self.beta, "float32")
        return keras.ops.cast(outputs, self.compute_dtype)

    def _fused_call(self, inputs):
        """The training pass on NHWC maps: TF's fused batch norm (see `_fused_instance_norm`)."""
        import tensorflow as tf

        x = tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        y = _fused_instance_norm(x, gamma, beta, self.epsilon)
        y.set_shape(inputs.shape)
        return tf.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": keras.initializers.serialize(self.beta_initializer),
            "gamma_initializer": keras.initializers.serialize(self.gamma_initializer),
        }


@keras.saving.register_keras_serializable(package="zoo")
class SpatialTile(keras.layers.Layer):
    """Replicates a vector [B, D] over a height x width grid: [B, height, width, D].

    How a condition (a one-hot label, a text embedding) meets image features in conditional
    discriminators (Mirza & Osindero 2014; Reed et al. 2016). Lowers to TFLite's builtin TILE.
    """

    def __init__(self, height: int, width: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)

    def call(self, inputs):
        x = keras.ops.expand_dims(keras.ops.expand_dims(inputs, 1), 1)
        return keras.ops.tile(x, [1, self.height, self.width, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


@keras.saving.register_keras_serializable(package="zoo")
class OneHot(keras.layers.Layer):
    """Integer labels [B] to one-hot float vectors [B, num_classes] (TFLite's ONE_HOT)."""

    def __init__(self, num_classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def call(self, inputs):
        return keras.ops.one_hot(keras.ops.cast(inputs, "int32"), self.num_classes)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="zoo")
class NearestUpsampling2D(keras.layers.Layer):
    """Nearest-neighbour upsampling of NHWC maps by an integer factor, as reshape and tile.

    The same function as `keras.layers.UpSampling2D(interpolation="nearest")`, whose
    `ops.repeat` loses the static height and width in a TF graph with a dynamic batch, so the
    TFLite converter can no longer lower the next convolution to a builtin. Here the spatial
    sides stay static (TFLite: RESHAPE, TILE, RESHAPE), and the gradient (a sum) is
    deterministic on GPU, unlike that of a nearest-neighbour resize.

    Args:
      factor: how many times each pixel is repeated along height and along width.
    """

    def __init__(self, factor: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, inputs):
        _, height, width, channels = inputs.shape
        f = self.factor
        x = keras.ops.reshape(inputs, (-1, height, 1, width, 1, channels))
        x = keras.ops.tile(x, (1, 1, f, 1, f, 1))
        return keras.ops.reshape(x, (-1, height * f, width * f, channels))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, height * self.factor, width * self.factor, channels)

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor}
