"""The state machine's write path in SQLite: every change to a delivery row goes
through :meth:`Transitions._move`, which checks it against the table in
:mod:`gongkai.ledger.states` and then makes the follow-on moves; every entry of the
attempt log goes through :meth:`Transitions._log`."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..log import scrub, scrub_data
from .base import Step
from .sqlite_schema import ts
from .states import Action, Event, State, check, follow_on, target

#: What the state machine needs to know about a row to move it.
_FACT_COLUMNS = (
    "state, edition, intent, action, delivered_edition, claimed_from, lease_owner, "
    "COALESCE((SELECT latest_edition FROM item_state s WHERE s.item_id = deliveries.item_id), "
    "edition), attempts, maybe_delivered"
)
_FACTS = f"SELECT {_FACT_COLUMNS} FROM deliveries WHERE item_id = ? AND channel = ?"


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
    maybe_delivered: int


class Transitions:
    """Mixin: the one write path for delivery rows and the attempt log."""

    #: How a write reads a row before moving it. SQLite's write lock covers the whole
    #: file; a backend with row locks locks the row here (``FOR UPDATE``).
    _FACTS = _FACTS

    def _facts(self, db: sqlite3.Connection, item_id: str, channel: str) -> _Facts | None:
        found = db.execute(self._FACTS, (item_id, channel)).fetchone()
        return _Facts(*found) if found else None

    def _move(
        self,
        db: sqlite3.Connection,
        item_id: str,
        channel: str,
        facts: _Facts | None,
        event: Event,
        after: State,
        now: datetime,
        *,
        sets: dict[str, Any] | None = None,
        log: Step | None = None,
        expect: dict[str, Any] | None = None,
    ) -> _Facts | None:
        """Check ``before --event--> after`` against the table, write it with the extra
        column values ``sets``, log it (``log`` describes the attempt; None logs a plain
        transition), then make the follow-on moves the table implies.

        ``facts`` is the row as read in this transaction. Instead, ``expect`` names
        column values the row must still have (state, lease owner, edition): the check
        and the write are then one statement, and None means the row had moved on.
        """
        expect = expect or {}
        before = facts.state if facts is not None else expect["state"]
        check(item_id, channel, before, event, after)
        columns = {"state": str(after), "updated_at": ts(now), **(sets or {})}
        assignments = ", ".join(f"{name} = ?" for name in columns)
        guard = "".join(f" AND {name} = ?" for name in expect)
        found = db.execute(
            f"UPDATE deliveries SET {assignments} WHERE item_id = ? AND channel = ?{guard} "
            f"RETURNING {_FACT_COLUMNS}",
            (*columns.values(), item_id, channel, *expect.values()),
        ).fetchone()
        if found is None:
            return None
        edition = facts.edition if facts is not None else expect.get("edition", found[1])
        if log is not None:
            self._log(db, item_id, channel, edition, log, str(after), now, state=after)
        elif event not in (Event.CLAIMED, Event.RELEASED, Event.PLANNED):
            step = Step(event, action=event)
            self._log(db, item_id, channel, edition, step, after, now, state=after)
        return self._follow_on(db, item_id, channel, _Facts(*found), now)

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
            maybe_delivered=bool(facts.maybe_delivered),
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
        moved = self._move(db, item_id, channel, facts, event, target(event), now, sets=sets)
        assert moved is not None  # the row was read in this transaction
        return moved

    def _log(
        self,
        db: sqlite3.Connection,
        item_id: str,
        channel: str,
        edition: int,
        step: Step,
        outcome: str,
        now: datetime,
        *,
        state: str | None = None,
    ) -> None:
        """The one place that appends to the attempt log. ``state`` is the state the
        entry left the row in (None when the entry changed nothing: a lost lease)."""
        duration = None
        if step.started_at is not None:
            duration = int((now - step.started_at).total_seconds() * 1000)
        db.execute(
            "INSERT INTO attempts (item_id, channel, edition, action, started_at, finished_at, "
            "outcome, http_status, error, duration_ms, state) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                None if state is None else str(state),
            ),
        )
