"""The outcome decision (`gongkai.retry.decide`) on its own: answer or exception, action,
guarantee, try number and policy in; the state machine's event out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gongkai import Receipt
from gongkai.config import RetryPolicy
from gongkai.errors import (
    AuthError,
    ChannelPaused,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
)
from gongkai.ledger import Event
from gongkai.ledger.states import target
from gongkai.retry import decide

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
POLICY = RetryPolicy(schedule=(5, 300))
DELIVERED = Receipt(external_id="r-1")


def run(answer, action="deliver", guarantee="none", attempts=1, sent=True, updating=False):
    return decide(
        answer,
        action=action,
        guarantee=guarantee,
        attempts=attempts,
        policy=POLICY,
        now=NOW,
        sent=sent,
        updating=updating,
    )


@pytest.mark.parametrize(
    ("answer", "action", "guarantee", "event", "status"),
    [
        # deliver
        (DELIVERED, "deliver", "none", Event.SUCCEEDED, "delivered"),
        (Receipt(status="publishing"), "deliver", "none", Event.SUCCEEDED, "publishing"),
        (TransientError("503"), "deliver", "none", Event.DEFERRED, "retry-wait"),
        (PermanentError("400"), "deliver", "none", Event.FAILED, "failed"),
        (OutcomeUnknown("read timeout"), "deliver", "none", Event.OUTCOME_UNKNOWN, "unknown"),
        (OutcomeUnknown("502"), "deliver", "upsert", Event.DEFERRED, "retry-wait"),
        (OutcomeUnknown("504"), "deliver", "idempotency-key", Event.DEFERRED, "retry-wait"),
        (OutcomeUnknown("504"), "deliver", "lookup", Event.OUTCOME_UNKNOWN, "unknown"),
        (RuntimeError("bug"), "deliver", "none", Event.OUTCOME_UNKNOWN, "unknown"),
        (RuntimeError("bug"), "deliver", "versioned", Event.DEFERRED, "retry-wait"),
        (RateLimited("45009", retry_after=60), "deliver", "none", Event.DEFERRED, "paused"),
        (ChannelPaused(AuthError("40001")), "deliver", "none", Event.DEFERRED, "paused"),
        ("yes", "deliver", "none", Event.OUTCOME_UNKNOWN, "unknown"),
        (Receipt(status="withdrawn"), "deliver", "none", Event.OUTCOME_UNKNOWN, "unknown"),
        # withdraw: a take-down may always be repeated
        (
            DELIVERED.model_copy(update={"status": "withdrawn"}),
            "withdraw",
            "none",
            Event.WITHDRAWN,
            "withdrawn",
        ),
        (OutcomeUnknown("timeout"), "withdraw", "none", Event.DEFERRED, "retry-wait"),
        (OSError("disk"), "withdraw", "none", Event.DEFERRED, "retry-wait"),
        (PermanentError("403"), "withdraw", "none", Event.FAILED, "failed"),
        # reconcile: a lookup never sends; its failures leave the row unknown
        (DELIVERED, "reconcile", "lookup", Event.RECONCILED_FOUND, "delivered"),
        (None, "reconcile", "lookup", Event.RECONCILED_ABSENT, "pending"),
        ("yes", "reconcile", "lookup", Event.OUTCOME_UNKNOWN, "unknown"),
        (KeyError("media_id"), "reconcile", "lookup", Event.OUTCOME_UNKNOWN, "unknown"),
        (TransientError("503"), "reconcile", "lookup", Event.OUTCOME_UNKNOWN, "unknown"),
        # poll: a remote job still running, finished, or failed
        (Receipt(status="publishing"), "poll", "lookup", Event.DEFERRED, "publishing"),
        (DELIVERED, "poll", "lookup", Event.SUCCEEDED, "delivered"),
        (PermanentError("rejected"), "poll", "lookup", Event.FAILED, "failed"),
        (TransientError("503"), "poll", "lookup", Event.DEFERRED, "publishing"),
    ],
)
def test_decision_table(answer, action, guarantee, event, status):
    decision = run(answer, action=action, guarantee=guarantee)
    assert (decision.event, decision.status) == (event, status)


def test_deferred_poll_and_delivery_lead_to_different_states():
    assert target(Event.DEFERRED, action="poll") == "publishing"
    assert target(Event.DEFERRED, action="deliver") == "retry-wait"


def test_an_update_is_reported_as_updated():
    assert run(DELIVERED, updating=True).status == "updated"


def test_schedule_then_give_up():
    first = run(TransientError("503"), attempts=1)
    assert first.next_attempt_at == NOW + timedelta(seconds=5)
    second = run(TransientError("503", retry_after=900), attempts=2)
    assert second.next_attempt_at == NOW + timedelta(seconds=900)  # Retry-After wins
    third = run(TransientError("503"), attempts=3)
    assert third.event is Event.FAILED and "gongkai retry" in third.error


def test_a_failure_before_sending_is_failed_not_unknown():
    decision = run(ValueError("bad template"), sent=False)
    assert decision.event is Event.FAILED
    assert decision.error.startswith("render raised ValueError")


def test_rate_limit_pauses_the_channel_until_retry_after():
    decision = run(RateLimited("quota", retry_after=600))
    assert decision.pause and decision.next_attempt_at == NOW + timedelta(seconds=600)
    assert run(RateLimited("quota")).next_attempt_at == NOW + timedelta(hours=1)


def test_odd_answers_are_described():
    decision = run({"ok": True}, action="reconcile", guarantee="lookup")
    assert "reconcile returned {'ok': True}" in decision.error
