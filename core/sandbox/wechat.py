"""A simulator of the WeChat Official Account publishing API (公众号发布能力).

It serves, at the server's root, the endpoints gongkai's ``wechat`` channel uses, as the
official documentation describes them: the same paths, query parameters, JSON shapes,
error codes and limits, so that any client written against ``api.weixin.qq.com``
works against it unchanged.

* ``POST /cgi-bin/stable_token`` and ``GET /cgi-bin/token``: access tokens for 7200 s,
  each endpoint's apart from the other's, as WeChat keeps them.
  The sandbox knows one app from the start: appid ``wx0000sandbox000000``, secret
  ``sandbox-secret-0123456789`` (more in the state file's ``apps``).
* ``POST /cgi-bin/material/add_material?type=thumb|image``: multipart field ``media``;
  a thumb is a JPG of at most 64 KB, an image at most 10 MB; ``material/del_material``
  and ``GET material/get_materialcount``.
* ``POST /cgi-bin/media/uploadimg``: an image for an article's content (JPG or PNG, at
  most 1 MB); its URL is one that draft/add keeps in the content.
* ``POST /cgi-bin/draft/add``, ``draft/get``, ``draft/batchget``, ``draft/update``,
  ``draft/delete`` and ``GET draft/count``: drafts, with the
  article limits checked (title ≤ 32 characters, author ≤ 16, digest ≤ 128, content
  under 20,000 characters and 1 MB) and the content cleaned as WeChat does (scripts
  stripped, images not uploaded to this account dropped).
* ``POST /cgi-bin/freepublish/submit``, ``get``, ``batchget``, ``getarticle``,
  ``delete``: publish jobs and published articles.

Deterministic outcomes, chosen by a marker in the first article's title:

=====================  ============================================================
``【审核不通过】``       submit answers 53503 (the draft fails the publishing check)
``【需官网发表】``       submit answers 53504 (must be published on the web console)
``【需手动保存】``       submit answers 53505 (must be saved by hand before publishing)
``【原创失败】``         the job ends with publish_status 2 (fail_idx [1])
``【常规失败】``         the job ends with publish_status 3
``【平台审核不通过】``   the job ends with publish_status 4 (fail_idx [1])
=====================  ============================================================

Published articles can be marked as deleted by the account (publish_status 5) or
banned (6) with ``POST /sandbox/wechat/remove {"article_id": …, "publish_status": 5}``
or :meth:`WeChatSimulator.remove`. Each article is readable at its ``article_url``
(``/s/<article_id>?idx=<n>`` on the sandbox, an HTML page titled with the article's
title) until it is deleted or removed, then 404.

Faults (:class:`Faults`): every ``token_expiry_every`` API calls the live tokens die
(the call answers 42001); after ``quota_after`` API calls, the next ``quota_calls``
answer 45009, once; a publish job answers publish_status 1 for its first ``slow_jobs``
polls (``freepublish/get``), and has finished when ``freepublish/batchget`` lists the
account's publications.

For tests it keeps ``log`` (one entry per request it handled) and, in its state,
``draft_creates`` (drafts made per title and content: more than one is a duplicate)
and ``submits`` (publish jobs per draft).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import secrets
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any, ClassVar

from .base import Faults, Request, Response, Store

DEFAULT_APPID = "wx0000sandbox000000"
#: At least 16 characters, as gongkai's config asks of every secret.
DEFAULT_SECRET = "sandbox-secret-0123456789"
#: The default app's secret before secrets had to be 16 characters long.
OLD_DEFAULT_SECRET = "sandbox-secret"
TOKEN_SECONDS = 7200
#: The classic /token endpoint keeps the previous token alive this long.
OVERLAP_SECONDS = 300
THUMB_MAX_BYTES = 64 * 1024
IMAGE_MAX_BYTES = 10 * 1024 * 1024
CONTENT_IMAGE_MAX_BYTES = 1024 * 1024
TITLE_MAX, AUTHOR_MAX, DIGEST_MAX = 32, 16, 128
CONTENT_MAX_CHARS, CONTENT_MAX_BYTES = 20_000, 1024 * 1024
IMAGE_HOST = "https://mmbiz.qpic.cn/"
TOKEN_PREFIX = "sbx_"
#: Which endpoint issued a token: stable_token or the classic token.
STABLE, CLASSIC = "stable", "classic"

SUBMIT_REFUSALS: dict[str, tuple[int, str]] = {
    "【审核不通过】": (53503, "该草稿未通过发布检查"),
    "【需官网发表】": (53504, "需前往公众平台官网使用草稿"),
    "【需手动保存】": (53505, "请手动保存成功后再发表"),
}
JOB_FAILURES: dict[str, tuple[int, list[int]]] = {
    "【原创失败】": (2, [1]),
    "【常规失败】": (3, []),
    "【平台审核不通过】": (4, [1]),
}

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>|<script\b[^>]*/?>", re.I | re.S)
_IMG = re.compile(r"<img\b[^>]*>", re.I)
_SRC = re.compile(r"""\bsrc\s*=\s*["']?([^"'\s>]+)""", re.I)
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_IMAGE_MAGIC = (_JPEG_MAGIC, _PNG_MAGIC, b"GIF87a", b"GIF89a", b"BM")
#: Upload kind → (what it is called, accepted magic bytes, formats, size limit).
_PICTURES: dict[str, tuple[str, bytes | tuple[bytes, ...], str, int]] = {
    "thumb": ("a thumb", _JPEG_MAGIC, "JPG", THUMB_MAX_BYTES),
    "image": ("an image", _IMAGE_MAGIC, "JPG/PNG/GIF/BMP", IMAGE_MAX_BYTES),
    "content": ("a content image", (_JPEG_MAGIC, _PNG_MAGIC), "JPG/PNG", CONTENT_IMAGE_MAX_BYTES),
}
#: Endpoints that need an access token, and the HTTP method each takes.
_API: dict[str, str] = {
    "/cgi-bin/material/add_material": "POST",
    "/cgi-bin/material/get_materialcount": "GET",
    "/cgi-bin/material/del_material": "POST",
    "/cgi-bin/media/uploadimg": "POST",
    "/cgi-bin/draft/add": "POST",
    "/cgi-bin/draft/get": "POST",
    "/cgi-bin/draft/batchget": "POST",
    "/cgi-bin/draft/count": "GET",
    "/cgi-bin/draft/update": "POST",
    "/cgi-bin/draft/delete": "POST",
    "/cgi-bin/freepublish/submit": "POST",
    "/cgi-bin/freepublish/get": "POST",
    "/cgi-bin/freepublish/batchget": "POST",
    "/cgi-bin/freepublish/getarticle": "POST",
    "/cgi-bin/freepublish/delete": "POST",
}


#: Endpoints whose request is no JSON body (a multipart upload, or a GET).
_NO_JSON_BODY = frozenset(
    {
        "/cgi-bin/material/add_material",
        "/cgi-bin/material/get_materialcount",
        "/cgi-bin/media/uploadimg",
        "/cgi-bin/draft/count",
    }
)


def _rid() -> str:
    return secrets.token_hex(4) + "-" + secrets.token_hex(4)


def error(errcode: int, errmsg: str) -> Response:
    """A WeChat error: HTTP 200 and ``{"errcode", "errmsg"}`` with a request id hint."""
    return Response.json({"errcode": errcode, "errmsg": f"{errmsg} rid: {_rid()}"})


def ok(**data: Any) -> Response:
    return Response.json({"errcode": 0, "errmsg": "ok", **data})


def content_key(title: str, content: str) -> str:
    """What ``draft_creates`` counts drafts by: the article as it was sent."""
    return hashlib.sha256(f"{title}\n{content}".encode()).hexdigest()[:16]


def clean_content(content: str) -> str:
    """As WeChat stores an article: scripts removed, images from elsewhere dropped."""
    content = _SCRIPT.sub("", content)

    def keep(match: re.Match[str]) -> str:
        src = _SRC.search(match.group(0))
        url = src.group(1) if src else ""
        return match.group(0) if url.startswith((IMAGE_HOST, "http://mmbiz.qpic.cn/")) else ""

    return _IMG.sub(keep, content)


class WeChatSimulator:
    """The WeChat Official Account publishing API, as documented."""

    name: ClassVar[str] = "wechat"
    mount: ClassVar[str] = ""

    def __init__(self, folder: Path, faults: Faults) -> None:
        self.faults = faults
        self.store = Store(folder, "wechat")
        data = self.store.data
        data.setdefault("apps", {DEFAULT_APPID: DEFAULT_SECRET})
        if data["apps"].get(DEFAULT_APPID) == OLD_DEFAULT_SECRET:
            # A state file from an older gongkai: its default app takes today's secret.
            data["apps"][DEFAULT_APPID] = DEFAULT_SECRET
        data.setdefault("tokens", {})
        data.setdefault("materials", {})
        data.setdefault("drafts", {})
        data.setdefault("jobs", {})
        data.setdefault("articles", {})
        data.setdefault("draft_creates", {})
        data.setdefault("submits", {})
        data.setdefault("calls", 0)
        data.setdefault("quota_done", False)
        data.setdefault("next_publish_id", 2247483601)
        self.log: list[dict[str, Any]] = []
        self._lock = threading.RLock()

    # --- the server's entry ------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        with self._lock, self.store.lock:
            response = self._route(request)
            self.store.save()
        answer = _answer(response)
        entry = {"method": request.method, "path": request.path, "errcode": None}
        if answer is not None:
            entry["errcode"] = answer.get("errcode", 0)
            # What the request made, so a test can trace every draft and job to the
            # client's records even when the answer never reached the client.
            for key in ("media_id", "publish_id"):
                if key in answer and request.path.endswith(("/draft/add", "/submit")):
                    entry["created"] = answer[key]
        self.log.append(entry)
        return response

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path == "/cgi-bin/stable_token":
            return self._stable_token(request)
        if path == "/cgi-bin/token":
            return self._classic_token(request)
        if path == "/sandbox/wechat/remove" and request.method == "POST":
            body = request.json() or {}
            return self.remove(str(body.get("article_id", "")), int(body.get("publish_status", 5)))
        if path.startswith("/s/") and request.method == "GET":
            return self._article_page(path[3:], request.arg("idx"))
        if path not in _API:
            # What the real API answers for a path it does not serve.
            return error(48001, "api unauthorized")
        if request.method != _API[path]:
            return error(43002, "require POST method")
        refused = self._authorise(request.arg("access_token"))
        if refused is not None:
            return refused
        handler = getattr(self, "_" + path.removeprefix("/cgi-bin/").replace("/", "_"))
        if path in _NO_JSON_BODY:
            return handler(request)
        body = request.json()
        if not isinstance(body, dict):
            return error(47001, "data format error")
        return handler(body, request)

    # --- tokens -----------------------------------------------------------------------------

    def _credentials(self, appid: Any, secret: Any, kind: str) -> Response | None:
        apps = self.store.data["apps"]
        if not appid:
            return error(41002, "appid missing")
        if not secret:
            return error(41004, "appsecret missing")
        if appid not in apps:
            return error(40013, "invalid appid")
        if secret != apps[appid]:
            # The classic endpoint answers a wrong secret as it answers a wrong token.
            if kind == CLASSIC:
                return error(40001, "invalid credential, access_token is invalid or not latest")
            return error(40125, "invalid appsecret")
        return None

    def _tokens(self, appid: str, kind: str) -> list[dict[str, Any]]:
        # The two endpoints keep apart: "stable_token ... is completely isolated from
        # the token of getAccessToken", so neither refreshes nor kills the other's.
        return [
            info
            for info in self.store.data["tokens"].values()
            if info["appid"] == appid and info.get("kind", STABLE) == kind
        ]

    def _issue(self, appid: str, kind: str, lifetime: float = TOKEN_SECONDS) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        self.store.data["tokens"][token] = {
            "appid": appid,
            "kind": kind,
            "expires_at": time.time() + lifetime,
        }
        return token

    def _live(self, appid: str) -> tuple[str, float] | None:
        now = time.time()
        for token, info in self.store.data["tokens"].items():
            if info["appid"] != appid or info.get("kind", STABLE) != STABLE:
                continue
            if not info.get("dead") and info["expires_at"] > now:
                return token, info["expires_at"] - now
        return None

    def _stable_token(self, request: Request) -> Response:
        if request.method != "POST":
            return error(43002, "require POST method")
        body = request.json()
        if not isinstance(body, dict):
            return error(47001, "data format error")
        if body.get("grant_type") != "client_credential":
            return error(40002, "invalid grant_type")
        refused = self._credentials(body.get("appid"), body.get("secret"), STABLE)
        if refused is not None:
            return refused
        appid = body["appid"]
        live = self._live(appid)
        if body.get("force_refresh") or live is None:
            for info in self._tokens(appid, STABLE):
                info["dead"] = True
            token, left = self._issue(appid, STABLE), float(TOKEN_SECONDS)
        else:
            token, left = live
        return Response.json({"access_token": token, "expires_in": int(left)})

    def _classic_token(self, request: Request) -> Response:
        if request.arg("grant_type") != "client_credential":
            return error(40002, "invalid grant_type")
        appid = request.arg("appid")
        refused = self._credentials(appid, request.arg("secret"), CLASSIC)
        if refused is not None:
            return refused
        # The previous token stays valid for five minutes, then dies.
        soon = time.time() + OVERLAP_SECONDS
        for info in self._tokens(str(appid), CLASSIC):
            info["expires_at"] = min(info["expires_at"], soon)
        token = self._issue(str(appid), CLASSIC)
        return Response.json({"access_token": token, "expires_in": TOKEN_SECONDS})

    def _authorise(self, token: str | None) -> Response | None:
        data = self.store.data
        if not token:
            return error(41001, "access_token missing")
        data["calls"] += 1
        calls = data["calls"]
        every = self.faults.token_expiry_every
        if every and calls % every == 0:
            for info in data["tokens"].values():
                info["dead"] = True
        info = data["tokens"].get(token)
        if info is None:
            if not token.startswith(TOKEN_PREFIX):
                return error(40014, "invalid access_token")
            return error(40001, "invalid credential, access_token is invalid or not latest")
        if info.get("dead") or info["expires_at"] <= time.time():
            return error(42001, "access_token expired")
        after = self.faults.quota_after
        if after and not data["quota_done"] and calls > after:
            if calls <= after + self.faults.quota_calls:
                return error(45009, "reach max api daily quota limit")
            data["quota_done"] = True
        return None

    # --- materials ----------------------------------------------------------------------

    def _material_add_material(self, request: Request) -> Response:
        kind = request.arg("type")
        if kind not in ("thumb", "image"):
            return error(40004, "invalid media type")
        media = _picture(request, kind)
        if isinstance(media, Response):
            return media
        filename, content = media
        media_id = secrets.token_urlsafe(32)
        url = f"{IMAGE_HOST}sandbox_jpg/{media_id[:16]}/0?wx_fmt=jpeg"
        self.store.data["materials"][media_id] = {
            "type": kind,
            "filename": filename,
            "bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "url": url,
        }
        return Response.json({"media_id": media_id, "url": url, "item": []})

    def _material_get_materialcount(self, request: Request) -> Response:
        kinds = [m["type"] for m in self.store.data["materials"].values()]
        # Thumbs count among the images, as the console shows them.
        images = sum(kind in ("image", "thumb") for kind in kinds)
        return Response.json(
            {"voice_count": 0, "video_count": 0, "image_count": images, "news_count": 0}
        )

    def _material_del_material(self, body: dict[str, Any], request: Request) -> Response:
        if self.store.data["materials"].pop(body.get("media_id"), None) is None:
            return error(40007, "invalid media_id")
        return ok()

    def _media_uploadimg(self, request: Request) -> Response:
        """An image for an article's content: a URL on WeChat's image host (which
        draft/add keeps in the content), no media_id."""
        media = _picture(request, "content")
        if isinstance(media, Response):
            return media
        digest = hashlib.sha256(media[1]).hexdigest()
        return Response.json({"url": f"{IMAGE_HOST}sandbox_png/{digest[:16]}/0?wx_fmt=png"})

    # --- drafts -------------------------------------------------------------------------

    def _draft_add(self, body: dict[str, Any], request: Request) -> Response:
        articles = body.get("articles")
        if not isinstance(articles, list) or not articles:
            return error(44003, "empty news data")
        if len(articles) > 8:
            return error(45008, "article size out of limit")
        stored = []
        for article in articles:
            if not isinstance(article, dict):
                return error(47001, "data format error")
            problem = self._article_problem(article)
            if problem is not None:
                return problem
            stored.append(self._stored_article(article))
        media_id = secrets.token_urlsafe(32)
        now = int(time.time())
        self.store.data["drafts"][media_id] = {
            "news_item": stored,
            "create_time": now,
            "update_time": now,
        }
        creates = self.store.data["draft_creates"]
        for article in articles:
            key = content_key(article["title"], article["content"])
            creates[key] = creates.get(key, 0) + 1
        return Response.json({"media_id": media_id})

    def _stored_article(self, article: dict[str, Any]) -> dict[str, Any]:
        return {
            "title": article["title"],
            "author": article.get("author") or "",
            "digest": article.get("digest") or "",
            "content": clean_content(article["content"]),
            "content_source_url": article.get("content_source_url") or "",
            "thumb_media_id": article["thumb_media_id"],
            "thumb_url": self.store.data["materials"][article["thumb_media_id"]]["url"],
            "need_open_comment": int(article.get("need_open_comment") or 0),
            "only_fans_can_comment": int(article.get("only_fans_can_comment") or 0),
        }

    def _article_problem(self, article: dict[str, Any]) -> Response | None:
        title, content = article.get("title"), article.get("content")
        if not isinstance(title, str) or not title:
            return error(44004, "empty title")
        if not isinstance(content, str) or not content:
            return error(44004, "empty content")
        if len(title) > TITLE_MAX:
            return error(45003, "title size out of limit")
        if len(article.get("author") or "") > AUTHOR_MAX:
            return error(45110, "author size out of limit")
        if len(article.get("digest") or "") > DIGEST_MAX:
            return error(45004, "description size out of limit")
        if len(content) >= CONTENT_MAX_CHARS or len(content.encode()) >= CONTENT_MAX_BYTES:
            return error(45002, "content size out of limit")
        thumb = article.get("thumb_media_id")
        if not thumb or thumb not in self.store.data["materials"]:
            return error(40007, "invalid media_id")
        return None

    def _draft_get(self, body: dict[str, Any], request: Request) -> Response:
        draft = self.store.data["drafts"].get(body.get("media_id"))
        if draft is None:
            return error(40007, "invalid media_id")
        return Response.json({"news_item": draft["news_item"]})

    def _draft_batchget(self, body: dict[str, Any], request: Request) -> Response:
        drafts = sorted(self.store.data["drafts"].items(), key=lambda kv: -kv[1]["update_time"])
        page = _page(body)
        if page is None:
            return error(40007, "invalid offset or count")
        offset, count, no_content = page
        items = [
            {
                "media_id": media_id,
                "content": {"news_item": _shown(draft["news_item"], no_content)},
                "update_time": draft["update_time"],
            }
            for media_id, draft in drafts[offset : offset + count]
        ]
        return Response.json({"total_count": len(drafts), "item_count": len(items), "item": items})

    def _draft_count(self, request: Request) -> Response:
        return Response.json({"total_count": len(self.store.data["drafts"])})

    def _draft_update(self, body: dict[str, Any], request: Request) -> Response:
        draft = self.store.data["drafts"].get(body.get("media_id"))
        if draft is None:
            return error(40007, "invalid media_id")
        index, article = body.get("index"), body.get("articles")
        # index counts from 0 here (freepublish/delete counts from 1).
        if not isinstance(index, int) or not 0 <= index < len(draft["news_item"]):
            return error(47001, "data format error, index out of range")
        if not isinstance(article, dict):
            return error(47001, "data format error")
        problem = self._article_problem(article)
        if problem is not None:
            return problem
        draft["news_item"][index] = self._stored_article(article)
        draft["update_time"] = int(time.time())
        return ok()

    def _draft_delete(self, body: dict[str, Any], request: Request) -> Response:
        if self.store.data["drafts"].pop(body.get("media_id"), None) is None:
            return error(40007, "invalid media_id")
        return ok()

    # --- publishing -----------------------------------------------------------------------

    def _freepublish_submit(self, body: dict[str, Any], request: Request) -> Response:
        media_id = body.get("media_id")
        draft = self.store.data["drafts"].get(media_id)
        if draft is None:
            return error(40007, "invalid media_id")
        title = draft["news_item"][0]["title"]
        for marker, (errcode, why) in SUBMIT_REFUSALS.items():
            if marker in title:
                return error(errcode, why)
        data = self.store.data
        publish_id = str(data["next_publish_id"])
        data["next_publish_id"] += 1
        data["jobs"][publish_id] = {
            "media_id": media_id,
            "status": 1,
            "waits": self.faults.slow_jobs,
            "article_id": None,
            "fail_idx": [],
        }
        data["submits"][media_id] = data["submits"].get(media_id, 0) + 1
        if not self.faults.slow_jobs:
            self._finish(publish_id, request)
        msg_data_id = str(2247483000 + int(publish_id) % 1000)
        return Response.json(
            {"errcode": 0, "errmsg": "ok", "publish_id": publish_id, "msg_data_id": msg_data_id}
        )

    def _observe(self, publish_id: str, request: Request) -> None:
        job = self.store.data["jobs"][publish_id]
        if job["status"] != 1:
            return
        if job["waits"] > 0:
            job["waits"] -= 1
            return
        self._finish(publish_id, request)

    def _finish(self, publish_id: str, request: Request) -> None:
        data = self.store.data
        job = data["jobs"][publish_id]
        news = data["drafts"][job["media_id"]]["news_item"]
        for marker, (status, fail_idx) in JOB_FAILURES.items():
            if marker in news[0]["title"]:
                job.update(status=status, fail_idx=fail_idx)
                return
        article_id = secrets.token_urlsafe(32)
        base = _base_url(request)
        items = [
            {**article, "url": f"{base}/s/{article_id}?idx={n}", "is_deleted": False}
            for n, article in enumerate(news, start=1)
        ]
        data["articles"][article_id] = {
            "publish_id": publish_id,
            "news_item": items,
            "update_time": int(time.time()),
            "removed": 0,
        }
        job.update(status=0, article_id=article_id)

    def _freepublish_get(self, body: dict[str, Any], request: Request) -> Response:
        publish_id = str(body.get("publish_id", ""))
        job = self.store.data["jobs"].get(publish_id)
        if job is None:
            return error(53600, "invalid publish_id")
        self._observe(publish_id, request)
        answer: dict[str, Any] = {
            "publish_id": publish_id,
            "publish_status": job["status"],
            "fail_idx": job["fail_idx"],
        }
        if job["status"] == 0 and job["article_id"]:
            article = self.store.data["articles"][job["article_id"]]
            if article["removed"]:
                answer["publish_status"] = article["removed"]
            answer["article_id"] = job["article_id"]
            answer["article_detail"] = {
                "count": len(article["news_item"]),
                "item": [
                    {"idx": n, "article_url": a["url"]}
                    for n, a in enumerate(article["news_item"], start=1)
                ],
            }
        return Response.json(answer)

    def _freepublish_batchget(self, body: dict[str, Any], request: Request) -> Response:
        # The simulator has no clock of its own: a job nobody polls has finished by
        # the time someone lists the account's publications, as a real one has minutes
        # later. (A client lists them to find a job whose publish_id it never got.)
        for publish_id, job in self.store.data["jobs"].items():
            if job["status"] == 1:
                self._finish(publish_id, request)
        page = _page(body)
        if page is None:
            return error(40007, "invalid offset or count")
        offset, count, no_content = page
        articles = sorted(
            (
                (article_id, a)
                for article_id, a in self.store.data["articles"].items()
                if not a["removed"] and not all(i["is_deleted"] for i in a["news_item"])
            ),
            key=lambda kv: -kv[1]["update_time"],
        )
        items = [
            {
                "article_id": article_id,
                "content": {"news_item": _shown(a["news_item"], no_content)},
                "update_time": a["update_time"],
            }
            for article_id, a in articles[offset : offset + count]
        ]
        return Response.json(
            {"total_count": len(articles), "item_count": len(items), "item": items}
        )

    def _freepublish_getarticle(self, body: dict[str, Any], request: Request) -> Response:
        article = self.store.data["articles"].get(body.get("article_id"))
        if article is None or article["removed"]:
            return error(53600, "invalid article_id")
        return Response.json({"news_item": article["news_item"]})

    def _freepublish_delete(self, body: dict[str, Any], request: Request) -> Response:
        article = self.store.data["articles"].get(body.get("article_id"))
        if article is None or article["removed"]:
            return error(53600, "invalid article_id")
        index = body.get("index", 0)
        if not isinstance(index, int) or not 0 <= index <= len(article["news_item"]):
            return error(53601, "invalid index")
        for n, item in enumerate(article["news_item"], start=1):
            if index in (0, n):
                item["is_deleted"] = True
        if all(item["is_deleted"] for item in article["news_item"]):
            article["removed"] = 5  # as if the account deleted it: publish_status 5
        return ok()

    # --- the sandbox's own --------------------------------------------------------------

    def remove(self, article_id: str, publish_status: int = 5) -> Response:
        """Mark a published article as deleted by the account (5) or banned (6):
        ``freepublish/get`` of its job answers that status from now on."""
        with self._lock, self.store.lock:
            article = self.store.data["articles"].get(article_id)
            if article is None:
                return error(53600, "invalid article_id")
            if publish_status not in (5, 6):
                return error(40097, "publish_status must be 5 or 6")
            article["removed"] = publish_status
            self.store.save()
        return ok()

    def _article_page(self, article_id: str, idx: str | None) -> Response:
        """The page an ``article_url`` names: the idx-th article (1 when absent), 404
        once it is deleted or the publication removed, as mp.weixin.qq.com answers."""
        article = self.store.data["articles"].get(article_id)
        n = int(idx) if idx and idx.isdigit() else 1
        items = article["news_item"] if article is not None and not article["removed"] else []
        if not 1 <= n <= len(items) or items[n - 1]["is_deleted"]:
            body = (
                "<!doctype html><meta charset=utf-8><title>内容已删除</title>"
                "<p>该内容已被发布者删除</p>"
            )
            return Response(404, body.encode(), {"Content-Type": "text/html; charset=utf-8"})
        shown = items[n - 1]
        title = html.escape(shown["title"])
        page = (
            f"<!doctype html><html lang=zh-CN><meta charset=utf-8>"
            f"<title>{title}</title><h1>{title}</h1>{shown['content']}</html>"
        )
        return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    def drafts_per_content(self) -> dict[str, int]:
        """How many drafts each article (title and content as sent) produced."""
        return dict(self.store.data["draft_creates"])


def _answer(response: Response) -> dict[str, Any] | None:
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return None
    try:
        answer = json.loads(response.body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _page(body: dict[str, Any]) -> tuple[int, int, bool] | None:
    offset, count = body.get("offset", 0), body.get("count", 20)
    if not isinstance(offset, int) or not isinstance(count, int):
        return None
    if offset < 0 or not 1 <= count <= 20:
        return None
    return offset, count, bool(body.get("no_content"))


def _shown(news: list[dict[str, Any]], no_content: bool) -> list[dict[str, Any]]:
    if not no_content:
        return news
    return [{k: v for k, v in a.items() if k != "content"} for a in news]


def _base_url(request: Request) -> str:
    return "http://" + request.headers.get("host", "127.0.0.1")


def _picture(request: Request, kind: str) -> tuple[str, bytes] | Response:
    """The ``media`` file of an upload, or WeChat's refusal of it. ``kind``: a thumb
    (JPG, 64 KB), an image material (10 MB) or a content image (JPG/PNG, 1 MB)."""
    media = _multipart_file(request, "media")
    if media is None:
        return error(41005, "media data missing")
    content = media[1]
    if not content:
        return error(44001, "empty media data")
    name, magic, formats, limit = _PICTURES[kind]
    if not content.startswith(magic):
        return error(40005, f"invalid file type, {name} must be {formats}")
    if len(content) > limit:
        return error(40009, f"invalid image size, {name} is at most {limit // 1024}KB")
    return media


def _multipart_file(request: Request, field: str) -> tuple[str, bytes] | None:
    """The file sent as ``field`` in a multipart/form-data body."""
    kind = request.headers.get("content-type", "")
    if not kind.lower().startswith("multipart/form-data"):
        return None
    head = f"Content-Type: {kind}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == field:
            payload = part.get_payload(decode=True) or b""
            return part.get_filename() or "", payload
    return None
