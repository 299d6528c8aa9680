"""Online/offline parity: does every channel an item needs carry its current edition?

For each item the ledger holds, :func:`compute` looks at every channel the catalogue
requires it on and every channel that has a delivery of it, and says what each one
carries:

* online channels from the delivery row (the remote holds what was delivered);
* offline channels (notice boards, loudspeakers) per area, from the confirmation
  record: a wall carries what a person confirmed posting there and has not confirmed
  taking down. Until the replacement of edition 1 by edition 2 is confirmed, the wall
  is ``stale``.

Each finding has a *state* (the word shown), and a *status*: ``ok``; ``waiting`` (a
person or a later run still has to act, and there is time: a notice written less than
``overdue_days`` ago); or ``broken``. Parity is broken (``gongkai parity`` exits 1)
when anything is broken: a required channel missing or not configured, a failed
delivery, a confirmation overdue, a posting whose 公示期 has ended still up or one that
came down early, an item past its statutory deadline (catalogue ``time_limit`` from
``formed_on``) and published nowhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from .catalogue import Catalogue
from .channel import PreparedItem
from .item import CST
from .ledger import ConfirmationRecord, DeliveryRow, ItemSummary, Ledger, State
from .ledger.states import Intent

Status = Literal["ok", "waiting", "broken"]

#: Each state a finding can have, and how it weighs. ``current``: carries the current
#: edition; ``ended``: the posting came down after its 公示期, as it should.
STATES: dict[str, Status] = {
    "current": "ok",
    "ended": "ok",
    "withdrawn": "ok",
    "publishing": "waiting",
    "pending": "waiting",
    "scheduled": "waiting",
    "awaiting": "waiting",
    "stale": "waiting",
    "take-down": "waiting",
    "overdue": "broken",
    "expired": "broken",
    "early": "broken",
    "failed": "broken",
    "missing": "broken",
    "not-configured": "broken",
}
#: Worst first: the state a channel shows for its areas.
_ORDER = [
    "not-configured", "missing", "failed", "overdue", "expired", "early", "stale",
    "take-down", "awaiting", "scheduled", "pending", "publishing", "withdrawn", "ended",
    "current",
]  # fmt: skip
_RANK = {state: n for n, state in enumerate(_ORDER)}
_SEVERITY = {"ok": 0, "waiting": 1, "broken": 2}

#: 街道 before 镇: 赵镇街道 is a street office, not 赵镇.
_TOWNSHIP = [re.compile(r"^(.{1,12}?街道)"), re.compile(r"^(.{1,12}?[镇乡])")]
#: The township of an item that names no area.
COUNTY = "全县"


def township(area: str | None) -> str:
    """The 镇/街道/乡 an area lies in ("三溪镇花园村" → "三溪镇"), or the area itself."""
    first = re.split(r"[、，,;；]", area or "")[0].strip()
    for pattern in _TOWNSHIP:
        found = pattern.match(first)
        if found:
            return found.group(1)
    return first or COUNTY


@dataclass(frozen=True)
class AreaParity:
    """What one wall or loudspeaker (``area``) carries of an item on an offline
    channel. ``edition`` is the edition up there (None: nothing), ``since`` when that
    was confirmed, or when the notice still to confirm was written."""

    area: str
    state: str
    edition: int | None
    since: datetime | None
    detail: str

    @property
    def status(self) -> Status:
        return STATES[self.state]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        data["status"] = self.status
        return data


@dataclass(frozen=True)
class ChannelParity:
    """One channel of one item: the worst of its areas on an offline channel."""

    channel: str
    mode: str
    required: bool
    state: str
    edition: int | None
    detail: str
    areas: tuple[AreaParity, ...] = ()

    @property
    def status(self) -> Status:
        return STATES[self.state]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status
        data["areas"] = [a.as_dict() for a in self.areas]
        return data


@dataclass(frozen=True)
class ItemParity:
    """One item: its channels, and whether it is past its statutory deadline unpublished
    (``late``). ``problems`` are the findings that are not ok, one line each."""

    item_id: str
    title: str
    publisher: str
    township: str
    area: str
    edition: int
    due_on: date | None
    late: bool
    withdrawn: bool
    channels: tuple[ChannelParity, ...]
    problems: tuple[str, ...]

    @property
    def status(self) -> Status:
        found = [c.status for c in self.channels] + (["broken"] if self.late else [])
        return max(found, key=_SEVERITY.__getitem__, default="ok")

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "publisher": self.publisher,
            "township": self.township,
            "area": self.area,
            "edition": self.edition,
            "due_on": self.due_on.isoformat() if self.due_on else None,
            "late": self.late,
            "withdrawn": self.withdrawn,
            "status": self.status,
            "channels": [c.as_dict() for c in self.channels],
            "problems": list(self.problems),
        }


@dataclass
class ParityReport:
    """What ``gongkai parity`` reports. ``ok`` is False when any item is broken."""

    now: datetime
    overdue_days: int
    items: list[ItemParity] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(i.status != "broken" for i in self.items)

    @property
    def today(self) -> date:
        return self.now.astimezone(CST).date()

    def counts(self) -> dict[str, int]:
        found = {"items": len(self.items), "ok": 0, "waiting": 0, "broken": 0}
        for item in self.items:
            found[item.status] += 1
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "today": self.today.isoformat(),
            "overdue_days": self.overdue_days,
            "ok": self.ok,
            "counts": self.counts(),
            "items": [i.as_dict() for i in self.items],
        }


@dataclass(frozen=True)
class Setup:
    """What parity needs to know about the deployment besides the ledger."""

    catalogue: Catalogue
    #: Enabled channel name → ``online`` or ``offline``.
    enabled: dict[str, str]
    overdue_days: int


def compute(ledger: Ledger, setup: Setup, now: datetime) -> ParityReport:
    """The parity of every item in ``ledger`` at ``now``."""
    report = ParityReport(now, setup.overdue_days)
    rows: dict[str, list[DeliveryRow]] = {}
    for row in ledger.rows():
        rows.setdefault(row.item_id, []).append(row)
    walls: dict[tuple[str, str], list[ConfirmationRecord]] = {}
    for record in ledger.confirmations():
        walls.setdefault((record.item_id, record.channel), []).append(record)
    for summary in ledger.item_summaries():
        found = _item(ledger, setup, summary, rows.get(summary.item_id, []), walls, now)
        if found is not None:
            report.items.append(found)
    return report


def _item(
    ledger: Ledger,
    setup: Setup,
    summary: ItemSummary,
    rows: list[DeliveryRow],
    walls: dict[tuple[str, str], list[ConfirmationRecord]],
    now: datetime,
) -> ItemParity | None:
    payload = summary.payload
    item = PreparedItem.from_stored(payload, summary.latest_edition, "0" * 64)
    entry = setup.catalogue.get(item.catalog)
    required = list(setup.catalogue.route(item, entry)) if entry else []
    by_channel = {r.channel: r for r in rows}
    withdrawn = summary.withdrawn_at is not None
    # A withdrawn item need not reach a channel it never went to.
    names = list(dict.fromkeys([*([] if withdrawn else required), *by_channel]))
    checker = _Checker(ledger, setup, summary, now)
    channels: list[ChannelParity] = []
    for name in names:
        row = by_channel.get(name)
        records = walls.get((summary.item_id, name), [])
        channels.append(checker.channel(name, name in required, row, records))
    if withdrawn and all(c.status == "ok" for c in channels):
        return None  # withdrawn and taken down everywhere: nothing left to check
    today = now.astimezone(CST).date()
    published = any(r.delivered_edition is not None for r in rows) or any(
        walls.get((summary.item_id, r.channel)) for r in rows
    )
    late = not withdrawn and summary.due_on is not None and today > summary.due_on and not published
    problems = [
        f"{c.channel}{f' {a.area}' if a.area else ''}: {a.detail}"
        for c in channels
        for a in (c.areas or (AreaParity("", c.state, c.edition, None, c.detail),))
        if a.status != "ok"
    ]
    if late:
        limit = f"{entry.time_limit.label()} " if entry else ""
        problems.insert(
            0,
            f"statutory deadline {summary.due_on} passed ({limit}from {item.formed_on}) and "
            "it is published on no channel",
        )
    return ItemParity(
        item_id=summary.item_id,
        title=summary.title,
        publisher=item.publisher,
        township=township(item.area),
        area=item.area or "",
        edition=summary.latest_edition,
        due_on=summary.due_on,
        late=late,
        withdrawn=withdrawn,
        channels=tuple(channels),
        problems=tuple(problems),
    )


class _Checker:
    """The channel findings of one item."""

    def __init__(self, ledger: Ledger, setup: Setup, summary: ItemSummary, now: datetime) -> None:
        self.ledger, self.setup, self.summary, self.now = ledger, setup, summary, now
        self.latest = summary.latest_edition
        self.today = now.astimezone(CST).date()
        self.withdrawn = summary.withdrawn_at is not None

    def channel(
        self,
        name: str,
        required: bool,
        row: DeliveryRow | None,
        records: list[ConfirmationRecord],
    ) -> ChannelParity:
        mode = self.setup.enabled.get(name)
        receipt = (row.receipt or {}) if row else {}
        data = receipt.get("data") or {}
        offline = mode == "offline" or "areas" in data
        shown_mode = "offline" if offline else "online"
        if mode is None and row is None:
            why = "required by the catalogue; enable it in config.toml ([channels." + name + "])"
            return ChannelParity(name, shown_mode, required, "not-configured", None, why)
        if row is None:
            why = "required by the catalogue, but no delivery: run `gongkai publish` (or --reread)"
            return ChannelParity(name, shown_mode, required, "missing", None, why)
        if offline:
            areas = self._areas(row, data, records)
            worst = min(areas, key=lambda a: _RANK[a.state]) if areas else None
            if worst is None:
                return ChannelParity(name, "offline", required, *self._online(row))
            shown = {a.edition for a in areas if a.edition is not None}
            edition = min(shown) if shown else None
            detail = "; ".join(f"{a.area}: {a.detail}" for a in areas if a.status != "ok")
            return ChannelParity(
                name, "offline", required, worst.state, edition, detail or worst.detail,
                tuple(areas),
            )  # fmt: skip
        return ChannelParity(name, "online", required, *self._online(row))

    # --- online: the row says what the remote holds -------------------------------------

    def _online(self, row: DeliveryRow) -> tuple[str, int | None, str]:
        held = row.delivered_edition
        if row.state == State.WITHDRAWN:
            return "withdrawn", None, "withdrawn"
        if row.state in (State.FAILED, State.UNKNOWN):
            error = f": {row.last_error}" if row.last_error else ""
            return "failed", held, f"{row.state}{error}; see `gongkai status {row.item_id}`"
        if self.withdrawn:
            if row.state == State.AWAITING_CONFIRMATION:
                return self._waited("take-down", row, held, "take-down to confirm")
            return "take-down", held, f"take-down {row.state}"
        if row.state == State.DELIVERED and row.edition == self.latest:
            return "current", row.edition, f"edition {row.edition}"
        if row.state == State.AWAITING_CONFIRMATION:
            return self._waited("awaiting", row, row.edition, "waiting for its confirmation")
        if held is not None and held < self.latest:
            return "stale", held, f"carries edition {held}; edition {self.latest} is {row.state}"
        if row.state == State.PUBLISHING:
            return "publishing", held, "the remote is still publishing it"
        if row.next_attempt_at is not None and row.next_attempt_at > self.now:
            until = row.next_attempt_at.astimezone(CST)
            return "scheduled", held, f"{row.state} until {until:%Y-%m-%d %H:%M}+08:00"
        return "pending", held, f"{row.state}: the next `gongkai publish` sends it"

    def _waited(
        self, state: str, row: DeliveryRow, edition: int | None, what: str
    ) -> tuple[str, int | None, str]:
        written = self._written(row)
        days = (self.today - written.astimezone(CST).date()).days if written else 0
        since = f", written {written.astimezone(CST):%Y-%m-%d}" if written else ""
        if days > self.setup.overdue_days:
            return "overdue", edition, f"{what}{since} ({days} days; overdue)"
        return state, edition, f"{what}{since}"

    def _written(self, row: DeliveryRow) -> datetime | None:
        """When the notice (or take-down sheet) waiting to be confirmed was written."""
        for entry in reversed(self.ledger.attempts(row.item_id, row.channel)):
            if entry.action in ("deliver", "withdraw", "reconcile") and entry.state in (
                State.AWAITING_CONFIRMATION,
                State.DELIVERED,
            ):
                return entry.finished_at
        return row.updated_at

    # --- offline: each area's wall, from the confirmation record --------------------------

    def _areas(
        self, row: DeliveryRow, data: dict[str, Any], records: list[ConfirmationRecord]
    ) -> list[AreaParity]:
        wall: dict[str, ConfirmationRecord] = {}
        for record in sorted(records, key=lambda r: r.at):
            wall[record.area] = record
        # A receipt without areas (the platform's export batch) is one area, "".
        receipt_areas = list(data.get("areas") or {}) or [""]
        take_down = data.get("action") == "take-down" or row.intent == Intent.WITHDRAW
        found: list[AreaParity] = []
        for area in dict.fromkeys([*receipt_areas, *wall]):
            last = wall.get(area)
            up = last.edition if last is not None and last.kind == "posted" else None
            since = last.at if last is not None else None
            if self.withdrawn or take_down:
                if up is None or row.state == State.WITHDRAWN:
                    continue  # nothing up there, or the channel took it down itself
                state, _, detail = self._waited("take-down", row, up, "withdrawn: take it down")
                found.append(AreaParity(area, state, up, since, detail))
            elif up is not None and up == self.latest and area in receipt_areas:
                found.append(self._posted(area, up, since, data))
            elif up is not None and area not in receipt_areas:
                what = f"shows edition {up}; the item is no longer posted here: take it down"
                state, _, detail = self._waited("take-down", row, up, what)
                found.append(AreaParity(area, state, up, since, detail))
            elif up is not None:
                what = f"shows edition {up}; edition {self.latest} replaces it (请更换)"
                if row.edition < self.latest or row.state != State.AWAITING_CONFIRMATION:
                    detail = f"{what}, not written yet: run `gongkai publish`"
                    found.append(AreaParity(area, "stale", up, since, detail))
                else:
                    state, _, detail = self._waited("stale", row, up, what)
                    found.append(AreaParity(area, state, up, since, detail))
            elif last is not None and area not in receipt_areas:
                continue  # taken down where the item no longer goes
            elif last is not None and last.edition == self.latest:
                found.append(self._taken_down(area, last, data))
            elif row.state == State.AWAITING_CONFIRMATION:
                state, _, detail = self._waited("awaiting", row, None, "not confirmed yet")
                found.append(AreaParity(area, state, None, None, detail))
            else:
                state, edition, detail = self._online(row)
                found.append(AreaParity(area, state, edition, None, detail))
        return found

    def _posted(
        self, area: str, edition: int, since: datetime | None, data: dict[str, Any]
    ) -> AreaParity:
        posting = data.get("posting") if data.get("edition") == edition else None
        if posting and self.today > date.fromisoformat(posting["to"]):
            detail = f"公示期 ended {posting['to']}: take it down and confirm with --taken-down"
            return AreaParity(area, "expired", edition, since, detail)
        return AreaParity(area, "current", edition, since, f"edition {edition}")

    def _taken_down(self, area: str, last: ConfirmationRecord, data: dict[str, Any]) -> AreaParity:
        posting = data.get("posting")
        down = last.at.astimezone(CST).date()
        if posting and down < date.fromisoformat(posting["to"]):
            detail = f"taken down {down}, before its 公示期 ended {posting['to']}"
            return AreaParity(area, "early", None, last.at, detail)
        return AreaParity(area, "ended", None, last.at, f"taken down {down} after its 公示期")


def day_range(today: date, days: int) -> Iterable[date]:
    return (today - timedelta(days=days - 1 - n) for n in range(days))
