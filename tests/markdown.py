"""Reading the README and docs/ as the tests that keep them true need: sections, tables, code blocks, links."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)


def section(text: str, heading: str) -> str:
    """The body of the section under ``heading`` (a ``## `` line, as written), up to the next ``## ``."""
    marker = f"\n## {heading}\n"
    assert marker in text, f"no section {heading!r}"
    return text.split(marker, 1)[1].split("\n## ", 1)[0]


def table(text: str, header: str) -> list[list[str]]:
    """The rows of the table whose header line is ``header``, each a list of its cells (``\\|`` stays a ``|``)."""
    lines = text.splitlines()
    start = lines.index(header) + 2  # the header and the |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        rows.append([cell.strip().replace("\\|", "|") for cell in cells])
    return rows


def table_lines(text: str, header: str) -> str:
    """The table whose header line is ``header`` as written, every line ending with a newline."""
    lines = text.splitlines()
    start = lines.index(header)
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end]) + "\n"


def fenced_after(text: str, marker: str) -> str:
    """The body of the first fenced code block after the line ``marker``."""
    after = text.split(f"\n{marker}\n", 1)[1]
    block = _FENCE.search(after)
    assert block is not None, f"no code block after {marker!r}"
    return block.group(0).split("\n", 1)[1].rsplit("\n", 1)[0] + "\n"


def without_code(text: str) -> str:
    """The text without fenced blocks and inline code spans (where brackets are not links)."""
    return re.sub(r"`[^`\n]*`", "", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """The targets of every ``[label](target)`` outside code."""
    return re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", without_code(text))


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces as ``-``, repeats numbered."""
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", _FENCE.sub("", text), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out
