"""Rows of Markdown pipe tables, read line by line.

Masking and ``validate --explain`` work on an item's Markdown source, not on rendered
HTML: what they change must be the source every channel renders from. They need only
to know which line is a table row and what its cells are.
"""

from __future__ import annotations

import re

_RULE_CELL = re.compile(r"\s*:?-+:?\s*")


def pipe_cells(line: str) -> list[str] | None:
    """The cells of a Markdown pipe-table row, or None if ``line`` is not one."""
    text = line.strip()
    if not text.startswith("|"):
        return None
    # Split on pipes that are not escaped (\|); the outer pipes give empty ends.
    parts = re.split(r"(?<!\\)\|", text)
    return parts[1:-1] if text.endswith("|") else parts[1:]


def is_rule(cells: list[str] | None) -> bool:
    """Whether a row is a table's |---|:---:| separator."""
    return bool(cells) and all(_RULE_CELL.fullmatch(c) for c in cells)
