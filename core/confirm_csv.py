"""Confirmations in bulk: the CSV a township sends back after posting a batch.

Columns (a header row names them, in any order): ``item``, ``channel``, ``area``,
``date``, ``name``, and optionally ``photo`` (a path, relative to the CSV's folder) and
``taken_down`` (1, yes, true, y, x or 是 for a removal). Each row goes through
:func:`gongkai.confirm.confirm` on its own: a bad row is reported with its line number
and reason, and the good ones are recorded. The file may be UTF-8 (with or without the
BOM Excel writes) or GB18030, which Excel on a Chinese Windows saves.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from .confirm import Confirmation, ConfirmBatch, RowProblem, parse_when
from .errors import GongkaiError, UsageError

REQUIRED = ("item", "channel", "area", "date", "name")
OPTIONAL = ("photo", "taken_down")
_YES = frozenset({"1", "yes", "y", "true", "x", "是", "已撤下"})
_NO = frozenset({"", "0", "no", "n", "false", "否"})

#: confirm(item, channel, area, at, by, photo, taken_down) -> Confirmation
ConfirmOne = Callable[..., Confirmation]


def read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--csv {path}: cannot read it ({exc.strerror}); check the path") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UsageError(f"--csv {path}: neither UTF-8 nor GB18030 text; save it as CSV UTF-8")


def confirm_rows(path: Path, confirm_one: ConfirmOne) -> ConfirmBatch:
    """Confirm every row of the CSV at ``path`` with ``confirm_one``."""
    batch = ConfirmBatch(str(path))
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header = next(reader, None)
    columns = {name.strip().lower(): n for n, name in enumerate(header or [])}
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise UsageError(
            f"--csv {path}: the header row lacks {', '.join(missing)}; the first row must "
            f"name the columns {', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})"
        )
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank lines at the end of an Excel export

        def cell(name: str, row: list[str] = row) -> str:
            index = columns.get(name)
            return row[index].strip() if index is not None and index < len(row) else ""

        try:
            item, channel = cell("item"), cell("channel")
            if not item or not channel:
                raise UsageError("item and channel must not be empty")
            try:
                at = parse_when(cell("date"))
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            flag = cell("taken_down").lower()
            if flag not in _YES | _NO:
                raise UsageError(f"taken_down '{flag}' is neither yes (1) nor no (empty, 0)")
            photo = cell("photo")
            done = confirm_one(
                item,
                channel,
                area=cell("area") or None,
                at=at,
                by=cell("name"),
                photo=(path.parent / photo) if photo else None,
                taken_down=flag in _YES,
            )
        except GongkaiError as exc:
            batch.problems.append(RowProblem(line, str(exc)))
        else:
            batch.confirmed.append(done)
    return batch
