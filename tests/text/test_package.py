"""zoo.text is a leaf package: it exports its public names and imports no driver code."""

from __future__ import annotations

import ast
import pathlib

import zoo.text

PACKAGE = pathlib.Path(zoo.text.__file__).parent
FORBIDDEN = ("zoo.train", "zoo.eval", "zoo.export", "export", "zoo.models", "zoo.demo", "zoo.tools")


def _imports(path: pathlib.Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_no_module_of_zoo_text_imports_the_drivers_or_the_families():
    modules = sorted(PACKAGE.glob("*.py"))
    assert {m.stem for m in modules} >= {"tokenizer", "encoder", "pretrain", "store"}
    for module in modules:
        bad = [
            name
            for name in _imports(module)
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
        ]
        assert not bad, f"{module.name} imports {bad}"


def test_public_names_are_exported():
    for name in zoo.text.__all__:
        assert getattr(zoo.text, name) is not None
    assert {"Tokenizer", "build_text_encoder", "pretrain_and_save", "load_text_encoder"} <= set(
        zoo.text.__all__
    )
