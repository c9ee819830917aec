"""Checkpoints that make a killed run resume exactly where it stopped."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Any

import tensorflow as tf
from absl import logging
from google.protobuf import text_format
from tensorflow.python.training.checkpoint_state_pb2 import CheckpointState

from zoo.errors import CheckpointIOError, UsageError

NAME = "ckpt"
_INDEX = re.compile(rf"^{NAME}-(\d+)\.index$")
STATE_FILE = "checkpoint"


def error_reason(err: BaseException) -> str:
    """The first line of an error, without TensorFlow's `{{function_node ...}}` and `[Op:...]`."""
    text = err.message if isinstance(err, tf.errors.OpError) else str(err)
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\]$", "", text.strip())
    return text.splitlines()[0][:300] if text else type(err).__name__


def checkpoints_on_disk(directory: str) -> list[str]:
    """Prefixes of the `ckpt-STEP` checkpoints with an index file in `directory`, newest first.

    The files, not the `checkpoint` state file, are the truth: the state file may be missing,
    unreadable or name checkpoints whose files are gone.
    """
    if not tf.io.gfile.isdir(directory):
        return []
    steps = [int(m.group(1)) for m in map(_INDEX.match, tf.io.gfile.listdir(directory)) if m]
    return [os.path.join(directory, f"{NAME}-{step}") for step in sorted(steps, reverse=True)]


def unreadable(path: str) -> str | None:
    """Why the checkpoint at prefix `path` cannot be read (one line), or None if every tensor
    reads back with a matching checksum."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as err:  # corrupt files raise OpError, IndexError, ValueError, ...
        return error_reason(err)
    return None


def _free_name(path: str) -> str:
    target, number = f"{path}.corrupt", 1
    while tf.io.gfile.exists(target):
        number += 1
        target = f"{path}.corrupt{number}"
    return target


def set_aside(path: str) -> str:
    """Moves the files of the checkpoint at prefix `path` into the directory `PATH.corrupt`
    (out of every list of checkpoints, kept for inspection) and returns that directory."""
    target = _free_name(path)
    tf.io.gfile.makedirs(target)
    directory, name = os.path.split(path)
    for file in tf.io.gfile.listdir(directory):
        if file == f"{name}.index" or file.startswith(f"{name}.data-"):
            tf.io.gfile.rename(os.path.join(directory, file), os.path.join(target, file))
    return target


def newest_readable(directory: str) -> tuple[str, str | None]:
    """The newest checkpoint in `directory` that can be read, and a one-line warning naming
    the newer ones that cannot (None when the newest is readable). Nothing is moved.

    Raises:
      UsageError: no checkpoint in `directory`, or none that can be read.
    """
    candidates = checkpoints_on_disk(directory)
    if not candidates:
        raise UsageError(f"no checkpoint in {directory}; train the run first")
    skipped = []
    for path in candidates:
        reason = unreadable(path)
        if reason is None:
            if not skipped:
                return path, None
            return path, (
                f"checkpoint{'s' if len(skipped) > 1 else ''} {', '.join(skipped)} cannot be "
                f"read; using {os.path.basename(path)}, the newest readable one in {directory}"
            )
        skipped.append(f"{os.path.basename(path)} ({reason})")
    raise UsageError(f"no readable checkpoint in {directory}: {'; '.join(skipped)}")


def _state_is_valid(path: str) -> bool:
    try:
        state = text_format.Parse(tf.io.gfile.GFile(path).read(), CheckpointState())
    except (text_format.ParseError, UnicodeDecodeError, tf.errors.OpError):
        return False
    return bool(state.model_checkpoint_path)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


class RunCheckpoint:
    """A `tf.train.CheckpointManager` over everything exact resume needs.

    `tf.train.Checkpoint` writes the data files first and then replaces the small `checkpoint`
    index file atomically, so a run killed while saving still points at its last complete
    checkpoint. Under multi-worker training every worker must take part in a save; workers
    other than the chief write to a temporary directory that is removed afterwards, and every
    worker restores from `directory`, so that all of them resume at the same step.

    A checkpoint that cannot be read is moved aside (`ckpt-STEP.corrupt/`) by the chief when
    restoring, so the run resumes from the newest readable one and later saves replace it.

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
        self.keep = keep
        self.shared_directory = directory
        self.directory = directory if chief else tempfile.mkdtemp(prefix="zoo-worker-ckpt-")
        self._saved_step: int | None = None
        if chief:
            self._set_aside_bad_state()
        self.manager = self._manager()

    def _manager(self) -> tf.train.CheckpointManager:
        return tf.train.CheckpointManager(
            self.checkpoint, self.directory, max_to_keep=self.keep, checkpoint_name=NAME
        )

    def _set_aside_bad_state(self) -> None:
        path = os.path.join(self.directory, STATE_FILE)
        try:
            if tf.io.gfile.exists(path) and not _state_is_valid(path):
                target = _free_name(path)
                tf.io.gfile.rename(path, target)
                _warn(f"{path} cannot be read; set aside as {os.path.basename(target)}")
        except (tf.errors.OpError, OSError) as err:
            raise CheckpointIOError(f"cannot set aside {path}: {error_reason(err)}") from err

    @property
    def step(self) -> int:
        return int(self.items["model"].step.numpy())

    def restore_latest(self) -> int:
        """Restores the newest readable checkpoint and returns its step (0 if none).

        A checkpoint that cannot be read (a corrupt or truncated file) is reported and the
        next older one is tried; the chief moves it aside. One that reads but does not fit
        the model is reported and skipped.

        Raises:
          UsageError: when checkpoints exist but none can be restored into this model.
          CheckpointIOError: the chief could not move or record checkpoints.
        """
        try:
            return self._restore_latest()
        except (tf.errors.OpError, OSError) as err:
            raise CheckpointIOError(
                f"cannot tidy the checkpoints in {self.shared_directory}: {error_reason(err)}"
            ) from err

    def _restore_latest(self) -> int:
        if self.chief:
            self._remove_staging()
        misfits = []
        unread = False
        restored = None
        for path in checkpoints_on_disk(self.shared_directory):
            name = os.path.basename(path)
            reason = unreadable(path)
            if reason is not None:
                unread = True
                if self.chief:
                    target = set_aside(path)
                    _warn(
                        f"checkpoint {name} cannot be read ({reason}); set aside as "
                        f"{os.path.basename(target)}"
                    )
                continue
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except Exception as err:  # does not fit: AssertionError, ValueError, OpError, ...
                logging.warning("checkpoint %s cannot be restored: %s", path, error_reason(err))
                misfits.append(f"{name}: {error_reason(err)}")
                continue
            restored = path
            break
        if self.chief:
            self._record_disk_state()
        if restored is None:
            if misfits:
                raise UsageError(
                    f"no checkpoint in {self.shared_directory} fits this model "
                    f"({'; '.join(misfits)}); use a new --model_dir or the config the run was "
                    "started with"
                )
            if unread and self.chief:
                _warn(f"no readable checkpoint in {self.shared_directory}: starting at step 0")
            return 0
        self._saved_step = self.step
        return self._saved_step

    def _remove_staging(self) -> None:
        """Removes `ckpt-STEP_temp/` staging left by a save that was killed or failed."""
        if not tf.io.gfile.isdir(self.directory):
            return
        for name in tf.io.gfile.listdir(self.directory):
            name = name.rstrip("/")
            if re.fullmatch(rf"{NAME}-\d+_temp", name):
                tf.io.gfile.rmtree(os.path.join(self.directory, name))

    def _record_disk_state(self) -> None:
        """Makes the `checkpoint` state file list the checkpoints on disk (oldest first) when
        it lists anything else, and rebuilds the manager from it."""
        paths = list(reversed(checkpoints_on_disk(self.directory)))
        if paths == self.manager.checkpoints and (
            not paths or self.manager.latest_checkpoint == paths[-1]
        ):
            return
        state = os.path.join(self.directory, STATE_FILE)
        if not paths:
            if tf.io.gfile.exists(state):
                tf.io.gfile.remove(state)
        else:
            now = time.time()
            tf.__internal__.train.update_checkpoint_state(
                self.directory,
                model_checkpoint_path=paths[-1],
                all_model_checkpoint_paths=paths,
                all_model_checkpoint_timestamps=[now - len(paths) + i for i in range(len(paths))],
                last_preserved_timestamp=now - len(paths) - 1,
                save_relative_paths=True,
            )
        self.manager = self._manager()

    def save(self) -> str:
        """Saves a checkpoint numbered by the model's step; returns its path.

        Raises:
          CheckpointIOError: the checkpoint could not be written; what it had written is
            removed and the last good checkpoint is left as it was.
        """
        step = self.step
        try:
            path = self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as err:
            self._discard(step)
            kept = (
                f"the last good checkpoint {NAME}-{self._saved_step} is kept (run again to "
                "resume from it)"
                if self._saved_step is not None
                else "no checkpoint was saved"
            )
            raise CheckpointIOError(
                f"cannot save checkpoint {NAME}-{step} in {self.shared_directory}: "
                f"{error_reason(err)}; {kept}"
            ) from err
        finally:
            if not self.chief:
                shutil.rmtree(self.directory, ignore_errors=True)
        self._saved_step = step
        return path

    def _discard(self, step: int) -> None:
        """Removes what a failed save of `step` left: its staging and unrecorded files."""
        prefix = os.path.join(self.directory, f"{NAME}-{step}")
        shutil.rmtree(f"{prefix}_temp", ignore_errors=True)
        try:
            recorded = tf.train.get_checkpoint_state(self.directory)
        except ValueError:
            recorded = None
        if recorded is not None and prefix in recorded.all_model_checkpoint_paths:
            return
        name = os.path.basename(prefix)
        for file in os.listdir(self.directory) if os.path.isdir(self.directory) else []:
            if file == f"{name}.index" or file.startswith(f"{name}.data-"):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.directory, file))

    def close(self) -> None:
        """Removes a non-chief worker's temporary directory."""
        if not self.chief:
            shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def latest_step(self) -> int | None:
        """Step of the checkpoint this run last restored or saved, or None."""
        return self._saved_step
