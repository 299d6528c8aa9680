"""Retry policy and the outcome decision.

Two layers. **Within a run**, :func:`call_with_retry` retries ``TransientError`` (and,
where a resend is safe, ``OutcomeUnknown``) with exponential backoff and full jitter,
honouring ``retry_after``, for at most ``attempts`` tries and ``max_seconds`` of
waiting; an ``AuthError`` gets one credential refresh and one more try. **Across
runs**, :func:`decide` turns what the channel finally answered or raised into the
state machine's event and the time of the next try (:func:`next_attempt`).

:func:`decide` is pure: the same answer, action, guarantee, try number and policy
always give the same decision. It is the one place that maps an outcome to a
transition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, stop_after_attempt, wait_random_exponential

from .channel import RESEND_SAFE, Receipt
from .config import RetryPolicy
from .errors import (
    AuthError,
    ChannelPaused,
    DeliveryError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
)
from .ledger.states import DONE, Action, Event

T = TypeVar("T")
#: How long a rate-limited channel waits when the remote gave no Retry-After.
RATE_LIMIT_DEFAULT_DELAY = 3600.0


def call_with_retry(
    action: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None],
    refresh_auth: Callable[[], None],
    on_retry: Callable[[BaseException, int, float], None] = lambda exc, attempt, wait: None,
    retry_unknown: bool = False,
) -> T:
    """Run ``action`` under the in-run retry policy; re-raise the last error.

    ``retry_unknown`` also retries ``OutcomeUnknown``: only for actions a repeat cannot
    duplicate (a resend-safe channel's delivery, any take-down).
    """
    retried: tuple[type[BaseException], ...] = (TransientError, AuthError)
    if retry_unknown:
        retried = (TransientError, AuthError, OutcomeUnknown)
    # Fast path: most calls succeed first time, and building a tenacity loop per call
    # costs as much CPU as a loopback request.
    try:
        return action()
    except retried as exc:
        first_failure: BaseException | None = exc
    jitter = wait_random_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max)
    refreshed = False

    def retryable(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, AuthError):
            return not refreshed
        return isinstance(exc, retried)

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


@dataclass(frozen=True)
class Decision:
    """What to record after an action: the state machine's ``event``, the ``status``
    the run reports, the error text, when to try again, and whether the channel must
    stop for the rest of the run."""

    event: Event
    status: str
    error: str | None = None
    next_attempt_at: datetime | None = None
    receipt: Receipt | None = None
    pause: bool = False
    #: The request may have reached the remote (recorded, so that a withdrawal takes
    #: the item down instead of cancelling it).
    uncertain: bool = False


def decide(
    answer: Any,
    *,
    action: str,
    guarantee: str,
    attempts: int,
    policy: RetryPolicy,
    now: datetime,
    sent: bool = True,
    updating: bool = False,
) -> Decision:
    """Map what a channel method returned, or the exception it raised, to a decision.

    ``attempts`` counts this try (1 for the first). ``sent`` is False when the failure
    came before anything could reach the remote (rendering, loading the edition).
    ``updating`` says a delivery replaced an edition the remote already held.
    """
    if isinstance(answer, BaseException):
        return _failure(answer, action, guarantee, attempts, policy, now, sent)
    if action == Action.RECONCILE:
        if answer is None:
            return Decision(Event.RECONCILED_ABSENT, "pending", "reconciled: not on the remote")
        if isinstance(answer, Receipt) and answer.status in DONE:
            return Decision(Event.RECONCILED_FOUND, "delivered", receipt=answer)
    elif action == Action.WITHDRAW:
        if isinstance(answer, Receipt):
            # An offline take-down returns awaiting-confirmation: done when a person
            # confirms the removal (`gongkai confirm … --taken-down`).
            waits = answer.status == "awaiting-confirmation"
            return Decision(
                Event.WITHDRAWN, "awaiting-confirmation" if waits else "withdrawn", receipt=answer
            )
    elif isinstance(answer, Receipt) and answer.status in DONE:
        if action == Action.POLL and answer.status == "publishing":
            return Decision(Event.DEFERRED, "publishing", receipt=answer)
        status = answer.status
        if status == "delivered" and updating:
            status = "updated"
        return Decision(Event.SUCCEEDED, status, receipt=answer)
    odd = _OddAnswer(f"{action} returned {answer!r:.80}, not a receipt it may return")
    return _failure(odd, action, guarantee, attempts, policy, now, sent)


class _OddAnswer(Exception):
    """A channel method returned something the contract does not allow."""


def _failure(
    exc: BaseException,
    action: str,
    guarantee: str,
    attempts: int,
    policy: RetryPolicy,
    now: datetime,
    sent: bool,
) -> Decision:
    message = str(exc) or type(exc).__name__
    if not isinstance(exc, DeliveryError | ChannelPaused):
        where = "render" if not sent else action
        message = (
            f"{where} raised {type(exc).__name__}: {message}; report it to the channel's author"
        )
    retry_after = getattr(exc, "retry_after", None)

    def later(uncertain: bool = False) -> Decision:
        when = next_attempt(policy, attempts, now, retry_after)
        if when is None:
            return Decision(
                Event.FAILED,
                "failed",
                f"{message}; gave up after {attempts} tries, run `gongkai retry` when fixed",
                uncertain=uncertain,
            )
        return Decision(Event.DEFERRED, "retry-wait", message, when, uncertain=uncertain)

    # Settling actions never send anything: a failure leaves the row where it was.
    if action == Action.RECONCILE:
        paused = isinstance(exc, RateLimited | ChannelPaused)
        return Decision(Event.OUTCOME_UNKNOWN, "unknown", f"reconcile: {message}", pause=paused)
    if action == Action.POLL:
        if isinstance(exc, PermanentError):
            return Decision(Event.FAILED, "failed", message)
        paused = isinstance(exc, RateLimited | ChannelPaused)
        return Decision(Event.DEFERRED, "publishing", f"poll: {message}", pause=paused)

    if isinstance(exc, RateLimited):
        delay = retry_after if retry_after is not None else RATE_LIMIT_DEFAULT_DELAY
        return Decision(
            Event.DEFERRED,
            "paused",
            f"rate limited; channel paused for this run ({message})",
            now + timedelta(seconds=delay),
            pause=True,
        )
    if isinstance(exc, ChannelPaused):
        when = next_attempt(policy, attempts, now) or now + timedelta(hours=1)
        return Decision(
            Event.DEFERRED,
            "paused",
            f"credentials refused twice; channel paused for this run ({message})",
            when,
            pause=True,
        )
    if isinstance(exc, TransientError):
        return later()
    if isinstance(exc, PermanentError) or not sent:
        return Decision(Event.FAILED, "failed", message)
    # The request may have reached the remote: OutcomeUnknown, or an exception the
    # channel did not classify. A take-down may simply be repeated, and so may a
    # delivery whose guarantee makes a resend harmless; anything else must not be.
    if action == Action.WITHDRAW or guarantee in RESEND_SAFE:
        return later(uncertain=action == Action.DELIVER)
    return Decision(Event.OUTCOME_UNKNOWN, "unknown", message, uncertain=True)
