"""Export mode of the ``platform`` channel: an upload batch for platforms that take
file imports instead of API calls.

Each run writes one batch folder::

    <export_dir>/20261126-100000/
        <column id>.xlsx       one row per item edition, Chinese headers (or .csv)
        撤回.xlsx               one row per withdrawal (take-down)
        正文/<item>-第N版.html   bodies too long for a spreadsheet cell
        attachments/<item>/…    the prepared (masked) attachment files

An operator imports the batch into the platform and then confirms each item with
``gongkai confirm ITEM platform --at DATE --by NAME``; until then the delivery stays
``awaiting-confirmation``. A withdrawal is no different: the platform still shows the
item until someone takes it down by the withdrawals sheet, so it too waits, for
``gongkai confirm ITEM platform --taken-down --at DATE --by NAME``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from gongkai.channel import PreparedItem, Receipt
from gongkai.errors import PermanentError, TransientError
from gongkai.fileio import write_atomic
from gongkai.html import render_body
from gongkai.item import AUDIENCE_LABELS, CST, KIND_LABELS, OPENNESS_LABELS, Attachment

HEADERS = (
    "外部编号",
    "版本",
    "索引号",
    "标题",
    "发布机构",
    "文号",
    "成文日期",
    "发布日期",
    "体裁",
    "五公开",
    "公开范围",
    "涉及区域",
    "主题词",
    "咨询电话",
    "正文",
    "附件",
    "内容哈希",
)
WITHDRAWAL_HEADERS = ("外部编号", "版本", "索引号", "标题", "栏目", "撤回原因", "撤回时间")
WITHDRAWALS = "撤回"
#: The worksheet's name inside every workbook (a platform's import may look for it).
SHEET_TITLES = {"items": "政务公开导入", "withdrawals": "政务公开撤回"}
#: How dates are written in every sheet: 2026-12-01, Beijing time.
DATE_FORMAT = "%Y-%m-%d"
#: Excel keeps at most 32,767 characters in a cell; a longer body goes to a file.
CELL_LIMIT = 32_000
#: A cell starting with one of these is a formula to Excel or LibreOffice (CSV
#: injection): an item title must never run as one.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def publish_date(item: PreparedItem, now: datetime, previous: Receipt | None = None) -> str:
    """The 发布日期 of a row (Beijing time): the item's ``publish_at``; else the date
    the first edition went into a batch, kept by later editions (a correction does
    not make an item newer); else today, the day this batch is written."""
    if item.publish_at is not None:
        return item.publish_at.astimezone(CST).strftime(DATE_FORMAT)
    earlier = previous.data.get("published_on") if previous is not None else None
    if isinstance(earlier, str) and earlier:
        return earlier
    return now.astimezone(CST).strftime(DATE_FORMAT)


def export_row(item: PreparedItem, body_cell: str, published: str) -> dict[str, str]:
    """One item edition as a spreadsheet row: header → text."""
    files = "；".join(f"{a.title}（{a.filename}）" for a in item.attachments)
    return {
        "外部编号": item.id,
        "版本": str(item.edition),
        "索引号": item.index_number or "",
        "标题": item.title,
        "发布机构": item.publisher,
        "文号": item.document_number or "",
        "成文日期": item.formed_on.strftime(DATE_FORMAT),
        "发布日期": published,
        "体裁": KIND_LABELS[item.kind],
        "五公开": OPENNESS_LABELS.get(item.openness or "", ""),
        "公开范围": AUDIENCE_LABELS[item.audience],
        "涉及区域": item.area or "",
        "主题词": "；".join(item.keywords),
        "咨询电话": item.contact or "",
        "正文": body_cell,
        "附件": files,
        "内容哈希": item.content_hash,
    }


def read_attachment(attachment: Attachment) -> bytes:
    """The prepared copy's bytes, checked in memory against the edition's sha256: a
    file changed since the item was read is not this edition and is never sent."""
    try:
        data = attachment.path.read_bytes()
    except FileNotFoundError:
        raise PermanentError(
            f"attachment file missing: {attachment.path}; restore it and publish again"
        ) from None
    if hashlib.sha256(data).hexdigest() != attachment.sha256:
        raise PermanentError(
            f"attachment {attachment.filename} changed after the item was read; "
            "publish the item again"
        )
    return data


def body_file_name(item: PreparedItem) -> str:
    return f"正文/{item.id}-第{item.edition}版.html"


class ExportBatch:
    """The batch folder of one run. The channel instance lives for one run, so the
    folder is named by the context clock at first use; a second process starting in
    the same second gets ``-2``. Rows are kept in memory and each file is rewritten
    whole (atomically) under one lock, so concurrent deliveries never lose a row, and
    sending an edition again replaces its row instead of adding a second one."""

    def __init__(self, root: Path, fmt: str, clock: Callable[[], Any]) -> None:
        self.root = root
        self.format = fmt
        self.clock = clock
        self.folder: Path | None = None
        self.sheets: dict[str, dict[tuple[str, str], dict[str, str]]] = {}
        self._lock = threading.Lock()

    def _open(self) -> Path:
        if self.folder is None:
            stamp = self.clock().astimezone(CST).strftime("%Y%m%d-%H%M%S")
            self.root.mkdir(parents=True, exist_ok=True)
            for n in range(1, 1000):
                folder = self.root / (stamp if n == 1 else f"{stamp}-{n}")
                try:
                    folder.mkdir()
                except FileExistsError:
                    continue
                self.folder = folder
                break
            else:
                raise PermanentError(f"no free batch folder name under {self.root}")
        return self.folder

    def sheet_path(self, name: str) -> Path:
        return self._open() / f"{name}.{self.format}"

    def add(self, item: PreparedItem, column: str, previous: Receipt | None = None) -> Receipt:
        published = publish_date(item, self.clock(), previous)

        def row(folder: Path) -> dict[str, str]:
            self._copy_attachments(folder, item)
            body = render_body(item.body, item.attachments)
            if len(body) > CELL_LIMIT:
                write_atomic(folder / body_file_name(item), body.encode("utf-8"))
                body = f"见 {body_file_name(item)}"
            return export_row(item, body, published)

        folder, path = self._put(column, "items", HEADERS, item, row)
        return Receipt(
            status="awaiting-confirmation",
            external_id=f"{item.id}/edition-{item.edition}",
            artifact=os.fspath(path),
            data={
                "batch": os.fspath(folder),
                "column_id": column,
                "action": "post",
                "published_on": published,
            },
        )

    def withdraw(
        self, item: PreparedItem, receipt: Receipt, reason: str, column: str | None
    ) -> Receipt:
        """A take-down row for the clerk. The platform shows the item until the clerk
        removes it, so the receipt waits for a confirmation like a posting does."""
        row = {
            "外部编号": item.id,
            "版本": str(item.edition),
            "索引号": item.index_number or "",
            "标题": item.title,
            "栏目": column or "",
            "撤回原因": reason,
            "撤回时间": self.clock().astimezone(CST).isoformat(timespec="seconds"),
        }
        folder, path = self._put(
            WITHDRAWALS, "withdrawals", WITHDRAWAL_HEADERS, item, lambda _: row
        )
        return Receipt(
            status="awaiting-confirmation",
            external_id=receipt.external_id or f"{item.id}/edition-{item.edition}",
            artifact=os.fspath(path),
            data={
                **receipt.data,
                "batch": os.fspath(folder),
                "column_id": column,
                "action": "take-down",
                "reason": reason,
            },
        )

    def _put(
        self,
        sheet: str,
        kind: str,
        headers: tuple[str, ...],
        item: PreparedItem,
        make_row: Callable[[Path], dict[str, str]],
    ) -> tuple[Path, Path]:
        """Put the edition's row (made in the batch folder) into a sheet, replacing the
        row it had; returns the folder and the sheet's path."""
        try:
            with self._lock:
                folder = self._open()
                rows = self.sheets.setdefault(sheet, {})
                rows[(item.id, str(item.edition))] = make_row(folder)
                return folder, self._write(sheet, kind, headers, rows.values())
        except OSError as exc:
            raise TransientError(f"cannot write the export batch ({exc.strerror})") from exc

    def _copy_attachments(self, folder: Path, item: PreparedItem) -> None:
        for attachment in item.attachments:
            target = folder / "attachments" / item.id / attachment.filename
            write_atomic(target, read_attachment(attachment))

    def _write(self, name: str, kind: str, headers: tuple[str, ...], rows: Any) -> Path:
        path = self.sheet_path(name)
        table = [[row.get(h, "") for h in headers] for row in rows]
        if self.format == "xlsx":
            write_atomic(path, _xlsx(SHEET_TITLES[kind], headers, table))
        else:
            write_atomic(path, _csv(headers, table))
        return path


def _xlsx(title: str, headers: tuple[str, ...], table: list[list[str]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = title
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for values in table:
        sheet.append(values)
        # Text stays text: openpyxl would store "=…" as a formula that Excel runs.
        for cell in sheet[sheet.max_row]:
            cell.data_type = "s"
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _csv(headers: tuple[str, ...], table: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    # A CSV cell cannot say "text": a leading quote keeps Excel from running it.
    writer.writerows([["'" + v if v.startswith(_FORMULA_START) else v for v in r] for r in table])
    # With a BOM, Excel opens the Chinese as UTF-8 instead of the local code page.
    return out.getvalue().encode("utf-8-sig")
