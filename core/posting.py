"""The 公示期: how long an item stays posted, counted from the day it goes up.

The catalogue sets a minimum (``posting_min``, in working or calendar days) and an
item may ask for longer (``posting_days``). Offline channels print it on the notice;
a screen or any other channel that shows an item for a while reads it through
:meth:`gongkai.ChannelContext.posting_period`.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from .catalogue import Catalogue, Period
from .item import Item
from .workdays import WorkCalendar


def posting_period(
    item: Item, minimum: Period | None, calendar: WorkCalendar, start: date
) -> dict[str, Any] | None:
    """The 公示期 from ``start`` (the publish date, counted as its first day when it is
    a day of the period's kind): ``minimum`` (the catalogue's ``posting_min``) or the
    item's ``posting_days``, whichever is longer, in the minimum's unit (calendar days
    when there is none). ``{"from", "to", "days", "unit"}`` with ISO dates, or None
    when neither sets one."""
    days = max(minimum.days if minimum else 0, item.posting_days or 0)
    if days <= 0:
        return None
    unit = minimum.unit if minimum else "calendar"
    if unit == "working":
        counted = 1 if calendar.is_workday(start) else 0
        first = start if counted else calendar.add_working_days(start, 1)
        end = calendar.add_working_days(start, days - counted)
    else:
        first, end = start, start + timedelta(days=days - 1)
    return {"from": first.isoformat(), "to": end.isoformat(), "days": days, "unit": unit}


@lru_cache(maxsize=16)
def catalogue_of(sources: tuple[str, ...]) -> Catalogue:
    """The deployment's catalogue, read once per process: channels ask per item."""
    return Catalogue.load(sources)


def minimum_for(item: Item, sources: tuple[str, ...]) -> Period | None:
    entry = catalogue_of(tuple(str(s) for s in sources)).get(item.catalog)
    return entry.posting_min if entry else None
