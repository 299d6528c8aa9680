"""The disclosure catalogue (政务公开事项标准目录) as data.

The catalogue decides routing (which channels must carry an item) and validation
(which content elements it must contain). A default catalogue for the eight key areas
of the seed ships as ``gongkai/data/catalogue.toml``; config can replace it or extend
it with more files, where a later entry with the same key replaces an earlier one.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError, ItemProblem
from .item import OPENNESS_LABELS, Item, Openness
from .workdays import DayUnit, WorkCalendar

DEFAULT_CATALOGUE = "default"
#: Fallback of 《政府信息公开条例》 art. 26: 20 working days from formation.
STATUTORY_DEFAULT_DAYS = 20


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Period(_Frozen):
    days: int = Field(ge=0)
    unit: DayUnit = "working"

    def label(self) -> str:
        return f"{self.days}个{'工作日' if self.unit == 'working' else '自然日'}"


class Routing(_Frozen):
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


class Entry(_Frozen):
    """One catalogue entry. ``elements`` are required content elements; an element may
    list alternatives separated by ``|`` (any one satisfies it)."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    domain: str
    name: str
    basis: str
    elements: tuple[str, ...] = ()
    optional_elements: tuple[str, ...] = ()
    subject: str
    responsible_unit: str
    time_limit: Period = Period(days=STATUTORY_DEFAULT_DAYS)
    posting_min: Period | None = None
    update_cycle: str = "实时更新"
    channels: Routing = Routing()
    audience: Literal["public", "specific-group"] = "public"
    method: Literal["active", "on-request"] = "active"
    level: Literal["county", "township"] = "county"
    openness: Openness = "result"
    #: Fields or table columns this entry must publish whole by law (a 公示 of subsidy
    #: recipients shows full names): column headers such as "姓名", item fields such as
    #: "contact", or "names" / "addresses" for every name or address column. Masking
    #: leaves them alone, and each item's stored edition records the declaration.
    public_by_law: tuple[str, ...] = ()

    @field_validator("elements", "optional_elements")
    @classmethod
    def _no_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not part.strip() for element in value for part in element.split("|")):
            raise ValueError("an element name is blank")
        return value


class Catalogue:
    """Entries by key, plus the domains they belong to."""

    def __init__(self, entries: Iterable[Entry], domains: Mapping[str, str]) -> None:
        self.entries: dict[str, Entry] = {e.key: e for e in entries}
        self.domains = dict(domains)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def channel_names(self) -> frozenset[str]:
        """Every channel some entry routes to, required or optional."""
        return frozenset(
            name
            for entry in self.entries.values()
            for name in (*entry.channels.required, *entry.channels.optional)
        )

    def suggest(self, wanted: str, limit: int = 3) -> list[str]:
        """Up to ``limit`` entry keys close to ``wanted`` (a mistyped key, or an entry's
        Chinese name), best first."""
        by_name = {e.name: e.key for e in self.entries.values()}
        found = difflib.get_close_matches(wanted, [*self.entries, *by_name], n=2 * limit)
        return list(dict.fromkeys(by_name.get(f, f) for f in found))[:limit]

    def describe(self, entry: Entry) -> dict[str, Any]:
        """An entry as plain JSON data, for ``gongkai catalogue --json`` (the fields are
        documented in docs/catalogue.md). Each element is the list of its accepted
        alternatives."""
        data = entry.model_dump(mode="json")
        for name in ("elements", "optional_elements"):
            data[name] = [[alt.strip() for alt in e.split("|")] for e in data[name]]
        data["domain_name"] = self.domains.get(entry.domain, "")
        data["openness_label"] = OPENNESS_LABELS[entry.openness]
        return data

    # --- loading ----------------------------------------------------------------------

    @classmethod
    def load(cls, sources: Iterable[str | Path] = (DEFAULT_CATALOGUE,)) -> Catalogue:
        """Load and merge catalogue files; ``"default"`` names the shipped one."""
        entries: dict[str, Entry] = {}
        origin: dict[str, str] = {}  # entry key -> the file it came from, for errors
        domains: dict[str, str] = {}
        for source in sources:
            name, text = _read_source(source)
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(name, "", f"not valid TOML ({exc})", "fix the syntax") from exc
            unknown = sorted(set(data) - {"domains", "entry"})
            if unknown:
                # A misspelt [[entries]] would otherwise drop every entry in silence.
                raise ConfigError(
                    name,
                    unknown[0],
                    "unknown table",
                    "write entries as [[entry]] and domain names under [domains]",
                )
            domains.update(data.get("domains", {}))
            for index, raw in enumerate(data.get("entry", [])):
                try:
                    entry = Entry.model_validate(raw)
                except ValidationError as exc:
                    first = exc.errors(include_url=False)[0]
                    key = ".".join(str(p) for p in first["loc"])
                    raise ConfigError(
                        name,
                        f"entry[{index}].{key}",
                        first["msg"],
                        "correct the entry, or take the file out of `catalogue` in "
                        "config.toml; `gongkai catalogue KEY --json` then shows a shipped "
                        "entry's fields",
                    ) from exc
                entries[entry.key] = entry
                origin[entry.key] = name
        for entry in entries.values():
            if entry.domain not in domains:
                raise ConfigError(
                    origin[entry.key],
                    f"entry {entry.key}.domain",
                    f"domain '{entry.domain}' is not declared",
                    "add it under [domains] in the catalogue file",
                )
        return cls(entries.values(), domains)

    # --- routing and validation -------------------------------------------------------

    def route(self, item: Item, entry: Entry) -> tuple[str, ...]:
        """Channel names for an item: the entry's required ones, plus the item's
        additions. Skips of optional channels are honoured."""
        wanted = [*entry.channels.required, *item.channels.add]
        skipped = set(item.channels.skip)
        return tuple(dict.fromkeys(c for c in wanted if c not in skipped))

    def problems(self, item: Item, source: str) -> list[ItemProblem]:
        """What the catalogue says is wrong with an item (missing elements, too short
        a posting period, skipping a required channel)."""
        entry = self.get(item.catalog)
        if entry is None:
            close = self.suggest(item.catalog)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            return [
                ItemProblem(
                    source,
                    "catalog",
                    f"'{item.catalog}' is not in the catalogue",
                    f"{hint}use a key that `gongkai catalogue` lists, or add the entry to a "
                    "catalogue file named in config.toml",
                    item.id,
                )
            ]
        found: list[ItemProblem] = []
        text = f"{item.title}\n{item.body}"
        for element in entry.elements:
            if not any(alt.strip() in text for alt in element.split("|")):
                found.append(
                    ItemProblem(
                        source,
                        "body",
                        f"catalogue entry '{entry.key}' ({entry.name}) requires the element "
                        f"'{element.split('|')[0]}'",
                        f"add a passage naming {' or '.join(element.split('|'))}",
                        item.id,
                    )
                )
        posting_min = entry.posting_min
        if posting_min and item.posting_days is not None and item.posting_days < posting_min.days:
            found.append(
                ItemProblem(
                    source,
                    "posting_days",
                    f"{item.posting_days} days is shorter than the minimum "
                    f"{entry.posting_min.label()} of '{entry.key}'",
                    f"set posting_days to at least {entry.posting_min.days} or remove it",
                    item.id,
                )
            )
        for name in item.channels.skip:
            if name in entry.channels.required:
                found.append(
                    ItemProblem(
                        source,
                        "channels.skip",
                        f"'{name}' is required by catalogue entry '{entry.key}'",
                        "remove it from channels.skip; only optional channels can be skipped",
                        item.id,
                    )
                )
        return found

    def deadline(self, item: Item, calendar: WorkCalendar) -> date | None:
        """The statutory publication deadline, counted from ``formed_on``."""
        entry = self.get(item.catalog)
        if entry is None:
            return None
        return calendar.add(item.formed_on, entry.time_limit.days, entry.time_limit.unit)


def _read_source(source: str | Path) -> tuple[str, str]:
    if str(source) == DEFAULT_CATALOGUE:
        text = resources.files("gongkai").joinpath("data/catalogue.toml").read_text("utf-8")
        return "gongkai/data/catalogue.toml", text
    path = Path(source)
    try:
        return str(path), path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            str(path), "", f"cannot read catalogue ({exc.strerror})", "check the path in config"
        ) from exc
