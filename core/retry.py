"""Retry policy: the in-run layer (tenacity) and the cross-run schedule.

Within a run, ``TransientError`` is retried with exponential backoff and full jitter,
honouring ``retry_after``, for at most ``attempts`` tries and ``max_seconds`` of waiting.
An ``AuthError`` gets one credential refresh and one more try. Everything else goes
straight back to the dispatcher, which writes the ledger state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from tenacity import RetryCallState, Retrying, stop_after_attempt, wait_random_exponential

from .config import RetryPolicy
from .errors import AuthError, TransientError

T = TypeVar("T")


class ChannelPaused(Exception):
    """Raised when a second AuthError in a row means the credentials are really bad."""

    def __init__(self, cause: AuthError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def call_with_retry(
    action: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None],
    refresh_auth: Callable[[], None],
    on_retry: Callable[[BaseException, int, float], None] = lambda exc, attempt, wait: None,
) -> T:
    """Run ``action`` under the in-run retry policy; re-raise the last error."""
    # Fast path: most calls succeed first time, and building a tenacity loop per call
    # costs as much CPU as a loopback request.
    try:
        return action()
    except (TransientError, AuthError) as exc:
        first_failure: BaseException | None = exc
    jitter = wait_random_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max)
    refreshed = False

    def retryable(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError):
            return True
        return isinstance(exc, AuthError) and not refreshed

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, AuthError):
            return 0.0
        after = getattr(exc, "retry_after", None)
        return float(after) if after is not None else jitter(state)

    def out_of_budget(state: RetryCallState) -> bool:
        # Counts planned sleeps rather than the wall clock, so injected sleepers and
        # clocks in tests behave exactly like real time.
        upcoming = state.upcoming_sleep or 0.0
        return state.idle_for + upcoming > policy.max_seconds

    def before_sleep(state: RetryCallState) -> None:
        nonlocal refreshed
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, AuthError):
            refreshed = True
            refresh_auth()
        on_retry(exc, state.attempt_number, state.upcoming_sleep or 0.0)

    retrying = Retrying(
        retry=retryable,
        wait=wait,
        stop=stop_after_attempt(policy.attempts) | out_of_budget,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )

    def again() -> T:
        # Replays the first failure so tenacity counts it, then calls for real.
        nonlocal first_failure
        if first_failure is not None:
            failure, first_failure = first_failure, None
            raise failure
        return action()

    try:
        return retrying(again)
    except AuthError as exc:
        if refreshed:
            raise ChannelPaused(exc) from exc
        raise


def next_attempt(
    policy: RetryPolicy, attempts: int, now: datetime, retry_after: float | None = None
) -> datetime | None:
    """When to try again after ``attempts`` failed runs, or None once the schedule is
    used up (the delivery is then ``failed``)."""
    if attempts > len(policy.schedule):
        return None
    delay = policy.schedule[attempts - 1]
    if retry_after is not None:
        delay = max(delay, retry_after)
    return now + timedelta(seconds=delay)
