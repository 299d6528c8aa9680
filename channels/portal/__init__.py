"""The ``portal`` channel: the county portal's 政府信息公开 section as a static site.

Each delivered edition becomes a page at a stable address (``items/<id>/index.html``)
with its metadata table, body, attachments, links to its release or interpretations
and its edition history; earlier editions stay readable under ``e<N>/``. Indexes (by
五公开 category, domain, responsible unit and township), Atom feeds, ``sitemap.xml``,
a JSON listing and a client-side search are rebuilt for what each change touches.
The folder is served by any web server, synced into the real portal, or looked at
first with ``gongkai preview``. See docs/portal.md.

The channel keeps its own record of what it published (``site_index``), since a
channel never sees the ledger: pages are built from that record, so a page that
lists an interpretation published later can be rebuilt without the release's files.

Guarantee ``upsert``: every file an edition writes has a name the item id and edition
decide, and is replaced whole, so sending an edition again leaves the same site.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from gongkai.catalogue import Catalogue
from gongkai.channel import Channel, PreparedItem, Receipt, Rendition
from gongkai.errors import PermanentError, TransientError
from gongkai.item import CST
from gongkai.ledger import AttemptRecord
from gongkai.plugins.hookspecs import hookimpl

from .build import Site
from .pages import Pages, SiteInfo
from .paths import item_page, published_name
from .records import make_entry
from .site_index import Entry, SiteIndex

_STATIC = Path(__file__).parent / "static"


class PortalChannel(Channel):
    """Builds the portal's 政府信息公开 pages as a static site in ``out_dir``."""

    name = "portal"
    mode = "online"
    guarantee = "upsert"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        #: Where the site is built; a relative path is under the state directory.
        out_dir: Path = Field(default=Path("portal"), validate_default=True)
        #: The address the folder is served at, for feeds and the sitemap (which need
        #: whole URLs). Pages link relatively and work at any address.
        site_url: str = "http://127.0.0.1:8000/"
        site_name: str = "金堂县人民政府"
        section: str = "政府信息公开"
        #: 统一社会信用代码 shown in the footer (index numbers come from [gongkai]).
        org_code: str | None = None
        #: 网站标识码 of the government site.
        site_code: str | None = None
        #: 主办单位, and the ICP and 公安 filing texts, shown in the footer.
        host: str | None = None
        icp: str | None = None
        police_record: str | None = None
        footer: tuple[str, ...] = ()
        #: A logo image (PNG, SVG, …) copied into the site.
        logo: Path | None = None
        #: A folder of templates that replace the shipped ones of the same name.
        templates: Path | None = None
        page_size: int = Field(default=20, ge=1, le=500)
        latest: int = Field(default=20, ge=1, le=500)
        feed_size: int = Field(default=50, ge=1, le=1000)

        @field_validator("site_url")
        @classmethod
        def _slash(cls, value: str) -> str:
            if not value.startswith(("http://", "https://")):
                raise ValueError("must be an http:// or https:// address")
            return value if value.endswith("/") else value + "/"

        @field_validator("out_dir")
        @classmethod
        def _under_state(cls, value: Path, info: ValidationInfo) -> Path:
            # Resolved at load when core says where the state is, so `gongkai channels`
            # shows the folder the site is really written to.
            state_dir = (info.context or {}).get("state_dir")
            if state_dir is not None and not value.is_absolute():
                return Path(state_dir) / value
            return value

    # --- parts ------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        path = self.config.out_dir
        return path if path.is_absolute() else self.context.state_dir / path

    def preview_dir(self) -> Path | None:
        return self.root

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue.load(self.context.catalogue)

    @cached_property
    def pages(self) -> Pages:
        c = self.config
        logo = f"logo{c.logo.suffix.lower()}" if c.logo else None
        site = SiteInfo(
            name=c.site_name,
            section=c.section,
            url=c.site_url,
            org_code=c.org_code or self.context.org_code,
            site_code=c.site_code,
            host=c.host,
            icp=c.icp,
            police_record=c.police_record,
            logo=logo,
            footer=c.footer,
            domains=self.catalogue.domains,
        )
        return Pages(site, c.templates)

    @cached_property
    def site(self) -> Site:
        state = self.context.state_dir / "portal-site"
        return Site(
            self.root,
            SiteIndex(state / f"{self.context.name}.sqlite3"),
            self.pages,
            page_size=self.config.page_size,
            latest=self.config.latest,
            feed_size=self.config.feed_size,
            lock_file=state / f"{self.context.name}.lock",
        )

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Deliver many items, building indexes and feeds once at the end."""
        with self.site.batch():
            yield

    # --- the contract -----------------------------------------------------------------

    def render(self, item: PreparedItem) -> Rendition:
        entry = make_entry(item, self.catalogue, _sizes(item))
        return Rendition(
            media_type="text/html",
            body=self.pages.article(entry.record),
            data={"path": item_page(item.id)},
        )

    def deliver(self, item: PreparedItem, rendition: Rendition, previous: Receipt | None):
        site = self.site
        entry = make_entry(item, self.catalogue, _sizes(item))
        now = self.context.clock().astimezone(CST).replace(microsecond=0).isoformat()
        try:
            files = self._attachments(item, entry)
            before, current = site.index.record(entry, item.content_hash, now)
            stored = site.index.get(item.id, history=True)
            assert stored is not None
            # Every edition page: the new one, and the earlier ones now say they are
            # not current and list the new edition in their history.
            for edition in stored.editions:
                site.write_edition(stored, edition)
            for name, data in files.items():
                site.write(f"items/{item.id}/e{item.edition}/{name}", data)
            if current:
                folder = f"items/{item.id}"
                for name, data in files.items():
                    site.write(f"{folder}/{name}", data)
                if before is not None:
                    for old in before.record["attachments"]:
                        name = published_name(old)
                        if name is not None and name not in files:
                            site.remove(f"{folder}/{name}")
                site.write_current(stored)
        except OSError as exc:
            # A full disk or a busy network share may clear; core retries.
            raise TransientError(f"cannot write the portal site ({exc.strerror})") from exc
        unchanged = (
            before is not None and before.edition == entry.edition and before.record == entry.record
        )
        if current and not unchanged:  # a resend of the same edition touches nothing else
            touched = stored.scopes() | (before.scopes() if before else set())
            # Pages linking to this item show its title; they follow a change.
            touched |= {("item", i) for i in site.index.neighbours(item.id, item.related)}
            if before is not None:
                touched |= {("item", i) for i in before.record.get("related", ())}
            touched.discard(("item", item.id))
            site.touched(touched)
        return self._receipt(item)

    def withdraw(self, item: PreparedItem, receipt: Receipt, reason: str) -> Receipt:
        site = self.site
        when = self.context.clock().astimezone(CST).replace(microsecond=0).isoformat()
        entry = site.index.withdraw(item.id, reason, when)
        if entry is None:
            return receipt.model_copy(update={"status": "withdrawn"})  # never published
        entry.editions = site.index.editions(item.id)
        try:
            folder = f"items/{item.id}"
            # The text and files go; every address it had shows the notice instead.
            for edition in entry.editions:
                for old in edition["record"]["attachments"]:
                    name = published_name(old)
                    if name is not None:
                        site.remove(f"{folder}/e{edition['edition']}/{name}")
                        site.remove(f"{folder}/{name}")
                site.write(
                    item_page(item.id, edition["edition"]),
                    self.pages.item(entry, item_page(item.id, edition["edition"])),
                )
            site.write_current(entry)
        except OSError as exc:
            raise TransientError(f"cannot write the withdrawal notice ({exc.strerror})") from exc
        # Both ways: the release of a withdrawn interpretation marks its link 已撤回 too.
        linked = site.index.neighbours(item.id, entry.record.get("related", []))
        touched = entry.scopes() | {("item", i) for i in linked}
        site.touched(touched)
        return receipt.model_copy(update={"status": "withdrawn"})

    def reconcile(self, item: PreparedItem, attempt: AttemptRecord) -> Receipt | None:
        recorded = {e["edition"]: e for e in self.site.index.editions(item.id)}
        edition = recorded.get(item.edition)
        if edition is None or edition["content_hash"] != item.content_hash:
            return None
        if not self.site.path(item_page(item.id, item.edition)).exists():
            return None
        return self._receipt(item)

    def check(self) -> None:
        root = self.root
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / ".gongkai-check"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise PermanentError(
                f"cannot write the portal folder {root} ({exc.strerror}); "
                "fix its permissions or set out_dir in [channels.portal]"
            ) from exc

    # --- helpers ----------------------------------------------------------------------

    def _attachments(self, item: PreparedItem, entry: Entry) -> dict[str, bytes]:
        """Attachment bytes by published name, checked against their sha256 in memory
        before anything is written (a file swapped since it was read never goes out)."""
        files: dict[str, bytes] = {}
        for attachment, shown in zip(item.attachments, entry.record["attachments"], strict=True):
            name = published_name(shown)
            if name is None:
                continue  # listed on the page, never put on the site
            try:
                data = attachment.path.read_bytes()
            except FileNotFoundError as exc:
                raise PermanentError(
                    f"attachment file missing: {attachment.path}; restore it"
                ) from exc
            if hashlib.sha256(data).hexdigest() != attachment.sha256:
                raise PermanentError(
                    f"attachment {attachment.filename} changed after the item was read; "
                    "publish the item again"
                )
            files[name] = data
        self._static()
        return files

    def _static(self) -> None:
        # The CSS, JavaScript and logo every page loads: written once per process,
        # replaced only when an upgrade changed them.
        if getattr(self, "_static_done", False):
            return
        for source in sorted(_STATIC.iterdir()):
            self.site.write(f"static/{source.name}", source.read_bytes())
        if self.config.logo is not None:
            try:
                logo = self.config.logo.read_bytes()
            except OSError as exc:
                raise PermanentError(
                    f"cannot read the portal logo {self.config.logo} ({exc.strerror}); "
                    "fix logo in [channels.portal]"
                ) from exc
            self.site.write(f"static/logo{self.config.logo.suffix.lower()}", logo)
        self._static_done = True

    def _receipt(self, item: PreparedItem) -> Receipt:
        page = item_page(item.id)
        return Receipt(
            external_id=f"{item.id}/e{item.edition}",
            url=self.config.site_url + page,
            artifact=os.fspath(self.root / page),
            data={"edition": item.edition},
        )


def _sizes(item: PreparedItem) -> dict[str, int]:
    sizes = {}
    for attachment in item.attachments:
        with contextlib.suppress(OSError):
            sizes[attachment.filename] = attachment.path.stat().st_size
    return sizes


@hookimpl
def gongkai_register_channels():
    return [PortalChannel]
