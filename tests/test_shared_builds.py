"""The suite's build-once fixtures (tests/shared_builds.py): one build for concurrent workers."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from tests.shared_builds import build_in


def _slow_build(directory):
    with open(directory.parent / "builds.log", "a") as log:
        log.write("built\n")
    time.sleep(0.5)  # long enough for the other process to ask meanwhile
    (directory / "result").write_text("ok")


def _ask(root, results):
    directory = build_in(root, "thing", _slow_build)
    results.put((directory / "result").read_text())


def test_concurrent_requests_build_once_and_all_see_the_result(tmp_path):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_ask, args=(tmp_path, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert sorted(results.get(timeout=5) for _ in workers) == ["ok"] * 3
    assert (tmp_path / "builds.log").read_text() == "built\n"
    assert build_in(tmp_path, "thing", _slow_build) == tmp_path / "thing"
    assert (tmp_path / "builds.log").read_text() == "built\n"  # reused, not rebuilt


def test_a_failed_build_is_retried_from_scratch(tmp_path):
    def failing(directory):
        (directory / "partial").write_text("half")
        raise RuntimeError("broken build")

    with pytest.raises(RuntimeError, match="broken build"):
        build_in(tmp_path, "thing", failing)
    directory = build_in(tmp_path, "thing", _slow_build)
    assert sorted(p.name for p in directory.iterdir()) == ["result"]
