"""Class-conditional GAN: DCGAN networks told which class to draw (and judge).

G joins a learned embedding of the label to z before the projection (Mirza & Osindero, 2014)
and, with `generator_conditioning=batch_norm`, also takes each batch norm's scale and offset
from a per-class table (conditional batch norm, the G of Miyato & Koyama 2018).
D is conditioned either by concatenation (the label, one-hot, replicated over the image and
stacked with its channels, as Mirza & Osindero) or by a projection head (Miyato & Koyama,
2018): logit = ψ(h(x)) + ⟨embed(y), φ(x)⟩, with h(x) D's last feature map, φ(x) its sum
over positions and ψ DCGAN's unconditional head (a linear function of h).
With the projection D, a linear head on D's label-free features also classifies the image
(AC-GAN, Odena et al. 2017): D learns it on real images, G is scored by it on its own.
The defaults are the three together with G's moving average (projection D + class head,
class-conditional batch norm in G, `ema_decay=0.999`); see CGANConfig for the figures.
The game is the shared one; fake images are drawn for the labels of the real batch, so both
players see the data's class frequencies.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo import registry
from zoo.core import losses
from zoo.core.gan import GAN, replica_mean
from zoo.core.images import image_grid, label_rows
from zoo.core.latent import sample_z
from zoo.core.layers import (
    FusedBatchNormalization,
    OneHot,
    SpatialTile,
    dcgan_init,
    maybe_spectral_norm,
)
from zoo.core.networks import (
    ConvNetConfig,
    dcgan_discriminator_trunk,
    dcgan_generator_trunk,
    dcgan_logits,
)
from zoo.data import IDX_NAMES, DatasetInfo, make_dataset, resolve_classes
from zoo.errors import UsageError
from zoo.models.task import SignatureTable, Task, dataset_options
from zoo.run import RunConfig

CONDITIONINGS = ("projection", "concat")
GENERATOR_CONDITIONINGS = ("input", "batch_norm")
# AC-GAN's class-loss weight when `aux_weight` < 0 and D is the projection one (bench, seed 0:
# 0.25 gives class accuracy 0.932, FD 8.36, recall 0.284; 1.0 gives 0.971, 8.86, 0.245).
AUX_WEIGHT = 0.25


@dataclasses.dataclass
class CGANConfig(ConvNetConfig):
    """DCGAN's networks with a label in both players.

    The defaults (projection D with AC-GAN's class head at weight 0.25, class-conditional
    batch norm in G, `ema_decay=0.999`) are what bench/conditional_quality.py measured best
    (2000 steps of 64 at 28 px, 5000 samples, classifier 0.918 on real test images; seed 0;
    seed 1: 0.931, FD 9.36, recall 0.262 for the default, 0.965, 9.82, 0.229 at weight 1):

    | D, G, EMA 0.999 throughout               | class acc. | FD    | precision | recall |
    | concat, G at input (former default)      | 0.813      | 9.93  | 0.735     | 0.345  |
    | projection, class batch norm             | 0.818      | 10.54 | 0.743     | 0.268  |
    | + class head, aux_weight=0.25 (default)  | 0.932      | 8.36  | 0.745     | 0.284  |
    | + class head, aux_weight=1               | 0.971      | 8.86  | 0.737     | 0.245  |

    The class head is what lifts the accuracy; at weight 1 it draws more prototypical images
    of each class (less recall) than at 0.25.

    Attributes:
      num_classes: number of labels; 0 takes the training data's number of classes.
      class_names: names of the labels (filled from the data; row labels of sample grids).
      embedding_dim: size of the label embedding joined to z in G.
      conditioning: how D sees the label: `concat` (one-hot label maps stacked with the
        image channels, Mirza & Osindero 2014) or `projection` (Miyato & Koyama 2018). At the
        same budget the two follow the label alike (bench/conditional_quality.py, 2000 steps
        of 64 at 28 px, seeds 0 and 1, no EMA, G conditioned at its input, the classifier of
        then: class accuracy 0.809, 0.801 and FD 10.4, 9.25 for concat; 0.826, 0.821 and FD
        8.07, 9.39 for projection). Projection is the default since its features, unlike
        concat's, have not seen the label and can carry the AC-GAN class head (`aux_weight`).
        Projection's φ was once average-pooled, which shrank its label term 49-fold (0.242).
      generator_conditioning: where G sees the label besides its input: `input` (only joined
        to z) or `batch_norm` (also class-conditional batch norm in every hidden block).
      aux_weight: weight of AC-GAN's auxiliary classifier loss (Odena et al. 2017): a linear
        class head on D's label-free features, trained on real images, and G's images for
        their labels through it (`losses.auxiliary_classifier_loss`); 0 = off, negative = the
        conditioning's default (projection: AUX_WEIGHT; concat: off, as its D's features
        have seen the label, which a classifier would just read back).
    """

    latent_dim: int = 100
    image_size: int = 32
    channels: int = 1
    loss: str = "non_saturating"
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    embedding_dim: int = 50
    conditioning: str = "projection"
    generator_conditioning: str = "batch_norm"
    aux_weight: float = -1.0
    ema_decay: float = 0.999

    # Runs saved before the auxiliary classifier had none (their D has no class head).
    absent_from_old_runs: typing.ClassVar[dict[str, Any]] = {
        **ConvNetConfig.absent_from_old_runs,
        "aux_weight": 0.0,
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.conditioning not in CONDITIONINGS:
            raise UsageError(
                f"conditioning must be one of {', '.join(CONDITIONINGS)}, got {self.conditioning!r}"
            )
        if self.generator_conditioning not in GENERATOR_CONDITIONINGS:
            raise UsageError(
                f"generator_conditioning must be one of {', '.join(GENERATOR_CONDITIONINGS)}, "
                f"got {self.generator_conditioning!r}"
            )
        positive = isinstance(self.aux_weight, int | float) and self.aux_weight > 0
        if positive and self.conditioning == "concat":
            raise UsageError(
                "aux_weight > 0 needs conditioning=projection: the concat D stacks the label "
                "with the image, so its class head could read the label instead of the image"
            )
        if self.class_names and len(self.class_names) != self.num_classes:
            raise UsageError(f"{len(self.class_names)} class_names for {self.num_classes} classes")


@keras.saving.register_keras_serializable(package="zoo")
class ClassBatchNorm(keras.layers.Layer):
    """Batch norm whose scale and offset are the class's: γ[y] · x̂ + β[y] (de Vries et al.
    2017; the generator Miyato & Koyama 2018 pair with the projection discriminator).

    The statistics are the batch's over all classes (DCGAN's momentum and epsilon); γ starts
    at N(1, 0.02) and β at 0 for every class, DCGAN's batch-norm initialisation.

    Args:
      num_classes: rows of the γ and β tables.
      synchronized: batch statistics over all replicas.
    """

    def __init__(self, num_classes: int, synchronized: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.synchronized = synchronized
        self.norm = FusedBatchNormalization(
            momentum=0.9, epsilon=1e-5, center=False, scale=False, synchronized=synchronized
        )

    def build(self, input_shape: Any) -> None:
        x_shape, _ = input_shape
        shape = (self.num_classes, x_shape[-1])
        self.gamma = self.add_weight(
            shape=shape, initializer=keras.initializers.RandomNormal(1.0, 0.02), name="gamma"
        )
        self.beta = self.add_weight(shape=shape, initializer="zeros", name="beta")
        self.norm.build(x_shape)

    def call(self, inputs: Any, training: Any = None) -> tf.Tensor:
        x, label = inputs
        normalised = self.norm(x, training=training)
        broadcast = (-1,) + (1,) * (len(x.shape) - 2) + (x.shape[-1],)
        gamma = keras.ops.reshape(keras.ops.take(self.gamma, label, axis=0), broadcast)
        beta = keras.ops.reshape(keras.ops.take(self.beta, label, axis=0), broadcast)
        dtype = normalised.dtype
        return normalised * keras.ops.cast(gamma, dtype) + keras.ops.cast(beta, dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "synchronized": self.synchronized,
        }


@keras.saving.register_keras_serializable(package="zoo")
class GlobalSumPooling2D(keras.layers.Layer):
    """Sums a feature map over its positions: [B, H, W, C] -> [B, C]."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return keras.ops.sum(x, axis=(1, 2))


class CGAN(GAN):
    """Class-conditional DCGAN; the shared `train_step` with labels as the condition."""

    config_class = CGANConfig

    def __init__(self, config: CGANConfig, *, seed: int = 0, **kwargs: Any) -> None:
        if config.num_classes < 1:
            raise UsageError("cgan needs num_classes >= 1 (train on a labelled dataset)")
        aux_weight = self.resolve_aux_weight(config)
        super().__init__(config, seed=seed, **kwargs)
        self.aux_weight = aux_weight
        if self.aux_weight:
            for name in ("d_class_loss", "g_class_loss"):
                self.trackers[name] = keras.metrics.Mean(name=name)

    @staticmethod
    def resolve_aux_weight(config: CGANConfig) -> float:
        """The auxiliary classifier's weight: the config's, or the conditioning's default."""
        if config.aux_weight >= 0:
            return float(config.aux_weight)
        return AUX_WEIGHT if config.conditioning == "projection" else 0.0

    # -- networks ---------------------------------------------------------------------------
    def build_generator(self) -> keras.Model:
        c = self.config
        z = keras.Input((c.latent_dim,), name="z")
        label = keras.Input((), dtype="int32", name="label")
        embedded = keras.layers.Embedding(c.num_classes, c.embedding_dim, name="label_embedding")(
            label
        )
        x = keras.layers.Concatenate()([z, embedded])
        norm = None
        if c.generator_conditioning == "batch_norm":

            def norm(t: keras.KerasTensor) -> keras.KerasTensor:
                return ClassBatchNorm(c.num_classes, c.sync_batchnorm)([t, label])

        return keras.Model([z, label], dcgan_generator_trunk(x, c, norm), name="generator")

    def build_discriminator(self) -> keras.Model:
        c = self.config
        images = keras.Input((c.image_size, c.image_size, c.channels), name="images")
        label = keras.Input((), dtype="int32", name="label")
        if c.conditioning == "concat":
            maps = SpatialTile(c.image_size, c.image_size)(OneHot(c.num_classes)(label))
            x = keras.layers.Concatenate()([images, maps])
            logits = dcgan_logits(dcgan_discriminator_trunk(x, c), c)
        else:
            features = dcgan_discriminator_trunk(images, c)
            # φ(x): the last feature map summed over positions (Miyato & Koyama's pooling). An
            # average would divide the projection term by side² (49 at 28 px) and, under Adam's
            # per-weight step sizes, slow its learning as much, next to the unpooled ψ.
            pooled = GlobalSumPooling2D(dtype="float32", name="phi")(features)
            # V as a bias-free Dense on the one-hot label (V[y] = onehot(y) V): Keras's
            # SpectralNormalization casts its layer's output to the input's dtype, which turns
            # an Embedding's looked-up rows into int32 zeros (|V| < 1 after SN) and left D
            # blind to the label under spectral_norm=true (bench: class accuracy 0.101; 0.753 now).
            embedded = maybe_spectral_norm(
                keras.layers.Dense(
                    pooled.shape[-1],
                    use_bias=False,
                    # Keras's U(±0.05), not the authors' Glorot-uniform V (±0.21 at K=10,
                    # F=128): with φ a sum of 49 positive-mean features, Glorot's label term
                    # starts near ±20 and the bench fell from 0.83 to 0.74 class accuracy.
                    kernel_initializer=keras.initializers.RandomUniform(-0.05, 0.05),
                    dtype="float32",
                    name="projection",
                ),
                c.spectral_norm,
            )(OneHot(c.num_classes, dtype="float32")(label))
            projection = keras.layers.Dot(axes=1, dtype="float32")([embedded, pooled])
            logits = keras.layers.Add(dtype="float32")([dcgan_logits(features, c), projection])
            if self.resolve_aux_weight(c):
                # AC-GAN's class head: linear on the label-free last feature map (h, not the
                # sum φ, whose 49-fold scale the projection needs and a softmax does not).
                flat = keras.layers.Flatten(dtype="float32")(features)
                class_logits = maybe_spectral_norm(
                    keras.layers.Dense(
                        c.num_classes,
                        kernel_initializer=dcgan_init(),
                        dtype="float32",
                        name="class_logits",
                    ),
                    c.spectral_norm,
                )(flat)
                return keras.Model([images, label], [logits, class_logits], name="discriminator")
        return keras.Model([images, label], logits, name="discriminator")

    # -- the game's hooks -------------------------------------------------------------------
    def unpack_batch(self, data: Any) -> tuple[tf.Tensor, tf.Tensor]:
        images, labels = data
        return images, tf.cast(labels, tf.int32)

    def fake_batch(self, batch_size: tf.Tensor, condition: Any = None) -> tf.Tensor:
        return self.generator([self.noise(batch_size), condition], training=True)

    def discriminate(
        self, x: tf.Tensor, training: bool = True, condition: tf.Tensor | None = None
    ) -> tf.Tensor:
        if condition is None:
            raise ValueError("cgan's discriminator needs the labels (condition=)")
        outputs = self.discriminator([x, condition], training=training)
        return outputs[0] if self.aux_weight else outputs

    # -- AC-GAN's auxiliary classifier (aux_weight > 0) ---------------------------------------
    def discriminator_update(
        self, real: Any, fake: Any, condition: Any = None
    ) -> dict[str, tf.Tensor]:
        """The shared D step, plus aux_weight × the class head's loss on the real batch."""
        if not self.aux_weight:
            return super().discriminator_update(real, fake, condition)
        fake = tf.stop_gradient(fake)
        class_logits: list[tf.Tensor] = []

        def discriminate(x: tf.Tensor) -> tf.Tensor:
            logits, classes = self.discriminator([x, condition], training=True)
            class_logits.append(classes)
            return logits

        variables = self.discriminator_variables
        with tf.GradientTape() as tape:
            loss, logs = self.discriminator_loss(real, fake, discriminate)
            # discriminator_loss scores the real batch (through T when `augment` is on) first,
            # then the fake one, then any penalty's inputs: the first head output is real's.
            class_loss = losses.global_batch_mean(
                losses.auxiliary_classifier_loss(class_logits[0], condition)
            )
            loss += self.aux_weight * class_loss
        self.apply_update(self.d_optimizer, tape, loss, variables)
        logs["d_class_loss"] = replica_mean(class_loss)
        logs["d_loss"] = replica_mean(loss)
        return logs

    def generator_loss(self, fake: Any, condition: Any = None) -> tuple[tf.Tensor, dict]:
        """The shared G loss (`GAN.generator_loss`); with aux_weight > 0 it adds aux_weight ×
        the class head's loss on G's images for the labels they were drawn for."""
        if not self.aux_weight:
            return super().generator_loss(fake, condition)
        fake_logits, class_logits = self.discriminator(
            [self.diff_augment(fake), condition], training=True
        )
        adversarial = losses.global_batch_mean(self.loss_spec.generator(fake_logits))
        class_loss = losses.global_batch_mean(
            losses.auxiliary_classifier_loss(class_logits, condition)
        )
        return adversarial + self.aux_weight * class_loss, {"g_class_loss": class_loss}

    # -- sampling ----------------------------------------------------------------
    def sample_inputs(self, num: int, seed: int = 0) -> dict[str, np.ndarray]:
        """z ~ N(0, I) and labels cycling through the classes (0, 1, ..., K-1, 0, ...)."""
        inputs = super().sample_inputs(num, seed)
        inputs["label"] = (np.arange(num) % self.config.num_classes).astype("int32")
        return inputs

    def generate(self, inputs: dict[str, Any]) -> tf.Tensor:
        z = tf.convert_to_tensor(inputs["z"], tf.float32)
        label = tf.convert_to_tensor(inputs["label"], tf.int32)
        return tf.cast(self.generator([z, label], training=False), tf.float32)


@registry.register("cgan")
class CGANTask(Task):
    """The cGAN's run side: labelled data, a row per class, `z` + `label` served."""

    model_class = CGAN
    # The budget of its quality figures (`bench/conditional_quality.py --model=cgan`, 2000 × 64).
    dataset_train_steps: typing.ClassVar[dict[str, int]] = {name: 2000 for name in IDX_NAMES}

    def adapt_config(self, config: CGANConfig, info: DatasetInfo) -> CGANConfig:
        """Takes the number and names of classes from the data (original class indices)."""
        config = super().adapt_config(config, info)
        names = tuple(info.class_names or ())
        if not names:
            raise UsageError(f"cgan needs a labelled dataset; {info.name} has no classes")
        if config.num_classes not in (0, len(names)):
            raise UsageError(f"num_classes={config.num_classes} but {info.name} has {len(names)}")
        return dataclasses.replace(config, num_classes=len(names), class_names=names)

    def training_dataset(
        self, rc: RunConfig, config: CGANConfig, *, batch_size: int, start_step: int
    ) -> tuple[tf.data.Dataset, DatasetInfo]:
        """(images, labels) batches of `rc.dataset`."""
        return make_dataset(
            rc.dataset,
            image_size=config.image_size,
            channels=config.channels,
            with_labels=True,
            **dataset_options(rc, batch_size=batch_size, start_step=start_step),
        )

    def sample_picture(
        self, model: CGAN, num: int, rc: RunConfig | None = None, centres: np.ndarray | None = None
    ) -> np.ndarray:
        """One row per class (the trained ones when `--classes` kept some), labelled by name."""
        del centres
        c = model.config
        names = list(c.class_names) or [str(i) for i in range(c.num_classes)]
        classes = list(range(c.num_classes))
        if rc is not None and rc.classes:
            classes = resolve_classes(list(rc.classes), names)
        columns = max(4, min(10, num // len(classes)))
        z = sample_z(columns, c.latent_dim, seed=0)
        inputs = {
            "z": np.tile(z, (len(classes), 1)),
            "label": np.repeat(np.asarray(classes, "int32"), columns),
        }
        grid = image_grid(np.asarray(model.generate(inputs)), columns=columns)
        return label_rows(grid, [names[i] for i in classes], rows=len(classes))

    def serving_signatures(self, model: CGAN) -> SignatureTable:
        """`z` float32 [B, latent] and `label` int32 [B] -> `images`.

        A label outside [0, num_classes) fails the request with a message naming the range
        (TF's CPU gather would fail too, less clearly; a GPU gather would silently return a
        zero embedding). TFLite has no assertion op: there the invocation fails in GATHER
        ("gather index out of bounds"), for negative labels too.
        """
        c = model.config
        specs = {
            "z": tf.TensorSpec([None, c.latent_dim], tf.float32, name="z"),
            "label": tf.TensorSpec([None], tf.int32, name="label"),
        }

        def generate(z: tf.Tensor, label: tf.Tensor) -> dict[str, tf.Tensor]:
            checks = [
                tf.debugging.assert_non_negative(label, message="label must be >= 0"),
                tf.debugging.assert_less(
                    label, c.num_classes, message=f"label must be < num_classes={c.num_classes}"
                ),
            ]
            with tf.control_dependencies(checks):
                # TFLite drops the assertions, and its GATHER fails on an index >= K but reads
                # a negative one; mapping negatives to K makes both out-of-range cases fail.
                label = tf.where(label < 0, c.num_classes, label)
            return {"images": tf.cast(model.generator([z, label], training=False), tf.float32)}

        return {"serving_default": (generate, specs)}
