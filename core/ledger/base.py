"""The ledger's backend-neutral interface and records.

One **delivery** row per (item, channel) holds its current state; the **attempt** log is
append-only; **items** hold every edition's prepared payload. The state machine is in
DESIGN.md ("Ledger"). A backend implements :class:`Ledger`; SQLite ships, and the
methods are shaped so that a PostgreSQL backend can claim work with
``SELECT … FOR UPDATE SKIP LOCKED`` in :meth:`Ledger.claim`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

State = Literal[
    "pending",
    "in-flight",
    "delivered",
    "publishing",
    "awaiting-confirmation",
    "retry-wait",
    "failed",
    "unknown",
    "withdrawn",
]
#: States in which a delivery waits for core to send it.
QUEUED_STATES: tuple[str, ...] = ("pending", "retry-wait")
#: States in which the remote holds (or is about to hold) the edition.
DONE_STATES: tuple[str, ...] = ("delivered", "awaiting-confirmation", "publishing")

IngestStatus = Literal["new", "changed", "unchanged", "stale", "withdrawn"]
PlanAction = Literal["queued", "update", "superseded", "unchanged", "waiting", "withdrawn"]


@dataclass(frozen=True)
class DeliveryRow:
    item_id: str
    channel: str
    state: str
    edition: int
    content_hash: str
    delivered_edition: int | None
    receipt: dict[str, Any] | None
    checkpoint: dict[str, Any]
    attempts: int
    next_attempt_at: datetime | None
    lease_owner: str | None
    last_error: str | None
    updated_at: datetime | None
    title: str = ""
    due_on: date | None = None


@dataclass(frozen=True)
class IngestRecord:
    """One prepared item to record, with the channels it must reach."""

    item_id: str
    content_hash: str
    payload: dict[str, Any]
    catalog: str
    title: str
    channels: tuple[str, ...]
    not_before: datetime | None = None
    due_on: date | None = None


@dataclass
class IngestResult:
    item_id: str
    status: IngestStatus
    edition: int
    latest_edition: int
    plans: dict[str, PlanAction] = field(default_factory=dict)


@dataclass(frozen=True)
class Finish:
    """The end of one attempt: the row's next state and the attempt log entry."""

    state: str
    action: str = "deliver"
    receipt: dict[str, Any] | None = None
    error: str | None = None
    http_status: int | None = None
    next_attempt_at: datetime | None = None
    outcome: str | None = None
    started_at: datetime | None = None


class Ledger(abc.ABC):
    """What core needs from a ledger backend. Every method is one transaction."""

    # items and editions
    @abc.abstractmethod
    def ingest(self, records: Sequence[IngestRecord], now: datetime) -> list[IngestResult]:
        """Record editions and plan deliveries. A content hash already known as an
        older edition is ``stale`` and plans nothing (an older edition never overwrites
        a newer one)."""

    @abc.abstractmethod
    def index_numbers(
        self, wanted: Sequence[tuple[str, str]], allocate: bool = True
    ) -> dict[str, str]:
        """Index numbers by item id for (item id, prefix) pairs, allocating
        ``<prefix>-<NNNNN>`` for items that have none (unless ``allocate`` is False,
        when those are left out)."""

    @abc.abstractmethod
    def edition(self, item_id: str, edition: int | None = None) -> tuple[dict[str, Any], int, str]:
        """(payload, edition, content_hash) of an edition, the latest by default."""

    # claiming and finishing work
    @abc.abstractmethod
    def due(self, now: datetime, channels: Iterable[str]) -> list[DeliveryRow]:
        """Queued deliveries whose time has come, on the given channels."""

    @abc.abstractmethod
    def claim(
        self,
        item_id: str,
        channel: str,
        owner: str,
        now: datetime,
        lease_until: datetime,
        states: Sequence[str] = QUEUED_STATES,
    ) -> DeliveryRow | None:
        """Move one delivery to ``in-flight`` under a lease, if it is still in one of
        ``states`` and due. None means another worker has it or it is not due."""

    @abc.abstractmethod
    def save_checkpoint(self, item_id: str, channel: str, owner: str, data: dict) -> None: ...

    @abc.abstractmethod
    def finish(
        self, item_id: str, channel: str, owner: str, edition: int, finish: Finish, now: datetime
    ) -> bool:
        """End an attempt; False if the lease was lost (the attempt is logged anyway)."""

    def claim_many(
        self,
        pairs: Sequence[tuple[str, str]],
        owner: str,
        now: datetime,
        lease_until: datetime,
    ) -> list[DeliveryRow]:
        """Claim several queued deliveries at once; returns the ones this owner got.
        Core uses it only for channels whose guarantee makes a resend safe, since a
        crash leaves every claimed row ``unknown``. Backends may do it in one
        transaction; this default claims one by one."""
        rows = (self.claim(i, c, owner, now, lease_until) for i, c in pairs)
        return [row for row in rows if row is not None]

    def finish_many(
        self, entries: Sequence[tuple[str, str, str, int, Finish, datetime]]
    ) -> list[bool]:
        """End several attempts ``(item_id, channel, owner, edition, finish, now)``."""
        return [self.finish(i, c, o, e, f, n) for i, c, o, e, f, n in entries]

    def release(self, pairs: Sequence[tuple[str, str]], owner: str, now: datetime) -> None:
        """Give back claimed deliveries that were never attempted (a paused channel)."""
        for item_id, channel in pairs:
            self.settle(
                item_id,
                channel,
                ("in-flight",),
                Finish(state="pending", action="release", outcome="not attempted"),
                now,
            )

    @abc.abstractmethod
    def expire_leases(self, now: datetime, owner_alive: Callable[[str], bool]) -> list[DeliveryRow]:
        """Turn in-flight rows whose lease ran out (or whose owner is gone) into
        ``unknown``, never ``pending``."""

    @abc.abstractmethod
    def settle(
        self,
        item_id: str,
        channel: str,
        expect: Sequence[str],
        finish: Finish,
        now: datetime,
    ) -> bool:
        """Move a delivery not under lease (unknown, publishing, failed …) to a new
        state, if it is still in one of ``expect``."""

    @abc.abstractmethod
    def requeue_stale(self, now: datetime) -> int:
        """Queue deliveries that settled on an edition older than the item's latest."""

    # reading
    @abc.abstractmethod
    def rows(
        self,
        item_id: str | None = None,
        states: Sequence[str] | None = None,
        item_ids: Sequence[str] | None = None,
    ) -> list[DeliveryRow]:
        """Delivery rows, optionally of one item, of several items, or in some states."""

    @abc.abstractmethod
    def attempts(self, item_id: str, channel: str | None = None) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def withdrawn_at(self, item_id: str) -> datetime | None: ...

    @abc.abstractmethod
    def mark_withdrawn(self, item_id: str, reason: str, now: datetime) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...
