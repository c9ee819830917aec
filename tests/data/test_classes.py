import numpy as np
import pytest

from zoo.data import resolve_classes
from zoo.data.idx import FASHION_MNIST_CLASSES, MNIST_CLASSES
from zoo.errors import UsageError


@pytest.mark.parametrize("name", ["ankle_boot", "Ankle Boot", "ankle boot", "ANKLE-BOOT", 9])
def test_ankle_boot_spellings(name):
    assert resolve_classes([name], FASHION_MNIST_CLASSES) == [9]


def test_mixed_names_and_indices_keep_order_and_drop_duplicates():
    got = resolve_classes(["sneaker", 0, "T-Shirt", np.int64(5), "7"], FASHION_MNIST_CLASSES)
    assert got == [7, 0, 5]


def test_digit_strings_are_names_for_mnist():
    assert resolve_classes(["3", 4], MNIST_CLASSES) == [3, 4]


def test_unknown_name_lists_valid_names():
    with pytest.raises(UsageError, match=r"unknown class 'boots'.*'ankle boot'") as e:
        resolve_classes(["boots"], FASHION_MNIST_CLASSES)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bad", [[10], [-1], ["12"]])
def test_index_out_of_range(bad):
    with pytest.raises(UsageError, match="out of range"):
        resolve_classes(bad, FASHION_MNIST_CLASSES)


def test_no_class_names_or_empty_selection():
    with pytest.raises(UsageError, match="no class labels"):
        resolve_classes(["a"], None)
    with pytest.raises(UsageError, match="empty"):
        resolve_classes([], MNIST_CLASSES)
