"""An item edition as the portal records it: public fields plus the catalogue's facts.

The record is all a page needs, so pages can be rebuilt later (when an interpretation
of this item arrives, or an index shifts) without the item's files.
"""

from __future__ import annotations

import re
from typing import Any

from gongkai.catalogue import Catalogue
from gongkai.channel import PreparedItem
from gongkai.item import AUDIENCE_LABELS, KIND_LABELS, OPENNESS_LABELS

from .paths import attachment_name
from .site_index import Entry

#: 公开方式 by the catalogue entry's method.
METHOD_LABELS = {"active": "主动公开", "on-request": "依申请公开"}
#: A township is the leading "…街道", "…镇" or "…乡" of an area ("赵镇街道十里社区").
_TOWNSHIP = (re.compile(r"^(.+?街道)"), re.compile(r"^(.+?[镇乡])"))
UNKNOWN_UNIT = "其他单位"


def township(area: str | None) -> str:
    if not area:
        return ""
    for pattern in _TOWNSHIP:
        found = pattern.match(area)
        if found:
            return found.group(1)
    return ""


def make_entry(item: PreparedItem, catalogue: Catalogue, sizes: dict[str, int]) -> Entry:
    """The portal's entry for one edition. ``sizes`` maps attachment file names to
    their size in bytes."""
    entry = catalogue.get(item.catalog)
    openness = item.openness or (entry.openness if entry else "result")
    domain = entry.domain if entry else "general"
    record: dict[str, Any] = item.public_fields()
    record.update(
        edition=item.edition,
        content_hash=item.content_hash,
        kind_label=KIND_LABELS[item.kind],
        openness=openness,
        openness_label=OPENNESS_LABELS[openness],
        domain=domain,
        domain_label=catalogue.domains.get(domain, domain),
        catalog_name=entry.name if entry else item.catalog,
        responsible_unit=entry.responsible_unit if entry else item.publisher,
        method_label=METHOD_LABELS[entry.method if entry else "active"],
        audience_label=AUDIENCE_LABELS[item.audience],
        township=township(item.area),
    )
    for attachment in record["attachments"]:
        attachment["size"] = sizes.get(attachment["filename"], 0)
        attachment["href"] = attachment_name(attachment["filename"], attachment["sha256"])
    return Entry(
        id=item.id,
        edition=item.edition,
        published_at="",
        updated_at="",
        openness=openness,
        domain=domain,
        unit=record["responsible_unit"] or UNKNOWN_UNIT,
        township=record["township"],
        record=record,
    )
