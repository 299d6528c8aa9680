"""Real ``gongkai worker`` processes draining a ledger into a loopback remote.

Shared by tests/test_worker_drain.py (a small drain under chaos) and bench/workers.py
(throughput of 1, 2 and 4 workers). The remote is a real HTTP server on a loopback
port that waits ``latency`` seconds before answering each POST and counts what it got
per (item, edition): a duplicate is a second POST of the same edition. The channel is
:mod:`slowpost` (guarantee ``none``), loaded into each worker as an unpackaged plugin.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from gongkai import Item, Publisher
from gongkai.loader import LoadedItem
from gongkai.results import RunResult

SUPPORT = Path(__file__).resolve().parent
#: Where every delivery ends once drained, on a channel that cannot take a resend.
SETTLED = ("delivered", "unknown")
OPEN = ("pending", "retry-wait", "in-flight")


class Remote:
    """A loopback HTTP server that answers each POST after ``latency`` seconds and
    counts the (item id, edition) pairs it received."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.received: Counter[tuple[str, int]] = Counter()
        #: Item ids whose POST is held (after being counted) until ``release`` is set.
        #: When the first request came and the last answer went (monotonic seconds).
        self.first = 0.0
        self.last = 0.0
        self.hold: set[str] = set()
        self.holding = threading.Event()
        self.release = threading.Event()
        remote = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep output clean
                pass

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with remote.lock:
                    remote.received[(body["id"], body["edition"])] += 1
                    remote.first = remote.first or time.monotonic()
                if body["id"] in remote.hold:
                    remote.holding.set()
                    remote.release.wait(60)
                time.sleep(remote.latency)  # the remote's own latency, not a test's wait
                payload = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                with remote.lock:
                    remote.last = time.monotonic()

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def handle_error(self, request, client_address):
                pass  # a killed worker drops its connection: expected under chaos

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/items"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def duplicates(self) -> dict[tuple[str, int], int]:
        with self.lock:
            return {pair: n for pair, n in self.received.items() if n > 1}

    def throughput(self) -> float:
        """Requests answered per second, from the first request to the last answer."""
        with self.lock:
            span = self.last - self.first
            return sum(self.received.values()) / span if span > 0 else 0.0

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def write_config(
    folder: Path,
    url: str,
    *,
    ledger: str | None = None,
    lease_seconds: float = 3.0,
    concurrency: int = 8,
    channel: str = "slowpost",
) -> Path:
    """A config.toml delivering every item to ``slowpost`` at ``url``; ``ledger`` a
    PostgreSQL URL, or None for SQLite under ``folder``."""
    lines = [
        "[gongkai]",
        f'state_dir = "{folder / "state"}"',
        'org_code = "11510121009087532X"',
        f"lease_seconds = {lease_seconds}",
        f"concurrency = {concurrency}",
        *([f'ledger = "{ledger}"'] if ledger else []),
        "",
        "[plugins]",
        'load = ["slowpost"]',
        "",
        f"[channels.{channel}]",
        "every_item = true",
        f'url = "{url}"',
        "",
    ]
    path = folder / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


#: How a test starts the CLI: the installed ``gongkai`` script may belong to another
#: Python than the one running the tests.
WORKER = (
    sys.executable,
    "-c",
    "import sys; from gongkai.cli import main; sys.exit(main())",
    "worker",
)


def env() -> dict[str, str]:
    """The environment of a worker process: this folder on PYTHONPATH, for the plugin."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SUPPORT), env.get("PYTHONPATH")) if p)
    return env


def fill(config: Path, count: int) -> None:
    """Record ``count`` items, each one delivery queued, without delivering any."""
    sys.path.insert(0, str(SUPPORT))  # the plugin, for this process too
    try:
        with Publisher.from_config(config) as publisher:
            intake = publisher.run().intake  # creates the ledger
            items = (
                LoadedItem(
                    Item(
                        id=f"drain-{n:06d}",
                        catalog="housing.policy",
                        title=f"金堂县公共租赁住房申请指南（第{n}号）",
                        body="申请条件：在本县有稳定工作。申请材料：身份证明。办理流程：个人申请后审核。",
                        publisher="金堂县房产管理局",
                        formed_on=date(2026, 11, 20),
                    ),
                    "<drain>",
                )
                for n in range(count)
            )
            result = RunResult()
            intake.ingest(items, result)
            if result.problems:
                raise ValueError(f"drain items refused: {result.problems[0]}")
    finally:
        sys.path.remove(str(SUPPORT))


def counts(config: Path) -> dict[str, int]:
    with Publisher.from_config(config, sends=False) as publisher:
        return publisher.ledger.counts((*SETTLED, *OPEN, "failed"))


@dataclass
class Workers:
    """``gongkai worker`` processes, one per host id, their logs in ``folder``."""

    config: Path
    folder: Path
    poll: float = 0.5
    grace: float = 10.0
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    starts: Counter[str] = field(default_factory=Counter)

    def start(self, host: str) -> subprocess.Popen:
        self.starts[host] += 1
        with self.log(host).open("wb") as stderr:
            proc = subprocess.Popen(
                [
                    *WORKER,
                    "-c",
                    str(self.config),
                    "--host-id",
                    host,
                    "--poll",
                    str(self.poll),
                    "--grace",
                    str(self.grace),
                ],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env(),
            )
        self.procs[host] = proc
        return proc

    def kill(self, host: str) -> None:
        proc = self.procs[host]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def log(self, host: str) -> Path:
        return self.folder / f"{host}.{self.starts[host]}.log"

    def wait_started(self, host: str, timeout: float = 60.0) -> None:
        """Until the worker logged that it started (its SIGTERM handler is in place)."""
        deadline = time.monotonic() + timeout
        while b'"worker started"' not in self.log(host).read_bytes():
            if self.procs[host].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {host} did not start: see {self.log(host)}")
            time.sleep(0.05)  # waiting on a real process

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every worker once it is up; their exit codes."""
        for host in self.procs:
            self.wait_started(host)
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        return {host: proc.wait(60) for host, proc in self.procs.items()}


@dataclass
class Drained:
    seconds: float
    counts: dict[str, int]
    kills: int
    exit_codes: dict[str, int]


@contextmanager
def remote(latency: float) -> Iterator[Remote]:
    server = Remote(latency)
    try:
        yield server
    finally:
        server.close()


def drain(
    config: Path,
    folder: Path,
    *,
    total: int,
    workers: int,
    chaos_every: float | None = None,
    timeout: float = 600.0,
    look_every: float = 0.2,
    seed: int = 14,
) -> Drained:
    """Start ``workers`` worker processes (hosts ``host-1`` …) and wait until all
    ``total`` deliveries are settled; every ``chaos_every`` seconds SIGKILL a random
    worker and start it again under the same host id. Then SIGTERM them all."""
    pool = Workers(config, folder)
    hosts = [f"host-{n}" for n in range(1, workers + 1)]
    chooser = random.Random(seed)
    begun = time.monotonic()
    kills = 0
    # The first kill comes as soon as work is under way, so that even a small drain
    # sees one; then one every chaos_every seconds.
    next_kill = begun if chaos_every else None
    try:
        for host in hosts:
            pool.start(host)
        while True:
            now = time.monotonic()
            found = counts(config)
            if sum(found.get(s, 0) for s in (*SETTLED, "failed")) >= total:
                break
            if now - begun > timeout:
                raise TimeoutError(f"not drained after {timeout:g} s: {found}")
            if next_kill is not None and now >= next_kill and found.get("delivered"):
                victim = chooser.choice(hosts)
                pool.kill(victim)
                kills += 1
                pool.start(victim)
                next_kill = now + chaos_every
            time.sleep(look_every)  # watching real processes: real time is the point
        seconds = time.monotonic() - begun
    finally:
        codes = pool.stop_all()
    return Drained(seconds, counts(config), kills, codes)
