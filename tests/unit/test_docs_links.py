"""Every relative link of the README and docs/ points at a file that exists, and at a heading that exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.markdown import DOCS, README, ROOT, anchors, links

PAGES = [README, *sorted(DOCS.glob("*.md"))]
#: Pages being written on other branches this hour, linked before they are merged. Remove each once it exists.
PENDING_PAGES = {DOCS / "reader.md"}


def relative_links(page: Path) -> list[tuple[Path, str]]:
    """Each link of ``page`` that stays in the repository: the file it names (the page itself for ``#anchor``)
    and its anchor ("" for none)."""
    found = []
    for target in links(page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        found.append(((page.parent / path).resolve() if path else page, anchor))
    return found


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_points_at_an_existing_file_and_heading(page: Path) -> None:
    for target, anchor in relative_links(page):
        if target in PENDING_PAGES and not target.exists():
            continue
        assert target.exists(), f"{page.name} links to {target.relative_to(ROOT)}, which does not exist"
        if anchor:
            assert target.suffix == ".md", f"{page.name} links to #{anchor} in {target.name}"
            assert anchor in anchors(target.read_text()), f"{page.name} links to {target.name}#{anchor}: no heading"


def test_the_link_reader_sees_links_and_github_anchors() -> None:
    assert relative_links(README), "the README has no relative links"
    assert "redis-why-noeviction" in anchors("## Redis: why `noeviction`\n")
    assert {"a", "a-1"} <= anchors("# A\n## A\n")
