"""Atomic file writes: a reader never sees half a file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any


def readable_by_all(path: str) -> None:
    """Gives a `mkstemp` file (0600) or `mkdtemp` directory (0700) the mode a plain `open` or
    `mkdir` would (umask applied), so that TF Serving or a web server running as another user
    can read what the zoo writes."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~umask)


TEMPORARY_PREFIX = ".tmp-"
# `atomic_path`'s names: the prefix, `mkstemp`'s 8 random characters, the suffix.
_TEMPORARY = re.compile(re.escape(TEMPORARY_PREFIX) + r"[a-z0-9_]{8}(\.[A-Za-z0-9.]+)?")


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """Yields a temporary path beside `path`; on success it is renamed onto `path` (readable
    by all, as a plain `open` would make it), on failure it is removed. Readers of `path` see
    the old file or the complete new one, never half of one."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        readable_by_all(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_temporaries(directory: str, others: str = "") -> list[str]:
    """Removes what writers killed mid-write (SIGKILL, power loss) left in `directory` (not
    below it): `atomic_path` temporaries and entries (directories too) whose whole name matches
    the regular expression `others`. Only for a directory whose every writer the caller excludes
    (it holds the run directory's lock): a live writer's temporary would be removed as well.
    Others' hidden `.tmp-` names (an export's `.tmp-<pid>@<host>-...`) are left alone.

    Returns:
      The paths removed.
    """
    if not os.path.isdir(directory):
        return []
    removed = []
    for entry in os.scandir(directory):
        temporary = _TEMPORARY.fullmatch(entry.name) and not entry.is_dir(follow_symlinks=False)
        if not temporary and not (others and re.fullmatch(others, entry.name)):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
        removed.append(entry.path)
    return removed


def atomic_write_text(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file in the same directory and a rename."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_json(path: str, value: Any) -> None:
    """Writes `value` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(path: str) -> Any:
    """Reads a JSON file; a corrupt file raises `UsageError` naming it."""
    from zoo.errors import UsageError

    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path}: {err}") from err
    except RecursionError as err:
        raise UsageError(f"cannot read {path}: nested too deeply to be a zoo file") from err


def sha256_of(path: str) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
