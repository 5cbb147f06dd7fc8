"""docs/layout.md and the tree agree: every package and top-level module of the layer is named there."""

from __future__ import annotations

import re

from tests.markdown import DOCS, ROOT

PACKAGE = ROOT / "shared" / "hera_sessions"


def layout_block() -> str:
    return (DOCS / "layout.md").read_text().split("```", 2)[1]


def test_every_folder_of_the_layer_is_in_the_layout() -> None:
    block = layout_block()
    folders = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("__init__.py"))
    for init in folders:
        folder = init.removesuffix("__init__.py").rstrip("/")
        if not folder:
            continue
        leaf = folder.rsplit("/", 1)[-1]
        assert re.search(rf"(^|[\s/]){re.escape(leaf)}/", block, re.M), f"{folder}/ is not in docs/layout.md"


def test_every_top_level_module_of_the_layer_is_in_the_layout() -> None:
    block = layout_block()
    for module in sorted(PACKAGE.glob("*.py")):
        if module.name != "__init__.py":
            assert module.name in block, f"{module.name} is not in docs/layout.md"


def test_the_layout_names_nothing_that_is_gone() -> None:
    block = layout_block()
    for name in re.findall(r"\b([a-z_0-9]+\.py)\b", block):
        assert list(ROOT.rglob(name)), f"docs/layout.md names {name}, which does not exist"
