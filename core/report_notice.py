"""The assessment notice (通报), drafted from the report.

A Jinja2 template (the shipped ``gongkai/data/report_notice.md.j2``, or the one
``[report] notice_template`` names) renders Markdown: the overall figures, the units
commended, the units named for overdue items with the items listed, the ranking. The
same Markdown is laid out as a .docx with python-docx, so an office that overrides the
template changes both. The office edits the draft and issues it; nothing is sent.
"""

from __future__ import annotations

import io
import re
from datetime import date
from importlib import resources
from pathlib import Path

import jinja2

from .errors import ConfigError
from .fileio import write_atomic
from .item import CST
from .report import Report

SHIPPED = "data/report_notice.md.j2"
_DIGITS = "〇一二三四五六七八九"
_SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+$")


def render_markdown(report: Report, template: Path | None = None, issuer: str = "") -> str:
    """The notice as Markdown, from ``template`` (a file) or the shipped one. A broken
    template raises ConfigError naming the file and line."""
    name = str(template) if template else f"gongkai/{SHIPPED}"
    if template is None:
        source = resources.files("gongkai").joinpath(SHIPPED).read_text("utf-8")
    else:
        source = template.read_text("utf-8")
    env = jinja2.Environment(
        autoescape=False,  # Markdown, not HTML  # noqa: S701
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
        extensions=["jinja2.ext.do"],
    )
    env.filters.update(rate=_rate, cn_date=cn_date, cn_number=cn_number, cell=_cell)
    try:
        text = env.from_string(source).render(
            report=report,
            total=report.total,
            commended=report.commended,
            named=report.named,
            issuer=issuer,
            today=report.now.astimezone(CST).date(),
        )
    except jinja2.TemplateSyntaxError as exc:
        problem = exc.message or "template syntax error"
        fix = "fix the template, or remove [report] notice_template"
        raise ConfigError(name, f"line {exc.lineno}", problem, fix) from exc
    except jinja2.UndefinedError as exc:
        fix = "use only the names the shipped template's header lists"
        raise ConfigError(name, "", exc.message or "undefined name", fix) from exc
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def write_notice(
    report: Report, path: str | Path, template: Path | None = None, issuer: str = ""
) -> list[Path]:
    """Write the notice as ``path``.md and ``path``.docx (a .md or .docx suffix on
    ``path`` is dropped first). Returns the two paths."""
    base = Path(path)
    if base.suffix.lower() in (".md", ".docx"):
        base = base.with_suffix("")
    markdown = render_markdown(report, template, issuer)
    md_path, docx_path = base.with_name(base.name + ".md"), base.with_name(base.name + ".docx")
    write_atomic(md_path, markdown.encode("utf-8"))
    write_atomic(docx_path, docx_bytes(markdown))
    return [md_path, docx_path]


def docx_bytes(markdown: str) -> bytes:
    """The Markdown notice laid out as a Word document: the title centred, headings,
    list items, tables with a header row, and the closing signature and date
    right-aligned."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn
    from docx.shared import Pt

    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.size = Pt(14)
    normal.font.name = "仿宋"
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), "仿宋")
    blocks = [b for b in re.split(r"\n\s*\n", markdown.strip()) if b.strip()]
    for n, block in enumerate(blocks):
        lines = block.strip().splitlines()
        first = lines[0]
        if first.startswith("# "):
            doc.add_heading(first[2:].strip(), level=0).alignment = WD_ALIGN_PARAGRAPH.CENTER
        elif first.startswith("### "):
            doc.add_heading(first[4:].strip(), level=2)
        elif first.startswith("## "):
            doc.add_heading(first[3:].strip(), level=1)
        elif first.startswith("|"):
            _table(doc, lines)
        elif all(line.startswith("- ") for line in lines):
            for line in lines:
                doc.add_paragraph(line[2:].strip(), style="List Bullet")
        else:
            text = "".join(line.strip() for line in lines if not line.startswith("- "))
            para = doc.add_paragraph(text)
            if n >= len(blocks) - 2:  # the issuer and the date close the notice
                para.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            for line in (line for line in lines if line.startswith("- ")):
                doc.add_paragraph(line[2:].strip(), style="List Bullet")
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def _table(doc: object, lines: list[str]) -> None:
    rows = [
        [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        for line in lines
        if not _SEPARATOR.match(line.strip())
    ]
    table = doc.add_table(rows=len(rows), cols=len(rows[0]))  # type: ignore[attr-defined]
    table.style = "Table Grid"
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            cell = table.cell(r, c)
            cell.text = value
            if r == 0:
                for run in cell.paragraphs[0].runs:
                    run.bold = True


def cn_date(day: date | None) -> str:
    """2026年12月31日."""
    return f"{day.year}年{day.month}月{day.day}日" if day else "—"


def cn_number(n: int) -> str:
    """1 → 一, 12 → 十二, 23 → 二十三 (up to 99), for （一）（二） headings."""
    if n < 10:
        return _DIGITS[n]
    tens, ones = divmod(n, 10)
    return f"{_DIGITS[tens] if tens > 1 else ''}十{_DIGITS[ones] if ones else ''}"


def _rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
