"""Reading items from files: Markdown with TOML front matter (``+++``) or JSON.

A bad file never stops the batch: ``load_paths`` returns the good items and one
``ItemProblem`` per problem, each naming the file, the field and the fix.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from .errors import ItemProblem
from .item import Item, sha256_file, strip_controls
from .log import get_logger

log = get_logger(__name__)

ITEM_SUFFIXES = (".md", ".json")
#: Folders a folder walk does not look into for items (an item names files in them
#: explicitly); a file there given by path is still read.
ATTACHMENT_FOLDERS = frozenset({"attachments"})

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
    "control_character": "remove it: retype the text, or paste it as plain text",
    "interpretation_without_release": 'add related = ["<id of the release>"]',
    "duplicate_attachment_name": "rename one of the files: attachments are published by name",
    "active_attachment": "convert it to PDF (print it to PDF) and attach the PDF instead",
    "datetime_from_date_parsing": "write the time as YYYY-MM-DDTHH:MM:SS+08:00",
}


@dataclass(frozen=True)
class LoadedItem:
    item: Item
    source: str


#: Plain words for pydantic's messages, by error type.
_PROBLEMS = {
    "missing": "is required",
    "extra_forbidden": "is not a field of an item",
}


def _known_fields(loc: tuple[str | int, ...]) -> list[str]:
    """The field names allowed where ``loc`` points (the item, an attachment…)."""
    model: Any = Item
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # an index into a list: the model is the list's
        found = model.model_fields.get(str(part))
        if found is None:
            return []
        # tuple[Attachment, ...] or ChannelOverrides: the nested model, if any.
        nested = [found.annotation, *get_args(found.annotation)]
        model = next((a for a in nested if hasattr(a, "model_fields")), None)
        if model is None:
            return []
    return list(model.model_fields)


def problems_from_validation(
    source: str, error: ValidationError, item_id: str | None = None
) -> list[ItemProblem]:
    problems = []
    for err in error.errors(include_url=False):
        field = ".".join(str(part) for part in err["loc"])
        problem = _PROBLEMS.get(err["type"], err["msg"].removeprefix("Value error, "))
        fix = _FIXES.get(err["type"], "correct the value")
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][-1]), _known_fields(err["loc"]), 1)
            if close:
                fix = f"did you mean '{close[0]}'? Otherwise remove it"
        elif field == "id" and err["type"] == "string_pattern_mismatch":
            problem = (
                f"'{err['input']}' is not a valid id (a Markdown file without an id takes "
                "its file name)"
            )
            fix = "use lower-case letters, digits, '.', '_' and '-', e.g. jt-2026-land-0101"
        problems.append(ItemProblem(source, field, problem, fix, item_id))
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
                # tomllib counts lines from the front matter; the author counts from
                # the top of the file, where the opening '+++' is line 1.
                where = re.sub(
                    r"line (\d+)", lambda m: f"line {int(m.group(1)) + 1}", str(exc), count=1
                )
                raise ItemProblem(
                    source, "", f"front matter is not valid TOML ({where})", "fix the TOML syntax"
                ) from exc
    raise ItemProblem(source, "", "front matter is not closed", "add a closing '+++' line")


_SIMPLE_ID = re.compile(r'^id\s*=\s*"([^"\\]*)"\s*(#.*)?$')


def peek_ids(text: str, suffix: str, stem: str) -> list[str] | None:
    """The ids a file's items will have, found without building them, or None when
    only a full parse can tell. A run uses it to find ids shared by two files before
    it takes in any item, then reads the files a chunk at a time."""
    text = text.removeprefix("\ufeff")
    if suffix == ".json":
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            return []  # the real parse reports it
        records = payload if isinstance(payload, list) else [payload]
        return [r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), str)]
    lines = text.splitlines()
    if not lines or lines[0].strip() != "+++":
        return []
    found = None
    in_table = False
    for line in lines[1:]:
        stripped = line.strip()
        if stripped == "+++":
            return [found if found is not None else stem]
        if '"""' in line or "'''" in line:
            return None  # a multi-line string could hide an id = line
        if stripped.startswith("["):
            in_table = True  # the keys that follow belong to the table, not the item
        if in_table or found is not None:
            continue
        if stripped.startswith(('"id"', "'id'")):
            return None  # a quoted key: leave it to the TOML parser
        if re.match(r"^id\s*=", stripped):  # not "idx = …"
            match = _SIMPLE_ID.match(stripped)
            if match is None:
                return None  # escapes, a literal string: leave it to the TOML parser
            found = match.group(1)
    return []


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def _resolve_attachments(
    data: dict[str, Any], base: Path | None, source: str, roots: Sequence[Path]
) -> list[ItemProblem]:
    """Make attachment paths absolute and fill in or check their sha256.

    An attachment must resolve (symlinks followed) inside the item file's folder or
    one of ``roots``: otherwise an item file could publish any file the process can
    read (``../../etc/passwd``). File names must be unique in an item, since channels
    and the archive store attachments by name."""
    problems: list[ItemProblem] = []
    attachments = data.get("attachments")
    if not isinstance(attachments, list):
        return problems
    allowed = [base.resolve(), *roots] if base is not None else list(roots)
    names: dict[str, int] = {}
    for index, att in enumerate(attachments):
        if not isinstance(att, dict) or not isinstance(att.get("path"), str):
            continue
        field = f"attachments.{index}.path"
        if not allowed:
            problems.append(
                ItemProblem(
                    source,
                    field,
                    "an item read from stdin has no folder of its own to attach files from",
                    "set [gongkai] attachments_root in config.toml to the folder that holds "
                    "the attachments; paths are then relative to it",
                )
            )
            continue
        path = (allowed[0] / att["path"]).resolve()
        if not _inside(path, allowed):
            where = " or ".join(str(r) for r in allowed)
            problems.append(
                ItemProblem(
                    source,
                    field,
                    f"'{att['path']}' is outside the item's folder ({where})",
                    "copy the file next to the item file and give a relative path, or set "
                    "[gongkai] attachments_root in config.toml to the folder that holds it",
                )
            )
            continue
        if not path.is_file():
            problems.append(
                ItemProblem(
                    source, field, f"file {path} does not exist", "fix the path (relative to item)"
                )
            )
            continue
        if path.name in names:
            problems.append(
                ItemProblem(
                    source,
                    field,
                    f"the file name '{path.name}' is also used by attachments.{names[path.name]}",
                    "rename one of the files: attachments are published by file name",
                )
            )
            continue
        names[path.name] = index
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


def _clean_body(data: dict[str, Any], source: str) -> None:
    """Strip control characters from a body, with a warning: they come in with text
    pasted from terminals and word processors, and the reader never sees them."""
    body = data.get("body")
    if isinstance(body, str):
        cleaned, removed = strip_controls(body)
        if removed:
            data["body"] = cleaned
            log.warning(
                "control characters removed from the body",
                source=source,
                item_id=data.get("id"),
                removed=removed,
            )


def parse_item_data(
    data: dict[str, Any], source: str, base: Path | None = None, roots: Sequence[Path] = ()
) -> tuple[Item | None, list[ItemProblem]]:
    """An Item from one file's fields; attachment paths are resolved against ``base``
    (the file's folder) and must stay inside it or ``roots``. Without a ``base``
    (stdin) they resolve against the first root, and with no root none is allowed."""
    _clean_body(data, source)
    problems = _resolve_attachments(data, base, source, roots)
    if problems:
        # Check the rest too, so that one round of fixes is enough.
        data = {k: v for k, v in data.items() if k != "attachments"}
    try:
        item = Item.model_validate(data)
    except ValidationError as exc:
        return None, problems + problems_from_validation(source, exc, data.get("id"))
    return (None, problems) if problems else (item, [])


def parse_text(
    text: str,
    source: str,
    *,
    suffix: str,
    base: Path | None,
    stem: str | None = None,
    roots: Sequence[Path] = (),
) -> tuple[list[Item], list[ItemProblem]]:
    """Parse one file's text. Returns (items, problems)."""
    # Windows editors save UTF-8 with a byte-order mark; it is not part of the text.
    text = text.removeprefix("\ufeff")
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
            item, found = parse_item_data(record, where, base, roots)
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
    item, problems = parse_item_data(data, source, base, roots)
    return ([item] if item else []), problems


def expand(paths: Iterable[str | Path]) -> Iterable[Path | None]:
    """The item files named by ``paths``: files as given, folders searched (hidden
    folders skipped), ``-`` as None for stdin."""
    for raw in paths:
        if str(raw) == "-":
            yield None
            continue
        path = Path(raw)
        if path.is_dir():
            yield from (Path(name) for name in sorted(_walk(str(path)), key=_path_order))
        else:
            yield path


def _walk(top: str) -> Iterable[str]:
    # os.walk rather than Path.rglob: a folder of 100,000 items is walked in a tenth
    # of the time, and hidden folders are pruned instead of filtered afterwards.
    for folder, dirs, files in os.walk(top):
        # Skip hidden folders such as a state directory (.gongkai) kept beside items,
        # and attachment folders: a Markdown or JSON attachment there is not an item.
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ATTACHMENT_FOLDERS]
        for name in files:
            if os.path.splitext(name)[1].lower() in ITEM_SUFFIXES and not name.startswith("."):
                yield os.path.join(folder, name)


def _path_order(name: str) -> list[str]:
    return name.split(os.sep)  # the order sorted() gives Path objects


def load_paths(
    paths: Iterable[str | Path],
    *,
    attachments_root: Path | None = None,
    read: Callable[[Path], bytes] = Path.read_bytes,
    expanded: bool = False,
    refuse_shared: bool = True,
) -> tuple[list[LoadedItem], list[ItemProblem]]:
    """Load every item under ``paths`` (files, directories, or ``-`` for JSON on stdin).

    Attachments must lie in their item file's folder or under ``attachments_root``.
    Items that share an id are all refused: which one the author meant is a guess.
    ``read`` gives a file's bytes (the run's file scan passes its own, to hash exactly
    what is parsed); ``expanded`` says ``paths`` came from :func:`expand` already;
    ``refuse_shared=False`` leaves shared ids to the caller (a batch read in chunks)."""
    roots = (attachments_root.resolve(),) if attachments_root else ()
    loaded: list[LoadedItem] = []
    problems: list[ItemProblem] = []
    for path in paths if expanded else expand(paths):
        if path is None:
            # Stdin may come from another system (a web form, an OA export): it
            # attaches only from the configured root, never from wherever cron runs.
            items, found = parse_text(
                sys.stdin.read(), "<stdin>", suffix=".json", base=None, roots=roots
            )
            source = "<stdin>"
        else:
            source = str(path)
            text, problem = _read(path, read)
            if problem is not None:
                problems.append(problem)
                continue
            items, found = parse_text(
                text,
                source,
                suffix=path.suffix.lower(),
                base=path.parent,
                stem=path.stem,
                roots=roots,
            )
        loaded.extend(LoadedItem(item, source) for item in items)
        problems.extend(found)
    return _refuse_shared_ids(loaded, problems) if refuse_shared else (loaded, problems)


def _read(path: Path, read: Callable[[Path], bytes]) -> tuple[str, ItemProblem | None]:
    source = str(path)
    not_item = ItemProblem(source, "", "not an item file", "use a .md or .json file")
    if path.suffix.lower() not in ITEM_SUFFIXES:
        return "", not_item if path.exists() else _missing(source)
    try:
        # Read straight away rather than look first: a look is a system call, and on
        # a network share or under load each costs more than the read.
        return decode(read(path)), None
    except FileNotFoundError:
        return "", _missing(source)
    except IsADirectoryError:
        return "", not_item
    except UnicodeDecodeError:
        return "", ItemProblem(source, "", "not UTF-8 text", "save the file as UTF-8")
    except OSError as exc:
        return "", ItemProblem(
            source, "", f"cannot be read ({exc.strerror})", "check the file's permissions"
        )


def decode(data: bytes) -> str:
    """An item file's text: UTF-8 with universal newlines, as read_text gives, so a
    CRLF file hashes as it always did. Raises UnicodeDecodeError."""
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def _missing(source: str) -> ItemProblem:
    return ItemProblem(source, "", "no such file", "check the path")


def shared_id_problem(item_id: str, where: Sequence[str]) -> list[ItemProblem]:
    """One problem per file of ``where``, which all hold an item ``item_id``."""
    return [
        ItemProblem(
            source,
            "id",
            f"id '{item_id}' is used by {len(where)} files in this batch: "
            f"{', '.join(where)}; none of them is published",
            "give each item its own id (an edit of an item keeps its id and replaces the old file)",
            item_id,
        )
        for source in where
    ]


def _refuse_shared_ids(
    loaded: list[LoadedItem], problems: list[ItemProblem]
) -> tuple[list[LoadedItem], list[ItemProblem]]:
    sources: dict[str, list[str]] = {}
    for entry in loaded:
        sources.setdefault(entry.item.id, []).append(entry.source)
    for item_id, where in sources.items():
        if len(where) > 1:
            problems.extend(shared_id_problem(item_id, where))
    return [e for e in loaded if len(sources[e.item.id]) == 1], problems
