"""``gongkai report``: the assessment (考核) of every responsible unit over a period, as
a terminal table, ``--json``, an .xlsx workbook (``--xlsx``), a self-contained page
(``--html``) and the draft notice (通报, ``--notice``: .docx and Markdown)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from .cli_ledger_export import _day
from .cli_output import EXIT_OK, emit, local_time, table, writing
from .errors import UsageError
from .report import PART_LABELS, Report, known_units, quarter

if TYPE_CHECKING:
    from .publisher import Publisher


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="start", type=_day, metavar="DATE", help="first day (YYYY-MM-DD)")
    p.add_argument(
        "--to", dest="end", type=_day, metavar="DATE", help="last day, inclusive (YYYY-MM-DD)"
    )
    p.add_argument(
        "--quarter", type=_quarter, metavar="YYYYQN", help="a whole quarter, e.g. 2026Q4"
    )
    p.add_argument("--unit", help="only this responsible unit (as the catalogue names it)")
    p.add_argument("--area", help="only this key area (domain key or name, e.g. land or 征地补偿)")
    p.add_argument(
        "--xlsx", metavar="FILE", help="write the workbook here (汇总 + one sheet per unit)"
    )
    p.add_argument("--html", metavar="FILE", help="write a self-contained page here")
    p.add_argument(
        "--notice",
        metavar="FILE",
        help="draft the notice (通报): FILE.docx and FILE.md (a .docx or .md suffix is dropped)",
    )


def _quarter(text: str) -> tuple[date, date]:
    try:
        return quarter(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def period(args: argparse.Namespace) -> tuple[date, date]:
    """The period the arguments name, or a UsageError saying how to name one."""
    if args.quarter and (args.start or args.end):
        raise UsageError("give either --quarter or --from/--to, not both")
    if args.quarter:
        return args.quarter
    if not (args.start and args.end):
        raise UsageError("name the period: --quarter 2026Q4, or --from DATE --to DATE")
    if args.start > args.end:
        raise UsageError(f"--from {args.start} is after --to {args.end}; swap them")
    return args.start, args.end


def cmd_report(
    args: argparse.Namespace, publisher_for: Callable[[argparse.Namespace], Publisher]
) -> int:
    start, end = period(args)
    with publisher_for(args) as publisher:
        try:
            report = publisher.report(start, end, unit=args.unit, area=args.area)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if args.unit and not report.units:
            units = known_units(publisher.catalogue, publisher.ledger_export())
            raise UsageError(f"no responsible unit '{args.unit}'; use one of {', '.join(units)}")
        notice_template = publisher.settings.report.notice_template
        issuer = publisher.settings.report.issuer
    written = []
    if args.xlsx:
        from .report_xlsx import write_xlsx  # openpyxl only when asked for

        with writing(args.xlsx):
            write_xlsx(report, args.xlsx)
        written.append(args.xlsx)
    if args.html:
        from .fileio import write_atomic
        from .report_html import render_page

        with writing(args.html):
            write_atomic(Path(args.html), render_page(report).encode("utf-8"))
        written.append(args.html)
    if args.notice:
        from .report_notice import write_notice

        with writing(args.notice):
            notices = write_notice(report, args.notice, notice_template, issuer)
        written += [str(p) for p in notices]
    emit(args, {**report.as_dict(), "written": written}, render_text(report, written))
    return EXIT_OK


def render_text(report: Report, written: Sequence[str] = ()) -> str:
    """The terminal table: one row per unit, best first, then the key areas and the
    overdue items."""
    total = report.total
    lines = [
        f"{report.label} ({report.start} to {report.end}), as of {local_time(report.now)}",
        f"{total.items} item(s) with a deadline in the period: {total.on_time} on time, "
        f"{total.late} late, {total.overdue} overdue, {total.not_due} not yet due; on-time rate "
        f"{_rate(total.on_time_rate)}",
        "",
    ]
    rows = [
        (
            u.rank or "-",
            u.unit,
            "-" if u.score is None else f"{u.score:.1f}",
            u.tally.judged,
            u.tally.on_time,
            u.tally.late,
            u.tally.overdue,
            _rate(u.tally.on_time_rate),
            u.tally.cycle_gaps,
            u.tally.interpretations_missing + u.tally.interpreted_late,
            u.tally.responses_late + u.tally.responses_overdue,
            u.tally.parity_problem_items,
            u.tally.corrections,
            u.tally.withdrawals,
        )
        for u in report.units
    ]
    header = (
        "rank", "unit", "score", "due", "on time", "late", "overdue", "rate", "cycle gaps",
        "解读 missing/late", "回应 late", "parity", "corrections", "withdrawals",
    )  # fmt: skip
    lines.append(table(rows, header) if rows else "no unit had anything due in this period")
    if report.areas:
        area_rows = [
            (a.name, a.tally.judged, a.tally.on_time, a.tally.late, a.tally.overdue,
             _rate(a.tally.on_time_rate))
            for a in report.areas
        ]  # fmt: skip
        lines += ["", table(area_rows, ("key area", "due", "on time", "late", "overdue", "rate"))]
    overdue = [i for u in report.units for i in u.overdue_items]
    if overdue:
        item_rows = [(i.unit, i.item_id, i.title, i.due_on, i.days_late) for i in overdue]
        lines += [
            "",
            "overdue (still unpublished):",
            table(item_rows, ("unit", "item", "title", "due", "working days late")),
        ]
    weights = ", ".join(f"{PART_LABELS[k]} {w:g}" for k, w in report.weights.items())
    lines += [
        "",
        f"score weights: {weights}; {len(report.unchecked_cycles)} catalogue entr(ies) "
        "with an event cycle not checked",
    ]
    lines += [f"wrote {path}" for path in written]
    return "\n".join(lines)


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"
