"""Issue 8's end-to-end check: name lists full of personal data, with a CSV and an XLSX
attachment, published by the real command to every installed channel. Every output
file, request body, ledger row and log line is then searched for the raw numbers and
names; none may be there."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import zipfile
from datetime import date

import openpyxl
import pytest

from clihelp import run, write_config
from gongkai.plugins.masking import ID_CHECK, ID_WEIGHTS, luhn_valid
from support.server import Recorder, start_server


def _id(region: str, born: date, serial: int) -> str:
    body = f"{region}{born:%Y%m%d}{serial:03d}"
    return body + ID_CHECK[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def _card(prefix: str) -> str:
    return next(prefix + str(d) for d in range(10) if luhn_valid(prefix + str(d)))


IDS = [_id("510121", date(1950 + n, n + 1, 10 + n), 100 + n) for n in range(6)]
MOBILES = ["13981234567", "15828765432", "18780011223", "13308096654", "17711112222"]
CARDS = [_card("622202440200123456"), _card("621700380000987654")]
LEGACY = "510121480125198"  # 15 digits, born 1948-01-25
NAMES = ["周大勇", "吴玉兰", "欧阳春梅", "郑光明"]
ADDRESS = "五凤镇金箱村3组27号"
FULL_WIDTH = "１３９８１２３４５６７"  # MOBILES[0] typed with a Chinese input method

ITEM = f"""+++
id = "jt-2026-poverty-0599"
catalog = "poverty.dibao-initial"
title = "五凤镇2026年12月农村最低生活保障初审对象名单公示"
publisher = "金堂县五凤镇人民政府"
formed_on = 2026-11-20
posting_days = 7
area = "五凤镇"
audience = "specific-group"
keywords = ["低保", "初审公示"]
contact = "经办人{MOBILES[4]}"

[[attachments]]
title = "初审对象花名册"
path = "roster.csv"

[[attachments]]
title = "初审对象花名册（表格）"
path = "roster.xlsx"
+++
根据《社会救助暂行办法》第十一条规定，经入户调查、民主评议，现将五凤镇2026年12月农村最低生活保障初审对象名单公示如下：

| 序号 | 申请人 | 身份证号码 | 联系电话 | 家庭住址 | 家庭人口 | 保障人数 |
|---|---|---|---|---|---|---|
| 1 | {NAMES[0]} | {IDS[0]} | {MOBILES[0][:3]} {MOBILES[0][3:7]} {MOBILES[0][7:]} | {ADDRESS} | 2 | 2 |
| 2 | {NAMES[1]} | {IDS[1]} | {MOBILES[1][:3]}-{MOBILES[1][3:7]}-{MOBILES[1][7:]} | 五凤镇建华村1组 | 3 | 2 |
| 3 | {NAMES[2]} | {LEGACY} | {FULL_WIDTH} | 五凤镇五凤社区 | 1 | 1 |

补助资金打卡发放，{NAMES[0]}的账户{CARDS[0]}已核实。
公示期为7个工作日。对公示对象有异议的，可向五凤镇人民政府社会事务办公室反映。
"""

ROSTER = [
    ["五凤镇2026年12月低保初审对象花名册"],
    ["序号", "户主姓名", "身份证号码", "联系电话", "银行卡号", "家庭住址"],
    ["1", NAMES[0], IDS[2], MOBILES[2], CARDS[1], ADDRESS],
    ["2", NAMES[3], IDS[3], MOBILES[3], CARDS[0], "五凤镇金箱村5组8号"],
]


def _forms(value: str) -> set[str]:
    """A raw value as it might show up: as written, digits only, full-width."""
    digits = re.sub(r"[\s\-]", "", value)
    return {value, digits, digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))}


SECRETS = sorted(
    set().union(*(_forms(v) for v in [*IDS[:4], *MOBILES, *CARDS, LEGACY, *NAMES, ADDRESS]))
)


def _texts(data: bytes) -> list[str]:
    """A file's text, and the text of every member when it is a zip (an XLSX)."""
    texts = [data.decode("utf-8", errors="replace")]
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            texts += [archive.read(n).decode("utf-8", errors="replace") for n in archive.namelist()]
    return texts


def _leaks(where: str, text: str) -> list[str]:
    return [f"{where}: {secret}" for secret in SECRETS if secret in text]


@pytest.fixture
def published(tmp_path):
    recorder = Recorder()
    server, url = start_server(recorder)
    items = tmp_path / "items"
    items.mkdir()
    (items / "dibao.md").write_text(ITEM, encoding="utf-8")
    out = io.StringIO(newline="")
    csv.writer(out).writerows(ROSTER)
    (items / "roster.csv").write_text(out.getvalue(), encoding="utf-8")
    book = openpyxl.Workbook()
    for row in ROSTER:
        book.active.append(row)
    book.save(items / "roster.xlsx")
    config = write_config(
        tmp_path,
        f'[channels.webhook]\nurl = "{url}"\nevery_item = true\n'
        "[privacy]\nmask_landlines = false\n",
    )
    runs = [
        run("publish", str(items), "--json", "-v", config=config),
        run("status", "--json", config=config),
        run("history", "jt-2026-poverty-0599", "--json", config=config),
        run("render", "jt-2026-poverty-0599", "--channel", "webhook", config=config),
        run("validate", "--explain", str(items), config=config),
        run("validate", "--explain", "--json", str(items), config=config),
    ]
    yield tmp_path, runs, recorder
    server.shutdown()
    server.server_close()


def test_no_raw_personal_data_in_any_output_payload_ledger_row_or_log(published):
    tmp_path, runs, recorder = published
    assert runs[0].returncode == 0, runs[0].stderr
    assert recorder.bodies, "the webhook received nothing"
    leaks = []
    for number, result in enumerate(runs):
        leaks += _leaks(f"run {number} stdout", result.stdout)
        leaks += _leaks(f"run {number} stderr (logs)", result.stderr)
    leaks += _leaks("webhook request bodies", repr(recorder.bodies))
    state = tmp_path / "state"
    for file in state.rglob("*"):
        if file.is_file():
            for text in _texts(file.read_bytes()):
                leaks += _leaks(str(file.relative_to(tmp_path)), text)
    # Every row of every table of the ledger, read through SQLite (not only its pages).
    with sqlite3.connect(state / "ledger.sqlite3") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - test-only
                leaks += _leaks(f"ledger table {table}", repr(row))
    assert not leaks, "\n".join(leaks)


def test_what_was_published_is_the_masked_list(published):
    tmp_path, runs, recorder = published
    body = recorder.bodies[0]["item"]["body"]
    assert "周**" in body and "欧阳**" in body and "| 五凤镇 |" in body
    assert "510121********" in body and "139 **** 4567" in body
    # Both attachments went out as masked copies with their own hashes.
    hashes = {a["filename"]: a["sha256"] for a in recorder.bodies[0]["item"]["attachments"]}
    copies = {p.name: p for p in (tmp_path / "state" / "prepared").rglob("roster.*")}
    assert set(copies) == set(hashes) == {"roster.csv", "roster.xlsx"}
    explain = runs[4].stdout
    assert "an ID number → 510121********" in explain
    assert "a masked copy" in explain and "身份证号码" in explain


def test_explain_json_lists_each_change_without_the_value(published):
    import json

    _, runs, _ = published
    report = json.loads(runs[5].stdout)
    (item,) = report["items"]
    fields = {c["field"] for c in item["changes"]}
    assert {"body", "contact", "attachments.0", "attachments.1"} <= fields
    contact = next(c for c in item["changes"] if c["field"] == "contact")
    assert contact == {
        "field": "contact",
        "where": "",
        "before": "a mobile number",
        "after": "177****2222",
    }
    assert runs[5].returncode == 0 and report["problems"] == []
