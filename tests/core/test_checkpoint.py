"""`RunCheckpoint` against damaged run directories: a checkpoint that cannot be read is set
aside and the next older one restored, a broken `checkpoint` state file does not hide the
checkpoints on disk, and a save that fails (disk full) leaves nothing half-written."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.ops import io_ops

from zoo.core import checkpoint as ckpt
from zoo.core.checkpoint import RunCheckpoint
from zoo.errors import CheckpointIOError, UsageError


class _Model(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.step = tf.Variable(0, dtype=tf.int64)
        self.weight = tf.Variable(np.zeros(5000, "float32"))

    def advance(self, steps: int) -> None:
        for _ in range(steps):
            self.step.assign_add(1)
            self.weight.assign(tf.fill([5000], float(self.step.numpy())))


def _run(directory, keep: int = 3) -> tuple[_Model, RunCheckpoint]:
    model = _Model()
    return model, RunCheckpoint(str(directory), {"model": model}, keep=keep)


def _saved(directory, steps=(2, 4)) -> str:
    """A checkpoint directory with one checkpoint at each of `steps`."""
    model, run = _run(directory)
    for step in steps:
        model.advance(step - int(model.step.numpy()))
        run.save()
    return str(directory)


def _data(directory, step: int) -> str:
    return os.path.join(directory, f"ckpt-{step}.data-00000-of-00001")


def _random_bytes(directory, step):
    path = _data(directory, step)
    size = os.path.getsize(path)
    with open(path, "wb") as f:
        f.write(np.random.default_rng(0).bytes(size))


def _truncate(directory, step):
    os.truncate(_data(directory, step), 1000)


def _empty_index(directory, step):
    open(os.path.join(directory, f"ckpt-{step}.index"), "w").close()


def _no_data(directory, step):
    os.remove(_data(directory, step))


DAMAGES = [_random_bytes, _truncate, _empty_index, _no_data]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__.strip("_"))
def test_unreadable_newest_is_set_aside_and_the_next_save_replaces_it(tmp_path, capsys, damage):
    directory = _saved(tmp_path / "ckpt")
    damage(directory, 4)
    assert ckpt.unreadable(os.path.join(directory, "ckpt-4")) is not None

    model, run = _run(directory)
    assert run.restore_latest() == 2
    assert float(model.weight[0]) == 2.0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: checkpoint ckpt-4 cannot be read")
    assert "set aside as ckpt-4.corrupt" in err
    assert os.path.isdir(os.path.join(directory, "ckpt-4.corrupt"))
    assert ckpt.checkpoints_on_disk(directory) == [os.path.join(directory, "ckpt-2")]
    assert tf.train.latest_checkpoint(directory).endswith("ckpt-2")

    model.advance(2)
    path = run.save()
    assert path.endswith("ckpt-4") and ckpt.unreadable(path) is None
    assert tf.train.latest_checkpoint(directory) == path
    assert [os.path.basename(p) for p in ckpt.checkpoints_on_disk(directory)] == [
        "ckpt-4",
        "ckpt-2",
    ]
    assert ckpt.newest_readable(directory) == (path, None)


def test_every_checkpoint_unreadable_starts_over(tmp_path, capsys):
    directory = _saved(tmp_path / "ckpt")
    _truncate(directory, 4)
    _truncate(directory, 2)
    _, run = _run(directory)
    assert run.restore_latest() == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and "starting at step 0" in lines[-1], lines
    assert ckpt.checkpoints_on_disk(directory) == []
    assert not os.path.exists(os.path.join(directory, "checkpoint"))


def test_a_checkpoint_that_does_not_fit_is_a_usage_error_and_stays(tmp_path):
    directory = str(tmp_path / "ckpt")
    other = tf.Module()
    other.step = tf.Variable(3, dtype=tf.int64)
    other.weight = tf.Variable(np.zeros(7, "float32"))  # another shape
    RunCheckpoint(directory, {"model": other}).save()
    _, run = _run(directory)
    with pytest.raises(UsageError, match="fits this model"):
        run.restore_latest()
    assert [os.path.basename(p) for p in ckpt.checkpoints_on_disk(directory)] == ["ckpt-3"]


@pytest.mark.parametrize(
    "state",
    ["", "garbage {{{", 'all_model_checkpoint_paths: "ckpt-2"\n', None, "no timestamps"],
    ids=["empty", "garbage", "no-latest", "missing", "no-timestamps"],
)
def test_a_broken_state_file_does_not_hide_the_checkpoints(tmp_path, capsys, state):
    directory = _saved(tmp_path / "ckpt")
    path = os.path.join(directory, "checkpoint")
    if state is None:
        os.remove(path)
    elif state == "no timestamps":  # as `tf.train.update_checkpoint_state` writes it
        text = 'model_checkpoint_path: "ckpt-4"\n'
        text += 'all_model_checkpoint_paths: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-4"\n'
        with open(path, "w") as f:
            f.write(text)
    else:
        with open(path, "w") as f:
            f.write(state)
    model, run = _run(directory)
    assert run.restore_latest() == 4
    assert float(model.weight[0]) == 4.0
    err = capsys.readouterr().err
    if state in ("", "garbage {{{", 'all_model_checkpoint_paths: "ckpt-2"\n'):
        assert err.count("\n") == 1 and "set aside as checkpoint.corrupt" in err, err
    else:
        assert err == ""
    assert tf.train.latest_checkpoint(directory).endswith("ckpt-4")
    assert [os.path.basename(p) for p in run.manager.checkpoints] == ["ckpt-2", "ckpt-4"]


def test_staging_left_by_a_killed_save_is_removed(tmp_path):
    directory = _saved(tmp_path / "ckpt")
    os.makedirs(os.path.join(directory, "ckpt-6_temp"))
    _, run = _run(directory)
    assert run.restore_latest() == 4
    assert not os.path.exists(os.path.join(directory, "ckpt-6_temp"))


@pytest.fixture
def disk_full(monkeypatch):
    """Makes checkpoint writes fail as on a full disk: the shard's staging directory and a
    partial data file are created, then the write op raises `ResourceExhaustedError`."""

    def save_v2(prefix, tensor_names, shape_and_slices, tensors, name=None):
        del tensor_names, shape_and_slices, tensors, name
        prefix = prefix.numpy().decode()
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        with open(prefix + ".data-00000-of-00001.tempstate1", "wb") as f:
            f.write(b"\0" * 100)
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{prefix}.data-00000-of-00001.tempstate1; No space left on device"
        )

    monkeypatch.setattr(io_ops, "save_v2", save_v2)


def test_a_save_on_a_full_disk_is_one_line_and_leaves_the_last_good_checkpoint(tmp_path, request):
    directory = _saved(tmp_path / "ckpt")
    before = sorted(os.listdir(directory))
    model, run = _run(directory)
    assert run.restore_latest() == 4
    model.advance(2)
    request.getfixturevalue("disk_full")
    with pytest.raises(CheckpointIOError) as caught:
        run.save()
    message = str(caught.value)
    assert "\n" not in message
    assert "ckpt-6" in message and "No space left on device" in message
    assert "ckpt-4 is kept" in message
    assert sorted(os.listdir(directory)) == before  # no ckpt-6_temp, no ckpt-6 files
    assert tf.train.latest_checkpoint(directory).endswith("ckpt-4")


def test_a_checkpoint_that_cannot_be_moved_aside_is_an_io_error(tmp_path, monkeypatch):
    directory = _saved(tmp_path / "ckpt")
    _truncate(directory, 4)

    def rename(source, target, overwrite=False):
        raise tf.errors.PermissionDeniedError(None, None, f"{source}; Permission denied")

    monkeypatch.setattr(tf.io.gfile, "rename", rename)
    _, run = _run(directory)
    with pytest.raises(CheckpointIOError, match=r"cannot tidy the checkpoints in .*Permission"):
        run.restore_latest()
