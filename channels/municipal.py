"""The ``platform`` channel: the municipal grassroots disclosure platform
(成都市基层公开综合服务监管平台).

The platform publishes no API documentation, so gongkai writes down the contract it
assumes (docs/municipal-platform.openapi.yaml) and takes everything that may differ
on a real platform from config: the base URL, the paths, the column (栏目) of each
catalogue entry and the field names. Two modes:

* ``rest``: an access token from an app key and secret; attachments uploaded first;
  each edition created in its column with an ``Idempotency-Key``, later editions as
  updates; withdrawal with the reason; a lookup by item id settles unknown outcomes.
* ``export``: for platforms that take file imports, each run writes an upload batch
  (a spreadsheet per column plus the attachments, see municipal_export.py) and the
  delivery waits for an operator's ``gongkai confirm``.

Configure (docs/municipal.md has every key)::

    [channels.platform]
    base_url = "https://gkpt.example.chengdu.gov.cn"      # or "sandbox"
    app_key = "jintang-county"
    app_secret = { env = "GONGKAI_MUNICIPAL_SECRET" }
    default_column = "jt-qita"
    columns = { "land.compensation-notice" = "jt-zdbc", "poverty" = "jt-shjz" }

Why the channel is named ``platform``: it is the name the catalogue routes to (DESIGN.md).
The simulator it talks to in the sandbox is ``municipal``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Literal

import requests
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from gongkai.channel import Channel, PreparedItem, Receipt, Rendition
from gongkai.errors import OutcomeUnknown, PermanentError, TransientError
from gongkai.html import render_body
from gongkai.item import AUDIENCE_LABELS, CST, KIND_LABELS, OPENNESS_LABELS, canonical_json
from gongkai.ledger import AttemptRecord
from gongkai.plugins.hookspecs import hookimpl

from .municipal_api import PlatformApi, json_body
from .municipal_export import ExportBatch, export_row, publish_date, read_attachment

#: gongkai's names for what it sends and reads; ``fields`` renames any of them.
FIELD_NAMES = frozenset(
    {
        # the article
        "external_id",
        "edition",
        "content_hash",
        "title",
        "content_html",
        "index_number",
        "publisher",
        "document_number",
        "formed_on",
        "published_on",
        "kind",
        "openness",
        "audience",
        "area",
        "keywords",
        "contact",
        "attachments",
        "file_id",
        "filename",
        "reason",
        # the token request
        "app_key",
        "app_secret",
        # the answers
        "access_token",
        "expires_in",
        "article_id",
        "url",
        "items",
        "status",
        "code",
        "message",
    }
)


class Paths(BaseModel):
    """Request paths below ``base_url``; ``{column_id}`` and ``{article_id}`` are filled in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = "/api/v1/auth/token"
    create: str = "/api/v1/columns/{column_id}/articles"
    update: str = "/api/v1/articles/{article_id}"
    withdraw: str = "/api/v1/articles/{article_id}/withdraw"
    #: Queried with ``?external_id=<item id>``.
    lookup: str = "/api/v1/articles"
    upload: str = "/api/v1/files"

    @model_validator(mode="after")
    def _placeholders(self) -> Paths:
        need = {"create": "{column_id}", "update": "{article_id}", "withdraw": "{article_id}"}
        for key, placeholder in need.items():
            if placeholder not in getattr(self, key):
                raise ValueError(f"paths.{key} must contain {placeholder}")
        for key, value in self:
            if not value.startswith("/"):
                raise ValueError(f"paths.{key} must start with '/'")
        return self


CREDENTIALS = ("base_url", "app_key", "app_secret")


class MunicipalChannel(Channel):
    """Publishes to the municipal platform over its REST API, or exports upload batches."""

    name = "platform"
    mode = "online"
    # Creates and updates carry a key the platform stores with its answer, and it keeps
    # one article per item id: a resend after a lost answer makes no second article.
    # Export mode replaces an edition's row when it is written again.
    guarantee = "idempotency-key"
    #: The simulator `base_url = "sandbox"` starts (gongkai.sandbox).
    sandbox = "municipal"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        mode: Literal["rest", "export"] = "rest"
        #: The platform's address, or "sandbox" for the simulator gongkai starts itself.
        base_url: str | None = None
        app_key: str | None = None
        app_secret: SecretStr | None = None
        paths: Paths = Paths()
        #: Catalogue key (or its domain, such as "land") → the platform's column id.
        columns: dict[str, str] = {}
        #: The column of items whose catalogue key and domain have none.
        default_column: str | None = None
        #: gongkai's field name → the platform's.
        fields: dict[str, str] = {}
        #: Export mode: where batches go (relative: under the state directory).
        export_dir: Path | None = None
        export_format: Literal["xlsx", "csv"] = "xlsx"

        @field_validator("base_url")
        @classmethod
        def _url(cls, value: str | None) -> str | None:
            if (
                value is not None
                and value != "sandbox"
                and not value.startswith(("http://", "https://"))
            ):
                raise ValueError('must start with http:// or https://, or be "sandbox"')
            return value

        @field_validator("fields")
        @classmethod
        def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
            unknown = sorted(set(value) - FIELD_NAMES)
            if unknown:
                raise ValueError(
                    f"unknown field name(s) {', '.join(unknown)}; rename only these: "
                    f"{', '.join(sorted(FIELD_NAMES))}"
                )
            return value

        @model_validator(mode="after")
        def _rest_needs_credentials(self) -> MunicipalChannel.Config:
            if self.mode == "rest":
                # The sandbox knows its own app (sandbox-app / sandbox-secret-0123456789).
                needed = ("base_url",) if self.base_url == "sandbox" else CREDENTIALS
                missing = [k for k in needed if not getattr(self, k)]
                if missing:
                    raise ValueError(
                        f"mode 'rest' needs {', '.join(missing)} (app_secret = "
                        '{ env = "GONGKAI_MUNICIPAL_SECRET" }), or set mode = "export"'
                    )
            return self

    def __init__(self, config: Any, context: Any) -> None:
        if config.mode == "rest" and not (config.app_key and config.app_secret):
            # Only a sandbox config gets here without them (the Config checks): use the
            # app the simulator knows from the start.
            from gongkai.sandbox.municipal import DEFAULT_APP_KEY, DEFAULT_APP_SECRET

            config = config.model_copy(
                update={"app_key": DEFAULT_APP_KEY, "app_secret": SecretStr(DEFAULT_APP_SECRET)}
            )
        super().__init__(config, context)
        self._api: PlatformApi | None = None
        self._batch: ExportBatch | None = None
        self._lock = threading.Lock()

    @property
    def api(self) -> PlatformApi:
        with self._lock:
            if self._api is None:
                self._api = PlatformApi(self.config, self.context)
            return self._api

    @property
    def batch(self) -> ExportBatch:
        with self._lock:
            if self._batch is None:
                root = self.config.export_dir or Path("municipal-export")
                if not root.is_absolute():
                    root = self.context.state_dir / root
                self._batch = ExportBatch(root, self.config.export_format, self.context.clock)
            return self._batch

    # --- routing ----------------------------------------------------------------------

    def column_for(self, item: PreparedItem) -> str | None:
        columns = self.config.columns
        domain = item.catalog.split(".", 1)[0]
        return columns.get(item.catalog) or columns.get(domain) or self.config.default_column

    def _column(self, item: PreparedItem) -> str:
        column = self.column_for(item)
        if column is None:
            raise PermanentError(
                f"item '{item.id}': no platform column for catalogue entry '{item.catalog}'; "
                f'add columns."{item.catalog}" = "<column id>" (or default_column) to '
                "[channels.platform] in config.toml, then run `gongkai retry`"
            )
        return column

    # --- the contract -----------------------------------------------------------------

    def render(self, item: PreparedItem) -> Rendition:
        column = self.column_for(item)
        if self.config.mode == "export":
            # The date a first edition written now would carry (an update keeps the
            # date its first edition was written with).
            published = publish_date(item, self.context.clock())
            row = export_row(item, render_body(item.body, item.attachments), published)
            return Rendition(
                media_type="application/json",
                body=canonical_json(row),
                data={"column_id": column},
            )
        return Rendition(
            media_type="application/json",
            body=canonical_json(self._article(item)),
            data={"column_id": column},
        )

    def _article(self, item: PreparedItem) -> dict[str, Any]:
        published = item.publish_at.astimezone(CST).date().isoformat() if item.publish_at else None
        article = {
            "external_id": item.id,
            "edition": item.edition,
            "content_hash": item.content_hash,
            "title": item.title,
            "content_html": render_body(item.body, item.attachments),
            "index_number": item.index_number,
            "publisher": item.publisher,
            "document_number": item.document_number,
            "formed_on": item.formed_on.isoformat(),
            # Absent: the platform dates the page the day it publishes it.
            "published_on": published,
            "kind": KIND_LABELS[item.kind],
            "openness": OPENNESS_LABELS.get(item.openness or ""),
            "audience": AUDIENCE_LABELS[item.audience],
            "area": item.area,
            "keywords": list(item.keywords),
            "contact": item.contact,
        }
        return {self.api_field(k): v for k, v in article.items()}

    def api_field(self, name: str) -> str:
        return self.config.fields.get(name, name)

    def deliver(self, item: PreparedItem, rendition: Rendition, previous: Receipt | None):
        column = self._column(item)
        if self.config.mode == "export":
            return self.batch.add(item, column, previous)
        self._ready()
        article = json.loads(rendition.body)
        article[self.api_field("attachments")] = self._upload_attachments(item)
        # Only a REST receipt names an article (an export receipt names a batch row).
        article_id = previous.data.get("article_id") if previous else None
        if article_id:
            answer = self._update(item, rendition, article, str(article_id))
            if answer is not None:
                return self._receipt(answer, column)
        return self._receipt(self._create(item, rendition, article, column), column)

    def withdraw(self, item: PreparedItem, receipt: Receipt, reason: str) -> Receipt:
        if self.config.mode == "export":
            column = receipt.data.get("column_id") or self.column_for(item)
            return self.batch.withdraw(item, receipt, reason, column)
        self._ready()
        api = self.api
        article_id = receipt.data.get("article_id") or receipt.external_id
        if not article_id:
            # The delivery's outcome was unknown: the platform has it or not.
            found = self._lookup(item)
            if not found:
                return receipt.model_copy(update={"status": "withdrawn"})
            article_id = found[0].get(api.field("article_id"))
        what = f"platform withdraw of article {article_id}"
        response = api.call(
            "POST",
            api.url("withdraw", article_id=str(article_id)),
            what,
            json={api.field("reason"): reason or "信息已撤回"},
        )
        if response.status_code != 404:  # never there, or removed: down is down
            api.raise_for(response, what)
        return receipt.model_copy(update={"status": "withdrawn", "external_id": str(article_id)})

    def reconcile(self, item: PreparedItem, attempt: AttemptRecord) -> Receipt | None:
        if self.config.mode == "export":
            # Only a crash leaves an export unknown, and this run's batch is new: the
            # row goes into it again (an earlier, unconfirmed batch may hold it too).
            return None
        self._ready()
        api = self.api
        for found in self._lookup(item):
            # The item id alone proves nothing: an older edition may be what is there.
            if (
                found.get(api.field("edition")) == item.edition
                and found.get(api.field("content_hash")) == item.content_hash
                and found.get(api.field("status"), "published") != "withdrawn"
            ):
                return self._receipt(found, found.get("column_id") or self.column_for(item))
        return None

    def check(self) -> None:
        """Fetch a token: only an answer with one is a pass. A busy or silent platform
        raises "could not check" (transient: a run goes on and each delivery meets
        the platform for itself), refused credentials an AuthError that names the
        environment variable to fix."""
        if self.config.mode == "export":
            return
        self._ready()
        try:
            self.api.token()
        except (TransientError, OutcomeUnknown) as exc:
            exc.args = (f"could not check ({exc}; try again later)",)
            raise

    def refresh_auth(self) -> None:
        if self._api is not None:
            self._api.drop_token()

    # --- REST steps -------------------------------------------------------------------

    def _ready(self) -> None:
        if self.config.base_url == "sandbox":
            raise PermanentError(
                'base_url = "sandbox" is only served inside `gongkai publish`; run '
                "`gongkai sandbox` and set base_url to the URL it prints, for other uses"
            )

    def _key(self, operation: str, item: PreparedItem, rendition: Rendition) -> str:
        # Stable for one edition and one body: every retry of this change sends the same
        # key, and a changed field mapping or column (a different body) gets a new one.
        seed = "\0".join(
            ("gongkai", operation, item.id, str(item.edition), item.content_hash, rendition.digest)
        )
        return "gongkai-" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:40]

    def _upload_attachments(self, item: PreparedItem) -> list[dict[str, str]]:
        api = self.api
        saved: dict[str, str] = dict(self.resumed().get("files") or {})
        uploaded = False
        refs = []
        for attachment in item.attachments:
            slot = f"{attachment.sha256}:{attachment.filename}"
            if slot not in saved:
                saved[slot] = self._upload(item, attachment)
                uploaded = True
            refs.append(
                {
                    api.field("file_id"): saved[slot],
                    api.field("title"): attachment.title,
                    api.field("filename"): attachment.filename,
                }
            )
        if uploaded:
            # The article body names the file ids; a retry must name the same ones, or
            # the platform would see its Idempotency-Key reused with another body.
            self.checkpoint(files=saved)
        return refs

    def _upload(self, item: PreparedItem, attachment: Any) -> str:
        api = self.api
        what = f"platform upload of {attachment.filename} (item '{item.id}')"
        data = read_attachment(attachment)
        key = hashlib.sha256(f"{attachment.sha256}\0{attachment.filename}".encode()).hexdigest()
        response = api.call(
            "POST",
            api.url("upload"),
            what,
            headers={"Idempotency-Key": f"gongkai-file-{key[:40]}"},
            files={"file": (attachment.filename, data, "application/octet-stream")},
            data={"sha256": attachment.sha256},
        )
        api.raise_for(response, what, fix="check the attachment and paths.upload")
        file_id = api.answer(response, what).get(api.field("file_id"))
        if not file_id:
            raise PermanentError(
                f"{what}: the answer has no '{api.field('file_id')}'; set fields.file_id"
            )
        return str(file_id)

    def _create(
        self, item: PreparedItem, rendition: Rendition, article: dict[str, Any], column: str
    ) -> dict[str, Any]:
        api = self.api
        what = f"platform create of '{item.id}' in column {column}"
        response = api.call(
            "POST",
            api.url("create", column_id=column),
            what,
            headers={"Idempotency-Key": self._key("create", item, rendition)},
            json=article,
        )
        if response.status_code == 409:
            code = api.error_code(response)
            if code == "idempotency_key_in_use":
                raise TransientError(f"{what}: {api.said(response)}", http_status=409)
            if code == "external_id_exists":
                # The item is there already (an earlier edition, or an answer that was
                # lost before the ledger recorded it): bring that article up to date.
                existing = json_body(response).get(api.field("article_id"))
                if not existing:
                    found = self._lookup(item)
                    existing = found[0].get(api.field("article_id")) if found else None
                if existing:
                    answer = self._update(item, rendition, article, str(existing))
                    if answer is not None:
                        return answer
        if response.status_code == 404:
            api.raise_for(
                response,
                what,
                fix=f"the platform has no column '{column}': fix columns or default_column "
                "in [channels.platform]",
            )
        if response.status_code == 403:
            raise PermanentError(
                f"{what}: {api.said(response)}; the platform does not let app key "
                f"'{self.config.app_key}' post into column '{column}': ask its administrator, "
                "or map the catalogue entry to another column",
                http_status=403,
            )
        api.raise_for(response, what, fix="fix the item (or the fields mapping) and publish again")
        return self._article_answer(response, what)

    def _update(
        self, item: PreparedItem, rendition: Rendition, article: dict[str, Any], article_id: str
    ) -> dict[str, Any] | None:
        """PUT this edition over the article; None if the platform no longer has it."""
        api = self.api
        what = f"platform update of '{item.id}' (article {article_id})"
        response = api.call(
            "PUT",
            api.url("update", article_id=article_id),
            what,
            headers={"Idempotency-Key": self._key(f"update {article_id}", item, rendition)},
            json=article,
        )
        if response.status_code == 404:
            return None  # removed on the platform: create it again
        if response.status_code == 403:
            raise PermanentError(
                f"{what}: {api.said(response)}; ask the platform's administrator "
                f"to let app key '{self.config.app_key}' edit this article",
                http_status=403,
            )
        if response.status_code == 409:
            fixes = {
                "stale_edition": "the platform holds a newer edition; an older one never "
                "replaces it: publish the item again, or check `gongkai status` for this item",
                "edition_conflict": "the platform holds this edition number with other "
                "content (was the ledger replaced?); publish the item again to make a new edition",
                "article_withdrawn": "the article was withdrawn on the platform; restore it "
                "there, or withdraw the item with `gongkai withdraw`",
            }
            code = api.error_code(response)
            if code == "idempotency_key_in_use":
                raise TransientError(f"{what}: {api.said(response)}", http_status=409)
            raise PermanentError(
                f"{what}: {api.said(response)}; " + (fixes.get(code) or "see docs/municipal.md"),
                http_status=409,
            )
        api.raise_for(response, what, fix="fix the item (or the fields mapping) and publish again")
        return self._article_answer(response, what)

    def _lookup(self, item: PreparedItem) -> list[dict[str, Any]]:
        api = self.api
        what = f"platform lookup of '{item.id}'"
        response = api.call("GET", api.url("lookup"), what, params={"external_id": item.id})
        api.raise_for(response, what, fix="check paths.lookup")
        found = api.answer(response, what).get(api.field("items"))
        if not isinstance(found, list):
            raise PermanentError(
                f"{what}: the answer has no '{api.field('items')}' list; set fields.items"
            )
        external = api.field("external_id")
        return [a for a in found if isinstance(a, dict) and a.get(external, item.id) == item.id]

    def _article_answer(self, response: requests.Response, what: str) -> dict[str, Any]:
        api = self.api
        answer = api.answer(response, what)
        if not answer.get(api.field("article_id")):
            raise PermanentError(
                f"{what}: HTTP {response.status_code} without "
                f"'{api.field('article_id')}'; set fields.article_id to the platform's name"
            )
        return answer

    def _receipt(self, answer: dict[str, Any], column: str | None) -> Receipt:
        api = self.api
        article_id = str(answer[api.field("article_id")])
        url = answer.get(api.field("url"))
        return Receipt(
            external_id=article_id,
            url=str(url) if url else None,
            data={"article_id": article_id, "column_id": column},
        )


@hookimpl
def gongkai_register_channels():
    return [MunicipalChannel]
