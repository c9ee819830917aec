"""How well conditional families follow their condition, scored by the zoo's classifier.

    python bench/conditional_quality.py --model=cgan                  # 2000 steps of 64, 28 px
    python bench/conditional_quality.py --model=cgan --config=conditioning=projection
    python bench/conditional_quality.py --model=gan_int_cls           # the paper's four variants

- `cgan`: class-conditional accuracy of generated samples (the zoo classifier's prediction is
  the label asked for) beside the classifier's accuracy on real test images, and FD/KID.
- `gan_int_cls`: GAN, GAN-CLS, GAN-INT and GAN-INT-CLS trained for the same budget on
  Fashion-MNIST captions with one pretrained text encoder; generated from captions naming each
  class with and without attribute words: accuracy on the intended class, and how often the
  generated image's measured brightness and size agree with the caption's words (each counted
  over captions that state that attribute; chance is about 0.5); `class_only` is the class
  accuracy on the captions with no attribute word ("a sandal", one in six). The default
  GAN-INT-CLS has the class and attribute heads (`aux_weight`, `attribute_weight`); compare
  without with `--config=attribute_weight=0` (its own run directory).

Runs train with `zoo.train.run` into `--work_dir`, one directory per budget, `--config` and
`--seed` (variants never share, nor resume, each other's runs); the last line
printed holds the headline figures as `key=value`.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "cgan", ["cgan", "gan_int_cls"], "Family to train.")
flags.DEFINE_integer("train_steps", 2000, "Training steps per run (the CPU budget).")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("image_size", 28, "Image side (28 = the classifier's own).")
flags.DEFINE_integer("eval_samples", 5000, "Generated samples scored per run.")
flags.DEFINE_integer("seed", 0, "Seed of the runs and of the scored samples.")
flags.DEFINE_string("work_dir", "/tmp/ganzoo_conditional", "Where the run directories go.")
flags.DEFINE_string("variants", "gan,gan_cls,gan_int,gan_int_cls", "gan_int_cls variants.")
flags.DEFINE_integer("text_encoder_steps", 1000, "gan_int_cls: text encoder pretraining steps.")
flags.DEFINE_multi_string("config", [], "Family config override key=value.")

VARIANTS = {
    "gan": ("matching_aware=false", "interpolation=false"),
    "gan_cls": ("matching_aware=true", "interpolation=false"),
    "gan_int": ("matching_aware=false", "interpolation=true"),
    "gan_int_cls": ("matching_aware=true", "interpolation=true"),
}


def _tag(name: str, budget: str) -> str:
    """Run directory name: the variant, the budget, then each --config and a non-zero seed."""
    parts = [name, budget, *(o.replace("=", "-").replace(os.sep, "-") for o in FLAGS.config)]
    if FLAGS.seed:
        parts.append(f"seed{FLAGS.seed}")
    return "_".join(parts)


def _run(model: str, tag: str, overrides: list[str]):
    from zoo import run as zoo_run
    from zoo import train

    rc = zoo_run.RunConfig(
        model=model,
        dataset="fashion_mnist",
        model_dir=os.path.join(FLAGS.work_dir, tag),
        train_steps=FLAGS.train_steps,
        batch_size=FLAGS.batch_size,
        seed=FLAGS.seed,
        checkpoint_every=FLAGS.train_steps,
        sample_every=FLAGS.train_steps,
        log_every=max(1, FLAGS.train_steps // 10),
    )
    start = time.perf_counter()
    result = train.run(rc, overrides)
    if result.status != "completed":
        raise SystemExit(f"{rc.model_dir}: training {result.status}: {result.message}")
    return rc, zoo_run.load_trained(rc.model_dir).model, time.perf_counter() - start


def per_class_recall(model, num: int, seed: int) -> list[float]:
    """Each class's recall (Kynkäänniemi et al. 2019, k = 3, the zoo classifier's features):
    the fraction of that class's real test images inside the manifold of the samples drawn
    for it. A class whose samples have collapsed to a few images covers little of its own
    data, however well they are classified."""
    import numpy as np

    from zoo.data import load_arrays
    from zoo.eval import metrics
    from zoo.eval.classifier import FeatureExtractor, to_network_input
    from zoo.eval.evaluate import generate_samples

    samples, inputs = generate_samples(model, num, seed)
    images, labels, _ = load_arrays("fashion_mnist", split="test")
    extractor = FeatureExtractor.for_dataset("fashion_mnist")
    side, channels = samples.shape[1], samples.shape[-1]
    real = to_network_input(images.astype(np.float32) / 127.5 - 1.0, side, channels).numpy()
    real_features = extractor.features(real)
    fake_features = extractor.features(samples)
    recalls = []
    for k in range(model.config.num_classes):
        figures = metrics.precision_recall_knn(
            real_features[labels == k][: num // model.config.num_classes],
            fake_features[inputs["label"] == k],
        )
        recalls.append(float(figures["recall"]))
    return recalls


def attribute_agreement(model, num: int, seed: int) -> dict[str, float]:
    """Class accuracy and attribute agreement of samples from captions naming each class."""
    import numpy as np

    from zoo.core.images import to_uint8
    from zoo.data.captions import caption_agreement
    from zoo.eval.classifier import FeatureExtractor

    inputs = model.sample_inputs(num, seed)
    images = np.concatenate(
        [
            np.asarray(model.generate({k: v[i : i + 500] for k, v in inputs.items()}))
            for i in range(0, num, 500)
        ]
    )
    classifier = FeatureExtractor.for_dataset("fashion_mnist")
    predicted = np.argmax(classifier.probabilities(images), axis=1)
    correct = predicted == inputs["label"]
    # Against the intended class's medians, as the training captions were made.
    return {
        "class_accuracy": float(np.mean(correct)),
        **caption_agreement(
            to_uint8(images), inputs["label"], inputs["text"], model.config.class_names, correct
        ),
    }


def main(argv: list[str]) -> None:
    del argv
    from zoo import cli

    cli.import_tensorflow_quietly()
    from zoo import registry
    from zoo.core.images import save_png
    from zoo.eval.classifier import load_classifier
    from zoo.eval.evaluate import Evaluator

    _, info = load_classifier("fashion_mnist")
    real_accuracy = float(info["test_accuracy"])
    base = [f"image_size={FLAGS.image_size}", *FLAGS.config]
    budget = f"{FLAGS.train_steps}x{FLAGS.batch_size}"
    if FLAGS.model == "cgan":
        rc, model, seconds = _run("cgan", _tag("cgan", budget), base)
        load = os.getloadavg()[0]
        metrics = Evaluator(rc)(model, FLAGS.eval_samples, FLAGS.seed)
        recalls = per_class_recall(model, FLAGS.eval_samples, FLAGS.seed)
        picture = os.path.join(rc.model_dir, "quality_samples.png")
        save_png(registry.get("cgan").sample_picture(model, 100, rc), picture)
        print(
            f"cgan class_accuracy={metrics['class_accuracy']:.4f} "
            f"classifier_test_accuracy={real_accuracy:.4f} fd={metrics['fd']:.4g} "
            f"kid={metrics['kid']:.4g} precision={metrics['precision']:.3f} "
            f"recall={metrics['recall']:.3f} "
            f"class_recall={','.join(f'{r:.2f}' for r in recalls)} "
            f"train_s={seconds:.0f} load={load:.1f} samples={picture}",
            flush=True,
        )
        print(
            f"class_accuracy={metrics['class_accuracy']:.4f} real_accuracy={real_accuracy:.4f} "
            f"fd={metrics['fd']:.4g} precision={metrics['precision']:.3f} "
            f"recall={metrics['recall']:.3f} min_class_recall={min(recalls):.3f} "
            f"steps={FLAGS.train_steps} batch_size={FLAGS.batch_size}"
        )
        return

    encoder_dir = os.path.join(FLAGS.work_dir, f"text_encoder_{FLAGS.text_encoder_steps}")
    if not os.path.exists(os.path.join(encoder_dir, "text_encoder.json")):
        from zoo.tools.text_tools import pretrain_encoder

        stats = pretrain_encoder(
            "fashion_mnist", encoder_dir, steps=FLAGS.text_encoder_steps, seed=FLAGS.seed
        )
        print(
            f"text encoder: retrieval {stats['retrieval_accuracy']:.3f} "
            f"(chance {stats['retrieval_chance']:.3f})",
            flush=True,
        )
    headline = []
    for variant in FLAGS.variants.split(","):
        overrides = [*base, *VARIANTS[variant], f"text_encoder_dir={encoder_dir}"]
        rc, model, seconds = _run("gan_int_cls", _tag(variant, budget), overrides)
        figures = attribute_agreement(model, FLAGS.eval_samples, FLAGS.seed)
        picture = os.path.join(rc.model_dir, "quality_samples.png")
        save_png(registry.get("gan_int_cls").sample_picture(model, 60, rc), picture)
        print(
            f"{variant}: "
            + " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
            )
            + f" train_s={seconds:.0f} samples={picture}",
            flush=True,
        )
        headline.append(
            f"{variant}_class={figures['class_accuracy']:.3f} "
            f"{variant}_class_only={figures['class_only_accuracy']:.3f} "
            f"{variant}_brightness={figures['brightness_agreement']:.3f} "
            f"{variant}_size={figures['size_agreement']:.3f}"
        )
    print(" ".join(headline) + f" real_accuracy={real_accuracy:.4f} steps={FLAGS.train_steps}")


if __name__ == "__main__":
    app.run(main)
