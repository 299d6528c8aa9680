"""The assessment as an .xlsx workbook: 汇总 (one row per unit, ranked, then one row per
key area), then one sheet per unit listing every finding behind its figures.

Tables are written by :mod:`gongkai.ledger_xlsx`'s table writer, so they look like the
work ledger's: Chinese headers, a frozen filterable header row, set widths, real dates,
and text that looks like a formula stored as text.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

from openpyxl import Workbook

from .fileio import write_atomic
from .ledger_xlsx import Column, Row, _table
from .parity_html import CHANNEL_NAMES
from .report import (
    CYCLE_LABELS,
    INTERPRETATION_LABELS,
    PARITY_LABELS,
    TIMELINESS_LABELS,
    Report,
    Tally,
    UnitReport,
)

SUMMARY_SHEET = "汇总"
AREA_SHEET = "重点领域"
#: The figures of a unit or area, in the summary's column order.
TALLY_COLUMNS: list[tuple[str, str, float]] = [
    ("judged", "应公开事项", 10),
    ("on_time", "按时公开", 9),
    ("late", "逾期公开", 9),
    ("overdue", "逾期未公开", 10),
    ("not_due", "未到期", 8),
    ("on_time_rate", "按时率", 8),
    ("cycle_periods", "应更新期数", 10),
    ("cycle_gaps", "未按周期更新", 12),
    ("policies", "政策文件", 9),
    ("interpreted_in_step", "同步解读", 9),
    ("interpreted_late", "解读滞后", 9),
    ("interpretations_missing", "未解读", 8),
    ("responses", "回应", 7),
    ("responses_on_time", "按时回应", 9),
    ("parity_problem_items", "一致性问题事项", 13),
    ("channels_missing", "必需渠道缺失", 12),
    ("confirmations_overdue", "现场确认逾期", 12),
    ("taken_down_early", "提前撤下", 9),
    ("corrections", "更正", 7),
    ("withdrawals", "撤回", 7),
]
SUMMARY_COLUMNS: list[Column] = [("排名", 6), ("责任单位", 24), ("得分", 8)] + [
    (title, width) for _, title, width in TALLY_COLUMNS
]
AREA_COLUMNS: list[Column] = [("重点领域", 14)] + [
    (title, width) for _, title, width in TALLY_COLUMNS
]
FINDING_COLUMNS: list[Column] = [
    ("类别", 12),
    ("事项编号", 24),
    ("标题", 44),
    ("目录事项", 22),
    ("日期", 12),
    ("截止日期", 12),
    ("情况", 14),
    ("说明", 40),
]
#: What Excel refuses in a sheet name.
_BAD_TITLE = re.compile(r"[\[\]:*?/\\]")


def write_xlsx(report: Report, path: str | Path) -> None:
    """Write ``report`` to ``path`` (atomically)."""
    book = Workbook(write_only=True)
    _table(book.create_sheet(SUMMARY_SHEET), SUMMARY_COLUMNS, _summary_rows(report))
    _table(
        book.create_sheet(AREA_SHEET),
        AREA_COLUMNS,
        [(a.name, *tally_row(a.tally)) for a in report.areas],
    )
    taken = {SUMMARY_SHEET, AREA_SHEET}
    for unit in report.units:
        title = sheet_title(unit.unit, taken)
        taken.add(title)
        _table(book.create_sheet(title), FINDING_COLUMNS, finding_rows(unit))
    buffer = io.BytesIO()
    book.save(buffer)
    write_atomic(path, buffer.getvalue())


def sheet_title(unit: str, taken: set[str]) -> str:
    """A unit's sheet name: what Excel allows (31 characters, no ``[]:*?/\\``), unique."""
    base = _BAD_TITLE.sub("_", unit)[:31] or "单位"
    title, n = base, 2
    while title in taken:
        suffix = f"({n})"
        title, n = base[: 31 - len(suffix)] + suffix, n + 1
    return title


def tally_row(tally: Tally) -> list[object]:
    values = tally.as_dict()
    rate = tally.on_time_rate
    return [
        (None if rate is None else round(rate, 4)) if key == "on_time_rate" else values[key]
        for key, _, _ in TALLY_COLUMNS
    ]


def _summary_rows(report: Report) -> Iterator[Row]:
    for unit in report.units:
        yield (unit.rank, unit.unit, unit.score, *tally_row(unit.tally))
    yield (None, "合计", None, *tally_row(report.total))


def finding_rows(unit: UnitReport) -> Iterator[Row]:
    """Every finding of one unit: items judged, cycle gaps, interpretations, parity
    problems, corrections and withdrawals."""
    for i in unit.items:
        note = f"超期{i.days_late}个工作日" if i.days_late else ""
        yield ("公开时效", i.item_id, i.title, i.catalog_name, i.published_on, i.due_on,
               TIMELINESS_LABELS.get(i.timeliness, i.timeliness), note)  # fmt: skip
    for g in unit.cycle_gaps:
        yield ("更新周期", "", f"{g.catalog_name}（{CYCLE_LABELS[g.cycle]}）", g.catalog_name,
               g.start, g.end, "未按周期更新", f"{g.start}至{g.end}无新发布事项")  # fmt: skip
    for c in unit.interpretations:
        note = f"解读：{c.interpretation_id}（{c.interpreted_on}）" if c.interpretation_id else ""
        yield ("政策解读", c.item_id, c.title, "", c.published_on, c.due_on,
               INTERPRETATION_LABELS[c.state], note)  # fmt: skip
    for p in unit.parity:
        where = CHANNEL_NAMES.get(p.channel, p.channel) + (f" {p.area}" if p.area else "")
        yield ("线上线下一致", p.item_id, p.title, "", None, None, PARITY_LABELS[p.problem],
               f"{where}：{p.detail}")  # fmt: skip
    for e in unit.corrections:
        yield ("更正", e.item_id, e.title, "", e.recorded_at, None, f"第{e.edition}版", "")
    for w in unit.withdrawals:
        yield ("撤回", w.item_id, w.title, "", w.withdrawn_at, None, "已撤回", w.reason)
