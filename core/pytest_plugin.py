"""gongkai's pytest plugin: opt-in fixtures for channel authors, with no conftest to copy.

Installed with gongkai (entry point group ``pytest11``), so pytest loads it in every
project where gongkai is installed. Every fixture is named ``gongkai_*`` so that it
never shadows a project's own ``clock`` or ``server``, and nothing is imported until a
test asks for a fixture: loading the plugin costs pytest nothing.

- ``gongkai_clock``: a :class:`gongkai.testing_samples.FakeClock` at a Thursday 10:00
  in Beijing; ``gongkai_clock.advance(hours=1)`` moves it.
- ``gongkai_sample_items``: one :class:`gongkai.PreparedItem` of each item kind
  (``release``, ``interpretation``, ``response``), by kind.
- ``gongkai_http_server``: a :class:`gongkai.testing_server.LoopbackServer` on
  127.0.0.1 that records requests and injects faults (``fail(503)``, ``drop()``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .channel import PreparedItem
    from .testing_samples import FakeClock
    from .testing_server import LoopbackServer


@pytest.fixture
def gongkai_clock() -> FakeClock:
    from .testing_samples import FakeClock

    return FakeClock()


@pytest.fixture
def gongkai_sample_items() -> dict[str, PreparedItem]:
    from .testing_samples import sample_items

    return sample_items()


@pytest.fixture
def gongkai_http_server() -> Iterator[LoopbackServer]:
    from .testing_server import LoopbackServer

    with LoopbackServer() as server:
        yield server
