"""Family configs: dataclasses with the paper's defaults, overridable from the command line."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Iterable
from typing import Any, TypeVar

from zoo.errors import UsageError

# The `tf.distribute` strategies and Keras precision policies a run may ask for
# (`zoo.core.distribute` builds them; here so that flags can list them without TensorFlow).
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# DiffAugment's policies in the order they apply (`zoo.core.augment`).
AUGMENT_POLICIES = ("color", "translation", "cutout")

C = TypeVar("C")


@dataclasses.dataclass
class GANConfig:
    """Fields every family shares. Families subclass it and add their own.

    Attributes:
      latent_dim: size of z ~ N(0, I).
      image_size: side of the square images the generator makes (ignored by vector data).
      channels: image channels (1 or 3).
      loss: adversarial loss, a name from `zoo.core.losses.LOSSES`.
      d_steps: discriminator steps per generator step, each on a fresh minibatch;
        0 picks the loss's default (5 for `wgan_gp`, 1 otherwise).
      gp_weight: gradient-penalty weight; a negative value picks the loss's default
        (10 for `wgan_gp`, 0 otherwise).
      r1_gamma: weight γ of the R1 penalty γ/2·‖∇D(x)‖² on real data (0 = off).
      r1_interval: lazy R1 (StyleGAN2, Karras et al. 2020): the penalty only on every k-th
        training step, weighted k·γ/2, so it weighs as much per step on average for 1/k of
        its cost (1 = every step).
      spectral_norm: wrap the discriminator's weight layers in spectral normalisation.
      augment: differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020), the
        same random transform on real and generated images: comma-separated policies from
        color, translation, cutout (applied in that order), e.g. translation,cutout; empty = off.
      g_learning_rate, d_learning_rate, beta_1, beta_2: Adam settings of each player.
      ema_decay: decay of the moving average of G's weights (batch-norm statistics too) that
        sample pictures, evaluation and export use (0 = off; e.g. 0.999), ramped up as
        min(ema_decay, (1 + t) / (10 + t)) over its t updates (`zoo.core.ema`).
    """

    latent_dim: int = 100
    image_size: int = 28
    channels: int = 1
    loss: str = "non_saturating"
    d_steps: int = 0
    gp_weight: float = -1.0
    r1_gamma: float = 0.0
    r1_interval: int = 1
    spectral_norm: bool = False
    augment: str = ""
    g_learning_rate: float = 2e-4
    d_learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    ema_decay: float = 0.0

    # Fields added after runs were saved: what a saved config without them meant, whatever a
    # family's default is now (a run from before the average had none in its checkpoints).
    absent_from_old_runs: typing.ClassVar[dict[str, Any]] = {
        "ema_decay": 0.0,
        "augment": "",
        "r1_interval": 1,
    }

    def __post_init__(self) -> None:
        # Checked before any tensor is made: latent_dim=0 aborts the process inside oneDNN,
        # and a negative d_steps would first surface as a negative data batch size.
        if isinstance(self.latent_dim, int) and self.latent_dim < 1:
            raise UsageError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if isinstance(self.d_steps, int) and self.d_steps < 0:
            raise UsageError(f"d_steps must be >= 0 (0 = the loss's default), got {self.d_steps}")
        if isinstance(self.r1_interval, int) and self.r1_interval < 1:
            raise UsageError(f"r1_interval must be >= 1 (1 = every step), got {self.r1_interval}")
        parse_augment(self.augment)
        if isinstance(self.ema_decay, int | float) and not 0.0 <= self.ema_decay < 1.0:
            raise UsageError(f"ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")

    @property
    def augment_policies(self) -> tuple[str, ...]:
        """The `augment` policies as a tuple of names (empty when off)."""
        return parse_augment(self.augment)


def parse_augment(text: str) -> tuple[str, ...]:
    """Reads an `augment` value ("translation,cutout") into its policy names.

    Raises:
      UsageError: a name that is not a policy (the message lists them), or a repeated one.
    """
    if not isinstance(text, str):
        raise UsageError(f"augment must be a string of policies, got {text!r}")
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in AUGMENT_POLICIES:
            raise UsageError(
                f"unknown augment policy {name!r}; policies: {', '.join(AUGMENT_POLICIES)}"
            )
    if len(set(names)) != len(names):
        raise UsageError(f"augment names a policy twice: {text!r}")
    return tuple(names)


def _coerce(value: str, annotation: Any, field: str) -> Any:
    """Parses a command-line string into the type a dataclass field declares."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    try:
        if annotation is bool:
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if annotation in (int, float, str):
            return annotation(value)
        if origin is tuple:
            items = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
            item_type = args[0] if args else str
            return tuple(_coerce(v.strip(), item_type, field) for v in items)
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            if value.strip().lower() in ("none", "null", ""):
                return None
            for arg in args:
                if arg is not type(None):
                    return _coerce(value, arg, field)
    except ValueError:
        pass
    else:
        return value
    raise UsageError(f"config field {field!r}: cannot read {value!r} as {annotation}")


def apply_overrides(config: C, overrides: Iterable[str]) -> C:
    """Returns a copy of `config` with `key=value` overrides applied.

    Args:
      config: a config dataclass instance.
      overrides: strings such as "latent_dim=64" (as given by repeated `--config` flags).

    Returns:
      A new config instance.

    Raises:
      UsageError: on a malformed override or an unknown field (the message lists the fields).
    """
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    changes = {}
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"--config expects key=value, got {item!r}")
        key, value = (part.strip() for part in item.split("=", 1))
        if key not in fields:
            raise UsageError(
                f"unknown config field {key!r} for {type(config).__name__}; "
                f"fields: {', '.join(sorted(fields))}"
            )
        changes[key] = _coerce(value, hints[key], key)
    return dataclasses.replace(config, **changes)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(cls: type[C], values: dict[str, Any]) -> C:
    """Rebuilds a config from `config_to_dict` output; unknown keys are a UsageError, and a
    field missing from `values` takes its `absent_from_old_runs` value (else its default).

    Raises:
      TypeError: `values` is not a dict (e.g. a damaged config.json).
      UsageError: a key that is not a field of `cls`.
    """
    if not isinstance(values, dict):
        raise TypeError(f"a JSON object of {cls.__name__} fields (got {type(values).__name__})")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UsageError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
    kwargs = dict(getattr(cls, "absent_from_old_runs", {}))
    for key, value in values.items():
        if isinstance(value, list) and typing.get_origin(hints[key]) is tuple:
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)
