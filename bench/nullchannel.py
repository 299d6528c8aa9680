"""Instant channels for benchmarks: ``null1`` … ``null5``.

Each accepts every edition at once and sends nothing anywhere, so a benchmark that
delivers through them measures gongkai itself (reading items, the ledger, the
scheduler, the report) and not a remote. They keep the channel contract like any other
plugin (guarantee ``upsert``, mode ``online``), so core treats them as it would a real
portal.

Load it as an unpackaged plugin, with ``bench/`` on ``PYTHONPATH``::

    [plugins]
    load = ["nullchannel"]

    [channels.null1]
    every_item = true
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gongkai import Channel, Receipt, Rendition
from gongkai.plugins.hookspecs import hookimpl

#: How many instant channels the module offers: five, as many as the catalogue's
#: channels (platform, portal, wechat, notice board, broadcast).
COUNT = 5


class NullChannel(Channel):
    """Accepts everything instantly. Subclassed once per name below."""

    name = "null"
    mode = "online"
    # A resend overwrites: core may batch the successes, as for the archive.
    guarantee = "upsert"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    def render(self, item):
        # The title alone: enough to be a real rendition, cheap enough not to matter.
        return Rendition(body=item.title)

    def deliver(self, item, rendition, previous):
        return Receipt(external_id=f"{item.id}/{item.edition}")


def _named(number: int) -> type[NullChannel]:
    # A class per name, since a channel's name is a class attribute.
    return type(f"Null{number}Channel", (NullChannel,), {"name": f"null{number}"})


CHANNELS: tuple[type[NullChannel], ...] = tuple(_named(n) for n in range(1, COUNT + 1))
NAMES: tuple[str, ...] = tuple(cls.name for cls in CHANNELS)


@hookimpl
def gongkai_register_channels():
    return list(CHANNELS)
