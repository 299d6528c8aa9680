"""``gongkai parity``: report, per item, whether every channel carries its current
edition; exit 1 when parity is broken, so cron can alert."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from .cli_output import EXIT_FAILED, EXIT_OK, cell_limit, emit, writing
from .confirm import moment, parse_when
from .fileio import write_atomic
from .parity_text import render_text

if TYPE_CHECKING:
    from .publisher import Publisher


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write one self-contained page: items × channels by township, and a chart "
        "of the last 90 days",
    )
    p.add_argument(
        "--overdue-days",
        type=int,
        metavar="N",
        help="a confirmation missing for more than N days is overdue (default: [parity] "
        "overdue_days, 3)",
    )
    # Tests and reruns of a past day's report: look at the ledger as of this time.
    p.add_argument("--now", type=_now, help=argparse.SUPPRESS)


def _now(text: str) -> datetime:
    try:
        value = parse_when(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return moment(value)


def cmd_parity(
    args: argparse.Namespace, publisher_for: Callable[[argparse.Namespace], Publisher]
) -> int:
    with publisher_for(args) as publisher:
        report = publisher.parity(overdue_days=args.overdue_days, now=args.now)
        if args.html:
            from .parity_html import render_page  # only this option needs the page

            history = publisher.parity_history(report.now) if publisher.has_ledger else []
            with writing(args.html):
                write_atomic(args.html, render_page(report, history).encode("utf-8"))
    code = EXIT_OK if report.ok else EXIT_FAILED
    text = render_text(report, limit=cell_limit(args))
    if args.html:
        text += f"\nwrote {args.html}"
    emit(args, {**report.as_dict(), "exit_code": code, "html": args.html}, text)
    return code
