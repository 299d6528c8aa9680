"""The base of the offline channels: things a person posts or reads out in a village.

An offline channel turns an edition into one file per area the item names (a notice to
print for each village board, a script for each loudspeaker) plus an instruction sheet
for the township clerk, and stops at ``awaiting-confirmation``: the channel cannot see
the wall, so the delivery is done only when a person confirms the posting
(``gongkai confirm``). Files go to a folder that the item id and edition alone decide::

    <state_dir>/<channel>/<item id>/e<edition>/
        <area>.pdf | <area>.txt     one per area
        instructions.txt            张贴 / 请更换 (edition N-1 by N) / 请撤下, areas and files
    <state_dir>/<channel>/<item id>/take-down/instructions.txt   written by withdraw

Guarantee ``upsert``: a rerun rewrites the same files, and a file written twice is
still one notice on one wall. A subclass sets ``name`` and ``suffix`` and implements
:meth:`OfflineChannel.render_area`; the receipt's shape is the contract with
``gongkai confirm`` and ``gongkai parity`` (docs/channels.md, "Offline channels").
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from gongkai.catalogue import Catalogue, Entry
from gongkai.channel import Channel, PreparedItem, Receipt, Rendition
from gongkai.errors import PermanentError, TransientError
from gongkai.fileio import write_atomic
from gongkai.item import CST
from gongkai.posting import posting_period
from gongkai.workdays import WorkCalendar

#: What separates the areas an item names: "三溪镇花园村、西河村".
_AREA_SEPARATORS = re.compile(r"[、，,;；]")
#: Characters a file name on Windows, a USB stick or a network share cannot carry.
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


class OfflineConfig(BaseModel):
    """The keys every offline channel has; a subclass's Config extends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Where an item that names no township or village is posted (or read out).
    default_area: str = Field(default="全县", min_length=1)


@dataclass(frozen=True)
class AreaJob:
    """What a subclass needs to render one area's file, beyond the item."""

    area: str
    #: Every area of this edition, in the item's order.
    areas: tuple[str, ...]
    #: ``post`` or ``replace``.
    action: str
    replaces_edition: int | None
    #: The 公示期 (see :meth:`OfflineChannel.posting_period`), or None.
    posting: dict[str, Any] | None
    #: The publish date in Beijing time: the date a notice is signed with.
    today: date
    #: The item's catalogue entry, when the catalogue has it.
    entry: Entry | None


class OfflineChannel(Channel):
    """Base class of ``notice_board`` and ``broadcast``.

    Subclasses set ``name`` and ``suffix`` (``".pdf"``), implement :meth:`render_area`
    and give a ``Config`` that extends :class:`OfflineConfig`. They may change the
    words of the instruction sheet (``post_verb``, ``take_down_verb``, ``material``).
    """

    mode = "offline"
    guarantee = "upsert"
    Config = OfflineConfig

    suffix: ClassVar[str] = ".txt"
    #: Words of the clerk's instruction sheet.
    post_verb: ClassVar[str] = "张贴"
    take_down_verb: ClassVar[str] = "撤下"
    material: ClassVar[str] = "公示材料"

    # --- what subclasses implement -------------------------------------------------

    def render_area(self, item: PreparedItem, area: str, job: AreaJob) -> bytes:
        """Required: the file for one area. Must depend on its arguments only, so a
        rerun writes the same bytes."""
        raise NotImplementedError

    def preview(self, item: PreparedItem, job: AreaJob) -> str:
        """Optional: readable text of what the files say, for ``gongkai render``."""
        return ""

    # --- parts ------------------------------------------------------------------------

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue.load(self.context.catalogue)

    @property
    def calendar(self) -> WorkCalendar:
        return self.context.calendar

    @property
    def root(self) -> Path:
        return self.context.state_dir / self.name

    def edition_folder(self, item: PreparedItem, edition: int | None = None) -> Path:
        return self.root / item.id / f"e{item.edition if edition is None else edition}"

    def areas(self, item: PreparedItem) -> list[str]:
        """The areas an item names, each once, in its order; ``default_area`` if none."""
        parts = (part.strip() for part in _AREA_SEPARATORS.split(item.area or ""))
        found = list(dict.fromkeys(part for part in parts if part))
        return found or [self.config.default_area]

    def file_name(self, area: str) -> str:
        safe = _UNSAFE_NAME.sub("_", area).strip(". ") or "area"
        return f"{safe}{self.suffix}"

    def today(self) -> date:
        # Beijing time: at 07:00 in Jintang it is still yesterday in UTC.
        return self.context.clock().astimezone(CST).date()

    def posting_period(
        self, item: PreparedItem, catalogue_entry: Entry | None, start: date
    ) -> dict[str, Any] | None:
        """The 公示期 from ``start``: see :func:`gongkai.posting.posting_period`."""
        minimum = catalogue_entry.posting_min if catalogue_entry else None
        return posting_period(item, minimum, self.calendar, start)

    def job(self, item: PreparedItem, previous: Receipt | None, area: str = "") -> AreaJob:
        entry = self.catalogue.get(item.catalog)
        today = self.today()
        replaced = _edition_of(previous)
        replaces = replaced if replaced is not None and replaced < item.edition else None
        return AreaJob(
            area=area,
            areas=tuple(self.areas(item)),
            action="replace" if replaces is not None else "post",
            replaces_edition=replaces,
            posting=self.posting_period(item, entry, today),
            today=today,
            entry=entry,
        )

    # --- the channel contract ---------------------------------------------------------

    def render(self, item: PreparedItem) -> Rendition:
        job = self.job(item, None)
        plan = {
            "edition": item.edition,
            "short_hash": item.short_hash,
            "areas": {area: self.file_name(area) for area in job.areas},
            "posting": job.posting,
        }
        text = self.preview(item, job)
        body = json.dumps(plan, ensure_ascii=False, indent=2) + ("\n\n" + text if text else "")
        return Rendition(media_type="text/plain", body=body, data=plan)

    def deliver(self, item: PreparedItem, rendition: Rendition, previous: Receipt | None):
        job = self.job(item, previous)
        folder = self.edition_folder(item)
        files: dict[str, dict[str, str]] = {}
        try:
            for area in job.areas:
                path = folder / self.file_name(area)
                area_job = AreaJob(**{**job.__dict__, "area": area})
                write_atomic(path, self.render_area(item, area, area_job))
                files[area] = {"file": os.fspath(path)}
            dropped = [a for a in _receipt_areas(previous) if a not in files]
            sheet = folder / "instructions.txt"
            text = self.instructions(item, job, files, previous, dropped)
            write_atomic(sheet, text.encode("utf-8"))
        except OSError as exc:
            raise _write_error(exc, folder) from exc
        data = {
            "edition": item.edition,
            "short_hash": item.short_hash,
            "action": job.action,
            "replaces_edition": job.replaces_edition,
            "areas": files,
            "instructions": os.fspath(sheet),
            "posting": job.posting,
        }
        if dropped:
            data["take_down_areas"] = dropped
        return Receipt(
            status="awaiting-confirmation",
            external_id=f"{item.id}/e{item.edition}",
            artifact=os.fspath(folder),
            data=data,
        )

    def withdraw(self, item: PreparedItem, receipt: Receipt, reason: str) -> Receipt:
        posted = dict(receipt.data.get("areas") or {})
        if not posted:
            # The delivery's outcome was unknown: the files, if any, are where deliver
            # puts them, and a clerk may have posted them.
            folder = self.edition_folder(item)
            posted = {a: {"file": os.fspath(folder / self.file_name(a))} for a in self.areas(item)}
        edition = int(receipt.data.get("edition") or item.edition)
        areas = {area: {"file": value.get("file", "")} for area, value in posted.items()}
        folder = self.root / item.id / "take-down"
        sheet = folder / "instructions.txt"
        text = self.take_down_instructions(item, edition, receipt, areas, reason)
        try:
            write_atomic(sheet, text.encode("utf-8"))
        except OSError as exc:
            raise _write_error(exc, folder) from exc
        return Receipt(
            status="awaiting-confirmation",
            external_id=receipt.external_id or f"{item.id}/e{edition}",
            artifact=os.fspath(folder),
            data={
                "edition": edition,
                "short_hash": receipt.data.get("short_hash", item.short_hash),
                "action": "take-down",
                "replaces_edition": None,
                "areas": areas,
                "instructions": os.fspath(sheet),
                "posting": receipt.data.get("posting"),
                "reason": reason,
            },
        )

    # --- the clerk's instruction sheets ------------------------------------------------

    def instructions(
        self,
        item: PreparedItem,
        job: AreaJob,
        files: dict[str, dict[str, str]],
        previous: Receipt | None,
        dropped: list[str],
    ) -> str:
        lines = self._heading(item, item.edition, item.short_hash)
        if job.replaces_edition is not None:
            old_hash = previous.data.get("short_hash", "") if previous else ""
            lines.append(
                f"操作：请更换。撤下第{job.replaces_edition}版（校验码 {old_hash}），"
                f"{self.post_verb}第{item.edition}版。"
            )
        else:
            lines.append(f"操作：请{self.post_verb}。")
        if job.posting:
            lines.append(f"公示期：{posting_label(job.posting)}，期满后请{self.take_down_verb}。")
        lines += ["", f"{self.post_verb}地点与文件："]
        lines += _area_lines(files)
        if dropped:
            lines += [
                "",
                f"以下地点不再{self.post_verb}本事项，请{self.take_down_verb}第"
                f"{job.replaces_edition}版：",
            ]
            lines += [f"  {n}. {area}" for n, area in enumerate(dropped, 1)]
        lines += self._footer(item, take_down=False)
        return "\n".join(lines) + "\n"

    def take_down_instructions(
        self,
        item: PreparedItem,
        edition: int,
        receipt: Receipt,
        areas: dict[str, dict[str, str]],
        reason: str,
    ) -> str:
        lines = self._heading(item, edition, receipt.data.get("short_hash", item.short_hash))
        lines.append(f"操作：请{self.take_down_verb}。本事项已撤回，请勿再{self.post_verb}。")
        if reason:
            lines.append(f"撤回原因：{reason}")
        lines += ["", f"{self.take_down_verb}地点与文件："]
        lines += _area_lines(areas)
        lines += self._footer(item, take_down=True)
        return "\n".join(lines) + "\n"

    def _heading(self, item: PreparedItem, edition: int, short_hash: str) -> list[str]:
        return [
            f"{self.material}{self.post_verb}说明",
            "",
            f"事项：{item.title}",
            f"编号：{item.id}",
            f"发布机构：{item.publisher}",
            *([f"文号：{item.document_number}"] if item.document_number else []),
            f"版本：第{edition}版　校验码：{short_hash}",
            f"日期：{_chinese_date(self.today())}",
        ]

    def _footer(self, item: PreparedItem, *, take_down: bool) -> list[str]:
        what = self.take_down_verb if take_down else self.post_verb
        flag = " --taken-down" if take_down else ""
        return [
            "",
            f"完成后请拍照留存，并把每个地点的{what}日期和经办人报县级政务公开工作人员登记：",
            f"  gongkai confirm {item.id} {self.name} --area 地点 --at 日期 --by 经办人{flag}",
        ]


def posting_label(posting: dict[str, Any]) -> str:
    """ "The 公示期 as a notice prints it: "自2026年11月26日至2026年12月4日（7个工作日）"."""
    length = (
        f"{posting['days']}个工作日" if posting["unit"] == "working" else f"{posting['days']}天"
    )
    start, end = date.fromisoformat(posting["from"]), date.fromisoformat(posting["to"])
    return f"自{_chinese_date(start)}至{_chinese_date(end)}（{length}）"


def _chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _area_lines(files: dict[str, dict[str, str]]) -> list[str]:
    return [
        f"  {n}. {area}：{Path(value['file']).name if value.get('file') else ''}"
        for n, (area, value) in enumerate(files.items(), 1)
    ]


def _edition_of(receipt: Receipt | None) -> int | None:
    if receipt is None:
        return None
    edition = receipt.data.get("edition")
    return edition if isinstance(edition, int) else None


def _receipt_areas(receipt: Receipt | None) -> list[str]:
    return list((receipt.data.get("areas") or {}) if receipt else {})


def _write_error(exc: OSError, folder: Path) -> Exception:
    if isinstance(exc, PermissionError):
        return PermanentError(
            f"cannot write {folder} ({exc.strerror}); let gongkai write the state directory"
        )
    # A full disk or a busy network share may clear; core retries.
    return TransientError(f"cannot write the files in {folder} ({exc.strerror})")
