"""``gongkai worker``: the steps of a run, over and over, for deployments that outgrow cron.

Each pass is one :class:`~gongkai.run.Run` with no new items: settle dead leases,
queue again what a resend may settle, act on everything due, along the one action
path. Between passes that found nothing to do, the worker waits on the ledger
(:meth:`Ledger.wait_for_work`: LISTEN/NOTIFY on PostgreSQL, a plain wait on SQLite) for
at most ``poll`` seconds, so new work wakes it at once and schedules and retries still
come due without a tight loop.

While a pass runs, a heartbeat renews the leases its claims hold every third of
``lease_seconds``: a long delivery keeps its claim, while the claims of a worker whose
host died run out with their lease and the next pass anywhere settles them (an
interrupted send becomes ``unknown``; nothing is sent twice on a channel that cannot
take a resend).

:meth:`Worker.stop` (SIGTERM) stops taking work, gives back the claims of actions not
started, and lets the actions under way finish within ``grace`` seconds; what is still
running then keeps its lease until it runs out, and is settled like a crash.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from .lease import lease_until
from .ledger import Ledger
from .log import get_logger
from .results import RunResult

if TYPE_CHECKING:
    from .publisher import Publisher
    from .run import Run

log = get_logger(__name__)

#: A pass takes at most this many due rows per unit of ``concurrency``: short passes
#: let several workers share a backlog and let new work in between.
WINDOW = 16
#: Longest single wait on the ledger, in seconds, between two looks for a stop request.
WAIT_SLICE = 1.0
#: Outcomes that mean the pass did nothing itself: another process had the row.
_IDLE = frozenset({"in-flight", "paused"})


class Heartbeat:
    """Renews, every ``interval`` seconds, the leases ``owner`` holds, until stopped.

    ``wait(seconds)`` waits and returns True when the heartbeat should end; it is
    the stop event's ``wait`` unless a test injects its own."""

    def __init__(
        self,
        ledger: Ledger,
        owner: str,
        *,
        lease_seconds: float,
        clock: Callable[[], datetime],
        interval: float | None = None,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.ledger = ledger
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.interval = interval if interval is not None else lease_seconds / 3
        self.done = threading.Event()
        self.wait = wait or self.done.wait
        self.beats = 0
        self._thread: threading.Thread | None = None

    def beat(self) -> int:
        """Renew now; returns how many claims were renewed."""
        now = self.clock()
        renewed = self.ledger.extend_leases(self.owner, now, lease_until(now, self.lease_seconds))
        self.beats += 1
        return renewed

    def run(self) -> None:
        while not self.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - keep beating; the lease may still hold
                log.warning("lease heartbeat failed", owner=self.owner, error=str(exc))

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self.run, name="gongkai-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self._thread is not None:
            self._thread.join()


class Worker:
    """Runs passes until :meth:`stop`. Built on a :class:`~gongkai.Publisher` that may
    send; ``grace`` bounds how long :meth:`serve` waits for actions under way once
    stopped, ``poll`` how long it waits for new work between idle passes, ``window``
    how many due rows one pass takes at most (default ``WINDOW`` × concurrency)."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        grace: float = 30.0,
        poll: float = 5.0,
        window: int | None = None,
    ) -> None:
        self.publisher = publisher
        self.window = window
        self.grace = grace
        self.poll = poll
        self.stopping = threading.Event()
        #: Set whenever the main loop should look again: a pass ended, or stop().
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._run: Run | None = None
        self.passes = 0
        #: Outcomes of every pass, by status (what ``--once`` and the logs report).
        self.totals: Counter[str] = Counter()
        self.halted: str | None = None
        self._stop_requested = threading.Event()

    # --- one pass -------------------------------------------------------------------------

    def run_once(self) -> RunResult:
        """One pass: settle, take in what is due, deliver; the leases renewed meanwhile."""
        publisher = self.publisher
        run = publisher.run()
        run.window = self.window or WINDOW * publisher.settings.concurrency
        with self._lock:
            if self.stopping.is_set():
                return RunResult()
            self._run = run
        try:
            with Heartbeat(
                run.ledger,
                run.owner,
                lease_seconds=publisher.settings.lease_seconds,
                clock=publisher.clock,
            ):
                result = run.publish([], RunResult())
        finally:
            with self._lock:
                self._run = None
        self.passes += 1
        counts = Counter(o.status for o in result.outcomes)
        self.totals.update(counts)
        if result.halted:
            self.halted = result.halted
        if result.outcomes or result.halted:
            log.info(
                "pass done",
                owner=run.owner,
                outcomes=dict(counts),
                backlog=result.backlog,
                halted=result.halted,
            )
        return result

    def stop(self) -> None:
        """Stop taking work; safe from any thread (not from a signal handler: it writes
        to the ledger; the handler :meth:`serve` installs only sets a flag)."""
        with self._lock:
            first = not self.stopping.is_set()
            self.stopping.set()
            run = self._run
        if first:
            log.info("worker stopping", grace=self.grace)
        if run is not None:
            run.stop()
        self._wake.set()

    # --- the loop --------------------------------------------------------------------------

    def serve(self) -> None:
        """Run passes until :meth:`stop` or :meth:`request_stop`; once stopping, return
        when the pass under way has ended or ``grace`` seconds later, whichever is first."""
        while True:
            self._wake.clear()
            if self._stop_requested.is_set():
                self.stop()
            if self.stopping.is_set():
                break
            box: dict[str, RunResult] = {}
            thread = threading.Thread(target=self._pass, args=(box,), daemon=True)
            thread.start()
            self._wake.wait()
            if self._stop_requested.is_set():
                self.stop()
            if self.stopping.is_set():
                thread.join(self.grace)
                if thread.is_alive():
                    log.warning(
                        "grace period over; deliveries still running keep their lease until "
                        "it runs out and are settled by the next pass anywhere",
                        grace=self.grace,
                    )
                break
            thread.join()
            self._wake.clear()
            if not self._stop_requested.is_set() and self._idle(box.get("result")):
                self._wait_for_work()
        log.info("worker stopped", passes=self.passes, outcomes=dict(self.totals))

    def request_stop(self) -> None:
        """Ask :meth:`serve` to stop; only sets flags, so a signal handler may call it."""
        self._stop_requested.set()
        self._wake.set()

    def _pass(self, box: dict[str, RunResult]) -> None:
        try:
            box["result"] = self.run_once()
        except Exception as exc:  # noqa: BLE001 - log it; the next pass tries again
            log.error("pass failed", error=str(exc))
        finally:
            self._wake.set()

    @staticmethod
    def _idle(result: RunResult | None) -> bool:
        if result is None:
            return True
        return all(o.status in _IDLE for o in result.outcomes)

    def _wait_for_work(self) -> None:
        """Wait up to ``poll`` seconds for new work, in slices, so that a stop request
        ends the wait soon even on a backend whose wait cannot be interrupted."""

        def sleep(seconds: float) -> None:
            self._wake.wait(seconds)

        ledger = self.publisher.ledger
        remaining = self.poll
        while remaining > 0 and not self._wake.is_set():
            step = min(remaining, WAIT_SLICE)
            if ledger.wait_for_work(step, sleep):
                log.debug("woken by new work")
                return
            remaining -= step
