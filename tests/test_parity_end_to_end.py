"""Issue 11, done when: publish the examples to every channel (the platform and WeChat
simulators over loopback, the portal, the real notice_board and broadcast channels),
confirm some postings, edit one item, then check the exact parity report: the stale
board, the missing confirmations, the postings past their 公示期, an item past its
statutory deadline. After the replacement and the missing confirmations are recorded
and the expired postings taken down, parity holds and `gongkai parity` exits 0."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime

from clihelp import EXAMPLES, run

SITE = "https://www.jintang.gov.cn/zwgk/"
CHANNELS = {
    "portal": {"every_item": True, "site_url": SITE},
    "platform": {"base_url": "sandbox", "default_column": "zwgk"},
    "wechat": {
        "base_url": "sandbox",
        "content_source_url_template": SITE + "items/{id}/",
    },
    "notice_board": {"portal_url": SITE},
    "broadcast": {},
}
#: Offline deliveries of the examples: (item, channel, area).
OFFLINE = [
    ("jt-2026-dilapidated-0403", "notice_board", "五凤镇"),
    ("jt-2026-education-0801", "broadcast", "全县"),
    ("jt-2026-housing-0301", "notice_board", "全县"),
    ("jt-2026-land-0101", "notice_board", "三溪镇花园村"),
    ("jt-2026-land-0102", "broadcast", "三溪镇花园村"),
    ("jt-2026-land-0102", "notice_board", "三溪镇花园村"),
    ("jt-2026-poverty-0501", "notice_board", "竹篙镇"),
    ("jt-2026-poverty-0502", "notice_board", "全县"),
    ("jt-2026-relocation-0201", "notice_board", "赵镇街道十里社区"),
    ("jt-2026-relocation-0202", "notice_board", "赵镇街道十里社区"),
]
#: The one posting nobody confirms until the end.
FORGOTTEN = ("jt-2026-relocation-0201", "notice_board", "赵镇街道十里社区")
EDITED = "jt-2026-land-0101"


def findings(report) -> list[tuple[str, str, str, str]]:
    """(item, channel, area, state) of everything not at parity, plus late items."""
    found = [(i.item_id, "-", "", "late") for i in report.items if i.late]
    for item in report.items:
        for channel in item.channels:
            for area in channel.areas or ():
                if area.status != "ok":
                    found.append((item.item_id, channel.channel, area.area, area.state))
            if not channel.areas and channel.status != "ok":
                found.append((item.item_id, channel.channel, "", channel.state))
    return sorted(found)


def test_parity_from_publish_to_every_wall_confirmed(make_publisher, clock, tmp_path):
    clock.now = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # Friday, 10:00 in Beijing
    items = tmp_path / "items"
    shutil.copytree(EXAMPLES, items)
    publisher = make_publisher(channels=CHANNELS, plugins=[])
    result = publisher.publish_paths([items])
    assert not result.problems
    clock.advance(hours=1)
    publisher.publish()  # WeChat's publishing jobs are polled to their end

    # Friday 27 November, right after publishing: every notice and script waits
    # for a person; nothing is overdue, so parity is not broken.
    report = publisher.parity()
    waiting = [f for f in findings(report) if f[1] in ("notice_board", "broadcast")]
    assert waiting == [(*o, "awaiting") for o in OFFLINE]
    assert report.ok
    board = next(i for i in report.items if i.item_id == "jt-2026-dilapidated-0403")
    assert (board.publisher, board.township) == ("金堂县城乡建设局", "五凤镇")

    for item_id, channel, area in OFFLINE:
        if (item_id, channel, area) != FORGOTTEN:
            publisher.confirm(item_id, channel, area=area, at=date(2026, 11, 27), by="文书")

    # Tuesday 1 December: the tender notice scheduled for 30 November has not gone out
    # (no run since), and its one-working-day deadline has passed.
    clock.advance(days=4)
    late = publisher.parity()
    assert ("jt-2026-trading-0702", "-", "", "late") in findings(late)
    assert not late.ok

    # Wednesday 2 December: the land pre-announcement is corrected (edition 2); the run
    # also sends the tender notice. Its board now shows an old edition: stale, and only
    # waiting while the replacement is fresh.
    clock.advance(days=1)
    source = items / "01-land-pre-announcement.md"
    source.write_text(source.read_text("utf-8").replace("三溪镇", "三溪镇（更正）", 1), "utf-8")
    publisher.publish_paths([items])
    row = publisher.ledger.row(EDITED, "notice_board")
    assert (row.edition, row.receipt["data"]["action"]) == (2, "replace")

    # Friday 4 December: the exact report.
    clock.advance(days=2)
    report = publisher.parity()
    assert findings(report) == [
        ("jt-2026-dilapidated-0403", "notice_board", "五凤镇", "expired"),
        ("jt-2026-housing-0301", "notice_board", "全县", "expired"),
        ("jt-2026-land-0101", "notice_board", "三溪镇花园村", "stale"),
        ("jt-2026-poverty-0502", "notice_board", "全县", "expired"),
        ("jt-2026-relocation-0201", "notice_board", "赵镇街道十里社区", "overdue"),
        ("jt-2026-relocation-0202", "notice_board", "赵镇街道十里社区", "expired"),
    ]
    assert not report.ok
    edited = next(i for i in report.items if i.item_id == EDITED)
    stale = next(c for c in edited.channels if c.channel == "notice_board")
    assert stale.edition == 1 and "edition 2 replaces it (请更换)" in stale.detail
    others = {c.channel: c.state for c in edited.channels if c.channel != "notice_board"}
    assert others == {"platform": "current", "portal": "current"}
    overdue = next(i for i in report.items if i.item_id == FORGOTTEN[0])
    assert "(7 days; overdue)" in overdue.problems[0]
    # 7 working days from Friday 27 November end on Monday 7 December: still up.
    assert ("jt-2026-poverty-0501", "notice_board") not in {f[:2] for f in findings(report)}

    publisher.confirm(EDITED, "notice_board", area="三溪镇花园村", at=date(2026, 12, 4), by="文书")
    publisher.confirm(*FORGOTTEN[:2], area=FORGOTTEN[2], at=date(2026, 12, 4), by="文书")
    for item_id, channel, area, state in findings(publisher.parity()):
        assert state == "expired"
        publisher.confirm(
            item_id, channel, area=area, at=date(2026, 12, 4), by="文书", taken_down=True
        )
    final = publisher.parity()
    assert findings(final) == [] and final.ok
    ended = next(i for i in final.items if i.item_id == "jt-2026-relocation-0202")
    assert [c.state for c in ended.channels if c.channel == "notice_board"] == ["ended"]

    # The command, as cron runs it: exit 0, the JSON report and the page.
    config = tmp_path / "config.toml"
    config.write_text(
        f'[gongkai]\nstate_dir = "{tmp_path / "state"}"\norg_code = "11510121009087532X"\n'
        '[channels.portal]\nevery_item = true\n[channels.platform]\nbase_url = "sandbox"\n'
        '[channels.wechat]\nbase_url = "sandbox"\n[channels.notice_board]\n'
        "[channels.broadcast]\n",
        "utf-8",
    )
    page = tmp_path / "parity.html"
    done = run("parity", "--now", "2026-12-04T18:00", "--json", "--html", str(page),
               config=config)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] and data["exit_code"] == 0 and data["counts"]["broken"] == 0
    assert "一致性正常" in page.read_text("utf-8")
    human = run("parity", "--now", "2026-12-04T18:00", config=config)
    assert human.returncode == 0 and "parity: ok on 2026-12-04" in human.stdout
