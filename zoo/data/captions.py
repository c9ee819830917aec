"""Captions made offline from an image's class and attributes measured from its pixels.

Public text-to-image datasets (CUB, Oxford-102) give about ten captions per image. For
Fashion-MNIST (and any labelled image set) this module writes such captions itself, from
the class name and two attributes read off the pixels, so that how well generated images
follow their text can be scored by measuring the same attributes again:

  - brightness: the mean intensity (0..255) of the object pixels, i.e. the pixels above
    `OBJECT_PIXEL_THRESHOLD`; "dark" at or below `BRIGHTNESS_THRESHOLD`, else "light".
  - size: the fraction of the image covered by object pixels; "small" at or below
    `SIZE_THRESHOLD`, else "large".

Captions come from templates and synonyms, short ("a sandal") and long ("a large, light
ankle boot on a dark background"); some state only the class, some the class and one
attribute, some all three. Whatever a caption states is true of the pixels.
`caption_attributes` reads back what a caption states.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from zoo.data.idx import FASHION_MNIST_CLASSES
from zoo.errors import UsageError

BRIGHTNESS_WORDS = ("dark", "light")
SIZE_WORDS = ("small", "large")

# Thresholds measured once on the Fashion-MNIST training split (60,000 images) with
# `measure_attributes`' own definitions: a pixel belongs to the object when it is above
# OBJECT_PIXEL_THRESHOLD (32 of 255, above the faint halo around the garments); the medians
# over the split were 167.55 for the object's mean intensity and 0.4515 for the fraction
# of object pixels, so each attribute splits the training set about in half:
#   x = images[..., 0].astype(float); obj = x > 32
#   np.median(obj.mean((1, 2))); np.median((x * obj).sum((1, 2)) / obj.sum((1, 2)))
# Size follows the class strongly (few sandals, sneakers or trousers are "large"; few
# pullovers, shirts or coats are "small"); brightness much less.
OBJECT_PIXEL_THRESHOLD = 32
BRIGHTNESS_THRESHOLD = 167.55
SIZE_THRESHOLD = 0.4515
# The same medians per Fashion-MNIST class (in the dataset's class order), so that a word
# means something within its class ("a large sandal" is large for a sandal): with the global
# thresholds only about 2% of sandals were "large" and almost every pullover was, so "size"
# mostly restated the class. `measure_attributes` uses these when given Fashion-MNIST labels:
#   [np.median(area[labels == k]) for k in range(10)], likewise for the mean intensity.
FASHION_MNIST_CLASSES_ORDER = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip
FASHION_MNIST_BRIGHTNESS_THRESHOLDS = (
    164.04, 178.77, 168.46, 176.81, 185.61, 134.76, 148.9, 153.8, 176.67, 180.79,
)  # fmt: skip
FASHION_MNIST_SIZE_THRESHOLDS = (
    0.537, 0.3151, 0.6033, 0.3852, 0.5702, 0.2372, 0.5823, 0.2755, 0.5306, 0.4247,
)  # fmt: skip

# Synonyms used in captions; the first of each is the canonical word.
BRIGHTNESS_SYNONYMS = {"dark": ("dark", "dim", "dark-toned"), "light": ("light", "bright", "pale")}
SIZE_SYNONYMS = {"small": ("small", "little", "compact"), "large": ("large", "big", "bulky")}
BACKGROUND_WORDS = ("dark", "black")

# Noun phrases per Fashion-MNIST class; the first is the class name as the dataset names
# it. Every phrase names one class only ("shirt" is never part of a t-shirt phrase).
FASHION_MNIST_NOUNS = {
    "t-shirt": ("t-shirt", "tee", "top"),
    "trouser": ("trouser", "pair of trousers", "pair of pants"),
    "pullover": ("pullover", "sweater", "jumper"),
    "dress": ("dress", "frock"),
    "coat": ("coat", "jacket"),
    "sandal": ("sandal", "strappy sandal"),
    "shirt": ("shirt", "blouse"),
    "sneaker": ("sneaker", "trainer", "running shoe"),
    "bag": ("bag", "handbag"),
    "ankle boot": ("ankle boot", "boot"),
}

# Templates by what they state. {n}: noun phrase, {b}: brightness word, {s}: size word,
# {bg}: background word. "{a}" before a slot becomes "a" or "an" for the word after it.
_TEMPLATES = {
    "class": (
        "{a}{n}",
        "a picture of {a}{n}",
        "a photo of {a}{n}",
        "{a}{n} on a {bg} background",
        "an image showing {a}{n}",
        "this is {a}{n}",
    ),
    "brightness": (
        "{a}{b} {n}",
        "a picture of {a}{b} {n}",
        "{a}{b} {n} on a {bg} background",
        "{a}{n} in a {b} shade",
        "a photo of {a}{n}, {b} in tone",
    ),
    "size": (
        "{a}{s} {n}",
        "a picture of {a}{s} {n}",
        "{a}{s} {n} on a {bg} background",
        "{a}{n}, {s} in the frame",
        "a photo of {a}{s} {n}",
    ),
    "all": (
        "{a}{s}, {b} {n}",
        "{a}{s} {b} {n}",
        "{a}{s}, {b} {n} on a {bg} background",
        "a picture of {a}{s}, {b} {n}",
        "{a}{s} {n} in a {b} shade",
        "{a}{b} {n}, {s} in the frame",
    ),
}
_KINDS = ("class", "brightness", "size", "all")
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def class_phrase(name: str) -> str:
    """The class name as the dataset names it, lower case, in words.

    "T-shirt/top" becomes "t-shirt" (the part before a slash), "ankle_boot" becomes
    "ankle boot".

    Args:
      name: A class name.

    Returns:
      The phrase captions use for the class.
    """
    text = str(name).split("/")[0].lower().replace("_", " ")
    return " ".join(text.split()) or str(name).lower()


def class_nouns(name: str) -> tuple[str, ...]:
    """The noun phrases captions use for a class; the first is `class_phrase(name)`.

    Fashion-MNIST classes have synonyms, digit classes read "digit 7" / "number 7", any
    other class is its phrase.
    """
    phrase = class_phrase(name)
    if phrase in FASHION_MNIST_NOUNS:
        return FASHION_MNIST_NOUNS[phrase]
    if phrase.isdigit():
        return (f"digit {phrase}", f"number {phrase}")
    return (phrase,)


def _gray(images: np.ndarray) -> np.ndarray:
    """[N, H, W] or [N, H, W, C] on the 0..255 scale -> float32 [N, H, W] luminance."""
    array = np.asarray(images)
    if array.dtype.kind not in "uif":
        raise UsageError(f"images must be numbers on the 0..255 scale, got dtype {array.dtype}")
    if array.dtype.kind == "f" and array.size and float(array.min()) < 0:
        raise UsageError(
            "images must be on the 0..255 scale; convert [-1, 1] images with (x + 1) * 127.5"
        )
    if array.ndim == 3:
        return array.astype(np.float32)
    if array.ndim != 4 or array.shape[-1] not in (1, 2, 3, 4):
        raise UsageError(
            f"images must be [N, H, W] or [N, H, W, C] with 1 to 4 channels, got {array.shape}"
        )
    x = array.astype(np.float32)
    if x.shape[-1] in (2, 4):  # Drop alpha.
        x = x[..., :-1]
    if x.shape[-1] == 3:  # Same weights as tf.image.rgb_to_grayscale.
        return x @ np.asarray([0.2989, 0.5870, 0.1140], np.float32)
    return x[..., 0]


def _class_thresholds(
    labels: np.ndarray | None, class_names: Sequence[str] | None, n: int
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """(brightness, size) thresholds per image: per class for Fashion-MNIST labels."""
    if labels is None or class_names is None:
        return BRIGHTNESS_THRESHOLD, SIZE_THRESHOLD
    if tuple(class_phrase(c) for c in class_names) != FASHION_MNIST_CLASSES_ORDER:
        return BRIGHTNESS_THRESHOLD, SIZE_THRESHOLD
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != n:
        raise UsageError(f"{len(labels)} labels for {n} images")
    return (
        np.asarray(FASHION_MNIST_BRIGHTNESS_THRESHOLDS, np.float32)[labels],
        np.asarray(FASHION_MNIST_SIZE_THRESHOLDS, np.float32)[labels],
    )


def measure_attributes(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Measures brightness and size of the object in each image.

    Object pixels are those above `OBJECT_PIXEL_THRESHOLD` (RGB is turned into luminance
    first, alpha dropped). An image without object pixels is dark and small. With
    Fashion-MNIST labels (and its class names) each image is compared with its class's
    medians; otherwise with the global ones.

    Args:
      images: [N, H, W] or [N, H, W, C] on the 0..255 scale (uint8, or floats; generated
        images in [-1, 1] must be mapped back with (x + 1) * 127.5 first).
      labels: class of each image (optional).
      class_names: the dataset's class names (with `labels`).

    Returns:
      {"brightness": int64 [N] index into BRIGHTNESS_WORDS, "size": int64 [N] index into
      SIZE_WORDS, "mean_intensity": float32 [N], "area": float32 [N]} (the last two are
      the measured values the indices threshold).

    Raises:
      UsageError: Wrong rank, channel count or scale.
    """
    x = _gray(images)
    if x.ndim != 3:
        raise UsageError(f"images must be [N, H, W] or [N, H, W, C], got {np.shape(images)}")
    objects = x > OBJECT_PIXEL_THRESHOLD
    count = objects.sum(axis=(1, 2))
    area = (count / max(x.shape[1] * x.shape[2], 1)).astype(np.float32)
    mean_intensity = ((x * objects).sum(axis=(1, 2)) / np.maximum(count, 1)).astype(np.float32)
    brightness_threshold, size_threshold = _class_thresholds(labels, class_names, len(x))
    return {
        "brightness": (mean_intensity > brightness_threshold).astype(np.int64),
        "size": (area > size_threshold).astype(np.int64),
        "mean_intensity": mean_intensity,
        "area": area,
    }


def _with_articles(text: str) -> str:
    """Replaces each "{a}" marker with "a " or "an " for the word that follows it."""
    parts = text.split("{a}")
    out = parts[0]
    for part in parts[1:]:
        out += ("an " if part[:1] in "aeiou" and part[:1] else "a ") + part
    return out


def _pool(nouns: Sequence[str], kind: str, brightness: int, size: int) -> list[str]:
    """Every caption of one kind for one (class, brightness, size) combination."""
    b_words = BRIGHTNESS_SYNONYMS[BRIGHTNESS_WORDS[brightness]]
    s_words = SIZE_SYNONYMS[SIZE_WORDS[size]]
    captions = []
    for template in _TEMPLATES[kind]:
        for n in nouns:
            for b in b_words if "{b}" in template else ("",):
                for s in s_words if "{s}" in template else ("",):
                    for bg in BACKGROUND_WORDS if "{bg}" in template else ("",):
                        filled = template.replace("{n}", n).replace("{b}", b)
                        filled = filled.replace("{s}", s).replace("{bg}", bg)
                        captions.append(_with_articles(filled))
    return captions


def make_captions(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    per_image: int = 10,
    seed: int = 0,
) -> np.ndarray:
    """Writes `per_image` different captions for each image.

    Caption j of an image states: the class only, class and brightness, class and size,
    or all three, cycling through these four kinds from a random start per image; its
    template and synonyms are drawn without replacement within the kind, so an image's
    captions are all different as long as `per_image` <= 4 x the smallest pool (about
    100 for Fashion-MNIST; beyond that captions repeat).

    Args:
      images: uint8 [N, H, W] or [N, H, W, C] (see `measure_attributes`).
      labels: int [N], indices into `class_names`.
      class_names: The dataset's class names.
      per_image: Captions per image (K).
      seed: The same images, labels and seed give the same captions.

    Returns:
      A numpy array of Python `str`, [N, per_image].

    Raises:
      UsageError: Shapes that do not match, a label out of range, per_image < 1.
    """
    if not isinstance(per_image, (int, np.integer)) or per_image < 1:
        raise UsageError(f"captions per image must be a positive integer, got {per_image!r}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise UsageError(f"need one label per image: {len(images)} images, labels {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise UsageError(
            f"labels must be in 0..{len(class_names) - 1} (the class names), "
            f"got {labels.min()}..{labels.max()}"
        )
    attributes = measure_attributes(images, labels, class_names)
    n = len(labels)
    # Every draw is made up front, one row per image, so an image's captions depend only
    # on (seed, its index, its class and attributes).
    keys = np.random.default_rng(seed).random((n, 1 + 2 * len(_KINDS)))
    first_kind = (keys[:, 0] * len(_KINDS)).astype(np.int64)
    start_keys, stride_keys = np.split(keys[:, 1:], 2, axis=1)
    nouns = [class_nouns(name) for name in class_names]
    combo = (labels.astype(np.int64) * 2 + attributes["brightness"]) * 2 + attributes["size"]
    slot_kind = (np.arange(per_image)[None, :] + first_kind[:, None]) % len(_KINDS)
    slot_rank = np.broadcast_to(np.arange(per_image) // len(_KINDS), (n, per_image))
    captions = np.empty((n, per_image), dtype=object)
    for c in np.unique(combo):
        members = np.flatnonzero(combo == c)
        label, rest = divmod(int(c), 4)
        for kind_index, kind in enumerate(_KINDS):
            pool = np.asarray(_pool(nouns[label], kind, rest // 2, rest % 2), dtype=object)
            # Distinct picks without a pool-sized draw per image: start + rank * stride
            # (mod the pool size), with the stride coprime to the pool size.
            strides = np.asarray(
                [t for t in range(1, len(pool)) if math.gcd(t, len(pool)) == 1] or [1]
            )
            start = (start_keys[members, kind_index] * len(pool)).astype(np.int64)
            stride = strides[(stride_keys[members, kind_index] * len(strides)).astype(np.int64)]
            rows, cols = np.nonzero(slot_kind[members] == kind_index)
            picked = (start[rows] + slot_rank[members][rows, cols] * stride[rows]) % len(pool)
            captions[members[rows], cols] = pool[picked]
    return captions.astype(str)


def caption_attributes(
    caption: str, class_names: Sequence[str] = FASHION_MNIST_CLASSES
) -> dict[str, int | None]:
    """Reads which class, brightness and size a caption states.

    Words are matched after lower-casing; the word before "background" describes the
    background, not the object, and is ignored. The longest class phrase wins ("ankle
    boot" over "boot", "t-shirt" is one word and never "shirt").

    Args:
      caption: Any text.
      class_names: The dataset's class names (Fashion-MNIST's by default).

    Returns:
      {"class": index into class_names or None, "brightness": index into
      BRIGHTNESS_WORDS or None, "size": index into SIZE_WORDS or None}; None where the
      caption states nothing (or contradicts itself).
    """
    words = _WORD.findall(str(caption).lower())
    words = [w for i, w in enumerate(words) if words[i + 1 : i + 2] != ["background"]]
    text = " " + " ".join(words) + " "
    found_class = set()
    phrases = sorted(
        ((phrase, index) for index, name in enumerate(class_names) for phrase in class_nouns(name)),
        key=lambda item: -len(item[0]),
    )
    for phrase, index in phrases:
        if f" {phrase} " in text:
            found_class.add(index)
            text = text.replace(f" {phrase} ", " ")

    def stated(synonyms: dict[str, tuple[str, ...]], canonical: Sequence[str]) -> int | None:
        hits = {i for i, word in enumerate(canonical) for s in synonyms[word] if s in words}
        return hits.pop() if len(hits) == 1 else None

    return {
        "class": found_class.pop() if len(found_class) == 1 else None,
        "brightness": stated(BRIGHTNESS_SYNONYMS, BRIGHTNESS_WORDS),
        "size": stated(SIZE_SYNONYMS, SIZE_WORDS),
    }


def caption_agreement(
    images: np.ndarray,
    labels: np.ndarray,
    captions: Sequence[str],
    class_names: Sequence[str] | None,
    correct: np.ndarray,
) -> dict[str, float]:
    """How well images made from captions follow the caption's words.

    Args:
      images: the generated images on the 0..255 scale (see `measure_attributes`).
      labels: the class each caption names.
      captions: the captions the images were made from.
      class_names: the dataset's class names (with `labels`, for the class medians).
      correct: per image, whether a classifier put it in its caption's class.

    Returns:
      `class_only_accuracy` (the mean of `correct` over captions with no brightness or size
      word; NaN when there are none), and per attribute (brightness, size) `<a>_agreement`,
      the fraction of captions stating it whose image measures as stated (chance about 0.5;
      NaN when none states it), and `<a>_captions`, how many stated it.
    """
    correct = np.asarray(correct, bool)
    measured = measure_attributes(images, labels, class_names)
    stated = [caption_attributes(str(c)) for c in captions]
    plain = np.asarray([s["brightness"] is None and s["size"] is None for s in stated], dtype=bool)
    result = {
        "class_only_accuracy": float(np.mean(correct[plain])) if plain.any() else float("nan")
    }
    for key in ("brightness", "size"):
        pairs = zip(stated, measured[key], strict=True)
        hits = [m == s[key] for s, m in pairs if s[key] is not None]
        result[f"{key}_agreement"] = float(np.mean(hits)) if hits else float("nan")
        result[f"{key}_captions"] = len(hits)
    return result


def stated_attributes(
    captions: np.ndarray | Sequence[str], class_names: Sequence[str] = FASHION_MNIST_CLASSES
) -> np.ndarray:
    """What each caption states of brightness and size, as `caption_attributes` reads it.

    Args:
      captions: str array of any shape (e.g. [N, K], `make_captions`' output).
      class_names: The dataset's class names (their phrases are not read as attributes).

    Returns:
      int32 [*captions.shape, 2]: (brightness, size) indices into BRIGHTNESS_WORDS and
      SIZE_WORDS, -1 where the caption does not state the attribute. Each distinct caption
      is read once (generated captions repeat: their pools are small).
    """
    array = np.asarray(captions, dtype=object)
    unique, inverse = np.unique(array.reshape(-1).astype(str), return_inverse=True)
    read = np.full((len(unique), 2), -1, np.int32)
    for i, caption in enumerate(unique):
        stated = caption_attributes(str(caption), class_names)
        for column, key in enumerate(("brightness", "size")):
            if stated[key] is not None:
                read[i, column] = stated[key]
    return read[inverse.reshape(-1)].reshape((*array.shape, 2))
