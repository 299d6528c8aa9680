"""The embedded SQLite ledger (WAL mode).

Writers use ``BEGIN IMMEDIATE``, which takes SQLite's single write lock at the start of
the transaction: of two ``gongkai publish`` processes claiming the same delivery, one
waits and then sees the row already in flight. One connection serves all threads of
a process behind a lock; SQLite serialises writers anyway.

Every change to a delivery row goes through :meth:`SQLiteLedger._move`, which checks it
against the state machine's table (:mod:`gongkai.ledger.states`), and every entry of
the attempt log through :meth:`SQLiteLedger._log`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..errors import GongkaiError, UnknownItem
from ..log import scrub, scrub_data
from .base import (
    AttemptRecord,
    Capabilities,
    DeliveryRow,
    IngestRecord,
    IngestResult,
    Ledger,
    Step,
)
from .states import (
    DONE,
    QUEUED,
    Action,
    Event,
    IllegalTransition,
    Intent,
    State,
    check,
    follow_on,
    target,
)

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE items (
        item_id      TEXT NOT NULL,
        edition      INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        catalog      TEXT NOT NULL,
        title        TEXT NOT NULL,
        payload      TEXT NOT NULL,
        due_on       TEXT,
        created_at   TEXT NOT NULL,
        PRIMARY KEY (item_id, edition),
        UNIQUE (item_id, content_hash)
    );
    CREATE TABLE item_state (
        item_id         TEXT PRIMARY KEY,
        latest_edition  INTEGER NOT NULL DEFAULT 0,
        index_number    TEXT UNIQUE,
        withdrawn_at    TEXT,
        withdraw_reason TEXT
    );
    CREATE TABLE index_serials (
        prefix TEXT PRIMARY KEY,
        last   INTEGER NOT NULL
    );
    CREATE TABLE deliveries (
        item_id           TEXT NOT NULL,
        channel           TEXT NOT NULL,
        state             TEXT NOT NULL,
        edition           INTEGER NOT NULL,
        content_hash      TEXT NOT NULL,
        delivered_edition INTEGER,
        receipt           TEXT,
        checkpoint        TEXT,
        attempts          INTEGER NOT NULL DEFAULT 0,
        next_attempt_at   TEXT,
        lease_owner       TEXT,
        lease_until       TEXT,
        last_error        TEXT,
        updated_at        TEXT NOT NULL,
        last_action       TEXT,
        last_outcome      TEXT,
        last_http_status  INTEGER,
        last_started_at   TEXT,
        last_duration_ms  INTEGER,
        log_seq           INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (item_id, channel)
    );
    CREATE INDEX deliveries_by_state ON deliveries (state, next_attempt_at);
    CREATE TABLE attempts (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        item_id      TEXT NOT NULL,
        channel      TEXT NOT NULL,
        edition      INTEGER NOT NULL,
        action       TEXT NOT NULL,
        started_at   TEXT,
        finished_at  TEXT NOT NULL,
        outcome      TEXT NOT NULL,
        http_status  INTEGER,
        error        TEXT,
        duration_ms  INTEGER
    );
    CREATE INDEX attempts_by_delivery ON attempts (item_id, channel);
    -- Ending an attempt is one UPDATE that bumps log_seq; this trigger appends the
    -- attempt to the log in the same statement, so state and log can never disagree
    -- and a finish costs one round trip under the write lock.
    CREATE TRIGGER deliveries_log_attempt AFTER UPDATE OF log_seq ON deliveries
        WHEN NEW.log_seq <> OLD.log_seq
        BEGIN
            INSERT INTO attempts (item_id, channel, edition, action, started_at, finished_at,
                                  outcome, http_status, error, duration_ms)
            VALUES (NEW.item_id, NEW.channel, NEW.edition, NEW.last_action,
                    NEW.last_started_at, NEW.updated_at, NEW.last_outcome,
                    NEW.last_http_status, NEW.last_error, NEW.last_duration_ms);
        END;
    CREATE TRIGGER attempts_no_update BEFORE UPDATE ON attempts
        BEGIN SELECT RAISE(ABORT, 'the attempt log is append-only'); END;
    CREATE TRIGGER attempts_no_delete BEFORE DELETE ON attempts
        BEGIN SELECT RAISE(ABORT, 'the attempt log is append-only'); END;
    """,
    # 2: the state machine: each row's intent and in-flight action, the state a claim
    # came from, each edition's embargo; the attempt log written by one code path.
    """
    ALTER TABLE deliveries ADD COLUMN intent TEXT NOT NULL DEFAULT 'deliver';
    ALTER TABLE deliveries ADD COLUMN action TEXT NOT NULL DEFAULT 'deliver';
    ALTER TABLE deliveries ADD COLUMN claimed_from TEXT;
    ALTER TABLE items ADD COLUMN not_before TEXT;
    UPDATE deliveries SET intent = 'withdraw' WHERE item_id IN
        (SELECT item_id FROM item_state WHERE withdrawn_at IS NOT NULL);
    DROP TRIGGER deliveries_log_attempt;
    ALTER TABLE deliveries DROP COLUMN last_action;
    ALTER TABLE deliveries DROP COLUMN last_outcome;
    ALTER TABLE deliveries DROP COLUMN last_http_status;
    ALTER TABLE deliveries DROP COLUMN last_started_at;
    ALTER TABLE deliveries DROP COLUMN last_duration_ms;
    ALTER TABLE deliveries DROP COLUMN log_seq;
    """,
)


_ROW_COLUMNS = (
    "d.item_id, d.channel, d.state, d.edition, d.content_hash, d.delivered_edition, d.receipt, "
    "d.checkpoint, d.attempts, d.next_attempt_at, d.lease_owner, d.last_error, d.updated_at, "
    "(SELECT title FROM items i WHERE i.item_id = d.item_id AND i.edition = d.edition), "
    "(SELECT due_on FROM items i WHERE i.item_id = d.item_id AND i.edition = d.edition), "
    "d.intent, d.action, "
    "(SELECT latest_edition FROM item_state s WHERE s.item_id = d.item_id)"
)
_RETURNING = (
    "item_id, channel, 'in-flight', edition, content_hash, delivered_edition, receipt, "
    "checkpoint, attempts, next_attempt_at, lease_owner, last_error, updated_at, NULL, NULL, "
    "intent, action, NULL"
)
#: What the state machine needs to know about a row to move it.
_FACTS = (
    "SELECT d.state, d.edition, d.intent, d.action, d.delivered_edition, d.claimed_from, "
    "d.lease_owner, COALESCE(s.latest_edition, d.edition), d.attempts FROM deliveries d "
    "LEFT JOIN item_state s ON s.item_id = d.item_id WHERE d.item_id = ? AND d.channel = ?"
)
#: States a claim may start from, per action (the table allows these; see states.py).
_CLAIMABLE = {
    Action.DELIVER: (State.PENDING, State.RETRY_WAIT, State.UNKNOWN),
    Action.WITHDRAW: (State.PENDING, State.RETRY_WAIT),
    Action.RECONCILE: (State.UNKNOWN,),
    Action.POLL: (State.PUBLISHING,),
}
#: Only sending counts as a try of the retry schedule; looking something up does not.
_COUNTED = frozenset({Action.DELIVER, Action.WITHDRAW})


def ts(value: datetime | None) -> str | None:
    """Timestamps are stored as UTC ISO strings of one fixed width, so that string
    comparison in SQL is time comparison."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements inside one transaction (``executescript`` would
    commit first); triggers contain semicolons, hence ``complete_statement``."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""


def _row(values: Sequence[Any]) -> DeliveryRow:
    return DeliveryRow(
        item_id=values[0],
        channel=values[1],
        state=values[2],
        edition=values[3],
        content_hash=values[4],
        delivered_edition=values[5],
        receipt=json.loads(values[6]) if values[6] else None,
        checkpoint=json.loads(values[7]) if values[7] else {},
        attempts=values[8],
        next_attempt_at=parse_ts(values[9]),
        lease_owner=values[10],
        last_error=values[11],
        updated_at=parse_ts(values[12]),
        title=values[13] or "",
        due_on=date.fromisoformat(values[14]) if values[14] else None,
        intent=values[15],
        action=values[16],
        latest_edition=values[17],
    )


def _json(value: Any) -> str | None:
    # Receipts and errors are stored and printed: a secret that slipped into one (a
    # URL built from a key) is redacted before it is ever written.
    if value is None:
        return None
    return json.dumps(scrub_data(value), ensure_ascii=False)


@dataclass
class _Facts:
    state: str
    edition: int
    intent: str
    action: str
    delivered_edition: int | None
    claimed_from: str | None
    lease_owner: str | None
    latest: int
    attempts: int


class SQLiteLedger(Ledger):
    """The ledger in one SQLite file. ``sync="full"`` fsyncs every commit (survives
    power loss); ``normal`` survives any process crash and is much faster."""

    def __init__(self, path: str | Path, *, sync: str = "normal", busy_timeout: float = 60.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    # --- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise GongkaiError(
                    f"{self.path}: the ledger has schema version {version}, newer than this "
                    f"gongkai knows ({len(MIGRATIONS)}); upgrade gongkai"
                )
            for number in range(version, len(MIGRATIONS)):
                for statement in _statements(MIGRATIONS[number]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={number + 1}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- the state machine: every write to a delivery row goes through _move ------------

    def _facts(self, db: sqlite3.Connection, item_id: str, channel: str) -> _Facts | None:
        found = db.execute(_FACTS, (item_id, channel)).fetchone()
        return _Facts(*found) if found else None

    def _move(
        self,
        db: sqlite3.Connection,
        item_id: str,
        channel: str,
        facts: _Facts,
        event: Event,
        after: State,
        now: datetime,
        *,
        sets: dict[str, Any] | None = None,
        log: Step | None = None,
    ) -> _Facts:
        """Check ``facts.state --event--> after`` against the table, write it with the
        extra column values ``sets``, log it (``log`` describes the attempt; None logs
        a plain transition), then make the follow-on moves the table implies."""
        check(item_id, channel, facts.state, event, after)
        columns = {"state": str(after), "updated_at": ts(now), **(sets or {})}
        assignments = ", ".join(f"{name} = ?" for name in columns)
        db.execute(
            f"UPDATE deliveries SET {assignments} WHERE item_id = ? AND channel = ?",
            (*columns.values(), item_id, channel),
        )
        if log is not None:
            self._log(db, item_id, channel, facts.edition, log, str(after), now)
        elif event not in (Event.CLAIMED, Event.RELEASED, Event.PLANNED):
            self._log(db, item_id, channel, facts.edition, Step(event, action=event), after, now)
        moved = self._facts(db, item_id, channel)
        assert moved is not None
        return self._follow_on(db, item_id, channel, moved, now)

    def _follow_on(
        self, db: sqlite3.Connection, item_id: str, channel: str, facts: _Facts, now: datetime
    ) -> _Facts:
        event = follow_on(
            facts.state,
            intent=facts.intent,
            action=facts.action,
            edition=facts.edition,
            latest_edition=facts.latest,
            delivered_edition=facts.delivered_edition,
        )
        if event is None:
            return facts
        sets: dict[str, Any] = {"next_attempt_at": None, "attempts": 0, "last_error": None}
        if event is Event.SUPERSEDED:
            digest, not_before = db.execute(
                "SELECT content_hash, not_before FROM items WHERE item_id = ? AND edition = ?",
                (item_id, facts.latest),
            ).fetchone()
            sets.update(
                edition=facts.latest,
                content_hash=digest,
                next_attempt_at=not_before,
                checkpoint=None,
                action=str(Action.DELIVER),
            )
        elif event is Event.WITHDRAW_REQUESTED:
            sets["action"] = str(Action.WITHDRAW)
        return self._move(db, item_id, channel, facts, event, target(event), now, sets=sets)

    def _log(
        self,
        db: sqlite3.Connection,
        item_id: str,
        channel: str,
        edition: int,
        step: Step,
        outcome: str,
        now: datetime,
    ) -> None:
        """The one place that appends to the attempt log."""
        duration = None
        if step.started_at is not None:
            duration = int((now - step.started_at).total_seconds() * 1000)
        db.execute(
            "INSERT INTO attempts (item_id, channel, edition, action, started_at, finished_at, "
            "outcome, http_status, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item_id,
                channel,
                edition,
                str(step.action),
                ts(step.started_at),
                ts(now),
                scrub(step.note or outcome),
                step.http_status,
                scrub(step.error) if step.error else None,
                duration,
            ),
        )

    # --- items and editions --------------------------------------------------------------

    def index_numbers(
        self, wanted: Sequence[tuple[str, str]], allocate: bool = True
    ) -> dict[str, str]:
        found: dict[str, str] = {}
        ids = [item_id for item_id, _ in wanted]
        with self._lock:
            # Most items have their number already: read them all without the write lock.
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" for _ in chunk)
                found.update(
                    self._db.execute(
                        f"SELECT item_id, index_number FROM item_state WHERE item_id IN ({marks}) "
                        "AND index_number IS NOT NULL",
                        chunk,
                    ).fetchall()
                )
        missing = [(i, p) for i, p in wanted if i not in found]
        if not missing or not allocate:
            return found
        with self._write() as db:
            for item_id, prefix in missing:
                again = db.execute(
                    "SELECT index_number FROM item_state WHERE item_id = ?", (item_id,)
                ).fetchone()
                if again and again[0]:  # another process allocated it meanwhile
                    found[item_id] = again[0]
                    continue
                (serial,) = db.execute(
                    "INSERT INTO index_serials (prefix, last) VALUES (?, 1) "
                    "ON CONFLICT (prefix) DO UPDATE SET last = last + 1 RETURNING last",
                    (prefix,),
                ).fetchall()[0]
                # Five digits at least; the 100,000th number of a year simply has six.
                number = f"{prefix}-{serial:05d}"
                db.execute(
                    "INSERT INTO item_state (item_id, index_number) VALUES (?, ?) "
                    "ON CONFLICT (item_id) DO UPDATE SET index_number = excluded.index_number",
                    (item_id, number),
                )
                found[item_id] = number
        return found

    def ingest(self, records: Sequence[IngestRecord], now: datetime) -> list[IngestResult]:
        with self._write() as db:
            return [self._ingest_one(db, record, now) for record in records]

    def _ingest_one(self, db: sqlite3.Connection, rec: IngestRecord, now: datetime) -> IngestResult:
        state = db.execute(
            "SELECT latest_edition, withdrawn_at FROM item_state WHERE item_id = ?",
            (rec.item_id,),
        ).fetchone()
        latest = state[0] if state else 0
        if state and state[1]:
            return IngestResult(rec.item_id, "withdrawn", latest, latest)
        not_before = ts(rec.not_before)
        known = db.execute(
            "SELECT edition FROM items WHERE item_id = ? AND content_hash = ?",
            (rec.item_id, rec.content_hash),
        ).fetchone()
        if known:
            edition = known[0]
            if edition < latest:
                return IngestResult(rec.item_id, "stale", edition, latest)
            status = "unchanged"
            # The schedule is not content: a new publish_at moves the same edition.
            db.execute(
                "UPDATE items SET not_before = ? WHERE item_id = ? AND edition = ?",
                (not_before, rec.item_id, edition),
            )
        else:
            edition = latest + 1
            db.execute(
                "INSERT INTO items (item_id, edition, content_hash, catalog, title, payload, "
                "due_on, created_at, not_before) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.item_id,
                    edition,
                    rec.content_hash,
                    rec.catalog,
                    rec.title,
                    json.dumps(rec.payload, ensure_ascii=False, sort_keys=True),
                    rec.due_on.isoformat() if rec.due_on else None,
                    ts(now),
                    not_before,
                ),
            )
            db.execute(
                "INSERT INTO item_state (item_id, latest_edition) VALUES (?, ?) "
                "ON CONFLICT (item_id) DO UPDATE SET latest_edition = excluded.latest_edition",
                (rec.item_id, edition),
            )
            status = "new" if edition == 1 else "changed"
        result = IngestResult(rec.item_id, status, edition, edition)
        for channel in rec.channels:
            result.plans[channel] = self._plan(db, rec, channel, edition, not_before, now)
        return result

    def _plan(self, db, rec: IngestRecord, channel: str, edition: int, not_before, now) -> str:
        facts = self._facts(db, rec.item_id, channel)
        if facts is None:
            check(rec.item_id, channel, None, Event.PLANNED, State.PENDING)
            db.execute(
                "INSERT INTO deliveries (item_id, channel, state, edition, content_hash, "
                "next_attempt_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?, ?)",
                (rec.item_id, channel, edition, rec.content_hash, not_before, ts(now)),
            )
            return "queued"
        if facts.edition >= edition:
            if facts.state == State.PENDING:
                db.execute(
                    "UPDATE deliveries SET next_attempt_at = ? WHERE item_id = ? AND channel = ?",
                    (not_before, rec.item_id, channel),
                )
            return "unchanged"
        was = facts.state
        moved = self._follow_on(db, rec.item_id, channel, facts, now)
        if moved.edition < edition:
            # In flight, unknown or publishing: its fate settles first, and the state
            # machine then supersedes it (follow-on) when it leaves that state.
            return "waiting"
        return "update" if was in DONE else "superseded"

    def edition(self, item_id: str, edition: int | None = None):
        with self._lock:
            if edition is None:
                found = self._db.execute(
                    "SELECT payload, edition, content_hash FROM items WHERE item_id = ? "
                    "ORDER BY edition DESC LIMIT 1",
                    (item_id,),
                ).fetchone()
            else:
                found = self._db.execute(
                    "SELECT payload, edition, content_hash FROM items "
                    "WHERE item_id = ? AND edition = ?",
                    (item_id, edition),
                ).fetchone()
        if not found:
            raise UnknownItem(
                f"the ledger has no item '{item_id}'" + (f" edition {edition}" if edition else "")
            )
        return json.loads(found[0]), found[1], found[2]

    # --- work ------------------------------------------------------------------------------

    def due(self, now: datetime, can: Capabilities, item_ids=None) -> list[DeliveryRow]:
        if not can.deliver:
            return []
        settle = sorted(can.reconcile | can.resend)
        poll = sorted(can.poll)
        names = sorted(can.deliver)
        where = (
            f"d.channel IN ({_marks(names)}) AND ("
            "(d.state IN ('pending', 'retry-wait') AND "
            "(d.next_attempt_at IS NULL OR d.next_attempt_at <= ?))"
            " OR (d.state = 'unknown' AND d.intent = 'deliver' AND "
            f"d.channel IN ({_marks(settle)}))"
            f" OR (d.state = 'publishing' AND d.channel IN ({_marks(poll)})))"
        )
        args: list[Any] = [*names, ts(now), *settle, *poll]
        found: list[DeliveryRow] = []
        chunks = [None] if item_ids is None else _chunked(list(item_ids))
        for chunk in chunks:
            clause, extra = (
                ("", [])
                if chunk is None
                else (
                    f" AND d.item_id IN ({_marks(chunk)})",
                    chunk,
                )
            )
            with self._lock:
                rows = self._db.execute(
                    f"SELECT {_ROW_COLUMNS} FROM deliveries d WHERE {where}{clause} "
                    "ORDER BY d.next_attempt_at IS NOT NULL, d.next_attempt_at, d.item_id, "
                    "d.channel",
                    (*args, *extra),
                ).fetchall()
            found.extend(_row(r) for r in rows)
        return [replace(row, action=_next_action(row, can)) for row in found]

    def claim_many(self, rows, owner, now, lease_until) -> list[DeliveryRow]:
        claimed: list[DeliveryRow] = []
        with self._write() as db:
            for row in rows:
                action = Action(row.action)
                if row.state not in _CLAIMABLE[action]:
                    raise IllegalTransition(
                        row.item_id, row.channel, row.state, Event.CLAIMED, State.IN_FLIGHT
                    )
                check(row.item_id, row.channel, row.state, Event.CLAIMED, State.IN_FLIGHT)
                intent = Intent.WITHDRAW if action is Action.WITHDRAW else Intent.DELIVER
                due = ""
                args: list[Any] = []
                if row.state in QUEUED:
                    due = " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
                    args.append(ts(now))
                got = db.execute(
                    "UPDATE deliveries SET state = 'in-flight', lease_owner = ?, lease_until = ?, "
                    "claimed_from = state, action = ?, attempts = attempts + ?, updated_at = ? "
                    "WHERE item_id = ? AND channel = ? AND state = ? AND intent = ?"
                    f"{due} RETURNING {_RETURNING}",
                    (
                        owner,
                        ts(lease_until),
                        str(action),
                        1 if action in _COUNTED else 0,
                        ts(now),
                        row.item_id,
                        row.channel,
                        row.state,
                        str(intent),
                        *args,
                    ),
                ).fetchall()
                if got:
                    # Report the row as it was claimed: tries before this one.
                    claimed_row = _row(got[0])
                    if action in _COUNTED:
                        claimed_row = replace(claimed_row, attempts=claimed_row.attempts - 1)
                    claimed.append(claimed_row)
        return claimed

    def finish_many(self, entries) -> list[State | None]:
        results: list[State | None] = []
        with self._write() as db:
            for item_id, channel, owner, edition, step, now in entries:
                facts = self._facts(db, item_id, channel)
                if (
                    facts is None
                    or facts.state != State.IN_FLIGHT
                    or facts.lease_owner != owner
                    or facts.edition != edition
                ):
                    # The lease was lost (the delivery was presumed dead meanwhile): the
                    # row belongs to someone else now, but what happened is still logged.
                    self._log(db, item_id, channel, edition, step, str(step.event), now)
                    results.append(None)
                    continue
                receipt_status = (step.receipt or {}).get("status")
                after = target(step.event, action=facts.action, receipt_status=receipt_status)
                sets: dict[str, Any] = {
                    "lease_owner": None,
                    "lease_until": None,
                    "claimed_from": None,
                    "last_error": scrub(step.error) if step.error else None,
                    "next_attempt_at": ts(step.next_attempt_at),
                }
                if step.receipt is not None:
                    sets["receipt"] = _json(step.receipt)
                if after in DONE:
                    sets.update(delivered_edition=edition, checkpoint=None)
                if after == State.PENDING:
                    sets["attempts"] = 0
                moved = self._move(
                    db, item_id, channel, facts, step.event, after, now, sets=sets, log=step
                )
                results.append(State(moved.state))
        return results

    def release(self, pairs, owner, now) -> None:
        # Undo the claim exactly: nothing was sent, so nothing is logged.
        with self._write() as db:
            for item_id, channel in pairs:
                facts = self._facts(db, item_id, channel)
                if facts is None or facts.state != State.IN_FLIGHT or facts.lease_owner != owner:
                    continue
                counted = 1 if facts.action in _COUNTED else 0
                self._move(
                    db,
                    item_id,
                    channel,
                    facts,
                    Event.RELEASED,
                    target(Event.RELEASED, claimed_from=facts.claimed_from),
                    now,
                    sets={
                        "lease_owner": None,
                        "lease_until": None,
                        "claimed_from": None,
                        "attempts": facts.attempts - counted,
                    },
                )

    def save_checkpoint(self, item_id, channel, owner, data) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE deliveries SET checkpoint = ? WHERE item_id = ? AND channel = ? "
                "AND lease_owner = ?",
                (json.dumps(data, ensure_ascii=False), item_id, channel, owner),
            )

    def expire_leases(self, now: datetime, owner_alive: Callable[[str], bool]):
        with self._lock:
            # Cheap read first: most runs find nothing in flight and take no write lock.
            if not self._db.execute(
                "SELECT 1 FROM deliveries WHERE state = 'in-flight' LIMIT 1"
            ).fetchone():
                return []
        expired = []
        with self._write() as db:
            rows = db.execute(
                f"SELECT {_ROW_COLUMNS}, d.lease_until FROM deliveries d "
                "WHERE d.state = 'in-flight'"
            ).fetchall()
            for values in rows:
                row = _row(values)
                lease_until = parse_ts(values[-1])
                if lease_until and lease_until > now and owner_alive(row.lease_owner or ""):
                    continue
                why = "lease expired" if lease_until and lease_until <= now else "process gone"
                facts = self._facts(db, row.item_id, row.channel)
                assert facts is not None
                after = target(Event.LEASE_EXPIRED, action=facts.action)
                self._move(
                    db,
                    row.item_id,
                    row.channel,
                    facts,
                    Event.LEASE_EXPIRED,
                    after,
                    now,
                    sets={
                        "lease_owner": None,
                        "lease_until": None,
                        "claimed_from": None,
                        "last_error": f"{facts.action} interrupted: {why}",
                    },
                    log=Step(
                        Event.LEASE_EXPIRED,
                        action=facts.action,
                        started_at=row.updated_at,
                        error=f"{why} (owner {row.lease_owner})",
                    ),
                )
                expired.append(row)
        return expired

    def requeue(self, item_id, channel, states, now, note) -> bool:
        with self._write() as db:
            facts = self._facts(db, item_id, channel)
            if facts is None or facts.state not in states:
                return False
            self._move(
                db,
                item_id,
                channel,
                facts,
                Event.REQUEUED,
                target(Event.REQUEUED),
                now,
                sets={"attempts": 0, "next_attempt_at": None, "last_error": None},
                log=Step(Event.REQUEUED, action=Event.REQUEUED, note=note),
            )
            return True

    def request_withdraw(self, item_id, reason, now) -> list[DeliveryRow]:
        with self._write() as db:
            known = db.execute(
                "SELECT withdrawn_at FROM item_state WHERE item_id = ?", (item_id,)
            ).fetchone()
            if known is None:
                raise UnknownItem(f"the ledger has no item '{item_id}'")
            if known[0] is None:
                db.execute(
                    "UPDATE item_state SET withdrawn_at = ?, withdraw_reason = ? WHERE item_id = ?",
                    (ts(now), reason, item_id),
                )
            channels = [
                c
                for (c,) in db.execute(
                    "SELECT channel FROM deliveries WHERE item_id = ? AND intent = 'deliver'",
                    (item_id,),
                )
            ]
            for channel in channels:
                db.execute(
                    "UPDATE deliveries SET intent = 'withdraw' WHERE item_id = ? AND channel = ?",
                    (item_id, channel),
                )
                facts = self._facts(db, item_id, channel)
                assert facts is not None
                if facts.state == State.IN_FLIGHT:
                    # Its owner learns the new intent when the attempt finishes.
                    check(item_id, channel, facts.state, Event.WITHDRAW_REQUESTED, State.IN_FLIGHT)
                    step = Step(Event.WITHDRAW_REQUESTED, action=Event.WITHDRAW_REQUESTED)
                    self._log(db, item_id, channel, facts.edition, step, State.IN_FLIGHT, now)
                else:
                    self._follow_on(db, item_id, channel, facts, now)
        return self.rows(item_id=item_id)

    # --- reading -----------------------------------------------------------------------

    def rows(self, item_id=None, states=None, item_ids=None) -> list[DeliveryRow]:
        if item_ids is not None:
            return [
                row for chunk in _chunked(list(item_ids)) for row in self._select(states, chunk)
            ]
        return self._select(states, None if item_id is None else [item_id])

    def row(self, item_id: str, channel: str) -> DeliveryRow | None:
        with self._lock:
            found = self._db.execute(
                f"SELECT {_ROW_COLUMNS} FROM deliveries d WHERE d.item_id = ? AND d.channel = ?",
                (item_id, channel),
            ).fetchone()
        return _row(found) if found else None

    def _select(self, states, ids) -> list[DeliveryRow]:
        clauses, args = [], []
        if ids is not None:
            clauses.append(f"d.item_id IN ({_marks(ids)})")
            args.extend(ids)
        if states:
            clauses.append(f"d.state IN ({_marks(states)})")
            args.extend(states)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            found = self._db.execute(
                f"SELECT {_ROW_COLUMNS} FROM deliveries d {where} ORDER BY d.item_id, d.channel",
                args,
            ).fetchall()
        return [_row(r) for r in found]

    def counts(self, states: Iterable[str]) -> dict[str, int]:
        wanted = [str(s) for s in states]
        with self._lock:
            found = self._db.execute(
                f"SELECT state, count(*) FROM deliveries WHERE state IN ({_marks(wanted)}) "
                "GROUP BY state",
                wanted,
            ).fetchall()
        return dict(found)

    def attempts(self, item_id, channel=None) -> list[AttemptRecord]:
        query = (
            "SELECT item_id, channel, edition, action, started_at, finished_at, outcome, "
            "http_status, error, duration_ms FROM attempts WHERE item_id = ?"
        )
        args: list[Any] = [item_id]
        if channel:
            query += " AND channel = ?"
            args.append(channel)
        with self._lock:
            found = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [
            AttemptRecord(
                item_id=r[0],
                channel=r[1],
                edition=r[2],
                action=r[3],
                started_at=parse_ts(r[4]),
                finished_at=parse_ts(r[5]),
                outcome=r[6],
                http_status=r[7],
                error=r[8],
                duration_ms=r[9],
            )
            for r in found
        ]

    def withdrawal(self, item_id: str) -> tuple[datetime, str] | None:
        with self._lock:
            found = self._db.execute(
                "SELECT withdrawn_at, withdraw_reason FROM item_state WHERE item_id = ?",
                (item_id,),
            ).fetchone()
        if not found or not found[0]:
            return None
        return parse_ts(found[0]), found[1] or ""


def _marks(values: Sequence[Any]) -> str:
    # An empty IN () is a syntax error in SQLite; NULL matches nothing.
    return ",".join("?" for _ in values) or "NULL"


def _chunked(values: list[Any], size: int = 500) -> list[list[Any]]:
    # SQLite caps the number of parameters in one statement.
    return [values[start : start + size] for start in range(0, len(values), size)]


def _next_action(row: DeliveryRow, can: Capabilities) -> str:
    if row.state == State.PUBLISHING:
        return Action.POLL
    if row.state == State.UNKNOWN:
        return Action.RECONCILE if row.channel in can.reconcile else Action.DELIVER
    return Action.WITHDRAW if row.intent == Intent.WITHDRAW else Action.DELIVER
