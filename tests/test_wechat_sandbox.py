"""The WeChat simulator over real loopback HTTP, spoken to with plain ``requests`` as
any third-party client would; then the wechat channel end to end against it, with
faults, and a SIGKILL between draft/add and freepublish/submit."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import tomllib
from datetime import UTC, datetime

import pytest
import requests

from clihelp import EXAMPLES, ROOT, run, start, write_config
from gongkai import Publisher
from gongkai.channels.wechat import COVERS
from gongkai.config import settings_from_dict
from gongkai.errors import TransientError
from gongkai.sandbox import Faults
from gongkai.sandbox import start as start_sandbox
from gongkai.sandbox.wechat import DEFAULT_APPID, DEFAULT_SECRET, WeChatSimulator
from support.fakes import FakeClock, Sleeper

JPG = (COVERS / "land.jpg").read_bytes()


@pytest.fixture
def sandbox(tmp_path, request):
    faults = getattr(request, "param", Faults())
    with start_sandbox(tmp_path, faults, names=["wechat"]) as running:
        yield running


def simulator(sandbox) -> WeChatSimulator:
    return next(s for s in sandbox.server.simulators if s.name == "wechat")


class Client:
    """A minimal third-party client of the documented API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.token = ""

    def fetch_token(self, **body) -> dict:
        answer = requests.post(
            f"{self.url}/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": DEFAULT_APPID,
                "secret": DEFAULT_SECRET,
                "force_refresh": False,
                **body,
            },
            timeout=5,
        ).json()
        self.token = answer.get("access_token", self.token)
        return answer

    def post(self, endpoint: str, body: dict | None = None, **kwargs) -> dict:
        params = {"access_token": self.token, **kwargs.pop("params", {})}
        return requests.post(
            f"{self.url}/cgi-bin/{endpoint}", params=params, json=body, timeout=5, **kwargs
        ).json()

    def thumb(self, data: bytes = JPG, kind: str = "thumb") -> dict:
        return self.post(
            "material/add_material",
            None,
            params={"type": kind},
            files={"media": ("cover.jpg", data, "image/jpeg")},
        )

    def draft(self, **article) -> dict:
        base = {
            "title": "测试公告",
            "content": "<p>正文</p>",
            "thumb_media_id": article.pop("thumb", None),
        }
        return self.post("draft/add", {"articles": [{**base, **article}]})


@pytest.fixture
def client(sandbox) -> Client:
    client = Client(sandbox.url)
    client.fetch_token()
    return client


# --- tokens ----------------------------------------------------------------------------------


def test_stable_token_for_the_default_app(sandbox):
    answer = Client(sandbox.url).fetch_token()
    assert set(answer) == {"access_token", "expires_in"}
    assert answer["expires_in"] == 7200
    again = Client(sandbox.url).fetch_token()
    assert again["access_token"] == answer["access_token"]  # stable: the same token
    forced = Client(sandbox.url).fetch_token(force_refresh=True)
    assert forced["access_token"] != answer["access_token"]


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"secret": "wrong"}, 40125),
        ({"appid": "wx00000000000000000"}, 40013),
        ({"grant_type": "password"}, 40002),
    ],
)
def test_stable_token_refusals(sandbox, body, errcode):
    answer = Client(sandbox.url).fetch_token(**body)
    assert answer["errcode"] == errcode and "rid:" in answer["errmsg"]


def test_the_classic_token_endpoint(sandbox):
    answer = requests.get(
        f"{sandbox.url}/cgi-bin/token",
        params={
            "grant_type": "client_credential",
            "appid": DEFAULT_APPID,
            "secret": DEFAULT_SECRET,
        },
        timeout=5,
    ).json()
    assert answer["expires_in"] == 7200 and answer["access_token"]


@pytest.mark.parametrize(
    ("token", "errcode"), [("", 41001), ("garbage", 40014), ("sbx_unknown", 40001)]
)
def test_calls_need_a_live_token(sandbox, token, errcode):
    client = Client(sandbox.url)
    client.token = token
    assert client.post("draft/add", {"articles": []})["errcode"] == errcode


def test_unknown_paths_and_methods(client):
    assert client.post("no/such/api", {})["errcode"] == 48001
    got = requests.get(
        f"{client.url}/cgi-bin/draft/add", params={"access_token": client.token}, timeout=5
    )
    assert got.json()["errcode"] == 43002


# --- materials and drafts -------------------------------------------------------------------


def test_a_thumb_is_a_jpg_of_at_most_64_kb(client):
    answer = client.thumb()
    assert answer["media_id"] and answer["url"].startswith("https://mmbiz.qpic.cn/")
    assert client.thumb(b"\xff\xd8\xff" + b"0" * (64 * 1024))["errcode"] == 40009
    assert client.thumb(b"\x89PNG\r\n\x1a\n" + b"0" * 100)["errcode"] == 40005
    assert client.thumb(b"\x89PNG\r\n\x1a\n" + b"0" * 100, kind="image")["media_id"]
    assert client.thumb(kind="voice")["errcode"] == 40004


def test_draft_limits(client):
    thumb = client.thumb()["media_id"]
    assert client.draft(thumb=thumb, title="金" * 33)["errcode"] == 45003
    assert client.draft(thumb=thumb, author="金" * 17)["errcode"] == 45110
    assert client.draft(thumb=thumb, digest="金" * 129)["errcode"] == 45004
    assert client.draft(thumb=thumb, content="金" * 20_000)["errcode"] == 45002
    assert client.draft(thumb=None)["errcode"] == 40007
    assert client.draft(thumb="no-such-media")["errcode"] == 40007
    assert client.post("draft/add", {"articles": []})["errcode"] == 44003
    ok = client.draft(thumb=thumb, title="金" * 32, content="金" * 19_999)
    assert set(ok) == {"media_id"}


def test_drafts_are_cleaned_as_wechat_does(client):
    thumb = client.thumb()
    content = (
        '<p>正文</p><script>alert(1)</script><img src="https://evil.example/x.png">'
        f'<img src="{thumb["url"]}">'
    )
    media_id = client.draft(thumb=thumb["media_id"], content=content)["media_id"]
    stored = client.post("draft/get", {"media_id": media_id})["news_item"][0]["content"]
    assert "<script" not in stored and "evil.example" not in stored
    assert thumb["url"] in stored


# --- publishing ------------------------------------------------------------------------------


def publish(client, title="测试公告") -> tuple[str, str]:
    media_id = client.draft(thumb=client.thumb()["media_id"], title=title)["media_id"]
    answer = client.post("freepublish/submit", {"media_id": media_id})
    return media_id, answer.get("publish_id", answer.get("errcode"))


def test_submit_get_batchget_delete(client, sandbox):
    _, publish_id = publish(client)
    status = client.post("freepublish/get", {"publish_id": publish_id})
    assert status["publish_status"] == 0
    article_url = status["article_detail"]["item"][0]["article_url"]
    assert status["article_detail"]["count"] == 1
    page = requests.get(article_url, timeout=5)
    assert page.status_code == 200 and "正文" in page.text
    listed = client.post("freepublish/batchget", {"offset": 0, "count": 20, "no_content": 1})
    assert listed["total_count"] == 1 and listed["item"][0]["article_id"] == status["article_id"]
    assert (
        client.post("freepublish/delete", {"article_id": status["article_id"], "index": 0})[
            "errcode"
        ]
        == 0
    )
    again = client.post("freepublish/delete", {"article_id": status["article_id"], "index": 0})
    assert again["errcode"] == 53600
    assert requests.get(article_url, timeout=5).status_code == 404
    assert client.post("freepublish/get", {"publish_id": publish_id})["publish_status"] == 5
    assert client.post("freepublish/submit", {"media_id": "nope"})["errcode"] == 40007


@pytest.mark.parametrize(
    ("marker", "errcode"),
    [("【审核不通过】", 53503), ("【需官网发表】", 53504), ("【需手动保存】", 53505)],
)
def test_submit_refusals(client, marker, errcode):
    assert publish(client, f"测试{marker}")[1] == errcode


@pytest.mark.parametrize(
    ("marker", "status", "fail_idx"),
    [("【原创失败】", 2, [1]), ("【常规失败】", 3, []), ("【平台审核不通过】", 4, [1])],
)
def test_job_failures(client, marker, status, fail_idx):
    _, publish_id = publish(client, f"测试{marker}")
    answer = client.post("freepublish/get", {"publish_id": publish_id})
    assert answer["publish_status"] == status and answer["fail_idx"] == fail_idx
    assert "article_id" not in answer


@pytest.mark.parametrize("status", [5, 6])
def test_articles_removed_by_the_account_or_banned(client, status):
    _, publish_id = publish(client)
    article_id = client.post("freepublish/get", {"publish_id": publish_id})["article_id"]
    removed = requests.post(
        f"{client.url}/sandbox/wechat/remove",
        json={"article_id": article_id, "publish_status": status},
        timeout=5,
    ).json()
    assert removed["errcode"] == 0
    assert client.post("freepublish/get", {"publish_id": publish_id})["publish_status"] == status


@pytest.mark.parametrize("sandbox", [Faults(slow_jobs=2)], indirect=True)
def test_slow_jobs_stay_publishing_for_n_polls(client):
    _, publish_id = publish(client)
    seen = [
        client.post("freepublish/get", {"publish_id": publish_id})["publish_status"]
        for _ in range(4)
    ]
    assert seen == [1, 1, 0, 0]


@pytest.mark.parametrize("sandbox", [Faults(token_expiry_every=3)], indirect=True)
def test_tokens_die_every_n_calls(client):
    results = [client.post("draft/get", {"media_id": "x"})["errcode"] for _ in range(3)]
    assert results == [40007, 40007, 42001]
    assert client.post("draft/get", {"media_id": "x"})["errcode"] == 42001  # still dead
    client.fetch_token()
    assert client.post("draft/get", {"media_id": "x"})["errcode"] == 40007


@pytest.mark.parametrize("sandbox", [Faults(quota_after=2, quota_calls=2)], indirect=True)
def test_one_quota_episode(client):
    results = [client.post("draft/get", {"media_id": "x"})["errcode"] for _ in range(6)]
    assert results == [40007, 40007, 45009, 45009, 40007, 40007]


def test_state_persists_across_restarts(tmp_path):
    with start_sandbox(tmp_path, names=["wechat"]) as first:
        client = Client(first.url)
        client.fetch_token()
        media_id, _ = publish(client)
    with start_sandbox(tmp_path, names=["wechat"]) as second:
        client.url = second.url
        client.fetch_token()
        assert (
            client.post("draft/get", {"media_id": media_id})["news_item"][0]["title"] == "测试公告"
        )


# --- the channel end to end -----------------------------------------------------------------

SECRET_ENV = "GONGKAI_WECHAT_SECRET"


def wechat_publisher(tmp_path, url, clock, **options):
    data = {
        # One worker: the requests come in one order, so the seeded faults meet the
        # same requests on every machine, however busy.
        "gongkai": {
            "state_dir": str(tmp_path / "state"),
            "org_code": "11510121009087532X",
            "concurrency": 1,
        },
        "channels": {
            "wechat": {
                "every_item": True,
                "base_url": url,
                "appid": DEFAULT_APPID,
                "secret": {"env": SECRET_ENV},
                "read_timeout": 5,
                "concurrency": 1,
                # 30% of answers fail in the e2e: a few more tries within each run.
                "retry": {"attempts": 8, "backoff_initial": 0.01, "backoff_max": 0.1},
                **options,
            }
        },
    }
    settings = settings_from_dict(data, source="test-config.toml", base_dir=tmp_path)
    return Publisher(settings, clock=clock, sleep=Sleeper(), load_entry_points=False)


def wechat_rows(publisher):
    return {r.item_id: r for r in publisher.ledger.rows() if r.channel == "wechat"}


# --- check: `gongkai channels --check` ---------------------------------------------------------


def test_channels_check_fetches_a_token_and_names_what_to_fix(tmp_path, sandbox):
    config = write_config(
        tmp_path,
        f'[channels.wechat]\nbase_url = "{sandbox.url}"\nappid = "{DEFAULT_APPID}"\n'
        'secret = { env = "JT_WX_APPSECRET" }\n',
        archive=False,
    )
    good = run(
        "channels", "--check", "--json", config=config, env={"JT_WX_APPSECRET": DEFAULT_SECRET}
    )
    assert good.returncode == 0, good.stderr
    [wechat] = [d for d in json.loads(good.stdout) if d["name"] == "wechat"]
    assert wechat["check"] == "ok"
    assert [e["path"] for e in simulator(sandbox).log] == ["/cgi-bin/stable_token"]

    wrong = "wrong-appsecret-0123456789abcdef"
    refused = run("channels", "--check", "--json", config=config, env={"JT_WX_APPSECRET": wrong})
    assert refused.returncode == 1, refused.stderr
    [wechat] = [d for d in json.loads(refused.stdout) if d["name"] == "wechat"]
    assert "refused the AppSecret (40125)" in wechat["check"]
    assert "the environment variable JT_WX_APPSECRET" in wechat["check"]
    assert wrong not in refused.stdout + refused.stderr


@pytest.mark.parametrize("sandbox", [Faults(failure_rate=1.0)], indirect=True)
def test_a_busy_wechat_is_could_not_check_not_ok(tmp_path, sandbox, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, DEFAULT_SECRET)
    publisher = wechat_publisher(tmp_path, sandbox.url, FakeClock())
    with pytest.raises(TransientError):
        publisher.channels["wechat"].instance.check()
    found = publisher.check_channels()["wechat"]
    assert found.startswith("could not check (") and found.endswith("; try again later)")
    assert "503" in found
    publisher.close()


def test_an_unreachable_wechat_is_could_not_check(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, DEFAULT_SECRET)
    with socket.socket() as unused:  # a port nobody listens on: connection refused
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    publisher = wechat_publisher(tmp_path, url, FakeClock())
    found = publisher.check_channels()["wechat"]
    assert found.startswith("could not check (") and "try again later" in found
    publisher.close()


@pytest.mark.parametrize(
    "sandbox",
    [
        Faults(
            failure_rate=0.3,
            read_timeout_rate=0.1,
            token_expiry_every=50,
            quota_after=40,
            quota_calls=1,
            slow_jobs=2,
            # With this seed the runs meet every fault above, a draft/add and a submit
            # whose answers are lost, and the quota. Some other seeds need a sixth run:
            # an item the quota deferred whose draft/add answer is then lost takes a
            # run to reconcile, a run to submit and three to poll.
            seed=3,
        )
    ],
    indirect=True,
)
def test_examples_reach_wechat_exactly_once_despite_faults(tmp_path, sandbox, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, DEFAULT_SECRET)
    # After the embargo of the scheduled example, so every item is due.
    clock = FakeClock(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    publisher = wechat_publisher(tmp_path, sandbox.url, clock)
    items, problems = publisher.load(sorted(str(p) for p in EXAMPLES.iterdir() if p.is_file()))
    assert not problems and len(items) == 19
    expected = {entry.item.id for entry in items}
    runs = 0
    while runs < 5:
        runs += 1
        publisher.publish(items)
        rows = wechat_rows(publisher)
        if all(rows[i].state == "delivered" for i in expected):
            break
        clock.advance(days=1)  # past every retry-wait and the quota's midnight
    print(f"every example delivered after {runs} runs")
    rows = wechat_rows(publisher)
    assert {i: rows[i].state for i in expected} == dict.fromkeys(expected, "delivered"), runs

    sim = simulator(sandbox)
    log = sim.log
    # The faults really happened, and the channel went through each path they open.
    codes = [entry["errcode"] for entry in log]
    assert 45009 in codes and 42001 in codes
    attempts = [a for i in expected for a in publisher.ledger.attempts(i, "wechat")]
    errors = [a.error or "" for a in attempts]
    assert any("rate limited; channel paused for this run" in e for e in errors)
    # Which steps lose their answer depends on the dice; that some do is the point.
    assert any("connection dropped" in e for e in errors)
    assert any(a.action == "reconcile" for a in attempts)
    # No duplicate drafts or publish jobs for any item edition.
    assert sim.drafts_per_content() and set(sim.drafts_per_content().values()) == {1}
    assert set(sim.store.data["submits"].values()) == {1}
    # The ledger accounts for every request that changed the remote: every draft and
    # every publish job the simulator made (whether or not its answer reached gongkai)
    # is the one recorded in exactly one delivered item's receipt, and that item's
    # attempt log holds the deliver attempts that sent it. Nothing exists on WeChat
    # that the ledger does not know about.
    created_drafts = [
        e["created"] for e in log if e["path"] == "/cgi-bin/draft/add" and "created" in e
    ]
    created_jobs = [
        e["created"] for e in log if e["path"] == "/cgi-bin/freepublish/submit" and "created" in e
    ]
    receipts = {i: rows[i].receipt for i in expected}
    assert sorted(created_drafts) == sorted(r["data"]["media_id"] for r in receipts.values())
    jobs = sim.store.data["jobs"]
    assert len(created_jobs) == len(expected) == len(jobs)
    for item_id, receipt in receipts.items():
        job = next(j for j in jobs.values() if j["media_id"] == receipt["data"]["media_id"])
        assert job["article_id"] == receipt["external_id"], item_id
        article = sim.store.data["articles"][job["article_id"]]
        assert receipt["url"] == article["news_item"][0]["url"]
        attempts = publisher.ledger.attempts(item_id, "wechat")
        assert any(a.action == "deliver" for a in attempts), item_id
    # Secrets stayed out of the ledger.
    publisher.close()
    ledger = (tmp_path / "state" / "ledger.sqlite3").read_bytes()
    assert DEFAULT_SECRET.encode() not in ledger
    for token in sim.store.data["tokens"]:
        assert token.encode() not in ledger


def test_an_edition_replaces_the_article_and_the_old_one_goes(
    tmp_path, sandbox, monkeypatch, item_factory
):
    monkeypatch.setenv(SECRET_ENV, DEFAULT_SECRET)
    clock = FakeClock()
    publisher = wechat_publisher(tmp_path, sandbox.url, clock)
    first = item_factory(id="jt-edit-001")
    publisher.publish([first])
    publisher.publish([first])  # the job is polled
    old = wechat_rows(publisher)["jt-edit-001"].receipt
    assert old["status"] == "delivered"
    second = item_factory(id="jt-edit-001", body=first.body + "\n\n补充：受理时间延长至12月31日。")
    publisher.publish([second])
    publisher.publish([second])
    row = wechat_rows(publisher)["jt-edit-001"]
    assert row.state == "delivered" and row.edition == 2
    assert row.receipt["data"]["corrects"]["url"] == old["url"]
    assert row.receipt["data"]["old_article"] == "deleted"
    assert requests.get(old["url"], timeout=5).status_code == 404
    page = requests.get(row.receipt["url"], timeout=5).text
    assert "本文为更正版" in page and old["url"] in page and "第2版" in page
    # Withdrawal takes the new one down too.
    publisher.withdraw("jt-edit-001", "信息有误")
    assert requests.get(row.receipt["url"], timeout=5).status_code == 404
    publisher.close()


# --- SIGKILL between draft/add and freepublish/submit ----------------------------------------


def test_sigkill_between_draft_and_submit_publishes_once_from_the_same_draft(tmp_path, sandbox):
    sim = simulator(sandbox)
    config = write_config(
        tmp_path,
        '[plugins]\nload = ["support.wechat_pause"]\n'
        f'[channels.wechat]\nevery_item = true\nbase_url = "{sandbox.url}"\n'
        f'appid = "{DEFAULT_APPID}"\nsecret = {{ env = "{SECRET_ENV}" }}\n',
        archive=False,
    )
    item = EXAMPLES / "06-housing-policy.md"
    paused = tmp_path / "paused"
    env = {SECRET_ENV: DEFAULT_SECRET}
    proc = start(
        "publish", str(item), config=config, env={**env, "GONGKAI_TEST_PAUSE_FILE": str(paused)}
    )
    deadline = time.monotonic() + 60
    while not paused.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert paused.exists(), proc.communicate(timeout=5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    drafts = [e["created"] for e in sim.log if e["path"] == "/cgi-bin/draft/add" and "created" in e]
    assert len(drafts) == 1
    assert not any(e["path"] == "/cgi-bin/freepublish/submit" for e in sim.log)

    rerun = run("publish", str(item), "--json", config=config, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert [
        o["status"] for o in json.loads(rerun.stdout)["outcomes"] if o["channel"] == "wechat"
    ] == ["publishing"]
    run("publish", config=config, env=env)  # polls the job
    status = json.loads(run("status", "--json", config=config, env=env).stdout)
    assert [(r["channel"], r["state"]) for r in status] == [("wechat", "delivered")]
    # Exactly one draft, submitted exactly once: the draft the killed run made.
    assert set(sim.drafts_per_content().values()) == {1}
    assert sim.store.data["submits"] == {drafts[0]: 1}


def test_render_shows_the_payload_with_secrets_masked(tmp_path, sandbox):
    config = write_config(
        tmp_path,
        f'[channels.wechat]\nbase_url = "{sandbox.url}"\nappid = "{DEFAULT_APPID}"\n'
        f'secret = {{ env = "{SECRET_ENV}" }}\n',
        archive=False,
    )
    env = {SECRET_ENV: "a-secret-that-must-not-show"}
    item = EXAMPLES / "06-housing-policy.md"
    shown = run("render", str(item), "--channel", "wechat", config=config, env=env)
    assert shown.returncode == 0, shown.stderr
    payload = json.loads(shown.stdout)
    assert payload["articles"][0]["title"] == "金堂县公共租赁住房申请指南"
    as_json = run("render", str(item), "--channel", "wechat", "--json", config=config, env=env)
    assert "access_token=**********" in as_json.stdout
    for text in (shown.stdout, shown.stderr, as_json.stdout):
        assert "a-secret-that-must-not-show" not in text
    assert not simulator(sandbox).log  # render sends nothing


def test_every_catalogue_domain_has_a_small_jpg_cover():
    catalogue = tomllib.loads((ROOT / "core" / "data" / "catalogue.toml").read_text("utf-8"))
    assert {p.stem for p in COVERS.glob("*.jpg")} == set(catalogue["domains"])
    for path in COVERS.glob("*.jpg"):
        data = path.read_bytes()
        assert data.startswith(b"\xff\xd8\xff") and data.endswith(b"\xff\xd9"), path
        assert len(data) <= 64 * 1024, path
