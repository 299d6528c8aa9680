"""The URLs in gongkai's receipts from the sandboxes are live pages: an item published to
the platform and WeChat simulators can be opened at the URL each delivery reports (an
HTML page titled with the item), and is gone there once gongkai withdraws it (the
platform answers 410 with the reason, WeChat 404)."""

from __future__ import annotations

import re

import requests
from conftest import make_item

from gongkai import Publisher
from gongkai.config import settings_from_dict
from gongkai.sandbox import start
from support.fakes import Sleeper
from support.sandbox_channels import sandbox_channels

ONLINE = ("platform", "wechat")


def page_title(url: str) -> str:
    page = requests.get(url, timeout=5)
    assert page.status_code == 200, (url, page.status_code)
    assert page.headers["Content-Type"].startswith("text/html")
    return re.search(r"<title>(.*?)</title>", page.text).group(1)


def test_receipt_urls_serve_the_item_until_it_is_withdrawn(tmp_path, monkeypatch):
    item = make_item(id="jt-receipt-001", title="金堂县公共租赁住房申请指南（第一批）")
    with start(tmp_path) as sandbox:
        settings = settings_from_dict(
            {
                "gongkai": {"state_dir": str(tmp_path / "state"), "org_code": "11510121009087532X"},
                "channels": sandbox_channels(sandbox, monkeypatch),
            },
            source="test-config.toml",
            base_dir=tmp_path,
        )
        with Publisher(settings, sleep=Sleeper(), load_entry_points=False) as publisher:
            publisher.publish(item)
            # WeChat publishes as a job: a second run polls it to its article URL.
            publisher.publish()
            receipts = {row.channel: row.receipt for row in publisher.status(item.id)}
            urls = {channel: (receipts.get(channel) or {}).get("url") for channel in ONLINE}
            assert all(urls.values()), receipts
            for channel in ONLINE:
                assert urls[channel].startswith(sandbox.url), urls
                assert page_title(urls[channel]) == item.title
                # HEAD answers as GET does, without the page.
                head = requests.head(urls[channel], timeout=5)
                assert head.status_code == 200 and head.content == b""

            publisher.withdraw(item.id, "信息有误，重新发布")
            platform_page = requests.get(urls["platform"], timeout=5)
            assert platform_page.status_code == 410 and "信息有误" in platform_page.text
            assert requests.get(urls["wechat"], timeout=5).status_code == 404
