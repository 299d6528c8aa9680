"""The QR code on a notice: the item's portal page, with the edition's short hash.

A villager scans it and lands on the page of the item on the county portal. The page
lists every edition with its 内容校验码 (the first 8 hex digits of the content hash),
and the link carries the hash of the edition on the wall (``?h=1a2b3c4d``), so the
reader can see at once whether the wall and the web carry the same version.
"""

from __future__ import annotations

from reportlab.graphics.barcode.qr import QrCode


def item_url(portal_url: str, item_id: str, short_hash: str) -> str:
    """The portal page of an item (``items/<id>/``, as the portal lays its site out)
    with the short hash of the edition a notice shows."""
    base = portal_url if portal_url.endswith("/") else portal_url + "/"
    return f"{base}items/{item_id}/?h={short_hash}"


def qr_drawing(url: str, side: float) -> QrCode:
    """A square QR code ``side`` points wide, with error correction M (a notice board
    gets rained on and pinned through). The flowable draws straight on the page: the
    graphics widget costs eight times as much for the same squares."""
    return QrCode(url, width=side, height=side, qrLevel="M", qrBorder=4)
