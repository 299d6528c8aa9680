"""A loopback HTTP server for channel authors' tests: it records every request and
answers what the test tells it to, faults included.

Real HTTP over a real socket, so a channel's session, timeouts and error
classification run as they will against the remote. Used through the
``gongkai_http_server`` fixture of the pytest plugin (:mod:`gongkai.pytest_plugin`)::

    def test_resend_after_a_500(gongkai_http_server):
        gongkai_http_server.fail(500)            # the next request answers 500
        ...
        assert [r.method for r in gongkai_http_server.requests] == ["PUT", "PUT"]

Only the standard library: importing it costs nothing.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str | None:
        """A header by name, in any case (HTTP names are case-insensitive)."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass
class _Answer:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    #: Close the connection without answering: the client sees a dropped connection
    #: after its request was sent (``OutcomeUnknown`` for a well-behaved channel).
    drop: bool = False


class LoopbackServer:
    """An HTTP server on 127.0.0.1 at a free port. ``url`` is its base address.

    Every request is appended to :attr:`requests`. It answers 200 with
    :attr:`default_body` (JSON) unless a queued fault comes first: :meth:`fail`
    queues statuses, :meth:`drop` a dropped connection, :meth:`answer` any one reply.
    """

    def __init__(self, default_body: Any = None) -> None:
        self.requests: list[RecordedRequest] = []
        self.default_body: Any = {"id": "remote-1"} if default_body is None else default_body
        self._queue: deque[_Answer] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- what a test tells the server ---------------------------------------------

    def fail(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``headers``, such as
        ``{"Retry-After": "30"}``)."""
        for _ in range(times):
            self.answer(status, {"error": status}, headers=headers)

    def drop(self, times: int = 1) -> None:
        """Read the next ``times`` requests and close the connection without a reply."""
        with self._lock:
            self._queue.extend(_Answer(drop=True) for _ in range(times))

    def answer(
        self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        """Queue one reply: ``body`` is sent as JSON (a ``str`` or ``bytes`` as it is)."""
        with self._lock:
            self._queue.append(_Answer(status, {} if body is None else body, dict(headers or {})))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the server ---------------------------------------------------------------------

    def _next(self, request: RecordedRequest) -> _Answer:
        with self._lock:
            self.requests.append(request)
            return self._queue.popleft() if self._queue else _Answer(200, self.default_body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without this, Nagle's algorithm and delayed ACKs add ~40 ms per reply.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = server._next(
                    RecordedRequest(self.command, self.path, dict(self.headers), body)
                )
                if reply.drop:
                    self.close_connection = True
                    return
                if isinstance(reply.body, bytes):
                    payload = reply.body
                elif isinstance(reply.body, str):
                    payload = reply.body.encode("utf-8")
                else:
                    payload = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

        return Handler


__all__ = ["LoopbackServer", "RecordedRequest"]
