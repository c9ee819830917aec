"""Class selection by name or index, shared by every labelled source."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zoo.errors import UsageError


def _normalize(name: str) -> str:
    return " ".join(name.strip().lower().replace("_", " ").replace("-", " ").split())


def resolve_classes(classes: Sequence[str | int], class_names: Sequence[str] | None) -> list[int]:
    """Turns class names or indices into indices into `class_names`.

    Names match case-insensitively, and `_`, `-` and spaces are interchangeable, so
    "ankle_boot", "Ankle Boot" and "ankle boot" all name Fashion-MNIST's class 9. A
    string of digits that is not itself a class name is read as an index ("7"), so
    command-line values work as they are.

    Args:
      classes: Class names and/or indices; duplicates are dropped, order is kept.
      class_names: The dataset's class names, or None when it has no labels.

    Returns:
      The class indices, in the order given.

    Raises:
      UsageError: The dataset has no classes, `classes` is empty, or a class is unknown.
    """
    if class_names is None:
        raise UsageError("this dataset has no class labels, so --classes cannot be used")
    if isinstance(classes, (str, int)):
        classes = [classes]
    if len(classes) == 0:
        raise UsageError("classes is empty; give at least one class name or index")
    by_name = {_normalize(n): i for i, n in enumerate(class_names)}
    valid = ", ".join(repr(n) for n in class_names)
    num = len(class_names)
    out: list[int] = []
    for c in classes:
        if isinstance(c, (bool, np.bool_)):
            raise UsageError(f"class {c!r} is neither a name nor an index; valid: {valid}")
        if isinstance(c, (int, np.integer)):
            index = int(c)
        elif isinstance(c, str) and _normalize(c) in by_name:
            index = by_name[_normalize(c)]
        elif isinstance(c, str) and c.strip().isdigit():
            index = int(c.strip())
        else:
            raise UsageError(f"unknown class {c!r}; valid names: {valid} (or indices 0..{num - 1})")
        if not 0 <= index < num:
            raise UsageError(f"class index {index} out of range 0..{num - 1}; valid names: {valid}")
        if index not in out:
            out.append(index)
    return out


def first_per_class(labels: np.ndarray | None, examples_per_class: int, source: str) -> np.ndarray:
    """Indices of the first `examples_per_class` examples of each class, in the data's order
    (to train on a fraction of a dataset, e.g. a tenth of Fashion-MNIST's 6000 per class).

    Raises:
      UsageError: a negative count, or a source without labels.
    """
    if not isinstance(examples_per_class, (int, np.integer)) or examples_per_class < 0:
        raise UsageError(
            f"examples_per_class must be a non-negative integer (0 = all), got "
            f"{examples_per_class!r}"
        )
    if labels is None:
        raise UsageError(f"{source} has no class labels, so examples_per_class cannot be used")
    seen: dict[int, int] = {}
    keep = []
    for i, label in enumerate(np.asarray(labels).tolist()):
        if seen.get(label, 0) < examples_per_class:
            seen[label] = seen.get(label, 0) + 1
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)
