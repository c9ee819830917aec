"""What Stage-II adds: StackGAN on Fashion-MNIST captions, Stage-I then Stage-II, scored.

    python bench/stackgan_quality.py                                   # 16 -> 32 px, defaults
    python bench/stackgan_quality.py --stage1_steps=3000 --stage2_steps=3000
    python bench/stackgan_quality.py --model_dir=zoo/presets/stackgan_fashion_mnist   # score only

Trains phase 1 (`--stage=1`) and phase 2 (`--stage=2`) in one run directory with
`zoo.train.run`, then generates `--eval_samples` images from captions naming each class (with
attribute words) and prints, for Stage-I and for Stage-II images of the same captions and z:

- the zoo classifier's accuracy on the intended class (`zoo.eval.classifier`);
- the Fréchet distance in that classifier's features against real test images, everything at
  the high resolution (real images and Stage-I images resized to `image_size`, so both stages
  are scored at the same size);
- within-class recall (Kynkäänniemi et al. 2019, k = 3, in the same features): for each class,
  the fraction of its real test images inside the manifold of the samples drawn from captions
  naming it, averaged over the classes (AC-GAN's known cost is diversity within a class, which
  class accuracy cannot see).

The last line holds the headline figures as `key=value`.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("stage1_steps", 2000, "Phase 1 (Stage-I) generator steps.")
flags.DEFINE_integer("stage2_steps", 2000, "Phase 2 (Stage-II) generator steps.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("eval_samples", 5000, "Generated samples scored per stage.")
flags.DEFINE_integer("seed", 0, "Seed of the runs and of the scored samples.")
flags.DEFINE_string("work_dir", "/tmp/ganzoo_stackgan", "Where the run directory goes.")
flags.DEFINE_multi_string("config", [], "StackGAN config override key=value.")
flags.DEFINE_string(
    "model_dir", None, "Score this trained run (after phase 2) or built preset; no training."
)


def _train(model_dir: str, stage: int, steps: int) -> float:
    from zoo import run as zoo_run
    from zoo import train

    rc = zoo_run.RunConfig(
        model="stackgan",
        dataset="fashion_mnist",
        model_dir=model_dir,
        train_steps=steps,
        batch_size=FLAGS.batch_size,
        seed=FLAGS.seed,
        checkpoint_every=max(1, steps // 4),
        sample_every=max(1, steps // 4),
        log_every=max(1, steps // 10),
        stage=stage,
    )
    start = time.perf_counter()
    result = train.run(rc, FLAGS.config)
    if result.status != "completed":
        raise SystemExit(f"{model_dir} phase {stage}: training {result.status}: {result.message}")
    return time.perf_counter() - start


def main(argv: list[str]) -> None:
    del argv
    from zoo import cli

    cli.import_tensorflow_quietly()
    import numpy as np
    import tensorflow as tf

    from zoo import run as zoo_run
    from zoo.core.images import save_png
    from zoo.data.dataset import load_arrays
    from zoo.eval.classifier import FeatureExtractor
    from zoo.eval.metrics import frechet_distance_from_activations, precision_recall_knn

    # One directory per budget and set of overrides (a run directory refuses another config).
    parts = [
        f"stackgan_{FLAGS.stage1_steps}_{FLAGS.stage2_steps}x{FLAGS.batch_size}",
        *(o.replace("=", "-").replace(os.sep, "-") for o in FLAGS.config),
    ]
    if FLAGS.model_dir:
        model_dir, seconds = FLAGS.model_dir, {1: float("nan"), 2: float("nan")}
    else:
        model_dir = os.path.join(FLAGS.work_dir, "_".join(parts))
        seconds = {1: _train(model_dir, 1, FLAGS.stage1_steps)}
        seconds[2] = _train(model_dir, 2, FLAGS.stage2_steps)
    trained = zoo_run.load_trained(model_dir)
    model = trained.model
    size = model.config.image_size

    inputs = model.sample_inputs(FLAGS.eval_samples, FLAGS.seed)
    stages: dict[str, list[np.ndarray]] = {"images": [], "stage1_images": []}
    for i in range(0, FLAGS.eval_samples, 500):
        out = model.generate_stages({k: v[i : i + 500] for k, v in inputs.items()})
        for key in stages:
            stages[key].append(np.asarray(out[key]))
    generated = {
        "stage2": np.concatenate(stages["images"]),
        "stage1": np.asarray(
            tf.image.resize(np.concatenate(stages["stage1_images"]), (size, size), "bilinear")
        ),
    }
    real, real_labels, _ = load_arrays("fashion_mnist", split="test")
    real = np.asarray(
        tf.image.resize(real.astype("float32") / 127.5 - 1.0, (size, size), "bilinear")
    )
    classifier = FeatureExtractor.for_dataset("fashion_mnist")
    real_features = classifier.features(real)
    figures = {}
    for name, images in generated.items():
        features, probabilities = classifier.features_and_probabilities(images)
        figures[f"{name}_class_accuracy"] = float(
            np.mean(np.argmax(probabilities, axis=1) == inputs["label"])
        )
        figures[f"{name}_fd"] = frechet_distance_from_activations(features, real_features)
        classes = np.unique(inputs["label"])
        figures[f"{name}_class_recall"] = float(
            np.mean(
                [
                    precision_recall_knn(
                        real_features[real_labels == k], features[inputs["label"] == k]
                    )["recall"]
                    for k in classes
                ]
            )
        )
    picture_dir = FLAGS.work_dir if FLAGS.model_dir else model_dir  # a preset's files stay
    os.makedirs(picture_dir, exist_ok=True)
    picture = os.path.join(picture_dir, "quality_samples.png")
    save_png(trained.task.sample_picture(model, 60, trained.run_config), picture)
    for stage in ("stage1", "stage2"):
        print(
            f"{stage}: class_accuracy={figures[f'{stage}_class_accuracy']:.4f} "
            f"fd@{size}px={figures[f'{stage}_fd']:.4g} "
            f"class_recall={figures[f'{stage}_class_recall']:.4f} "
            f"train_s={seconds[1 if stage == 'stage1' else 2]:.0f}",
            flush=True,
        )
    print(f"samples={picture}")
    print(
        " ".join(f"{k}={v:.4g}" for k, v in figures.items())
        + f" stage1_steps={FLAGS.stage1_steps} stage2_steps={FLAGS.stage2_steps}"
        + f" batch_size={FLAGS.batch_size} image_size={size}"
    )


if __name__ == "__main__":
    app.run(main)
