"""What the command-line mains share: quiet TensorFlow start-up and one-line errors."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Holds back what native code writes to stderr (TensorFlow's start-up chatter about
    CUDA and oneDNN) and replays it only if the block fails, so a user error stays one line."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture and friends
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and Keras with their native start-up messages held back."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_captured():
        import keras  # noqa: F401
        import tensorflow as tf

        tf.config.list_physical_devices()  # device discovery prints too


def fail(message: str, code: int = 2) -> int:
    """Prints `error: message` as one line on stderr and returns the exit code."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def parse_flags(argv: list[str]) -> list[str]:
    """absl flag parser for the mains: a bad flag is one line on stderr and exit code 2."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        sys.exit(fail(str(err)))
