"""The broadcast channel: a loudspeaker script per area, its reading time and repeat
schedule, replacement and take-down, and the optional espeak-ng WAV."""

from __future__ import annotations

import math
import shutil
import subprocess
import wave
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from gongkai import Item, Publisher
from gongkai.channel import ChannelContext, PreparedItem
from gongkai.channels.broadcast import BroadcastChannel
from gongkai.channels.broadcast.channel import SPOKEN_MARK
from gongkai.config import settings_from_dict
from gongkai.testing import ChannelContract

# Thursday 26 November 2026, 10:00 in Beijing.
THURSDAY = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)

BODY = """根据《社会救助暂行办法》第十一条规定，经入户调查、民主评议，现将2026年11月农村最低生活保障初审对象名单公示如下：

| 序号 | 村 | 申请人 | 家庭人口 | 保障人数 | 拟保障金额（元/月） |
|---|---|---|---|---|---|
| 1 | 花园村 | 钱** | 2 | 2 | 860 |
| 2 | 西河村 | 何** | 3 | 2 | 860 |
| 3 | 西河村 | 许** | 1 | 1 | 430 |

公示期为7个工作日，监督电话：028-84951100。
"""


class TestBroadcastContract(ChannelContract):
    channel_class = BroadcastChannel
    config: dict = {}


def make_item(edition: int = 1, area: str | None = "三溪镇花园村、西河村", **extra) -> PreparedItem:
    fields = {
        "id": "bc-001",
        # posting_min: 7 working days
        "catalog": "poverty.dibao-initial",
        "title": "三溪镇2026年11月农村最低生活保障初审对象名单公示",
        "body": BODY,
        "publisher": "金堂县三溪镇人民政府",
        "document_number": "三溪府〔2026〕12号",
        "formed_on": date(2026, 11, 20),
        "area": area,
        "contact": "028-84951100",
        "edition": edition,
        "content_hash": f"{edition:x}" * 64,
        **extra,
    }
    return PreparedItem(**fields)


def make_channel(tmp_path: Path, **config) -> BroadcastChannel:
    context = ChannelContext(name="broadcast", state_dir=tmp_path, clock=lambda: THURSDAY)
    return BroadcastChannel(BroadcastChannel.Config(**config), context)


@pytest.fixture
def channel(tmp_path: Path) -> BroadcastChannel:
    return make_channel(tmp_path)


def deliver(channel: BroadcastChannel, item: PreparedItem, previous=None):
    return channel.deliver(item, channel.render(item), previous)


def spoken_part(path: str) -> str:
    return Path(path).read_text("utf-8").split(SPOKEN_MARK, 1)[1]


def test_one_script_per_area_awaiting_confirmation(channel, tmp_path):
    receipt = deliver(channel, make_item())
    assert receipt.status == "awaiting-confirmation"
    folder = tmp_path / "broadcast" / "bc-001" / "e1"
    assert receipt.artifact == str(folder)
    assert receipt.data["areas"] == {
        "三溪镇花园村": {"file": str(folder / "三溪镇花园村.txt")},
        "西河村": {"file": str(folder / "西河村.txt")},
    }
    assert sorted(p.name for p in folder.iterdir()) == [
        "instructions.txt",
        "三溪镇花园村.txt",
        "西河村.txt",
    ]
    script = (folder / "西河村.txt").read_text("utf-8")
    assert script.startswith("【播音员须知】\n播送地点：西河村\n")
    # A clerk's sheet in broadcast words.
    sheet = (folder / "instructions.txt").read_text("utf-8")
    assert "操作：请播送。" in sheet and "期满后请停止播送" in sheet
    assert "gongkai confirm bc-001 broadcast --area" in sheet


def test_the_script_says_everything_as_it_is_spoken(channel):
    receipt = deliver(channel, make_item())
    spoken = spoken_part(receipt.data["areas"]["三溪镇花园村"]["file"])
    lines = spoken.strip().split("\n")
    assert lines[0] == "各位村民请注意，现在播送金堂县三溪镇人民政府发布的政务公开信息。"
    assert lines[1] == "三溪镇二〇二六年十一月农村最低生活保障初审对象名单公示。"
    assert lines[2] == "文号：三溪府二〇二六年十二号。"
    assert "共三户，拟保障金额合计每月两千一百五十元，名单详见村公示栏。" in lines
    # 公示期 from the catalogue: 7 working days from Thursday 26 November.
    assert "公示期自二〇二六年十一月二十六日至二〇二六年十二月四日（七个工作日）。" in lines
    assert "如有疑问，请拨打电话：〇二八 八四九五幺幺〇〇。" in lines
    assert lines[-1] == "广播完毕，谢谢大家。"
    # Read twice: the repeat formula between the two readings.
    assert lines.count("以上广播再重复一遍。") == 1
    assert lines.count(lines[1]) == 2
    # No written digits, no masked names, no Markdown left.
    assert not any(c.isdigit() for c in spoken)
    assert "*" not in spoken and "|" not in spoken and "钱" not in spoken


def test_reading_time_follows_the_speech_rate(tmp_path):
    item = make_item()
    slow = make_channel(tmp_path / "slow", chars_per_minute=100)
    fast = make_channel(tmp_path / "fast", chars_per_minute=400)
    spoken = slow.spoken(item, "西河村", slow.job(item, None, "西河村"))
    said = sum(len([c for c in line if c.isalnum() or c == "〇"]) for line in spoken)
    assert said > 300  # two readings of a real notice
    # Every character said, at 100 a minute, rounded up to ten seconds.
    assert slow.reading_seconds(spoken) == math.ceil(said * 60 / 100 / 10) * 10
    assert fast.reading_seconds(spoken) < slow.reading_seconds(spoken)
    minutes, seconds = divmod(slow.reading_seconds(spoken), 60)
    script = Path(deliver(slow, item).data["areas"]["西河村"]["file"]).read_text("utf-8")
    assert f"预计用时约{minutes}分{seconds:02d}秒（按每分钟100字估算）" in script


def test_one_reading_has_no_repeat_formula(tmp_path):
    channel = make_channel(tmp_path, readings=1, closing="广播完毕。")
    spoken = spoken_part(deliver(channel, make_item()).data["areas"]["西河村"]["file"])
    assert "重复" not in spoken and spoken.rstrip().endswith("广播完毕。")
    assert "全文播读一遍" in Path(channel.edition_folder(make_item()) / "西河村.txt").read_text(
        "utf-8"
    )


def test_the_repeat_schedule_is_an_instruction_at_the_top(tmp_path):
    channel = make_channel(tmp_path, days=5, times=["18:30", "07:00", "12:00"])
    script = Path(deliver(channel, make_item()).data["areas"]["西河村"]["file"]).read_text("utf-8")
    header = script.split(SPOKEN_MARK)[0]
    assert (
        "播送安排：2026年11月26日至2026年11月30日，连续5天，"
        "每天07:00、12:00、18:30各播送一次，共15次。"
    ) in header
    assert "事项编号：bc-001　第1版　校验码：11111111" in header


@pytest.mark.parametrize(
    "config",
    [
        {"times": ["7:00"]},
        {"times": ["25:00"]},
        {"times": []},
        {"chars_per_minute": 0},
        {"opening": "现在播送{unknown}"},
        {"speed": 100},
        {"voice": "cmn; rm -rf /"},
    ],
)
def test_bad_config_is_refused(config):
    with pytest.raises(ValidationError):
        BroadcastChannel.Config(**config)


def test_an_item_without_area_goes_to_the_default_area(tmp_path):
    channel = make_channel(tmp_path, default_area="全镇")
    receipt = deliver(channel, make_item(area=None))
    assert list(receipt.data["areas"]) == ["全镇"]


def test_a_rerun_writes_the_same_bytes(tmp_path):
    first = deliver(make_channel(tmp_path / "a"), make_item())
    again = deliver(make_channel(tmp_path / "a"), make_item())
    other = deliver(make_channel(tmp_path / "b"), make_item())
    for area in ("三溪镇花园村", "西河村"):
        data = Path(first.data["areas"][area]["file"]).read_bytes()
        assert Path(again.data["areas"][area]["file"]).read_bytes() == data
        assert Path(other.data["areas"][area]["file"]).read_bytes() == data


def test_a_new_edition_replaces_the_old_script(channel):
    posted = deliver(channel, make_item())
    receipt = deliver(channel, make_item(edition=2, area="三溪镇花园村"), posted)
    assert (receipt.data["action"], receipt.data["replaces_edition"]) == ("replace", 1)
    assert receipt.data["take_down_areas"] == ["西河村"]
    script = Path(receipt.data["areas"]["三溪镇花园村"]["file"]).read_text("utf-8")
    assert "本稿为第2版，替换第1版：请停止播送旧稿，改播本稿。" in script
    assert "此前播送的内容已经更正，请以本次播送的内容为准。" in script
    sheet = Path(receipt.data["instructions"]).read_text("utf-8")
    assert "撤下第1版（校验码 11111111），播送第2版" in sheet
    assert "请停止播送第1版" in sheet and "西河村" in sheet


def test_withdraw_writes_a_stop_instruction_for_every_area(channel):
    posted = deliver(channel, make_item())
    receipt = channel.withdraw(make_item(), posted, "名单有误，重新审核")
    assert receipt.status == "awaiting-confirmation"
    assert receipt.data["action"] == "take-down"
    assert set(receipt.data["areas"]) == {"三溪镇花园村", "西河村"}
    sheet = Path(receipt.data["instructions"]).read_text("utf-8")
    assert "操作：请停止播送。本事项已撤回，请勿再播送。" in sheet
    assert "撤回原因：名单有误，重新审核" in sheet
    assert "--taken-down" in sheet


def test_render_previews_the_script_without_writing(channel, tmp_path):
    rendition = channel.render(make_item())
    assert "【播音员须知】" in rendition.body and "共三户" in rendition.body
    assert rendition == channel.render(make_item())
    assert not (tmp_path / "broadcast").exists()


# --- audio -----------------------------------------------------------------------------


def test_no_audio_when_espeak_ng_is_missing(tmp_path):
    channel = make_channel(tmp_path, audio=True)
    channel.find_program = lambda name: None
    channel.run_program = lambda *a, **k: pytest.fail("nothing to run")
    receipt = deliver(channel, make_item())
    assert receipt.status == "awaiting-confirmation"
    assert all("audio" not in area for area in receipt.data["areas"].values())
    assert not list(Path(receipt.artifact).glob("*.wav"))


def fake_espeak(calls):
    def run(command, *, input, **kwargs):
        calls.append((command, input.decode("utf-8")))
        Path(command[command.index("-w") + 1]).write_bytes(b"RIFF-fake")
        return subprocess.CompletedProcess(command, 0)

    return run


def test_audio_is_synthesised_from_the_spoken_part(tmp_path):
    calls: list = []
    channel = make_channel(tmp_path, audio=True, audio_speed=140)
    channel.find_program = lambda name: f"/opt/bin/{name}"
    channel.run_program = fake_espeak(calls)
    receipt = deliver(channel, make_item())
    wav = Path(receipt.data["areas"]["西河村"]["audio"])
    assert wav == Path(receipt.artifact) / "西河村.wav" and wav.read_bytes() == b"RIFF-fake"
    command, text = calls[0]
    assert command[:5] == ["/opt/bin/espeak-ng", "-v", "cmn", "-s", "140"]
    assert text.startswith("各位村民请注意") and "播音员须知" not in text
    assert not list(Path(receipt.artifact).glob(".*"))  # no partial files left


def test_a_failing_synthesiser_leaves_the_scripts(tmp_path):
    channel = make_channel(tmp_path, audio=True)
    channel.find_program = lambda name: "/opt/bin/espeak-ng"

    def broken(command, **kwargs):
        raise subprocess.CalledProcessError(1, command, stderr=b"no voice")

    channel.run_program = broken
    receipt = deliver(channel, make_item())
    assert all("audio" not in area for area in receipt.data["areas"].values())
    assert Path(receipt.data["areas"]["西河村"]["file"]).exists()
    assert not list(Path(receipt.artifact).glob("*wav*"))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_a_real_wav_with_espeak_ng(tmp_path):
    channel = make_channel(tmp_path, audio=True, readings=1)
    item = make_item(body="公示期7天，电话028-84951100。", area="西河村")
    receipt = deliver(channel, item)
    path = Path(receipt.data["areas"]["西河村"]["audio"])
    with wave.open(str(path)) as wav:
        assert wav.getnchannels() == 1 and wav.getnframes() > wav.getframerate()  # > 1 s
    first = path.read_bytes()
    deliver(channel, item)
    assert path.read_bytes() == first


# --- through the publisher ---------------------------------------------------------------


def test_publishing_ends_awaiting_confirmation(tmp_path):
    settings = settings_from_dict(
        {
            "gongkai": {"state_dir": str(tmp_path / "state"), "org_code": "11510121009087532X"},
            "channels": {"broadcast": {}},
        },
        base_dir=tmp_path,
    )
    item = Item(
        id="bc-land-001",
        catalog="land.compensation-notice",
        title="关于三溪镇花园村征地补偿安置方案的公告",
        body="补偿标准：每亩5.8万元。安置方式：货币安置。补偿登记：30日内办理。异议：可申请听证。",
        publisher="金堂县人民政府",
        document_number="金府征补〔2026〕12号",
        formed_on=date(2026, 11, 20),
        area="三溪镇花园村",
        contact="028-84931234",
    )
    with Publisher(settings, load_entry_points=False, clock=lambda: THURSDAY) as publisher:
        result = publisher.publish([item])
        [row] = [r for r in publisher.status() if r.channel == "broadcast"]
    assert result.outcome("bc-land-001", "broadcast").status == "awaiting-confirmation"
    assert row.state == "awaiting-confirmation"
    script = Path(row.receipt["data"]["areas"]["三溪镇花园村"]["file"]).read_text("utf-8")
    assert "文号：金府征补二〇二六年十二号。" in script
    assert "每亩五点八万元" in script
    # 征地补偿安置公告: 30 calendar days from the catalogue.
    assert "公示期自二〇二六年十一月二十六日至二〇二六年十二月二十五日（三十天）。" in script
