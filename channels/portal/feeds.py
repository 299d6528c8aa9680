"""Output for machines: the sitemap, the JSON listing and the search index.

Built as plain strings rather than templates: each lists every item, and a
10,000-item site rebuilds them after every change.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any
from xml.sax.saxutils import escape

from .pages import SiteInfo
from .paths import href, index_page, item_page
from .site_index import Entry


def sitemap(url: str, listed: list[Entry], facets: dict[str, list[str]], page_size: int) -> str:
    """sitemap.xml: the home, every page of every index and every published item."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    newest = listed[0].updated_at[:10] if listed else None

    def add(path: str, lastmod: str | None) -> None:
        mod = f"<lastmod>{lastmod}</lastmod>" if lastmod else ""
        lines.append(f"<url><loc>{escape(url + href(path))}</loc>{mod}</url>")

    add("index.html", newest)
    for kind, keys in facets.items():
        sizes = Counter(getattr(e, kind) for e in listed)
        for key in keys:
            for page in range(1, max(1, math.ceil(sizes[key] / page_size)) + 1):
                add(index_page(kind, key, page), newest)
    for entry in listed:
        add(item_page(entry.id), entry.updated_at[:10])
    lines.append("</urlset>")
    return "\n".join(lines) + "\n"


def _public(entry: Entry) -> dict[str, Any]:
    r = entry.record
    return {
        "id": entry.id,
        "url": href(item_page(entry.id)),
        "title": r["title"],
        "kind": r["kind"],
        "index_number": r.get("index_number"),
        "document_number": r.get("document_number"),
        "publisher": r["publisher"],
        "formed_on": r["formed_on"],
        "published_at": entry.published_at,
        "updated_at": entry.updated_at,
        "openness": entry.openness,
        "openness_label": r["openness_label"],
        "domain": entry.domain,
        "domain_label": r["domain_label"],
        "responsible_unit": entry.unit,
        "township": entry.township or None,
        "area": r.get("area"),
        "keywords": r.get("keywords", []),
        "related": r.get("related", []),
        "edition": entry.edition,
        "content_hash": r["content_hash"],
        "editions": [
            {
                "edition": e["edition"],
                "content_hash": e["content_hash"],
                "published_at": e["delivered_at"],
                "url": href(item_page(entry.id, e["edition"])),
            }
            for e in entry.editions
        ],
        "attachments": [
            {k: a[k] for k in ("title", "filename", "sha256", "size")} for a in r["attachments"]
        ],
        "withdrawn": (
            {"at": entry.withdrawn_at, "reason": entry.withdrawn_reason}
            if entry.withdrawn
            else None
        ),
    }


def listing_json(site: SiteInfo, entries: list[Entry]) -> str:
    """data/items.json: every item the portal carries or carried, newest first, with
    its metadata and the hash of each edition (a withdrawn item says when and why)."""
    data = {"site": site.name, "section": site.section, "items": [_public(e) for e in entries]}
    # Compact: indent= would take the pure-Python encoder, 10x slower on a large site.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"


def search_index(listed: list[Entry]) -> str:
    """search/index.js: what the search page matches (title, numbers, keywords),
    as one assignment so the page also works opened from the disk (file:// refuses
    fetch())."""
    items = []
    for entry in listed:
        r = entry.record
        text = " ".join(
            filter(
                None,
                [
                    r["title"],
                    r.get("document_number"),
                    r.get("index_number"),
                    *r.get("keywords", []),
                ],
            )
        )
        items.append(
            {
                "url": href(item_page(entry.id)),
                "title": r["title"],
                "date": entry.published_at[:10],
                "text": text,
            }
        )
    # "</" cannot appear in the JSON (it is escaped), so no title can end the script.
    payload = json.dumps({"items": items}, ensure_ascii=False).replace("</", "<\\/")
    return f"window.gongkaiSearch = {payload};\n"
