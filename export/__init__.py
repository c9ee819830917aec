"""Export of trained generators to TF Serving (SavedModel + warmup) and to builtins-only TFLite.

`python -m export --model_dir=RUN --export_dir=OUT` is the thin main; the library is
`export.export_lib` (it imports TensorFlow; this module does not, so flags are checked first).
"""

from __future__ import annotations

from collections.abc import Sequence

from zoo.errors import UsageError

FLAVOURS = ("float32", "float16", "int8")
FORMATS = ("saved_model", *FLAVOURS)


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """Validates a `--formats` value (comma-separated or a list), keeping `FORMATS` order.

    Raises:
      UsageError: an unknown or empty format list.
    """
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    items = [item.strip() for item in items if item.strip()]
    unknown = [item for item in items if item not in FORMATS]
    if unknown:
        raise UsageError(f"unknown format(s) {', '.join(unknown)}; known: {', '.join(FORMATS)}")
    if not items:
        raise UsageError(f"--formats is empty; known: {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in items)
