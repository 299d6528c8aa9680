"""Built-in processing plugin: pre-publication checks of content safety.

A one-line field (title, publisher, 文号, area, contact, keywords, an attachment's
title) is plain text wherever it is shown: escaped on a web page, printed as it is on
a notice. Markup in it would show as tags on the notice and vanish or run on the web,
so the wall and the web would disagree. It is refused, not stripped, so the author
sees what they wrote and fixes it.

The body is Markdown, and every HTML channel renders it through ``gongkai.html``.
Whatever that sanitiser would remove (a script, an event handler, a ``javascript:``
link, an image that is not one of the item's attachments) is refused here for the same
reason: a silent strip would make the web page differ from the archive and the notice.
"""

from __future__ import annotations

import re

from gongkai.catalogue import Entry
from gongkai.errors import ItemProblem
from gongkai.html import body_markup_problems
from gongkai.item import Item
from gongkai.plugins.hookspecs import hookimpl

#: A tag, a comment or a declaration: "<" followed by a letter, "/", "!" or "?".
_TAG = re.compile(r"<\s*[/!?]?\s*[A-Za-z]")
#: Fields shown as plain text, by the dotted name a problem names.
_LINE_FIELDS = ("title", "publisher", "document_number", "area", "contact")


def _lines(item: Item) -> list[tuple[str, str]]:
    found = [(name, getattr(item, name)) for name in _LINE_FIELDS if getattr(item, name)]
    found += [(f"keywords.{n}", word) for n, word in enumerate(item.keywords)]
    found += [(f"attachments.{n}.title", a.title) for n, a in enumerate(item.attachments)]
    return found


@hookimpl
def gongkai_validate_item(item: Item, entry: Entry | None, source: str) -> list[ItemProblem]:
    problems = []
    for field, text in _lines(item):
        match = _TAG.search(text)
        if match:
            problems.append(
                ItemProblem(
                    source,
                    field,
                    f"contains markup ('{text[match.start() : match.start() + 20]}…'); this "
                    "field is plain text on every channel",
                    "remove the tag; write 《》 for a document title, or spell out < as 小于",
                    item.id,
                )
            )
    for markup in body_markup_problems(item.body, item.attachments):
        problems.append(ItemProblem(source, "body", markup.message, markup.fix, item.id))
    if item.publish_at is not None and item.publish_at.date() < item.formed_on:
        problems.append(
            ItemProblem(
                source,
                "publish_at",
                f"{item.publish_at:%Y-%m-%d %H:%M} is before formed_on {item.formed_on}: a "
                "document cannot be published before it was made",
                "set publish_at on or after formed_on, or correct formed_on",
                item.id,
            )
        )
    return problems
