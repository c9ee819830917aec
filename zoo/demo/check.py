"""`--check`: the page in headless Chromium against the same inputs through `ai_edge_litert`.

The batch is fixed in the URL (`z` as base64 float32, `label`, `caption`); image-to-image
models translate the served test images. The page publishes the inputs and outputs of each run
(`window.__ganzoo`), `demo/web/check.mjs` (puppeteer-core driving Debian's chromium) saves them
with a screenshot, and this module runs the same TFLite files in LiteRT from Python on the
inputs it intended, so the difference covers the page's decoding, tokenising and running.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import numpy as np

from zoo.core import latent
from zoo.demo import manifest as manifest_lib
from zoo.demo import samples as samples_lib
from zoo.demo import server
from zoo.errors import UsageError

TOLERANCE = 1e-3
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MAX_CLASS_ROWS = 10


class PageError(RuntimeError):
    """The page did not load, did not finish, or failed while running (not bad input)."""


@dataclasses.dataclass
class Run:
    """One signature call of the check: `inputs`, or the `images` output of run `chained`."""

    id: str
    signature: str
    inputs: dict[str, np.ndarray]
    chained: str | None = None


def find_browser(explicit: str | None = None) -> str:
    """Path of the Chromium to drive: `explicit`, `$CHROMIUM`, or one on PATH.

    Raises:
      UsageError: none found (say how to install Debian's).
    """
    for candidate in (explicit, os.environ.get("CHROMIUM"), *BROWSERS):
        if candidate:
            path = shutil.which(candidate)
            if path:
                return path
    raise UsageError("--check needs Chromium: apt-get install -y chromium (or give --browser)")


def find_driver() -> tuple[str, str]:
    """(node, demo/web/check.mjs), or UsageError saying what to install."""
    node = shutil.which("node")
    if not node:
        raise UsageError("--check needs Node.js: apt-get install -y nodejs npm")
    if not os.path.isdir(os.path.join(server.WEB_DIR, "node_modules", "puppeteer-core")):
        raise UsageError(f"--check needs the page's npm packages: {server.BUILD_HINT}")
    return node, os.path.join(server.WEB_DIR, "check.mjs")


def default_caption(tokenizer: dict[str, Any]) -> str:
    """A caption from the vocabulary with capitals, punctuation and an unknown word, so the
    check exercises every step of the tokenizer rule."""
    skip = {tokenizer["pad_id"], tokenizer["oov_id"]}
    words = [w for i, w in enumerate(tokenizer["vocabulary"]) if i not in skip and w]
    if not words:
        return "Zzqx!"
    return f"{words[0].upper()}, {' '.join(words[1:4])}!!  zzqx-{words[-1]}"


def _b64url(array: np.ndarray) -> str:
    return base64.urlsafe_b64encode(array.astype("<f4").tobytes()).decode().rstrip("=")


def plan(
    described: manifest_lib.Described,
    *,
    seed: int,
    num: int | None,
    caption: str | None,
    images: dict[str, np.ndarray] | None,
) -> tuple[dict[str, str], list[Run]]:
    """The URL parameters of the fixed batch (put in the URL's fragment) and the runs the page
    is expected to make."""
    params: dict[str, str] = {"seed": str(seed)}
    d = described.latent_dim
    signature = described.signatures[0]
    if described.kind == "unconditional":
        image = described.outputs["images"][1]
        z = latent.sample_z(num or (16 if image else 128), d, seed)
        params["z"] = _b64url(z)
        return params, [Run("samples", signature, {"z": z})]
    if described.kind == "conditional":
        classes = min(len(described.class_names), MAX_CLASS_ROWS)
        labels = np.repeat(np.arange(classes, dtype=np.int32), num or 4)
        z = latent.sample_z(len(labels), d, seed)
        params["z"] = _b64url(z)
        params["label"] = ",".join(str(int(x)) for x in labels)
        return params, [Run("samples", signature, {"z": z, "label": labels})]
    if described.kind == "text":
        text = caption if caption is not None else default_caption(described.tokenizer)
        from zoo import cli

        cli.import_tensorflow_quietly()
        from zoo.text import Tokenizer  # the rule's Python side

        tokens = Tokenizer.from_json(described.tokenizer).tokenize_numpy([text])[0]
        z = latent.sample_z(num or 8, d, seed)
        params["z"] = _b64url(z)
        params["caption"] = text
        return params, [Run("samples", signature, {"z": z, "tokens": np.tile(tokens, (len(z), 1))})]
    assert images is not None
    runs = []
    for source, target in (("a", "b"), ("b", "a")):
        forward = f"{source}_to_{target}"
        runs.append(Run(forward, forward, {"images": images[source]}))
        runs.append(Run(f"{forward}_to_{source}", f"{target}_to_{source}", {}, chained=forward))
    return params, runs


def reference_outputs(
    described: manifest_lib.Described,
    export_dir: str,
    flavour: str,
    runs: list[Run],
    page: dict[str, Any],
) -> dict[str, dict[str, np.ndarray]]:
    """Each run's outputs from `ai_edge_litert` on the same TFLite files (resized to the batch).

    A chained run (the way back of a translation) is fed the page's own output of the run it
    follows, so each step is compared on identical inputs (an int8 model may differ by a
    quantisation step between runtimes, which a second step would amplify).
    """
    from ai_edge_litert.interpreter import Interpreter

    page_runs = {r["id"]: r for r in page.get("runs", [])}
    runners: dict[str, Any] = {}
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for run in runs:
        if run.signature not in runners:
            path = os.path.join(export_dir, described.files[flavour][run.signature])
            runners[run.signature] = Interpreter(model_path=path).get_signature_runner(
                run.signature
            )
        if run.chained is not None:
            previous = page_runs.get(run.chained, {}).get("outputs", {}).get("images")
            images = _decode(previous) if previous else outputs[run.chained]["images"]
            run.inputs = {"images": images}
        outputs[run.id] = {
            k: np.asarray(v) for k, v in runners[run.signature](**run.inputs).items()
        }
    return outputs


def _decode(tensor: dict[str, Any]) -> np.ndarray:
    dtype = {"float32": "<f4", "int32": "<i4"}[tensor["dtype"]]
    return np.frombuffer(base64.b64decode(tensor["data"]), dtype=dtype).reshape(tensor["shape"])


def _diff(page: np.ndarray, expected: np.ndarray) -> float:
    if page.shape != expected.shape:
        return float("inf")
    diff = np.abs(page.astype(np.float64) - expected.astype(np.float64))
    return float(diff.max()) if diff.size else 0.0


def compare(
    page: dict[str, Any], runs: list[Run], expected: dict[str, dict[str, np.ndarray]]
) -> tuple[float, list[str]]:
    """The largest absolute difference between the page's tensors (inputs and outputs) and
    Python's, with one line per run."""
    page_runs = {r["id"]: r for r in page.get("runs", [])}
    worst, lines = 0.0, []
    for run in runs:
        if run.id not in page_runs:
            lines.append(f"{run.id}: the page made no such run")
            worst = float("inf")
            continue
        published = page_runs[run.id]
        parts = []
        for kind, ours in (("inputs", run.inputs), ("outputs", expected[run.id])):
            for name, value in ours.items():
                theirs = published[kind].get(name)
                diff = float("inf") if theirs is None else _diff(_decode(theirs), value)
                worst = max(worst, diff)
                shape = "x".join(str(n) for n in np.shape(value))
                parts.append(f"{kind[:-1]} {name} [{shape}] {diff:.3g}")
        lines.append(
            f"{run.id} ({published['signature']}, {published['ms']:.1f} ms in the page): "
            f"max abs diff " + ", ".join(parts)
        )
    return worst, lines


def run_page(url: str, screenshot: str, *, browser: str, timeout: float = 90) -> dict[str, Any]:
    """Opens `url` in headless Chromium through check.mjs; returns what the page published.

    Raises:
      PageError: the browser or the page did not get to a final status.
    """
    node, script = find_driver()
    with tempfile.TemporaryDirectory(prefix="ganzoo-check-") as tmp:
        result_path = os.path.join(tmp, "result.json")
        url_path = os.path.join(tmp, "url.txt")
        with open(url_path, "w") as f:
            f.write(url)
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        process = subprocess.run(
            [
                node,
                script,
                f"--url-file={url_path}",
                f"--screenshot={os.path.abspath(screenshot)}",
                f"--result={result_path}",
                f"--browser={browser}",
                f"--timeout={timeout:g}",
            ],
            cwd=server.WEB_DIR,
            capture_output=True,
            text=True,
            timeout=timeout + 60,
        )
        if not os.path.exists(result_path):
            last = (process.stderr.strip() or process.stdout.strip() or "no output").splitlines()
            raise PageError(f"the browser did not run the page: {last[-1]}")
        with open(result_path) as f:
            page = json.load(f)
    if page.get("status") not in ("done", "ready", "error"):
        console = "; ".join(page.get("console", [])[-3:])
        raise PageError(f"{page.get('message', 'the page did not finish')} [{console}]")
    return page


def check(
    export_dir: str,
    *,
    name: str | None,
    flavour: str,
    screenshot: str,
    seed: int = 0,
    num: int | None = None,
    caption: str | None = None,
    samples_dir: str | None = None,
    browser: str | None = None,
    port: int = 0,
    timeout: float = 90,
    log: Callable[[str], None] = print,
) -> float:
    """Runs the check and returns the largest absolute difference (`max_abs_diff`).

    Raises:
      UsageError: bad input (export, flags, missing browser or packages), or the page reported
        the export as bad input.
      PageError: the page did not load or failed while running.
    """
    described_all = manifest_lib.load(export_dir, name)
    if len(described_all) > 1:
        names = ", ".join(d.name for d in described_all)
        raise UsageError(f"{export_dir} holds several models ({names}): give --name")
    described = described_all[0]
    if flavour not in described.flavours:
        raise UsageError(
            f"no {flavour} TFLite file for {described.name} "
            f"(it has: {', '.join(described.flavours)})"
        )
    browser_path = find_browser(browser)
    find_driver()
    dist = server.ensure_built()
    with tempfile.TemporaryDirectory(prefix="ganzoo-samples-") as tmp:
        images, index, served_samples = None, None, None
        if described.kind == "translation":
            if samples_dir:
                index, served_samples = samples_lib.index_folder(samples_dir), samples_dir
            else:
                index = samples_lib.write_dataset_samples(described, tmp)
                served_samples = tmp
            images = samples_lib.read_samples(served_samples, index, described.outputs["images"][0])
        params, runs = plan(described, seed=seed, num=num, caption=caption, images=images)
        query = urlencode({"model": described.name, "flavour": flavour, "check": "1"})
        fragment = urlencode(params)  # the batch: never sent to the server, any length
        with server.serving(
            export_dir, port=port, samples_dir=served_samples, samples_index=index, dist_dir=dist
        ) as base:
            url = f"{base}?{query}#{fragment}"
            shown = url if len(url) < 160 else url[:150] + "…"
            log(f"page: {shown}")
            page = run_page(url, screenshot, browser=browser_path, timeout=timeout)
    log(f"screenshot: {screenshot}")
    if page["status"] == "error":
        message = " ".join(str(page.get("message", "")).split())
        if page.get("kind") == "input":
            raise UsageError(f"the page: {message}")
        raise PageError(f"the page failed: {message}")
    from zoo import cli

    with cli.native_stderr_captured():  # LiteRT announces its XNNPACK delegate on stderr
        expected = reference_outputs(described, export_dir, flavour, runs, page)
    worst, lines = compare(page, runs, expected)
    log(
        f"{described.name} ({described.family}, {described.kind}), {flavour}: the page against "
        f"ai_edge_litert in Python"
    )
    for line in lines:
        log(f"  {line}")
    return worst
