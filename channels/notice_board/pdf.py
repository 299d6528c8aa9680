"""The printed notice (公示) as a PDF, laid out with reportlab's platypus.

A page carries, top to bottom: the title, the issuing organisation and 文号, the body
(name lists as tables whose header repeats on every page), the 公示期, the phone
numbers, and a closing block with the QR code on the left and the signature, date and
a place for the seal on the right. Every page has a footer with the item id, edition
and short content hash, the area, and "第x页 共y页".

Chinese text uses a standard CID font (``STSong-Light``, which every PDF reader knows
and which needs no file) or a configured TrueType font, embedded as a subset. Either
way the text stays text: ``pdftotext`` reads it, and so does a screen reader.

The same notice gives the same bytes: the document is written with ``invariant=1``
(no creation date, a fixed document id), and nothing else on it depends on the time
of the run.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A3, A4, landscape, portrait
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from .body import BodyStyles, body_flowables
from .qr import qr_drawing

CID_FONT = "STSong-Light"
PAGE_SIZES = {"A4": A4, "A3": A3}
MARGIN = 18 * mm


@dataclass(frozen=True)
class Notice:
    """Everything one printed notice says, as plain values."""

    item_id: str
    edition: int
    short_hash: str
    title: str
    publisher: str
    document_number: str | None
    body: str
    attachments: tuple[Any, ...]
    area: str
    #: "自2026年11月26日至2026年12月2日（7天）", or None.
    posting: str | None
    consultation_phone: str | None
    complaint_phone: str | None
    #: Who signs and seals the notice.
    signatory: str
    signed_on: date
    #: The portal page the QR code opens, or None (no QR code then).
    url: str | None


@dataclass(frozen=True)
class Layout:
    page_size: str = "A4"
    orientation: str = "portrait"
    font_path: Path | None = None

    @property
    def size(self) -> tuple[float, float]:
        turn = landscape if self.orientation == "landscape" else portrait
        return turn(PAGE_SIZES[self.page_size])


def font_name(font_path: Path | None) -> str:
    """Register the notice font once and return its name."""
    name = CID_FONT if font_path is None else f"notice-{font_path.stem}"
    if name not in pdfmetrics.getRegisteredFontNames():
        font = UnicodeCIDFont(CID_FONT) if font_path is None else TTFont(name, str(font_path))
        pdfmetrics.registerFont(font)
        # One face for every variant: a CJK font seldom has a bold or italic, and the
        # body's <strong> must not fail for want of one.
        pdfmetrics.registerFontFamily(name, normal=name, bold=name, italic=name, boldItalic=name)
    return name


def _styles(font: str, width: float, scale: float) -> tuple[dict[str, ParagraphStyle], BodyStyles]:
    def style(name: str, size: float, **extra: Any) -> ParagraphStyle:
        size *= scale
        extra.setdefault("leading", size * 1.5)
        return ParagraphStyle(name, fontName=font, fontSize=size, wordWrap="CJK", **extra)

    text = style("text", 12, firstLineIndent=0, spaceAfter=4)
    own = {
        "title": style("title", 20, alignment=TA_CENTER, spaceAfter=6),
        "meta": style("meta", 11, alignment=TA_CENTER, textColor=colors.HexColor("#333333")),
        "text": text,
        "sign": style("sign", 12, alignment=TA_RIGHT),
        "small": style("small", 8, alignment=TA_CENTER, leading=10 * scale),
    }
    body = BodyStyles(
        text=text,
        headings=(
            style("h1", 16, spaceBefore=6, spaceAfter=4),
            style("h2", 14, spaceBefore=6, spaceAfter=4),
            style("h3", 12.5, spaceBefore=4, spaceAfter=2),
        ),
        cell=style("cell", 10.5, leading=13 * scale),
        head_cell=style("head", 10.5, leading=13 * scale, alignment=TA_CENTER),
        code=style("code", 10),
        width=width,
    )
    return own, body


def render_notice(notice: Notice, layout: Layout) -> bytes:
    """The notice as PDF bytes (the same bytes for the same notice and layout)."""
    font = font_name(layout.font_path)
    size = layout.size
    # A3 is read from further away: the same layout, larger type.
    scale = 1.4 if layout.page_size == "A3" else 1.0
    styles, body_styles = _styles(font, size[0] - 2 * MARGIN, scale)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=size,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 8 * mm,
        title=notice.title,
        author=notice.publisher,
        subject=f"{notice.item_id} 第{notice.edition}版 {notice.short_hash}",
        creator="gongkai",
        invariant=1,
    )
    story = _story(notice, styles, body_styles, scale)
    doc.build(story, canvasmaker=_footer_canvas(notice, font, size, scale))
    return out.getvalue()


def _story(
    notice: Notice, styles: dict[str, ParagraphStyle], body: BodyStyles, scale: float
) -> list[Flowable]:
    esc = _escape
    story: list[Flowable] = [Paragraph(esc(notice.title), styles["title"])]
    meta = esc(notice.publisher)
    if notice.document_number:
        meta += "　" + esc(notice.document_number)
    story += [Paragraph(meta, styles["meta"]), Spacer(1, 8 * scale)]
    story += body_flowables(notice.body, notice.attachments, body)
    story.append(Spacer(1, 6 * scale))
    if notice.posting:
        story.append(Paragraph(f"公示期：{esc(notice.posting)}。", styles["text"]))
    phones = []
    if notice.consultation_phone:
        phones.append(f"咨询电话：{esc(notice.consultation_phone)}")
    if notice.complaint_phone:
        phones.append(f"监督举报电话：{esc(notice.complaint_phone)}")
    if phones:
        story.append(Paragraph("　　".join(phones), styles["text"]))
    story.append(Spacer(1, 10 * scale))
    story.append(KeepTogether(_closing(notice, styles, body.width, scale)))
    return story


def _closing(
    notice: Notice, styles: dict[str, ParagraphStyle], width: float, scale: float
) -> list[Flowable]:
    """The QR code beside the signature, the date and the place for the seal."""
    side = 32 * mm * scale
    signed = notice.signed_on
    sign = [
        Paragraph(_escape(notice.signatory), styles["sign"]),
        Paragraph(f"{signed.year}年{signed.month}月{signed.day}日", styles["sign"]),
        Paragraph("（盖章）", styles["sign"]),
    ]
    left: list[Flowable] = []
    if notice.url:
        left = [
            qr_drawing(notice.url, side),
            Paragraph("扫码核对网上版本", styles["small"]),
            Paragraph(f"校验码 {notice.short_hash}", styles["small"]),
        ]
    table = Table([[left, sign]], colWidths=[side + 8 * mm, width - side - 8 * mm])
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return [table]


def _footer_canvas(notice: Notice, font: str, size: tuple[float, float], scale: float):
    """A canvas that knows the page count when it writes each page's footer: pages
    are kept until the end, then numbered "第x页 共y页"."""
    left = f"编号 {notice.item_id}　第{notice.edition}版　校验码 {notice.short_hash}"
    right = notice.area
    font_size = 9 * scale

    class FooterCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, 1):
                self.__dict__.update(state)
                self._footer(number, total)
                super().showPage()
            super().save()

        def _footer(self, number: int, total: int) -> None:
            width = size[0]
            y = MARGIN
            self.saveState()
            self.setStrokeColor(colors.grey)
            self.setLineWidth(0.5)
            self.line(MARGIN, y + font_size + 3, width - MARGIN, y + font_size + 3)
            self.setFont(font, font_size)
            self.drawString(MARGIN, y, left)
            self.drawCentredString(width / 2, y - font_size - 4, f"第{number}页 共{total}页")
            self.drawRightString(width - MARGIN, y, right)
            self.restoreState()

    return FooterCanvas


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
