"""Settling what earlier runs left: interrupted actions, unknown outcomes, remote jobs.

A run first turns the in-flight rows of dead processes into what the state machine
says (an interrupted send is ``unknown``), and queues again the unknown outcomes a
channel's guarantee lets it simply resend. The lookups that settle unknown outcomes
(``reconcile``) and the polls of remote jobs are then ordinary tasks on the action
path, run per channel in the pool under ``delivery_timeout``, so one slow remote never
holds up another channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from .attempt import ActiveChannel
from .channel import RESEND_SAFE
from .lease import owner_alive
from .ledger import NEEDS_ATTENTION, Capabilities, DeliveryRow, Intent, Ledger, State
from .log import get_logger

log = get_logger(__name__)


def capabilities(channels: Mapping[str, ActiveChannel]) -> Capabilities:
    """What core can do about each enabled channel's open rows."""
    names = frozenset(channels)
    reconcile = frozenset(n for n, a in channels.items() if a.instance.supports("reconcile"))
    poll = frozenset(n for n, a in channels.items() if a.instance.supports("poll"))
    return Capabilities(deliver=names, reconcile=reconcile, poll=poll)


def requeue_resendable(
    ledger: Ledger, channels: Mapping[str, ActiveChannel], clock: Callable[[], datetime]
) -> None:
    """Queue again the unknown outcomes of channels whose guarantee makes a resend
    harmless and that cannot look them up. Queued, the row is superseded by a newer
    edition if one came meanwhile, so the newest edition is what goes out."""
    resend = {
        name
        for name, active in channels.items()
        if active.instance.guarantee in RESEND_SAFE and not active.instance.supports("reconcile")
    }
    if not resend:
        return
    for row in ledger.rows(states=(State.UNKNOWN,)):
        if row.channel in resend and row.intent == Intent.DELIVER:
            note = f"guarantee '{channels[row.channel].instance.guarantee}' makes a resend safe"
            ledger.requeue(row.item_id, row.channel, (State.UNKNOWN,), clock(), note)


def expire(ledger: Ledger, clock: Callable[[], datetime]) -> list[DeliveryRow]:
    """Settle the in-flight rows whose owner died or whose lease ran out."""
    expired = ledger.expire_leases(clock(), owner_alive)
    for row in expired:
        log.warning(
            "action interrupted",
            item_id=row.item_id,
            channel=row.channel,
            edition=row.edition,
            action=row.action,
        )
    return expired


def backlog(ledger: Ledger) -> dict[str, int]:
    """Deliveries anywhere in the ledger that still need a run or an operator."""
    return ledger.counts(NEEDS_ATTENTION)
