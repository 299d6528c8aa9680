"""How the CLI shows things: aligned tables for people, JSON for programs.

Shared by every verb module. Reports go to stdout, scrubbed of secrets; tables line up
Chinese (double-width) text and cut long values so that the part an operator needs
stays visible.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from .errors import ItemProblem, UsageError
from .item import CST
from .log import scrub
from .results import RunResult

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` columns. A path keeps its end (the item, edition and
    file name are what an operator looks for), anything else its start."""
    if _width(text) <= limit:
        return text
    is_path = "/" in text and " " not in text
    chars = reversed(text) if is_path else iter(text)
    kept, used = [], 0
    for char in chars:
        size = _width(char)
        if used + size > limit - 1:
            break
        kept.append(char)
        used += size
    return "…" + "".join(reversed(kept)) if is_path else "".join(kept) + "…"


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], limit: int = 48) -> str:
    """A plain-text table that lines up Chinese (double-width) text."""
    cells = [[_clip("" if v is None else str(v), limit) for v in row] for row in rows]
    widths = [max([_width(h)] + [_width(r[i]) for r in cells]) for i, h in enumerate(header)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths, strict=True))

    lines = [line(header), line(["-" * w for w in widths]), *map(line, cells)]
    return "\n".join(x.rstrip() for x in lines)


def short_path(path: str | None) -> str:
    """A path relative to the working directory when it is below it."""
    if not path:
        return ""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def local_time(when: datetime | None) -> str:
    """Operators read Beijing time; the offset says so, whatever the server's zone."""
    return when.astimezone(CST).strftime("%Y-%m-%d %H:%M+08:00") if when else ""


def cell_limit(args: argparse.Namespace) -> int:
    """Cell width: clipped to fit a terminal, whole with --wide or -v."""
    return 10**6 if args.wide or args.verbose else 48


def _json_value(value: object) -> str:
    # ISO 8601 for times and dates, so other systems parse them with any library.
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Around writing a file the operator named (--html, --xlsx, --notice): a path that
    cannot be written (a folder, a read-only place) is a usage error naming it, not a
    traceback. Missing parent folders are made by the writers."""
    try:
        yield
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise UsageError(
            f"cannot write {path} ({why}); give a file path in a folder you can write"
        ) from None


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    # The last net: whatever a report holds, no secret leaves through stdout.
    if args.json:
        print(scrub(json.dumps(data, ensure_ascii=False, indent=2, default=_json_value)))
    elif text:
        print(scrub(text))


def emit_run(args: argparse.Namespace, result: RunResult, text: str) -> None:
    """``emit`` for a run's report. The outcomes are written one at a time: a first
    publish of 100,000 items has half a million, and one string of them all would
    cost more memory than the run itself."""
    if not args.json:
        emit(args, None, text)
        return
    out = sys.stdout
    head = json.dumps(
        result.as_dict(outcomes=False), ensure_ascii=False, indent=2, default=_json_value
    )
    out.write(scrub(head[:-2]) + ',\n  "outcomes": [')
    for number, outcome in enumerate(result.outcomes):
        line = json.dumps(outcome.as_dict(), ensure_ascii=False, default=_json_value)
        out.write(("," if number else "") + "\n    " + scrub(line))
    out.write("\n  ]\n}\n")
    out.flush()


def problems_text(problems: Sequence[ItemProblem]) -> str:
    return "\n".join(f"error: {p}" for p in problems)
