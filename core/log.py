"""Structured logging.

The library logs through structlog bound to the stdlib logger ``gongkai``, which has a
``NullHandler``: a system that imports gongkai sees nothing unless it configures
logging itself. The CLI calls :func:`configure` to write JSON lines (off a TTY) or
readable lines (on one) to stderr.

Every event passes :func:`redact_secrets`, which replaces the value of every secret
the configuration resolved, wherever it appears, so a secret that slips into an
exception message still never reaches a log.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

import structlog

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
_PATTERN: re.Pattern[str] | None = None
REDACTED = "**********"

logging.getLogger("gongkai").addHandler(logging.NullHandler())


def _key_like(part: str) -> bool:
    # A path segment or query value that looks like a credential rather than a word:
    # long, or mixing letters and digits. "items" and "v1" stay readable.
    has_digit = any(c.isdigit() for c in part)
    has_alpha = any(c.isalpha() for c in part)
    return len(part) >= 16 or (len(part) >= 6 and has_digit and has_alpha)


def secret_parts(value: str) -> set[str]:
    """The value itself and, when it is a URL, the parts of it a message may quote on
    their own: user info, the path, the query, and key-like segments and values."""
    parts = {value}
    split = urlsplit(value)
    if split.scheme and split.netloc:
        if split.path not in ("", "/"):
            parts.add(split.path)
            parts.update(seg for seg in split.path.split("/") if _key_like(seg))
        if split.query:
            parts.add(split.query)
            parts.update(v for _, v in parse_qsl(split.query) if v)
        parts.update(p for p in (split.username, split.password) if p)
    return {p for p in parts if p}


def register_secret(value: str) -> None:
    """Remember a secret so that logs, output, the ledger and error messages never show
    it, whatever its length; a URL's key-bearing parts are remembered too."""
    global _PATTERN
    if not value:
        return
    with _SECRETS_LOCK:
        _SECRETS.update(secret_parts(value))
        # Longest first, so a secret is replaced whole before any part of it.
        ordered = sorted(_SECRETS, key=len, reverse=True)
        _PATTERN = re.compile("|".join(re.escape(s) for s in ordered))


def scrub(text: str) -> str:
    pattern = _PATTERN
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


def scrub_data(value: Any) -> Any:
    """``scrub`` every string inside nested dicts and lists (receipts, JSON output)."""
    if _PATTERN is None:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_data(v) for v in value]
    return value


def redact_secrets(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    if _PATTERN is None:
        return event
    return {k: scrub(v) if isinstance(v, str) else v for k, v in event.items()}


_PRE_CHAIN = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    redact_secrets,
]


def get_logger(name: str = "gongkai") -> structlog.stdlib.BoundLogger:
    return structlog.wrap_logger(
        logging.getLogger(name if name.startswith("gongkai") else f"gongkai.{name}"),
        processors=[
            # Drop disabled levels before any processor runs: logging sits on the
            # delivery hot path, and a library caller usually has it off.
            structlog.stdlib.filter_by_level,
            *_PRE_CHAIN,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


def configure(
    *, json_lines: bool | None = None, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Send gongkai's logs to ``stream`` (stderr): JSON lines when not on a TTY."""
    stream = stream or sys.stderr
    if json_lines is None:
        json_lines = not stream.isatty()
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=_PRE_CHAIN,
        )
    )
    root = logging.getLogger("gongkai")
    for old in [h for h in root.handlers if not isinstance(h, logging.NullHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
