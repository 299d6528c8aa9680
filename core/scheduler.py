"""Concurrency for one run: a bounded pool of daemon threads with a cap per channel.

The scheduler knows nothing about deliveries beyond a row's channel: it hands each
task to ``work`` and collects what comes back. Rows arrive with :meth:`add` while the
run is still reading items; :meth:`finish` says no more will come and waits. Workers
pick their own next task under one lock (round-robin over channels), so the main
thread stays off the hot path; it only watches for calls that hang past their
channel's ``delivery_timeout``. Daemon threads, because a channel hung in a call
without a timeout must not keep the process alive after the run.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .errors import LedgerWriteError
from .ledger import DeliveryRow
from .log import get_logger, scrub
from .results import DeliveryOutcome

log = get_logger(__name__)
#: Longest real wait, in seconds, between two looks for hung calls.
WATCH_SLICE = 0.05


@dataclass(frozen=True)
class Attempted:
    """What one pass along the path produced: the outcome to report (None when the
    claim was given back untouched), and whether the row is queued again and may be
    taken up in this run (a newer edition superseded it, a lookup found nothing, a
    claim was given back)."""

    outcome: DeliveryOutcome | None
    follow_up: bool = False


@dataclass(frozen=True)
class Task:
    row: DeliveryRow
    claimed: DeliveryRow | None = None  # a claim the run made for it in a batch
    #: (item, channel): one tuple, shared by the run's seen set and outcome dict.
    key: tuple[str, str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.row.item_id, self.row.channel))


class Scheduler:
    """Runs tasks on worker threads: at most ``concurrency`` at once and at most
    ``caps[channel]`` per channel.

    ``work(task, pause)`` does one task; ``pause(channel)`` stops the channel's tasks
    for the rest of the run. ``abandon(task, timeout)`` reports a task hung past
    ``timeouts[channel]``. ``follow_up(row)`` is called (on the worker thread) when a
    task's row was queued again, and may :meth:`add` more tasks.
    """

    def __init__(
        self,
        *,
        concurrency: int,
        caps: Mapping[str, int],
        timeouts: Mapping[str, float],
        work: Callable[[Task, Callable[[str], None]], Attempted],
        abandon: Callable[[Task, float], DeliveryOutcome],
        follow_up: Callable[[DeliveryRow], None],
        monotonic: Callable[[], float],
        progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> None:
        self.caps = dict(caps)
        self.timeouts = dict(timeouts)
        self.work = work
        self.abandon = abandon
        self.follow_up = follow_up
        self.monotonic = monotonic
        self.progress = progress
        self.queues: dict[str, deque[Task]] = {name: deque() for name in caps}
        self.seen: set[tuple[str, str]] = set()
        self.size = 0
        self.done = 0
        self.running: dict[str, int] = dict.fromkeys(caps, 0)
        self.paused: set[str] = set()
        self.started: dict[int, tuple[Task, float]] = {}
        #: The last outcome of each (item, channel): a follow-up replaces the first.
        self.outcomes: dict[tuple[str, str], DeliveryOutcome] = {}
        # One lock, two conditions: workers wait for work, the main thread for the end.
        # Waking the main thread on every completion would cost a GIL hand-off each.
        self.lock = threading.Lock()
        self.work_ready = threading.Condition(self.lock)
        self.all_done = threading.Condition(self.lock)
        self.counter = 0
        self.closed = False
        self.halted: LedgerWriteError | None = None
        self.workers = concurrency

    def start(self) -> None:
        for _ in range(self.workers):
            self._spawn()

    def add(self, tasks: Iterable[Task], *, again: bool = False) -> None:
        """Queue tasks. A delivery already queued this run is skipped unless ``again``
        (a follow-up: the state machine queued it anew). Without that rule a lookup
        would run straight after the timeout it is meant to settle, before the remote
        could show what it received."""
        with self.lock:
            for task in tasks:
                if task.key in self.seen and not again:
                    continue
                self.seen.add(task.key)
                self.queues[task.row.channel].append(task)
                self.size += 1
            self.work_ready.notify_all()

    def unseen(self, rows: Iterable[DeliveryRow]) -> list[DeliveryRow]:
        """The rows not queued yet in this run (filter before claiming them)."""
        with self.lock:
            return [r for r in rows if (r.item_id, r.channel) not in self.seen]

    def pause(self, name: str) -> None:
        with self.lock:
            self.paused.add(name)

    def halt(self, error: LedgerWriteError) -> None:
        """The ledger cannot record anything: start nothing more. Tasks already
        running end on their own; unstarted ones are left for the next run."""
        with self.lock:
            if self.halted is None:
                self.halted = error
            self.paused.update(self.queues)

    def drain(self) -> list[Task]:
        """Start nothing more and take the unstarted tasks off the queues (a worker
        told to stop). Tasks running end on their own; tasks added later stay queued
        and come back from :meth:`finish`."""
        with self.lock:
            self.paused.update(self.queues)
            left = [task for q in self.queues.values() for task in q]
            for q in self.queues.values():
                q.clear()
            return left

    def _take(self) -> tuple[int, Task] | None:
        # Caller holds the lock. Round-robin: a channel that got work goes to the back.
        for name in list(self.queues):
            q = self.queues[name]
            if q and name not in self.paused and self.running[name] < self.caps[name]:
                self.queues[name] = self.queues.pop(name)
                task = q.popleft()
                self.counter += 1
                self.running[name] += 1
                self.started[self.counter] = (task, self.monotonic())
                return self.counter, task
        return None

    def _work(self) -> None:
        while True:
            with self.lock:
                taken = self._take()
                while taken is None and not self.closed:
                    self.work_ready.wait()
                    taken = self._take()
                if taken is None:
                    self.workers -= 1
                    if self.workers == 0:
                        self.all_done.notify()
                    return
            key, task = taken
            row = task.row
            try:
                attempted = self.work(task, self.pause)
            except Exception as exc:  # noqa: BLE001 - the ledger itself failed
                if isinstance(exc, LedgerWriteError):
                    self.halt(exc)
                log.error(
                    "task crashed", item_id=row.item_id, channel=row.channel, error=scrub(str(exc))
                )
                attempted = Attempted(
                    DeliveryOutcome(
                        row.item_id, row.channel, "unknown", row.edition, f"internal error: {exc}"
                    )
                )
            with self.lock:
                if self.started.pop(key, None) is None:
                    # Abandoned as hung and already reported; a replacement worker took
                    # this thread's place in the count, and the run may be over: leave
                    # without touching anything, follow-ups included.
                    return
            try:
                if attempted.follow_up:
                    self.follow_up(row)
            except LedgerWriteError as exc:
                # Queuing the follow-up reads and claims in the ledger. The row itself
                # stays queued there for the next run.
                self.halt(exc)
            finally:
                # Always, or finish() would wait for a worker that is gone.
                with self.lock:
                    self.running[row.channel] -= 1
                    if attempted.outcome is not None:
                        self.outcomes[task.key] = attempted.outcome
                    self.done += 1
                    done, size = self.done, self.size
                    # A slot under this channel's cap is free: a waiting worker may use it.
                    self.work_ready.notify()
            self.progress(done, size)

    def _spawn(self) -> None:
        threading.Thread(target=self._work, name="gongkai-worker", daemon=True).start()

    def finish(self) -> tuple[dict[tuple[str, str], DeliveryOutcome], list[Task]]:
        """No more tasks will come: wait for the workers. Returns the last outcome of
        each (item, channel) and the tasks left unstarted because their channel was
        paused."""
        with self.lock:
            self.closed = True
            self.work_ready.notify_all()
            while self.workers > 0 or self.started:
                # In slices: the timeouts are measured on the injected monotonic clock,
                # which a simulation may move faster than real time.
                self.all_done.wait(timeout=min(self._wait_time(), WATCH_SLICE))
                self._abandon_hung()
            leftover = [task for q in self.queues.values() for task in q]
            for q in self.queues.values():
                q.clear()
            return self.outcomes, leftover

    def _wait_time(self) -> float:
        now = self.monotonic()
        deadlines = [
            start + self.timeouts[task.row.channel] - now for task, start in self.started.values()
        ]
        return max(0.01, min(deadlines)) if deadlines else 1.0

    def _abandon_hung(self) -> None:
        # Caller holds the lock.
        now = self.monotonic()
        for key, (task, start) in list(self.started.items()):
            row = task.row
            timeout = self.timeouts[row.channel]
            if now - start < timeout:
                continue
            del self.started[key]
            self.running[row.channel] -= 1
            log.error(
                "call hung; abandoned", item_id=row.item_id, channel=row.channel, timeout=timeout
            )
            self.outcomes[(row.item_id, row.channel)] = self.abandon(task, timeout)
            # The stuck thread is lost to us; a new worker takes its place in the count.
            self._spawn()
