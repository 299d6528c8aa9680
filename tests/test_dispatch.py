"""Delivery behaviour through the library API, with a scripted channel."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from gongkai import Publisher
from gongkai.errors import (
    AuthError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
)
from gongkai.plugins.hookspecs import hookimpl
from support.fakes import recording_plugin


def test_first_publish_delivers_and_rerun_is_unchanged(make_publisher, item_factory, script):
    publisher = make_publisher()
    first = publisher.publish(item_factory())
    assert first.outcome("jt-test-001", "recorder").status == "delivered"
    assert first.exit_code == 0
    second = publisher.publish(item_factory())
    assert second.outcome("jt-test-001", "recorder").status == "unchanged"
    assert script.sent == [("jt-test-001", 1, None)]


def test_edited_item_becomes_edition_two_and_updates(make_publisher, item_factory, script):
    publisher = make_publisher()
    publisher.publish(item_factory())
    edited = item_factory(body=item_factory().body + "咨询电话：028-84937788。")
    result = publisher.publish(edited)
    outcome = result.outcome("jt-test-001", "recorder")
    assert (outcome.status, outcome.edition) == ("updated", 2)
    # The update gets the receipt of what the remote holds, so it can replace it.
    assert script.sent[-1] == ("jt-test-001", 2, "recorder-jt-test-001")
    [row] = publisher.status("jt-test-001")
    assert (row.state, row.edition, row.delivered_edition) == ("delivered", 2, 2)


def test_schedule_change_alone_is_not_a_new_edition(make_publisher, item_factory, clock):
    publisher = make_publisher()
    publisher.publish(item_factory())
    later = clock.now.replace(year=2027)
    result = publisher.publish(item_factory(publish_at=later))
    assert result.editions["jt-test-001"] == 1


def test_older_edition_never_overwrites_newer(make_publisher, item_factory, script):
    publisher = make_publisher()
    original = item_factory()
    publisher.publish(original)
    publisher.publish(item_factory(title="金堂县公共租赁住房申请指南（修订）"))
    result = publisher.publish(original)
    assert [p.problem for p in result.problems] == [
        "its content is edition 1, but edition 2 is newer"
    ]
    assert result.exit_code == 2
    assert [s[1] for s in script.sent] == [1, 2]
    assert publisher.status()[0].edition == 2


def test_transient_errors_retry_with_backoff_then_succeed(
    make_publisher, item_factory, script, sleeper
):
    script.plan["jt-test-001"] = [
        TransientError("HTTP 503"),
        TransientError("HTTP 429", retry_after=7),
    ]
    result = make_publisher().publish(item_factory())
    assert result.outcome("jt-test-001", "recorder").status == "delivered"
    assert len(sleeper.calls) == 2
    assert 0 <= sleeper.calls[0] <= 0.5  # full jitter over the first backoff step
    assert sleeper.calls[1] == 7  # Retry-After honoured


def test_transient_errors_past_the_run_go_to_retry_wait(
    make_publisher, item_factory, script, clock
):
    script.plan["jt-test-001"] = [TransientError("HTTP 502")] * 3
    publisher = make_publisher()
    result = publisher.publish(item_factory())
    outcome = result.outcome("jt-test-001", "recorder")
    assert outcome.status == "retry-wait"
    assert result.exit_code == 1
    [row] = publisher.status()
    assert row.state == "retry-wait"
    assert row.next_attempt_at == clock.now + timedelta(seconds=5)
    # Not due yet: a run now leaves it alone.
    assert publisher.publish().outcomes == []
    clock.advance(seconds=6)
    again = publisher.publish()
    assert again.outcome("jt-test-001", "recorder").status == "delivered"


def test_cross_run_schedule_ends_in_failed(make_publisher, item_factory, script, clock):
    script.plan["jt-test-001"] = [TransientError("HTTP 500")] * 100
    publisher = make_publisher(
        channels={"recorder": {"every_item": True, "retry": {"attempts": 1, "schedule": [10, 20]}}}
    )
    statuses = [publisher.publish(item_factory()).outcome("jt-test-001", "recorder").status]
    for _ in range(2):
        clock.advance(seconds=30)
        statuses.append(publisher.publish().outcome("jt-test-001", "recorder").status)
    assert statuses == ["retry-wait", "retry-wait", "failed"]
    assert "gongkai retry" in publisher.status()[0].last_error
    # An operator re-queues it; the next run sends it.
    script.plan["jt-test-001"] = []
    assert len(publisher.retry("jt-test-001")) == 1
    assert publisher.publish().outcome("jt-test-001", "recorder").status == "delivered"


def test_permanent_error_fails_without_retry(make_publisher, item_factory, script, sleeper):
    script.plan["jt-test-001"] = [PermanentError("HTTP 400; the remote refused the content")]
    publisher = make_publisher()
    result = publisher.publish(item_factory())
    assert result.outcome("jt-test-001", "recorder").status == "failed"
    assert sleeper.calls == []
    attempts = publisher.ledger.attempts("jt-test-001", "recorder")
    assert attempts[-1].outcome == "failed"
    assert "refused" in attempts[-1].error


def test_rate_limit_pauses_channel_and_leaves_the_rest(make_publisher, item_factory, script):
    script.plan["a-1"] = [RateLimited("45009 quota", retry_after=600)]
    publisher = make_publisher(concurrency=1)
    items = [item_factory(id=f"a-{n}") for n in range(1, 5)]
    result = publisher.publish(items)
    statuses = {o.item_id: o.status for o in result.outcomes if o.channel == "recorder"}
    # a-1 hit the quota; the channel paused, so nothing after it was sent this run.
    assert statuses["a-1"] == "paused"
    assert set(statuses.values()) <= {"paused", "delivered"}
    assert len(script.sent) < 4
    assert result.exit_code == 1


def test_auth_error_refreshes_once_then_pauses(make_publisher, item_factory, script):
    script.plan["jt-test-001"] = [AuthError("40001 bad token")]
    ok = make_publisher().publish(item_factory())
    assert ok.outcome("jt-test-001", "recorder").status == "delivered"
    assert script.auth_refreshes == 1


def test_auth_error_twice_pauses_channel(make_publisher, item_factory, script):
    script.plan["jt-test-001"] = [AuthError("40001"), AuthError("40001")]
    result = make_publisher().publish(item_factory())
    outcome = result.outcome("jt-test-001", "recorder")
    assert outcome.status == "paused"
    assert "credentials refused twice" in outcome.detail


def test_unknown_outcome_is_not_resent_without_a_safe_guarantee(
    make_publisher, item_factory, script, clock
):
    script.plan["jt-test-001"] = [OutcomeUnknown("read timeout")]
    publisher = make_publisher(guarantee="none")
    result = publisher.publish(item_factory())
    assert result.outcome("jt-test-001", "recorder").status == "unknown"
    clock.advance(days=1)
    publisher.publish(item_factory())
    assert script.sent == []
    assert publisher.status()[0].state == "unknown"
    # The operator checked the remote: not there. Re-queue and send.
    publisher.retry(unknown=True)
    publisher.publish()
    assert [s[0] for s in script.sent] == ["jt-test-001"]


def test_unknown_outcome_resends_when_guarantee_is_upsert(
    make_publisher, item_factory, script, clock
):
    script.plan["jt-test-001"] = [OutcomeUnknown("read timeout")]
    # One try per run, so the cross-run path is what is tested.
    once = {"recorder": {"every_item": True, "retry": {"attempts": 1}}}
    publisher = make_publisher(guarantee="upsert", channels=once)
    first = publisher.publish(item_factory())
    assert first.outcome("jt-test-001", "recorder").status == "retry-wait"
    clock.advance(seconds=10)
    assert publisher.publish().outcome("jt-test-001", "recorder").status == "delivered"


def test_unknown_outcome_is_retried_in_the_run_when_a_resend_is_safe(
    make_publisher, item_factory, script, sleeper
):
    script.plan["jt-test-001"] = [OutcomeUnknown("read timeout")]
    result = make_publisher(guarantee="idempotency-key").publish(item_factory())
    assert result.outcome("jt-test-001", "recorder").status == "delivered"
    assert len(sleeper.calls) == 1
    assert script.sent == [("jt-test-001", 1, None)]


def test_reconcile_finds_the_remote_copy(make_publisher, item_factory, script, clock):
    script.plan["jt-test-001"] = [OutcomeUnknown("read timeout")]
    from gongkai import Receipt

    found = Receipt(external_id="remote-77", url="https://example.test/77")
    publisher = make_publisher(reconcile=lambda item, attempt: found)
    publisher.publish(item_factory())
    result = publisher.publish()
    assert result.outcome("jt-test-001", "recorder").status == "delivered"
    [row] = publisher.status()
    assert (row.state, row.receipt["external_id"]) == ("delivered", "remote-77")
    assert script.sent == []


def test_scheduled_item_waits_for_its_time(make_publisher, item_factory, script, clock):
    publisher = make_publisher()
    item = item_factory(publish_at=clock.now + timedelta(days=3))
    result = publisher.publish(item)
    assert result.outcome("jt-test-001", "recorder").status == "scheduled"
    assert script.sent == []
    clock.advance(days=3, seconds=1)
    later = publisher.publish()  # no paths: the ledger remembers the item
    assert later.outcome("jt-test-001", "recorder").status == "delivered"


def test_hanging_channel_does_not_block_the_others(make_publisher, monotonic, item_factory):
    from support.fakes import Script

    slow, fast = Script(), Script()
    slow.hang = threading.Event()
    slow.hang_ids = {"a-1"}
    slow.on_hang = lambda: monotonic.advance(601)  # past delivery_timeout, at once
    publisher = make_publisher(
        plugins=[recording_plugin(slow, name="slow"), recording_plugin(fast, name="fast")],
        channels={
            "slow": {"every_item": True, "delivery_timeout": 600},
            "fast": {"every_item": True},
        },
        concurrency=2,
    )
    try:
        result = publisher.publish([item_factory(id=f"a-{n}") for n in range(1, 6)])
    finally:
        slow.hang.set()
    assert len(fast.sent) == 5
    hung = result.outcome("a-1", "slow")
    assert hung.status == "unknown"
    assert {r.state for r in publisher.status() if r.item_id == "a-1" and r.channel == "slow"} == {
        "unknown"
    }
    assert sorted(s[0] for s in slow.sent if s[0] != "a-1") == ["a-2", "a-3", "a-4", "a-5"]


def test_two_step_create_resumes_from_checkpoint(make_publisher, item_factory, script):
    drafts: list[str] = []

    def two_step(channel, item):
        saved = channel.resumed()
        if "draft_id" not in saved:
            drafts.append(item.id)
            channel.checkpoint(draft_id=f"draft-{len(drafts)}")
        if len(drafts) == 1 and not saved:
            raise OutcomeUnknown("publish step timed out")

    script.on_deliver = two_step
    once = {"recorder": {"every_item": True, "retry": {"attempts": 1}}}
    publisher = make_publisher(guarantee="upsert", channels=once)
    publisher.publish(item_factory())
    assert publisher.status()[0].checkpoint == {"draft_id": "draft-1"}

    publisher.clock.advance(seconds=10)
    result = publisher.publish()
    assert result.outcome("jt-test-001", "recorder").status == "delivered"
    assert drafts == ["jt-test-001"]  # one draft, reused by the second attempt


def test_observer_exceptions_are_not_fatal(make_publisher, item_factory, script):
    class Broken:
        @hookimpl
        def gongkai_after_delivery(self, item, channel, receipt):
            raise RuntimeError("metrics server down")

    publisher = make_publisher(plugins=[recording_plugin(script), Broken()])
    assert publisher.publish(item_factory()).outcome("jt-test-001", "recorder").status == (
        "delivered"
    )


def test_withdraw_takes_item_down_and_blocks_republish(make_publisher, item_factory, script):
    publisher = make_publisher()
    publisher.publish(item_factory())
    result = publisher.withdraw("jt-test-001", "信息有误，更正后重新发布")
    assert [o.status for o in result.outcomes] == ["withdrawn"]
    assert script.withdrawn == ["jt-test-001"]
    again = publisher.publish(item_factory(title="新标题"))
    assert again.problems[0].problem.startswith("this item was withdrawn")
    # The same file left in the folder cron publishes is a note, not an error each run.
    left = publisher.publish(item_factory())
    assert left.problems == [] and left.exit_code == 0
    assert any("was withdrawn and is not published again" in n for n in left.notes)
    assert script.sent.count(("jt-test-001", 1, None)) == 1


def test_bad_item_in_python_batch_is_reported_and_others_go(make_publisher, item_factory, script):
    good = item_factory(id="good-1")
    bad = item_factory(id="bad-1", catalog="no.such-entry")
    result = make_publisher().publish([bad, good])
    assert [p.field for p in result.problems] == ["catalog"]
    assert [s[0] for s in script.sent] == ["good-1"]


def test_routing_reports_channels_not_enabled(make_publisher, item_factory):
    result = make_publisher().publish(item_factory())
    missing = {o.channel for o in result.outcomes if o.status == "not-enabled"}
    assert missing == {"platform", "portal"}
    assert result.exit_code == 0


@pytest.mark.parametrize("field", ["title", "body"])
def test_personal_numbers_are_masked_before_channels_see_them(
    make_publisher, item_factory, script, field
):
    seen = []
    script.on_deliver = lambda channel, item: seen.append(getattr(item, field))
    text = "户主周大勇 身份证510121194801251981 电话13981234567"
    make_publisher().publish(
        item_factory(**{field: item_factory().body + text if field == "body" else text})
    )
    assert "510121194801251981" not in seen[0]
    assert "510121********1981" in seen[0]
    assert "139****4567" in seen[0]


def test_reconcile_not_found_resends(make_publisher, item_factory, script, clock):
    script.plan["jt-test-001"] = [OutcomeUnknown("read timeout")]
    looked: list[str] = []

    def not_there(item, attempt):
        looked.append(attempt.outcome)
        return None

    publisher = make_publisher(reconcile=not_there)
    publisher.publish(item_factory())
    result = publisher.publish()
    assert looked == ["unknown"]
    assert result.outcome("jt-test-001", "recorder").status == "delivered"
    assert [s[0] for s in script.sent] == ["jt-test-001"]


def test_remote_job_is_polled_on_later_runs(tmp_path, clock, sleeper, item_factory):
    from gongkai import Channel, Receipt, Rendition
    from gongkai.config import settings_from_dict

    answers = ["publishing", "delivered"]

    class Slow(Channel):
        name = "slowjob"
        guarantee = "lookup"

        def render(self, item):
            return Rendition(body=item.title)

        def deliver(self, item, rendition, previous):
            return Receipt(status="publishing", data={"publish_id": "p-1"})

        def poll(self, receipt):
            assert receipt.data == {"publish_id": "p-1"}
            return Receipt(
                status=answers.pop(0), url="https://mp.example.test/s/1", data=receipt.data
            )

    class Plugin:
        @hookimpl
        def gongkai_register_channels(self):
            return [Slow]

    settings = settings_from_dict(
        {
            "gongkai": {"org_code": "11510121009087532X", "state_dir": str(tmp_path / "s")},
            "channels": {"slowjob": {"every_item": True}},
        }
    )
    with Publisher(
        settings, clock=clock, sleep=sleeper, plugins=[Plugin()], load_entry_points=False
    ) as publisher:
        assert publisher.publish(item_factory()).outcome("jt-test-001", "slowjob").status == (
            "publishing"
        )
        assert publisher.publish().outcome("jt-test-001", "slowjob").status == "publishing"
        assert publisher.publish().outcome("jt-test-001", "slowjob").status == "delivered"
        [row] = publisher.status()
        assert (row.state, row.receipt["url"]) == ("delivered", "https://mp.example.test/s/1")


def test_error_observer_sees_each_retry_and_the_final_failure(make_publisher, item_factory, script):
    seen = []

    class Watcher:
        @hookimpl
        def gongkai_on_delivery_error(self, item, channel, error, final):
            seen.append((type(error).__name__, final))

    script.plan["jt-test-001"] = [TransientError("503")] * 3
    make_publisher(plugins=[recording_plugin(script), Watcher()]).publish(item_factory())
    assert seen == [("TransientError", False), ("TransientError", False), ("TransientError", True)]


def test_paused_resend_safe_channel_gives_back_unattempted_claims(
    make_publisher, item_factory, script, clock
):
    script.plan["a-1"] = [RateLimited("45009 quota", retry_after=60)]
    publisher = make_publisher(guarantee="upsert", concurrency=1)
    publisher.publish([item_factory(id=f"a-{n}") for n in range(1, 5)])
    states = {r.item_id: r.state for r in publisher.status()}
    # Claimed together up front, but never attempted: back in the queue, not in flight.
    assert "in-flight" not in states.values()
    assert states["a-1"] == "retry-wait"
    clock.advance(seconds=61)
    publisher.publish()
    assert {r.state for r in publisher.status()} == {"delivered"}
    assert sorted(s[0] for s in script.sent) == ["a-1", "a-2", "a-3", "a-4"]


def test_batched_successes_are_committed_before_publish_returns(make_publisher, item_factory):
    publisher = make_publisher(guarantee="idempotency-key")
    publisher.publish([item_factory(id=f"b-{n}") for n in range(70)])
    rows = publisher.status()
    assert len(rows) == 70 and {r.state for r in rows} == {"delivered"}
    assert all(len(publisher.ledger.attempts(r.item_id)) == 1 for r in rows)


def test_library_prints_nothing_and_never_exits(make_publisher, item_factory, script, capfd):
    import logging

    gongkai_logger = logging.getLogger("gongkai")
    for handler in [h for h in gongkai_logger.handlers if not isinstance(h, logging.NullHandler)]:
        gongkai_logger.removeHandler(handler)  # as in a fresh process that never ran the CLI
    script.plan["bad-1"] = [PermanentError("HTTP 400")]
    publisher = make_publisher()
    result = publisher.publish(
        [item_factory(id="bad-1"), item_factory(id="ok-1"), item_factory(id="x", catalog="no.such")]
    )
    assert result.exit_code == 2 and result.failed and result.problems
    assert capfd.readouterr() == ("", "")


def test_a_failing_check_pauses_its_channel_for_the_run(tmp_path, clock, sleeper, item_factory):
    from gongkai.config import settings_from_dict
    from support.fakes import Script

    broken, fine = Script(), Script()
    checks = []

    def failing_check(self):
        checks.append(self.name)
        raise PermissionError("app secret refused")

    plugins = [recording_plugin(broken, name="broken"), recording_plugin(fine, name="fine")]
    broken_cls = plugins[0].gongkai_register_channels()[0]
    broken_cls.check = failing_check
    settings = settings_from_dict(
        {
            "gongkai": {"org_code": "11510121009087532X", "state_dir": str(tmp_path / "s")},
            "channels": {"broken": {"every_item": True}, "fine": {"every_item": True}},
        }
    )
    with Publisher(
        settings, clock=clock, sleep=sleeper, plugins=plugins, load_entry_points=False
    ) as publisher:
        assert publisher.check_channels() == {"broken": "app secret refused", "fine": None}
        result = publisher.publish([item_factory(id=f"c-{n}") for n in range(3)])
        paused = [o for o in result.outcomes if o.channel == "broken"]
        assert {o.status for o in paused} == {"paused"}
        assert "check failed" in paused[0].detail and "app secret refused" in paused[0].detail
        assert broken.sent == [] and len(fine.sent) == 3
        # Checked once per run, not once per delivery; nothing left claimed.
        assert checks == ["broken", "broken"]
        assert {r.state for r in publisher.status() if r.channel == "broken"} == {"pending"}
        assert result.exit_code == 1


def test_a_hung_check_gives_back_the_batch_claims_it_held_up(
    make_publisher, item_factory, script, monotonic
):
    """A check() that never answers: its deliveries were claimed in a batch, nothing
    was sent, so the claims go back to the queue instead of staying in flight."""
    stuck = threading.Event()
    plugin = recording_plugin(script, guarantee="upsert")
    channel_class = plugin.gongkai_register_channels()[0]

    def hang(self) -> None:
        # From now on every call in flight is past its delivery_timeout (the tasks
        # queued behind this check hang too), without the test waiting for it.
        monotonic.step = 601
        stuck.wait(30)

    channel_class.check = hang
    publisher = make_publisher(
        plugins=[plugin],
        channels={"recorder": {"every_item": True, "delivery_timeout": 600}},
        concurrency=1,
    )
    try:
        result = publisher.publish([item_factory(id=f"h-{n}") for n in range(3)])
        assert script.sent == []
        recorder = {o.status for o in result.outcomes if o.channel == "recorder"}
        assert recorder <= {"pending", "paused"}
        assert {r.state for r in publisher.status()} == {"pending"}
    finally:
        stuck.set()
    # The abandoned threads wake up holding claims that were given back: they must not
    # send on them. The next run sends each item once.
    channel_class.check = lambda self: None
    again = make_publisher(plugins=[plugin], channels={"recorder": {"every_item": True}})
    again.publish()
    assert sorted(s[0] for s in script.sent) == ["h-0", "h-1", "h-2"]
