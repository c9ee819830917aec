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

from tests.families import REPO, TINY, run_python, tiny_flags
from tests.shared_builds import build_once

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
    return subprocess.run(
        [sys.executable, "-m", "zoo.demo", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclasses.dataclass
class DemoExport:
    family: str
    export_dir: pathlib.Path
    manifest: dict


FAMILIES = sorted(TINY)
STAGED = "stackgan"  # trained in two phases; phase 2 adds Stage-II

# One interpreter trains every family (1 step, through train_main's own main) and exports it
# (export_lib, the library behind `python -m export`): one TensorFlow start-up instead of two per
# family. A family that fails is reported in its own test; the others go on.
_TRAIN_AND_EXPORT = """
import json, sys, traceback
from absl import flags
import keras
import train_main
from export import export_lib
status = {{}}
for family, flag_list, run_dir, export_dir, formats in {jobs!r}:
    try:
        flags.FLAGS.unparse_flags()
        argv = ["train_main", *flag_list]
        flags.FLAGS(argv)
        code = train_main.main(argv[:1])
        if code:
            raise RuntimeError(f"train_main exited with {{code}}")
        export_lib.export(run_dir, export_dir, formats=formats)
        status[family] = "ok"
    except Exception:
        status[family] = traceback.format_exc()[-3000:]
    keras.backend.clear_session()
print(json.dumps(status))
"""


@pytest.fixture(scope="session")
def demo_export(tmp_path_factory):
    """family -> a tiny run (1 step, batch 8) exported to TFLite float32 (dcgan: and float16).

    Every family in `FAMILIES` is trained and exported on the first request, in one process, once
    per session for all workers (`tests.shared_builds`); "stackgan_stage2" is the StackGAN run
    after one step of phase 2 (both stages' images).
    """

    def build(root: pathlib.Path) -> None:
        jobs = []
        for family in FAMILIES:
            run_dir, export_dir = root / f"run-{family}", root / f"export-{family}"
            formats = ["float32", "float16"] if family == "dcgan" else ["float32"]
            flags = [
                *tiny_flags(family),
                f"--model_dir={run_dir}",
                "--train_steps=1",
                "--batch_size=8",
            ]
            jobs.append((family, flags, str(run_dir), str(export_dir), formats))
            if family == STAGED:  # then phase 2 in the same run: Stage-I and Stage-II images
                export_dir = root / f"export-{family}-stage2"
                jobs.append(
                    (
                        f"{family}_stage2",
                        [*flags, "--stage=2"],
                        str(run_dir),
                        str(export_dir),
                        formats,
                    )
                )
        for _, _, run_dir, export_dir, _ in jobs:
            os.makedirs(run_dir, exist_ok=True)
            os.makedirs(export_dir, exist_ok=True)
        result = run_python(_TRAIN_AND_EXPORT.format(jobs=jobs), timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        status = json.loads(result.stdout.strip().splitlines()[-1])
        statuses = {key: status.get(key, "not run") for key, *_ in jobs}
        (root / "status.json").write_text(json.dumps(statuses))

    def make(key: str) -> DemoExport:
        root = build_once(tmp_path_factory, "demo", build)
        status = json.loads((root / "status.json").read_text())[key]
        assert status == "ok", f"{key} did not train or export:\n{status}"
        family = key.removesuffix("_stage2")
        directory = root / f"export-{key.replace('_stage2', '-stage2')}"
        manifest = json.loads((directory / f"{family}.json").read_text())
        return DemoExport(family, directory, manifest)

    return make
