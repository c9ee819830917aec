"""The one registry of GAN families: `--model=NAME` looks a family up here.

A family registers its task (`zoo.models.task.Task`) with `@register(NAME)` in its module;
`FAMILY_MODULES` says which module holds each name so that a lookup imports
only that family (and an unknown name is reported before TensorFlow is even imported).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from zoo.errors import UsageError

T = TypeVar("T", bound=type)

FAMILY_MODULES: dict[str, str] = {
    "gan": "zoo.models.gan",
    "dcgan": "zoo.models.dcgan",
    "cgan": "zoo.models.cgan",
    "cyclegan": "zoo.models.cyclegan",
    "gan_int_cls": "zoo.models.gan_int_cls",
    "stackgan": "zoo.models.stackgan",
}

_FAMILIES: dict[str, Any] = {}


def register(name: str) -> Callable[[T], T]:
    """Class decorator that registers a family's task class under `name` (its `--model` value);
    the task's `name` and its model class's `family_name` become `name`."""
    if name not in FAMILY_MODULES:
        raise ValueError(f"family {name!r} must be listed in zoo.registry.FAMILY_MODULES")

    def decorator(cls: T) -> T:
        if name in _FAMILIES and type(_FAMILIES[name]) is not cls:
            raise ValueError(f"family {name!r} is registered twice")
        cls.name = name
        cls.model_class.family_name = name
        _FAMILIES[name] = cls()
        return cls

    return decorator


def check(name: str) -> None:
    """Raises `UsageError` (listing the known names) when no family is called `name`."""
    if name not in FAMILY_MODULES:
        raise UsageError(f"unknown model {name!r}; known models: {', '.join(names())}")


def get(name: str) -> Any:
    """Returns the task of family `name` (`zoo.models.task.Task`), importing its module.

    Raises:
      UsageError: when no family has that name; the message lists the known ones.
    """
    check(name)
    if name not in _FAMILIES:
        importlib.import_module(FAMILY_MODULES[name])
    return _FAMILIES[name]


def names() -> list[str]:
    """Names of all registered families, sorted."""
    return sorted(FAMILY_MODULES)
