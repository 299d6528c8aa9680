"""The embedded SQLite ledger (WAL mode).

Writers use ``BEGIN IMMEDIATE``, which takes SQLite's single write lock at the start of
the transaction: of two ``gongkai publish`` processes claiming the same delivery, one
waits and then sees the row already in flight. One connection serves all threads of
a process behind a lock; SQLite serialises writers anyway.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..errors import GongkaiError, UnknownItem
from .base import (
    QUEUED_STATES,
    DeliveryRow,
    Finish,
    IngestRecord,
    IngestResult,
    Ledger,
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
)

_ROW_COLUMNS = (
    "d.item_id, d.channel, d.state, d.edition, d.content_hash, d.delivered_edition, d.receipt, "
    "d.checkpoint, d.attempts, d.next_attempt_at, d.lease_owner, d.last_error, d.updated_at, "
    "(SELECT title FROM items i WHERE i.item_id = d.item_id AND i.edition = d.edition), "
    "(SELECT due_on FROM items i WHERE i.item_id = d.item_id AND i.edition = d.edition)"
)


_RETURNING = (
    "item_id, channel, 'claimed', edition, content_hash, delivered_edition, receipt, "
    "checkpoint, attempts, next_attempt_at, lease_owner, last_error, updated_at, NULL, NULL"
)


def ts(value: datetime | None) -> str | None:
    """Timestamps are stored as UTC ISO strings of one fixed width, so that string
    comparison in SQL is time comparison."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _claim_sql(states: Sequence[str], owner: str, now: datetime, lease_until: datetime):
    """The conditional UPDATE that claims one delivery; item id and channel come last."""
    marks = ",".join("?" for _ in states)
    sql = (
        "UPDATE deliveries SET state = 'in-flight', lease_owner = ?, lease_until = ?, "
        f"attempts = attempts + 1, updated_at = ? WHERE state IN ({marks}) "
        "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) AND item_id = ? AND channel = ? "
        f"RETURNING {_RETURNING}"
    )
    return sql, (owner, ts(lease_until), ts(now), *states, ts(now))


def _claimed(values: Sequence[Any]) -> DeliveryRow:
    # Report the row as it was claimed: attempts before this one.
    row = _row(values)
    return replace(row, attempts=row.attempts - 1)


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
    )


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
                number = f"{prefix}-{serial:05d}"
                db.execute(
                    "INSERT INTO item_state (item_id, index_number) VALUES (?, ?) "
                    "ON CONFLICT (item_id) DO UPDATE SET index_number = excluded.index_number",
                    (item_id, number),
                )
                found[item_id] = number
        return found

    def ingest(self, records: Sequence[IngestRecord], now: datetime) -> list[IngestResult]:
        results = []
        with self._write() as db:
            for record in records:
                results.append(self._ingest_one(db, record, ts(now)))
        return results

    def _ingest_one(self, db: sqlite3.Connection, rec: IngestRecord, now: str) -> IngestResult:
        state = db.execute(
            "SELECT latest_edition, withdrawn_at FROM item_state WHERE item_id = ?",
            (rec.item_id,),
        ).fetchone()
        latest = state[0] if state else 0
        if state and state[1]:
            return IngestResult(rec.item_id, "withdrawn", latest, latest)
        known = db.execute(
            "SELECT edition FROM items WHERE item_id = ? AND content_hash = ?",
            (rec.item_id, rec.content_hash),
        ).fetchone()
        if known:
            edition = known[0]
            if edition < latest:
                return IngestResult(rec.item_id, "stale", edition, latest)
            status = "unchanged"
        else:
            edition = latest + 1
            db.execute(
                "INSERT INTO items (item_id, edition, content_hash, catalog, title, payload, "
                "due_on, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.item_id,
                    edition,
                    rec.content_hash,
                    rec.catalog,
                    rec.title,
                    json.dumps(rec.payload, ensure_ascii=False, sort_keys=True),
                    rec.due_on.isoformat() if rec.due_on else None,
                    now,
                ),
            )
            db.execute(
                "INSERT INTO item_state (item_id, latest_edition) VALUES (?, ?) "
                "ON CONFLICT (item_id) DO UPDATE SET latest_edition = excluded.latest_edition",
                (rec.item_id, edition),
            )
            status = "new" if edition == 1 else "changed"
        result = IngestResult(rec.item_id, status, edition, edition)
        not_before = ts(rec.not_before)
        for channel in rec.channels:
            result.plans[channel] = self._plan(db, rec, channel, edition, not_before, now)
        return result

    def _plan(self, db, rec: IngestRecord, channel: str, edition: int, not_before, now) -> str:
        row = db.execute(
            "SELECT state, edition FROM deliveries WHERE item_id = ? AND channel = ?",
            (rec.item_id, channel),
        ).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO deliveries (item_id, channel, state, edition, content_hash, "
                "next_attempt_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?, ?)",
                (rec.item_id, channel, edition, rec.content_hash, not_before, now),
            )
            return "queued"
        state, row_edition = row
        if row_edition == edition:
            if state == "pending":
                # The schedule is not content: a new publish_at moves the same edition.
                db.execute(
                    "UPDATE deliveries SET next_attempt_at = ? WHERE item_id = ? AND channel = ?"
                    " AND state = 'pending'",
                    (not_before, rec.item_id, channel),
                )
            return "unchanged"
        if row_edition > edition:
            return "unchanged"
        if state in ("pending", "retry-wait", "failed"):
            action = "superseded"
        elif state in ("delivered", "awaiting-confirmation"):
            action = "update"
        else:
            # in-flight, publishing or unknown: let that settle first; requeue_stale
            # queues the newer edition once it has.
            return "waiting"
        db.execute(
            "UPDATE deliveries SET state = 'pending', edition = ?, content_hash = ?, "
            "attempts = 0, next_attempt_at = ?, checkpoint = NULL, last_error = NULL, "
            "updated_at = ? WHERE item_id = ? AND channel = ? AND edition < ?",
            (edition, rec.content_hash, not_before, now, rec.item_id, channel, edition),
        )
        if action == "superseded":
            self._log(db, rec.item_id, channel, row_edition, "supersede", None, now, "superseded")
        return action

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

    def due(self, now: datetime, channels: Iterable[str]) -> list[DeliveryRow]:
        names = list(channels)
        if not names:
            return []
        marks = ",".join("?" for _ in names)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ROW_COLUMNS} FROM deliveries d "
                f"WHERE d.state IN ('pending', 'retry-wait') AND d.channel IN ({marks}) "
                "AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?) "
                "ORDER BY d.next_attempt_at IS NOT NULL, d.next_attempt_at, d.item_id, d.channel",
                (*names, ts(now)),
            ).fetchall()
        return [_row(r) for r in rows]

    def claim(self, item_id, channel, owner, now, lease_until, states=QUEUED_STATES):
        # One UPDATE … RETURNING is its own transaction: the check and the move to
        # in-flight happen under one write lock, with a quarter of the round trips.
        sql, args = _claim_sql(states, owner, now, lease_until)
        with self._lock:
            # fetchall runs the statement to completion, which ends its transaction.
            found = self._db.execute(sql, (*args, item_id, channel)).fetchall()
        return _claimed(found[0]) if found else None

    def claim_many(self, pairs, owner, now, lease_until) -> list[DeliveryRow]:
        sql, args = _claim_sql(QUEUED_STATES, owner, now, lease_until)
        found: list[DeliveryRow] = []
        with self._write() as db:
            for item_id, channel in pairs:
                rows = db.execute(sql, (*args, item_id, channel)).fetchall()
                if rows:
                    found.append(_claimed(rows[0]))
        return found

    def finish_many(self, entries) -> list[bool]:
        results = []
        statements = [
            (self._apply_sql(entry[4], entry[5], "lease_owner = ? AND edition = ?"), entry)
            for entry in entries
        ]
        with self._write() as db:
            for (sql, params), (item_id, channel, owner, edition, finish, now) in statements:
                changed = db.execute(sql, (*params, item_id, channel, owner, edition)).rowcount
                if not changed:
                    # The lease was lost (the delivery was presumed dead meanwhile): the
                    # row belongs to someone else now, but what happened is still logged.
                    self._log(
                        db,
                        item_id,
                        channel,
                        edition,
                        finish.action,
                        finish.started_at,
                        ts(now),
                        finish.outcome or finish.state,
                        finish.http_status,
                        finish.error,
                    )
                results.append(changed == 1)
        return results

    def release(self, pairs, owner, now) -> None:
        # Undo the claim exactly: nothing was sent, so nothing is logged.
        with self._write() as db:
            for item_id, channel in pairs:
                db.execute(
                    "UPDATE deliveries SET attempts = attempts - 1, lease_owner = NULL, "
                    "lease_until = NULL, updated_at = ?, "
                    "state = CASE WHEN attempts > 1 THEN 'retry-wait' ELSE 'pending' END "
                    "WHERE item_id = ? AND channel = ? AND state = 'in-flight' "
                    "AND lease_owner = ?",
                    (ts(now), item_id, channel, owner),
                )

    def save_checkpoint(self, item_id, channel, owner, data) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE deliveries SET checkpoint = ? WHERE item_id = ? AND channel = ? "
                "AND lease_owner = ?",
                (json.dumps(data, ensure_ascii=False), item_id, channel, owner),
            )

    def finish(self, item_id, channel, owner, edition, finish: Finish, now) -> bool:
        return self.finish_many([(item_id, channel, owner, edition, finish, now)])[0]

    def _apply_sql(self, finish: Finish, now: datetime, where: str) -> tuple[str, tuple]:
        """The one UPDATE that ends an attempt (the trigger logs it). Parameters are
        built here, outside the lock."""
        delivered = finish.state in ("delivered", "publishing", "awaiting-confirmation")
        duration = None
        if finish.started_at is not None:
            duration = int((now - finish.started_at).total_seconds() * 1000)
        sql = (
            "UPDATE deliveries SET state = ?, lease_owner = NULL, lease_until = NULL, "
            "receipt = COALESCE(?, receipt), last_error = ?, next_attempt_at = ?, "
            "delivered_edition = CASE WHEN ? THEN edition ELSE delivered_edition END, "
            "checkpoint = CASE WHEN ? THEN NULL ELSE checkpoint END, "
            "attempts = CASE WHEN ? = 'pending' THEN 0 ELSE attempts END, "
            "last_action = ?, last_outcome = ?, last_http_status = ?, last_started_at = ?, "
            "last_duration_ms = ?, log_seq = log_seq + 1, "
            f"updated_at = ? WHERE item_id = ? AND channel = ? AND {where}"
        )
        params = (
            finish.state,
            json.dumps(finish.receipt, ensure_ascii=False) if finish.receipt else None,
            finish.error,
            ts(finish.next_attempt_at),
            delivered,
            delivered,
            finish.state,
            finish.action,
            finish.outcome or finish.state,
            finish.http_status,
            ts(finish.started_at),
            duration,
            ts(now),
        )
        return sql, params

    def _log(
        self,
        db,
        item_id,
        channel,
        edition,
        action,
        started,
        finished,
        outcome,
        status=None,
        error=None,
    ) -> None:
        duration = None
        if started is not None:
            duration = int((parse_ts(finished) - started).total_seconds() * 1000)
            started = ts(started)
        db.execute(
            "INSERT INTO attempts (item_id, channel, edition, action, started_at, finished_at, "
            "outcome, http_status, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item_id,
                channel,
                edition,
                action,
                started,
                finished,
                outcome,
                status,
                error,
                duration,
            ),
        )

    def expire_leases(self, now: datetime, owner_alive: Callable[[str], bool]):
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
                db.execute(
                    "UPDATE deliveries SET state = 'unknown', lease_owner = NULL, "
                    "lease_until = NULL, last_error = ?, updated_at = ? "
                    "WHERE item_id = ? AND channel = ? AND state = 'in-flight'",
                    (f"outcome unknown: {why} during delivery", ts(now), row.item_id, row.channel),
                )
                self._log(
                    db,
                    row.item_id,
                    row.channel,
                    row.edition,
                    "deliver",
                    row.updated_at,
                    ts(now),
                    "unknown",
                    None,
                    f"{why} (owner {row.lease_owner})",
                )
                expired.append(row)
        return expired

    def settle(self, item_id, channel, expect, finish: Finish, now) -> bool:
        marks = ",".join("?" for _ in expect)
        sql, params = self._apply_sql(finish, now, f"state IN ({marks})")
        with self._lock:
            return self._db.execute(sql, (*params, item_id, channel, *expect)).rowcount == 1

    def requeue_stale(self, now: datetime) -> int:
        with self._write() as db:
            cursor = db.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = NULL, "
                "checkpoint = NULL, last_error = NULL, updated_at = ?, "
                "edition = (SELECT latest_edition FROM item_state s "
                "           WHERE s.item_id = deliveries.item_id), "
                "content_hash = (SELECT content_hash FROM items i JOIN item_state s "
                "   ON i.item_id = s.item_id AND i.edition = s.latest_edition "
                "   WHERE i.item_id = deliveries.item_id) "
                "WHERE state IN ('delivered', 'awaiting-confirmation') AND edition < "
                "(SELECT latest_edition FROM item_state s WHERE s.item_id = deliveries.item_id "
                " AND s.withdrawn_at IS NULL)",
                (ts(now),),
            )
            return cursor.rowcount

    # --- reading -----------------------------------------------------------------------

    def rows(self, item_id=None, states=None, item_ids=None) -> list[DeliveryRow]:
        if item_ids is not None:
            # SQLite caps the number of parameters; ask in chunks.
            ids = list(item_ids)
            return [
                row
                for start in range(0, len(ids), 500)
                for row in self._select_rows(states, ids[start : start + 500])
            ]
        return self._select_rows(states, None if item_id is None else [item_id])

    def _select_rows(self, states, ids) -> list[DeliveryRow]:
        clauses, args = [], []
        if ids is not None:
            clauses.append(f"d.item_id IN ({','.join('?' for _ in ids)})")
            args.extend(ids)
        if states:
            clauses.append(f"d.state IN ({','.join('?' for _ in states)})")
            args.extend(states)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            found = self._db.execute(
                f"SELECT {_ROW_COLUMNS} FROM deliveries d {where} ORDER BY d.item_id, d.channel",
                args,
            ).fetchall()
        return [_row(r) for r in found]

    def attempts(self, item_id, channel=None) -> list[dict[str, Any]]:
        query = "SELECT * FROM attempts WHERE item_id = ?"
        args: list[Any] = [item_id]
        if channel:
            query += " AND channel = ?"
            args.append(channel)
        with self._lock:
            cursor = self._db.execute(query + " ORDER BY id", args)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def withdrawn_at(self, item_id: str) -> datetime | None:
        with self._lock:
            found = self._db.execute(
                "SELECT withdrawn_at FROM item_state WHERE item_id = ?", (item_id,)
            ).fetchone()
        return parse_ts(found[0]) if found else None

    def mark_withdrawn(self, item_id: str, reason: str, now: datetime) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE item_state SET withdrawn_at = ?, withdraw_reason = ? WHERE item_id = ?",
                (ts(now), reason, item_id),
            )
