"""A tiny offline channel for tests: one text file per area, on the real offline base
class, so confirmation and parity are tested apart from PDF and speech rendering.
Loaded through ``[plugins] load = ["support.villageboard"]`` or as a plugin object."""

from __future__ import annotations

from gongkai.channels.offline import AreaJob, OfflineChannel
from gongkai.plugins.hookspecs import hookimpl


class VillageBoard(OfflineChannel):
    name = "villageboard"
    suffix = ".txt"

    def render_area(self, item, area: str, job: AreaJob) -> bytes:
        return f"{area}\n{item.title}\n第{item.edition}版 {item.short_hash}\n".encode()


@hookimpl
def gongkai_register_channels():
    return [VillageBoard]
