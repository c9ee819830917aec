"""A pretrained text encoder on disk: tokenizer, weights and a checksummed description."""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from zoo.errors import UsageError, first_line
from zoo.io import atomic_path, atomic_write_json, read_json, sha256_of
from zoo.text.encoder import build_text_encoder, encoder_config
from zoo.text.tokenizer import Tokenizer

_ENCODER_FORMAT = "ganzoo.text_encoder"
_ENCODER_FORMAT_VERSION = 1
_TOKENIZER_FILE = "tokenizer.json"
_WEIGHTS_FILE = "encoder.weights.h5"
_DESCRIPTION_FILE = "text_encoder.json"


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if value is None or isinstance(value, str):
        return value
    return str(value)


def save_text_encoder(
    directory: str,
    tokenizer: Tokenizer,
    encoder: keras.Model,
    stats: dict[str, Any] | None = None,
) -> None:
    """Writes ``tokenizer.json``, ``encoder.weights.h5`` and ``text_encoder.json`` to `directory`.

    Each file is written atomically; ``text_encoder.json`` (architecture, stats and the SHA-256
    of the other two) goes last, so a reader sees the previous complete set, the new complete
    set, or a set whose checksums do not match (which :func:`load_text_encoder` refuses).
    """
    config = encoder_config(encoder)
    if config["vocabulary_size"] != tokenizer.vocabulary_size:
        raise UsageError(
            f"the encoder has {config['vocabulary_size']} embedding rows but the tokenizer "
            f"{tokenizer.vocabulary_size} ids"
        )
    if config["max_length"] != tokenizer.max_length:
        raise UsageError(
            f"the encoder takes {config['max_length']} tokens but the tokenizer makes "
            f"{tokenizer.max_length}"
        )
    os.makedirs(directory, exist_ok=True)
    tokenizer_path = os.path.join(directory, _TOKENIZER_FILE)
    weights_path = os.path.join(directory, _WEIGHTS_FILE)
    atomic_write_json(tokenizer_path, tokenizer.to_json())
    with atomic_path(weights_path, suffix=".weights.h5") as tmp:
        encoder.save_weights(tmp, overwrite=True)
    atomic_write_json(
        os.path.join(directory, _DESCRIPTION_FILE),
        {
            "format": _ENCODER_FORMAT,
            "version": _ENCODER_FORMAT_VERSION,
            "config": config,
            "stats": _json_value(dict(stats or {})),
            "sha256": {
                _TOKENIZER_FILE: sha256_of(tokenizer_path),
                _WEIGHTS_FILE: sha256_of(weights_path),
            },
        },
    )


def has_text_encoder(directory: str) -> bool:
    """Whether `directory` holds a saved text encoder (its description file exists)."""
    return os.path.isfile(os.path.join(directory, _DESCRIPTION_FILE))


def load_text_encoder(directory: str) -> tuple[Tokenizer, keras.Model, dict[str, Any]]:
    """Reads what :func:`save_text_encoder` wrote: ``(tokenizer, encoder, stats)``.

    The encoder is built under the current global dtype policy.

    Raises:
      UsageError: (one line) the directory or a file is missing, corrupt or from another save.
    """
    description_path = os.path.join(directory, _DESCRIPTION_FILE)
    if not os.path.isfile(description_path):
        raise UsageError(f"no text encoder in {directory}: {_DESCRIPTION_FILE} is missing")
    description = read_json(description_path)
    if not isinstance(description, dict) or description.get("format") != _ENCODER_FORMAT:
        raise UsageError(f"{description_path} is not a zoo text encoder description")
    if description.get("version") != _ENCODER_FORMAT_VERSION:
        raise UsageError(
            f"{description_path} has format version {description.get('version')!r}; this zoo "
            f"reads version {_ENCODER_FORMAT_VERSION}"
        )
    checksums = description.get("sha256") or {}
    for file in (_TOKENIZER_FILE, _WEIGHTS_FILE):
        path = os.path.join(directory, file)
        if not os.path.isfile(path):
            raise UsageError(f"text encoder in {directory} is incomplete: {file} is missing")
        if sha256_of(path) != checksums.get(file):
            raise UsageError(
                f"text encoder in {directory}: {file} does not match {_DESCRIPTION_FILE} "
                "(corrupt, or an interrupted save); pretrain it again"
            )
    tokenizer = Tokenizer.from_json(read_json(os.path.join(directory, _TOKENIZER_FILE)))
    config = description.get("config")
    try:
        encoder = build_text_encoder(**config)
        encoder.load_weights(os.path.join(directory, _WEIGHTS_FILE))
    except (TypeError, ValueError, OSError, KeyError) as err:
        raise UsageError(f"cannot load the text encoder in {directory}: {first_line(err)}") from err
    if encoder_config(encoder)["vocabulary_size"] != tokenizer.vocabulary_size:
        raise UsageError(f"text encoder in {directory}: tokenizer and encoder sizes differ")
    return tokenizer, encoder, dict(description.get("stats") or {})
