"""Images per second of any family's training step, through the path `train_main.py` runs.

    python bench/throughput.py --model=dcgan --image_size=64 --channels=1 --batch_size=64 --steps=12
    python bench/throughput.py --model=cyclegan --image_size=32 --channels=3 --nodataset_defaults
    python bench/throughput.py --model=stackgan --image_size=32 --batch_size=64   # both phases

builds the family's model from its task (`default_config` for `--dataset`, the overrides, the
task's `prepare_run`, `training_dataset`, `adapt_config` and warm start, as `zoo.train.run`
does) and feeds it one fixed batch of that dataset's training stream, repeated (as
`../shared/ref/torch_dcgan.py` and `torch_cyclegan.py` do): labels for `cgan`, token ids for the
text families (their text encoder pretrained for a few steps only: its quality does not change
the step), two domains for `cyclegan`, and each phase in turn for a family trained in phases
(phase 2 warm-started from phase 1's checkpoint). It times `--steps` calls of `fit`'s train
function after two warm-up steps. For `dcgan` at 64 px the config is the pytorch/examples
DCGAN-64 (G 512-256-128-64 from z of 100, D its mirror image, batch norm, Adam).

The first line names the CPU (model, vector extensions, oneDNN setting); one line per phase;
the last line is `images_per_sec=X` (of the last phase).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "dcgan", "Family to time.")
flags.DEFINE_string("dataset", "fashion_mnist", "Dataset whose first batch is fed.")
flags.DEFINE_integer("image_size", 64, "Image side (StackGAN: Stage-II's).")
flags.DEFINE_integer("channels", 1, "Image channels.")
flags.DEFINE_integer("batch_size", 0, "Batch size (0 = the family's default: 64, cyclegan 1).")
flags.DEFINE_integer("steps", 12, "Timed steps (after 2 warm-up steps).")
flags.DEFINE_integer("repeats", 1, "Timed repetitions; the best is reported.")
flags.DEFINE_boolean("jit_compile", False, "Compile with XLA.")
flags.DEFINE_enum(
    "mixed_precision",
    "float32",
    ["float32", "mixed_float16", "mixed_bfloat16"],
    "Precision policy.",
)
flags.DEFINE_string("domain_a", "sandal", "cyclegan: class of domain A.")
flags.DEFINE_string("domain_b", "sneaker", "cyclegan: class of domain B.")
flags.DEFINE_boolean(
    "dataset_defaults",
    True,
    "Start from the family's defaults for --dataset (cyclegan on Fashion-MNIST: 32 px gray, "
    "32 filters, batch 4); --nodataset_defaults: the family's own config and batch whatever "
    "the data (CycleGAN's paper config, batch 1, as ../shared/ref/torch_cyclegan.py).",
)
flags.DEFINE_multi_string("config", [], "Family config override key=value.")

# Text encoder pretraining steps for the text families: enough to build it, not to train it.
TEXT_ENCODER_STEPS = 20


def cpu_description() -> str:
    """The CPU's model name and the vector extensions TensorFlow's kernels care about."""
    model, extensions = "unknown CPU", []
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        info = ""
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown CPU":
            model = value.strip()
        if key.strip() == "flags":
            present = set(value.split())
            wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
            extensions = [name for name in wanted if name in present]
            break
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")
    return f"cpu={model!r} extensions={','.join(extensions) or 'none'} onednn={onednn}"


def starting_point(task: Any, dataset: str, dataset_defaults: bool = True) -> tuple[Any, int]:
    """The config and batch size a timing starts from: the family's for `dataset`, or with
    `dataset_defaults=False` its config class's own and its batch size for no dataset in
    particular (CycleGAN: the paper's 64 filters, identity loss, jitter, batch 1)."""
    if dataset_defaults:
        return task.default_config(dataset), task.default_batch_size(dataset)
    return task.config_class(), task.default_batch_size("")


def measure(
    model_name: str,
    *,
    dataset: str = "fashion_mnist",
    image_size: int = 64,
    channels: int = 1,
    batch_size: int = 0,
    steps: int = 12,
    repeats: int = 1,
    jit_compile: bool = False,
    domain_a: str = "sandal",
    domain_b: str = "sneaker",
    overrides: tuple[str, ...] = (),
    dataset_defaults: bool = True,
) -> list[dict]:
    """Times `steps` training steps of each phase of a family; one dict per phase.

    `batch_size=0` takes the family's default (`Task.default_batch_size`). The config starts
    from `Task.default_config(dataset)`, or with `dataset_defaults=False` from the family's
    own config class (and a batch size chosen for no dataset in particular). Each dict has
    `phase`, `batch_size`, `images_per_sec` (best of `repeats`) and `steps_per_sec`.
    """
    import keras
    import tensorflow as tf

    from zoo import registry, train
    from zoo.core.checkpoint import RunCheckpoint
    from zoo.core.config import apply_overrides
    from zoo.run import RunConfig, checkpoint_dir

    task = registry.get(model_name)
    start, default_batch = starting_point(task, dataset, dataset_defaults)
    batch_size = batch_size or default_batch
    strategy = tf.distribute.get_strategy()
    work = tempfile.mkdtemp(prefix="zoo-throughput-")
    rc = RunConfig(
        model=model_name,
        dataset=dataset,
        model_dir=work,
        batch_size=batch_size,
        jit_compile=jit_compile,
        train_steps=steps + 2,
        domain_a=domain_a,
        domain_b=domain_b,
    )
    sizes = [f"image_size={image_size}", f"channels={channels}"]
    if hasattr(task.config_class(), "text_encoder_steps"):
        sizes.append(f"text_encoder_steps={TEXT_ENCODER_STEPS}")
    base = apply_overrides(start, [*sizes, *overrides])

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            float(logs["g_loss"])  # wait for the step to finish
            self.times.append(time.perf_counter())

    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    results = []
    for phase in task.phases or (0,):
        keras.utils.set_random_seed(0)
        config = task.prepare_run(rc, task.with_phase(base, phase))
        d_steps = task.discriminator_steps(config)
        stream, info = task.training_dataset(
            rc, config, batch_size=batch_size * d_steps, start_step=0
        )
        config = task.adapt_config(config, info)
        model = train.build_model(task, config, rc, strategy)
        task.warm_start(model, rc)
        batch = next(iter(stream))
        data = tf.data.Dataset.from_tensors(batch).repeat()
        best = 0.0
        for _ in range(repeats):
            timer = Timer()
            model.fit(data, epochs=1, steps_per_epoch=steps + 2, callbacks=[timer], verbose=0)
            elapsed = timer.times[-1] - timer.times[1]
            best = max(best, steps * batch_size / elapsed)
        results.append(
            dict(
                phase=phase or 1,
                batch_size=batch_size,
                images_per_sec=best,
                steps_per_sec=best / batch_size,
            )
        )
        if task.phases:  # the next phase starts from this one's checkpoint
            RunCheckpoint(checkpoint_dir(work, phase), model.checkpoint_items(), chief=True).save()
    return results


def main(argv: list[str]) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    from zoo import cli

    cli.import_tensorflow_quietly()
    import tensorflow as tf

    from zoo.core import distribute

    distribute.set_precision(FLAGS.mixed_precision)
    print(cpu_description(), flush=True)
    results = measure(
        FLAGS.model,
        dataset=FLAGS.dataset,
        image_size=FLAGS.image_size,
        channels=FLAGS.channels,
        batch_size=FLAGS.batch_size,
        steps=FLAGS.steps,
        repeats=FLAGS.repeats,
        jit_compile=FLAGS.jit_compile,
        domain_a=FLAGS.domain_a,
        domain_b=FLAGS.domain_b,
        overrides=tuple(FLAGS.config),
        dataset_defaults=FLAGS.dataset_defaults,
    )
    for result in results:
        print(
            f"model={FLAGS.model} phase={result['phase']} image_size={FLAGS.image_size} "
            f"channels={FLAGS.channels} batch_size={result['batch_size']} "
            f"threads={tf.config.threading.get_intra_op_parallelism_threads()} "
            f"jit_compile={FLAGS.jit_compile} precision={FLAGS.mixed_precision} "
            f"images_per_sec={result['images_per_sec']:.2f} "
            f"steps_per_sec={result['steps_per_sec']:.3f}",
            flush=True,
        )
    print(f"images_per_sec={results[-1]['images_per_sec']:.1f}")


if __name__ == "__main__":
    app.run(main)
