"""The ``broadcast`` channel: a script for each village loudspeaker.

Per edition and area it writes ``<area>.txt`` (UTF-8) under
``<state_dir>/broadcast/<item id>/e<edition>/``: first the announcer's instructions
(when and how often to broadcast it, how long it takes, which edition), then what is
read aloud, with every date, amount, percentage, area unit, 文号 and phone number written
as it is said (:mod:`gongkai.channels.broadcast.speech`) and tables summarised. With
``audio = true`` and ``espeak-ng`` on PATH it also writes ``<area>.wav``; without it the
scripts are written all the same. Like every offline channel it ends in
``awaiting-confirmation`` until the village confirms the broadcast (``gongkai confirm``).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from gongkai.channel import PreparedItem, Receipt, Rendition
from gongkai.channels.offline import AreaJob, OfflineChannel, OfflineConfig, posting_label
from gongkai.fileio import write_atomic
from gongkai.log import get_logger

from . import speech

log = get_logger(__name__)

#: Where the announcer's part ends and the part read aloud begins.
SPOKEN_MARK = "【以下为播送内容】"
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_FIELDS = ("publisher", "area", "title")
_SAID = re.compile(r"[\u3400-\u9fff〇A-Za-z0-9]")


class BroadcastConfig(OfflineConfig):
    """``[channels.broadcast]`` keys (docs/channels.md, "broadcast")."""

    #: Speech rate for the reading-time estimate. DOMAIN.md takes about 240 characters a
    #: minute as a starting assumption; a village loudspeaker is read slower than that
    #: (the sound echoes between houses, many listeners are old), and an estimate that
    #: errs long fits the time slot, so 220.
    chars_per_minute: int = Field(default=220, ge=60, le=600)
    #: How many days in a row, from the publish date, the item is broadcast.
    days: int = Field(default=3, ge=1, le=90)
    #: When in the day (Beijing time, HH:MM): morning and evening, when people are home.
    times: tuple[str, ...] = ("07:00", "18:30")
    #: How often the content is read in one broadcast ("以上广播再重复一遍").
    readings: int = Field(default=2, ge=1, le=3)
    #: The formulas; {publisher}, {area} and {title} are filled in.
    opening: str = "各位村民请注意，现在播送{publisher}发布的政务公开信息。"
    repeat: str = "以上广播再重复一遍。"
    closing: str = "广播完毕，谢谢大家。"
    #: How 1 is said in phone numbers: 幺 (clear over a loudspeaker) or 一.
    phone_one: Literal["幺", "一"] = "幺"
    #: A table with at most this many rows that names nobody is read row by row.
    table_rows_read: int = Field(default=5, ge=0, le=50)
    #: Said after a summarised name list: where to read the names.
    list_reference: str = "名单详见村公示栏"
    #: Also write <area>.wav with espeak-ng when it is installed.
    audio: bool = False
    #: espeak-ng's voice and speed (words a minute, its -s option).
    voice: str = Field(default="cmn", pattern=r"^[A-Za-z0-9_+-]{1,32}$")
    audio_speed: int = Field(default=150, ge=80, le=450)

    @field_validator("times")
    @classmethod
    def _times(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [t for t in value if not _TIME.match(t)]
        if bad or not value:
            raise ValueError(
                f"times must list broadcast times as HH:MM, e.g. ['07:00', '18:30']; got {bad}"
            )
        return tuple(sorted(set(value)))

    @field_validator("opening", "repeat", "closing")
    @classmethod
    def _formula(cls, value: str) -> str:
        try:
            value.format(**dict.fromkeys(_FIELDS, ""))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                "a formula may use only {publisher}, {area} and {title}; "
                f"{exc!r} in {value!r}"
            ) from exc
        return value


class BroadcastChannel(OfflineChannel):
    """A loudspeaker script per area, and optionally its synthesised WAV."""

    name = "broadcast"
    suffix = ".txt"
    post_verb = "播送"
    take_down_verb = "停止播送"
    material = "广播稿"
    Config = BroadcastConfig

    #: How espeak-ng is found and run: tests inject their own.
    find_program: Callable[[str], str | None] = staticmethod(shutil.which)
    run_program: Callable[..., subprocess.CompletedProcess] = staticmethod(subprocess.run)

    # --- the script ---------------------------------------------------------------

    def spoken(self, item: PreparedItem, area: str, job: AreaJob) -> list[str]:
        """What the announcer reads, one paragraph a line, formulas included."""
        cfg = self.config
        one = cfg.phone_one
        fields = {"publisher": item.publisher, "area": area, "title": item.title}
        content = [speech.speak(item.title, one) + "。"]
        if item.document_number:
            content.append(f"文号：{speech.speak(item.document_number, one)}。")
        if job.replaces_edition is not None:
            content.append("此前播送的内容已经更正，请以本次播送的内容为准。")
        content += speech.speak_body(item.body, cfg.table_rows_read, cfg.list_reference, one)
        if job.posting:
            content.append(f"公示期{speech.speak(posting_label(job.posting), one)}。")
        if item.contact:
            content.append(f"如有疑问，请拨打电话：{speech.speak(item.contact, one)}。")
        lines = [cfg.opening.format(**fields), *content]
        for _ in range(cfg.readings - 1):
            lines += [cfg.repeat.format(**fields), *content]
        return [*lines, cfg.closing.format(**fields)]

    def reading_seconds(self, spoken: list[str]) -> int:
        """The estimated duration of one broadcast, rounded up to 10 seconds: the
        characters said (punctuation and spaces are not) at ``chars_per_minute``."""
        said = sum(len(_SAID.findall(line)) for line in spoken)
        return max(10, math.ceil(said * 60 / self.config.chars_per_minute / 10) * 10)

    def schedule(self, job: AreaJob) -> str:
        cfg = self.config
        last = job.today + timedelta(days=cfg.days - 1)
        return (
            f"播送安排：{_date(job.today)}至{_date(last)}，连续{cfg.days}天，"
            f"每天{'、'.join(cfg.times)}各播送一次，共{cfg.days * len(cfg.times)}次。"
        )

    def script(self, item: PreparedItem, area: str, job: AreaJob) -> str:
        spoken = self.spoken(item, area, job)
        minutes, seconds = divmod(self.reading_seconds(spoken), 60)
        duration = f"{minutes}分{seconds:02d}秒" if minutes else f"{seconds}秒"
        readings = (
            "全文播读一遍"
            if self.config.readings == 1
            else (f"全文连续播读{self.config.readings}遍")
        )
        header = [
            "【播音员须知】",
            f"播送地点：{area}",
            self.schedule(job),
            f"每次播送：{readings}，预计用时约{duration}"
            f"（按每分钟{self.config.chars_per_minute}字估算）。",
        ]
        if job.replaces_edition is not None:
            header.append(
                f"本稿为第{item.edition}版，替换第{job.replaces_edition}版：请停止播送旧稿，改播本稿。"
            )
        header += [
            f"发布机构：{item.publisher}",
            f"事项编号：{item.id}　第{item.edition}版　校验码：{item.short_hash}",
            "播送后请登记播送日期和播音员，报乡镇政务公开工作人员。",
            "",
            SPOKEN_MARK,
            "",
        ]
        return "\n".join(header + spoken) + "\n"

    # --- the offline contract -----------------------------------------------------

    def render_area(self, item: PreparedItem, area: str, job: AreaJob) -> bytes:
        return self.script(item, area, job).encode("utf-8")

    def preview(self, item: PreparedItem, job: AreaJob) -> str:
        return self.script(item, job.areas[0], job)

    def deliver(self, item: PreparedItem, rendition: Rendition, previous: Receipt | None):
        receipt = super().deliver(item, rendition, previous)
        if not self.config.audio:
            return receipt
        program = self.find_program("espeak-ng")
        if program is None:
            log.warning(
                "broadcast.audio_skipped",
                reason="espeak-ng is not on PATH; install it (apt-get install espeak-ng) "
                "or set audio = false in [channels.broadcast]",
            )
            return receipt
        areas = {area: dict(value) for area, value in receipt.data["areas"].items()}
        for value in areas.values():
            wav = self._synthesise(program, Path(value["file"]))
            if wav is not None:
                value["audio"] = os.fspath(wav)
        return receipt.model_copy(update={"data": {**receipt.data, "areas": areas}})

    def _synthesise(self, program: str, script: Path) -> Path | None:
        """<area>.wav beside the script, from its spoken part; None (logged) if
        espeak-ng fails: the script is what the village needs, the audio a help."""
        text = script.read_text("utf-8").split(SPOKEN_MARK, 1)[-1].strip()
        target = script.with_suffix(".wav")
        partial = target.with_name(f".{target.name}.partial")
        cfg = self.config
        command = [program, "-v", cfg.voice, "-s", str(cfg.audio_speed), "-w", os.fspath(partial)]
        try:
            self.run_program(
                [*command, "--stdin"],
                input=text.encode("utf-8"),
                capture_output=True,
                check=True,
                timeout=600,
            )
            write_atomic(target, partial.read_bytes())
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("broadcast.audio_failed", script=os.fspath(script), error=str(exc))
            return None
        finally:
            partial.unlink(missing_ok=True)
        return target


def _date(day) -> str:
    return f"{day.year}年{day.month}月{day.day}日"
