"""The built-in channels pass the contract suite that channel authors get."""

from __future__ import annotations

import json
from pathlib import Path

from gongkai.channels.archive import ArchiveChannel
from gongkai.channels.webhook import WebhookChannel
from gongkai.testing import ChannelContract


class TestArchive(ChannelContract):
    channel_class = ArchiveChannel
    config = {}
    check_reconcile = True

    def test_record_is_the_rendition_and_rewrite_is_idempotent(self, channel, item):
        rendition = channel.render(item)
        first = channel.deliver(item, rendition, None)
        again = channel.deliver(item, rendition, None)
        written = Path(first.artifact).read_text(encoding="utf-8")
        assert written == rendition.body
        assert json.loads(written)["item"]["title"] == item.title
        assert first.external_id == again.external_id == "contract-001/edition-1"

    def test_withdraw_leaves_a_note(self, channel, item):
        receipt = channel.deliver(item, channel.render(item), None)
        gone = channel.withdraw(item, receipt, "信息有误")
        assert gone.status == "withdrawn"
        note = Path(receipt.artifact).with_name("withdrawn.json").read_text(encoding="utf-8")
        assert json.loads(note)["reason"] == "信息有误"


class TestWebhook(ChannelContract):
    channel_class = WebhookChannel
    config = {"url": "https://portal.example.test/api", "token": "t0ken-for-tests"}
    http = True
