"""The presets' export for the demo (`python -m zoo.demo --preset=NAME`): exported once into
the cache, again only when the preset's weights change."""

from __future__ import annotations

import json

import pytest

from tests.presets.conftest import TINY_NAME, copy_root

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("presets")]


def test_presets_are_exported_once_into_the_cache(tiny_root, tmp_path, monkeypatch):
    from zoo.demo import manifest
    from zoo.presets import serve
    from zoo.presets.build import write_manifest

    root = copy_root(tiny_root, tmp_path / "root")
    monkeypatch.setenv("GANZOO_PRESETS", str(root))
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    assert serve.built_presets() == [TINY_NAME]
    logged: list[str] = []
    out = serve.export_presets([TINY_NAME], log=logged.append)
    assert len(logged) == 1 and out.startswith(str(tmp_path / "cache"))
    (described,) = manifest.load(out, TINY_NAME)
    assert (described.name, described.family) == (TINY_NAME, "gan")
    assert json.loads((tmp_path / "cache").joinpath(out, f"{TINY_NAME}.json").read_text())

    assert serve.export_presets([f"preset:{TINY_NAME}"], log=logged.append) == out
    assert len(logged) == 1  # unchanged weights: the cached export is used

    card = root / TINY_NAME / "card.json"
    card.write_text(card.read_text() + " ")
    write_manifest(str(root / TINY_NAME), TINY_NAME)
    serve.export_presets([TINY_NAME], log=logged.append)
    assert len(logged) == 1  # only the weights count

    weights = root / TINY_NAME / "weights.npz"
    import numpy as np

    arrays = dict(np.load(weights))
    arrays[sorted(arrays)[0]] = arrays[sorted(arrays)[0]] * 0
    np.savez(weights, **arrays)
    write_manifest(str(root / TINY_NAME), TINY_NAME)
    serve.export_presets([TINY_NAME], log=logged.append)
    assert len(logged) == 2
