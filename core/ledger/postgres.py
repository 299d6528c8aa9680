"""The PostgreSQL ledger: the SQLite ledger's mixins (the same state machine table, the
same write path, the same SQL) on a PostgreSQL database that workers on several hosts
and writers in several processes share. Only where the engines differ is it its own:

* SQLite locks the whole file for a write; PostgreSQL locks rows. So a write reads a
  row ``FOR UPDATE`` before moving it; claims and lease expiry take rows with
  ``FOR UPDATE SKIP LOCKED``, so workers never wait for each other's rows; ingest
  locks each item's state row (in id order), so editions are numbered without gaps or
  duplicates; index numbers are allocated under their prefix's counter row.
* Writes that make work (ingest, requeue, release, withdrawal, expired leases)
  ``NOTIFY`` a channel that :meth:`wait_for_work` ``LISTEN``\\ s on.
* A deadlock PostgreSQL breaks (two transactions locking the same rows in another
  order) rolls one back; that method is simply run again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from .base import DeliveryRow, FinishEntry, IngestRecord, IngestResult, Ledger
from .postgres_schema import MIGRATIONS, TABLES, PgCursor, PostgresConnection, safe_url
from .sqlite_editions import RecordEditions
from .sqlite_files import RememberFiles
from .sqlite_machine import _FACTS, Transitions
from .sqlite_rows import _RETURNING, ReadRows, _row
from .sqlite_schema import _chunked, ts
from .sqlite_work import _CLAIMABLE, _COUNTED, ClaimWork
from .states import Action, Event, IllegalTransition, Intent, State, check

#: How often a method rolled back by a deadlock is run again before it gives up.
_RUNS = 5


def _rerun_on_deadlock(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def run(self: PostgresLedger, *args: Any, **kwargs: Any) -> Any:
        rollback = self._psycopg.errors.TransactionRollback
        for attempt in range(_RUNS):
            try:
                return method(self, *args, **kwargs)
            except rollback:
                if attempt == _RUNS - 1:
                    raise
        raise AssertionError("unreachable")

    return run


def _sorted_rows(rows: Sequence[Any], key: Callable[[Any], Any]) -> list[int]:
    # Rows are locked in one order (item id, channel) by every writer: no deadlocks.
    return sorted(range(len(rows)), key=lambda n: key(rows[n]))


class PostgresLedger(
    RecordEditions, RememberFiles, ClaimWork, ReadRows, Transitions, PostgresConnection, Ledger
):
    """The ledger in a PostgreSQL database (psycopg 3 and its pool). ``url`` is a
    ``postgresql://user@host/db`` URL; the password comes apart from it."""

    _FACTS = _FACTS + " FOR UPDATE"
    _IN_FLIGHT = ClaimWork._IN_FLIGHT + " ORDER BY d.item_id, d.channel FOR UPDATE OF d SKIP LOCKED"

    # --- items and editions -------------------------------------------------------------

    @_rerun_on_deadlock
    def ingest(self, records: Sequence[IngestRecord], now: datetime) -> list[IngestResult]:
        results: list[IngestResult | None] = [None] * len(records)
        with self._write() as db:
            # Each item's state row, locked in id order, serialises writers of one item
            # (on any host) while writers of other items go on.
            ids = sorted({r.item_id for r in records})
            for chunk in _chunked(ids):
                db.execute(
                    "INSERT INTO item_state (item_id) SELECT unnest(?::text[]) ORDER BY 1 "
                    "ON CONFLICT (item_id) DO NOTHING",
                    (chunk,),
                )
                db.execute(
                    "SELECT item_id FROM item_state WHERE item_id = ANY(?) ORDER BY item_id "
                    "FOR UPDATE",
                    (chunk,),
                )
            for n in _sorted_rows(records, lambda r: r.item_id):
                results[n] = self._ingest_one(db, records[n], now)  # type: ignore[arg-type]
            self._notify(db)
        return [r for r in results if r is not None]

    @_rerun_on_deadlock
    def index_numbers(
        self, wanted: Sequence[tuple[str, str]], allocate: bool = True
    ) -> dict[str, str]:
        found = super().index_numbers(wanted, allocate=False)
        missing = sorted({(p, i) for i, p in wanted if i not in found})
        if not missing or not allocate:
            return found
        with self._write() as db:
            for prefix, item_id in missing:
                # The prefix's counter row, locked until commit: a writer elsewhere
                # waits here, then sees the number this one gave the item.
                db.execute(
                    "INSERT INTO index_serials (prefix, last) VALUES (?, 0) "
                    "ON CONFLICT (prefix) DO NOTHING",
                    (prefix,),
                )
                db.execute("SELECT last FROM index_serials WHERE prefix = ? FOR UPDATE", (prefix,))
                again = db.execute(
                    "SELECT index_number FROM item_state WHERE item_id = ?", (item_id,)
                ).fetchone()
                if again and again[0]:
                    found[item_id] = again[0]
                    continue
                (serial,) = db.execute(
                    "UPDATE index_serials SET last = last + 1 WHERE prefix = ? RETURNING last",
                    (prefix,),
                ).fetchone()
                number = f"{prefix}-{serial:05d}"
                db.execute(
                    "INSERT INTO item_state (item_id, index_number) VALUES (?, ?) "
                    "ON CONFLICT (item_id) DO UPDATE SET index_number = excluded.index_number",
                    (item_id, number),
                )
                found[item_id] = number
        return found

    # --- claims: SKIP LOCKED ------------------------------------------------------------

    @_rerun_on_deadlock
    def claim_many(
        self, rows: Sequence[DeliveryRow], owner: str, now: datetime, lease_until: datetime
    ) -> list[DeliveryRow]:
        if not rows:
            return []
        wanted: list[tuple[str, str, str, str, str, int]] = []
        for row in rows:
            action = Action(row.action)
            if row.state not in _CLAIMABLE[action]:
                raise IllegalTransition(
                    row.item_id, row.channel, row.state, Event.CLAIMED, State.IN_FLIGHT
                )
            check(row.item_id, row.channel, row.state, Event.CLAIMED, State.IN_FLIGHT)
            intent = Intent.WITHDRAW if action is Action.WITHDRAW else Intent.DELIVER
            counted = 1 if action in _COUNTED else 0
            wanted.append((row.item_id, row.channel, row.state, str(intent), str(action), counted))
        columns = list(zip(*wanted, strict=True))
        picked = (
            "SELECT x.item_id AS pid, x.channel AS pch, w.act, w.counted FROM deliveries x "
            "JOIN unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::int[]) "
            "AS w (wid, wch, wst, wint, act, counted) ON x.item_id = w.wid "
            "AND x.channel = w.wch AND x.state = w.wst AND x.intent = w.wint "
            "WHERE x.state NOT IN ('pending', 'retry-wait') OR x.next_attempt_at IS NULL "
            "OR x.next_attempt_at <= ? "
            "ORDER BY x.item_id, x.channel FOR UPDATE OF x SKIP LOCKED"
        )
        with self._write() as db:
            got = self._claim(
                db,
                picked,
                [*(list(c) for c in columns), ts(now)],
                owner,
                lease_until,
                now,
                action="p.act",
                counted="p.counted",
            )
        order = {(r.item_id, r.channel): n for n, r in enumerate(rows)}
        return sorted(got, key=lambda r: order[(r.item_id, r.channel)])

    @_rerun_on_deadlock
    def claim_queued(
        self,
        item_ids: Sequence[str],
        channels: Iterable[str],
        owner: str,
        now: datetime,
        lease_until: datetime,
    ) -> list[DeliveryRow]:
        names = sorted(channels)
        if not names or not item_ids:
            return []
        for state in _CLAIMABLE[Action.DELIVER]:  # the same move for every row
            check("*", "*", state, Event.CLAIMED, State.IN_FLIGHT)
        claimed: list[DeliveryRow] = []
        with self._write() as db:
            for chunk in _chunked(list(item_ids), 1000):
                picked = (
                    "SELECT item_id AS pid, channel AS pch FROM deliveries "
                    "WHERE item_id = ANY(?) AND channel = ANY(?) "
                    "AND state IN ('pending', 'retry-wait') AND intent = 'deliver' "
                    "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
                    "ORDER BY item_id, channel FOR UPDATE SKIP LOCKED"
                )
                claimed += self._claim(db, picked, [chunk, names, ts(now)], owner, lease_until, now)
        return claimed

    def _claim(
        self,
        db: PgCursor,
        picked: str,
        args: list[Any],
        owner: str,
        lease_until: datetime,
        now: datetime,
        *,
        action: str = "'deliver'",
        counted: str = "1",
    ) -> list[DeliveryRow]:
        """Move the rows ``picked`` selects (``pid``, ``pch``, locked, skipping rows
        another claimer holds) to in-flight, each with a token of its own: the owner
        and a serial from the database, unique across every host."""
        found = db.execute(
            "UPDATE deliveries SET state = 'in-flight', "
            "lease_owner = ? || nextval('claim_serials'), lease_until = ?, "
            f"claimed_from = state, action = {action}, attempts = attempts + {counted}, "
            f"updated_at = ? FROM ({picked}) AS p "
            f"WHERE item_id = p.pid AND channel = p.pch RETURNING {_RETURNING}, {counted}",
            (f"{owner}#", ts(lease_until), ts(now), *args),
        ).fetchall()
        claimed = []
        for values in found:
            values = list(values)
            values[8] -= values.pop()  # report the tries before this one
            claimed.append(_row(values))
        return claimed

    # --- finishing, giving back, settling -------------------------------------------------

    @_rerun_on_deadlock
    def finish_many(self, entries: Sequence[FinishEntry]) -> list[State | None]:
        order = _sorted_rows(entries, lambda e: (e[0], e[1]))
        states = super().finish_many([entries[n] for n in order])
        results: list[State | None] = [None] * len(entries)
        for n, state in zip(order, states, strict=True):
            results[n] = state
        return results

    @_rerun_on_deadlock
    def release(self, claims: Sequence[DeliveryRow], now: datetime) -> None:
        super().release(sorted(claims, key=lambda c: (c.item_id, c.channel)), now)
        self._notify()

    @_rerun_on_deadlock
    def expire_leases(self, now: datetime, owner_alive: Callable[[str], bool]) -> list[DeliveryRow]:
        expired = super().expire_leases(now, owner_alive)
        if expired:
            self._notify()
        return expired

    @_rerun_on_deadlock
    def requeue(
        self, item_id: str, channel: str, states: Sequence[str], now: datetime, note: str
    ) -> bool:
        done = super().requeue(item_id, channel, states, now, note)
        if done:
            self._notify()
        return done

    @_rerun_on_deadlock
    def request_withdraw(self, item_id: str, reason: str, now: datetime) -> list[DeliveryRow]:
        # Marking the item withdrawn updates its state row, the row ingest locks: a
        # withdrawal and an ingest of the same item happen one after the other.
        rows = super().request_withdraw(item_id, reason, now)
        self._notify()
        return rows

    record_confirmation = _rerun_on_deadlock(ClaimWork.record_confirmation)
    extend_leases = _rerun_on_deadlock(ClaimWork.extend_leases)
    save_checkpoint = _rerun_on_deadlock(ClaimWork.save_checkpoint)
    remember_files = _rerun_on_deadlock(RememberFiles.remember_files)

    # --- waking workers -----------------------------------------------------------------

    def _notify(self, db: PgCursor | None = None) -> None:
        """Tell listening workers that work may be there. Inside a transaction the
        notice goes out when it commits."""
        if db is not None:
            db.execute("SELECT pg_notify(?, '')", (self.channel,))
            return
        with self._read() as conn:
            conn.execute("SELECT pg_notify(?, '')", (self.channel,))

    def wait_for_work(self, timeout: float, sleep: Callable[[float], None]) -> bool:
        """Wait on the socket for a notice of new work, up to ``timeout`` seconds
        (``sleep`` is not called: the server wakes the wait). The first call starts
        listening and returns at once, True: anything recorded before it was missed."""
        with self._lock:
            if self._listener is None:
                self._listener = self.connect()
                self._listener.execute(f'LISTEN "{self.channel}"')
                return True
            listener = self._listener
        woken = False
        for _ in listener.notifies(timeout=max(timeout, 0), stop_after=1):
            woken = True
        # Drain the rest: one wake-up is enough for any number of notices.
        for _ in listener.notifies(timeout=0):
            pass
        return woken

    # --- reading ------------------------------------------------------------------------

    def table_counts(self) -> dict[str, int]:
        """Rows per table (for ``gongkai ledger copy``'s check)."""
        with self._read() as db:
            return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


__all__ = ["MIGRATIONS", "PostgresLedger", "safe_url"]
