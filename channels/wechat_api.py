"""The WeChat Official Account API as the ``wechat`` channel speaks it: the access
token, one call, and what each error code means for core.

WeChat answers HTTP 200 for almost every failure and puts the reason in
``{"errcode", "errmsg"}``; this module is the one place that turns those codes into
gongkai's delivery errors (see docs/wechat.md for the table). The access token travels
in the query string, so no message built here ever quotes a URL: they name the
endpoint only, and every token fetched is registered as a secret so that logs scrub
it wherever it might appear.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import requests

from gongkai.errors import (
    AuthError,
    DeliveryError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
)
from gongkai.http import classify_exception, raise_for_status
from gongkai.item import CST
from gongkai.log import register_secret

#: The token is bad or expired: fetch another and try the call once more.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
#: The app's credentials themselves are refused: nothing works until config is fixed.
#: ``{secret}`` is where the AppSecret comes from (:meth:`WeChatAPI` ``secret_source``).
CREDENTIAL_ERRORS: dict[int, str] = {
    40013: "WeChat does not know this appid (40013); check [channels.wechat] appid",
    40125: "WeChat refused the AppSecret (40125); check {secret}, or reset the secret in "
    "the 公众平台 console (设置与开发 → 基本配置)",
    40164: "this server's IP address is not on the account's allow-list (40164); add it "
    "in the 公众平台 console (设置与开发 → 基本配置 → IP白名单)",
    41004: "the AppSecret is missing (41004); set {secret}",
}
#: Where the AppSecret comes from when config does not say (the library was given it).
DEFAULT_SECRET_SOURCE = 'secret (write secret = { env = "GONGKAI_WECHAT_SECRET" })'
#: The draft cannot be published as it is: an operator must act.
PUBLISH_REFUSALS: dict[int, str] = {
    53503: "该草稿未通过发布检查 / the draft failed WeChat's publishing check; change the "
    "content (a word WeChat refuses, a link or image it does not allow) and publish a new "
    "edition",
    53504: "需前往公众平台官网使用草稿 / WeChat will publish this draft only from the 公众平台 "
    "web console: publish it there by hand (草稿箱), since the API cannot",
    53505: "请手动保存成功后再发表 / WeChat wants the draft saved by hand in the console "
    "before it can be published; open it in 草稿箱, save it, then run `gongkai retry ITEM`",
}
#: Article limits WeChat enforces in draft/add, in words an operator can act on.
LIMIT_ERRORS: dict[int, str] = {
    45002: "the content is too long for WeChat (45002: under 20,000 characters and 1 MB)",
    45003: "the title is too long for WeChat (45003: at most 32 characters)",
    45004: "the digest is too long for WeChat (45004: at most 128 characters)",
    45110: "the author is too long for WeChat (45110: at most 16 characters); shorten "
    "[channels.wechat] author",
}
QUOTA = 45009
NOT_AUTHORISED = 48001
INVALID_MEDIA = 40007


def seconds_to_midnight(now: datetime) -> float:
    """WeChat's daily call quotas start again at midnight, Beijing time."""
    local = now.astimezone(CST)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(60.0, (midnight - local).total_seconds())


class WeChatError(PermanentError):
    """A WeChat error code with no better meaning: permanent, with code and message."""

    def __init__(self, message: str, errcode: int) -> None:
        super().__init__(message)
        self.errcode = errcode


def classify(
    errcode: int,
    errmsg: str,
    what: str,
    now: datetime,
    secret_source: str = DEFAULT_SECRET_SOURCE,
) -> DeliveryError:
    """The delivery error a WeChat ``errcode`` means, for the call ``what``;
    ``secret_source`` names what to fix when the AppSecret is refused."""
    reason = errmsg.split(" rid:", 1)[0].strip() or "no message"
    if errcode == -1:
        return TransientError(f"{what}: WeChat is busy (-1); try again later")
    if errcode == QUOTA:
        return RateLimited(
            f"{what}: the account's daily API quota is used up (45009); sending resumes "
            "after midnight Beijing time, or sooner if the quota is reset in the console",
            retry_after=seconds_to_midnight(now),
        )
    if errcode in TOKEN_ERRORS:
        return AuthError(f"{what}: WeChat refused the access token ({errcode}: {reason})")
    if errcode in CREDENTIAL_ERRORS:
        return AuthError(f"{what}: {CREDENTIAL_ERRORS[errcode].format(secret=secret_source)}")
    if errcode in PUBLISH_REFUSALS:
        return WeChatError(f"{what}: {PUBLISH_REFUSALS[errcode]} ({errcode})", errcode)
    if errcode in LIMIT_ERRORS:
        return WeChatError(f"{what}: {LIMIT_ERRORS[errcode]}", errcode)
    if errcode == NOT_AUTHORISED:
        return WeChatError(
            f"{what}: the account is not authorised for this API (48001); the publishing "
            "API needs a verified account with 发布能力 — check the account's 接口权限",
            errcode,
        )
    if errcode == INVALID_MEDIA:
        return WeChatError(f"{what}: WeChat does not know the media_id (40007)", errcode)
    return WeChatError(f"{what}: WeChat answered errcode {errcode} ({reason})", errcode)


class WeChatAPI:
    """One account on one WeChat API base URL: a cached access token and calls.

    The token comes from ``stable_token`` and is kept until ``margin`` seconds before
    WeChat says it expires. A call refused for its token (40001, 40014, 42001) drops
    it, fetches another and is tried once more; refused again, it raises AuthError
    (core then calls :meth:`drop_token` and tries once more before pausing the channel).
    """

    def __init__(
        self,
        *,
        base_url: str,
        appid: str,
        secret: str,
        session: requests.Session,
        clock: Callable[[], datetime],
        margin: float = 300.0,
        secret_source: str = DEFAULT_SECRET_SOURCE,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.appid = appid
        self._secret = secret
        #: What an operator fixes when the AppSecret is refused ("the environment
        #: variable GONGKAI_WECHAT_SECRET").
        self.secret_source = secret_source
        self.session = session
        self.clock = clock
        self.margin = margin
        self._token: tuple[str, datetime] | None = None
        self._token_lock = threading.Lock()
        #: How many times a token was fetched (tests check the cache with it).
        self.token_fetches = 0

    # --- the token --------------------------------------------------------------------

    def drop_token(self) -> None:
        with self._token_lock:
            self._token = None

    def token(self, refused: str | None = None) -> str:
        """A live access token. ``refused`` is one WeChat just refused: if stable_token
        hands the same one back, it is asked to issue a new one (force_refresh)."""
        with self._token_lock:
            now = self.clock()
            if self._token is not None and self._token[0] != refused and self._token[1] > now:
                return self._token[0]
            token, lifetime = self._fetch(force=False)
            if token == refused:
                token, lifetime = self._fetch(force=True)
            # Half the lifetime at least, so a margin longer than the token's life
            # never makes every call fetch a new one.
            keep = max(lifetime - self.margin, lifetime / 2)
            self._token = (token, now + timedelta(seconds=keep))
            return token

    def _fetch(self, *, force: bool) -> tuple[str, float]:
        what = "WeChat stable_token"
        body = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self._secret,
            "force_refresh": force,
        }
        try:
            response = self.session.post(f"{self.base_url}/cgi-bin/stable_token", json=body)
        except requests.RequestException as exc:
            error = classify_exception(exc, what)
            if isinstance(error, OutcomeUnknown):
                # Asking for a token twice is harmless: it creates nothing.
                error = TransientError(str(error))
            raise error from None
        answer = self._answer(response, what)
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise TransientError(f"{what}: the answer carries no access_token")
        register_secret(token)
        self.token_fetches += 1
        try:
            lifetime = float(answer.get("expires_in") or 7200)
        except (TypeError, ValueError):
            lifetime = 7200.0
        return token, lifetime

    # --- calls ------------------------------------------------------------------------

    def call(
        self,
        endpoint: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        files: dict[str, Any] | None = None,
        repeat_safe: bool = False,
    ) -> dict[str, Any]:
        """POST to ``/cgi-bin/<endpoint>`` and return the answer, or raise the delivery
        error it means. ``repeat_safe`` calls (lookups, a cover upload) turn a lost
        answer into a TransientError: repeating them creates nothing that is published."""
        what = f"WeChat {endpoint}"
        token = self.token()
        try:
            return self._post(endpoint, body, params, files, token, what, repeat_safe)
        except AuthError as exc:
            if getattr(exc, "errcode", None) not in TOKEN_ERRORS:
                raise
        token = self.token(refused=token)
        return self._post(endpoint, body, params, files, token, what, repeat_safe)

    def _post(
        self,
        endpoint: str,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
        files: dict[str, Any] | None,
        token: str,
        what: str,
        repeat_safe: bool,
    ) -> dict[str, Any]:
        query = {"access_token": token, **(params or {})}
        url = f"{self.base_url}/cgi-bin/{endpoint}"
        try:
            if files is not None:
                response = self.session.post(url, params=query, files=files)
            else:
                data = json_body(body or {}).encode("utf-8")
                response = self.session.post(
                    url,
                    params=query,
                    data=data,
                    headers={"Content-Type": "application/json; charset=utf-8"},
                )
        except requests.RequestException as exc:
            error = classify_exception(exc, what)
            if repeat_safe and isinstance(error, OutcomeUnknown):
                error = TransientError(str(error))
            raise error from None
        return self._answer(response, what)

    def _answer(self, response: requests.Response, what: str) -> dict[str, Any]:
        raise_for_status(response, what)
        try:
            answer = response.json()
        except ValueError:
            raise TransientError(f"{what}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise TransientError(f"{what}: the answer is not a JSON object")
        errcode = answer.get("errcode", 0)
        if errcode in (0, None):
            return answer
        try:
            code = int(errcode)
        except (TypeError, ValueError):
            code = -2
        error = classify(
            code, str(answer.get("errmsg") or ""), what, self.clock(), self.secret_source
        )
        error.errcode = code  # type: ignore[attr-defined]
        raise error


def json_body(body: dict[str, Any]) -> str:
    """The JSON WeChat is sent: compact, Chinese as it is (an escaped character would
    count six against the content limit)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
