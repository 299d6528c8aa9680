"""Reading items from files: Markdown with TOML front matter (``+++``) or JSON.

A bad file never stops the batch: ``load_paths`` returns the good items and one
``ItemProblem`` per problem, each naming the file, the field and the fix.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ItemProblem
from .item import Item, sha256_file

ITEM_SUFFIXES = (".md", ".json")

# What to tell an author, by pydantic error type. The default covers the rest.
_FIXES = {
    "missing": "add it to the item",
    "extra_forbidden": "remove it, or check its spelling against docs/items.md",
    "date_from_datetime_parsing": "write the date as YYYY-MM-DD",
    "date_parsing": "write the date as YYYY-MM-DD",
    "date_type": "write the date as YYYY-MM-DD",
    "datetime_parsing": "write the time as YYYY-MM-DDTHH:MM:SS+08:00",
    "datetime_type": "write the time as YYYY-MM-DDTHH:MM:SS+08:00",
    "string_pattern_mismatch": "use the documented form (see docs/items.md)",
    "literal_error": "use one of the allowed values",
}


@dataclass(frozen=True)
class LoadedItem:
    item: Item
    source: str


def problems_from_validation(
    source: str, error: ValidationError, item_id: str | None = None
) -> list[ItemProblem]:
    problems = []
    for err in error.errors(include_url=False):
        field = ".".join(str(part) for part in err["loc"])
        fix = _FIXES.get(err["type"], "correct the value")
        problems.append(ItemProblem(source, field, err["msg"], fix, item_id))
    return problems


def split_front_matter(text: str, source: str) -> tuple[dict[str, Any], str]:
    text = text.lstrip("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "+++":
        raise ItemProblem(
            source,
            "",
            "no TOML front matter",
            "start the file with a line '+++', the fields in TOML, then another '+++'",
        )
    for index in range(1, len(lines)):
        if lines[index].strip() == "+++":
            header = "".join(lines[1:index])
            body = "".join(lines[index + 1 :]).strip("\n")
            try:
                return tomllib.loads(header), body
            except tomllib.TOMLDecodeError as exc:
                raise ItemProblem(
                    source, "", f"front matter is not valid TOML ({exc})", "fix the TOML syntax"
                ) from exc
    raise ItemProblem(source, "", "front matter is not closed", "add a closing '+++' line")


def _resolve_attachments(data: dict[str, Any], base: Path, source: str) -> list[ItemProblem]:
    """Make attachment paths absolute and fill in or check their sha256."""
    problems: list[ItemProblem] = []
    attachments = data.get("attachments")
    if not isinstance(attachments, list):
        return problems
    for index, att in enumerate(attachments):
        if not isinstance(att, dict) or "path" not in att:
            continue
        path = Path(att["path"])
        if not path.is_absolute():
            path = base / path
        field = f"attachments.{index}.path"
        if not path.is_file():
            problems.append(
                ItemProblem(
                    source, field, f"file {path} does not exist", "fix the path (relative to item)"
                )
            )
            continue
        att["path"] = str(path)
        actual = sha256_file(path)
        if "sha256" in att and att["sha256"] != actual:
            problems.append(
                ItemProblem(
                    source,
                    f"attachments.{index}.sha256",
                    f"the file's sha256 is {actual}, not the one written",
                    "check the file is the intended version, then correct or remove sha256",
                )
            )
        att["sha256"] = actual
    return problems


def parse_item_data(
    data: dict[str, Any], source: str, base: Path | None = None
) -> tuple[Item | None, list[ItemProblem]]:
    problems = _resolve_attachments(data, base or Path.cwd(), source)
    if problems:
        return None, problems
    try:
        return Item.model_validate(data), []
    except ValidationError as exc:
        return None, problems_from_validation(source, exc, data.get("id"))


def parse_text(text: str, source: str, *, suffix: str, base: Path, stem: str | None = None):
    """Parse one file's text. Returns (items, problems)."""
    if suffix == ".json":
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            return [], [ItemProblem(source, "", f"not valid JSON ({exc})", "fix the JSON syntax")]
        records = payload if isinstance(payload, list) else [payload]
        items, problems = [], []
        for number, record in enumerate(records):
            where = source if len(records) == 1 else f"{source}[{number}]"
            if not isinstance(record, dict):
                problems.append(ItemProblem(where, "", "not a JSON object", "give one object"))
                continue
            item, found = parse_item_data(record, where, base)
            problems.extend(found)
            if item:
                items.append(item)
        return items, problems
    try:
        data, body = split_front_matter(text, source)
    except ItemProblem as problem:
        return [], [problem]
    data.setdefault("body", body)
    # A Markdown file is one item; its name is a good default id.
    if stem is not None:
        data.setdefault("id", stem)
    item, problems = parse_item_data(data, source, base)
    return ([item] if item else []), problems


def _expand(paths: Iterable[str | Path]) -> Iterable[Path | None]:
    for raw in paths:
        if str(raw) == "-":
            yield None
            continue
        path = Path(raw)
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.suffix in ITEM_SUFFIXES
                # skip hidden folders such as a state directory (.gongkai) kept beside items
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            yield path


def load_paths(paths: Iterable[str | Path]) -> tuple[list[LoadedItem], list[ItemProblem]]:
    """Load every item under ``paths`` (files, directories, or ``-`` for JSON on stdin)."""
    loaded: list[LoadedItem] = []
    problems: list[ItemProblem] = []
    for path in _expand(paths):
        if path is None:
            items, found = parse_text(sys.stdin.read(), "<stdin>", suffix=".json", base=Path.cwd())
            source = "<stdin>"
        else:
            source = str(path)
            if not path.exists():
                problems.append(ItemProblem(source, "", "no such file", "check the path"))
                continue
            if path.suffix not in ITEM_SUFFIXES:
                problems.append(
                    ItemProblem(source, "", "not an item file", "use a .md or .json file")
                )
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                problems.append(ItemProblem(source, "", "not UTF-8 text", "save the file as UTF-8"))
                continue
            items, found = parse_text(
                text, source, suffix=path.suffix, base=path.parent, stem=path.stem
            )
        loaded.extend(LoadedItem(item, source) for item in items)
        problems.extend(found)
    seen: dict[str, str] = {}
    unique: list[LoadedItem] = []
    for entry in loaded:
        if entry.item.id in seen:
            problems.append(
                ItemProblem(
                    entry.source,
                    "id",
                    f"id '{entry.item.id}' is also used by {seen[entry.item.id]}",
                    "give each item its own id",
                    entry.item.id,
                )
            )
            continue
        seen[entry.item.id] = entry.source
        unique.append(entry)
    return unique, problems
