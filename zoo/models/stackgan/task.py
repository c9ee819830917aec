"""StackGAN's run side: two phases in one run directory, Stage-I warm-started into phase 2,
pictures of both stages."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import tensorflow as tf

from zoo import registry
from zoo.core.ema import GeneratorEMA
from zoo.core.images import image_grid, label_rows
from zoo.data import IDX_NAMES
from zoo.errors import UsageError, first_line
from zoo.models.stackgan.model import PHASES, StackGAN, StackGANConfig, training_image_size
from zoo.models.text_family import ATTRIBUTE_COLUMNS
from zoo.models.text_task import TextTask
from zoo.run import RunConfig, checkpoint_dir


@registry.register("stackgan")
class StackGANTask(TextTask):
    """Phase 1 (`--stage=1`) trains Stage-I at `stage1_size`; phase 2 (`--stage=2`, the same
    `--model_dir`) loads Stage-I from phase 1's latest checkpoint and trains Stage-II."""

    model_class = StackGAN
    phases = PHASES
    # Each phase's budget of its quality figures (`bench/stackgan_quality.py`: 2000 + 2000).
    dataset_train_steps: ClassVar[dict[str, int]] = {name: 2000 for name in IDX_NAMES}

    def training_image_size(self, config: StackGANConfig) -> int:
        return training_image_size(config)

    def prepare_run(self, rc: RunConfig, config: StackGANConfig) -> StackGANConfig:
        """Phase 2 needs phase 1's checkpoint (checked before any data or encoder work)."""
        if config.stage == 2:
            directory = checkpoint_dir(rc.model_dir, 1)
            if not tf.train.latest_checkpoint(directory):
                raise UsageError(
                    f"--stage=2 needs a Stage-I checkpoint in {directory}; train --stage=1 "
                    "with the same --model_dir first"
                )
        return super().prepare_run(rc, config)

    def warm_start(self, model: StackGAN, rc: RunConfig) -> None:
        """The text encoder; in phase 2 also Stage-I G (and the text encoder as phase 1 left
        it) from phase 1's latest checkpoint. The phase's own checkpoint overrides on resume."""
        super().warm_start(model, rc)
        if model.config.stage != 2:
            return
        path = tf.train.latest_checkpoint(checkpoint_dir(rc.model_dir, 1))
        parts = {"generator": model.generator}
        if model.text_encoder is not None:
            parts["text_encoder"] = model.text_encoder
        # Phase 1 averaged Stage-I (the same ema_decay): Stage-II learns on that average, the
        # Stage-I that phase 1's pictures and export showed.
        stage1_ema = None
        if model.config.ema_decay:
            stage1_ema = GeneratorEMA({"generator": model.generator}, model.config.ema_decay)
            parts["ema"] = stage1_ema
        try:
            status = tf.train.Checkpoint(model=tf.train.Checkpoint(**parts)).restore(path)
            status.assert_existing_objects_matched().expect_partial()
        except (tf.errors.OpError, AssertionError, ValueError) as err:
            raise UsageError(f"cannot load Stage-I from {path}: {first_line(err, 200)}") from err
        if stage1_ema is not None:
            stage1_ema.copy_to({"generator": model.generator})
        model.stage1_steps.assign(int(path.rsplit("-", 1)[-1]))

    def steps_before_phase(self, model: StackGAN) -> int:
        """Phase 1's generator steps in a phase-2 model (0 in phase 1)."""
        return int(model.stage1_steps.numpy()) if model.config.stage == 2 else 0

    def sample_picture(
        self,
        model: StackGAN,
        num: int,
        rc: RunConfig | None = None,
        centres: np.ndarray | None = None,
    ) -> np.ndarray:
        """Captions: one row per class, columns "a X", "a dark X", ... on one z per column;
        after phase 2 each column is a pair (Stage-I, Stage-II) of the same caption and z.
        Embeddings: a grid of samples (pairs after phase 2)."""
        del centres
        inputs, classes = self.picture_inputs(model, num, rc)
        tiles, per_sample = model.stage_tiles(inputs)
        if classes is None:
            return image_grid(tiles, columns=8 * per_sample)
        grid = image_grid(tiles, columns=len(ATTRIBUTE_COLUMNS) * per_sample)
        return label_rows(grid, classes, rows=len(classes))
