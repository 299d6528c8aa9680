"""Parity over past days, replayed from the attempt log.

Every log entry records the state it left its delivery in. Replaying them in order
gives each delivery's state at the end of each day; an item was at parity that day
when every one of its deliveries that was not withdrawn was ``delivered`` (on an
offline channel: confirmed in every area). A newer edition puts the item's rows back
to ``pending``, so it is not at parity again until they carry it. Items whose every
delivery is withdrawn are left out of the count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from .item import CST
from .ledger import Ledger, State


@dataclass(frozen=True)
class DayParity:
    """One day: of ``items`` published items, ``at_parity`` were at parity at its end."""

    day: date
    at_parity: int
    items: int

    @property
    def share(self) -> float:
        return self.at_parity / self.items if self.items else 1.0

    def as_dict(self) -> dict[str, object]:
        return {"day": self.day.isoformat(), "at_parity": self.at_parity, "items": self.items}


class _Tally:
    """Per item: how many deliveries are live (not withdrawn) and how many delivered."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], str] = {}
        self.live: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.items = 0
        self.at_parity = 0

    def _count(self, item_id: str, sign: int) -> None:
        live, done = self.live.get(item_id, 0), self.done.get(item_id, 0)
        if live:
            self.items += sign
            if live == done:
                self.at_parity += sign

    def set(self, item_id: str, channel: str, state: str) -> None:
        before = self.states.get((item_id, channel))
        if before == state:
            return
        self._count(item_id, -1)
        for value, sign in ((before, -1), (state, 1)):
            if value is not None and value != State.WITHDRAWN:
                self.live[item_id] = self.live.get(item_id, 0) + sign
                if value == State.DELIVERED:
                    self.done[item_id] = self.done.get(item_id, 0) + sign
        self.states[(item_id, channel)] = state
        self._count(item_id, 1)


def history(ledger: Ledger, now: datetime, days: int = 90) -> list[DayParity]:
    """Parity at the end of each of the last ``days`` days (Beijing time), oldest
    first; the last is today so far."""
    today = now.astimezone(CST).date()
    first = today - timedelta(days=days - 1)
    entries = ledger.attempt_log(datetime.combine(first, time(0), CST))
    tally = _Tally()
    found: list[DayParity] = []
    index = 0
    for offset in range(days):
        day = first + timedelta(days=offset)
        end = min(datetime.combine(day + timedelta(days=1), time(0), CST), now)
        while index < len(entries) and entries[index].finished_at < end:
            entry = entries[index]
            if entry.state is not None:
                tally.set(entry.item_id, entry.channel, entry.state)
            index += 1
        found.append(DayParity(day, tally.at_parity, tally.items))
    return found
