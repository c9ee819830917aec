"""Pretrained presets: named recipes with their trained weights, golden batch and model card.

    python -m zoo.presets list                 # every preset, built or only declared
    python -m zoo.presets build gan_ring8      # train it from scratch with its recipe and seed
    python -m zoo.presets verify               # sha256 and golden batch of every built preset
    zoo.load_generator("preset:gan_ring8")     # numpy callable, as for an export

The recipes are `zoo.presets.recipes`; a built preset is the directory `zoo/presets/<name>/`
(`zoo.presets.store`), made by `zoo.presets.build`. This package imports nothing itself: its
modules sit at different layers (pyproject.toml's import-linter contracts).
"""
