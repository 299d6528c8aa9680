"""HTTP helpers for channels: one pooled session with timeouts, and the standard
classification of responses and ``requests`` exceptions into delivery errors.

Channels call :func:`classify_exception` and :func:`raise_for_status` instead of writing
their own mapping, so every channel treats a 429 or a read timeout the same way.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from .channel import ChannelContext
from .errors import (
    AuthError,
    DeliveryError,
    OutcomeUnknown,
    PermanentError,
    TransientError,
)


class TimeoutSession(requests.Session):
    """A session whose every request has connect and read timeouts.

    The environment is read once, not per call: requests would otherwise scan every
    variable and look for ~/.netrc on each request, which costs more than a loopback
    request itself. Proxies (HTTPS_PROXY, NO_PROXY) are resolved once per host, and a
    CA bundle named by REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE (common on government
    intranets) is kept. ~/.netrc is not read.
    """

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.default_timeout = timeout
        self.trust_env = False
        self.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}

    def request(  # type: ignore[override]
        self, method: str, url: str, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self.default_timeout)
        if "proxies" not in kwargs:
            key = urlsplit(url)[:2]
            if key not in self._proxies:
                self._proxies[key] = get_environ_proxies(url)
            kwargs["proxies"] = self._proxies[key]
        return super().request(method, url, **kwargs)


def new_session(context: ChannelContext) -> requests.Session:
    session = TimeoutSession((context.connect_timeout, context.read_timeout))
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(context.pool_size, 1))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def classify_exception(exc: requests.RequestException, what: str) -> DeliveryError:
    """Map a ``requests`` exception to a delivery error.

    The line that matters: was the request possibly received? A connect timeout or a
    refused connection means no; a read timeout or a dropped connection means maybe,
    which is ``OutcomeUnknown`` and must never be blindly resent.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return TransientError(f"{what}: connect timeout")
    if isinstance(exc, requests.ReadTimeout):
        return OutcomeUnknown(f"{what}: no answer before the read timeout")
    if isinstance(exc, requests.exceptions.SSLError):
        return TransientError(f"{what}: TLS handshake failed")
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        text = repr(reason)
        if "NewConnectionError" in text or "Connection refused" in text or "NameResolution" in text:
            return TransientError(f"{what}: cannot connect")
        return OutcomeUnknown(f"{what}: connection dropped after the request was sent")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return PermanentError(f"{what}: invalid URL; fix the channel's url in config.toml")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return OutcomeUnknown(f"{what}: response cut off")
    return TransientError(f"{what}: {type(exc).__name__}")


#: Answers from a proxy or gateway that may come after the backend processed the request.
GATEWAY_STATUSES = frozenset({502, 504})


def raise_for_status(response: requests.Response, what: str) -> None:
    """Raise the delivery error that an HTTP status means; return on 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    message = f"{what}: HTTP {status}"
    if status in (401, 403):
        raise AuthError(message, http_status=status)
    if status == 429:
        raise TransientError(message, retry_after=retry_after, http_status=status)
    if status in GATEWAY_STATUSES:
        # A gateway gave up waiting for the backend, which may have done the work
        # anyway: on a channel without an idempotency key a resend could duplicate it.
        raise OutcomeUnknown(
            message + " from a gateway; the remote may have it", http_status=status
        )
    if status in (408, 425) or status >= 500:
        raise TransientError(message, retry_after=retry_after, http_status=status)
    if status == 409:
        # A conflict on create means the remote already has this key: the caller decides.
        raise PermanentError(message + " (conflict)", http_status=status)
    raise PermanentError(message + "; the remote refused the content", http_status=status)


__all__ = [
    "classify_exception",
    "new_session",
    "raise_for_status",
    "retry_after_seconds",
]
