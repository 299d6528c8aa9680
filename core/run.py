"""One run: settle what earlier runs left, take in new items, act on what is due.

Order matters. Dead processes' leases are settled first (an interrupted send becomes
``unknown``). Intake then records every edition before any old work is claimed, so a
queued older edition is superseded by the state machine before anyone can send it;
the deliveries of each chunk of new items start as soon as the chunk is recorded.
Work left by earlier runs (retries, schedules, lookups, polls, take-downs) is queued
after intake. Everything runs on the scheduler's pool, along the one action path.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from .attempt import ActionPath, ActiveChannel
from .config import Settings
from .errors import LedgerWriteError
from .intake import Intake
from .item import CST
from .lease import new_owner
from .ledger import Action, DeliveryRow, Ledger, State
from .loader import LoadedItem
from .results import DeliveryOutcome, RunResult, shown_state
from .scheduler import Attempted, Scheduler, Task
from .settle import backlog, capabilities, expire, requeue_resendable

if TYPE_CHECKING:
    import pluggy

#: How often one delivery may be queued again within a run (newer edition, absent on
#: reconcile, a given-back claim) before the rest is left to the next run.
FOLLOW_UPS = 3
#: Outcomes that say the channel holds the row's edition.
_SUCCESS = frozenset({"delivered", "updated", "unchanged"})


class Run:
    """The steps of one ``publish`` or ``withdraw``. Built by :class:`gongkai.Publisher`."""

    def __init__(
        self,
        *,
        settings: Settings,
        pm: pluggy.PluginManager,
        channels: Mapping[str, ActiveChannel],
        ledger: Ledger,
        intake: Intake,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.ledger = ledger
        self.clock = clock
        self.monotonic = monotonic
        #: Set when the ledger could not be written and the run stopped early.
        self.halted: LedgerWriteError | None = None
        self.owner = new_owner()
        self.intake = intake
        self.path = ActionPath(
            channels=channels,
            ledger=ledger,
            intake=self.intake,
            pm=pm,
            owner=self.owner,
            clock=clock,
            sleep=sleep,
            lease_seconds=settings.lease_seconds,
        )
        self.can = capabilities(channels)
        #: Called with (done, total) as actions finish; the CLI draws its bar with it.
        self.progress: Callable[[int, int], None] = lambda done, total: None
        # stop() may come from another thread at any point of the run.
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._scheduler: Scheduler | None = None
        self._drained: list[Task] = []
        #: At most this many rows of the ledger's backlog per run (None: all). A worker
        #: sets it, so that one pass does not claim a whole backlog that other workers
        #: could share; it picks a random part of what is due, so workers listing the
        #: same backlog at once seldom reach for the same rows.
        self.window: int | None = None

    # --- the verbs --------------------------------------------------------------------------

    def publish(self, loaded: Iterable[LoadedItem], result: RunResult) -> RunResult:
        expire(self.ledger, self.clock)
        requeue_resendable(self.ledger, self.channels, self.clock)
        # A streamed batch knows its ids up front (it looked before reading).
        ids = getattr(loaded, "ids", None)
        if ids is None and isinstance(loaded, Sequence):
            ids = frozenset(entry.item.id for entry in loaded)
        self.intake.batch_ids = frozenset(ids or ())
        planned: dict[tuple[str, str], str] = {}

        def body(scheduler: Scheduler) -> None:
            try:
                self.intake.ingest(
                    loaded,
                    result,
                    on_chunk=lambda ids: self._queue(scheduler, ids, recorded=True),
                    plans=planned,
                )
                self._queue(scheduler, None)
            except LedgerWriteError as exc:
                # Each ledger transaction rolled back whole: stop taking work, report
                # what this run did, and let the next run pick up the rest.
                scheduler.halt(exc)

        self._report(result, self._schedule(body), planned)
        return result

    def withdraw(self, item_id: str, reason: str, result: RunResult) -> RunResult:
        """Withdrawal wins: close the id, cancel what never went out, and take the item
        down now wherever a channel may hold it, along the same path as a delivery."""
        expire(self.ledger, self.clock)
        rows = self.ledger.request_withdraw(item_id, reason, self.clock())
        outcomes = self._schedule(lambda scheduler: self._queue(scheduler, [item_id]))
        self._report(result, outcomes, {(r.item_id, r.channel): "withdraw" for r in rows})
        return result

    def stop(self) -> None:
        """Stop taking work (``gongkai worker`` told to stop): actions under way finish,
        unstarted ones are given back now (their claims released) and reported
        ``paused``; whatever the run would still queue is given back at its end."""
        with self._stop_lock:
            self._stopped = True
            scheduler = self._scheduler
            if scheduler is None:
                return
            left = scheduler.drain()
            self._drained.extend(left)
        unused = [t.claimed for t in left if t.claimed is not None]
        if unused:
            self.ledger.release(unused, self.clock())

    # --- scheduling ---------------------------------------------------------------------------

    def _schedule(
        self, body: Callable[[Scheduler], None]
    ) -> dict[tuple[str, str], DeliveryOutcome]:
        total = self.settings.concurrency
        several = len(self.channels) > 1
        follow_ups: Counter[tuple[str, str]] = Counter()

        def requeue(item_id: str, channel: str) -> None:
            follow_ups[(item_id, channel)] += 1
            if follow_ups[(item_id, channel)] <= FOLLOW_UPS:
                self._queue(scheduler, [item_id], channel=channel, again=True)

        def work(task: Task, pause: Callable[[str], None]) -> Attempted:
            attempted = self.path.run(task.row, task.claimed, pause)
            for item_id, channel in self.path.take_requeued():
                requeue(item_id, channel)
            return attempted

        scheduler = Scheduler(
            concurrency=total,
            # With several channels, none may take every worker: one that hangs must
            # leave room for the others.
            caps={
                name: a.settings.concurrency or (max(1, total - 1) if several else total)
                for name, a in self.channels.items()
            },
            timeouts={name: a.settings.delivery_timeout for name, a in self.channels.items()},
            work=work,
            abandon=self.path.abandon,
            follow_up=lambda row: requeue(row.item_id, row.channel),
            monotonic=self.monotonic,
            progress=self.progress,
        )
        scheduler.start()
        with self._stop_lock:
            self._scheduler = scheduler
            stopped = self._stopped
        if stopped:
            self.stop()
        try:
            body(scheduler)
        finally:
            outcomes, leftover = scheduler.finish()
            with self._stop_lock:
                self._scheduler = None
                drained, self._drained = self._drained, []
            try:
                self.path.flush()
                unused = [t.claimed for t in leftover if t.claimed is not None]
                if unused:
                    self.ledger.release(unused, self.clock())
            except LedgerWriteError as exc:
                # Unreleased claims lapse with their lease; the next run settles them.
                scheduler.halt(exc)
        self.halted = scheduler.halted
        reason = (
            "not started: the ledger cannot be written; a later run sends it"
            if scheduler.halted
            else "channel paused for this run; a later run sends it"
        )
        if self._stopped and not scheduler.halted:
            reason = "not started: the worker was told to stop; a later run sends it"
        for task in [*drained, *leftover]:
            row = task.row
            outcomes[(row.item_id, row.channel)] = DeliveryOutcome(
                row.item_id, row.channel, "paused", row.edition, reason
            )
        return outcomes

    def _queue(
        self,
        scheduler: Scheduler,
        item_ids: list[str] | None,
        *,
        channel: str | None = None,
        again: bool = False,
        recorded: bool = False,
    ) -> None:
        if self._stopped:
            return  # claim nothing more: a stopping worker would only give it back
        if recorded and item_ids:
            # Items this run just recorded: claim their resend-safe deliveries in one
            # statement; the rest (other channels, schedules) are listed below.
            claimed = self.path.claim_recorded(item_ids)
            fresh = {(r.item_id, r.channel) for r in scheduler.unseen(claimed)}
            stale = [r for r in claimed if (r.item_id, r.channel) not in fresh]
            if stale:  # queued already in this run (cannot happen today): give back
                self.ledger.release(stale, self.clock())
            scheduler.add(Task(r, r) for r in claimed if (r.item_id, r.channel) in fresh)
        rows = self.ledger.due(self.clock(), self.can, item_ids)
        if item_ids is None and self.window is not None and len(rows) > self.window:
            picked = sorted(random.sample(range(len(rows)), self.window))
            rows = [rows[i] for i in picked]  # in the ledger's order: oldest due first
        if channel is not None:
            rows = [r for r in rows if r.channel == channel]
        if not again:
            rows = scheduler.unseen(rows)
        claims = self.path.batch_claims(rows)
        tasks = []
        for row in rows:
            key = (row.item_id, row.channel)
            if key in claims and claims[key] is None:
                continue  # another process took it
            tasks.append(Task(row, claims.get(key)))
        scheduler.add(tasks, again=again)

    # --- reporting ----------------------------------------------------------------------------

    def _report(
        self,
        result: RunResult,
        acted: dict[tuple[str, str], DeliveryOutcome],
        plans: dict[tuple[str, str], str],
    ) -> None:
        """Add this run's outcomes (the last of each pair it acted on), an outcome for
        every planned pair it did not act on, and the ledger-wide backlog. Invariant 5
        is checked here: no pair is reported done while its row holds a newer edition
        that has not gone out."""
        done = [p for p, o in acted.items() if o.status in _SUCCESS]
        latest = self.ledger.latest_editions(sorted({item_id for item_id, _ in done}))
        # A row is read back only where the report could be wrong: pairs this run did
        # not act on, and successes with a newer edition in the ledger.
        suspect = {p for p in done if latest.get(p[0], 0) > (acted[p].edition or 0)}
        del done
        if self.halted is not None:
            # An outcome may not have been committed before the ledger failed, or the
            # action may have stopped after its send: report what the ledger holds,
            # not what the channel answered.
            suspect = set(acted)
        wanted = {p for p in plans if p not in acted} | suspect
        ids = sorted({item_id for item_id, _ in wanted})
        rows = {(r.item_id, r.channel): r for r in self.ledger.rows(item_ids=ids)} if ids else {}
        now = self.clock()
        for pair, outcome in acted.items():
            if pair in suspect and pair in rows:
                outcome = _from_row(rows[pair], plans.get(pair, ""), now)
            result.outcomes.append(outcome)
        for pair, plan in plans.items():
            if pair not in acted and pair in rows:
                result.outcomes.append(_from_row(rows[pair], plan, now))
        result.backlog = backlog(self.ledger)
        unrouted = [o for o in result.outcomes if o.status == "not-enabled"]
        if unrouted:
            names = ", ".join(sorted({o.channel for o in unrouted}))
            result.notes.append(
                f"the catalogue also routes {len(unrouted)} delivery(ies) to channels this "
                f"config does not enable ({names})"
            )
        if self.halted is not None:
            result.halted = str(self.halted)


def _from_row(row: DeliveryRow, plan: str, now: datetime) -> DeliveryOutcome:
    """An outcome for a pair this run did not finish, from what the ledger says."""
    receipt = row.receipt or {}
    latest = row.latest_edition or row.edition
    status = {"delivered": "unchanged"}.get(row.state, row.state)
    detail = row.last_error or ""
    if shown_state(row.state, row.next_attempt_at, now) == "scheduled":
        when = row.next_attempt_at.astimezone(CST).isoformat(timespec="minutes")
        status, detail = "scheduled", f"publish_at {when}"
    elif row.state == State.RETRY_WAIT and row.next_attempt_at:
        detail = f"next try at {row.next_attempt_at.isoformat()}; {detail}"
    elif row.state == State.IN_FLIGHT and latest > row.edition:
        status = "pending"
        detail = (
            f"edition {row.edition} is being sent by another run; edition {latest} "
            "follows when it ends"
        )
    elif row.state == State.UNKNOWN and latest > row.edition:
        detail = (
            f"edition {row.edition} has an unknown outcome; settle it (gongkai status) "
            f"before edition {latest} can go out"
        )
    elif row.state == State.PENDING and row.action == Action.WITHDRAW:
        detail = "take-down queued; the channel is not enabled here or did not run"
    elif row.state == State.WITHDRAWN and plan == "withdraw" and row.delivered_edition is None:
        detail = "cancelled before delivery"
    return DeliveryOutcome(
        row.item_id,
        row.channel,
        status,
        row.edition,
        detail,
        receipt.get("url"),
        receipt.get("artifact"),
    )
