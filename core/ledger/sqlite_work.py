"""Work in SQLite: what is due, claims under a lease, finishing attempts, giving claims
back, expiring dead leases, operator requeues and withdrawal."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from ..errors import UnknownItem
from ..log import scrub
from .base import Capabilities, ConfirmationRecord, DeliveryRow, FinishEntry, Step
from .sqlite_machine import _json
from .sqlite_rows import _RETURNING, _ROW_COLUMNS, _row
from .sqlite_schema import _chunked, _marks, parse_ts, ts
from .states import DONE, QUEUED, Action, Event, IllegalTransition, Intent, State, check, target

#: States a claim may start from, per action (the table allows these; see states.py).
_CLAIMABLE = {
    Action.DELIVER: (State.PENDING, State.RETRY_WAIT),
    Action.WITHDRAW: (State.PENDING, State.RETRY_WAIT),
    Action.RECONCILE: (State.UNKNOWN,),
    Action.POLL: (State.PUBLISHING,),
}


#: How often, in seconds, a waiting worker looks whether another process wrote.
WAIT_SLICE = 0.25

#: Only sending counts as a try of the retry schedule; looking something up does not.
_COUNTED = frozenset({Action.DELIVER, Action.WITHDRAW})


class ClaimWork:
    """Mixin: the work half of :class:`SQLiteLedger` (needs ``_db``, ``_lock``,
    ``_write`` and the :class:`~.sqlite_machine.Transitions` write path)."""

    _db: sqlite3.Connection
    _lock: threading.RLock

    #: The in-flight rows a settling run looks at. SQLite's write lock covers the
    #: file; a backend with row locks skips rows another settler holds.
    _IN_FLIGHT = (
        f"SELECT {_ROW_COLUMNS}, d.lease_until FROM deliveries d WHERE d.state = 'in-flight'"
    )

    def due(
        self, now: datetime, can: Capabilities, item_ids: Sequence[str] | None = None
    ) -> list[DeliveryRow]:
        if not can.deliver:
            return []
        poll = sorted(can.poll)
        names = sorted(can.deliver)
        reconcile = sorted(can.reconcile)
        # The action core takes on each row, decided in SQL (see _next_action's rules).
        columns = _ROW_COLUMNS.replace(
            "d.intent, d.action,",
            "d.intent, CASE WHEN d.state = 'publishing' THEN 'poll' "
            f"WHEN d.state = 'unknown' AND d.channel IN ({_marks(reconcile)}) THEN 'reconcile' "
            "WHEN d.intent = 'withdraw' AND d.state <> 'unknown' THEN 'withdraw' "
            "ELSE 'deliver' END,",
        )
        where = (
            f"d.channel IN ({_marks(names)}) AND ("
            "(d.state IN ('pending', 'retry-wait') AND "
            "(d.next_attempt_at IS NULL OR d.next_attempt_at <= ?))"
            " OR (d.state = 'unknown' AND d.intent = 'deliver' AND "
            f"d.channel IN ({_marks(reconcile)}))"
            f" OR (d.state = 'publishing' AND d.channel IN ({_marks(poll)})))"
        )
        args: list[Any] = [*reconcile, *names, ts(now), *reconcile, *poll]
        found: list[DeliveryRow] = []
        chunks = [None] if item_ids is None else _chunked(list(item_ids))
        for chunk in chunks:
            clause = "" if chunk is None else f" AND d.item_id IN ({_marks(chunk)})"
            with self._read() as db:
                rows = db.execute(
                    f"SELECT {columns} FROM deliveries d WHERE {where}{clause} "
                    "ORDER BY d.next_attempt_at IS NOT NULL, d.next_attempt_at, d.item_id, "
                    "d.channel",
                    (*args, *(chunk or ())),
                ).fetchall()
            found.extend(_row(r) for r in rows)
        return found

    def claim_many(
        self, rows: Sequence[DeliveryRow], owner: str, now: datetime, lease_until: datetime
    ) -> list[DeliveryRow]:
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
                token = f"{owner}#{next(self._claims)}"
                got = db.execute(
                    "UPDATE deliveries SET state = 'in-flight', lease_owner = ?, lease_until = ?, "
                    "claimed_from = state, action = ?, attempts = attempts + ?, updated_at = ? "
                    "WHERE item_id = ? AND channel = ? AND state = ? AND intent = ?"
                    f"{due} RETURNING {_RETURNING}",
                    (
                        token,
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
                    values = list(got[0])
                    values[8] -= 1 if action in _COUNTED else 0
                    claimed.append(_row(values))
        return claimed

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
            for chunk in _chunked(list(item_ids), 400):
                # One token per claim: this batch's serial plus the row's rowid.
                token = f"{owner}#{next(self._claims)}."
                got = db.execute(
                    "UPDATE deliveries SET state = 'in-flight', lease_owner = ? || rowid, "
                    "lease_until = ?, claimed_from = state, action = 'deliver', "
                    "attempts = attempts + 1, updated_at = ? "
                    f"WHERE item_id IN ({_marks(chunk)}) AND channel IN ({_marks(names)}) "
                    "AND state IN ('pending', 'retry-wait') AND intent = 'deliver' "
                    f"AND (next_attempt_at IS NULL OR next_attempt_at <= ?) RETURNING {_RETURNING}",
                    (token, ts(lease_until), ts(now), *chunk, *names, ts(now)),
                ).fetchall()
                for values in got:
                    values = list(values)
                    values[8] -= 1  # report the tries before this one, as claim_many does
                    claimed.append(_row(values))
        return claimed

    def finish_many(self, entries: Sequence[FinishEntry]) -> list[State | None]:
        results: list[State | None] = []
        with self._write() as db:
            for item_id, channel, owner, edition, step, now in entries:
                receipt_status = (step.receipt or {}).get("status")
                after = target(step.event, action=step.action, receipt_status=receipt_status)
                sets: dict[str, Any] = {
                    "lease_owner": None,
                    "lease_until": None,
                    "claimed_from": None,
                    "last_error": scrub(step.error) if step.error else None,
                    "next_attempt_at": ts(step.next_attempt_at),
                }
                if step.receipt is not None:
                    sets["receipt"] = _json(step.receipt)
                if after in DONE and step.action != Action.WITHDRAW:
                    # A take-down waiting for its confirmation still concerns the
                    # edition the remote holds.
                    sets.update(delivered_edition=edition, checkpoint=None)
                if after == State.PENDING:
                    sets["attempts"] = 0
                if step.uncertain or (
                    step.event is Event.OUTCOME_UNKNOWN and step.action == Action.DELIVER
                ):
                    sets["maybe_delivered"] = 1
                # Only the claim's holder, for the edition and action it claimed.
                held = {
                    "state": State.IN_FLIGHT,
                    "lease_owner": owner,
                    "edition": edition,
                    "action": str(step.action),
                }
                moved = self._move(
                    db,
                    item_id,
                    channel,
                    None,
                    step.event,
                    after,
                    now,
                    sets=sets,
                    log=step,
                    expect=held,
                )
                if moved is None:
                    # The lease was lost (the delivery was presumed dead meanwhile): the
                    # row belongs to someone else now, but what happened is still logged.
                    self._log(db, item_id, channel, edition, step, str(step.event), now)
                results.append(State(moved.state) if moved is not None else None)
        return results

    def release(self, claims: Sequence[DeliveryRow], now: datetime) -> None:
        # Undo the claim exactly: nothing was sent, so nothing is logged.
        with self._write() as db:
            for claim in claims:
                item_id, channel = claim.item_id, claim.channel
                facts = self._facts(db, item_id, channel)
                held = facts is not None and facts.lease_owner == claim.lease_owner
                if facts is None or facts.state != State.IN_FLIGHT or not held:
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

    def save_checkpoint(self, item_id: str, channel: str, owner: str, data: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE deliveries SET checkpoint = ? WHERE item_id = ? AND channel = ? "
                "AND lease_owner = ?",
                (json.dumps(data, ensure_ascii=False), item_id, channel, owner),
            )

    def expire_leases(self, now: datetime, owner_alive: Callable[[str], bool]) -> list[DeliveryRow]:
        with self._read() as db:
            # Cheap read first: most runs find nothing in flight and take no write lock.
            if not db.execute(
                "SELECT 1 FROM deliveries WHERE state = 'in-flight' LIMIT 1"
            ).fetchone():
                return []
        expired: list[DeliveryRow] = []
        with self._write() as db:
            rows = db.execute(self._IN_FLIGHT).fetchall()
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
                        "maybe_delivered": 1
                        if facts.action == Action.DELIVER
                        else facts.maybe_delivered,
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

    def extend_leases(self, owner: str, now: datetime, lease_until: datetime) -> int:
        prefix = f"{owner}#"
        with self._write() as db:
            return db.execute(
                "UPDATE deliveries SET lease_until = ? WHERE state = 'in-flight' "
                "AND substr(lease_owner, 1, ?) = ? AND lease_until > ?",
                (ts(lease_until), len(prefix), prefix, ts(now)),
            ).rowcount

    def wait_for_work(self, timeout: float, sleep: Callable[[float], None]) -> bool:
        # SQLite cannot notify: look every WAIT_SLICE seconds whether another
        # connection committed (data_version moves only for others' commits).
        def version() -> int:
            with self._lock:
                return self._db.execute("PRAGMA data_version").fetchone()[0]

        start = version()
        waited = 0.0
        while waited < timeout:
            step = min(WAIT_SLICE, timeout - waited)
            sleep(step)
            waited += step
            if version() != start:
                return True
        return False

    def requeue(
        self, item_id: str, channel: str, states: Sequence[str], now: datetime, note: str
    ) -> bool:
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

    def record_confirmation(
        self,
        item_id: str,
        channel: str,
        *,
        state: str,
        edition: int,
        event: Event,
        done: bool,
        receipt: dict[str, Any],
        records: Sequence[ConfirmationRecord],
        note: str,
        now: datetime,
    ) -> bool:
        with self._write() as db:
            facts = self._facts(db, item_id, channel)
            if facts is None or facts.state != state or facts.edition != edition:
                return False
            after = target(event) if done else State(state)
            self._move(
                db,
                item_id,
                channel,
                facts,
                event,
                after,
                now,
                sets={"receipt": _json(receipt)},
                log=Step(event, action=event, receipt=receipt, note=note),
            )
            db.executemany(
                "INSERT INTO confirmations (item_id, channel, edition, area, kind, at, by_name, "
                "photo, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.item_id, r.channel, r.edition, r.area, r.kind, ts(r.at), r.by, r.photo,
                     ts(now))
                    for r in records
                ],
            )  # fmt: skip
            return True

    def request_withdraw(self, item_id: str, reason: str, now: datetime) -> list[DeliveryRow]:
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
                # Its file, if still in the folder, is read again, so the run notes it.
                # A scan of the files table, but withdrawals are rare.
                db.execute(
                    "DELETE FROM files WHERE instr(' ' || item_ids || ' ', ' ' || ? || ' ') > 0",
                    (item_id,),
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
                    self._log(
                        db,
                        item_id,
                        channel,
                        facts.edition,
                        step,
                        State.IN_FLIGHT,
                        now,
                        state=State.IN_FLIGHT,
                    )
                else:
                    self._follow_on(db, item_id, channel, facts, now)
        return self.rows(item_id=item_id)
