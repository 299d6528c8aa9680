"""A stand-in for a configured channel whose plugin is broken.

When config.toml enables a channel whose plugin failed to import or was refused
(duplicate name, bad Config, no ``deliver``), two easy answers are both wrong: stopping
the run stops every other channel over one plugin, and leaving the channel out records
its items as not enabled, so they would never be sent once the plugin is fixed. The
stand-in takes the channel's place instead: deliveries are planned and recorded as for
any channel, its ``check()`` fails with the plugin's problem, so core pauses the channel
for the run (the run reports them ``paused`` and exits 1), and they wait in the ledger.
Once the plugin is fixed the real class takes them over. ``--strict`` still refuses to
start with a broken plugin.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .channel import Channel, PreparedItem, Receipt, Rendition
from .errors import PermanentError


class _AnyConfig(BaseModel):
    # The broken plugin's own Config cannot be used; its table is not read.
    model_config = ConfigDict(extra="allow", frozen=True)


def unavailable_channel(name: str, problem: str) -> type[Channel]:
    """A channel class named ``name`` whose every call fails with ``problem``."""
    message = (
        f"{problem}; its deliveries wait in the ledger: fix or reinstall the plugin "
        "(`gongkai channels --verbose` shows it), then run gongkai publish again"
    )

    class UnavailableChannel(Channel):
        """Stands in for a configured channel whose plugin is broken."""

        guarantee = "none"  # it sends nothing; the real class brings its own
        Config = _AnyConfig
        unavailable = message

        def check(self) -> None:
            raise PermanentError(message)

        def render(self, item: PreparedItem) -> Rendition:
            raise PermanentError(message)

        def deliver(
            self, item: PreparedItem, rendition: Rendition, previous: Receipt | None
        ) -> Receipt:
            raise PermanentError(message)

        def withdraw(self, item: PreparedItem, receipt: Receipt, reason: str) -> Receipt:
            raise PermanentError(message)

    UnavailableChannel.name = name
    return UnavailableChannel
