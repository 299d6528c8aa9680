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
import sys
import threading
from typing import Any

import structlog

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
REDACTED = "**********"

logging.getLogger("gongkai").addHandler(logging.NullHandler())


def register_secret(value: str) -> None:
    """Remember a secret's value so that logs never show it. Short values are skipped
    because replacing them would garble ordinary text."""
    if len(value) >= 6:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def scrub(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_secrets(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    if not _SECRETS:
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


def configure(*, json_lines: bool | None = None, level: int = logging.INFO, stream=None) -> None:
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
