"""Errors a user can cause: the mains turn them into one line on stderr and exit code 2."""


class UsageError(Exception):
    """Bad input from the user: an unknown name, missing data, a config that cannot build.

    The message is one line that says what is wrong and, where possible, how to fix it.
    """


class TrainingDivergedError(RuntimeError):
    """The losses stayed non-finite; the last good checkpoint is kept (the mains exit 1)."""


class CheckpointIOError(Exception):
    """Checkpoints could not be written, moved or removed (a full disk, permissions): an I/O
    failure mid-run, one line from the mains and exit code 1. The last good checkpoint is left
    as it was."""


class RunDirectoryIOError(Exception):
    """A file of the run directory other than a checkpoint (metrics.jsonl, a sample picture,
    TensorBoard's events) could not be written mid-run (a full disk, permissions): training
    stops, one line from the mains and exit code 1; the last checkpoint is left as it was."""


class WorkerLostError(RuntimeError):
    """Another worker of a multi-worker run died or stopped answering (the mains exit 1)."""


def first_line(err: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type's name when empty), for one-line
    user errors and warnings."""
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else type(err).__name__
