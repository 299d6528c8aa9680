"""Sample items and a fake clock for channel authors' tests (see
:mod:`gongkai.pytest_plugin` for the fixtures that hand them out)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from .channel import PreparedItem
from .item import KIND_LABELS, Item, content_hash

#: Thursday 26 November 2026, 10:00 in Beijing: a working day.
START = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when the test says so: ``clock()`` is the time now (in
    UTC), ``clock.advance(hours=2)`` moves it. Give it to a channel as
    ``ChannelContext(clock=...)``; never sleep for real time in a test."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


_BODIES = {
    "release": (
        "金堂县公共租赁住房申请指南",
        "申请条件：在本县有稳定工作。\n\n"
        "| 材料 | 份数 |\n|---|---|\n| 身份证明 | 1 |\n| 收入证明 | 1 |\n\n"
        "办理流程：个人申请后审核。",
    ),
    "interpretation": (
        "《金堂县公共租赁住房申请指南》政策解读",
        "一、出台背景：保障住房困难家庭。二、主要内容：申请条件与材料。",
    ),
    "response": (
        "关于公共租赁住房轮候时间的回应",
        "近期群众关注轮候时间。经核实，本年度平均轮候时间为四个月。",
    ),
}


def sample_item(kind: str = "release", edition: int = 1, **changes: Any) -> PreparedItem:
    """An edition as a channel receives it, of ``kind`` (``release`` with a table,
    ``interpretation`` of the release, ``response``). ``changes`` override fields; the
    content hash is the real one, so two different samples never share one."""
    if kind not in KIND_LABELS:
        raise ValueError(f"kind must be one of {', '.join(KIND_LABELS)}, got {kind!r}")
    title, body = _BODIES[kind]
    fields: dict[str, Any] = {
        "id": f"sample-{kind}-001",
        "catalog": "housing.policy",
        "kind": kind,
        "title": title,
        "body": body,
        "publisher": "金堂县房产管理局",
        "formed_on": date(2026, 11, 20),
        "index_number": "11510121009087532X/2026-00001",
        "area": "三溪镇花园村",
    }
    if kind == "interpretation":
        fields["related"] = ("sample-release-001",)
    fields.update(changes)
    return PreparedItem(**fields, edition=edition, content_hash=content_hash(Item(**fields)))


def sample_items() -> dict[str, PreparedItem]:
    """One sample edition of each item kind, by kind."""
    return {kind: sample_item(kind) for kind in KIND_LABELS}


__all__ = ["START", "FakeClock", "sample_item", "sample_items"]
