"""The presets' recipes: what `python -m zoo.presets build NAME` trains, exactly.

A recipe is the family, the dataset, overrides of the family's config for that dataset (the
full config a build resolved is stored with its weights, `config.json`), the run options
(`zoo.run.RunConfig` fields: steps, batch, seed, domains, ...), and, for families trained in
phases, each phase's options. Recipes not built yet are listed as such by `python -m zoo.presets
list`; their recipes are the family defaults until tuned ones replace them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from zoo.errors import UsageError

# Built presets keep floats in this dtype unless the recipe says otherwise (exact to 1e-3 of a
# weight's size; the golden batch is computed from the stored weights, so it holds exactly).
DEFAULT_WEIGHTS_DTYPE = "float16"


@dataclasses.dataclass(frozen=True)
class Preset:
    """One named recipe.

    Attributes:
      name: the preset's name (`preset:NAME`), also its directory.
      family: the `--model`.
      dataset: the `--dataset`.
      description: one line for `list` and the card.
      config: `key=value` overrides of the family's config for the dataset.
      run: more `zoo.run.RunConfig` fields (train_steps, batch_size, seed, domain_a, ...).
      phases: for families trained in phases, the options of each phase in order (e.g.
        `({"stage": 1}, {"stage": 2, "train_steps": 2000})`), each on top of `run`.
      eval_samples: samples its card's metrics are computed on.
      weights_dtype: storage of the floating-point weights: float16 or float32.
      headline: the card's metrics `list` shows.
    """

    name: str
    family: str
    dataset: str
    description: str
    config: tuple[str, ...] = ()
    run: dict[str, Any] = dataclasses.field(default_factory=dict)
    phases: tuple[dict[str, Any], ...] = ()
    eval_samples: int = 10000
    weights_dtype: str = DEFAULT_WEIGHTS_DTYPE
    headline: tuple[str, ...] = ()

    def run_options(self, phase: dict[str, Any] | None = None) -> dict[str, Any]:
        """The RunConfig fields of the recipe (of one phase), without `model_dir`."""
        return {"model": self.family, "dataset": self.dataset, **self.run, **(phase or {})}

    def command(self) -> str:
        """The `train_main.py` command(s) that train the same run."""
        lines = []
        for phase in self.phases or ({},):
            flags = [f"--{k}={_flag(v)}" for k, v in self.run_options(phase).items()]
            flags += [f"--config={o}" for o in self.config]
            lines.append(f"python train_main.py {' '.join(flags)} --model_dir=RUN")
        return " && ".join(lines)


def _flag(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


# The toys' budget (bench/quality.py's) and what their cards headline.
TOY_RUN = {"train_steps": 8000, "batch_size": 256, "seed": 0, "deterministic": True}
TOY_HEADLINE = ("modes_covered", "high_quality_fraction")
IMAGE_HEADLINE = ("fd", "kid", "precision", "recall")
CLASS_HEADLINE = ("class_accuracy", "fd")
TEXT_HEADLINE = (
    "class_accuracy",
    "class_only_accuracy",
    "brightness_agreement",
    "size_agreement",
    "fd",
)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "gan_ring8",
            "gan",
            "ring8",
            "vanilla GAN (MLPs) on 8 Gaussians in a ring, the toy defaults",
            run=TOY_RUN,
            eval_samples=10000,
            headline=TOY_HEADLINE,
        ),
        Preset(
            "gan_grid25",
            "gan",
            "grid25",
            "vanilla GAN (MLPs) on a 5x5 grid of Gaussians, the toy defaults",
            run=TOY_RUN,
            headline=TOY_HEADLINE,
        ),
        Preset(
            "dcgan_fashion_mnist",
            "dcgan",
            "fashion_mnist",
            "DCGAN on Fashion-MNIST, 28 px, the family's defaults there (the reference's "
            "layout, Adam 1.6e-3, lazy R1, G's average)",
            config=("image_size=28",),
            run={"train_steps": 3000, "batch_size": 64, "seed": 0},
            headline=IMAGE_HEADLINE,
        ),
        Preset(
            "cgan_fashion_mnist",
            "cgan",
            "fashion_mnist",
            "class-conditional DCGAN on Fashion-MNIST, 28 px, one class per row",
            config=("image_size=28",),
            run={"train_steps": 2000, "batch_size": 64, "seed": 0},
            headline=CLASS_HEADLINE,
        ),
        Preset(
            "gan_int_cls_fashion_mnist",
            "gan_int_cls",
            "fashion_mnist",
            "text-to-image GAN-INT-CLS on Fashion-MNIST captions, 28 px",
            config=("image_size=28",),
            run={"train_steps": 3000, "batch_size": 64, "seed": 0},
            headline=TEXT_HEADLINE,
        ),
        Preset(
            "stackgan_fashion_mnist",
            "stackgan",
            "fashion_mnist",
            "StackGAN on Fashion-MNIST captions, Stage-I 16 px then Stage-II 32 px",
            run={"train_steps": 2000, "batch_size": 64, "seed": 0},
            phases=({"stage": 1}, {"stage": 2}),
            headline=TEXT_HEADLINE,
        ),
        Preset(
            "cyclegan_sandal_sneaker",
            "cyclegan",
            "fashion_mnist",
            "CycleGAN sandal <-> sneaker on Fashion-MNIST, 32 px grayscale, narrower PatchGANs",
            # discriminator_filters=32 (the small-gray default when it was built): a quarter
            # of the paper's PatchGAN weights, so the four networks fit in 10.5 MiB of float16
            # (5.4 M values; 9.4 M with 64 filters). input_norm=true and cycle_weight=10 (the
            # paper's, the defaults when it was built) are what its weights were trained with;
            # the small-gray default is now input_norm=False, 16 filters and λ = 20 (better on
            # the translation figures), but a rebuilt preset would be a new blob beyond the
            # repository's 40 MB budget for presets (39.8 MB spent).
            config=("discriminator_filters=32", "input_norm=true", "cycle_weight=10"),
            run={
                "train_steps": 6000,
                "batch_size": 4,
                "seed": 0,
                "domain_a": "sandal",
                "domain_b": "sneaker",
            },
            eval_samples=1000,
            headline=(
                "a_to_b_translation_accuracy",
                "b_to_a_translation_accuracy",
                "a_to_b_cycle_error",
                "b_to_a_cycle_error",
            ),
        ),
    )
}


def get(name: str, table: dict[str, Preset] | None = None) -> Preset:
    """The recipe named `name`.

    Raises:
      UsageError: no such preset (the message lists them).
    """
    table = PRESETS if table is None else table
    if name not in table:
        raise UsageError(f"unknown preset {name!r}; known: {', '.join(sorted(table))}")
    return table[name]
