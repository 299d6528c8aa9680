"""The webhook channel as a signed push: Standard Webhooks signatures, several endpoints
(``type = "webhook"``), secret header values. HTTP units with `responses`, the CLI over
real loopback HTTP."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import responses
from conftest import make_item
from pydantic import SecretStr, ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from clihelp import EXAMPLES, as_json, run, write_config
from gongkai.channel import ChannelContext, PreparedItem, Receipt
from gongkai.channels.webhook import (
    WebhookChannel,
    idempotency_key,
    message_id,
    sign,
    signing_key,
)
from gongkai.config import build_channel_settings, settings_from_dict
from gongkai.errors import AuthError, ConfigError, OutcomeUnknown, PermanentError, TransientError
from gongkai.testing import ChannelContract
from support.server import Recorder, start_server

URL = "https://county.example.test/hooks/gongkai"
SECRET = "whsec_" + base64.b64encode(b"gongkai-test-signing-key-32bytes").decode()
API_KEY = "oa-key-never-shown-83f1c2"
HOUSING = "jt-2026-housing-0302"  # examples/items/06-housing-policy.md


def now() -> datetime:
    # Standard Webhooks verifiers check the timestamp against their own clock.
    return datetime.now(UTC)


def make_channel(clock=now, **config) -> WebhookChannel:
    options = WebhookChannel.Config.model_validate({"url": URL, **config})
    context = ChannelContext(name="webhook", state_dir=Path("."), clock=clock)
    return WebhookChannel(options, context)


@pytest.fixture
def item() -> PreparedItem:
    fields = make_item(id="jt-1").model_dump()
    return PreparedItem(**fields, edition=2, content_hash="ab" * 32)


# --- signing ---------------------------------------------------------------------------


def test_signature_matches_the_spec_vector():
    key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@responses.activate
def test_a_standard_webhooks_library_verifies_what_is_sent(item):
    responses.post(URL, json={"id": "r-1"})
    channel = make_channel(secret=SECRET)
    channel.deliver(item, channel.render(item), None)
    sent = responses.calls[0].request
    headers = dict(sent.headers)
    payload = Webhook(SECRET).verify(sent.body, headers)
    assert payload["id"] == "jt-1" and payload["edition"] == 2
    assert headers["webhook-id"] == message_id(item)
    assert abs(int(headers["webhook-timestamp"]) - now().timestamp()) < 60
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(sent.body.replace(b'"edition":2', b'"edition":3'), headers)
    other = "whsec_" + base64.b64encode(b"another-key-of-thirty-two-bytes!").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(sent.body, headers)


@responses.activate
def test_the_withdrawal_is_signed_under_its_own_message_id(item):
    responses.delete(f"{URL}/jt-1", json={})
    channel = make_channel(secret=SECRET)
    channel.withdraw(item, Receipt(external_id="r-1"), "信息有误")
    sent = responses.calls[0].request
    assert Webhook(SECRET).verify(sent.body, dict(sent.headers)) == {"reason": "信息有误"}
    assert sent.headers["webhook-id"] != message_id(item)


@responses.activate
def test_the_withdrawal_has_an_idempotency_key_of_its_own(item):
    # A receiver that drops repeated keys would otherwise take the withdrawal for a
    # repeat of the delivery and ignore it.
    responses.post(URL, json={})
    responses.delete(f"{URL}/jt-1", status=503)
    responses.delete(f"{URL}/jt-1", json={})
    channel = make_channel()
    channel.deliver(item, channel.render(item), None)
    with pytest.raises(TransientError):
        channel.withdraw(item, Receipt(external_id="jt-1"), "信息有误")
    channel.withdraw(item, Receipt(external_id="jt-1"), "信息有误")
    posted, first, retried = (call.request.headers for call in responses.calls)
    assert posted["Idempotency-Key"] == idempotency_key(item) == "jt-1:2:" + "ab" * 8
    assert first["Idempotency-Key"] == retried["Idempotency-Key"] == "jt-1:2:withdraw"
    assert first["webhook-id"] == retried["webhook-id"] != posted["webhook-id"]


@responses.activate
def test_without_a_secret_nothing_is_signed(item):
    responses.post(URL, json={})
    channel = make_channel(clock=lambda: None)  # the clock is not even asked
    channel.deliver(item, channel.render(item), None)
    sent = responses.calls[0].request.headers
    assert "webhook-signature" not in sent and "webhook-timestamp" not in sent
    assert sent["webhook-id"] == message_id(item)
    assert sent["Idempotency-Key"] == "jt-1:2:" + "ab" * 8
    assert channel.render(item).data["signed"] is False


def test_the_message_id_is_per_edition(item):
    again = item.model_copy()
    newer = item.model_copy(update={"edition": 3, "content_hash": "cd" * 32})
    assert message_id(item) == message_id(again) != message_id(newer)
    assert message_id(item).startswith("msg_")


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with whsec_"),
        ("whsec_not base64!!", "not valid base64"),
        ("whsec_" + base64.b64encode(b"a key of 20 bytes...").decode(), "at least 24"),
    ],
)
def test_a_bad_secret_is_refused_when_the_config_loads(monkeypatch, secret, problem):
    monkeypatch.setenv("GONGKAI_WEBHOOK_SECRET", secret)
    settings = settings_from_dict(
        {
            "channels": {
                "webhook": {"url": URL, "secret": {"env": "GONGKAI_WEBHOOK_SECRET"}},
            }
        },
        source="config.toml",
    )
    with pytest.raises(ConfigError) as info:
        build_channel_settings(settings, {"webhook": WebhookChannel})
    assert info.value.key == "channels.webhook.secret"
    assert problem in str(info.value) and "os.urandom(32)" in str(info.value)
    assert secret not in str(info.value)


def test_a_secret_in_the_file_is_refused():
    settings = settings_from_dict(
        {"channels": {"webhook": {"url": URL, "secret": SECRET}}}, source="config.toml"
    )
    with pytest.raises(ConfigError) as info:
        build_channel_settings(settings, {"webhook": WebhookChannel})
    assert info.value.key == "channels.webhook.secret"
    assert 'secret = { env = "GONGKAI_WEBHOOK_SECRET" }' in info.value.fix


def test_headers_gongkai_sets_cannot_be_configured():
    with pytest.raises(ValidationError, match="gongkai sets Webhook-Signature itself"):
        WebhookChannel.Config(url=URL, headers={"Webhook-Signature": "v1,x"})


# --- the HTTP client: every status and failure named -------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
@responses.activate
def test_any_2xx_is_a_receipt(item, status):
    if status == 204:
        responses.post(URL, status=status)
    else:
        responses.post(URL, status=status, json={"id": "r-9", "url": "https://x.test/r-9"})
    receipt = make_channel(secret=SECRET).deliver(item, make_channel().render(item), None)
    assert receipt.status == "delivered"
    assert receipt.external_id == ("jt-1" if status == 204 else "r-9")
    assert receipt.data == {"http_status": status}


@pytest.mark.parametrize(
    ("status", "error", "headers"),
    [
        (400, PermanentError, {}),
        (401, AuthError, {}),
        (403, AuthError, {}),
        (404, PermanentError, {}),
        (409, PermanentError, {}),
        (422, PermanentError, {}),
        (429, TransientError, {"Retry-After": "30"}),
        (500, TransientError, {}),
        (502, OutcomeUnknown, {}),
        (504, OutcomeUnknown, {}),
    ],
)
@responses.activate
def test_statuses_are_classified(item, status, error, headers):
    responses.post(URL, status=status, headers=headers, json={})
    channel = make_channel(secret=SECRET, headers={"X-Api-Key": SecretStr(API_KEY)})
    with pytest.raises(error) as info:
        channel.deliver(item, channel.render(item), None)
    assert type(info.value) is error
    assert info.value.http_status == status
    if headers:
        assert info.value.retry_after == 30.0
    assert API_KEY not in str(info.value) and SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (requests.ConnectTimeout(), TransientError),
        (requests.ReadTimeout(), OutcomeUnknown),
        # A reset comes after the request left: the remote may have it.
        (
            requests.ConnectionError(ConnectionResetError(104, "Connection reset by peer")),
            OutcomeUnknown,
        ),
        (requests.ConnectionError("Connection refused"), TransientError),
    ],
    ids=["connect-timeout", "read-timeout", "connection-reset", "refused"],
)
@responses.activate
def test_network_failures_are_classified(item, exc, error):
    responses.post(URL, body=exc)
    channel = make_channel(secret=SECRET)
    with pytest.raises(error):
        channel.deliver(item, channel.render(item), None)


# --- through core: retries keep the message id -------------------------------------------


@responses.activate
def test_a_retry_sends_the_same_message_id_freshly_signed(make_publisher, monkeypatch):
    monkeypatch.setenv("GONGKAI_WEBHOOK_SECRET", SECRET)
    responses.post(URL, status=500)
    responses.post(URL, json={"id": "r-1"})
    publisher = make_publisher(
        plugins=[],
        channels={
            "webhook": {
                "url": URL,
                "every_item": True,
                "secret": {"env": "GONGKAI_WEBHOOK_SECRET"},
            }
        },
    )
    result = publisher.publish(make_item(id="retry-1"))
    assert result.outcome("retry-1", "webhook").status == "delivered"
    first, second = (call.request for call in responses.calls)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    for sent in (first, second):
        signed = sign(
            signing_key(SECRET),
            sent.headers["webhook-id"],
            int(sent.headers["webhook-timestamp"]),
            sent.body.decode(),
        )
        assert sent.headers["webhook-signature"] == signed


@responses.activate
def test_a_withdrawal_through_core_keeps_its_own_key_on_a_retry(make_publisher):
    responses.post(URL, json={"id": "r-1"})
    responses.delete(f"{URL}/gone-1", status=500)
    responses.delete(f"{URL}/gone-1", status=204)
    publisher = make_publisher(plugins=[], channels={"webhook": {"url": URL, "every_item": True}})
    publisher.publish(make_item(id="gone-1"))
    result = publisher.withdraw("gone-1", "信息有误")
    assert result.outcome("gone-1", "webhook").status == "withdrawn"
    posted, *deletes = (call.request for call in responses.calls)
    assert [d.method for d in deletes] == ["DELETE", "DELETE"]
    keys = {d.headers["Idempotency-Key"] for d in deletes}
    assert keys == {"gone-1:1:withdraw"} and posted.headers["Idempotency-Key"] not in keys


# --- several endpoints ---------------------------------------------------------------------


def _settings(channels: dict):
    return settings_from_dict({"channels": channels}, source="config.toml")


def test_an_unknown_type_names_the_key_and_the_installed_types():
    with pytest.raises(ConfigError) as info:
        build_channel_settings(
            _settings({"oa_push": {"type": "webhok", "url": URL}}), {"webhook": WebhookChannel}
        )
    assert info.value.key == "channels.oa_push.type"
    assert "'webhok'" in info.value.problem and "webhook" in info.value.fix


def test_a_table_without_type_that_is_no_channel_is_still_unknown():
    with pytest.raises(ConfigError) as info:
        build_channel_settings(_settings({"oa_push": {"url": URL}}), {"webhook": WebhookChannel})
    assert info.value.key == "channels.oa_push"
    assert "no installed channel is named 'oa_push'" in info.value.problem
    assert 'type = "<channel>"' in info.value.fix


@pytest.mark.parametrize(
    ("name", "key", "words"),
    [
        ("OA-Push", "channels.OA-Push", "lowercase letters"),
        ("archive", "channels.archive.type", "would hide it"),
    ],
)
def test_an_instance_name_must_be_a_channel_name_of_its_own(name, key, words):
    from gongkai.channels.archive import ArchiveChannel

    classes = {"webhook": WebhookChannel, "archive": ArchiveChannel}
    with pytest.raises(ConfigError) as info:
        build_channel_settings(_settings({name: {"type": "webhook", "url": URL}}), classes)
    assert info.value.key == key and words in str(info.value)


def test_an_instance_gets_its_own_settings_and_name(make_publisher):
    publisher = make_publisher(
        plugins=[],
        channels={
            "webhook": {"url": URL},
            "oa_push": {"type": "webhook", "url": "https://oa.example.test/in", "every_item": True},
            "old_push": {"type": "webhook", "url": "https://old.example.test/", "enabled": False},
        },
    )
    assert set(publisher.channels) == {"webhook", "oa_push"}
    oa = publisher.channels["oa_push"]
    assert oa.instance.name == "oa_push" and isinstance(oa.instance, WebhookChannel)
    assert oa.instance.config.url == "https://oa.example.test/in"
    assert oa.settings.every_item and oa.settings.type == "webhook"
    assert publisher.channels["webhook"].instance.name == WebhookChannel.name == "webhook"
    rows = {d["name"]: d for d in publisher.describe_channels()}
    assert (rows["oa_push"]["type"], rows["oa_push"]["configured"]) == ("webhook", "enabled")
    assert rows["old_push"]["configured"] == "disabled"
    assert rows["webhook"]["type"] == "webhook"
    # An item may add or skip an instance by name, disabled or not.
    assert {"oa_push", "old_push"} <= publisher.intake().known_channels


def test_two_endpoints_each_get_the_item_once_with_their_own_rows(tmp_path):
    first, second = Recorder(), Recorder()
    servers = [start_server(first), start_server(second)]
    try:
        (_, url_a), (_, url_b) = servers
        second.failures[HOUSING] = [500]
        config = write_config(
            tmp_path,
            f'[channels.webhook]\nurl = "{url_a}"\nevery_item = true\n'
            'secret = { env = "GONGKAI_WEBHOOK_SECRET" }\n'
            f'[channels.oa_push]\ntype = "webhook"\nurl = "{url_b}"\nevery_item = true\n'
            "[channels.oa_push.retry]\nattempts = 1\nschedule = []\n",
        )
        env = {"GONGKAI_WEBHOOK_SECRET": SECRET}
        item = str(EXAMPLES / "06-housing-policy.md")
        published = run("publish", item, "--json", config=config, env=env)
        assert published.returncode == 1, published.stderr  # oa_push failed
        outcomes = {
            o["channel"]: o["status"]
            for o in json.loads(published.stdout)["outcomes"]
            if o["status"] != "not-enabled"
        }
        assert outcomes == {"archive": "delivered", "webhook": "delivered", "oa_push": "failed"}
        assert first.counts[HOUSING] == 1 and second.counts[HOUSING] == 1
        assert "webhook-signature" in first.headers[0]
        assert "webhook-signature" not in second.headers[0]  # oa_push has no secret

        rows = {r["channel"]: r for r in as_json(run("status", "--json", config=config, env=env))}
        assert set(rows) == {"archive", "webhook", "oa_push"}
        assert rows["webhook"]["state"] == "delivered"
        assert rows["oa_push"]["state"] == "failed" and "HTTP 500" in rows["oa_push"]["error"]

        # The failing endpoint is retried on its own; the other is not sent again.
        assert run("retry", HOUSING, "--channel", "oa_push", config=config, env=env).returncode == 0
        again = run("publish", "--json", config=config, env=env)
        assert again.returncode == 0, again.stderr
        assert first.counts[HOUSING] == 1 and second.counts[HOUSING] == 2
        listing = run("channels", config=config, env=env).stdout
        assert "oa_push" in listing and "type" in listing.splitlines()[0]
    finally:
        for server, _ in servers:
            server.shutdown()


def test_a_secret_header_never_shows_anywhere(tmp_path):
    recorder = Recorder()
    server, url = start_server(recorder)
    try:
        config = write_config(
            tmp_path,
            f'[channels.webhook]\nurl = "{url}"\nevery_item = true\n'
            'secret = { env = "GONGKAI_WEBHOOK_SECRET" }\n'
            'headers = { "X-Api-Key" = { env = "OA_API_KEY" }, "X-Source" = "jintang" }\n',
        )
        env = {"GONGKAI_WEBHOOK_SECRET": SECRET, "OA_API_KEY": API_KEY}
        recorder.failures[HOUSING] = [503]  # a retry, logged
        item = str(EXAMPLES / "06-housing-policy.md")
        channels = run("channels", "--json", config=config, env=env)
        published = run("publish", item, "--json", "-v", config=config, env=env)
        assert published.returncode == 0, published.stderr
        assert recorder.headers[-1]["X-Api-Key"] == API_KEY
        assert recorder.headers[-1]["X-Source"] == "jintang"
        rendered = run("render", HOUSING, "--channel", "webhook", config=config, env=env)
        as_data = run("render", HOUSING, "--channel", "webhook", "--json", config=config, env=env)
        status = run("status", HOUSING, "--json", config=config, env=env)
        shown = [channels, published, rendered, as_data, status]
        for result in shown:
            assert result.returncode in (0, 1), result.stderr
            for secret in (API_KEY, SECRET, SECRET.removeprefix("whsec_")):
                assert secret not in result.stdout + result.stderr

        assert "X-Api-Key: **********" in rendered.stderr
        assert "webhook-signature: <v1," in rendered.stderr
        assert json.loads(rendered.stdout)["id"] == HOUSING  # stdout is the exact payload
        headers = json.loads(as_data.stdout)["data"]["headers"]
        assert headers["X-Api-Key"] == "**********" and headers["X-Source"] == "jintang"
        [hook] = [d for d in json.loads(channels.stdout) if d["name"] == "webhook"]
        assert hook["config"]["secret"] == "**********"
        # Both verbs show a header the same way: text as it is, a secret masked.
        assert hook["config"]["headers"] == {"X-Api-Key": "**********", "X-Source": "jintang"}
        assert {k: headers[k] for k in hook["config"]["headers"]} == hook["config"]["headers"]
        listing = run("channels", config=config, env=env).stdout
        assert '"X-Source": "jintang"' in listing and '"X-Api-Key": "**********"' in listing
        assert "X-Source: jintang" in rendered.stderr
        for path in (tmp_path / "state").rglob("*"):  # the ledger and the archive
            if path.is_file():
                data = path.read_bytes()
                assert API_KEY.encode() not in data and SECRET.encode() not in data, path
    finally:
        server.shutdown()


def test_an_unset_header_variable_is_listed_not_fatal_for_looking(tmp_path):
    config = write_config(
        tmp_path,
        '[channels.webhook]\nurl = "https://x.test/in"\n'
        'headers = { "X-Api-Key" = { env = "OA_API_KEY_UNSET_XYZ" } }\n',
    )
    listing = run("channels", config=config)
    assert listing.returncode == 0, listing.stderr
    assert "channels.webhook.headers.X-Api-Key ($OA_API_KEY_UNSET_XYZ)" in listing.stdout
    publishing = run("publish", config=config)
    assert publishing.returncode == 2
    assert "channels.webhook.headers.X-Api-Key" in publishing.stderr


# --- the contract suite, signed ------------------------------------------------------------


class TestSignedWebhook(ChannelContract):
    channel_class = WebhookChannel
    config = {
        "url": "https://portal.example.test/api",
        "secret": SECRET,
        "headers": {"X-Api-Key": SecretStr(API_KEY), "X-Source": "jintang"},
    }
    http = True
