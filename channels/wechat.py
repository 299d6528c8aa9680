"""The ``wechat`` channel: each edition as an article on the WeChat Official Account.

Publishing takes WeChat's steps (docs/wechat.md has the whole story)::

    stable_token → material/add_material (the domain's cover, once) → draft/add
      → checkpoint(media_id) → freepublish/submit → checkpoint(publish_id)
      → receipt "publishing" → freepublish/get on later runs → delivered | failed

Configure::

    [channels.wechat]
    appid = "wx1234567890abcdef"
    secret = { env = "GONGKAI_WECHAT_SECRET" }
    content_source_url_template = "https://www.jintang.gov.cn/gk/{id}.html"
    on_edit = "new-article-delete-old"

WeChat cannot edit a published article. A new edition becomes a new article that
opens with a 更正 note linking the old one; ``on_edit`` says whether the old article is
then deleted (the default) or left up.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import re
import threading
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from gongkai.channel import Channel, PreparedItem, Receipt, Rendition
from gongkai.errors import (
    DeliveryError,
    OutcomeUnknown,
    PermanentError,
    TransientError,
)
from gongkai.fileio import write_atomic
from gongkai.html import escape_text, render_body
from gongkai.http import new_session
from gongkai.ledger import AttemptRecord
from gongkai.plugins.hookspecs import hookimpl

from .wechat_api import DEFAULT_SECRET_SOURCE as SECRET_SOURCE
from .wechat_api import INVALID_MEDIA, WeChatAPI, WeChatError, json_body

#: WeChat's own limits on one article (draft/add).
TITLE_MAX, AUTHOR_MAX, DIGEST_MAX = 32, 16, 128
CONTENT_MAX_CHARS, CONTENT_MAX_BYTES = 20_000, 1024 * 1024
THUMB_MAX_BYTES = 64 * 1024
COVERS = Path(__file__).with_name("data") / "covers"
#: The catalogue domains with a shipped cover, read once so that render stays pure.
SHIPPED_COVERS = frozenset(p.stem for p in COVERS.glob("*.jpg"))
JPEG_MAGIC = b"\xff\xd8\xff"
DEFAULT_DOMAIN = "general"
#: Placeholders in a rendition that only sending can fill in.
COVER_PLACEHOLDER = "<media_id of the {domain} cover, uploaded when sending>"
CORRECTION_PLACEHOLDER = "<address of the article this edition corrects>"
#: How far back lookups page (20 a page): a lost draft or publish job is recent.
LOOKUP_PAGES = 5
#: What a publish job's final status means (freepublish/get).
JOB_FAILURES = {
    2: "原创声明失败 / the original-content claim failed",
    3: "常规失败 / publishing failed",
    4: "平台审核不通过 / WeChat's review rejected it",
}
REMOVED = {
    5: "removed on WeChat: the account deleted the article after it was published (5)",
    6: "removed on WeChat: WeChat banned the article after it was published (6)",
}
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


class WeChatChannel(Channel):
    """Publishes each edition as a WeChat Official Account article (draft, then publish)."""

    name = "wechat"
    mode = "online"
    # draft/add and freepublish/submit take no idempotency key: a blind resend makes a
    # second draft or a second article. But every step's id is saved with checkpoint()
    # before the next, and reconcile looks the article up (freepublish/batchget, by the
    # edition's mark in its text) when a submit's answer was lost. So a delivery whose
    # outcome is unknown is settled by looking, never by resending: "lookup".
    guarantee = "lookup"
    #: The simulator `gongkai sandbox` serves for this channel (base_url = "sandbox").
    sandbox: ClassVar[str] = "wechat"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        #: The API's base; "sandbox" means the simulator gongkai starts in-process.
        base_url: str = Field(default="https://api.weixin.qq.com", pattern=r"^(https?://|sandbox$)")
        #: Both required, except with base_url = "sandbox", whose simulator knows its
        #: own app (wx0000sandbox000000 / sandbox-secret-0123456789).
        appid: str | None = Field(default=None, pattern=r"^wx[0-9A-Za-z]{14,30}$")
        secret: SecretStr | None = None
        #: 作者 (at most 16 characters); default: the item's publisher when it fits.
        author: str | None = Field(default=None, max_length=AUTHOR_MAX)
        #: Catalogue domain → a JPG of at most 64 KB replacing the shipped cover.
        covers: dict[str, Path] = {}
        on_edit: Literal["new-article-delete-old", "new-article-keep-old"] = (
            "new-article-delete-old"
        )
        #: 阅读原文: the item's page on the portal; {id}, {edition}, {index_number}.
        content_source_url_template: str | None = None
        #: A token is renewed this many seconds before WeChat says it expires.
        token_margin: float = Field(default=300.0, ge=0)
        #: After a submit whose answer was lost, how long the article is looked for
        #: among the published ones before the same draft is submitted again.
        lost_submit_wait: float = Field(default=6 * 3600.0, ge=0)

        @model_validator(mode="after")
        def _credentials(self) -> WeChatChannel.Config:
            if self.base_url != "sandbox" and (self.appid is None or self.secret is None):
                raise ValueError(
                    'needs appid and secret = { env = "GONGKAI_WECHAT_SECRET" } (the '
                    'Official Account\'s AppID and AppSecret), or base_url = "sandbox"'
                )
            return self

    def __init__(self, config, context) -> None:
        if config.appid is None or config.secret is None:
            # Only a sandbox config gets here without them (the Config checks).
            from gongkai.sandbox.wechat import DEFAULT_APPID, DEFAULT_SECRET

            config = config.model_copy(
                update={"appid": DEFAULT_APPID, "secret": SecretStr(DEFAULT_SECRET)}
            )
        super().__init__(config, context)
        variable = context.secret_env.get("secret")
        self.api = WeChatAPI(
            base_url=config.base_url,
            appid=config.appid,
            secret=config.secret.get_secret_value(),
            session=new_session(context),
            clock=context.clock,
            margin=config.token_margin,
            secret_source=f"the environment variable {variable}" if variable else SECRET_SOURCE,
        )
        self._covers = CoverCache(
            context.state_dir / "wechat" / f"{context.name}-covers.json",
            account=f"{config.base_url}|{config.appid}",
        )

    def check(self) -> None:
        """Fetch an access token (stable_token): only an answer with one is a pass.
        Refused credentials raise an AuthError saying what to fix (the appid, the
        environment variable holding the AppSecret, the IP allow-list); a busy or
        silent WeChat raises "could not check", a TransientError: that says nothing
        about the credentials, so a run goes on and each delivery meets WeChat itself."""
        try:
            self.api.token()
        except (TransientError, OutcomeUnknown) as exc:
            exc.args = (f"could not check ({exc}; try again later)",)
            raise

    def refresh_auth(self) -> None:
        self.api.drop_token()

    # --- render: pure -------------------------------------------------------------------

    def render(self, item: PreparedItem) -> Rendition:
        domain = _domain(item, self.config.covers)
        body_html = render_body(item.body, item.attachments)
        content = self._content(item, body_html)
        article = {
            "title": item.title,
            "author": self._author(item),
            "digest": _digest(body_html),
            "content": content,
            "content_source_url": self._source_url(item),
            "thumb_media_id": COVER_PLACEHOLDER.format(domain=domain),
            # A disclosure is not a discussion: comments are off.
            "need_open_comment": 0,
            "only_fans_can_comment": 0,
        }
        return Rendition(
            media_type="application/json",
            # Exactly the bytes draft/add is sent, once sending fills in the placeholders.
            body=json_body({"articles": [article]}),
            data={
                "endpoint": f"{self.config.base_url}/cgi-bin/draft/add?access_token=**********",
                "cover": domain,
                "refused": _refusals(article),
            },
        )

    def _content(self, item: PreparedItem, body_html: str) -> str:
        facts = [("发布机构", item.publisher)]
        if item.document_number:
            facts.append(("文号", item.document_number))
        formed = item.formed_on
        facts.append(("成文日期", f"{formed.year}年{formed.month}月{formed.day}日"))
        if item.index_number:
            facts.append(("索引号", item.index_number))
        header = "".join(f"<p>{k}：{escape_text(v)}</p>" for k, v in facts)
        parts = [f"<section>{header}</section>"]
        if item.edition > 1:
            parts.append(_correction_note(CORRECTION_PLACEHOLDER))
        parts.append(body_html)
        parts.append(f"<p>{_mark(item)}</p>")
        return "".join(parts)

    def _author(self, item: PreparedItem) -> str:
        if self.config.author is not None:
            return self.config.author
        return item.publisher if len(item.publisher) <= AUTHOR_MAX else ""

    def _source_url(self, item: PreparedItem) -> str:
        template = self.config.content_source_url_template
        if not template:
            return ""
        return template.format(
            id=item.id, edition=item.edition, index_number=item.index_number or ""
        )

    # --- deliver: draft, checkpoint, publish ------------------------------------------------

    def deliver(self, item: PreparedItem, rendition: Rendition, previous: Receipt | None):
        refused = rendition.data.get("refused") or []
        if refused:
            raise PermanentError("; ".join(refused))
        saved = self.resumed()
        edit = saved.get("edit")
        if edit is None:
            edit = self._edit(previous)
            if edit:
                # Kept for reconcile, which is not told the previous receipt.
                self.checkpoint(edit=edit)
        if saved.get("publish_id"):
            # The job was accepted before an interruption: follow it, submit nothing.
            return self._publishing(saved["media_id"], saved["publish_id"], edit)
        payload = json.loads(rendition.body)
        article = payload["articles"][0]
        article["content"] = _fill_correction(article["content"], edit.get("corrects"))
        media_id = saved.get("media_id")
        if not media_id:
            media_id = self._draft(item, article, lost=bool(saved.get("drafting")))
        self.checkpoint(submitting=True)
        try:
            answer = self.api.call("freepublish/submit", {"media_id": media_id})
        except OutcomeUnknown:
            # The job may exist. Look before giving up on this run: a job that finished
            # at once is listed already. Not listed, reconcile looks again later.
            found = self._look(self._find_published, item)
            if found is None:
                raise
            return self._finished({"media_id": media_id, **edit}, *found)
        except DeliveryError as exc:
            if isinstance(exc, WeChatError) and exc.errcode == INVALID_MEDIA:
                # The draft is gone (deleted in the console): the next try makes another.
                self.checkpoint(media_id=None, drafting=False, submitting=False)
                raise PermanentError(
                    f"{exc}; the saved draft no longer exists on WeChat, run "
                    f"`gongkai retry {item.id}` to make a new one"
                ) from None
            self.checkpoint(submitting=False)
            raise
        publish_id = str(answer.get("publish_id") or "")
        if not publish_id:
            raise TransientError("WeChat freepublish/submit: the answer carries no publish_id")
        self.checkpoint(publish_id=publish_id)
        return self._publishing(media_id, publish_id, edit)

    def _edit(self, previous: Receipt | None) -> dict[str, Any]:
        """What a new edition does about the article(s) of earlier ones: the note it
        carries, and which old articles stay online (a withdrawal takes those down)."""
        earlier = list(previous.data.get("older_articles") or []) if previous else []
        old = _replaced(previous)
        if old and self.config.on_edit == "new-article-keep-old":
            earlier.append(old["article_id"])
        edit: dict[str, Any] = {}
        if old:
            edit.update(corrects=old, on_edit=self.config.on_edit)
        if earlier:
            edit["older_articles"] = earlier
        return edit

    def _draft(self, item: PreparedItem, article: dict[str, Any], *, lost: bool) -> str:
        """The draft's media_id: made now, or found when an earlier try's answer was lost."""
        if lost:
            found = self._find_draft(item)
            if found:
                self.checkpoint(media_id=found, drafting=False)
                return found
        domain = _domain(item, self.config.covers)
        article["thumb_media_id"] = self._cover(domain)
        self.checkpoint(drafting=True)
        try:
            answer = self.api.call("draft/add", {"articles": [article]})
        except OutcomeUnknown:
            # The draft may exist: look for it now, and if it is not there (yet), the
            # next try looks again before making one.
            found = self._look(self._find_draft, item)
            if found is None:
                raise
            answer = {"media_id": found}
        except DeliveryError as exc:
            self.checkpoint(drafting=False)
            if isinstance(exc, WeChatError) and exc.errcode == INVALID_MEDIA:
                # The cover was deleted from the account's library: upload it again.
                self._covers.forget(domain, self._cover_file(domain))
                raise TransientError(f"{exc}; the cover is uploaded again") from None
            raise
        media_id = str(answer.get("media_id") or "")
        if not media_id:
            raise TransientError("WeChat draft/add: the answer carries no media_id")
        self.checkpoint(media_id=media_id, drafting=False)
        return media_id

    def _look(self, find, item: PreparedItem):
        """A lookup after a lost answer; a lookup that fails itself finds nothing."""
        try:
            return find(item)
        except DeliveryError:
            return None

    def _publishing(self, media_id: str, publish_id: str, edit: dict[str, Any]) -> Receipt:
        return Receipt(
            status="publishing", data={"media_id": media_id, "publish_id": publish_id, **edit}
        )

    # --- the cover ------------------------------------------------------------------------

    def _cover_file(self, domain: str) -> Path:
        return self.config.covers.get(domain) or COVERS / f"{domain}.jpg"

    def _cover(self, domain: str) -> str:
        path = self._cover_file(domain)
        try:
            image = path.read_bytes()
        except OSError as exc:
            raise PermanentError(
                f"cannot read the cover {path} ({exc.strerror}); fix [channels.wechat] covers"
            ) from None
        is_jpg = image.startswith(JPEG_MAGIC)
        if len(image) > THUMB_MAX_BYTES or not is_jpg:
            what = f"{len(image):,} bytes" + ("" if is_jpg else ", not a JPG")
            raise PermanentError(
                f"the cover {path} must be a JPG of at most 64 KB for WeChat ({what}); "
                "fix [channels.wechat] covers"
            )

        def upload() -> str:
            answer = self.api.call(
                "material/add_material",
                params={"type": "thumb"},
                files={"media": (f"{domain}.jpg", image, "image/jpeg")},
                repeat_safe=True,  # a second copy of a cover publishes nothing
            )
            media_id = str(answer.get("media_id") or "")
            if not media_id:
                raise TransientError("WeChat material/add_material: no media_id in the answer")
            return media_id

        return self._covers.get(domain, image, upload)

    # --- remote jobs and lookups ------------------------------------------------------------

    def poll(self, receipt: Receipt) -> Receipt:
        publish_id = receipt.data.get("publish_id")
        if not publish_id:
            raise PermanentError("the receipt carries no publish_id to ask WeChat about")
        answer = self.api.call("freepublish/get", {"publish_id": publish_id}, repeat_safe=True)
        status = answer.get("publish_status")
        if status == 1:
            return receipt
        if status == 0:
            items = (answer.get("article_detail") or {}).get("item") or []
            url = items[0].get("article_url") if items else None
            return self._finished(receipt.data, str(answer.get("article_id") or ""), url)
        if status in JOB_FAILURES:
            failed = answer.get("fail_idx") or []
            which = f" (article {', '.join(map(str, failed))})" if failed else ""
            raise PermanentError(
                f"WeChat did not publish it: {JOB_FAILURES[status]}{which} "
                f"(publish_status {status}); change the item and publish a new edition, or "
                "read the reason in the 公众平台 console (发表记录)"
            )
        if status in REMOVED:
            raise PermanentError(REMOVED[status] + "; publish a new edition to put it back")
        raise TransientError(f"WeChat freepublish/get: unknown publish_status {status!r}")

    def _finished(self, data: dict[str, Any], article_id: str, url: str | None) -> Receipt:
        """The receipt of a published article; the article it corrects is taken down
        now if ``on_edit`` says so."""
        data = {**data, "article_id": article_id}
        old = data.get("corrects")
        if old and data.get("on_edit", self.config.on_edit) == "new-article-delete-old":
            data["old_article"] = self._delete_old(old["article_id"])
        elif old:
            data["old_article"] = "kept"
        return Receipt(status="delivered", external_id=article_id or None, url=url, data=data)

    def _delete_old(self, article_id: str) -> str:
        """Take down the article a new edition corrects, now that the new one is up."""
        try:
            self._delete(article_id)
        except PermanentError as exc:
            # The new article is published: that stays a success. What is left up is
            # recorded on the receipt for an operator (gongkai status ITEM --json).
            return f"left online: {exc}"
        return "deleted"

    def _delete(self, article_id: str) -> None:
        try:
            self.api.call("freepublish/delete", {"article_id": article_id, "index": 0})
        except WeChatError as exc:
            if exc.errcode not in (53600, INVALID_MEDIA):
                raise
            # WeChat no longer knows it: it is down, which is what was wanted.

    def reconcile(self, item: PreparedItem, attempt: AttemptRecord) -> Receipt | None:
        saved = self.resumed()
        edit = saved.get("edit") or {}
        if saved.get("publish_id"):
            # Accepted: poll decides between published and failed.
            return self._publishing(saved.get("media_id") or "", saved["publish_id"], edit)
        if not saved.get("submitting"):
            # No publish job was asked for: deliver goes on from the saved draft (or
            # finds the draft a lost draft/add made) and submits it once.
            return None
        found = self._find_published(item)
        if found is not None:
            return self._finished({"media_id": saved.get("media_id"), **edit}, *found)
        lost_at = attempt.finished_at if attempt is not None else None
        waited = (self.context.clock() - lost_at).total_seconds() if lost_at else 0.0
        if waited >= self.config.lost_submit_wait:
            # WeChat finishes a publish job within minutes. Hours later and still not
            # published, the job failed or was never accepted (the lost answer was a
            # refusal): submitting the same draft again cannot make a second article.
            return None
        raise OutcomeUnknown(
            "the answer to freepublish/submit was lost and the article is not among the "
            "published ones yet: WeChat may still be publishing it; runs look again, and "
            f"submit the same draft again {self.config.lost_submit_wait / 3600:g} h after "
            f"the lost answer. To submit it sooner, run `gongkai retry --unknown {item.id}`"
        )

    def _find_draft(self, item: PreparedItem) -> str | None:
        for entry in self._pages("draft/batchget"):
            if _is_this_edition(entry.get("content", {}).get("news_item") or [], item):
                return str(entry.get("media_id") or "") or None
        return None

    def _find_published(self, item: PreparedItem) -> tuple[str, str | None] | None:
        for entry in self._pages("freepublish/batchget"):
            news = entry.get("content", {}).get("news_item") or []
            if _is_this_edition(news, item):
                return str(entry.get("article_id") or ""), news[0].get("url")
        return None

    def _pages(self, endpoint: str):
        for page in range(LOOKUP_PAGES):
            answer = self.api.call(
                endpoint, {"offset": page * 20, "count": 20, "no_content": 0}, repeat_safe=True
            )
            entries = answer.get("item") or []
            yield from entries
            if len(entries) < 20:
                return

    # --- withdraw ---------------------------------------------------------------------------

    def withdraw(self, item: PreparedItem, receipt: Receipt, reason: str) -> Receipt:
        article_id = receipt.data.get("article_id") or receipt.external_id
        publish_id = receipt.data.get("publish_id") or self.resumed().get("publish_id")
        if not article_id and publish_id:
            answer = self.api.call("freepublish/get", {"publish_id": publish_id}, repeat_safe=True)
            if answer.get("publish_status") == 1:
                raise TransientError("WeChat is still publishing it; the take-down waits for it")
            article_id = answer.get("article_id") if answer.get("publish_status") == 0 else None
        if not article_id and not publish_id:
            found = self._find_published(item)
            article_id = found[0] if found else None
        for older in receipt.data.get("older_articles") or []:
            self._delete(older)
        if article_id:
            self._delete(str(article_id))
        return receipt.model_copy(update={"status": "withdrawn"})


class CoverCache:
    """The media_id of each domain's cover on one account, kept in a small JSON file
    so a cover is uploaded once, not once per item or per run. A changed cover file
    (another sha256) is uploaded again."""

    def __init__(self, path: Path, account: str) -> None:
        self.path = path
        self.account = account
        self._lock = threading.Lock()

    def _key(self, domain: str, image: bytes) -> str:
        digest = hashlib.sha256(image).hexdigest()[:16]
        return f"{self.account}|{domain}|{digest}"

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, domain: str, image: bytes, upload) -> str:
        key = self._key(domain, image)
        # Held through the upload, so that concurrent deliveries upload a cover once.
        with self._lock:
            known = self._read()
            if key in known:
                return known[key]
            media_id = upload()
            known[key] = media_id
            # Only a cache: if it cannot be written, the cover is uploaded again next run.
            with contextlib.suppress(OSError):
                write_atomic(self.path, json.dumps(known, indent=1).encode("utf-8"))
            return media_id

    def forget(self, domain: str, path: Path) -> None:
        try:
            key = self._key(domain, path.read_bytes())
        except OSError:
            return
        with self._lock:
            known = self._read()
            if known.pop(key, None) is not None:
                write_atomic(self.path, json.dumps(known, indent=1).encode("utf-8"))


# --- helpers -----------------------------------------------------------------------------


def _domain(item: PreparedItem, covers: dict[str, Path]) -> str:
    # Catalogue keys begin with their domain (land.compensation-notice); a domain with
    # no cover of its own gets the general one.
    domain = item.catalog.split(".", 1)[0]
    return domain if domain in covers or domain in SHIPPED_COVERS else DEFAULT_DOMAIN


def _mark(item: PreparedItem) -> str:
    """The edition's mark in the article: readers compare it with the notice board,
    and lookups find the article by it."""
    return f"第{item.edition}版 · 校验码 {item.short_hash}"


def _is_this_edition(news: list[dict[str, Any]], item: PreparedItem) -> bool:
    if not news:
        return False
    first = news[0]
    content = first.get("content") or ""
    return (
        first.get("title") == item.title
        and _mark(item) in content
        and (not item.index_number or escape_text(item.index_number) in content)
    )


def _correction_note(url: str) -> str:
    link = escape_text(url)
    return f'<p><strong>本文为更正版，原文：<a href="{link}">{link}</a></strong></p>'


def _replaced(previous: Receipt | None) -> dict[str, str] | None:
    if previous is None:
        return None
    article_id = previous.data.get("article_id") or previous.external_id
    if not article_id:
        return None
    return {"article_id": str(article_id), "url": previous.url or ""}


def _fill_correction(content: str, old: dict[str, str] | None) -> str:
    placeholder = _correction_note(CORRECTION_PLACEHOLDER)
    if placeholder not in content:
        return content
    if old is None:
        # Nothing of this item is on WeChat (the earlier edition never went out here).
        return content.replace(placeholder, "")
    if not old["url"]:
        return content.replace(placeholder, "<p><strong>本文为更正版。</strong></p>")
    return content.replace(placeholder, _correction_note(old["url"]))


def _digest(content: str) -> str:
    text = _SPACE.sub(" ", html.unescape(_TAGS.sub(" ", content))).strip()
    return text if len(text) <= DIGEST_MAX else text[: DIGEST_MAX - 1] + "…"


def _refusals(article: dict[str, Any]) -> list[str]:
    """What WeChat would refuse, said before anything is sent, with the fix."""
    problems = []
    title = article["title"]
    if len(title) > TITLE_MAX:
        problems.append(
            f"the title has {len(title)} characters and WeChat takes at most {TITLE_MAX}; "
            "shorten the item's title, or skip the wechat channel for this item "
            '(channels = { skip = ["wechat"] })'
        )
    content = article["content"]
    # Room for the 更正 note's link, which replaces its placeholder when sending.
    if len(content) >= CONTENT_MAX_CHARS - 200 or len(content.encode()) >= CONTENT_MAX_BYTES - 600:
        problems.append(
            f"the article has {len(content):,} characters of HTML and WeChat takes under "
            f"{CONTENT_MAX_CHARS:,}; publish the long list as an attachment on the portal "
            "and link it with content_source_url_template, or skip the wechat channel"
        )
    if "<img" in content:
        problems.append(
            "the body shows an image, and WeChat shows only images uploaded to the account, "
            "which this channel does not do; remove the image from the body (keep it as an "
            "attachment) or skip the wechat channel for this item"
        )
    return problems


@hookimpl
def gongkai_register_channels():
    return [WeChatChannel]
