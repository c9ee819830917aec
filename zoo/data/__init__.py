"""Datasets as infinite, resumable `tf.data` streams: IDX files, TFDS, folders and toys."""

from zoo.data.classes import resolve_classes
from zoo.data.dataset import DATASET_NAMES, IDX_NAMES, DatasetInfo, load_arrays, make_dataset
from zoo.data.domains import load_domain_images, make_domain_dataset
from zoo.data.idx import read_idx
from zoo.data.toys import TOY_NAMES, toy_modes

__all__ = [
    "DATASET_NAMES",
    "IDX_NAMES",
    "TOY_NAMES",
    "DatasetInfo",
    "load_arrays",
    "load_domain_images",
    "make_dataset",
    "make_domain_dataset",
    "read_idx",
    "resolve_classes",
    "toy_modes",
]

# Text-to-image data: captions and precomputed embeddings.
from zoo.data.text_dataset import CaptionArrays, load_caption_arrays, make_text_dataset

__all__ += ["CaptionArrays", "load_caption_arrays", "make_text_dataset"]
