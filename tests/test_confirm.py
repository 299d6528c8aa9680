"""`gongkai confirm`: a person confirms a delivery a channel left awaiting confirmation."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime

import pytest

from clihelp import EXAMPLES, run, write_config
from gongkai.errors import UnknownItem, UsageError
from gongkai.item import CST

ITEM = EXAMPLES / "10-poverty-dibao-initial.md"
ITEM_ID = "jt-2026-poverty-0501"


@pytest.fixture
def pinboard(make_publisher):
    import support.pinboard

    publisher = make_publisher(
        plugins=[support.pinboard], channels={"pinboard": {"every_item": True}}
    )
    result = publisher.publish_paths([ITEM])
    # The catalogue's other channels (platform, notice_board) are not enabled here.
    assert [o.status for o in result.outcomes if o.channel == "pinboard"] == [
        "awaiting-confirmation"
    ]
    return publisher


def test_confirming_moves_the_delivery_to_delivered_and_records_who_and_when(pinboard, clock):
    done = pinboard.confirm(ITEM_ID, "pinboard", at=date(2026, 11, 26), by="竹篙村 王文书")
    assert done.status == "confirmed" and done.edition == 1
    row = pinboard.ledger.row(ITEM_ID, "pinboard")
    assert row.state == "delivered"
    assert row.receipt["confirmed_by"] == "竹篙村 王文书"
    assert row.receipt["confirmed_at"] == "2026-11-26T12:00:00+08:00"
    assert row.receipt["artifact"].endswith(f"{ITEM_ID}-1.txt")  # the rest of the receipt kept
    last = pinboard.ledger.attempts(ITEM_ID, "pinboard")[-1]
    assert last.action == "confirmed" and "竹篙村 王文书" in last.outcome
    # Twice is harmless, and says so.
    again = pinboard.confirm(ITEM_ID, "pinboard", at=date(2026, 11, 26), by="someone else")
    assert again.status == "already-confirmed" and again.confirmed_by == "竹篙村 王文书"


@pytest.mark.parametrize(
    ("item", "channel", "at", "by", "error", "words"),
    [
        ("jt-nope", "pinboard", date(2026, 11, 26), "王", UnknownItem, "no delivery"),
        (ITEM_ID, "wechat", date(2026, 11, 26), "王", UnknownItem, "gongkai status"),
        (ITEM_ID, "pinboard", datetime(2099, 1, 1, 9, 0, tzinfo=CST), "王", UsageError, "future"),
        (ITEM_ID, "pinboard", date(2026, 11, 27), "王", UsageError, "future"),
        (
            ITEM_ID,
            "pinboard",
            date(2026, 11, 25),
            "王",
            UsageError,
            "--at 2026-11-25 is before it was written",
        ),
        (
            ITEM_ID,
            "pinboard",
            datetime(2026, 11, 26, 9, 59, tzinfo=CST),
            "王",
            UsageError,
            "before it was written (2026-11-26 10:00",
        ),
        (ITEM_ID, "pinboard", date(2026, 11, 26), "  ", UsageError, "--by"),
        (ITEM_ID, "pinboard", date(2026, 11, 26), "王\u202e", UsageError, "--by"),
    ],
)
def test_wrong_confirmations_are_refused_and_change_nothing(
    pinboard, item, channel, at, by, error, words
):
    with pytest.raises(error) as info:
        pinboard.confirm(item, channel, at=at, by=by)
    assert words in str(info.value)
    assert pinboard.ledger.row(ITEM_ID, "pinboard").state == "awaiting-confirmation"


def test_only_an_awaiting_delivery_can_be_confirmed(make_publisher, item_factory):
    publisher = make_publisher()
    publisher.publish(item_factory())
    with pytest.raises(UsageError) as info:
        publisher.confirm("jt-test-001", "recorder", at=date(2026, 11, 26), by="王")
    assert "is delivered, not awaiting confirmation" in str(info.value)


def test_the_confirm_verb(tmp_path):
    config = write_config(
        tmp_path,
        '[plugins]\nload = ["support.pinboard"]\n[channels.pinboard]\nevery_item = true\n',
        archive=False,
    )
    published = run("publish", str(ITEM), "--json", config=config)
    assert published.returncode == 0, published.stderr
    today = datetime.now(CST).date().isoformat()  # the subprocess publishes on today's clock
    done = run(
        "confirm", str(ITEM), "pinboard", "--at", today, "--by", "王文书", "--json", config=config
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "confirmed" and report["confirmed_at"] == f"{today}T12:00:00+08:00"
    human = run("confirm", ITEM_ID, "pinboard", "--at", today, "--by", "x", config=config)
    assert human.returncode == 0 and "already confirmed by 王文书" in human.stdout
    bad = run("confirm", ITEM_ID, "pinboard", "--at", "yesterday", "--by", "x", config=config)
    assert bad.returncode == 2 and "2026-11-28T09:30" in bad.stderr
    status = json.loads(run("status", ITEM_ID, "--json", config=config).stdout)
    assert [r["state"] for r in status if r["channel"] == "pinboard"] == ["delivered"]
    with sqlite3.connect(tmp_path / "state" / "ledger.sqlite3") as db:
        events = [e for (e,) in db.execute("SELECT action FROM attempts ORDER BY id")]
    assert events[-1] == "confirmed"


@pytest.mark.parametrize("verb", ["render", "status", "confirm", "retry", "withdraw"])
def test_a_missing_item_file_is_named_as_a_missing_file(tmp_path, verb):
    config = write_config(tmp_path)
    extra = {
        "confirm": ["archive", "--at", "2026-11-20", "--by", "x"],
        "withdraw": ["--reason", "x"],
    }
    result = run(verb, "items/missing.md", *extra.get(verb, []), config=config)
    assert result.returncode == 2
    assert "items/missing.md: no such file" in result.stderr
