"""Atomic writes leave complete, normally readable files and no temporaries."""

import json
import os
import stat

import pytest

from zoo.errors import UsageError
from zoo.io import atomic_write_json, atomic_write_text, read_json


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
