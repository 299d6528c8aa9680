"""Attachments are masked into prepared copies; unreadable ones must be declared checked;
addresses are cut; public-by-law declarations are honoured and recorded."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

import openpyxl
import pytest

from gongkai.config import PrivacySettings
from gongkai.plugins.masking import Columns, cut_address, mask_markdown
from gongkai.plugins.sheets import masked_bytes

ID = "510121194801251981"  # valid check digit
PHONE = "13981234567"
ID2 = "11010519491231002X"

ROSTER = [
    ["竹篙镇2026年11月低保初审对象花名册"],
    ["序号", "户主姓名", "身份证号码", "联系电话", "家庭住址", "保障人数"],
    ["1", "钱永福", ID, PHONE, "竹篙镇竹篙村3组12号", "2"],
    ["2", "欧阳春梅", ID2, "158 2876 5432", "竹篙镇土桥村5组", "2"],
]


def _csv_bytes(rows, encoding="utf-8") -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def _xlsx_bytes(rows) -> bytes:
    from openpyxl.comments import Comment

    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        # Phone numbers as numbers, as Excel stores them when typed in.
        sheet.append([int(c) if c == PHONE else c for c in row])
    sheet["A1"].comment = Comment(f"核对人电话{PHONE}", "录入员")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_cells(data: bytes) -> list[str]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    cells = [str(c.value) for row in book.active.iter_rows() for c in row if c.value]
    return cells + [c.comment.text for row in book.active.iter_rows() for c in row if c.comment]


def test_csv_is_masked_cell_by_cell(tmp_path):
    policy = PrivacySettings()
    path = tmp_path / "花名册.csv"
    masked = masked_bytes(path, _csv_bytes(ROSTER), policy, Columns.of(policy)).decode()
    assert ID not in masked and ID2 not in masked and PHONE not in masked
    assert "钱**," in masked and "欧阳**," in masked
    assert "158 **** 5432" in masked
    # Addresses to the township by default; other columns and the title row kept.
    assert ",竹篙镇," in masked and "3组" not in masked
    assert masked.startswith("竹篙镇2026年11月低保初审对象花名册\r\n")
    assert "\r\n" in masked and masked.count("\n") == masked.count("\r\n")


def test_gbk_csv_stays_gbk_and_untouched_csv_is_not_copied(tmp_path):
    policy = PrivacySettings()
    path = tmp_path / "list.csv"
    masked = masked_bytes(path, _csv_bytes(ROSTER, "gbk"), policy, Columns.of(policy))
    assert "欧阳**".encode("gbk") in masked
    clean = _csv_bytes([["序号", "村"], ["1", "竹篙村"]])
    assert masked_bytes(path, clean, policy, Columns.of(policy)) is None


def test_xlsx_is_masked_cell_by_cell_with_comments_and_numeric_cells(tmp_path):
    policy = PrivacySettings()
    data = masked_bytes(tmp_path / "a.xlsx", _xlsx_bytes(ROSTER), policy, Columns.of(policy))
    cells = _xlsx_cells(data)
    text = "\n".join(cells)
    assert ID not in text and ID2 not in text and PHONE not in text
    assert "139****4567" in cells and "钱**" in cells and "竹篙镇" in cells
    assert "核对人电话139****4567" in text


def test_xlsx_copy_is_the_same_bytes_every_time(tmp_path, monkeypatch):
    import time

    policy = PrivacySettings()
    original = _xlsx_bytes(ROSTER)
    first = masked_bytes(tmp_path / "a.xlsx", original, policy, Columns.of(policy))
    later = time.time() + 7200  # two hours on: zip times would differ
    monkeypatch.setattr(time, "time", lambda: later)
    second = masked_bytes(tmp_path / "a.xlsx", original, policy, Columns.of(policy))
    assert first == second
    core = zipfile.ZipFile(io.BytesIO(first)).read("docProps/core.xml").decode()
    assert core.count("2026-") in (0, 2) or "1980" in core  # created == modified


@pytest.mark.parametrize(
    ("address", "level", "cut"),
    [
        ("五凤镇白果村3组12号", "township", "五凤镇"),
        ("五凤镇白果村3组12号", "village", "五凤镇白果村"),
        ("五凤镇白果村3组12号", "group", "五凤镇白果村3组"),
        ("金堂县赵镇镇江村三组", "village", "金堂县赵镇镇江村"),
        ("官仓街道光华社区5栋2单元", "group", "官仓街道光华社区"),
        ("白果村3社", "township", "*****"),  # no township named: nothing shown
    ],
)
def test_addresses_are_cut_to_the_configured_level(address, level, cut):
    assert cut_address(address, level) == cut
    assert cut_address(cut, level) == cut  # masking twice changes nothing


def test_declared_public_columns_stay_whole():
    policy = PrivacySettings()
    body = "| 户主 | 联系电话 | 住址 |\n|---|---|---|\n| 周大勇 | 13981234567 | 五凤镇金箱村2组 |"
    masked = mask_markdown(body, policy, Columns.of(policy))
    assert "周*" in masked and "139****4567" in masked and "| 五凤镇 |" in masked
    kept = mask_markdown(body, policy, Columns.of(policy, ["names", "联系电话"]))
    assert "周大勇" in kept and "13981234567" in kept and "| 五凤镇 |" in kept


# --- through the pipeline -------------------------------------------------------------


def _item_file(folder, attachments: str, *, catalog="poverty.dibao-initial", extra=""):
    path = folder / "dibao.md"
    path.write_text(
        f"""+++
id = "jt-dibao-1"
catalog = "{catalog}"
title = "竹篙镇2026年11月农村最低生活保障初审对象名单公示"
publisher = "金堂县竹篙镇人民政府"
formed_on = 2026-11-20
{extra}
{attachments}
+++
| 序号 | 申请人 | 家庭人口 | 保障人数 |
|---|---|---|---|
| 1 | 钱永福 | 2 | 2 |
""",
        encoding="utf-8",
    )
    return path


def test_channels_and_archive_get_the_masked_copy_never_the_original(
    make_publisher, script, tmp_path
):
    items = tmp_path / "items"
    items.mkdir()
    (items / "roster.csv").write_bytes(_csv_bytes(ROSTER))
    _xlsx = _xlsx_bytes(ROSTER)
    (items / "roster.xlsx").write_bytes(_xlsx)
    path = _item_file(
        items,
        '[[attachments]]\ntitle = "花名册"\npath = "roster.csv"\n'
        '[[attachments]]\ntitle = "花名册（表格）"\npath = "roster.xlsx"',
    )
    received = []
    script.on_deliver = lambda channel, item: received.append(item)
    publisher = make_publisher(
        channels={"recorder": {"every_item": True}, "archive": {"every_item": True}}
    )
    result = publisher.publish_paths([path])
    assert result.exit_code == 0, result.problems
    (item,) = received
    for attachment in item.attachments:
        assert (tmp_path / "state" / "prepared") in attachment.path.parents
        data = attachment.path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == attachment.sha256
        text = (
            data.decode() if attachment.filename.endswith(".csv") else "\n".join(_xlsx_cells(data))
        )
        assert ID not in text and PHONE not in text and "钱永福" not in text
    assert "钱*" in item.body
    # The originals are untouched; the archive holds only masked bytes.
    assert ID.encode() in (items / "roster.csv").read_bytes()
    for file in (tmp_path / "state").rglob("*"):
        if file.is_file() and file.suffix in (".csv", ".json", ".md", ".txt"):
            assert ID not in file.read_text(encoding="utf-8", errors="replace"), file
    # Publishing again (new process, same files) makes no new edition.
    publisher.close()
    again = make_publisher(
        channels={"recorder": {"every_item": True}, "archive": {"every_item": True}}
    )
    assert again.publish_paths([path], reread=True).exit_code == 0
    assert again.history("jt-dibao-1").editions[-1].edition == 1


def test_an_unreadable_attachment_needs_checked_and_the_declaration_is_stored(
    make_publisher, tmp_path
):
    items = tmp_path / "items"
    items.mkdir()
    (items / "scan.pdf").write_bytes(b"%PDF-1.4\n%fake scan\n")
    attach = '[[attachments]]\ntitle = "扫描件"\npath = "scan.pdf"'
    publisher = make_publisher()
    result = publisher.publish_paths([_item_file(items, attach)])
    assert result.exit_code == 2
    (problem,) = result.problems
    assert problem.field == "attachments.0.checked" and "checked = true" in problem.fix
    assert not publisher.ledger.latest_editions(["jt-dibao-1"]).get("jt-dibao-1")

    result = publisher.publish_paths([_item_file(items, attach + "\nchecked = true")])
    assert result.exit_code == 0, result.problems
    payload, _, _ = publisher.ledger.edition("jt-dibao-1")
    assert payload["attachments"][0]["checked"] is True


def test_a_broken_readable_attachment_is_refused_by_name(make_publisher, tmp_path):
    items = tmp_path / "items"
    items.mkdir()
    (items / "roster.xlsx").write_bytes(b"not a zip at all")
    path = _item_file(items, '[[attachments]]\ntitle = "花名册"\npath = "roster.xlsx"')
    result = make_publisher().publish_paths([path])
    assert result.exit_code == 2
    assert [p.field for p in result.problems] == ["attachments.0.path"]
    assert "XLSX" in result.problems[0].fix


def test_public_by_law_from_the_catalogue_and_the_item_is_recorded(make_publisher, tmp_path):
    catalogue = tmp_path / "extra.toml"
    catalogue.write_text(
        """[[entry]]
key = "discipline.notice"
domain = "poverty"
name = "违纪违规问题通报"
basis = "《中国共产党纪律处分条例》"
subject = "县纪委监委"
responsible_unit = "金堂县纪委监委"
public_by_law = ["names"]
""",
        encoding="utf-8",
    )
    items = tmp_path / "items"
    items.mkdir()
    path = _item_file(items, "", catalog="discipline.notice", extra='public_by_law = ["联系电话"]')
    text = path.read_text(encoding="utf-8").replace(
        "| 序号 | 申请人 | 家庭人口 | 保障人数 |\n|---|---|---|---|\n| 1 | 钱永福 | 2 | 2 |",
        "| 序号 | 姓名 | 联系电话 | 身份证号 |\n|---|---|---|---|\n"
        f"| 1 | 钱永福 | {PHONE} | {ID} |",
    )
    path.write_text(text, encoding="utf-8")
    publisher = make_publisher(catalogue=["default", str(catalogue)])
    result = publisher.publish_paths([path])
    assert result.exit_code == 0, result.problems
    payload, _, _ = publisher.ledger.edition("jt-dibao-1")
    assert payload["public_by_law"] == ["names", "联系电话"]
    assert "钱永福" in payload["body"] and PHONE in payload["body"]
    assert ID not in payload["body"]  # an ID number column was not declared


def test_a_personal_number_in_the_id_or_a_file_name_is_refused(make_publisher, tmp_path):
    items = tmp_path / "items"
    items.mkdir()
    (items / f"周大勇-{ID}.csv").write_text("序号,村\n1,竹篙村\n", encoding="utf-8")
    path = _item_file(items, f'[[attachments]]\ntitle = "名单"\npath = "周大勇-{ID}.csv"')
    path.write_text(
        path.read_text(encoding="utf-8").replace('id = "jt-dibao-1"', f'id = "jt-{ID}"'),
        encoding="utf-8",
    )
    result = make_publisher().publish_paths([path])
    assert result.exit_code == 2
    assert sorted(p.field for p in result.problems) == ["attachments.0.path", "id"]
    assert all(ID not in p.problem and ID not in p.fix for p in result.problems)
