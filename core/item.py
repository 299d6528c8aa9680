"""The disclosure item: one thing to publish, whatever the channel.

Identifiers are English, content is Chinese. The model is frozen: processing plugins
return changed copies (``item.model_copy(update=...)``), so what every channel carries
is exactly what was hashed.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

#: China Standard Time. China has no daylight saving, so a fixed offset is exact and
#: needs no tz database on the machine.
CST = timezone(timedelta(hours=8), "CST")

ITEM_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
#: <org code>/<year>-<serial>: five digits at least, more once a year passes 99,999.
INDEX_NUMBER_PATTERN = r"^[0-9A-Z]{1,18}/\d{4}-\d{5,}$"

Kind = Literal["release", "interpretation", "response"]
Openness = Literal["decision", "execution", "management", "service", "result"]
Audience = Literal["public", "specific-group"]

KIND_LABELS = {"release": "发布", "interpretation": "解读", "response": "回应"}
OPENNESS_LABELS = {
    "decision": "决策公开",
    "execution": "执行公开",
    "management": "管理公开",
    "service": "服务公开",
    "result": "结果公开",
}
AUDIENCE_LABELS = {"public": "全社会", "specific-group": "特定群体"}

#: Characters that never belong in published text. C0/C1 controls and DEL can break
#: a terminal, a CSV export or a printer; bidi overrides and isolates can make a name
#: or a number read differently from what is stored (the "Trojan Source" trick).
#: Invisible format characters (soft hyphen, zero-width space and joiners, word
#: joiner, a stray BOM) make two titles that look the same compare different and hide
#: text from a search. The line and paragraph separators U+2028/U+2029 end a line in
#: some readers and not in others, so a one-line field refuses them.
#: Tab, newline and carriage return are allowed in the body only.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_INVISIBLE = "\u00ad\u200b-\u200d\u2060\ufeff"
_CONTROLS_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}{_INVISIBLE}\u2028\u2029]")
_CONTROLS_TEXT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}{_INVISIBLE}]")
#: A whole ANSI escape sequence (colour codes pasted from a terminal), so that stripping
#: it does not leave "[31m" behind.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


#: File types a browser runs rather than shows: a page, an image or a document of
#: these types can carry script, and a site that publishes it verbatim hosts that script
#: under the government's own address. Attachments are for reading: PDF, images, office
#: files, CSV.
ACTIVE_SUFFIXES = frozenset(
    {".html", ".htm", ".xhtml", ".xht", ".shtml", ".svg", ".svgz", ".xml", ".xsl"}
    | {".js", ".mjs", ".mht", ".mhtml", ".hta"}
)


def active_type(filename: str) -> str | None:
    """The suffix of ``filename`` if it is a type a browser would run (``.html``,
    ``.svg``…), else None. Trailing dots and spaces are ignored, as Windows ignores
    them when the file is saved."""
    suffix = Path(filename.rstrip(". ")).suffix.lower()
    return suffix if suffix in ACTIVE_SUFFIXES else None


def _refuse(pattern: re.Pattern[str], value: str) -> str:
    found = pattern.search(value)
    if found:
        raise PydanticCustomError(
            "control_character",
            "contains the invisible control character {code} at position {position}",
            {"code": f"U+{ord(found.group()):04X}", "position": found.start() + 1},
        )
    return value


def _stored(info: ValidationInfo) -> bool:
    # Editions read back from the ledger passed the input rules of their day; a
    # stricter rule added later must not make the ledger unreadable.
    return bool(info.context and info.context.get("stored"))


def _single_line(value: str, info: ValidationInfo) -> str:
    return value if _stored(info) else _refuse(_CONTROLS_LINE, value)


def _text(value: str, info: ValidationInfo) -> str:
    return value if _stored(info) else _refuse(_CONTROLS_TEXT, value)


def strip_controls(text: str) -> tuple[str, int]:
    """``text`` without ANSI escapes and control characters (tab and newlines kept),
    and how many were removed. The loader applies it to bodies pasted from terminals
    or word processors, and warns."""
    cleaned = _CONTROLS_TEXT.sub("", _ANSI.sub("", text))
    return cleaned, len(text) - len(cleaned)


#: A one-line text field: no control characters at all.
Line = Annotated[str, AfterValidator(_single_line)]
NonEmpty = Annotated[Line, Field(min_length=1)]
#: Multi-line text (the body): tab and newlines allowed, other controls refused.
Text = Annotated[str, Field(min_length=1), AfterValidator(_text)]
ItemId = Annotated[str, Field(pattern=ITEM_ID_PATTERN)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Attachment(_Frozen):
    """A file published with the item. ``path`` is local and never published; the
    title, file name and sha256 are."""

    title: NonEmpty
    path: Path
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    #: The author declares that a file gongkai cannot read as text (PDF, image, DOC) was
    #: checked for personal data by a person. The declaration is stored with the edition.
    checked: bool = False

    @field_validator("path")
    @classmethod
    def _published_name(cls, value: Path, info: ValidationInfo) -> Path:
        # The file name is published with the item, so it obeys the one-line rules.
        if not _stored(info):
            _refuse(_CONTROLS_LINE, value.name)
            suffix = active_type(value.name)
            if suffix is not None:
                raise PydanticCustomError(
                    "active_attachment",
                    "'{path}' is a {suffix} file: browsers run the script such a file may "
                    "hold, so no channel publishes it",
                    {"path": str(value), "suffix": suffix},
                )
        return value

    @property
    def filename(self) -> str:
        return self.path.name

    def public(self) -> dict[str, str]:
        return {"title": self.title, "filename": self.filename, "sha256": self.sha256}


class ChannelOverrides(_Frozen):
    """Per-item changes to the catalogue's routing. Only optional channels may be
    skipped; the catalogue's required channels are the law of the deployment."""

    add: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()


class Item(_Frozen):
    """One disclosure item (政务公开事项的一条信息).

    Example::

        Item(id="jt-2026-land-001", catalog="land.compensation-notice",
             title="关于XX村征地补偿安置方案的公告", body="……",
             publisher="金堂县规划和自然资源局", formed_on=date(2026, 11, 20))
    """

    id: ItemId
    catalog: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: NonEmpty = Field(max_length=200)
    body: Text
    kind: Kind = "release"
    openness: Openness | None = None
    publisher: NonEmpty
    document_number: Line | None = None
    index_number: str | None = Field(default=None, pattern=INDEX_NUMBER_PATTERN)
    formed_on: date
    publish_at: datetime | None = None
    posting_days: int | None = Field(default=None, ge=1, le=3650)
    area: Line | None = None
    audience: Audience = "public"
    keywords: tuple[NonEmpty, ...] = ()
    # Validated even when absent: an interpretation without it is an error on this field.
    related: tuple[ItemId, ...] = Field(default=(), validate_default=True)
    attachments: tuple[Attachment, ...] = ()
    contact: Line | None = None
    channels: ChannelOverrides = ChannelOverrides()
    #: Fields or table columns that are public by law for this item and so not masked
    #: (see the catalogue's ``public_by_law``). Intake adds the entry's declaration, so
    #: the stored edition records what was published whole and why.
    public_by_law: tuple[NonEmpty, ...] = ()

    @field_validator("publish_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        # A naive time in a county notice means Beijing time, never the server's zone.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=CST)
        return value

    @field_validator("related")
    @classmethod
    def _interpretation_names_release(
        cls, value: tuple[str, ...], info: ValidationInfo
    ) -> tuple[str, ...]:
        if info.data.get("kind") == "interpretation" and not value and not _stored(info):
            raise PydanticCustomError(
                "interpretation_without_release",
                "an interpretation (解读) must name the release it explains",
            )
        return value

    @field_validator("attachments")
    @classmethod
    def _unique_file_names(
        cls, value: tuple[Attachment, ...], info: ValidationInfo
    ) -> tuple[Attachment, ...]:
        # Channels and the archive store attachments by file name: two with one name
        # would overwrite each other while the record lists both hashes.
        if _stored(info):
            return value
        seen: set[str] = set()
        for attachment in value:
            if attachment.filename in seen:
                raise PydanticCustomError(
                    "duplicate_attachment_name",
                    "two attachments are named '{name}'",
                    {"name": attachment.filename},
                )
            seen.add(attachment.filename)
        return value

    def public_fields(self) -> dict[str, Any]:
        """The fields every channel may show, as plain JSON data.

        Local paths, routing overrides and the schedule are not content, so a change
        to them does not make a new edition.
        """
        data = self.model_dump(
            mode="json",
            exclude={
                "attachments",
                "channels",
                "publish_at",
                "edition",
                "content_hash",
                # A declaration, not content: what it leaves whole shows in the content.
                "public_by_law",
            },
        )
        data["attachments"] = [a.public() for a in self.attachments]
        return data


def canonical_json(data: Any) -> str:
    """Stable JSON: sorted keys, no spaces, UTF-8 text kept as is."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_hash(item: Item) -> str:
    """sha256 of the canonical JSON of the prepared public fields (attachment hashes
    included). Two items with the same hash are the same edition."""
    return hashlib.sha256(canonical_json(item.public_fields()).encode("utf-8")).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()
