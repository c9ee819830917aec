"""Built presets exported once for the browser demo (`python -m zoo.demo --preset=NAME`).

Each preset is exported by `export.export_lib.export` (SavedModel and the three TFLite
flavours, parity checked, as for a run) under its own name into a cache directory,
`$GANZOO_CACHE/preset_exports/` (default `~/.cache/ganzoo`), and exported again only when its
weights change (their sha256 is kept beside the export).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence

from zoo.presets import store

STAMP = ".preset.json"


def cache_root() -> str:
    """`$GANZOO_CACHE/preset_exports/<presets root digest>` (one cache per presets root)."""
    base = os.environ.get("GANZOO_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "ganzoo"
    )
    digest = hashlib.sha256(store.presets_root().encode()).hexdigest()[:12]
    return os.path.join(base, "preset_exports", digest)


def built_presets() -> list[str]:
    """The names of every built preset of the presets root, in the recipes' order."""
    return store.built_names()


def export_presets(names: Sequence[str], log: Callable[[str], None] = print) -> str:
    """Exports the presets `names` (checked first) into `cache_root()` unless already there.

    Returns:
      The export root (`OUT` of `python -m export`: `OUT/<name>.json`, TFLite files).

    Raises:
      UsageError: a preset unknown, not built or corrupt.
    """
    from export import export_lib

    out = cache_root()
    os.makedirs(out, exist_ok=True)
    for name in names:
        directory = store.preset_dir(name)
        name = store.strip_prefix(name)
        weights = store.read_manifest(directory, name)["files"]["weights.npz"]["sha256"]
        stamp_path = os.path.join(out, name + STAMP)
        try:
            with open(stamp_path, encoding="utf-8") as f:
                fresh = json.load(f).get("weights_sha256") == weights
        except (OSError, ValueError):
            fresh = False
        if fresh and os.path.isfile(os.path.join(out, f"{name}.json")):
            continue
        log(f"exporting preset {name} for the demo into {out}")
        export_lib.export(directory, out, name=name, overwrite=True)
        with open(stamp_path, "w", encoding="utf-8") as f:
            json.dump({"weights_sha256": weights}, f)
    return out
