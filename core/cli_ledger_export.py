"""``gongkai ledger-export``: the standing work ledger (工作台账) as an .xlsx workbook
(``--xlsx FILE``) and as JSON rows (``--json``); without either, the counts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from .cli_output import EXIT_OK, emit, table, writing
from .errors import UsageError
from .ledger_export import TIMELINESS_LABELS

if TYPE_CHECKING:
    from .publisher import Publisher


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--xlsx",
        metavar="FILE",
        help="write the workbook here (台账, 版次, 发布渠道, 现场确认, 撤回)",
    )
    p.add_argument(
        "--from",
        dest="start",
        type=_day,
        metavar="DATE",
        help="only items formed or acted on from this day on (YYYY-MM-DD, Beijing time)",
    )
    p.add_argument(
        "--to",
        dest="end",
        type=_day,
        metavar="DATE",
        help="only items formed or acted on up to this day (YYYY-MM-DD, inclusive)",
    )


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write YYYY-MM-DD") from None


def cmd_ledger_export(
    args: argparse.Namespace, publisher_for: Callable[[argparse.Namespace], Publisher]
) -> int:
    if args.start and args.end and args.start > args.end:
        raise UsageError(f"--from {args.start} is after --to {args.end}; swap them")
    with publisher_for(args) as publisher:
        export = publisher.ledger_export(start=args.start, end=args.end)
    if args.xlsx:
        from .ledger_xlsx import write_xlsx  # openpyxl is only imported when asked for

        with writing(args.xlsx):
            write_xlsx(export, args.xlsx)
    counts = export.counts()
    rows = [
        ("items", counts["items"]),
        ("published", counts["published"]),
        *((f"{key} ({label})", counts[key]) for key, label in TIMELINESS_LABELS.items()),
        ("corrected (more than one edition)", counts["corrected"]),
        ("withdrawn", counts["withdrawn"]),
        ("deliveries", counts["deliveries"]),
        ("confirmations", counts["confirmations"]),
    ]
    text = table(rows, ("work ledger", "count"))
    text += f"\nwrote {args.xlsx}" if args.xlsx else "\nadd --xlsx FILE to write the workbook"
    emit(args, {**export.as_dict(), "xlsx": args.xlsx}, text)
    return EXIT_OK
