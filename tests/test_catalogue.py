"""The catalogue, routing, validation and working days."""

from __future__ import annotations

from datetime import date

import pytest

from gongkai.catalogue import Catalogue
from gongkai.errors import ConfigError
from gongkai.workdays import WorkCalendar
from support import EIGHT_AREAS

SEED_UNITS = {
    "教育局",
    "经信局",
    "民政局",
    "国土局",
    "建设局",
    "规划局",
    "城管局",
    "水务局",
    "农林局",
    "卫计局",
    "房管局",
    "公共资源交易中心",
}


def test_default_catalogue_covers_the_seed():
    catalogue = Catalogue.load()
    assert len(catalogue) >= 30
    domains = {e.domain for e in catalogue.entries.values()}
    assert domains >= EIGHT_AREAS
    units = {e.responsible_unit.removeprefix("金堂县") for e in catalogue.entries.values()}
    assert units >= SEED_UNITS
    for entry in catalogue.entries.values():
        assert entry.basis and entry.update_cycle and entry.channels.required, entry.key


def test_routing_adds_and_skips(item_factory):
    catalogue = Catalogue.load()
    entry = catalogue.get("land.compensation-notice")
    item = item_factory(catalog=entry.key, channels={"add": ["wechat", "sms"]})
    assert catalogue.route(item, entry) == (
        "platform",
        "portal",
        "notice_board",
        "broadcast",
        "wechat",
        "sms",
    )
    optional = item_factory(catalog="housing.policy", channels={"skip": ["wechat"]})
    assert "wechat" not in catalogue.route(optional, catalogue.get("housing.policy"))


def test_required_channel_cannot_be_skipped(item_factory):
    catalogue = Catalogue.load()
    item = item_factory(channels={"skip": ["portal"]})
    [problem] = catalogue.problems(item, "x.md")
    assert problem.field == "channels.skip"
    assert "required" in problem.problem


def test_missing_required_elements_are_named(item_factory):
    catalogue = Catalogue.load()
    item = item_factory(
        catalog="land.compensation-notice", body="关于征地的公告。补偿标准另行通知。"
    )
    problems = catalogue.problems(item, "notice.md")
    missing = sorted(p.problem.rsplit("'", 2)[-2] for p in problems)
    assert missing == ["安置方式", "异议", "补偿登记"]
    assert all(p.source == "notice.md" and p.field == "body" for p in problems)


def test_posting_days_below_minimum(item_factory):
    catalogue = Catalogue.load()
    body = "补偿标准、安置方式、补偿登记和异议办法如下。"
    item = item_factory(catalog="land.compensation-notice", body=body, posting_days=10)
    [problem] = catalogue.problems(item, "n.md")
    assert problem.field == "posting_days" and "30" in problem.fix


def test_unknown_catalogue_key(item_factory):
    [problem] = Catalogue.load().problems(item_factory(catalog="land.nope"), "n.md")
    assert problem.field == "catalog"


def test_unknown_catalogue_key_suggests_close_keys(item_factory):
    catalogue = Catalogue.load()
    [problem] = catalogue.problems(item_factory(catalog="land.aproval"), "n.md")
    assert "did you mean land.approval?" in problem.fix
    assert "`gongkai catalogue`" in problem.fix and "docs/" not in problem.fix
    assert catalogue.suggest("征地补偿安置方案") == ["land.compensation-notice"]
    assert catalogue.suggest("zzz") == []


def test_working_days_skip_national_day_and_count_make_up_saturday():
    calendar = WorkCalendar()
    # 2026-10-01..07 are holidays; Saturday 2026-10-10 is a make-up working day.
    assert calendar.add_working_days(date(2026, 9, 29), 5) == date(2026, 10, 12)
    assert calendar.add(date(2026, 9, 29), 5, "calendar") == date(2026, 10, 4)


def test_deadline_uses_entry_time_limit(item_factory):
    catalogue = Catalogue.load()
    item = item_factory(catalog="poverty.dibao-initial", formed_on=date(2026, 9, 29))
    assert catalogue.deadline(item, WorkCalendar()) == date(2026, 10, 19)


def test_unknown_year_falls_back_to_weekdays_and_config_overrides():
    calendar = WorkCalendar.from_lists(holidays=[date(2031, 1, 1)], workdays=[date(2031, 1, 4)])
    assert not calendar.is_workday(date(2031, 1, 1))  # configured holiday (a Wednesday)
    assert calendar.is_workday(date(2031, 1, 2))  # weekday fallback
    assert calendar.is_workday(date(2031, 1, 4))  # configured make-up Saturday
    assert not calendar.is_workday(date(2031, 1, 5))


def test_extra_catalogue_file_overrides_and_extends(tmp_path):
    extra = tmp_path / "local.toml"
    extra.write_text(
        """
[domains]
tv = "广播电视"
[[entry]]
key = "housing.policy"
domain = "housing"
name = "保障性住房政策（本县）"
basis = "本县规定"
subject = "金堂县房管局"
responsible_unit = "金堂县房管局"
channels = { required = ["portal"] }
""",
        encoding="utf-8",
    )
    catalogue = Catalogue.load(["default", extra])
    assert catalogue.get("housing.policy").name == "保障性住房政策（本县）"
    assert "tv" in catalogue.domains


def test_bad_catalogue_file_names_the_entry(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[domains]\nx = "X"\n[[entry]]\nkey = "x.y"\ndomain = "x"\n', "utf-8")
    with pytest.raises(ConfigError) as info:
        Catalogue.load([bad])
    assert str(bad) in str(info.value) and "entry[0]" in str(info.value)
    assert "`gongkai catalogue KEY --json`" in info.value.fix


def test_a_misspelt_table_in_a_catalogue_file_is_an_error(tmp_path):
    path = tmp_path / "extra.toml"
    path.write_text('[[entries]]\nkey = "x.y"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Catalogue.load(["default", path])
    assert info.value.file == str(path) and info.value.key == "entries"
    assert "[[entry]]" in info.value.fix
