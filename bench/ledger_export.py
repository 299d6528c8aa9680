"""Work-ledger export benchmark (issue 13 §4): 30,000 items to an .xlsx workbook.

Publishes N items (default 30,000) to the five instant channels of
``bench/nullchannel.py`` through the real Publisher, corrects one in ten (a second
edition) and withdraws one in a hundred, then measures:

1. collect    ``Publisher.ledger_export()``: the ledger read into typed rows
2. write      ``gongkai.ledger_xlsx.write_xlsx``: the six sheets, styled, guarded
              against formula injection, saved atomically
3. baseline   the same rows (already built) appended to a bare openpyxl write-only
              workbook with no styles, widths, filters or checks, saved to a file

and prints each time, the write/baseline ratio and the file size. No test asserts
these timings; they are for people.

    python bench/ledger_export.py                 # 30,000 items
    python bench/ledger_export.py --items 5000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from openpyxl import Workbook

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))  # nullchannel

import nullchannel  # noqa: E402  (needs the path above)

from gongkai import Item, Publisher  # noqa: E402
from gongkai.config import settings_from_dict  # noqa: E402
from gongkai.ledger_xlsx import _tables, write_xlsx  # noqa: E402

START = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def make_items(count: int, edition: int = 1) -> list[Item]:
    return [
        Item(
            id=f"bench-{n:06d}",
            catalog="housing.policy",
            title=f"金堂县公共租赁住房申请指南（第{n}号）" + ("（更正）" if edition > 1 else ""),
            body=f"申请条件：在本县有稳定工作。申请材料：身份证明。办理流程：个人申请，审核后公示。编号{n}。",
            publisher="金堂县房产管理局",
            formed_on=date(2026, 1, 1) + timedelta(days=n % 300),
        )
        for n in range(count)
    ]


def fill(state: Path, count: int) -> Publisher:
    now = [START]
    settings = settings_from_dict(
        {
            "gongkai": {"state_dir": str(state), "org_code": "11510121009087532X"},
            "plugins": {"load": []},
            "channels": {name: {"every_item": True} for name in nullchannel.NAMES},
        }
    )
    publisher = Publisher(
        settings, clock=lambda: now[0], plugins=[nullchannel], load_entry_points=False
    )
    items = make_items(count)
    for chunk in range(0, count, 5000):
        result = publisher.publish(items[chunk : chunk + 5000])
        assert not result.problems, result.problems[:3]
    now[0] += timedelta(days=30)
    publisher.publish(make_items(count, edition=2)[::10])
    for n in range(0, count, 100):
        publisher.withdraw(f"bench-{n:06d}", "内容有误，撤回")
    return publisher


def baseline(rows_by_sheet: list[tuple[str, list[tuple[str, float]], list]], path: Path) -> float:
    started = time.perf_counter()
    book = Workbook(write_only=True)
    for title, columns, rows in rows_by_sheet:
        sheet = book.create_sheet(title)
        sheet.append([header for header, _ in columns])
        for row in rows:
            sheet.append(row)
    book.save(path)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=30_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        publisher = fill(folder / "state", args.items)
        print(f"setup: {args.items} items published in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        export = publisher.ledger_export()
        collect_s = time.perf_counter() - started

        started = time.perf_counter()
        write_xlsx(export, folder / "ledger.xlsx")
        write_s = time.perf_counter() - started
        size = (folder / "ledger.xlsx").stat().st_size

        # The baseline gets the very rows the writer writes, made beforehand, with
        # datetimes made naive as Excel needs (bare openpyxl refuses aware ones).
        materialised = [
            (title, columns, [_naive(row) for row in rows])
            for title, columns, rows in _tables(export)
        ]
        base_s = baseline(materialised, folder / "baseline.xlsx")
        publisher.close()

    counts = export.counts()
    rows = sum(len(rows) for _, _, rows in materialised)
    print(
        f"ledger: {counts['items']} items, {counts['deliveries']} deliveries, "
        f"{counts['corrected']} corrected, {counts['withdrawn']} withdrawn; {rows} sheet rows"
    )
    print(f"collect (ledger -> typed rows)  {collect_s:6.2f} s")
    print(f"write_xlsx (6 sheets)           {write_s:6.2f} s   {size / 1e6:.1f} MB")
    print(f"bare openpyxl, same rows        {base_s:6.2f} s")
    print(f"write / baseline                {write_s / base_s:6.2f}x")
    print(f"total export                    {collect_s + write_s:6.2f} s")


def _naive(row: tuple) -> tuple:
    return tuple(v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row)


if __name__ == "__main__":
    main()
