"""The archive's record layout: folders decided by item id and edition, a resend after a
crash into the same folder with no checkpoint, and records that older versions wrote in
the dated layout still withdrawn and looked up where they are."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gongkai import Publisher
from gongkai.channel import (
    ChannelContext,
    DeliveryProgress,
    PreparedItem,
    Receipt,
    bind_progress,
    unbind_progress,
)
from gongkai.channels.archive import ArchiveChannel
from gongkai.config import settings_from_dict
from gongkai.item import Attachment
from gongkai.ledger import AttemptRecord

ARCHIVE = {"archive": {"every_item": True, "retry": {"attempts": 1}}}


def shard(item_id: str) -> str:
    return hashlib.sha256(item_id.encode()).hexdigest()[:2]


@pytest.fixture
def channel(tmp_path):
    context = ChannelContext(
        name="archive",
        state_dir=tmp_path / "state",
        clock=lambda: datetime(2026, 11, 25, 23, 30, tzinfo=UTC),
    )
    token = bind_progress(DeliveryProgress())
    yield ArchiveChannel(ArchiveChannel.Config(), context)
    unbind_progress(token)


def prepared(edition=1, **changes) -> PreparedItem:
    data = {
        "id": "jt-2026-land-001",
        "catalog": "housing.policy",
        "title": "金堂县公共租赁住房申请指南",
        "body": "申请条件：在本县有稳定工作。申请材料：身份证明。办理流程：个人申请后审核。",
        "publisher": "金堂县房产管理局",
        "formed_on": date(2026, 11, 20),
        "index_number": "11510121009087532X/2026-00001",
        "edition": edition,
        "content_hash": f"{edition}" * 64,
    }
    data.update(changes)
    return PreparedItem(**data)


def attempt(item: PreparedItem) -> AttemptRecord:
    return AttemptRecord(
        item_id=item.id,
        channel="archive",
        edition=item.edition,
        action="deliver",
        started_at=datetime(2026, 11, 25, 23, 30, tzinfo=UTC),
        finished_at=None,
        outcome="unknown",
        http_status=None,
        error=None,
        duration_ms=None,
    )


# --- the layout ----------------------------------------------------------------------------


def test_records_go_to_a_shard_of_the_item_id_and_editions_sit_together(channel, tmp_path):
    first, second = (
        prepared(edition=1),
        prepared(edition=2, title="金堂县公共租赁住房申请指南（修订）"),
    )
    receipts = [channel.deliver(item, channel.render(item), None) for item in (first, second)]
    folder = tmp_path / "state" / "archive" / shard(first.id) / first.id
    assert [Path(r.artifact) for r in receipts] == [
        folder / "edition-1" / "item.json",
        folder / "edition-2" / "item.json",
    ]
    assert sorted(p.name for p in (folder / "edition-1").iterdir()) == ["item.json", "meta.json"]
    meta = json.loads((folder / "edition-2" / "meta.json").read_text("utf-8"))
    # The date stays in the record: Beijing time, already the next day.
    assert meta["archived_at"] == "2026-11-26T07:30:00+08:00"
    body = (folder / "edition-2" / "item.json").read_bytes()
    assert meta["rendition_sha256"] == hashlib.sha256(body).hexdigest()
    assert (meta["edition"], meta["content_hash"]) == (2, second.content_hash)


def test_items_spread_over_shards_and_no_temporary_files_stay(channel, tmp_path):
    for n in range(40):
        item = prepared(id=f"jt-2026-spread-{n:03d}")
        channel.deliver(item, channel.render(item), None)
    root = tmp_path / "state" / "archive"
    shards = [p.name for p in root.iterdir()]
    assert len(shards) > 20 and all(len(s) == 2 and int(s, 16) < 256 for s in shards)
    assert not [p for p in root.rglob("*") if p.name.startswith(".")]


def test_an_attachment_is_checked_and_kept_with_its_edition(channel, tmp_path):
    data = "姓名,补偿金额\n张三,1000\n".encode()
    source = tmp_path / "名单.csv"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    item = prepared(attachments=[Attachment(title="名单", path=source, sha256=digest)])
    receipt = channel.deliver(item, channel.render(item), None)
    kept = Path(receipt.artifact).parent / "attachments" / "名单.csv"
    assert kept.read_bytes() == data
    assert kept.stat().st_mode & 0o777 == source.stat().st_mode & 0o777  # 0o666 less umask


# --- resend and look-up, with no checkpoint ----------------------------------------------


def test_reconcile_finds_only_this_edition(channel):
    item = prepared()
    assert channel.reconcile(item, attempt(item)) is None  # never sent
    receipt = channel.deliver(item, channel.render(item), None)
    assert channel.reconcile(item, attempt(item)) == receipt
    # Same folder, other content: a ledger started afresh numbered another item 1.
    other = prepared(content_hash="f" * 64)
    assert channel.reconcile(other, attempt(other)) is None


def test_reconcile_of_a_cut_short_record_says_not_sent(channel):
    item = prepared()
    record = channel.record_folder(item)
    record.mkdir(parents=True)
    (record / "meta.json").write_text("{}", encoding="utf-8")  # item.json never came
    assert channel.reconcile(item, attempt(item)) is None
    (record / "item.json").write_text("{half", encoding="utf-8")  # not this channel's
    assert channel.reconcile(item, attempt(item)) is None


CRASHING_RUN = """
import os, sys
from gongkai import Item, Publisher
from gongkai.config import settings_from_dict
from gongkai.channels import archive
from datetime import date

write = archive.write_atomic

def dies_before_item_json(path, data):
    if os.path.basename(path) == "item.json":
        os._exit(9)  # the process dies between meta.json and item.json
    write(path, data)

archive.write_atomic = dies_before_item_json
settings = settings_from_dict({
    "gongkai": {"state_dir": sys.argv[1], "org_code": "11510121009087532X"},
    "channels": {"archive": {"every_item": True}},
})
Publisher(settings, load_entry_points=False).publish(Item(
    id="jt-crash-001", catalog="housing.policy", title="公共租赁住房申请指南",
    body="申请条件、申请材料、办理流程。", publisher="金堂县房产管理局",
    formed_on=date(2026, 11, 20),
))
"""


def test_a_resend_after_a_crash_writes_into_the_same_folder_without_a_checkpoint(tmp_path):
    state = tmp_path / "state"
    crashed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASHING_RUN), str(state)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == 9, crashed.stderr
    folder = state / "archive" / shard("jt-crash-001") / "jt-crash-001" / "edition-1"
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json"]  # cut short

    settings = settings_from_dict(
        {"gongkai": {"state_dir": str(state)}, "channels": ARCHIVE}, base_dir=tmp_path
    )
    with Publisher(settings, load_entry_points=False) as publisher:
        [row] = publisher.status()
        # The interrupted send is unknown, and the archive saved nothing to resume from.
        assert (row.state, row.checkpoint) == ("unknown", {})
        result = publisher.publish()
        [row] = publisher.status()
    assert result.outcome("jt-crash-001", "archive").status == "delivered"
    assert row.state == "delivered"
    assert Path(row.receipt["artifact"]) == folder / "item.json"
    assert sorted(p.name for p in folder.iterdir()) == ["item.json", "meta.json"]
    # One record of the item in the whole archive, with no temporary files left.
    assert [p.parent for p in (state / "archive").rglob("item.json")] == [folder]
    assert not [p for p in (state / "archive").rglob("*") if p.name.startswith(".")]


# --- withdrawal ----------------------------------------------------------------------------


def test_withdraw_without_a_receipt_notes_the_record_or_finds_nothing(channel):
    item = prepared()
    empty = Receipt()
    # The delivery's outcome was unknown and nothing reached the archive: down is down.
    assert channel.withdraw(item, empty, "信息有误").status == "withdrawn"
    assert not channel.record_folder(item).exists()
    channel.deliver(item, channel.render(item), None)
    assert channel.withdraw(item, empty, "信息有误").status == "withdrawn"
    note = json.loads((channel.record_folder(item) / "withdrawn.json").read_text("utf-8"))
    assert note["reason"] == "信息有误"


def dated_folder(root: Path, item_id: str, edition: int = 1) -> Path:
    """Where older versions put a record: the Beijing day of the delivery."""
    return root / "2026" / "11-26" / item_id / f"edition-{edition}"


def test_records_in_the_dated_layout_are_withdrawn_where_they_are(
    make_publisher, item_factory, monkeypatch, tmp_path
):
    root = tmp_path / "state" / "archive"
    # Delivered by an older version: the receipt names a dated folder.
    monkeypatch.setattr(
        ArchiveChannel, "record_folder", lambda self, item: dated_folder(root, item.id)
    )
    publisher = make_publisher(plugins=[], channels=ARCHIVE)
    delivered = publisher.publish(item_factory())
    assert delivered.outcome("jt-test-001", "archive").status == "delivered"
    monkeypatch.undo()

    old = dated_folder(root, "jt-test-001")
    [row] = publisher.status()
    assert Path(row.receipt["artifact"]) == old / "item.json"
    result = publisher.withdraw("jt-test-001", "名单有误")
    assert result.outcome("jt-test-001", "archive").status == "withdrawn"
    note = json.loads((old / "withdrawn.json").read_text("utf-8"))
    assert note["reason"] == "名单有误"
    assert [p.parent for p in root.rglob("*.json")] == [old] * 3  # nothing new elsewhere


def test_a_delivery_begun_in_the_dated_layout_is_finished_and_found_there(channel, tmp_path):
    item = prepared()
    old = dated_folder(tmp_path / "state" / "archive", item.id)
    # An older version saved the folder it chose with checkpoint(), then was cut short.
    token = bind_progress(DeliveryProgress(saved={"dir": str(old)}))
    try:
        assert channel.reconcile(item, attempt(item)) is None
        receipt = channel.deliver(item, channel.render(item), None)
        assert channel.reconcile(item, attempt(item)) == receipt
        assert channel.withdraw(item, Receipt(), "信息有误").status == "withdrawn"
    finally:
        unbind_progress(token)
    assert Path(receipt.artifact) == old / "item.json"
    assert sorted(p.name for p in old.iterdir()) == ["item.json", "meta.json", "withdrawn.json"]
    assert not channel.record_folder(item).exists()
