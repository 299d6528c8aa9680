"""Test doubles: a settable clock, a recording sleeper, a scriptable channel."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from gongkai.channel import Channel, PreparedItem, Receipt, Rendition
from gongkai.plugins.hookspecs import hookimpl


class FakeMonotonic:
    """A monotonic clock that moves only when a test says so, so that a call "hangs
    past its delivery_timeout" without the test waiting for it."""

    def __init__(self) -> None:
        self.now = 1000.0
        #: Added on every reading once set: time flies, every running call is late.
        self.step = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


class Sleeper:
    """Records requested sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Script:
    """What a RecordingChannel does, shared by all its instances in a test.

    ``plan`` maps item id to a list of actions consumed one per deliver call: an
    exception instance to raise, or None to succeed. ``sent`` records (item id, edition,
    previous external id) of every call that reached the "remote".
    """

    def __init__(self) -> None:
        self.plan: dict[str, list[BaseException | None]] = {}
        self.sent: list[tuple[str, int, str | None]] = []
        self.withdrawn: list[str] = []
        self.auth_refreshes = 0
        self.hang: threading.Event | None = None
        self.hang_ids: set[str] = set()
        #: Called as a call starts to hang (a test moves its monotonic clock on here).
        self.on_hang: Callable[[], None] = lambda: None
        self.on_deliver: Callable[[Channel, PreparedItem], None] | None = None
        self.lock = threading.Lock()


def recording_plugin(
    script: Script,
    *,
    name: str = "recorder",
    guarantee: str = "none",
    mode: str = "online",
    reconcile: Callable | None = None,
):
    """A plugin object registering one scripted channel class."""

    class RecordingChannel(Channel):
        class Config(BaseModel):
            model_config = ConfigDict(extra="forbid", frozen=True)
            label: str = "test"

        def render(self, item: PreparedItem) -> Rendition:
            return Rendition(body=f"{item.title}\n{item.body}\n第{item.edition}版")

        def deliver(self, item, rendition, previous):
            if script.hang is not None and item.id in script.hang_ids:
                script.on_hang()
                script.hang.wait(30)
            if script.on_deliver:
                script.on_deliver(self, item)
            with script.lock:
                actions = script.plan.get(item.id)
                action = actions.pop(0) if actions else None
                if action is not None:
                    raise action
                script.sent.append(
                    (item.id, item.edition, previous.external_id if previous else None)
                )
            return Receipt(external_id=f"{name}-{item.id}", url=f"https://example.test/{item.id}")

        def withdraw(self, item, receipt, reason):
            script.withdrawn.append(item.id)
            return receipt.model_copy(update={"status": "withdrawn"})

        def refresh_auth(self):
            script.auth_refreshes += 1

    RecordingChannel.name = name
    RecordingChannel.guarantee = guarantee
    RecordingChannel.mode = mode
    if reconcile is not None:
        RecordingChannel.reconcile = lambda self, item, attempt: reconcile(item, attempt)

    class Plugin:
        @hookimpl
        def gongkai_register_channels(self):
            return [RecordingChannel]

    return Plugin()
