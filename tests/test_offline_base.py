"""The offline base class: areas, the edition folder, the clerk's instruction sheets,
the 公示期, and the receipt shape that `gongkai confirm` and `gongkai parity` read."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gongkai.catalogue import Entry, Period
from gongkai.channel import ChannelContext, PreparedItem, Receipt
from gongkai.channels.offline import AreaJob, OfflineChannel
from gongkai.testing import ChannelContract


class PlainNotice(OfflineChannel):
    """The smallest offline channel: a text file per area."""

    name = "plain_notice"

    def render_area(self, item: PreparedItem, area: str, job: AreaJob) -> bytes:
        return f"{area}\n{item.title}\n第{item.edition}版 {item.short_hash}\n".encode()


class TestPlainNoticeContract(ChannelContract):
    channel_class = PlainNotice
    config: dict = {}
    discoverable = False  # defined here, not installed with an entry point


def make_item(edition: int = 1, area: str | None = "三溪镇花园村、西河村", **extra) -> PreparedItem:
    fields = {
        "id": "offline-001",
        # A catalogue entry with posting_min = 7 calendar days.
        "catalog": "dilapidated.subsidy-list",
        "title": "三溪镇2026年农村危房改造补助对象公示",
        "body": "经农户申请、村民代表评议，现将补助对象公示如下。",
        "publisher": "三溪镇人民政府",
        "document_number": "三溪府〔2026〕12号",
        "formed_on": date(2026, 11, 20),
        "area": area,
        "edition": edition,
        "content_hash": f"{edition:x}" * 64,
        **extra,
    }
    return PreparedItem(**fields)


def make_channel(tmp_path: Path, day: datetime, **config) -> PlainNotice:
    context = ChannelContext(name="plain_notice", state_dir=tmp_path, clock=lambda: day)
    return PlainNotice(PlainNotice.Config(**config), context)


# Thursday 26 November 2026, 10:00 in Beijing.
THURSDAY = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


@pytest.fixture
def channel(tmp_path: Path) -> PlainNotice:
    return make_channel(tmp_path, THURSDAY)


@pytest.mark.parametrize(
    ("area", "expected"),
    [
        ("三溪镇花园村", ["三溪镇花园村"]),
        ("三溪镇花园村、西河村", ["三溪镇花园村", "西河村"]),
        ("镇A村，镇B村; 镇C村；镇A村 ,", ["镇A村", "镇B村", "镇C村"]),
        ("竹篙镇", ["竹篙镇"]),
        (None, ["全县"]),
    ],
)
def test_areas_split_on_chinese_and_latin_separators(channel, area, expected):
    assert channel.areas(make_item(area=area)) == expected


def test_an_item_without_area_goes_to_the_configured_default(tmp_path):
    channel = make_channel(tmp_path, THURSDAY, default_area="城厢镇")
    assert channel.areas(make_item(area=None)) == ["城厢镇"]


def test_deliver_writes_one_file_per_area_and_an_instruction_sheet(channel, tmp_path):
    item = make_item()
    receipt = channel.deliver(item, channel.render(item), None)
    folder = tmp_path / "plain_notice" / "offline-001" / "e1"
    assert receipt.status == "awaiting-confirmation"
    assert receipt.artifact == str(folder)
    assert receipt.data == {
        "edition": 1,
        "short_hash": "11111111",
        "action": "post",
        "replaces_edition": None,
        "areas": {
            "三溪镇花园村": {"file": str(folder / "三溪镇花园村.txt")},
            "西河村": {"file": str(folder / "西河村.txt")},
        },
        "instructions": str(folder / "instructions.txt"),
        "posting": {"from": "2026-11-26", "to": "2026-12-02", "days": 7, "unit": "calendar"},
    }
    assert (folder / "西河村.txt").read_text().startswith("西河村\n")
    sheet = (folder / "instructions.txt").read_text()
    assert "操作：请张贴。" in sheet
    assert "公示期：自2026年11月26日至2026年12月2日（7天）" in sheet
    assert "1. 三溪镇花园村：三溪镇花园村.txt" in sheet
    assert "gongkai confirm offline-001 plain_notice --area" in sheet


def test_a_rerun_writes_the_same_files(channel, tmp_path):
    item = make_item()
    first = channel.deliver(item, channel.render(item), None)
    before = {p: p.read_bytes() for p in Path(first.artifact).iterdir()}
    second = channel.deliver(item, channel.render(item), None)
    assert first == second
    assert {p: p.read_bytes() for p in Path(second.artifact).iterdir()} == before


def test_a_new_edition_is_a_replacement_and_names_areas_to_clear(channel):
    first = make_item()
    old = channel.deliver(first, channel.render(first), None)
    second = make_item(edition=2, area="三溪镇花园村")
    receipt = channel.deliver(second, channel.render(second), old)
    assert receipt.data["action"] == "replace"
    assert receipt.data["replaces_edition"] == 1
    assert list(receipt.data["areas"]) == ["三溪镇花园村"]
    assert receipt.data["take_down_areas"] == ["西河村"]
    sheet = Path(receipt.data["instructions"]).read_text()
    assert "操作：请更换。撤下第1版（校验码 11111111），张贴第2版。" in sheet
    assert "以下地点不再张贴本事项，请撤下第1版：" in sheet
    assert Path(old.artifact).is_dir(), "the old edition's files stay for the record"


def test_withdraw_writes_a_take_down_sheet_for_every_posted_area(channel, tmp_path):
    item = make_item()
    posted = channel.deliver(item, channel.render(item), None)
    receipt = channel.withdraw(item, posted, "补助对象名单有误")
    folder = tmp_path / "plain_notice" / "offline-001" / "take-down"
    assert receipt.status == "awaiting-confirmation"
    assert receipt.artifact == str(folder)
    assert receipt.data["action"] == "take-down"
    assert receipt.data["edition"] == 1
    assert receipt.data["areas"] == posted.data["areas"]
    sheet = (folder / "instructions.txt").read_text()
    assert "操作：请撤下。本事项已撤回，请勿再张贴。" in sheet
    assert "撤回原因：补助对象名单有误" in sheet
    assert "西河村：西河村.txt" in sheet
    assert "--taken-down" in sheet


def test_withdraw_after_an_unknown_outcome_covers_every_area(channel):
    receipt = channel.withdraw(make_item(), Receipt(), "")
    assert list(receipt.data["areas"]) == ["三溪镇花园村", "西河村"]


def working_entry(days: int) -> Entry:
    return Entry(
        key="t.entry",
        domain="t",
        name="测试",
        basis="测试",
        subject="测试",
        responsible_unit="测试",
        posting_min=Period(days=days, unit="working"),
    )


def test_posting_period_in_working_days_counts_the_publish_day(channel):
    period = channel.posting_period(make_item(), working_entry(10), date(2026, 11, 26))
    # Thu 26, Fri 27, Mon 30 Nov, 1–4 Dec, 7–9 Dec.
    assert period == {"from": "2026-11-26", "to": "2026-12-09", "days": 10, "unit": "working"}


def test_posting_period_published_on_a_saturday_starts_on_monday(channel):
    period = channel.posting_period(make_item(), working_entry(2), date(2026, 11, 28))
    assert period == {"from": "2026-11-30", "to": "2026-12-01", "days": 2, "unit": "working"}


def test_posting_period_skips_the_national_day_holiday(channel):
    period = channel.posting_period(make_item(), working_entry(3), date(2026, 9, 30))
    assert period["from"] == "2026-09-30"
    # 1–7 October are the holiday; the 8th is the next working day.
    assert period["to"] > "2026-10-07"


def test_the_item_override_wins_when_longer_and_keeps_the_unit(channel):
    period = channel.posting_period(
        make_item(posting_days=15), working_entry(10), date(2026, 11, 26)
    )
    assert (period["days"], period["unit"]) == (15, "working")
    longer_minimum = channel.posting_period(
        make_item(posting_days=5), working_entry(10), date(2026, 11, 26)
    )
    assert longer_minimum["days"] == 10


def test_no_minimum_and_no_override_means_no_posting_period(channel):
    assert channel.posting_period(make_item(), None, date(2026, 11, 26)) is None
    period = channel.posting_period(make_item(posting_days=3), None, date(2026, 11, 26))
    assert period == {"from": "2026-11-26", "to": "2026-11-28", "days": 3, "unit": "calendar"}


def test_area_names_that_cannot_be_file_names_are_made_safe(channel):
    item = make_item(area="镇A/村、..")
    receipt = channel.deliver(item, channel.render(item), None)
    names = [Path(v["file"]).name for v in receipt.data["areas"].values()]
    assert names == ["镇A_村.txt", "area.txt"]
    for name in names:
        assert (Path(receipt.artifact) / name).is_file()


def test_render_shows_the_plan_without_writing(channel, tmp_path):
    rendition = channel.render(make_item())
    assert rendition.data["areas"] == {"三溪镇花园村": "三溪镇花园村.txt", "西河村": "西河村.txt"}
    assert not (tmp_path / "plain_notice").exists()


def test_the_deployments_calendar_reaches_the_channel(tmp_path):
    from gongkai import Publisher
    from gongkai.config import settings_from_dict

    settings = settings_from_dict(
        {
            "gongkai": {"state_dir": str(tmp_path)},
            # A local rest day on Friday 27 November 2026.
            "calendar": {"extra_holidays": ["2026-11-27"]},
            "channels": {"notice_board": {}},
        }
    )
    publisher = Publisher(settings, sends=False)
    channel = publisher.channels["notice_board"].instance
    period = channel.posting_period(make_item(), working_entry(2), date(2026, 11, 26))
    assert period["to"] == "2026-11-30"
