"""The SQLite ledger's file: connection, write transactions and schema migrations.

Writers use ``BEGIN IMMEDIATE``, which takes SQLite's single write lock at the start of
the transaction: of two ``gongkai publish`` processes claiming the same delivery, one
waits and then sees the row already in flight. One connection serves all threads of
a process behind a lock; SQLite serialises writers anyway.
"""

from __future__ import annotations

import itertools
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import LedgerWriteError, StateError

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
    ALTER TABLE deliveries ADD COLUMN maybe_delivered INTEGER NOT NULL DEFAULT 0;
    UPDATE deliveries SET maybe_delivered = 1 WHERE state = 'unknown';
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
    # 3: scale. Item files already taken in, so a daily run reads only what changed;
    # indexes so that small runs on a big ledger touch only the rows they need.
    """
    -- item_ids: space-separated (an id has no spaces); attachments: JSON
    -- [[path, size, mtime_ns], ...] or NULL, so most rows need no JSON parsing.
    CREATE TABLE files (
        path        TEXT PRIMARY KEY,
        size        INTEGER NOT NULL,
        mtime_ns    INTEGER NOT NULL,
        digest      TEXT NOT NULL,
        context     TEXT NOT NULL,
        seen_ns     INTEGER NOT NULL,
        item_ids    TEXT NOT NULL,
        attachments TEXT
    ) WITHOUT ROWID;
    DROP INDEX deliveries_by_state;
    CREATE INDEX deliveries_by_state ON deliveries (state, channel, next_attempt_at);
    """,
    # 4: offline channels. What each wall (or loudspeaker) carries, as people confirmed
    # it, kept apart from the receipt that a newer edition replaces; and the state each
    # log entry left its row in, so parity can be replayed for past days.
    """
    ALTER TABLE attempts ADD COLUMN state TEXT;
    CREATE INDEX attempts_by_time ON attempts (finished_at);
    CREATE TABLE confirmations (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        item_id     TEXT NOT NULL,
        channel     TEXT NOT NULL,
        edition     INTEGER NOT NULL,
        area        TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('posted', 'taken-down')),
        at          TEXT NOT NULL,
        by_name     TEXT NOT NULL,
        photo       TEXT,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX confirmations_by_delivery ON confirmations (item_id, channel, area);
    CREATE TRIGGER confirmations_no_update BEFORE UPDATE ON confirmations
        BEGIN SELECT RAISE(ABORT, 'the confirmation record is append-only'); END;
    CREATE TRIGGER confirmations_no_delete BEFORE DELETE ON confirmations
        BEGIN SELECT RAISE(ABORT, 'the confirmation record is append-only'); END;
    """,
)


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


def _marks(values: Sequence[Any]) -> str:
    # An empty IN () is a syntax error in SQLite; NULL matches nothing.
    return ",".join("?" for _ in values) or "NULL"


def _chunked(values: list[Any], size: int = 500) -> list[list[Any]]:
    # SQLite caps the number of parameters in one statement.
    return [values[start : start + size] for start in range(0, len(values), size)]


class SQLiteConnection:
    """One SQLite file in WAL mode, migrated to the current schema on open. ``sync="full"``
    fsyncs every commit (survives power loss); ``normal`` survives any process crash
    and is much faster."""

    def __init__(
        self, path: str | Path, *, sync: str = "normal", busy_timeout: float = 60.0
    ) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = "it is a file, not a folder" if self.path.parent.is_file() else exc.strerror
            raise StateError(
                f"{self.path.parent}: cannot use it as the state directory ({why}); point "
                "[gongkai] state_dir in config.toml at a folder gongkai may write"
            ) from None
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()
        #: Each claim gets its own lease token, so a late answer to a lost claim can
        #: never finish a newer claim of the same row by the same process.
        self._claims = itertools.count(1)
        # Reads use a pool of their own connections: in WAL a reader never waits for a
        # writer, so a worker checking its claim is not held up by a long ingest.
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._db = self._open(sync)

    def _open(self, sync: str) -> sqlite3.Connection:
        """Connect, check that the file is a gongkai ledger, and migrate it. A file
        that is not one is left exactly as it was."""
        try:
            self._db = db = self._connect()
        except sqlite3.Error as exc:
            raise self._state_error(exc) from None
        try:
            # Read before anything writes: a garbage file fails here, untouched.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            foreign = db.execute(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            ).fetchone()[0]
            if version > len(MIGRATIONS):
                raise StateError(
                    f"{self.path}: the ledger has schema version {version}, newer than this "
                    f"gongkai knows ({len(MIGRATIONS)}); it was left untouched. Upgrade gongkai"
                )
            if version == 0 and foreign:
                raise StateError(
                    f"{self.path}: this SQLite file is not a gongkai ledger (it has tables "
                    "of another program); it was left untouched. Point [gongkai] state_dir "
                    "at another folder, or move the file aside"
                )
            self._use_wal(db)
            db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
            db.execute("PRAGMA foreign_keys=ON")
            if version < len(MIGRATIONS):
                # Only then: a write lock would make every read-only verb wait behind
                # a running publish.
                self._migrate()
        except (sqlite3.Error, LedgerWriteError) as exc:
            db.close()
            cause = exc.__cause__ if isinstance(exc, LedgerWriteError) else exc
            raise self._state_error(cause) from None
        except BaseException:
            db.close()
            raise
        return db

    def _use_wal(self, db: sqlite3.Connection) -> None:
        """Put the file in WAL mode (it stays so). Switching takes an exclusive lock
        and SQLite does not wait for it as it waits for a write lock: two processes
        opening a new ledger at once would see "database is locked". So look first,
        and retry the switch for up to the busy timeout."""
        deadline = time.monotonic() + self._busy_timeout
        pause = 0.005
        while True:
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)  # only while another process holds the new file
            pause = min(pause * 2, 0.2)

    def _state_error(self, exc: sqlite3.Error) -> StateError:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return StateError(
                f"{self.path}: not a gongkai ledger ({text}); it was left untouched. If it "
                "is a damaged ledger, restore it from a backup; otherwise move it aside or "
                "point [gongkai] state_dir at another folder"
            )
        return StateError(
            f"{self.path}: cannot open the ledger ({text}); check that the state directory "
            f"{self.path.parent} and the files in it are writable by this user"
        )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_timeout
        )

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A connection for one read. Each statement is its own read transaction and
        sees everything committed before it started."""
        try:
            db = self._readers.get_nowait()
        except queue.Empty:
            db = self._connect()
            db.execute("PRAGMA query_only=ON")
        try:
            yield db
        finally:
            self._readers.put(db)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                else:
                    self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                # A full disk, a file made read-only or a lock held past the busy
                # timeout: the transaction is rolled back, so what was recorded stays
                # consistent, but this run cannot go on recording.
                if self._db.in_transaction:  # a failed COMMIT leaves it open
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                if "locked" in str(exc):
                    raise LedgerWriteError(
                        f"{self.path}: the ledger stayed locked by another process for "
                        f"{self._busy_timeout:g} s ({exc}); wait for the other gongkai run "
                        "to end, then run this one again"
                    ) from exc
                raise LedgerWriteError(
                    f"{self.path}: cannot write the ledger ({exc}); free disk space or fix "
                    "the file's permissions, then run `gongkai publish` again: anything "
                    "caught in flight is settled then"
                ) from exc

    def _migrate(self) -> None:
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StateError(
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
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break
