"""An archive whose ``check()`` always fails, as a channel with refused credentials
would. Loaded in subprocess tests through ``[plugins] load = ["support.gated"]``."""

from __future__ import annotations

from gongkai.channels.archive import ArchiveChannel
from gongkai.errors import AuthError
from gongkai.plugins.hookspecs import hookimpl


class GatedChannel(ArchiveChannel):
    """Refuses every credential check."""

    name = "gated"

    def check(self) -> None:
        raise AuthError("gated: credentials refused")


@hookimpl
def gongkai_register_channels():
    return [GatedChannel]
