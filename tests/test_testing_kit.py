"""The kit channel authors get with gongkai: the pytest plugin's fixtures (loaded through
the ``pytest11`` entry point, no conftest), the loopback server's recording and
faults, and the sample items."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import requests
import responses
from pydantic import BaseModel, ConfigDict

from gongkai.channel import Channel, ChannelContext, Receipt, Rendition
from gongkai.channels.webhook import WebhookChannel
from gongkai.errors import OutcomeUnknown, PermanentError, TransientError
from gongkai.http import classify_exception, new_session, raise_for_status
from gongkai.item import Item, content_hash
from gongkai.testing import ChannelContract
from gongkai.testing_samples import FakeClock, sample_item


def test_the_plugin_is_loaded_through_its_entry_point(pytestconfig):
    plugin = pytestconfig.pluginmanager.get_plugin("gongkai")
    assert plugin is not None and plugin.__name__ == "gongkai.pytest_plugin"


def test_the_clock_moves_only_when_told(gongkai_clock):
    start = gongkai_clock()
    assert start == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    assert gongkai_clock() == start
    gongkai_clock.advance(hours=25)
    assert gongkai_clock() == datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def test_one_sample_item_of_each_kind(gongkai_sample_items):
    assert sorted(gongkai_sample_items) == ["interpretation", "release", "response"]
    for kind, item in gongkai_sample_items.items():
        assert item.kind == kind
        public = Item.model_validate(item.model_dump(exclude={"edition", "content_hash"}))
        assert item.content_hash == content_hash(public)
    assert gongkai_sample_items["interpretation"].related == (gongkai_sample_items["release"].id,)
    assert len({i.content_hash for i in gongkai_sample_items.values()}) == 3


@pytest.fixture
def webhook(tmp_path, gongkai_http_server, gongkai_clock):
    options = WebhookChannel.Config(url=gongkai_http_server.url + "/hooks")
    context = ChannelContext(
        name="webhook", state_dir=tmp_path, clock=gongkai_clock, read_timeout=5
    )
    return WebhookChannel(options, context)


def test_the_server_records_requests_and_injects_faults(
    webhook, gongkai_http_server, gongkai_sample_items
):
    item = gongkai_sample_items["release"]
    rendition = webhook.render(item)
    gongkai_http_server.fail(503, headers={"Retry-After": "30"})
    with pytest.raises(TransientError) as busy:
        webhook.deliver(item, rendition, None)
    assert busy.value.retry_after == 30
    gongkai_http_server.drop()
    with pytest.raises(OutcomeUnknown):
        webhook.deliver(item, rendition, None)
    gongkai_http_server.answer(422, {"error": "bad"})
    with pytest.raises(PermanentError):
        webhook.deliver(item, rendition, None)
    gongkai_http_server.answer(201, {"id": "r-9", "url": "https://portal.example.test/r-9"})
    receipt = webhook.deliver(item, rendition, None)
    assert (receipt.external_id, receipt.url) == ("r-9", "https://portal.example.test/r-9")
    # The default answer once the queue is empty.
    assert webhook.deliver(item, rendition, None).external_id == "remote-1"

    sent = gongkai_http_server.requests
    assert [(r.method, r.path) for r in sent] == [("POST", "/hooks")] * 5
    assert {r.header("idempotency-key") for r in sent} == {f"{item.id}:1:{item.content_hash[:16]}"}
    assert sent[-1].json()["item"]["title"] == item.title


class LookupChannel(Channel):
    """PUTs an edition to <url>/<id>; reconcile GETs it and compares the content hash."""

    name = "lookup_kit"
    guarantee = "lookup"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        url: str

    def __init__(self, config, context) -> None:
        super().__init__(config, context)
        self.session = new_session(context)

    def render(self, item):
        return Rendition(body=json.dumps({"id": item.id, "hash": item.content_hash}))

    def deliver(self, item, rendition, previous):
        try:
            response = self.session.put(f"{self.config.url}/{item.id}", data=rendition.body)
        except requests.RequestException as exc:
            raise classify_exception(exc, "PUT") from None
        raise_for_status(response, "PUT")
        return Receipt(external_id=item.id)

    def reconcile(self, item, attempt):
        try:
            response = self.session.get(f"{self.config.url}/{item.id}")
        except requests.RequestException as exc:
            raise classify_exception(exc, "GET") from None
        if response.status_code == 404:
            return None
        raise_for_status(response, "GET")
        if response.json().get("hash") != item.content_hash:
            return None
        return Receipt(external_id=item.id)


class TestHttpLookupContract(ChannelContract):
    """The reconcile check of an HTTP channel, with the remote it looks up."""

    channel_class = LookupChannel
    config = {"url": "https://lookup.example.test/items"}
    http = True
    discoverable = False

    def remote_holds(self, mock, held):
        body = json.dumps({"id": held.id, "hash": held.content_hash})
        mock.add(responses.GET, f"{self.config['url']}/{held.id}", body=body)
        mock.add(responses.GET, re.compile(r".*"), status=404)
        return True


def test_an_http_lookup_that_trusts_the_id_alone_fails_the_suite(tmp_path):
    class Careless(LookupChannel):
        def reconcile(self, item, attempt):
            response = self.session.get(f"{self.config.url}/{item.id}")
            return None if response.status_code == 404 else Receipt(external_id=item.id)

    suite = TestHttpLookupContract()
    suite.channel_class = Careless
    context = ChannelContext(name="lookup_kit", state_dir=tmp_path, clock=FakeClock())
    channel = Careless(Careless.Config(url="https://lookup.example.test/items"), context)
    with pytest.raises(AssertionError, match="compare the edition or content hash"):
        suite.test_reconcile_finds_only_what_was_sent(channel, sample_item())
