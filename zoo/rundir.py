"""Who owns a directory: writability checked up front, and one run at a time per run directory.

A training run holds `RunDirectoryLock` on its `--model_dir` for its whole life: an exclusive
`fcntl.flock` on `MODEL_DIR/.lock`, which names the holder's PID and host while it is held.
The kernel drops the lock when the process ends, however it ends, so a killed run never leaves
a stale lock. Readers (export, eval, tools) take no lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from types import TracebackType

from zoo.errors import UsageError

LOCK_FILE = ".lock"


def this_host() -> str:
    """This machine's name, as the lock file and staging names record it."""
    return socket.gethostname() or "localhost"


def host_tag() -> str:
    """`this_host()` reduced to letters, digits, `.` and `_` (safe inside a file name)."""
    return re.sub(r"[^A-Za-z0-9.]", "_", this_host())[:64]


def process_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this machine (another user's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reason(err: OSError) -> str:
    return err.strerror or errno.errorcode.get(err.errno or 0, "") or type(err).__name__


def check_writable_dir(path: str, flag_name: str) -> None:
    """Creates `path` if it does not exist and checks that files can be created in it.

    Run before anything expensive, so a directory the user cannot write fails in a second with
    one line instead of a traceback after the data and model are built. Leaves nothing behind
    but the (possibly new, empty) directory.

    Args:
      path: the directory.
      flag_name: the flag that gave it (`--model_dir`), for the message.

    Raises:
      UsageError: `path` is a file, cannot be created, or is not writable.
    """
    if os.path.lexists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag_name}={path} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create {flag_name}={path}: {_reason(err)}") from err
    try:
        fd, probe = tempfile.mkstemp(prefix=".writable-", dir=path)
    except OSError as err:
        raise UsageError(f"cannot write to {flag_name}={path}: {_reason(err)}") from err
    os.close(fd)
    os.unlink(probe)


class RunDirectoryLock:
    """An exclusive lock on a run directory, held from `__enter__` to `__exit__`.

    Usage: `with RunDirectoryLock(model_dir): ...`. A second holder, in this process or another,
    gets a `UsageError` naming the holder's PID and host.
    """

    def __init__(self, directory: str, flag_name: str = "--model_dir"):
        self.directory = directory
        self.flag_name = flag_name
        self.path = os.path.join(directory, LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Takes the lock.

        Raises:
          UsageError: another process (or another lock in this one) holds it, or the lock
            file cannot be written.
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this lock")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise UsageError(f"cannot create the lock file {self.path}: {_reason(err)}") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise UsageError(
                f"{self.directory} is in use by another run ({holder} holds {self.path}); "
                f"wait for it to finish or use another {self.flag_name}"
            ) from None
        except OSError as err:
            os.close(fd)
            raise UsageError(f"cannot lock {self.path}: {_reason(err)}") from err
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on host {this_host()}\n".encode(), 0)
        except OSError as err:
            os.close(fd)
            raise UsageError(f"cannot write the lock file {self.path}: {_reason(err)}") from err
        self._fd = fd

    def release(self) -> None:
        """Drops the lock (the lock file stays, emptied); a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)

    def __enter__(self) -> RunDirectoryLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text.splitlines()[0] if text else "a process that has not written its PID yet"


@contextlib.contextmanager
def owned_run_directory(path: str, flag_name: str, owner: bool = True) -> Iterator[None]:
    """Checks that `path` is a writable directory and holds its lock for the block.

    Args:
      path: the run directory.
      flag_name: the flag that gave it, for messages.
      owner: whether this process writes the directory (under multi-worker training only the
        chief does); when False, nothing is checked or locked.

    Raises:
      UsageError: `path` is not a writable directory, or another run holds it.
    """
    if not owner:
        yield
        return
    check_writable_dir(path, flag_name)
    with RunDirectoryLock(path, flag_name):
        yield
