"""Every family's quality at its bench budget, in one command: the table README's quality
section is built from.

    python bench/quality_table.py                       # every row, about 1.5 h on 2 CPU cores
    python bench/quality_table.py --only=cgan,gan_ring8 # some rows
    python bench/quality_table.py --dry_run             # the commands it would run

Each row runs one bench script (bench/quality.py, bench/conditional_quality.py,
bench/stackgan_quality.py) with the family's defaults, as a subprocess whose output goes to
`--work_dir/<row>.log`, and reads the `key=value` figures of its last line. The table gives,
per row: the command, the figures before this work (issue #17's starting point, as README and
the benches measured them), the figures now, the issue's goal and the wall time. A row whose
bench fails says so and where its log is; the other rows go on.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable

from absl import app, flags

BENCH = os.path.dirname(os.path.abspath(__file__))

FLAGS = flags.FLAGS
flags.DEFINE_list("only", [], "Rows to run (default: all): " + ", ".join(()))
flags.DEFINE_string("work_dir", "/tmp/ganzoo_quality_table", "Run directories and logs.")
flags.DEFINE_boolean("dry_run", False, "Print the commands, run nothing.")


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    script: str
    args: tuple[str, ...]
    keys: tuple[str, ...]  # figures of the last line shown, in this order
    before: str
    goal: str


ROWS = (
    Row(
        "dcgan",
        "quality.py",
        ("--model=dcgan",),
        ("fd", "ref_fd", "fd_ratio", "kid", "class_min", "class_max"),
        "FD 14.74, KID 0.375; about 2x the reference's FD",
        "fd_ratio ≤ 0.5, every class 5-15%",
    ),
    Row(
        "cgan",
        "conditional_quality.py",
        ("--model=cgan",),
        ("class_accuracy", "real_accuracy", "fd", "precision", "recall", "min_class_recall"),
        "class accuracy 0.817 (concat), 0.295 (projection)",
        "class accuracy ≥ 0.90",
    ),
    Row(
        "gan_int_cls",
        "conditional_quality.py",
        (
            "--model=gan_int_cls",
            "--variants=gan_int_cls",
            "--train_steps=1500",
            "--eval_samples=3000",
        ),
        (
            "gan_int_cls_class",
            "gan_int_cls_class_only",
            "gan_int_cls_brightness",
            "gan_int_cls_size",
        ),
        "class 0.474, brightness 0.937, size 0.922",
        "class ≥ 0.85, class only ≥ 0.92, brightness and size ≥ 0.93",
    ),
    Row(
        "stackgan",
        "stackgan_quality.py",
        (),
        ("stage1_class_accuracy", "stage1_fd", "stage2_class_accuracy", "stage2_fd"),
        "Stage-I 0.513 (FD 24.5), Stage-II 0.548 (FD 23.3)",
        "Stage-II class ≥ 0.85, FD clearly below Stage-I's",
    ),
    Row(
        "cyclegan",
        "quality.py",
        ("--model=cyclegan",),
        (
            "a_to_b_translation_accuracy",
            "b_to_a_translation_accuracy",
            "a_to_b_cycle_error",
            "b_to_a_cycle_error",
        ),
        "0.528 / 0.255, cycle 0.166 / 0.121 (400 steps)",
        "≥ 0.90 both ways, cycle ≤ 0.05, ≤ 20 min",
    ),
    Row(
        "gan_ring8",
        "quality.py",
        ("--model=gan", "--dataset=ring8"),
        ("modes_covered", "high_quality_fraction"),
        "8 / 8, 98.1%",
        "8 / 8, ≥ 90%",
    ),
    Row(
        "gan_grid25",
        "quality.py",
        ("--model=gan", "--dataset=grid25"),
        ("modes_covered", "high_quality_fraction"),
        "20 / 25, 90.0%",
        "25 / 25, ≥ 90%",
    ),
)


def last_figures(output: str) -> dict[str, str]:
    """The `key=value` pairs of the last non-empty line of a bench's output."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        return {}
    return dict(item.split("=", 1) for item in lines[-1].split() if "=" in item and item[0] != "=")


def command_of(row: Row) -> list[str]:
    return [
        sys.executable,
        os.path.join(BENCH, row.script),
        *row.args,
        f"--work_dir={os.path.join(FLAGS.work_dir, row.name)}",
    ]


def shown(row: Row) -> str:
    return " ".join(["python", f"bench/{row.script}", *row.args])


def run_row(row: Row, run: Callable[..., subprocess.CompletedProcess]) -> tuple[str, float]:
    """(the "now" cell, seconds) of one row: its figures, or why it has none."""
    log = os.path.join(FLAGS.work_dir, f"{row.name}.log")
    start = time.perf_counter()
    result = run(command_of(row), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    with open(log, "w") as f:
        f.write(result.stdout + result.stderr)
    if result.returncode != 0:
        return f"failed (exit {result.returncode}, see {log})", seconds
    figures = last_figures(result.stdout)
    missing = [k for k in row.keys if k not in figures]
    if missing:
        return f"no {', '.join(missing)} in the last line (see {log})", seconds
    return ", ".join(f"{k} {figures[k]}" for k in row.keys), seconds


def table(rows: list[Row], cells: dict[str, tuple[str, float]]) -> str:
    lines = [
        "| family | command | before | now | goal | minutes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        now, seconds = cells[row.name]
        lines.append(
            f"| {row.name} | `{shown(row)}` | {row.before} | {now} | {row.goal} "
            f"| {seconds / 60:.1f} |"
        )
    return "\n".join(lines)


def selected(only: list[str]) -> list[Row]:
    names = [row.name for row in ROWS]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise app.UsageError(f"--only: unknown rows {unknown}; rows are {', '.join(names)}")
    return [row for row in ROWS if not only or row.name in only]


def main(argv: list[str]) -> None:
    del argv
    rows = selected(FLAGS.only)
    if FLAGS.dry_run:
        for row in rows:
            print(" ".join(command_of(row)))
        return
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    cells = {}
    for row in rows:
        print(f"{row.name}: {shown(row)}", flush=True)
        cells[row.name] = run_row(row, subprocess.run)
        print(f"{row.name}: {cells[row.name][0]} ({cells[row.name][1] / 60:.1f} min)", flush=True)
    print(table(rows, cells))


flags.FLAGS["only"].help = "Rows to run (default: all): " + ", ".join(r.name for r in ROWS)

if __name__ == "__main__":
    app.run(main)
