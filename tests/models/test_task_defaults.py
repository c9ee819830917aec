"""The per-dataset defaults every family's task declares (`Task.dataset_defaults`)."""

import dataclasses

import pytest

from zoo import registry
from zoo.data import DATASET_NAMES

FAMILIES = registry.names()


@pytest.mark.parametrize("family", FAMILIES)
def test_dataset_defaults_name_known_datasets_and_fields(family):
    task = registry.get(family)
    fields = {f.name for f in dataclasses.fields(task.config_class)}
    for dataset, values in task.dataset_defaults.items():
        assert dataset in DATASET_NAMES, dataset
        assert set(values) <= fields, set(values) - fields
    assert set(task.dataset_batch_sizes) <= set(DATASET_NAMES)


@pytest.mark.parametrize("family", FAMILIES)
def test_default_config_is_the_family_config_with_the_dataset_fields_in_place(family):
    task = registry.get(family)
    plain = task.config_class()
    # A dataset the family declares nothing for (a folder) starts from the family's defaults.
    assert task.default_config("folder:/somewhere") == plain
    assert task.default_batch_size("folder:/somewhere") == task.batch_size
    for dataset in DATASET_NAMES:
        config = task.default_config(dataset)
        assert type(config) is task.config_class
        changed = {
            f.name
            for f in dataclasses.fields(plain)
            if getattr(config, f.name) != getattr(plain, f.name)
        }
        declared = task.dataset_defaults.get(dataset, {})
        assert changed == {k for k, v in declared.items() if getattr(plain, k) != v}
        for key, value in declared.items():
            assert getattr(config, key) == value
        assert task.default_batch_size(dataset) == task.dataset_batch_sizes.get(
            dataset, task.batch_size
        )


def test_the_measured_defaults_reach_the_families_that_have_them():
    assert registry.get("dcgan").default_config("fashion_mnist").image_size == 28
    assert registry.get("dcgan").default_config("folder:x").image_size == 64
    assert registry.get("cyclegan").default_batch_size("mnist") == 4
    assert registry.get("cyclegan").default_batch_size("folder:x") == 1
    assert registry.get("gan").default_batch_size("grid25") == 256
    assert registry.get("gan").default_config("ring8").latent_dim == 2
    assert registry.get("cgan").default_batch_size("fashion_mnist") == 64
