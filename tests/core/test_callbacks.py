"""Training callbacks: what a logging window whose steps were skipped as non-finite reports."""

from __future__ import annotations

import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import train
from zoo.core import distribute


@pytest.fixture(autouse=True)
def _float32():
    distribute.set_precision("float32")
    yield
    distribute.set_precision("float32")


class _PoisonAfter(keras.callbacks.Callback):
    """Turns the discriminator's weights into NaN after the step `step`: every later loss is
    non-finite and every later update skipped."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.step:
            for v in self.model.discriminator.trainable_variables:
                v.assign(tf.fill(v.shape, np.nan))


def _scalars(model_dir: str) -> dict[str, list[tuple[int, float]]]:
    scalars: dict[str, list[tuple[int, float]]] = {}
    for events in glob.glob(os.path.join(model_dir, "tensorboard", "events.out.tfevents.*")):
        for raw in tf.data.TFRecordDataset(events):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    number = float(tf.make_ndarray(value.tensor))
                    scalars.setdefault(value.tag, []).append((event.step, number))
    return scalars


def test_a_window_of_skipped_steps_logs_no_value_and_counts_them(tmp_path, capsys):
    rc = train.RunConfig(
        model="gan",
        dataset="ring8",
        model_dir=str(tmp_path),
        train_steps=7,
        batch_size=8,
        checkpoint_every=0,
        sample_every=0,
        log_every=2,
        max_nonfinite_steps=100,
    )
    overrides = ["generator_units=8", "discriminator_units=8"]
    train.run(rc, overrides, extra_callbacks=[_PoisonAfter(3)])
    with open(tmp_path / "metrics.jsonl") as f:
        records = {r["step"]: r for r in map(json.loads, f)}
    assert sorted(records) == [2, 4, 6, 7]

    # Step 3 is finite, step 4 is not: the window's means are step 3's, one step skipped.
    assert np.isfinite(records[4]["d_loss"]) and np.isfinite(records[4]["g_loss"])
    assert records[4]["nonfinite_steps"] == 1
    for step, skipped in ((6, 2), (7, 1)):  # every step skipped: no value, not 0
        record = records[step]
        for name in ("d_loss", "g_loss", "real_logit", "fake_logit"):
            assert name in record and record[name] is None, (step, name, record)
        assert record["nonfinite_steps"] == skipped
    assert "nonfinite_steps" not in records[2]

    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.startswith("step 6/7 "))
    assert "d_loss" not in line and "g_loss" not in line and "nonfinite_steps=2" in line

    scalars = _scalars(str(tmp_path))
    for name in ("d_loss", "g_loss"):
        assert [step for step, _ in scalars[name]] == [2, 4], scalars[name]
        assert all(np.isfinite(v) for _, v in scalars[name])
    assert [step for step, _ in scalars["nonfinite_steps"]] == [4, 6, 7]


def test_trim_metrics_keeps_whole_records_up_to_the_resumed_step(tmp_path):
    from zoo.core.callbacks import trim_metrics

    path = tmp_path / "metrics.jsonl"
    records = [{"step": s, "d_loss": 0.5} for s in (2, 4, 4, 6)] + [{"step": 4, "fd": 3.0}]
    text = "".join(json.dumps(r) + "\n" for r in records)
    path.write_text(text + '{"step": 8, "d_lo')  # torn by a kill inside the write
    assert trim_metrics(str(path), 4) == 2  # step 6 and the torn line go
    kept = [json.loads(line) for line in path.read_text().splitlines()]
    assert kept == [records[0], records[1], records[2], records[4]]
    inode = path.stat().st_ino
    assert trim_metrics(str(path), 4) == 0 and path.stat().st_ino == inode  # nothing rewritten
    assert trim_metrics(str(tmp_path / "missing.jsonl"), 4) == 0
    assert trim_metrics(str(path), 0) == 4 and path.read_text() == ""
