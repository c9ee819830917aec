"""Sample quality of a family trained for a fixed budget, through the path `train_main.py` runs.

    python bench/quality.py --model=dcgan                        # 3000 steps of 64, 28 px
    python bench/quality.py --model=gan --dataset=ring8          # 8000 steps of 256; also grid25
    python bench/quality.py --model=cyclegan                     # sandal <-> sneaker, 32 px

Each mode trains with `zoo.train.run` into `--work_dir/<model>_<dataset>...`, restores the run
with `zoo.run.load_trained` and evaluates it with `zoo.eval.evaluate` (the zoo classifier's
features on Fashion-MNIST; mode coverage on the toys; the CycleGAN task's `evaluate` for
translation), then writes a picture of samples beside the run.

- `dcgan` (Fashion-MNIST at 28 px, the classifier's own size) also runs the reference,
  `../shared/ref/recipe_dcgan.py` (a 40-line plain Keras DCGAN with the paper's recipe), as a
  subprocess for the same steps and batch into `--work_dir/recipe_dcgan_<steps>x<batch>/`
  (reused when its samples.npy is there, unless `--noreuse_reference`), and scores its 10 000
  samples with the same evaluator, sample count and seed (the reference draws its own z, seed
  0): FD, KID, IS, precision and recall of both, the ratio FD_zoo / FD_ref, and the smallest
  and largest fraction of the zoo's samples the zoo classifier puts in one class. `--nozoo`
  scores the reference alone (the yardstick without a zoo run); the last line names the zoo's
  layout (`architecture`, see `zoo.models.dcgan`). A run with a generator average
  (`ema_decay` > 0) is scored with it (as samples and export use it) and also with its last
  step's weights (`raw_fd`).
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
flags.DEFINE_boolean("reference", True, "dcgan: also train and evaluate the reference DCGAN.")
flags.DEFINE_string(
    "reference_script",
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "..",
        "shared",
        "ref",
        "recipe_dcgan.py",
    ),
    "dcgan: the reference, run as `python SCRIPT OUT_DIR STEPS BATCH` (writes samples.npy).",
)
flags.DEFINE_boolean(
    "zoo", True, "dcgan: train and score the zoo's DCGAN (--nozoo: the reference alone)."
)
flags.DEFINE_boolean("reuse_reference", True, "dcgan: reuse the reference's samples.npy if there.")
flags.DEFINE_multi_string("config", [], "Family config override key=value.")

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


# -- the reference: ../shared/ref/recipe_dcgan.py, a plain Keras DCGAN with the paper's recipe --
class PrecomputedSamples:
    """Samples already made (the reference's samples.npy) behind the sampling interface the
    zoo's `Evaluator` reads: `generate` hands out the next rows in order."""

    def __init__(self, samples) -> None:
        self.samples = samples
        self.position = 0

    def sample_inputs(self, num: int, seed: int = 0) -> dict:
        import numpy as np

        del seed  # the reference drew its z itself (seed 0)
        if num > len(self.samples):
            raise SystemExit(f"the reference wrote {len(self.samples)} samples, {num} asked")
        self.position = 0
        return {"z": np.zeros((num, 1), np.float32)}

    def generate(self, inputs: dict):
        num = len(inputs["z"])
        rows = self.samples[self.position : self.position + num]
        self.position += num
        return rows


class RecordingSampler:
    """A model's sampling interface that keeps what it generated (for the class histogram)."""

    def __init__(self, model) -> None:
        self.model = model
        self.parts: list = []

    def sample_inputs(self, num: int, seed: int = 0) -> dict:
        self.parts = []
        return self.model.sample_inputs(num, seed=seed)

    def generate(self, inputs: dict):
        import numpy as np

        images = np.asarray(self.model.generate(inputs), np.float32)
        self.parts.append(images)
        return images

    def samples(self):
        import numpy as np

        return np.concatenate(self.parts)


def train_reference(steps: int, batch_size: int) -> tuple[object, float, str]:
    """Runs `FLAGS.reference_script` for `steps` x `batch_size` into the work dir (or reuses
    its samples.npy from an earlier run of the same budget) and loads its 10 000 samples."""
    import subprocess

    import numpy as np

    out_dir = os.path.join(FLAGS.work_dir, f"recipe_dcgan_{steps}x{batch_size}")
    path = os.path.join(out_dir, "samples.npy")
    start = time.perf_counter()
    how = "reused"
    if not (FLAGS.reuse_reference and os.path.exists(path)):
        how = "trained"
        command = [sys.executable, FLAGS.reference_script, out_dir, str(steps), str(batch_size)]
        print("reference:", " ".join(command), flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SystemExit(f"{FLAGS.reference_script} failed ({done.returncode}): {tail[0]}")
    samples = np.load(path).astype(np.float32)
    return PrecomputedSamples(samples), time.perf_counter() - start, how


def class_fractions(evaluator, samples) -> list[float]:
    """Fraction of samples the zoo classifier puts in each class (argmax)."""
    import numpy as np

    evaluator.load_networks()
    probabilities = evaluator.classifier.probabilities(samples)
    counts = np.bincount(np.argmax(probabilities, axis=1), minlength=probabilities.shape[1])
    return [float(c) / len(samples) for c in counts]


def score_reference(evaluator, steps: int, batch_size: int) -> dict:
    """Trains (or reuses) the reference, scores its samples and prints its line."""
    from zoo.core.images import image_grid, save_png

    reference, train_seconds, how = train_reference(steps, batch_size)
    start = time.perf_counter()
    metrics = evaluator(reference, FLAGS.eval_samples, FLAGS.seed)
    eval_seconds = time.perf_counter() - start
    picture = os.path.join(FLAGS.work_dir, f"recipe_dcgan_{steps}x{batch_size}.png")
    save_png(image_grid(reference.samples[:64]), picture)
    fractions = class_fractions(evaluator, reference.samples[: FLAGS.eval_samples])
    print(
        f"reference dcgan ({how}): {_figures(metrics)} train_s={train_seconds:.0f} "
        f"eval_s={eval_seconds:.0f} class_min={min(fractions):.3f} "
        f"class_max={max(fractions):.3f} samples={picture}",
        flush=True,
    )
    return metrics


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
    from zoo.core.images import save_png
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
        + ([f"seed{FLAGS.seed}"] if FLAGS.seed else [])  # another seed is another run
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

    if model_name == "dcgan" and not toy and not FLAGS.zoo:
        score_reference(Evaluator(rc), rc.train_steps, batch_size)
        return
    trained, train_seconds = _train(rc, overrides)
    task, model = trained.task, trained.model
    evaluator = Evaluator(rc)
    dcgan_reference = model_name == "dcgan" and not toy
    sampler = RecordingSampler(model) if dcgan_reference else model
    start = time.perf_counter()
    metrics = task.evaluate(sampler, evaluator, FLAGS.eval_samples, FLAGS.seed)
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
    if not dcgan_reference:
        print(f"{_figures(metrics, HEADLINE.get(model_name))} steps={rc.train_steps}")
        return

    fractions = class_fractions(evaluator, sampler.samples())
    print("zoo class fractions: " + " ".join(f"{f:.3f}" for f in fractions), flush=True)
    layout = "recipe" if getattr(model.config, "recipe_layout", False) else "paper"
    classes = f"class_min={min(fractions):.3f} class_max={max(fractions):.3f} layout={layout}"
    if trained.weights == "ema":
        # The scores above are the averaged G's (what samples and export use); the last
        # step's weights, scored alike, say what the average is worth.
        raw = zoo_run.load_trained(rc.model_dir, weights="raw").model
        raw_metrics = task.evaluate(raw, evaluator, FLAGS.eval_samples, FLAGS.seed)
        print(f"zoo {model_name} raw weights: {_figures(raw_metrics)}", flush=True)
        classes += f" raw_fd={raw_metrics['fd']:.4g} ema_decay={model.ema.decay:g}"
    if not FLAGS.reference:
        print(
            f"{_figures(metrics, HEADLINE['dcgan'])} {classes} "
            f"steps={rc.train_steps} batch_size={batch_size}"
        )
        return
    reference_metrics = score_reference(evaluator, rc.train_steps, batch_size)
    print(
        f"fd={metrics['fd']:.4g} ref_fd={reference_metrics['fd']:.4g} "
        f"fd_ratio={metrics['fd'] / reference_metrics['fd']:.3f} "
        f"kid={metrics['kid']:.4g} ref_kid={reference_metrics['kid']:.4g} "
        f"is={metrics['inception_score']:.3f} "
        f"ref_is={reference_metrics['inception_score']:.3f} {classes} "
        f"steps={rc.train_steps} batch_size={batch_size} image_size=28"
    )


if __name__ == "__main__":
    app.run(main)
