"""Portal build benchmark (issue 10): a large site from scratch, then one more item.

In one process it measures:

1. **from scratch**: N items (default 10,000) spread over the catalogue's domains,
   五公开 categories, units and townships, delivered to the ``portal`` channel inside
   ``batch()`` (item pages as they come, indexes, feeds, sitemap, listing and search
   once at the end), the way a first publish of a whole archive runs;
2. **one more item**: a normal delivery into that site, which writes its own pages and
   rebuilds only the indexes and feeds it touches (the issue's target: under 2 s);
3. the same edition again, which must change no file.

It prints both times, the files each wrote, and the ratio of the incremental build to
the from-scratch build per item.

    python bench/portal.py                  # 10,000 items
    python bench/portal.py --items 2000

No test asserts these figures; they are for people.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from gongkai.catalogue import Catalogue
from gongkai.channel import ChannelContext, PreparedItem
from gongkai.channels.portal import PortalChannel

TOWNS = ["赵镇街道", "五凤镇", "三溪镇", "竹篙镇", "淮口街道", "栖贤街道", "官仓街道", "白果街道"]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=7)
        return self.now


def items(count: int) -> list[PreparedItem]:
    entries = list(Catalogue.load().entries.values())
    made = []
    for n in range(count):
        entry = entries[n % len(entries)]
        made.append(
            PreparedItem(
                id=f"bench-{n:06}",
                catalog=entry.key,
                kind="release",
                title=f"{entry.name}（第{n}号）",
                body=f"{entry.name}的内容。\n\n| 序号 | 事项 |\n|---|---|\n| 1 | 第{n}号 |\n",
                publisher="金堂县人民政府办公室",
                document_number=f"金府办〔2026〕{n}号",
                index_number=f"11510121009087532X/2026-{n + 1:05}",
                formed_on=date(2026, 1, 1),
                area=TOWNS[n % len(TOWNS)] + "某村",
                keywords=(entry.name,),
                edition=1,
                content_hash=hashlib.sha256(str(n).encode()).hexdigest(),
            )
        )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        context = ChannelContext(name="portal", state_dir=Path(tmp), clock=Clock())
        channel = PortalChannel(PortalChannel.Config(), context)
        made = items(args.items + 1)
        *first, last = made

        started = time.perf_counter()
        with channel.batch():
            for item in first:
                channel.deliver(item, channel.render(item), None)
        scratch = time.perf_counter() - started
        files = sum(1 for p in channel.root.rglob("*") if p.is_file())
        print(f"from scratch: {len(first):,} items in {scratch:.2f} s ({files:,} files)")

        channel.site.reset_report()
        started = time.perf_counter()
        channel.deliver(last, channel.render(last), None)
        incremental = time.perf_counter() - started
        written = len(channel.site.written)
        print(f"one more item: {incremental:.3f} s ({written} files written)")

        channel.site.reset_report()
        started = time.perf_counter()
        channel.deliver(last, channel.render(last), None)
        again = time.perf_counter() - started
        print(f"the same edition again: {again:.3f} s ({len(channel.site.written)} files written)")
        per_item = scratch / len(first)
        print(
            f"ratio: the incremental build costs {incremental / per_item:.0f}x one item of the "
            f"from-scratch build, {incremental / scratch:.1%} of the whole build "
            f"(target: under 2 s; {'met' if incremental < 2 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
