"""Confirming offline deliveries area by area: partial confirmations, photos, editions
that are no longer current, take-downs of withdrawn items and of ended postings, and
the CSV a township sends back."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

import support.villageboard
from clihelp import run, write_config
from gongkai.errors import UsageError
from gongkai.item import CST

AREAS = ["三溪镇花园村", "西河村"]


def board_item(item_factory, **changes):
    return item_factory(id="jt-board-001", area="、".join(AREAS), **changes)


@pytest.fixture
def board(make_publisher, item_factory):
    publisher = make_publisher(
        plugins=[support.villageboard], channels={"villageboard": {"every_item": True}}
    )
    result = publisher.publish(board_item(item_factory))
    mine = [o.status for o in result.outcomes if o.channel == "villageboard"]
    assert mine == ["awaiting-confirmation"]
    return publisher


def row(publisher, item_id="jt-board-001"):
    return publisher.ledger.row(item_id, "villageboard")


def test_each_area_is_confirmed_on_its_own_and_the_last_one_delivers(board, tmp_path):
    with pytest.raises(UsageError) as info:
        board.confirm("jt-board-001", "villageboard", at=date(2026, 11, 26), by="王")
    assert "posted in 2 areas (三溪镇花园村、西河村); say which with --area" in str(info.value)
    with pytest.raises(
        UsageError, match="not posted in '东河村'; its areas are 三溪镇花园村、西河村"
    ):
        board.confirm("jt-board-001", "villageboard", area="东河村", at=date(2026, 11, 26), by="王")

    photo = tmp_path / "IMG_0001.JPG"
    photo.write_bytes(b"\xff\xd8 a photo of the board")
    first = board.confirm(
        "jt-board-001", "villageboard", area="西河村", at=date(2026, 11, 26), by="西河村 李文书",
        photo=photo,
    )  # fmt: skip
    assert (first.status, first.state, first.waiting) == (
        "confirmed",
        "awaiting-confirmation",
        ("三溪镇花园村",),
    )
    kept = Path(first.photo)
    assert kept.parent == tmp_path / "state" / "photos" and kept.suffix == ".jpg"
    assert kept.read_bytes() == photo.read_bytes()
    receipt = row(board).receipt
    assert row(board).state == "awaiting-confirmation"
    assert receipt["data"]["areas"]["西河村"]["confirmed_by"] == "西河村 李文书"
    assert receipt["data"]["areas"]["西河村"]["photo"] == first.photo
    assert "confirmed_at" not in receipt["data"]["areas"]["三溪镇花园村"]

    last = board.confirm(
        "jt-board-001", "villageboard", area="三溪镇花园村",
        at=datetime(2026, 11, 26, 10, 0, tzinfo=CST), by="花园村 张主任",
    )  # fmt: skip
    assert (last.state, last.waiting) == ("delivered", ())
    assert row(board).state == "delivered"
    again = board.confirm(
        "jt-board-001", "villageboard", area="西河村", at=date(2026, 11, 26), by="x"
    )
    assert again.status == "already-confirmed" and again.confirmed_by == "西河村 李文书"
    record = board.ledger.confirmations(["jt-board-001"])
    assert [(r.area, r.kind, r.edition, r.by) for r in record] == [
        ("西河村", "posted", 1, "西河村 李文书"),
        ("三溪镇花园村", "posted", 1, "花园村 张主任"),
    ]
    log = board.ledger.attempts("jt-board-001", "villageboard")
    assert [(e.action, e.state) for e in log[-2:]] == [
        ("confirmed", "awaiting-confirmation"),
        ("confirmed", "delivered"),
    ]


def test_an_edition_no_longer_current_is_refused_naming_both(board, item_factory, clock):
    clock.advance(hours=1)
    board.publish(board_item(item_factory, title="金堂县公共租赁住房申请指南（更正）"))
    # Edition 2 is written; confirming edition 2 works, and a clerk's late word for
    # edition 1 cannot land on it.
    assert row(board).receipt["data"]["action"] == "replace"
    clock.advance(hours=1)
    board.publish(board_item(item_factory, title="金堂县公共租赁住房申请指南（再更正）"))
    assert row(board).edition == 3
    # Written, then a newer edition queued without a run: the receipt is edition 3's.
    from gongkai.ledger import IngestRecord

    payload, _, _ = board.ledger.edition("jt-board-001")
    board.ledger.ingest(
        [
            IngestRecord(
                "jt-board-001", "f" * 64, {**payload, "title": "四"}, "housing.policy", "四",
                ("villageboard",),
            )
        ],
        clock(),
    )  # fmt: skip
    with pytest.raises(UsageError) as info:
        board.confirm("jt-board-001", "villageboard", area="西河村", at=date(2026, 11, 26), by="王")
    assert "edition 3 is no longer current, edition 4 has been queued since" in str(info.value)


def test_a_withdrawn_items_boards_wait_for_their_take_down(board, clock):
    for area in AREAS:
        board.confirm("jt-board-001", "villageboard", area=area, at=date(2026, 11, 26), by="王")
    clock.advance(days=1)
    result = board.withdraw("jt-board-001", "名单有误")
    assert [o.status for o in result.outcomes if o.channel == "villageboard"] == [
        "awaiting-confirmation"
    ]
    waiting = row(board)
    assert (waiting.state, waiting.intent) == ("awaiting-confirmation", "withdraw")
    assert waiting.receipt["data"]["action"] == "take-down"
    sheet = Path(waiting.receipt["data"]["instructions"]).read_text("utf-8")
    assert "请撤下" in sheet and "--taken-down" in sheet
    with pytest.raises(UsageError, match="confirm the removal with --taken-down"):
        board.confirm("jt-board-001", "villageboard", area="西河村", at=date(2026, 11, 27), by="王")
    with pytest.raises(UsageError, match="before it was written"):
        board.confirm(
            "jt-board-001", "villageboard", area="西河村", at=date(2026, 11, 26), by="王",
            taken_down=True,
        )  # fmt: skip
    half = board.confirm(
        "jt-board-001", "villageboard", area="西河村", at=date(2026, 11, 27), by="王",
        taken_down=True,
    )  # fmt: skip
    assert (half.status, half.state) == ("taken-down", "awaiting-confirmation")
    done = board.confirm(
        "jt-board-001", "villageboard", area="三溪镇花园村", at=date(2026, 11, 27), by="张",
        taken_down=True,
    )  # fmt: skip
    assert done.state == "withdrawn" and row(board).state == "withdrawn"
    kinds = [(r.area, r.kind) for r in board.ledger.confirmations(["jt-board-001"])]
    assert kinds[-2:] == [("西河村", "taken-down"), ("三溪镇花园村", "taken-down")]


def test_a_posting_whose_period_ended_comes_down_from_delivered(board, clock):
    for area in AREAS:
        board.confirm("jt-board-001", "villageboard", area=area, at=date(2026, 11, 26), by="王")
    with pytest.raises(UsageError, match="before it was posted"):
        board.confirm(
            "jt-board-001", "villageboard", area="西河村", at=date(2026, 11, 25), by="王",
            taken_down=True,
        )  # fmt: skip
    clock.advance(days=10)
    board.confirm(
        "jt-board-001", "villageboard", area="西河村", at=date(2026, 12, 5), by="王",
        taken_down=True,
    )  # fmt: skip
    assert row(board).state == "delivered"
    board.confirm(
        "jt-board-001", "villageboard", area="三溪镇花园村", at=date(2026, 12, 5), by="王",
        taken_down=True,
    )  # fmt: skip
    assert row(board).state == "withdrawn"
    assert row(board).receipt["data"]["areas"]["西河村"]["taken_down_by"] == "王"


def test_a_take_down_before_the_posting_is_refused(board):
    board.confirm("jt-board-001", "villageboard", area="西河村", at=date(2026, 11, 26), by="王")
    with pytest.raises(UsageError, match="not confirmed as posted yet"):
        board.confirm(
            "jt-board-001", "villageboard", area="西河村", at=date(2026, 11, 26), by="王",
            taken_down=True,
        )  # fmt: skip


def test_the_csv_a_township_sends_back(board, tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8 the wall")
    sheet = tmp_path / "回执.csv"
    sheet.write_bytes(
        "item,channel,area,date,name,photo\n"
        "jt-board-001,villageboard,西河村,2026-11-26,李文书,photo.jpg\n"
        "jt-board-001,villageboard,东河村,2026-11-26,李文书,\n"
        "jt-nope,villageboard,西河村,2026-11-26,李文书,\n"
        "jt-board-001,villageboard,三溪镇花园村,26/11/2026,张主任,\n"
        "\n"
        "jt-board-001,villageboard,三溪镇花园村,2026/11/26,张主任,\n".encode("gb18030")
    )
    batch = board.confirm_csv(sheet)
    assert [(c.area, c.status) for c in batch.confirmed] == [
        ("西河村", "confirmed"),
        ("三溪镇花园村", "confirmed"),
    ]
    assert [p.line for p in batch.problems] == [3, 4, 5]
    assert "not posted in '东河村'" in batch.problems[0].reason
    assert "jt-nope" in batch.problems[1].reason
    assert "'26/11/2026' is not a date" in batch.problems[2].reason
    assert not batch.ok and row(board).state == "delivered"
    assert Path(batch.confirmed[0].photo).read_bytes() == b"\xff\xd8 the wall"


def test_the_csv_needs_its_header(board, tmp_path):
    sheet = tmp_path / "bad.csv"
    sheet.write_text("item,channel,date\njt-board-001,villageboard,2026-11-26\n", "utf-8")
    with pytest.raises(UsageError, match="lacks area, name"):
        board.confirm_csv(sheet)


def test_the_confirm_verb_with_areas_and_a_csv(tmp_path):
    config = write_config(
        tmp_path,
        '[plugins]\nload = ["support.villageboard"]\n[channels.villageboard]\nevery_item = true\n',
        archive=False,
    )
    item = tmp_path / "item.md"
    item.write_text(
        '+++\nid = "jt-board-002"\ncatalog = "housing.policy"\ntitle = "公共租赁住房申请指南"\n'
        'publisher = "金堂县房产管理局"\nformed_on = 2026-11-20\narea = "三溪镇花园村、西河村"\n'
        "+++\n申请条件：在本县有稳定工作。申请材料：身份证明。办理流程：个人申请后审核。\n",
        "utf-8",
    )
    assert run("publish", str(item), config=config).returncode == 0
    today = datetime.now(CST).date().isoformat()
    refused = run("confirm", "jt-board-002", "villageboard", "--at", today, "--by", "王",
                  config=config)  # fmt: skip
    assert refused.returncode == 2 and "--area" in refused.stderr
    done = run("confirm", "jt-board-002", "villageboard", "--area", "西河村", "--at", today,
               "--by", "王", "--json", config=config)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["waiting"] == ["三溪镇花园村"]
    sheet = tmp_path / "back.csv"
    sheet.write_text(
        f"item,channel,area,date,name\njt-board-002,villageboard,三溪镇花园村,{today},张\n"
        f"jt-board-002,villageboard,北村,{today},张\n",
        "utf-8",
    )
    batch = run("confirm", "--csv", str(sheet), config=config)
    assert batch.returncode == 1
    assert (
        f"{sheet}:3: not recorded" in batch.stdout
        and "1 row(s) recorded, 1 refused" in batch.stdout
    )
    assert "it is delivered" in batch.stdout


def test_an_area_a_new_edition_drops_takes_the_old_one_down(board, item_factory, clock):
    for area in AREAS:
        board.confirm("jt-board-001", "villageboard", area=area, at=date(2026, 11, 26), by="王")
    clock.advance(days=1)
    board.publish(item_factory(id="jt-board-001", area="三溪镇花园村", title="更正"))
    data = row(board).receipt["data"]
    assert (data["action"], data["take_down_areas"]) == ("replace", ["西河村"])
    found = board.parity()
    board_parity = next(c for c in found.items[0].channels if c.channel == "villageboard")
    assert {a.area: a.state for a in board_parity.areas} == {
        "三溪镇花园村": "stale",
        "西河村": "take-down",
    }
    gone = board.confirm(
        "jt-board-001", "villageboard", area="西河村", at=date(2026, 11, 27), by="李",
        taken_down=True,
    )  # fmt: skip
    assert (gone.status, gone.edition, gone.state) == ("taken-down", 1, "awaiting-confirmation")
    again = board.confirm(
        "jt-board-001", "villageboard", area="西河村", at=date(2026, 11, 27), by="x",
        taken_down=True,
    )  # fmt: skip
    assert again.status == "already-taken-down" and again.confirmed_by == "李"
    board.confirm(
        "jt-board-001", "villageboard", area="三溪镇花园村", at=date(2026, 11, 27), by="张"
    )
    after = next(c for c in board.parity().items[0].channels if c.channel == "villageboard")
    assert {a.area: a.state for a in after.areas} == {"三溪镇花园村": "current"}
    assert row(board).state == "delivered"
