"""Built-in processing plugin: the deployment's sensitive-word list (``[content]``).

A word on the list stops the item, wherever a published text carries it: the title,
the body, the publisher, 文号, area, contact, each keyword and each attachment's title.
It is refused, not removed, so the author sees the word in context and decides.

Words are matched exactly and after normalising both the word and the text the same
way, since a word is as visible to readers written in any of the ways that dodge a
plain search:

1. Unicode NFKC: full-width letters and digits (ＡＢＣ, １２３) and other
   compatibility forms become their ordinary forms;
2. casefolding, so Latin letters match in any case;
3. whitespace of every kind (spaces, the full-width space, tabs, line breaks) and the
   separators people put inside a word (· • ・ . - _ * | / \\ and zero-width
   characters) are dropped;
4. traditional characters become simplified ones (OpenCC ``t2s``), so 內部資料 is
   内部资料. Without OpenCC installed this step is skipped, with one warning.

The normalised text keeps, for each of its characters, where it came from, so a
problem quotes what the author wrote, and where (the line of the body). The quote is
short and long digit runs in it are starred: an error message must not carry a
personal number.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from gongkai.errors import ItemProblem
from gongkai.html import may_split, plain_text
from gongkai.item import Item
from gongkai.log import get_logger
from gongkai.plugins.hookspecs import hookimpl

log = get_logger(__name__)

#: Separators inserted inside a word to dodge a filter, as NFKC leaves them (the
#: full-width forms have become these already), plus zero-width characters and the
#: soft hyphen, which no reader sees.
SEPARATORS = frozenset("·•・‧∙.-_*|/\\" + "\u200b\u200c\u200d\u2060\ufeff\u00ad")
#: Characters of the quote around a match.
EXCERPT = 30
#: Seven or more digits, also written with spaces or hyphens between groups: starred in
#: a quote, as an ID, phone or card number would be (the privacy plugin's shortest
#: masked number has 10 digits; this stays well below).
_LONG_NUMBER = re.compile(r"\d(?:[ \-]?\d){6,}")
FIX = (
    "rewrite or remove it; if the use is legitimate, ask the administrator to adjust "
    "[content] sensitive_words"
)


@lru_cache(maxsize=1)
def _t2s():
    """OpenCC's traditional-to-simplified converter, or None (said once) without it."""
    try:
        import opencc

        return opencc.OpenCC("t2s")
    except Exception as exc:  # noqa: BLE001 - any failure means: no conversion
        log.warning(
            "traditional characters are not matched as simplified ones",
            plugin=__name__,
            problem=f"OpenCC cannot be loaded ({type(exc).__name__}: {exc})",
            fix="pip install opencc",
        )
        return None


@lru_cache(maxsize=8192)
def _fold(char: str) -> str:
    folded = unicodedata.normalize("NFKC", char).casefold()
    return "".join(c for c in folded if not (c.isspace() or c in SEPARATORS))


@lru_cache(maxsize=8192)
def _simplified_char(char: str) -> str:
    converter = _t2s()
    return converter.convert(char) if converter else char


def normalise(text: str) -> tuple[str, list[int]]:
    """``text`` normalised for matching, and for each of its characters the index of
    the character of ``text`` it came from."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for folded in _fold(char):
            chars.append(folded)
            origin.append(index)
    folded_text = "".join(chars)
    converter = _t2s()
    if converter is None:
        return folded_text, origin
    simplified = converter.convert(folded_text)
    if len(simplified) == len(folded_text):
        return simplified, origin
    # A phrase rule changed the length, so positions no longer line up: convert one
    # character at a time instead (rare, and phrase rules matter little for matching).
    chars, shifted = [], []
    for char, index in zip(folded_text, origin, strict=True):
        for converted in _simplified_char(char):
            chars.append(converted)
            shifted.append(index)
    return "".join(chars), shifted


@dataclass(frozen=True)
class Matcher:
    """One search for every word at once: a regex alternation of the normalised words,
    longest first, so a word containing another is reported as itself."""

    pattern: re.Pattern[str] | None
    #: The word as configured, by its normalised form.
    words: dict[str, str]

    def find(self, text: str) -> list[Finding]:
        """The first place each word is found in ``text``, in order of place."""
        if self.pattern is None or not text:
            return []
        normalised, origin = normalise(text)
        found: dict[str, Finding] = {}
        for match in self.pattern.finditer(normalised):
            word = self.words[match.group()]
            if word in found:
                found[word].count += 1
                continue
            start, end = origin[match.start()], origin[match.end() - 1] + 1
            found[word] = Finding(word, start, end)
        return list(found.values())


@dataclass
class Finding:
    word: str
    #: Where it is in the original text.
    start: int
    end: int
    count: int = 1


@lru_cache(maxsize=4)
def matcher(words: tuple[str, ...]) -> Matcher:
    """The matcher for a word list, built once per list."""
    by_form: dict[str, str] = {}
    for word in words:
        form = normalise(word)[0]
        if form:  # a "word" of separators only would match everywhere
            by_form.setdefault(form, word)
    if not by_form:
        return Matcher(None, {})
    ordered = sorted(by_form, key=lambda form: (-len(form), form))
    return Matcher(re.compile("|".join(map(re.escape, ordered))), by_form)


def texts(item: Item) -> list[tuple[str, str]]:
    """Every published text of ``item`` with the dotted name of its field."""
    found = [
        (name, getattr(item, name))
        for name in ("title", "body", "publisher", "document_number", "area", "contact")
        if getattr(item, name)
    ]
    found += [(f"keywords.{n}", word) for n, word in enumerate(item.keywords)]
    found += [(f"attachments.{n}.title", a.title) for n, a in enumerate(item.attachments)]
    return found


def _starred(line: str) -> str:
    # Same length as the line, so positions in it still hold.
    return _LONG_NUMBER.sub(lambda m: re.sub(r"\d", "*", m.group()), line)


def _visible(quote: str) -> str:
    # A zero-width character inside a word would make the quote look like the word.
    return "".join(f"<U+{ord(c):04X}>" if unicodedata.category(c) == "Cf" else c for c in quote)


def describe(text: str, finding: Finding) -> str:
    """What the problem says: the word, how it was written if not exactly so, the
    line (for text of several lines), and a short quote around it."""
    line_start = text.rfind("\n", 0, finding.start) + 1
    line_end = text.find("\n", finding.end)
    # A word split over lines is quoted on one.
    line = _starred(text[line_start : len(text) if line_end < 0 else line_end]).replace("\n", " ")
    start, end = finding.start - line_start, finding.end - line_start
    written = line[start:end]
    room = max(EXCERPT - (end - start), 0)
    before = max(start - room // 2, 0)
    after = min(end + room - (start - before), len(line))
    before = max(min(before, after - EXCERPT), 0)
    quote = line[before:after].strip()
    cut = after < len(line) or len(quote) > EXCERPT  # a match longer than a quote is cut
    quote = ("…" if before else "") + quote[:EXCERPT] + ("…" if cut else "")
    said = f"contains the sensitive word '{finding.word}'"
    if written != finding.word:
        said += f" (written '{_visible(written)}')"
    if "\n" in text:
        said += f" in line {text.count(chr(10), 0, finding.start) + 1}"
    said += f": '{_visible(quote)}'"
    if finding.count > 1:
        said += f" ({finding.count} times in all)"
    return said


@hookimpl
def gongkai_validate_item(item: Item, source: str, settings) -> list[ItemProblem]:
    content = getattr(settings, "content", None)
    if content is None or not content.words:
        return []
    search = matcher(content.words)
    problems = [
        ItemProblem(source, field, describe(text, finding), FIX, item.id)
        for field, text in texts(item)
        for finding in search.find(text)
    ]
    if not any(p.field == "body" for p in problems) and may_split(item.body):
        # A word split by markup or entities (内部<b></b>资料, 内部&#36164;料) reads
        # whole on the page: look at the text a reader sees too.
        visible = plain_text(item.body)
        problems += [
            ItemProblem(source, "body", describe(visible, finding), FIX, item.id)
            for finding in search.find(visible)
        ]
    return problems
