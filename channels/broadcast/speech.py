"""Written Chinese as an announcer reads it aloud over the village loudspeaker.

A notice is written for the eye: 2026年11月28日, 5.8万元, 12.5%, 金府征补〔2026〕12号,
028-84931234, tables. Read off the page, an announcer stumbles on each of them, and a
speech synthesiser reads "2026" as a number. Everything here is pure: text in, text out.

Conventions (DOMAIN.md "Broadcast scripts"; chosen where DOMAIN.md is silent):

- years and other digit strings read digit by digit use 〇 (二〇二六年), the written
  form of the digit; it is said líng, like 零;
- cardinal numbers, amounts and decimals go through ``cn2an`` (三万六千元, 一点五万元);
  an amount in yuan with jiao and fen is read 元/角/分 (一千二百三十四元五角);
- 文号 lose their brackets: 金府征补〔2026〕12号 → 金府征补二〇二六年十二号;
- telephone numbers are read digit by digit, with 幺 for 1 (``one="幺"``), as
  telephone operators, the army and loudspeaker announcers do: 一 (yī) and 七 (qī) are
  easily confused over a crackling speaker, 幺 (yāo) is not. Pass ``one="一"`` to keep 一;
- anything masked with * is never spelled out: a masked number is read 已隐去, a masked
  name 张* as 张某;
- a Markdown table is summarised ("共4户，补助金额合计十万元，名单详见村公示栏") when it is
  a name list or long, and read row by row when short (a bid ranking).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import cn2an

from gongkai.tables import is_rule, pipe_cells

DIGIT_NAMES = "〇一二三四五六七八九"
MASKED = "已隐去"

_FULLWIDTH = str.maketrans("０１２３４５６７８９％", "0123456789%")
_NUM = r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_LEFT = r"[〔［\[【（(]"
_RIGHT = r"[〕］\]】）)]"
#: Unit symbols and how they are said; the longest first, so m² is not read as m.
_UNITS = {
    "平方公里": "平方公里",
    "平方米": "平方米",
    "立方米": "立方米",
    "km²": "平方公里",
    "hm²": "公顷",
    "mg/L": "毫克每升",
    "m²": "平方米",
    "m2": "平方米",
    "m³": "立方米",
    "m3": "立方米",
    "平米": "平方米",
    "公顷": "公顷",
    "公里": "公里",
    "公斤": "公斤",
    "㎡": "平方米",
    "km": "公里",
    "kg": "公斤",
    "亩": "亩",
}
_UNIT = "|".join(re.escape(u) for u in _UNITS)
#: "/亩", "/人/月", "/人·月": read before the amount, as 每亩, 每人每月.
_PER = r"(?:\s*[/／·・]\s*(?:平方米|㎡|m²|[\u4e00-\u9fff]))+"
_PHONE_WORD = re.compile(r"(?:电话|热线|拨打|致电|手机|传真|号码)(?:是|为)?[：:\s]*$")
_HOTLINE_AFTER = re.compile(r"\s*(?:便民服务)?热线")
#: Measure words after which 2 is said 两 (两户, 两人), not 二.
_MEASURE = "户人名个天周次项批间套亩位家年元条张台辆所处份种类栋座块口头只部本"

_SPOKEN = re.compile(
    "|".join(
        [
            # A masked name keeps its surname (张*, 李**, 欧阳**): 张某, 李某某.
            r"(?P<surname>[\u4e00-\u9fff])(?P<stars>[*＊]{1,2})(?![*＊0-9A-Za-z])",
            # Masked numbers: digits or letters around a run of stars, or stars alone.
            r"(?P<masked>[0-9A-Za-z]*[*＊]+[0-9A-Za-z*＊]*)",
            # 文号: 〔2026〕12号; a missing number (〔2021〕号文) keeps just the year.
            rf"{_LEFT}(?P<docyear>\d{{4}}){_RIGHT}(?:第?(?P<docno>\d+)号)?",
            # Standards: GB 18918-2002 is a code and a year, not a range.
            r"(?P<std>(?<![A-Za-z])(?:GB|GB/T|HJ|CJ|CJJ|JGJ|DB\d*)\s*)(?P<stdno>\d+(?:\.\d+)?)"
            r"\s*[-－—]\s*(?P<stdyear>\d{4})(?!\d)",
            # Phones before dates and ranges: 028-84931234 is not 28 to 84931234.
            r"(?<![\d.])(?P<phone>(?:\+86|0086)?[-\s]?1[3-9]\d(?:[-\s]?\d{4}){2}"
            r"|(?:[(（]0\d{2,3}[)）]|0\d{2,3}[-－—\s]?)\d{7,8}"
            r"|[48]00[-\s]?\d{3}[-\s]?\d{4})(?![\d.])",
            r"(?<!\d)(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月(?:\s*(?P<d>\d{1,2})\s*[日号])?",
            r"(?<![\d.])(?P<iy>\d{4})(?P<sep>[-/.])(?P<im>\d{1,2})(?P=sep)(?P<id>\d{1,2})(?![\d.])",
            r"(?<![\d.])(?P<year>\d{4})(?=\s*年)",
            r"(?<![\d:])(?P<hh>\d{1,2})[:：](?P<mm>\d{2})(?![\d:])",
            rf"[¥￥]\s*(?P<yen>{_NUM})\s*(?P<yenscale>[万亿])?\s*元?",
            rf"(?P<amount>{_NUM})\s*(?P<scale>千万|百万|万|亿)?\s*元(?P<per>{_PER})?",
            rf"(?P<pct>{_NUM})\s*(?P<pctsign>[%‰])",
            rf"(?P<quantity>{_NUM})\s*(?P<unit>{_UNIT})(?![A-Za-z0-9])(?P<uper>{_PER})?",
            rf"(?<![\d.])(?P<r1>{_NUM})\s*[-－~～–]\s*(?P<r2>{_NUM})(?P<rpct>[%％])?",
            rf"(?P<number>{_NUM})",
        ]
    )
)
#: A dash or tilde left between two spoken numbers (10%-20%, 8:00-12:00): 至.
_DASH = re.compile(
    r"(?<=[〇一二三四五六七八九十百千万亿两点分日月年元角天亩米])\s*[-－~～–]\s*(?=[〇一二三四五六七八九十两百])"
)
_PER_LEFT = re.compile(rf"[/／]\s*({'|'.join(re.escape(u) for u in _UNITS)}|[\u4e00-\u9fff])")


def digits(text: str, one: str = "一") -> str:
    """Digits read one by one (2026 → 二〇二六); what is not a digit is dropped."""
    names = DIGIT_NAMES.replace("一", one)
    return "".join(names[int(c)] for c in text if c.isdigit())


def number(text: str) -> str:
    """A cardinal number (36000 → 三万六千, 1,234.50 → 一千二百三十四点五)."""
    text = text.replace(",", "")
    if "." in text:
        text = text.rstrip("0").rstrip(".") or "0"
    spoken = cn2an.an2cn(text)
    # 2000 is said 两千 (and 两万, 两亿), never 二千.
    return "两" + spoken[1:] if spoken[:2] in ("二千", "二万", "二亿") else spoken


def year(text: str) -> str:
    return digits(text)


def date(y: str, m: str, d: str | None = None) -> str:
    """二〇二六年十一月二十八日 (the day is optional: 二〇二六年十一月)."""
    spoken = f"{year(y)}年{number(m)}月"
    return spoken + (f"{number(d)}日" if d else "")


def clock(hours: str, minutes: str) -> str:
    """07:00 → 七点, 18:30 → 十八点三十分, 07:05 → 七点零五分."""
    spoken = f"{_counted(str(int(hours)))}点"  # 两点, not 二点
    if int(minutes) == 0:
        return spoken
    return spoken + ("零" if int(minutes) < 10 else "") + f"{number(str(int(minutes)))}分"


def yuan(amount: str) -> str:
    """An amount in yuan with 角 and 分: 1,234.50 → 一千二百三十四元五角."""
    try:
        value = Decimal(amount.replace(",", "")).quantize(Decimal("0.01"))
    except InvalidOperation:
        return amount + "元"
    whole, cents = divmod(int(value * 100), 100)
    jiao, fen = divmod(cents, 10)
    spoken = f"{number(str(whole))}元" if whole or not cents else ""
    if jiao:
        spoken += f"{number(str(jiao))}角"
    if fen:
        spoken += ("零" if whole and not jiao else "") + f"{number(str(fen))}分"
    return spoken


def phone(text: str, one: str = "幺") -> str:
    """A telephone number digit by digit, its groups apart: 028-84931234 →
    〇二八 八四九三幺二三四. A +86 prefix is dropped: a villager dials the rest."""
    text = re.sub(r"^(?:\+86|0086)", "", text.strip())
    groups = [g for g in re.split(r"[-－—\s()（）]+", text) if g]
    if len(groups) == 1 and len(groups[0]) == 11 and groups[0].startswith("1"):
        mobile = groups[0]
        groups = [mobile[:3], mobile[3:7], mobile[7:]]
    return " ".join(digits(g, one) for g in groups)


def _counted(raw: str) -> str:
    """A number before a unit or measure word: 2 is 两 there (两万元, 两亩)."""
    return "两" if raw == "2" else number(raw)


def _per(units: str | None) -> str:
    """ "/人/月" → 每人每月."""
    if not units:
        return ""
    parts = [p.strip() for p in re.split(r"[/／·・]", units) if p.strip()]
    return "".join("每" + _UNITS.get(p, p) for p in parts)


def _cardinal(raw: str, text: str, start: int, end: int, one: str) -> str:
    if _PHONE_WORD.search(text[max(0, start - 10) : start]):
        return digits(raw, one)  # 热线12345, 拨打110
    if _HOTLINE_AFTER.match(text, end):
        return digits(raw, one)  # 12345热线
    bare = raw.replace(",", "")
    # A leading zero (05) or a long run of digits (a project code) is read digit by digit.
    if "." not in bare and ((len(bare) > 1 and bare[0] == "0") or len(bare) > 9):
        return digits(bare)
    following = text[end : end + 1]
    if bare == "2" and following and following in _MEASURE and text[start - 1 : start] != "第":
        return "两"
    return number(raw)


def _spoken(match: re.Match, text: str, one: str) -> str:
    group = match.groupdict()
    if group["surname"]:
        return group["surname"] + "某" * len(group["stars"])
    if group["masked"]:
        return MASKED
    if group["docyear"]:
        return f"{year(group['docyear'])}年" + (
            f"{number(group['docno'])}号" if group["docno"] else ""
        )
    if group["std"]:
        return f"{group['std'].strip()}{digits(group['stdno'])}—{year(group['stdyear'])}"
    if group["phone"]:
        return phone(group["phone"], one)
    if group["y"]:
        return date(group["y"], group["m"], group["d"])
    if group["iy"]:
        if 1 <= int(group["im"]) <= 12 and 1 <= int(group["id"]) <= 31:
            return date(group["iy"], group["im"], group["id"])
        return digits(match.group(0))
    if group["year"]:
        return year(group["year"])
    if group["hh"]:
        if int(group["hh"]) <= 24 and int(group["mm"]) < 60:
            return clock(group["hh"], group["mm"])
        return f"{number(group['hh'])}比{number(group['mm'])}"
    if group["yen"]:
        if group["yenscale"]:
            return f"{_counted(group['yen'])}{group['yenscale']}元"
        return yuan(group["yen"])
    if group["amount"]:
        per = _per(group["per"])
        if group["scale"]:
            return f"{per}{_counted(group['amount'])}{group['scale']}元"
        if "." in group["amount"]:
            return per + yuan(group["amount"])
        raw = group["amount"]
        return f"{per}{_cardinal(raw, text, match.start(), match.start() + len(raw), one)}元"
    if group["pct"]:
        return ("百分之" if group["pctsign"] == "%" else "千分之") + number(group["pct"])
    if group["quantity"]:
        return f"{_per(group['uper'])}{_counted(group['quantity'])}{_UNITS[group['unit']]}"
    if group["r1"]:
        low, high = group["r1"], group["r2"]
        if len(low) == len(high) == 4 and text[match.end() : match.end() + 1] == "年":
            return f"{year(low)}至{year(high)}"
        if group["rpct"]:
            return f"百分之{number(low)}至百分之{number(high)}"
        return f"{number(low)}至{number(high)}"
    return _cardinal(group["number"], text, match.start(), match.end(), one)


def speak(text: str, one: str = "幺") -> str:
    """One line of written Chinese as it is read aloud: dates, times, amounts,
    percentages, area units, 文号, phone numbers (``one`` is how 1 is said in them),
    ranges and masked data. Text without digits comes back unchanged."""
    text = text.translate(_FULLWIDTH)
    spoken = _SPOKEN.sub(lambda m: _spoken(m, text, one), text)
    spoken = _DASH.sub("至", spoken)
    spoken = _PER_LEFT.sub(lambda m: "每" + _UNITS.get(m.group(1), m.group(1)), spoken)
    for symbol in ("㎡", "m²", "km²"):
        spoken = spoken.replace(symbol, _UNITS[symbol])
    return spoken


# --- Markdown bodies ------------------------------------------------------------------

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_LIST = re.compile(r"^\s*(?:[-+*]|(\d+)[.)])\s+")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"(?:https?://|www\.)[^\s\u3000-\u303f\uff00-\uffef\u4e00-\u9fff]+")
_TAG = re.compile(r"<!--.*?-->|<[^>]+>", re.DOTALL)
# ** and __ around words; not the stars of a masked number (138****5678, 5101**21**…).
_EMPHASIS = re.compile(r"(?<![0-9A-Za-z*])(\*\*|__|\*|_)(?![\s*])(.+?)(?<![\s*])\1(?![0-9A-Za-z*])")
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$")
_ENDS_SENTENCE = "。！？；：…”」）)"
_HEADER_UNIT = re.compile(r"[（(]([^（）()]+)[）)]\s*$")
_NAME_HEADERS = ("姓名", "户主", "申请人", "被征收人", "身份证", "联系电话", "对象", "救助人")
_SUM_HEADERS = ("补助", "补偿", "保障", "救助", "补贴", "资金", "奖励", "发放", "面积")


@dataclass(frozen=True)
class Table:
    """A Markdown table as its header cells and body rows."""

    header: list[str]
    rows: list[list[str]]


def _clean_cell(cell: str) -> str:
    return _inline(cell).strip()


def _inline(text: str) -> str:
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub("（网址详见公示栏）", text)
    text = _TAG.sub("", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)
    return text.replace("`", "")


def _header_unit(header: str) -> tuple[str, str]:
    """ "补助金额（万元）" → ("补助金额", "万元")."""
    found = _HEADER_UNIT.search(header)
    if not found:
        return header, ""
    return header[: found.start()].strip(), found.group(1).strip()


def _decimal(cell: str) -> Decimal | None:
    try:
        return Decimal(cell.replace(",", "").strip())
    except InvalidOperation:
        return None


def _count_word(headers: Sequence[str]) -> str:
    if any("户" in h or h.startswith(("申请人", "被征收人")) for h in headers):
        return "户"
    if any(h.startswith(("姓名", "人员", "救助人")) for h in headers):
        return "人"
    return "项"


def is_name_list(table: Table) -> bool:
    """Whether a table lists people (names, ID numbers, phones): never read aloud
    row by row, however short; only counted."""
    masked = any("*" in cell or "＊" in cell for row in table.rows for cell in row)
    return masked or any(h.startswith(_NAME_HEADERS) or "姓名" in h for h in table.header)


def summarise_table(table: Table, reference: str = "名单详见村公示栏", one: str = "幺") -> str:
    """ "共4户，补助金额合计十万元，名单详见村公示栏。": the rows counted, and each
    subsidy, compensation or area column with a unit in its header summed."""
    headers = [_clean_cell(h) for h in table.header]
    parts = [f"共{_counted(str(len(table.rows)))}{_count_word(headers)}"]
    for index, header in enumerate(headers):
        label, unit = _header_unit(header)
        if not unit or not any(word in label for word in _SUM_HEADERS):
            continue
        values = [_decimal(row[index]) if index < len(row) else None for row in table.rows]
        if not values or any(v is None for v in values):
            continue
        total = sum(values, Decimal(0))
        parts.append(speak(f"{label}合计{_decimal_text(total)}{unit}", one))
    if reference:
        parts.append(reference)
    return "，".join(parts) + "。"


def _decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def read_rows(table: Table, one: str = "幺") -> str:
    """A short table read row by row: "排名第一，中标候选人……，投标报价……元。"."""
    headers = [_header_unit(_clean_cell(h)) for h in table.header]
    sentences = []
    for row in table.rows:
        cells = []
        for (label, unit), cell in zip(headers, row, strict=False):
            value = _clean_cell(cell)
            if not value:
                continue
            amount = _decimal(value) is not None
            cells.append(speak(f"{label}{value}{unit if amount else ''}", one))
        sentences.append("，".join(cells) + "。")
    return "".join(sentences)


def speak_table(
    table: Table, rows_read_max: int = 5, reference: str = "名单详见村公示栏", one: str = "幺"
) -> str:
    """A table as one spoken paragraph: read row by row when it is short and names
    nobody, otherwise counted and summed (:func:`summarise_table`)."""
    if len(table.rows) <= rows_read_max and not is_name_list(table):
        return read_rows(table, one)
    return summarise_table(table, reference if is_name_list(table) else "详见公示栏", one)


def _tables_and_text(markdown: str) -> list[Table | str]:
    """The body's blocks in order: Tables, and paragraphs of text (one string each)."""
    lines = markdown.replace("\r\n", "\n").split("\n")
    blocks: list[Table | str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append("".join(paragraph))
            paragraph.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        header = pipe_cells(line)
        rule = pipe_cells(lines[index + 1]) if index + 1 < len(lines) else None
        if header is not None and is_rule(rule):
            flush()
            rows = []
            index += 2
            while index < len(lines) and (cells := pipe_cells(lines[index])) is not None:
                rows.append([c.strip() for c in cells])
                index += 1
            blocks.append(Table([c.strip() for c in header], rows))
            continue
        heading = _HEADING.match(line)
        if not line.strip() or _RULE.match(line):
            flush()
        elif heading:
            flush()
            blocks.append(heading.group(1))
        else:
            listed = _LIST.match(line)
            if listed:
                flush()
                line = (f"{listed.group(1)}、" if listed.group(1) else "") + line[listed.end() :]
            paragraph.append(re.sub(r"^\s*(?:>\s?)*", "", line).strip())
        index += 1
    flush()
    return blocks


def speak_body(
    markdown: str,
    rows_read_max: int = 5,
    reference: str = "名单详见村公示栏",
    one: str = "幺",
) -> list[str]:
    """A Markdown body as spoken paragraphs: markup dropped, tables summarised or read
    (:func:`speak_table`), every paragraph ending in a pause."""
    paragraphs = []
    for block in _tables_and_text(markdown):
        if isinstance(block, Table):
            paragraphs.append(speak_table(block, rows_read_max, reference, one))
            continue
        text = speak(_inline(block).strip(), one)
        if text:
            paragraphs.append(text if text.endswith(tuple(_ENDS_SENTENCE)) else text + "。")
    return paragraphs
