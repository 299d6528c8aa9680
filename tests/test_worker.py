"""``gongkai worker``: lease heartbeats, waiting for work, SIGTERM, ``--once``.

Ledger-level parts run on a real SQLite file with an injected clock and sleeper; the
signal tests run real ``gongkai worker`` processes against a loopback remote
(tests/support/drain.py), where waiting for a real process is the point.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from gongkai import Publisher
from gongkai.lease import set_host, this_host
from gongkai.ledger import Capabilities, IngestRecord, SQLiteLedger
from gongkai.loader import LoadedItem
from gongkai.results import RunResult
from gongkai.worker import Heartbeat, Worker
from support import drain

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
CAN = Capabilities(deliver=frozenset({"c"}))


def record(item_id):
    return IngestRecord(
        item_id=item_id,
        content_hash=f"h-{item_id}",
        payload={"id": item_id},
        catalog="x",
        title="标题",
        channels=("c",),
    )


@pytest.fixture
def ledger(tmp_path):
    db = SQLiteLedger(tmp_path / "ledger.sqlite3")
    yield db
    db.close()


def claim_as(ledger, owner, *item_ids, seconds=3):
    rows = [r for r in ledger.due(NOW, CAN) if r.item_id in item_ids]
    return ledger.claim_many(rows, owner, NOW, NOW + timedelta(seconds=seconds))


def test_heartbeat_keeps_a_long_delivery_claimed_while_a_dead_hosts_claim_lapses(ledger):
    ledger.ingest([record(i) for i in "abcd"], NOW)
    claim_as(ledger, "host-1:10:aa", "a", "b")
    claim_as(ledger, "host-1:10:aab", "c")  # another owner whose name merely starts alike
    claim_as(ledger, "host-2:11:cc", "d")  # a host that died: nobody renews it
    later = NOW + timedelta(seconds=2)
    beat = Heartbeat(ledger, "host-1:10:aa", lease_seconds=3, clock=lambda: later)
    assert beat.beat() == 2
    # Past the first leases, before the renewed ones: only the unrenewed claims lapse.
    settled = ledger.expire_leases(NOW + timedelta(seconds=4), owner_alive=lambda owner: True)
    assert sorted(r.item_id for r in settled) == ["c", "d"]
    assert {r.item_id: r.state for r in ledger.rows()} == {
        "a": "in-flight",
        "b": "in-flight",
        "c": "unknown",
        "d": "unknown",
    }
    # A lease that ran out is not renewed: anyone may settle that claim by now.
    late = Heartbeat(
        ledger, "host-1:10:aa", lease_seconds=3, clock=lambda: NOW + timedelta(seconds=6)
    )
    assert late.beat() == 0


def test_heartbeat_renews_every_interval_until_the_pass_ends(ledger):
    ledger.ingest([record("a")], NOW)
    claim_as(ledger, "w:1:x", "a")
    waits = []
    clock = iter(NOW + timedelta(seconds=n) for n in range(1, 10))

    def wait(seconds):
        waits.append(seconds)
        return len(waits) > 3  # the pass ends after three intervals

    heartbeat = Heartbeat(ledger, "w:1:x", lease_seconds=3, clock=lambda: next(clock), wait=wait)
    heartbeat.run()
    assert heartbeat.beats == 3
    assert waits == [1.0] * 4  # a third of the lease
    # The lease now runs three seconds past the last beat.
    assert ledger.expire_leases(NOW + timedelta(seconds=5), lambda owner: True) == []
    assert len(ledger.expire_leases(NOW + timedelta(seconds=7), lambda owner: True)) == 1


def test_sqlite_wait_for_work_wakes_when_another_process_records(tmp_path):
    waiting = SQLiteLedger(tmp_path / "ledger.sqlite3")
    other = SQLiteLedger(tmp_path / "ledger.sqlite3")
    try:
        slept = []
        assert waiting.wait_for_work(1.0, slept.append) is False
        assert sum(slept) == pytest.approx(1.0) and len(slept) > 1  # looked between slices
        slept.clear()

        def sleep(seconds):
            slept.append(seconds)
            if len(slept) == 2:
                other.ingest([record("a")], NOW)

        assert waiting.wait_for_work(5.0, sleep) is True
        assert len(slept) == 2  # returned at the first look after the commit
    finally:
        waiting.close()
        other.close()


def test_an_idle_worker_waits_on_the_ledger_between_passes(tmp_path):
    """No tight loop: with nothing due, a pass is followed by a wait of up to --poll
    seconds on the ledger (in slices, so a stop is heard); new work ends it early."""
    config = drain.write_config(tmp_path, "http://127.0.0.1:9/items")
    sys.path.insert(0, str(drain.SUPPORT))
    try:
        with Publisher.from_config(config) as publisher:
            worker = Worker(publisher, poll=2.5)
            waits = []

            def wait_for_work(timeout, sleep):
                waits.append(timeout)
                if len(waits) >= 3:
                    worker.request_stop()  # heard before the last half second is asked
                return len(waits) == 1  # the first wait is woken by new work

            publisher.ledger.wait_for_work = wait_for_work
            worker.serve()
    finally:
        sys.path.remove(str(drain.SUPPORT))
    assert worker.passes == 2
    assert waits == [1.0, 1.0, 1.0]


def _json_lines(path):
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [line["event"] for line in lines]


def test_sigterm_finishes_the_delivery_under_way_gives_back_the_rest_and_exits_0(tmp_path):
    with drain.remote(latency=0) as remote:
        config = drain.write_config(tmp_path, remote.url, concurrency=1, channel="safepost")
        drain.fill(config, 5)
        remote.hold.add("drain-000000")
        workers = drain.Workers(config, tmp_path, grace=60)
        proc = workers.start("host-1")
        workers.wait_started("host-1")
        assert remote.holding.wait(60), "the first delivery never reached the remote"
        # Resend-safe deliveries are claimed in a batch: the other four are claimed too.
        assert drain.counts(config) == {"in-flight": 5}
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while drain.counts(config).get("pending") != 4:  # given back while one runs
            assert time.monotonic() < deadline, drain.counts(config)
            time.sleep(0.05)  # waiting on a real process
        assert proc.poll() is None  # still finishing the delivery under way
        remote.release.set()
        assert proc.wait(60) == 0
        received = dict(remote.received)
    assert received == {("drain-000000", 1): 1}
    assert drain.counts(config) == {"delivered": 1, "pending": 4}
    with Publisher.from_config(config, sends=False) as publisher:
        rows = {r.item_id: r for r in publisher.status()}
    assert {r.attempts for i, r in rows.items() if i != "drain-000000"} == {0}
    events = _json_lines(workers.log("host-1"))  # every line is JSON
    assert events[0] == "worker started"
    assert events.index("worker stopping") < events.index("delivered")
    assert events[-1] == "worker stopped"


def test_once_runs_one_pass_and_exits(tmp_path):
    with drain.remote(latency=0) as remote:
        config = drain.write_config(tmp_path, remote.url)
        drain.fill(config, 3)
        done = subprocess.run(
            [*drain.WORKER, "-c", str(config), "--once", "--host-id", "h1"],
            env=drain.env(),
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert sum(remote.received.values()) == 3
    assert drain.counts(config) == {"delivered": 3}
    assert b'"event": "pass done"' in done.stderr


def test_a_bad_host_id_is_refused(tmp_path):
    config = drain.write_config(tmp_path, "http://127.0.0.1:9/items")
    done = subprocess.run(
        [*drain.WORKER, "-c", str(config), "--once", "--host-id", "a:b"],
        env=drain.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--host-id" in done.stderr and "without ':'" in done.stderr


@pytest.mark.parametrize("host", ["a:b", "a#1", "bad id", "", "tab\there"])
def test_host_ids_that_would_break_claim_owners_are_refused(host):
    with pytest.raises(ValueError, match="give a name without"):
        set_host(host)
    set_host(None)  # unchanged: the machine's name
    assert this_host() == socket.gethostname()


def test_a_pass_takes_a_window_of_the_backlog_so_workers_share_it(make_publisher, item_factory):
    """A resend-safe channel's deliveries are claimed in a batch: without a window the
    first worker would claim the whole backlog and the others would find nothing."""
    publisher = make_publisher(guarantee="upsert")
    items = [item_factory(id=f"jt-w-{n}") for n in range(5)]
    publisher.run().intake.ingest([LoadedItem(i, "<test>") for i in items], RunResult())
    first = Worker(publisher, window=2).run_once()
    assert sorted(o.status for o in first.outcomes) == ["delivered", "delivered"]
    assert publisher.ledger.counts(("pending", "delivered")) == {"pending": 3, "delivered": 2}
    Worker(publisher, window=10).run_once()
    assert publisher.ledger.counts(("pending", "delivered")) == {"delivered": 5}
