"""Shared set-up of the core tests: each starts and ends under the float32 precision policy, so a
test that builds a model under mixed precision cannot leak its policy into the next one."""

from __future__ import annotations

import pytest

from zoo.core import distribute


@pytest.fixture(autouse=True)
def _float32():
    distribute.set_precision("float32")
    yield
    distribute.set_precision("float32")
