"""bench/quality_table.py: the one command behind README's quality table (no training here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.families import REPO

sys.path.insert(0, os.path.join(REPO, "bench"))
import quality_table


@pytest.fixture(autouse=True)
def _flags(tmp_path):
    quality_table.FLAGS(["quality_table", f"--work_dir={tmp_path}"])
    yield
    quality_table.FLAGS.unparse_flags()


def _result(code: int, stdout: str) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess([], code, stdout=stdout, stderr="a warning\n")


def test_last_figures_reads_the_last_line_only():
    output = "progress fd=99\nzoo dcgan: fd=15.9 x\n\nfd=3.2 fd_ratio=0.41 kid=0.1 =junk word\n"
    assert quality_table.last_figures(output) == {"fd": "3.2", "fd_ratio": "0.41", "kid": "0.1"}
    assert quality_table.last_figures("") == {}


def test_a_row_reports_its_figures_a_failure_or_what_its_bench_did_not_print(tmp_path):
    (row,) = quality_table.selected(["gan_ring8"])
    good = "training...\nmodes_covered=8 high_quality_fraction=0.98 steps=8000\n"
    cell, seconds = quality_table.run_row(row, lambda *a, **k: _result(0, good))
    assert cell == "modes_covered 8, high_quality_fraction 0.98" and seconds >= 0
    assert (tmp_path / "gan_ring8.log").read_text() == good + "a warning\n"

    cell, _ = quality_table.run_row(row, lambda *a, **k: _result(3, good))
    assert cell == f"failed (exit 3, see {tmp_path / 'gan_ring8.log'})"
    cell, _ = quality_table.run_row(row, lambda *a, **k: _result(0, "modes_covered=8\n"))
    assert cell.startswith("no high_quality_fraction in the last line")


def test_the_table_has_one_row_per_family_with_its_command():
    rows = quality_table.selected(["cgan", "gan_ring8"])
    text = quality_table.table(rows, {"cgan": ("class_accuracy 0.93", 90.0), "gan_ring8": ("x", 6)})
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| family | command | before | now | goal")
    assert "`python bench/conditional_quality.py --model=cgan` |" in lines[2]
    assert lines[2].endswith("| class_accuracy 0.93 | class accuracy ≥ 0.90 | 1.5 |")


def test_unknown_rows_are_refused():
    with pytest.raises(quality_table.app.UsageError, match="unknown rows"):
        quality_table.selected(["dcgan", "nope"])


def test_every_row_runs_a_bench_script_with_flags_it_defines():
    for row in quality_table.ROWS:
        path = os.path.join(REPO, "bench", row.script)
        with open(path) as f:
            source = f.read()
        defined = set(re.findall(r'flags\.DEFINE_\w+\(\s*"(\w+)"', source))
        for arg in row.args:
            name = arg.removeprefix("--").split("=")[0]
            assert name in defined, (row.name, name)
        assert "work_dir" in defined, row.name
