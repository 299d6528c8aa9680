"""The one path every remote action takes: deliver, update, withdraw, reconcile, poll.

claim under a lease (unless the run claimed a batch already) → load the edition →
call the channel with in-run retries and observers → classify whatever came back,
exception or odd answer → finish through the state machine. Nothing a channel does
can leave a row in flight once this path returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .channel import (
    RESEND_SAFE,
    Channel,
    DeliveryProgress,
    PreparedItem,
    Receipt,
    bind_progress,
    unbind_progress,
)
from .config import ChannelSettings
from .errors import LedgerWriteError, OutcomeUnknown, PermanentError, TransientError
from .intake import Intake
from .lease import lease_until
from .ledger import Action, DeliveryRow, Event, Ledger, State, Step
from .log import get_logger, scrub
from .observe import Watchers
from .results import DeliveryOutcome
from .retry import Decision, call_with_retry, decide
from .scheduler import Attempted, Task

if TYPE_CHECKING:
    import pluggy

log = get_logger(__name__)
#: Successes on resend-safe channels are committed in batches of this size.
FINISH_BATCH = 64


@dataclass
class ActiveChannel:
    instance: Channel
    settings: ChannelSettings


class ActionPath:
    """Runs actions on delivery rows for one run, from any number of worker threads."""

    def __init__(
        self,
        *,
        channels: Mapping[str, ActiveChannel],
        ledger: Ledger,
        intake: Intake,
        pm: pluggy.PluginManager,
        owner: str,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
        lease_seconds: float,
    ) -> None:
        self.channels = channels
        self.ledger = ledger
        self.intake = intake
        self.watch = Watchers(pm)
        self.owner = owner
        self.clock = clock
        self.sleep = sleep
        self.lease_seconds = lease_seconds
        self._finishes: list[tuple] = []
        self._requeued: list[tuple[str, str]] = []
        #: The claim each running action holds, for abandon() to finish exactly it.
        self._holding: dict[tuple[str, str], DeliveryRow] = {}
        self._finishes_lock = threading.Lock()
        self._checks: dict[str, str | None] = {}
        self._check_locks = {name: threading.Lock() for name in channels}

    def lease(self, now: datetime) -> datetime:
        return lease_until(now, self.lease_seconds)

    # --- claiming ---------------------------------------------------------------------------

    def batch_claims(self, rows: list[DeliveryRow]) -> dict[tuple[str, str], DeliveryRow | None]:
        """Claim, in one transaction, the deliveries of channels whose guarantee makes
        a resend harmless: a crash leaves them unknown and they are simply sent again.
        Returns a claim (or None: another worker has it) for each row it took on."""
        safe = [
            r
            for r in rows
            if r.action == Action.DELIVER
            and self.channels[r.channel].instance.guarantee in RESEND_SAFE
        ]
        if not safe:
            return {}
        now = self.clock()
        got = {
            (r.item_id, r.channel): r
            for r in self.ledger.claim_many(safe, self.owner, now, self.lease(now))
        }
        return {(r.item_id, r.channel): got.get((r.item_id, r.channel)) for r in safe}

    def claim_recorded(self, item_ids: list[str]) -> list[DeliveryRow]:
        """Claim at once the queued deliveries of items just recorded, on channels
        whose guarantee makes a resend harmless (as :meth:`batch_claims`), without
        listing them first."""
        safe = [n for n, a in self.channels.items() if a.instance.guarantee in RESEND_SAFE]
        if not safe or not item_ids:
            return []
        now = self.clock()
        return self.ledger.claim_queued(item_ids, safe, self.owner, now, self.lease(now))

    def _still_wanted(self, claimed: DeliveryRow) -> bool:
        # A batch claim may be minutes old: withdrawal or a newer edition may have come
        # since, or the claim itself was given back (its task was abandoned as hung).
        # Given back, the state machine routes the row where it now belongs.
        return self.ledger.current(claimed.item_id, claimed.channel) == (
            claimed.intent,
            claimed.edition,
            claimed.lease_owner,
        )

    # --- the path ---------------------------------------------------------------------------

    def run(
        self,
        row: DeliveryRow,
        claimed: DeliveryRow | None,
        pause: Callable[[str], None],
    ) -> Attempted:
        """Take one row along the path. ``claimed`` is the row's batch claim, if any."""
        active = self.channels[row.channel]
        problem = self._check(active.instance)
        if problem is not None:
            pause(row.channel)
            if claimed is not None:
                self.ledger.release([claimed], self.clock())
            return Attempted(
                DeliveryOutcome(row.item_id, row.channel, "paused", row.edition, problem)
            )
        if claimed is None:
            now = self.clock()
            claimed = self.ledger.claim(row, self.owner, now, self.lease(now))
            if claimed is None:
                return Attempted(
                    DeliveryOutcome(
                        row.item_id,
                        row.channel,
                        "in-flight",
                        row.edition,
                        "another process took it",
                    )
                )
        elif not self._still_wanted(claimed):
            self.ledger.release([claimed], self.clock())
            return Attempted(None, follow_up=True)
        key = (claimed.item_id, claimed.channel)
        with self._finishes_lock:
            self._holding[key] = claimed
        try:
            return self._attempt(claimed, active, pause)
        except LedgerWriteError:
            # The ledger cannot record: writing FAILED would fail too, or worse, record
            # a failure over a send that happened. The claim stays in flight, its lease
            # lapses to unknown, and the next run settles it; the scheduler halts.
            raise
        except Exception as exc:  # noqa: BLE001 - gongkai itself failed
            return self._internal_error(claimed, exc)
        finally:
            with self._finishes_lock:
                if self._holding.get(key) is claimed:
                    del self._holding[key]

    def _attempt(
        self, claimed: DeliveryRow, active: ActiveChannel, pause: Callable[[str], None]
    ) -> Attempted:
        channel = active.instance
        action = claimed.action
        edition = claimed.edition
        if action == Action.WITHDRAW and claimed.delivered_edition is not None:
            edition = claimed.delivered_edition  # take down what the remote holds
        bound = log.bind(
            item_id=claimed.item_id,
            channel=channel.name,
            edition=edition,
            action=action,
            attempt=claimed.attempts + 1,
        )
        progress = DeliveryProgress(
            saved=dict(claimed.checkpoint),
            save=(
                lambda data: self.ledger.save_checkpoint(
                    claimed.item_id, channel.name, claimed.lease_owner, data
                )
            )
            if action == Action.DELIVER
            else None,
        )
        token = bind_progress(progress)
        started = self.clock()
        sent = False
        item: PreparedItem | None = None
        previous = _previous(claimed) if action == Action.DELIVER else None
        answer: Any
        try:
            item = self.intake.item(claimed.item_id, edition)
            call = channel_call(self.ledger, action, channel, claimed, item, previous)
            sent = True
            answer = call_with_retry(
                call,
                active.settings.retry,
                sleep=self.sleep,
                refresh_auth=channel.refresh_auth,
                on_retry=lambda exc, n, wait: self.watch.retrying(
                    item, channel, bound, exc, n, wait
                ),
                retry_unknown=action == Action.WITHDRAW
                or (action == Action.DELIVER and channel.guarantee in RESEND_SAFE),
            )
        except Exception as exc:  # noqa: BLE001 - every failure must reach the ledger
            answer = exc
        finally:
            unbind_progress(token)
        decision = decide(
            answer,
            action=action,
            guarantee=channel.guarantee,
            attempts=claimed.attempts + 1,
            policy=active.settings.retry,
            now=self.clock(),
            sent=sent,
            updating=previous is not None,
        )
        if decision.pause:
            pause(channel.name)
        follow_up = self._finish(claimed, action, decision, answer, started, channel)
        self.watch.report(bound, item, channel, decision, answer)
        receipt = decision.receipt
        return Attempted(
            DeliveryOutcome(
                claimed.item_id,
                channel.name,
                decision.status,
                edition,
                scrub(decision.error or ""),
                scrub(receipt.url) if receipt and receipt.url else None,
                scrub(receipt.artifact) if receipt and receipt.artifact else None,
            ),
            follow_up,
        )

    def _finish(
        self,
        claimed: DeliveryRow,
        action: str,
        decision: Decision,
        answer: Any,
        started: datetime,
        channel: Channel,
    ) -> bool:
        step = Step(
            decision.event,
            action=action,
            receipt=decision.receipt.model_dump() if decision.receipt else None,
            error=scrub(decision.error) if decision.error else None,
            http_status=getattr(answer, "http_status", None),
            next_attempt_at=decision.next_attempt_at,
            started_at=started,
            uncertain=decision.uncertain,
        )
        entry = (
            claimed.item_id,
            channel.name,
            claimed.lease_owner,
            claimed.edition,
            step,
            self.clock(),
        )
        if (
            action == Action.DELIVER
            and decision.event is Event.SUCCEEDED
            and channel.guarantee in RESEND_SAFE
        ):
            # If the process dies before this is committed, the row turns unknown and
            # is resent, which this channel's guarantee makes harmless; so successes
            # are committed in batches instead of one transaction each.
            with self._finishes_lock:
                self._finishes.append(entry)
                full = len(self._finishes) >= FINISH_BATCH
            if full:
                self.flush()
            return False
        return self.ledger.finish_many([entry])[0] == State.PENDING

    def flush(self) -> None:
        """Commit batched successes. Pairs a follow-on move queued again (a newer
        edition arrived while they were being sent) wait in :meth:`take_requeued`."""
        with self._finishes_lock:
            batch, self._finishes = self._finishes, []
        if not batch:
            return
        states = self.ledger.finish_many(batch)
        again = [(e[0], e[1]) for e, s in zip(batch, states, strict=True) if s == State.PENDING]
        with self._finishes_lock:
            self._requeued.extend(again)

    def take_requeued(self) -> list[tuple[str, str]]:
        with self._finishes_lock:
            taken, self._requeued = self._requeued, []
        return taken

    def abandon(self, task: Task, timeout: float) -> DeliveryOutcome:
        """A call hung past its channel's delivery_timeout: stop waiting for it. What
        that means depends on the action, exactly as if the call had timed out."""
        row = task.row
        active = self.channels[row.channel]
        exc = OutcomeUnknown(f"no answer within delivery_timeout ({timeout:g} s)")
        with self._finishes_lock:
            claimed = self._holding.pop((row.item_id, row.channel), None)
        if claimed is None:
            # It hung before its action began (in the channel's check()): nothing was
            # sent, so a claim made for it in a batch is simply given back.
            if task.claimed is not None:
                self.ledger.release([task.claimed], self.clock())
            return DeliveryOutcome(row.item_id, row.channel, "pending", row.edition, str(exc))
        decision = decide(
            exc,
            action=claimed.action,
            guarantee=active.instance.guarantee,
            attempts=claimed.attempts + 1,
            policy=active.settings.retry,
            now=self.clock(),
        )
        self._finish(claimed, claimed.action, decision, exc, self.clock(), active.instance)
        return DeliveryOutcome(
            row.item_id, row.channel, decision.status, claimed.edition, decision.error or ""
        )

    # --- around the call --------------------------------------------------------------------

    def _check(self, channel: Channel) -> str | None:
        """Run the channel's ``check()`` once per run, before its first action."""
        with self._check_locks[channel.name]:
            if channel.name not in self._checks:
                problem = None
                try:
                    channel.check()
                except (TransientError, OutcomeUnknown) as exc:
                    # A busy or silent remote says nothing about config or credentials,
                    # and each action classifies its own failure: no pause for a blip.
                    log.warning(
                        "channel check inconclusive", channel=channel.name, error=scrub(str(exc))
                    )
                except Exception as exc:  # noqa: BLE001 - any failure pauses the channel
                    why = scrub(str(exc)) or type(exc).__name__
                    problem = f"check failed, channel paused for this run: {why}"
                    log.error("channel check failed", channel=channel.name, error=problem)
                self._checks[channel.name] = problem
            return self._checks[channel.name]

    def _internal_error(self, claimed: DeliveryRow, exc: Exception) -> Attempted:
        """gongkai itself failed after the claim: finish the row as failed rather than
        leave it in flight to wedge later runs, if the ledger still answers."""
        message = f"internal error: {type(exc).__name__}: {scrub(str(exc))}; report it"
        log.error("action crashed", item_id=claimed.item_id, channel=claimed.channel, error=message)
        step = Step(Event.FAILED, action=claimed.action, error=message)
        try:
            self.ledger.finish(
                claimed.item_id,
                claimed.channel,
                claimed.lease_owner,
                claimed.edition,
                step,
                self.clock(),
            )
        except Exception as again:  # noqa: BLE001 - the lease will expire to unknown
            log.error("ledger failed", item_id=claimed.item_id, error=scrub(str(again)))
        return Attempted(
            DeliveryOutcome(claimed.item_id, claimed.channel, "failed", claimed.edition, message)
        )


def _previous(claimed: DeliveryRow) -> Receipt | None:
    """The receipt of the edition the remote holds, so an update can replace it."""
    if claimed.receipt and claimed.delivered_edition is not None:
        return Receipt.model_validate(claimed.receipt)
    return None


def channel_call(
    ledger: Ledger,
    action: str,
    channel: Channel,
    claimed: DeliveryRow,
    item: PreparedItem,
    previous: Receipt | None,
) -> Callable[[], Any]:
    """The channel call for an action. Anything raised here happened before a
    request could leave (rendering, a missing capability)."""
    if action == Action.DELIVER:
        rendition = channel.render(item)
        return lambda: channel.deliver(item, rendition, previous)
    if action == Action.WITHDRAW:
        if not channel.supports("withdraw"):
            raise PermanentError(
                f"channel '{channel.name}' cannot withdraw; take the item down by hand"
            )
        withdrawn = ledger.withdrawal(claimed.item_id)
        reason = withdrawn[1] if withdrawn else ""
        receipt = Receipt.model_validate(claimed.receipt or {})
        return lambda: channel.withdraw(item, receipt, reason)
    if action == Action.RECONCILE:
        sent = [
            a
            for a in ledger.attempts(claimed.item_id, channel.name)
            if a.edition == claimed.edition and a.action == Action.DELIVER
        ]
        if not sent:
            raise OutcomeUnknown("no delivery attempt of this edition is logged")
        return lambda: channel.reconcile(item, sent[-1])
    receipt = Receipt.model_validate(claimed.receipt or {})
    return lambda: channel.poll(receipt)
