"""What the command-line mains share: quiet TensorFlow start-up and one-line errors."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any


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


def field_docs(cls: type) -> dict[str, str]:
    """The help of each field of a dataclass, from the `Attributes:` section of its docstring
    (Google style: `name: text`, continued on more deeply indented lines)."""
    lines = (cls.__doc__ or "").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    docs: dict[str, str] = {}
    name, indent = None, None
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth == indent and ":" in line:
            name, text = line.strip().split(":", 1)
            docs[name] = text.strip()
        elif name is not None and depth > indent:
            docs[name] += " " + line.strip()
    return docs


def define_dataclass_flags(cls: type) -> None:
    """Defines one absl flag per field of a dataclass: its name, its default, and its help from
    the docstring (`field_docs`); a field with `choices` in its metadata is an enum flag."""
    import dataclasses
    import typing

    from absl import flags

    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        name, default, kind = field.name, field.default, hints[field.name]
        help_text = docs.get(name) or name
        if "choices" in field.metadata:
            flags.DEFINE_enum(name, default, list(field.metadata["choices"]), help_text)
        elif kind is bool:
            flags.DEFINE_boolean(name, default, help_text)
        elif kind is int:
            flags.DEFINE_integer(name, default, help_text)
        elif kind is float:
            flags.DEFINE_float(name, default, help_text)
        elif typing.get_origin(kind) is tuple:
            flags.DEFINE_list(name, list(default), help_text)
        else:
            flags.DEFINE_string(name, default, help_text)


def dataclass_from_flags(cls: type) -> Any:
    """The dataclass with every field from the absl flag of its name (lists become tuples)."""
    import dataclasses

    from absl import flags

    values = {}
    for field in dataclasses.fields(cls):
        value = flags.FLAGS[field.name].value
        values[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)
