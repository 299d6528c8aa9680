"""A real HTTP server on a loopback port that records what it receives."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.counts: Counter[str] = Counter()
        #: item id -> list of HTTP statuses to answer before answering 200
        self.failures: dict[str, list[int]] = {}
        #: item ids whose request is held until ``release`` is set
        self.block: set[str] = set()
        self.received_blocked = threading.Event()
        self.release = threading.Event()
        #: when set, a POST answers ``{"id": …, "url": receipt_url.format(id=item id)}``
        self.receipt_url: str | None = None
        #: DELETE <url>/<item id>: how many arrived per item id (the last path segment)
        self.deletes: Counter[str] = Counter()
        self.delete_paths: list[str] = []
        #: item id -> list of HTTP statuses to answer a DELETE before answering 200
        self.delete_failures: dict[str, list[int]] = {}
        #: item ids whose DELETE is held until ``release_delete`` is set
        self.block_delete: set[str] = set()
        self.received_blocked_delete = threading.Event()
        self.release_delete = threading.Event()

    def release_all(self) -> None:
        """Let every held request go (fixture teardown)."""
        self.release.set()
        self.release_delete.set()


def start_server(recorder: Recorder):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Without this, Nagle's algorithm and delayed ACKs add ~40 ms per keep-alive reply.
        disable_nagle_algorithm = True

        def log_message(self, *args):  # keep test output clean
            pass

        def do_POST(self):  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            item_id = body.get("id", "?")
            with recorder.lock:
                recorder.counts[item_id] += 1
                recorder.bodies.append(body)
                recorder.headers.append(dict(self.headers))
                statuses = recorder.failures.get(item_id)
                status = statuses.pop(0) if statuses else 200
            if item_id in recorder.block:
                recorder.received_blocked.set()
                recorder.release.wait(60)
            answer = {"id": f"remote-{item_id}"}
            if recorder.receipt_url is not None:
                answer["url"] = recorder.receipt_url.format(id=item_id)
            self._answer(status, answer)

        def do_DELETE(self):  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            item_id = self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            with recorder.lock:
                recorder.deletes[item_id] += 1
                recorder.delete_paths.append(self.path)
                statuses = recorder.delete_failures.get(item_id)
                status = statuses.pop(0) if statuses else 200
            if item_id in recorder.block_delete:
                recorder.received_blocked_delete.set()
                recorder.release_delete.wait(60)
            self._answer(status, {"id": f"remote-{item_id}", "deleted": True})

        def _answer(self, status: int, answer: dict) -> None:
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/items"
