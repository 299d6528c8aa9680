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
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

from gongkai.fileio import write_atomic
from gongkai.item import Attachment
from gongkai.plugins.masking import (
    Columns,
    listed_names,
    mask_markdown,
    mask_rows,
    mask_text,
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
    # Imported here: publishing items without spreadsheets does not pay for openpyxl.
    import openpyxl
    from openpyxl.comments import Comment

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), rich_text=False)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise UnreadableAttachment(f"it cannot be opened as a workbook ({exc})") from exc
    changed = False
    for sheet in book.worksheets:
        title = mask_text(sheet.title, policy)
        if title != sheet.title:
            sheet.title, changed = title, True
        rows = [
            ["" if c.value is None else _cell_text(c.value) for c in row]
            for row in sheet.iter_rows()
        ]
        masked = mask_rows(rows, policy, columns, names)
        for row, before, after in zip(sheet.iter_rows(), rows, masked, strict=True):
            for cell, old, new in zip(row, before, after, strict=True):
                if new != old:
                    # A number stored as a number (13800138000) becomes text once masked.
                    cell.value, changed = new, True
                if cell.comment is not None:
                    note = mask_text(cell.comment.text, policy)
                    if note != cell.comment.text:
                        cell.comment, changed = Comment(note, cell.comment.author), True
    if not changed:
        return None
    out = io.BytesIO()
    book.save(out)
    return _fixed_zip(out.getvalue())


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
