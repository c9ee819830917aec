"""Sample quality of a family trained for a fixed budget, through the path `train_main.py` runs.

    python bench/quality.py --model=dcgan                        # 3000 steps of 64, 28 px
    python bench/quality.py --model=gan --dataset=ring8          # 8000 steps of 256; also grid25
    python bench/quality.py --model=cyclegan                     # sandal <-> sneaker, 32 px

Each mode trains with `zoo.train.run` into `--work_dir/<model>_<dataset>...`, restores the run
with `zoo.run.load_trained` and evaluates it with `zoo.eval.evaluate` (the zoo classifier's
features on Fashion-MNIST; mode coverage on the toys; the CycleGAN task's `evaluate` for
translation), then writes a picture of samples beside the run.

- `dcgan` (Fashion-MNIST at 28 px, the classifier's own size) also trains the TensorFlow
  tutorial's DCGAN (tensorflow.org/tutorials/generative/dcgan) for the same steps and batch on
  the same stream, with the tutorial's own `tf.function` loop, and evaluates its samples with
  the same evaluator, sample count and seed: FD, KID, IS, precision and recall of both.
- `gan` on `ring8` / `grid25`: modes covered and the high-quality fraction, at the toy
  defaults of `zoo.models.gan.VECTOR_DEFAULTS` (options: `--pack`, `--loss`, `--config`).
- `cyclegan`: translation accuracy, FD and cycle L1 error both ways, and a grid of rows
  a, G(a), F(G(a)), b, F(b), G(F(b)).

The last line printed is `key=value ...` with the headline figures.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "dcgan", ["dcgan", "gan", "cyclegan"], "Family to train.")
flags.DEFINE_string("dataset", "", "Dataset (default fashion_mnist; for gan ring8, or grid25).")
flags.DEFINE_integer("train_steps", 0, "Training steps, the CPU budget (default 3000; toys 8000).")
flags.DEFINE_integer(
    "batch_size", 0, "Batch size (default 64; toys 256; cyclegan: the family's default)."
)
flags.DEFINE_integer(
    "image_size", 0, "Image side (default 28 for dcgan; cyclegan: its default_config's, 32)."
)
flags.DEFINE_integer("eval_samples", 10000, "Samples evaluated (cyclegan: per domain, capped).")
flags.DEFINE_integer("seed", 0, "Seed of the run and of the evaluation's samples.")
flags.DEFINE_string("work_dir", "/tmp/ganzoo_quality", "Where the run directories go.")
flags.DEFINE_integer("pack", 1, "gan: PacGAN packing degree.")
flags.DEFINE_string("loss", "", "Adversarial loss (default: the family's).")
flags.DEFINE_string("domain_a", "sandal", "cyclegan: class of domain A.")
flags.DEFINE_string("domain_b", "sneaker", "cyclegan: class of domain B.")
flags.DEFINE_boolean("reference", True, "dcgan: also train and evaluate the tutorial's DCGAN.")
flags.DEFINE_multi_string("config", [], "Family config override key=value.")

TUTORIAL_NOISE_DIM = 100
# CycleGAN's budget on sandal <-> sneaker at its Fashion-MNIST defaults (see README).
CYCLEGAN_STEPS = 3000
HEADLINE = {
    "dcgan": ("fd", "kid", "inception_score", "precision", "recall"),
    "gan": ("modes_covered", "high_quality_fraction"),
}


def _figures(metrics: dict, keys: tuple[str, ...] | None = None) -> str:
    keys = keys or tuple(sorted(metrics))
    return " ".join(
        f"{k}={metrics[k]:.4g}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
        for k in keys
        if k in metrics
    )


# -- the TensorFlow tutorial's DCGAN, as the tutorial writes it ------------------------------
def make_generator_model():
    import keras
    from keras import layers

    model = keras.Sequential()
    model.add(keras.Input((TUTORIAL_NOISE_DIM,)))
    model.add(layers.Dense(7 * 7 * 256, use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Reshape((7, 7, 256)))
    model.add(layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(
        layers.Conv2DTranspose(
            1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"
        )
    )
    return model


def make_discriminator_model():
    import keras
    from keras import layers

    model = keras.Sequential()
    model.add(keras.Input((28, 28, 1)))
    model.add(layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))
    model.add(layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))
    model.add(layers.Flatten())
    model.add(layers.Dense(1))
    return model


class TutorialDCGAN:
    """The tutorial's networks, losses, optimizers and `train_step`, plus the sampling interface
    the zoo's `Evaluator` reads (`sample_inputs` draws z as `GAN.sample_inputs` does)."""

    def __init__(self, batch_size: int) -> None:
        import keras
        import tensorflow as tf

        self.batch_size = batch_size
        self.generator = make_generator_model()
        self.discriminator = make_discriminator_model()
        self.cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
        self.generator_optimizer = keras.optimizers.Adam(1e-4)
        self.discriminator_optimizer = keras.optimizers.Adam(1e-4)
        self.train_step = tf.function(self._train_step)

    def discriminator_loss(self, real_output, fake_output):
        import tensorflow as tf

        real_loss = self.cross_entropy(tf.ones_like(real_output), real_output)
        fake_loss = self.cross_entropy(tf.zeros_like(fake_output), fake_output)
        return real_loss + fake_loss

    def generator_loss(self, fake_output):
        import tensorflow as tf

        return self.cross_entropy(tf.ones_like(fake_output), fake_output)

    def _train_step(self, images):
        import tensorflow as tf

        noise = tf.random.normal([self.batch_size, TUTORIAL_NOISE_DIM])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = self.generator(noise, training=True)
            real_output = self.discriminator(images, training=True)
            fake_output = self.discriminator(generated_images, training=True)
            gen_loss = self.generator_loss(fake_output)
            disc_loss = self.discriminator_loss(real_output, fake_output)
        gradients_of_generator = gen_tape.gradient(gen_loss, self.generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(
            disc_loss, self.discriminator.trainable_variables
        )
        self.generator_optimizer.apply_gradients(
            zip(gradients_of_generator, self.generator.trainable_variables, strict=True)
        )
        self.discriminator_optimizer.apply_gradients(
            zip(gradients_of_discriminator, self.discriminator.trainable_variables, strict=True)
        )
        return gen_loss, disc_loss

    def sample_inputs(self, num: int, seed: int = 0) -> dict:
        import numpy as np

        rng = np.random.default_rng(seed)
        return {"z": rng.standard_normal((num, TUTORIAL_NOISE_DIM)).astype("float32")}

    def generate(self, inputs: dict):
        return self.generator(inputs["z"], training=False)


def train_tutorial(rc, steps: int) -> TutorialDCGAN:
    """The tutorial's loop for `steps` batches of the run's own training stream (28 px)."""
    import keras

    from zoo import data as zoo_data

    keras.utils.set_random_seed(rc.seed)
    model = TutorialDCGAN(rc.batch_size)
    dataset, _ = zoo_data.make_dataset(
        rc.dataset, batch_size=rc.batch_size, seed=rc.seed, image_size=28, channels=1
    )
    for image_batch in dataset.take(steps):
        model.train_step(image_batch)
    return model


# -- the modes -------------------------------------------------------------------------------
def _train(rc, overrides: list[str]) -> tuple[object, float]:
    from zoo import run as zoo_run
    from zoo import train

    start = time.perf_counter()
    result = train.run(rc, overrides)
    if result.status != "completed":
        raise SystemExit(f"{rc.model_dir}: training {result.status}: {result.message}")
    return zoo_run.load_trained(rc.model_dir), time.perf_counter() - start


def cyclegan_budget(dataset: str, batch_size: int, train_steps: int) -> tuple[int, int]:
    """CycleGAN's bench budget: the family's default batch (`Task.default_batch_size`) and
    CYCLEGAN_STEPS steps, unless the flags set them; the config is `default_config(dataset)`
    (32 px grayscale on Fashion-MNIST) plus `--config`."""
    from zoo import registry

    task = registry.get("cyclegan")
    return batch_size or task.default_batch_size(dataset), train_steps or CYCLEGAN_STEPS


def main(argv: list[str]) -> None:
    del argv
    from zoo import cli

    cli.import_tensorflow_quietly()
    import tensorflow as tf

    from zoo import data as zoo_data
    from zoo import run as zoo_run
    from zoo.core.images import image_grid, save_png
    from zoo.eval.evaluate import Evaluator

    model_name = FLAGS.model
    dataset = FLAGS.dataset or ("ring8" if model_name == "gan" else "fashion_mnist")
    toy = dataset in zoo_data.TOY_NAMES
    batch_size = FLAGS.batch_size or (256 if toy else 64)
    train_steps = FLAGS.train_steps or (8000 if toy else 3000)
    if model_name == "cyclegan":
        batch_size, train_steps = cyclegan_budget(dataset, FLAGS.batch_size, FLAGS.train_steps)
    overrides = list(FLAGS.config)
    image_size = FLAGS.image_size or {"dcgan": 28}.get(model_name, 0)
    if image_size and not toy:
        overrides.append(f"image_size={image_size}")
    if FLAGS.pack != 1:
        overrides.append(f"pack={FLAGS.pack}")
    if FLAGS.loss:
        overrides.append(f"loss={FLAGS.loss}")
    tag = "_".join(
        [model_name, dataset, f"{train_steps}x{batch_size}"]
        + [o.replace("=", "-") for o in overrides]
    )
    rc = zoo_run.RunConfig(
        model=model_name,
        dataset=dataset,
        model_dir=os.path.join(FLAGS.work_dir, tag),
        train_steps=train_steps,
        batch_size=batch_size,
        seed=FLAGS.seed,
        checkpoint_every=train_steps,
        sample_every=train_steps,
        log_every=max(1, train_steps // 10),
        domain_a=FLAGS.domain_a if model_name == "cyclegan" else "",
        domain_b=FLAGS.domain_b if model_name == "cyclegan" else "",
    )
    print(
        f"model={model_name} dataset={dataset} steps={rc.train_steps} batch_size={batch_size} "
        f"overrides={','.join(overrides) or '-'} eval_samples={FLAGS.eval_samples} "
        f"threads={tf.config.threading.get_intra_op_parallelism_threads()}",
        flush=True,
    )

    trained, train_seconds = _train(rc, overrides)
    task, model = trained.task, trained.model
    evaluator = Evaluator(rc)
    start = time.perf_counter()
    metrics = task.evaluate(model, evaluator, FLAGS.eval_samples, FLAGS.seed)
    eval_seconds = time.perf_counter() - start
    picture = os.path.join(rc.model_dir, "quality_samples.png")
    centres = zoo_data.toy_modes(dataset)[0] if toy else None
    num_pictured = 36 if model_name == "cyclegan" else (64 if not toy else 2000)
    save_png(task.sample_picture(model, num_pictured, rc, centres), picture)
    print(
        f"zoo {model_name}: {_figures(metrics)} train_s={train_seconds:.0f} "
        f"eval_s={eval_seconds:.0f} samples={picture}",
        flush=True,
    )

    if model_name == "cyclegan":
        names = ("translation_accuracy", "cycle_error")
        keys = tuple(f"{d}_{k}" for d in ("a_to_b", "b_to_a") for k in names)
        print(f"{_figures(metrics, keys)} steps={rc.train_steps} batch_size={batch_size}")
        return
    if model_name != "dcgan" or toy or not FLAGS.reference:
        print(f"{_figures(metrics, HEADLINE.get(model_name))} steps={rc.train_steps}")
        return

    start = time.perf_counter()
    reference = train_tutorial(rc, rc.train_steps)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    reference_metrics = evaluator(reference, FLAGS.eval_samples, FLAGS.seed)
    eval_seconds = time.perf_counter() - start
    picture = os.path.join(FLAGS.work_dir, f"tutorial_dcgan_{rc.train_steps}x{batch_size}.png")
    samples = reference.generate(reference.sample_inputs(64, seed=0))
    save_png(image_grid(tf.cast(samples, tf.float32).numpy()), picture)
    print(
        f"tutorial dcgan: {_figures(reference_metrics)} train_s={train_seconds:.0f} "
        f"eval_s={eval_seconds:.0f} samples={picture}",
        flush=True,
    )
    print(
        f"fd={metrics['fd']:.4g} tutorial_fd={reference_metrics['fd']:.4g} "
        f"fd_ratio={metrics['fd'] / reference_metrics['fd']:.3f} "
        f"kid={metrics['kid']:.4g} tutorial_kid={reference_metrics['kid']:.4g} "
        f"is={metrics['inception_score']:.3f} "
        f"tutorial_is={reference_metrics['inception_score']:.3f} "
        f"steps={rc.train_steps} batch_size={batch_size} image_size=28"
    )


if __name__ == "__main__":
    app.run(main)
