"""Confirmation: a person says an offline delivery happened, area by area.

Some channels cannot know by themselves that an item reached the public: an upload
batch a clerk imports into the municipal platform, a notice pinned to a village board,
a script read out over a village loudspeaker. Their deliveries stop at
``awaiting-confirmation`` until an operator confirms them
(``gongkai confirm ITEM CHANNEL [--area A] --at DATE --by NAME [--photo PATH]``), which
is the state machine's ``confirmed`` event; the row is ``delivered`` once every area
the receipt lists is confirmed. Removal is confirmed the same way (``--taken-down``,
event ``taken-down``): a withdrawn item's take-down, or a posting whose 公示期 ended.

Who confirmed what, where and when goes into the delivery's receipt (the contract with
the offline channels, docs/channels.md) and into the ledger's append-only confirmation
record, which keeps what each wall carried after a newer edition's receipt replaced
the old one (``gongkai parity`` reads it). A receipt without areas (the platform's
export batch) counts as one area.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from .errors import UnknownItem, UsageError
from .fileio import write_atomic
from .item import _CONTROLS_LINE, CST
from .ledger import ConfirmationRecord, DeliveryRow, Event, Intent, Ledger, State

#: Log actions whose entry wrote the receipt a person confirms.
_WRITING_ACTIONS = frozenset({"deliver", "withdraw", "reconcile"})
#: Receipt keys of each kind of confirmation, per area.
_KEYS = {
    "posted": ("confirmed_at", "confirmed_by", "photo"),
    "taken-down": ("taken_down_at", "taken_down_by", "taken_down_photo"),
}


@dataclass(frozen=True)
class Confirmation:
    """What ``confirm`` did. ``status``: ``confirmed`` or ``taken-down`` (recorded now),
    ``already-confirmed`` or ``already-taken-down`` (recorded before; confirming twice
    is harmless and changes nothing). ``area`` is the area confirmed (``""`` for a
    delivery without areas); ``state`` the delivery's state afterwards
    (``awaiting-confirmation`` while ``waiting`` lists areas still to confirm);
    ``photo`` the copy kept under the state directory."""

    item_id: str
    channel: str
    edition: int
    confirmed_at: datetime
    confirmed_by: str
    status: str
    area: str = ""
    state: str = ""
    waiting: tuple[str, ...] = ()
    photo: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["confirmed_at"] = self.confirmed_at.isoformat()
        data["waiting"] = list(self.waiting)
        return data


@dataclass(frozen=True)
class RowProblem:
    """A line of a confirmation CSV that was not recorded, and why."""

    line: int
    reason: str


@dataclass
class ConfirmBatch:
    """What ``confirm --csv`` did: the rows recorded (or found recorded before) and the
    rows refused, each with its line number. ``ok`` is False if any row was refused."""

    source: str
    confirmed: list[Confirmation] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "ok": self.ok,
            "confirmed": [c.as_dict() for c in self.confirmed],
            "problems": [asdict(p) for p in self.problems],
        }


def moment(value: datetime | date) -> datetime:
    """A confirmation time: a date alone means that day (Beijing time), noon, so it
    never falls on the day before in another zone; a naive time is Beijing time."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(12, 0))
    return value if value.tzinfo is not None else value.replace(tzinfo=CST)


def parse_when(text: str) -> datetime | date:
    """``--at`` or a CSV date: a date (2026-11-28, 2026/11/28) or a date and time
    (2026-11-28T09:30 or "2026-11-28 09:30"), Beijing time unless an offset is given.
    A date alone stays a date: it means "some time that day"."""
    cleaned = text.strip().replace("/", "-")
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(f"'{text}' is not a date; write 2026-11-28 or 2026-11-28T09:30") from None
    return value if ("T" in cleaned or " " in cleaned) else value.date()


def confirm(
    ledger: Ledger,
    item_id: str,
    channel: str,
    *,
    at: datetime | date,
    by: str,
    now: datetime,
    area: str | None = None,
    photo: str | Path | None = None,
    taken_down: bool = False,
    photos_dir: Path | None = None,
) -> Confirmation:
    """Confirm that ``item_id`` went up on ``channel`` (in ``area``), or came down
    (``taken_down``). Raises :class:`UnknownItem` when there is no such delivery and
    :class:`UsageError` when it is not waiting for this confirmation, the edition is no
    longer current, or the area, time, name or photo cannot be right."""
    by = by.strip()
    if not by or _CONTROLS_LINE.search(by):
        raise UsageError("--by must name the person who confirmed it, on one line")
    when = moment(at)
    day_only = not isinstance(at, datetime)
    if (at > now.astimezone(CST).date()) if day_only else (when > now):  # type: ignore[operator]
        raise UsageError(
            f"--at {when:%Y-%m-%d %H:%M} is in the future; give the time it was uploaded, "
            "posted or taken down"
        )
    row = ledger.row(item_id, channel)
    if row is None:
        raise UnknownItem(
            f"item '{item_id}' has no delivery on channel '{channel}'; `gongkai status "
            f"{item_id}` lists its channels"
        )
    kind = "taken-down" if taken_down else "posted"
    receipt = dict(row.receipt or {})
    data = dict(receipt.get("data") or {})
    areas: dict[str, dict[str, Any]] = {
        name: dict(value) for name, value in (data.get("areas") or {}).items()
    }
    dropped = area.strip() if area else ""
    listed = data.get("take_down_areas") or ()
    if kind == "taken-down" and dropped in listed and dropped not in areas:
        return _take_down_dropped(
            ledger, row, receipt, dropped, when, day_only, by, now, photo, photos_dir
        )
    _check_state(row, data, kind)
    names = list(areas) or [""]
    chosen = _choose_area(row, names, areas, area, kind)
    stamp, name_key, photo_key = _KEYS[kind]
    mark = areas.get(chosen, receipt)  # a receipt without areas keeps it at the top
    edition = int(data.get("edition") or row.edition)
    if stamp in mark:
        return Confirmation(
            item_id,
            channel,
            edition,
            datetime.fromisoformat(mark[stamp]),
            mark.get(name_key, ""),
            f"already-{'confirmed' if kind == 'posted' else 'taken-down'}",
            chosen,
            row.state,
            tuple(_waiting(names, areas, receipt, stamp)),
            mark.get(photo_key),
        )
    if row.state != State.AWAITING_CONFIRMATION and not (
        kind == "taken-down" and row.state == State.DELIVERED and "confirmed_at" in mark
    ):
        raise _not_waiting(row)
    _check_time(ledger, row, mark, when, day_only, kind)
    kept = _keep_photo(photo, photos_dir) if photo is not None else None
    mark.update({stamp: when.isoformat(), name_key: by, **({photo_key: kept} if kept else {})})
    waiting = _waiting(names, areas, receipt, stamp)
    done = not waiting
    if areas:
        data["areas"] = areas
        receipt["data"] = data
    if done:
        receipt.update({"status": "delivered" if kind == "posted" else "withdrawn"})
        receipt.update({stamp: when.isoformat(), name_key: by})
    where = f" in {chosen}" if chosen else ""
    verb = "confirmed" if kind == "posted" else "taken down"
    note = f"edition {edition} {verb}{where} by {by}, {when:%Y-%m-%d %H:%M}"
    if waiting:
        note += f"; waiting for {len(waiting)} more area(s)"
    event = Event.CONFIRMED if kind == "posted" else Event.TAKEN_DOWN
    record = ConfirmationRecord(item_id, channel, edition, chosen, kind, when, by, kept)  # type: ignore[arg-type]
    _record(ledger, row, event, done, receipt, record, note, now)
    after = row.state if not done else (State.DELIVERED if kind == "posted" else State.WITHDRAWN)
    status = "confirmed" if kind == "posted" else "taken-down"
    return Confirmation(
        item_id, channel, edition, when, by, status, chosen, str(after), tuple(waiting), kept
    )


def _record(
    ledger: Ledger,
    row: DeliveryRow,
    event: Event,
    done: bool,
    receipt: dict[str, Any],
    record: ConfirmationRecord,
    note: str,
    now: datetime,
) -> None:
    written = ledger.record_confirmation(
        row.item_id,
        row.channel,
        state=row.state,
        edition=row.edition,
        event=event,
        done=done,
        receipt=receipt,
        records=[record],
        note=note,
        now=now,
    )
    if not written:
        # It moved between the read and the write (a newer edition, a withdrawal).
        raise UsageError(
            f"item '{row.item_id}' on '{row.channel}' changed while confirming; run "
            f"`gongkai status {row.item_id}` and confirm again if it still waits"
        )


def _take_down_dropped(
    ledger: Ledger,
    row: DeliveryRow,
    receipt: dict[str, Any],
    area: str,
    when: datetime,
    day_only: bool,
    by: str,
    now: datetime,
    photo: str | Path | None,
    photos_dir: Path | None,
) -> Confirmation:
    """A new edition no longer goes to ``area``: its instruction sheet asked for the
    old edition to come down there. Recorded beside the new posting, whose state it
    leaves alone."""
    data = dict(receipt.get("data") or {})
    gone: dict[str, dict[str, Any]] = dict(data.get("taken_down_areas") or {})
    edition = int(data.get("replaces_edition") or int(data.get("edition") or row.edition) - 1)
    waiting = tuple(a for a in data.get("take_down_areas") or () if a not in gone)
    if area in gone:
        earlier = gone[area]
        return Confirmation(
            row.item_id, row.channel, edition, datetime.fromisoformat(earlier["taken_down_at"]),
            earlier["taken_down_by"], "already-taken-down", area, row.state, waiting,
            earlier.get("taken_down_photo"),
        )  # fmt: skip
    if row.state not in (State.AWAITING_CONFIRMATION, State.DELIVERED):
        raise _not_waiting(row)
    _check_time(ledger, row, {}, when, day_only, "taken-down")
    kept = _keep_photo(photo, photos_dir) if photo is not None else None
    gone[area] = {"taken_down_at": when.isoformat(), "taken_down_by": by}
    if kept:
        gone[area]["taken_down_photo"] = kept
    receipt = {**receipt, "data": {**data, "taken_down_areas": gone}}
    note = f"edition {edition} taken down in {area} (no longer posted there) by {by}"
    record = ConfirmationRecord(
        row.item_id, row.channel, edition, area, "taken-down", when, by, kept
    )
    _record(ledger, row, Event.TAKEN_DOWN, False, receipt, record, note, now)
    left = tuple(a for a in waiting if a != area)
    return Confirmation(
        row.item_id, row.channel, edition, when, by, "taken-down", area, row.state, left, kept
    )


def _check_state(row: DeliveryRow, data: dict[str, Any], kind: str) -> None:
    item_id, channel = row.item_id, row.channel
    take_down = data.get("action") == "take-down" or (
        row.intent == Intent.WITHDRAW and row.state == State.AWAITING_CONFIRMATION
    )
    written = data.get("edition")
    newer = max(row.edition, row.latest_edition or 0)
    if isinstance(written, int) and newer > written and not take_down:
        raise UsageError(
            f"item '{item_id}' on '{channel}': edition {written} is no longer current, "
            f"edition {newer} has been queued since; edition {written} cannot be confirmed. "
            f"Run `gongkai publish` to write edition {newer} (请更换), post it, then confirm "
            "that"
        )
    if kind == "posted" and take_down:
        raise UsageError(
            f"item '{item_id}' was withdrawn: its delivery on '{channel}' waits for the "
            "take-down; confirm the removal with --taken-down"
        )
    if kind == "taken-down" and row.state == State.AWAITING_CONFIRMATION and not take_down:
        raise UsageError(
            f"item '{item_id}' on '{channel}' is not confirmed as posted yet; confirm "
            "the posting first (without --taken-down), then its removal"
        )


def _not_waiting(row: DeliveryRow) -> UsageError:
    return UsageError(
        f"item '{row.item_id}' on '{row.channel}' is {row.state}, not awaiting confirmation; "
        "only a delivery a channel left for a person to confirm can be confirmed "
        f"(`gongkai status {row.item_id}` shows it)"
    )


def _choose_area(
    row: DeliveryRow,
    names: list[str],
    areas: dict[str, dict[str, Any]],
    area: str | None,
    kind: str,
) -> str:
    listed = "、".join(names)
    if area is None or not area.strip():
        if len(names) == 1:
            return names[0]
        stamp = _KEYS[kind][0]
        open_ = [n for n in names if stamp not in areas[n]]
        raise UsageError(
            f"item '{row.item_id}' on '{row.channel}' is posted in {len(names)} areas "
            f"({listed}); say which with --area"
            + (f" (still waiting: {'、'.join(open_)})" if open_ else "")
        )
    area = area.strip()
    if not areas:
        raise UsageError(f"item '{row.item_id}' on '{row.channel}' has no areas; leave out --area")
    if area not in areas:
        raise UsageError(
            f"item '{row.item_id}' on '{row.channel}' is not posted in '{area}'; its areas "
            f"are {listed}"
        )
    return area


def _waiting(
    names: list[str], areas: dict[str, dict[str, Any]], receipt: dict[str, Any], stamp: str
) -> list[str]:
    return [n for n in names if stamp not in areas.get(n, receipt)]


def _check_time(
    ledger: Ledger,
    row: DeliveryRow,
    mark: dict[str, Any],
    when: datetime,
    day_only: bool,
    kind: str,
) -> None:
    """Nothing goes up before it was written, or comes down before it went up."""
    earliest: datetime | None = None
    what = "it was written"
    if kind == "taken-down" and "confirmed_at" in mark:
        earliest, what = datetime.fromisoformat(mark["confirmed_at"]), "it was posted"
    else:
        for entry in reversed(ledger.attempts(row.item_id, row.channel)):
            if entry.action in _WRITING_ACTIONS and entry.state in (
                State.AWAITING_CONFIRMATION,
                State.DELIVERED,
            ):
                earliest = entry.finished_at
                break
    if earliest is None:
        return
    local = earliest.astimezone(CST)
    early = when.date() < local.date() if day_only else when < earliest
    if early:
        # A date alone is compared as a day, and shown as one (not as its noon).
        given = f"{when:%Y-%m-%d}" if day_only else f"{when:%Y-%m-%d %H:%M}"
        raise UsageError(
            f"--at {given} is before {what} ({local:%Y-%m-%d %H:%M} Beijing "
            f"time) for '{row.item_id}' on '{row.channel}'; check the date"
        )


def _keep_photo(photo: str | Path, photos_dir: Path | None) -> str:
    """Copy the photo under ``photos_dir``, named by its content: the same photo sent
    twice is kept once, and a kept photo never changes."""
    source = Path(photo)
    if photos_dir is None:
        raise UsageError("a photo can only be kept by a Publisher (it needs the state directory)")
    try:
        content = source.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"--photo {source}: cannot read it ({exc.strerror}); check the path"
        ) from None
    if not content:
        raise UsageError(f"--photo {source}: the file is empty; give the photo of the posting")
    digest = hashlib.sha256(content).hexdigest()
    target = photos_dir / f"{digest[:32]}{source.suffix.lower()[:8]}"
    if not target.exists():
        write_atomic(target, content)
    return os.fspath(target)
