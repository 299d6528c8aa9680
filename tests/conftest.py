from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

from gongkai import Item, Publisher
from gongkai.config import settings_from_dict

TESTS = Path(__file__).parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))

from support.fakes import (  # noqa: E402
    FakeClock,
    FakeMonotonic,
    Script,
    Sleeper,
    recording_plugin,
)


@pytest.fixture(autouse=True)
def _no_disabled_env(monkeypatch):
    monkeypatch.delenv("GONGKAI_DISABLED_PLUGINS", raising=False)
    monkeypatch.delenv("GONGKAI_CONFIG", raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def script() -> Script:
    return Script()


def make_item(**changes) -> Item:
    data = {
        "id": "jt-test-001",
        "catalog": "housing.policy",
        "title": "金堂县公共租赁住房申请指南",
        "body": "申请条件：在本县有稳定工作。申请材料：身份证明。办理流程：个人申请后审核。",
        "publisher": "金堂县房产管理局",
        "formed_on": date(2026, 11, 20),
    }
    data.update(changes)
    return Item(**data)


@pytest.fixture
def item_factory():
    return make_item


@pytest.fixture
def make_publisher(tmp_path, clock, sleeper, script, monotonic):
    """Build a Publisher on a temporary state dir with the recording channel enabled.

    Keyword arguments: ``channels`` (the [channels] tables), ``plugins`` (plugin
    objects), ``guarantee`` of the recorder, plus any [gongkai] keys.
    """
    made = []

    def build(*, channels=None, plugins=None, guarantee="none", reconcile=None, **gongkai):
        if plugins is None:
            plugins = [recording_plugin(script, guarantee=guarantee, reconcile=reconcile)]
        if channels is None:
            channels = {"recorder": {"every_item": True, "retry": {"attempts": 3}}}
        gongkai = {
            "state_dir": str(tmp_path / "state"),
            "org_code": "11510121009087532X",
            **gongkai,
        }
        data = {"gongkai": gongkai, "channels": channels}
        settings = settings_from_dict(data, source="test-config.toml", base_dir=tmp_path)
        publisher = Publisher(
            settings,
            clock=clock,
            sleep=sleeper,
            monotonic=monotonic,
            plugins=plugins,
            load_entry_points=False,
        )
        made.append(publisher)
        return publisher

    yield build
    for publisher in made:
        # After any run that returned, no delivery is left in flight (issue 5).
        stuck = [r for r in publisher.ledger.rows(states=("in-flight",)) if r.lease_owner]
        publisher.close()
        assert not stuck, f"rows left in flight after the test: {stuck}"
