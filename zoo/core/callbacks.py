"""Training callbacks: checkpoints, sample pictures, metrics, divergence stop, SIGTERM."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from zoo.core.checkpoint import RunCheckpoint, error_reason
from zoo.core.images import save_png
from zoo.errors import RunDirectoryIOError
from zoo.io import atomic_write_text


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
    """Turns a failed write of `path` (OSError, or TensorFlow's file errors) into
    `RunDirectoryIOError`: one line, training stops, the last checkpoint is kept."""
    try:
        yield
    except (OSError, tf.errors.OpError) as err:
        raise RunDirectoryIOError(
            f"cannot write {path}: {error_reason(err)}; training stopped, its last checkpoint "
            "is kept (rerun the same command to resume)"
        ) from err


def write_metrics(
    path: str | None,
    writer: tf.summary.SummaryWriter | None,
    step: int,
    values: dict[str, Any],
    prefix: str = "",
) -> dict[str, Any]:
    """Appends `{"step", "time", **values}` to `metrics.jsonl` (None and non-finite floats as
    null) and writes the finite numeric values as TensorBoard scalars named `prefix + key`;
    returns the record."""
    record = {
        "step": step,
        "time": time.time(),
        **{
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in values.items()
        },
    }
    if path is not None:
        with writing(path), open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
    if writer is not None:
        with writing("the TensorBoard events"), writer.as_default():
            for name, value in values.items():
                if _finite_number(value):
                    tf.summary.scalar(prefix + name, value, step=step)
            writer.flush()
    return record


def trim_metrics(path: str, step: int) -> int:
    """Keeps the records of `metrics.jsonl` up to `step` (the checkpoint a run resumes from):
    a run killed after it logged past its last checkpoint logs those steps again, and one
    killed inside a write leaves a torn last line. Rewrites the file atomically when anything
    goes; returns how many lines went."""
    if not os.path.exists(path):
        return 0
    with writing(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        kept = [line for line in lines if (at := _record_step(line)) is not None and at <= step]
        if len(kept) != len(lines):
            atomic_write_text(path, "".join(line + "\n" for line in kept))
    return len(lines) - len(kept)


def _record_step(line: str) -> int | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) else None


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _has_weight(metric: keras.metrics.Metric) -> bool:
    """Whether a mean tracker saw any value since its reset (one with zero total weight, every
    value of its window skipped as non-finite, would report 0)."""
    count = getattr(metric, "count", None)
    return count is None or float(keras.ops.convert_to_numpy(count)) > 0


class StepCallback(keras.callbacks.Callback):
    """Tracks the global training step (the model's step at the start plus batches run)."""

    def __init__(self, initial_step: int) -> None:
        super().__init__()
        self.initial_step = initial_step
        self.global_step = initial_step

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        previous = self.global_step
        self.global_step = self.initial_step + batch + 1
        self.on_steps(previous, self.global_step, logs or {})

    def on_steps(self, previous: int, step: int, logs: dict) -> None:
        """Called after the steps (previous, step] ran (several with steps_per_execution)."""

    @staticmethod
    def crossed(previous: int, step: int, every: int) -> bool:
        return every > 0 and step // every > previous // every


class NonFiniteGuard(StepCallback):
    """Stops the run when `patience` steps in a row had a non-finite loss.

    Each such step's update was already skipped by the loss-scale optimizer, so the weights
    are those of the last good step; the checkpoint callback does not save after a stop.
    """

    def __init__(self, initial_step: int, patience: int = 20) -> None:
        super().__init__(initial_step)
        self.patience = patience
        self.bad_steps = 0
        self.message: str | None = None

    def on_steps(self, previous: int, step: int, logs: dict) -> None:
        if float(logs.get("finite", 1.0)) >= 1.0:
            self.bad_steps = 0
            return
        self.bad_steps += step - previous
        logging.warning("non-finite loss at step %d: update skipped", step)
        if self.bad_steps >= self.patience:
            self.message = (
                f"training diverged: {self.bad_steps} steps in a row with a non-finite loss "
                f"(last at step {step}); the last good checkpoint is kept"
            )
            self.model.stop_training = True


class CheckpointCallback(StepCallback):
    """Saves every `every` steps, at the end, and on SIGTERM (then stops the run).

    Never saves right after a non-finite step: the last checkpoint stays a good one. Must come
    after the `NonFiniteGuard` in the callback list.

    With `any_worker` (multi-worker training, `zoo.core.distribute.any_worker`), a SIGTERM to
    one worker stops all of them: at every step boundary the workers agree whether any of them
    got one, and then all save that same step and stop.
    """

    def __init__(
        self,
        checkpoint: RunCheckpoint,
        initial_step: int,
        every: int,
        guard: NonFiniteGuard,
        any_worker: Callable[[bool], bool] | None = None,
    ) -> None:
        super().__init__(initial_step)
        self.checkpoint = checkpoint
        self.every = every
        self.guard = guard
        self.any_worker = any_worker
        self.signalled = False
        self.terminated = False
        self.pending = False
        self._previous_handler: Any = None

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        del signum, frame
        self.signalled = True
        if self.any_worker is None:
            self.terminated = True

    def on_train_begin(self, logs: dict | None = None) -> None:
        try:
            self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread
            self._previous_handler = None

    def _save(self) -> None:
        """Saves unless the last step was non-finite; then the save waits for a finite one."""
        if self.guard.bad_steps or self.guard.message is not None:
            self.pending = True
            return
        self.pending = False
        ema = getattr(self.model, "ema", None)
        if ema is not None and ema.swapped_in:  # the averaged weights would be saved as G's
            raise RuntimeError("a checkpoint cannot be saved while the EMA weights are in G")
        if self.checkpoint.latest_step != self.global_step:
            path = self.checkpoint.save()
            logging.info("saved checkpoint %s", path)

    def on_steps(self, previous: int, step: int, logs: dict) -> None:
        if self.any_worker is not None:
            self.terminated = self.any_worker(self.signalled)
        if self.terminated:
            self._save()
            self.model.stop_training = True
        elif self.pending or self.crossed(previous, step, self.every):
            self._save()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._save()
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)


class SampleCallback(StepCallback):
    """Writes a picture of samples from fixed inputs every `every` steps and at the end.

    PNGs go to `samples/step_XXXXXXXX.png` (and `samples/latest.png`), and to TensorBoard.

    Args:
      directory: the run's `samples/`.
      writer: the run's TensorBoard writer (or None).
      initial_step: the model's step when training (re)starts.
      every: period in steps (0 = only at the end).
      picture: the model -> its uint8 RGB picture (the family task's `sample_picture`).
    """

    def __init__(
        self,
        directory: str,
        writer: tf.summary.SummaryWriter | None,
        initial_step: int,
        every: int,
        picture: Callable[[keras.Model], np.ndarray],
    ) -> None:
        super().__init__(initial_step)
        self.directory = directory
        self.writer = writer
        self.every = every
        self.picture = picture
        self.last_written: int | None = None

    def path(self, step: int) -> str:
        return os.path.join(self.directory, f"step_{step:08d}.png")

    def write(self, step: int) -> str:
        picture = self.picture(self.model)
        path = self.path(step)
        latest = os.path.join(self.directory, "latest.png")
        for target in (path, latest):
            with writing(target):
                save_png(picture, target)
        if self.writer is not None:
            with writing("the TensorBoard events"), self.writer.as_default():
                tf.summary.image("samples", picture[None], step=step)
                self.writer.flush()
        self.last_written = step
        return path

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Writes the picture of the step the run resumes from if the run that saved that step
        was killed before its picture."""
        step = self.initial_step
        due = step > 0 and self.crossed(step - 1, step, self.every)
        if due and not os.path.exists(self.path(step)):
            self.write(step)

    def on_steps(self, previous: int, step: int, logs: dict) -> None:
        if self.crossed(previous, step, self.every):
            self.write(step)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.last_written != self.global_step:
            self.write(self.global_step)


class MetricsCallback(StepCallback):
    """Every `every` steps: window means to `metrics.jsonl` and TensorBoard, then a reset.

    The trackers average over the steps since the last write, so each line is the mean of
    its window. Steps with a non-finite loss are left out of the means and counted as
    `nonfinite_steps` (the steps of an execution whose last step was non-finite, with
    `steps_per_execution` > 1); a tracker whose every step was left out is logged as null (no
    TensorBoard scalar), never as 0. When stdout is not a terminal (no progress bar), a line
    is printed too.
    With `path=None` (a multi-worker non-chief) nothing is written but the trackers are still
    reset at the same steps: a reset is a collective op under multi-worker training.
    """

    def __init__(
        self,
        path: str | None,
        writer: tf.summary.SummaryWriter | None,
        initial_step: int,
        every: int,
        total_steps: int,
    ) -> None:
        super().__init__(initial_step)
        self.path = path
        self.writer = writer
        self.every = every
        self.total_steps = total_steps
        self.last_logs: dict[str, float] = {}
        self._window_start = time.perf_counter()
        self._window_steps = 0
        self._nonfinite_steps = 0
        self._print = path is not None and not sys.stdout.isatty()

    def _flush(self, step: int) -> None:
        # Read on every worker: a sync-on-read variable's read is a collective op.
        empty = {m.name for m in self.model.metrics if not _has_weight(m)}
        values: dict[str, float | int | None] = {
            k: None if k in empty else float(v) for k, v in self.last_logs.items() if k != "finite"
        }
        if self._nonfinite_steps:
            values["nonfinite_steps"] = self._nonfinite_steps
        elapsed = time.perf_counter() - self._window_start
        if self._window_steps and elapsed > 0:
            values["steps_per_sec"] = self._window_steps / elapsed
        write_metrics(self.path, self.writer, step, values)
        if self._print:
            shown = " ".join(f"{k}={v:.4g}" for k, v in values.items() if v is not None)
            print(f"step {step}/{self.total_steps} {shown}", flush=True)
        for metric in self.model.metrics:
            metric.reset_state()
        self._window_start = time.perf_counter()
        self._window_steps = 0
        self._nonfinite_steps = 0

    def on_steps(self, previous: int, step: int, logs: dict) -> None:
        self.last_logs = dict(logs)
        self._window_steps += step - previous
        if float(logs.get("finite", 1.0)) < 1.0:
            self._nonfinite_steps += step - previous
        if self.crossed(previous, step, self.every):
            self._flush(step)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._window_steps:
            self._flush(self.global_step)
