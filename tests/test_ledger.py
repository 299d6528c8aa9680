"""The SQLite ledger's state machine and invariants, on real SQLite files."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from gongkai.ledger import Finish, IngestRecord, SQLiteLedger

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def record(item_id="a", digest="h1", channels=("c",), **kw):
    return IngestRecord(
        item_id=item_id,
        content_hash=digest,
        payload={"id": item_id},
        catalog="x",
        title="标题",
        channels=channels,
        **kw,
    )


@pytest.fixture
def ledger(tmp_path):
    db = SQLiteLedger(tmp_path / "ledger.sqlite3")
    yield db
    db.close()


def test_schema_is_versioned_and_wal(ledger, tmp_path):
    assert ledger.schema_version == 1
    raw = sqlite3.connect(tmp_path / "ledger.sqlite3")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.execute("PRAGMA user_version=99")
    raw.commit()
    raw.close()
    with pytest.raises(Exception, match="newer than this gongkai"):
        SQLiteLedger(tmp_path / "ledger.sqlite3")


def test_editions_new_unchanged_changed_stale(ledger):
    [first] = ledger.ingest([record(digest="h1")], NOW)
    assert (first.status, first.edition, first.plans) == ("new", 1, {"c": "queued"})
    [same] = ledger.ingest([record(digest="h1")], NOW)
    assert (same.status, same.edition, same.plans) == ("unchanged", 1, {"c": "unchanged"})
    [changed] = ledger.ingest([record(digest="h2")], NOW)
    assert (changed.status, changed.edition, changed.plans) == ("changed", 2, {"c": "superseded"})
    [stale] = ledger.ingest([record(digest="h1")], NOW)
    assert (stale.status, stale.edition, stale.latest_edition) == ("stale", 1, 2)
    assert [a["action"] for a in ledger.attempts("a")] == ["supersede"]


def test_claim_is_exclusive_and_finish_needs_the_lease(ledger):
    ledger.ingest([record()], NOW)
    lease = NOW + timedelta(minutes=15)
    assert ledger.claim("a", "c", "w1", NOW, lease) is not None
    assert ledger.claim("a", "c", "w2", NOW, lease) is None
    assert not ledger.finish("a", "c", "w2", 1, Finish(state="delivered"), NOW)
    assert ledger.finish("a", "c", "w1", 1, Finish(state="delivered", receipt={"x": 1}), NOW)
    [row] = ledger.rows()
    assert (row.state, row.delivered_edition, row.receipt) == ("delivered", 1, {"x": 1})


def test_two_connections_cannot_claim_the_same_delivery(tmp_path):
    one = SQLiteLedger(tmp_path / "l.sqlite3")
    two = SQLiteLedger(tmp_path / "l.sqlite3")
    one.ingest([record()], NOW)
    lease = NOW + timedelta(minutes=1)
    claims = [one.claim("a", "c", "p1", NOW, lease), two.claim("a", "c", "p2", NOW, lease)]
    assert sum(c is not None for c in claims) == 1


def test_expired_or_orphaned_lease_becomes_unknown_never_pending(ledger):
    ledger.ingest([record("a"), record("b")], NOW)
    ledger.claim("a", "c", "host:1:x", NOW, NOW + timedelta(minutes=5))
    ledger.claim("b", "c", "host:2:y", NOW, NOW + timedelta(hours=1))
    later = NOW + timedelta(minutes=10)
    expired = ledger.expire_leases(later, owner_alive=lambda owner: owner != "host:2:y")
    assert sorted(r.item_id for r in expired) == ["a", "b"]
    assert {r.state for r in ledger.rows()} == {"unknown"}
    assert ledger.due(later, ["c"]) == []
    outcomes = [a["outcome"] for a in ledger.attempts("a")]
    assert outcomes == ["unknown"]


def test_new_edition_waits_for_an_in_flight_one_then_requeues(ledger):
    ledger.ingest([record(digest="h1")], NOW)
    ledger.claim("a", "c", "w", NOW, NOW + timedelta(minutes=5))
    [answer] = ledger.ingest([record(digest="h2")], NOW)
    assert answer.plans == {"c": "waiting"}
    # The in-flight edition 1 finishes; it must not be lost, and edition 2 follows.
    assert ledger.finish("a", "c", "w", 1, Finish(state="delivered"), NOW)
    assert ledger.requeue_stale(NOW) == 1
    [row] = ledger.rows()
    assert (row.state, row.edition, row.content_hash, row.delivered_edition) == (
        "pending",
        2,
        "h2",
        1,
    )


def test_finish_of_an_older_edition_cannot_overwrite_a_newer_row(ledger):
    ledger.ingest([record(digest="h1")], NOW)
    ledger.claim("a", "c", "w", NOW, NOW + timedelta(minutes=5))
    ledger.expire_leases(NOW + timedelta(minutes=6), owner_alive=lambda o: True)
    ledger.settle("a", "c", ("unknown",), Finish(state="pending"), NOW)
    ledger.ingest([record(digest="h2")], NOW)
    assert not ledger.finish("a", "c", "w", 1, Finish(state="delivered"), NOW)
    assert ledger.rows()[0].edition == 2


def test_attempt_log_is_append_only(ledger, tmp_path):
    ledger.ingest([record()], NOW)
    ledger.claim("a", "c", "w", NOW, NOW + timedelta(minutes=5))
    ledger.finish("a", "c", "w", 1, Finish(state="failed", error="HTTP 400"), NOW)
    raw = sqlite3.connect(tmp_path / "ledger.sqlite3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("UPDATE attempts SET outcome = 'delivered'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("DELETE FROM attempts")


def test_scheduled_rows_are_not_due_before_their_time(ledger):
    ledger.ingest([record(not_before=NOW + timedelta(days=1))], NOW)
    assert ledger.due(NOW, ["c"]) == []
    assert [r.item_id for r in ledger.due(NOW + timedelta(days=1), ["c"])] == ["a"]


def test_index_numbers_are_allocated_once_per_item(ledger):
    assert ledger.index_numbers([("a", "ORG/2026"), ("b", "ORG/2026")]) == {
        "a": "ORG/2026-00001",
        "b": "ORG/2026-00002",
    }
    assert ledger.index_numbers([("x", "ORG/2026")], allocate=False) == {}
    assert ledger.index_numbers([("a", "ORG/2026"), ("c", "ORG/2027")]) == {
        "a": "ORG/2026-00001",
        "c": "ORG/2027-00001",
    }


def test_claim_many_finish_many_and_release(ledger):
    ledger.ingest([record("a"), record("b"), record("c")], NOW)
    lease = NOW + timedelta(minutes=5)
    ledger.claim("c", "c", "other", NOW, lease)
    got = ledger.claim_many([("a", "c"), ("b", "c"), ("c", "c")], "me", NOW, lease)
    assert sorted(r.item_id for r in got) == ["a", "b"]  # c belongs to another worker
    assert [r.attempts for r in got] == [0, 0]
    done = Finish(state="delivered", receipt={"id": 1}, started_at=NOW)
    assert ledger.finish_many([("a", "c", "me", 1, done, NOW), ("b", "c", "x", 1, done, NOW)]) == [
        True,
        False,
    ]
    assert [a["outcome"] for a in ledger.attempts("b")] == ["delivered"]  # logged anyway
    ledger.release([("b", "c")], "me", NOW)
    states = {r.item_id: (r.state, r.attempts) for r in ledger.rows()}
    assert states == {"a": ("delivered", 1), "b": ("pending", 0), "c": ("in-flight", 1)}
