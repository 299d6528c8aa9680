"""The standing work ledger (工作台账): every item the ledger holds, as typed rows.

One :class:`LedgerItem` per item, with its 索引号, catalogue entry, responsible unit,
dates (formed, first published, statutory deadline), every edition, every channel's
delivery, every confirmation of an offline posting, and its withdrawal. :func:`collect`
reads them from the ledger in a handful of bulk reads, so 30,000 items take seconds;
:mod:`gongkai.ledger_xlsx` writes them as the workbook an inspector is handed.

What the ledger stores is the *prepared* item, masked by the prepare hooks before any
channel saw it, so nothing here can be more revealing than what was published.

"Published" is the first moment any channel carried the item: an attempt that left a
delivery ``delivered``, or a person's confirmation that it went up on a wall, whichever
came first. The deadline is the one recorded with the item's newest edition (the
catalogue entry's ``time_limit`` counted from ``formed_on`` on the working-day
calendar, :meth:`gongkai.catalogue.Catalogue.deadline`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from .catalogue import Catalogue
from .item import CST
from .ledger import ConfirmationRecord, DeliveryRow, Ledger

Timeliness = Literal[
    "on-time", "late", "overdue", "not-due", "no-deadline", "withdrawn-unpublished"
]

#: How each timeliness reads in the workbook.
TIMELINESS_LABELS: dict[str, str] = {
    "on-time": "按时发布",
    "late": "逾期发布",
    "overdue": "逾期未发布",
    "not-due": "未到期",
    "no-deadline": "无时限",
    "withdrawn-unpublished": "撤回未发布",
}


@dataclass(frozen=True)
class EditionEntry:
    """One recorded edition (第N版): when it was recorded, its content hash, its title."""

    edition: int
    recorded_at: datetime
    content_hash: str
    title: str

    def as_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


@dataclass(frozen=True)
class ChannelEntry:
    """One channel's delivery of an item as the ledger holds it now: its state, the
    edition queued there (``edition``), the one it carries (``delivered_edition``,
    None if none), and where the public can see it (``url``)."""

    channel: str
    state: str
    edition: int
    delivered_edition: int | None
    updated_at: datetime | None
    url: str | None
    attempts: int
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


@dataclass(frozen=True)
class ConfirmationEntry:
    """A person's word that an edition went up (``posted``) or came down
    (``taken-down``) in one area of an offline channel ("" when it has no areas)."""

    channel: str
    area: str
    kind: str
    edition: int
    at: datetime
    by: str
    photo: str | None
    recorded_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


@dataclass(frozen=True)
class LedgerItem:
    """One item of the work ledger. Catalogue fields are empty when the item's entry is
    no longer in the catalogue; ``published_at`` is None while no channel carries it."""

    item_id: str
    index_number: str
    title: str
    catalog: str
    catalog_name: str
    domain: str
    responsible_unit: str
    publisher: str
    document_number: str
    kind: str
    area: str
    formed_on: date | None
    time_limit: str
    due_on: date | None
    published_at: datetime | None
    timeliness: Timeliness
    edition: int
    editions: tuple[EditionEntry, ...]
    channels: tuple[ChannelEntry, ...]
    confirmations: tuple[ConfirmationEntry, ...]
    withdrawn_at: datetime | None = None
    withdraw_reason: str | None = None

    @property
    def published_on(self) -> date | None:
        """The day (Beijing time) it was first published."""
        return self.published_at.astimezone(CST).date() if self.published_at else None

    def as_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


@dataclass
class LedgerExport:
    """The work ledger over a period (``start``/``end``, days in Beijing time, None for
    open), generated at ``generated_at``."""

    generated_at: datetime
    start: date | None = None
    end: date | None = None
    items: list[LedgerItem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many items, published, withdrawn, corrected (more than one edition),
        deliveries and confirmations, and how many items of each timeliness."""
        found = {
            "items": len(self.items),
            "published": sum(1 for i in self.items if i.published_at is not None),
            "corrected": sum(1 for i in self.items if i.edition > 1),
            "withdrawn": sum(1 for i in self.items if i.withdrawn_at is not None),
            "deliveries": sum(len(i.channels) for i in self.items),
            "confirmations": sum(len(i.confirmations) for i in self.items),
        }
        for key in TIMELINESS_LABELS:
            found[key] = sum(1 for i in self.items if i.timeliness == key)
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "from": _iso(self.start),
            "to": _iso(self.end),
            "counts": self.counts(),
            "items": [i.as_dict() for i in self.items],
        }


def collect(
    ledger: Ledger,
    catalogue: Catalogue,
    now: datetime,
    start: date | None = None,
    end: date | None = None,
) -> LedgerExport:
    """The work ledger of every item in ``ledger``; with ``start``/``end``, of the items
    formed in that period or with anything recorded in it (an edition, the first
    publication, a confirmation, the withdrawal). Each item comes with its whole history."""
    export = LedgerExport(now, start, end)
    rows: dict[str, list[DeliveryRow]] = {}
    for row in ledger.rows():
        rows.setdefault(row.item_id, []).append(row)
    walls: dict[str, list[ConfirmationRecord]] = {}
    for record in ledger.confirmations():
        walls.setdefault(record.item_id, []).append(record)
    published = first_published(ledger, walls)
    recorded = ledger.all_editions()
    today = now.astimezone(CST).date()
    for summary in ledger.item_summaries():
        payload = summary.payload
        entry = catalogue.get(summary.catalog)
        editions = tuple(
            EditionEntry(e.edition, e.recorded_at, e.content_hash, e.title)
            for e in recorded.get(summary.item_id, ())
        )
        confirmations = tuple(
            ConfirmationEntry(r.channel, r.area, r.kind, r.edition, r.at, r.by, r.photo,
                              r.recorded_at)
            for r in walls.get(summary.item_id, ())
        )  # fmt: skip
        first = published.get(summary.item_id)
        formed_on = _date(payload.get("formed_on"))
        item = LedgerItem(
            item_id=summary.item_id,
            index_number=payload.get("index_number") or "",
            title=summary.title,
            catalog=summary.catalog,
            catalog_name=entry.name if entry else "",
            domain=entry.domain if entry else "",
            responsible_unit=entry.responsible_unit if entry else "",
            publisher=payload.get("publisher") or "",
            document_number=payload.get("document_number") or "",
            kind=payload.get("kind") or "",
            area=payload.get("area") or "",
            formed_on=formed_on,
            time_limit=entry.time_limit.label() if entry else "",
            due_on=summary.due_on,
            published_at=first,
            timeliness=timeliness(summary.due_on, first, summary.withdrawn_at, today),
            edition=summary.latest_edition,
            editions=editions,
            channels=tuple(_channel(r) for r in rows.get(summary.item_id, ())),
            confirmations=confirmations,
            withdrawn_at=summary.withdrawn_at,
            withdraw_reason=summary.withdraw_reason,
        )
        if _in_period(item, start, end):
            export.items.append(item)
    return export


def first_published(
    ledger: Ledger, walls: dict[str, list[ConfirmationRecord]]
) -> dict[str, datetime]:
    """When each item was first published: the first attempt that left one of its
    deliveries ``delivered``, or the first confirmation (``walls``: the confirmation
    record by item id) that it went up on a wall, whichever came first."""
    first = ledger.first_delivered()
    for item_id, records in walls.items():
        for record in records:
            known = first.get(item_id)
            if record.kind == "posted" and (known is None or record.at < known):
                first[item_id] = record.at
    return first


def timeliness(
    due_on: date | None, published: datetime | None, withdrawn: datetime | None, today: date
) -> Timeliness:
    """An item's first publication against its deadline, both as days in Beijing time."""
    if published is None and withdrawn is not None:
        return "withdrawn-unpublished"
    if due_on is None:
        return "no-deadline"
    if published is not None:
        return "on-time" if published.astimezone(CST).date() <= due_on else "late"
    return "overdue" if today > due_on else "not-due"


def _channel(row: DeliveryRow) -> ChannelEntry:
    receipt = row.receipt or {}
    return ChannelEntry(
        channel=row.channel,
        state=row.state,
        edition=row.edition,
        delivered_edition=row.delivered_edition,
        updated_at=row.updated_at,
        url=receipt.get("url"),
        attempts=row.attempts,
        last_error=row.last_error,
    )


def _in_period(item: LedgerItem, start: date | None, end: date | None) -> bool:
    if start is None and end is None:
        return True
    days: Iterable[date | None] = (
        item.formed_on,
        item.published_on,
        _day(item.withdrawn_at),
        *(_day(e.recorded_at) for e in item.editions),
        *(_day(c.at) for c in item.confirmations),
    )
    return any(
        day is not None and (start is None or day >= start) and (end is None or day <= end)
        for day in days
    )


def _day(moment: datetime | None) -> date | None:
    return moment.astimezone(CST).date() if moment else None


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _plain(value: Any) -> Any:
    """JSON's types: dates and times as ISO 8601 text, tuples as lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value
