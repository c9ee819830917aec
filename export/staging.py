"""Names of an export's staging files and directories, and removal of ones left by dead exports.

An export writes beside its results under hidden names `.tmp-<pid>@<host>-...` (TF Serving only
loads all-digit version directories) and renames them into place at the end. An export killed
before that (SIGKILL, power loss) leaves them behind; the next export into the same directory
removes those whose process no longer runs on this host. Staging of a live export, or of one on
another host (a shared file system), is left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil

from zoo.rundir import host_tag, process_alive

_OWNED = re.compile(r"^\.tmp-(\d+)@([A-Za-z0-9._]+)-")


def prefix() -> str:
    """The name prefix of this process's staging files and directories."""
    return f".tmp-{os.getpid()}@{host_tag()}-"


def _stale(name: str) -> bool:
    match = _OWNED.match(name)
    if not match or match.group(2) != host_tag():
        return False
    return not process_alive(int(match.group(1)))


def remove_stale(export_dir: str) -> list[str]:
    """Removes staging left by dead exports in `export_dir` and its `<name>/` directories.

    Returns:
      The paths removed.
    """
    if not os.path.isdir(export_dir):
        return []
    directories = [export_dir] + [
        entry.path
        for entry in os.scandir(export_dir)
        if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)
    ]
    removed = []
    for directory in directories:
        for entry in os.scandir(directory):
            if not _stale(entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):  # best effort, like the rmtree
                    os.unlink(entry.path)
            removed.append(entry.path)
    return removed
