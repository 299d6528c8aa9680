"""The assessment report (考核): what each responsible unit published over a period, on
time, on every channel.

:func:`compute` turns the facts the ledger already holds into typed figures, per
responsible unit (the catalogue entry's ``responsible_unit``) and per key area (the
entry's ``domain``):

* **timeliness**: the items whose statutory deadline (``time_limit`` from ``formed_on``,
  on the working-day calendar with the ``[calendar]`` overrides; 20 working days where
  the entry sets none) falls in the period, each ``on-time``, ``late``, ``overdue``
  (still unpublished past it) or ``not-due``, as of the report's ``now``. Items without
  a deadline count when formed in the period. An item withdrawn before it was ever
  published is not judged.
* **update cycles**: for entries with a regular cycle (每月 / 每季度 / 每年…), every
  cycle period ending in the report period (by ``now``, and after the ledger's first
  record) with no item of the entry first published in it. Other cycles (征地启动时,
  实时更新…) are listed as not checkable.
* **interpretations**: each policy release (``[report] policy_entries``) judged against
  the first 解读 naming it in ``related``: ``in-step`` within ``interpretation_days``
  working days of the policy's publication, ``late``, ``missing`` or ``not-due``.
* **responses** (回应): their own timeliness.
* **parity** (from :mod:`gongkai.parity`): a required channel missing, an offline
  confirmation overdue, a posting taken down before its 公示期 ended.
* **corrections** (editions recorded after first publication) and **withdrawals**
  made in the period, with their reasons.

Each unit's score is 100 × the weighted mean of its rates (``[report.weights]``; a part
with no case is left out), and units are ranked by it.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from .catalogue import Catalogue, Entry
from .config import ReportSettings
from .item import CST
from .ledger import Ledger
from .ledger_export import LedgerExport, LedgerItem, _plain
from .parity import ParityReport
from .workdays import WorkCalendar

Cycle = Literal["monthly", "quarterly", "yearly"]
InterpretationState = Literal["in-step", "late", "missing", "not-due"]
ParityProblem = Literal["missing", "overdue", "early"]

#: How each cycle, timeliness and finding reads in the Chinese outputs.
CYCLE_LABELS = {"monthly": "按月", "quarterly": "按季度", "yearly": "按年"}
TIMELINESS_LABELS = {
    "on-time": "按时公开",
    "late": "逾期公开",
    "overdue": "逾期未公开",
    "not-due": "未到期",
    "no-deadline": "无时限",
}
INTERPRETATION_LABELS = {
    "in-step": "同步解读",
    "late": "解读滞后",
    "missing": "未解读",
    "not-due": "未到期",
}
PARITY_LABELS = {
    "missing": "必需渠道缺失",
    "overdue": "现场确认逾期",
    "early": "公示期未满提前撤下",
}
#: The parts of a score, in the order the outputs show them.
PARTS = ("timeliness", "cycles", "interpretation", "responses", "parity")
PART_LABELS = {
    "timeliness": "按时公开",
    "cycles": "更新周期",
    "interpretation": "政策解读",
    "responses": "回应关切",
    "parity": "线上线下一致",
}
#: Where the catalogue names no unit for an item (its entry was removed).
NO_UNIT = "（未列入目录）"

_CYCLES: list[tuple[re.Pattern[str], Cycle]] = [
    (re.compile(r"^(每月|按月|monthly$)"), "monthly"),
    (re.compile(r"^(每季度?|按季度?|quarterly$)"), "quarterly"),
    (re.compile(r"^(每年|按年|yearly$|annually$)"), "yearly"),
]
_QUARTER = re.compile(r"^(\d{4})[Qq]([1-4])$")
_QUARTER_NAMES = "一二三四"


def cycle_of(text: str) -> Cycle | None:
    """The regular cycle an entry's ``update_cycle`` names ("每季度" → quarterly;
    "每年招生前" → yearly), or None for an event ("征地启动时") that cannot be checked."""
    for pattern, cycle in _CYCLES:
        if pattern.match(text.strip()):
            return cycle
    return None


def quarter(text: str) -> tuple[date, date]:
    """The first and last day of a quarter written ``2026Q4``."""
    found = _QUARTER.match(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a quarter; write it like 2026Q4")
    year, number = int(found.group(1)), int(found.group(2))
    start = date(year, 3 * number - 2, 1)
    return start, _month_end(date(year, 3 * number, 1))


def period_label(start: date, end: date) -> str:
    """ "2026年第四季度", "2026年度", "2026年11月" for whole periods; else the two days."""
    if start.day == 1 and end == _month_end(end):
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        if months == 12 and start.month == 1:
            return f"{start.year}年度"
        if months == 3 and start.month % 3 == 1:
            return f"{start.year}年第{_QUARTER_NAMES[start.month // 3]}季度"
        if months == 1:
            return f"{start.year}年{start.month}月"
    return f"{_cn(start)}至{_cn(end)}"


# --- result types -------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """The figures of one unit, one key area or the whole county. Rates are None where
    there is nothing to judge."""

    items: int = 0
    on_time: int = 0
    late: int = 0
    overdue: int = 0
    not_due: int = 0
    no_deadline: int = 0
    cycle_periods: int = 0
    cycle_gaps: int = 0
    policies: int = 0
    interpreted_in_step: int = 0
    interpreted_late: int = 0
    interpretations_missing: int = 0
    #: Policies whose 解读 is not due yet (still within interpretation_days).
    interpretations_not_due: int = 0
    responses: int = 0
    responses_on_time: int = 0
    responses_late: int = 0
    responses_overdue: int = 0
    parity_items: int = 0
    parity_problem_items: int = 0
    channels_missing: int = 0
    confirmations_overdue: int = 0
    taken_down_early: int = 0
    corrections: int = 0
    withdrawals: int = 0

    @property
    def judged(self) -> int:
        """Items whose deadline has come: on time, late or overdue."""
        return self.on_time + self.late + self.overdue

    def rates(self) -> dict[str, float | None]:
        """Each part of the score as a share between 0 and 1 (None: no case)."""
        interpretations = self.interpreted_in_step + self.interpreted_late
        return {
            "timeliness": _share(self.on_time, self.judged),
            "cycles": _share(self.cycle_periods - self.cycle_gaps, self.cycle_periods),
            "interpretation": _share(
                self.interpreted_in_step, interpretations + self.interpretations_missing
            ),
            "responses": _share(
                self.responses_on_time,
                self.responses_on_time + self.responses_late + self.responses_overdue,
            ),
            "parity": _share(self.parity_items - self.parity_problem_items, self.parity_items),
        }

    @property
    def on_time_rate(self) -> float | None:
        return self.rates()["timeliness"]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "judged": self.judged, "rates": self.rates()}


@dataclass(frozen=True)
class ItemFinding:
    """One item judged for timeliness. ``days_late``: working days past the deadline
    it was published (late) or has stayed unpublished until the report's day (overdue)."""

    item_id: str
    title: str
    index_number: str
    unit: str
    domain: str
    catalog: str
    catalog_name: str
    kind: str
    area: str
    formed_on: date | None
    due_on: date | None
    published_on: date | None
    timeliness: str
    days_late: int | None

    def as_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


@dataclass(frozen=True)
class CycleGap:
    """A cycle period (``start``–``end``) of a catalogue entry with no new item."""

    catalog: str
    catalog_name: str
    unit: str
    domain: str
    cycle: Cycle
    start: date
    end: date

    def as_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


@dataclass(frozen=True)
class UncheckedCycle:
    """A catalogue entry whose update cycle names an event, not a period."""

    catalog: str
    catalog_name: str
    unit: str
    domain: str
    update_cycle: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InterpretationCheck:
    """A policy release and its 解读: due by ``due_on``, first published ``interpreted_on``."""

    item_id: str
    title: str
    unit: str
    domain: str
    published_on: date
    due_on: date
    interpretation_id: str | None
    interpreted_on: date | None
    state: InterpretationState

    def as_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


@dataclass(frozen=True)
class ParityFinding:
    """A parity problem of one item on one channel (and area, for offline ones)."""

    item_id: str
    title: str
    unit: str
    domain: str
    problem: ParityProblem
    channel: str
    area: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Correction:
    """An edition recorded after the item was first published (更正)."""

    item_id: str
    title: str
    unit: str
    domain: str
    edition: int
    recorded_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


@dataclass(frozen=True)
class Withdrawal:
    """An item withdrawn in the period, with the reason given."""

    item_id: str
    title: str
    unit: str
    domain: str
    withdrawn_at: datetime
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


@dataclass(frozen=True)
class UnitReport:
    """One responsible unit: its figures, score (0–100, None with nothing to judge),
    rank (1 best; equal scores share one) and every finding behind them."""

    unit: str
    tally: Tally
    score: float | None
    rank: int | None
    items: tuple[ItemFinding, ...] = ()
    cycle_gaps: tuple[CycleGap, ...] = ()
    interpretations: tuple[InterpretationCheck, ...] = ()
    parity: tuple[ParityFinding, ...] = ()
    corrections: tuple[Correction, ...] = ()
    withdrawals: tuple[Withdrawal, ...] = ()

    @property
    def overdue_items(self) -> tuple[ItemFinding, ...]:
        return tuple(i for i in self.items if i.timeliness == "overdue")

    @property
    def late_items(self) -> tuple[ItemFinding, ...]:
        return tuple(i for i in self.items if i.timeliness == "late")

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "score": self.score,
            "rank": self.rank,
            "tally": self.tally.as_dict(),
            "items": [i.as_dict() for i in self.items],
            "cycle_gaps": [g.as_dict() for g in self.cycle_gaps],
            "interpretations": [i.as_dict() for i in self.interpretations],
            "parity": [p.as_dict() for p in self.parity],
            "corrections": [c.as_dict() for c in self.corrections],
            "withdrawals": [w.as_dict() for w in self.withdrawals],
        }


@dataclass(frozen=True)
class AreaReport:
    """One key area (``domain`` and its Chinese ``name``)."""

    domain: str
    name: str
    tally: Tally

    def as_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "name": self.name, "tally": self.tally.as_dict()}


@dataclass(frozen=True)
class Report:
    """The assessment over ``start``–``end`` (Beijing days, inclusive) at ``now``;
    ``units`` best first, ``unit``/``area`` the filters it was made with."""

    start: date
    end: date
    now: datetime
    label: str
    total: Tally
    units: tuple[UnitReport, ...]
    areas: tuple[AreaReport, ...]
    unchecked_cycles: tuple[UncheckedCycle, ...]
    weights: dict[str, float]
    interpretation_days: int
    commend_score: float
    unit: str | None = None
    area: str | None = None

    @property
    def commended(self) -> tuple[UnitReport, ...]:
        """Units scoring at least ``commend_score`` with nothing overdue."""
        return tuple(
            u
            for u in self.units
            if u.score is not None and u.score >= self.commend_score and not u.tally.overdue
        )

    @property
    def named(self) -> tuple[UnitReport, ...]:
        """Units with items still overdue, most overdue first."""
        late = [u for u in self.units if u.tally.overdue]
        return tuple(sorted(late, key=lambda u: (-u.tally.overdue, u.unit)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "now": self.now.isoformat(),
            "label": self.label,
            "unit": self.unit,
            "area": self.area,
            "weights": self.weights,
            "interpretation_days": self.interpretation_days,
            "commend_score": self.commend_score,
            "total": self.total.as_dict(),
            "units": [u.as_dict() for u in self.units],
            "areas": [a.as_dict() for a in self.areas],
            "unchecked_cycles": [c.as_dict() for c in self.unchecked_cycles],
            "commended": [u.unit for u in self.commended],
            "named": [u.unit for u in self.named],
        }


# --- computing ----------------------------------------------------------------------


class SharedReads:
    """A ledger whose whole-ledger reads (every delivery row, confirmation and item)
    are made once and shared: a report reads the work ledger and parity, which both
    need them all. Any other call goes to the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._once: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    def _read(self, name: str) -> Any:
        if name not in self._once:
            self._once[name] = getattr(self._ledger, name)()
        return self._once[name]

    def rows(self, item_id: str | None = None, states: Any = None, item_ids: Any = None) -> Any:
        if item_id is None and states is None and item_ids is None:
            return self._read("rows")
        return self._ledger.rows(item_id, states, item_ids)

    def confirmations(self, item_ids: Any = None) -> Any:
        return (
            self._read("confirmations")
            if item_ids is None
            else self._ledger.confirmations(item_ids)
        )

    def item_summaries(self) -> Any:
        return self._read("item_summaries")


@dataclass
class _Facts:
    """Everything found, before it is split by unit and area."""

    items: list[ItemFinding] = field(default_factory=list)
    responses: list[ItemFinding] = field(default_factory=list)
    gaps: list[CycleGap] = field(default_factory=list)
    periods: Counter[tuple[str, str]] = field(default_factory=Counter)
    interpretations: list[InterpretationCheck] = field(default_factory=list)
    parity: list[ParityFinding] = field(default_factory=list)
    parity_items: list[tuple[str, str]] = field(default_factory=list)  # (unit, domain)
    corrections: list[Correction] = field(default_factory=list)
    withdrawals: list[Withdrawal] = field(default_factory=list)
    unchecked: list[UncheckedCycle] = field(default_factory=list)

    _LISTS = ("items", "responses", "gaps", "interpretations", "parity", "corrections",
              "withdrawals", "unchecked")  # fmt: skip

    def where(self, test: Callable[[str, str], bool]) -> _Facts:
        """The facts of the units and areas ``test(unit, domain)`` keeps."""
        return self.split(lambda u, d: "" if test(u, d) else None).get("", _Facts())

    def split(self, key: Callable[[str, str], str | None]) -> dict[str, _Facts]:
        """The facts grouped by ``key(unit, domain)`` (None: left out), in one pass."""
        groups: dict[str, _Facts] = defaultdict(_Facts)
        for name in self._LISTS:
            for fact in getattr(self, name):
                group = key(fact.unit, fact.domain)
                if group is not None:
                    getattr(groups[group], name).append(fact)
        for (u, d), n in self.periods.items():
            group = key(u, d)
            if group is not None:
                groups[group].periods[(u, d)] += n
        for u, d in self.parity_items:
            group = key(u, d)
            if group is not None:
                groups[group].parity_items.append((u, d))
        return dict(groups)


def compute(
    export: LedgerExport,
    parity: ParityReport,
    catalogue: Catalogue,
    calendar: WorkCalendar,
    settings: ReportSettings,
    start: date,
    end: date,
    *,
    related: dict[str, Sequence[str]],
    unit: str | None = None,
    area: str | None = None,
) -> Report:
    """The report over ``start``–``end`` from the whole work ledger (``export``, as of
    its ``generated_at``), the parity of every item, and ``related``: each
    interpretation's ``related`` item ids. ``unit`` and ``area`` (a domain key or its
    Chinese name) narrow it."""
    now = export.generated_at
    today = now.astimezone(CST).date()
    domain = _domain_key(catalogue, area)
    facts = _Facts()
    by_id = {i.item_id: i for i in export.items}
    in_scope: list[LedgerItem] = []
    for item in export.items:
        if _scoped(item, start, end):
            in_scope.append(item)
            finding = _finding(item, catalogue, calendar, today)
            facts.items.append(finding)
            if item.kind == "response":
                facts.responses.append(finding)
        _events(item, catalogue, start, end, facts)
    _cycles(export.items, catalogue, start, end, today, facts)
    _interpretations(in_scope, by_id, related, catalogue, calendar, settings, today, facts)
    _parity(in_scope, parity, catalogue, facts)

    def wanted(u: str, d: str) -> bool:
        return (unit is None or u == unit) and (domain is None or d == domain)

    facts = facts.where(wanted)
    by_unit = facts.split(lambda u, d: u)
    names = {_unit(e) for e in catalogue.entries.values()} | set(by_unit)
    reports = []
    for name in sorted(names):
        if unit is not None and name != unit:
            continue
        mine = by_unit.get(name, _Facts())
        tally = _tally(mine)
        if not any(asdict(tally).values()) and unit is None:
            continue  # a unit with nothing in this period and nothing due
        reports.append((name, tally, mine, _score(tally, settings)))
    reports.sort(key=lambda r: (r[3] is None, -(r[3] or 0), r[0]))
    ranks = _ranks([r[3] for r in reports])
    unit_reports = tuple(
        UnitReport(
            unit=name,
            tally=tally,
            score=score,
            rank=rank,
            items=tuple(mine.items),
            cycle_gaps=tuple(mine.gaps),
            interpretations=tuple(mine.interpretations),
            parity=tuple(mine.parity),
            corrections=tuple(mine.corrections),
            withdrawals=tuple(mine.withdrawals),
        )
        for (name, tally, mine, score), rank in zip(reports, ranks, strict=True)
    )
    by_area = facts.split(lambda u, d: d)
    areas = []
    for key in dict.fromkeys([*catalogue.domains, *by_area]):
        tally = _tally(by_area.get(key, _Facts()))
        if any(asdict(tally).values()):
            areas.append(AreaReport(key, catalogue.domains.get(key, key) or NO_UNIT, tally))
    return Report(
        start=start,
        end=end,
        now=now,
        label=period_label(start, end),
        total=_tally(facts),
        units=unit_reports,
        areas=tuple(areas),
        unchecked_cycles=tuple(facts.unchecked),
        weights=settings.weights.model_dump(),
        interpretation_days=settings.interpretation_days,
        commend_score=settings.commend_score,
        unit=unit,
        area=domain,
    )


def known_units(catalogue: Catalogue, export: LedgerExport) -> list[str]:
    """Every unit a report can be narrowed to."""
    return sorted(
        {_unit(e) for e in catalogue.entries.values()}
        | {i.responsible_unit or NO_UNIT for i in export.items}
    )


def _tally(facts: _Facts) -> Tally:
    items = Counter(f.timeliness for f in facts.items)
    responses = Counter(f.timeliness for f in facts.responses)
    interpretations = Counter(i.state for i in facts.interpretations)
    problems = Counter(p.problem for p in facts.parity)
    return Tally(
        items=sum(items.values()),
        on_time=items["on-time"],
        late=items["late"],
        overdue=items["overdue"],
        not_due=items["not-due"],
        no_deadline=items["no-deadline"],
        cycle_periods=sum(facts.periods.values()),
        cycle_gaps=len(facts.gaps),
        policies=sum(interpretations.values()),
        interpreted_in_step=interpretations["in-step"],
        interpreted_late=interpretations["late"],
        interpretations_missing=interpretations["missing"],
        interpretations_not_due=interpretations["not-due"],
        responses=sum(responses.values()),
        responses_on_time=responses["on-time"],
        responses_late=responses["late"],
        responses_overdue=responses["overdue"],
        parity_items=len(facts.parity_items),
        parity_problem_items=len({p.item_id for p in facts.parity}),
        channels_missing=problems["missing"],
        confirmations_overdue=problems["overdue"],
        taken_down_early=problems["early"],
        corrections=len(facts.corrections),
        withdrawals=len(facts.withdrawals),
    )


def _score(tally: Tally, settings: ReportSettings) -> float | None:
    weights = settings.weights.model_dump()
    counted = [(weights[k], r) for k, r in tally.rates().items() if r is not None and weights[k]]
    total = sum(w for w, _ in counted)
    if not total:
        return None
    return round(100 * sum(w * r for w, r in counted) / total, 1)


def _ranks(scores: list[float | None]) -> list[int | None]:
    ranks: list[int | None] = []
    for n, score in enumerate(scores):
        if score is None:
            ranks.append(None)
        elif n and scores[n - 1] == score:
            ranks.append(ranks[-1])
        else:
            ranks.append(n + 1)
    return ranks


def _unit(entry: Entry | None) -> str:
    return entry.responsible_unit if entry else NO_UNIT


def _scoped(item: LedgerItem, start: date, end: date) -> bool:
    if item.timeliness == "withdrawn-unpublished":
        return False
    day = item.due_on if item.due_on is not None else item.formed_on
    return day is not None and start <= day <= end


def _finding(
    item: LedgerItem, catalogue: Catalogue, calendar: WorkCalendar, today: date
) -> ItemFinding:
    entry = catalogue.get(item.catalog)
    days_late = None
    if item.due_on is not None and item.timeliness in ("late", "overdue"):
        until = item.published_on if item.timeliness == "late" else today
        days_late = _working_days_between(calendar, item.due_on, until or today)
    return ItemFinding(
        item_id=item.item_id,
        title=item.title,
        index_number=item.index_number,
        unit=_unit(entry),
        domain=entry.domain if entry else "",
        catalog=item.catalog,
        catalog_name=item.catalog_name,
        kind=item.kind,
        area=item.area,
        formed_on=item.formed_on,
        due_on=item.due_on,
        published_on=item.published_on,
        timeliness=item.timeliness,
        days_late=days_late,
    )


def _working_days_between(calendar: WorkCalendar, after: date, until: date) -> int:
    """Working days in (after, until]."""
    count, day = 0, after
    while day < until:
        day += timedelta(days=1)
        count += calendar.is_workday(day)
    return count


def _events(item: LedgerItem, catalogue: Catalogue, start: date, end: date, facts: _Facts) -> None:
    entry = catalogue.get(item.catalog)
    unit, domain = _unit(entry), entry.domain if entry else ""
    if item.published_at is not None:
        for edition in item.editions:
            if edition.recorded_at > item.published_at and _within(edition.recorded_at, start, end):
                facts.corrections.append(
                    Correction(item.item_id, item.title, unit, domain, edition.edition,
                               edition.recorded_at)
                )  # fmt: skip
    if item.withdrawn_at is not None and _within(item.withdrawn_at, start, end):
        facts.withdrawals.append(
            Withdrawal(item.item_id, item.title, unit, domain, item.withdrawn_at,
                       item.withdraw_reason or "")
        )  # fmt: skip


def _within(moment: datetime, start: date, end: date) -> bool:
    return start <= moment.astimezone(CST).date() <= end


def _cycles(
    items: list[LedgerItem],
    catalogue: Catalogue,
    start: date,
    end: date,
    today: date,
    facts: _Facts,
) -> None:
    published: dict[str, list[date]] = defaultdict(list)
    for item in items:
        if item.published_on is not None:
            published[item.catalog].append(item.published_on)
    # Before the ledger's first record gongkai knows nothing: those periods are not judged.
    began = min((e.recorded_at for i in items for e in i.editions[:1]), default=None)
    if began is None:
        return
    start = max(start, began.astimezone(CST).date())
    last = min(end, today)
    for entry in catalogue.entries.values():
        unit = _unit(entry)
        cycle = cycle_of(entry.update_cycle)
        if cycle is None:
            facts.unchecked.append(
                UncheckedCycle(entry.key, entry.name, unit, entry.domain, entry.update_cycle)
            )
            continue
        days = published.get(entry.key, [])
        for first, final in _cycle_periods(cycle, start, last):
            facts.periods[(unit, entry.domain)] += 1
            if not any(first <= d <= final for d in days):
                facts.gaps.append(
                    CycleGap(entry.key, entry.name, unit, entry.domain, cycle, first, final)
                )


def _cycle_periods(cycle: Cycle, start: date, last: date) -> Iterable[tuple[date, date]]:
    """The cycle periods that end within ``start``–``last``."""
    months = {"monthly": 1, "quarterly": 3, "yearly": 12}[cycle]
    month = (start.month - 1) // months * months + 1
    first = date(start.year, month, 1)
    while True:
        final = _month_end(_add_months(first, months - 1))
        if final > last:
            return
        if final >= start:
            yield first, final
        first = _add_months(first, months)


def _interpretations(
    scope: list[LedgerItem],
    by_id: dict[str, LedgerItem],
    related: dict[str, Sequence[str]],
    catalogue: Catalogue,
    calendar: WorkCalendar,
    settings: ReportSettings,
    today: date,
    facts: _Facts,
) -> None:
    first: dict[str, tuple[date, str]] = {}
    for item_id, targets in related.items():
        explainer = by_id.get(item_id)
        if explainer is None or explainer.published_on is None:
            continue
        for target in targets:
            known = first.get(target)
            if known is None or explainer.published_on < known[0]:
                first[target] = (explainer.published_on, item_id)
    for item in scope:
        is_policy = any(fnmatch.fnmatchcase(item.catalog, p) for p in settings.policy_entries)
        if not is_policy or item.kind != "release" or item.published_on is None:
            continue
        entry = catalogue.get(item.catalog)
        due = calendar.add_working_days(item.published_on, settings.interpretation_days)
        found = first.get(item.item_id)
        state: InterpretationState
        if found is not None:
            state = "in-step" if found[0] <= due else "late"
        else:
            state = "missing" if today > due else "not-due"
        facts.interpretations.append(
            InterpretationCheck(
                item_id=item.item_id,
                title=item.title,
                unit=_unit(entry),
                domain=entry.domain if entry else "",
                published_on=item.published_on,
                due_on=due,
                interpretation_id=found[1] if found else None,
                interpreted_on=found[0] if found else None,
                state=state,
            )
        )


def _parity(
    scope: list[LedgerItem], parity: ParityReport, catalogue: Catalogue, facts: _Facts
) -> None:
    by_id = {p.item_id: p for p in parity.items}
    for item in scope:
        if item.withdrawn_at is not None:
            continue
        entry = catalogue.get(item.catalog)
        unit, domain = _unit(entry), entry.domain if entry else ""
        facts.parity_items.append((unit, domain))
        found = by_id.get(item.item_id)
        for channel in found.channels if found else ():
            if channel.required and channel.state in ("missing", "not-configured"):
                facts.parity.append(
                    ParityFinding(item.item_id, item.title, unit, domain, "missing",
                                  channel.channel, "", channel.detail)
                )  # fmt: skip
            for spot in channel.areas:
                if spot.state in ("overdue", "early"):
                    facts.parity.append(
                        ParityFinding(item.item_id, item.title, unit, domain, spot.state,
                                      channel.channel, spot.area, spot.detail)
                    )  # fmt: skip


def _domain_key(catalogue: Catalogue, area: str | None) -> str | None:
    if area is None:
        return None
    for key, name in catalogue.domains.items():
        if area in (key, name):
            return key
    known = ", ".join(f"{k} ({n})" for k, n in catalogue.domains.items())
    raise ValueError(f"no key area '{area}'; use one of {known}")


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _month_end(day: date) -> date:
    return _add_months(day.replace(day=1), 1) - timedelta(days=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _cn(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


__all__ = [
    "AreaReport",
    "Correction",
    "CycleGap",
    "InterpretationCheck",
    "ItemFinding",
    "ParityFinding",
    "Report",
    "Tally",
    "UncheckedCycle",
    "UnitReport",
    "Withdrawal",
    "compute",
    "cycle_of",
    "period_label",
    "quarter",
]
