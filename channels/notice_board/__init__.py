"""The ``notice_board`` channel: print-ready PDF notices for village boards (公示栏).

``channel`` holds the channel, ``pdf`` the page layout, ``body`` the body's Markdown
(through the one HTML path) as flowables, and ``qr`` the code that links the wall to
the web. See docs/notice-board.md.
"""

from __future__ import annotations

from gongkai.plugins.hookspecs import hookimpl

from .channel import NoticeBoardChannel


@hookimpl
def gongkai_register_channels():
    return [NoticeBoardChannel]


__all__ = ["NoticeBoardChannel"]
