"""The portal channel: the example site's pages, links, editions, withdrawal, feeds,
sitemap and JSON listing; incremental builds; hostile items; template overrides;
``gongkai preview``."""

from __future__ import annotations

import hashlib
import json
import urllib.request
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import pytest

from gongkai import Publisher
from gongkai.channel import ChannelContext, PreparedItem
from gongkai.channels.portal import PortalChannel
from gongkai.cli import main
from gongkai.cli_preview import serve, site_folder
from gongkai.errors import PermanentError, UsageError
from gongkai.item import Attachment
from gongkai.testing import ChannelContract
from support.portal_site import (
    EDITED,
    INTERPRETATION,
    RELEASE,
    WITH_TABLE,
    WITHDRAWAL_REASON,
    WITHDRAWN,
    build_example_site,
    settings,
)

SITE_URL = "https://www.jintang.gov.cn/zwgk/"


class TestPortalContract(ChannelContract):
    channel_class = PortalChannel


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build_example_site(tmp_path_factory.mktemp("portal"))


def page(site, path: str) -> str:
    return (site.out / path).read_text("utf-8")


class _Page(HTMLParser):
    """Tags with their attributes, the metadata table as a dict, and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.metadata: dict[str, str] = {}
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._header: str | None = None
        self._in_metadata = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "table" and ("class", "metadata") in attrs:
            self._in_metadata = True
        if self._in_metadata and tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_metadata = False
        if self._cell is not None and tag in ("th", "td"):
            value = "".join(self._cell).strip()
            if tag == "th":
                self._header = value
            elif self._header is not None:
                self.metadata[self._header] = value
                self._header = None
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> _Page:
    parsed = _Page()
    parsed.feed(html)
    return parsed


def links(html: str) -> list[str]:
    return [a["href"] for tag, a in parse(html).tags if tag == "a" and a.get("href")]


# --- the example site ------------------------------------------------------------------


def test_item_page_shows_every_metadata_field(site):
    meta = parse(page(site, f"items/{RELEASE}/index.html")).metadata
    assert meta["索引号"].startswith("11510121009087532X/2026-")
    assert meta["名称"] == "金堂县2027年度农村危房改造实施方案"
    assert meta["发布机构"] == "金堂县城乡建设局"
    assert meta["文号"] == "金建发〔2026〕41号"
    assert meta["成文日期"] == "2026-11-23"
    assert meta["发布日期"] == "2026-11-28 10:00"  # Beijing time, always visible
    assert meta["主题分类"] == "农村危房改造"
    assert meta["五公开"] == "决策公开"
    assert meta["公开方式"] == "主动公开"
    assert meta["公开范围"] == "全社会"
    assert meta["有效性"] == "有效"


def test_body_tables_are_real_tables_and_masked(site):
    html = page(site, f"items/{WITH_TABLE}/index.html")
    tags = [tag for tag, _ in parse(html).tags]
    assert tags.count("table") == 2  # the metadata and the body's list
    assert "<th>户主</th>" in html
    assert "510121194801251981" not in html  # prepared (masked) text only
    assert "510121********1981" in html


def test_attachments_are_published_with_size_and_sha256(site):
    item = "jt-2026-land-0102"
    html = page(site, f"items/{item}/index.html")
    published = site.out / "items" / item / "huayuan-compensation-standards.csv"
    digest = hashlib.sha256(published.read_bytes()).hexdigest()
    assert digest in html
    assert "huayuan-compensation-standards.csv" in links(html)
    size = published.stat().st_size
    assert f"{size} 字节" in html or f"{size / 1024:.1f} KB" in html
    # The edition's own copy, for its archived page.
    assert (site.out / "items" / item / "e1" / published.name).read_bytes() == (
        published.read_bytes()
    )


def test_interpretation_and_release_link_each_other(site):
    release = page(site, f"items/{RELEASE}/index.html")
    interpretation = page(site, f"items/{INTERPRETATION}/index.html")
    assert f"../../items/{INTERPRETATION}/index.html" in links(release)
    assert f"../../items/{RELEASE}/index.html" in links(interpretation)
    response = page(site, "items/jt-2026-education-0801/index.html")
    assert "../../items/jt-2026-education-0803/index.html" in links(response)


def _related(site, item_id: str) -> list[str]:
    html = page(site, f"items/{item_id}/index.html")
    section = html[
        html.index('<section class="related"') : html.index(
            "</section>", html.index('<section class="related"')
        )
    ]
    return ["".join(parse(li).text).strip() for li in section.split("<li>")[1:]]


def _title(site, item_id: str) -> str:
    return parse(page(site, f"items/{item_id}/index.html")).metadata["名称"]


def test_related_links_say_what_the_other_item_is_and_show_its_title(site):
    land_notice, land_pre = "jt-2026-land-0102", "jt-2026-land-0101"
    education, answer = "jt-2026-education-0801", "jt-2026-education-0803"
    assert _related(site, RELEASE) == [f"政策解读：{_title(site, INTERPRETATION)}"]
    assert _related(site, INTERPRETATION) == [f"解读的文件：{_title(site, RELEASE)}"]
    assert _related(site, education) == [f"回应关切：{_title(site, answer)}"]
    assert _related(site, answer) == [f"回应的信息：{_title(site, education)}"]
    # A release naming another release: related both ways, never called a 发布 of it.
    assert _related(site, land_notice) == [f"相关信息：{_title(site, land_pre)}"]
    assert _related(site, land_pre) == [f"相关信息：{_title(site, land_notice)}"]


def test_an_edited_item_keeps_its_address_and_its_earlier_edition(site):
    current = page(site, f"items/{EDITED}/index.html")
    first = page(site, f"items/{EDITED}/e1/index.html")
    second = page(site, f"items/{EDITED}/e2/index.html")
    assert "18平方米" in current and "16平方米" not in current
    assert "16平方米" in first and "18平方米" not in first
    assert parse(current).metadata["版本"] == "第2版"
    # The history on the current page: both editions with dates, the first linked.
    assert f"../../items/{EDITED}/e1/index.html" in links(current)
    assert "2026-11-28 10:00" in current and "2026-11-29 13:00" in current
    # The earlier edition says it is not current and links to the stable address.
    assert "不是现行版本" in first and "../index.html" in links(first)
    assert parse(first).metadata["有效性"] == "已被新版本替代"
    assert "不是现行版本" not in second


def test_a_withdrawn_item_shows_the_notice_with_reason_and_date(site):
    html = page(site, f"items/{WITHDRAWN}/index.html")
    text = "".join(parse(html).text)
    assert "本信息已撤回" in text
    assert WITHDRAWAL_REASON in text
    assert "撤回日期：2026-11-30" in text
    assert parse(html).metadata["有效性"] == "已撤回"
    assert "中标候选人" in text  # the title and metadata stay; the text does not
    assert "article-body" not in html
    for edition_page in (site.out / "items" / WITHDRAWN).rglob("index.html"):
        assert "本信息已撤回" in edition_page.read_text("utf-8")
    # Dropped from every list, feed and search; the JSON listing says why.
    for path in ["index.html", "openness/result/index.html", "feeds/all.xml", "sitemap.xml"]:
        assert WITHDRAWN not in page(site, path), path
    assert WITHDRAWN not in page(site, "search/index.js")
    listed = {i["id"]: i for i in json.loads(page(site, "data/items.json"))["items"]}
    assert listed[WITHDRAWN]["withdrawn"]["reason"] == WITHDRAWAL_REASON


def test_a_withdrawn_item_has_no_current_version(tmp_path):
    channel = make_channel(tmp_path)
    deliver(channel, prepared("housing-1", 1, body="第一版。"))
    item = prepared("housing-1", 2, body="第二版。")
    receipt = deliver(channel, item)
    channel.withdraw(item, receipt, "政策已废止")
    for path in (channel.root / "items/housing-1").rglob("index.html"):
        html = path.read_text("utf-8")
        assert "现行版本" not in html, path
        history = html[html.index('<section class="history"') :]
        entries = [
            "".join(parse(li).text).split("内容校验码")[0].strip()
            for li in history.split("<li>")[1:]
        ]
        assert entries[0].startswith("第2版") and entries[0].endswith("（已撤回）"), entries
        assert entries[1].startswith("第1版") and "（" not in entries[1], entries


def test_a_withdrawn_related_item_is_marked_on_the_pages_linking_it(tmp_path):
    channel = make_channel(tmp_path)
    deliver(channel, prepared("release-1"))
    deliver(channel, prepared("release-2"))
    first = prepared("explain-1", kind="interpretation", related=("release-1",))
    receipt = deliver(channel, first)
    deliver(channel, prepared("explain-2", kind="interpretation", related=("release-2",)))
    channel.withdraw(first, receipt, "解读有误")
    channel.withdraw(prepared("release-2"), receipt, "政策已废止")
    release = (channel.root / "items/release-1/index.html").read_text("utf-8")
    assert "政策解读：金堂县公共租赁住房申请指南explain-1（已撤回）" in "".join(parse(release).text)
    explain = (channel.root / "items/explain-2/index.html").read_text("utf-8")
    assert "解读的文件：金堂县公共租赁住房申请指南release-2（已撤回）" in "".join(
        parse(explain).text
    )


def test_same_second_items_come_out_in_one_order_whatever_the_delivery_order(tmp_path):
    def build(folder: str, order: list[str]) -> dict[str, bytes]:
        context = ChannelContext(name="portal", state_dir=tmp_path / folder, clock=lambda: START)
        channel = PortalChannel(PortalChannel.Config(page_size=2), context)
        for item_id in order:
            deliver(
                channel, prepared(item_id, related=("housing-b",) if item_id != "housing-b" else ())
            )
        return {
            p.relative_to(channel.root).as_posix(): p.read_bytes()
            for p in channel.root.rglob("*")
            if p.is_file()
        }

    ids = ["housing-b", "housing-d", "housing-a", "housing-c"]
    first = build("one", ids)
    assert build("two", list(reversed(ids))) == first
    # Newest first is (发布日期, id) reversed: with one second for all, by id descending.
    home = first["index.html"].decode("utf-8")
    listed = [h.split("/")[-2] for h in links(home) if h.startswith("items/")]
    assert listed == ["housing-d", "housing-c", "housing-b", "housing-a"]
    assert "housing-d" in first["domain/housing/index.html"].decode("utf-8")
    assert "housing-a" in first["domain/housing/page-2.html"].decode("utf-8")
    feed = feedparser.parse(first["feeds/all.xml"])
    assert [e.link.split("/")[-2] for e in feed.entries] == listed
    # Items naming one release: oldest first, by id when they share the second.
    release = first["items/housing-b/index.html"].decode("utf-8")
    related = [h.split("/")[-2] for h in links(release) if "/items/" in h and "housing-b" not in h]
    assert related == ["housing-a", "housing-c", "housing-d"]


def test_home_and_indexes_list_items_newest_first_with_dates(site):
    home = page(site, "index.html")
    assert "最新信息" in home
    times = [a["datetime"] for tag, a in parse(home).tags if tag == "time"]
    assert times == sorted(times, reverse=True) and len(times) >= 10
    for path in [
        "openness/decision/index.html",
        "domain/dilapidated/index.html",
        f"township/{_slug('五凤镇')}/index.html",
        f"unit/{_slug('金堂县建设局')}/index.html",
    ]:
        assert (site.out / path).is_file(), path
    assert WITH_TABLE in page(site, f"township/{_slug('五凤镇')}/index.html")
    assert "../../openness/decision/index.html" in links(page(site, f"items/{RELEASE}/index.html"))


def _slug(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def test_atom_feeds_parse_with_the_right_entries(site):
    listed = json.loads(page(site, "data/items.json"))["items"]
    published = [i for i in listed if not i["withdrawn"]]
    feed = feedparser.parse(page(site, "feeds/all.xml"))
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "政府信息公开 - 金堂县人民政府"
    assert [e.link for e in feed.entries] == [SITE_URL + i["url"] for i in published]
    titles = {e.title for e in feed.entries}
    assert "金堂县2027年度农村危房改造实施方案" in titles
    entry = next(e for e in feed.entries if e.title == "金堂县公共租赁住房申请指南")
    assert entry.updated_parsed > entry.published_parsed  # the second edition
    assert "18平方米" in entry.content[0].value
    domain = feedparser.parse(page(site, "feeds/dilapidated.xml"))
    assert not domain.bozo
    assert {e.link.split("/")[-2] for e in domain.entries} == {
        RELEASE,
        WITH_TABLE,
    }


def test_sitemap_lists_home_indexes_and_items(site):
    tree = ET.fromstring(page(site, "sitemap.xml"))
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    urls = [u.findtext("s:loc", namespaces=ns) for u in tree.findall("s:url", ns)]
    assert urls[0] == SITE_URL + "index.html"
    assert SITE_URL + f"items/{RELEASE}/index.html" in urls
    assert SITE_URL + "domain/land/index.html" in urls
    assert all(u.startswith(SITE_URL) for u in urls)


def test_json_listing_has_metadata_and_edition_hashes(site):
    data = json.loads(page(site, "data/items.json"))
    items = {i["id"]: i for i in data["items"]}
    assert len(items) == 18  # 19 examples, one still scheduled
    edited = items[EDITED]
    assert [e["edition"] for e in edited["editions"]] == [1, 2]
    assert edited["content_hash"] == edited["editions"][-1]["content_hash"]
    assert edited["editions"][0]["content_hash"] != edited["content_hash"]
    assert edited["editions"][0]["url"] == f"items/{EDITED}/e1/index.html"
    release = items[RELEASE]
    assert release["document_number"] == "金建发〔2026〕41号"
    assert release["domain_label"] == "农村危房改造"
    with Publisher(settings(site.root), load_entry_points=False, sends=False) as publisher:
        history = publisher.history(EDITED)
    ledger_hashes = {e.content_hash for e in history.editions}
    assert {e["content_hash"] for e in edited["editions"]} == ledger_hashes


def test_pages_need_nothing_from_outside(site):
    for html_file in site.out.rglob("*.html"):
        for tag, attrs in parse(html_file.read_text("utf-8")).tags:
            if tag in ("script", "link", "img"):
                value = attrs.get("href" if tag == "link" else "src") or ""
                assert value and "://" not in value and not value.startswith("//"), (tag, value)
        assert 'lang="zh-CN"' in html_file.read_text("utf-8")


def test_gongkai_channels_shows_where_the_site_is(site):
    with Publisher(settings(site.root), load_entry_points=False, sends=False) as publisher:
        rows = {r["name"]: r for r in publisher.describe_channels()}
    assert rows["portal"]["config"]["out_dir"] == str(site.state / "portal")


def test_preview_serves_the_built_site(site):
    with Publisher(settings(site.root), load_entry_points=False, sends=False) as publisher:
        name, folder = site_folder(publisher, None)
    assert (name, folder) == ("portal", site.out)
    server = serve(folder, 0)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/items/{RELEASE}/index.html"
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert "金建发〔2026〕41号" in answer.read().decode("utf-8")
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def test_preview_without_a_portal_says_what_to_do(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[gongkai]\nstate_dir = "state"\n[channels.archive]\nevery_item = true\n')
    with Publisher.from_config(config, sends=False) as publisher, pytest.raises(UsageError) as exc:
        site_folder(publisher, None)
    assert "[channels.portal]" in str(exc.value)
    assert main(["preview", "-c", str(config)]) == 2


# --- one channel, driven directly -------------------------------------------------------

START = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def make_channel(tmp_path: Path, **config) -> PortalChannel:
    context = ChannelContext(name="portal", state_dir=tmp_path / "state", clock=Clock())
    return PortalChannel(PortalChannel.Config(**config), context)


def prepared(item_id: str, edition: int = 1, **changes) -> PreparedItem:
    data = {
        "id": item_id,
        "catalog": "housing.policy",
        "title": f"金堂县公共租赁住房申请指南{item_id}",
        "body": "申请条件：在本县有稳定工作。",
        "publisher": "金堂县房产管理局",
        "formed_on": date(2026, 11, 20),
        "index_number": "11510121009087532X/2026-00001",
        "edition": edition,
        "content_hash": hashlib.sha256(f"{item_id}{edition}".encode()).hexdigest(),
    }
    data.update(changes)
    return PreparedItem(**data)


def deliver(channel: PortalChannel, item: PreparedItem):
    return channel.deliver(item, channel.render(item), None)


def test_an_incremental_build_writes_only_what_the_change_touches(tmp_path):
    channel = make_channel(tmp_path, page_size=5)
    with channel.batch():
        for n in range(12):
            deliver(channel, prepared(f"housing-{n:02}"))
        for n in range(6):
            deliver(channel, prepared(f"land-{n:02}", catalog="land.pre-announcement"))
    site = channel.site
    assert (channel.root / "domain/housing/page-3.html").is_file()
    site.reset_report()
    deliver(channel, prepared("land-new", catalog="land.pre-announcement", area="五凤镇金箱村"))
    written = set(site.written)
    assert {
        "items/land-new/index.html",
        "items/land-new/e1/index.html",
        "domain/land/index.html",
        "domain/land/page-2.html",
        f"township/{_slug('五凤镇')}/index.html",
        "index.html",
        "feeds/all.xml",
        "feeds/land.xml",
        "sitemap.xml",
        "data/items.json",
        "search/index.js",
    } <= written
    # Nothing of the other domain, nor any other item's page.
    assert not [p for p in written if p.startswith(("domain/housing", "feeds/housing"))]
    assert not [p for p in written if p.startswith("items/") and "land-new" not in p]
    # The same edition again (a resend after a crash) changes no file.
    site.reset_report()
    deliver(channel, prepared("land-new", catalog="land.pre-announcement", area="五凤镇金箱村"))
    assert site.written == []


def test_an_older_edition_never_replaces_the_current_page(tmp_path):
    channel = make_channel(tmp_path)
    deliver(channel, prepared("housing-1", 2, body="第二版的内容。"))
    deliver(channel, prepared("housing-1", 1, body="第一版的内容。"))
    current = (channel.root / "items/housing-1/index.html").read_text("utf-8")
    assert "第二版的内容" in current
    assert "第一版的内容" in (channel.root / "items/housing-1/e1/index.html").read_text("utf-8")


def test_pagination_splits_large_indexes(tmp_path):
    channel = make_channel(tmp_path, page_size=3)
    with channel.batch():
        for n in range(7):
            deliver(channel, prepared(f"housing-{n}"))
    first = (channel.root / "domain/housing/index.html").read_text("utf-8")
    assert "page-2.html" in links(first) and "page-3.html" in links(first)
    assert not (channel.root / "domain/housing/page-4.html").exists()
    # Newest first: the last delivered leads page one.
    assert first.index("housing-6") < first.index("housing-5")
    assert "housing-0" in (channel.root / "domain/housing/page-3.html").read_text("utf-8")


def test_withdrawal_removes_files_and_shrinks_indexes(tmp_path, monkeypatch):
    channel = make_channel(tmp_path, page_size=1)
    attachment = tmp_path / "名单.csv"
    attachment.write_text("a,b\n", "utf-8")
    digest = hashlib.sha256(attachment.read_bytes()).hexdigest()
    item = prepared(
        "housing-1", attachments=(Attachment(title="名单", path=attachment, sha256=digest),)
    )
    receipt = deliver(channel, item)
    deliver(channel, prepared("housing-2"))
    assert (channel.root / "domain/housing/page-2.html").exists()
    channel.withdraw(item, receipt, "信息有误")
    assert not (channel.root / "items/housing-1/名单.csv").exists()
    assert not (channel.root / "items/housing-1/e1/名单.csv").exists()
    assert not (channel.root / "domain/housing/page-2.html").exists()
    assert "信息有误" in (channel.root / "items/housing-1/index.html").read_text("utf-8")
    # Again, as core may after a crash: harmless.
    assert channel.withdraw(item, receipt, "信息有误").status == "withdrawn"


def test_reconcile_finds_this_edition_only(tmp_path):
    channel = make_channel(tmp_path)
    item = prepared("housing-1")
    assert channel.reconcile(item, None) is None
    deliver(channel, item)
    assert channel.reconcile(item, None).external_id == "housing-1/e1"
    other = prepared("housing-1", content_hash="f" * 64)
    assert channel.reconcile(other, None) is None


# --- safety ------------------------------------------------------------------------------

HOSTILE_BODY = """<script>alert(1)</script>

<img src="x" onerror="alert(2)">

[点我](javascript:alert(3)) <a href="JaVaScRiPt:alert(4)" onclick="alert(5)">链接</a>

<iframe src="https://evil.example/"></iframe><svg onload="alert(6)"></svg>

| 姓名 | 备注 |
|---|---|
| 张* | <b onmouseover="alert(7)">x</b> |
"""


def _assert_safe(html: str, root: Path) -> None:
    for tag, attrs in parse(html).tags:
        assert tag not in ("iframe", "svg", "object", "embed"), tag
        if tag == "script":
            assert attrs.get("src", "").endswith(("static/portal.js", "search/index.js"))
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert "javascript:" not in (value or "").lower(), (tag, name, value)


def test_hostile_items_produce_safe_pages(tmp_path):
    channel = make_channel(tmp_path)
    item = prepared(
        "hostile-1",
        title='<script>alert("t")</script>" onmouseover="x',
        body=HOSTILE_BODY,
        document_number="<img src=x onerror=alert(8)>",
        keywords=("<b>", '"><script>alert(9)</script>'),
        contact="javascript:alert(10)",
    )
    deliver(channel, item)
    for html_file in channel.root.rglob("*.html"):
        _assert_safe(html_file.read_text("utf-8"), channel.root)
    current = (channel.root / "items/hostile-1/index.html").read_text("utf-8")
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in current
    assert "<script>alert" not in (channel.root / "search/index.js").read_text("utf-8").replace(
        "<\\/", "<"
    ) or "<\\/script>" in (channel.root / "search/index.js").read_text("utf-8")
    feed = (channel.root / "feeds/all.xml").read_text("utf-8")
    assert "<script>" not in feed  # escaped inside the Atom content
    assert not feedparser.parse(feed).bozo


@pytest.mark.parametrize("item_id", ["../../evil", "a/../../evil", "/etc/evil", "..", "a\\..\\b"])
def test_an_item_id_cannot_leave_the_site(tmp_path, item_id):
    channel = make_channel(tmp_path)
    item = PreparedItem.model_construct(**prepared("ok").__dict__ | {"id": item_id})
    with pytest.raises(PermanentError, match="outside the portal folder"):
        deliver(channel, item)
    written = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert not [p for p in (tmp_path).rglob("*") if "evil" in p.name]
    assert "index.html" not in written or (channel.root / "index.html").exists()


@pytest.mark.parametrize(
    "name",
    ["dir/..", "..\\..\\evil.csv", "index.html", "e1", ".htaccess", "a:b.csv", "名单.csv"],
)
def test_attachment_names_stay_inside_the_item_folder(tmp_path, name):
    channel = make_channel(tmp_path)
    source = tmp_path / "source.csv"
    source.write_bytes(b"x,y\n")
    digest = hashlib.sha256(b"x,y\n").hexdigest()
    # model_construct: the file name as another system might hand it over.
    attachment = Attachment.model_construct(title="附件", path=Path("/data") / name, sha256=digest)
    attachment = _Renamed(attachment, name, source)
    item = PreparedItem.model_construct(
        **prepared("housing-1").__dict__ | {"attachments": (attachment,)}
    )
    deliver(channel, item)
    folder = channel.root / "items" / "housing-1"
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes() == b"x,y\n"]
    published = [p for p in files if p != source]
    if name == "index.html":  # a type a browser runs: listed, never put on the site
        assert published == []
    else:
        assert published and all(p.parent in (folder, folder / "e1") for p in published)
    assert (folder / "index.html").read_text("utf-8").count("<html") == 1
    if name == "名单.csv":
        assert (folder / "名单.csv").is_file()


class _Renamed:
    """An attachment whose published file name is anything at all."""

    def __init__(self, attachment: Attachment, name: str, source: Path) -> None:
        self.title = attachment.title
        self.sha256 = attachment.sha256
        self.path = source
        self.filename = name
        self.checked = False

    def public(self) -> dict[str, str]:
        return {"title": self.title, "filename": self.filename, "sha256": self.sha256}


# --- templates and config ------------------------------------------------------------------


def test_an_operator_template_overrides_the_shipped_one(tmp_path):
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "home.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1>本县专栏 {{ section }}</h1>'
        '{% include "item_list.html" %}{% endblock %}',
        "utf-8",
    )
    channel = make_channel(tmp_path, templates=overrides, host="金堂县人民政府办公室")
    deliver(channel, prepared("housing-1"))
    home = (channel.root / "index.html").read_text("utf-8")
    assert "本县专栏 政府信息公开" in home
    assert "主办单位：金堂县人民政府办公室" in home  # the shipped base still frames it
    assert "items/housing-1/index.html" in home


def test_site_name_codes_logo_and_footer_come_from_config(tmp_path):
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG\r\n\x1a\n")
    channel = make_channel(
        tmp_path,
        site_name="金堂县人民政府网",
        org_code="11510121009087532X",
        site_code="5101210001",
        icp="蜀ICP备05005431号",
        police_record="川公网安备 51012102000123号",
        logo=logo,
        footer=("联系电话：028-84932000",),
    )
    deliver(channel, prepared("housing-1"))
    home = (channel.root / "index.html").read_text("utf-8")
    for text in ["金堂县人民政府网", "11510121009087532X", "5101210001", "蜀ICP备05005431号"]:
        assert text in home
    assert "川公网安备 51012102000123号" in home and "联系电话：028-84932000" in home
    assert (channel.root / "static/logo.png").read_bytes() == logo.read_bytes()


def test_render_is_the_article_without_io_side_effects(tmp_path):
    channel = make_channel(tmp_path)
    item = prepared("housing-1", document_number="金房发〔2026〕3号")
    first = channel.render(item)
    assert first == channel.render(item)
    assert "金房发〔2026〕3号" in first.body and first.media_type == "text/html"
    assert not channel.root.exists()
