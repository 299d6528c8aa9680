"""Typed results of a run, for the library API, the CLI table and ``--json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .errors import ItemProblem

Status = Literal[
    "delivered",  # sent this run (first edition on this channel)
    "updated",  # sent this run, replacing an older edition
    "unchanged",  # the channel already carries this edition
    "scheduled",  # publish_at is in the future
    "publishing",  # the remote is still working on it; a later run polls
    "awaiting-confirmation",  # offline: a person must post or broadcast it and confirm
    "pending",  # queued, not done this run (a newer edition waits, a lookup found nothing)
    "in-flight",  # another process is delivering it right now
    "retry-wait",  # failed for now; a later run retries
    "paused",  # the channel was paused this run (rate limit, credentials)
    "failed",  # permanent: an operator must act
    "unknown",  # the outcome is unknown; reconcile or an operator settles it
    "withdrawn",
    "not-enabled",  # the catalogue routes it to a channel that config does not enable
]
#: Statuses that make ``gongkai publish`` exit 1.
FAILING: frozenset[str] = frozenset({"pending", "retry-wait", "paused", "failed", "unknown"})


def shown_state(state: str, next_attempt_at: datetime | None, now: datetime) -> str:
    """The word operators see for a ledger state, the same in ``publish`` and
    ``status``: a pending delivery waiting for its publish_at is ``scheduled``."""
    if state == "pending" and next_attempt_at is not None and next_attempt_at > now:
        return "scheduled"
    return state


@dataclass(frozen=True, slots=True)  # slots: a big run holds one per (item, channel)
class DeliveryOutcome:
    item_id: str
    channel: str
    status: Status
    edition: int | None = None
    detail: str = ""
    url: str | None = None
    artifact: str | None = None

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies, and a big run has 500,000 of these.
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass
class RunResult:
    """What one run did: one outcome per (item, channel) it touched, the problems of
    the items it could not take, and ``backlog``: how many deliveries anywhere in the
    ledger are still ``retry-wait``, ``failed`` or ``unknown`` after the run (so a
    bare ``gongkai publish`` from cron exits 1 while any need attention).
    ``halted`` says why the run stopped early (the ledger could not be written: a
    full disk); what it reports is what it did before that."""

    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    problems: list[ItemProblem] = field(default_factory=list)
    editions: dict[str, int] = field(default_factory=dict)
    backlog: dict[str, int] = field(default_factory=dict)
    halted: str | None = None
    #: Things an operator should know that are not failures ("already withdrawn").
    notes: list[str] = field(default_factory=list)
    #: Item files read this run, and files skipped unread because the ledger holds
    #: them as taken in and nothing about them changed (``publish_paths`` only).
    files_read: int = 0
    files_skipped: int = 0

    @property
    def failed(self) -> list[DeliveryOutcome]:
        return [o for o in self.outcomes if o.status in FAILING]

    @property
    def ok(self) -> bool:
        return not self.problems and not self.failed and not self.backlog and not self.halted

    @property
    def exit_code(self) -> int:
        """0 all done; 2 some input was bad (the rest still went out); 1 some delivery
        failed or is not done, in this run or left by an earlier one. Bad input wins
        because it needs the author, not a rerun."""
        if self.problems:
            return 2
        return 1 if self.failed or self.backlog or self.halted else 0

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts

    def outcome(self, item_id: str, channel: str) -> DeliveryOutcome | None:
        for outcome in self.outcomes:
            if outcome.item_id == item_id and outcome.channel == channel:
                return outcome
        return None

    def as_dict(self, *, outcomes: bool = True) -> dict[str, Any]:
        """The ``--json`` report. ``outcomes=False`` leaves the outcomes out, for a
        writer that streams them one at a time."""
        data: dict[str, Any] = {"ok": self.ok, "exit_code": self.exit_code, "counts": self.counts()}
        if outcomes:
            data["outcomes"] = [o.as_dict() for o in self.outcomes]
        data.update(
            problems=[p.as_dict() for p in self.problems],
            backlog=dict(self.backlog),
            halted=self.halted,
            notes=list(self.notes),
            files_read=self.files_read,
            files_skipped=self.files_skipped,
        )
        return data
