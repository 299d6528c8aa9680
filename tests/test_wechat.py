"""The wechat channel against a mocked api.weixin.qq.com (responses): every error code
and HTTP status the channel names, the token cache, WeChat's limits, the publish job's
statuses, resuming a two-step create, corrections and withdrawal."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import requests
import responses
from responses import matchers

from gongkai.channel import (
    ChannelContext,
    DeliveryProgress,
    PreparedItem,
    Receipt,
    bind_progress,
    unbind_progress,
)
from gongkai.channels.wechat import COVERS as COVERS_DIR
from gongkai.channels.wechat import WeChatChannel
from gongkai.channels.wechat_api import seconds_to_midnight
from gongkai.errors import (
    AuthError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
)
from gongkai.testing import ChannelContract
from support.fakes import FakeClock

API = "https://api.weixin.qq.com/cgi-bin"
SECRET = "s3cret-for-tests-0001"
CONFIG = {"appid": "wx1234567890abcdef", "secret": SECRET}
TOKEN = {"access_token": "tok-AAAA-1111-bbbb-2222", "expires_in": 7200}


def make_item(**changes) -> PreparedItem:
    data = {
        "id": "jt-wechat-001",
        "catalog": "housing.policy",
        "title": "金堂县公共租赁住房申请指南",
        "body": "申请条件：在本县有稳定工作。\n\n申请材料：身份证明。办理流程：个人申请后审核。",
        "publisher": "金堂县房产管理局",
        "document_number": "金房发〔2026〕3号",
        "formed_on": date(2026, 11, 20),
        "index_number": "11510121009087532X/2026-00001",
        "edition": 1,
        "content_hash": "ab12cd34" + "0" * 56,
    }
    data.update(changes)
    return PreparedItem(**data)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def progress():
    saved = DeliveryProgress()
    token = bind_progress(saved)
    yield saved
    unbind_progress(token)


@pytest.fixture
def make_channel(tmp_path, clock, progress):
    def build(**options) -> WeChatChannel:
        config = WeChatChannel.Config.model_validate({**CONFIG, **options})
        context = ChannelContext(name="wechat", state_dir=tmp_path, clock=clock, read_timeout=1)
        return WeChatChannel(config, context)

    return build


@pytest.fixture
def mock():
    with responses.RequestsMock() as rsps:
        yield rsps


def token_ok(mock, times=1, **body):
    for _ in range(times):
        mock.post(f"{API}/stable_token", json={**TOKEN, **body})


def cover_ok(mock):
    mock.post(f"{API}/material/add_material", json={"media_id": "cover-1", "url": "u"})


def publish_ok(mock):
    token_ok(mock)
    cover_ok(mock)
    mock.post(f"{API}/draft/add", json={"media_id": "draft-1"})
    mock.post(f"{API}/freepublish/submit", json={"errcode": 0, "publish_id": "2247483601"})


def deliver(channel, item=None, previous=None):
    item = item or make_item()
    return channel.deliver(item, channel.render(item), previous)


def wechat_error(errcode: int, errmsg: str = "x") -> dict:
    return {"errcode": errcode, "errmsg": f"{errmsg} rid: 64f0-1a2b"}


# --- the happy path ------------------------------------------------------------------------


def test_deliver_uploads_the_cover_drafts_then_submits(make_channel, mock, progress):
    publish_ok(mock)
    channel = make_channel()
    receipt = deliver(channel)
    assert receipt.status == "publishing"
    assert receipt.data == {"media_id": "draft-1", "publish_id": "2247483601"}
    assert progress.saved["media_id"] == "draft-1"
    assert progress.saved["publish_id"] == "2247483601"
    calls = [c.request for c in mock.calls]
    assert [c.url.split("?")[0].removeprefix(API) for c in calls] == [
        "/stable_token",
        "/material/add_material",
        "/draft/add",
        "/freepublish/submit",
    ]
    token_body = json.loads(calls[0].body)
    assert token_body == {
        "grant_type": "client_credential",
        "appid": "wx1234567890abcdef",
        "secret": SECRET,
        "force_refresh": False,
    }
    assert "type=thumb" in calls[1].url and b'name="media"' in calls[1].body
    sent = json.loads(calls[2].body)["articles"][0]
    assert sent["thumb_media_id"] == "cover-1"
    assert sent["title"] == "金堂县公共租赁住房申请指南"
    # What was sent is the rendition, placeholder filled in.
    rendered = json.loads(channel.render(make_item()).body)["articles"][0]
    assert {**rendered, "thumb_media_id": "cover-1"} == sent
    assert json.loads(calls[3].body) == {"media_id": "draft-1"}


def test_content_comes_from_the_one_html_path(make_channel):
    from gongkai.html import render_body

    item = make_item(body="<b>正文</b> & 表格\n\n| 户主 | 金额 |\n|---|---|\n| 张* | 100 |")
    article = json.loads(make_channel().render(item).body)["articles"][0]
    assert render_body(item.body, item.attachments) in article["content"]
    assert "<p>发布机构：金堂县房产管理局</p>" in article["content"]
    assert "<p>文号：金房发〔2026〕3号</p>" in article["content"]
    assert "成文日期：2026年11月20日" in article["content"]
    assert "第1版 · 校验码 ab12cd34" in article["content"]
    assert article["need_open_comment"] == 0
    assert article["author"] == "金堂县房产管理局"


def test_metadata_is_escaped(make_channel):
    item = make_item(publisher="金堂县<script>alert(1)</script>局")
    article = json.loads(make_channel().render(item).body)["articles"][0]
    assert "<script>" not in article["content"]
    assert "&lt;script&gt;" in article["content"]


def test_render_masks_the_token_and_shows_the_cover(make_channel):
    rendition = make_channel().render(make_item())
    assert SECRET not in rendition.model_dump_json()
    assert rendition.data["endpoint"].endswith("access_token=**********")
    assert rendition.data["cover"] == "housing"
    article = json.loads(rendition.body)["articles"][0]
    assert article["thumb_media_id"] == "<media_id of the housing cover, uploaded when sending>"


def test_content_source_url_from_the_template(make_channel):
    channel = make_channel(content_source_url_template="https://gov.example/gk/{id}-{edition}.html")
    article = json.loads(channel.render(make_item()).body)["articles"][0]
    assert article["content_source_url"] == "https://gov.example/gk/jt-wechat-001-1.html"


def test_a_domain_without_a_cover_gets_the_general_one(make_channel):
    rendition = make_channel().render(make_item(catalog="forestry.notice"))
    assert rendition.data["cover"] == "general"


def test_a_configured_cover_replaces_the_shipped_one(make_channel, mock, tmp_path):
    jpg = tmp_path / "mine.jpg"
    jpg.write_bytes(b"\xff\xd8\xff\xe0" + b"0" * 100)
    publish_ok(mock)
    deliver(make_channel(covers={"housing": str(jpg)}))
    assert b"0" * 100 in mock.calls[1].request.body


def test_an_oversized_cover_is_refused_with_the_fix(make_channel, mock, tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8\xff" + b"0" * 70_000)
    with pytest.raises(PermanentError, match="JPG of at most 64 KB"):
        deliver(make_channel(covers={"housing": str(big)}))
    assert len(mock.calls) == 0  # refused before anything was sent


def test_the_cover_is_uploaded_once_per_domain(make_channel, mock, tmp_path):
    publish_ok(mock)
    mock.post(f"{API}/draft/add", json={"media_id": "draft-2"})
    mock.post(f"{API}/freepublish/submit", json={"errcode": 0, "publish_id": "2"})
    channel = make_channel()
    deliver(channel)
    with_progress = bind_progress(DeliveryProgress())
    try:
        deliver(channel, make_item(id="jt-wechat-002"))
    finally:
        unbind_progress(with_progress)
    uploads = [c for c in mock.calls if "add_material" in c.request.url]
    assert len(uploads) == 1
    # A new process reads the cache file instead of uploading again.
    assert (tmp_path / "wechat" / "wechat-covers.json").is_file()


# --- the token -----------------------------------------------------------------------------


def test_one_token_for_many_deliveries(make_channel, mock):
    token_ok(mock)
    cover_ok(mock)
    for n in range(3):
        mock.post(f"{API}/draft/add", json={"media_id": f"d{n}"})
        mock.post(f"{API}/freepublish/submit", json={"errcode": 0, "publish_id": str(n)})
    channel = make_channel()
    for n in range(3):
        scope = bind_progress(DeliveryProgress())
        try:
            deliver(channel, make_item(id=f"jt-wechat-00{n}"))
        finally:
            unbind_progress(scope)
    assert channel.api.token_fetches == 1
    assert all(
        "access_token=tok-AAAA-1111-bbbb-2222" in c.request.url
        for c in mock.calls
        if "stable_token" not in c.request.url
    )


def test_the_token_is_renewed_before_it_expires(make_channel, mock, clock):
    token_ok(mock, expires_in=7200)
    mock.post(f"{API}/freepublish/get", json={"publish_id": "1", "publish_status": 1})
    token_ok(mock, access_token="tok-second-0000000000")
    mock.post(f"{API}/freepublish/get", json={"publish_id": "1", "publish_status": 1})
    channel = make_channel(token_margin=300)
    receipt = Receipt(status="publishing", data={"publish_id": "1"})
    channel.poll(receipt)
    clock.advance(seconds=7200 - 300 - 1)
    assert channel.api.token() == TOKEN["access_token"]  # still inside the margin
    clock.advance(seconds=2)
    channel.poll(receipt)
    assert channel.api.token_fetches == 2
    assert "tok-second" in mock.calls[-1].request.url


def test_refresh_auth_drops_the_cached_token(make_channel, mock):
    token_ok(mock)
    token_ok(mock, access_token="tok-second-0000000000")
    channel = make_channel()
    channel.api.token()
    channel.refresh_auth()
    assert channel.api.token() == "tok-second-0000000000"


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
def test_a_refused_token_is_refreshed_once_then_the_call_succeeds(make_channel, mock, errcode):
    token_ok(mock)
    mock.post(f"{API}/freepublish/get", json=wechat_error(errcode))
    token_ok(mock, access_token="tok-second-0000000000")
    mock.post(f"{API}/freepublish/get", json={"publish_id": "1", "publish_status": 1})
    channel = make_channel()
    receipt = channel.poll(Receipt(status="publishing", data={"publish_id": "1"}))
    assert receipt.status == "publishing"
    assert "tok-second" in mock.calls[-1].request.url


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
def test_a_token_refused_twice_is_an_auth_error(make_channel, mock, errcode):
    token_ok(mock)
    mock.post(f"{API}/freepublish/get", json=wechat_error(errcode))
    token_ok(mock, access_token="tok-second-0000000000")
    mock.post(f"{API}/freepublish/get", json=wechat_error(errcode))
    with pytest.raises(AuthError, match=str(errcode)) as caught:
        make_channel().poll(Receipt(status="publishing", data={"publish_id": "1"}))
    assert "tok-" not in str(caught.value)


def test_the_same_token_handed_back_is_force_refreshed(make_channel, mock):
    token_ok(mock)
    mock.post(f"{API}/freepublish/get", json=wechat_error(40001))
    token_ok(mock)  # stable_token still believes in it
    token_ok(mock, access_token="tok-forced-0000000000")
    mock.post(f"{API}/freepublish/get", json={"publish_id": "1", "publish_status": 1})
    make_channel().poll(Receipt(status="publishing", data={"publish_id": "1"}))
    forced = json.loads(mock.calls[3].request.body)
    assert forced["force_refresh"] is True


def test_a_wrong_secret_is_an_auth_error_that_says_what_to_fix(make_channel, mock):
    mock.post(f"{API}/stable_token", json=wechat_error(40125, "invalid appsecret"))
    with pytest.raises(AuthError, match="GONGKAI_WECHAT_SECRET") as caught:
        deliver(make_channel())
    assert SECRET not in str(caught.value)


def test_a_lost_token_answer_is_transient(make_channel, mock):
    # Fetching a token twice creates nothing, so a lost answer is simply a blip.
    mock.post(f"{API}/stable_token", body=requests.ReadTimeout())
    with pytest.raises(TransientError):
        deliver(make_channel())


# --- error codes and HTTP statuses ----------------------------------------------------------


def test_busy_is_transient(make_channel, mock):
    token_ok(mock)
    cover_ok(mock)
    mock.post(f"{API}/draft/add", json=wechat_error(-1, "system error"))
    with pytest.raises(TransientError, match="busy"):
        deliver(make_channel())


def test_quota_stops_the_channel_until_midnight_beijing(make_channel, mock, clock):
    token_ok(mock)
    cover_ok(mock)
    mock.post(f"{API}/draft/add", json=wechat_error(45009, "reach max api daily quota limit"))
    with pytest.raises(RateLimited, match="45009") as caught:
        deliver(make_channel())
    # 02:00 UTC is 10:00 in Beijing: 14 hours to go.
    assert caught.value.retry_after == 14 * 3600
    assert seconds_to_midnight(datetime(2026, 11, 26, 15, 59, 30, tzinfo=UTC)) == 60


@pytest.mark.parametrize(
    ("errcode", "words"),
    [
        (53503, "未通过发布检查"),
        (53504, "公众平台"),
        (53505, "请手动保存"),
    ],
)
def test_publishing_refusals_are_permanent_and_readable(
    make_channel, mock, progress, errcode, words
):
    token_ok(mock)
    cover_ok(mock)
    mock.post(f"{API}/draft/add", json={"media_id": "draft-1"})
    mock.post(f"{API}/freepublish/submit", json=wechat_error(errcode))
    with pytest.raises(PermanentError, match=words) as caught:
        deliver(make_channel())
    assert str(errcode) in str(caught.value)
    assert progress.saved["submitting"] is False  # refused: no job exists


def test_an_unknown_media_id_is_permanent(make_channel, mock, progress):
    token_ok(mock)
    mock.post(f"{API}/freepublish/submit", json=wechat_error(40007, "invalid media_id"))
    progress.saved.update(media_id="gone-draft")
    with pytest.raises(PermanentError, match="retry jt-wechat-001"):
        deliver(make_channel())
    assert progress.saved["media_id"] is None  # the next try makes a new draft


def test_a_deleted_cover_is_uploaded_again(make_channel, mock):
    publish_ok(mock)
    channel = make_channel()
    deliver(channel)
    mock.post(f"{API}/draft/add", json=wechat_error(40007, "invalid media_id"))
    scope = bind_progress(DeliveryProgress())
    try:
        with pytest.raises(TransientError, match="uploaded again"):
            deliver(channel, make_item(id="jt-wechat-009"))
        cover_ok(mock)
        mock.post(f"{API}/draft/add", json={"media_id": "draft-9"})
        mock.post(f"{API}/freepublish/submit", json={"errcode": 0, "publish_id": "9"})
        assert deliver(channel, make_item(id="jt-wechat-009")).data["media_id"] == "draft-9"
    finally:
        unbind_progress(scope)


def test_not_authorised_is_permanent(make_channel, mock):
    token_ok(mock)
    cover_ok(mock)
    mock.post(f"{API}/draft/add", json=wechat_error(48001, "api unauthorized"))
    with pytest.raises(PermanentError, match="not authorised"):
        deliver(make_channel())


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, TransientError),
        (500, TransientError),
        (502, OutcomeUnknown),
        (504, OutcomeUnknown),
        (401, AuthError),
        (400, PermanentError),
    ],
)
def test_http_statuses(make_channel, mock, status, expected):
    token_ok(mock)
    cover_ok(mock)
    mock.post(f"{API}/draft/add", status=status, json={})
    with pytest.raises(expected) as caught:
        deliver(make_channel())
    assert caught.value.http_status == status


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (requests.ConnectTimeout(), TransientError),
        (requests.ReadTimeout(), OutcomeUnknown),
        (requests.ConnectionError("Connection refused"), TransientError),
    ],
)
def test_requests_exceptions(make_channel, mock, exc, expected):
    token_ok(mock)
    cover_ok(mock)
    mock.post(f"{API}/draft/add", body=exc)
    with pytest.raises(expected):
        deliver(make_channel())


def test_no_message_quotes_the_token(make_channel, mock):
    token_ok(mock)
    cover_ok(mock)
    mock.post(
        f"{API}/draft/add", body=requests.ReadTimeout(f"{API}/draft/add?access_token=tok-AAAA")
    )
    with pytest.raises(OutcomeUnknown) as caught:
        deliver(make_channel())
    assert "tok-" not in str(caught.value) and "access_token" not in str(caught.value)


# --- WeChat's limits ------------------------------------------------------------------------


def test_a_title_over_32_characters_is_refused_before_sending(make_channel, mock):
    channel = make_channel()
    item = make_item(title="金" * 33)
    rendition = channel.render(item)
    assert rendition.data["refused"]
    with pytest.raises(PermanentError, match="33 characters.*at most 32.*shorten"):
        channel.deliver(item, rendition, None)
    assert len(mock.calls) == 0
    # 32 is fine.
    assert not channel.render(make_item(title="金" * 32)).data["refused"]


def test_the_digest_is_cut_to_128_characters(make_channel):
    item = make_item(body="很长的正文。" * 100)
    article = json.loads(make_channel().render(item).body)["articles"][0]
    assert len(article["digest"]) == 128
    assert article["digest"].endswith("…")
    assert article["digest"].startswith("很长的正文")


def test_content_of_20000_characters_is_refused(make_channel, mock):
    channel = make_channel()
    item = make_item(body="名单" * 10_000)
    with pytest.raises(PermanentError, match="under 20,000"):
        channel.deliver(item, channel.render(item), None)
    assert len(mock.calls) == 0


def test_scripts_never_reach_the_content(make_channel):
    # The safety plugin refuses such a body before publication; the one HTML path
    # would drop it anyway.
    item = make_item(body="正文<script>alert(1)</script>结束")
    article = json.loads(make_channel().render(item).body)["articles"][0]
    assert "<script" not in article["content"] and "alert" not in article["content"]


def test_images_are_refused(make_channel):
    from gongkai.item import Attachment

    attachment = Attachment(title="现场照片", path="photo.jpg", sha256="0" * 64, checked=True)
    item = make_item(body="![现场](photo.jpg)", attachments=(attachment,))
    assert any("image" in p for p in make_channel().render(item).data["refused"])


def test_author_is_limited_to_16_characters():
    with pytest.raises(ValueError):
        WeChatChannel.Config.model_validate({**CONFIG, "author": "金" * 17})


# --- the publish job -------------------------------------------------------------------------

PUBLISHING = Receipt(status="publishing", data={"media_id": "draft-1", "publish_id": "9"})


def job(mock, publish_id="9", token=True, **answer):
    if token:
        token_ok(mock)
    mock.post(
        f"{API}/freepublish/get",
        json={"publish_id": publish_id, **answer},
        match=[matchers.json_params_matcher({"publish_id": publish_id})],
    )


def published(
    mock, publish_id="9", token=True, article_id="art-new", url="https://mp.weixin.qq.com/s/new"
):
    job(
        mock,
        publish_id,
        token,
        publish_status=0,
        article_id=article_id,
        article_detail={"count": 1, "item": [{"idx": 1, "article_url": url}]},
        fail_idx=[],
    )


def test_poll_status_0_is_delivered_with_the_article_url(make_channel, mock):
    published(mock, article_id="art-1", url="https://mp.weixin.qq.com/s/x")
    receipt = make_channel().poll(PUBLISHING)
    assert receipt.status == "delivered"
    assert receipt.url == "https://mp.weixin.qq.com/s/x"
    assert receipt.external_id == "art-1"
    assert receipt.data["article_id"] == "art-1" and receipt.data["publish_id"] == "9"


def test_poll_status_1_is_still_publishing(make_channel, mock):
    job(mock, publish_status=1, fail_idx=[])
    assert make_channel().poll(PUBLISHING) == PUBLISHING


@pytest.mark.parametrize(
    ("status", "words"),
    [(2, "原创声明失败"), (3, "常规失败"), (4, "平台审核不通过")],
)
def test_poll_failures_are_permanent_with_the_reason(make_channel, mock, status, words):
    job(mock, publish_status=status, fail_idx=[1] if status != 3 else [])
    with pytest.raises(PermanentError, match=words) as caught:
        make_channel().poll(PUBLISHING)
    assert f"publish_status {status}" in str(caught.value)


@pytest.mark.parametrize(("status", "words"), [(5, "account deleted"), (6, "banned")])
def test_poll_removed_remotely(make_channel, mock, status, words):
    job(mock, publish_status=status, fail_idx=[])
    with pytest.raises(PermanentError, match=f"removed on WeChat.*{words}"):
        make_channel().poll(PUBLISHING)


def test_a_lost_poll_answer_is_only_a_blip(make_channel, mock):
    token_ok(mock)
    mock.post(f"{API}/freepublish/get", body=requests.ReadTimeout())
    with pytest.raises(TransientError):
        make_channel().poll(PUBLISHING)


# --- resuming a two-step create -------------------------------------------------------------


def test_a_saved_draft_is_submitted_not_drafted_again(make_channel, mock, progress):
    token_ok(mock)
    mock.post(f"{API}/freepublish/submit", json={"errcode": 0, "publish_id": "77"})
    progress.saved.update(media_id="draft-saved")
    receipt = deliver(make_channel())
    assert receipt.data == {"media_id": "draft-saved", "publish_id": "77"}
    assert [c.request.url.split("?")[0] for c in mock.calls][-1] == f"{API}/freepublish/submit"
    assert json.loads(mock.calls[-1].request.body) == {"media_id": "draft-saved"}


def test_a_saved_publish_job_is_followed_without_sending(make_channel, mock, progress):
    progress.saved.update(media_id="draft-saved", publish_id="78", submitting=True)
    receipt = deliver(make_channel())
    assert receipt.data == {"media_id": "draft-saved", "publish_id": "78"}
    assert len(mock.calls) == 0


def batch(entries):
    return {"total_count": len(entries), "item_count": len(entries), "item": entries}


def news(item: PreparedItem, channel: WeChatChannel) -> list[dict]:
    article = json.loads(channel.render(item).body)["articles"][0]
    return [{**article, "url": "https://mp.weixin.qq.com/s/found"}]


def test_a_lost_draft_answer_is_found_before_drafting_again(make_channel, mock, progress):
    channel = make_channel()
    item = make_item()
    token_ok(mock)
    other = make_item(id="jt-other", title="别的公告", index_number="11510121009087532X/2026-00009")
    mock.post(
        f"{API}/draft/batchget",
        json=batch(
            [
                {"media_id": "someone-else", "content": {"news_item": news(other, channel)}},
                {"media_id": "lost-draft", "content": {"news_item": news(item, channel)}},
            ]
        ),
    )
    mock.post(f"{API}/freepublish/submit", json={"errcode": 0, "publish_id": "79"})
    progress.saved.update(drafting=True)
    receipt = deliver(channel, item)
    assert receipt.data["media_id"] == "lost-draft"
    assert not any("draft/add" in c.request.url for c in mock.calls)


def test_a_lost_draft_answer_with_no_draft_found_drafts_once(make_channel, mock, progress):
    publish_ok(mock)
    mock.post(f"{API}/draft/batchget", json=batch([]))
    progress.saved.update(drafting=True)
    assert deliver(make_channel()).data["media_id"] == "draft-1"


def test_reconcile_follows_a_saved_job(make_channel, progress):
    progress.saved.update(media_id="d", publish_id="80", submitting=True)
    receipt = make_channel().reconcile(make_item(), None)
    assert receipt.status == "publishing" and receipt.data["publish_id"] == "80"


def test_reconcile_before_any_submit_lets_core_send_again(make_channel, progress, mock):
    progress.saved.update(media_id="d", submitting=False)
    assert make_channel().reconcile(make_item(), None) is None
    assert len(mock.calls) == 0


def test_reconcile_after_a_lost_submit_finds_the_article(make_channel, progress, mock):
    channel = make_channel()
    item = make_item()
    progress.saved.update(media_id="d", submitting=True)
    token_ok(mock)
    mock.post(
        f"{API}/freepublish/batchget",
        json=batch([{"article_id": "art-found", "content": {"news_item": news(item, channel)}}]),
    )
    receipt = channel.reconcile(item, None)
    assert receipt.status == "delivered"
    assert receipt.external_id == "art-found" and receipt.url == "https://mp.weixin.qq.com/s/found"


def test_reconcile_after_a_lost_submit_that_is_not_found_stays_unknown(
    make_channel, progress, mock
):
    channel = make_channel()
    progress.saved.update(media_id="d", submitting=True)
    token_ok(mock)
    # Another edition of the same item is there: not this one.
    older = make_item(edition=1, content_hash="ffffffff" + "0" * 56)
    mock.post(
        f"{API}/freepublish/batchget",
        json=batch([{"article_id": "art-old", "content": {"news_item": news(older, channel)}}]),
    )
    with pytest.raises(OutcomeUnknown, match="retry --unknown jt-wechat-001"):
        channel.reconcile(make_item(), None)


def test_a_lost_draft_answer_is_looked_up_at_once(make_channel, mock, progress):
    channel = make_channel()
    item = make_item()
    token_ok(mock)
    cover_ok(mock)
    mock.post(f"{API}/draft/add", body=requests.ConnectionError("Connection aborted"))
    mock.post(
        f"{API}/draft/batchget",
        json=batch([{"media_id": "made-anyway", "content": {"news_item": news(item, channel)}}]),
    )
    mock.post(f"{API}/freepublish/submit", json={"errcode": 0, "publish_id": "81"})
    assert deliver(channel, item).data["media_id"] == "made-anyway"
    assert progress.saved["drafting"] is False


def test_a_lost_submit_answer_found_at_once_is_delivered(make_channel, mock, progress):
    channel = make_channel()
    item = make_item()
    publish_ok(mock)
    mock.replace(responses.POST, f"{API}/freepublish/submit", body=requests.ReadTimeout())
    mock.post(
        f"{API}/freepublish/batchget",
        json=batch([{"article_id": "art-quick", "content": {"news_item": news(item, channel)}}]),
    )
    receipt = deliver(channel, item)
    assert receipt.status == "delivered" and receipt.external_id == "art-quick"


def test_a_lost_submit_answer_not_found_is_unknown(make_channel, mock, progress):
    publish_ok(mock)
    mock.replace(responses.POST, f"{API}/freepublish/submit", body=requests.ReadTimeout())
    mock.post(f"{API}/freepublish/batchget", json=batch([]))
    with pytest.raises(OutcomeUnknown):
        deliver(make_channel())
    assert progress.saved["submitting"] is True and "publish_id" not in progress.saved


def lost_at(clock, hours_ago: float):
    from datetime import timedelta

    from gongkai.ledger import AttemptRecord

    when = clock() - timedelta(hours=hours_ago)
    return AttemptRecord("jt-wechat-001", "wechat", 1, "deliver", when, when, "unknown")


def test_a_submit_lost_hours_ago_and_never_published_is_sent_again(
    make_channel, progress, mock, clock
):
    progress.saved.update(media_id="d", submitting=True)
    token_ok(mock)
    mock.post(f"{API}/freepublish/batchget", json=batch([]))
    channel = make_channel()
    with pytest.raises(OutcomeUnknown):
        channel.reconcile(make_item(), lost_at(clock, 5.9))
    assert channel.reconcile(make_item(), lost_at(clock, 6)) is None


def test_reconcile_of_an_edition_takes_the_old_article_down(make_channel, progress, mock):
    channel = make_channel()
    item = make_item(edition=2)
    progress.saved.update(
        media_id="d",
        submitting=True,
        edit={
            "corrects": {"article_id": "art-old", "url": "u"},
            "on_edit": "new-article-delete-old",
        },
    )
    token_ok(mock)
    mock.post(
        f"{API}/freepublish/batchget",
        json=batch([{"article_id": "art-2", "content": {"news_item": news(item, channel)}}]),
    )
    mock.post(
        f"{API}/freepublish/delete",
        json={"errcode": 0},
        match=[matchers.json_params_matcher({"article_id": "art-old", "index": 0})],
    )
    receipt = channel.reconcile(item, None)
    assert receipt.status == "delivered" and receipt.data["old_article"] == "deleted"


# --- edits and withdrawal ------------------------------------------------------------------

PREVIOUS = Receipt(
    status="delivered",
    external_id="art-old",
    url="https://mp.weixin.qq.com/s/old",
    data={"article_id": "art-old", "publish_id": "5", "media_id": "d-old"},
)


def test_an_edition_is_a_new_article_with_a_correction_note(make_channel, mock):
    publish_ok(mock)
    channel = make_channel()
    item = make_item(edition=2)
    rendition = channel.render(item)
    assert "本文为更正版，原文：" in rendition.body  # with a placeholder for the link
    receipt = channel.deliver(item, rendition, PREVIOUS)
    sent = json.loads(mock.calls[2].request.body)["articles"][0]["content"]
    assert (
        '本文为更正版，原文：<a href="https://mp.weixin.qq.com/s/old">'
        "https://mp.weixin.qq.com/s/old</a>" in sent
    )
    assert "第2版" in sent
    assert receipt.data["corrects"] == {
        "article_id": "art-old",
        "url": "https://mp.weixin.qq.com/s/old",
    }
    assert receipt.data["on_edit"] == "new-article-delete-old"


def test_an_edition_with_nothing_earlier_on_wechat_has_no_note(make_channel, mock):
    publish_ok(mock)
    deliver(make_channel(), make_item(edition=2))
    assert "更正" not in json.loads(mock.calls[2].request.body)["articles"][0]["content"]


def test_the_old_article_is_deleted_once_the_new_one_is_up(make_channel, mock):
    published(mock)
    mock.post(
        f"{API}/freepublish/delete",
        json={"errcode": 0, "errmsg": "ok"},
        match=[matchers.json_params_matcher({"article_id": "art-old", "index": 0})],
    )
    receipt = Receipt(
        status="publishing",
        data={**PUBLISHING.data, "corrects": {"article_id": "art-old", "url": "u"}},
    )
    done = make_channel().poll(receipt)
    assert done.status == "delivered" and done.data["old_article"] == "deleted"


def test_keep_old_leaves_it_and_remembers_it_for_withdrawal(make_channel, mock):
    publish_ok(mock)
    channel = make_channel(on_edit="new-article-keep-old")
    receipt = channel.deliver(make_item(edition=2), channel.render(make_item(edition=2)), PREVIOUS)
    assert receipt.data["older_articles"] == ["art-old"]
    published(mock, receipt.data["publish_id"], token=False)
    done = channel.poll(receipt)
    assert done.data["old_article"] == "kept"
    assert not any("delete" in c.request.url for c in mock.calls)
    mock.post(f"{API}/freepublish/delete", json={"errcode": 0})
    mock.post(f"{API}/freepublish/delete", json={"errcode": 0})
    channel.withdraw(make_item(edition=2), done, "信息有误")
    deleted = [
        json.loads(c.request.body)["article_id"] for c in mock.calls if "delete" in c.request.url
    ]
    assert deleted == ["art-old", "art-new"]


def test_an_old_article_that_cannot_be_deleted_is_recorded_not_failed(make_channel, mock):
    published(mock)
    mock.post(f"{API}/freepublish/delete", json=wechat_error(48001, "api unauthorized"))
    receipt = Receipt(
        status="publishing",
        data={**PUBLISHING.data, "corrects": {"article_id": "art-old", "url": "u"}},
    )
    done = make_channel().poll(receipt)
    assert done.status == "delivered"
    assert (
        done.data["old_article"].startswith("left online") and "48001" in done.data["old_article"]
    )


def test_withdraw_deletes_the_article(make_channel, mock):
    token_ok(mock)
    mock.post(
        f"{API}/freepublish/delete",
        json={"errcode": 0, "errmsg": "ok"},
        match=[matchers.json_params_matcher({"article_id": "art-old", "index": 0})],
    )
    assert make_channel().withdraw(make_item(), PREVIOUS, "x").status == "withdrawn"


def test_withdraw_of_an_article_wechat_no_longer_has_is_done(make_channel, mock):
    token_ok(mock)
    mock.post(f"{API}/freepublish/delete", json=wechat_error(53600, "invalid article_id"))
    assert make_channel().withdraw(make_item(), PREVIOUS, "x").status == "withdrawn"


def test_withdraw_while_publishing_waits_for_the_job(make_channel, mock):
    job(mock, publish_status=1)
    with pytest.raises(TransientError, match="still publishing"):
        make_channel().withdraw(make_item(), PUBLISHING, "x")


def test_withdraw_of_a_failed_job_has_nothing_to_take_down(make_channel, mock):
    job(mock, publish_status=3)
    assert make_channel().withdraw(make_item(), PUBLISHING, "x").status == "withdrawn"


# --- the contract --------------------------------------------------------------------------


class TestWeChatContract(ChannelContract):
    channel_class = WeChatChannel
    config = CONFIG
    http = True
    success_json = {
        "errcode": 0,
        "access_token": "tok-contract-0000",
        "expires_in": 7200,
        "media_id": "m-1",
        "publish_id": "p-1",
    }

    @pytest.fixture
    def channel(self, tmp_path):
        """As the suite's, with a token and the cover already known: those two steps
        create nothing that is published, so a lost answer there is transient (tested
        above). The suite's error checks then meet the requests that create: draft/add."""
        context = ChannelContext(
            name="wechat",
            state_dir=tmp_path,
            clock=lambda: datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
            connect_timeout=1,
            read_timeout=1,
        )
        channel = WeChatChannel(WeChatChannel.Config.model_validate(self.config), context)
        channel.api._token = ("tok-contract-0000", datetime(2026, 11, 27, tzinfo=UTC))
        channel._covers.get("housing", (COVERS_DIR / "housing.jpg").read_bytes(), lambda: "c-1")
        scope = bind_progress(DeliveryProgress())
        try:
            yield channel
        finally:
            unbind_progress(scope)
