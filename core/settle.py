"""Settling what earlier runs left: interrupted actions, unknown outcomes, remote jobs.

A run first turns the in-flight rows of dead processes into what the state machine
says (an interrupted send is ``unknown``). The lookups that settle unknown outcomes
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
from .ledger import NEEDS_ATTENTION, Capabilities, DeliveryRow, Ledger
from .log import get_logger

log = get_logger(__name__)


def capabilities(channels: Mapping[str, ActiveChannel]) -> Capabilities:
    """What core can do about each enabled channel's open rows."""
    names = frozenset(channels)
    reconcile = frozenset(n for n, a in channels.items() if a.instance.supports("reconcile"))
    resend = (
        frozenset(n for n, a in channels.items() if a.instance.guarantee in RESEND_SAFE) - reconcile
    )
    poll = frozenset(n for n, a in channels.items() if a.instance.supports("poll"))
    return Capabilities(deliver=names, reconcile=reconcile, resend=resend, poll=poll)


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
