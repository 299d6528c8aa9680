"""The WeChat simulator driven by wechatpy, a real third-party client of the official
API: its ``WeChatClient`` with the API base pointed at the sandbox on loopback, faults
off, through the whole publishing path (token, permanent image, draft, freepublish,
status, article, deletion) and its own handling of token and quota errors."""

from __future__ import annotations

import io
import re

import pytest
import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import APILimitedException, WeChatClientException

from gongkai.channels.wechat import COVERS
from gongkai.sandbox import Faults
from gongkai.sandbox import start as start_sandbox
from gongkai.sandbox.wechat import DEFAULT_APPID, DEFAULT_SECRET, WeChatSimulator

JPG = (COVERS / "land.jpg").read_bytes()


class SandboxClient(WeChatClient):
    """wechatpy's client on another base URL. ``API_BASE_URL`` moves every API call;
    wechatpy writes the token URL out in full in ``fetch_access_token``, so that one
    method is repeated here with the base URL (its documented extension point)."""

    def __init__(self, base_url: str, secret: str = DEFAULT_SECRET, **kwargs) -> None:
        super().__init__(DEFAULT_APPID, secret, **kwargs)
        self.API_BASE_URL = base_url + "/cgi-bin/"

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


@pytest.fixture
def sandbox(tmp_path, request):
    faults = getattr(request, "param", Faults())
    with start_sandbox(tmp_path, faults, names=["wechat"]) as running:
        yield running


@pytest.fixture
def client(sandbox) -> SandboxClient:
    return SandboxClient(sandbox.url_for("wechat"), timeout=5)


def simulator(sandbox) -> WeChatSimulator:
    return next(s for s in sandbox.server.simulators if s.name == "wechat")


def article(thumb_media_id: str, **changes) -> dict:
    return {
        "title": "关于2026年农村危房改造补助对象的公示",
        "author": "住建局",
        "digest": "公示期为7天",
        "content": "<p>经村民小组评议，现将补助对象公示如下。</p><script>alert(1)</script>",
        "content_source_url": "https://www.jintang.gov.cn/",
        "thumb_media_id": thumb_media_id,
        **changes,
    }


def upload(client: SandboxClient, kind: str = "image") -> dict:
    return client.material.add(kind, ("cover.jpg", io.BytesIO(JPG), "image/jpeg"))


def test_the_whole_publishing_path(client):
    token = client.fetch_access_token()
    assert set(token) == {"access_token", "expires_in"} and token["expires_in"] == 7200

    image = upload(client)
    assert image["media_id"] and image["url"].startswith("https://mmbiz.qpic.cn/")
    thumb = upload(client, "thumb")
    assert thumb["media_id"] != image["media_id"]

    media_id = client.draft.add([article(image["media_id"])])["media_id"]
    draft = client.draft.get(media_id)["news_item"]
    assert draft[0]["title"] == "关于2026年农村危房改造补助对象的公示"
    assert draft[0]["thumb_media_id"] == image["media_id"]
    assert "<script" not in draft[0]["content"]  # WeChat strips scripts
    assert client.draft.count()["total_count"] == 1
    listed = client.draft.batchget(0, 20, 1)
    assert listed["item"][0]["media_id"] == media_id
    assert "content" not in listed["item"][0]["content"]["news_item"][0]

    submitted = client.freepublish.submit(media_id)
    assert submitted["errcode"] == 0 and submitted["publish_id"]
    status = client.freepublish.get(submitted["publish_id"])
    assert status["publish_status"] == 0
    article_id = status["article_id"]
    detail = status["article_detail"]
    assert detail["count"] == 1 and detail["item"][0]["idx"] == 1

    published = client.freepublish.getarticle(article_id)["news_item"]
    assert published[0]["title"] == draft[0]["title"]
    assert published[0]["url"] == detail["item"][0]["article_url"]
    assert published[0]["is_deleted"] is False
    records = client.freepublish.batchget(0, 20)
    assert [r["article_id"] for r in records["item"]] == [article_id]

    assert client.freepublish.delete(article_id)["errcode"] == 0
    assert client.freepublish.get(submitted["publish_id"])["publish_status"] == 5
    with pytest.raises(WeChatClientException) as refused:
        client.freepublish.getarticle(article_id)
    assert refused.value.errcode == 53600
    assert client.freepublish.batchget(0, 20)["total_count"] == 0


def test_the_article_url_serves_the_article_until_it_is_deleted(client):
    image = upload(client)
    second = article(image["media_id"], title="第二篇：补助标准", content="<p>每户三万元</p>")
    media_id = client.draft.add([article(image["media_id"]), second])["media_id"]
    status = client.freepublish.get(client.freepublish.submit(media_id)["publish_id"])
    first_url, second_url = (i["article_url"] for i in status["article_detail"]["item"])

    page = requests.get(first_url, timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    title = re.search(r"<title>(.*?)</title>", page.text).group(1)
    assert title == "关于2026年农村危房改造补助对象的公示"
    assert "第二篇：补助标准" in requests.get(second_url, timeout=5).text

    # Deleting the second article (index counts from 1) leaves the first one up.
    client.freepublish.delete(status["article_id"], index=2)
    assert requests.get(second_url, timeout=5).status_code == 404
    assert requests.get(first_url, timeout=5).status_code == 200
    client.freepublish.delete(status["article_id"])
    assert requests.get(first_url, timeout=5).status_code == 404


def test_draft_update_and_delete(client):
    image = upload(client)
    media_id = client.draft.add([article(image["media_id"])])["media_id"]
    changed = article(image["media_id"], title="更正：补助对象公示")
    assert client.draft.update(media_id, 0, changed)["errcode"] == 0
    assert client.draft.get(media_id)["news_item"][0]["title"] == "更正：补助对象公示"
    with pytest.raises(WeChatClientException) as refused:
        client.draft.update(media_id, 1, changed)
    assert refused.value.errcode == 47001

    assert client.draft.delete(media_id)["errcode"] == 0
    assert client.draft.count()["total_count"] == 0
    with pytest.raises(WeChatClientException) as refused:
        client.draft.get(media_id)
    assert refused.value.errcode == 40007


def test_wechatpy_refreshes_a_refused_token_by_itself(sandbox):
    # A token wechatpy was handed and WeChat does not know: 40014, which wechatpy
    # answers by fetching a token and sending the call again.
    client = SandboxClient(sandbox.url_for("wechat"), access_token="not-a-token", timeout=5)
    assert client.draft.count()["total_count"] == 0
    assert client.access_token.startswith("sbx_")
    calls = [(e["path"], e["errcode"]) for e in simulator(sandbox).log]
    assert calls == [
        ("/cgi-bin/draft/count", 40014),
        ("/cgi-bin/token", 0),
        ("/cgi-bin/draft/count", 0),
    ]


def test_a_wrong_secret_is_40001_on_the_classic_token_endpoint(sandbox):
    client = SandboxClient(sandbox.url_for("wechat"), secret="not-the-secret", timeout=5)
    with pytest.raises(WeChatClientException) as refused:
        client.fetch_access_token()
    assert refused.value.errcode == 40001


@pytest.mark.parametrize("sandbox", [Faults(quota_after=1, quota_calls=1)], indirect=True)
def test_the_daily_quota_is_wechatpys_api_limited(client):
    assert client.draft.count()["total_count"] == 0
    with pytest.raises(APILimitedException) as limited:
        client.draft.count()
    assert limited.value.errcode == 45009


def test_wechatpy_and_stable_token_keep_their_own_tokens(sandbox, client):
    """A service that runs wechatpy (classic tokens) beside gongkai (stable tokens) on
    one account: stable_token neither hands out nor kills the classic endpoint's token."""

    def stable_token(force_refresh: bool = False) -> str:
        return requests.post(
            f"{sandbox.url}/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": DEFAULT_APPID,
                "secret": DEFAULT_SECRET,
                "force_refresh": force_refresh,
            },
            timeout=5,
        ).json()["access_token"]

    classic = client.fetch_access_token()["access_token"]
    stable = stable_token()
    assert stable != classic
    assert stable_token(force_refresh=True) != stable
    client.draft.count()
    calls = [(e["path"], e["errcode"]) for e in simulator(sandbox).log]
    assert calls[-1] == ("/cgi-bin/draft/count", 0)  # the classic token still works


def test_content_images_and_permanent_materials(client):
    # An image for the article's content goes to media/uploadimg: its URL stays in the
    # content, while an image from anywhere else is dropped, as WeChat does.
    url = client.media.upload_image(("figure.jpg", io.BytesIO(JPG), "image/jpeg"))
    assert url.startswith("https://mmbiz.qpic.cn/")
    image = upload(client)
    content = f'<p>现场照片：</p><img src="{url}"><img src="https://example.com/x.jpg">'
    media_id = client.draft.add([article(image["media_id"], content=content)])["media_id"]
    kept = client.draft.get(media_id)["news_item"][0]["content"]
    assert url in kept and "example.com" not in kept
    with pytest.raises(WeChatClientException) as refused:
        client.media.upload_image(("notes.txt", io.BytesIO(b"not a picture"), "text/plain"))
    assert refused.value.errcode == 40005

    assert client.material.get_count()["image_count"] == 1
    assert client.material.delete(image["media_id"])["errcode"] == 0
    assert client.material.get_count()["image_count"] == 0
    with pytest.raises(WeChatClientException) as refused:
        client.material.delete(image["media_id"])
    assert refused.value.errcode == 40007
