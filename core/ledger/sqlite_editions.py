"""Recording editions in SQLite: index numbers, ingest and delivery plans."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..errors import UnknownItem
from .base import IngestRecord, IngestResult
from .sqlite_schema import ts
from .states import DONE, Event, State, check


class RecordEditions:
    """Mixin: items and editions (needs ``_db``, ``_lock``, ``_write`` and the
    :class:`~.sqlite_machine.Transitions` write path)."""

    _db: sqlite3.Connection
    _lock: threading.RLock

    def index_numbers(
        self, wanted: Sequence[tuple[str, str]], allocate: bool = True
    ) -> dict[str, str]:
        found: dict[str, str] = {}
        ids = [item_id for item_id, _ in wanted]
        with self._read() as db:
            # Most items have their number already: read them all without the write lock.
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" for _ in chunk)
                found.update(
                    db.execute(
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
        known = db.execute(
            "SELECT edition FROM items WHERE item_id = ? AND content_hash = ?",
            (rec.item_id, rec.content_hash),
        ).fetchone()
        if state and state[1]:
            return IngestResult(rec.item_id, "withdrawn", known[0] if known else 0, latest)
        not_before = ts(rec.not_before)
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
        if status == "new":
            # The first edition: no delivery row can exist yet (rows are made only
            # here), so each channel's plan is a plain insert, without a lookup.
            check(rec.item_id, "*", None, Event.PLANNED, State.PENDING)
            db.executemany(
                "INSERT INTO deliveries (item_id, channel, state, edition, content_hash, "
                "next_attempt_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?, ?)",
                [
                    (rec.item_id, channel, edition, rec.content_hash, not_before, ts(now))
                    for channel in rec.channels
                ],
            )
            result.plans = dict.fromkeys(rec.channels, "queued")
            return result
        for channel in rec.channels:
            result.plans[channel] = self._plan(db, rec, channel, edition, not_before, now)
        return result

    def _plan(
        self,
        db: sqlite3.Connection,
        rec: IngestRecord,
        channel: str,
        edition: int,
        not_before: str | None,
        now: datetime,
    ) -> str:
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

    def edition(self, item_id: str, edition: int | None = None) -> tuple[dict[str, Any], int, str]:
        with self._read() as db:
            if edition is None:
                found = db.execute(
                    "SELECT payload, edition, content_hash FROM items WHERE item_id = ? "
                    "ORDER BY edition DESC LIMIT 1",
                    (item_id,),
                ).fetchone()
            else:
                found = db.execute(
                    "SELECT payload, edition, content_hash FROM items "
                    "WHERE item_id = ? AND edition = ?",
                    (item_id, edition),
                ).fetchone()
        if not found:
            raise UnknownItem(
                f"the ledger has no item '{item_id}'" + (f" edition {edition}" if edition else "")
            )
        return json.loads(found[0]), found[1], found[2]
