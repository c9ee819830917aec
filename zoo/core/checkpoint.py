"""Checkpoints that make a killed run resume exactly where it stopped."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import tensorflow as tf
from absl import logging

from zoo.errors import UsageError


class RunCheckpoint:
    """A `tf.train.CheckpointManager` over everything exact resume needs.

    `tf.train.Checkpoint` writes the data files first and then replaces the small `checkpoint`
    index file atomically, so a run killed while saving still points at its last complete
    checkpoint. Under multi-worker training every worker must take part in a save; workers
    other than the chief write to a temporary directory that is removed afterwards, and every
    worker restores from `directory`, so that all of them resume at the same step.

    Args:
      directory: where checkpoints live (`model_dir/checkpoints`).
      items: trackables to save, e.g. `GAN.checkpoint_items()`; must hold `model.step`.
      keep: how many recent checkpoints to keep.
      chief: whether this process owns `directory`.
    """

    def __init__(self, directory: str, items: dict[str, Any], *, keep: int = 3, chief: bool = True):
        self.items = items
        self.checkpoint = tf.train.Checkpoint(**items)
        self.chief = chief
        self.shared_directory = directory
        self.directory = directory if chief else tempfile.mkdtemp(prefix="zoo-worker-ckpt-")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.directory, max_to_keep=keep, checkpoint_name="ckpt"
        )

    @property
    def step(self) -> int:
        return int(self.items["model"].step.numpy())

    def restore_latest(self) -> int:
        """Restores the newest readable checkpoint and returns its step (0 if none).

        A checkpoint that cannot be read (a corrupt or truncated file) is reported and the
        next older one is tried.

        Raises:
          UsageError: when checkpoints exist but none can be restored into this model.
        """
        shared = self.manager
        if not self.chief:  # Read-only view of the chief's checkpoints; it never saves.
            shared = tf.train.CheckpointManager(
                self.checkpoint, self.shared_directory, max_to_keep=None, checkpoint_name="ckpt"
            )
        candidates = list(reversed(shared.checkpoints))
        if not candidates:
            return 0
        errors = []
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (tf.errors.OpError, AssertionError, ValueError) as err:
                first_line = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
                logging.warning("checkpoint %s cannot be restored: %s", path, first_line)
                errors.append(f"{os.path.basename(path)}: {first_line[:200]}")
                continue
            return self.step
        raise UsageError(
            f"no checkpoint in {self.shared_directory} fits this model ({'; '.join(errors)}); "
            "use a new --model_dir or the config the run was started with"
        )

    def save(self) -> str:
        """Saves a checkpoint numbered by the model's step; returns its path."""
        path = self.manager.save(checkpoint_number=self.step)
        if not self.chief:
            shutil.rmtree(self.directory, ignore_errors=True)
        return path

    def close(self) -> None:
        """Removes a non-chief worker's temporary directory."""
        if not self.chief:
            shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def latest_step(self) -> int | None:
        """Step of the newest checkpoint on disk, or None."""
        path = self.manager.latest_checkpoint
        return int(path.rsplit("-", 1)[-1]) if path else None
