"""The browser demo: the exported TFLite generators running in LiteRT.js.

`python -m zoo.demo --export_dir=OUT` serves `demo/web` (the page) and the export on 127.0.0.1;
`--check --screenshot=PATH` drives the page in headless Chromium and compares its tensors with
`ai_edge_litert` in Python (see `zoo.demo.check`).
"""
