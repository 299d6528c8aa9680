"""The sandbox's moving parts: requests, responses, faults and the loopback server.

A *simulator* is one remote API (WeChat, the municipal platform) as a plain object:
it gets a :class:`Request` and returns a :class:`Response`, keeping its state in a
folder of its own so that repeated runs meet a remote that remembers. The server puts
simulators on one loopback port and injects the faults that every real remote has
(errors, latency, answers that never come); faults of one API (an expiring token, a
quota) are the simulator's, configured by the same :class:`Faults`.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qs, urlsplit

from ..fileio import write_atomic


@dataclass(frozen=True)
class Request:
    method: str
    #: The path below the simulator's mount point, starting with "/".
    path: str
    query: dict[str, list[str]]
    #: Header names in lower case.
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; None when it is empty or not JSON."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        # ensure_ascii=False: WeChat answers in UTF-8 with the Chinese as it is.
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        return cls(status, body, {"Content-Type": "application/json; charset=utf-8"})


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often. Rates are shares of requests (0.3 = 30%).

    The server's own: ``failure_rate`` answers 503 without doing anything;
    ``read_timeout_rate`` does the work and then drops the connection without an
    answer, as a remote that times out after committing does (the client cannot tell
    whether it happened); ``latency`` seconds are added to every answer.

    The simulators': ``token_expiry_every`` N API calls an access token dies (WeChat
    40001, the platform's 401); ``quota_after`` N calls, ``quota_calls`` calls are
    refused for quota (WeChat 45009), once; publish jobs stay running for
    ``slow_jobs`` polls."""

    failure_rate: float = 0.0
    read_timeout_rate: float = 0.0
    latency: float = 0.0
    token_expiry_every: int = 0
    quota_after: int = 0
    quota_calls: int = 5
    slow_jobs: int = 0
    seed: int | None = None


class Simulator(Protocol):
    """One remote API. ``mount`` is its path prefix on the server ("" for the root)."""

    name: ClassVar[str]
    mount: ClassVar[str]

    def handle(self, request: Request) -> Response: ...


class Store:
    """A simulator's state as one JSON file, written whole after each change."""

    def __init__(self, folder: Path, name: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{name}.json"
        self.lock = threading.RLock()
        self.data: dict[str, Any] = (
            json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        )

    def save(self) -> None:
        with self.lock:
            text = json.dumps(self.data, ensure_ascii=False, sort_keys=True, indent=1)
            write_atomic(self.path, text.encode("utf-8"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without it, Nagle's algorithm and delayed ACKs add ~40 ms per keep-alive reply.
    disable_nagle_algorithm = True
    server: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass  # the simulators keep their own request log

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        simulator, path = self.server.route(parts.path)
        fault = self.server.fault()
        if self.server.faults.latency:
            self.server.sleep(self.server.faults.latency)
        if simulator is None:
            response = Response.json({"error": f"no simulator serves {parts.path}"}, 404)
        elif fault == "fail":
            response = Response.json({"error": "injected failure"}, 503)
        else:
            request = Request(
                # HEAD is GET without the body (RFC 9110 §9.3.2): the simulators see a GET.
                "GET" if self.command == "HEAD" else self.command,
                path,
                parse_qs(parts.query, keep_blank_values=True),
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            response = simulator.handle(request)
        if fault == "drop":
            # The work is done; the answer never comes.
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def __getattr__(self, name: str) -> Any:
        # http.server looks up do_<METHOD>. Every method, QUERY and TRACE too, reaches the
        # simulators, which answer as their API does (405 with Allow, WeChat's 43002):
        # http.server's own 501 page is no API's answer.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        simulators: list[Simulator],
        faults: Faults,
        host: str = "127.0.0.1",
        port: int = 0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__((host, port), _Handler)
        # Longest mount first, so "/municipal" wins over the root.
        self.simulators = sorted(simulators, key=lambda s: -len(s.mount))
        self.faults = faults
        self.sleep = sleep
        self._random = random.Random(faults.seed)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str) -> tuple[Simulator | None, str]:
        for simulator in self.simulators:
            mount = simulator.mount.rstrip("/")
            if not mount or path == mount or path.startswith(mount + "/"):
                return simulator, path[len(mount) :] or "/"
        return None, path

    def fault(self) -> str | None:
        with self._lock:
            roll = self._random.random()
        if roll < self.faults.failure_rate:
            return "fail"
        if roll < self.faults.failure_rate + self.faults.read_timeout_rate:
            return "drop"
        return None


@dataclass
class Sandbox:
    """A running sandbox: its server on a background thread."""

    server: SandboxServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.server.url

    def url_for(self, name: str) -> str:
        """The base URL a channel talking to simulator ``name`` uses."""
        for simulator in self.server.simulators:
            if simulator.name == name:
                return self.url + simulator.mount.rstrip("/")
        raise KeyError(name)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
