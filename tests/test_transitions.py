"""The delivery state machine's table, pair by pair.

For every state (and ``None``, a row that does not exist yet) and every event, a row
is brought into that state through the public ledger API by a legal path, and the
event is applied through ``SQLiteLedger._move``, the single write path of a delivery
row, both ways it is called: with the row's facts as read in the transaction, and
with ``facts=None`` and the columns the row must still have (``expect``, as
``finish_many`` calls it). Every pair the table lists must succeed and land where it
says; every pair it does not list must raise :class:`IllegalTransition` and leave the
row and the attempt log exactly as they were. The pure functions of
``ledger/states.py`` are tested directly, table-driven.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gongkai.ledger import Capabilities, DeliveryRow, IngestRecord, SQLiteLedger, Step
from gongkai.ledger import states as sm
from gongkai.ledger.sqlite_machine import _Facts
from gongkai.ledger.states import (
    DONE,
    QUEUED,
    SUPERSEDABLE,
    TRANSITIONS,
    Action,
    Event,
    IllegalTransition,
    Intent,
    State,
)

S, E = State, Event
NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
LEASE = NOW + timedelta(minutes=15)
CH = "c"
OWNER = "host:1:w"
CAN = Capabilities(deliver=frozenset({CH}))
STARTS: tuple[State | None, ...] = (None, *State)


def _receipt(status: str) -> dict:
    return {"status": status, "external_id": "x1"}


#: How an in-flight delivery ends to reach each state (core's events, see retry.decide).
FINISH_INTO = {
    S.DELIVERED: Step(E.SUCCEEDED, receipt=_receipt("delivered")),
    S.PUBLISHING: Step(E.SUCCEEDED, receipt=_receipt("publishing")),
    S.AWAITING_CONFIRMATION: Step(E.SUCCEEDED, receipt=_receipt("awaiting-confirmation")),
    S.RETRY_WAIT: Step(E.DEFERRED, error="HTTP 503", next_attempt_at=NOW - timedelta(minutes=1)),
    S.FAILED: Step(E.FAILED, error="HTTP 400"),
    S.UNKNOWN: Step(E.OUTCOME_UNKNOWN, error="read timeout"),
}


def record(item_id: str) -> IngestRecord:
    return IngestRecord(
        item_id=item_id,
        content_hash=f"{item_id}-h1",
        payload={"id": item_id},
        catalog="x",
        title="标题",
        channels=(CH,),
    )


def ingest(ledger: SQLiteLedger, item_id: str) -> None:
    [result] = ledger.ingest([record(item_id)], NOW)
    assert result.plans == {CH: "queued"}


def claim(ledger: SQLiteLedger, item_id: str, can: Capabilities = CAN) -> DeliveryRow:
    """Claim the row; the claim carries its own lease token (``OWNER#serial``)."""
    [row] = ledger.due(NOW, can, item_ids=[item_id])
    claimed = ledger.claim(row, OWNER, NOW, LEASE)
    assert claimed is not None and claimed.lease_owner.startswith(f"{OWNER}#")
    return claimed


def reach(ledger: SQLiteLedger, item_id: str, state: State | None) -> None:
    """Bring ``item_id``'s row on channel ``c`` into ``state`` by a legal path."""
    if state is None:
        return
    ingest(ledger, item_id)  # pending
    if state == S.WITHDRAWN:
        ledger.request_withdraw(item_id, "信息有误", NOW)  # nothing went out: cancelled
    elif state != S.PENDING:
        claimed = claim(ledger, item_id)  # in-flight
        if state != S.IN_FLIGHT:
            token = claimed.lease_owner
            assert ledger.finish(item_id, CH, token, 1, FINISH_INTO[state], NOW) == state
    assert ledger.row(item_id, CH).state == state


def snapshot(ledger: SQLiteLedger, item_id: str):
    """Everything about the row, its item and its log, raw."""
    with ledger._lock:
        db = ledger._db
        return (
            db.execute("SELECT * FROM deliveries WHERE item_id = ?", (item_id,)).fetchall(),
            db.execute("SELECT * FROM item_state WHERE item_id = ?", (item_id,)).fetchall(),
            db.execute(
                "SELECT * FROM attempts WHERE item_id = ? ORDER BY id", (item_id,)
            ).fetchall(),
        )


def natural_target(event: Event, facts: _Facts | None) -> State:
    """Where the ledger's code sends the row: states.target with the row's facts (a
    withdrawal does not move an in-flight row: request_withdraw logs it and leaves it)."""
    if event is E.WITHDRAW_REQUESTED and facts and facts.state == S.IN_FLIGHT:
        return S.IN_FLIGHT
    return sm.target(
        event,
        action=facts.action if facts else Action.DELIVER,
        claimed_from=facts.claimed_from if facts else None,
    )


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    db = SQLiteLedger(tmp_path_factory.mktemp("transitions") / "ledger.sqlite3")
    yield db
    db.close()


_ids = itertools.count()


def fresh(ledger: SQLiteLedger, state: State | None) -> str:
    item_id = f"i{next(_ids)}"
    reach(ledger, item_id, state)
    return item_id


def _facts_for_missing_row(item_id: str) -> _Facts:
    return _Facts(None, 1, Intent.DELIVER, Action.DELIVER, None, None, None, 1, 0, 0)


#: The two ways _move is called: with the facts read in the transaction, or with
#: ``facts=None`` and the columns the row must still have (finish_many's guarded write).
WAYS = ("facts", "expect")


def apply(
    ledger: SQLiteLedger, item_id: str, event: Event, after: State, way: str = "facts"
) -> _Facts | None:
    with ledger._write() as db:
        facts = ledger._facts(db, item_id, CH) or _facts_for_missing_row(item_id)
        if way == "facts":
            return ledger._move(db, item_id, CH, facts, event, after, NOW)
        expect = {"state": facts.state, "edition": facts.edition}
        if facts.lease_owner is not None:  # (`= NULL` would match nothing)
            expect["lease_owner"] = facts.lease_owner
        return ledger._move(db, item_id, CH, None, event, after, NOW, expect=expect)


@pytest.mark.parametrize("state", STARTS, ids=lambda s: str(s or "new-row"))
def test_each_state_is_reached_by_a_legal_path(ledger, state):
    item_id = fresh(ledger, state)
    row = ledger.row(item_id, CH)
    assert (row.state if row else None) == state
    assert (
        (row.lease_owner is not None)
        if state == S.IN_FLIGHT
        else (row is None or not row.lease_owner)
    )


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("event", list(Event), ids=str)
@pytest.mark.parametrize("state", STARTS, ids=lambda s: str(s or "new-row"))
def test_every_state_event_pair(ledger, state, event, way):
    allowed_targets = TRANSITIONS.get((state, event))
    for after in State:
        legal = allowed_targets is not None and after in allowed_targets
        if state is None and event is E.PLANNED:
            # A row that does not exist is created by ingest (it INSERTs, after the
            # same check), not moved: check that path instead.
            item_id = f"i{next(_ids)}"
            if legal:
                ingest(ledger, item_id)
                assert ledger.row(item_id, CH).state == after == S.PENDING
            else:
                with pytest.raises(IllegalTransition):
                    sm.check(item_id, CH, None, event, after)
            continue
        item_id = fresh(ledger, state)
        before = snapshot(ledger, item_id)
        row_before = ledger.row(item_id, CH)
        log_before = ledger.attempts(item_id)
        if legal:
            moved = apply(ledger, item_id, event, after, way)
            assert moved is not None and moved.state == after
            assert ledger.row(item_id, CH).state == after
            log_after = ledger.attempts(item_id)
            assert log_after[: len(log_before)] == log_before  # nothing rewritten
            logged = log_after[len(log_before) :]
            quiet = event in (E.CLAIMED, E.RELEASED, E.PLANNED)
            assert [(a.action, a.outcome) for a in logged] == (
                [] if quiet else [(str(event), str(after))]
            )
        else:
            with pytest.raises(IllegalTransition) as raised:
                apply(ledger, item_id, event, after, way)
            assert (raised.value.before, raised.value.event, raised.value.after) == (
                state,
                event,
                after,
            )
            assert snapshot(ledger, item_id) == before, "an illegal move changed something"
            assert ledger.row(item_id, CH) == row_before
            assert ledger.attempts(item_id) == log_before


@pytest.mark.parametrize("event", list(Event), ids=str)
@pytest.mark.parametrize("state", list(State), ids=str)
def test_the_target_core_computes_is_allowed_exactly_when_the_pair_is(ledger, state, event):
    """Apply the event with the target ``states.target`` derives from the row, as the
    ledger's public methods do."""
    item_id = fresh(ledger, state)
    with ledger._write() as db:
        facts = ledger._facts(db, item_id, CH)
    after = natural_target(event, facts)
    before = snapshot(ledger, item_id)
    if (state, event) in TRANSITIONS:
        assert after in TRANSITIONS[(state, event)], (state, event, after)
        apply(ledger, item_id, event, after)
        assert ledger.row(item_id, CH).state == after
    else:
        with pytest.raises(IllegalTransition):
            apply(ledger, item_id, event, after)
        assert snapshot(ledger, item_id) == before


@pytest.mark.parametrize(
    ("state", "expect"),
    [
        (S.IN_FLIGHT, {"state": S.IN_FLIGHT, "lease_owner": f"{OWNER}#0"}),  # another claim
        (S.IN_FLIGHT, {"state": S.IN_FLIGHT, "edition": 2}),  # another edition
        (S.PENDING, {"state": S.IN_FLIGHT}),  # the claim was lost: the row moved on
    ],
    ids=["other-token", "other-edition", "moved-on"],
)
def test_a_guarded_move_whose_row_moved_on_changes_nothing(ledger, state, expect):
    """``_move(facts=None, expect=...)`` checks the move against the expected state, then
    writes only if the row still has every expected column: otherwise None, and the
    row and the attempt log are exactly as they were."""
    item_id = fresh(ledger, state)
    before = snapshot(ledger, item_id)
    step = Step(E.SUCCEEDED, receipt=_receipt("delivered"))
    with ledger._write() as db:
        moved = ledger._move(
            db, item_id, CH, None, E.SUCCEEDED, S.DELIVERED, NOW, log=step, expect=expect
        )
    assert moved is None
    assert snapshot(ledger, item_id) == before


def test_public_claim_of_a_state_the_table_does_not_allow_changes_nothing(ledger):
    """The one write that is not _move (claim's UPDATE) is checked against the table too."""
    for state in State:
        if (state, E.CLAIMED) in TRANSITIONS:
            continue
        item_id = fresh(ledger, state)
        row = ledger.row(item_id, CH)
        before = snapshot(ledger, item_id)
        for action in Action:
            with pytest.raises(IllegalTransition):
                ledger.claim(replace(row, action=action), "other", NOW, LEASE)
        assert snapshot(ledger, item_id) == before


SETTLE = Capabilities(deliver=frozenset({CH}), reconcile=frozenset({CH}), poll=frozenset({CH}))


@pytest.mark.parametrize(("state", "action"), [(S.UNKNOWN, "reconcile"), (S.PUBLISHING, "poll")])
def test_a_claim_to_settle_a_row_cannot_be_released(ledger, state, action):
    """Only queued rows are claimed ahead of their attempt, so only they are given back:
    releasing a lookup or a poll would be ``in-flight --released--> unknown/publishing``,
    which the table does not allow. The whole release is refused and changes nothing."""
    queued = fresh(ledger, S.PENDING)
    batch = claim(ledger, queued)
    item_id = fresh(ledger, state)
    settling = claim(ledger, item_id, SETTLE)
    assert (settling.action, ledger.row(item_id, CH).state) == (action, S.IN_FLIGHT)
    before = snapshot(ledger, item_id), snapshot(ledger, queued)
    with pytest.raises(IllegalTransition) as raised:
        ledger.release([batch, settling], NOW)
    assert (raised.value.before, raised.value.event, raised.value.after) == (
        S.IN_FLIGHT,
        E.RELEASED,
        state,
    )
    assert (snapshot(ledger, item_id), snapshot(ledger, queued)) == before
    ledger.release([batch], NOW)  # a queued claim alone goes back where it came from
    assert ledger.row(queued, CH).state == S.PENDING


# --- the pure functions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "event", "after", "expected"),
    [
        (None, "planned", "pending", True),
        (None, "planned", "in-flight", False),
        (None, "claimed", "in-flight", False),
        ("pending", "claimed", "in-flight", True),
        ("retry-wait", "claimed", "in-flight", True),
        ("unknown", "claimed", "in-flight", True),
        ("publishing", "claimed", "in-flight", True),
        ("failed", "claimed", "in-flight", False),
        ("delivered", "claimed", "in-flight", False),
        ("withdrawn", "claimed", "in-flight", False),
        ("in-flight", "succeeded", "delivered", True),
        ("in-flight", "succeeded", "publishing", True),
        ("in-flight", "succeeded", "awaiting-confirmation", True),
        ("in-flight", "succeeded", "withdrawn", False),
        ("in-flight", "lease-expired", "unknown", True),
        ("in-flight", "lease-expired", "pending", True),
        ("in-flight", "lease-expired", "delivered", False),
        ("in-flight", "released", "failed", False),
        ("in-flight", "released", "pending", True),
        ("in-flight", "released", "retry-wait", True),
        ("in-flight", "released", "unknown", False),
        ("in-flight", "released", "publishing", False),
        ("unknown", "superseded", "pending", False),
        ("publishing", "superseded", "pending", False),
        ("delivered", "superseded", "pending", True),
        ("unknown", "withdraw-requested", "pending", True),
        ("in-flight", "withdraw-requested", "in-flight", True),
        ("in-flight", "withdraw-requested", "pending", False),
        ("withdrawn", "withdraw-requested", "pending", False),
        ("unknown", "cancelled", "withdrawn", False),
        ("failed", "cancelled", "withdrawn", True),
        ("delivered", "cancelled", "withdrawn", False),
        ("delivered", "taken-down", "withdrawn", True),
        ("awaiting-confirmation", "confirmed", "delivered", True),
        ("unknown", "requeued", "pending", True),
        ("retry-wait", "requeued", "pending", False),
        (S.FAILED, E.REQUEUED, S.PENDING, True),  # enums and strings alike
    ],
)
def test_allowed(before, event, after, expected):
    assert sm.allowed(before, event, after) is expected


def test_allowed_agrees_with_the_table_on_every_triple():
    for before, event, after in itertools.product(STARTS, Event, State):
        expected = after in TRANSITIONS.get((before, event), frozenset())
        assert sm.allowed(before, event, after) is expected
        assert sm.allowed(str(before) if before else None, str(event), str(after)) is expected


@pytest.mark.parametrize(
    ("before", "event", "after"),
    [
        ("sent", "claimed", "in-flight"),
        ("pending", "sent", "in-flight"),
        ("pending", "claimed", "sent"),
        ("Pending", "claimed", "in-flight"),
    ],
)
def test_allowed_rejects_names_that_are_not_states_or_events(before, event, after):
    """``allowed`` looks plain strings up as they are (it no longer converts them to
    the enums, so it no longer raises ValueError): a name that is not a state or an
    event is never allowed, and ``check`` refuses it as an illegal transition."""
    assert sm.allowed(before, event, after) is False
    with pytest.raises(IllegalTransition):
        sm.check("a", CH, before, event, after)


def test_check_passes_legal_moves_and_reports_illegal_ones():
    sm.check("a", CH, "pending", "claimed", "in-flight")
    sm.check("a", CH, None, "planned", "pending")
    with pytest.raises(IllegalTransition) as raised:
        sm.check("a", CH, "delivered", "claimed", "in-flight")
    err = raised.value
    assert (err.before, err.event, err.after) == ("delivered", "claimed", "in-flight")
    assert "a on c: delivered --claimed--> in-flight" in str(err)
    with pytest.raises(IllegalTransition, match=r"\(no row\) --claimed--> in-flight"):
        sm.check("a", CH, None, "claimed", "in-flight")
    assert isinstance(err, RuntimeError)


@pytest.mark.parametrize(
    ("event", "kwargs", "expected"),
    [
        (E.SUCCEEDED, {}, S.DELIVERED),
        (E.SUCCEEDED, {"receipt_status": "publishing"}, S.PUBLISHING),
        (E.SUCCEEDED, {"receipt_status": "awaiting-confirmation"}, S.AWAITING_CONFIRMATION),
        (E.RECONCILED_FOUND, {"receipt_status": "delivered"}, S.DELIVERED),
        (E.RECONCILED_FOUND, {"receipt_status": "publishing"}, S.PUBLISHING),
        (E.DEFERRED, {"action": Action.DELIVER}, S.RETRY_WAIT),
        (E.DEFERRED, {"action": Action.WITHDRAW}, S.RETRY_WAIT),
        (E.DEFERRED, {"action": Action.POLL}, S.PUBLISHING),
        (E.LEASE_EXPIRED, {"action": Action.DELIVER}, S.UNKNOWN),
        (E.LEASE_EXPIRED, {"action": Action.RECONCILE}, S.UNKNOWN),
        (E.LEASE_EXPIRED, {"action": Action.POLL}, S.PUBLISHING),
        (E.LEASE_EXPIRED, {"action": Action.WITHDRAW}, S.PENDING),
        (E.LEASE_EXPIRED, {"action": "deliver"}, S.UNKNOWN),
        (E.RELEASED, {}, S.PENDING),
        (E.RELEASED, {"claimed_from": "retry-wait"}, S.RETRY_WAIT),
        (E.RELEASED, {"claimed_from": "unknown"}, S.UNKNOWN),
        (E.RELEASED, {"claimed_from": "publishing"}, S.PUBLISHING),
        (E.PLANNED, {}, S.PENDING),
        (E.CLAIMED, {}, S.IN_FLIGHT),
        (E.FAILED, {"action": Action.POLL}, S.FAILED),
        (E.OUTCOME_UNKNOWN, {}, S.UNKNOWN),
        (E.RECONCILED_ABSENT, {}, S.PENDING),
        (E.REQUEUED, {}, S.PENDING),
        (E.SUPERSEDED, {}, S.PENDING),
        (E.WITHDRAW_REQUESTED, {}, S.PENDING),
        (E.CANCELLED, {}, S.WITHDRAWN),
        (E.WITHDRAWN, {"action": Action.WITHDRAW}, S.WITHDRAWN),
        (E.CONFIRMED, {}, S.DELIVERED),
        (E.TAKEN_DOWN, {}, S.WITHDRAWN),
    ],
)
def test_target(event, kwargs, expected):
    assert sm.target(event, **kwargs) == expected


def test_target_of_an_in_flight_end_is_allowed_for_everything_core_passes():
    """What an in-flight row's end leads to, for every action, receipt status a success
    may carry (retry.decide only passes statuses in DONE) and state a claim came from.
    Only queued rows are claimed ahead of their attempt, so only they are released (a
    lookup or a poll given back is refused: test_a_claim_to_settle_a_row_cannot_be_released)."""
    claimed_from = [s for s in State if (s, E.CLAIMED) in TRANSITIONS]
    assert set(QUEUED) < set(claimed_from)
    for event, action in itertools.product(Event, Action):
        allowed_targets = TRANSITIONS.get((S.IN_FLIGHT, event))
        if allowed_targets is None or event is E.WITHDRAW_REQUESTED:
            continue
        sources = sorted(QUEUED) if event is E.RELEASED else claimed_from
        for status, source in itertools.product([None, *sorted(DONE)], [None, *sources]):
            got = sm.target(event, action=action, receipt_status=status, claimed_from=source)
            assert got in allowed_targets, (event, action, status, source, got)


@pytest.mark.parametrize(
    ("state", "intent", "action", "edition", "latest", "delivered", "expected"),
    [
        # Nothing to do.
        ("pending", "deliver", "deliver", 1, 1, None, None),
        ("delivered", "deliver", "deliver", 2, 2, 2, None),
        ("in-flight", "withdraw", "deliver", 1, 2, None, None),
        ("withdrawn", "withdraw", "withdraw", 1, 1, 1, None),
        # The newest edition wins: settled older editions are superseded...
        ("pending", "deliver", "deliver", 1, 2, None, E.SUPERSEDED),
        ("retry-wait", "deliver", "deliver", 1, 2, None, E.SUPERSEDED),
        ("failed", "deliver", "poll", 1, 2, 1, E.SUPERSEDED),
        ("delivered", "deliver", "deliver", 1, 2, 1, E.SUPERSEDED),
        ("awaiting-confirmation", "deliver", "deliver", 1, 3, 1, E.SUPERSEDED),
        # ...but open fates settle first.
        ("unknown", "deliver", "deliver", 1, 2, None, None),
        ("publishing", "deliver", "poll", 1, 2, 1, None),
        ("in-flight", "deliver", "deliver", 1, 2, None, None),
        # Withdrawal wins: cancel what never went out, take down the rest.
        ("pending", "withdraw", "deliver", 1, 1, None, E.CANCELLED),
        ("retry-wait", "withdraw", "deliver", 1, 1, None, E.CANCELLED),
        ("failed", "withdraw", "deliver", 1, 1, None, E.CANCELLED),
        ("pending", "withdraw", "deliver", 2, 2, 1, E.WITHDRAW_REQUESTED),
        ("unknown", "withdraw", "deliver", 1, 1, None, E.WITHDRAW_REQUESTED),
        ("unknown", "withdraw", "reconcile", 1, 1, None, E.WITHDRAW_REQUESTED),
        ("delivered", "withdraw", "deliver", 1, 1, 1, E.WITHDRAW_REQUESTED),
        ("publishing", "withdraw", "poll", 1, 1, 1, E.WITHDRAW_REQUESTED),
        ("awaiting-confirmation", "withdraw", "deliver", 1, 1, 1, E.WITHDRAW_REQUESTED),
        # Withdrawal beats the newest edition.
        ("delivered", "withdraw", "deliver", 1, 2, 1, E.WITHDRAW_REQUESTED),
        ("pending", "withdraw", "deliver", 1, 2, None, E.CANCELLED),
        # A take-down is already one.
        ("pending", "withdraw", "withdraw", 1, 1, 1, None),
        ("retry-wait", "withdraw", "withdraw", 1, 1, 1, None),
        ("failed", "withdraw", "withdraw", 1, 1, 1, None),
    ],
)
def test_follow_on(state, intent, action, edition, latest, delivered, expected):
    got = sm.follow_on(
        state,
        intent=intent,
        action=action,
        edition=edition,
        latest_edition=latest,
        delivered_edition=delivered,
    )
    assert got == expected
    # The default is "no send whose answer never came".
    assert got == sm.follow_on(
        state,
        intent=intent,
        action=action,
        edition=edition,
        latest_edition=latest,
        delivered_edition=delivered,
        maybe_delivered=False,
    )


@pytest.mark.parametrize(
    ("state", "intent", "action", "edition", "latest", "delivered", "expected"),
    [
        # A send may have landed (its answer never came): withdrawal takes it down...
        ("pending", "withdraw", "deliver", 1, 1, None, E.WITHDRAW_REQUESTED),
        ("retry-wait", "withdraw", "deliver", 1, 1, None, E.WITHDRAW_REQUESTED),
        ("failed", "withdraw", "deliver", 1, 1, None, E.WITHDRAW_REQUESTED),
        ("pending", "withdraw", "deliver", 1, 2, None, E.WITHDRAW_REQUESTED),
        ("unknown", "withdraw", "deliver", 1, 1, None, E.WITHDRAW_REQUESTED),
        # ...and changes nothing else.
        ("pending", "withdraw", "withdraw", 1, 1, None, None),
        ("in-flight", "withdraw", "deliver", 1, 1, None, None),
        ("withdrawn", "withdraw", "withdraw", 1, 1, None, None),
        ("pending", "deliver", "deliver", 1, 1, None, None),
        ("retry-wait", "deliver", "deliver", 1, 2, None, E.SUPERSEDED),
        ("failed", "deliver", "deliver", 1, 2, None, E.SUPERSEDED),
        ("unknown", "deliver", "deliver", 1, 2, None, None),
    ],
)
def test_follow_on_when_a_send_may_have_landed(
    state, intent, action, edition, latest, delivered, expected
):
    got = sm.follow_on(
        state,
        intent=intent,
        action=action,
        edition=edition,
        latest_edition=latest,
        delivered_edition=delivered,
        maybe_delivered=True,
    )
    assert got == expected


FOLLOW_ON_SPACE = (State, Intent, Action, [(1, 1), (1, 2), (2, 2)], [None, 1], [False, True])


def test_every_follow_on_move_is_in_the_table():
    for state, intent, action, (edition, latest), delivered, maybe in itertools.product(
        *FOLLOW_ON_SPACE
    ):
        event = sm.follow_on(
            state,
            intent=intent,
            action=action,
            edition=edition,
            latest_edition=latest,
            delivered_edition=delivered,
            maybe_delivered=maybe,
        )
        if event is None:
            continue
        assert sm.target(event) in TRANSITIONS[(state, event)], (state, event)
        if event is E.SUPERSEDED:
            assert state in SUPERSEDABLE and intent == Intent.DELIVER and latest > edition
        if event is E.CANCELLED:
            assert delivered is None and not maybe and state in (*QUEUED, S.FAILED)


def test_follow_on_reaches_a_fixed_point():
    """After a follow-on move, the row needs no further one (the ledger applies them
    recursively; a cycle would never end)."""
    for state, intent, action, (edition, latest), delivered, maybe in itertools.product(
        *FOLLOW_ON_SPACE
    ):
        facts = {"state": state, "action": action, "edition": edition}
        for _ in range(3):
            event = sm.follow_on(
                facts["state"],
                intent=intent,
                action=facts["action"],
                edition=facts["edition"],
                latest_edition=latest,
                delivered_edition=delivered,
                maybe_delivered=maybe,
            )
            if event is None:
                break
            facts["state"] = sm.target(event)
            if event is E.SUPERSEDED:  # as SQLiteLedger._follow_on sets it
                facts.update(edition=latest, action=Action.DELIVER)
            if event is E.WITHDRAW_REQUESTED:
                facts["action"] = Action.WITHDRAW
        else:
            pytest.fail(f"follow-on moves never end from {state}/{intent}/{action}/{maybe}")


def test_markdown_table_lists_every_transition():
    """Every pair once, in a fixed order: rows by the state before (a new row first)
    then the event, targets within a row, each in the order the enums declare them."""
    table = sm.markdown_table()
    lines = table.splitlines()
    assert lines[:2] == ["| from | event | to |", "|---|---|---|"]
    assert len(lines) == 2 + len(TRANSITIONS)
    states, events = list(State), list(Event)
    expected = []
    for (before, event), targets in sorted(
        TRANSITIONS.items(),
        key=lambda kv: (-1 if kv[0][0] is None else states.index(kv[0][0]), events.index(kv[0][1])),
    ):
        first = f"`{before}`" if before else "(new row)"
        to = ", ".join(f"`{t}`" for t in sorted(targets, key=states.index))
        expected.append(f"| {first} | {event} | {to} |")
    assert lines[2:] == expected
    assert sm.markdown_table() == table


def test_the_table_covers_every_state_and_event():
    assert {event for _, event in TRANSITIONS} == set(Event)
    reached = {after for targets in TRANSITIONS.values() for after in targets}
    assert reached == set(State)
    # withdrawn is final; every other state has a way out.
    assert not [key for key in TRANSITIONS if key[0] == S.WITHDRAWN]
    for state in set(State) - {S.WITHDRAWN}:
        assert [key for key in TRANSITIONS if key[0] == state], state
