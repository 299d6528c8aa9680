"""The one HTML path: item bodies to sanitised HTML, and plain text escaped.

Every channel that produces HTML (the portal, the platform, WeChat, the archive's
preview) calls ``render_body`` for the body and ``escape_text`` for the title and every
metadata field, so that all of them carry the same text. No channel renders Markdown
or sanitises on its own: two renderers would disagree on some input, and the ledger's
promise that the web and the wall carry one version would be broken from the start.

The path is Markdown (markdown-it-py, CommonMark with tables) then the ``nh3``
sanitiser with an allow-list that fits government content:

* headings, paragraphs, line breaks, rules, lists, block quotes, code, emphasis;
* tables (``colspan``/``rowspan`` as whole numbers, ``align`` left/center/right);
* links to ``http``, ``https``, ``mailto`` and ``tel`` addresses, or to one of the
  item's attachments by its file name;
* images only of the item's own attachments, by file name.

Raw HTML in the body is parsed, not shown as text. Name lists pasted from office
systems use ``<br>`` inside table cells and merged cells (``colspan``), which Markdown
tables cannot express. Parsing it is safe because the sanitiser sees every tag the
browser would see (it parses HTML as a browser does), and the check below refuses the
rest before publication.

Whatever the sanitiser would remove is an error, not a silent strip:
``body_markup_problems`` lists it, and the safety plugin refuses the item. A silently
stripped ``<script>`` or ``javascript:`` link would make the portal show different text
from the notice board and the archive, and the author would never learn why.
``render_body`` still sanitises everything it is given: the check is for parity, the
sanitiser is for safety, and neither relies on the other.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from html.parser import HTMLParser
from typing import Protocol
from urllib.parse import unquote

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline

__all__ = [
    "ATTRIBUTES",
    "TAGS",
    "URL_SCHEMES",
    "MarkupProblem",
    "body_markup_problems",
    "escape_text",
    "render_body",
]

#: Elements a body may contain. Anything else is removed, keeping its text.
TAGS = frozenset(
    {"h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote", "pre", "code"}
    | {"ul", "ol", "li", "strong", "em", "b", "i", "a", "img"}
    | {"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"}
)
#: Elements removed together with everything inside them: their content is code,
#: styling or another document, never text meant for a reader.
DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "template", "noscript", "iframe", "frameset", "object", "embed"}
    | {"svg", "math", "textarea", "select", "title", "xmp", "noembed", "noframes"}
)
#: Attributes allowed per element; every value is checked further by ``_refusal``.
ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "title"}),
    "img": frozenset({"src", "alt", "title"}),
    "th": frozenset({"colspan", "rowspan", "align"}),
    "td": frozenset({"colspan", "rowspan", "align"}),
    "ol": frozenset({"start"}),
    # markdown-it marks a fenced block's language as class="language-…".
    "code": frozenset({"class"}),
}
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
#: What nh3 adds to every link; it is not markup the author wrote.
LINK_REL = "noopener noreferrer"
_EXCERPT = 40

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
#: A browser removes tabs and newlines anywhere in a URL and C0 controls and spaces at
#: its ends (WHATWG URL parsing), so "java\tscript:" is a javascript: URL.
_URL_NOISE = re.compile(r"[\t\n\r]")
_URL_ENDS = re.compile(r"^[\x00-\x20]+|[\x00-\x20]+$")
_NUMBER = re.compile(r"^[0-9]{1,4}$")
_ALIGN = frozenset({"left", "center", "right"})
_LANGUAGE = re.compile(r"^language-[A-Za-z0-9_+-]{1,40}$")


class _Named(Protocol):
    @property
    def filename(self) -> str: ...


Attachments = Iterable["_Named | str"]


@dataclass(frozen=True)
class MarkupProblem:
    """Markup the sanitiser would remove from a body: what was found, and the fix."""

    message: str
    fix: str


def escape_text(text: str) -> str:
    """Plain text (a title, a publisher, a 文号) for any place in an HTML page:
    ``& < > " '`` are escaped, so it is safe in element content and in a quoted
    attribute alike."""
    return html.escape(text, quote=True)


def render_body(markdown: str, attachments: Attachments = ()) -> str:
    """The body as sanitised HTML: the same input always gives the same output.

    ``attachments`` are the item's attachments (``gongkai.Attachment``) or their file
    names: only those may be linked by a relative address or shown as images. A
    disallowed image keeps its ``alt`` text and loses its ``src``, so a reader sees
    the words and no foreign picture (``body_markup_problems`` refuses it before
    publication anyway)."""
    return _sanitise(_MD.render(markdown), _names(attachments))


#: What Markdown needs to produce anything beyond the allow-list's plain elements: raw
#: HTML and autolinks ("<"), links and images ("](", "][", "]:"), a fence's info string
#: (a code class) and a long ordered-list number (a start attribute). A body without
#: any of them renders to allowed tags only, so checking it needs no render: a
#: 2,000-row name list would spend 0.4 s rendering and parsing to learn nothing.
_PLAIN = re.compile(r"<|\]\(|\]\[|\]:|```|~~~|^[ \t]*[0-9]{5,}[.)]", re.MULTILINE)


def body_markup_problems(markdown: str, attachments: Attachments = ()) -> list[MarkupProblem]:
    """What ``render_body`` would remove from ``markdown``, one problem per kind of
    finding (in the order found); empty when the body passes through unchanged.

    Harmless normalisation does not count: the ``rel`` nh3 adds to links, re-written
    entities and quotes, a ``<tbody>`` the parser adds to a bare table."""
    if _PLAIN.search(markdown) is None:
        return []
    names = _names(attachments)
    raw = _MD.render(markdown)
    found = _Markup.parse(raw)
    problems: list[MarkupProblem] = []
    for tag, attrs, source in found.tags:
        if tag not in TAGS:
            problems.append(_tag_problem(tag, source))
            continue
        for name, value in attrs:
            problem = _attribute_problem(tag, name, value, names, source)
            if problem is not None:
                problems.append(problem)
    problems += [_other_problem(text) for text in found.other]
    if not problems:
        # A backstop for what the walk above cannot see: the browser-grade parser in
        # nh3 may read malformed markup differently from html.parser.
        changed = _changed(found, _Markup.parse(_sanitise(raw, names)))
        if changed is not None:
            problems.append(
                MarkupProblem(
                    f"the sanitiser would change the markup near '{_excerpt(changed)}'",
                    "write the body in plain Markdown: headings, paragraphs, lists, "
                    "tables, emphasis and links",
                )
            )
    return list(dict.fromkeys(problems))


# --- rendering ----------------------------------------------------------------------


def _every_link(url: str) -> bool:
    # markdown-it refuses javascript: and similar links by leaving the source as text,
    # silently. Letting every link through means the one allow-list (``_refusal``)
    # decides, and ``body_markup_problems`` can name the refused link.
    return True


def _align_attribute(state: StateCore) -> None:
    # markdown-it aligns table columns with style="text-align:…"; a body carries no
    # style attribute (it is also how CSS attacks arrive), so use align= instead.
    for token in state.tokens:
        if token.type in ("th_open", "td_open"):
            style = str(token.attrs.pop("style", ""))
            if style.startswith("text-align:"):
                token.attrs["align"] = style.removeprefix("text-align:")


def _masked_digits(state: StateInline, silent: bool) -> bool:
    # Masking writes 138****5678 and 510121********1981. Two of them in one paragraph
    # are emphasis to CommonMark (138<strong><strong>5678、139</strong></strong>…), so
    # the web page would hide the stars the notice prints. A run of "*" between two
    # digits is text; "共计**35**户" stays bold, since no run there is between digits.
    start, src = state.pos, state.src
    if src[start] != "*" or start == 0 or not src[start - 1].isdigit():
        return False
    end = start
    while end < state.posMax and src[end] == "*":
        end += 1
    if end == state.posMax or not src[end].isdigit():
        return False
    if not silent:
        state.pending += src[start:end]  # append_pending is new in markdown-it-py 4
    state.pos = end
    return True


def _markdown() -> MarkdownIt:
    # CommonMark with raw HTML parsed (see the module docstring) and tables. Linkify
    # stays off: a bare address stays text, as it is on the printed notice.
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    md.enable("table")
    md.validateLink = _every_link  # type: ignore[method-assign]
    md.core.ruler.push("gongkai_align", _align_attribute)
    md.inline.ruler.before("emphasis", "gongkai_masked_digits", _masked_digits)
    return md


_MD = _markdown()


def _names(attachments: Attachments) -> frozenset[str]:
    return frozenset(a if isinstance(a, str) else a.filename for a in attachments)


def _keep(names: frozenset[str], tag: str, name: str, value: str) -> str | None:
    # nh3 calls the filter for the rel it adds itself, after dropping any rel the
    # author wrote; keep its own.
    if (tag, name, value) == ("a", "rel", LINK_REL):
        return value
    return value if _refusal(tag, name, value, names) is None else None


def _sanitise(raw: str, names: frozenset[str]) -> str:
    return nh3.clean(
        raw,
        tags=set(TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(allowed) for tag, allowed in ATTRIBUTES.items()},
        attribute_filter=partial(_keep, names),
        strip_comments=True,
        link_rel=LINK_REL,
        url_schemes=set(URL_SCHEMES),
    )


# --- the allow-list for attribute values ---------------------------------------------


def _clean_url(value: str) -> str:
    return _URL_ENDS.sub("", _URL_NOISE.sub("", value))


def _refusal(tag: str, name: str, value: str, names: frozenset[str]) -> str | None:
    """Why ``name="value"`` may not stay on ``<tag>``, or None if it may."""
    if name not in ATTRIBUTES.get(tag, ()):
        return "attribute"
    if name in ("href", "src"):
        url = _clean_url(value)
        scheme = _SCHEME.match(url)
        if tag == "img":
            # An image from elsewhere can track readers or change after review.
            return None if scheme is None and unquote(url) in names else "image"
        if scheme is not None:
            return None if scheme[1].lower() in URL_SCHEMES else "scheme"
        return None if unquote(url) in names else "relative"
    if name in ("colspan", "rowspan", "start"):
        return None if _NUMBER.match(value) else "value"
    if name == "align":
        return None if value.lower() in _ALIGN else "value"
    if name == "class":
        return None if _LANGUAGE.match(value) else "value"
    return None


# --- naming what would be removed ----------------------------------------------------

_ALLOWED = "a body may use headings, paragraphs, lists, tables, emphasis and links"


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _tag_problem(tag: str, source: str) -> MarkupProblem:
    what = ", with everything inside it" if tag in DROPPED_WITH_CONTENT else ""
    return MarkupProblem(
        f"the <{_excerpt(tag)}> tag ('{_excerpt(source)}') would be removed from the "
        f"published body{what}",
        f"remove the <{_excerpt(tag)}> tag; {_ALLOWED}",
    )


def _attribute_problem(
    tag: str, name: str, value: str, names: frozenset[str], source: str
) -> MarkupProblem | None:
    reason = _refusal(tag, name, value, names)
    if reason is None:
        return None
    # markdown-it percent-encodes link targets; show what the author wrote.
    shown = f"'{_excerpt(unquote(value) if name in ('href', 'src') else value)}'"
    if reason == "image":
        return MarkupProblem(
            f"the image {shown} is not one of the item's attachments",
            "link images only to the item's own attachments by file name "
            "(add the picture as an attachment)",
        )
    if reason in ("scheme", "relative"):
        return MarkupProblem(
            f"the link {shown} is not a web, mail or phone address"
            + (" nor one of the item's attachments" if reason == "relative" else ""),
            "use an http(s), mailto or tel link, or an attachment's file name",
        )
    if name.startswith("on"):
        message = f"the event handler {name}= ('{_excerpt(source)}') would run code"
    elif name == "style":
        message = f"the style= attribute ('{_excerpt(source)}') is not carried by channels"
    elif reason == "value":
        message = f"{name}={shown} on <{tag}> is not allowed"
    else:
        message = f"the {_excerpt(name)}= attribute ('{_excerpt(source)}') is not allowed"
    fix = f"remove the {_excerpt(name)}= attribute"
    if reason == "value":
        fix = (
            "write colspan, rowspan and start as whole numbers and align as left, center "
            f"or right, or remove the {name}= attribute"
        )
    return MarkupProblem(message, fix)


def _other_problem(text: str) -> MarkupProblem:
    kind = "HTML comment" if text.startswith("<!--") else "declaration"
    kind = "processing instruction" if text.startswith("<?") else kind
    return MarkupProblem(
        f"the {kind} ('{_excerpt(text)}') would be removed from the published body",
        f"remove the {kind}; {_ALLOWED}",
    )


class _Markup(HTMLParser):
    """The elements (with decoded attributes), text and other markup of some HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[tuple[str, str], ...], str]] = []
        self.text: list[str] = []
        self.other: list[str] = []

    @classmethod
    def parse(cls, text: str) -> _Markup:
        parser = cls()
        parser.feed(text)
        parser.close()
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pairs = tuple((name, value or "") for name, value in attrs)
        self.tags.append((tag, pairs, self.get_starttag_text() or f"<{tag}>"))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.other.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.other.append(f"<!{decl}>")

    def unknown_decl(self, data: str) -> None:
        self.other.append(f"<![{data}]>")

    def handle_pi(self, data: str) -> None:
        self.other.append(f"<?{data}>")


def _changed(raw: _Markup, clean: _Markup) -> str | None:
    """Source of the first element or text of ``raw`` missing from ``clean``, or None.

    Elements are compared as a multiset, so a parser adding ``<tbody>`` or closing a
    cell does not count; text is compared without whitespace, which parsers move."""

    def key(tag: str, attrs: tuple[tuple[str, str], ...]) -> tuple:
        return tag, tuple(sorted(p for p in attrs if not (tag == "a" and p == ("rel", LINK_REL))))

    missing = Counter(key(t, a) for t, a, _ in raw.tags) - Counter(
        key(t, a) for t, a, _ in clean.tags
    )
    for tag, attrs, source in raw.tags:
        if missing[key(tag, attrs)]:
            return source
    before, after = ("".join("".join(m.text).split()) for m in (raw, clean))
    if before == after:
        return None
    at = next((i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), None)
    at = min(len(before), len(after)) if at is None else at
    return before[max(0, at - 10) : at + 30] or after[max(0, at - 10) : at + 30]


# --- the text a reader sees -------------------------------------------------------------

_TAG_OR_COMMENT = re.compile(r"<!--.*?-->|<[^>]*>", re.DOTALL)
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_LINK = re.compile(r"!?\[([^\]]*)\]\(\s*<?([^)>\s]*)>?[^)]*\)")
_EMPHASIS = re.compile(r"[*_~`]+")
_SOFT_BREAK = re.compile(r"(?<=[0-9０-９])[ \t]*\n[ \t>]*(?=[0-9０-９])")
#: Markup that can split a number or a word in the source while the reader sees it
#: whole: a tag or entity anywhere, an escape, or emphasis or a line break touching a
#: digit or a CJK character. (Four or more stars are a masked number, not emphasis.)
_W = "0-9０-９\u4e00-\u9fff"
_SPLITTING = re.compile(
    r"[<&\\]"
    rf"|(?<=[{_W}])(?:(?<!\*)\*{{1,3}}(?!\*)|[_~`]+|\[|\]\()+(?=[{_W}])"
    rf"|(?<=[{_W}])\[|\]\((?=[{_W}])"
    r"|[0-9０-９][ \t]*\n[ \t>]*[0-9０-９]"
)


def may_split(markdown: str) -> bool:
    """Whether ``markdown`` has markup that could split a number or word the reader
    sees whole (cheap: most name lists have none, and skip :func:`plain_text`)."""
    return _SPLITTING.search(markdown) is not None


def plain_text(markdown: str) -> str:
    """About what a reader of the rendered body sees, for checks that must not be
    fooled by markup: tags and comments removed, entities and escapes decoded, link
    text kept with its address, emphasis marks dropped, and a line break between two
    digits joined (5101**21**1948…, 138&#48;0138000 and 内部<b></b>资料 read whole).
    It errs toward joining: a check on it may see a number the page splits."""
    text = _TAG_OR_COMMENT.sub("", markdown)
    text = _LINK.sub(r"\1 \2", text)
    text = _ESCAPE.sub(r"\1", text)
    text = html.unescape(text)
    text = _EMPHASIS.sub("", text)
    return _SOFT_BREAK.sub("", text)


class _TableHeads(HTMLParser):
    """The first row's cells of each raw HTML table."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.heads: list[list[str]] = []
        self._depth = 0
        self._row = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._depth += 1
            self._row = 0
            self.heads.append([])
        elif tag == "tr" and self._depth:
            self._row += 1
        elif tag in ("th", "td") and self._depth and self._row <= 1:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None:
            self.heads[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table" and self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_table_heads(markdown: str) -> list[list[str]]:
    """The header cells (first row) of every table written as raw HTML in ``markdown``:
    masking reads Markdown tables by their columns, and needs to know of the others."""
    if "<t" not in markdown.lower():
        return []
    parser = _TableHeads()
    parser.feed(markdown)
    parser.close()
    return [head for head in parser.heads if head]
