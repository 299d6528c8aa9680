"""The ``broadcast`` channel: village loudspeaker scripts (see :mod:`.channel`), with
written Chinese turned into what an announcer says (:mod:`.speech`)."""

from gongkai.plugins.hookspecs import hookimpl

from .channel import BroadcastChannel, BroadcastConfig

__all__ = ["BroadcastChannel", "BroadcastConfig"]


@hookimpl
def gongkai_register_channels():
    return [BroadcastChannel]
