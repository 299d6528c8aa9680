"""Where each page of the site goes, and the guard that keeps every path inside it.

Layout (relative to ``out_dir``)::

    index.html                       the section's home: latest items, the indexes
    search.html, search/index.js     client-side search and its index
    items/<id>/index.html            the current edition (a stable address)
    items/<id>/<attachment>          its attachments, beside it (bodies link them so)
    items/<id>/e<N>/index.html       edition N as it was published, with its attachments
    openness/<key>/index.html        an index; page-2.html … for older items
    domain/<key>/  unit/<slug>/  township/<slug>/
    feeds/all.xml, feeds/<domain>.xml    Atom
    sitemap.xml, data/items.json     for machines
    static/…                         CSS, JavaScript and the logo: nothing is fetched elsewhere

Every link is relative, so the folder works from any address prefix the real portal
gives it, and straight from the disk.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import quote

from gongkai.errors import PermanentError
from gongkai.item import active_type

#: Names an attachment may not take in an item's folder: the pages themselves.
_RESERVED = re.compile(r"^(index\.html|e[0-9]+)$", re.IGNORECASE)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def slug(text: str) -> str:
    """A stable ASCII folder name for a Chinese unit or township name: file systems,
    sync tools and old web servers disagree about non-ASCII names."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def scope_folder(kind: str, key: str) -> str:
    return f"{kind}/{key if kind in ('openness', 'domain') else slug(key)}"


def index_page(kind: str, key: str, page: int) -> str:
    name = "index.html" if page == 1 else f"page-{page}.html"
    return f"{scope_folder(kind, key)}/{name}"


def item_page(item_id: str, edition: int | None = None) -> str:
    folder = f"items/{item_id}"
    return f"{folder}/index.html" if edition is None else f"{folder}/e{edition}/index.html"


def attachment_name(filename: str, sha256: str) -> str:
    """The file name an attachment is published under. A name that could climb out of
    the folder, hide itself, or take a page's place gets a name made from its hash."""
    if (
        not filename
        or filename in (".", "..")
        or filename.startswith(".")
        or _UNSAFE.search(filename)
        or _RESERVED.match(filename)
        or len(filename.encode("utf-8")) > 200
    ):
        suffix = re.sub(r"[^A-Za-z0-9]", "", os.path.splitext(filename)[1])[:10]
        return f"file-{sha256[:16]}" + (f".{suffix}" if suffix else "")
    return filename


def published_name(attachment: dict[str, object]) -> str | None:
    """The name an attachment of a record is published and linked under, or None for
    a type a browser would run (intake refuses those; one may still arrive from an
    older edition or another system, and is then listed but never put on the site)."""
    name = attachment.get("href")
    if not isinstance(name, str) or active_type(str(attachment["filename"])) is not None:
        return None
    return name


def inside(root: Path, relative: str) -> Path:
    """``root / relative``, refusing anything that would leave ``root``: an item id
    or attachment name with ``..``, an absolute path or a separator it should not
    have. The names are checked before this too; this is the last word."""
    if os.path.isabs(relative) or "\\" in relative or "\x00" in relative:
        raise PermanentError(f"refused to write outside the portal folder: {relative!r}")
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise PermanentError(f"refused to write outside the portal folder: {relative!r}")
    target = root.joinpath(*parts)
    resolved_root = os.path.realpath(root)
    if os.path.commonpath([resolved_root, os.path.realpath(target)]) != resolved_root:
        raise PermanentError(f"refused to write outside the portal folder: {relative!r}")
    return target


def href(relative: str) -> str:
    """``relative`` as it goes into an address: each path segment percent-encoded, so
    a file named "名单 #2.pdf", "%41.pdf" or " 附件.pdf" is fetched as itself and not
    cut at "#" or decoded into another name. Every link, feed and sitemap entry the
    site writes goes through here; file names on disk stay as they are."""
    return "/".join(quote(part, safe="") for part in relative.split("/"))


def up(relative: str) -> str:
    """The prefix from a page back to the site root ("../../" for items/x/index.html)."""
    return "../" * relative.count("/")
