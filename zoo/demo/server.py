"""The demo's web server: the built page, the export directory and test images, on 127.0.0.1.

/                    demo/web/dist/ (index.html, app.js, style.css, wasm/)
/export/<file>       the export directory's <name>.json and *.tflite (nothing else)
/samples/<path>      test images of each domain (image-to-image models), if any
/api/models.json     [{"name", "family"}] of the manifests in the export directory

A `<name>.json` is served as the page reads it (`manifest.for_page`): no paths of the machine.
Requests must name the server in `Host` (127.0.0.1, localhost or [::1] with its port), so a
page of another site cannot reach it through DNS rebinding; an idle connection is closed after
`IDLE_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import mimetypes
import os
import subprocess
import threading
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from zoo.demo import manifest as manifest_lib
from zoo.errors import UsageError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEB_DIR = os.path.join(REPO, "demo", "web")
DIST_DIR = os.path.join(WEB_DIR, "dist")
EXPORT_SUFFIXES = (".json", ".tflite")
BUILD_HINT = "cd demo/web && npm ci && npm run build"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
IDLE_TIMEOUT_SECONDS = 30.0


def _newest_source_mtime() -> float:
    paths = [os.path.join(WEB_DIR, "build.mjs"), os.path.join(WEB_DIR, "package-lock.json")]
    source = os.path.join(WEB_DIR, "src")
    paths += [os.path.join(source, f) for f in os.listdir(source)]
    return max(os.path.getmtime(p) for p in paths if os.path.exists(p))


def ensure_built(node: str | None = None) -> str:
    """Returns `demo/web/dist`, building it first (esbuild, under a second) when it is missing
    or older than its sources and `npm ci` has been run.

    Raises:
      UsageError: no checkout of the page, no `node_modules` (run `npm ci`), or no Node.js.
    """
    if not os.path.isdir(os.path.join(WEB_DIR, "src")):
        raise UsageError(f"the demo page's sources are not at {WEB_DIR} (run from a checkout)")
    app = os.path.join(DIST_DIR, "app.js")
    if os.path.exists(app) and os.path.getmtime(app) >= _newest_source_mtime():
        return DIST_DIR
    if not os.path.isdir(os.path.join(WEB_DIR, "node_modules", "@litertjs", "core")):
        raise UsageError(f"the demo page is not built: {BUILD_HINT}")
    node = node or _which("node")
    if not node:
        raise UsageError("building the demo page needs Node.js: apt-get install -y nodejs npm")
    result = subprocess.run(
        [node, "build.mjs"], cwd=WEB_DIR, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise UsageError(f"building the demo page failed ({BUILD_HINT}): {last}")
    return DIST_DIR


def _which(program: str) -> str | None:
    import shutil

    return shutil.which(program)


class DemoHandler(http.server.BaseHTTPRequestHandler):
    """Serves the three roots read-only; anything else is 404."""

    server_version = "ganzoo-demo"
    dist_dir = DIST_DIR
    export_dir = ""
    samples_dir: str | None = None
    samples_index: dict | None = None

    def log_message(self, format: str, *args) -> None:
        pass  # quiet: the main prints the URL and the results

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _not_found(self) -> None:
        self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _refused(self, status: int, why: str) -> None:
        self._send(status, f"{why}\n".encode(), "text/plain; charset=utf-8")

    def _host_is_local(self) -> bool:
        port = self.server.server_address[1]
        host = (self.headers.get("Host") or "").strip().lower()
        allowed = {f"{name}:{port}" for name in LOCAL_HOSTS}
        if port == 80:
            allowed.update(LOCAL_HOSTS)
        return host in allowed

    def _manifest(self, file: str) -> None:
        path = self._inside(self.export_dir, file)
        if path is None:
            return self._not_found()
        try:
            body = json.dumps(manifest_lib.for_page(manifest_lib.read_manifest(path))).encode()
        except OSError:
            return self._not_found()
        except UsageError:  # the page reports the broken file itself
            return self._file(self.export_dir, file)
        self._send(200, body, "application/json")

    @staticmethod
    def _inside(root: str, relative: str) -> str | None:
        """The file `root/relative` if it exists and does not lead out of `root`, else None."""
        root = os.path.realpath(root)
        path = os.path.realpath(os.path.join(root, relative))
        return path if path.startswith(root + os.sep) and os.path.isfile(path) else None

    def _file(self, root: str, relative: str) -> None:
        path = self._inside(root, relative)
        if path is None:
            return self._not_found()
        try:
            with open(path, "rb") as f:
                body = f.read()
        except OSError:
            return self._not_found()
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if path.endswith(".wasm"):
            content_type = "application/wasm"
        elif path.endswith((".js", ".mjs")):
            content_type = "text/javascript; charset=utf-8"
        self._send(200, body, content_type)

    def do_GET(self) -> None:
        if not self._host_is_local():
            return self._refused(421, "this server answers for 127.0.0.1 and localhost only")
        path = unquote(urlsplit(self.path).path)
        if "\x00" in path:
            return self._refused(400, "bad path")
        if path in ("/", "/index.html"):
            return self._file(self.dist_dir, "index.html")
        if path == "/api/models.json":
            models = []
            for name in manifest_lib.model_names(self.export_dir):
                family = None  # an unreadable manifest is listed; the page says what is wrong
                path_json = os.path.join(self.export_dir, f"{name}.json")
                with contextlib.suppress(OSError, UsageError, AttributeError):
                    family = manifest_lib.read_manifest(path_json).get("family")
                models.append({"name": name, "family": family})
            return self._send(200, json.dumps(models).encode(), "application/json")
        if path.startswith("/export/"):
            file = path[len("/export/") :]
            if "/" in file or not file.endswith(EXPORT_SUFFIXES) or file.startswith("."):
                return self._not_found()
            if file.endswith(".json"):
                return self._manifest(file)
            return self._file(self.export_dir, file)
        if path == "/samples/index.json" and self.samples_index is not None:
            return self._send(200, json.dumps(self.samples_index).encode(), "application/json")
        if path.startswith("/samples/"):
            if not self.samples_dir:
                return self._not_found()
            return self._file(self.samples_dir, path[len("/samples/") :])
        return self._file(self.dist_dir, path.lstrip("/"))

    do_HEAD = do_GET  # noqa: N815 (http.server's name)


@contextlib.contextmanager
def serving(
    export_dir: str,
    *,
    port: int = 0,
    samples_dir: str | None = None,
    samples_index: dict | None = None,
    dist_dir: str = DIST_DIR,
) -> Iterator[str]:
    """Serves the page and `export_dir` on 127.0.0.1:`port` (0: a free port) in a thread.

    Yields:
      The page's base URL, `http://127.0.0.1:PORT/`.

    Raises:
      UsageError: the port is taken.
    """
    attributes = {
        "dist_dir": dist_dir,
        "export_dir": os.path.abspath(export_dir),
        "samples_dir": os.path.abspath(samples_dir) if samples_dir else None,
        "samples_index": samples_index,
        "timeout": IDLE_TIMEOUT_SECONDS,  # socketserver's per-connection socket timeout
    }
    handler = type("BoundDemoHandler", (DemoHandler,), attributes)
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as err:
        raise UsageError(f"cannot serve on 127.0.0.1:{port} ({err.strerror}): give --port") from err
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
