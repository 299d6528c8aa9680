"""``gongkai parity`` as text: one table per responsible unit and township, listing what
is not at parity, then one line that says whether parity holds."""

from __future__ import annotations

from collections.abc import Iterator

from .cli_output import table
from .parity import ItemParity, ParityReport


def grouped(report: ParityReport) -> dict[tuple[str, str], list[ItemParity]]:
    """Items by (responsible unit, township), both sorted, items by id."""
    groups: dict[tuple[str, str], list[ItemParity]] = {}
    for item in sorted(report.items, key=lambda i: (i.publisher, i.township, i.item_id)):
        groups.setdefault((item.publisher, item.township), []).append(item)
    return groups


def _rows(item: ItemParity) -> Iterator[tuple[str, ...]]:
    edition = f"{item.item_id} (第{item.edition}版)"
    if item.late:
        yield edition, "-", "", "late", item.problems[0]
    for channel in item.channels:
        if channel.status == "ok":
            continue
        for area in channel.areas or ():
            if area.status != "ok":
                yield edition, channel.channel, area.area, area.state, area.detail
        if not channel.areas:
            yield edition, channel.channel, "", channel.state, channel.detail
    if item.status == "ok":
        yield edition, f"{len(item.channels)} channel(s)", "", "current", "at parity"


def render_text(report: ParityReport, limit: int = 48) -> str:
    """The human report."""
    parts: list[str] = []
    for (unit, town), items in grouped(report).items():
        parts.append(f"{unit} · {town}")
        rows = [row for item in items for row in _rows(item)]
        parts.append(table(rows, ("item", "channel", "area", "state", "detail"), limit=limit))
        parts.append("")
    counts = report.counts()
    verdict = "parity: ok" if report.ok else "parity: BROKEN"
    parts.append(
        f"{verdict} on {report.today}: {counts['ok']} item(s) at parity, {counts['waiting']} "
        f"waiting for a person or a run, {counts['broken']} broken (a confirmation is overdue "
        f"after {report.overdue_days} days; `gongkai confirm` records one)"
    )
    return "\n".join(parts)
