"""Fixtures of the demo tests: what the browser checks need, and tiny exports of every family.

The browser tests need Debian's `chromium`, Node.js and `npm ci` in demo/web. Without them they
skip, saying what is missing, unless `GANZOO_REQUIRE_DEMO=1` (set by .ci/run, which installs
them): then they fail.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.families import REPO, TINY, run_command, run_export
from tests.shared_builds import build_once, tiny_export, tiny_stage2_run

WEB_DIR = os.path.join(REPO, "demo", "web")
REQUIRED = os.environ.get("GANZOO_REQUIRE_DEMO") == "1"


def missing_demo_tools() -> list[str]:
    """What the browser tests need and this machine lacks (empty when all is there)."""
    from zoo.demo import check
    from zoo.errors import UsageError

    missing = []
    try:
        check.find_browser()
    except UsageError:
        missing.append("chromium (apt-get install -y chromium)")
    if not shutil.which("node"):
        missing.append("node (apt-get install -y nodejs npm)")
    for package in ("puppeteer-core", "@litertjs/core", "esbuild"):
        if not os.path.isdir(os.path.join(WEB_DIR, "node_modules", package)):
            missing.append(f"{package} (cd demo/web && npm ci)")
            break
    return missing


@pytest.fixture(scope="session")
def demo_tools() -> None:
    """Skips (or, with GANZOO_REQUIRE_DEMO=1, fails) when the browser tests cannot run here."""
    missing = missing_demo_tools()
    if missing:
        message = f"the demo's browser tests need: {', '.join(missing)}"
        if REQUIRED:
            pytest.fail(f"{message} (GANZOO_REQUIRE_DEMO=1)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def built_page() -> str:
    """`demo/web/dist`, built if needed (needs Node.js and `npm ci`, not Chromium); skips (or,
    with GANZOO_REQUIRE_DEMO=1, fails) when it cannot be built."""
    from zoo.demo import server
    from zoo.errors import UsageError

    try:
        return server.ensure_built()
    except UsageError as err:
        if REQUIRED:
            pytest.fail(f"{err} (GANZOO_REQUIRE_DEMO=1)")
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def node() -> str:
    """Node.js for the page's modules (tokenizer, manifest rules, batch patch)."""
    path = shutil.which("node")
    if not path:
        if REQUIRED:
            pytest.fail("node is missing (GANZOO_REQUIRE_DEMO=1)")
        pytest.skip("the page's JavaScript tests need node (apt-get install -y nodejs)")
    return path


def run_node_module(node: str, code: str, payload: object) -> object:
    """Runs ES-module `code` (which reads the JSON `input` and calls `output(value)`) in node."""
    script = (
        "import * as nodeFs from 'node:fs';\n"
        "const input = JSON.parse(nodeFs.readFileSync(0, 'utf8'));\n"
        "const output = (value) => process.stdout.write(JSON.stringify(value));\n" + code
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        input=json.dumps(payload),
        cwd=WEB_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def run_demo(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Runs `python -m zoo.demo ARGS` from the repository root."""
    return run_command([sys.executable, "-m", "zoo.demo", *args], timeout=timeout)


@dataclasses.dataclass
class DemoExport:
    family: str
    export_dir: pathlib.Path
    manifest: dict


FAMILIES = sorted(TINY)


@pytest.fixture(scope="session")
def demo_export(tmp_path_factory):
    """family -> the session's tiny export of its tiny run (`tests.shared_builds.tiny_export`:
    every format, as `python -m export` writes it); "stackgan_stage2" is the StackGAN run after
    phase 2 (`tiny_stage2_run`: both stages' images), exported to TFLite float32 here once per
    session for all workers."""

    def build_stage2(export_dir: pathlib.Path) -> None:
        run_dir = tiny_stage2_run(tmp_path_factory)
        result = run_export(
            f"--model_dir={run_dir}", f"--export_dir={export_dir}", "--formats=float32"
        )
        assert result.returncode == 0, result.stderr[-3000:]

    def make(key: str) -> DemoExport:
        if key == "stackgan_stage2":
            family, directory = (
                "stackgan",
                build_once(tmp_path_factory, "demo-stackgan-stage2", build_stage2),
            )
        else:
            family, directory = key, tiny_export(tmp_path_factory, key)
        manifest = json.loads((directory / f"{family}.json").read_text())
        return DemoExport(family, directory, manifest)

    return make
