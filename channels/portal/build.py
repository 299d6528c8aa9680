"""Writing the site: only the files a change touches, each replaced atomically.

A delivery writes its item's pages at once, then marks what else it touched: the
pages of items that link to it, the indexes it left or joined, the feeds. Those are
rebuilt from the site index by whichever delivery holds the build; deliveries that
arrive meanwhile only add to the list, so a run of a thousand items rebuilds each
index a few times, not a thousand. When the last delivery of a run returns, nothing
is left unbuilt. A file is only replaced when its bytes change, and the report of
the last build says which files were.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gongkai.fileio import write_atomic
from gongkai.item import OPENNESS_LABELS

from .feeds import listing_json, search_index, sitemap
from .pages import Pages, body_html
from .paths import index_page, inside, item_page
from .site_index import Entry, SiteIndex

try:  # POSIX: two runs building into one folder take turns
    import fcntl
except ImportError:  # pragma: no cover - Windows: threads of one run still take turns
    fcntl = None  # type: ignore[assignment]

Scope = tuple[str, str]
#: Rebuilt after any change: they list every item, or the latest ones.
EVERYWHERE: frozenset[Scope] = frozenset(
    {("home", ""), ("search", ""), ("feed", ""), ("sitemap", ""), ("listing", "")}
)


class Site:
    """The built site under ``root``, and what is left to rebuild."""

    def __init__(
        self,
        root: Path,
        index: SiteIndex,
        pages: Pages,
        *,
        page_size: int = 20,
        latest: int = 20,
        feed_size: int = 50,
        lock_file: Path | None = None,
    ) -> None:
        self.root = root
        self.index = index
        self.pages = pages
        self.page_size = page_size
        self.latest = latest
        self.feed_size = feed_size
        self.lock_file = lock_file
        #: Relative paths written (changed) since ``reset_report``.
        self.written: list[str] = []
        self._dirty: set[Scope] = set()
        self._dirty_lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._held = 0

    # --- files ------------------------------------------------------------------------

    def path(self, relative: str) -> Path:
        return inside(self.root, relative)

    def write(self, relative: str, data: str | bytes) -> bool:
        """Replace the file if its content changes; whether it did."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        target = self.path(relative)
        with contextlib.suppress(OSError):
            if target.stat().st_size == len(raw) and target.read_bytes() == raw:
                return False
        write_atomic(target, raw)
        self.written.append(relative)
        return True

    def remove(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(relative).unlink()
            self.written.append(relative)

    def reset_report(self) -> None:
        self.written = []

    # --- marking and building -----------------------------------------------------------

    def touched(self, scopes: set[Scope]) -> None:
        """Mark pages as out of date, then build whatever is marked, unless another
        thread is building (it will pick these up) or a batch holds the build."""
        with self._dirty_lock:
            self._dirty |= scopes | EVERYWHERE
        self.settle()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Deliveries inside build nothing beyond their own pages; the rest is built
        once at the end (a first build of a large site)."""
        with self._dirty_lock:
            self._held += 1
        try:
            yield
        finally:
            with self._dirty_lock:
                self._held -= 1
            self.settle()

    def settle(self) -> None:
        while True:
            with self._dirty_lock:
                if self._held or not self._dirty:
                    return
            if not self._build_lock.acquire(blocking=False):
                return  # the thread building now re-checks the marks when it is done
            try:
                with self._across_processes():
                    while True:
                        with self._dirty_lock:
                            todo, self._dirty = self._dirty, set()
                        if not todo:
                            break
                        self._build(todo)
            finally:
                self._build_lock.release()

    @contextlib.contextmanager
    def _across_processes(self) -> Iterator[None]:
        if fcntl is None or self.lock_file is None:
            yield
            return
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _build(self, todo: set[Scope]) -> None:
        # One read of the record per build: every index and feed is a filter of it.
        everything = self.index.all()
        listed = [e for e in everything if not e.withdrawn]
        for kind, key in sorted(todo):
            if kind == "item":
                entry = self.index.get(key, history=True)
                if entry is not None:
                    self.write_current(entry)
            elif kind in ("openness", "domain", "unit", "township"):
                self._index(kind, key, [e for e in listed if getattr(e, kind) == key])
            elif kind == "feed-domain":
                self._feed(
                    f"{self.pages.site.facet_label(kind, key)} - {self.pages.site.name}",
                    f"feeds/{key}.xml",
                    index_page("domain", key, 1),
                    [e for e in listed if e.domain == key][: self.feed_size],
                )
        if todo & EVERYWHERE:
            self._everywhere(todo, everything, listed)

    def _everywhere(self, todo: set[Scope], everything: list[Entry], listed: list[Entry]) -> None:
        facets = {
            kind: sorted({getattr(e, kind) for e in listed} - {""})
            for kind in ("openness", "domain", "unit", "township")
        }
        if ("home", "") in todo:
            self.write("index.html", self.pages.home(listed[: self.latest], facets))
            # Every page's menu links all five 五公开 indexes: one with no item yet
            # (or none left) says so rather than answering 404.
            for key in sorted(OPENNESS_LABELS.keys() - set(facets["openness"])):
                self._index("openness", key, [])
        if ("search", "") in todo:
            self.write("search.html", self.pages.search(facets))
            self.write("search/index.js", search_index(listed))
        if ("feed", "") in todo:
            self._feed(
                f"{self.pages.site.section} - {self.pages.site.name}",
                "feeds/all.xml",
                "index.html",
                listed[: self.feed_size],
            )
        if ("sitemap", "") in todo:
            self.write("sitemap.xml", sitemap(self.pages.site.url, listed, facets, self.page_size))
        if ("listing", "") in todo:
            self.write("data/items.json", listing_json(self.pages.site, everything))

    def _index(self, kind: str, key: str, entries: list[Entry]) -> None:
        pages = max(1, math.ceil(len(entries) / self.page_size))
        feed = f"feeds/{key}.xml" if kind == "domain" else None
        for number in range(1, pages + 1):
            chunk = entries[(number - 1) * self.page_size : number * self.page_size]
            self.write(
                index_page(kind, key, number),
                self.pages.listing(kind, key, chunk, number, pages, len(entries), feed),
            )
        # Pages an index no longer fills (items withdrawn) go, so no stale list stays.
        number = pages + 1
        while self.path(index_page(kind, key, number)).exists():
            self.remove(index_page(kind, key, number))
            number += 1

    def _feed(self, title: str, path: str, html_path: str, entries: list[Entry]) -> None:
        self.write(path, self.pages.feed(title, path, html_path, entries, _feed_body))

    # --- item pages -------------------------------------------------------------------

    def write_current(self, entry: Entry) -> None:
        """The page at the item's stable address: its current edition, or the
        withdrawal notice."""
        release, responses = self.index.linked(entry.id)
        page = item_page(entry.id)
        self.write(page, self.pages.item(entry, page, release=release, responses=responses))

    def write_edition(self, entry: Entry, edition: dict[str, Any]) -> None:
        page = item_page(entry.id, edition["edition"])
        archived = None if edition["edition"] == entry.edition else edition["delivered_at"]
        self.write(
            page,
            self.pages.item(entry, page, record=edition["record"], archived=archived),
        )


def _feed_body(entry: Entry) -> str:
    return body_html(entry.record)
