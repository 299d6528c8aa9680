"""An item's body as reportlab flowables, read from the one HTML path.

The body goes through :func:`gongkai.html.render_body`, exactly as the portal's page
does, and the sanitised HTML is laid out here: the wall shows the text the web shows,
name lists pasted as HTML tables (merged cells, ``<br>``) included. The sanitiser's
allow-list is small (headings, paragraphs, lists, quotes, code, emphasis, links,
tables, attachment images), so every tag it lets through has a place below.

Name-list tables become platypus ``Table`` objects with ``repeatRows`` set to their
header rows, so a list that runs over several pages shows its header on each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle, XPreformatted
from reportlab.platypus.flowables import HRFlowable

from gongkai.html import render_body

_VOID = frozenset({"br", "hr", "img"})
_BLOCKS = frozenset(
    {"h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "blockquote", "pre", "hr"}
    | {"table", "thead", "tbody", "tfoot", "tr", "th", "td"}
)
_INLINE_TAGS = {
    "strong": "b",
    "b": "b",
    "em": "i",
    "i": "i",
    "del": "strike",
    "s": "strike",
    "sup": "super",
    "sub": "sub",
}
_CELL_PADDING = 8.0
_ALIGN = {"left": "LEFT", "center": "CENTER", "right": "RIGHT"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("body")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


@dataclass(frozen=True)
class BodyStyles:
    """The styles the body is laid out with (see :mod:`.pdf`)."""

    text: ParagraphStyle
    headings: tuple[ParagraphStyle, ...]
    cell: ParagraphStyle
    head_cell: ParagraphStyle
    code: ParagraphStyle
    #: The frame width a table may fill.
    width: float


def body_flowables(markdown: str, attachments, styles: BodyStyles) -> list[Flowable]:
    """The laid-out body of an item."""
    tree = _Tree()
    tree.feed(render_body(markdown, attachments))
    tree.close()
    return list(_blocks(tree.root, styles, indent=0))


def _blocks(node: Node, styles: BodyStyles, indent: float) -> Iterator[Flowable]:
    inline: list[Node | str] = []

    def flush() -> Iterator[Flowable]:
        markup = _inline(Node("p", children=list(inline))).strip()
        inline.clear()
        if markup:
            yield _paragraph(markup, styles.text, indent)

    for child in node.children:
        if isinstance(child, str) or child.tag not in _BLOCKS:
            inline.append(child)
            continue
        yield from flush()
        yield from _block(child, styles, indent)
    yield from flush()


def _block(node: Node, styles: BodyStyles, indent: float) -> Iterator[Flowable]:
    tag = node.tag
    if tag[0] == "h" and tag[1:].isdigit():
        level = min(int(tag[1:]), len(styles.headings)) - 1
        yield _paragraph(_inline(node), styles.headings[level], indent)
    elif tag == "p":
        markup = _inline(node).strip()
        if markup:
            yield _paragraph(markup, styles.text, indent)
    elif tag in ("ul", "ol"):
        number = int(node.attrs.get("start") or 1) if tag == "ol" else 0
        for li in (c for c in node.children if isinstance(c, Node) and c.tag == "li"):
            bullet = f"{number}." if tag == "ol" else "•"
            number += 1
            yield from _list_item(li, bullet, styles, indent)
    elif tag == "blockquote":
        yield from _blocks(node, styles, indent + 18)
    elif tag == "pre":
        yield XPreformatted(escape(node.text().rstrip("\n")), styles.code)
    elif tag == "hr":
        yield HRFlowable(width="100%", thickness=0.5, color=colors.grey, spaceAfter=6)
    elif tag == "table":
        yield from _table(node, styles)
    else:  # a stray li, tr or cell outside its parent: keep its text
        yield from _blocks(node, styles, indent)


def _list_item(li: Node, bullet: str, styles: BodyStyles, indent: float) -> Iterator[Flowable]:
    first: list[Node | str] = []
    rest: list[Node] = []
    for child in li.children:
        if isinstance(child, Node) and child.tag in ("ul", "ol", "table", "pre", "blockquote"):
            rest.append(child)
        elif rest:
            rest.append(child if isinstance(child, Node) else Node("p", children=[child]))
        else:
            first.append(child)
    style = ParagraphStyle(
        f"li{indent}", parent=styles.text, leftIndent=indent + 18, bulletIndent=indent + 4
    )
    yield Paragraph(_inline(Node("li", children=first)).strip(), style, bulletText=bullet)
    for block in rest:
        yield from _block(block, styles, indent + 18)


def _paragraph(markup: str, style: ParagraphStyle, indent: float) -> Paragraph:
    if indent:
        style = ParagraphStyle(f"{style.name}-{indent}", parent=style, leftIndent=indent)
    return Paragraph(markup, style)


def _inline(node: Node) -> str:
    """reportlab paragraph markup for the inline content of ``node``."""
    out: list[str] = []
    for child in node.children:
        if isinstance(child, str):
            out.append(escape(child, quote=False))
            continue
        tag = child.tag
        if tag == "br":
            out.append("<br/>")
        elif tag == "img":
            out.append(escape(f"[图片：{child.attrs.get('alt') or child.attrs.get('src', '')}]"))
        elif tag == "a":
            text = _inline(child)
            href = child.attrs.get("href", "")
            # Paper cannot follow a link: print where it leads when the text hides it.
            shown = href.removeprefix("mailto:").removeprefix("tel:")
            if shown and shown not in child.text():
                text += escape(f"（{shown}）", quote=False)
            out.append(text)
        elif tag in _INLINE_TAGS:
            mark = _INLINE_TAGS[tag]
            out.append(f"<{mark}>{_inline(child)}</{mark}>")
        elif tag in _BLOCKS:
            out.append(_inline(child) + "<br/>")
        else:  # code, span and anything else: the text
            out.append(_inline(child))
    return "".join(out)


# --- tables -----------------------------------------------------------------------------


@dataclass
class _Cell:
    node: Node
    row: int
    col: int
    rowspan: int
    colspan: int


def _span(value: str | None) -> int:
    return max(1, min(int(value), 1000)) if value and value.isdigit() else 1


def _rows(table: Node) -> tuple[list[list[Node]], int]:
    """The table's rows of cells, and how many rows are header rows."""
    rows: list[list[Node]] = []
    head = 0

    def walk(node: Node, in_head: bool) -> None:
        nonlocal head
        for child in node.children:
            if not isinstance(child, Node):
                continue
            if child.tag == "tr":
                rows.append(
                    [c for c in child.children if isinstance(c, Node) and c.tag in ("th", "td")]
                )
                if in_head:
                    head = len(rows)
            elif child.tag in ("thead", "tbody", "tfoot"):
                walk(child, child.tag == "thead")

    walk(table, False)
    rows = [r for r in rows if r]
    if head == 0:
        # Pasted HTML tables rarely have a <thead>: leading rows of <th> are the header.
        while head < len(rows) and all(c.tag == "th" for c in rows[head]):
            head += 1
    return rows, head


def _place(rows: list[list[Node]]) -> tuple[list[_Cell], int]:
    taken: set[tuple[int, int]] = set()
    cells: list[_Cell] = []
    width = 0
    for r, row in enumerate(rows):
        c = 0
        for node in row:
            while (r, c) in taken:
                c += 1
            cell = _Cell(
                node, r, c, _span(node.attrs.get("rowspan")), _span(node.attrs.get("colspan"))
            )
            cell.rowspan = min(cell.rowspan, len(rows) - r)
            for dr in range(cell.rowspan):
                for dc in range(cell.colspan):
                    taken.add((r + dr, c + dc))
            cells.append(cell)
            c += cell.colspan
            width = max(width, c)
    return cells, max([width, *(c + 1 for _, c in taken)], default=0)


def _widths(natural: list[float], room: float) -> list[float]:
    """Column widths filling ``room``: narrow columns keep their natural width and
    wide ones share the rest by how wide they would like to be."""
    total = sum(natural)
    if total <= room:
        return [w * room / total for w in natural]
    fair = room / len(natural)
    narrow = [w if w <= fair else 0.0 for w in natural]
    left = room - sum(narrow)
    wide = sum(w for w in natural if w > fair)
    return [w if w <= fair else w * left / wide for w in natural]


def _table(node: Node, styles: BodyStyles) -> Iterator[Flowable]:
    rows, head = _rows(node)
    if not rows:
        return
    cells, ncols = _place(rows)
    font, size = styles.cell.fontName, styles.cell.fontSize
    natural = [2 * _CELL_PADDING + size] * ncols
    texts = {}
    for cell in cells:
        markup = _inline(cell.node).strip()
        plain = cell.node.text().strip()
        texts[id(cell)] = (markup, plain)
        if cell.colspan == 1:
            longest = max((stringWidth(line, font, size) for line in plain.split("\n")), default=0)
            natural[cell.col] = max(natural[cell.col], longest + 2 * _CELL_PADDING)
    widths = _widths(natural, styles.width)
    data: list[list[object]] = [[""] * ncols for _ in rows]
    commands: list[tuple] = [
        ("FONT", (0, 0), (-1, -1), font, size),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), _CELL_PADDING / 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), _CELL_PADDING / 2),
    ]
    if head:
        commands.append(("BACKGROUND", (0, 0), (-1, head - 1), colors.HexColor("#e8e8e8")))
        commands.append(("ALIGN", (0, 0), (-1, head - 1), "CENTER"))
    # One command per column, not per cell: a 2,000-row list would carry thousands.
    column_align = ["LEFT"] * ncols
    for cell in cells:
        if cell.row == head:
            column_align[cell.col] = _align(cell, head)
    for col, align in enumerate(column_align):
        if align != "LEFT" and head < len(rows):
            commands.append(("ALIGN", (col, head), (col, -1), align))
    for cell in cells:
        markup, plain = texts[id(cell)]
        room = sum(widths[cell.col : cell.col + cell.colspan]) - _CELL_PADDING
        align = _align(cell, head)
        if "<" not in markup and stringWidth(plain, font, size) <= room:
            # A plain string is laid out many times faster than a Paragraph: most
            # cells of a name list are short.
            data[cell.row][cell.col] = plain
        else:
            style = styles.head_cell if cell.row < head else styles.cell
            data[cell.row][cell.col] = Paragraph(markup, _aligned(style, align))
        if cell.row >= head and align != column_align[cell.col]:
            commands.append(("ALIGN", (cell.col, cell.row), (cell.col, cell.row), align))
        if cell.rowspan > 1 or cell.colspan > 1:
            end = (cell.col + cell.colspan - 1, cell.row + cell.rowspan - 1)
            commands.append(("SPAN", (cell.col, cell.row), end))
    table = Table(data, colWidths=widths, repeatRows=head, hAlign="CENTER")
    table.setStyle(TableStyle(commands))
    yield table
    yield Spacer(1, 6)


def _align(cell: _Cell, head: int) -> str:
    default = "CENTER" if cell.row < head else "LEFT"
    return _ALIGN.get(cell.node.attrs.get("align", ""), default)


_ALIGNMENT = {"LEFT": 0, "CENTER": 1, "RIGHT": 2}


def _aligned(style: ParagraphStyle, align: str) -> ParagraphStyle:
    if style.alignment == _ALIGNMENT[align]:
        return style
    return ParagraphStyle(f"{style.name}-{align}", parent=style, alignment=_ALIGNMENT[align])
