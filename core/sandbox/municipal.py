"""A simulator of the municipal platform's REST contract (docs/municipal-platform.openapi.yaml).

It is as strict as the contract: tokens from an app key and secret, ``Idempotency-Key``
replays (and 422 for a key reused with another body), one article per external id,
editions that only go up, validation errors with the field and a message, withdrawal.
Articles, files and stored answers persist under ``<state_dir>/sandbox/``; tokens do
not (a restarted platform logs every client out, as real ones do).

For tests it keeps ``log`` (one entry per request it handled) and ``creates`` (how
many articles each external id produced: more than one would be a duplicate post).
Answers the server replaced by an injected 503 never reach it.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
import threading
from datetime import UTC, date, datetime
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any, ClassVar

from .base import Faults, Request, Response, Store

#: The credentials of the app the sandbox knows from the start.
DEFAULT_APP_KEY = "sandbox-app"
#: At least 16 characters, as gongkai's config asks of every secret.
DEFAULT_APP_SECRET = "sandbox-secret-0123456789"
#: The default app's secret before secrets had to be 16 characters long.
OLD_DEFAULT_APP_SECRET = "sandbox-secret"
TOKEN_SECONDS = 7200
MAX_FILE_BYTES = 20 * 1024 * 1024
REQUIRED = (
    "external_id",
    "edition",
    "content_hash",
    "title",
    "content_html",
    "publisher",
    "formed_on",
)
KINDS = ("发布", "解读", "回应")
OPENNESS = ("决策公开", "执行公开", "管理公开", "服务公开", "结果公开")
AUDIENCES = ("全社会", "特定群体")
TITLE_MAX = 200
#: ArticleInput's optional text fields that may also be null.
_NULLABLE_TEXT = ("index_number", "document_number", "area", "contact")
_COLUMN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: Path → {method: operation}, as the contract lists them (plus the public pages).
_ROUTES: tuple[tuple[re.Pattern[str], dict[str, str]], ...] = (
    (re.compile(r"^/api/v1/auth/token$"), {"POST": "token"}),
    (re.compile(r"^/api/v1/files$"), {"POST": "upload"}),
    (re.compile(r"^/api/v1/articles$"), {"GET": "lookup"}),
    (re.compile(r"^/api/v1/columns/([^/]+)/articles$"), {"POST": "create"}),
    (re.compile(r"^/api/v1/articles/([^/]+)$"), {"GET": "get", "PUT": "update"}),
    (re.compile(r"^/api/v1/articles/([^/]+)/withdraw$"), {"POST": "withdraw"}),
    (re.compile(r"^/public/([^/]+)\.html$"), {"GET": "page"}),
)


def _error(status: int, code: str, message: str, **extra: Any) -> Response:
    response = Response.json({"code": code, "message": message, **extra}, status)
    if status in (429, 503):
        response.headers["Retry-After"] = "1"
    return response


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class MunicipalSimulator:
    """成都市基层公开综合服务监管平台, as gongkai's contract describes it."""

    name: ClassVar[str] = "municipal"
    mount: ClassVar[str] = "/municipal"

    def __init__(self, folder: Path, faults: Faults) -> None:
        self.faults = faults
        self.store = Store(folder, "municipal")
        self.files_dir = folder / "municipal-files"
        data = self.store.data
        data.setdefault("apps", {DEFAULT_APP_KEY: {"secret": DEFAULT_APP_SECRET, "columns": None}})
        default_app = data["apps"].get(DEFAULT_APP_KEY)
        if isinstance(default_app, dict) and default_app.get("secret") == OLD_DEFAULT_APP_SECRET:
            # A state file from an older gongkai: its default app takes today's secret.
            default_app["secret"] = DEFAULT_APP_SECRET
        data.setdefault("articles", {})
        data.setdefault("files", {})
        data.setdefault("idempotency", {})
        data.setdefault("creates", {})
        data.setdefault("next_article", 1)
        #: Column ids the platform has; empty: any well-formed id is a column.
        data.setdefault("columns", [])
        #: Live token → its app key.
        self.tokens: dict[str, str] = {}
        self.log: list[dict[str, Any]] = []
        self.calls = 0
        self._quota_left = faults.quota_calls if faults.quota_after else 0
        self._lock = threading.Lock()

    # --- what tests read ------------------------------------------------------------------

    @property
    def creates(self) -> dict[str, int]:
        """External id → articles created for it (a replayed key creates none)."""
        return dict(self.store.data["creates"])

    def articles(self, column_id: str | None = None) -> list[dict[str, Any]]:
        found = self.store.data["articles"].values()
        return [dict(a) for a in found if column_id is None or a["column_id"] == column_id]

    def add_app(self, key: str, secret: str, columns: list[str] | None = None) -> None:
        with self.store.lock:
            self.store.data["apps"][key] = {"secret": secret, "columns": columns}
            self.store.save()

    # --- the server's entry point ---------------------------------------------------------

    def handle(self, request: Request) -> Response:
        entry: dict[str, Any] = {"method": request.method, "path": request.path}
        try:
            response = self._route(request, entry)
        except Exception as exc:  # noqa: BLE001 - a simulator bug must still answer
            response = _error(500, "internal_error", f"平台内部错误：{type(exc).__name__}")
        entry["status"] = response.status
        with self._lock:
            self.log.append(entry)
        return response

    def _route(self, request: Request, entry: dict[str, Any]) -> Response:
        op, target, methods = _operation(request.method, request.path)
        entry["op"] = op
        if op == "token":
            return self._token(request)
        if op == "page":
            return self._page(target)
        if op is None and not methods:
            return _error(404, "not_found", f"没有这个接口：{request.method} {request.path}")
        if op is None:
            allow = ", ".join(methods)
            if request.method == "OPTIONS":
                return Response(204, b"", {"Allow": allow})
            refused = _error(405, "method_not_allowed", f"该地址只接受 {allow} 请求")
            refused.headers["Allow"] = allow
            return refused
        app, refused = self._authorise(request)
        if refused is None:
            refused = self._rate_limit()
        if refused is not None:
            entry["refused"] = True
            return refused
        if op == "upload":
            return self._upload(request, app)
        if op == "create":
            return self._create(request, app, target, entry)
        if op == "lookup":
            return self._lookup(request)
        if op == "withdraw":
            return self._withdraw(request, app, target, entry)
        if op == "update":
            return self._update(request, app, target, entry)
        found = self.store.data["articles"].get(target)
        if found is None:
            return _error(404, "article_not_found", f"文章 {target} 不存在")
        return Response.json(_public(found))

    # --- auth -----------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not {"app_key", "app_secret"} <= set(body):
            return _error(400, "bad_request", "请求体须为 JSON，含 app_key 和 app_secret")
        app = self.store.data["apps"].get(str(body["app_key"]))
        if app is None or not secrets.compare_digest(
            str(body["app_secret"]).encode(), app["secret"].encode()
        ):
            return _error(401, "invalid_credentials", "app_key 或 app_secret 不正确")
        if app.get("disabled"):
            return _error(403, "forbidden", "该应用已停用")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = str(body["app_key"])
        return Response.json(
            {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS}
        )

    def _authorise(self, request: Request) -> tuple[str, Response | None]:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._lock:
            self.calls += 1
            every = self.faults.token_expiry_every
            if every and self.calls % every == 0 and token in self.tokens:
                # Every N calls the live tokens die, as tokens expiring mid-run do: the
                # call that meets it is refused.
                self.tokens.clear()
                return "", _error(401, "token_expired", "access_token 已过期，请重新获取")
            app = self.tokens.get(token)
            if app is None:
                return "", _error(401, "invalid_token", "access_token 无效，请重新获取")
            return app, None

    def _rate_limit(self) -> Response | None:
        if not self.faults.quota_after:
            return None
        with self._lock:
            if self.calls <= self.faults.quota_after or self._quota_left <= 0:
                return None
            self._quota_left -= 1
        return _error(429, "rate_limited", "请求过于频繁，请稍后再试")

    def _column_allowed(self, app: str, column_id: str) -> bool:
        allowed = self.store.data["apps"].get(app, {}).get("columns")
        return allowed is None or column_id in allowed

    # --- files ----------------------------------------------------------------------------

    def _upload(self, request: Request, app: str) -> Response:
        parts = _multipart(request)
        if parts is None or "file" not in parts:
            return _error(400, "bad_request", "须以 multipart/form-data 上传，文件字段名为 file")
        filename, content = parts["file"]
        if not filename:
            return _error(422, "validation_failed", "文件缺少文件名", errors=[_field("file")])
        if len(content) > MAX_FILE_BYTES:
            return _error(413, "file_too_large", "文件超过 20MB")
        digest = hashlib.sha256(content).hexdigest()
        declared = parts.get("sha256", (None, None))[1]
        if declared is not None and not _SHA256.match(declared.decode("ascii", "replace")):
            return _error(
                422,
                "validation_failed",
                "sha256 须为64位小写十六进制",
                errors=[_field("sha256", "须为64位小写十六进制")],
            )
        if declared is not None and declared.decode("ascii") != digest:
            return _error(
                422,
                "validation_failed",
                "文件内容与 sha256 不符",
                errors=[_field("sha256", "与收到的文件内容不符")],
            )

        def work() -> tuple[int, dict[str, Any]]:
            file_id = f"F{len(self.store.data['files']) + 1:06d}"
            self.files_dir.mkdir(parents=True, exist_ok=True)
            (self.files_dir / file_id).write_bytes(content)
            record = {"file_id": file_id, "filename": filename, "sha256": digest}
            self.store.data["files"][file_id] = {**record, "size": len(content)}
            return 201, {**record, "size": len(content)}

        # The multipart boundary differs on every send: the parts are what was asked.
        return self._once(request, app, work, sameness=f"{filename}\0{digest}".encode())

    # --- articles -------------------------------------------------------------------------

    def _create(
        self, request: Request, app: str, column_id: str, entry: dict[str, Any]
    ) -> Response:
        known = self.store.data["columns"]
        if not _COLUMN_ID.match(column_id) or (known and column_id not in known):
            return _error(404, "column_not_found", f"栏目 {column_id} 不存在")
        if not self._column_allowed(app, column_id):
            return _error(403, "forbidden", f"该应用无权在栏目 {column_id} 发布")
        body, invalid = self._article_input(request, entry)
        if invalid is not None:
            return invalid

        def work() -> tuple[int, dict[str, Any]]:
            data = self.store.data
            for existing in data["articles"].values():
                if existing["external_id"] == body["external_id"]:
                    return 409, {
                        "code": "external_id_exists",
                        "message": f"外部编号 {body['external_id']} 已有文章 "
                        f"{existing['article_id']}，请更新该文章",
                        "article_id": existing["article_id"],
                    }
            article_id = f"A{data['next_article']:08d}"
            data["next_article"] += 1
            now = _now()
            article = {
                **body,
                "article_id": article_id,
                "column_id": column_id,
                "status": "published",
                "url": _page_url(request, article_id),
                "published_at": now,
                "updated_at": now,
                "withdrawn_reason": None,
            }
            data["articles"][article_id] = article
            data["creates"][body["external_id"]] = data["creates"].get(body["external_id"], 0) + 1
            entry["created"] = True
            return 201, _public(article)

        return self._once(request, app, work, entry)

    def _update(
        self, request: Request, app: str, article_id: str, entry: dict[str, Any]
    ) -> Response:
        body, invalid = self._article_input(request, entry)
        if invalid is not None:
            return invalid

        def work() -> tuple[int, dict[str, Any]]:
            article = self.store.data["articles"].get(article_id)
            if article is None:
                return 404, {"code": "article_not_found", "message": f"文章 {article_id} 不存在"}
            if not self._column_allowed(app, article["column_id"]):
                return 403, {"code": "forbidden", "message": "该应用无权修改此文章"}
            if article["external_id"] != body["external_id"]:
                return 422, {
                    "code": "validation_failed",
                    "message": "external_id 与文章不符",
                    "errors": [_field("external_id", "与文章不符")],
                }
            if article["status"] == "withdrawn":
                return 409, {"code": "article_withdrawn", "message": "文章已撤回，不能修改"}
            if body["edition"] < article["edition"]:
                return 409, {
                    "code": "stale_edition",
                    "message": f"平台已有第{article['edition']}版，不接受第{body['edition']}版",
                }
            if body["edition"] == article["edition"]:
                if body["content_hash"] != article["content_hash"]:
                    return 409, {
                        "code": "edition_conflict",
                        "message": f"第{body['edition']}版的内容与平台已有的不同",
                    }
                return 200, _public(article)
            article.update(body, updated_at=_now())
            return 200, _public(article)

        return self._once(request, app, work, entry)

    def _withdraw(
        self, request: Request, app: str, article_id: str, entry: dict[str, Any]
    ) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            return _error(400, "bad_request", "请求体须为 JSON")
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            return _error(422, "validation_failed", "须说明撤回原因", errors=[_field("reason")])
        with self.store.lock:
            article = self.store.data["articles"].get(article_id)
            if article is None:
                return _error(404, "article_not_found", f"文章 {article_id} 不存在")
            if not self._column_allowed(app, article["column_id"]):
                return _error(403, "forbidden", "该应用无权撤回此文章")
            entry["external_id"] = article["external_id"]
            if article["status"] != "withdrawn":
                article.update(status="withdrawn", withdrawn_reason=reason, updated_at=_now())
                self.store.save()
            return Response.json(_public(article))

    def _lookup(self, request: Request) -> Response:
        external_id = request.arg("external_id")
        if not external_id:
            return _error(400, "bad_request", "须给出 external_id 参数")
        with self.store.lock:
            found = [
                _public(a)
                for a in self.store.data["articles"].values()
                if a["external_id"] == external_id
            ]
        return Response.json({"items": found})

    def _page(self, article_id: str) -> Response:
        article = self.store.data["articles"].get(article_id)
        if article is None:
            return Response(404, "<h1>404 页面不存在</h1>".encode(), _HTML)
        if article["status"] == "withdrawn":
            text = f"<h1>该信息已撤回</h1><p>{html.escape(article['withdrawn_reason'] or '')}</p>"
            return Response(410, text.encode(), _HTML)
        page = (
            f"<!doctype html><title>{html.escape(article['title'])}</title>"
            f"<h1>{html.escape(article['title'])}</h1>"
            f"<p>发布机构：{html.escape(article['publisher'])}</p>{article['content_html']}"
        )
        return Response(200, page.encode("utf-8"), _HTML)

    # --- shared rules ---------------------------------------------------------------------

    def _article_input(
        self, request: Request, entry: dict[str, Any]
    ) -> tuple[dict[str, Any], Response | None]:
        body = request.json()
        if not isinstance(body, dict):
            return {}, _error(400, "bad_request", "请求体须为 JSON 对象")
        edition = body.get("edition")
        if isinstance(edition, float) and edition.is_integer():
            # JSON Schema's integer: 3.0 is 3.
            body["edition"] = int(edition)
        entry["external_id"] = body.get("external_id")
        entry["edition"] = body.get("edition")
        errors = _input_errors(body, self.store.data["files"])
        if errors:
            names = "、".join(e["field"] for e in errors)
            return {}, _error(422, "validation_failed", f"字段有误：{names}", errors=errors)
        return body, None

    def _once(
        self,
        request: Request,
        app: str,
        work: Any,
        entry: dict[str, Any] | None = None,
        sameness: bytes | None = None,
    ) -> Response:
        """Do ``work`` once per Idempotency-Key: a repeat of the same request gets the
        stored answer, the same key with another body a 422."""
        key = request.headers.get("idempotency-key", "")
        if not key or len(key) > 255:
            return _error(400, "bad_request", "缺少 Idempotency-Key 请求头，或超过255个字符")
        fingerprint = hashlib.sha256(
            f"{request.method} {request.path}\n".encode() + (sameness or request.body)
        ).hexdigest()
        scoped = f"{app}:{key}"
        # One lock around check, work and record: a concurrent repeat waits for the
        # first answer instead of doing the work twice.
        with self.store.lock:
            stored = self.store.data["idempotency"].get(scoped)
            if stored is not None:
                if stored["fingerprint"] != fingerprint:
                    return _error(
                        422,
                        "idempotency_key_reused",
                        "同一 Idempotency-Key 已用于内容不同的请求",
                    )
                if entry is not None:
                    entry["replayed"] = True
                response = Response.json(stored["body"], stored["status"])
                response.headers["Idempotent-Replayed"] = "true"
                return response
            status, answer = work()
            if status < 500:
                self.store.data["idempotency"][scoped] = {
                    "fingerprint": fingerprint,
                    "status": status,
                    "body": answer,
                }
            self.store.save()
        return Response.json(answer, status)


_HTML = {"Content-Type": "text/html; charset=utf-8"}
_PUBLIC_KEYS = (
    "article_id",
    "column_id",
    "external_id",
    "edition",
    "content_hash",
    "status",
    "url",
    "published_at",
    "updated_at",
    "withdrawn_reason",
)


def _operation(method: str, path: str) -> tuple[str | None, str, tuple[str, ...]]:
    """What a request asks for (the name the request log uses), the column or article id
    in its path, and the methods its path takes (empty: no such path)."""
    for pattern, operations in _ROUTES:
        found = pattern.match(path)
        if found:
            target = found.group(1) if pattern.groups else ""
            return operations.get(method), target, tuple(operations)
    return None, "", ()


def _public(article: dict[str, Any]) -> dict[str, Any]:
    return {k: article.get(k) for k in _PUBLIC_KEYS}


def _input_errors(body: dict[str, Any], files: dict[str, Any]) -> list[dict[str, str]]:
    """What is wrong with an ArticleInput, field by field, as the contract's schema says."""
    errors = [_field(name) for name in REQUIRED if body.get(name) in (None, "")]
    missing = {e["field"] for e in errors}

    def wrong(name: str, message: str) -> None:
        if name not in missing:
            errors.append(_field(name, message))

    edition = body.get("edition")
    # bool is an int in Python, not in JSON Schema.
    if not isinstance(edition, int) or isinstance(edition, bool) or edition < 1:
        wrong("edition", "须为正整数")
    for name in ("external_id", "content_hash", "title", "content_html", "publisher"):
        if not isinstance(body.get(name), str):
            wrong(name, "须为字符串")
    if isinstance(body.get("title"), str) and len(body["title"]) > TITLE_MAX:
        wrong("title", f"不能超过{TITLE_MAX}字")
    for name in ("formed_on", "published_on"):
        value = body.get(name)
        if value is not None and not _is_date(value):
            wrong(name, "须为 YYYY-MM-DD 格式的日期")
    for name in _NULLABLE_TEXT:
        if not isinstance(body.get(name), str | None):
            wrong(name, "须为字符串或 null")
    for name, allowed, nullable in (
        ("kind", KINDS, False),
        ("openness", OPENNESS, True),
        ("audience", AUDIENCES, False),
    ):
        value = body.get(name)
        if name in body and not (value in allowed or (nullable and value is None)):
            wrong(name, f"须为 {'、'.join(allowed)} 之一")
    keywords = body.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        wrong("keywords", "须为字符串数组")
    attachments = body.get("attachments", [])
    if not isinstance(attachments, list):
        wrong("attachments", "须为数组")
        attachments = []
    for n, attachment in enumerate(attachments):
        where = f"attachments[{n}]"
        if not isinstance(attachment, dict):
            wrong(where, "须为对象，含 file_id 和 title")
            continue
        file_id = attachment.get("file_id")
        if not isinstance(file_id, str) or file_id not in files:
            wrong(f"{where}.file_id", "附件文件不存在，请先上传")
        if not isinstance(attachment.get("title"), str):
            wrong(f"{where}.title", "须为附件名称")
        if not isinstance(attachment.get("filename", ""), str):
            wrong(f"{where}.filename", "须为字符串")
    return errors


def _field(name: str, message: str = "必填") -> dict[str, str]:
    return {"field": name, "message": message}


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _page_url(request: Request, article_id: str) -> str:
    host = request.headers.get("host", "127.0.0.1")
    return f"http://{host}{MunicipalSimulator.mount}/public/{article_id}.html"


def _multipart(request: Request) -> dict[str, tuple[str | None, bytes]] | None:
    """The parts of a multipart/form-data body: name → (file name, bytes)."""
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {kind}\r\n\r\n".encode("latin-1") + request.body
    )
    if not message.is_multipart():
        return None
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            parts[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return parts
