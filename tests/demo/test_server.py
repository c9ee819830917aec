"""The demo's web server on its own (no browser, no Node.js): what it answers to hostile or
broken requests, and that what it serves names no paths of the machine."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from tests.demo.conftest import run_demo, run_node_module
from tests.demo.test_demo import _manifest_cases, _valid_manifest
from zoo.demo import manifest as manifest_lib
from zoo.demo import samples, server
from zoo.errors import UsageError

DEEP_JSON = "[" * 200_000 + "]" * 200_000
SECRET = "/home/someone/secret"


def machine_manifest() -> dict:
    """A valid manifest carrying what an export writes beside what the page reads."""
    manifest = _valid_manifest()
    manifest.update(
        name="m",
        checkpoint=f"{SECRET}/run/checkpoints/ckpt-1",
        trained_with={"dataset": f"folder:{SECRET}/images", "seed": 0},
        data={"name": f"folder:{SECRET}/images", "class_names": ["a", "b"]},
        model_config={"num_classes": 2, "text_encoder_dir": f"{SECRET}/encoder"},
        saved_model={"path": "m/1"},
    )
    return manifest


@contextlib.contextmanager
def serve(tmp_path) -> Iterator[tuple[str, int]]:
    """(host, port) of a server over an export holding m.json, m's TFLite files and deep.json."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text('<script src="app.js"></script>')
    export = tmp_path / "export"
    export.mkdir()
    (export / "m.json").write_text(json.dumps(machine_manifest()))
    for flavour in ("float32", "int8"):
        (export / f"m.{flavour}.tflite").write_bytes(b"\0\0\0\0TFL3")
    (export / "deep.json").write_text(DEEP_JSON)
    with server.serving(str(export), dist_dir=str(dist)) as base:
        host, port = base.removeprefix("http://").rstrip("/").split(":")
        yield host, int(port)


@pytest.fixture
def site(tmp_path):
    with serve(tmp_path) as address:
        yield address


def get(site, path: str, host: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(*site, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        if host != "":
            connection.putheader("Host", host or f"127.0.0.1:{site[1]}")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/%00", "/export/m%00.json", "/samples/%00", "/a%00b.js"])
def test_a_null_byte_in_the_path_is_answered_400(site, path):
    assert get(site, path)[0] == 400
    assert get(site, "/")[0] == 200  # the server lives on


def test_only_local_host_names_with_the_servers_port_are_answered(site):
    port = site[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        assert get(site, "/", host) == (200, b'<script src="app.js"></script>'), host
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", "localhost", ""):
        status, body = get(site, "/export/m.json", host)
        assert status == 421 and SECRET.encode() not in body, host


def test_an_idle_connection_is_closed(tmp_path, monkeypatch):
    monkeypatch.setattr(server, "IDLE_TIMEOUT_SECONDS", 0.5)
    with serve(tmp_path) as site, socket.create_connection(site, timeout=10) as idle:
        start = time.monotonic()
        assert idle.recv(1024) == b""  # closed by the server, not by the 10 s of the test
        assert time.monotonic() - start < 5


def test_served_manifest_is_what_the_page_reads_and_no_path(site):
    status, body = get(site, "/export/m.json")
    assert status == 200
    assert SECRET.encode() not in body and b"checkpoint" not in body
    served = json.loads(body)
    assert served == manifest_lib.for_page(machine_manifest())
    assert served["data"] == {"class_names": ["a", "b"]}
    assert served["model_config"] == {"num_classes": 2}


def _described(manifest, name="m"):
    try:
        described = manifest_lib.describe(manifest, name)
    except UsageError as err:
        return str(err)
    return {k: v for k, v in dataclasses.asdict(described).items() if k != "manifest"}


@pytest.mark.parametrize("case", sorted(_manifest_cases()))
def test_the_page_sees_the_same_in_the_served_manifest(case):
    manifest = _manifest_cases()[case]
    if isinstance(manifest, dict):
        manifest = {**manifest, "checkpoint": f"{SECRET}/ckpt-1", "extra": {"path": SECRET}}
    assert _described(manifest_lib.for_page(manifest)) == _described(manifest)


def test_a_deeply_nested_manifest_is_listed_and_served_as_it_is(site):
    status, body = get(site, "/api/models.json")
    assert status == 200
    assert json.loads(body) == [{"name": "deep", "family": None}, {"name": "m", "family": "dcgan"}]
    assert get(site, "/export/deep.json") == (200, DEEP_JSON.encode())


def test_a_deeply_nested_manifest_is_one_line_and_exit_code_2(tmp_path):
    (tmp_path / "m.json").write_text(DEEP_JSON)
    result = run_demo(f"--export_dir={tmp_path}", timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "m.json" in result.stderr and "Traceback" not in result.stderr


def test_samples_index_names_no_directories(tmp_path):
    folder = tmp_path / "my" / "shoes"
    for key in ("a", "b"):
        (folder / key).mkdir(parents=True)
        Image.new("L", (4, 4)).save(folder / key / "0.png")
    index = samples.index_folder(str(folder) + "/")
    assert index["source"] == "shoes"
    assert (
        samples._without_directories("folder:/x/y[a]|folder:/x/z/[b]") == "folder:y[a]|folder:z[b]"
    )


def test_read_samples_scales_16_bit_pngs(tmp_path):
    ramp = (np.arange(16).reshape(4, 4) * 4000).astype(np.uint16)
    for key in ("a", "b"):
        (tmp_path / key).mkdir()
        Image.fromarray(ramp).save(tmp_path / key / "0.png")
    images = samples.read_samples(str(tmp_path), samples.index_folder(str(tmp_path)), [4, 4, 1])
    want = np.rint(ramp / 257.0) / 127.5 - 1.0
    np.testing.assert_allclose(images["a"][0, ..., 0], want, atol=1e-6)


def test_the_page_describes_the_served_manifest_as_the_file(node):
    cases = {}
    for case, manifest in _manifest_cases().items():
        if isinstance(manifest, dict):
            manifest = {**manifest, "checkpoint": f"{SECRET}/ckpt-1"}
        cases[case] = {"file": manifest, "served": manifest_lib.for_page(manifest)}
    js = run_node_module(
        node,
        "import {describe} from './src/manifest.js';\n"
        "const run = (m) => { try { return describe(m, 'm'); } catch (err) {\n"
        "  return {error: err.message}; } };\n"
        "const out = {};\n"
        "for (const [key, pair] of Object.entries(input)) {\n"
        "  out[key] = [run(pair.file), run(pair.served)];\n"
        "}\n"
        "output(out);\n",
        cases,
    )
    for case, (file, served) in js.items():
        assert served == file, case


def test_read_samples_names_an_unreadable_image(tmp_path):
    for key in ("a", "b"):
        (tmp_path / key).mkdir()
        Image.new("L", (4, 4)).save(tmp_path / key / "0.png")
    (tmp_path / "b" / "1.png").write_bytes(b"not a PNG")
    with pytest.raises(UsageError, match=r"b/1\.png is not a readable image"):
        samples.read_samples(str(tmp_path), samples.index_folder(str(tmp_path)), [4, 4, 1])
