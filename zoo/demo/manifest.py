"""What the demo page makes of an export's `<name>.json`, checked in Python before serving.

The rules are those of `demo/web/src/manifest.js` (keep the two in step): the UI follows the
TFLite inputs, not the family name, so a family whose inputs the page knows works unchanged.

| inputs          | kind            | UI                                                  |
|-----------------|-----------------|-----------------------------------------------------|
| `z`             | `unconditional` | sample grid, new samples, spherical interpolation   |
| `z`, `label`    | `conditional`   | class picker, one row per class                     |
| `z`, `tokens`   | `text`          | caption box tokenised with the manifest's tokenizer |
| `images`        | `translation`   | A→B and B→A with the reconstruction                 |
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from zoo.errors import UsageError

FLAVOURS = ("float32", "float16", "int8")
KINDS = {
    ("z",): "unconditional",
    ("label", "z"): "conditional",
    ("tokens", "z"): "text",
    ("images",): "translation",
}
TRANSLATION_SIGNATURES = ("a_to_b", "b_to_a")
# What `describe` (and the page's describe) reads of a manifest: the server sends only these.
PAGE_FIELDS = ("name", "family", "step", "signatures", "tflite", "tokenizer")
PAGE_SUBFIELDS = {"data": ("class_names",), "model_config": ("num_classes",)}


@dataclasses.dataclass
class Described:
    """An export as the page sees it.

    Attributes:
      name: the model name (`<name>.json`).
      family: the family that trained it.
      kind: `unconditional`, `conditional`, `text` or `translation`.
      flavours: the TFLite flavours present, in `FLAVOURS` order.
      files: flavour -> signature -> TFLite file name.
      signatures: the signatures the page runs (translation: a_to_b, b_to_a).
      inputs: input name -> {"dtype", "shape"} (batch axis -1).
      outputs: output name -> (shape without the batch axis, is it an image).
      latent_dim: size of z (0 for translation).
      class_names: names of the classes (conditional).
      tokenizer: the manifest's tokenizer object (text).
      manifest: the whole manifest.
    """

    name: str
    family: str
    kind: str
    flavours: list[str]
    files: dict[str, dict[str, str]]
    signatures: list[str]
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, tuple[list[int], bool]]
    latent_dim: int
    class_names: list[str]
    tokenizer: dict[str, Any] | None
    manifest: dict[str, Any]


def _fail(name: str, message: str) -> UsageError:
    return UsageError(f"{name}.json: {message}")


def _js(value: Any) -> str:
    """`value` as the page's JSON.stringify writes it (the messages match the page's)."""
    return json.dumps(value, separators=(",", ":"))


def _is_shape(shape: Any) -> bool:
    return isinstance(shape, list) and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in shape
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _output(name: str, manifest: dict, signature: str, output: str) -> tuple[list[int], bool]:
    spec = (manifest.get("signatures") or {}).get(signature, {}).get("outputs", {}).get(output)
    if not isinstance(spec, dict) or not _is_shape(spec.get("shape")):
        raise _fail(name, f'signature {signature} has no output "{output}" with a shape')
    shape = spec["shape"][1:]
    if any(not _is_int(d) or d < 1 for d in shape):
        raise _fail(
            name, f"output {output} of {signature} has an unknown size {_js(spec['shape'])}"
        )
    if len(shape) == 3 and shape[2] in (1, 3):
        return shape, True
    if len(shape) == 1 and shape[0] in (1, 2):
        return shape, False
    raise _fail(
        name,
        f"output {output} has shape {_js(spec['shape'])}; the demo shows [batch, H, W, 1 or 3] "
        "images or [batch, 1 or 2] points",
    )


def describe(manifest: Any, name: str) -> Described:
    """Checks a manifest against what the page knows.

    Args:
      manifest: the parsed `<name>.json`.
      name: the model name.

    Returns:
      A `Described`.

    Raises:
      UsageError: one line saying what does not match.
    """
    if not isinstance(manifest, dict):
        raise _fail(name, "not a JSON object")
    if not isinstance(manifest.get("family"), str):
        raise _fail(name, 'no "family"')
    entries = manifest.get("tflite")
    if not isinstance(entries, list) or not entries:
        raise _fail(
            name,
            'lists no TFLite files ("tflite" is empty): export with a float32, float16 or '
            "int8 format",
        )
    files: dict[str, dict[str, str]] = {}
    inputs_by_signature: dict[str, dict] = {}
    for entry in entries:
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("file"), str)
            and "/" not in entry["file"]
            and entry.get("flavour") in FLAVOURS
            and isinstance(entry.get("signature"), str)
            and isinstance(entry.get("inputs"), dict)
        )
        if not ok:
            raise _fail(name, 'a "tflite" entry lacks file, flavour, signature or inputs')
        for key, spec in entry["inputs"].items():
            if (
                not isinstance(spec, dict)
                or not isinstance(spec.get("dtype"), str)
                or not _is_shape(spec.get("shape"))
                or not spec["shape"]
            ):
                raise _fail(name, f"input {key} of {entry['file']} has no dtype and shape")
        files.setdefault(entry["flavour"], {})[entry["signature"]] = entry["file"]
        inputs_by_signature.setdefault(entry["signature"], entry["inputs"])
    # The first signature whose inputs the page knows (gan_int_cls also exports from_embedding).
    signatures = list(inputs_by_signature)
    keys = {s: tuple(sorted(inputs_by_signature[s])) for s in signatures}
    chosen = next((s for s in signatures if keys[s] in KINDS), None)
    if chosen is None:
        shown = " | ".join(",".join(keys[s]) for s in signatures)
        raise _fail(
            name,
            f"the TFLite inputs ({shown}) are not ones the demo knows: z; z and label; "
            "z and tokens; images",
        )
    inputs = inputs_by_signature[chosen]
    kind = KINDS[keys[chosen]]
    flavours = [f for f in FLAVOURS if f in files]
    needed = list(TRANSLATION_SIGNATURES) if kind == "translation" else [chosen]
    for flavour in flavours:
        for signature in needed:
            if signature not in files[flavour]:
                raise _fail(name, f"no {flavour} TFLite file for signature {signature}")
    output_names = list(
        (manifest.get("signatures") or {}).get(needed[0], {}).get("outputs", {}) or {}
    )
    if "images" not in output_names:
        raise _fail(name, f'signature {needed[0]} has no "images" output')
    outputs = {out: _output(name, manifest, needed[0], out) for out in output_names}
    described = Described(
        name=name,
        family=manifest["family"],
        kind=kind,
        flavours=flavours,
        files=files,
        signatures=needed,
        inputs=inputs,
        outputs=outputs,
        latent_dim=0,
        class_names=[],
        tokenizer=None,
        manifest=manifest,
    )
    if kind == "translation":
        shape, image = outputs["images"]
        if not image or inputs["images"]["shape"][1:] != shape:
            given = inputs["images"]["shape"][1:]
            raise _fail(name, f"images in ({_js(given)}) and out ({_js(shape)}) differ")
        return described
    z = inputs["z"]
    if z["dtype"] != "float32" or len(z["shape"]) != 2 or not (z["shape"][1] or 0) > 0:
        raise _fail(name, f"input z is {z['dtype']} {_js(z['shape'])}, not float32 [batch, latent]")
    described.latent_dim = int(z["shape"][1])
    if kind == "conditional":
        label = inputs["label"]
        if not label["dtype"].startswith("int") or len(label["shape"]) != 1:
            raise _fail(
                name, f"input label is {label['dtype']} {_js(label['shape'])}, not int [batch]"
            )
        classes = (manifest.get("data") or {}).get("class_names")
        count = (manifest.get("model_config") or {}).get("num_classes")
        if isinstance(classes, list) and classes:
            described.class_names = [str(c) for c in classes]
        elif _is_int(count) and count > 0:
            described.class_names = [f"class {i}" for i in range(count)]
        else:
            raise _fail(name, "a class-conditional model without data.class_names")
    if kind == "text":
        tokens = inputs["tokens"]
        spec = manifest.get("tokenizer")
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("vocabulary"), list)
            or not all(_is_int(spec.get(k)) for k in ("max_length", "pad_id", "oov_id"))
        ):
            raise _fail(
                name, 'a text model without a "tokenizer" {vocabulary, max_length, pad_id, oov_id}'
            )
        if (
            not tokens["dtype"].startswith("int")
            or len(tokens["shape"]) != 2
            or tokens["shape"][1] != spec["max_length"]
        ):
            raise _fail(
                name,
                f"input tokens is {tokens['dtype']} {_js(tokens['shape'])}, not int "
                f"[batch, {spec['max_length']}] (tokenizer.max_length)",
            )
        described.tokenizer = spec
    return described


def for_page(manifest: Any) -> Any:
    """The part of a manifest the page reads (`describe`'s fields), as the server sends it.

    Everything else stays on the machine: the manifest names the checkpoint by its absolute
    path, and `data` or `model_config` may hold dataset and encoder directories.
    """
    if not isinstance(manifest, dict):
        return manifest
    page = {k: manifest[k] for k in PAGE_FIELDS if k in manifest}
    for section, fields in PAGE_SUBFIELDS.items():
        if isinstance(manifest.get(section), dict):
            page[section] = {k: manifest[section][k] for k in fields if k in manifest[section]}
    return page


def model_names(export_dir: str) -> list[str]:
    """Names of the `<name>.json` manifests in an export directory, sorted."""
    return sorted(
        entry[: -len(".json")]
        for entry in os.listdir(export_dir)
        if entry.endswith(".json")
        and not entry.startswith(".")
        and os.path.isfile(os.path.join(export_dir, entry))
    )


def read_manifest(path: str) -> Any:
    """The parsed JSON file `<name>.json` at `path`.

    Raises:
      OSError: it cannot be read.
      UsageError: it is not valid JSON, or nested too deeply to parse.
    """
    name = os.path.basename(path)
    with open(path, "rb") as f:
        try:
            return json.load(f)
        except ValueError as err:
            raise UsageError(f"{name} is not valid JSON ({err})") from err
        except RecursionError as err:
            raise UsageError(f"{name} is nested too deeply to read") from err


def load(export_dir: str, name: str | None = None) -> list[Described]:
    """Reads and checks the export's manifest(s) and that every TFLite file they list exists.

    Args:
      export_dir: `OUT` of `python -m export --export_dir=OUT`.
      name: one model (`OUT/<name>.json`); default: every model there.

    Raises:
      UsageError: no such directory, no manifest, no TFLite file, or a manifest that does not
        match (one line).
    """
    if not os.path.isdir(export_dir):
        raise UsageError(f"--export_dir {export_dir} is not a directory")
    if name is not None:
        path = os.path.join(export_dir, f"{name}.json")
        if not os.path.isfile(path):
            raise UsageError(
                f"no {name}.json in {export_dir} (models there: "
                f"{', '.join(model_names(export_dir)) or 'none'})"
            )
        names = [name]
    else:
        names = model_names(export_dir)
    if not names:
        tflite = [f for f in os.listdir(export_dir) if f.endswith(".tflite")]
        what = "TFLite files without a <name>.json" if tflite else "no TFLite files"
        raise UsageError(
            f"{export_dir} holds {what}: run python -m export --model_dir=RUN "
            f"--export_dir={export_dir} first"
        )
    described = []
    for model in names:
        path = os.path.join(export_dir, f"{model}.json")
        manifest = read_manifest(path)
        item = describe(manifest, model)
        for by_signature in item.files.values():
            for file in by_signature.values():
                if not os.path.isfile(os.path.join(export_dir, file)):
                    raise UsageError(f"{model}.json lists {file}, which is not in {export_dir}")
        described.append(item)
    return described
