"""Masking rules as pure functions on text: personal numbers, names and addresses.

The privacy plugin applies them to an item's fields and body, and the attachment
masker (:mod:`gongkai.plugins.sheets`) to CSV, text and XLSX files cell by cell, so the
same input masks identically wherever it appears.

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
* Names in a column whose header names a person: 张* / 欧阳**.
* Addresses in a column whose header names an address: cut to the policy's level.

A table column is classified by its header (:class:`Columns`); a column declared public
by law is left whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from gongkai.tables import is_rule, pipe_cells, split_row

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

#: Full-width digits count as digits; matching maps them to ASCII to check them.
_D = "[0-9\uff10-\uff19]"
_FULL_WIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789xX")
#: Not part of a longer number or a decimal amount: no digit either side, and no
#: decimal point joining it to more digits (13800013800.00元). A Latin letter may touch
#: it: "Tel13800138000" and "ID510121…" are written too, and a leak is worse than a
#: masked serial.
_EDGE_BEFORE = r"(?<![0-9\uff10-\uff19])(?<![0-9\uff10-\uff19][.．])"
_EDGE_AFTER = r"(?![0-9\uff10-\uff19]|[.．][0-9\uff10-\uff19])"
#: An amount of money is not a phone or card number: 最高限价13900000000元.
_NOT_MONEY = r"(?![ \u3000]*(?:元|圆|万元|亿元))"
#: What people put between the groups of a number: spaces (one or two, half- or
#: full-width, no-break), hyphens and dashes of every width, and dots.
SEPARATORS = " \u00a0\u3000-\uff0d\u2010\u2011\u2012\u2013\u2014\u2212.\uff0e"
_SEP = f"[{re.escape(SEPARATORS)}]{{0,2}}"
_SEP1 = f"[{re.escape(SEPARATORS)}]{{1,2}}"
#: A country code before a mobile: +86, ＋86, 0086, with or without a space.
_CC = r"(?:(?:[+＋]|00)(?:86|８６)[ \-]?)?"

_ID = re.compile(
    f"{_EDGE_BEFORE}(?:{_D}{{17}}|{_D}{{6}}{_SEP1}{_D}{{8}}{_SEP1}{_D}{{3}})"
    f"(?:{_D}|[XxＸｘ]){_EDGE_AFTER}"
)
_LEGACY_ID = re.compile(f"{_EDGE_BEFORE}{_D}{{15}}{_EDGE_AFTER}")
#: 16–19 digits together, or in groups of four (6222 0212 3456 7890 128).
_CARD = re.compile(
    f"{_EDGE_BEFORE}(?:{_D}{{16,19}}|{_D}{{4}}(?:{_SEP1}{_D}{{4}}){{3}}(?:{_SEP1}{_D}{{1,3}})?)"
    f"{_EDGE_AFTER}{_NOT_MONEY}"
)
#: 3-4-4 with separators between the groups, or 11 digits together.
_MOBILE = re.compile(
    f"{_EDGE_BEFORE}{_CC}[1１][3-9３-９]{_D}{_SEP}{_D}{{4}}{_SEP}{_D}{{4}}{_EDGE_AFTER}{_NOT_MONEY}"
)
#: A landline: area code 0 + 2 or 3 digits, an optional separator, 7 or 8 digits.
_LANDLINE = re.compile(f"{_EDGE_BEFORE}[0０]{_D}{{2,3}}{_SEP}{_D}{{7,8}}{_EDGE_AFTER}{_NOT_MONEY}")
#: Labels of public numbers that can pass an ID or card check by chance (an all-digit
#: 统一社会信用代码 does one time in eleven): a number right after one is left alone.
PUBLIC_LABELS = (
    "统一社会信用代码",
    "信用代码",
    "组织机构代码",
    "项目编号",
    "项目代码",
    "招标编号",
    "标段编号",
    "注册号",
    "订单号",
    "合同编号",
    "合同号",
    "流水号",
    "档案编号",
)
_LABEL_END = re.compile(r"[\s:：（(]*$")
#: Province codes of the 居民身份证 (GB/T 2260), and 81–83 for the Hong Kong, Macao
#: and Taiwan residence permits.
_PROVINCES = frozenset(
    str(code)
    for code in (*range(11, 16), 21, 22, 23, *range(31, 38), *range(41, 47), *range(50, 55))
    + (*range(61, 66), 71, 81, 82, 83)
)


def _ascii(text: str) -> str:
    return text.translate(_FULL_WIDTH)


def _born(year: int, month: int, day: int) -> bool:
    try:
        born = date(year, month, day)
    except ValueError:
        return False
    # GB 11643's own example (440524188001010014) was born in 1880.
    return date(1850, 1, 1) <= born <= date.today()


def id_number_valid(number: str) -> bool:
    """True if ``number`` is an 18-character ID number: a province code, a real birth
    date, and the right GB 11643-1999 check character."""
    number = _ascii(number)
    if len(number) != 18 or not number[:17].isdigit() or number[:2] not in _PROVINCES:
        return False
    if not _born(int(number[6:10]), int(number[10:12]), int(number[12:14])):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11] == number[17].upper()


def legacy_id_valid(number: str) -> bool:
    """True if ``number`` is a 15-digit ID number of before 1999: a province code,
    then a real birth date (YYMMDD, 19YY)."""
    number = _ascii(number)
    if len(number) != 15 or not number.isdigit() or number[:2] not in _PROVINCES:
        return False
    return _born(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))


def card_number_valid(number: str) -> bool:
    """True if ``number`` looks like a bank card: 16–19 digits, an issuer prefix that
    cards have (UnionPay 62, Visa 4, Mastercard 5 and 2221–2720, 3, and the 9 of
    older domestic cards), and the Luhn check. A date-led reference (2026…) is not."""
    number = _ascii(number)
    if not 16 <= len(number) <= 19 or not number.isdigit():
        return False
    issuer = number[0] in "34569" or 222100 <= int(number[:6]) <= 272099
    return issuer and luhn_valid(number)


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


_SEPARATOR_SET = frozenset(SEPARATORS)


def _digits(text: str) -> str:
    """The digits (and check character) of a written number, ASCII."""
    return _ascii("".join(c for c in text if c not in _SEPARATOR_SET))


def _mask_spaced(text: str, keep: tuple[int, int]) -> str:
    """Like :func:`mask`, counting only the digits and check character: separators
    inside the number (138 0013 8000) stay where they are."""
    positions = [i for i, c in enumerate(text) if c not in _SEPARATOR_SET]
    hidden = mask("x" * len(positions), keep)
    chars = list(text)
    for index, shown in zip(positions, hidden, strict=True):
        if shown == "*":
            chars[index] = "*"
    return "".join(chars)


def _after_public_label(match: re.Match) -> bool:
    before = match.string[max(0, match.start() - 20) : match.start()]
    if "号" not in before and "码" not in before:  # every label ends in one (fast path)
        return False
    before = _LABEL_END.sub("", before)
    return before.endswith(PUBLIC_LABELS)


_COUNTRY_CODE = re.compile(r"^(?:[+＋]|00)(?:86|８６)[ \-]?")


#: Every number masking looks for has a run of three digits or more (a mobile's
#: first group, a landline's area code, an ID's groups): text without one is left as it
#: is without running the patterns (most cells of a name list: names, 3组12号).
_DIGIT_RUN = re.compile(f"{_D}{{3}}")


def mask_text(text: str, policy) -> str:
    if _DIGIT_RUN.search(text) is None:
        return text
    # Listed as written ("028-84930000"), compared as digits.
    keep = {_digits(n) for n in policy.keep_numbers}

    def checked(valid, keep_policy, labelled: bool = True):
        def replace(match: re.Match) -> str:
            written = match.group(0)
            prefix = _COUNTRY_CODE.match(written)
            head = prefix.group(0) if prefix else ""
            number = written[len(head) :]
            digits = _digits(number)
            if digits in keep or not valid(digits):
                return written
            if labelled and _after_public_label(match):
                return written
            return head + _mask_spaced(number, keep_policy)

        return replace

    text = _ID.sub(checked(id_number_valid, policy.id_keep), text)
    text = _CARD.sub(checked(card_number_valid, policy.bank_card_keep), text)
    text = _LEGACY_ID.sub(checked(legacy_id_valid, policy.id_keep), text)
    # A phone is a phone whatever label is before it.
    text = _MOBILE.sub(checked(lambda digits: True, policy.phone_keep, False), text)
    if getattr(policy, "mask_landlines", False):
        text = _LANDLINE.sub(checked(lambda digits: True, policy.landline_keep, False), text)
    return text


#: Two-character surnames: 欧阳娜娜 is masked 欧阳**, not 欧***.
COMPOUND_SURNAMES = frozenset(
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
    surname = 2 if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else 1
    return name[:surname] + "*" * (len(name) - surname)


# --- addresses ------------------------------------------------------------------------

#: The place-name suffixes of each level, outermost first. A group (村民小组) is 组 or,
#: in Sichuan, 社 ("3社"), always after a number.
_LEVELS = (
    # 赵镇街道 is a street (街道) whose name ends in 镇: the street is the township.
    ("township", re.compile(r"(?:街道(?:办事处)?|镇(?!街道)|乡)")),
    ("village", re.compile(r"(?:村|社区|居委会)")),
    ("group", re.compile(r"(?:[0-9０-９一二三四五六七八九十]+(?:组|社|队))")),
)
_ORDER = [name for name, _ in _LEVELS]


def cut_address(address: str, level: str) -> str:
    """``address`` cut after the place of ``level``: 五凤镇白果村3组12号 becomes 五凤镇
    (township), 五凤镇白果村 (village) or 五凤镇白果村3组 (group). Each level is looked
    for after the one before it (白果村3组 at village level is 白果村). With no place of
    an allowed level in it, nothing of the address is shown."""
    text = address.strip()
    end = 0
    for _name, pattern in _LEVELS[: _ORDER.index(level) + 1]:
        found = pattern.search(text, end)
        if found is not None:
            end = found.end()
    if end == 0:
        return "*" * min(len(text), 6) if text else text
    return text[:end]


# --- tables ---------------------------------------------------------------------------


def header_key(text: str) -> str:
    # "户主姓名 " and "户主 姓名" are one header; full-width spaces come from Word;
    # **户主** and 户主<br>姓名 are headers too, dressed up.
    return re.sub(r"<[^>]*>|[\s\u3000*_`~\\]+", "", text)


@dataclass(frozen=True)
class Columns:
    """Which headers are names, addresses, or public by law, under one policy.

    ``public`` holds the declarations of the catalogue entry and the item: headers,
    or "names" / "addresses" for every column of that kind."""

    names: frozenset[str]
    addresses: frozenset[str]
    public: frozenset[str]

    @classmethod
    def of(cls, policy, public: Iterable[str] = ()) -> Columns:
        return cls(
            frozenset(header_key(h) for h in policy.name_columns),
            frozenset(header_key(h) for h in getattr(policy, "address_columns", ())),
            frozenset(header_key(h) for h in public),
        )

    def role(self, header: str) -> str:
        """ "public", "name", "address" or "text" (numbers masked, nothing else)."""
        key = header_key(header)
        if key in self.public:
            return "public"
        if key in self.names:
            return "public" if "names" in self.public else "name"
        if key in self.addresses:
            return "public" if "addresses" in self.public else "address"
        return "text"

    def roles(self, headers: Sequence[str]) -> list[str]:
        return [self.role(h) for h in headers]

    def knows(self, header: str) -> bool:
        key = header_key(header)
        return key in self.names or key in self.addresses or key in self.public


def mask_cell(text: str, role: str, policy) -> str:
    """One table cell, masked for its column's role."""
    if role == "public" or not text.strip():
        return text
    if role == "name":
        inner = text.strip()
        masked = mask_name(_name_key(inner))
    elif role == "address":
        inner = text.strip()
        masked = cut_address(inner, getattr(policy, "address_level", "township"))
    else:
        return mask_text(text, policy)
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return lead + mask_text(masked, policy) + trail


def _table_rows(lines: list[str], columns: Columns):
    """``(index, cells, roles)`` for each data row of the pipe tables in ``lines``. A
    table is a header row, a |---| separator row, then rows until a line that is not
    a row."""
    roles: list[str] = []
    in_table = False
    for index, line in enumerate(lines):
        cells = pipe_cells(line)
        if cells is None:
            in_table = False
        elif not in_table and index + 1 < len(lines) and is_rule(pipe_cells(lines[index + 1])):
            roles, in_table = columns.roles(cells), True
        elif in_table and not is_rule(cells):
            yield index, cells, roles


def table_headers(text: str) -> list[str]:
    """The header cells of the pipe tables of ``text``, as written."""
    lines = text.split("\n")
    return [
        cell.strip()
        for index, line in enumerate(lines[:-1])
        if (cells := pipe_cells(line))
        and not is_rule(cells)
        and is_rule(pipe_cells(lines[index + 1]))
        for cell in cells
    ]


def listed_names(text: str, columns: Columns) -> list[str]:
    """The names in the name columns of the tables of ``text``, longest first."""
    names = {
        _name_key(cell)
        for _, cells, roles in _table_rows(text.split("\n"), columns)
        for cell, role in zip(cells, roles, strict=False)
        if role == "name" and len(_name_key(cell)) >= 2
    }
    return order_names(names)


def order_names(names: set[str]) -> list[str]:
    """Names longest first, so 欧阳娜娜 is replaced before a 欧阳娜 would be."""
    return sorted(names, key=lambda n: (-len(n), n))


@lru_cache(maxsize=64)
def _name_finder(names: tuple[str, ...]) -> tuple[re.Pattern[str], frozenset[str], list[int]]:
    # A name list has thousands of names: find the places where one could start (its
    # first character, one C-level scan), then look the few candidates up in a set.
    first = "".join(sorted({n[0] for n in names}))
    lengths = sorted({len(n) for n in names}, reverse=True)
    return re.compile(f"[{re.escape(first)}]"), frozenset(names), lengths


def mask_names(text: str, names: Sequence[str]) -> str:
    """``text`` with each of ``names`` masked wherever it appears, the longest name
    first where two overlap: a name from a list must not come back in a sentence
    below it ("周大勇的账户…")."""
    return name_masker(names)(text)


def name_masker(names: Sequence[str]) -> Callable[[str], str]:
    """:func:`mask_names` for ``names``, bound once. Masking a list's thousands of
    cells calls it per cell; looking the finder up each time hashed the whole name
    tuple per cell, which was most of a 2,000-row list's preparation."""
    if not names:
        return _unchanged
    finder = _name_finder(tuple(names))
    return lambda text: _mask_found(text, finder)


def _unchanged(text: str) -> str:
    return text


def _mask_found(text: str, finder: tuple[re.Pattern[str], frozenset[str], list[int]]) -> str:
    starts, known, lengths = finder
    parts, done, found = [], 0, starts.search(text)
    while found is not None:
        at = found.start()
        name = next((text[at : at + n] for n in lengths if text[at : at + n] in known), None)
        if name is None:
            found = starts.search(text, at + 1)
            continue
        parts += [text[done:at], mask_name(name)]
        done = at + len(name)
        found = starts.search(text, done)
    return "".join(parts) + text[done:] if parts else text


def mask_markdown(text: str, policy, columns: Columns, names: Sequence[str] | None = None) -> str:
    """Mask Markdown text: numbers everywhere, and the cells of name and address
    columns of its pipe tables by role; names from its name columns (or ``names``)
    wherever else they appear. Columns declared public are left whole, numbers
    included."""
    lines = text.split("\n")
    mask_listed = name_masker(listed_names(text, columns) if names is None else names)
    rows = {index: (cells, roles) for index, cells, roles in _table_rows(lines, columns)}
    for index, line in enumerate(lines):
        if index not in rows:
            lines[index] = mask_listed(mask_text(line, policy))
            continue
        cells, roles = rows[index]
        row = split_row(line)
        if "public" not in roles:
            # Numbers of the whole row in one pass (a cell boundary " | " ends a number
            # as a cell's end would); then names and addresses by column.
            row = split_row(mask_text(line, policy)) or row
            cells = row.cells
            roles = [*roles, *["text"] * (len(cells) - len(roles))]
            cells = [
                c if r == "text" else mask_cell(c, r, policy)
                for c, r in zip(cells, roles, strict=True)
            ]
            # Other cells may name a listed person too (备注: 与周大勇同户).
            cells = [mask_listed(c) for c in cells]
        else:
            roles = [*roles, *["text"] * (len(cells) - len(roles))]
            cells = [
                c if r == "public" else mask_listed(mask_cell(c, r, policy))
                for c, r in zip(cells, roles, strict=False)
            ]
        lines[index] = row.join(cells)
    return "\n".join(lines)


def _header_at(rows: Sequence[Sequence[str]], columns: Columns) -> int | None:
    """The header row of a list: the first of its first ten rows that names a known
    column (lists often start with a title row)."""
    return next(
        (n for n, row in enumerate(rows[:10]) if any(columns.knows(str(c)) for c in row)), None
    )


def _name_key(name: str) -> str:
    # "王　芳" in a list padded by Word or Excel is the 王芳 of the text below it.
    return re.sub(r"[\s\u3000]+", "", name)


def row_names(rows: Sequence[Sequence[str]], columns: Columns) -> set[str]:
    """The names in the name columns of a table given as rows of cells."""
    header_at = _header_at(rows, columns)
    if header_at is None:
        return set()
    roles = columns.roles([str(c) for c in rows[header_at]])
    return {
        _name_key(str(cell))
        for row in rows[header_at + 1 :]
        for cell, role in zip(row, roles, strict=False)
        if role == "name" and len(_name_key(str(cell))) >= 2
    }


def mask_rows(
    rows: Sequence[Sequence[str]], policy, columns: Columns, names: Sequence[str] = ()
) -> list[list[str]]:
    """Mask a table given as rows of cells (a CSV file): numbers in every cell, name
    and address columns by role below the header (:func:`_header_at`), and the
    ``names`` listed anywhere in the item wherever they appear, except in columns
    declared public."""
    header_at = _header_at(rows, columns)
    roles = columns.roles([str(c) for c in rows[header_at]]) if header_at is not None else []
    mask_listed = name_masker(names)
    masked = []
    for n, row in enumerate(rows):
        use = roles if header_at is not None and n > header_at else []
        cells = []
        for i, cell in enumerate(row):
            role = use[i] if i < len(use) else "text"
            done = mask_cell(cell, role, policy)
            cells.append(done if role == "public" else mask_listed(done))
        masked.append(cells)
    return masked
