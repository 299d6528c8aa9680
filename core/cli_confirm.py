"""``gongkai confirm``: record that a person posted, broadcast, uploaded or took down
what a channel left awaiting confirmation, one area at a time or from a CSV."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING

from .cli_output import EXIT_FAILED, EXIT_OK, emit
from .confirm import Confirmation, parse_when
from .errors import UsageError

if TYPE_CHECKING:
    from .publisher import Publisher


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("item", nargs="?", help="the item: its id, or its file")
    p.add_argument("channel", nargs="?", help="the channel whose delivery was confirmed")
    p.add_argument("--area", help="the village or township where it was posted or broadcast")
    p.add_argument(
        "--at",
        type=_when,
        help="when it was uploaded, posted or taken down: 2026-11-28 or 2026-11-28T09:30 "
        "(Beijing time)",
    )
    p.add_argument("--by", help="who confirmed it (name, and unit if useful)")
    p.add_argument("--photo", help="a photo of the posting; a copy is kept under the state dir")
    p.add_argument(
        "--taken-down",
        action="store_true",
        help="record the removal (a withdrawn item, or a posting whose 公示期 ended)",
    )
    p.add_argument(
        "--csv",
        metavar="FILE",
        help="confirm many at once: columns item, channel, area, date, name[, photo][, taken_down]",
    )


def _when(text: str) -> datetime | date:
    try:
        return parse_when(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_confirm(
    args: argparse.Namespace,
    publisher_for: Callable[[argparse.Namespace], Publisher],
    item_id: Callable[[Publisher, argparse.Namespace], None],
) -> int:
    """``publisher_for(args)`` opens the Publisher; ``item_id(publisher, args)``
    turns an item file into its id (both from :mod:`gongkai.cli`)."""
    if args.csv:
        if args.item or args.channel or args.at or args.by or args.area or args.photo:
            raise UsageError("--csv takes every confirmation from the file; give nothing else")
        with publisher_for(args) as publisher:
            batch = publisher.confirm_csv(args.csv)
        lines = [_line(done) for done in batch.confirmed]
        lines += [f"{batch.source}:{p.line}: not recorded: {p.reason}" for p in batch.problems]
        lines.append(
            f"{len(batch.confirmed)} row(s) recorded, {len(batch.problems)} refused"
            + ("; fix those lines and send only them again" if batch.problems else "")
        )
        emit(args, batch.as_dict(), "\n".join(lines))
        return EXIT_OK if batch.ok else EXIT_FAILED
    missing = [
        name for name, value in (("ITEM", args.item), ("CHANNEL", args.channel),
                                 ("--at", args.at), ("--by", args.by)) if not value
    ]  # fmt: skip
    if missing:
        raise UsageError(
            f"confirm needs {', '.join(missing)}: gongkai confirm ITEM CHANNEL [--area A] "
            "--at DATE --by NAME, or gongkai confirm --csv FILE"
        )
    with publisher_for(args) as publisher:
        item_id(publisher, args)
        done = publisher.confirm(
            args.item,
            args.channel,
            at=args.at,
            by=args.by,
            area=args.area,
            photo=args.photo,
            taken_down=args.taken_down,
        )
    emit(args, done.as_dict(), _line(done))
    return EXIT_OK


def _line(done: Confirmation) -> str:
    where = f" in {done.area}" if done.area else ""
    head = f"{done.item_id} on {done.channel}{where}: edition {done.edition}"
    when = f"{done.confirmed_by} ({done.confirmed_at:%Y-%m-%d %H:%M})"
    if done.status.startswith("already-"):
        verb = "confirmed" if done.status == "already-confirmed" else "taken down"
        return f"{head} was already {verb} by {when}; nothing changed"
    verb = "confirmed" if done.status == "confirmed" else "taken down"
    if done.waiting:
        rest = f"; still waiting for {'、'.join(done.waiting)}"
    else:
        rest = f"; it is {done.state}"
    return f"{head} {verb} by {when}{rest}"
