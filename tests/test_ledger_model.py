"""A model-based (hypothesis stateful) test of the ledger's state machine, on both
backends.

A :class:`~hypothesis.stateful.RuleBasedStateMachine` drives a real ``SQLiteLedger``
on a temporary file (and, with fewer examples, a real ``PostgresLedger`` on a schema of
its own: the same mixins, so the model checks what differs, the SQL and the locking) through the calls core makes (ingest, due, claim, claim_many,
finish, finish_many, release, save_checkpoint, expire_leases, requeue,
request_withdraw, and settle.requeue_resendable) on a small universe: three items, one channel ``c``, two worker processes whose pid changes when
they crash. Core, not the ledger, decides which event ends an action; the machine
draws the events core can produce for each action and channel guarantee (see
:func:`gongkai.retry.decide`). It keeps a model of what may have been *sent* to the
remote and checks the ledger's invariants (DESIGN.md, "Ledger") after every step.

Every claim carries its own lease token (``owner#serial``); the machine finishes,
releases and checkpoints a claim with that token, and checks that a late finish or
release of a lost claim changes nothing, even when the same worker holds the row again.

The machine runs on three channel set-ups, modelled by the :class:`Capabilities`
passed to ``ledger.due()``:

* ``none`` guarantee, no reconcile: ``Capabilities(deliver={"c"})``;
* ``none`` guarantee with reconcile (and poll);
* resend-safe guarantee (``upsert``) (and poll), no reconcile: ``due()`` never lists its
  unknown outcomes; a run's start re-queues them (rule ``settle``, which calls
  :func:`gongkai.settle.requeue_resendable`), and the state machine then supersedes the
  row if a newer edition came meanwhile.

Failures print the shortest sequence of steps hypothesis found (and a
``@reproduce_failure`` blob); no example database is written.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from gongkai.channel import RESEND_SAFE, Receipt
from gongkai.config import RetryPolicy
from gongkai.errors import (
    AuthError,
    ChannelPaused,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
)
from gongkai.ledger import (
    AttemptRecord,
    Capabilities,
    DeliveryRow,
    Event,
    IllegalTransition,
    IngestRecord,
    Ledger,
    SQLiteLedger,
    State,
    Step,
)
from gongkai.ledger.select import open_ledger
from gongkai.ledger.states import (
    QUEUED,
    SUPERSEDABLE,
    TRANSITIONS,
    Action,
    Intent,
)
from gongkai.retry import decide
from gongkai.settle import requeue_resendable
from support.pg import BACKENDS, empty_ledger, fresh_schema

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
LEASE = timedelta(minutes=15)
ITEMS = ("a", "b", "x")
CH = "c"
WORKERS = ("a", "b")  # owner strings are host:<pid>:<worker>; a crash changes the pid
# (a claim's lease token is the owner string plus "#<serial>")
CHANNEL = frozenset({CH})
DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=10),
    timedelta(minutes=20),
    timedelta(hours=2),
    timedelta(days=1),
    timedelta(days=3),
)
EMBARGOES = (None, None, timedelta(minutes=30), timedelta(days=2))
S, E = State, Event

# --- the state graph, for "is this reachable at all" checks --------------------------------

_GRAPH: dict[State | None, set[State]] = {}
for (_before, _event), _targets in TRANSITIONS.items():
    _GRAPH.setdefault(_before, set()).update(_targets)


def _reachable(start: State | None) -> set[State]:
    """States reachable from ``start`` in one or more moves of the table."""
    seen: set[State] = set()
    todo = list(_GRAPH.get(start, ()))
    while todo:
        state = todo.pop()
        if state not in seen:
            seen.add(state)
            todo.extend(_GRAPH.get(state, ()))
    return seen


REACHABLE = {start: _reachable(start) for start in (None, *State)}
STATE_NAMES = frozenset(str(state) for state in State)


# --- what core can answer to each action ----------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One way an action can end, as core would finish it. ``reach`` says the attempt
    may have put the item on the remote (a success, or an unknown outcome);
    ``uncertain`` is what retry.decide sets when the request may have reached the
    remote although the attempt did not succeed (core passes it on in the Step)."""

    label: str
    event: Event
    status: str | None = None
    delay: timedelta | None = None
    reach: bool = False
    uncertain: bool = False

    def step(self, action: str, now: datetime) -> Step:
        receipt = None if self.status is None else {"status": self.status, "external_id": "x1"}
        return Step(
            self.event,
            action=action,
            receipt=receipt,
            error=None if self.event in (E.SUCCEEDED, E.WITHDRAWN) else self.label,
            next_attempt_at=now + self.delay if self.delay else None,
            started_at=now,
            uncertain=self.uncertain,
        )


HOUR = timedelta(hours=1)
DONE_STATUSES = ("delivered", "publishing", "awaiting-confirmation")


def outcomes(action: str, resend_safe: bool) -> list[Outcome]:
    if action == Action.DELIVER:
        found = [Outcome(f"deliver:{s}", E.SUCCEEDED, s, reach=True) for s in DONE_STATUSES]
        found += [
            Outcome("deliver:transient", E.DEFERRED, delay=HOUR),
            Outcome("deliver:permanent", E.FAILED),
        ]
        if resend_safe:
            # decide() folds an unknown outcome into a retry on a resend-safe channel.
            found += [
                Outcome(
                    "deliver:unknown->deferred", E.DEFERRED, delay=HOUR, reach=True, uncertain=True
                ),
                Outcome(
                    "deliver:unknown->failed(schedule used up)",
                    E.FAILED,
                    reach=True,
                    uncertain=True,
                ),
            ]
        else:
            found.append(Outcome("deliver:unknown", E.OUTCOME_UNKNOWN, reach=True, uncertain=True))
        return found
    if action == Action.WITHDRAW:
        return [
            Outcome("withdraw:withdrawn", E.WITHDRAWN, "withdrawn"),
            Outcome("withdraw:deferred", E.DEFERRED, delay=HOUR),
            Outcome("withdraw:failed", E.FAILED),
        ]
    if action == Action.RECONCILE:
        found = [Outcome(f"reconcile:found-{s}", E.RECONCILED_FOUND, s) for s in DONE_STATUSES]
        return [
            *found,
            Outcome("reconcile:absent", E.RECONCILED_ABSENT),
            Outcome("reconcile:unknown", E.OUTCOME_UNKNOWN),
        ]
    assert action == Action.POLL
    return [
        Outcome("poll:delivered", E.SUCCEEDED, "delivered"),
        Outcome("poll:awaiting-confirmation", E.SUCCEEDED, "awaiting-confirmation"),
        Outcome("poll:still-publishing", E.DEFERRED, "publishing"),
        Outcome("poll:failed", E.FAILED),
    ]


# --- the model ---------------------------------------------------------------------------------


@dataclass
class Claim:
    item: str
    owner: str  # the claim's lease token, as claim() returned it
    action: str
    edition: int
    claimed_from: str
    lease_until: datetime
    after_withdraw: bool
    row: DeliveryRow  # the row as claimed, what release() takes


@dataclass(frozen=True)
class Send:
    """A delivery that went (or may have gone) to the remote."""

    item: str
    edition: int
    certain: bool  # finished; False: the worker crashed mid-call (possible send)
    claimed_after_withdraw: bool


@dataclass(frozen=True)
class Move:
    item: str
    before: str | None
    event: Event
    after: State


@dataclass
class StepRecord:
    """What the rule of the current step did, for the invariants to check."""

    name: str = "init"
    claims: list[tuple[DeliveryRow, DeliveryRow]] = field(default_factory=list)
    finished: dict[str, Event] = field(default_factory=dict)
    released: dict[str, str] = field(default_factory=dict)
    extra_log: Counter = field(default_factory=Counter)
    settled: set[str] = field(default_factory=set)  # unknown rows a settle re-queued


def record(item_id: str, digest: str, not_before: datetime | None = None) -> IngestRecord:
    return IngestRecord(
        item_id=item_id,
        content_hash=digest,
        payload={"id": item_id, "hash": digest},
        catalog="x",
        title="标题",
        channels=(CH,),
        not_before=not_before,
    )


class LedgerMachine(RuleBasedStateMachine):
    """The ledger against a model of the remote. Subclasses set the channel set-up."""

    CAN: Capabilities = Capabilities(deliver=CHANNEL)
    RESEND_SAFE = False

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="gongkai-model-")
        self.ledger = self.open_ledger()
        # Every row write goes through _move (follow-on moves call it again): record
        # each move so the invariants can check it against the table. A guarded move
        # (facts=None, expect=...) takes its before-state from ``expect`` and returns
        # None when the row had moved on: then nothing moved.
        self.moves: list[Move] = []
        real_move = self.ledger._move

        def spy(db, item_id, channel, facts, event, after, now, **kw):
            before = facts.state if facts is not None else kw["expect"]["state"]
            state = None if before is None else State(before)
            move = Move(item_id, state, Event(event), State(after))
            self.moves.append(move)
            at = len(self.moves) - 1
            try:
                moved = real_move(db, item_id, channel, facts, event, after, now, **kw)
            except BaseException:
                del self.moves[at:]
                raise
            if moved is None:
                assert self.moves[at:] == [move], "a move that did not happen made others"
                del self.moves[at:]
            return moved

        self.ledger._move = spy

        self.now = T0
        self.hashes: dict[str, list[str]] = {item: [] for item in ITEMS}
        self.withdrawn: set[str] = set()
        self.pids = {worker: number for number, worker in enumerate(WORKERS, 1)}
        self.next_pid = len(WORKERS) + 1
        self.claims: dict[str, Claim] = {}
        self.tokens: set[str] = set()  # every lease token a claim was given
        self.zombies: list[Claim] = []  # claims whose worker was presumed dead
        self.sends: list[Send] = []
        # A send's outcome was unknown (the channel said so, or its worker died, or the
        # row went unknown); not settled since by what the set-up allows: an operator's
        # requeue or a reconcile's answer, or on a resend-safe channel a run's settle.
        self.unsettled: set[str] = set()
        self.maybe_out: dict[str, bool] = dict.fromkeys(ITEMS, False)
        self.snapshot: list[DeliveryRow] = []  # a due() listing, claimed later
        self.lost_log: dict[str, set[int]] = {item: set() for item in ITEMS}
        self.rows_now: dict[str, DeliveryRow] = {}
        self.logs_now: dict[str, list[AttemptRecord]] = {item: [] for item in ITEMS}
        self.seen_at = -1
        self.counter = 0
        self._begin("init")

    def open_ledger(self) -> Ledger:
        return SQLiteLedger(Path(self.dir) / "ledger.sqlite3")

    def teardown(self) -> None:
        self.ledger.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- helpers -------------------------------------------------------------------------------

    def owner(self, worker: str) -> str:
        return f"host:{self.pids[worker]}:{worker}"

    def latest(self, item: str) -> int:
        return len(self.hashes[item])

    def current(self) -> tuple[dict[str, DeliveryRow], dict[str, list[AttemptRecord]]]:
        """The ledger as it is now, read once per step (after the rule: rules use
        ``before_rows``)."""
        if self.seen_at != self.counter:
            self.rows_now = {row.item_id: row for row in self.ledger.rows()}
            self.logs_now = {item: self.ledger.attempts(item) for item in ITEMS}
            self.seen_at = self.counter
        return self.rows_now, self.logs_now

    def _begin(self, name: str) -> None:
        """Start a step: remember the ledger as it was before the rule acts."""
        rows, logs = self.current()
        for row in rows.values():
            if row.state == S.UNKNOWN:
                self.unsettled.add(row.item_id)
        # (A row that went unknown during the step and was re-queued by the settle that
        # ends it is settled.)
        self.unsettled.update(
            m.item for m in self.moves if m.after == S.UNKNOWN and m.item not in self.did.settled
        )
        self.before_rows, self.before_logs = rows, logs
        self.moves.clear()
        self.did = StepRecord(name)
        self.counter += 1

    def _claimed(self, got: list[DeliveryRow], worker: str) -> None:
        for row in got:
            before = self.before_rows[row.item_id]
            assert row.item_id not in self.claims, f"{row.item_id} claimed twice"
            # Each claim carries a lease token of its own: the owner plus a serial.
            token = row.lease_owner or ""
            owner, mark, serial = token.rpartition("#")
            assert (owner, mark) == (self.owner(worker), "#") and serial.isdigit(), token
            assert token not in self.tokens, f"lease token {token} given twice"
            self.tokens.add(token)
            self.claims[row.item_id] = Claim(
                row.item_id,
                token,
                row.action,
                row.edition,
                before.state,
                self.now + LEASE,
                row.item_id in self.withdrawn,
                row,
            )
            self.did.claims.append((row, before))

    def _finished(self, claim: Claim, outcome: Outcome) -> None:
        self.did.finished[claim.item] = outcome.event
        if claim.action == Action.DELIVER:
            self.sends.append(Send(claim.item, claim.edition, True, claim.after_withdraw))
            if outcome.reach:
                self.maybe_out[claim.item] = True
            if outcome.event is E.OUTCOME_UNKNOWN:
                self.unsettled.add(claim.item)
        elif claim.action == Action.RECONCILE and outcome.event in (
            E.RECONCILED_FOUND,
            E.RECONCILED_ABSENT,
        ):
            self.unsettled.discard(claim.item)
            if outcome.event is E.RECONCILED_ABSENT:
                self._nothing_out(claim.item)
        elif claim.action == Action.WITHDRAW and outcome.event is E.WITHDRAWN:
            self._nothing_out(claim.item)  # taken down

    def _nothing_out(self, item: str) -> None:
        self.maybe_out[item] = False

    def _reaped(self, expired: list[DeliveryRow], alive) -> None:
        expected = {
            item
            for item, claim in self.claims.items()
            if claim.lease_until <= self.now or not alive(claim.owner)
        }
        assert {row.item_id for row in expired} == expected
        for item in sorted(expected):
            claim = self.claims.pop(item)
            self.zombies.append(claim)
            if claim.action == Action.DELIVER:
                # The worker may have sent it before it died: an unknown outcome, whatever
                # state the ledger shows.
                self.sends.append(Send(item, claim.edition, False, claim.after_withdraw))
                self.maybe_out[item] = True
                self.unsettled.add(item)

    # --- rules: items and editions ------------------------------------------------------------

    @rule(item=st.sampled_from(ITEMS), embargo=st.sampled_from(EMBARGOES))
    def ingest_new_edition(self, item, embargo):
        self._begin("ingest_new_edition")
        digest = f"{item}-h{self.latest(item) + 1}"
        not_before = self.now + embargo if embargo else None
        [result] = self.ledger.ingest([record(item, digest, not_before)], self.now)
        if item in self.withdrawn:
            assert result.status == "withdrawn" and not result.plans
            return
        self.hashes[item].append(digest)
        assert result.status == ("new" if self.latest(item) == 1 else "changed")
        assert result.edition == result.latest_edition == self.latest(item)

    @precondition(lambda self: any(self.hashes.values()))
    @rule(data=st.data(), embargo=st.sampled_from(EMBARGOES))
    def ingest_same_content(self, data, embargo):
        self._begin("ingest_same_content")
        item = data.draw(st.sampled_from([i for i in ITEMS if self.hashes[i]]), label="item")
        not_before = self.now + embargo if embargo else None
        digest = self.hashes[item][-1]
        [result] = self.ledger.ingest([record(item, digest, not_before)], self.now)
        if item in self.withdrawn:
            assert result.status == "withdrawn"
        else:
            assert (result.status, result.edition) == ("unchanged", self.latest(item))

    @precondition(lambda self: any(len(h) > 1 for h in self.hashes.values()))
    @rule(data=st.data())
    def ingest_older_content(self, data):
        self._begin("ingest_older_content")
        item = data.draw(st.sampled_from([i for i in ITEMS if len(self.hashes[i]) > 1]))
        edition = data.draw(st.integers(1, self.latest(item) - 1), label="edition")
        [result] = self.ledger.ingest([record(item, self.hashes[item][edition - 1])], self.now)
        if item in self.withdrawn:
            assert result.status == "withdrawn"
        else:
            assert (result.status, result.edition) == ("stale", edition)
            assert not result.plans

    # --- rules: claiming ------------------------------------------------------------------------

    def _due(self) -> list[DeliveryRow]:
        due = self.ledger.due(self.now, self.CAN)
        for row in due:  # what a run would be handed: withdrawal wins here already
            if row.item_id in self.withdrawn:
                assert row.action == Action.WITHDRAW, row
            if row.state == S.UNKNOWN:
                # Only a lookup starts from unknown; a resend waits for a requeue.
                assert row.action == Action.RECONCILE and CH in self.CAN.reconcile, row
        return due

    def _something_due(self) -> bool:
        return bool(self._due())

    @precondition(_something_due)
    @rule(worker=st.sampled_from(WORKERS), data=st.data())
    def claim_one(self, worker, data):
        self._begin("claim_one")
        due = self._due()
        pick = data.draw(st.sampled_from([r.item_id for r in due]), label="item")
        [row] = [r for r in due if r.item_id == pick]
        got = self.ledger.claim(row, self.owner(worker), self.now, self.now + LEASE)
        assert got is not None, "a fresh due row could not be claimed"
        self._claimed([got], worker)

    @precondition(_something_due)
    @rule(worker=st.sampled_from(WORKERS))
    def claim_many_due(self, worker):
        self._begin("claim_many_due")
        due = self._due()
        got = self.ledger.claim_many(due, self.owner(worker), self.now, self.now + LEASE)
        assert len(got) == len(due), "fresh due rows could not be claimed"
        self._claimed(got, worker)

    @precondition(_something_due)
    @rule()
    def list_due(self):
        """A run lists its work; it claims the rows later (claim_stale_*)."""
        self._begin("list_due")
        self.snapshot = self._due()

    @precondition(lambda self: self.snapshot)
    @rule(worker=st.sampled_from(WORKERS), data=st.data())
    def claim_stale_one(self, worker, data):
        self._begin("claim_stale_one")
        pick = data.draw(st.sampled_from([r.item_id for r in self.snapshot]), label="item")
        [row] = [r for r in self.snapshot if r.item_id == pick]
        got = self.ledger.claim(row, self.owner(worker), self.now, self.now + LEASE)
        self._claimed([got] if got else [], worker)

    @precondition(lambda self: self.snapshot)
    @rule(worker=st.sampled_from(WORKERS))
    def claim_stale_many(self, worker):
        self._begin("claim_stale_many")
        got = self.ledger.claim_many(self.snapshot, self.owner(worker), self.now, self.now + LEASE)
        self._claimed(got, worker)

    # --- rules: ending claims -------------------------------------------------------------------

    def _draw_outcome(self, data, claim: Claim) -> Outcome:
        return data.draw(st.sampled_from(outcomes(claim.action, self.RESEND_SAFE)), label="end")

    @precondition(lambda self: self.claims)
    @rule(data=st.data())
    def finish(self, data):
        self._begin("finish")
        item = data.draw(st.sampled_from(sorted(self.claims)), label="item")
        claim = self.claims.pop(item)
        outcome = self._draw_outcome(data, claim)
        got = self.ledger.finish(
            item, CH, claim.owner, claim.edition, outcome.step(claim.action, self.now), self.now
        )
        assert got is not None, "the lease holder's finish was refused"
        self._finished(claim, outcome)

    @precondition(lambda self: len(self.claims) > 1)
    @rule(data=st.data())
    def finish_many(self, data):
        self._begin("finish_many")
        items = data.draw(
            st.lists(st.sampled_from(sorted(self.claims)), min_size=2, unique=True), label="items"
        )
        ends = [(self.claims.pop(item), None) for item in items]
        ends = [(claim, self._draw_outcome(data, claim)) for claim, _ in ends]
        got = self.ledger.finish_many(
            [
                (c.item, CH, c.owner, c.edition, o.step(c.action, self.now), self.now)
                for c, o in ends
            ]
        )
        assert None not in got, "the lease holder's finish was refused"
        for claim, outcome in ends:
            self._finished(claim, outcome)

    def _queued_claims(self) -> list[str]:
        # Only queued rows are claimed ahead of their attempt (a batch claim), so only
        # they are ever given back untouched.
        return sorted(i for i, c in self.claims.items() if c.claimed_from in QUEUED)

    @precondition(_queued_claims)
    @rule(data=st.data())
    def release(self, data):
        """Give back claims never attempted; a claim named by another token (another
        owner's, or another claim of the same owner) is ignored."""
        self._begin("release")
        items = data.draw(st.lists(st.sampled_from(self._queued_claims()), min_size=1, unique=True))
        given = []
        for item in items:
            claim = self.claims[item]
            forged = data.draw(
                st.sampled_from(
                    [
                        None,
                        f"{claim.owner.rpartition('#')[0]}#0",  # the same owner, no such claim
                        *(f"{self.owner(w)}#{claim.owner.rpartition('#')[2]}" for w in WORKERS),
                    ]
                ),
                label=f"token for {item}",
            )
            if forged == claim.owner:
                forged = None
            given.append((item, forged))
        self.ledger.release(
            [
                self.claims[item].row
                if forged is None
                else replace(self.claims[item].row, lease_owner=forged)
                for item, forged in given
            ],
            self.now,
        )
        for item, forged in given:
            if forged is None:
                self.did.released[item] = self.claims.pop(item).claimed_from

    @precondition(lambda self: len(self._queued_claims()) < len(self.claims))
    @rule(data=st.data(), with_queued=st.booleans())
    def release_a_settling_claim(self, data, with_queued):
        """A lookup or a poll is claimed when it starts, never ahead of it, so core never
        gives one back: if asked, the table refuses it and the whole release (with
        any queued claim in the same call) changes nothing."""
        self._begin("release_a_settling_claim")
        settling = [i for i in sorted(self.claims) if i not in self._queued_claims()]
        item = data.draw(st.sampled_from(settling), label="item")
        claims = [self.claims[item].row]
        if with_queued and self._queued_claims():
            claims.insert(0, self.claims[self._queued_claims()[0]].row)
        with pytest.raises(IllegalTransition):
            self.ledger.release(claims, self.now)
        self.moves.clear()  # rolled back: the invariants check that nothing changed

    @precondition(lambda self: self.claims)
    @rule(worker=st.sampled_from(WORKERS))
    def crash_worker(self, worker):
        """The worker's process dies; the next run sees it gone and expires its leases."""
        self._begin("crash_worker")
        victim = self.owner(worker)
        self.pids[worker] = self.next_pid  # it restarts as a new process
        self.next_pid += 1

        def alive(token: str) -> bool:
            # owner_alive gets the claim's token and judges it by the owner it starts with
            return token.rpartition("#")[0] != victim

        self._reaped(self.ledger.expire_leases(self.now, owner_alive=alive), alive)

    @rule(delay=st.sampled_from(DELAYS), reap=st.booleans())
    def advance_clock(self, delay, reap):
        """Time passes; maybe a run starts: it expires leases that ran out, then settles
        what the channel's set-up lets it settle at once."""
        self._begin("advance_clock")
        self.now += delay
        if reap:

            def alive(owner: str) -> bool:
                return True

            self._reaped(self.ledger.expire_leases(self.now, owner_alive=alive), alive)
            self._run_starts()

    def _run_starts(self) -> None:
        """What a run does at its start after expiring leases (see ResendSafe)."""

    @precondition(lambda self: self.zombies)
    @rule(data=st.data())
    def zombie_finishes(self, data):
        """A worker presumed dead was only slow: its late finish must change nothing,
        even when its owner holds the row again (a newer claim has a token of its own)."""
        self._begin("zombie_finishes")
        claim = data.draw(st.sampled_from(self.zombies), label="zombie")
        self.zombies.remove(claim)
        outcome = self._draw_outcome(data, claim)
        got = self.ledger.finish(
            claim.item,
            CH,
            claim.owner,
            claim.edition,
            outcome.step(claim.action, self.now),
            self.now,
        )
        assert got is None, "a finish after the lease was lost was accepted"
        self.did.extra_log[claim.item] += 1  # logged anyway
        self.lost_log[claim.item].add(len(self.before_logs[claim.item]))

    @precondition(lambda self: self.zombies)
    @rule(data=st.data())
    def zombie_releases(self, data):
        """A late release by a worker presumed dead must change nothing either."""
        self._begin("zombie_releases")
        claim = data.draw(st.sampled_from(self.zombies), label="zombie")
        self.ledger.release([claim.row], self.now)

    @precondition(lambda self: [c for c in self.claims.values() if c.action == Action.DELIVER])
    @rule(data=st.data(), page=st.integers(1, 3))
    def save_checkpoint(self, data, page):
        """A delivery in progress saves its checkpoint under its claim's token."""
        self._begin("save_checkpoint")
        delivering = sorted(i for i, c in self.claims.items() if c.action == Action.DELIVER)
        claim = self.claims[data.draw(st.sampled_from(delivering), label="item")]
        self.ledger.save_checkpoint(claim.item, CH, claim.owner, {"page": page})
        assert self.ledger.row(claim.item, CH).checkpoint == {"page": page}

    @precondition(lambda self: self.zombies)
    @rule(data=st.data())
    def zombie_saves_a_checkpoint(self, data):
        """A late checkpoint of a lost claim is not written to the row."""
        self._begin("zombie_saves_a_checkpoint")
        claim = data.draw(st.sampled_from(self.zombies), label="zombie")
        before = self.ledger.row(claim.item, CH)
        self.ledger.save_checkpoint(claim.item, CH, claim.owner, {"zombie": claim.owner})
        assert self.ledger.row(claim.item, CH).checkpoint == before.checkpoint

    # --- rules: the operator ----------------------------------------------------------------------

    @staticmethod
    def _operator_work(rows: dict[str, DeliveryRow]) -> list[str]:
        return [item for item, row in rows.items() if row.state in (S.FAILED, S.UNKNOWN)]

    @precondition(lambda self: self._operator_work(self.current()[0]))
    @rule(
        data=st.data(),
        states=st.sampled_from([("failed",), ("unknown",), ("failed", "unknown")]),
    )
    def requeue(self, data, states):
        """An operator's `gongkai retry` (in the wrong state, it does nothing)."""
        self._begin("requeue")
        item = data.draw(st.sampled_from(self._operator_work(self.before_rows)), label="item")
        before = self.before_rows.get(item)
        done = self.ledger.requeue(item, CH, states, self.now, "operator retry")
        assert done == (before is not None and before.state in states)
        if done and before.state == S.UNKNOWN:
            # `gongkai retry --unknown`: the operator checked the remote has nothing.
            self.unsettled.discard(item)
            self._nothing_out(item)

    def _withdrawable(self) -> list[str]:
        return [i for i in ITEMS if self.hashes[i] and i not in self.withdrawn]

    @precondition(_withdrawable)
    @rule(data=st.data(), again=st.booleans())
    def request_withdraw(self, data, again):
        """`gongkai withdraw` (maybe twice: the second changes nothing)."""
        self._begin("request_withdraw")
        item = data.draw(st.sampled_from(self._withdrawable()), label="item")
        before = self.before_rows[item]
        rows = self.ledger.request_withdraw(item, "信息有误", self.now)
        if before.state == S.IN_FLIGHT:
            self.did.extra_log[item] += 1  # the in-flight row logs withdraw-requested
        self.withdrawn.add(item)
        if again:
            log = self.ledger.attempts(item)
            assert self.ledger.request_withdraw(item, "again", self.now) == rows
            assert self.ledger.attempts(item) == log
            assert self.ledger.withdrawal(item) == (self.now, "信息有误")

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def rows_are_well_formed(self):
        """Every row's state is a State; in-flight rows, and only they, have a lease
        owner; editions and hashes match what was ingested; the model's claims are
        exactly the rows in flight."""
        rows, _ = self.current()
        assert set(rows) == {item for item in ITEMS if self.hashes[item]}
        for item, row in rows.items():
            state = State(row.state)
            assert Intent(row.intent) and Action(row.action)
            assert (state == S.IN_FLIGHT) == (row.lease_owner is not None), row
            assert row.latest_edition == self.latest(item), row
            assert 1 <= row.edition <= self.latest(item), row
            assert row.content_hash == self.hashes[item][row.edition - 1], row
            assert row.delivered_edition is None or 1 <= row.delivered_edition <= row.edition
            assert state in REACHABLE[None]
            if item in self.withdrawn:
                assert row.intent == Intent.WITHDRAW, row
        # The model's claims are exactly the rows in flight.
        flying = {item: row for item, row in rows.items() if row.state == S.IN_FLIGHT}
        assert set(flying) == set(self.claims)
        for item, row in flying.items():
            claim = self.claims[item]
            assert (row.lease_owner, row.edition, row.action) == (
                claim.owner,
                claim.edition,
                claim.action,
            )

    @invariant()
    def every_move_follows_the_table(self):
        """Each row's moves in this step chain from its state before the step to its
        state now, each one allowed by TRANSITIONS (claims, which are one UPDATE, are
        checked as prior state --claimed--> in-flight)."""
        rows, _ = self.current()
        claimed = {row.item_id for row, _ in self.did.claims}
        if claimed:
            assert not self.moves, "a claim made other moves"
        for item in ITEMS:
            before = self.before_rows.get(item)
            state: State | None = State(before.state) if before else None
            mine = [m for m in self.moves if m.item == item]
            for move in mine:
                assert move.before == state, (item, move, mine)
                assert move.after in TRANSITIONS.get((state, move.event), ()), (item, move)
                state = move.after
            if item in claimed:
                assert S.IN_FLIGHT in TRANSITIONS[(state, E.CLAIMED)]
                state = S.IN_FLIGHT
            elif before is None and item in rows:
                assert S.PENDING in TRANSITIONS[(None, E.PLANNED)]
                state = S.PENDING
            now = State(rows[item].state) if item in rows else None
            assert now == state, (item, before and before.state, mine, now)
            if item in self.did.finished:
                assert mine and mine[0].before == S.IN_FLIGHT
                assert mine[0].event is self.did.finished[item]
            if item in self.did.released:
                assert mine[0] == Move(item, S.IN_FLIGHT, E.RELEASED, self.did.released[item])

    @invariant()
    def attempt_log_is_append_only_and_agrees_with_the_moves(self):
        """The log only grows and never changes an entry; it grows by one entry per
        move (releases excepted), per lost-lease finish and per withdrawal of an
        in-flight row; consecutive states it records are reachable one from the other."""
        _, logs = self.current()
        for item in ITEMS:
            old, new = self.before_logs[item], logs[item]
            assert new[: len(old)] == old, "the attempt log changed an earlier entry"
            logged = sum(1 for m in self.moves if m.item == item and m.event is not E.RELEASED)
            assert len(new) - len(old) == logged + self.did.extra_log[item], (item, new[len(old) :])
            # Consecutive transitions the log records are consistent with the table.
            # (Claims and releases are not logged: "reachable" rather than "one move".)
            states = [
                State(entry.outcome)
                for index, entry in enumerate(new)
                if index not in self.lost_log[item] and entry.outcome in STATE_NAMES
            ]
            for first, then in zip(states, states[1:], strict=False):
                assert then in REACHABLE[first], (item, first, then)
            assert all(entry.edition <= self.latest(item) for entry in new)

    @invariant()
    def withdrawal_wins(self):
        """After request_withdraw: no claim of the item but a take-down, no send claimed
        after it, its rows only withdrawn, a take-down queued (pending, retry-wait or
        failed with action withdraw) or in flight; and never withdrawn without a
        take-down while a delivery may be out there."""
        rows, _ = self.current()
        for row, _before in self.did.claims:
            if row.item_id in self.withdrawn:
                assert row.action == Action.WITHDRAW, f"withdrawn item claimed to {row.action}"
        assert not [s for s in self.sends if s.claimed_after_withdraw], self.sends
        for item in self.withdrawn:
            row = rows[item]
            if row.state == S.IN_FLIGHT:
                claim = self.claims[item]
                assert claim.action == Action.WITHDRAW or not claim.after_withdraw
            elif row.state != S.WITHDRAWN:
                assert row.state in (S.PENDING, S.RETRY_WAIT, S.FAILED), row
                assert row.action == Action.WITHDRAW, row
        for item, row in rows.items():
            # Cancelled, not taken down, although a send may have reached the remote.
            assert row.state != S.WITHDRAWN or not self.maybe_out[item], (
                f"{item} is withdrawn without a take-down, but a delivery may be out there"
            )

    @invariant()
    def newest_edition_wins(self):
        """No settled row (delivered, awaiting-confirmation, pending, retry-wait, failed)
        of a delivery intent holds an older edition after a step; no claim for delivery
        takes an older edition."""
        rows, _ = self.current()
        for row in rows.values():
            if row.intent == Intent.DELIVER and row.state in SUPERSEDABLE:
                assert row.edition == self.latest(row.item_id), f"older edition left {row}"
        for row, before in self.did.claims:
            if row.action == Action.DELIVER:
                assert row.edition == self.latest(row.item_id), (
                    f"edition {row.edition} of {row.item_id} claimed for delivery from "
                    f"{before.state}, edition {self.latest(row.item_id)} exists"
                )

    @invariant()
    def no_blind_resend_of_an_unknown_outcome(self):
        """A row that went unknown is claimed for delivery again only once it was
        settled the way its set-up allows: on guarantee none, by an operator's requeue
        or a reconcile's answer; on a resend-safe channel, by a run's settle requeue
        (or an operator's). A claim for delivery never starts from unknown; only a
        reconcile-capable channel reconciles."""
        for row, before in self.did.claims:
            if row.action == Action.DELIVER:
                assert row.item_id not in self.unsettled, (
                    f"{row.item_id} went unknown and is delivered again (from {before.state}) "
                    "without a requeue or a reconcile"
                )
                assert before.state != S.UNKNOWN, row
            if row.action == Action.RECONCILE:
                assert CH in self.CAN.reconcile

    @invariant()
    def editions_never_go_back(self):
        """A row's edition and delivered_edition never decrease (nor go back to None)."""
        rows, _ = self.current()
        for item, before in self.before_rows.items():
            row = rows[item]
            assert row.edition >= before.edition
            if before.delivered_edition is not None:
                assert row.delivered_edition is not None
                assert row.delivered_edition >= before.delivered_edition


SETTINGS = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class NoneGuarantee(LedgerMachine):
    """Guarantee ``none``, no reconcile: an unknown outcome waits for the operator."""

    CAN = Capabilities(deliver=CHANNEL)


class NoneGuaranteeReconcile(LedgerMachine):
    """Guarantee ``none`` with reconcile; the channel can also poll remote jobs."""

    CAN = Capabilities(deliver=CHANNEL, reconcile=CHANNEL, poll=CHANNEL)


#: What settle.requeue_resendable reads of an enabled channel: its guarantee, and
#: whether it can look an unknown outcome up.
UPSERT_NO_RECONCILE = {
    CH: SimpleNamespace(
        instance=SimpleNamespace(guarantee="upsert", supports=lambda method: method == "poll")
    )
}


class ResendSafe(LedgerMachine):
    """A resend-safe guarantee (``upsert``), no reconcile; the channel can also poll
    remote jobs. Its unknown outcomes are never due; a run's start re-queues them."""

    CAN = Capabilities(deliver=CHANNEL, poll=CHANNEL)
    RESEND_SAFE = True

    @staticmethod
    def _unknown(rows: dict[str, DeliveryRow]) -> list[str]:
        return sorted(i for i, r in rows.items() if r.state == S.UNKNOWN and r.intent == "deliver")

    @precondition(lambda self: self._unknown(self.current()[0]))
    @rule()
    def settle(self):
        """A run starts (its leases already expired, see advance_clock): core re-queues
        the unknown outcomes of a resend-safe channel that cannot look them up."""
        self._begin("settle")
        self._run_starts()

    def _run_starts(self) -> None:
        """``settle.requeue_resendable``: ``unknown --requeued--> pending``; a newer
        edition then supersedes the row, so the newest edition is what goes out."""
        unknown = self._unknown({row.item_id: row for row in self.ledger.rows()})
        start = len(self.moves)
        requeue_resendable(self.ledger, UPSERT_NO_RECONCILE, lambda: self.now)
        moves = self.moves[start:]
        assert sorted({m.item for m in moves}) == unknown, moves
        rows = {row.item_id: row for row in self.ledger.rows()}
        for item in unknown:
            mine = [m for m in moves if m.item == item]
            assert mine[0] == Move(item, S.UNKNOWN, E.REQUEUED, S.PENDING), mine
            row = rows[item]
            assert (row.state, row.edition, row.action) == (
                S.PENDING,
                self.latest(item),
                Action.DELIVER,
            ), row
            # Settled by requeueing, not by knowing: the send may still have landed.
            self.unsettled.discard(item)
            self.did.settled.add(item)


class OnPostgres:
    """The same machine on a PostgreSQL ledger: a fresh schema per example."""

    def open_ledger(self) -> Ledger:
        self.schema = fresh_schema()
        return open_ledger(self.schema.__enter__())

    def teardown(self) -> None:
        super().teardown()  # type: ignore[misc]
        self.schema.__exit__(None, None, None)


class NoneGuaranteePg(OnPostgres, NoneGuarantee):
    pass


class NoneGuaranteeReconcilePg(OnPostgres, NoneGuaranteeReconcile):
    pass


class ResendSafePg(OnPostgres, ResendSafe):
    pass


#: Fewer examples on PostgreSQL (a schema per example, a round trip per statement):
#: the state machine is the same code; what differs is exercised within a few steps.
PG_SETTINGS = settings(SETTINGS, max_examples=5)

TestNoneGuarantee = NoneGuarantee.TestCase
TestNoneGuaranteeReconcile = NoneGuaranteeReconcile.TestCase
TestResendSafe = ResendSafe.TestCase
TestNoneGuaranteePg = NoneGuaranteePg.TestCase
TestNoneGuaranteeReconcilePg = NoneGuaranteeReconcilePg.TestCase
TestResendSafePg = ResendSafePg.TestCase
TestNoneGuarantee.settings = SETTINGS
TestNoneGuaranteeReconcile.settings = SETTINGS
TestResendSafe.settings = SETTINGS
TestNoneGuaranteePg.settings = PG_SETTINGS
TestNoneGuaranteeReconcilePg.settings = PG_SETTINGS
TestResendSafePg.settings = PG_SETTINGS


# --- the drawn outcomes are the ones core produces ------------------------------------------

ANSWERS = [
    *(Receipt(status=status) for status in ("delivered", "publishing", "awaiting-confirmation")),
    Receipt(status="withdrawn"),
    None,
    "not a receipt",
    TransientError("HTTP 503"),
    RateLimited("quota", retry_after=60),
    AuthError("token refused"),
    ChannelPaused("credentials refused twice"),
    PermanentError("HTTP 400"),
    OutcomeUnknown("read timeout"),
    ValueError("a bug in the channel"),
]


@pytest.mark.parametrize("guarantee", ["none", "upsert"])
@pytest.mark.parametrize("action", list(Action), ids=str)
def test_the_drawn_outcomes_are_what_decide_produces(action, guarantee):
    """The machine draws, per action and guarantee, exactly the events (and receipt
    statuses) retry.decide can give: nothing more, nothing less."""
    drawn = {
        (o.event, o.status if o.event in (E.SUCCEEDED, E.RECONCILED_FOUND) else None)
        for o in outcomes(action, guarantee in RESEND_SAFE)
    }
    produced = set()
    for answer, attempts, sent in itertools.product(ANSWERS, (1, 99), (True, False)):
        decision = decide(
            answer,
            action=action,
            guarantee=guarantee,
            attempts=attempts,
            policy=RetryPolicy(),
            now=T0,
            sent=sent,
        )
        status = decision.receipt.status if decision.receipt else None
        if decision.event not in (E.SUCCEEDED, E.RECONCILED_FOUND):
            status = None
        produced.add((decision.event, status))
    assert produced == drawn


# --- the defects this machine found, each as its shortest sequence of plain ledger calls ------
# (all fixed: they are ordinary regression tests now)

NONE = Capabilities(deliver=CHANNEL)
#: A resend-safe channel without reconcile: its unknown outcomes are not due.
UPSERT = Capabilities(deliver=CHANNEL)


@pytest.fixture(params=BACKENDS)
def ledger(request, tmp_path):
    with empty_ledger(request.param, tmp_path) as db:
        yield db


def _claim(ledger: SQLiteLedger, can: Capabilities, owner: str, now: datetime) -> DeliveryRow:
    [row] = ledger.due(now, can)
    claimed = ledger.claim(row, owner, now, now + LEASE)
    assert claimed is not None and claimed.lease_owner.startswith(f"{owner}#")
    return claimed


def _finish(ledger: SQLiteLedger, claimed: DeliveryRow, step: Step, now: datetime):
    """Finish a claim as core does: with its own lease token and edition."""
    return ledger.finish(claimed.item_id, CH, claimed.lease_owner, claimed.edition, step, now)


def _settle(ledger: SQLiteLedger, now: datetime) -> None:
    """What a run does first on the upsert channel (after expiring leases)."""
    requeue_resendable(ledger, UPSERT_NO_RECONCILE, lambda: now)


def _decided(answer, *, attempts: int = 1) -> Step:
    """The step core finishes a resend-safe (upsert) delivery with, per retry.decide."""
    decision = decide(
        answer,
        action="deliver",
        guarantee="upsert",
        attempts=attempts,
        policy=RetryPolicy(),
        now=T0,
    )
    return Step(
        decision.event,
        error=decision.error,
        next_attempt_at=decision.next_attempt_at,
        uncertain=decision.uncertain,
    )


@pytest.mark.parametrize(
    "path",
    ["unknown-answer-deferred", "unknown-answer-schedule-used-up", "crash-then-resend-fails"],
)
def test_defect_1_withdrawal_takes_down_a_delivery_that_may_be_out_there(ledger, path):
    """Was: on a resend-safe channel an unknown outcome became retry-wait or failed, and
    a withdrawal then cancelled the row as if nothing had reached the remote. Now the
    row remembers that a send may have landed, and withdrawal queues a take-down."""
    ledger.ingest([record("a", "a-h1")], T0)
    claimed = _claim(ledger, UPSERT, "w", T0)
    if path == "crash-then-resend-fails":
        # The worker dies mid-send: unknown. The next run re-queues it (safe on upsert),
        # resends, and gets a 503: retry-wait. The first send may well have landed.
        ledger.expire_leases(T0, owner_alive=lambda owner: False)
        assert ledger.due(T0, UPSERT) == []  # an unknown outcome is not resent as such
        _settle(ledger, T0)
        again = _claim(ledger, UPSERT, "w2", T0)
        assert _finish(ledger, again, _decided(TransientError("HTTP 503")), T0) == "retry-wait"
    else:
        # Read timeout: the request may have reached the remote. decide() folds it into
        # a retry on a resend-safe channel (DEFERRED, or FAILED once the schedule is out),
        # and says so (uncertain), which core passes on in the Step.
        attempts = 1 if path == "unknown-answer-deferred" else 99
        step = _decided(OutcomeUnknown("read timeout"), attempts=attempts)
        assert step.event in (E.DEFERRED, E.FAILED) and step.uncertain
        _finish(ledger, claimed, step, T0)
    assert ledger.row("a", CH).state in (S.RETRY_WAIT, S.FAILED)
    ledger.request_withdraw("a", "信息有误", T0)
    row = ledger.row("a", CH)
    # A take-down is queued (the remote may hold the item), not a cancellation.
    assert (row.state, row.intent, row.action) == ("pending", "withdraw", "withdraw")


def test_defect_1_a_failure_before_anything_was_sent_is_still_cancelled(ledger):
    """The other side of defect 1: a send known not to have landed is cancelled."""
    ledger.ingest([record("a", "a-h1")], T0)
    claimed = _claim(ledger, UPSERT, "w", T0)
    step = _decided(TransientError("HTTP 503"))
    assert not step.uncertain
    _finish(ledger, claimed, step, T0)
    ledger.request_withdraw("a", "信息有误", T0)
    row = ledger.row("a", CH)
    assert (row.state, row.intent) == ("withdrawn", "withdraw")


def test_defect_2_an_unknown_old_edition_is_replaced_by_the_correction(ledger):
    """Was: on a resend-safe channel an unknown outcome of an old edition was resent as
    the old edition after a newer one was ingested. Now the run's start re-queues it
    and the state machine supersedes it: the newest edition goes out."""
    ledger.ingest([record("a", "a-h1")], T0)
    _claim(ledger, UPSERT, "w", T0)
    ledger.expire_leases(T0, owner_alive=lambda owner: False)  # crash mid-send: unknown
    [answer] = ledger.ingest([record("a", "a-h2")], T0)  # the correction
    assert answer.plans == {CH: "waiting"}
    assert ledger.due(T0, UPSERT) == []
    _settle(ledger, T0)
    assert [(a.action, a.edition) for a in ledger.attempts("a")][-2:] == [
        ("requeued", 1),
        ("superseded", 1),
    ]
    claimed = _claim(ledger, UPSERT, "w2", T0)
    assert (claimed.action, claimed.edition, claimed.content_hash) == ("deliver", 2, "a-h2")


def test_defect_3_a_late_finish_cannot_land_on_the_same_owners_new_claim(ledger):
    """Was: finish and release identified a claim by (owner, edition), so a late
    answer from a lost lease landed on the same owner's newer claim of the row. Now
    each claim has a lease token of its own."""
    owner = "host:1:w"
    ledger.ingest([record("a", "a-h1")], T0)
    first = _claim(ledger, NONE, owner, T0)  # a delivery starts; its call hangs
    later = T0 + timedelta(minutes=20)
    ledger.expire_leases(later, owner_alive=lambda o: True)  # lease ran out: unknown
    ledger.request_withdraw("a", "信息有误", later)  # unknown → take-down queued
    take_down = _claim(ledger, NONE, owner, later)  # the same run takes it on
    assert take_down.action == "withdraw"
    assert take_down.lease_owner != first.lease_owner
    # The hung delivery call returns at last.
    late = _finish(ledger, first, Step(E.SUCCEEDED, receipt={"status": "delivered"}), later)
    row = ledger.row("a", CH)
    # Refused (and logged), the take-down still in flight.
    assert late is None
    assert (row.state, row.action, row.lease_owner) == (
        "in-flight",
        "withdraw",
        take_down.lease_owner,
    )
    assert ledger.attempts("a")[-1].outcome == "succeeded"
    # The plain owner string is no claim's token either.
    assert ledger.finish("a", CH, owner, 1, Step(E.WITHDRAWN, action="withdraw"), later) is None
    assert _finish(ledger, take_down, Step(E.WITHDRAWN, action="withdraw"), later) == "withdrawn"


def test_defect_3_a_late_release_cannot_give_back_the_same_owners_new_claim(ledger):
    """Was: release identified a claim by its owner only, so a late release from a
    lost lease gave back the same owner's newer claim of the row."""
    owner = "host:1:w"
    ledger.ingest([record("a", "a-h1")], T0)
    first = _claim(ledger, NONE, owner, T0)  # claimed in a batch, not yet attempted
    later = T0 + timedelta(minutes=20)
    ledger.expire_leases(later, owner_alive=lambda o: True)  # lease ran out: unknown
    assert ledger.requeue("a", CH, ["unknown"], later, "operator checked: not there")
    second = _claim(ledger, NONE, owner, later)  # the same run claims it again, sends it
    ledger.release([first], later)  # the first claim is given back, late
    # Nothing changes: the send in progress keeps its lease.
    row = ledger.row("a", CH)
    assert (row.state, row.lease_owner) == ("in-flight", second.lease_owner)
    ledger.save_checkpoint("a", CH, first.lease_owner, {"page": 2})  # late, too
    assert ledger.row("a", CH).checkpoint == {}
