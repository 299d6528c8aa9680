"""A loopback LED screen controller, for tests and demos.

It serves the playlist API the channel speaks (see :mod:`gongkai_led_screen.channel`)
on 127.0.0.1, keeps the playlist in memory, refuses a line wider than its panel (422,
saying which) and records every request. Faults can be queued: the next answers
are given statuses instead of being served.

    python -m gongkai_led_screen.simulator --port 8765 --width 16

    with ControllerSimulator(width=16) as controller:
        controller.url            # http://127.0.0.1:<port>/api
        controller.showing()      # [entry, …] by position
        controller.fail_next(503, method="PUT")  # the next PUT gets a 503
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/api/playlist"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None


@dataclass
class Controller:
    """The controller's state: the playlist in play order, requests, queued faults."""

    width: int = 16
    token: str | None = None
    playlist: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    #: Queued (method or None for any, status) answers given instead of serving.
    faults: deque[tuple[str | None, int]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes):
        body = json.loads(raw) if raw else None
        with self.lock:
            self.requests.append(Recorded(method, path, headers, body))
            if self.faults and self.faults[0][0] in (None, method):
                return self.faults.popleft()[1], {"error": "injected fault"}
        if self.token and headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "bad token"}
        if path == PREFIX and method == "GET":
            return 200, {"entries": self.showing()}
        if not path.startswith(PREFIX + "/"):
            return 404, {"error": "no such path"}
        item_id = path[len(PREFIX) + 1 :]
        if method == "PUT":
            return self._put(item_id, body)
        if method == "DELETE":
            with self.lock:
                found = self.playlist.pop(item_id, None)
            return (204, None) if found else (404, {"error": "not on the playlist"})
        return 405, {"error": "method not allowed"}

    def _put(self, item_id: str, entry: Any):
        if not isinstance(entry, dict) or not isinstance(entry.get("lines"), list):
            return 400, {"error": "body must be an entry with lines"}
        for number, line in enumerate(entry["lines"], 1):
            if not isinstance(line, str) or len(line) > self.width:
                return 422, {"error": f"line {number} is wider than the panel ({self.width})"}
        if entry.get("id") != item_id or not entry.get("from") or not entry.get("to"):
            return 400, {"error": "id must match the path; from and to are required"}
        with self.lock:
            added = item_id not in self.playlist
            self.playlist[item_id] = entry  # upsert: keyed by item id
        return (201 if added else 200), {"id": item_id, "position": self.position(item_id)}

    def position(self, item_id: str) -> int:
        return list(self.playlist).index(item_id) + 1

    def showing(self, on: str | None = None) -> list[dict[str, Any]]:
        """The entries in play order; with ``on`` (an ISO date), only those shown that day."""
        with self.lock:
            entries = list(self.playlist.values())
        return [e for e in entries if on is None or e["from"] <= on <= e["to"]]

    def fail_next(self, *statuses: int, method: str | None = None) -> None:
        """Answer the next requests (of ``method`` only, if given) with ``statuses``."""
        with self.lock:
            self.faults.extend((method, status) for status in statuses)


class _Handler(BaseHTTPRequestHandler):
    controller: Controller

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, answer = self.controller.handle(self.command, self.path, headers, raw)
        except ValueError:
            status, answer = 400, {"error": "body is not JSON"}
        data = b"" if answer is None else json.dumps(answer, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_DELETE = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        pass  # tests read controller.requests instead


class ControllerSimulator(Controller):
    """The controller served over HTTP on 127.0.0.1 (port 0: any free port)."""

    def __init__(self, width: int = 16, token: str | None = None, port: int = 0) -> None:
        super().__init__(width=width, token=token)
        handler = type("Handler", (_Handler,), {"controller": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def __enter__(self) -> ControllerSimulator:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a loopback LED screen controller")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--width", type=int, default=16, help="characters per panel line")
    args = parser.parse_args(argv)
    with ControllerSimulator(width=args.width, port=args.port) as controller:
        print(f"LED controller at {controller.url} (Ctrl-C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            controller.thread.join()


if __name__ == "__main__":
    main()
