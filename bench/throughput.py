"""Images per second of one family's training step, through the same path `train_main.py` runs.

    python bench/throughput.py --model=dcgan --image_size=64 --channels=1 --batch_size=64 --steps=12

builds the pytorch/examples DCGAN-64 configuration (G 512-256-128-64 from z of 100, D its
mirror image, batch norm, Adam) with `zoo.train.build_model`, feeds it one fixed batch of real
images (as `../shared/ref/torch_dcgan.py` does) and times `steps` calls of `fit`'s train
function after two warm-up steps. The last line printed is `images_per_sec=X`.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "dcgan", "Family to time.")
flags.DEFINE_integer("image_size", 64, "Image side.")
flags.DEFINE_integer("channels", 1, "Image channels.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("steps", 12, "Timed steps (after 2 warm-up steps).")
flags.DEFINE_integer("repeats", 1, "Timed repetitions; the best is reported.")
flags.DEFINE_boolean("jit_compile", False, "Compile with XLA.")
flags.DEFINE_enum(
    "mixed_precision",
    "float32",
    ["float32", "mixed_float16", "mixed_bfloat16"],
    "Precision policy.",
)
flags.DEFINE_multi_string("config", [], "Family config override key=value.")


def main(argv: list[str]) -> None:
    del argv
    from zoo import cli

    cli.import_tensorflow_quietly()
    import keras
    import tensorflow as tf

    from zoo import registry, train
    from zoo import run as zoo_run
    from zoo.core import distribute
    from zoo.core.config import apply_overrides

    family = registry.get(FLAGS.model)
    config = apply_overrides(
        family.config_class(),
        [f"image_size={FLAGS.image_size}", f"channels={FLAGS.channels}", *FLAGS.config],
    )
    distribute.set_precision(FLAGS.mixed_precision)
    keras.utils.set_random_seed(0)
    rc = zoo_run.RunConfig(
        model=FLAGS.model,
        model_dir="unused",
        jit_compile=FLAGS.jit_compile,
        train_steps=FLAGS.steps + 2,
    )
    model = train.build_model(family, config, rc, tf.distribute.get_strategy())
    shape = (FLAGS.batch_size * model.d_steps, *model.data_shape)
    real = tf.random.uniform(shape, -1.0, 1.0, seed=0)
    dataset = tf.data.Dataset.from_tensors(real).repeat()

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            float(logs["g_loss"])  # wait for the step to finish
            self.times.append(time.perf_counter())

    best = 0.0
    for _ in range(FLAGS.repeats):
        timer = Timer()
        model.fit(dataset, epochs=1, steps_per_epoch=FLAGS.steps + 2, callbacks=[timer], verbose=0)
        elapsed = timer.times[-1] - timer.times[1]
        best = max(best, FLAGS.steps * FLAGS.batch_size / elapsed)
    print(
        f"model={FLAGS.model} image_size={FLAGS.image_size} batch_size={FLAGS.batch_size} "
        f"threads={tf.config.threading.get_intra_op_parallelism_threads()} "
        f"jit_compile={FLAGS.jit_compile} precision={FLAGS.mixed_precision}"
    )
    print(f"images_per_sec={best:.1f}")


if __name__ == "__main__":
    app.run(main)
