"""Issue 8: one sanitised HTML path (``gongkai.html``) and the body markup check.

The corpus (tests/html_corpus.py) is checked against the rendered output with a
checker written here, independently of the module's own allow-list: what must never
reach a reader is spelled out below, not imported.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from html_corpus import ATTACHMENTS, BENIGN, HOSTILE, INERT

import clihelp
from gongkai.cli import main
from gongkai.html import body_markup_problems, escape_text, render_body

FORBIDDEN = {"script", "style", "iframe", "frame", "frameset", "object", "embed", "svg"}
FORBIDDEN |= {"math", "form", "button", "input", "base", "meta", "link", "template"}
FORBIDDEN |= {"noscript", "xmp", "title", "body", "html", "head", "div", "span", "details"}
ALLOWED = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote", "pre"}
ALLOWED |= {"code", "ul", "ol", "li", "strong", "em", "b", "i", "a", "img"}
ALLOWED |= {"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"}
SCHEMES = {"http", "https", "mailto", "tel"}
SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str]]] = []
        self.other: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, {name: value or "" for name, value in attrs}))

    def handle_comment(self, data):
        self.other.append(data)

    handle_decl = unknown_decl = handle_pi = handle_comment


def elements(rendered: str) -> Elements:
    parser = Elements()
    parser.feed(rendered)
    parser.close()
    return parser


def url_scheme(value: str) -> str | None:
    # What a browser does before it reads a scheme: entities are already decoded by
    # the parser; tabs and newlines anywhere and controls at the ends are dropped.
    cleaned = re.sub(r"[\t\n\r]", "", value).strip("".join(map(chr, range(0x21)))).lower()
    found = SCHEME.match(cleaned)
    return found[1] if found else None


def assert_safe(rendered: str, attachments=ATTACHMENTS) -> None:
    parsed = elements(rendered)
    assert parsed.other == [], f"comment or declaration left: {parsed.other}"
    for tag, attrs in parsed.found:
        assert tag not in FORBIDDEN, rendered
        assert tag in ALLOWED, f"<{tag}> in {rendered!r}"
        for name, value in attrs.items():
            assert not name.startswith("on"), rendered
            assert name not in {"style", "srcdoc", "formaction", "srcset", "xlink:href"}
            assert "javascript" not in value.lower().replace("\t", ""), rendered
        if "href" in attrs:
            scheme = url_scheme(attrs["href"])
            assert scheme in SCHEMES or (
                scheme is None and unquote(attrs["href"]) in attachments
            ), rendered
        if "src" in attrs:
            assert tag == "img", rendered
            assert url_scheme(attrs["src"]) is None, rendered
            assert unquote(attrs["src"]) in attachments, rendered


# --- the corpus ----------------------------------------------------------------------


def test_the_corpus_is_large_enough():
    assert len(HOSTILE) >= 45


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_body_comes_out_safe_and_is_reported(body):
    assert_safe(render_body(body, ATTACHMENTS))
    assert_safe(render_body(f"公示内容：\n\n{body}\n\n以上。", ATTACHMENTS))
    problems = body_markup_problems(body, ATTACHMENTS)
    assert problems, "a silent strip: the sanitiser changes this body and nobody is told"
    for problem in problems:
        # Short excerpts, never the whole body; every problem says what to do.
        assert len(problem.message) < 200 and problem.fix
    # The check is not fooled by text around the markup.
    assert body_markup_problems(f"公示内容：\n\n{body}\n\n以上。", ATTACHMENTS)


@pytest.mark.parametrize("body", INERT.values(), ids=INERT.keys())
def test_markup_that_markdown_shows_as_text_is_safe_and_not_reported(body):
    rendered = render_body(body, ATTACHMENTS)
    assert_safe(rendered)
    assert body_markup_problems(body, ATTACHMENTS) == []


@pytest.mark.parametrize("body", BENIGN.values(), ids=BENIGN.keys())
def test_government_content_passes_unreported(body):
    rendered = render_body(body, ATTACHMENTS)
    assert_safe(rendered)
    assert body_markup_problems(body, ATTACHMENTS) == []


# --- what the path keeps ---------------------------------------------------------------


def test_tables_render_with_header_cells_and_alignment_without_style():
    rendered = render_body(BENIGN["dibao-name-list"])
    assert "<table>" in rendered and "<th" in rendered and "<td" in rendered
    assert '<th align="center">序号</th>' in rendered
    assert '<td align="right">1,020</td>' in rendered
    assert "欧阳**" in rendered and "style" not in rendered


def test_merged_cells_and_line_breaks_in_cells_are_kept():
    merged = render_body(BENIGN["raw-table-with-merged-cells"])
    assert 'colspan="2"' in merged and 'rowspan="2"' in merged
    assert "五凤镇<br>金桂村3组" in render_body(BENIGN["line-break-in-table-cell"])


def test_headings_lists_and_emphasis_are_kept():
    rendered = render_body(BENIGN["headings-and-lists"] + "\n\n**重要**，*按时*")
    for tag in ("<h1>", "<h2>", "<ol>", '<ol start="3">', "<ul>", "<li>", "<strong>", "<em>"):
        assert tag in rendered, tag


def test_web_mail_and_phone_links_are_kept_with_rel():
    rendered = render_body(BENIGN["contact-links"])
    for href in (
        "tel:028-84930000",
        "mailto:jtmz@jintang.gov.cn",
        "https://www.jintang.gov.cn",
        "http://mzj.jintang.gov.cn/index.html",
    ):
        assert f'href="{href}"' in rendered, href
    assert rendered.count('rel="noopener noreferrer"') == 4
    assert 'title="金堂县民政局"' in rendered


def test_an_attachment_image_is_kept_and_a_foreign_one_loses_its_source(item_factory):
    body = "![现场照片](现场照片.jpg) ![外链](https://evil.example/a.png)"
    rendered = render_body(body, ATTACHMENTS)
    assert 'alt="现场照片"' in rendered and "evil.example" not in rendered
    [kept, foreign] = [attrs for tag, attrs in elements(rendered).found if tag == "img"]
    assert unquote(kept["src"]) == "现场照片.jpg"
    assert "src" not in foreign and foreign["alt"] == "外链"
    # Without the attachment the same image is foreign too.
    assert "src" not in render_body("![现场照片](现场照片.jpg)")


def test_attachments_may_be_given_as_attachment_objects(tmp_path):
    from gongkai import Attachment

    photo = Attachment(title="现场照片", path=tmp_path / "现场照片.jpg", sha256="0" * 64)
    body = "![现场照片](现场照片.jpg) [名单](名单.xlsx)"
    rendered = render_body(body, [photo])
    assert "src=" in rendered and "href=" not in rendered
    [problem] = body_markup_problems(body, [photo])
    assert "名单.xlsx" in problem.message and "attachment" in problem.fix


def test_masked_numbers_keep_their_stars_and_bold_stays_bold():
    from gongkai.config import PrivacySettings
    from gongkai.plugins.privacy import mask_text

    masked = mask_text("联系电话13812345678、13912345678，共计**35**户。", PrivacySettings())
    assert "138****5678、139****5678" in masked
    rendered = render_body(masked)
    assert "138****5678、139****5678" in rendered and "<strong>35</strong>" in rendered
    assert rendered.count("<strong>") == 1


def test_output_is_deterministic():
    body = "\n\n".join(BENIGN.values()) + "\n\n" + "\n\n".join(HOSTILE.values())
    first = render_body(body, ATTACHMENTS)
    assert all(render_body(body, ATTACHMENTS) == first for _ in range(3))
    assert render_body(body, list(reversed(ATTACHMENTS))) == first


def test_problems_name_what_was_found_and_the_fix():
    [script] = body_markup_problems("通知<script>alert(1)</script>")
    assert "<script>" in script.message and "remove the <script> tag" in script.fix
    [link] = body_markup_problems("[点击](javascript:alert(1))")
    assert "javascript:alert(1)" in link.message and "http(s), mailto or tel" in link.fix
    [image] = body_markup_problems("![照片](https://evil.example/a.png)")
    assert "evil.example" in image.message
    assert "attachments by file name" in image.fix
    [handler] = body_markup_problems('<img src="现场照片.jpg" onerror="x">', ATTACHMENTS)
    assert "onerror" in handler.message and "remove the onerror= attribute" in handler.fix


def test_a_long_finding_is_cut_to_an_excerpt():
    body = f'<a href="javascript:{"x" * 5000}">点击</a>'
    [problem] = body_markup_problems(body)
    assert len(problem.message) < 120 and "…" in problem.message


def test_markup_a_browser_would_move_is_reported_even_with_allowed_tags():
    # Only allowed tags, but a browser (and nh3) moves the bold text out of the table,
    # above it: the page would not read as written.
    body = "<table><tr><td>1</td></tr><b>说明</b></table>"
    assert render_body(body).startswith("<b>说明</b><table>")
    [problem] = body_markup_problems(body)
    assert "would change the markup" in problem.message and problem.fix


def test_the_same_finding_is_reported_once():
    assert len(body_markup_problems("<script>1</script>\n\n<script>1</script>")) == 1


def test_escape_text_escapes_every_special_character():
    assert escape_text("<b>\"金堂\" & '五凤'</b>") == (
        "&lt;b&gt;&quot;金堂&quot; &amp; &#x27;五凤&#x27;&lt;/b&gt;"
    )
    assert html.unescape(escape_text("《通知》〔2018〕18号")) == "《通知》〔2018〕18号"


# --- through the real pipeline -----------------------------------------------------------

ITEM = """+++
id = "jt-html-0001"
catalog = "housing.policy"
title = "公共租赁住房申请指南"
publisher = "金堂县房产管理局"
formed_on = 2026-11-20
+++
申请条件、申请材料和办理流程如下。{body}
"""


@pytest.mark.parametrize("verb", ["validate", "publish"])
def test_the_safety_plugin_refuses_body_markup(verb, tmp_path, capsys):
    items = tmp_path / "items"
    items.mkdir()
    bad = items / "guide.md"
    bad.write_text(ITEM.format(body="<script>alert(1)</script>"), encoding="utf-8")
    config = clihelp.write_config(tmp_path)
    code = main([verb, str(items), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "guide.md" in err and "'body'" in err and "<script>" in err
    assert "remove the <script> tag" in err
    archive = tmp_path / "state"
    assert not any(p.name == "item.json" for p in Path(archive).rglob("*"))


def test_a_clean_body_with_an_attachment_image_validates(tmp_path, capsys):
    items = tmp_path / "items"
    items.mkdir()
    (items / "现场照片.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    text = ITEM.format(body="\n\n![现场照片](现场照片.jpg)\n\n[官网](https://www.jintang.gov.cn)")
    text = text.replace(
        "+++\n申请",
        '[[attachments]]\ntitle = "现场照片"\npath = "现场照片.jpg"\nchecked = true\n+++\n申请',
    )
    (items / "guide.md").write_text(text, encoding="utf-8")
    code = main(["validate", str(items), "--config", str(clihelp.write_config(tmp_path))])
    assert code == 0, capsys.readouterr().err


def test_the_plain_body_shortcut_finds_what_the_full_check_finds(monkeypatch):
    """A body with no link, raw HTML or fence skips the render; it must not skip a
    problem. Every corpus body gives the same answer with the shortcut off."""
    import gongkai.html as module

    bodies = [*HOSTILE.values(), *BENIGN.values(), *INERT.values()]
    bodies += [
        "共计12户\n\n12345. 第一项",
        "```中文\n代码\n```",
        "名单见下表：\n\n" + "| 1 | 2 |\n|---|---|\n| 张* | 3 |",
    ]
    with_shortcut = [body_markup_problems(b, ATTACHMENTS) for b in bodies]
    monkeypatch.setattr(module, "_PLAIN", re.compile(""))
    assert with_shortcut == [body_markup_problems(b, ATTACHMENTS) for b in bodies]
