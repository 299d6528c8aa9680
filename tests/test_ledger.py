"""The ledger's state machine and invariants, on both backends: real SQLite files and
a real PostgreSQL server (a schema of its own per test, see tests/support/pg.py)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gongkai.errors import StateError
from gongkai.ledger import (
    Capabilities,
    Event,
    IllegalTransition,
    IngestRecord,
    Ledger,
    SQLiteLedger,
    Step,
)
from gongkai.ledger.postgres import MIGRATIONS as PG_MIGRATIONS
from gongkai.ledger.select import open_ledger
from gongkai.ledger.sqlite import MIGRATIONS, _statements
from support.pg import BACKENDS, empty_ledger, ledger_url

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
LEASE = NOW + timedelta(minutes=15)
CAN = Capabilities(deliver=frozenset({"c"}))
DONE_STEP = Step(Event.SUCCEEDED, receipt={"status": "delivered", "external_id": "x"})


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


@pytest.fixture(params=BACKENDS)
def ledger(request, tmp_path):
    with empty_ledger(request.param, tmp_path) as db:
        yield db


def claim(ledger, item_id="a", owner="w", now=NOW):
    [row] = [r for r in ledger.due(now, CAN) if r.item_id == item_id]
    return ledger.claim(row, owner, now, LEASE)


def finish(ledger, claimed, step, now=NOW):
    """Finish a claim with its own lease token."""
    return ledger.finish(claimed.item_id, "c", claimed.lease_owner, claimed.edition, step, now)


def state_of(ledger, item_id="a"):
    row = ledger.row(item_id, "c")
    return (row.state, row.edition, row.intent)


def test_schema_is_versioned_and_wal(tmp_path):
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite3")
    assert ledger.schema_version == len(MIGRATIONS) == 4
    ledger.close()
    raw = sqlite3.connect(tmp_path / "ledger.sqlite3")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.execute("PRAGMA user_version=99")
    raw.commit()
    raw.close()
    with pytest.raises(Exception, match="newer than this gongkai"):
        SQLiteLedger(tmp_path / "ledger.sqlite3")


def test_a_version_one_ledger_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.sqlite3"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN")
    for statement in _statements(MIGRATIONS[0]):
        raw.execute(statement)
    raw.execute("PRAGMA user_version=1")
    raw.execute(
        "INSERT INTO item_state (item_id, latest_edition, withdrawn_at) VALUES ('w', 1, '2026-11-01T00:00:00+00:00')"
    )
    raw.execute(
        "INSERT INTO deliveries (item_id, channel, state, edition, content_hash, updated_at) "
        "VALUES ('w', 'c', 'failed', 1, 'h', '2026-11-01T00:00:00+00:00')"
    )
    raw.execute("COMMIT")
    raw.close()
    ledger = SQLiteLedger(path)
    assert ledger.schema_version == 4
    assert ledger.row("w", "c").intent == "withdraw"
    ledger.close()


def test_editions_new_unchanged_changed_stale(ledger):
    [first] = ledger.ingest([record(digest="h1")], NOW)
    assert (first.status, first.edition, first.plans) == ("new", 1, {"c": "queued"})
    [same] = ledger.ingest([record(digest="h1")], NOW)
    assert (same.status, same.edition, same.plans) == ("unchanged", 1, {"c": "unchanged"})
    [changed] = ledger.ingest([record(digest="h2")], NOW)
    assert (changed.status, changed.edition, changed.plans) == ("changed", 2, {"c": "superseded"})
    [stale] = ledger.ingest([record(digest="h1")], NOW)
    assert (stale.status, stale.edition, stale.latest_edition) == ("stale", 1, 2)
    assert [(a.action, a.edition) for a in ledger.attempts("a")] == [("superseded", 1)]


def test_bulk_reads_answer_as_the_per_item_ones(ledger):
    """all_editions and first_delivered (one query each for reports over the whole
    ledger) give what editions() per item and the attempt log give."""
    ledger.ingest([record("a", "h1"), record("b", "h1"), record("never", "h1")], NOW)
    ledger.ingest([record("a", "h2")], NOW + timedelta(hours=1))
    for item_id, at in (("b", NOW + timedelta(hours=2)), ("a", NOW + timedelta(hours=3))):
        finish(ledger, claim(ledger, item_id, now=at), DONE_STEP, now=at)
    assert ledger.all_editions() == {
        s.item_id: ledger.editions(s.item_id) for s in ledger.item_summaries()
    }
    assert [e.edition for e in ledger.all_editions()["a"]] == [1, 2]
    delivered = {
        e.item_id: e.finished_at for e in ledger.attempt_log(NOW) if e.state == "delivered"
    }
    assert ledger.first_delivered() == delivered
    assert delivered == {"b": NOW + timedelta(hours=2), "a": NOW + timedelta(hours=3)}
    # The base class's default (for third-party backends) agrees with the query.
    assert Ledger.all_editions(ledger) == ledger.all_editions()
    assert Ledger.first_delivered(ledger) == ledger.first_delivered()


def test_claim_is_exclusive_and_finish_needs_the_lease(ledger):
    ledger.ingest([record()], NOW)
    [row] = ledger.due(NOW, CAN)
    mine = ledger.claim(row, "w1", NOW, LEASE)
    assert mine is not None and mine.lease_owner.startswith("w1#")
    assert ledger.claim(row, "w2", NOW, LEASE) is None
    assert ledger.finish("a", "c", "w1", 1, DONE_STEP, NOW) is None  # not the claim's token
    assert finish(ledger, mine, DONE_STEP) == "delivered"
    row = ledger.row("a", "c")
    assert (row.state, row.delivered_edition, row.receipt["external_id"]) == ("delivered", 1, "x")


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_connections_cannot_claim_the_same_delivery(backend, tmp_path):
    with ledger_url(backend, tmp_path) as url:
        one, two = open_ledger(url), open_ledger(url)
        one.ingest([record()], NOW)
        [row] = one.due(NOW, CAN)
        claims = [one.claim(row, "p1", NOW, LEASE), two.claim(row, "p2", NOW, LEASE)]
        assert sum(c is not None for c in claims) == 1
        one.close()
        two.close()


def test_a_postgres_schema_newer_than_gongkai_is_left_alone(tmp_path):
    with ledger_url("postgresql", tmp_path) as url:
        ledger = open_ledger(url)
        assert ledger.schema_version == len(PG_MIGRATIONS)
        with ledger._write() as db:
            db.execute("UPDATE gongkai_schema SET version = 99")
        ledger.close()
        with pytest.raises(StateError, match="newer than this gongkai"):
            open_ledger(url)


def test_expired_or_orphaned_lease_becomes_unknown_never_pending(ledger):
    ledger.ingest([record("a"), record("b")], NOW)
    [a, b] = ledger.due(NOW, CAN)
    ledger.claim(a, "host:1:x", NOW, NOW + timedelta(minutes=5))
    ledger.claim(b, "host:2:y", NOW, NOW + timedelta(hours=1))
    later = NOW + timedelta(minutes=10)
    expired = ledger.expire_leases(
        later, owner_alive=lambda owner: not owner.startswith("host:2:y#")
    )
    assert sorted(r.item_id for r in expired) == ["a", "b"]
    assert {r.state for r in ledger.rows()} == {"unknown"}
    # No channel here can look an unknown outcome up: nothing is due.
    assert ledger.due(later, CAN) == []
    assert [a.outcome for a in ledger.attempts("a")] == ["unknown"]
    # One that can gets them as lookups.
    lookup = Capabilities(deliver=frozenset({"c"}), reconcile=frozenset({"c"}))
    assert {(r.state, r.action) for r in ledger.due(later, lookup)} == {("unknown", "reconcile")}


def test_interrupted_lookup_poll_or_take_down_is_simply_queued_again(ledger):
    ledger.ingest([record()], NOW)
    finish(ledger, claim(ledger), Step(Event.OUTCOME_UNKNOWN))
    can = Capabilities(deliver=frozenset({"c"}), reconcile=frozenset({"c"}))
    [row] = ledger.due(NOW, can)
    assert row.action == "reconcile"
    ledger.claim(row, "gone", NOW, LEASE)
    ledger.expire_leases(NOW, owner_alive=lambda owner: False)
    assert state_of(ledger) == ("unknown", 1, "deliver")


def test_new_edition_waits_for_an_in_flight_one_then_supersedes_it(ledger):
    ledger.ingest([record(digest="h1")], NOW)
    claimed = claim(ledger)
    [answer] = ledger.ingest([record(digest="h2")], NOW)
    assert answer.plans == {"c": "waiting"}
    # Edition 1 lands; the state machine queues edition 2 in the same transaction.
    assert finish(ledger, claimed, DONE_STEP) == "pending"
    row = ledger.row("a", "c")
    assert (row.state, row.edition, row.content_hash, row.delivered_edition) == (
        "pending",
        2,
        "h2",
        1,
    )


def test_a_newer_edition_keeps_its_embargo_when_it_supersedes(ledger):
    ledger.ingest([record(digest="h1")], NOW)
    claimed = claim(ledger)
    later = NOW + timedelta(days=2)
    ledger.ingest([record(digest="h2", not_before=later)], NOW)
    finish(ledger, claimed, DONE_STEP)
    assert ledger.row("a", "c").next_attempt_at == later
    assert ledger.due(NOW, CAN) == []


def test_finish_of_an_older_edition_cannot_overwrite_a_newer_row(ledger):
    ledger.ingest([record(digest="h1")], NOW)
    claimed = claim(ledger)
    ledger.expire_leases(NOW + timedelta(minutes=16), owner_alive=lambda o: True)
    assert ledger.requeue("a", "c", ("unknown",), NOW, "operator checked")
    ledger.ingest([record(digest="h2")], NOW)
    assert finish(ledger, claimed, DONE_STEP) is None
    assert ledger.row("a", "c").edition == 2


def test_attempt_log_is_append_only(ledger):
    """The database itself refuses: not only gongkai's code paths."""
    ledger.ingest([record()], NOW)
    finish(ledger, claim(ledger), Step(Event.FAILED, error="HTTP 400"))
    for statement in ("UPDATE attempts SET outcome = 'delivered'", "DELETE FROM attempts"):
        with pytest.raises(Exception, match="append-only"), ledger._write() as db:
            db.execute(statement)
    assert [a.outcome for a in ledger.attempts("a")] == ["failed"]


def test_scheduled_rows_are_not_due_before_their_time(ledger):
    ledger.ingest([record(not_before=NOW + timedelta(days=1))], NOW)
    assert ledger.due(NOW, CAN) == []
    assert [r.item_id for r in ledger.due(NOW + timedelta(days=1), CAN)] == ["a"]


def test_index_numbers_are_allocated_once_per_item_and_outgrow_five_digits(ledger):
    assert ledger.index_numbers([("a", "ORG/2026"), ("b", "ORG/2026")]) == {
        "a": "ORG/2026-00001",
        "b": "ORG/2026-00002",
    }
    assert ledger.index_numbers([("x", "ORG/2026")], allocate=False) == {}
    assert ledger.index_numbers([("a", "ORG/2026"), ("c", "ORG/2027")]) == {
        "a": "ORG/2026-00001",
        "c": "ORG/2027-00001",
    }
    with ledger._write() as db:
        db.execute("UPDATE index_serials SET last = 99999 WHERE prefix = 'ORG/2026'")
    assert ledger.index_numbers([("d", "ORG/2026")]) == {"d": "ORG/2026-100000"}


def test_claim_many_finish_many_and_release(ledger):
    ledger.ingest([record("a"), record("b"), record("c")], NOW)
    rows = ledger.due(NOW, CAN)
    ledger.claim(rows[2], "other", NOW, LEASE)
    got = ledger.claim_many(rows, "me", NOW, LEASE)
    assert sorted(r.item_id for r in got) == ["a", "b"]  # c belongs to another worker
    assert [r.attempts for r in got] == [0, 0]
    a, b = got
    entries = [("a", "c", a.lease_owner, 1, DONE_STEP, NOW), ("b", "c", "x", 1, DONE_STEP, NOW)]
    assert ledger.finish_many(entries) == ["delivered", None]
    assert [a.outcome for a in ledger.attempts("b")] == ["succeeded"]  # logged anyway
    ledger.release([replace(b, lease_owner="me#999")], NOW)  # not its claim: ignored
    assert ledger.row("b", "c").state == "in-flight"
    ledger.release([b], NOW)
    states = {r.item_id: (r.state, r.attempts) for r in ledger.rows()}
    assert states == {"a": ("delivered", 1), "b": ("pending", 0), "c": ("in-flight", 1)}


def test_an_illegal_transition_raises_and_changes_nothing(ledger):
    ledger.ingest([record()], NOW)
    finish(ledger, claim(ledger), DONE_STEP)
    before = ledger.row("a", "c")
    delivered = replace(before, action="deliver")
    with pytest.raises(IllegalTransition, match="delivered --claimed--> in-flight"):
        ledger.claim(delivered, "w", NOW, LEASE)
    assert ledger.row("a", "c") == before


def test_withdraw_cancels_what_never_went_out_and_queues_take_downs(ledger):
    ledger.ingest([record("sent"), record("queued"), record("lost"), record("busy")], NOW)
    claims = {item_id: claim(ledger, item_id) for item_id in ("sent", "lost", "busy")}
    finish(ledger, claims["sent"], DONE_STEP)
    finish(ledger, claims["lost"], Step(Event.OUTCOME_UNKNOWN))
    for item_id in ("sent", "queued", "lost", "busy"):
        ledger.request_withdraw(item_id, "信息有误", NOW)
    assert state_of(ledger, "sent") == ("pending", 1, "withdraw")
    assert state_of(ledger, "queued") == ("withdrawn", 1, "withdraw")
    assert state_of(ledger, "lost") == ("pending", 1, "withdraw")  # it may be out there
    assert state_of(ledger, "busy") == ("in-flight", 1, "withdraw")
    # Whatever the busy delivery's outcome, a take-down follows it: withdrawal wins.
    assert finish(ledger, claims["busy"], DONE_STEP) == "pending"
    assert {r.action for r in ledger.due(NOW, CAN)} == {"withdraw"}
    assert ledger.withdrawal("sent") == (NOW, "信息有误")
    assert ledger.ingest([record("sent", digest="h9")], NOW)[0].status == "withdrawn"


def test_counts_of_states_needing_attention(ledger):
    ledger.ingest([record("a"), record("b")], NOW)
    finish(ledger, claim(ledger, "a"), Step(Event.FAILED, error="HTTP 400"))
    assert ledger.counts(["failed", "unknown", "pending"]) == {"failed": 1, "pending": 1}


def test_a_late_answer_to_a_lost_claim_never_finishes_a_newer_claim(ledger):
    """A claim is known by its own token, not by the process that made it."""
    ledger.ingest([record()], NOW)
    first = claim(ledger, owner="host:1:w")
    later = NOW + timedelta(minutes=20)
    ledger.expire_leases(later, owner_alive=lambda owner: True)  # lease ran out: unknown
    ledger.requeue("a", "c", ("unknown",), later, "operator checked: not there")
    second = claim(ledger, owner="host:1:w", now=later)
    assert finish(ledger, first, DONE_STEP, later) is None
    ledger.release([first], later)
    assert ledger.row("a", "c").lease_owner == second.lease_owner
    assert finish(ledger, second, DONE_STEP, later) == "delivered"


def test_a_withdrawal_takes_down_what_an_unknown_answer_may_have_left(ledger):
    """A failed attempt whose request may have landed is taken down, not cancelled."""
    ledger.ingest([record("maybe"), record("surely-not")], NOW)
    maybe = claim(ledger, "maybe")
    finish(ledger, maybe, Step(Event.DEFERRED, next_attempt_at=LEASE, uncertain=True))
    finish(ledger, claim(ledger, "surely-not"), Step(Event.DEFERRED, next_attempt_at=LEASE))
    for item_id in ("maybe", "surely-not"):
        ledger.request_withdraw(item_id, "信息有误", NOW)
    assert state_of(ledger, "maybe") == ("pending", 1, "withdraw")
    assert state_of(ledger, "surely-not") == ("withdrawn", 1, "withdraw")


def test_a_heartbeat_keeps_its_claims_and_a_dead_hosts_claims_expire(ledger):
    """extend_leases renews only the owner's unexpired leases; the others run out."""
    ledger.ingest([record("mine"), record("theirs")], NOW)
    mine = claim(ledger, "mine", owner="host-a:1:w")
    claim(ledger, "theirs", owner="host-b:7:w")
    later = LEASE - timedelta(minutes=1)
    assert ledger.extend_leases("host-a:1:w", later, LEASE + timedelta(minutes=15)) == 1
    assert ledger.extend_leases("host-a:1:w", LEASE + timedelta(hours=1), LEASE) == 0
    expired = ledger.expire_leases(LEASE + timedelta(minutes=1), owner_alive=lambda o: True)
    assert [r.item_id for r in expired] == ["theirs"]
    assert state_of(ledger, "theirs") == ("unknown", 1, "deliver")
    assert finish(ledger, mine, DONE_STEP, LEASE) == "delivered"
