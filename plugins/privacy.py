"""Built-in processing plugin: mask personal numbers before any channel sees them.

One policy applies to every channel of a deployment (``[privacy]`` in config.toml):
two channels masking the same number differently would let the pieces be joined.
Masking runs in the prepare hook, before the content hash, so the ledger's stored
edition, the archive and every channel receive only the masked text.

Every text an item carries is masked: the title, the body (Markdown tables included),
the publisher, 文号, area, contact, keywords and the attachments' titles. Only the
identifiers gongkai itself makes or checks are left alone (the item id, catalogue key,
related ids and the 索引号, whose 18-character org code could pass an ID check).

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

Numbers listed in ``keep_numbers`` (an office's public hotline) are left alone.
"""

from __future__ import annotations

import re
from datetime import date

from gongkai.errors import ItemProblem
from gongkai.item import Item
from gongkai.plugins.hookspecs import hookimpl

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

#: Full-width digits count as digits; matching maps them to ASCII to check them.
_D = "[0-9\uff10-\uff19]"
_FULL_WIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789xX")
#: Not part of a longer code or a decimal amount: no digit, Latin letter or full-width
#: digit either side, and no decimal point joining it to more digits (13800013800.00元).
_EDGE_BEFORE = r"(?<![0-9A-Za-z\uff10-\uff19])(?<![0-9\uff10-\uff19][.．])"
_EDGE_AFTER = r"(?![0-9A-Za-z\uff10-\uff19]|[.．][0-9\uff10-\uff19])"

_ID = re.compile(f"{_EDGE_BEFORE}{_D}{{17}}(?:{_D}|[XxＸｘ]){_EDGE_AFTER}")
_LEGACY_ID = re.compile(f"{_EDGE_BEFORE}{_D}{{15}}{_EDGE_AFTER}")
_CARD = re.compile(f"{_EDGE_BEFORE}{_D}{{16,19}}{_EDGE_AFTER}")
#: 3-4-4 with at most one space or hyphen between the groups, or 11 digits together.
_SEP = "[ \\-\u00a0\u3000]?"
_MOBILE = re.compile(
    f"{_EDGE_BEFORE}[1１][3-9３-９]{_D}{_SEP}{_D}{{4}}{_SEP}{_D}{{4}}{_EDGE_AFTER}"
)


#: A landline: area code 0 + 2 or 3 digits, an optional hyphen or space, 7 or 8 digits.
_LANDLINE = re.compile(f"{_EDGE_BEFORE}[0０]{_D}{{2,3}}{_SEP}{_D}{{7,8}}{_EDGE_AFTER}")


def _ascii(text: str) -> str:
    return text.translate(_FULL_WIDTH)


def id_number_valid(number: str) -> bool:
    """True if ``number`` is 17 digits plus the right GB 11643-1999 check character."""
    number = _ascii(number)
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11] == number[17].upper()


def legacy_id_valid(number: str) -> bool:
    """True if ``number`` is a 15-digit ID number of before 1999: a region code that
    does not start with 0, then a real birth date (YYMMDD, 19YY)."""
    number = _ascii(number)
    if len(number) != 15 or not number.isdigit() or number[0] == "0":
        return False
    try:
        date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    except ValueError:
        return False
    return True


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(_ascii(number))]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def mask(value: str, keep: tuple[int, int]) -> str:
    """``value`` with all but ``head`` leading and ``tail`` trailing characters
    starred. Never shows more than the policy keeps: if the two would meet, nothing
    is shown (config refuses such policies, but a library caller may pass one)."""
    head, tail = (max(0, n) for n in keep)
    if head + tail >= len(value):
        return "*" * len(value)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def _mask_spaced(text: str, keep: tuple[int, int]) -> str:
    """Like :func:`mask`, counting only the digits and check character: separators
    inside the number (138 0013 8000) stay where they are."""
    positions = [i for i, c in enumerate(text) if not c.isspace() and c not in "-\u00a0"]
    hidden = mask("x" * len(positions), keep)
    chars = list(text)
    for index, shown in zip(positions, hidden, strict=True):
        if shown == "*":
            chars[index] = "*"
    return "".join(chars)


def mask_text(text: str, policy) -> str:
    # Listed as written ("028-84930000"), compared as digits.
    keep = {_ascii(re.sub(r"[\s\-]", "", n)) for n in policy.keep_numbers}

    def checked(valid, keep_policy):
        def replace(match: re.Match) -> str:
            number = match.group(0)
            digits = _ascii(re.sub(r"[\s\-]", "", number))
            if digits in keep or not valid(digits):
                return number
            return _mask_spaced(number, keep_policy)

        return replace

    text = _ID.sub(checked(id_number_valid, policy.id_keep), text)
    text = _CARD.sub(checked(luhn_valid, policy.bank_card_keep), text)
    text = _LEGACY_ID.sub(checked(legacy_id_valid, policy.id_keep), text)
    text = _MOBILE.sub(checked(lambda digits: True, policy.phone_keep), text)
    if getattr(policy, "mask_landlines", False):
        text = _LANDLINE.sub(checked(lambda digits: True, policy.landline_keep), text)
    return text


#: Two-character surnames: 欧阳娜娜 is masked 欧阳**, not 欧***.
_COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "诸葛",
        "上官",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "令狐",
        "端木",
        "南宫",
        "西门",
        "独孤",
        "百里",
        "呼延",
        "轩辕",
        "拓跋",
        "万俟",
        "闻人",
        "申屠",
        "澹台",
        "太史",
        "钟离",
        "宗政",
        "濮阳",
    ]
)


def mask_name(name: str) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧阳**: the surname stays, the given name is starred."""
    name = name.strip()
    if len(name) < 2:
        return name
    surname = 2 if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else 1
    return name[:surname] + "*" * (len(name) - surname)


def _cells(line: str) -> list[str] | None:
    """The cells of a Markdown pipe-table row, or None if ``line`` is not one."""
    text = line.strip()
    if not text.startswith("|"):
        return None
    # Split on pipes that are not escaped (\|); the outer pipes give empty ends.
    parts = re.split(r"(?<!\\)\|", text)
    return parts[1:-1] if text.endswith("|") else parts[1:]


def _is_rule(cells: list[str]) -> bool:
    """Whether a row is a table's |---|:---:| separator."""
    return all(re.fullmatch(r"\s*:?-+:?\s*", c) for c in cells)


def mask_table_names(text: str, columns: frozenset[str]) -> str:
    """Mask the cells of name columns in the Markdown tables of ``text``. A table is a
    header row, a |---| separator row, then rows until a line that is not a row."""
    lines = text.split("\n")
    masked_columns: set[int] = set()
    in_table = False
    for index, line in enumerate(lines):
        cells = _cells(line)
        if cells is None:
            in_table = False
            continue
        following = _cells(lines[index + 1]) if index + 1 < len(lines) else None
        if (
            not in_table
            and following
            and all(re.fullmatch(r"\s*:?-{1,}:?\s*", c) for c in following)
        ):
            masked_columns = {n for n, c in enumerate(cells) if c.strip() in columns}
            in_table = True
            continue
        if (
            not in_table
            or not masked_columns
            or all(re.fullmatch(r"\s*:?-+:?\s*", c) for c in cells)
        ):
            continue
        for n in masked_columns:
            if n < len(cells) and cells[n].strip():
                lead = cells[n][: len(cells[n]) - len(cells[n].lstrip())]
                trail = cells[n][len(cells[n].rstrip()) :]
                cells[n] = lead + mask_name(cells[n].strip()) + trail
        indent = line[: len(line) - len(line.lstrip())]
        closed = line.rstrip().endswith("|")
        lines[index] = indent + "|" + "|".join(cells) + ("|" if closed else "")
    return "\n".join(lines)


#: Fields gongkai makes or checks itself; masking them would break what they identify.
_IDENTIFIERS = frozenset({"id", "catalog", "related", "index_number", "channels"})


def _masked(value, policy):
    """``value`` (a field's data) with every string in it masked."""
    if isinstance(value, str):
        return mask_text(value, policy)
    if isinstance(value, list | tuple):
        return type(value)(_masked(v, policy) for v in value)
    if isinstance(value, dict):
        # An attachment's path and sha256 identify a file; they are not published text.
        return {k: v if k in ("path", "sha256") else _masked(v, policy) for k, v in value.items()}
    return value


@hookimpl
def gongkai_prepare_item(item: Item, settings) -> Item | None:
    policy = settings.privacy
    if not policy.enabled:
        return None
    data = item.model_dump()
    changes = {}
    if item.catalog not in policy.full_names_for:
        body = mask_table_names(item.body, frozenset(policy.name_columns))
        if body != item.body:
            data["body"] = changes["body"] = body
    for name, value in data.items():
        if name in _IDENTIFIERS:
            continue
        masked = _masked(value, policy)
        if masked != value:
            changes[name] = masked
    if not changes:
        return None
    # Validated again by core (a masked value must still be a valid field).
    return Item.model_validate({**data, **changes})


@hookimpl
def gongkai_validate_item(item: Item, source: str, settings) -> list:
    """A guard behind the mask: a personal number still in the prepared item (a later
    plugin added it, or masking has a bug) stops the item instead of going out."""
    policy = settings.privacy
    if not policy.enabled:
        return []
    problems = []
    for name, value in item.model_dump(include=set(Item.model_fields) - _IDENTIFIERS).items():
        if _masked(value, policy) != value:
            problems.append(
                ItemProblem(
                    source,
                    name,
                    "an unmasked personal number (ID, mobile or bank card) is still in it "
                    "after masking",
                    "mask it in the file; if the privacy plugin is enabled, report it as a "
                    "masking bug",
                    item.id,
                )
            )
    return problems
