"""Config dataclasses: command-line overrides, JSON round trips, clear errors."""

import dataclasses

import pytest

from zoo import registry
from zoo.core.config import apply_overrides, config_from_dict, config_to_dict
from zoo.errors import UsageError


@pytest.mark.parametrize("name", registry.names())
def test_every_family_config_round_trips_through_json(name):
    cls = registry.get(name).config_class
    config = cls()
    assert config_from_dict(cls, config_to_dict(config)) == config


def test_overrides_are_typed():
    cls = registry.get("gan").config_class
    config = apply_overrides(
        cls(),
        [
            "latent_dim=7",
            "d_learning_rate=1e-3",
            "spectral_norm=true",
            "generator_units=4,5",
            "loss = hinge",
        ],
    )
    assert config.latent_dim == 7 and isinstance(config.latent_dim, int)
    assert config.d_learning_rate == 1e-3
    assert config.spectral_norm is True
    assert config.generator_units == (4, 5)
    assert config.loss == "hinge"
    assert cls().latent_dim == 100  # the default is untouched


@pytest.mark.parametrize(
    "override, message",
    [
        ("nosuch=1", "unknown config field 'nosuch'"),
        ("latent_dim", "key=value"),
        ("latent_dim=abc", "latent_dim"),
        ("spectral_norm=maybe", "spectral_norm"),
    ],
)
def test_bad_overrides_are_usage_errors(override, message):
    with pytest.raises(UsageError, match=message):
        apply_overrides(registry.get("dcgan").config_class(), [override])


def test_unknown_saved_field_is_a_usage_error():
    cls = registry.get("dcgan").config_class
    values = {**dataclasses.asdict(cls()), "extra": 1}
    with pytest.raises(UsageError, match="extra"):
        config_from_dict(cls, values)


def test_registry_lists_names_and_rejects_unknown():
    assert {"gan", "dcgan"} <= set(registry.names())
    with pytest.raises(UsageError, match="known models: " + ", ".join(registry.names())):
        registry.get("nosuchgan")
    assert registry.get("dcgan").name == "dcgan"
    assert registry.get("dcgan").model_class.family_name == "dcgan"
