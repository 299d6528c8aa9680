"""The delivery state machine: the one definition of states, events and transitions.

Every write to a delivery row names the event that causes it, and the ledger checks
the move against :data:`TRANSITIONS` before it writes; an illegal move raises
:class:`IllegalTransition` and changes nothing. ``docs/ledger.md`` shows this table
(a test checks that the two agree).

Two row attributes refine the state without multiplying it:

* ``intent`` — ``deliver`` or ``withdraw``. It only ever moves from deliver to withdraw
  (``withdraw-requested``), so once an item is withdrawn every later claim of its rows
  calls the channel's ``withdraw``, never ``deliver``: withdrawal wins.
* ``action`` — what an ``in-flight`` row is doing: ``deliver``, ``withdraw``,
  ``reconcile`` or ``poll``. It decides where an expired lease leads (an interrupted
  send is ``unknown``; an interrupted lookup or take-down is simply done again).
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in-flight"
    DELIVERED = "delivered"
    PUBLISHING = "publishing"
    AWAITING_CONFIRMATION = "awaiting-confirmation"
    RETRY_WAIT = "retry-wait"
    FAILED = "failed"
    UNKNOWN = "unknown"
    WITHDRAWN = "withdrawn"


class Event(StrEnum):
    PLANNED = "planned"
    CLAIMED = "claimed"
    RELEASED = "released"
    SUCCEEDED = "succeeded"
    DEFERRED = "deferred"
    FAILED = "failed"
    OUTCOME_UNKNOWN = "outcome-unknown"
    LEASE_EXPIRED = "lease-expired"
    RECONCILED_FOUND = "reconciled-found"
    RECONCILED_ABSENT = "reconciled-absent"
    REQUEUED = "requeued"
    SUPERSEDED = "superseded"
    WITHDRAW_REQUESTED = "withdraw-requested"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"
    # Room for the offline channels: a person confirms a posting, then takes it down.
    CONFIRMED = "confirmed"
    TAKEN_DOWN = "taken-down"


class Intent(StrEnum):
    DELIVER = "deliver"
    WITHDRAW = "withdraw"


class Action(StrEnum):
    DELIVER = "deliver"
    WITHDRAW = "withdraw"
    RECONCILE = "reconcile"
    POLL = "poll"


S, E = State, Event

#: Queued for core to act on when due.
QUEUED: frozenset[State] = frozenset({S.PENDING, S.RETRY_WAIT})
#: The remote holds (or is about to hold) the row's edition.
DONE: frozenset[State] = frozenset({S.DELIVERED, S.PUBLISHING, S.AWAITING_CONFIRMATION})
#: Outcomes an operator or a later run must look at.
NEEDS_ATTENTION: frozenset[State] = frozenset({S.RETRY_WAIT, S.FAILED, S.UNKNOWN})
#: Settled states a newer edition replaces (``superseded``). ``unknown`` is not one: an
#: edition whose fate is open must be settled before the next one goes out, and
#: ``publishing`` waits for its remote job to finish.
SUPERSEDABLE: frozenset[State] = frozenset(
    {S.PENDING, S.RETRY_WAIT, S.FAILED, S.DELIVERED, S.AWAITING_CONFIRMATION}
)

_ANY_SETTLED = frozenset(State) - {S.IN_FLIGHT, S.WITHDRAWN}

#: (state before, event) → the states the event may lead to. ``None`` as the state
#: before is a row that does not exist yet.
TRANSITIONS: dict[tuple[State | None, Event], frozenset[State]] = {
    (None, E.PLANNED): frozenset({S.PENDING}),
    # Core acts on queued rows, looks up unknown ones and polls running remote jobs.
    **{(s, E.CLAIMED): frozenset({S.IN_FLIGHT}) for s in (*QUEUED, S.UNKNOWN, S.PUBLISHING)},
    # A claim given back untouched returns to where it came from (only queued rows are
    # claimed ahead of their attempt).
    (S.IN_FLIGHT, E.RELEASED): QUEUED,
    (S.IN_FLIGHT, E.SUCCEEDED): DONE,
    (S.IN_FLIGHT, E.DEFERRED): frozenset({S.RETRY_WAIT, S.PUBLISHING}),
    (S.IN_FLIGHT, E.FAILED): frozenset({S.FAILED}),
    (S.IN_FLIGHT, E.OUTCOME_UNKNOWN): frozenset({S.UNKNOWN}),
    # An interrupted send is unknown; an interrupted poll or take-down is done again.
    (S.IN_FLIGHT, E.LEASE_EXPIRED): frozenset({S.UNKNOWN, S.PUBLISHING, S.PENDING}),
    (S.IN_FLIGHT, E.RECONCILED_FOUND): DONE,
    (S.IN_FLIGHT, E.RECONCILED_ABSENT): frozenset({S.PENDING}),
    # An operator's retry, or core when the channel's guarantee makes a resend safe.
    **{(s, E.REQUEUED): frozenset({S.PENDING}) for s in (S.FAILED, S.UNKNOWN)},
    **{(s, E.SUPERSEDED): frozenset({S.PENDING}) for s in SUPERSEDABLE},
    # Withdrawal queues a take-down wherever the remote may hold something; a row
    # already in flight keeps running and learns its new intent when it finishes.
    **{(s, E.WITHDRAW_REQUESTED): frozenset({S.PENDING}) for s in _ANY_SETTLED},
    (S.IN_FLIGHT, E.WITHDRAW_REQUESTED): frozenset({S.IN_FLIGHT}),
    # Nothing ever reached the remote: nothing to take down.
    **{(s, E.CANCELLED): frozenset({S.WITHDRAWN}) for s in (*QUEUED, S.FAILED)},
    # An offline take-down (a notice to remove from the wall, an item to delete from
    # the platform by hand) is done only when a person confirms it.
    (S.IN_FLIGHT, E.WITHDRAWN): frozenset({S.WITHDRAWN, S.AWAITING_CONFIRMATION}),
    # A person confirms the posting, area by area: the row is delivered when every
    # area is, and waits with the updated receipt until then.
    (S.AWAITING_CONFIRMATION, E.CONFIRMED): frozenset({S.AWAITING_CONFIRMATION, S.DELIVERED}),
    # A take-down confirmed in every area ends the row; a posting whose 公示期 ended
    # comes down the same way.
    (S.AWAITING_CONFIRMATION, E.TAKEN_DOWN): frozenset({S.AWAITING_CONFIRMATION, S.WITHDRAWN}),
    (S.DELIVERED, E.TAKEN_DOWN): frozenset({S.DELIVERED, S.WITHDRAWN}),
}


class IllegalTransition(RuntimeError):  # noqa: N818 - it is a bug report, not a condition
    """Core asked the ledger for a move the state machine does not allow. This is a bug
    in gongkai (or a ledger backend), never a user error; the row is left unchanged."""

    def __init__(
        self, item_id: str, channel: str, before: str | None, event: str, after: str
    ) -> None:
        self.before, self.event, self.after = before, event, after
        super().__init__(
            f"illegal delivery transition for {item_id} on {channel}: "
            f"{before or '(no row)'} --{event}--> {after}; this is a bug in gongkai, "
            "please report it with `gongkai status ITEM`"
        )


def allowed(before: State | str | None, event: Event | str, after: State | str) -> bool:
    # Plain strings work as keys: a StrEnum member hashes and compares as its value.
    return after in TRANSITIONS.get((before, event), ())


def check(item_id: str, channel: str, before: str | None, event: str, after: str) -> None:
    """Raise :class:`IllegalTransition` unless ``before --event--> after`` is allowed."""
    if not allowed(before, event, after):
        raise IllegalTransition(item_id, channel, before, event, after)


def target(
    event: Event,
    *,
    action: str = Action.DELIVER,
    receipt_status: str | None = None,
    claimed_from: str | None = None,
) -> State:
    """The state an event leads to. ``action`` is the in-flight row's action,
    ``receipt_status`` the status of the receipt a success returned, and
    ``claimed_from`` the state a released claim came from. ``confirmed`` and
    ``taken-down`` lead where :func:`gongkai.confirm` decides (every area or not yet);
    this gives their final state."""
    if event in (E.SUCCEEDED, E.RECONCILED_FOUND):
        return State(receipt_status or S.DELIVERED)
    if event is E.DEFERRED:
        return S.PUBLISHING if action == Action.POLL else S.RETRY_WAIT
    if event is E.LEASE_EXPIRED:
        return _EXPIRED[Action(action)]
    if event is E.RELEASED:
        return State(claimed_from or S.PENDING)
    if event is E.WITHDRAWN and receipt_status == S.AWAITING_CONFIRMATION:
        return S.AWAITING_CONFIRMATION  # the take-down waits for a person
    return _FIXED[event]


_EXPIRED = {
    Action.DELIVER: S.UNKNOWN,
    Action.RECONCILE: S.UNKNOWN,
    Action.POLL: S.PUBLISHING,
    Action.WITHDRAW: S.PENDING,
}
_FIXED = {
    E.PLANNED: S.PENDING,
    E.CLAIMED: S.IN_FLIGHT,
    E.FAILED: S.FAILED,
    E.OUTCOME_UNKNOWN: S.UNKNOWN,
    E.RECONCILED_ABSENT: S.PENDING,
    E.REQUEUED: S.PENDING,
    E.SUPERSEDED: S.PENDING,
    E.WITHDRAW_REQUESTED: S.PENDING,
    E.CANCELLED: S.WITHDRAWN,
    E.WITHDRAWN: S.WITHDRAWN,
    E.CONFIRMED: S.DELIVERED,
    E.TAKEN_DOWN: S.WITHDRAWN,
}


def follow_on(
    state: str,
    *,
    intent: str,
    action: str,
    edition: int,
    latest_edition: int,
    delivered_edition: int | None,
    maybe_delivered: bool = False,
) -> Event | None:
    """The move a settled row must make next, or None: the two rules that keep the
    newest edition winning and withdrawal winning, whatever order things happen in.

    * The item was withdrawn while this row was doing something else: cancel it if
      nothing of it can have reached the remote (no edition delivered, and no send
      whose answer never came), otherwise queue a take-down.
    * A newer edition exists and this row settled on an older one: supersede it.
    """
    if state in (S.IN_FLIGHT, S.WITHDRAWN):
        return None
    if intent == Intent.WITHDRAW:
        if action == Action.WITHDRAW:
            return None  # already a take-down
        if state in (*QUEUED, S.FAILED) and delivered_edition is None and not maybe_delivered:
            return E.CANCELLED
        return E.WITHDRAW_REQUESTED
    if state in SUPERSEDABLE and latest_edition > edition:
        return E.SUPERSEDED
    return None


def markdown_table() -> str:
    """The transition table as Markdown, for docs/ledger.md."""
    order = {state: n for n, state in enumerate(State)}
    events = {event: n for n, event in enumerate(Event)}
    rows = sorted(
        TRANSITIONS.items(),
        key=lambda kv: (-1 if kv[0][0] is None else order[kv[0][0]], events[kv[0][1]]),
    )
    lines = ["| from | event | to |", "|---|---|---|"]
    for (before, event), targets in rows:
        after = ", ".join(f"`{t}`" for t in sorted(targets, key=order.__getitem__))
        lines.append(f"| {f'`{before}`' if before else '(new row)'} | {event} | {after} |")
    return "\n".join(lines)
