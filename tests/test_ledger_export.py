"""Issue 13 §4, the standing work ledger: the shipped examples, a hostile item, a
confirmation with a photo, a correction and a withdrawal go through the real Publisher
and channels into a temporary state directory; ``gongkai ledger-export`` writes the
workbook, and openpyxl reads it back cell by cell."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime

import openpyxl
import pytest

from clihelp import EXAMPLES
from gongkai.cli import main
from gongkai.ledger_export import timeliness
from gongkai.ledger_xlsx import ITEM_COLUMNS, write_xlsx

CHANNELS = {"archive": {"every_item": True}, "notice_board": {"portal_url": "https://x.cn/"}}
HOSTILE = "jt-2026-hostile-0901"
#: A title a spreadsheet would run as a formula, with a mobile number the privacy
#: plugin masks before anything is recorded.
HOSTILE_TITLE = '=HYPERLINK("http://evil.example/","点击")关于13812345678的公告'
WITHDRAW_REASON = "-1 内容有误，撤回重发"
EDITED = "jt-2026-land-0101"
WITHDRAWN = "jt-2026-dilapidated-0403"


@pytest.fixture
def ledger(make_publisher, clock, tmp_path):
    """The examples published on Friday 27 November 2026, 10:00 Beijing time; one
    board posting confirmed that day; the land pre-announcement corrected and the
    subsidy list withdrawn on Monday 30 November."""
    clock.now = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    items = tmp_path / "items"
    shutil.copytree(EXAMPLES, items)
    (items / "90-hostile.md").write_text(
        f'+++\nid = "{HOSTILE}"\ncatalog = "general.policy-interpretation"\n'
        f"title = '{HOSTILE_TITLE}'\npublisher = \"金堂县人民政府办公室\"\n"
        'formed_on = 2026-11-26\nkind = "interpretation"\nrelated = ["jt-2026-dilapidated-0401"]\n'
        "+++\n解读正文。\n",
        "utf-8",
    )
    publisher = make_publisher(channels=CHANNELS, plugins=[])
    assert not publisher.publish_paths([items]).problems
    photo = tmp_path / "board.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 a photo")
    publisher.confirm(
        EDITED, "notice_board", area="三溪镇花园村", at=date(2026, 11, 27), by="花园村 王文书",
        photo=photo,
    )  # fmt: skip
    clock.advance(days=3)
    source = items / "01-land-pre-announcement.md"
    source.write_text(source.read_text("utf-8").replace("三溪镇", "三溪镇（更正）", 1), "utf-8")
    assert not publisher.publish_paths([items]).problems
    publisher.withdraw(WITHDRAWN, WITHDRAW_REASON)
    return publisher


def _sheet(book, title):
    rows = list(book[title].iter_rows(values_only=True))
    return rows[0], {r[rows[0].index("事项编号")]: r for r in rows[1:]}, rows[1:]


def test_workbook_cell_by_cell(ledger, tmp_path):
    export = ledger.ledger_export()
    path = tmp_path / "台账.xlsx"
    write_xlsx(export, path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["说明", "台账", "版次", "发布渠道", "现场确认", "撤回"]

    # Every table: frozen, filterable header row in bold, set widths, real dates.
    for title in book.sheetnames[1:]:
        sheet = book[title]
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, sheet.max_column).column_letter}" + str(
            sheet.max_row
        )
        assert sheet.cell(1, 1).font.b
        assert sheet.column_dimensions["B"].width >= 20

    header, items, rows = _sheet(book, "台账")
    assert list(header) == [title for title, _ in ITEM_COLUMNS]
    assert len(rows) == 20 == export.counts()["items"]
    edited = dict(zip(header, items[EDITED], strict=True))
    payload, _, _ = ledger.ledger.edition(EDITED)
    entry = ledger.catalogue.get(payload["catalog"])
    assert edited["索引号"] == payload["index_number"]
    assert edited["标题"] == "金堂县人民政府关于三溪镇（更正）花园村部分集体土地征收的预公告"
    assert (edited["目录事项"], edited["目录事项代码"]) == (entry.name, "land.pre-announcement")
    assert edited["责任单位"] == entry.responsible_unit
    assert edited["公开时限"] == entry.time_limit.label()
    formed = date.fromisoformat(payload["formed_on"])
    assert edited["成文日期"] == datetime(formed.year, formed.month, formed.day)
    due = ledger.calendar.add(formed, entry.time_limit.days, entry.time_limit.unit)
    assert edited["法定截止日期"] == datetime(due.year, due.month, due.day)
    assert edited["首次发布时间"] == datetime(2026, 11, 27, 10, 0)  # Beijing time
    assert (edited["时效"], edited["现行版次"], edited["版次数"], edited["状态"]) == (
        "按时发布", 2, 2, "有效",
    )  # fmt: skip
    assert edited["发布渠道及状态"] == "归档：已送达 第2版；公示栏：待确认 第2版"
    cell = book["台账"].cell(rows.index(items[EDITED]) + 2, header.index("成文日期") + 1)
    assert cell.is_date and cell.number_format == "yyyy-mm-dd"

    withdrawn = dict(zip(header, items[WITHDRAWN], strict=True))
    assert (withdrawn["状态"], withdrawn["撤回原因"]) == ("已撤回", WITHDRAW_REASON)
    assert withdrawn["撤回时间"] == datetime(2026, 11, 30, 10, 0)
    # Its board notice was written but never confirmed: the take-down waits for a person.
    assert withdrawn["发布渠道及状态"] == "归档：已撤回 第1版；公示栏：待确认撤下 第1版"

    # The hostile title: masked, shown as text with Excel's quote prefix, never a formula.
    masked = '=HYPERLINK("http://evil.example/","点击")关于138****5678的公告'
    hostile_row = rows.index(items[HOSTILE]) + 2
    title_cell = book["台账"].cell(hostile_row, header.index("标题") + 1)
    assert (title_cell.value, title_cell.data_type, title_cell.quotePrefix) == (masked, "s", True)
    assert ledger.ledger.edition(HOSTILE)[0]["title"] == masked  # the ledger holds it masked

    header, editions, rows = _sheet(book, "版次")
    recorded = ledger.ledger.editions(EDITED)
    assert [r[2:5] for r in rows if r[1] == EDITED] == [
        (1, datetime(2026, 11, 27, 10, 0), recorded[0].content_hash),
        (2, datetime(2026, 11, 30, 10, 0), recorded[1].content_hash),
    ]

    header, _, rows = _sheet(book, "发布渠道")
    board = next(
        dict(zip(header, r, strict=True)) for r in rows if r[1] == EDITED and r[4] == "notice_board"
    )
    assert (board["渠道"], board["状态"], board["排定版次"], board["已送出版次"], board["现行版次"]) == (
        "公示栏", "待确认", 2, 2, 2,
    )  # fmt: skip
    assert len(rows) == export.counts()["deliveries"]

    header, _, rows = _sheet(book, "现场确认")
    assert len(rows) == 1
    posted = dict(zip(header, rows[0], strict=True))
    assert (posted["事项编号"], posted["渠道"], posted["区域"], posted["类型"], posted["版次"]) == (
        EDITED, "公示栏", "三溪镇花园村", "已张贴/播放", 1,
    )  # fmt: skip
    assert posted["确认人"] == "花园村 王文书"
    assert posted["确认时间"].date() == date(2026, 11, 27)
    assert posted["照片"].endswith(".jpg")

    header, _, rows = _sheet(book, "撤回")
    assert [r[1] for r in rows] == [WITHDRAWN]
    reason = book["撤回"].cell(2, header.index("撤回原因") + 1)
    assert (reason.value, reason.data_type, reason.quotePrefix) == (WITHDRAW_REASON, "s", True)

    cover = dict(book["说明"].iter_rows(min_row=2, values_only=True))
    assert cover["生成时间（北京时间）"] == datetime(2026, 11, 30, 10, 0)
    assert (cover["统计期间"], cover["事项数"], cover["已撤回"], cover["有更正（多个版次）"]) == (
        "全部事项", 20, 1, 1,
    )  # fmt: skip

    # No formula anywhere, and the unmasked number nowhere in the file.
    with zipfile.ZipFile(path) as archive:
        xml = "".join(archive.read(n).decode("utf-8") for n in archive.namelist())
    assert "<f>" not in xml and "13812345678" not in xml


def test_control_characters_and_an_empty_ledger(ledger, make_publisher, tmp_path):
    export = ledger.ledger_export()
    export.items[:] = [replace(export.items[0], withdraw_reason="原因\x07说明", title="\t标题")]
    write_xlsx(export, tmp_path / "odd.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "odd.xlsx")["台账"]
    header = [c.value for c in sheet[1]]
    assert sheet.cell(2, header.index("撤回原因") + 1).value == "原因\ufffd说明"
    title = sheet.cell(2, header.index("标题") + 1)
    assert (title.value, title.quotePrefix) == ("\t标题", True)

    fresh = make_publisher(channels=CHANNELS, plugins=[], state_dir=str(tmp_path / "none"))
    assert fresh.ledger_export().counts()["items"] == 0
    write_xlsx(fresh.ledger_export(), tmp_path / "empty.xlsx")
    assert not (tmp_path / "none").exists()  # looking creates no state directory
    book = openpyxl.load_workbook(tmp_path / "empty.xlsx")
    assert [book[t].max_row for t in book.sheetnames[1:]] == [1, 1, 1, 1, 1]


def test_cli_json_and_period(ledger, tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text(
        f'[gongkai]\nstate_dir = "{ledger.settings.state_dir}"\n'
        'org_code = "11510121009087532X"\n[channels.archive]\nevery_item = true\n',
        "utf-8",
    )
    ledger.close()
    out = tmp_path / "out" / "ledger.xlsx"
    args = ["ledger-export", "-c", str(config), "--json", "--xlsx", str(out)]
    # A folder given as the workbook: a usage error naming it, no traceback.
    assert main(["ledger-export", "-c", str(config), "--xlsx", str(tmp_path)]) == 2
    assert f"cannot write {tmp_path}" in capsys.readouterr().err
    assert main([*args, "--from", "2026-11-28", "--to", "2026-11-30"]) == 0
    data = json.loads(capsys.readouterr().out)
    # Formed before the period; only the correction, the withdrawal and the tender
    # notice scheduled for 30 November (published by that day's run) fall in it.
    assert {i["item_id"] for i in data["items"]} == {EDITED, WITHDRAWN, "jt-2026-trading-0702"}
    assert (data["from"], data["to"], data["xlsx"]) == ("2026-11-28", "2026-11-30", str(out))
    edited = next(i for i in data["items"] if i["item_id"] == EDITED)
    assert list(edited) == [
        "item_id", "index_number", "title", "catalog", "catalog_name", "domain",
        "responsible_unit", "publisher", "document_number", "kind", "area", "formed_on",
        "time_limit", "due_on", "published_at", "timeliness", "edition", "editions",
        "channels", "confirmations", "withdrawn_at", "withdraw_reason",
    ]  # fmt: skip
    assert (edited["formed_on"], edited["timeliness"]) == ("2026-11-16", "on-time")
    assert [e["edition"] for e in edited["editions"]] == [1, 2]
    assert edited["confirmations"][0]["by"] == "花园村 王文书"
    assert edited["published_at"] == "2026-11-27T02:00:00+00:00"
    assert openpyxl.load_workbook(out)["台账"].max_row == 4

    assert main(["ledger-export", "-c", str(config)]) == 0
    text = capsys.readouterr().out
    assert "withdrawn-unpublished (撤回未发布)" in text and "add --xlsx FILE" in text

    assert (
        main(["ledger-export", "-c", str(config), "--from", "2026-12-02", "--to", "2026-12-01"])
        == 2
    )
    assert "--from 2026-12-02 is after --to 2026-12-01" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("published", "withdrawn", "expected"),
    [
        # 16:30 UTC is 00:30 the next day in Beijing: the day counts in Beijing time.
        (datetime(2026, 11, 30, 16, 30, tzinfo=UTC), None, "on-time"),
        (datetime(2026, 12, 1, 16, 30, tzinfo=UTC), None, "late"),
        (None, None, "overdue"),
        (None, datetime(2026, 12, 3, tzinfo=UTC), "withdrawn-unpublished"),
    ],
)
def testtimeliness_against_the_deadline(published, withdrawn, expected):
    today = date(2026, 12, 5)
    assert timeliness(date(2026, 12, 1), published, withdrawn, today) == expected


def testtimeliness_without_a_deadline_or_before_it():
    assert timeliness(date(2026, 12, 9), None, None, date(2026, 12, 5)) == "not-due"
    assert timeliness(None, None, None, date(2026, 12, 5)) == "no-deadline"
