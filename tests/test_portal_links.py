"""The portal's links hold, found by a new-user trial: every internal link of a built
site reaches a file, attachment names that need percent-encoding are fetched as
themselves over real HTTP, the sitemap lists every index page, ``gongkai preview``
never lists a folder, and attachments of a type a browser runs (HTML, SVG, XML,
script) are refused at intake and never linked by the portal."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import feedparser
import pytest
from pydantic import ValidationError

from gongkai.channel import ChannelContext, PreparedItem
from gongkai.channels.portal import PortalChannel
from gongkai.cli import main
from gongkai.cli_preview import serve
from gongkai.item import Attachment
from gongkai.loader import load_paths
from support.portal_site import build_example_site

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
SITEMAP = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        name = {"a": "href", "link": "href", "script": "src", "img": "src"}.get(tag)
        if name and values.get(name):
            self.found.append(values[name])


def links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.found


def broken_links(root: Path) -> list[tuple[str, str]]:
    """Every link of every page that does not lead to a file of the site, resolved as
    a browser resolves it (relative to the page, then percent-decoded)."""
    broken = []
    for page in sorted(root.rglob("*.html")):
        here = "/" + page.relative_to(root).as_posix()
        for link in links(page.read_text("utf-8")):
            if urlsplit(link).scheme in ("http", "https", "mailto", "tel"):
                continue
            target = unquote(urlsplit(urljoin(here, link)).path)
            path = root / target.lstrip("/")
            if target.endswith("/"):
                path = path / "index.html"
            if not path.is_file():
                broken.append((here, link))
    return broken


def make_channel(tmp_path: Path, clock=lambda: NOW, **config) -> PortalChannel:
    context = ChannelContext(name="portal", state_dir=tmp_path / "state", clock=clock)
    return PortalChannel(PortalChannel.Config(**config), context)


def prepared(item_id: str, **changes) -> PreparedItem:
    data = {
        "id": item_id,
        "catalog": "housing.policy",
        "title": f"公共租赁住房申请指南{item_id}",
        "body": "申请条件：在本县有稳定工作。",
        "publisher": "金堂县房产管理局",
        "formed_on": date(2026, 11, 20),
        "index_number": "11510121009087532X/2026-00001",
        "edition": 1,
        "content_hash": hashlib.sha256(item_id.encode()).hexdigest(),
    }
    data.update(changes)
    return PreparedItem(**data)


def deliver(channel: PortalChannel, item: PreparedItem):
    return channel.deliver(item, channel.render(item), None)


def attach(folder: Path, name: str, data: bytes, title: str | None = None) -> Attachment:
    path = folder / name
    path.write_bytes(data)
    return Attachment(title=title or name, path=path, sha256=hashlib.sha256(data).hexdigest())


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.read()


@pytest.fixture
def served(tmp_path):
    """A loopback server over the channel's folder, and the channel built with the
    server's address as its site_url (feeds and the sitemap use whole addresses)."""
    root = tmp_path / "state" / "portal"
    root.mkdir(parents=True)
    server = serve(root, 0)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield make_channel(tmp_path, site_url=url, page_size=2), url
    server.shutdown()
    server.server_close()


# --- every link reaches a file ----------------------------------------------------------


def test_every_internal_link_of_the_example_site_reaches_a_file(tmp_path):
    site = build_example_site(tmp_path)
    assert broken_links(site.out) == []


def test_a_site_with_one_item_has_every_menu_category(tmp_path):
    # One 决策公开-less item: the menu still links all five 五公开 indexes.
    channel = make_channel(tmp_path)
    deliver(channel, prepared("housing-1", openness="service"))
    assert broken_links(channel.root) == []
    empty = (channel.root / "openness/decision/index.html").read_text("utf-8")
    assert "暂无信息" in empty and "housing-1" not in empty
    assert "housing-1" in (channel.root / "openness/service/index.html").read_text("utf-8")


def test_a_category_emptied_by_a_withdrawal_still_answers(tmp_path):
    channel = make_channel(tmp_path)
    item = prepared("housing-1", openness="decision")
    receipt = deliver(channel, item)
    channel.withdraw(item, receipt, "信息有误")
    assert broken_links(channel.root) == []
    assert "暂无信息" in (channel.root / "openness/decision/index.html").read_text("utf-8")


# --- names that need percent-encoding, over real HTTP -------------------------------------

AWKWARD = ["名单 #2.csv", "%41.csv", "问题?.csv", " 前导空格.csv", "a b&c.csv", "A.csv"]


def test_attachment_links_fetch_the_file_itself_over_http(served, tmp_path):
    channel, url = served
    folder = tmp_path / "files"
    folder.mkdir()
    # "A.csv" is there so that an unencoded "%41.csv" would fetch the wrong file.
    attachments = tuple(
        attach(folder, name, f"{n},{name}\n".encode(), f"附件{n}") for n, name in enumerate(AWKWARD)
    )
    # The body links each one by its file name, as docs/items.md says to ("%" and a
    # leading space written as Markdown needs them: "%2541", "%20").
    written = [name.replace("%", "%25").replace(" 前", "%20前") for name in AWKWARD]
    body = "、".join(f"[附件{n}](<{name}>)" for n, name in enumerate(written))
    deliver(channel, prepared("housing-1", body=body, attachments=attachments))
    expected = sorted(a.path.read_bytes() for a in attachments)
    for page in ("items/housing-1/index.html", "items/housing-1/e1/index.html"):
        html = fetch(url + page).decode("utf-8")
        found = {}
        for link in links(html):
            target = urljoin(url + page, link)
            path = urlsplit(target).path
            if path.startswith("/items/housing-1/") and not path.endswith("index.html"):
                found[target] = fetch(target)
        assert sorted(found.values()) == expected, page
        start = html.index('<div class="article-body">')
        in_body = links(html[start : html.index("</div>", start)])
        assert sorted(fetch(urljoin(url + page, link)) for link in in_body) == expected
    # The feed's copy of the body resolves against the item's address (xml:base).
    entry = feedparser.parse(fetch(url + "feeds/all.xml")).entries[0]
    in_feed = links(entry.content[0].value)
    assert sorted(fetch(urljoin(entry.content[0].base, link)) for link in in_feed) == expected
    assert broken_links(channel.root) == []


def test_feed_and_sitemap_addresses_resolve_over_http(served):
    channel, url = served
    with channel.batch():
        for n in range(5):
            deliver(channel, prepared(f"housing-{n}", area="五凤镇金箱村"))
    sitemap = ET.fromstring(fetch(url + "sitemap.xml"))
    locs = [u.findtext("s:loc", namespaces=SITEMAP) for u in sitemap.findall("s:url", SITEMAP)]
    for loc in locs:
        assert fetch(loc)  # 200, or urlopen raises
    feed = fetch(url + "feeds/all.xml").decode("utf-8")
    for href in [h for h in _atom_links(feed) if h.startswith(url)]:
        assert fetch(href)


def _atom_links(feed: str) -> list[str]:
    atom = "{http://www.w3.org/2005/Atom}"
    return [link.get("href") for link in ET.fromstring(feed).iter(f"{atom}link")]


# --- the sitemap lists every page of every index -------------------------------------------


def test_the_sitemap_lists_every_page_of_a_paginated_index(tmp_path):
    channel = make_channel(tmp_path, page_size=2, site_url="https://example.gov.cn/zwgk/")
    with channel.batch():
        for n in range(5):
            deliver(channel, prepared(f"housing-{n}"))
    tree = ET.fromstring((channel.root / "sitemap.xml").read_text("utf-8"))
    locs = {u.findtext("s:loc", namespaces=SITEMAP) for u in tree.findall("s:url", SITEMAP)}
    for page in ("index.html", "page-2.html", "page-3.html"):
        assert f"https://example.gov.cn/zwgk/domain/housing/{page}" in locs
    assert "https://example.gov.cn/zwgk/domain/housing/page-4.html" not in locs
    for loc in locs:
        assert (channel.root / loc.removeprefix("https://example.gov.cn/zwgk/")).is_file(), loc


# --- gongkai preview serves pages, never a folder listing -----------------------------------


def test_preview_answers_404_for_a_folder_without_index(served):
    channel, url = served
    deliver(channel, prepared("housing-1"))
    assert b"housing-1" in fetch(url + "items/housing-1/")
    for folder in ("items/", "static/", "items/housing-1/e1/../../", "feeds/", "data/"):
        with pytest.raises(urllib.error.HTTPError) as answer:
            fetch(url + folder)
        assert answer.value.code == 404, folder
        assert b"Directory listing" not in answer.value.read()
    with pytest.raises(urllib.error.HTTPError) as answer:
        fetch(url + "items")  # redirected to items/, which lists nothing either
    assert answer.value.code == 404


# --- attachments a browser would run --------------------------------------------------------

ACTIVE = ["page.html", "PAGE.HTM", "doc.xhtml", "logo.svg", "data.xml", "run.js", "saved.mht"]


@pytest.mark.parametrize("name", ACTIVE + ["trailing.html."])
def test_an_active_attachment_is_refused_at_intake(tmp_path, name):
    (tmp_path / name).write_text("<script>alert(1)</script>", "utf-8")
    item_file = tmp_path / "item.md"
    item_file.write_text(
        "+++\n"
        'id = "jt-2026-housing-9901"\ncatalog = "housing.policy"\ntitle = "测试"\n'
        'publisher = "金堂县房产管理局"\nformed_on = 2026-11-20\n'
        f'[[attachments]]\ntitle = "附件"\npath = "{name}"\n'
        "+++\n正文。\n",
        "utf-8",
    )
    loaded, problems = load_paths([item_file])
    assert loaded == []
    [problem] = problems
    text = str(problem)
    assert str(item_file) in text or problem.source == str(item_file)
    assert problem.field == "attachments.0.path"
    assert name in text and "convert it to PDF" in text


def test_gongkai_validate_names_the_file_the_attachment_and_the_fix(tmp_path, capsys):
    (tmp_path / "notice.html").write_text("<p>公告</p>", "utf-8")
    item_file = tmp_path / "item.md"
    item_file.write_text(
        '+++\nid = "jt-2026-housing-9902"\ncatalog = "housing.policy"\ntitle = "测试"\n'
        'publisher = "金堂县房产管理局"\nformed_on = 2026-11-20\n'
        '[[attachments]]\ntitle = "附件"\npath = "notice.html"\n+++\n正文。\n',
        "utf-8",
    )
    config = tmp_path / "config.toml"
    config.write_text('[gongkai]\nstate_dir = "state"\norg_code = "11510121009087532X"\n')
    assert main(["validate", "-c", str(config), str(item_file)]) == 2
    err = capsys.readouterr().err
    assert "item.md" in err and "attachments.0.path" in err and "notice.html" in err
    assert "convert it to PDF" in err


def test_a_library_caller_gets_the_same_refusal(tmp_path):
    path = tmp_path / "map.svg"
    path.write_text("<svg onload='alert(1)'/>", "utf-8")
    with pytest.raises(ValidationError, match=r"map\.svg.*\.svg file"):
        Attachment(title="地图", path=path, sha256="0" * 64)
    # An edition stored before the rule still reads back (the ledger stays readable).
    Attachment.model_validate(
        {"title": "地图", "path": path, "sha256": "0" * 64}, context={"stored": True}
    )


def test_the_portal_never_links_an_active_attachment_that_reaches_it(tmp_path):
    channel = make_channel(tmp_path)
    folder = tmp_path / "files"
    folder.mkdir()
    good = attach(folder, "名单.pdf", b"%PDF-1.4\n", "名单")
    risky = []
    for name in ACTIVE:
        data = b"<script>alert(1)</script>"
        (folder / name).write_bytes(data)
        # As an edition stored before the rule, or another system, might hand it over.
        risky.append(
            Attachment.model_construct(
                title=f"文件{name}",
                path=folder / name,
                sha256=hashlib.sha256(data).hexdigest(),
                checked=False,
            )
        )
    body = "见[名单](名单.pdf)和[网页](page.html)。"
    deliver(channel, prepared("housing-1", body=body, attachments=(good, *risky)))
    item = channel.root / "items" / "housing-1"
    published = sorted(p.name for p in item.rglob("*") if p.is_file())
    assert published == ["index.html", "index.html", "名单.pdf", "名单.pdf"]
    html = (item / "index.html").read_text("utf-8")
    hrefs = links(html)
    assert "%E5%90%8D%E5%8D%95.pdf" in hrefs
    for name in ACTIVE:
        assert f"文件{name}" in html  # listed, so the reader knows it exists
        assert not [h for h in hrefs if name.lower() in unquote(h).lower()], name
    assert "不在网站上提供" in html
    assert broken_links(channel.root) == []
