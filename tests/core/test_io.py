"""Atomic writes leave complete, normally readable files and no temporaries."""

import json
import os
import stat

import pytest

from zoo.errors import UsageError
from zoo.io import atomic_write_json, atomic_write_text, read_json, remove_temporaries
from zoo.run import remove_partial_writes


def test_atomic_write_is_complete_and_readable_by_others(tmp_path):
    previous = os.umask(0o022)
    try:
        path = tmp_path / "sub" / "config.json"
        atomic_write_json(str(path), {"b": 1, "a": [1, 2]})
        assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1}
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
        atomic_write_text(str(path), "replaced\n")
        assert path.read_text() == "replaced\n"
        assert [p.name for p in path.parent.iterdir()] == ["config.json"]
    finally:
        os.umask(previous)


def test_read_json_of_a_corrupt_file_is_a_usage_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(UsageError, match="cannot read"):
        read_json(str(path))


def test_read_json_of_a_too_deeply_nested_file_is_a_usage_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(UsageError, match="nested too deeply"):
        read_json(str(path))


def test_remove_temporaries_removes_what_killed_writers_left_and_nothing_else(tmp_path):
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / ".tmp-k1ll3d00.png").write_bytes(b"half a png")
    (tmp_path / "samples" / "step_00000002.png").write_bytes(b"png")
    (tmp_path / "checkpoints" / "ckpt-4_temp").mkdir(parents=True)
    (tmp_path / "checkpoints" / "ckpt-4_temp" / "part-00000-of-00001.index").write_bytes(b"")
    (tmp_path / "checkpoints" / "ckpt-2.index").write_bytes(b"")
    (tmp_path / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-2"')
    (tmp_path / "checkpoints" / f"checkpoint.tmp{'0a' * 16}").write_text("")
    (tmp_path / "checkpoints" / "ckpt-4.index.tempstate123456789").write_bytes(b"")
    (tmp_path / ".tmp-c0nf1g_x").write_text("{")
    (tmp_path / ".tmp-123@vm-7-abc.tflite").write_bytes(b"")  # a live export's staging
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / ".tmp-live.png").write_bytes(b"")  # tools take no lock: not ours
    for name in ("config.json", ".lock", "metrics.jsonl"):
        (tmp_path / name).write_text("")

    assert remove_temporaries(str(tmp_path / "nowhere")) == []
    removed = remove_partial_writes(str(tmp_path))
    assert sorted(os.path.relpath(p, tmp_path) for p in removed) == [
        ".tmp-c0nf1g_x",
        os.path.join("checkpoints", f"checkpoint.tmp{'0a' * 16}"),
        os.path.join("checkpoints", "ckpt-4.index.tempstate123456789"),
        os.path.join("checkpoints", "ckpt-4_temp"),
        os.path.join("samples", ".tmp-k1ll3d00.png"),
    ]
    remaining = sorted(
        os.path.relpath(os.path.join(root, name), tmp_path)
        for root, _, files in os.walk(tmp_path)
        for name in files
    )
    assert remaining == [
        ".lock",
        ".tmp-123@vm-7-abc.tflite",
        os.path.join("checkpoints", "checkpoint"),
        os.path.join("checkpoints", "ckpt-2.index"),
        "config.json",
        "metrics.jsonl",
        os.path.join("samples", "step_00000002.png"),
        os.path.join("tools", ".tmp-live.png"),
    ]


def test_remove_partial_writes_covers_every_phase(tmp_path):
    (tmp_path / "stage2" / "samples").mkdir(parents=True)
    (tmp_path / "stage2" / "samples" / ".tmp-abcdefgh.png").write_bytes(b"")
    (tmp_path / "stage2" / "checkpoints" / "ckpt-6_temp").mkdir(parents=True)
    assert sorted(os.path.relpath(p, tmp_path) for p in remove_partial_writes(str(tmp_path))) == [
        os.path.join("stage2", "checkpoints", "ckpt-6_temp"),
        os.path.join("stage2", "samples", ".tmp-abcdefgh.png"),
    ]
