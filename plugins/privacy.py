"""Built-in processing plugin: mask personal numbers before any channel sees them.

One policy applies to every channel of a deployment (``[privacy]`` in config.toml):
two channels masking the same number differently would let the pieces be joined.

* ID numbers (居民身份证号码) are masked only when the GB 11643-1999 check character is
  right, so order numbers and amounts of 18 digits stay as they are.
* Mainland mobile numbers (1[3-9] and 9 more digits) are masked like 138****1234.
* Bank card numbers (16–19 digits) are masked when the Luhn check passes.

Numbers listed in ``keep_numbers`` (an office's public hotline) are left alone.
"""

from __future__ import annotations

import re

from gongkai.item import Item
from gongkai.plugins.hookspecs import hookimpl

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_CARD = re.compile(r"(?<!\d)\d{16,19}(?!\d)")


def id_number_valid(number: str) -> bool:
    """True if ``number`` is 17 digits plus the right GB 11643-1999 check character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
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


def mask_text(text: str, policy) -> str:
    keep = set(policy.keep_numbers)

    def ids(match: re.Match) -> str:
        number = match.group(0)
        if number in keep or not id_number_valid(number):
            return number
        return mask(number, policy.id_keep)

    def cards(match: re.Match) -> str:
        number = match.group(0)
        if number in keep or not luhn_valid(number):
            return number
        return mask(number, policy.bank_card_keep)

    def mobiles(match: re.Match) -> str:
        number = match.group(0)
        return number if number in keep else mask(number, policy.phone_keep)

    text = _ID.sub(ids, text)
    text = _CARD.sub(cards, text)
    return _MOBILE.sub(mobiles, text)


@hookimpl
def gongkai_prepare_item(item: Item, settings) -> Item | None:
    policy = settings.privacy
    if not policy.enabled:
        return None
    changes = {}
    for field in ("title", "body"):
        masked = mask_text(getattr(item, field), policy)
        if masked != getattr(item, field):
            changes[field] = masked
    return item.model_copy(update=changes) if changes else None
