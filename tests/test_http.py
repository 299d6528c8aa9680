"""HTTP classification and the webhook channel's client, with `responses` mocks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import requests
import responses

from gongkai.channel import ChannelContext, PreparedItem
from gongkai.channels.webhook import WebhookChannel
from gongkai.errors import AuthError, OutcomeUnknown, PermanentError, TransientError
from gongkai.http import classify_exception, retry_after_seconds

URL = "https://portal.example.test/api/items"


@pytest.fixture
def channel(monkeypatch):
    config = WebhookChannel.Config(url=URL, token="tok-abcdef123")
    context = ChannelContext(name="webhook", state_dir=Path("."), clock=lambda: None)
    return WebhookChannel(config, context)


@pytest.fixture
def item():
    return PreparedItem(
        id="jt-1",
        catalog="housing.policy",
        title="申请指南",
        body="正文",
        publisher="金堂县房产管理局",
        formed_on=date(2026, 11, 20),
        edition=2,
        content_hash="ab" * 32,
    )


@responses.activate
def test_webhook_posts_with_idempotency_key_and_token(channel, item):
    responses.post(URL, json={"id": "p-9", "url": "https://portal.example.test/p-9"})
    receipt = channel.deliver(item, channel.render(item), None)
    assert (receipt.external_id, receipt.url) == ("p-9", "https://portal.example.test/p-9")
    sent = responses.calls[0].request
    assert sent.headers["Idempotency-Key"] == "jt-1:2:" + "ab" * 8
    assert sent.headers["Authorization"] == "Bearer tok-abcdef123"
    assert b'"edition":2' in sent.body


@pytest.mark.parametrize(
    ("status", "error", "headers"),
    [
        (500, TransientError, {}),
        (503, TransientError, {"Retry-After": "12"}),
        (429, TransientError, {"Retry-After": "30"}),
        (401, AuthError, {}),
        (400, PermanentError, {}),
        (422, PermanentError, {}),
    ],
)
@responses.activate
def test_status_codes_are_classified(channel, item, status, error, headers):
    responses.post(URL, status=status, headers=headers)
    with pytest.raises(error) as info:
        channel.deliver(item, channel.render(item), None)
    assert info.value.http_status == status
    if "Retry-After" in headers:
        assert info.value.retry_after == float(headers["Retry-After"])


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (requests.ConnectTimeout(), TransientError),
        (requests.ReadTimeout(), OutcomeUnknown),
        (requests.ConnectionError("Connection refused"), TransientError),
        (requests.ConnectionError("RemoteDisconnected"), OutcomeUnknown),
        (requests.exceptions.ChunkedEncodingError(), OutcomeUnknown),
        (requests.exceptions.SSLError(), TransientError),
        (requests.exceptions.MissingSchema(), PermanentError),
        (requests.exceptions.TooManyRedirects(), TransientError),
    ],
)
@responses.activate
def test_every_requests_exception_is_classified(channel, item, exc, error):
    responses.post(URL, body=exc)
    with pytest.raises(error):
        channel.deliver(item, channel.render(item), None)


def test_classify_never_leaks_the_url_query():
    err = classify_exception(requests.ReadTimeout("https://x/?access_token=SECRET"), "POST")
    assert "SECRET" not in str(err)


def test_retry_after_http_date():
    from datetime import UTC, datetime

    now = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    assert retry_after_seconds("Thu, 26 Nov 2026 02:01:00 GMT", now) == 60
    assert retry_after_seconds("soon", now) is None


def test_render_is_pure(channel, item):
    assert channel.render(item) == channel.render(item)


def test_session_keeps_ca_bundle_and_proxies_from_environment(monkeypatch, tmp_path):
    from gongkai.http import new_session

    bundle = tmp_path / "gov-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.county.test:3128")
    monkeypatch.setenv("NO_PROXY", "intranet.test")
    context = ChannelContext(name="x", state_dir=Path("."), clock=lambda: None)
    session = new_session(context)
    assert session.verify == str(bundle)
    captured = {}

    def fake_send(request, **kwargs):
        captured[request.url] = kwargs["proxies"]
        raise requests.ConnectionError("Connection refused")

    monkeypatch.setattr(session, "send", fake_send)
    for url in ("https://api.weixin.test/x", "https://portal.intranet.test/y"):
        with pytest.raises(requests.ConnectionError):
            session.post(url, data=b"{}")
    assert captured["https://api.weixin.test/x"].get("https") == "http://proxy.county.test:3128"
    assert "https" not in captured["https://portal.intranet.test/y"]
