"""HTML and Atom from templates: Jinja2 with autoescaping, operator overrides by path.

Text from an item (title, 文号, publisher, keywords, attachment names) reaches a page
only through autoescaping; the body only through ``gongkai.html.render_body``, the one
sanitised HTML path, whose output is the single value marked safe here (its links to
attachments re-pointed at their published, percent-encoded names).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jinja2
from markupsafe import Markup

from gongkai.html import render_body
from gongkai.item import CST, OPENNESS_LABELS

from .paths import href, index_page, item_page, published_name, up
from .site_index import Entry

FACET_TITLES = {
    "openness": "按五公开分类",
    "domain": "按主题分类",
    "unit": "按责任单位",
    "township": "按乡镇（街道）",
}


@dataclass(frozen=True)
class SiteInfo:
    """What config says about the site: its name, codes and footer."""

    name: str
    section: str
    url: str
    org_code: str | None = None
    site_code: str | None = None
    host: str | None = None
    icp: str | None = None
    police_record: str | None = None
    logo: str | None = None
    footer: tuple[str, ...] = ()
    domains: dict[str, str] = field(default_factory=dict)

    def facet_label(self, kind: str, key: str) -> str:
        if kind == "openness":
            return OPENNESS_LABELS.get(key, key)
        if kind in ("domain", "feed-domain"):
            return self.domains.get(key, key)
        return key


def _local(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(CST)


def _day(value: str | None) -> str:
    return _local(value).strftime("%Y-%m-%d") if value else ""


def _minute(value: str | None) -> str:
    return _local(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _filesize(size: int) -> str:
    if size < 1024:
        return f"{size} 字节"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


#: A link or image address in the sanitiser's output (always double-quoted).
_ADDRESS = re.compile(r'(?<= )(href|src)="([^"]*)"')


def body_html(record: dict[str, Any]) -> str:
    """The item's body through the one sanitised path; links may name its attachments
    (those the site publishes: a link to a type a browser would run is dropped).

    A link to an attachment then points at the name the file is published under,
    percent-encoded: the body names "名单 #2.csv", which Markdown leaves as
    "名单%20#2.csv" (a fragment to a browser), and a name the site had to replace
    (``file-<hash>``) is not on the site at all."""
    published = {
        a["filename"]: name for a in record.get("attachments", ()) if (name := published_name(a))
    }
    body = render_body(record["body"], list(published))

    def relink(found: re.Match[str]) -> str:
        # The sanitiser let a relative address through only if it names an attachment,
        # by the same unquote; an address with a scheme is left as it is.
        name = published.get(unquote(html.unescape(found.group(2))))
        return found.group(0) if name is None else f'{found.group(1)}="{href(name)}"'

    return _ADDRESS.sub(relink, body) if published else body


def item_url(item_id: str, edition: int | None = None) -> str:
    return href(item_page(item_id, edition))


#: What an item this one names is to it, by this item's kind (解读 names the document
#: it explains, 回应 the matter it answers).
_NAMED_LABELS = {"interpretation": "解读的文件", "response": "回应的信息", "release": "相关信息"}
#: What an item naming this one is to it, by that item's kind.
_NAMING_LABELS = {"interpretation": "政策解读", "response": "回应关切", "release": "相关信息"}


def related_links(
    kind: str, named: Iterable[Entry], naming: Iterable[Entry]
) -> list[tuple[str, Entry]]:
    """The related-items list of a page: each item with what it is to this one. The
    link text is always the other item's title (its id means nothing to a reader)."""
    return [(_NAMED_LABELS.get(kind, "相关信息"), other) for other in named] + [
        (_NAMING_LABELS.get(other.record.get("kind", "release"), "相关信息"), other)
        for other in naming
    ]


class Pages:
    """Renders every kind of page. ``overrides`` is a folder whose templates, by the
    same file name, replace the shipped ones."""

    def __init__(self, site: SiteInfo, overrides: Path | None = None) -> None:
        self.site = site
        loaders: list[jinja2.BaseLoader] = []
        if overrides is not None:
            loaders.append(jinja2.FileSystemLoader(overrides))
        loaders.append(jinja2.PackageLoader("gongkai.channels.portal", "templates"))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(["html", "xml"], default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(day=_day, minute=_minute, filesize=_filesize, url=href)
        self.env.globals.update(
            site=site,
            section=site.section,
            openness_labels=OPENNESS_LABELS,
            item_url=item_url,
            published_name=published_name,
        )

    def _render(self, template: str, path: str, **values: Any) -> str:
        values.setdefault("breadcrumb", [])
        return self.env.get_template(template).render(root=up(path), **values)

    def facets(self, found: dict[str, list[str]]) -> list[tuple[str, str, list[Any]]]:
        return [
            (
                kind,
                FACET_TITLES[kind],
                [
                    (key, self.site.facet_label(kind, key), href(index_page(kind, key, 1)))
                    for key in keys
                ],
            )
            for kind, keys in found.items()
        ]

    # --- pages --------------------------------------------------------------------------

    def article(self, record: dict[str, Any], published: str | None = None) -> str:
        """The metadata table, body and attachments: what ``render`` previews."""
        return self.env.get_template("article.html").render(
            r=record, body=Markup(body_html(record)), published=published, validity="有效"
        )

    def item(
        self,
        entry: Entry,
        path: str,
        *,
        record: dict[str, Any] | None = None,
        archived: str | None = None,
        release: Iterable[Entry] = (),
        responses: Iterable[Entry] = (),
    ) -> str:
        """The current edition at the stable address, an earlier edition (``record``
        and the date it was ``archived``), or the withdrawal notice."""
        record = record or entry.record
        withdrawn = (
            {"at": entry.withdrawn_at, "reason": entry.withdrawn_reason}
            if entry.withdrawn
            else None
        )
        # A withdrawn item has no current version: its last edition is the one withdrawn.
        latest = "已撤回" if withdrawn else "现行版本"
        history = [
            {
                **e,
                "current": e["edition"] == entry.edition,
                "status": latest if e["edition"] == entry.edition else None,
            }
            for e in reversed(entry.editions)
        ]
        crumbs = [
            (record["openness_label"], href(index_page("openness", record["openness"], 1))),
            ("正文", None),
        ]
        return self._render(
            "item.html",
            path,
            breadcrumb=crumbs,
            r=record,
            item_id=entry.id,
            # A withdrawn item keeps its metadata, never its text or files.
            body=None if withdrawn else Markup(body_html(record)),
            published=entry.published_at,
            updated=entry.updated_at,
            withdrawn=withdrawn,
            validity="已撤回" if withdrawn else ("已被新版本替代" if archived else "有效"),
            archived=archived,
            history=history,
            related=related_links(record["kind"], release, responses),
        )

    def listing(
        self,
        kind: str,
        key: str,
        entries: list[Entry],
        page: int,
        pages: int,
        total: int,
        feed: str | None,
    ) -> str:
        path = index_page(kind, key, page)
        heading = f"{self.site.facet_label(kind, key)}"
        crumbs = [(FACET_TITLES[kind], None), (heading, None)]
        return self._render(
            "listing.html",
            path,
            breadcrumb=crumbs,
            heading=heading,
            entries=entries,
            page=page,
            pages=pages,
            total=total,
            feed=feed,
            page_name=lambda n: "index.html" if n == 1 else f"page-{n}.html",
        )

    def home(self, latest: list[Entry], found: dict[str, list[str]]) -> str:
        return self._render("home.html", "index.html", entries=latest, facets=self.facets(found))

    def search(self, found: dict[str, list[str]]) -> str:
        return self._render(
            "search.html",
            "search.html",
            breadcrumb=[("站内搜索", None)],
            facets=self.facets(found),
        )

    def feed(
        self,
        title: str,
        path: str,
        html_path: str,
        entries: list[Entry],
        body: Callable[[Entry], str],
    ) -> str:
        updated = max((e.updated_at for e in entries), default="2000-01-01T00:00:00+08:00")
        return self.env.get_template("feed.xml").render(
            title=title,
            path=path,
            html_path=html_path,
            entries=entries,
            updated=updated,
            body=body,
        )
