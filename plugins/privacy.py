"""Built-in processing plugin: mask personal data before any channel sees it.

One policy applies to every channel of a deployment (``[privacy]`` in config.toml):
two channels masking the same number differently would let the pieces be joined.
Masking runs in the prepare hook, before the content hash, so the ledger's stored
edition, the archive and every channel receive only the masked text.

Every text an item carries is masked: the title, the body (Markdown tables included),
the publisher, 文号, area, contact, keywords, the attachments' titles, and the
attachments themselves (CSV, text, Markdown and XLSX, into prepared copies: see
:mod:`gongkai.plugins.sheets`). Attachments gongkai cannot read (PDF, images, DOC) are
refused unless the item declares them ``checked``. Only the identifiers gongkai itself
makes or checks are left alone (the item id, catalogue key, related ids and the 索引号,
whose 18-character org code could pass an ID check).

The rules themselves are in :mod:`gongkai.plugins.masking`:

* ID numbers (居民身份证号码): 18 characters with the right GB 11643-1999 check
  character, and 15-digit legacy numbers whose birth date is a real date. Order
  numbers and amounts of the same length stay as they are.
* Mainland mobile numbers (1[3-9] and 9 more digits), also written 138 0013 8000 or
  138-0013-8000: masked like 138****8000, separators kept.
* Bank card numbers (16–19 digits) when the Luhn check passes.
* Landlines (028-84936677) only with ``mask_landlines = true``: most landlines in a
  notice are an office's public numbers.
* Full-width digits (１３８…) are numbers too: a form filled in with a Chinese input
  method has them.

* Names in name columns (张*, 欧阳**) and addresses in address columns (cut to
  ``address_level``).

Numbers listed in ``keep_numbers`` (an office's public hotline) are left alone, and so
is every field or column the catalogue entry or the item declares ``public_by_law``;
intake stores the declaration with the edition.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

from gongkai.errors import ItemProblem
from gongkai.html import html_table_heads, may_split, plain_text
from gongkai.item import Attachment, Item
from gongkai.plugins.hookspecs import hookimpl
from gongkai.plugins.masking import (  # noqa: F401 - the public names of this plugin
    ID_CHECK,
    ID_WEIGHTS,
    Columns,
    cut_address,
    id_number_valid,
    legacy_id_valid,
    listed_names,
    luhn_valid,
    mask,
    mask_markdown,
    mask_name,
    mask_names,
    mask_text,
    order_names,
    table_headers,
)
from gongkai.plugins.masking import header_key as _header_key
from gongkai.plugins.sheets import (
    UnreadableAttachment,
    masked_bytes,
    names_in,
    prepared_copy,
    readable,
    rows_of,
)

#: Fields gongkai makes or checks itself; masking them would break what they identify.
_IDENTIFIERS = frozenset(
    {"id", "catalog", "related", "index_number", "channels", "public_by_law", "attachments"}
)


def _masked(value, policy, names=()):
    """``value`` (a field's data) with every string in it masked."""
    if isinstance(value, str):
        return mask_names(mask_text(value, policy), names)
    if isinstance(value, list | tuple):
        return type(value)(_masked(v, policy, names) for v in value)
    return value


def declared_public(item: Item, policy) -> tuple[str, ...]:
    """What the item publishes whole by law: its own and its catalogue entry's
    declarations (intake merged them), plus "names" where the policy's
    ``full_names_for`` lists the entry."""
    public = set(item.public_by_law)
    if item.catalog in policy.full_names_for:
        public.add("names")
    return tuple(sorted(public))


def listed_in_item(item: Item, columns: Columns) -> tuple[str, ...]:
    """Every name listed in a name column of the item: its body's tables and its
    readable attachments. Each is masked wherever it appears in the item."""
    names = set(listed_names(item.body, columns))
    for attachment in item.attachments:
        if readable(attachment.path):
            # An unreadable one: the validate hook names it and what to do.
            with contextlib.suppress(OSError, UnreadableAttachment):
                names |= _names_in(attachment, columns)
    return tuple(order_names(names))


@lru_cache(maxsize=512)
def _names_in(attachment: Attachment, columns: Columns) -> frozenset[str]:
    return frozenset(names_in(attachment.path, attachment.path.read_bytes(), columns))


def mask_fields(item: Item, policy, names: tuple[str, ...] | None = None) -> dict:
    """The changed text fields of ``item`` under ``policy`` (attachment files aside).
    ``names`` are masked wherever they appear (default: those of the body's tables)."""
    public = declared_public(item, policy)
    columns = Columns.of(policy, public)
    if names is None:
        names = tuple(listed_names(item.body, columns))
    changes = {}
    for name in Item.model_fields:
        if name in _IDENTIFIERS or name in public:
            continue
        value = getattr(item, name)
        masked = (
            mask_markdown(value, policy, columns, names)
            if name == "body"
            else _masked(value, policy, names)
        )
        if masked != value:
            changes[name] = masked
    if public != item.public_by_law:
        changes["public_by_law"] = public
    return changes


class _Recent:
    """Keys of what this process's masking produced, the newest 256.

    The guard masks a prepared item again to prove nothing is left; for a 2,000-row
    list that doubles the cost of preparing. When the item's text is exactly what the
    prepare hook returned (no later plugin changed it), masking it again is known to
    change nothing (masking is idempotent, and tests hold it to that), so the guard
    skips it. Any change by another plugin gives another key and a full check."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.keys: OrderedDict[tuple, None] = OrderedDict()

    def add(self, key: tuple) -> None:
        self.keys[key] = None
        self.keys.move_to_end(key)
        while len(self.keys) > self.size:
            self.keys.popitem(last=False)

    def __contains__(self, key: tuple) -> bool:
        return key in self.keys


_MASKED_TEXT = _Recent()
_MASKED_FILES = _Recent()


def _text_key(values: dict, policy) -> tuple:
    return (policy, tuple(values[name] for name in _TEXT_FIELDS))


#: Every field masking looks at (whatever the declarations say).
_TEXT_FIELDS = tuple(name for name in Item.model_fields if name not in _IDENTIFIERS)


@lru_cache(maxsize=512)
def _copy(
    attachment: Attachment, policy, columns: Columns, store: Path, names: tuple[str, ...]
) -> Attachment:
    copy = prepared_copy(attachment, policy, columns, store, names)
    _MASKED_FILES.add((copy.path, copy.sha256, policy, columns))
    return copy


def _attachments(
    item: Item, settings, columns: Columns, names: tuple[str, ...]
) -> tuple[Attachment, ...]:
    policy = effective_policy(settings)
    store = Path(settings.state_dir) / "prepared" if hasattr(settings, "state_dir") else None
    prepared = []
    for attachment in item.attachments:
        title = mask_names(mask_text(attachment.title, policy), names)
        if title != attachment.title:
            attachment = attachment.model_copy(update={"title": title})
        if store is not None and readable(attachment.path):
            try:
                copy = _copy(attachment, policy, columns, store, names)
                if not copy.path.is_file():  # the state folder was cleared meanwhile
                    _copy.cache_clear()
                    copy = _copy(attachment, policy, columns, store, names)
                attachment = copy
            except (OSError, UnreadableAttachment):
                pass  # the validate hook names the attachment and what to do
        prepared.append(attachment)
    return tuple(prepared)


def effective_policy(settings):
    """The deployment's policy, keeping its own org codes too: they are published in
    every 索引号, so masking them in a body would hide nothing and garble the text."""
    policy = settings.privacy
    codes = {getattr(settings, "org_code", None), *getattr(settings, "org_codes", {}).values()}
    codes = tuple(sorted(c for c in codes if c and c not in policy.keep_numbers))
    if not codes:
        return policy
    return _with_codes(policy, codes)


@lru_cache(maxsize=16)
def _with_codes(policy, codes: tuple[str, ...]):
    # Cached: the same policy object keeps the guard's memo of masked text valid.
    return policy.model_copy(update={"keep_numbers": (*policy.keep_numbers, *codes)})


@hookimpl
def gongkai_prepare_item(item: Item, settings) -> Item | None:
    policy = effective_policy(settings)
    if not policy.enabled:
        return None
    columns = Columns.of(policy, declared_public(item, policy))
    names = listed_in_item(item, columns)
    changes = mask_fields(item, policy, names)
    values = {name: changes.get(name, getattr(item, name)) for name in _TEXT_FIELDS}
    _MASKED_TEXT.add(_text_key(values, policy))
    attachments = _attachments(item, settings, columns, names)
    if attachments != item.attachments:
        changes["attachments"] = attachments
    if not changes:
        return None
    # Validated again by core (a masked value must still be a valid field).
    return item.model_copy(update=changes)


def _attachment_problems(item: Item, source: str, policy) -> list[ItemProblem]:
    problems = []
    columns = Columns.of(policy, declared_public(item, policy))
    for n, attachment in enumerate(item.attachments):
        if not readable(attachment.path):
            if not attachment.checked:
                problems.append(
                    ItemProblem(
                        source,
                        f"attachments.{n}.checked",
                        f"'{attachment.filename}' is a file gongkai cannot read to mask "
                        "ID numbers, phone numbers and names",
                        "open it, make sure personal data in it is masked, then add "
                        "checked = true to this attachment (the declaration is recorded); "
                        "or attach the list as CSV or XLSX so gongkai masks it",
                        item.id,
                    )
                )
            continue
        if (attachment.path, attachment.sha256, policy, columns) in _MASKED_FILES:
            continue  # the copy (or the clean original) this process's masking made
        try:
            leftover = masked_bytes(attachment.path, attachment.path.read_bytes(), policy, columns)
        except (OSError, UnreadableAttachment) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            problems.append(
                ItemProblem(
                    source,
                    f"attachments.{n}.path",
                    f"'{attachment.filename}' cannot be read to mask it: {reason}",
                    "save it as UTF-8 CSV or as XLSX and publish again",
                    item.id,
                )
            )
            continue
        if leftover is not None:
            problems.append(_leftover(source, f"attachments.{n}", item.id))
    return problems


def _leftover(source: str, field: str, item_id: str) -> ItemProblem:
    return ItemProblem(
        source,
        field,
        "personal data (an ID, phone or bank card number, a name or an address) is still "
        "in it after masking",
        "mask it in the file; if the privacy plugin is enabled, report it as a masking bug",
        item_id,
    )


@hookimpl
def gongkai_validate_item(item: Item, source: str, settings) -> list:
    """A guard behind the mask: personal data still in the prepared item (a later
    plugin added it, or masking has a bug) stops the item instead of going out. It
    masks the prepared item again: masking is idempotent, so any change is a leak.
    Attachments gongkai cannot read must be declared checked."""
    policy = effective_policy(settings)
    if not policy.enabled:
        return []
    problems = []
    if _text_key({n: getattr(item, n) for n in _TEXT_FIELDS}, policy) not in _MASKED_TEXT:
        problems = [
            _leftover(source, name, item.id)
            for name in mask_fields(item, policy)
            if name != "public_by_law"
        ]
    problems += _markup_problems(item, source, policy)
    problems += _declaration_problems(item, source, policy)
    return (
        problems + _name_problems(item, source, policy) + _attachment_problems(item, source, policy)
    )


def _markup_problems(item: Item, source: str, policy) -> list[ItemProblem]:
    """Numbers masking cannot see but readers do: split by markup, an entity or a
    line break (5101**21**1948…, 138&#48;0138000), and name lists written as raw HTML
    tables, whose columns masking cannot read."""
    problems = []
    if "body" not in item.public_by_law and may_split(item.body):
        visible = plain_text(item.body)
        if mask_text(visible, policy) != visible:
            problems.append(
                ItemProblem(
                    source,
                    "body",
                    "a personal number is written split by markup, an entity or a line "
                    "break (such as 5101**21**… or 138&#48;…): masking cannot see it, "
                    "readers of the page do",
                    "write the number as plain digits in one piece; masking then hides it",
                    item.id,
                )
            )
    columns = Columns.of(policy, declared_public(item, policy))
    for head in html_table_heads(item.body):
        personal = [h for h in head if columns.role(h) in ("name", "address")]
        if personal:
            problems.append(
                ItemProblem(
                    source,
                    "body",
                    f"an HTML table has a '{personal[0]}' column, which masking cannot "
                    "read in HTML",
                    "write the list as a Markdown table (| 序号 | 户主 | … |), so names and "
                    "addresses are masked",
                    item.id,
                )
            )
    return problems


#: Item fields that may be declared public by law. Not the title or the body: no law
#: publishes an ID number, so a declaration names the column or field that is public.
DECLARABLE_FIELDS = frozenset({"contact", "area", "keywords", "publisher", "document_number"})


def _declaration_problems(item: Item, source: str, policy) -> list[ItemProblem]:
    declared = [d for d in item.public_by_law if d not in ("names", "addresses")]
    declared = [d for d in declared if d not in DECLARABLE_FIELDS]
    if not declared:
        return []
    headers = _headers(item, Columns.of(policy))
    return [
        ItemProblem(
            source,
            "public_by_law",
            f"'{value}' is neither a column of this item's tables nor a field that can be "
            "public by law",
            "declare a column by its header (such as 姓名), names, addresses, or one of "
            f"{', '.join(sorted(DECLARABLE_FIELDS))}; the whole body or title cannot be "
            "declared public",
            item.id,
        )
        for value in declared
        if _header_key(value) not in headers
    ]


def _headers(item: Item, columns: Columns) -> set[str]:
    """Every column header of the item's tables and readable attachments."""
    found = {_header_key(h) for h in table_headers(item.body)}
    found |= {_header_key(h) for head in html_table_heads(item.body) for h in head}
    for attachment in item.attachments:
        if readable(attachment.path):
            with contextlib.suppress(OSError, UnreadableAttachment):
                rows = rows_of(attachment.path)[:10]
                found |= {_header_key(str(c)) for row in rows for c in row}
    return found


def _name_problems(item: Item, source: str, policy) -> list[ItemProblem]:
    """The item id and the attachments' file names are published (in URLs, on pages)
    and cannot be masked without breaking what they identify: a personal number in
    one is refused."""
    named = [("id", item.id, "choose an id without it, such as the document's serial")]
    named += [
        (f"attachments.{n}.path", a.filename, "rename the file without it")
        for n, a in enumerate(item.attachments)
    ]
    return [
        ItemProblem(
            source,
            field,
            "holds a personal number (ID, mobile or bank card); it is published as it is",
            fix,
            item.id,
        )
        for field, name, fix in named
        if mask_text(name, policy) != name
    ]
