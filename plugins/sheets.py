"""Masked copies of attachments: CSV, text, Markdown and XLSX, masked cell by cell.

Channels publish an attachment's bytes as they are, so masking the item's text is not
enough: a 低保 list attached as a spreadsheet carries the same ID numbers. Readable
attachments are masked into a *prepared copy* under ``<state_dir>/prepared/``, and
the prepared item points at that copy, so the ledger, the archive and every channel
get the copy and never the original. The copy's sha256 is the one published.

A copy must be byte-for-byte the same every time the same file is prepared under the
same policy: its hash is part of the edition's content hash, and a copy that differed
run to run would make a new edition of an unchanged item. So XLSX copies are written
with fixed zip times and document dates.

A file with nothing to mask is not copied: the original is what channels get.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from gongkai.fileio import write_atomic
from gongkai.item import Attachment
from gongkai.plugins.masking import (
    Columns,
    listed_names,
    mask_markdown,
    mask_rows,
    mask_text,
    name_masker,
    row_names,
)

#: Read as text; .md and .txt are masked as Markdown (a table in a .md file is a table).
TEXT_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".md", ".markdown"})
#: Read with openpyxl. Old binary .xls and .et files are not readable here, nor .xlsm:
#: a published list has no business carrying macros, so it must be declared checked.
SHEET_SUFFIXES = frozenset({".xlsx"})
#: The zip time of every entry of an XLSX copy (the zip format's earliest).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def readable(path: Path) -> bool:
    """Whether gongkai can read ``path`` to mask it; others need ``checked = true``."""
    return path.suffix.lower() in TEXT_SUFFIXES | SHEET_SUFFIXES


class UnreadableAttachment(ValueError):
    """A file that claims a readable type but cannot be read as one (a .csv in an
    unknown encoding, a .xlsx that is not a zip). Refused: unread is unmasked."""


def masked_bytes(
    path: Path, data: bytes, policy, columns: Columns, names: Sequence[str] = ()
) -> bytes | None:
    """The masked bytes of the file ``path`` holding ``data``, or None when masking
    changes nothing. ``names`` are the names listed anywhere in the item, masked
    wherever they appear. Raises :class:`UnreadableAttachment`."""
    suffix = path.suffix.lower()
    if suffix in SHEET_SUFFIXES:
        return _masked_workbook(data, policy, columns, names)
    text, encoding = _decode(data)
    if suffix in (".csv", ".tsv"):
        masked = _masked_csv(text, policy, columns, "\t" if suffix == ".tsv" else None, names)
    else:
        masked = mask_markdown(text, policy, columns, [*names, *listed_names(text, columns)])
    if masked == text:
        return None
    return masked.encode(encoding)


def _decode(data: bytes) -> tuple[str, str]:
    """Text and the encoding to write it back in. Excel on Chinese Windows saves CSV
    as GBK, so GB 18030 (a superset) is tried after UTF-8; a BOM is kept."""
    for encoding in ("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise UnreadableAttachment("it is neither UTF-8 nor GB 18030 text")


def rows_of(path: Path) -> list[list[str]]:
    """A CSV or XLSX file's cells as rows of text (the first sheet of a workbook); any
    other file as its lines. For reports of what masking changed."""
    data = path.read_bytes()
    if path.suffix.lower() in SHEET_SUFFIXES:
        import openpyxl

        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        except Exception as exc:  # openpyxl raises many types for a broken file
            raise UnreadableAttachment(str(exc)) from exc
        try:
            return [
                ["" if v is None else _cell_text(v) for v in row]
                for sheet in book.worksheets
                for row in sheet.iter_rows(values_only=True)
            ]
        finally:
            book.close()
    text, _ = _decode(data)
    if path.suffix.lower() in (".csv", ".tsv"):
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text)))
    return [[line] for line in text.split("\n")]


def _delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def names_in(path: Path, data: bytes, columns: Columns) -> set[str]:
    """The names in the name columns of an attachment (empty for other files).
    Raises :class:`UnreadableAttachment`."""
    suffix = path.suffix.lower()
    if suffix in SHEET_SUFFIXES:
        return set().union(*(row_names(rows, columns) for rows in _sheet_rows(data)))
    if suffix not in TEXT_SUFFIXES:
        return set()
    text, _ = _decode(data)
    if suffix in (".csv", ".tsv"):
        delimiter = "\t" if suffix == ".tsv" else _delimiter(text)
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        return row_names(rows, columns)
    return set(listed_names(text, columns))


def _sheet_rows(data: bytes) -> list[list[list[str]]]:
    """Each sheet of a workbook as rows of cell text."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise UnreadableAttachment(f"it cannot be opened as a workbook ({exc})") from exc
    try:
        return [
            [
                ["" if v is None else _cell_text(v) for v in row]
                for row in sheet.iter_rows(values_only=True)
            ]
            for sheet in book.worksheets
        ]
    finally:
        book.close()


def _masked_csv(
    text: str, policy, columns: Columns, delimiter: str | None, names: Sequence[str] = ()
) -> str:
    delimiter = delimiter or _delimiter(text)
    newline = "\r\n" if "\r\n" in text[:4096] else "\n"
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    masked = mask_rows(rows, policy, columns, names)
    if masked == rows:
        return text
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator=newline).writerows(masked)
    written = out.getvalue()
    # csv.writer always ends the last row; keep the file's own ending.
    return written if text.endswith(("\n", "\r")) else written.removesuffix(newline)


def _masked_workbook(
    data: bytes, policy, columns: Columns, names: Sequence[str] = ()
) -> bytes | None:
    """The workbook with every text openpyxl keeps masked, or None when nothing
    changes. What cannot be masked without changing what Excel shows (a formula that
    joins pieces of a number, a number Excel already rounded) is refused."""
    # Imported here: publishing items without spreadsheets does not pay for openpyxl.
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), rich_text=False)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise UnreadableAttachment(f"it cannot be opened as a workbook ({exc})") from exc

    mask_listed = name_masker(names)

    def masked(text):
        return text if not text else mask_listed(mask_text(text, policy))

    _refuse_external_links(book)
    changed = _drop_unmaskable_parts(book)
    renamed = _mask_titles(book, masked)
    changed |= bool(renamed)
    changed |= _mask_defined_names(book, policy, masked, renamed)
    changed |= _mask_properties(book, masked)
    for sheet in book.worksheets:
        changed |= _mask_cells(sheet, policy, columns, names, masked, renamed)
        changed |= _mask_sheet_texts(sheet, masked, renamed)
    if not changed:
        return None
    if not _has_created_date(data):
        # openpyxl would write the current time, and a copy must not depend on when
        # it was made: the zip entries' own fixed time stands in.
        book.properties.created = datetime(*_ZIP_TIME)
    out = io.BytesIO()
    book.save(out)
    return _fixed_zip(out.getvalue())


# --- parts of a workbook that cannot be masked ------------------------------------------


def _refuse_external_links(book) -> None:
    # A link to another workbook carries a cached copy of the cells it uses, and
    # dropping it would break the formulas that use it.
    if book._external_links:
        raise UnreadableAttachment(
            "the workbook links to other workbooks and keeps copies of their cells; "
            "break the links (数据 → 编辑链接 → 断开链接) and attach it again"
        )


def _drop_unmaskable_parts(book) -> bool:
    """Drop charts, images and pivot tables; True if there were any. openpyxl keeps
    them, but a chart keeps copies of the cells it plots and its own title, an image
    (a scanned ID card) and its alt text cannot be masked, and a pivot table's cache
    holds every row of its source. The cells they summarise stay, masked."""
    dropped = False
    for sheet in book.worksheets:
        if sheet._charts or sheet._images or sheet._pivots:
            sheet._charts, sheet._images, sheet._pivots = [], [], []
            dropped = True
    for chartsheet in list(book.chartsheets):
        book.remove(chartsheet)
        dropped = True
    return dropped


# --- sheet titles ------------------------------------------------------------------------

#: Excel's longest sheet title.
_TITLE_LENGTH = 31


def _mask_titles(book, masked) -> dict[str, str]:
    """Mask each sheet title; the old titles of the renamed sheets and their new ones.

    Excel forbids ``*`` in a sheet title, so the masked title shows the full-width
    ``＊`` instead; two titles that mask alike (张三, 张四) are told apart by a number."""
    renamed = {}
    taken = {sheet.title.lower() for sheet in book.worksheets}
    for sheet in book.worksheets:
        title = masked(sheet.title).replace("*", "\uff0a")[:_TITLE_LENGTH]
        if title == sheet.title:
            continue
        taken.discard(sheet.title.lower())
        title = _unique_title(title, taken)
        taken.add(title.lower())
        renamed[sheet.title] = title
        sheet.title = title
    return renamed


def _unique_title(title: str, taken: set[str]) -> str:
    # Excel compares sheet titles ignoring case.
    number, unique = 1, title
    while unique.lower() in taken:
        number += 1
        suffix = f" ({number})"
        unique = title[: _TITLE_LENGTH - len(suffix)] + suffix
    return unique


def _retitled(formula: str, renamed: dict[str, str]) -> str:
    """``formula`` with its references to renamed sheets ('13800138000'!A1, 名单!A1)
    pointing at the new titles: the old title must not stay in the copy."""
    for old, new in renamed.items():
        quoted = "'" + new.replace("'", "''") + "'!"
        formula = formula.replace("'" + old.replace("'", "''") + "'!", quoted)
        # Sheet titles cannot hold a backslash: quoted is a plain replacement.
        formula = re.sub(rf"(?<![\w'.]){re.escape(old)}!", quoted, formula)
    return formula


# --- the workbook's own texts ------------------------------------------------------------

#: The text fields of docProps/core.xml openpyxl writes back.
_CORE_TEXTS = (
    "title",
    "subject",
    "creator",
    "lastModifiedBy",
    "description",
    "keywords",
    "category",
    "contentStatus",
    "identifier",
    "language",
    "revision",
    "version",
)


def _mask_properties(book, masked) -> bool:
    """Mask the document properties (标题, 作者, 备注…) and the custom ones. A custom
    property that is not text (a number, a date) is dropped if its text would be
    masked: it cannot hold a masked value."""
    changed = _mask_attributes(book.properties, _CORE_TEXTS, masked)
    kept = []
    for prop in book.custom_doc_props.props:
        name = masked(prop.name)
        if isinstance(prop.value, str):
            value = masked(prop.value)
        elif masked(str(prop.value)) != str(prop.value):
            changed = True
            continue
        else:
            value = prop.value
        if (name, value) != (prop.name, prop.value):
            prop.name, prop.value, changed = name, value, True
        kept.append(prop)
    book.custom_doc_props.props = kept
    return changed


def _mask_defined_names(book, policy, masked, renamed: dict[str, str]) -> bool:
    """Defined names (公式 → 名称管理器) point at ranges; one holding a number that
    would be masked is refused, since a masked constant would change what formulas
    using it compute."""
    changed = False
    scopes = [book.defined_names, *(sheet.defined_names for sheet in book.worksheets)]
    for defined in (d for scope in scopes for d in scope.values()):
        value = _retitled(defined.value or "", renamed)
        if mask_text(value, policy) != value or mask_text(defined.name, policy) != defined.name:
            raise UnreadableAttachment(
                f"the workbook defines a name '{masked(defined.name)}' holding a number; "
                "delete it (公式 → 名称管理器) and attach it again"
            )
        value = masked(value)
        if value != (defined.value or ""):
            defined.value, changed = value, True
        changed |= _mask_attributes(defined, ("comment", "description", "help"), masked)
    return changed


def _mask_attributes(obj, attributes: Sequence[str], masked) -> bool:
    """Mask the text ``attributes`` of ``obj`` in place; True if one changed."""
    changed = False
    for attribute in attributes:
        value = getattr(obj, attribute, None)
        if isinstance(value, str) and masked(value) != value:
            setattr(obj, attribute, masked(value))
            changed = True
    return changed


# --- a sheet's cells ---------------------------------------------------------------------

#: Excel keeps 15 significant digits: a number this large was rounded when typed in.
_ROUNDED = 1e15


def _mask_cells(sheet, policy, columns: Columns, names, masked, renamed) -> bool:
    from openpyxl.comments import Comment

    cells = list(sheet.iter_rows())
    changed = False
    for row in cells:
        for cell in row:
            _refuse_rounded_number(sheet, cell)
            changed |= _mask_formula(sheet, cell, policy, masked, renamed)
    rows = [[_value_text(c.value) for c in row] for row in cells]
    for row, before, after in zip(
        cells, rows, mask_rows(rows, policy, columns, names), strict=True
    ):
        for cell, old, new in zip(row, before, after, strict=True):
            # A formula's column role does not apply: the cells it uses are masked.
            if new != old and cell.data_type != "f":
                text = cell.data_type == "s"
                # A number stored as a number (13800138000) becomes text once masked.
                cell.value, changed = new, True
                if text:
                    cell.data_type = "s"  # text "=…" masked stays text, not a formula
            comment = cell.comment
            if comment is not None:
                note, author = masked(comment.text), masked(comment.author)
                if (note, author) != (comment.text, comment.author):
                    cell.comment, changed = Comment(note, author), True
            link = getattr(cell, "hyperlink", None)
            if link is not None:
                changed |= _mask_hyperlink(link, masked, renamed)
    return changed


def _value_text(value) -> str:
    if value is None:
        return ""
    formula = _formula_text(value)
    return formula if formula is not None else _cell_text(value)


def _formula_text(value) -> str | None:
    # A formula is "=…" text, or an array formula ({=…}) holding it in .text.
    if isinstance(value, str):
        return value if value.startswith("=") else None
    text = getattr(value, "text", None)
    return text if isinstance(text, str) else None


def _refuse_rounded_number(sheet, cell) -> None:
    value = cell.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if abs(value) >= _ROUNDED and math.isfinite(value):
        digits = len(str(int(abs(value))))
        raise UnreadableAttachment(
            f"cell {cell.coordinate} of sheet {sheet.title} holds a number of {digits} "
            "digits that Excel stored as a number and rounded; format the column as text "
            "(设置单元格格式 → 文本), re-enter the numbers and attach it again"
        )


#: A string literal in a formula ("" is a quote inside one).
_LITERAL = re.compile(r'"(?:[^"]|"")*"')
_DIGIT = re.compile(r"[0-9\uff10-\uff19]")


def _mask_formula(sheet, cell, policy, masked, renamed) -> bool:
    """Point a formula at renamed sheets and mask listed names in it; refuse one that
    builds a number from pieces (="5101211948"&"01251981"): no single piece looks like
    an ID, so masking cannot see it, and Excel shows it whole."""
    formula = _formula_text(cell.value)
    if formula is None:
        return False
    text = _retitled(formula, renamed)
    if any(_DIGIT.search(literal) for literal in _LITERAL.findall(text)):
        reason = "digits in quotes"
    elif mask_text(text, policy) != text:
        reason = "a number in it would be masked"
    else:
        text = masked(text)
        if text == formula:
            return False
        if isinstance(cell.value, str):
            cell.value = text
        else:
            cell.value.text = text
        return True
    # The message names the place, never the formula: it holds the raw digits.
    raise UnreadableAttachment(
        f"cell {cell.coordinate} of sheet {sheet.title} holds a formula that builds text "
        f"({reason}); paste the values instead (选择性粘贴 → 数值) and attach it again"
    )


def _mask_hyperlink(link, masked, renamed) -> bool:
    # target is the address (tel:13800138000, mailto:…), location a place in the book.
    changed = _mask_attributes(link, ("target", "display", "tooltip"), masked)
    if link.location:
        location = masked(_retitled(link.location, renamed))
        if location != link.location:
            link.location, changed = location, True
    return changed


# --- a sheet's other texts ---------------------------------------------------------------

_HEADERS_FOOTERS = (
    "oddHeader",
    "oddFooter",
    "evenHeader",
    "evenFooter",
    "firstHeader",
    "firstFooter",
)


def _mask_sheet_texts(sheet, masked, renamed) -> bool:
    """Mask what a sheet shows besides its cells: 页眉/页脚, 数据验证 messages and
    lists, 筛选 values, table column names and conditional formatting."""
    changed = False
    for name in _HEADERS_FOOTERS:
        part = getattr(sheet.HeaderFooter, name)
        for side in (part.left, part.center, part.right):
            changed |= _mask_attributes(side, ("text",), masked)
    for rule in sheet.data_validations.dataValidation:
        texts = ("prompt", "error", "promptTitle", "errorTitle", "formula1", "formula2")
        changed |= _mask_attributes(rule, texts, masked)
    changed |= _mask_filter(sheet.auto_filter, masked)
    for table in sheet.tables.values():
        changed |= _mask_attributes(table, ("totalsRowLabel",), masked)
        for column in table.tableColumns:
            # Must stay the header cell's text, which is masked the same way.
            changed |= _mask_attributes(column, ("name", "totalsRowLabel"), masked)
    for ranges in sheet.conditional_formatting:
        for rule in ranges.rules:
            changed |= _mask_attributes(rule, ("text",), masked)
            formulas = [masked(_retitled(f, renamed)) for f in rule.formula]
            if formulas != list(rule.formula):
                rule.formula, changed = formulas, True
    return changed


def _mask_filter(auto_filter, masked) -> bool:
    changed = False
    for column in auto_filter.filterColumn:
        if column.filters is not None:
            values = [masked(v) for v in column.filters.filter]
            if values != list(column.filters.filter):
                column.filters.filter, changed = values, True
        if column.customFilters is not None:
            for custom in column.customFilters.customFilter:
                changed |= _mask_attributes(custom, ("val",), masked)
    return changed


def _cell_text(value: object) -> str:
    # An integer-valued float (Excel keeps 13800138000 as 13800138000.0) is its digits.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _fixed_zip(data: bytes) -> bytes:
    """The same workbook with fixed entry times and its modified date set to its
    created date, so the same input gives the same bytes in every run."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            body = source.read(info)
            if info.filename == "docProps/core.xml":
                body = _same_dates(body)
            fixed = zipfile.ZipInfo(info.filename, _ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            target.writestr(fixed, body)
    return out.getvalue()


def _has_created_date(data: bytes) -> bool:
    """Whether the workbook's docProps/core.xml (the one openpyxl reads) has a
    created date; some exporters write none."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        try:
            core = source.read("docProps/core.xml")
        except KeyError:
            return False
    return re.search(rb"<dcterms:created[^>]*>\s*[0-9]", core) is not None


def _same_dates(core: bytes) -> bytes:
    created = re.search(rb"<dcterms:created[^>]*>([^<]*)<", core)
    stamp = created.group(1) if created else b"1980-01-01T00:00:00Z"
    return re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(<)", rb"\g<1>" + stamp + rb"\2", core)


def prepared_copy(
    attachment: Attachment, policy, columns: Columns, store: Path, names: Sequence[str] = ()
) -> Attachment:
    """``attachment`` itself when masking changes nothing, else one that points at a
    masked copy in ``store`` (kept under its own hash, with the original file name,
    since channels publish the name)."""
    data = attachment.path.read_bytes()
    if hashlib.sha256(data).hexdigest() != attachment.sha256:
        raise UnreadableAttachment("it changed after it was read; publish again")
    masked = masked_bytes(attachment.path, data, policy, columns, names)
    if masked is None:
        return attachment
    digest = hashlib.sha256(masked).hexdigest()
    copy = store / digest[:2] / digest / attachment.filename
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(copy, masked)
    return attachment.model_copy(update={"path": copy, "sha256": digest})
