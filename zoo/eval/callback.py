"""Metrics during training: `--eval_every=N` evaluates the model on N-step boundaries."""

from __future__ import annotations

import sys
from collections.abc import Callable

import keras
import tensorflow as tf

from zoo.core.callbacks import StepCallback, write_metrics


class EvalCallback(StepCallback):
    """Every `every` steps: the family's metrics to `metrics.jsonl` and TensorBoard.

    Each evaluation appends one JSON object `{"step", "time", <metric>: value, ...}` to the
    same `metrics.jsonl` the loss windows go to, and writes the numbers to TensorBoard under
    `eval/`. Samples are drawn from the same seed every time, so the values of successive
    steps compare the same generator inputs. Only the chief adds this callback: evaluation
    runs on the chief alone and takes part in no collective op, so other workers are not
    affected beyond waiting for the chief's next step.

    Args:
      evaluate: (model, num_samples, seed) -> metrics: the family task's `evaluate` with the
        run's `Evaluator` (which loads its feature network on first use).
      path: the run's `metrics.jsonl`.
      writer: the run's TensorBoard writer (or None).
      initial_step: the model's step when training (re)starts.
      every: period in steps (> 0).
      num_samples: samples per evaluation.
      seed: seed of the evaluation samples.
    """

    def __init__(
        self,
        evaluate: Callable[[keras.Model, int, int], dict],
        path: str | None,
        writer: tf.summary.SummaryWriter | None,
        initial_step: int,
        every: int,
        num_samples: int,
        seed: int = 0,
    ) -> None:
        super().__init__(initial_step)
        self.evaluate_model = evaluate
        self.path = path
        self.writer = writer
        self.every = every
        self.num_samples = num_samples
        self.seed = seed
        self.history: list[dict] = []
        self._print = not sys.stdout.isatty()

    def evaluate(self, step: int) -> dict:
        """Evaluates the model now and records the result as the metrics of `step`."""
        values = self.evaluate_model(self.model, self.num_samples, self.seed)
        record = write_metrics(self.path, self.writer, step, values, prefix="eval/")
        if self._print:
            shown = " ".join(f"{k}={v:.4g}" for k, v in values.items())
            print(f"eval step {step}: {shown}", flush=True)
        self.history.append(record)
        return record

    def on_steps(self, previous: int, step: int, logs: dict) -> None:
        if self.crossed(previous, step, self.every):
            self.evaluate(step)
