"""Preparing benchmark (issue 8): masking must not become the bottleneck of a publish.

In one process it measures:

1. **baseline**: the per-item cost of a no-op rerun (``Publisher.publish_paths`` over
   N small items already published: every file skipped unread), the cost every item
   pays every day;
2. the per-item cost of the no-op rerun when files are *read* (``reread=True``), so the
   prepare cost can be seen against a run that does parse each file;
3. **prepare**: ``Intake.prepare`` (prepare hooks + every validate hook) of one
   2,000-row 低保 name list item: names, ID numbers, mobiles and addresses in a
   Markdown table; then the same item with the list attached as a 2,000-row CSV and as
   a 2,000-row XLSX (masked copies written each time: the copy cache is cleared);
4. the raw ``mask_text`` throughput on the table's text, in characters per second.

It prints items per second, rows per second and the ratio of each prepare to the
no-op rerun baseline (the issue's target: under 10% of the no-op rerun per item).

    python bench/prepare.py            # 2,000 rows, 2,000 baseline items
    python bench/prepare.py --rows 500 --items 1000 --repeat 5

No test asserts these figures; they are for people.
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from scale import id_number, mobile, person  # noqa: E402 - the generators of the scale bench

from gongkai import Item, Publisher  # noqa: E402
from gongkai.config import PrivacySettings, settings_from_dict  # noqa: E402
from gongkai.item import sha256_file  # noqa: E402
from gongkai.plugins import privacy  # noqa: E402
from gongkai.plugins.masking import mask_text  # noqa: E402

VILLAGES = ("竹篙村", "土桥村", "大兴村", "白果村", "金箱村", "建华村")
HEADER = ["序号", "村（社区）", "户主", "身份证号码", "联系电话", "家庭住址", "保障人数"]


def roster(rows: int, seed: int = 8) -> list[list[str]]:
    rng = random.Random(seed)
    return [
        [
            str(n),
            village := rng.choice(VILLAGES),
            person(rng),
            id_number(rng),
            mobile(rng),
            f"竹篙镇{village}{rng.randint(1, 12)}组{rng.randint(1, 80)}号",
            str(rng.randint(1, 5)),
        ]
        for n in range(1, rows + 1)
    ]


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def name_list(rows: list[list[str]], attachments=()) -> Item:
    return Item(
        id="jt-bench-dibao",
        catalog="poverty.dibao-initial",
        title="竹篙镇2026年11月农村最低生活保障初审对象名单公示",
        body="经入户调查、民主评议，现将初审对象名单公示如下：\n\n"
        + markdown_table(rows)
        + "\n\n公示期为7个工作日，监督电话：028-84951100。",
        publisher="金堂县竹篙镇人民政府",
        formed_on=date.today() - timedelta(days=2),
        attachments=attachments,
    )


def write_items(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    formed = date.today() - timedelta(days=2)
    for n in range(count):
        (folder / f"item-{n:05d}.md").write_text(
            f'+++\nid = "jt-bench-{n:05d}"\ncatalog = "housing.policy"\n'
            f'title = "金堂县公共租赁住房申请指南（第{n}号）"\n'
            f'publisher = "金堂县房产管理局"\nformed_on = {formed}\n+++\n'
            "申请条件：在本县有稳定工作。申请材料：身份证明。办理流程：个人申请后审核。\n",
            encoding="utf-8",
        )


def timed(fn, repeat: int) -> float:
    """The median wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--items", type=int, default=2000, help="items of the no-op baseline")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gongkai-prepare-"))
    try:
        run(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path, args: argparse.Namespace) -> None:
    settings = settings_from_dict(
        {
            "gongkai": {"state_dir": str(root / "state"), "org_code": "11510121009087532X"},
            # The baseline measures gongkai, not a channel: the archive writes files.
            "channels": {},
        },
        base_dir=root,
    )
    publisher = Publisher(settings, load_entry_points=False)
    items = root / "items"
    write_items(items, args.items)
    publisher.publish_paths([items])
    noop = timed(lambda: publisher.publish_paths([items]), args.repeat) / args.items
    reread = timed(lambda: publisher.publish_paths([items], reread=True), args.repeat)
    reread /= args.items

    rows = roster(args.rows)
    files = root / "lists"
    files.mkdir()
    csv_path = files / "花名册.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([HEADER, *rows])
    import openpyxl

    book = openpyxl.Workbook()
    for row in [HEADER, *rows]:
        book.active.append(row)
    xlsx_path = files / "花名册.xlsx"
    book.save(xlsx_path)

    def attached(path: Path):
        return ({"title": "花名册", "path": path, "sha256": sha256_file(path)},)

    intake = publisher.intake()
    cases = {
        "table in the body": name_list(rows),
        "+ CSV attachment": name_list(rows, attached(csv_path)),
        "+ XLSX attachment": name_list(rows, attached(xlsx_path)),
    }

    def prepare(item: Item):
        def once():
            privacy._copy.cache_clear()  # write the masked copy every time
            prepared, problems = intake.prepare(item, "bench")
            assert prepared is not None, problems

        return once

    print(f"no-op rerun, files skipped:  {noop * 1e6:9.1f} µs/item  (baseline, {args.items} items)")
    print(f"no-op rerun, files reread:   {reread * 1e6:9.1f} µs/item")
    print(
        f"{'prepare (' + str(args.rows) + ' rows)':<28} {'items/s':>9} {'rows/s':>10} "
        f"{'ms/item':>9} {'× skipped':>10} {'× reread':>9}"
    )
    for label, item in cases.items():
        cost = timed(prepare(item), args.repeat)
        print(
            f"  {label:<26} {1 / cost:9.1f} {args.rows / cost:10.0f} {cost * 1e3:9.1f} "
            f"{cost / noop:10.1f} {cost / reread:9.1f}"
        )
    text = markdown_table(rows)
    policy = PrivacySettings()
    cost = timed(lambda: mask_text(text, policy), args.repeat)
    print(f"mask_text alone: {len(text) / cost / 1e6:.1f} M characters/s ({len(text):,} chars)")
    print(
        "target (issue 8): prepare under 10% of the no-op rerun per item, i.e. "
        f"{noop * 0.1 * 1e6:.1f} µs (skipped) / {reread * 0.1 * 1e6:.1f} µs (reread)"
    )
    publisher.close()


if __name__ == "__main__":
    main()
