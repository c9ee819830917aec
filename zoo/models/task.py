"""The task side of a family: what turns a run into a model, data and exports.

A family is two classes. Its `keras.Model` (a `zoo.core.gan.GAN`) holds the networks, the
trackers, `compile` and `train_step`, `sample_inputs` and `generate`, and never sees the run's
options. Its `Task` (this base, registered under the family's name in `zoo.registry`) knows
the run: the config a dataset starts from, the training data, preparation before training and
warm starts, the sample picture, what an export serves and feeds, and how the run is scored.
Every hook has its default here, so the driver, export and evaluation call them without
asking whether a family has them (the Model Garden's `Task`, without its config machinery).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf

from zoo import data as zoo_data
from zoo.core.gan import GAN
from zoo.core.images import render_samples
from zoo.errors import UsageError, first_line
from zoo.run import RunConfig

# What an export serves: signature name -> (function of keyword tensors, its input specs).
SignatureTable = dict[str, tuple[Callable[..., dict], dict[str, tf.TensorSpec]]]


class Task:
    """Base of every family's task; a family overrides only what differs.

    Attributes:
      name: the family's name (`--model`), set by `zoo.registry.register`.
      model_class: the family's `GAN` subclass.
      phases: the phases a family trains in, one run directory for all (`stackgan`: (1, 2),
        chosen by `--stage`); () for a family trained in one go.
      data_kinds: the kinds of data it trains on (`image`; `vector` for the toys).
      batch_size: the global batch of a run that passes no `--batch_size`.
      dataset_defaults: config fields measured for particular datasets, by dataset name
        (e.g. DCGAN's 28 px recipe on Fashion-MNIST and MNIST): a new run on one of them starts
        from the family's config with these in place, before the command line's overrides.
      dataset_batch_sizes: the default batch on particular datasets, by dataset name.
      train_steps: the generator steps of a run that passes no `--train_steps` (of each phase,
        for a family trained in phases).
      dataset_train_steps: the default steps on particular datasets, by dataset name: the
        budget the family's quality figures were measured at there (bench/), so that a run
        with no flag gets them.
    """

    name: ClassVar[str] = ""
    model_class: ClassVar[type[GAN]] = GAN
    phases: ClassVar[tuple[int, ...]] = ()
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    batch_size: ClassVar[int] = 64
    dataset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    dataset_batch_sizes: ClassVar[dict[str, int]] = {}
    train_steps: ClassVar[int] = 1000
    dataset_train_steps: ClassVar[dict[str, int]] = {}

    @property
    def config_class(self) -> type:
        """The family's config dataclass."""
        return self.model_class.config_class

    # -- the config -------------------------------------------------------------------------
    def default_config(self, dataset: str) -> Any:
        """The config a new run on `dataset` starts from, before the command line's overrides:
        the family's defaults with `dataset_defaults[dataset]` in place."""
        return dataclasses.replace(self.config_class(), **self.dataset_defaults.get(dataset, {}))

    def default_batch_size(self, dataset: str) -> int:
        """The global batch size of a run on `dataset` that passes no `--batch_size`:
        `dataset_batch_sizes[dataset]`, else `batch_size`."""
        return self.dataset_batch_sizes.get(dataset, self.batch_size)

    def default_train_steps(self, dataset: str) -> int:
        """The generator steps of a run on `dataset` that passes no `--train_steps`:
        `dataset_train_steps[dataset]`, else `train_steps`."""
        return self.dataset_train_steps.get(dataset, self.train_steps)

    def with_phase(self, config: Any, phase: int) -> Any:
        """The config for one phase of a family trained in phases (its `stage` field)."""
        return dataclasses.replace(config, stage=phase) if self.phases else config

    def phase_of(self, config: Any) -> int:
        """The phase a config trains (0 for a family trained in one go)."""
        return int(config.stage) if self.phases else 0

    def discriminator_steps(self, config: Any) -> int:
        """D updates per G step: each fetches a fresh minibatch from the training stream."""
        return self.model_class.discriminator_steps(config)

    def check_batch(self, config: Any, per_replica_batch: int) -> None:
        """Raises `UsageError` when a replica's batch does not suit the config."""
        del config, per_replica_batch

    def adapt_config(self, config: Any, info: zoo_data.DatasetInfo) -> Any:
        """Fills data-dependent config fields from the training data's `DatasetInfo` (e.g. the
        number of classes); the driver saves the result, so the config alone rebuilds G."""
        if info.kind not in self.data_kinds:
            raise UsageError(f"{self.name} needs an image dataset; {info.name} gives vectors")
        return config

    # -- the run ----------------------------------------------------------------------------
    def prepare_run(self, rc: RunConfig, config: Any) -> Any:
        """Runs before the data are opened (e.g. pretrains a text encoder into the run
        directory) and returns the config with what that fixed; the default does nothing."""
        del rc
        return config

    def training_dataset(
        self, rc: RunConfig, config: Any, *, batch_size: int, start_step: int
    ) -> tuple[tf.data.Dataset, zoo_data.DatasetInfo]:
        """The training stream of a run and its `DatasetInfo`.

        The default is `rc.dataset` at the config's image size and channels (toys as they
        are), batched to `batch_size` and exactly resumable at `start_step`. Families whose data
        differ (labels, two domains, captions) override it.
        """
        toy = rc.dataset in zoo_data.TOY_NAMES
        return zoo_data.make_dataset(
            rc.dataset,
            image_size=None if toy else config.image_size,
            channels=None if toy else config.channels,
            **dataset_options(rc, batch_size=batch_size, start_step=start_step),
        )

    def build_model(self, config: Any, *, seed: int = 0) -> GAN:
        """The family's model for a config (under the current dtype policy and scope).

        Raises:
          UsageError: when the config cannot build a model.
        """
        try:
            return self.model_class(config, seed=seed)
        except (ValueError, TypeError) as err:
            raise UsageError(f"{self.name} config cannot build: {first_line(err)}") from err

    def warm_start(self, model: GAN, rc: RunConfig) -> None:
        """Loads weights made before training (pretrained parts) into a new model; called
        before the run's own checkpoint is restored, which overrides them on resume."""
        del model, rc

    def steps_before_phase(self, model: GAN) -> int:
        """Generator steps of earlier phases held by a model (0 for one phase): added to its own
        step, so an export after a later phase gets a newer version."""
        del model
        return 0

    # -- pictures and evaluation ------------------------------------------------------------
    def sample_picture(
        self, model: GAN, num: int, rc: RunConfig | None = None, centres: np.ndarray | None = None
    ) -> np.ndarray:
        """The uint8 RGB picture of samples that training writes (grid, scatter or histogram).

        Families whose pictures need more than `generate(sample_inputs)` (labelled rows,
        input / translated / reconstructed rows) override it.
        """
        del rc
        samples = np.asarray(model.generate(model.sample_inputs(num, seed=0)))
        return render_samples(samples, centres=centres)

    def evaluate(self, model: GAN, evaluator: Any, num_samples: int, seed: int = 0) -> dict:
        """The family's metrics of a model with a `zoo.eval.evaluate.Evaluator` of its run:
        by default those of its samples (`evaluator(model, ...)`)."""
        return evaluator(model, num_samples, seed)

    # -- export -----------------------------------------------------------------------------
    def serving_signatures(self, model: GAN) -> SignatureTable:
        """What an export serves: signature name -> (function, its named input specs).

        The function takes the inputs as keyword tensors and returns a dict of float32 outputs
        (at least `images` in [-1, 1]); every input has a dynamic batch axis and no noise is
        drawn inside. The first entry is also `serving_default`.
        """
        specs = {"z": tf.TensorSpec([None, model.noise_dim], tf.float32, name="z")}

        def generate(z: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"images": tf.cast(model.generator(z, training=False), tf.float32)}

        return {"serving_default": (generate, specs)}

    def tflite_signatures(self, model: GAN) -> list[str]:
        """The `serving_signatures` that also become TFLite models (those with numeric inputs
        only; text families serve raw strings in the SavedModel and tokens in TFLite)."""
        return list(self.serving_signatures(model))

    def representative_inputs(
        self,
        model: GAN,
        num: int,
        seed: int = 0,
        rc: RunConfig | None = None,
        signature: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Inputs that look like what the exported generator will be fed (numpy, keyed like
        the inputs of `serving_signatures(model)[signature]`, or of its first entry when
        `signature` is None): int8 calibration, warmup requests, parity checks.

        `rc` is the run's options (families fed with real images load them from its dataset);
        the default draws z like `sample_inputs`.
        """
        del rc, signature
        return model.sample_inputs(num, seed)

    def calibration_samples(self, model: GAN) -> int:
        """How many `representative_inputs` int8 calibration needs. The calibrator records each
        activation tensor's min and max over them; a generator fed with z has few values per
        tensor in its first layers (4×4 maps), so it takes 64 draws for those ranges to settle.
        """
        del model
        return 64

    def export_metadata(self, model: GAN) -> dict[str, Any]:
        """More entries for the export's JSON (e.g. the tokenizer an app needs)."""
        del model
        return {}


def dataset_options(rc: RunConfig, *, batch_size: int, start_step: int) -> dict[str, Any]:
    """The keywords every family's training stream takes from the run: batch, seed, where it
    resumes, where the files are, which classes and how many examples of each."""
    return {
        "batch_size": batch_size,
        "seed": rc.seed,
        "start_step": start_step,
        "data_dir": rc.data_dir,
        "classes": list(rc.classes) or None,
        "examples_per_class": rc.examples_per_class,
    }
