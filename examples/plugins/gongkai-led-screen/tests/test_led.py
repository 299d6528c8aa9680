"""The LED screen channel: what it puts on the panel, and a real run of gongkai
against the loopback controller (deliver, update, retry, refusal, withdraw).

Needs the package installed (``pip install -e .[test]``): gongkai finds the channel
through its entry point, as it would in an office."""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime

from gongkai_led_screen.channel import screen_lines
from gongkai_led_screen.simulator import ControllerSimulator

from gongkai import Item, Publisher

#: Thursday 26 November 2026, 10:00 in Beijing.
NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def land_notice(**changes) -> Item:
    """A land pre-announcement: the catalogue posts it for 10 working days."""
    data = {
        "id": "jt-2026-land-0101",
        "catalog": "land.pre-announcement",
        "title": "金堂县人民政府关于三溪镇花园村部分集体土地征收的预公告",
        "body": "征收范围：花园村三组。征收目的：道路建设。土地现状调查：已完成。",
        "publisher": "金堂县人民政府",
        "formed_on": date(2026, 11, 16),
        "area": "三溪镇花园村",
    }
    return Item(**{**data, **changes})


def publisher_for(tmp_path, url: str, **options) -> Publisher:
    extra = "".join(f"{key} = {value!r}\n" for key, value in options.items())
    config = tmp_path / "config.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [gongkai]
            state_dir = "{tmp_path / "state"}"
            org_code = "11510121009087532X"

            [channels.led_screen]
            every_item = true
            url = "{url}"
            """
        )
        + extra.replace("'", '"'),
        encoding="utf-8",
    )
    return Publisher.from_config(config, clock=lambda: NOW, sleep=lambda seconds: None)


def outcome(result, channel: str = "led_screen"):
    [found] = [o for o in result.outcomes if o.channel == channel]
    return found


def test_lines_fit_the_panel_and_never_open_with_punctuation():
    lines = screen_lines("关于公布2026年农村危房改造补助对象（第一批），名单的公告", 8, 10)
    assert all(len(line) <= 8 for line in lines)
    assert not any(line[0] in "，）" for line in lines)
    assert "".join(lines) == "关于公布2026年农村危房改造补助对象（第一批），名单的公告"
    cut = screen_lines("一二三四五六七八九十" * 3, 8, 2)
    assert cut == ["一二三四五六七八", "九十一二三四五…"]


def test_an_item_is_shown_for_its_posting_period(tmp_path):
    with ControllerSimulator(width=16) as controller:
        publisher = publisher_for(tmp_path, controller.url)
        with publisher:
            result = publisher.publish(land_notice())
        assert outcome(result).status == "delivered", outcome(result).detail
        [entry] = controller.showing()
    # 10 working days counted from Thursday 26 November: the weekends do not count.
    assert (entry["from"], entry["to"]) == ("2026-11-26", "2026-12-09")
    assert entry["lines"][0] == "【政务公开】"
    assert entry["lines"][-1] == "公示至12月9日"
    assert "".join(entry["lines"][1:-1]) == land_notice().title
    assert all(len(line) <= 16 for line in entry["lines"])
    assert controller.showing(on="2026-12-10") == []


def test_without_a_posting_period_the_default_days_apply(tmp_path):
    with ControllerSimulator(width=20) as controller:
        publisher = publisher_for(tmp_path, controller.url, line_chars=20, default_days=3)
        item = Item(
            id="jt-2026-housing-0302",
            catalog="housing.policy",
            title="金堂县公共租赁住房申请指南",
            body="申请条件：在本县有稳定工作。申请材料：身份证明。办理流程：个人申请后审核。",
            publisher="金堂县房产管理局",
            formed_on=date(2026, 11, 20),
        )
        with publisher:
            publisher.publish(item)
        [entry] = controller.showing()
    assert (entry["from"], entry["to"]) == ("2026-11-26", "2026-11-28")


def test_a_new_edition_replaces_the_entry_and_a_retry_leaves_one(tmp_path):
    with ControllerSimulator(width=16) as controller:
        publisher = publisher_for(tmp_path, controller.url)
        with publisher:
            publisher.publish(land_notice())
            controller.fail_next(503, method="PUT")  # the update's first try fails
            result = publisher.publish(land_notice(title="关于三溪镇花园村土地征收预公告（更正）"))
        assert outcome(result).status == "updated", outcome(result).detail
        [entry] = controller.showing()
        puts = [r for r in controller.requests if r.method == "PUT"]
    assert entry["edition"] == 2 and "（更正）" in "".join(entry["lines"])
    assert len(puts) == 3  # edition 1, the refused try of edition 2, its retry


def test_a_line_the_panel_cannot_show_fails_with_the_controllers_reason(tmp_path):
    with ControllerSimulator(width=12) as controller:
        publisher = publisher_for(tmp_path, controller.url)  # 16 characters per line
        with publisher:
            result = publisher.publish(land_notice())
    assert outcome(result).status == "failed"
    assert "wider than the panel (12)" in outcome(result).detail
    assert "line_chars" in outcome(result).detail


def test_withdraw_takes_it_off_the_screen(tmp_path):
    with ControllerSimulator(width=16) as controller:
        publisher = publisher_for(tmp_path, controller.url)
        with publisher:
            publisher.publish(land_notice())
            result = publisher.withdraw("jt-2026-land-0101", "征收范围有误")
        assert outcome(result).status == "withdrawn", outcome(result).detail
        assert controller.showing() == []


def test_check_asks_the_controller(tmp_path):
    with ControllerSimulator(width=16) as controller:
        publisher = publisher_for(tmp_path, controller.url)
        with publisher:
            assert publisher.check_channels() == {"led_screen": None}
            controller.fail_next(500)
            assert "HTTP 500" in publisher.check_channels()["led_screen"]
