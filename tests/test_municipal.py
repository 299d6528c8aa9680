"""The ``platform`` channel (the municipal platform) against mocked HTTP: every status
the contract names, token handling, idempotency keys, reconcile, config, export mode."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import responses
from openpyxl import load_workbook
from pydantic import ValidationError

from clihelp import as_json, run, write_config
from gongkai.channel import ChannelContext, DeliveryProgress, PreparedItem, Receipt
from gongkai.channels.municipal import MunicipalChannel
from gongkai.errors import AuthError, OutcomeUnknown, PermanentError, TransientError, UsageError
from gongkai.item import Attachment
from gongkai.ledger import AttemptRecord
from gongkai.testing import ChannelContract

BASE = "https://gkpt.example.test"
SECRET = "s3cret-for-tests-only"
CONFIG = {
    "base_url": BASE,
    "app_key": "jt-app",
    "app_secret": SECRET,
    "default_column": "jt-qita",
    "columns": {"land.compensation-notice": "jt-zdbc", "poverty": "jt-shjz"},
}
TOKEN_URL = f"{BASE}/api/v1/auth/token"
CREATE_URL = f"{BASE}/api/v1/columns/jt-qita/articles"
LOOKUP_URL = f"{BASE}/api/v1/articles"
UPLOAD_URL = f"{BASE}/api/v1/files"
ARTICLE = {
    "article_id": "A00000007",
    "column_id": "jt-qita",
    "external_id": "jt-test-001",
    "edition": 1,
    "content_hash": "0" * 64,
    "status": "published",
    "url": "https://gkpt.example.test/public/A00000007.html",
    "updated_at": "2026-11-26T10:00:00+08:00",
}


class TestPlatformRest(ChannelContract):
    channel_class = MunicipalChannel
    config = CONFIG
    http = True
    success_json = {
        "access_token": "tok-1",
        "expires_in": 7200,
        "article_id": "A1",
        "url": "https://gkpt.example.test/public/A1.html",
        "file_id": "F1",
    }


class TestPlatformExport(ChannelContract):
    channel_class = MunicipalChannel
    config = {"mode": "export", "default_column": "jt-qita"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_channel(tmp_path: Path, clock=None, secret_env=None, **changes) -> MunicipalChannel:
    from gongkai.channel import bind_progress

    bind_progress(DeliveryProgress())
    options = MunicipalChannel.Config.model_validate({**CONFIG, **changes})
    context = ChannelContext(
        name="platform",
        state_dir=tmp_path,
        clock=clock or Clock(),
        read_timeout=1,
        secret_env=secret_env or {},
    )
    return MunicipalChannel(options, context)


def make_item(edition: int = 1, digest: str = "0" * 64, **changes) -> PreparedItem:
    data = {
        "id": "jt-test-001",
        "catalog": "housing.policy",
        "title": "金堂县公共租赁住房申请指南",
        "body": "申请条件：在本县有稳定工作。",
        "publisher": "金堂县房产管理局",
        "formed_on": date(2026, 11, 20),
        "index_number": "11510121009087532X/2026-00001",
        "edition": edition,
        "content_hash": digest,
        **changes,
    }
    return PreparedItem(**data)


@pytest.fixture
def channel(tmp_path, clock) -> MunicipalChannel:
    return make_channel(tmp_path, clock)


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(TOKEN_URL, json={"access_token": "tok-1", "expires_in": 7200})
        yield rsps


def error(code: str, message: str = "出错了", **extra) -> dict:
    return {"code": code, "message": message, **extra}


def deliver(channel: MunicipalChannel, item: PreparedItem | None = None, previous=None):
    item = item or make_item()
    return channel.deliver(item, channel.render(item), previous)


def calls_to(mock, url: str) -> list:
    return [c for c in mock.calls if c.request.url.split("?")[0] == url]


# --- success paths ------------------------------------------------------------------------


def test_create_sends_the_article_with_a_bearer_token_and_key(channel, mock):
    mock.post(CREATE_URL, json=ARTICLE, status=201)
    receipt = deliver(channel)
    assert receipt.external_id == "A00000007" and receipt.url == ARTICLE["url"]
    assert receipt.data == {"article_id": "A00000007", "column_id": "jt-qita"}
    sent = calls_to(mock, CREATE_URL)[0].request
    assert sent.headers["Authorization"] == "Bearer tok-1"
    assert sent.headers["Idempotency-Key"].startswith("gongkai-")
    body = json.loads(sent.body)
    assert body["external_id"] == "jt-test-001" and body["edition"] == 1
    assert body["title"] == "金堂县公共租赁住房申请指南"
    assert body["index_number"] == "11510121009087532X/2026-00001"
    assert body["kind"] == "发布" and body["audience"] == "全社会"
    assert body["content_html"] == "<p>申请条件：在本县有稳定工作。</p>\n"
    assert body["attachments"] == [] and body["published_on"] is None
    token_body = json.loads(calls_to(mock, TOKEN_URL)[0].request.body)
    assert token_body == {"app_key": "jt-app", "app_secret": SECRET}


def test_a_later_edition_is_an_update_of_the_article(channel, mock):
    put = mock.put(f"{BASE}/api/v1/articles/A00000007", json={**ARTICLE, "edition": 2})
    previous = Receipt(external_id="A00000007", data={"article_id": "A00000007"})
    receipt = deliver(channel, make_item(2, "1" * 64), previous)
    assert put.call_count == 1 and receipt.external_id == "A00000007"
    assert json.loads(put.calls[0].request.body)["edition"] == 2


def test_an_update_of_an_article_removed_on_the_platform_creates_it_again(channel, mock):
    mock.put(f"{BASE}/api/v1/articles/A00000007", status=404, json=error("article_not_found"))
    mock.post(CREATE_URL, json={**ARTICLE, "article_id": "A00000099"}, status=201)
    previous = Receipt(external_id="A00000007", data={"article_id": "A00000007"})
    assert deliver(channel, make_item(2, "1" * 64), previous).external_id == "A00000099"


def test_an_item_already_on_the_platform_is_updated_not_posted_twice(channel, mock):
    mock.post(CREATE_URL, status=409, json=error("external_id_exists", article_id="A00000007"))
    put = mock.put(f"{BASE}/api/v1/articles/A00000007", json={**ARTICLE, "edition": 2})
    receipt = deliver(channel, make_item(2, "1" * 64))
    assert put.call_count == 1 and receipt.external_id == "A00000007"


def test_attachments_are_uploaded_first_and_named_by_file_id(tmp_path, channel, mock):
    path = tmp_path / "补偿标准.csv"
    path.write_bytes("户主,金额\n张*,1000\n".encode())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    item = make_item(attachments=[Attachment(title="补偿标准", path=path, sha256=digest)])
    upload = mock.post(UPLOAD_URL, json={"file_id": "F7", "filename": path.name}, status=201)
    mock.post(CREATE_URL, json=ARTICLE, status=201)
    mock.post(CREATE_URL, status=503, json=error("unavailable"))
    deliver(channel, item)
    with pytest.raises(TransientError):
        deliver(channel, item)  # a retry: the file id was saved, nothing is uploaded again
    assert upload.call_count == 1
    assert b"filename*=" in upload.calls[0].request.body or "补偿标准".encode() in (
        upload.calls[0].request.body
    )
    first, second = (json.loads(c.request.body) for c in calls_to(mock, CREATE_URL))
    assert first["attachments"] == [{"file_id": "F7", "title": "补偿标准", "filename": path.name}]
    assert first == second


def test_an_attachment_changed_after_reading_is_not_sent(tmp_path, channel, mock):
    path = tmp_path / "名单.csv"
    path.write_text("a\n", encoding="utf-8")
    item = make_item(attachments=[Attachment(title="名单", path=path, sha256="f" * 64)])
    with pytest.raises(PermanentError, match="changed after the item was read"):
        deliver(channel, item)
    assert not calls_to(mock, UPLOAD_URL)


# --- every status the contract names ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "bad_request", PermanentError),
        (403, "forbidden", PermanentError),
        (404, "column_not_found", PermanentError),
        (409, "stale_edition", PermanentError),
        (413, "file_too_large", PermanentError),
        (422, "validation_failed", PermanentError),
        (429, "rate_limited", TransientError),
        (500, "internal_error", TransientError),
        (502, "bad_gateway", OutcomeUnknown),
        (503, "unavailable", TransientError),
        (504, "gateway_timeout", OutcomeUnknown),
    ],
)
def test_each_status_is_classified_with_the_platforms_code_and_message(
    channel, mock, status, code, expected
):
    mock.post(CREATE_URL, status=status, json=error(code, "平台说明"))
    with pytest.raises(expected) as caught:
        deliver(channel)
    text = str(caught.value)
    assert f"HTTP {status}" in text and code in text and "平台说明" in text
    assert caught.value.http_status == status
    assert SECRET not in text and "tok-1" not in text


def test_validation_errors_name_each_field(channel, mock):
    fields = [{"field": "title", "message": "必填"}, {"field": "formed_on", "message": "格式"}]
    mock.post(CREATE_URL, status=422, json=error("validation_failed", "字段有误", errors=fields))
    with pytest.raises(PermanentError, match="title: 必填, formed_on: 格式"):
        deliver(channel)


def test_an_unknown_column_says_which_config_key_to_fix(channel, mock):
    mock.post(CREATE_URL, status=404, json=error("column_not_found"))
    with pytest.raises(PermanentError, match="columns or default_column"):
        deliver(channel)


def test_a_column_the_app_may_not_use_is_permanent_and_names_it(channel, mock):
    mock.post(CREATE_URL, status=403, json=error("forbidden"))
    with pytest.raises(PermanentError, match="'jt-app' post into column 'jt-qita'"):
        deliver(channel)


def test_429_honours_retry_after(channel, mock):
    mock.post(CREATE_URL, status=429, json=error("rate_limited"), headers={"Retry-After": "7"})
    with pytest.raises(TransientError) as caught:
        deliver(channel)
    assert caught.value.retry_after == 7


def test_a_key_still_in_use_is_transient(channel, mock):
    mock.post(CREATE_URL, status=409, json=error("idempotency_key_in_use"))
    with pytest.raises(TransientError):
        deliver(channel)


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        ("stale_edition", "newer edition"),
        ("edition_conflict", "other content"),
        ("article_withdrawn", "withdrawn on the platform"),
    ],
)
def test_update_conflicts_are_permanent_and_say_what_to_do(channel, mock, code, fix):
    mock.put(f"{BASE}/api/v1/articles/A00000007", status=409, json=error(code))
    previous = Receipt(external_id="A00000007", data={"article_id": "A00000007"})
    with pytest.raises(PermanentError, match=fix):
        deliver(channel, make_item(2, "1" * 64), previous)


def test_a_401_gets_one_new_token_and_one_resend(channel, mock):
    mock.replace(responses.POST, TOKEN_URL, json={"access_token": "tok-1", "expires_in": 7200})
    mock.add(responses.POST, TOKEN_URL, json={"access_token": "tok-2", "expires_in": 7200})
    mock.post(CREATE_URL, status=401, json=error("token_expired"))
    mock.post(CREATE_URL, status=201, json=ARTICLE)
    assert deliver(channel).external_id == "A00000007"
    creates = calls_to(mock, CREATE_URL)
    assert [c.request.headers["Authorization"] for c in creates] == [
        "Bearer tok-1",
        "Bearer tok-2",
    ]
    assert (
        creates[0].request.headers["Idempotency-Key"]
        == (creates[1].request.headers["Idempotency-Key"])
    )


def test_a_second_401_is_an_auth_error(channel, mock):
    mock.post(CREATE_URL, status=401, json=error("invalid_token", "无效"))
    with pytest.raises(AuthError, match="invalid_token") as caught:
        deliver(channel)
    assert len(calls_to(mock, CREATE_URL)) == 2 and len(calls_to(mock, TOKEN_URL)) == 2
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_an_auth_error_without_the_secret(tmp_path, status):
    channel = make_channel(tmp_path, secret_env={"app_secret": "GONGKAI_MUNICIPAL_SECRET"})
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, status=status, json=error("invalid_credentials", "密钥不正确"))
        with pytest.raises(AuthError, match="app_key 'jt-app'") as caught:
            deliver(channel)
        with pytest.raises(AuthError, match="^credentials refused"):
            channel.check()
    text = str(caught.value)
    assert SECRET not in text
    # Which variable to fix, and how to see that it works.
    assert "environment variable GONGKAI_MUNICIPAL_SECRET" in text
    assert "gongkai channels --check" in text and "invalid_credentials: 密钥不正确" in text


def test_refused_credentials_given_to_the_library_say_how_to_name_a_variable(tmp_path):
    channel = make_channel(tmp_path)
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, status=401, json=error("invalid_credentials"))
        with pytest.raises(AuthError, match='app_secret = { env = "GONGKAI_MUNICIPAL_SECRET" }'):
            channel.check()


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            {"json": error("unavailable", "系统维护")},
            "HTTP 503 from the platform: unavailable: 系统维护",
        ),
        ({"json": {}}, "HTTP 503 from the platform (no message)"),
        ({"json": {"code": None, "message": ""}}, "HTTP 503 from the platform (no message)"),
        ({"body": "<html>busy</html>"}, "HTTP 503 from the platform (no message)"),
        ({"json": {"error": "injected failure"}}, "HTTP 503 from the platform: injected failure"),
    ],
    ids=["code-and-message", "empty", "nulls", "html", "error-key"],
)
def test_check_of_a_busy_platform_could_not_check(tmp_path, answer, said):
    # Only a token proves the credentials; a busy platform proves nothing either way.
    channel = make_channel(tmp_path)
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, status=503, **answer)
        with pytest.raises(TransientError) as caught:
            channel.check()
    assert str(caught.value) == f"could not check (platform token: {said}; try again later)"
    assert "?" not in str(caught.value)


def test_an_error_without_a_message_reads_plainly(channel, mock):
    mock.post(CREATE_URL, status=503, json={"detail": None})
    with pytest.raises(TransientError) as caught:
        deliver(channel)
    assert str(caught.value) == (
        "platform create of 'jt-test-001' in column jt-qita: HTTP 503 from the platform "
        "(no message)"
    )


def test_check_passes_only_with_a_token(tmp_path):
    channel = make_channel(tmp_path)
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json={"access_token": "tok-1", "expires_in": 7200})
        channel.check()
        mock.replace(responses.POST, TOKEN_URL, json={"expires_in": 7200})
        channel.refresh_auth()
        with pytest.raises(PermanentError, match="access_token"):
            channel.check()


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (requests.ReadTimeout(), OutcomeUnknown),
        (requests.ConnectTimeout(), TransientError),
        (requests.ConnectionError("Connection refused"), TransientError),
        (requests.exceptions.ChunkedEncodingError(), OutcomeUnknown),
    ],
)
def test_requests_exceptions_on_create(channel, mock, exc, expected):
    mock.post(CREATE_URL, body=exc)
    with pytest.raises(expected):
        deliver(channel)


def test_check_when_the_token_answer_never_came_could_not_check(tmp_path):
    # No answer says nothing about the credentials: not "ok", not "refused".
    channel = make_channel(tmp_path)
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, body=requests.ReadTimeout())
        with pytest.raises(OutcomeUnknown, match=r"^could not check \(.*try again later\)$"):
            channel.check()


# --- the token and the key -------------------------------------------------------------------


def test_the_token_is_cached_until_shortly_before_it_expires(tmp_path, clock, mock):
    channel = make_channel(tmp_path, clock)
    mock.post(CREATE_URL, status=201, json=ARTICLE)
    deliver(channel)
    clock.now += timedelta(seconds=7200 - 61)
    deliver(channel)
    assert len(calls_to(mock, TOKEN_URL)) == 1
    clock.now += timedelta(seconds=2)
    deliver(channel)
    assert len(calls_to(mock, TOKEN_URL)) == 2


def test_refresh_auth_drops_the_token(channel, mock):
    mock.post(CREATE_URL, status=201, json=ARTICLE)
    deliver(channel)
    channel.refresh_auth()
    deliver(channel)
    assert len(calls_to(mock, TOKEN_URL)) == 2


def test_the_idempotency_key_is_stable_per_edition(tmp_path, mock):
    mock.post(CREATE_URL, status=503, json=error("unavailable"))
    mock.post(CREATE_URL, status=201, json=ARTICLE)
    keys = []
    for edition, digest in ((1, "0" * 64), (1, "0" * 64), (2, "1" * 64)):
        channel = make_channel(tmp_path)  # a later run is another instance
        with contextlib.suppress(TransientError):
            deliver(channel, make_item(edition, digest))
        keys.append(calls_to(mock, CREATE_URL)[-1].request.headers["Idempotency-Key"])
    assert keys[0] == keys[1] != keys[2]


# --- reconcile and withdraw ------------------------------------------------------------------


def attempt() -> AttemptRecord:
    now = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    return AttemptRecord("jt-test-001", "platform", 1, "deliver", now, now, "unknown")


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ([ARTICLE], "A00000007"),
        ([], None),
        ([{**ARTICLE, "edition": 1, "content_hash": "9" * 64}], None),
        ([{**ARTICLE, "status": "withdrawn"}], None),
    ],
    ids=["this-edition", "absent", "older-content", "withdrawn"],
)
def test_reconcile_finds_only_this_edition(channel, mock, found, expected):
    mock.get(LOOKUP_URL, json={"items": found})
    receipt = channel.reconcile(make_item(), attempt())
    assert (receipt.external_id if receipt else None) == expected
    assert calls_to(mock, LOOKUP_URL)[0].request.url.endswith("external_id=jt-test-001")


def test_reconcile_of_an_older_edition_on_the_platform_is_none(channel, mock):
    mock.get(LOOKUP_URL, json={"items": [ARTICLE]})
    assert channel.reconcile(make_item(2, "1" * 64), attempt()) is None


def test_reconcile_raises_when_the_platform_cannot_tell(channel, mock):
    mock.get(LOOKUP_URL, status=503, json=error("unavailable"))
    with pytest.raises(TransientError):
        channel.reconcile(make_item(), attempt())


def test_withdraw_sends_the_reason(channel, mock):
    call = mock.post(f"{BASE}/api/v1/articles/A00000007/withdraw", json=ARTICLE)
    receipt = Receipt(external_id="A00000007", data={"article_id": "A00000007"})
    assert channel.withdraw(make_item(), receipt, "信息有误").status == "withdrawn"
    assert json.loads(call.calls[0].request.body) == {"reason": "信息有误"}


def test_withdraw_of_an_article_already_gone_is_done(channel, mock):
    mock.post(f"{BASE}/api/v1/articles/A00000007/withdraw", status=404, json=error("x"))
    receipt = Receipt(external_id="A00000007", data={"article_id": "A00000007"})
    assert channel.withdraw(make_item(), receipt, "信息有误").status == "withdrawn"


def test_withdraw_after_an_unknown_outcome_looks_the_item_up(channel, mock):
    mock.get(LOOKUP_URL, json={"items": [ARTICLE]})
    call = mock.post(f"{BASE}/api/v1/articles/A00000007/withdraw", json=ARTICLE)
    assert channel.withdraw(make_item(), Receipt(), "信息有误").status == "withdrawn"
    assert call.call_count == 1
    mock.replace(responses.GET, LOOKUP_URL, json={"items": []})
    assert channel.withdraw(make_item(), Receipt(), "信息有误").status == "withdrawn"
    assert call.call_count == 1


def test_withdraw_failures_are_classified(channel, mock):
    mock.post(f"{BASE}/api/v1/articles/A00000007/withdraw", status=503, json=error("x"))
    with pytest.raises(TransientError):
        channel.withdraw(make_item(), Receipt(data={"article_id": "A00000007"}), "有误")


# --- config --------------------------------------------------------------------------------


def test_paths_and_field_names_come_from_config(tmp_path):
    channel = make_channel(
        tmp_path,
        base_url="https://gk.example.test/openapi/",
        paths={"token": "/oauth/token", "create": "/lanmu/{column_id}/wenzhang"},
        fields={"title": "biaoti", "article_id": "id", "access_token": "token"},
    )
    with responses.RequestsMock() as mock:
        mock.post(
            "https://gk.example.test/openapi/oauth/token", json={"token": "tok-renamed-fields-9"}
        )
        create = mock.post(
            "https://gk.example.test/openapi/lanmu/jt-qita/wenzhang",
            json={"id": "W1", "url": "https://gk.example.test/w/W1"},
            status=201,
        )
        receipt = deliver(channel)
    body = json.loads(create.calls[0].request.body)
    assert body["biaoti"] == "金堂县公共租赁住房申请指南" and "title" not in body
    assert create.calls[0].request.headers["Authorization"] == "Bearer tok-renamed-fields-9"
    assert receipt.external_id == "W1"


def test_columns_by_entry_then_domain_then_default(tmp_path):
    channel = make_channel(tmp_path)
    assert channel.column_for(make_item(catalog="land.compensation-notice")) == "jt-zdbc"
    assert channel.column_for(make_item(catalog="poverty.dibao-initial")) == "jt-shjz"
    assert channel.column_for(make_item()) == "jt-qita"


def test_an_item_without_a_column_names_the_config_key_to_add(tmp_path):
    channel = make_channel(tmp_path, default_column=None)
    with pytest.raises(PermanentError, match=r'add columns\."housing.policy"'):
        deliver(channel)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"app_secret": None}, "mode 'rest' needs app_secret"),
        ({"base_url": "gkpt.example.test"}, "http:// or https://"),
        ({"fields": {"titel": "biaoti"}}, "unknown field name"),
        ({"paths": {"create": "/articles"}}, r"paths.create must contain \{column_id\}"),
    ],
)
def test_config_errors_say_what_to_write(changes, message):
    with pytest.raises(ValidationError, match=message):
        MunicipalChannel.Config.model_validate({**CONFIG, **changes})


def test_export_mode_needs_no_credentials():
    options = MunicipalChannel.Config.model_validate({"mode": "export"})
    assert options.export_format == "xlsx"


def test_render_is_the_article_without_io(channel):
    rendition = channel.render(make_item())
    assert json.loads(rendition.body)["external_id"] == "jt-test-001"
    assert rendition.data == {"column_id": "jt-qita"}


# --- export mode ---------------------------------------------------------------------------


def test_export_writes_one_sheet_per_column_and_the_attachments(tmp_path, clock):
    channel = make_channel(tmp_path, clock, mode="export", export_dir=tmp_path / "out")
    path = tmp_path / "名单.csv"
    path.write_bytes("户主\n张*\n".encode())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    first = make_item(
        title='=HYPERLINK("http://x")',
        attachments=[Attachment(title="名单", path=path, sha256=digest)],
    )
    second = make_item(id="jt-land-001", catalog="land.compensation-notice")
    receipts = [deliver(channel, first), deliver(channel, second), deliver(channel, first)]
    assert {r.status for r in receipts} == {"awaiting-confirmation"}
    batch = tmp_path / "out" / "20261126-100000"
    assert receipts[0].artifact == str(batch / "jt-qita.xlsx")
    assert receipts[1].artifact == str(batch / "jt-zdbc.xlsx")
    sheet = load_workbook(batch / "jt-qita.xlsx").active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("外部编号", "版本", "索引号", "标题")
    assert len(rows) == 2, "an edition written twice is one row"
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["标题"] == '=HYPERLINK("http://x")'
    assert sheet.cell(2, 4).data_type == "s", "a title is never a formula"
    assert row["附件"] == "名单（名单.csv）" and row["内容哈希"] == "0" * 64
    assert (batch / "attachments" / "jt-test-001" / "名单.csv").read_bytes() == path.read_bytes()


def test_export_csv_keeps_formulas_out(tmp_path):
    channel = make_channel(tmp_path, mode="export", export_format="csv")
    receipt = deliver(channel, make_item(title="+1 公告"))
    text = Path(receipt.artifact).read_bytes().decode("utf-8-sig")
    assert receipt.artifact.endswith("jt-qita.csv") and ",'+1 公告," in text
    assert str(tmp_path / "municipal-export") in receipt.artifact


def test_export_withdrawal_is_a_take_down_row_that_waits_for_confirmation(tmp_path):
    # The platform shows the item until a clerk removes it by the sheet: not done yet.
    channel = make_channel(tmp_path, mode="export")
    receipt = deliver(channel)
    gone = channel.withdraw(make_item(), receipt, "信息有误")
    assert gone.status == "awaiting-confirmation" and gone.artifact.endswith("撤回.xlsx")
    assert gone.data["action"] == "take-down" and gone.data["column_id"] == "jt-qita"
    assert gone.data["reason"] == "信息有误"
    assert gone.external_id == receipt.external_id
    book = load_workbook(gone.artifact)
    assert book.sheetnames == ["政务公开撤回"]
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[1][0] == "jt-test-001" and rows[1][4] == "jt-qita" and rows[1][5] == "信息有误"


def test_export_withdrawal_of_an_unknown_delivery_names_the_items_column(tmp_path):
    channel = make_channel(tmp_path, mode="export")
    gone = channel.withdraw(make_item(catalog="poverty.x"), Receipt(), "信息有误")
    assert gone.status == "awaiting-confirmation" and gone.data["column_id"] == "jt-shjz"


def export_rows(path: str) -> list[dict]:
    book = load_workbook(path)
    assert book.sheetnames == ["政务公开导入"], "the sheet has a name an import can find"
    rows = list(book.active.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_export_publish_date_is_the_day_it_goes_out_in_beijing_time(tmp_path, clock):
    # 2026-11-26 18:30 UTC is already the 27th in Beijing.
    clock.now = datetime(2026, 11, 26, 18, 30, tzinfo=UTC)
    channel = make_channel(tmp_path, clock, mode="export")
    first = deliver(channel)
    assert export_rows(first.artifact)[0]["发布日期"] == "2026-11-27"
    assert export_rows(first.artifact)[0]["成文日期"] == "2026-11-20"
    assert first.data["published_on"] == "2026-11-27"
    assert json.loads(channel.render(make_item()).body)["发布日期"] == "2026-11-27"
    # A correction a week later keeps the date the item was first published.
    clock.now += timedelta(days=7)
    later = make_channel(tmp_path, clock, mode="export")
    second = deliver(later, make_item(2, "1" * 64), previous=first)
    assert export_rows(second.artifact)[0]["发布日期"] == "2026-11-27"


def test_export_publish_date_of_a_scheduled_item_is_its_publish_at(tmp_path, clock):
    channel = make_channel(tmp_path, clock, mode="export")
    item = make_item(publish_at=datetime(2026, 11, 30, 17, 0, tzinfo=UTC))
    assert export_rows(deliver(channel, item).artifact)[0]["发布日期"] == "2026-12-01"


def test_export_csv_has_the_publish_date_too(tmp_path, clock):
    channel = make_channel(tmp_path, clock, mode="export", export_format="csv")
    text = Path(deliver(channel).artifact).read_bytes().decode("utf-8-sig")
    header, row = text.splitlines()[:2]
    assert row.split(",")[header.split(",").index("发布日期")] == "2026-11-26"


def test_export_of_a_long_body_goes_to_a_file(tmp_path):
    channel = make_channel(tmp_path, mode="export")
    receipt = deliver(channel, make_item(body="很长的正文。" * 7000))
    row = list(load_workbook(receipt.artifact).active.iter_rows(values_only=True))[1]
    assert row[14] == "见 正文/jt-test-001-第1版.html"
    assert (Path(receipt.artifact).parent / "正文" / "jt-test-001-第1版.html").is_file()


def test_a_second_run_in_the_same_second_gets_its_own_batch(tmp_path, clock):
    one = deliver(make_channel(tmp_path, clock, mode="export"))
    two = deliver(make_channel(tmp_path, clock, mode="export"))
    assert re.search(r"20261126-100000-2[/\\]jt-qita.xlsx$", two.artifact)
    assert Path(one.artifact).parent != Path(two.artifact).parent


def test_an_export_run_writes_the_batch_and_waits_for_confirmation(tmp_path):
    """`gongkai publish` in export mode: one batch, a sheet per column, the masked
    content and attachments, every delivery awaiting an operator."""
    examples = Path(__file__).parent.parent / "examples" / "items"
    platform = {"mode": "export", "default_column": "jt-qita", "columns": {"poverty": "jt-shjz"}}
    clock = Clock()
    clock.now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    with platform_publisher(tmp_path, clock, platform) as publisher:
        result = publisher.publish_paths([examples])
        rows = publisher.ledger.rows()
    assert not result.problems
    assert {r.state for r in rows} == {"awaiting-confirmation"} and len(rows) == 19
    batch = tmp_path / "state" / "municipal-export" / "20261201-100000"
    assert sorted(p.name for p in batch.glob("*.xlsx")) == ["jt-qita.xlsx", "jt-shjz.xlsx"]
    cells = []
    for sheet in batch.glob("*.xlsx"):
        table = list(load_workbook(sheet).active.iter_rows(values_only=True))
        cells += [str(c) for row in table[1:] for c in row if c]
        if sheet.stem == "jt-shjz":
            ids = {row[0] for row in table[1:]}
            assert "jt-2026-poverty-0501" in ids and len(ids) == len(table) - 1
    text = "\n".join(cells)
    roster = batch / "attachments" / "jt-2026-poverty-0501" / "zhugao-dibao-roster.csv"
    copied = roster.read_text("utf-8")
    # Published masked: the names in the body's table and the roster's numbers.
    assert "钱永福" not in text and "钱" in text
    assert "510121195203154414" not in copied and "13881906624" not in copied
    assert "竹篙镇2026年11月农村最低生活保障初审对象名单公示" in text
    assert len({r.receipt["artifact"] for r in rows}) == 2


def platform_publisher(tmp_path: Path, clock: Clock, platform: dict):
    from gongkai import Publisher
    from gongkai.config import settings_from_dict

    settings = settings_from_dict(
        {
            "gongkai": {"state_dir": str(tmp_path / "state"), "org_code": "11510121009087532X"},
            "channels": {"platform": platform},
        },
        source="test-config.toml",
        base_dir=tmp_path,
    )
    return Publisher(settings, clock=clock, load_entry_points=False)


def export_publisher(tmp_path: Path, clock: Clock):
    return platform_publisher(tmp_path, clock, {"mode": "export", "default_column": "jt-qita"})


def rest_publisher(tmp_path: Path, clock: Clock, monkeypatch):
    monkeypatch.setenv("GONGKAI_MUNICIPAL_SECRET", SECRET)
    platform = {**CONFIG, "app_secret": {"env": "GONGKAI_MUNICIPAL_SECRET"}}
    return platform_publisher(tmp_path, clock, platform)


def test_an_export_withdrawal_waits_for_the_clerk_to_take_it_down(tmp_path, clock):
    """`gongkai withdraw` in export mode: a take-down row in this run's batch, and the
    delivery waits (awaiting-confirmation) until `gongkai confirm --taken-down`."""
    examples = Path(__file__).parent.parent / "examples" / "items"
    item_id = "jt-2026-poverty-0501"
    with export_publisher(tmp_path, clock) as publisher:
        publisher.publish_paths([examples / "10-poverty-dibao-initial.md"])
    clock.now += timedelta(hours=1)
    with export_publisher(tmp_path, clock) as publisher:
        result = publisher.withdraw(item_id, "名单有误")
        row = publisher.ledger.row(item_id, "platform")
    assert [(o.channel, o.status) for o in result.outcomes] == [
        ("platform", "awaiting-confirmation")
    ]
    assert result.counts() == {"awaiting-confirmation": 1} and result.ok
    assert row.state == "awaiting-confirmation" and row.receipt["data"]["action"] == "take-down"
    sheet = tmp_path / "state" / "municipal-export" / "20261126-110000" / "撤回.xlsx"
    assert result.outcome(item_id, "platform").artifact == str(sheet)
    assert list(load_workbook(sheet).active.iter_rows(values_only=True))[1][0] == item_id
    # Confirming it as posted is refused; its removal ends it.
    clock.now += timedelta(hours=1)
    with export_publisher(tmp_path, clock) as publisher:
        with pytest.raises(UsageError):
            publisher.confirm(item_id, "platform", at=clock.now, by="王敏")
        done = publisher.confirm(item_id, "platform", at=clock.now, by="王敏", taken_down=True)
        assert done.status == "taken-down"
        assert publisher.ledger.row(item_id, "platform").state == "withdrawn"


# --- gongkai channels --check ------------------------------------------------------------


@contextlib.contextmanager
def token_server(status: int, body: dict):
    """A real platform stand-in on loopback that answers every request alike."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_POST(self):  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "body", "check", "code"),
    [
        (200, {"access_token": "tok-cli-0123456789", "expires_in": 7200}, "ok", 0),
        (
            503,
            {},
            "could not check (platform token: HTTP 503 from the platform (no message); "
            "try again later)",
            1,
        ),
        (
            401,
            error("invalid_credentials", "密钥不正确"),
            "credentials refused (platform token: HTTP 401 from the platform: "
            "invalid_credentials: 密钥不正确): the platform does not accept app_key 'jt-app' "
            "with the secret in the environment variable GONGKAI_MUNICIPAL_SECRET; check "
            "app_key in [channels.platform] and set the environment variable "
            "GONGKAI_MUNICIPAL_SECRET to the secret the platform issued for that key, then "
            "run `gongkai channels --check`",
            1,
        ),
    ],
    ids=["token", "busy", "refused"],
)
def test_channels_check_says_ok_only_for_a_token(tmp_path, status, body, check, code):
    with token_server(status, body) as url:
        config = write_config(
            tmp_path,
            f'[channels.platform]\nbase_url = "{url}"\napp_key = "jt-app"\n'
            'app_secret = { env = "GONGKAI_MUNICIPAL_SECRET" }\ndefault_column = "jt-qita"\n',
            archive=False,
        )
        done = run(
            "channels",
            "--check",
            "--json",
            config=config,
            env={"GONGKAI_MUNICIPAL_SECRET": SECRET},
        )
    assert done.returncode == code, done.stderr
    checks = {d["name"]: d.get("check") for d in as_json(done)}
    assert checks["platform"] == check
    assert SECRET not in done.stdout + done.stderr


def test_a_run_goes_on_when_its_check_finds_the_platform_busy(tmp_path, clock, monkeypatch):
    # The check before the first delivery meets a 503: that pauses nothing, and the
    # deliveries meet the platform for themselves.
    examples = Path(__file__).parent.parent / "examples" / "items"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(TOKEN_URL, status=503, json={})
        mock.post(TOKEN_URL, json={"access_token": "tok-run-0123456789", "expires_in": 7200})
        mock.post(f"{BASE}/api/v1/columns/jt-qita/articles", status=201, json=ARTICLE)
        with rest_publisher(tmp_path, clock, monkeypatch) as publisher:
            result = publisher.publish_paths([examples / "06-housing-policy.md"])
        tokens = len(calls_to(mock, TOKEN_URL))
    assert result.outcome("jt-2026-housing-0302", "platform").status == "delivered"
    assert tokens == 2


def test_a_rest_withdrawal_is_done_when_the_platform_answers(tmp_path, clock, monkeypatch):
    # Online, the platform's answer is the take-down: nothing waits for a person.
    examples = Path(__file__).parent.parent / "examples" / "items"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(TOKEN_URL, json={"access_token": "tok-run-0123456789", "expires_in": 7200})
        mock.post(CREATE_URL, status=201, json=ARTICLE)
        mock.post(f"{BASE}/api/v1/articles/A00000007/withdraw", json=ARTICLE)
        with rest_publisher(tmp_path, clock, monkeypatch) as publisher:
            publisher.publish_paths([examples / "06-housing-policy.md"])
            result = publisher.withdraw("jt-2026-housing-0302", "信息有误")
            row = publisher.ledger.row("jt-2026-housing-0302", "platform")
    assert [(o.channel, o.status) for o in result.outcomes] == [("platform", "withdrawn")]
    assert result.counts() == {"withdrawn": 1} and row.state == "withdrawn"
