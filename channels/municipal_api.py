"""The municipal platform's REST API as the ``platform`` channel uses it: an access token
from the app key and secret, one fresh token and one resend on a 401, and the
platform's JSON errors (``{code, message}``) in every error gongkai raises.

The contract is docs/municipal-platform.openapi.yaml. Paths and field names come from
config, so the client never spells a platform path or field itself.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import requests

from gongkai.channel import ChannelContext
from gongkai.errors import AuthError, DeliveryError, OutcomeUnknown, PermanentError
from gongkai.http import classify_exception, new_session, raise_for_status
from gongkai.log import register_secret

#: A token is dropped this long before the platform says it expires, so that a request
#: sent just before the end does not meet a 401 on the way.
TOKEN_MARGIN = timedelta(seconds=60)


class PlatformApi:
    """One session and one cached token, shared by the channel's worker threads."""

    def __init__(self, config: Any, context: ChannelContext) -> None:
        self.config = config
        self.context = context
        self.session = new_session(context)
        self._token: str | None = None
        self._expires = context.clock()
        self._lock = threading.Lock()

    # --- names from config ----------------------------------------------------------

    def field(self, name: str) -> str:
        """The platform's name for one of gongkai's field names."""
        return self.config.fields.get(name, name)

    def url(self, path_key: str, **values: str) -> str:
        path = getattr(self.config.paths, path_key).format(**values)
        return self.config.base_url.rstrip("/") + path

    # --- the token ------------------------------------------------------------------

    def token(self) -> str:
        with self._lock:
            if self._token is not None and self.context.clock() < self._expires:
                return self._token
            self._token = None
            answer = self._fetch_token()
            token = answer.get(self.field("access_token"))
            if not isinstance(token, str) or not token:
                raise PermanentError(
                    "platform token: the answer has no "
                    f"'{self.field('access_token')}'; set fields.access_token to the name "
                    "the platform uses"
                )
            register_secret(token)
            try:
                seconds = float(answer.get(self.field("expires_in")) or 7200)
            except (TypeError, ValueError):
                seconds = 7200.0
            self._expires = self.context.clock() + timedelta(seconds=seconds) - TOKEN_MARGIN
            self._token = token
            return token

    def _fetch_token(self) -> dict[str, Any]:
        what = "platform token"
        body = {
            self.field("app_key"): self.config.app_key,
            self.field("app_secret"): self.config.app_secret.get_secret_value(),
        }
        try:
            response = self.session.post(self.url("token"), json=body)
        except requests.RequestException as exc:
            raise classify_exception(exc, what) from None
        if response.status_code in (401, 403):
            secret = self.secret_source()
            raise AuthError(
                f"credentials refused ({what}: {self.said(response)}): the platform does not "
                f"accept app_key '{self.config.app_key}' with the secret in {secret}; check "
                f"app_key in [channels.platform] and set {secret} to the secret the platform "
                "issued for that key, then run `gongkai channels --check`",
                http_status=response.status_code,
            )
        self.raise_for(response, what)
        return self.answer(response, what)

    def secret_source(self) -> str:
        """Where the secret came from, as an operator fixes it: the environment
        variable config names, or the app_secret given to the library."""
        variable = self.context.secret_env.get("app_secret")
        if variable:
            return f"the environment variable {variable}"
        return 'app_secret (write app_secret = { env = "GONGKAI_MUNICIPAL_SECRET" })'

    def drop_token(self, token: str | None = None) -> None:
        """Forget the token (only if it is still ``token``, so that threads that met
        the same 401 fetch one new token, not one each)."""
        with self._lock:
            if token is None or self._token == token:
                self._token = None

    # --- requests -------------------------------------------------------------------

    def call(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        """Send with the token; on a 401, fetch a new token and send once more. The
        401 says the request was refused, so sending it again duplicates nothing."""
        headers = kwargs.pop("headers", {})
        for first in (True, False):
            token = self.token()
            try:
                response = self.session.request(
                    method, url, headers={**headers, "Authorization": f"Bearer {token}"}, **kwargs
                )
            except requests.RequestException as exc:
                raise classify_exception(exc, what) from None
            if response.status_code == 401 and first:
                self.drop_token(token)
                continue
            if response.status_code == 401:
                raise AuthError(
                    f"{what}: {self.said(response)}, with a new token; ask the platform's "
                    f"administrator whether app_key '{self.config.app_key}' may use this API",
                    http_status=401,
                )
            return response
        raise AssertionError("unreachable")

    def raise_for(self, response: requests.Response, what: str, *, fix: str = "") -> None:
        """The standard mapping (gongkai.http) with the platform's code and message
        added, and what to do when the platform gave no hint."""
        try:
            raise_for_status(response, what)
        except DeliveryError as exc:
            # The class (and Retry-After) from the standard mapping, the words from here.
            message = f"{what}: {self.said(response)}"
            if isinstance(exc, OutcomeUnknown):
                message += "; a gateway answered, so the platform may have done it"
            if fix and isinstance(exc, PermanentError):
                message += f"; {fix}"
            exc.args = (message,)
            raise exc from None

    def answer(self, response: requests.Response, what: str) -> dict[str, Any]:
        data = json_body(response)
        if not data:
            raise PermanentError(
                f"{what}: HTTP {response.status_code} without a JSON object; is base_url "
                "the platform's API?",
                http_status=response.status_code,
            )
        return data

    def error_code(self, response: requests.Response) -> str:
        data = json_body(response)
        return str(data.get(self.field("code")) or "") if data else ""

    def said(self, response: requests.Response) -> str:
        """``HTTP 503 from the platform: busy: 系统繁忙``, or ``HTTP 503 from the
        platform (no message)`` when its body says nothing."""
        detail = self.detail(response)
        where = f"HTTP {response.status_code} from the platform"
        return f"{where}: {detail}" if detail else f"{where} (no message)"

    def detail(self, response: requests.Response) -> str:
        """``code: message`` from the platform's error body (either alone when the
        other is missing, empty when it has neither), without any credential."""
        data = json_body(response)
        code = str(data.get(self.field("code")) or "").strip()
        message = ""
        # The contract's message field first, then names other APIs use for it.
        for key in (self.field("message"), "error", "msg"):
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                message = value.strip()[:300]
                break
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            fields = ", ".join(
                f"{e.get('field')}: {e.get('message')}" for e in errors[:5] if isinstance(e, dict)
            )
            message = f"{message} ({fields})".strip()
        text = ": ".join(part for part in (code, message) if part)
        for secret in (self._token, self.config.app_secret.get_secret_value()):
            if secret:
                text = text.replace(secret, "***")
        return text


def json_body(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object; empty when there is none."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
