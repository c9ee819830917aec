"""Test subprocesses forked from an interpreter that has already imported TensorFlow.

Most of the suite's subprocesses run a zoo main (`train_main.py`, `python -m export`, ...) for a
few steps, and most of their time is `import tensorflow` (3-4 s here, ~100 processes a session).
`run` starts such a command as a child of a fork server (`multiprocessing`'s "forkserver",
one per test worker) that has imported TensorFlow, Keras and the zoo's libraries, never their
mains, and has not started TensorFlow's runtime: the child is a new process (own pid, exit
code, signals, file descriptors 0-2, environment, working directory, `sys.argv`, `sys.path`)
that runs the script, module or `-c` code as `__main__` exactly as `python ARGV` would, minus
the import. What only a fresh interpreter can show keeps `subprocess` (`fresh=True`, or a
variable TensorFlow or Keras reads at import that differs from the server's): start-up
chatter, TF's C++ log level, oneDNN's switch, Python's own flags.

`GANZOO_TEST_FORK=0` runs every command as a plain subprocess (to compare the two).
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
import weakref
from typing import Any

# Read by TensorFlow, Keras or Python when they start (or by the zoo before it imports TF): a
# child whose value differs from the server's runs as a plain subprocess. A missing
# TF_CPP_MIN_LOG_LEVEL counts as "2" for a script or module (the zoo's mains set it so before
# they import TF), not for `-c` code.
IMPORT_TIME_VARIABLES = (
    "TF_CPP_MIN_LOG_LEVEL",
    "TF_CPP_MAX_VLOG_LEVEL",
    "TF_CPP_VMODULE",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_NUM_INTEROP_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "OMP_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "KERAS_BACKEND",
    "KERAS_HOME",
    "HOME",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONHASHSEED",
    "PYTHONWARNINGS",
    "PYTHONSTARTUP",
)
SERVER_VARIABLES = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONDONTWRITEBYTECODE": "1"}
# What the server imports (the zoo first: it picks oneDNN before TensorFlow is imported).
PRELOAD = [
    "zoo",
    "tensorflow",
    "keras",
    "numpy",
    "PIL.Image",
    "absl.app",
    "absl.flags",
    "absl.logging",
    "zoo.cli",
    "zoo.train",
    "export.export_lib",
    "tests.zygote",
]

_lock = threading.Lock()
_context: multiprocessing.context.BaseContext | None = None
_server_env: dict[str, str] = {}


def enabled() -> bool:
    return os.environ.get("GANZOO_TEST_FORK", "1") != "0"


def _ensure_server() -> multiprocessing.context.BaseContext:
    """Starts this worker's fork server once (it imports PRELOAD under SERVER_VARIABLES)."""
    global _context
    with _lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            saved = dict(os.environ)
            os.environ.update(SERVER_VARIABLES)
            try:
                _server_env.clear()
                _server_env.update(os.environ)
                from multiprocessing import forkserver

                forkserver.ensure_running()
            finally:
                os.environ.clear()
                os.environ.update(saved)
            _context = context
        return _context


def forkable(argv: list[str], env: dict[str, str]) -> bool:
    """Whether `python ARGV` under `env` behaves the same forked from the server."""
    if not enabled() or len(argv) < 2 or argv[0] != sys.executable:
        return False
    if argv[1] == "-c" or argv[1] == "-m":
        if len(argv) < 3:
            return False
    elif argv[1].startswith("-") or not argv[1].endswith(".py"):
        return False
    server = _server_env or {**os.environ, **SERVER_VARIABLES}
    main = argv[1] != "-c"  # the zoo's mains set TF's log level to 2 when it is not set
    for key in IMPORT_TIME_VARIABLES:
        wanted = env.get(key, "2" if key == "TF_CPP_MIN_LOG_LEVEL" and main else None)
        if wanted != server.get(key):
            return False
    return True


class _PassedFd:
    """A file descriptor of the parent's, passed to the child by the fork server (pickled
    while the child is started, `multiprocessing.reduction.DupFd`)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self):
        from multiprocessing import reduction

        return (_detach, (reduction.DupFd(self.fd),))


def _detach(dup) -> int:
    return dup.detach()


def _child(argv: list[str], env: dict[str, str], cwd: str, out, err) -> None:
    """In the forked child: standard streams (a path, or a passed descriptor; `err` None is
    `out`'s), environment, directory, then `python ARGV`."""
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    os.close(stdin)
    for fd, target in ((1, out), (2, err if err is not None else out)):
        if isinstance(target, str):
            handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        else:
            handle = os.dup(target)
        os.dup2(handle, fd)
        os.close(handle)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    tempfile.tempdir = None  # read TMPDIR again, as a new interpreter does
    # Modules imported before `absl.app.run` leave callbacks for its start (TF's distribute
    # test combinations list the GPUs, printing a CUDA error line); a main imports TensorFlow
    # after it, when absl runs them at once, inside its captured start-up.
    from absl import app

    app._init_callbacks.clear()
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    base = [p for p in sys.path if p not in extra]
    # As the interpreter ends: an uncaught exception's traceback and exit code 1, then the
    # threads joined and the `atexit` functions run (TF's autograph removes its generated
    # files there); multiprocessing's child would skip them (`os._exit`).
    try:
        _run_as_main(argv, cwd, extra, base)
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        raise SystemExit(1) from None
    finally:
        threading._shutdown()
        atexit._run_exitfuncs()


def _run_as_main(argv: list[str], cwd: str, extra: list[str], base: list[str]) -> None:
    if argv[1] == "-c":
        sys.argv = ["-c", *argv[3:]]
        sys.path[:] = ["", *extra, *base]
        code = compile(argv[2], "<string>", "exec")
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    elif argv[1] == "-m":
        sys.argv = [argv[2], *argv[3:]]
        sys.path[:] = [cwd, *extra, *base]
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    else:
        script = os.path.abspath(argv[1])
        sys.argv = [argv[1], *argv[2:]]
        sys.path[:] = [os.path.dirname(script), *extra, *base]
        runpy.run_path(script, run_name="__main__")


class ForkedProcess:
    """The part of `subprocess.Popen` the tests use, for a child of the fork server.

    `stdout`/`stderr`: None or `subprocess.PIPE` (files read by `output`/`communicate`),
    `subprocess.DEVNULL`, an open file (or descriptor) the child writes to, and for `stderr`
    also `subprocess.STDOUT`."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        stdout: Any = None,
        stderr: Any = None,
    ) -> None:
        self.args = argv
        self._dir = tempfile.mkdtemp(prefix="forked-")
        weakref.finalize(self, shutil.rmtree, self._dir, True)
        self.stdout_path = os.path.join(self._dir, "stdout")
        self.stderr_path = os.path.join(self._dir, "stderr")
        self._opened: list[int] = []
        out = self._target(stdout, self.stdout_path)
        err = None if stderr == subprocess.STDOUT else self._target(stderr, self.stderr_path)
        full_env = {**env}
        if "TF_ENABLE_ONEDNN_OPTS" in _server_env and "TF_ENABLE_ONEDNN_OPTS" not in full_env:
            full_env["TF_ENABLE_ONEDNN_OPTS"] = _server_env["TF_ENABLE_ONEDNN_OPTS"]
        self._process = _ensure_server().Process(
            target=_child, args=(argv, full_env, cwd, out, err)
        )
        try:
            self._process.start()
        finally:
            for fd in self._opened:
                os.close(fd)
        self.pid = self._process.pid
        self.returncode: int | None = None

    def _target(self, spec: Any, path: str) -> Any:
        if spec is None or spec == subprocess.PIPE:
            return path
        if spec == subprocess.DEVNULL:
            fd = os.open(os.devnull, os.O_WRONLY)
            self._opened.append(fd)
            return _PassedFd(fd)
        return _PassedFd(spec if isinstance(spec, int) else spec.fileno())

    def poll(self) -> int | None:
        if self.returncode is None and not self._process.is_alive():
            self._process.join()
            self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def output(self) -> tuple[str, str]:
        """(stdout, stderr) as text, what the child has written to its files so far."""
        texts = []
        for path in (self.stdout_path, self.stderr_path):
            try:
                with open(path, errors="replace") as f:
                    texts.append(f.read())
            except FileNotFoundError:
                texts.append("")
        return texts[0], texts[1]

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        return self.output()

    def close(self) -> None:
        for path in (self.stdout_path, self.stderr_path):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)

    def __enter__(self) -> ForkedProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.poll() is None:
            self.kill()
            self.wait()
        self.close()


def popen(
    argv: list[str], *, env: dict[str, str], cwd: str, stdout: Any = None, stderr: Any = None
) -> Any:
    """`subprocess.Popen(argv, ...)` (text output), or a `ForkedProcess` when `forkable`;
    both are used as context managers, which kill a child still running and clean up."""
    if not forkable(argv, env):
        return subprocess.Popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr, text=True)
    return ForkedProcess(argv, env, cwd, stdout=stdout, stderr=stderr)


def run(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: str,
    timeout: float,
    fresh: bool = False,
) -> subprocess.CompletedProcess:
    """`subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)`, forked from
    the server when `forkable` (and not `fresh`)."""
    if fresh or not forkable(argv, env):
        return subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
    with ForkedProcess(argv, env, cwd) as process:
        stdout, stderr = process.communicate(timeout)
        return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
