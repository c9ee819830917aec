"""A tiny preset built once per session (tiny GAN on ring8, a few steps) into a temporary
presets root, which `GANZOO_PRESETS` points at for the tests that use it."""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

from tests.families import TINY

TINY_NAME = "tiny_gan"
TRAIN_STEPS = 6


def tiny_table():
    from zoo.presets.recipes import Preset

    dataset, overrides = TINY["gan"]
    return {
        TINY_NAME: Preset(
            TINY_NAME,
            "gan",
            dataset,
            "tiny GAN for tests",
            config=overrides,
            run={"train_steps": TRAIN_STEPS, "batch_size": 16, "seed": 3},
            eval_samples=200,
            weights_dtype="float16",
            headline=("modes_covered",),
        )
    }


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> pathlib.Path:
    """A presets root holding the built tiny preset (do not modify: copy with `copy_root`)."""
    from zoo.presets.build import build

    root = tmp_path_factory.mktemp("presets")
    build(TINY_NAME, str(root), log=lambda message: None, table=tiny_table())
    return root


@pytest.fixture
def presets_env(tiny_root, monkeypatch) -> pathlib.Path:
    """`GANZOO_PRESETS` = the tiny root for this test."""
    monkeypatch.setenv("GANZOO_PRESETS", str(tiny_root))
    return tiny_root


def copy_root(tiny_root: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    """A copy of the tiny root that a test may break."""
    shutil.copytree(tiny_root, target)
    return target


def preset_files(root: pathlib.Path) -> list[str]:
    return sorted(os.listdir(root / TINY_NAME))
