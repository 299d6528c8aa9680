"""Assessment report benchmark (issue 13): a yearly report over 30,000 items and
150,000 deliveries.

Builds a year of 2026 through the real Publisher with a moving clock: N items (default
30,000) of twelve catalogue entries of nine responsible units, formed across the year
and published week by week 0–29 days after they were formed (so some are late), one in
twenty held back past the year (overdue), one in ten an interpretation of an earlier
policy, each to the five instant channels of ``bench/nullchannel.py`` (5 × N
deliveries); one in ten is corrected and one in a hundred withdrawn. Then it measures:

1. report     ``Publisher.report(2026-01-01, 2026-12-31)``: everything the verb shows
2. parts      the work ledger read (``ledger_export``) and parity, which it builds on
3. baseline   a bare SQL count over the same rows: items per unit's catalogue entry
              joined with their deliveries, with no Python per row

and prints each time and the report/baseline ratio. No test asserts these timings.

    python bench/report.py                 # 30,000 items
    python bench/report.py --items 5000
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))  # nullchannel

import nullchannel  # noqa: E402  (needs the path above)

from gongkai import Item, Publisher  # noqa: E402
from gongkai.catalogue import Catalogue  # noqa: E402
from gongkai.config import settings_from_dict  # noqa: E402
from gongkai.item import CST  # noqa: E402

CATALOGUE = Catalogue.load()
#: Entries of the shipped catalogue, spread over nine units; the first three are policies.
ENTRIES = [
    "housing.policy", "dilapidated.policy", "education.enrolment-policy",
    "housing.project", "municipal.sewage-effluent", "municipal.tap-water-quality",
    "poverty.disaster-relief", "trading.tender-notice", "land.approval",
    "relocation.expropriation-decision", "general.public-concern-response",
    "housing.allocation-result",
]  # fmt: skip
POLICIES = ENTRIES[:3]
YEAR_END = datetime(2026, 12, 31, 18, 0, tzinfo=CST)


def plan(count: int) -> dict[date, list[Item]]:
    """Items by the Monday of the week they are published in."""
    weeks: dict[date, list[Item]] = defaultdict(list)
    for n in range(count):
        formed = date(2026, 1, 1) + timedelta(days=n * 365 // count)
        if n % 10 == 9:
            catalog, kind = "general.policy-interpretation", "interpretation"
            related = [f"b-{n - 9:06d}"]  # n - 9 is a policy (n % 10 == 0)
        else:
            catalog, kind, related = ENTRIES[n % len(ENTRIES)], "release", []
            if n % 10 == 0:
                catalog = POLICIES[(n // 10) % len(POLICIES)]
        held = n % 20 == 7
        published = formed + timedelta(days=n % 30)
        item = Item(
            id=f"b-{n:06d}", catalog=catalog, kind=kind, related=related,
            title=f"金堂县政务公开事项第{n}号", body=_body(n, catalog), publisher="金堂县人民政府",
            formed_on=formed, area="三溪镇花园村",
            publish_at=datetime(2027, 6, 1, tzinfo=UTC) if held else None,
        )  # fmt: skip
        week = published - timedelta(days=published.weekday())
        weeks[week].append(item)
    return dict(sorted(weeks.items()))


def _body(n: int, catalog: str) -> str:
    """A body naming every element the entry requires."""
    entry = CATALOGUE.entries[catalog]
    return f"编号{n}。" + "、".join(e.split("|")[0] for e in entry.elements) + "。"


def fill(state: Path, count: int) -> tuple[Publisher, list[datetime]]:
    now = [datetime(2026, 1, 5, 2, tzinfo=UTC)]
    settings = settings_from_dict(
        {
            "gongkai": {"state_dir": str(state), "org_code": "11510121009087532X"},
            "channels": {name: {"every_item": True} for name in nullchannel.NAMES},
        }
    )
    publisher = Publisher(
        settings, clock=lambda: now[0], plugins=[nullchannel], load_entry_points=False
    )
    problems = 0
    for week, items in plan(count).items():
        # Published on the week's Sunday: never before an item of the week was formed.
        sunday = week + timedelta(days=6)
        now[0] = datetime(sunday.year, sunday.month, sunday.day, 10, tzinfo=CST).astimezone(UTC)
        problems += len(publisher.publish(items).problems)
    corrections = [
        s.payload for s in publisher.ledger.item_summaries() if int(s.item_id[2:]) % 10 == 3
    ]
    now[0] = datetime(2026, 12, 31, 2, tzinfo=UTC)
    fixed = [
        Item.model_validate({**_fields(p), "title": p["title"] + "（更正）"}) for p in corrections
    ]
    problems += len(publisher.publish(fixed).problems)
    for n in range(1, count, 100):
        publisher.withdraw(f"b-{n:06d}", "内容有误，撤回")
    if problems:
        print(f"warning: {problems} item(s) refused while building the ledger")
    return publisher, now


def _fields(payload: dict) -> dict:
    keep = set(Item.model_fields)
    return {k: v for k, v in payload.items() if k in keep and v is not None}


def baseline(path: Path) -> tuple[float, int]:
    """A bare SQL count: each catalogue entry's newest editions and their deliveries."""
    started = time.perf_counter()
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT i.catalog, count(*), sum(d.state = 'delivered') FROM items i "
            "JOIN item_state s ON s.item_id = i.item_id AND s.latest_edition = i.edition "
            "JOIN deliveries d ON d.item_id = i.item_id GROUP BY i.catalog"
        ).fetchall()
    return time.perf_counter() - started, sum(r[1] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=30_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        publisher, now = fill(Path(tmp) / "state", args.items)
        print(f"setup: {args.items} items published over 2026 in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        now[0] = YEAR_END.astimezone(UTC)

        started = time.perf_counter()
        report = publisher.report(date(2026, 1, 1), date(2026, 12, 31))
        report_s = time.perf_counter() - started

        started = time.perf_counter()
        export = publisher.ledger_export()
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        publisher.parity()
        parity_s = time.perf_counter() - started

        base_s, joined = baseline(publisher.settings.ledger_path)
        publisher.close()

    counts = export.counts()
    total = report.total
    print(
        f"ledger: {counts['items']} items, {counts['deliveries']} deliveries, "
        f"{counts['corrected']} corrected, {counts['withdrawn']} withdrawn"
    )
    print(
        f"report: {len(report.units)} units; {total.judged} items judged: {total.on_time} on "
        f"time, {total.late} late, {total.overdue} overdue; {total.policies} policies, "
        f"{total.interpretations_missing} without a 解读; {total.cycle_gaps} cycle gaps"
    )
    print(f"yearly report (Publisher.report)   {report_s:6.2f} s")
    print(f"  of which: work ledger read        {export_s:6.2f} s")
    print(f"            parity                  {parity_s:6.2f} s")
    print(f"bare SQL count, {joined} rows    {base_s:6.2f} s")
    print(f"report / baseline                  {report_s / base_s:6.1f}x")


if __name__ == "__main__":
    main()
