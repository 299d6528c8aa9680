"""Rows of Markdown pipe tables, read line by line.

Masking and ``validate --explain`` work on an item's Markdown source, not on rendered
HTML: what they change must be the source every channel renders from. They need to
know which line is a table row and what its cells are, however the author wrote the
table: with or without the outer pipes, inside a quote (``> | … |``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RULE_CELL = re.compile(r"\s*:?-+:?\s*")
#: Indentation and quote markers before a row.
_PREFIX = re.compile(r"^[ \t]*(?:>[ \t]?)*")
_PIPE = re.compile(r"(?<!\\)\|")


@dataclass(frozen=True, slots=True)
class Row:
    """A table row as written: what comes before it, its cells (whitespace kept), and
    whether it has the outer pipes, so it can be written back the same way."""

    prefix: str
    cells: list[str]
    lead: bool
    trail: bool

    def join(self, cells: list[str]) -> str:
        return (
            self.prefix + ("|" if self.lead else "") + "|".join(cells) + ("|" if self.trail else "")
        )


def split_row(line: str) -> Row | None:
    """``line`` as a table row, or None if it has no unescaped pipe. Whether it is in
    a table depends on its neighbours (a header is followed by a |---| row)."""
    prefix = _PREFIX.match(line).group(0)
    text = line[len(prefix) :].rstrip()
    if not _PIPE.search(text):
        return None
    parts = _PIPE.split(text)
    lead, trail = text.startswith("|"), len(parts) > 1 and parts[-1] == ""
    parts = parts[1 if lead else 0 : len(parts) - 1 if trail else len(parts)]
    return Row(prefix, parts, lead, trail) if parts else None


def pipe_cells(line: str) -> list[str] | None:
    """The cells of a Markdown pipe-table row, or None if ``line`` is not one."""
    row = split_row(line)
    return row.cells if row is not None else None


def is_rule(cells: list[str] | None) -> bool:
    """Whether a row is a table's |---|:---:| separator."""
    return bool(cells) and all(_RULE_CELL.fullmatch(c) for c in cells)
