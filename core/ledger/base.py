"""The ledger's backend-neutral interface and records.

One **delivery** row per (item, channel) holds its current state; the **attempt** log is
append-only; **items** hold every edition's prepared payload. States, events and the
allowed transitions are defined once, in :mod:`gongkai.ledger.states`. A backend
implements :class:`Ledger`; SQLite ships, and the methods are shaped so that a
PostgreSQL backend can claim work with ``SELECT … FOR UPDATE SKIP LOCKED``.

Every write names the event that causes it (a :class:`Step`, or a method named for
it: :meth:`Ledger.claim`, :meth:`Ledger.release`, :meth:`Ledger.requeue`,
:meth:`Ledger.request_withdraw`, :meth:`Ledger.expire_leases`). The backend derives
the next state from the event with :func:`states.target`, checks the move against
the table, and then applies the follow-on moves the table implies (a newer edition
supersedes a settled one; a withdrawn item's rows are cancelled or queued for
take-down) in the same transaction.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from .states import Action, Event, Intent, State

IngestStatus = Literal["new", "changed", "unchanged", "stale", "withdrawn"]
PlanAction = Literal["queued", "update", "superseded", "unchanged", "waiting", "withdrawn"]


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery as the ledger holds it. ``action`` is what core will do (or is
    doing, when ``in-flight``): deliver, withdraw, reconcile or poll."""

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
    intent: str = Intent.DELIVER
    action: str = Action.DELIVER
    #: The item's newest edition; greater than ``edition`` while a newer one waits.
    latest_edition: int | None = None


@dataclass(frozen=True)
class AttemptRecord:
    """One entry of the append-only attempt log: an action core took on a delivery,
    or a transition the state machine made (``action`` then names the event)."""

    item_id: str
    channel: str
    edition: int
    action: str
    started_at: datetime | None
    finished_at: datetime
    outcome: str
    http_status: int | None = None
    error: str | None = None
    duration_ms: int | None = None
    #: The state the entry left the delivery in (None for entries logged before
    #: schema 4, and for an attempt whose lease was lost, which changed nothing).
    state: str | None = None


@dataclass(frozen=True)
class ConfirmationRecord:
    """A person's word that an offline edition went up in one area, or came down
    (``kind`` ``posted`` or ``taken-down``), at ``at``, by ``by``, with an optional
    photo (a path under the state directory). Append-only: what each wall carried,
    and since when, even after a newer edition's receipt replaced the old one. A
    delivery with no areas (the platform's export batch) has one, named ``""``."""

    item_id: str
    channel: str
    edition: int
    area: str
    kind: Literal["posted", "taken-down"]
    at: datetime
    by: str
    photo: str | None = None
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class ItemSummary:
    """An item as parity looks at it: its newest edition's payload and deadline,
    when that edition was recorded, and its withdrawal if any."""

    item_id: str
    latest_edition: int
    catalog: str
    title: str
    payload: dict[str, Any]
    due_on: date | None
    recorded_at: datetime
    withdrawn_at: datetime | None = None
    withdraw_reason: str | None = None


@dataclass(frozen=True)
class EditionRecord:
    """One recorded edition of an item: its number, content hash, title and when it
    was recorded (the edition history shown by ``gongkai status ITEM``)."""

    item_id: str
    edition: int
    content_hash: str
    title: str
    recorded_at: datetime


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
    """What the ledger did with one record. ``withdrawn``: the id is closed; then
    ``edition`` is the recorded edition with this very content (the file of a withdrawn
    item, left in place), or 0 for content never recorded."""

    item_id: str
    status: IngestStatus
    edition: int
    latest_edition: int
    plans: dict[str, PlanAction] = field(default_factory=dict)


@dataclass(frozen=True)
class FileRecord:
    """An item file as it was when its items were last taken in, so that a later run
    can skip it unread while nothing about it changed (see :mod:`gongkai.sources`).

    ``stamps`` are (path, size, mtime_ns) of the file and of every attachment it
    names; ``digest`` is the sha256 of the file's bytes; ``context`` fingerprints the
    config, catalogue and plugins that shaped its items; ``seen_ns`` is when the run
    that read it began (a modification time that close to it is ambiguous)."""

    path: str
    digest: str
    context: str
    seen_ns: int
    item_ids: tuple[str, ...]
    stamps: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class Step:
    """The end of one attempt, named by its event. The backend derives the state from
    the event (and the receipt's status), so no caller can write an arbitrary state."""

    event: Event
    action: str = Action.DELIVER
    receipt: dict[str, Any] | None = None
    error: str | None = None
    http_status: int | None = None
    next_attempt_at: datetime | None = None
    started_at: datetime | None = None
    note: str | None = None
    #: The request may have reached the remote although the attempt failed (an
    #: unknown outcome folded into a retry on a resend-safe channel): a withdrawal must
    #: then take the item down rather than cancel it.
    uncertain: bool = False


@dataclass(frozen=True)
class Capabilities:
    """Which settling actions core can take on each channel this run: ``reconcile``
    (it can look up an unknown outcome) and ``poll`` (it can ask after a remote job)."""

    deliver: frozenset[str]
    reconcile: frozenset[str] = frozenset()
    poll: frozenset[str] = frozenset()


#: (item id, channel, owner, edition, step, now): one attempt to finish.
FinishEntry = tuple[str, str, str, int, Step, datetime]


class Ledger(abc.ABC):
    """What core needs from a ledger backend. Every method is one transaction."""

    # --- items and editions -------------------------------------------------------------

    @abc.abstractmethod
    def ingest(self, records: Sequence[IngestRecord], now: datetime) -> list[IngestResult]:
        """Record editions and plan deliveries. A content hash already known as an
        older edition is ``stale`` and plans nothing (an older edition never overwrites
        a newer one). A withdrawn item plans nothing."""

    @abc.abstractmethod
    def index_numbers(
        self, wanted: Sequence[tuple[str, str]], allocate: bool = True
    ) -> dict[str, str]:
        """Index numbers by item id for (item id, prefix) pairs, allocating
        ``<prefix>-<NNNNN>`` (five digits or more) for items that have none, unless
        ``allocate`` is False, when those are left out."""

    @abc.abstractmethod
    def edition(self, item_id: str, edition: int | None = None) -> tuple[dict[str, Any], int, str]:
        """(payload, edition, content_hash) of an edition, the latest by default."""

    # --- item files already taken in ------------------------------------------------------

    def file_records(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        """The stored records of these item files, by path. A backend that keeps none
        returns {}: every run then reads every file, which is slower but correct."""
        return {}

    def remember_files(self, records: Sequence[FileRecord]) -> None:  # noqa: B027 - optional
        """Store (replace) file records after their items were taken in."""

    # --- claiming and finishing work ------------------------------------------------------

    @abc.abstractmethod
    def due(
        self, now: datetime, can: Capabilities, item_ids: Sequence[str] | None = None
    ) -> list[DeliveryRow]:
        """Work core can do now, each row with the ``action`` it needs: queued rows
        whose time has come (deliver or withdraw, by intent), unknown outcomes on
        channels that can settle them, and remote jobs on channels that can poll."""

    @abc.abstractmethod
    def claim_many(
        self, rows: Sequence[DeliveryRow], owner: str, now: datetime, lease_until: datetime
    ) -> list[DeliveryRow]:
        """Move rows from :meth:`due` to ``in-flight`` under a lease (event
        ``claimed``), each only if it is still in the state and intent it was listed
        with. Returns the rows this owner got, as claimed: each one's ``lease_owner``
        is a token unique to that claim (``owner`` plus a serial), which finishing,
        releasing and checkpointing it must name."""

    def claim_queued(
        self,
        item_ids: Sequence[str],
        channels: Iterable[str],
        owner: str,
        now: datetime,
        lease_until: datetime,
    ) -> list[DeliveryRow]:
        """Claim, as :meth:`claim_many` would, every delivery of these items on these
        channels that is queued to be sent now: the items a run has just recorded, in
        one step instead of :meth:`due` then :meth:`claim_many`. A backend may do it
        in one statement; this default does exactly those two calls."""
        wanted = frozenset(channels)
        can = Capabilities(deliver=wanted, reconcile=frozenset(), poll=frozenset())
        rows = [
            r
            for r in self.due(now, can, item_ids)
            if r.action == Action.DELIVER and r.state in (State.PENDING, State.RETRY_WAIT)
        ]
        return self.claim_many(rows, owner, now, lease_until) if rows else []

    def claim(
        self, row: DeliveryRow, owner: str, now: datetime, lease_until: datetime
    ) -> DeliveryRow | None:
        """Claim one row; None means another worker has it or it changed."""
        got = self.claim_many([row], owner, now, lease_until)
        return got[0] if got else None

    @abc.abstractmethod
    def save_checkpoint(self, item_id: str, channel: str, owner: str, data: dict) -> None: ...

    @abc.abstractmethod
    def finish_many(self, entries: Sequence[FinishEntry]) -> list[State | None]:
        """End attempts. Each returns the row's state after the step and its follow-on
        moves, or None if the lease was lost (the attempt is logged anyway)."""

    def finish(
        self, item_id: str, channel: str, owner: str, edition: int, step: Step, now: datetime
    ) -> State | None:
        """End one attempt; ``owner`` is the claim's token (its ``lease_owner``)."""
        return self.finish_many([(item_id, channel, owner, edition, step, now)])[0]

    @abc.abstractmethod
    def release(self, claims: Sequence[DeliveryRow], now: datetime) -> None:
        """Give back claims (rows as :meth:`claim_many` returned them) that were never
        attempted (event ``released``): each row returns to the state it was claimed
        from, with its try uncounted. A claim that was lost meanwhile is left alone."""

    @abc.abstractmethod
    def expire_leases(self, now: datetime, owner_alive: Callable[[str], bool]) -> list[DeliveryRow]:
        """Settle in-flight rows whose lease ran out or whose owner is gone (event
        ``lease-expired``): an interrupted send becomes ``unknown``, never
        ``pending``; an interrupted lookup or take-down is simply queued again."""

    @abc.abstractmethod
    def extend_leases(self, owner: str, now: datetime, lease_until: datetime) -> int:
        """Renew the lease of every claim ``owner`` holds (every in-flight row whose
        token is ``owner#…``) to ``lease_until``: the heartbeat of a running worker, so
        a long delivery keeps its claim. A lease already run out by ``now`` is not
        renewed: the claim may be settled by anyone. Returns how many were renewed."""

    def wait_for_work(self, timeout: float, sleep: Callable[[float], None]) -> bool:
        """Wait up to ``timeout`` seconds, by calling ``sleep``, for another process to
        record work; True if it may have. A backend that can be told (PostgreSQL:
        LISTEN/NOTIFY) returns as soon as it is; this default sleeps the whole time
        and returns False, and the caller then simply looks."""
        sleep(timeout)
        return False

    @abc.abstractmethod
    def requeue(
        self, item_id: str, channel: str, states: Sequence[str], now: datetime, note: str
    ) -> bool:
        """Queue a ``failed`` or ``unknown`` delivery again (event ``requeued``), if it
        is still in one of ``states``."""

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
        """Record confirmations of one delivery as one transaction: ``event``
        (``confirmed`` or ``taken-down``) moves the row to its final state when ``done``
        (every area confirmed) and keeps it where it is otherwise; the row's receipt
        becomes ``receipt``; ``records`` join the confirmation record; ``note`` is
        logged. False, with nothing written, if the row is no longer in ``state`` at
        ``edition`` (a newer edition or a withdrawal came meanwhile)."""
        raise NotImplementedError(f"{type(self).__name__} cannot record confirmations")

    def confirmations(self, item_ids: Sequence[str] | None = None) -> list[ConfirmationRecord]:
        """The confirmation record (of some items, or all), oldest first."""
        raise NotImplementedError(f"{type(self).__name__} keeps no confirmation record")

    def item_summaries(self) -> list[ItemSummary]:
        """Every item the ledger holds, by id, each with its newest edition."""
        raise NotImplementedError(f"{type(self).__name__} cannot list items")

    def attempt_log(self, since: datetime) -> list[AttemptRecord]:
        """The attempt log of every delivery from ``since`` on, oldest first, each
        delivery's history preceded by its last entry before ``since`` (the state it
        was in when the window opened)."""
        raise NotImplementedError(f"{type(self).__name__} cannot read the whole log")

    def all_editions(self) -> dict[str, list[EditionRecord]]:
        """Every recorded edition of every item, by item id, oldest first. Reports over
        the whole ledger read this once instead of :meth:`editions` per item; a backend
        may answer it in one query (this default asks per item)."""
        return {s.item_id: self.editions(s.item_id) for s in self.item_summaries()}

    def first_delivered(self) -> dict[str, datetime]:
        """When each item first had a delivery reach ``delivered``, by item id (from the
        attempt log; entries logged before schema 4 have no state, their outcome says
        it). A backend may answer it in one query (this default reads the whole log)."""
        first: dict[str, datetime] = {}
        for entry in self.attempt_log(datetime.min.replace(tzinfo=UTC)):
            if (entry.state or entry.outcome) == State.DELIVERED:
                known = first.get(entry.item_id)
                if known is None or entry.finished_at < known:
                    first[entry.item_id] = entry.finished_at
        return first

    @abc.abstractmethod
    def request_withdraw(self, item_id: str, reason: str, now: datetime) -> list[DeliveryRow]:
        """Withdraw an item: close its id for good, cancel every delivery that never
        reached a remote, and queue a take-down for every other (rows in flight learn
        it when they finish). Returns the rows as they are afterwards."""

    # --- reading ------------------------------------------------------------------------

    @abc.abstractmethod
    def rows(
        self,
        item_id: str | None = None,
        states: Sequence[str] | None = None,
        item_ids: Sequence[str] | None = None,
    ) -> list[DeliveryRow]:
        """Delivery rows, optionally of one item, of several items, or in some states."""

    def row(self, item_id: str, channel: str) -> DeliveryRow | None:
        """One delivery row, or None."""
        found = [r for r in self.rows(item_id=item_id) if r.channel == channel]
        return found[0] if found else None

    def current(self, item_id: str, channel: str) -> tuple[str, int, str | None] | None:
        """(intent, the item's latest edition, the lease token) of one delivery: what
        a claim made earlier must still match before it is acted on."""
        row = self.row(item_id, channel)
        return (row.intent, row.latest_edition or row.edition, row.lease_owner) if row else None

    @abc.abstractmethod
    def latest_editions(self, item_ids: Sequence[str]) -> dict[str, int]:
        """The newest edition of each item (items the ledger lacks are left out)."""

    @abc.abstractmethod
    def counts(self, states: Iterable[str]) -> dict[str, int]:
        """How many deliveries are in each of ``states`` (for the end-of-run report)."""

    @abc.abstractmethod
    def attempts(self, item_id: str, channel: str | None = None) -> list[AttemptRecord]: ...

    @abc.abstractmethod
    def editions(self, item_id: str) -> list[EditionRecord]:
        """Every recorded edition of ``item_id``, oldest first."""

    @abc.abstractmethod
    def withdrawal(self, item_id: str) -> tuple[datetime, str] | None:
        """(when, reason) if the item was withdrawn."""

    @abc.abstractmethod
    def close(self) -> None: ...
