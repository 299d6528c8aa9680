"""What preparing did to an item: the changes ``gongkai validate --explain`` shows.

It compares an item as loaded with the item the prepare hooks made of it, field by
field, whatever the plugins were: masking, a local plugin's normalising. The report
must not leak what masking hides, so a "before" value is never shown: it is described
(its kind and length), and the "after" value is shown as every channel will get it.

Masking keeps lengths (a number keeps its separators, a name its length), so changed
characters line up with the originals; a table cell (an address cut short) is compared
as a whole.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any

from .errors import ItemProblem
from .item import Attachment, Item
from .tables import is_rule, pipe_cells

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .intake import Intake
    from .loader import LoadedItem

#: What a run of digits is most likely to be, by its length once separators go.
_DIGIT_KINDS = {18: "an ID number", 15: "a legacy ID number", 11: "a mobile number"}
_NUMBER_CHARS = re.compile(r"[0-9０-９Xx*＊ \-]")


@dataclass(frozen=True, slots=True)
class Change:
    """One change preparing made. ``field`` is the dotted field (``body``,
    ``attachments.0``), ``where`` a place inside it (``line 5``, ``户主, row 2``),
    ``before`` a description of what was there (never the value), ``after`` what
    channels get."""

    field: str
    where: str
    before: str
    after: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        where = f" ({self.where})" if self.where else ""
        return f"{self.field}{where}: {self.before} → {self.after}"


def describe(text: str, after: str = "") -> str:
    """A description of a hidden value: its kind where its shape (or what it became)
    tells, and its length."""
    starred = after.endswith("*") and not after.strip("*").isdigit()
    if starred and re.fullmatch(r"[\u4e00-\u9fff·][\u4e00-\u9fff·\s\u3000]*", text):
        length = len(_SPACES.sub("", text))
        return f"a name of {length} characters"
    if after and len(after) < len(text) and text.startswith(after):
        return f"an address of {len(text)} characters"
    digits = re.sub(r"[ \-\u00a0\u3000\uff0d\u2013\u2014.．+＋]", "", text)
    if digits and re.fullmatch(r"[0-9０-９]+[Xx]?", digits):
        if digits[0] in "0０" and 10 <= len(digits) <= 12 and not digits.startswith("0086"):
            return "a landline"
        kind = _DIGIT_KINDS.get(len(digits))
        if kind is None and 16 <= len(digits) <= 19:
            kind = "a bank card number"
        if kind is None and len(digits) in (13, 15) and digits.lstrip("0").startswith("86"):
            kind = "a mobile number"  # with its country code
        return kind or f"a number of {len(digits)} digits"
    return f"text of {len(text)} characters"


def redact(text: str) -> str:
    """``text`` with long digit runs starred, for names shown in a report (a file name
    or an id the privacy guard refuses may hold a number)."""
    return re.sub(r"[0-9０-９]{7,}", lambda m: "*" * len(m.group()), text)


_CJK = re.compile(r"[\u4e00-\u9fff]")
_SPACES = re.compile(r"[\s\u3000]")


def _compound_surnames() -> frozenset[str]:
    from gongkai.plugins.masking import COMPOUND_SURNAMES  # plugins import core, not back

    return COMPOUND_SURNAMES


def _spans(before: str, after: str) -> list[tuple[int, int, int, int]]:
    """The changed spans of two versions of a line, each widened to the whole number
    or word it falls in, so 138 0013 8000 → 138 **** 8000 is one change."""
    spans = []
    for tag, b0, b1, a0, a1 in SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if (
            set(after[a0:a1]) == {"*"}
            and _CJK.match(before[b0])
            and b0
            and _CJK.match(before[b0 - 1])
        ):
            # A name masked in running text keeps its surname: show the whole name.
            b0, a0 = b0 - 1, a0 - 1
            if b0 > 0 and before[b0 - 1 : b0 + 1] in _compound_surnames():
                b0, a0 = b0 - 1, a0 - 1
        elif b1 - b0 == a1 - a0:  # masked in place: widen over the number it belongs to
            while b0 > 0 and _NUMBER_CHARS.match(before[b0 - 1]) and before[b0 - 1] != " ":
                b0, a0 = b0 - 1, a0 - 1
            while b1 < len(before) and _NUMBER_CHARS.match(before[b1]) and before[b1] != " ":
                b1, a1 = b1 + 1, a1 + 1
        if spans and b0 <= spans[-1][1]:  # merge with the one before
            spans[-1] = (spans[-1][0], b1, spans[-1][2], a1)
        else:
            spans.append((b0, b1, a0, a1))
    return spans


def text_changes(field: str, before: str, after: str) -> list[Change]:
    """Changes between two versions of a text field, line by line; table rows cell by
    cell under their column header."""
    if before == after:
        return []
    lines_before, lines_after = before.split("\n"), after.split("\n")
    if len(lines_before) != len(lines_after):  # a plugin rewrote the text: say so whole
        return [Change(field, "", describe(before), f"{len(after)} characters, rewritten")]
    found: list[Change] = []
    header: list[str] = []
    row = 0
    multiline = len(lines_before) > 1
    for number, (old, new) in enumerate(zip(lines_before, lines_after, strict=True), 1):
        cells_old, cells_new = pipe_cells(old), pipe_cells(new)
        if cells_old is None:
            header, row = [], 0
        elif not header:
            header = [c.strip() for c in cells_old]
        elif not is_rule(cells_old):
            row += 1
        if old == new:
            continue
        where = f"line {number}" if multiline else ""
        if cells_old is not None and cells_new is not None and len(cells_old) == len(cells_new):
            for index, (a, b) in enumerate(zip(cells_old, cells_new, strict=True)):
                if a != b:
                    column = header[index] if index < len(header) else f"column {index + 1}"
                    place = f"{where}, {column}, row {row}".lstrip(", ")
                    found.append(Change(field, place, describe(a.strip(), b.strip()), b.strip()))
            continue
        for b0, b1, a0, a1 in _spans(old, new):
            found.append(Change(field, where, describe(old[b0:b1], new[a0:a1]), new[a0:a1]))
    return found


def _values(value: Any, prefix: str) -> dict[str, str]:
    """A field's strings by dotted name (keywords.0…)."""
    if isinstance(value, str):
        return {prefix: value}
    if isinstance(value, list | tuple):
        found: dict[str, str] = {}
        for n, part in enumerate(value):
            found.update(_values(part, f"{prefix}.{n}"))
        return found
    return {}


def _attachment_change(n: int, before: Attachment, after: Attachment) -> list[Change]:
    found = text_changes(f"attachments.{n}.title", before.title, after.title)
    if before.sha256 != after.sha256:
        found.append(
            Change(
                f"attachments.{n}",
                redact(before.filename),
                f"the file as written (sha256 {before.sha256[:12]}…)",
                f"a masked copy (sha256 {after.sha256[:12]}…): {_cell_summary(before, after)}",
            )
        )
    return found


def _cell_summary(before: Attachment, after: Attachment) -> str:
    """How many cells changed in each column of a masked copy, as far as it can be read
    as rows (CSV and XLSX); other files say only that they changed."""
    from gongkai.plugins.sheets import rows_of  # plugins import core, not the reverse

    try:
        old, new = rows_of(before.path), rows_of(after.path)
    except (OSError, ValueError):
        return "changed"
    counts: Counter[int] = Counter()
    first = None
    for number, (row_old, row_new) in enumerate(zip(old, new, strict=False)):
        for index, (a, b) in enumerate(zip(row_old, row_new, strict=False)):
            if a != b:
                counts[index] += 1
                first = number if first is None else first
    if first is None:
        return "changed"
    # A list's header is the row just above its first masked row.
    header = old[first - 1] if first else []
    parts = [
        f"{count} in {header[i] if i < len(header) and header[i] else f'column {i + 1}'}"
        for i, count in sorted(counts.items())
    ]
    return "cells changed: " + ", ".join(parts)


def item_changes(before: Item, after: Item) -> list[Change]:
    """Every change preparing made to ``before``, field by field, in field order."""
    found: list[Change] = []
    for name in Item.model_fields:
        old, new = getattr(before, name), getattr(after, name)
        if old == new or name in ("index_number", "openness", "public_by_law"):
            continue  # defaults filled in, not content changed
        if name == "attachments":
            for n, (a, b) in enumerate(zip(old, new, strict=False)):
                found += _attachment_change(n, a, b)
            continue
        values_old, values_new = _values(old, name), _values(new, name)
        for key in values_old.keys() & values_new.keys():
            found += text_changes(key, values_old[key], values_new[key])
    if after.public_by_law:
        # Not a change, but what masking left alone and why: the operator must see it.
        found.append(
            Change(
                "public_by_law",
                "",
                "declared public by law",
                "left whole: " + ", ".join(after.public_by_law),
            )
        )
    return sorted(found, key=lambda c: list(Item.model_fields).index(c.field.split(".")[0]))


@dataclass(frozen=True, slots=True)
class Explanation:
    """One item's report: what preparing changes, and what would stop it."""

    item_id: str
    source: str
    changes: list[Change]
    problems: list[ItemProblem]

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "source": self.source,
            "changes": [c.as_dict() for c in self.changes],
            "problems": [p.as_dict() for p in self.problems],
        }


def explain(intake: Intake, loaded: Sequence[LoadedItem]) -> list[Explanation]:
    """Prepare each loaded item without recording anything, and report the changes."""
    intake.batch_ids = frozenset(e.item.id for e in loaded)
    reports = []
    for entry in loaded:
        prepared, problems = intake.transform(entry.item, entry.source)
        changes = []
        if prepared is not None:
            changes = item_changes(entry.item, prepared)
            problems = intake.problems(prepared, entry.source)
        reports.append(Explanation(redact(entry.item.id), entry.source, changes, problems))
    return reports
