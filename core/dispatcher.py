"""One run: settle what earlier runs left, take in new items, deliver what is due.

Order matters. Crashed deliveries are found first (lease expiry → ``unknown``), then
reconciled, then remote jobs polled, so that a new edition never races an old one
whose fate is still open. New items are prepared, validated, hashed and planned in
one ledger transaction per batch. Deliveries then run on a bounded pool of daemon
threads with a per-channel cap, so a hanging channel cannot starve the others.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from .catalogue import Catalogue
from .channel import (
    RESEND_SAFE,
    Channel,
    DeliveryProgress,
    PreparedItem,
    Receipt,
    bind_progress,
    unbind_progress,
)
from .config import ChannelSettings, Settings
from .errors import (
    DeliveryError,
    ItemProblem,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
)
from .item import CST, Item, content_hash
from .ledger import DeliveryRow, Finish, IngestRecord, Ledger
from .loader import LoadedItem, problems_from_validation
from .log import get_logger, scrub
from .results import DeliveryOutcome, RunResult
from .retry import ChannelPaused, call_with_retry, next_attempt
from .workdays import WorkCalendar

log = get_logger(__name__)
INGEST_BATCH = 500
#: Successes on resend-safe channels are committed in batches of this size.
FINISH_BATCH = 64
RATE_LIMIT_DEFAULT_DELAY = 3600.0


@dataclass
class ActiveChannel:
    instance: Channel
    settings: ChannelSettings


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """False only when the owner surely died: same host, and its process is gone."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Dispatcher:
    """Runs the steps of one ``publish``. Built by :class:`gongkai.Publisher`."""

    def __init__(
        self,
        *,
        settings: Settings,
        pm,
        channels: dict[str, ActiveChannel],
        ledger: Ledger,
        catalogue: Catalogue,
        calendar: WorkCalendar,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.pm = pm
        self.channels = channels
        self.ledger = ledger
        self.catalogue = catalogue
        self.calendar = calendar
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic
        self.owner = new_owner()
        #: Called with (done, total) as deliveries finish; the CLI draws its bar with it.
        self.progress: Callable[[int, int], None] = lambda done, total: None
        self._items: dict[tuple[str, int], PreparedItem] = {}
        self._fresh: dict[tuple[str, int], tuple[Item, str]] = {}
        self._finishes: list[tuple] = []
        self._finishes_lock = threading.Lock()
        self._items_lock = threading.Lock()

    # --- preparing items ------------------------------------------------------------------

    def index_numbers(self, items: Iterable[Item], *, allocate: bool = True) -> dict[str, str]:
        """Index numbers for items that do not carry one, in one ledger call."""
        wanted = [
            (i.id, f"{self.settings.org_code_for(i.publisher)}/{i.formed_on.year:04d}")
            for i in items
            if i.index_number is None
        ]
        return self.ledger.index_numbers(wanted, allocate=allocate) if wanted else {}

    def prepare(
        self, item: Item, source: str, numbers: dict[str, str] | None = None
    ) -> tuple[Item | None, list[ItemProblem]]:
        """Fill in defaults, run the prepare hooks, then validate. ``numbers`` holds
        index numbers from :meth:`index_numbers` (absent: the item gets none yet)."""
        entry = self.catalogue.get(item.catalog)
        updates: dict = {}
        if item.openness is None and entry is not None:
            updates["openness"] = entry.openness
        if item.index_number is None and numbers and item.id in numbers:
            updates["index_number"] = numbers[item.id]
        if updates:
            item = item.model_copy(update=updates)
        for impl in reversed(self.pm.hook.gongkai_prepare_item.get_hookimpls()):
            try:
                changed = impl.function(item=item, settings=self.settings)
            except Exception as exc:  # noqa: BLE001 - a plugin bug must not eat the batch
                return None, [
                    ItemProblem(
                        source,
                        "",
                        f"plugin '{impl.plugin_name}' failed to prepare it ({exc})",
                        "report it to the plugin's author, or disable the plugin",
                        item.id,
                    )
                ]
            if changed is not None:
                try:
                    # Re-validate: a plugin's copy must still be a valid item.
                    item = Item.model_validate(changed.model_dump())
                except ValidationError as exc:
                    return None, problems_from_validation(source, exc, item.id)
        problems = self.catalogue.problems(item, source)
        for found in self.pm.hook.gongkai_validate_item(item=item, entry=entry, source=source):
            problems.extend(found or [])
        return (None if problems else item), problems

    def ingest(
        self,
        loaded: Sequence[LoadedItem],
        result: RunResult,
        on_chunk: Callable[[], None] = lambda: None,
    ) -> list[tuple[str, str]]:
        """Record editions and plan deliveries, a chunk per ledger transaction, calling
        ``on_chunk`` after each so delivery can start before the whole batch is in.
        Returns the (item, channel) pairs planned."""
        planned: list[tuple[str, str]] = []
        for start in range(0, len(loaded), INGEST_BATCH):
            planned += self._ingest_chunk(loaded[start : start + INGEST_BATCH], result)
            on_chunk()
        return planned

    def _ingest_chunk(self, loaded: Sequence[LoadedItem], result: RunResult):
        now = self.clock()
        records: list[tuple[IngestRecord, str, Item]] = []
        not_enabled: list[DeliveryOutcome] = []
        numbers = self.index_numbers(entry.item for entry in loaded)
        for entry in loaded:
            item, problems = self.prepare(entry.item, entry.source, numbers)
            result.problems.extend(problems)
            if item is None:
                continue
            digest = content_hash(item)
            catalogue_entry = self.catalogue.get(item.catalog)
            routed = list(self.catalogue.route(item, catalogue_entry))
            routed += [
                n for n, c in self.channels.items() if c.settings.every_item and n not in routed
            ]
            enabled = tuple(n for n in routed if n in self.channels)
            for name in routed:
                if name not in self.channels:
                    not_enabled.append(
                        DeliveryOutcome(
                            item.id,
                            name,
                            "not-enabled",
                            detail=f"catalogue entry '{item.catalog}' routes it to '{name}', "
                            f"which config.toml does not enable",
                        )
                    )
            not_before = item.publish_at if item.publish_at and item.publish_at > now else None
            due_on = self.catalogue.deadline(item, self.calendar)
            payload = item.model_dump(mode="json")
            record = IngestRecord(
                item_id=item.id,
                content_hash=digest,
                payload=payload,
                catalog=item.catalog,
                title=item.title,
                channels=enabled,
                not_before=not_before,
                due_on=due_on,
            )
            records.append((record, entry.source, item))

        planned: list[tuple[str, str]] = []
        if records:
            answers = self.ledger.ingest([r for r, _, _ in records], now)
            for (record, source, item), answer in zip(records, answers, strict=True):
                if answer.status == "stale":
                    result.problems.append(
                        ItemProblem(
                            source,
                            "",
                            f"its content is edition {answer.edition}, but edition "
                            f"{answer.latest_edition} is newer",
                            "an older edition never replaces a newer one; edit the file to "
                            "the current text, or make the change you meant",
                            record.item_id,
                        )
                    )
                    continue
                if answer.status == "withdrawn":
                    result.problems.append(
                        ItemProblem(
                            source,
                            "id",
                            "this item was withdrawn",
                            "publish it under a new id if it must go out again",
                            record.item_id,
                        )
                    )
                    continue
                result.editions[record.item_id] = answer.edition
                with self._items_lock:
                    # Built into a PreparedItem only if a delivery needs it (see item()).
                    self._fresh[(record.item_id, answer.edition)] = (item, record.content_hash)
                if answer.status in ("new", "changed"):
                    log.info(
                        "edition recorded",
                        item_id=record.item_id,
                        edition=answer.edition,
                        content_hash=record.content_hash[:12],
                    )
                    if record.due_on and now.date() > record.due_on:
                        log.warning(
                            "published after its statutory deadline",
                            item_id=record.item_id,
                            due_on=record.due_on.isoformat(),
                        )
                planned.extend((record.item_id, channel) for channel in answer.plans)
        result.outcomes.extend(o for o in not_enabled if o.item_id in result.editions)
        return planned

    # --- loading editions ---------------------------------------------------------------

    def item(self, item_id: str, edition: int) -> PreparedItem:
        key = (item_id, edition)
        with self._items_lock:
            cached = self._items.get(key)
        if cached is not None:
            return cached
        with self._items_lock:
            fresh = self._fresh.get(key)
        if fresh is not None:
            ready, digest = fresh
            prepared = PreparedItem(**ready.model_dump(), edition=edition, content_hash=digest)
        else:
            payload, number, digest = self.ledger.edition(item_id, edition)
            prepared = PreparedItem(**payload, edition=number, content_hash=digest)
        with self._items_lock:
            self._items[key] = prepared
        return prepared

    # --- settling what earlier runs left ----------------------------------------------

    def expire(self) -> None:
        for row in self.ledger.expire_leases(self.clock(), owner_alive):
            log.warning(
                "delivery interrupted; outcome unknown",
                item_id=row.item_id,
                channel=row.channel,
                edition=row.edition,
            )

    def reconcile(self, result: RunResult) -> None:
        for row in self.ledger.rows(states=("unknown",)):
            active = self.channels.get(row.channel)
            if active is None:
                continue
            channel = active.instance
            now = self.clock()
            if channel.supports("reconcile"):
                item = self.item(row.item_id, row.edition)
                token = bind_progress(DeliveryProgress(saved=dict(row.checkpoint)))
                try:
                    attempts = self.ledger.attempts(row.item_id, row.channel)
                    found = channel.reconcile(item, attempts[-1] if attempts else {})
                except (NotImplementedError, DeliveryError, OSError) as exc:
                    log.warning(
                        "reconcile failed",
                        item_id=row.item_id,
                        channel=row.channel,
                        error=scrub(str(exc)),
                    )
                    continue
                finally:
                    unbind_progress(token)
                if found is not None:
                    self._settle_delivered(
                        row,
                        "unknown",
                        "reconcile",
                        found,
                        now,
                        result,
                        "reconciled: the remote has it",
                    )
                    continue
                outcome = "not on remote; will send"
            elif channel.guarantee in RESEND_SAFE:
                outcome = f"guarantee '{channel.guarantee}' makes a resend safe"
            else:
                continue  # stays unknown: an operator must look (see `gongkai status`)
            self.ledger.settle(
                row.item_id,
                row.channel,
                ("unknown",),
                Finish(state="pending", action="reconcile", outcome=outcome),
                now,
            )

    def poll(self, result: RunResult) -> None:
        for row in self.ledger.rows(states=("publishing",)):
            active = self.channels.get(row.channel)
            if active is None or not active.instance.supports("poll") or not row.receipt:
                continue
            now = self.clock()
            try:
                receipt = active.instance.poll(Receipt.model_validate(row.receipt))
            except PermanentError as exc:
                self.ledger.settle(
                    row.item_id,
                    row.channel,
                    ("publishing",),
                    Finish(state="failed", action="poll", error=scrub(str(exc))),
                    now,
                )
                result.outcomes.append(
                    DeliveryOutcome(
                        row.item_id, row.channel, "failed", row.edition, scrub(str(exc))
                    )
                )
                continue
            except DeliveryError as exc:
                log.info(
                    "poll deferred", item_id=row.item_id, channel=row.channel, error=scrub(str(exc))
                )
                continue
            if receipt.status == "publishing":
                result.outcomes.append(
                    DeliveryOutcome(row.item_id, row.channel, "publishing", row.edition)
                )
                continue
            self._settle_delivered(
                row, "publishing", "poll", receipt, now, result, "remote job finished"
            )

    def _settle_delivered(
        self, row, was: str, action: str, receipt: Receipt, now, result, detail: str
    ) -> None:
        """Record what reconcile or poll found on the remote, and report it."""
        self.ledger.settle(
            row.item_id,
            row.channel,
            (was,),
            Finish(
                state=receipt.status,
                action=action,
                receipt=receipt.model_dump(),
                outcome=f"{action}: {receipt.status}",
            ),
            now,
        )
        result.outcomes.append(
            DeliveryOutcome(
                row.item_id,
                row.channel,
                "delivered",
                row.edition,
                detail,
                receipt.url,
                receipt.artifact,
            )
        )

    # --- delivering -----------------------------------------------------------------------

    def queue_due(self, scheduler: _Scheduler) -> None:
        scheduler.add(self.ledger.due(self.clock(), self.channels))

    def lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.lease_seconds)

    def attempt(
        self,
        row: DeliveryRow,
        paused: Callable[[str], None],
        claimed: DeliveryRow | None = None,
    ) -> DeliveryOutcome:
        """Claim one delivery (unless the scheduler claimed it already), send it with
        in-run retries, record the result."""
        active = self.channels[row.channel]
        channel, policy = active.instance, active.settings.retry
        if claimed is None:
            now = self.clock()
            claimed = self.ledger.claim(
                row.item_id, row.channel, self.owner, now, self.lease_until(now)
            )
        if claimed is None:
            return DeliveryOutcome(
                row.item_id, row.channel, "in-flight", row.edition, "another process took it"
            )
        item = self.item(claimed.item_id, claimed.edition)
        bound = log.bind(
            item_id=item.id,
            channel=channel.name,
            edition=item.edition,
            attempt=claimed.attempts + 1,
        )
        previous = (
            Receipt.model_validate(claimed.receipt)
            if claimed.receipt and claimed.delivered_edition is not None
            else None
        )
        progress = DeliveryProgress(
            saved=dict(claimed.checkpoint),
            save=lambda data: self.ledger.save_checkpoint(item.id, channel.name, self.owner, data),
        )
        token = bind_progress(progress)
        started = self.clock()
        sent = False
        try:
            rendition = channel.render(item)
            sent = True
            receipt = call_with_retry(
                lambda: channel.deliver(item, rendition, previous),
                policy,
                sleep=self.sleep,
                refresh_auth=channel.refresh_auth,
                on_retry=lambda exc, n, wait: self._retrying(item, channel, bound, exc, n, wait),
            )
        except Exception as exc:  # noqa: BLE001 - every failure must reach the ledger
            return self._failed(claimed, item, channel, exc, sent, started, paused, bound)
        finally:
            unbind_progress(token)
        finished = self.clock()
        done = Finish(
            state=receipt.status,
            receipt=receipt.model_dump(),
            started_at=started,
            action="update" if previous else "create",
        )
        if channel.guarantee in RESEND_SAFE:
            # If the process dies before this is committed, the row turns unknown and
            # is resent, which this channel's guarantee makes harmless; so successes
            # are committed in batches instead of one transaction each.
            self._defer_finish((item.id, channel.name, self.owner, item.edition, done, finished))
        else:
            self.ledger.finish(item.id, channel.name, self.owner, item.edition, done, finished)
        bound.info("delivered", status=receipt.status, url=receipt.url)
        self._observe("gongkai_after_delivery", item=item, channel=channel, receipt=receipt)
        status = receipt.status
        if status == "delivered":
            status = "updated" if previous else "delivered"
        return DeliveryOutcome(
            item.id, channel.name, status, item.edition, "", receipt.url, receipt.artifact
        )

    def _defer_finish(self, entry: tuple) -> None:
        with self._finishes_lock:
            self._finishes.append(entry)
            full = len(self._finishes) >= FINISH_BATCH
        if full:
            self.flush_finishes()

    def flush_finishes(self) -> None:
        with self._finishes_lock:
            batch, self._finishes = self._finishes, []
        if batch:
            self.ledger.finish_many(batch)

    def _retrying(self, item, channel, bound, exc, number: int, wait: float) -> None:
        bound.info(
            "retrying", error=scrub(str(exc)), try_number=number, wait_seconds=round(wait, 3)
        )
        self._observe(
            "gongkai_on_delivery_error", item=item, channel=channel, error=exc, final=False
        )

    def _failed(self, claimed, item, channel, exc, sent, started, paused, bound):
        now = self.clock()
        policy = self.channels[channel.name].settings.retry
        message = scrub(str(exc)) or type(exc).__name__
        http_status = getattr(exc, "http_status", None)
        retry_after = getattr(exc, "retry_after", None)
        attempts = claimed.attempts + 1
        if isinstance(exc, RateLimited):
            paused(channel.name)
            delay = retry_after if retry_after is not None else RATE_LIMIT_DEFAULT_DELAY
            state, when, status = "retry-wait", now + timedelta(seconds=delay), "paused"
            message = f"rate limited; channel paused for this run ({message})"
        elif isinstance(exc, ChannelPaused):
            paused(channel.name)
            state, status = "retry-wait", "paused"
            when = next_attempt(policy, attempts, now) or now + timedelta(hours=1)
            message = f"credentials refused twice; channel paused for this run ({message})"
        elif isinstance(exc, TransientError):
            when = next_attempt(policy, attempts, now, retry_after)
            state = status = "retry-wait" if when else "failed"
            if when is None:
                message += f"; gave up after {attempts} runs, run `gongkai retry` when fixed"
        elif isinstance(exc, PermanentError):
            state = status = "failed"
            when = None
        elif isinstance(exc, OutcomeUnknown) or sent:
            # Unclassified exceptions after render may have happened after the send.
            state = status = "unknown"
            when = None
            if not isinstance(exc, DeliveryError):
                message = f"channel raised {type(exc).__name__}: {message}; report it to its author"
        else:
            state = status = "failed"
            when = None
            message = f"render raised {type(exc).__name__}: {message}"
        if state == "unknown" and channel.guarantee in RESEND_SAFE:
            # A resend cannot duplicate: treat it like any transient failure.
            when = next_attempt(policy, attempts, now)
            state = status = "retry-wait" if when else "failed"
        self.ledger.finish(
            item.id,
            channel.name,
            self.owner,
            item.edition,
            Finish(
                state=state,
                error=message,
                http_status=http_status,
                next_attempt_at=when,
                started_at=started,
                outcome=state,
            ),
            now,
        )
        bound.warning("delivery failed", state=state, error=message, http_status=http_status)
        self._observe(
            "gongkai_on_delivery_error",
            item=item,
            channel=channel,
            error=exc if isinstance(exc, DeliveryError) else DeliveryError(message),
            final=True,
        )
        return DeliveryOutcome(item.id, channel.name, status, item.edition, message)

    def _observe(self, hook: str, **kwargs) -> None:
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:  # noqa: BLE001 - observers never break delivery
                log.warning(
                    "observer failed", plugin=impl.plugin_name, hook=hook, error=scrub(str(exc))
                )

    def abandon(self, row: DeliveryRow) -> None:
        """A delivery hung past its channel's delivery_timeout: give up waiting. Its
        outcome is unknown, since the request may still land."""
        self.ledger.settle(
            row.item_id,
            row.channel,
            ("in-flight",),
            Finish(
                state="unknown",
                action="deliver",
                outcome="unknown",
                error="no answer within delivery_timeout; the channel hung",
            ),
            self.clock(),
        )

    # --- the whole run ----------------------------------------------------------------------

    def run(self, loaded: Sequence[LoadedItem], result: RunResult | None = None) -> RunResult:
        result = result or RunResult()
        self.expire()
        self.reconcile(result)
        self.poll(result)
        self.ledger.requeue_stale(self.clock())
        scheduler = _Scheduler(self)
        scheduler.start()
        try:
            # Work left by earlier runs first, then each chunk of new items as soon as
            # it is recorded: sending overlaps with reading and hashing the rest.
            self.queue_due(scheduler)
            planned = self.ingest(loaded, result, on_chunk=lambda: self.queue_due(scheduler))
        finally:
            result.outcomes.extend(scheduler.finish())
        self._report_planned(planned, result)
        return result

    def _report_planned(self, planned: Iterable[tuple[str, str]], result: RunResult) -> None:
        """Give every planned pair that this run did not attempt an outcome from its row."""
        touched = {(o.item_id, o.channel) for o in result.outcomes}
        missing = [p for p in planned if p not in touched]
        if not missing:
            return
        ids = sorted({item_id for item_id, _ in missing})
        rows = {(r.item_id, r.channel): r for r in self.ledger.rows(item_ids=ids)}
        now = self.clock()
        for pair in missing:
            row = rows.get(pair)
            if row is None:
                continue
            status = {"delivered": "unchanged"}.get(row.state, row.state)
            detail = row.last_error or ""
            if row.state == "pending" and row.next_attempt_at and row.next_attempt_at > now:
                when = row.next_attempt_at.astimezone(CST).isoformat(timespec="minutes")
                status, detail = "scheduled", f"publish_at {when}"
            elif row.state == "retry-wait" and row.next_attempt_at:
                detail = f"next try at {row.next_attempt_at.isoformat()}; {detail}"
            receipt = row.receipt or {}
            result.outcomes.append(
                DeliveryOutcome(
                    row.item_id,
                    row.channel,
                    status,
                    row.edition,
                    detail,
                    receipt.get("url"),
                    receipt.get("artifact"),
                )
            )


class _Scheduler:
    """Runs deliveries on daemon threads: at most ``settings.concurrency`` at once and
    at most the channel's cap per channel.

    Rows arrive with :meth:`add` while the run is still reading items; :meth:`finish`
    says no more will come and waits. Workers pick their own next delivery under one
    lock (round-robin over channels), so the main thread stays off the hot path; it
    only watches for deliveries that hang past their channel's ``delivery_timeout``.
    Daemon threads, because a channel hung in a call without a timeout must not keep
    the process alive after the run.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher
        total = dispatcher.settings.concurrency
        several = len(dispatcher.channels) > 1
        # With several channels, none may take every worker: one that hangs must leave
        # room for the others.
        self.caps = {
            name: active.settings.concurrency or (max(1, total - 1) if several else total)
            for name, active in dispatcher.channels.items()
        }
        self.queues: dict[str, deque[DeliveryRow]] = {n: deque() for n in dispatcher.channels}
        self.seen: set[tuple[str, str]] = set()
        self.size = 0
        self.running: dict[str, int] = dict.fromkeys(dispatcher.channels, 0)
        self.paused: set[str] = set()
        self.started: dict[int, tuple[DeliveryRow, float]] = {}
        self.outcomes: list[DeliveryOutcome] = []
        # One lock, two conditions: workers wait for work, the main thread for the end.
        # Waking the main thread on every completion would cost a GIL hand-off each.
        self.lock = threading.Lock()
        self.work_ready = threading.Condition(self.lock)
        self.all_done = threading.Condition(self.lock)
        self.counter = 0
        self.closed = False
        self.workers = total
        self.claimed: dict[tuple[str, str], DeliveryRow] = {}

    def start(self) -> None:
        for _ in range(self.workers):
            self._spawn()

    def add(self, rows: Iterable[DeliveryRow]) -> None:
        with self.lock:
            # due() also lists rows queued earlier and not taken yet.
            fresh = [r for r in rows if (r.item_id, r.channel) not in self.seen]
            self.seen.update((r.item_id, r.channel) for r in fresh)
        # Deliveries on resend-safe channels are claimed in one transaction per batch
        # rather than one each: a crash leaves them unknown, and they are resent safely.
        safe = [r for r in fresh if self.d.channels[r.channel].instance.guarantee in RESEND_SAFE]
        safe_keys = {(r.item_id, r.channel) for r in safe}
        claimed: dict[tuple[str, str], DeliveryRow] = {}
        if safe:
            now = self.d.clock()
            got = self.d.ledger.claim_many(
                list(safe_keys), self.d.owner, now, self.d.lease_until(now)
            )
            claimed = {(r.item_id, r.channel): r for r in got}
        with self.lock:
            for row in fresh:
                key = (row.item_id, row.channel)
                if key in safe_keys:
                    if key not in claimed:
                        continue  # another process took it
                    self.claimed[key] = claimed[key]
                self.queues[row.channel].append(row)
                self.size += 1
            self.work_ready.notify_all()

    def _pause(self, name: str) -> None:
        with self.lock:
            self.paused.add(name)

    def _take(self) -> tuple[int, DeliveryRow] | None:
        # Caller holds the lock. Round-robin: a channel that got work goes to the back.
        for name in list(self.queues):
            q = self.queues[name]
            if q and name not in self.paused and self.running[name] < self.caps[name]:
                self.queues[name] = self.queues.pop(name)
                row = q.popleft()
                self.counter += 1
                self.running[name] += 1
                self.started[self.counter] = (row, self.d.monotonic())
                return self.counter, row
        return None

    def _work(self) -> None:
        while True:
            with self.lock:
                task = self._take()
                while task is None and not self.closed:
                    self.work_ready.wait()
                    task = self._take()
                if task is None:
                    self.workers -= 1
                    if self.workers == 0:
                        self.all_done.notify()
                    return
            key, row = task
            with self.lock:
                claimed = self.claimed.pop((row.item_id, row.channel), None)
            try:
                outcome = self.d.attempt(row, self._pause, claimed)
            except Exception as exc:  # noqa: BLE001 - the ledger itself failed
                log.error(
                    "delivery crashed",
                    item_id=row.item_id,
                    channel=row.channel,
                    error=scrub(str(exc)),
                )
                outcome = DeliveryOutcome(
                    row.item_id, row.channel, "unknown", row.edition, f"internal error: {exc}"
                )
            with self.lock:
                if self.started.pop(key, None) is None:
                    # Abandoned as hung and already reported; a replacement worker took
                    # this thread's place in the count, so leave without touching it.
                    return
                self.running[row.channel] -= 1
                self.outcomes.append(outcome)
                done, size = len(self.outcomes), self.size
                # A slot under this channel's cap is free: one waiting worker may use it.
                self.work_ready.notify()
            self.d.progress(done, size)

    def _spawn(self) -> None:
        threading.Thread(target=self._work, name="gongkai-worker", daemon=True).start()

    def finish(self) -> list[DeliveryOutcome]:
        """No more rows will come: wait for the workers, then report what is left."""
        with self.lock:
            self.closed = True
            self.work_ready.notify_all()
            while self.workers > 0 or self.started:
                self.all_done.wait(timeout=self._wait_time())
                self._abandon_hung()
            leftover = [(r.item_id, r.channel) for q in self.queues.values() for r in q]
            unused = [k for k in leftover if k in self.claimed]
            if unused:
                self.d.ledger.release(unused, self.d.owner, self.d.clock())
            self.d.flush_finishes()
            for name, q in self.queues.items():
                for row in q:
                    self.outcomes.append(
                        DeliveryOutcome(
                            row.item_id,
                            name,
                            "paused",
                            row.edition,
                            "channel paused for this run; a later run sends it",
                        )
                    )
            return self.outcomes

    def _wait_time(self) -> float:
        now = self.d.monotonic()
        deadlines = [
            start + self.d.channels[row.channel].settings.delivery_timeout - now
            for row, start in self.started.values()
        ]
        return max(0.01, min(deadlines)) if deadlines else 1.0

    def _abandon_hung(self) -> None:
        # Caller holds the lock.
        now = self.d.monotonic()
        for key, (row, start) in list(self.started.items()):
            timeout = self.d.channels[row.channel].settings.delivery_timeout
            if now - start < timeout:
                continue
            del self.started[key]
            self.running[row.channel] -= 1
            self.d.abandon(row)
            log.error(
                "delivery hung; abandoned",
                item_id=row.item_id,
                channel=row.channel,
                timeout=timeout,
            )
            self.outcomes.append(
                DeliveryOutcome(
                    row.item_id,
                    row.channel,
                    "unknown",
                    row.edition,
                    f"no answer within {timeout:g} s; outcome unknown",
                )
            )
            # The stuck thread is lost to us; a new worker takes its place in the count.
            self._spawn()
