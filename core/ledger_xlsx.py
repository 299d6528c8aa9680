"""The work ledger as an .xlsx workbook an inspector can be handed as it is.

Sheets: 说明 (when it was made, the period, the counts), 台账 (one row per item), 版次
(every edition), 发布渠道 (every channel's delivery), 现场确认 (every confirmation of an
offline posting) and 撤回 (withdrawals). Each table has Chinese headers, a frozen and
filterable header row, set column widths, and real date cells (Beijing time, which
Excel shows without a zone).

openpyxl's write-only mode streams rows to the file, so 30,000 items need no more
memory than one row. A text cell starting with ``= + - @``, a tab or a carriage return
is stored as text with Excel's quote prefix (what typing a leading ``'`` does), so a
title such as ``=HYPERLINK(…)`` is shown, never evaluated, and stays text when edited
(OWASP, CSV injection); its value is kept exactly.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from .fileio import write_atomic
from .item import CST
from .ledger_export import TIMELINESS_LABELS, LedgerExport, LedgerItem
from .log import scrub
from .parity_html import CHANNEL_NAMES

#: Delivery states as the office reads them.
STATE_LABELS = {
    "pending": "待发送",
    "in-flight": "发送中",
    "delivered": "已送达",
    "publishing": "发布中",
    "awaiting-confirmation": "待确认",
    "retry-wait": "等待重试",
    "failed": "失败",
    "unknown": "结果未知",
    "withdrawn": "已撤回",
}
#: The same states of a withdrawn item's delivery, which is being taken down.
TAKE_DOWN_LABELS = {
    "pending": "待撤下",
    "in-flight": "撤下中",
    "awaiting-confirmation": "待确认撤下",
    "retry-wait": "撤下等待重试",
    "failed": "撤下失败",
    "unknown": "撤下结果未知",
}
KIND_LABELS = {"release": "发布", "interpretation": "解读", "response": "回应"}
CONFIRMATION_LABELS = {"posted": "已张贴/播放", "taken-down": "已撤下"}

#: A text starting with one of these is a formula to a spreadsheet (OWASP).
_RISKY = frozenset("=+-@\t\r")
_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")

Column = tuple[str, float]  # (header, width in characters)
Row = Sequence[Any]


def write_xlsx(export: LedgerExport, path: str | Path) -> None:
    """Write ``export`` to ``path`` (atomically: a reader never sees half a file)."""
    book = Workbook(write_only=True)
    _cover(book.create_sheet("说明"), export)
    for title, columns, rows in _tables(export):
        _table(book.create_sheet(title), columns, rows)
    buffer = io.BytesIO()
    book.save(buffer)
    write_atomic(path, buffer.getvalue())


# --- the sheets ------------------------------------------------------------------------------


def _tables(export: LedgerExport) -> Iterator[tuple[str, list[Column], Iterable[Row]]]:
    items = export.items
    yield "台账", ITEM_COLUMNS, (_item_row(n, i) for n, i in enumerate(items, 1))
    yield (
        "版次",
        EDITION_COLUMNS,
        (
            (*_ids(i), e.edition, e.recorded_at, e.content_hash, e.title)
            for i in items
            for e in i.editions
        ),
    )
    yield "发布渠道", DELIVERY_COLUMNS, (
        (*_ids(i), i.title, _channel_name(c.channel), c.channel,
         _state(i, c.state), c.state, c.edition, c.delivered_edition, i.edition,
         c.updated_at, c.attempts, c.url, scrub(c.last_error) if c.last_error else None)
        for i in items
        for c in i.channels
    )  # fmt: skip
    yield "现场确认", CONFIRMATION_COLUMNS, (
        (*_ids(i), i.title, _channel_name(c.channel), c.area or "（全部）",
         CONFIRMATION_LABELS.get(c.kind, c.kind), c.edition, c.at, c.by, c.photo, c.recorded_at)
        for i in items
        for c in i.confirmations
    )  # fmt: skip
    yield "撤回", WITHDRAWAL_COLUMNS, (
        (*_ids(i), i.title, i.responsible_unit, i.published_at, i.withdrawn_at,
         i.withdraw_reason, _channels_text(i))
        for i in items
        if i.withdrawn_at is not None
    )  # fmt: skip


ITEM_COLUMNS: list[Column] = [
    ("序号", 6), ("索引号", 30), ("事项编号", 26), ("标题", 44), ("目录事项", 22),
    ("目录事项代码", 26), ("公开领域", 12), ("责任单位", 20), ("发布机构", 20), ("文号", 22),
    ("信息类别", 9), ("涉及区域", 16), ("成文日期", 12), ("公开时限", 11),
    ("法定截止日期", 13), ("首次发布时间", 18), ("时效", 11), ("现行版次", 9), ("版次数", 8),
    ("发布渠道及状态", 48), ("状态", 8), ("撤回时间", 18), ("撤回原因", 30),
]  # fmt: skip
EDITION_COLUMNS: list[Column] = [
    ("索引号", 30), ("事项编号", 26), ("版次", 7), ("记录时间", 18), ("内容哈希（SHA-256）", 66),
    ("标题", 44),
]  # fmt: skip
DELIVERY_COLUMNS: list[Column] = [
    ("索引号", 30), ("事项编号", 26), ("标题", 40), ("渠道", 12), ("渠道代码", 13),
    ("状态", 10), ("状态代码", 20), ("排定版次", 9), ("已送出版次", 10), ("现行版次", 9),
    ("更新时间", 18), ("尝试次数", 9), ("链接", 40), ("最近错误", 40),
]  # fmt: skip
CONFIRMATION_COLUMNS: list[Column] = [
    ("索引号", 30), ("事项编号", 26), ("标题", 40), ("渠道", 12), ("区域", 18), ("类型", 12),
    ("版次", 7), ("确认时间", 18), ("确认人", 16), ("照片", 40), ("记录时间", 18),
]  # fmt: skip
WITHDRAWAL_COLUMNS: list[Column] = [
    ("索引号", 30), ("事项编号", 26), ("标题", 40), ("责任单位", 20), ("首次发布时间", 18),
    ("撤回时间", 18), ("撤回原因", 36), ("各渠道撤下情况", 48),
]  # fmt: skip


def _ids(item: LedgerItem) -> tuple[str, str]:
    return item.index_number, item.item_id


def _item_row(number: int, i: LedgerItem) -> Row:
    return (
        number, i.index_number, i.item_id, i.title, i.catalog_name, i.catalog, i.domain,
        i.responsible_unit, i.publisher, i.document_number, KIND_LABELS.get(i.kind, i.kind),
        i.area, i.formed_on, i.time_limit, i.due_on, i.published_at,
        TIMELINESS_LABELS[i.timeliness], i.edition, len(i.editions), _channels_text(i),
        "已撤回" if i.withdrawn_at else "有效", i.withdrawn_at, i.withdraw_reason,
    )  # fmt: skip


def _channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


def _state(item: LedgerItem, state: str) -> str:
    if item.withdrawn_at and state in TAKE_DOWN_LABELS:
        return TAKE_DOWN_LABELS[state]
    return STATE_LABELS.get(state, state)


def _channels_text(item: LedgerItem) -> str:
    parts = []
    for c in item.channels:
        state = _state(item, c.state)
        parts.append(f"{_channel_name(c.channel)}：{state} 第{c.edition}版")
    return "；".join(parts)


def _cover(sheet: WriteOnlyWorksheet, export: LedgerExport) -> None:
    counts = export.counts()
    if export.start or export.end:
        period = f"{export.start or '最早'} 至 {export.end or '今'}"
    else:
        period = "全部事项"
    rows: list[Row] = [
        ("生成时间（北京时间）", export.generated_at),
        ("统计期间", period),
        ("事项数", counts["items"]),
        ("已发布", counts["published"]),
        *((label, counts[key]) for key, label in TIMELINESS_LABELS.items()),
        ("有更正（多个版次）", counts["corrected"]),
        ("已撤回", counts["withdrawn"]),
        ("渠道投递记录", counts["deliveries"]),
        ("现场确认记录", counts["confirmations"]),
        ("", ""),
        ("工作表", "内容"),
        ("台账", "每个事项一行：索引号、目录事项、责任单位、成文日期、法定截止日期、"
                 "首次发布时间、时效、版次、渠道"),
        ("版次", "每个版次一行：版次号、记录时间、内容哈希（公示栏二维码旁的短哈希为其前几位）"),
        ("发布渠道", "每个事项在每个渠道的投递状态、排定版次和已送出版次"
                     "（线下渠道各区域实际张贴的版次见“现场确认”）"),
        ("现场确认", "公示栏、广播等线下渠道每个区域的张贴和撤下确认：时间、确认人、照片"),
        ("撤回", "已撤回事项：撤回时间、原因和各渠道撤下情况"),
        ("", ""),
        ("说明", "内容均为发布时经脱敏处理的版本；时间均为北京时间；"
                 "“首次发布时间”为任一渠道首次载有该事项的时间。"),
    ]  # fmt: skip
    sheet.column_dimensions["A"].width = 22
    sheet.column_dimensions["B"].width = 90
    sheet.append([_header(sheet, "政务公开工作台账")])
    for row in rows:
        sheet.append([_value(sheet, v) for v in row])


def _table(sheet: WriteOnlyWorksheet, columns: list[Column], rows: Iterable[Row]) -> None:
    for n, (_, width) in enumerate(columns, 1):
        sheet.column_dimensions[get_column_letter(n)].width = width
    sheet.freeze_panes = "A2"
    sheet.print_title_rows = "1:1"
    sheet.page_setup.orientation = "landscape"
    sheet.append([_header(sheet, title) for title, _ in columns])
    count = 1
    value = _value
    for row in rows:
        sheet.append([value(sheet, v) for v in row])
        count += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{count}"


def _header(sheet: WriteOnlyWorksheet, title: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=title)
    cell.font = _HEADER_FONT
    cell.fill = _HEADER_FILL
    cell.alignment = Alignment(vertical="center")
    return cell


def _value(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    if isinstance(value, str):
        # XML cannot hold most control characters and openpyxl refuses them; one in an
        # operator's reason or a remote's error must not stop the export.
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
        if value[:1] in _RISKY:
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"  # openpyxl would make "=…" a formula
            cell.quotePrefix = True
            return cell
        return value
    if isinstance(value, datetime):
        # Excel has no time zones: Beijing time, as the header says.
        return value.astimezone(CST).replace(tzinfo=None)
    return value
