"""The example site the portal tests look at: the shipped example items published,
one of them edited (a second edition) and one withdrawn, on a fake clock."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gongkai import Publisher
from gongkai.config import settings_from_dict

from .fakes import FakeClock

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "items"

EDITED = "jt-2026-housing-0302"
WITHDRAWN = "jt-2026-trading-0701"
WITHDRAWAL_REASON = "中标候选人公示内容有误，更正后重新发布"
#: Items with a table in the body.
WITH_TABLE = "jt-2026-dilapidated-0403"
RELEASE, INTERPRETATION = "jt-2026-dilapidated-0401", "jt-2026-dilapidated-0402"

PORTAL = {
    "every_item": True,
    "site_url": "https://www.jintang.gov.cn/zwgk/",
    "host": "金堂县人民政府办公室",
    "site_code": "5101210001",
    "icp": "蜀ICP备05005431号",
    "police_record": "川公网安备 51012102000123号",
}


@dataclass
class ExampleSite:
    root: Path
    items: Path
    state: Path

    @property
    def out(self) -> Path:
        return self.state / "portal"


def settings(base: Path, **portal: object):
    return settings_from_dict(
        {
            "gongkai": {"state_dir": str(base / "state"), "org_code": "11510121009087532X"},
            "org_codes": {"金堂县教育局": "115101210090875405"},
            "channels": {"portal": {**PORTAL, **portal}},
        },
        base_dir=base,
    )


def build_example_site(base: Path) -> ExampleSite:
    items = base / "items"
    shutil.copytree(EXAMPLES, items)
    # 10:00 Beijing time on 28 November: every example is formed, one is scheduled.
    clock = FakeClock(datetime(2026, 11, 28, 2, 0, tzinfo=UTC))
    with Publisher(settings(base), clock=clock, load_entry_points=False) as publisher:
        result = publisher.publish_paths([items])
        assert not result.problems, result.problems
        clock.advance(days=1, hours=3)
        edited = items / "06-housing-policy.md"
        text = edited.read_text("utf-8")
        edited.write_text(text.replace("16平方米", "18平方米"), "utf-8")
        assert not publisher.publish_paths([items]).problems
        clock.advance(days=1)
        publisher.withdraw(WITHDRAWN, WITHDRAWAL_REASON)
    return ExampleSite(root=base, items=items, state=base / "state")
