"""Reading the SQLite ledger: delivery rows, the attempt log, counts, withdrawals."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from .base import AttemptRecord, ConfirmationRecord, DeliveryRow, EditionRecord, ItemSummary
from .sqlite_schema import _chunked, _marks, parse_ts, ts

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


_ATTEMPT_COLUMNS = (
    "item_id, channel, edition, action, started_at, finished_at, outcome, http_status, error, "
    "duration_ms, state"
)


def _attempt(r: Sequence[Any]) -> AttemptRecord:
    return AttemptRecord(
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
        state=r[10],
    )


def _row(values: Sequence[Any]) -> DeliveryRow:
    return DeliveryRow(
        # Interned: a big run keeps these in its outcomes, and SQLite hands out a new
        # string per row, five copies of each id and 500,000 of the channel names.
        item_id=sys.intern(values[0]),
        channel=sys.intern(values[1]),
        state=sys.intern(values[2]),
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


class ReadRows:
    """Mixin: the reading half of :class:`SQLiteLedger` (needs ``_db`` and ``_lock``)."""

    _db: sqlite3.Connection
    _lock: threading.RLock

    def rows(
        self,
        item_id: str | None = None,
        states: Sequence[str] | None = None,
        item_ids: Sequence[str] | None = None,
    ) -> list[DeliveryRow]:
        if item_ids is not None:
            return [
                row for chunk in _chunked(list(item_ids)) for row in self._select(states, chunk)
            ]
        return self._select(states, None if item_id is None else [item_id])

    def row(self, item_id: str, channel: str) -> DeliveryRow | None:
        with self._read() as db:
            found = db.execute(
                f"SELECT {_ROW_COLUMNS} FROM deliveries d WHERE d.item_id = ? AND d.channel = ?",
                (item_id, channel),
            ).fetchone()
        return _row(found) if found else None

    def _select(self, states: Sequence[str] | None, ids: Sequence[str] | None) -> list[DeliveryRow]:
        clauses: list[str] = []
        args: list[str] = []
        if ids is not None:
            clauses.append(f"d.item_id IN ({_marks(ids)})")
            args.extend(ids)
        if states:
            clauses.append(f"d.state IN ({_marks(states)})")
            args.extend(states)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read() as db:
            found = db.execute(
                f"SELECT {_ROW_COLUMNS} FROM deliveries d {where} ORDER BY d.item_id, d.channel",
                args,
            ).fetchall()
        return [_row(r) for r in found]

    def current(self, item_id: str, channel: str) -> tuple[str, int, str | None] | None:
        with self._read() as db:
            found = db.execute(
                "SELECT d.intent, COALESCE(s.latest_edition, d.edition), d.lease_owner "
                "FROM deliveries d "
                "LEFT JOIN item_state s ON s.item_id = d.item_id "
                "WHERE d.item_id = ? AND d.channel = ?",
                (item_id, channel),
            ).fetchone()
        return (found[0], found[1], found[2]) if found else None

    def latest_editions(self, item_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunked(list(item_ids)):
            with self._read() as db:
                found.update(
                    db.execute(
                        "SELECT item_id, latest_edition FROM item_state "
                        f"WHERE item_id IN ({_marks(chunk)})",
                        chunk,
                    ).fetchall()
                )
        return found

    def counts(self, states: Iterable[str]) -> dict[str, int]:
        wanted = [str(s) for s in states]
        with self._read() as db:
            found = db.execute(
                f"SELECT state, count(*) FROM deliveries WHERE state IN ({_marks(wanted)}) "
                "GROUP BY state",
                wanted,
            ).fetchall()
        return dict(found)

    def attempts(self, item_id: str, channel: str | None = None) -> list[AttemptRecord]:
        query = f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE item_id = ?"
        args: list[Any] = [item_id]
        if channel:
            query += " AND channel = ?"
            args.append(channel)
        with self._read() as db:
            found = db.execute(query + " ORDER BY id", args).fetchall()
        return [_attempt(r) for r in found]

    def attempt_log(self, since: datetime) -> list[AttemptRecord]:
        with self._read() as db:
            found = db.execute(
                f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE id IN ("
                "  SELECT max(id) FROM attempts WHERE finished_at < ? AND state IS NOT NULL"
                "  GROUP BY item_id, channel"
                ") OR finished_at >= ? ORDER BY id",
                (ts(since), ts(since)),
            ).fetchall()
        return [_attempt(r) for r in found]

    def confirmations(self, item_ids: Sequence[str] | None = None) -> list[ConfirmationRecord]:
        query = (
            "SELECT item_id, channel, edition, area, kind, at, by_name, photo, recorded_at "
            "FROM confirmations"
        )
        chunks: list[list[str] | None] = [None] if item_ids is None else _chunked(list(item_ids))
        found: list[tuple[Any, ...]] = []
        for chunk in chunks:
            where = "" if chunk is None else f" WHERE item_id IN ({_marks(chunk)})"
            with self._read() as db:
                found += db.execute(query + where + " ORDER BY id", chunk or ()).fetchall()
        found.sort(key=lambda r: r[-1])
        return [
            ConfirmationRecord(
                r[0], r[1], r[2], r[3], r[4], parse_ts(r[5]), r[6], r[7], parse_ts(r[8])
            )
            for r in found
        ]

    def item_summaries(self) -> list[ItemSummary]:
        with self._read() as db:
            found = db.execute(
                "SELECT s.item_id, s.latest_edition, i.catalog, i.title, i.payload, i.due_on, "
                "i.created_at, s.withdrawn_at, s.withdraw_reason FROM item_state s "
                "JOIN items i ON i.item_id = s.item_id AND i.edition = s.latest_edition "
                "ORDER BY s.item_id"
            ).fetchall()
        return [
            ItemSummary(
                item_id=r[0],
                latest_edition=r[1],
                catalog=r[2],
                title=r[3],
                payload=json.loads(r[4]),
                due_on=date.fromisoformat(r[5]) if r[5] else None,
                recorded_at=parse_ts(r[6]),
                withdrawn_at=parse_ts(r[7]),
                withdraw_reason=r[8],
            )
            for r in found
        ]

    def editions(self, item_id: str) -> list[EditionRecord]:
        with self._read() as db:
            found = db.execute(
                "SELECT edition, content_hash, title, created_at FROM items "
                "WHERE item_id = ? ORDER BY edition",
                (item_id,),
            ).fetchall()
        return [
            EditionRecord(item_id, number, digest, title, parse_ts(at))
            for number, digest, title, at in found
        ]

    def all_editions(self) -> dict[str, list[EditionRecord]]:
        with self._read() as db:
            found = db.execute(
                "SELECT item_id, edition, content_hash, title, created_at FROM items "
                "ORDER BY item_id, edition"
            ).fetchall()
        editions: dict[str, list[EditionRecord]] = {}
        for item_id, number, digest, title, at in found:
            editions.setdefault(item_id, []).append(
                EditionRecord(item_id, number, digest, title, parse_ts(at))
            )
        return editions

    def first_delivered(self) -> dict[str, datetime]:
        # Timestamps are fixed-width UTC text, so min() is the earliest.
        with self._read() as db:
            found = db.execute(
                "SELECT item_id, min(finished_at) FROM attempts "
                "WHERE coalesce(state, outcome) = 'delivered' GROUP BY item_id"
            ).fetchall()
        return {item_id: parse_ts(at) for item_id, at in found}

    def withdrawal(self, item_id: str) -> tuple[datetime, str] | None:
        with self._read() as db:
            found = db.execute(
                "SELECT withdrawn_at, withdraw_reason FROM item_state WHERE item_id = ?",
                (item_id,),
            ).fetchone()
        if not found or not found[0]:
            return None
        return parse_ts(found[0]), found[1] or ""
