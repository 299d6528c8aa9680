"""Confirmation: a person says an offline delivery happened.

Some channels cannot know by themselves that an item reached the public: an upload
batch a clerk imports into the municipal platform, a notice pinned to a village board.
Their deliveries stop at ``awaiting-confirmation`` until an operator confirms them
(``gongkai confirm ITEM CHANNEL --at DATE --by NAME``), which is the state machine's
``confirmed`` event. Who confirmed and when is kept in the delivery's receipt and in
the attempt log, so the ledger shows what the wall or the platform carried and since
when.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from typing import Any

from .errors import UnknownItem, UsageError
from .item import _CONTROLS_LINE, CST
from .ledger import Ledger
from .ledger.states import State


@dataclass(frozen=True)
class Confirmation:
    """What ``confirm`` did. ``status`` is ``confirmed``, or ``already-confirmed`` when
    the delivery was confirmed before (confirming twice is harmless)."""

    item_id: str
    channel: str
    edition: int
    confirmed_at: datetime
    confirmed_by: str
    status: str

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["confirmed_at"] = self.confirmed_at.isoformat()
        return data


def moment(value: datetime | date) -> datetime:
    """A confirmation time: a date alone means that day (Beijing time), noon, so it
    never falls on the day before in another zone; a naive time is Beijing time."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(12, 0))
    return value if value.tzinfo is not None else value.replace(tzinfo=CST)


def confirm(
    ledger: Ledger,
    item_id: str,
    channel: str,
    *,
    at: datetime | date,
    by: str,
    now: datetime,
) -> Confirmation:
    """Confirm the delivery of ``item_id`` on ``channel``. Raises :class:`UnknownItem`
    when there is no such delivery and :class:`UsageError` when it is not waiting for
    a confirmation or the time or name cannot be right."""
    by = by.strip()
    if not by or _CONTROLS_LINE.search(by):
        raise UsageError("--by must name the person who confirmed it, on one line")
    when = moment(at)
    if when > now:
        raise UsageError(
            f"--at {when:%Y-%m-%d %H:%M} is in the future; give the time it was uploaded or posted"
        )
    row = ledger.row(item_id, channel)
    if row is None:
        raise UnknownItem(
            f"item '{item_id}' has no delivery on channel '{channel}'; `gongkai status "
            f"{item_id}` lists its channels"
        )
    receipt = dict(row.receipt or {})
    if row.state == State.DELIVERED and "confirmed_at" in receipt:
        return Confirmation(
            item_id,
            channel,
            row.edition,
            datetime.fromisoformat(receipt["confirmed_at"]),
            receipt.get("confirmed_by", ""),
            "already-confirmed",
        )
    if row.state != State.AWAITING_CONFIRMATION:
        raise UsageError(
            f"item '{item_id}' on '{channel}' is {row.state}, not awaiting confirmation; "
            "only a delivery a channel left for a person to confirm can be confirmed "
            f"(`gongkai status {item_id}` shows it)"
        )
    receipt.update(status="delivered", confirmed_at=when.isoformat(), confirmed_by=by)
    note = f"confirmed by {by}, {when:%Y-%m-%d %H:%M}"
    if not ledger.confirm(item_id, channel, receipt, note, now):
        # It moved between the read and the write (a newer edition, a withdrawal).
        raise UsageError(
            f"item '{item_id}' on '{channel}' changed while confirming; run `gongkai "
            f"status {item_id}` and confirm again if it still waits"
        )
    return Confirmation(item_id, channel, row.edition, when, by, "confirmed")
