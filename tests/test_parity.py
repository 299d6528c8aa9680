"""`gongkai parity` findings one at a time: townships, channels missing or not
configured, withdrawn items' boards, early take-downs, overdue confirmations, the
90-day history, and the verb's exit codes."""

from __future__ import annotations

from datetime import date

import pytest

import support.pinboard
import support.villageboard
from clihelp import run, write_config
from gongkai.parity import township


@pytest.mark.parametrize(
    ("area", "expected"),
    [
        ("三溪镇花园村", "三溪镇"),
        ("三溪镇花园村、西河村", "三溪镇"),
        ("赵镇街道十里社区", "赵镇街道"),
        ("竹篙镇", "竹篙镇"),
        ("云合乡", "云合乡"),
        ("", "全县"),
        (None, "全县"),
        ("金堂县", "金堂县"),
    ],
)
def test_township_is_the_street_or_town_prefix(area, expected):
    assert township(area) == expected


def states(report, item_id):
    item = next(i for i in report.items if i.item_id == item_id)
    return {c.channel: c.state for c in item.channels}


def offline(report, item_id):
    return {k: v for k, v in states(report, item_id).items() if k in ("villageboard", "pinboard")}


@pytest.fixture
def board(make_publisher):
    return make_publisher(
        plugins=[support.villageboard, support.pinboard],
        channels={"villageboard": {"every_item": True}, "pinboard": {"every_item": True}},
    )


def test_required_channels_missing_or_not_configured(board, item_factory, clock):
    # The catalogue routes a 危房改造 list to the platform and the notice board; neither
    # is enabled here.
    item = item_factory(
        id="jt-list-001",
        catalog="dilapidated.subsidy-list",
        body="补助对象：农户张某。补助标准：每户2万元。",
        area="五凤镇",
    )
    board.publish(item)
    report = board.parity()
    assert states(report, "jt-list-001") == {
        "platform": "not-configured",
        "notice_board": "not-configured",
        "villageboard": "awaiting",
        "pinboard": "awaiting",
    }
    assert not report.ok
    found = next(i for i in report.items if i.item_id == "jt-list-001")
    assert found.township == "五凤镇" and found.status == "broken"
    assert "enable it in config.toml ([channels.platform])" in " ".join(found.problems)


def test_awaiting_turns_overdue_after_the_configured_days(board, item_factory, clock):
    board.publish(item_factory())
    clock.advance(days=3)
    assert states(board.parity(), "jt-test-001")["pinboard"] == "awaiting"
    clock.advance(days=1)
    report = board.parity()
    assert offline(report, "jt-test-001") == {"villageboard": "overdue", "pinboard": "overdue"}
    assert not report.ok
    assert states(board.parity(overdue_days=10), "jt-test-001")["pinboard"] == "awaiting"
    board.confirm("jt-test-001", "pinboard", at=date(2026, 11, 27), by="王")
    board.confirm("jt-test-001", "villageboard", at=date(2026, 11, 27), by="王")
    final = board.parity()
    assert offline(final, "jt-test-001") == {"villageboard": "current", "pinboard": "current"}
    # housing.policy also requires the platform and the portal, not enabled here.
    assert not final.ok and states(final, "jt-test-001")["portal"] == "not-configured"


def test_a_withdrawn_items_board_must_come_down(board, item_factory, clock):
    board.publish(item_factory())
    board.confirm("jt-test-001", "villageboard", at=date(2026, 11, 26), by="王")
    board.confirm("jt-test-001", "pinboard", at=date(2026, 11, 26), by="王")
    clock.advance(days=1)
    board.withdraw("jt-test-001", "有误")
    report = board.parity()
    assert states(report, "jt-test-001")["villageboard"] == "take-down"
    clock.advance(days=4)
    assert states(board.parity(), "jt-test-001")["villageboard"] == "overdue"
    board.confirm("jt-test-001", "villageboard", at=date(2026, 11, 28), by="王", taken_down=True)
    # Taken down everywhere: nothing left to check about it.
    left = board.parity()
    assert [i.item_id for i in left.items] == [], [i.as_dict() for i in left.items]


def test_a_posting_taken_down_early(board, item_factory):
    item = item_factory(
        id="jt-list-002",
        catalog="dilapidated.subsidy-list",
        body="补助对象：农户张某。补助标准：每户2万元。",
        channels={"add": []},
    )
    board.publish(item)
    board.confirm("jt-list-002", "villageboard", at=date(2026, 11, 26), by="王")
    board.confirm("jt-list-002", "villageboard", at=date(2026, 11, 26), by="王", taken_down=True)
    report = board.parity()
    assert states(report, "jt-list-002")["villageboard"] == "early"
    item_report = next(i for i in report.items if i.item_id == "jt-list-002")
    assert any("before its 公示期 ended 2026-12-02" in p for p in item_report.problems)


def test_the_history_counts_items_at_parity_each_day(board, item_factory, clock):
    board.publish(item_factory())
    clock.advance(days=1)
    board.confirm("jt-test-001", "villageboard", at=date(2026, 11, 27), by="王")
    board.confirm("jt-test-001", "pinboard", at=date(2026, 11, 27), by="王")
    clock.advance(days=1)
    days = board.parity_history(days=5)
    assert [(d.day.isoformat(), d.at_parity, d.items) for d in days] == [
        ("2026-11-24", 0, 0),
        ("2026-11-25", 0, 0),
        ("2026-11-26", 0, 1),
        ("2026-11-27", 1, 1),
        ("2026-11-28", 1, 1),
    ]


def test_the_verb_exits_1_when_parity_is_broken(tmp_path):
    config = write_config(
        tmp_path,
        '[plugins]\nload = ["support.pinboard"]\n[channels.pinboard]\nevery_item = true\n',
        archive=False,
    )
    empty = run("parity", config=config)
    assert empty.returncode == 0 and "0 item(s)" in empty.stdout
    assert not (tmp_path / "state").exists()  # looking creates nothing
    item = tmp_path / "item.md"
    item.write_text(
        '+++\nid = "jt-x-001"\ncatalog = "housing.policy"\ntitle = "公共租赁住房申请指南"\n'
        'publisher = "金堂县房产管理局"\nformed_on = 2026-11-20\n+++\n'
        "申请条件：在本县有稳定工作。申请材料：身份证明。办理流程：个人申请后审核。\n",
        "utf-8",
    )
    assert run("publish", str(item), config=config).returncode == 0
    later = run("parity", "--now", "2099-01-01", config=config)
    assert later.returncode == 1
    assert "金堂县房产管理局 · 全县" in later.stdout and "overdue" in later.stdout
    assert "parity: BROKEN" in later.stdout
    # housing.policy requires the platform and the portal, not enabled here.
    assert "not-configured" in later.stdout


def test_the_platforms_export_batch_is_one_area(make_publisher, item_factory, clock):
    # Export mode: a batch to import by hand, confirmed without --area; the withdrawal
    # waits for --taken-down like a notice board.
    publisher = make_publisher(
        plugins=[],
        channels={"platform": {"mode": "export", "default_column": "jt-qita"}},
    )
    publisher.publish(item_factory())
    assert states(publisher.parity(), "jt-test-001")["platform"] == "awaiting"
    done = publisher.confirm("jt-test-001", "platform", at=date(2026, 11, 26), by="王")
    assert (done.area, done.state) == ("", "delivered")
    assert states(publisher.parity(), "jt-test-001")["platform"] == "current"
    clock.advance(days=1)
    publisher.withdraw("jt-test-001", "有误")
    assert states(publisher.parity(), "jt-test-001")["platform"] == "take-down"
    gone = publisher.confirm(
        "jt-test-001", "platform", at=date(2026, 11, 27), by="王", taken_down=True
    )
    assert (gone.status, gone.state) == ("taken-down", "withdrawn")
    assert publisher.parity().items == []
