"""The ``notice_board`` channel: print-ready PDF notices for village boards (公示栏).

One PDF per item edition per area the item names, in the folder the offline base class
gives it, with the clerk's instruction sheet beside them; optionally one batch PDF a
day of everything to post. See docs/notice-board.md.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from gongkai.channel import PreparedItem, Receipt, Rendition
from gongkai.channels.offline import AreaJob, OfflineChannel, OfflineConfig, posting_label
from gongkai.errors import PermanentError
from gongkai.fileio import write_atomic

from .pdf import Layout, Notice, render_notice
from .qr import item_url

# Deliveries run on several threads; the day's batch list is one file.
_BATCH_LOCK = threading.Lock()


class NoticeBoardConfig(OfflineConfig):
    #: Paper: A4 or A3 (larger type), portrait or landscape.
    page_size: Literal["A4", "A3"] = "A4"
    orientation: Literal["portrait", "landscape"] = "portrait"
    #: A TrueType font to embed (.ttf). Without it the notice uses STSong-Light, a
    #: standard CID font that PDF readers supply and that needs no file.
    font_path: Path | None = None
    #: 咨询电话 printed on every notice; the item's ``contact`` when not set.
    consultation_phone: str | None = Field(default=None, max_length=60)
    #: 监督举报电话 printed on every notice.
    complaint_phone: str | None = Field(default=None, max_length=60)
    #: Who signs and seals the notices; each item's publisher when not set.
    signatory: str | None = Field(default=None, max_length=80)
    #: The portal's address (``[channels.portal] site_url``): the QR code opens the
    #: item's page there. No QR code is printed without it.
    portal_url: str | None = None
    #: Also write one PDF a day of every notice to post (``batch/<date>.pdf``).
    batch: bool = False

    @field_validator("font_path")
    @classmethod
    def _font_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file; give the path of a .ttf font")
        if value is not None and value.suffix.lower() not in (".ttf", ".otf"):
            raise ValueError(f"{value} is not a TrueType font (.ttf)")
        return value

    @field_validator("portal_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// address")
        return value


class NoticeBoardChannel(OfflineChannel):
    """Writes a print-ready PDF notice per area; a person posts it and confirms."""

    name = "notice_board"
    suffix = ".pdf"
    Config = NoticeBoardConfig

    def notice(self, item: PreparedItem, area: str, job: AreaJob) -> Notice:
        c = self.config
        return Notice(
            item_id=item.id,
            edition=item.edition,
            short_hash=item.short_hash,
            title=item.title,
            publisher=item.publisher,
            document_number=item.document_number,
            body=item.body,
            attachments=item.attachments,
            area=area,
            posting=posting_label(job.posting) if job.posting else None,
            consultation_phone=c.consultation_phone or item.contact,
            complaint_phone=c.complaint_phone,
            signatory=c.signatory or item.publisher,
            signed_on=job.today,
            url=item_url(c.portal_url, item.id, item.short_hash) if c.portal_url else None,
        )

    @property
    def layout(self) -> Layout:
        c = self.config
        return Layout(c.page_size, c.orientation, c.font_path)

    def render_area(self, item: PreparedItem, area: str, job: AreaJob) -> bytes:
        try:
            return render_notice(self.notice(item, area, job), self.layout)
        except (OSError, ValueError) as exc:
            # A font that cannot be read or has no Chinese glyphs; nothing a retry mends.
            raise PermanentError(
                f"cannot lay out the notice of '{item.id}' ({exc}); check font_path in "
                f"[channels.{self.name}]"
            ) from exc

    def preview(self, item: PreparedItem, job: AreaJob) -> str:
        notice = self.notice(item, job.areas[0], job)
        lines = [notice.title, " ".join(filter(None, [notice.publisher, notice.document_number]))]
        lines += ["", item.body.strip(), ""]
        if notice.posting:
            lines.append(f"公示期：{notice.posting}。")
        if notice.consultation_phone:
            lines.append(f"咨询电话：{notice.consultation_phone}")
        if notice.complaint_phone:
            lines.append(f"监督举报电话：{notice.complaint_phone}")
        lines += [notice.signatory, f"{job.today:%Y-%m-%d}"]
        if notice.url:
            lines.append(f"二维码：{notice.url}")
        return "\n".join(lines)

    def deliver(self, item: PreparedItem, rendition: Rendition, previous: Receipt | None):
        receipt = super().deliver(item, rendition, previous)
        if not self.config.batch:
            return receipt
        batch = self._update_batch(item.id, receipt.data["areas"])
        return receipt.model_copy(update={"data": {**receipt.data, "batch": os.fspath(batch)}})

    def withdraw(self, item: PreparedItem, receipt: Receipt, reason: str) -> Receipt:
        answer = super().withdraw(item, receipt, reason)
        if self.config.batch:
            self._update_batch(item.id, {})  # not to be posted after all
        return answer

    # --- the day's batch ----------------------------------------------------------------

    def _update_batch(self, item_id: str, areas: dict[str, dict[str, str]]) -> Path:
        """Put an item's area files (none: take it out) in today's batch and write the
        batch PDF again: every notice to post today, one after another."""
        folder = self.root / "batch"
        day = self.today().isoformat()
        listing, pdf = folder / f"{day}.json", folder / f"{day}.pdf"
        with _BATCH_LOCK:
            try:
                entries = json.loads(listing.read_text("utf-8"))
            except FileNotFoundError:
                entries = {}
            # The newest edition replaces an earlier one posted the same day.
            entries.pop(item_id, None)
            if areas:
                entries[item_id] = {area: value["file"] for area, value in areas.items()}
            write_atomic(pdf, _merged(f for files in entries.values() for f in files.values()))
            write_atomic(listing, json.dumps(entries, ensure_ascii=False, indent=1).encode())
        return pdf


def _merged(files) -> bytes:
    from io import BytesIO

    from pypdf import PdfWriter

    writer = PdfWriter()
    for path in files:
        writer.append(path)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()
