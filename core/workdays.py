"""Working-day arithmetic for statutory deadlines and posting periods.

工作日 is not defined by the regulation; practice is Monday to Friday, minus statutory
holidays, plus the make-up working days (调休) the State Council announces each year.
``chinese-calendar`` carries those announcements. For a year it does not know yet, we
fall back to Monday–Friday and say so once, and config can add or remove days.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal, Self

import chinese_calendar

from .log import get_logger

DayUnit = Literal["working", "calendar"]
log = get_logger(__name__)


@dataclass
class WorkCalendar:
    """A Chinese working-day calendar with local additions.

    ``extra_holidays`` and ``extra_workdays`` override the maintained calendar, for a
    year it does not cover yet or for a local decision.
    """

    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    _warned_years: set[int] = field(default_factory=set, repr=False)
    # chinese_calendar scans its whole table on every call; a county has few dates.
    _cache: dict[date, bool] = field(default_factory=dict, repr=False)
    _sums: dict[tuple[date, int], date] = field(default_factory=dict, repr=False)

    @classmethod
    def from_lists(cls, holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> Self:
        return cls(frozenset(holidays), frozenset(workdays))

    def is_workday(self, day: date) -> bool:
        cached = self._cache.get(day)
        if cached is None:
            cached = self._cache[day] = self._is_workday(day)
        return cached

    def _is_workday(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            if day.year not in self._warned_years:
                self._warned_years.add(day.year)
                log.warning(
                    "holiday calendar has no data for this year; counting Monday to Friday",
                    year=day.year,
                    fix="upgrade chinese-calendar, or list the year's holidays and make-up "
                    "days under [calendar] in config.toml",
                )
            return day.weekday() < 5

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself not counted)."""
        key = (start, days)
        if key not in self._sums:
            self._sums[key] = self._count_forward(start, days)
        return self._sums[key]

    def _count_forward(self, start: date, days: int) -> date:
        current = start
        remaining = days
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_workday(current):
                remaining -= 1
        return current

    def add(self, start: date, days: int, unit: DayUnit) -> date:
        if unit == "working":
            return self.add_working_days(start, days)
        return start + timedelta(days=days)
