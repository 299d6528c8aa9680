"""The municipal platform's simulator over real loopback HTTP, spoken to as a third-party
client would, every answer checked against docs/municipal-platform.openapi.yaml; and
``gongkai publish`` of the shipped examples against it with faults injected."""

from __future__ import annotations

import json
import shutil
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from gongkai import Publisher
from gongkai import attempt as attempt_module
from gongkai.config import settings_from_dict
from gongkai.sandbox import Faults, start
from gongkai.sandbox.municipal import DEFAULT_APP_SECRET, MunicipalSimulator

ROOT = Path(__file__).parent.parent
SPEC = yaml.safe_load((ROOT / "docs" / "municipal-platform.openapi.yaml").read_text("utf-8"))
EXAMPLES = ROOT / "examples" / "items"
CREDENTIALS = {"app_key": "sandbox-app", "app_secret": DEFAULT_APP_SECRET}


def resolve(node: dict) -> dict:
    while "$ref" in node:
        target = SPEC
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def check_schema(value, schema: dict, where: str) -> None:
    """The parts of JSON Schema the contract uses: required keys, types of objects
    and arrays, recursively."""
    schema = resolve(schema)
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if value is None:
        assert "null" in kinds, f"{where}: null where {kinds} is required"
        return
    if "object" in kinds:
        assert isinstance(value, dict), f"{where}: not an object"
        for key in schema.get("required", []):
            assert key in value, f"{where}: required '{key}' missing"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                check_schema(value[key], sub, f"{where}.{key}")
    elif "array" in kinds:
        assert isinstance(value, list), f"{where}: not an array"
        for n, element in enumerate(value):
            check_schema(element, schema["items"], f"{where}[{n}]")
    elif "integer" in kinds:
        assert isinstance(value, int), f"{where}: not an integer"
    elif "string" in kinds:
        assert isinstance(value, str), f"{where}: not a string"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"


def conforms(response: requests.Response, template: str, method: str) -> dict:
    """Assert the answer is one the contract documents for this operation."""
    operation = SPEC["paths"][template][method.lower()]
    documented = operation["responses"]
    status = str(response.status_code)
    assert status in documented, f"{method} {template}: {status} is not in the contract"
    answer = resolve(documented[status])
    schema = answer["content"]["application/json"]["schema"]
    body = response.json()
    check_schema(body, schema, f"{method} {template} {status}")
    for header in answer.get("headers", {}):
        if header == "Retry-After":
            assert header in response.headers
    return body


class Client:
    """A third-party client of the platform: requests, nothing from gongkai."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.token = ""

    def login(self, **credentials: str) -> requests.Response:
        response = self.session.post(
            f"{self.base}/api/v1/auth/token", json=credentials or CREDENTIALS, timeout=5
        )
        if response.status_code == 200:
            self.token = response.json()["access_token"]
        return response

    def send(self, method: str, path: str, key: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        if key:
            headers["Idempotency-Key"] = key
        return self.session.request(method, self.base + path, headers=headers, timeout=5, **kwargs)


def article(external_id: str = "jt-x-001", edition: int = 1, **changes) -> dict:
    return {
        "external_id": external_id,
        "edition": edition,
        "content_hash": f"{edition:064d}",
        "title": "关于某村征地补偿安置方案的公告",
        "content_html": "<p>正文</p>",
        "publisher": "金堂县规划和自然资源局",
        "formed_on": "2026-11-20",
        "kind": "发布",
        **changes,
    }


@pytest.fixture
def sandbox(tmp_path):
    with start(tmp_path, Faults(), names=["municipal"]) as running:
        yield running


@pytest.fixture
def client(sandbox) -> Client:
    client = Client(sandbox.url_for("municipal"))
    conforms(client.login(), "/api/v1/auth/token", "POST")
    return client


def simulator(sandbox) -> MunicipalSimulator:
    return next(s for s in sandbox.server.simulators if s.name == "municipal")


# --- the contract, as a third-party client meets it ------------------------------------------


def test_wrong_credentials_and_missing_tokens_are_401(sandbox):
    client = Client(sandbox.url_for("municipal"))
    refused = client.login(app_key="sandbox-app", app_secret="wrong")
    assert conforms(refused, "/api/v1/auth/token", "POST")["code"] == "invalid_credentials"
    answer = client.send("GET", "/api/v1/articles", params={"external_id": "x"})
    assert conforms(answer, "/api/v1/articles", "GET")["code"] == "invalid_token"


def test_create_replay_and_conflicts(sandbox, client):
    path = "/api/v1/columns/jt-zdbc/articles"
    created = client.send("POST", path, "k-1", json=article())
    first = conforms(created, "/api/v1/columns/{column_id}/articles", "POST")
    assert created.status_code == 201 and first["column_id"] == "jt-zdbc"
    replay = client.send("POST", path, "k-1", json=article())
    assert replay.status_code == 201 and replay.json() == first
    assert replay.headers["Idempotent-Replayed"] == "true"
    reused = client.send("POST", path, "k-1", json=article(title="另一个标题"))
    assert reused.status_code == 422
    assert conforms(reused, "/api/v1/columns/{column_id}/articles", "POST")["code"] == (
        "idempotency_key_reused"
    )
    again = client.send("POST", path, "k-2", json=article(edition=2))
    body = conforms(again, "/api/v1/columns/{column_id}/articles", "POST")
    assert again.status_code == 409 and body["code"] == "external_id_exists"
    assert body["article_id"] == first["article_id"]
    assert simulator(sandbox).creates == {"jt-x-001": 1}
    assert len(simulator(sandbox).articles("jt-zdbc")) == 1


def test_create_needs_a_key_and_every_required_field(client):
    path = "/api/v1/columns/jt-zdbc/articles"
    missing_key = client.send("POST", path, json=article())
    assert conforms(missing_key, "/api/v1/columns/{column_id}/articles", "POST")["code"] == (
        "bad_request"
    )
    incomplete = article(title="", formed_on="2026-13-40")
    del incomplete["publisher"]
    refused = client.send("POST", path, "k-3", json=incomplete)
    body = conforms(refused, "/api/v1/columns/{column_id}/articles", "POST")
    assert refused.status_code == 422 and body["code"] == "validation_failed"
    assert {e["field"] for e in body["errors"]} == {"title", "publisher", "formed_on"}
    assert "title" in body["message"]
    ghost = client.send(
        "POST", path, "k-4", json=article(attachments=[{"file_id": "F9", "title": "x"}])
    )
    assert ghost.json()["errors"][0]["field"] == "attachments[0].file_id"
    not_json = client.send("POST", path, "k-5", data=b"{")
    assert not_json.status_code == 400


def test_update_only_goes_forward(client):
    created = client.send("POST", "/api/v1/columns/c1/articles", "k-1", json=article()).json()
    path = f"/api/v1/articles/{created['article_id']}"
    newer = client.send("PUT", path, "u-2", json=article(edition=2, title="更正"))
    assert conforms(newer, "/api/v1/articles/{article_id}", "PUT")["edition"] == 2
    same = client.send("PUT", path, "u-2b", json=article(edition=2, title="更正"))
    assert same.status_code == 200
    older = client.send("PUT", path, "u-1", json=article(edition=1))
    assert conforms(older, "/api/v1/articles/{article_id}", "PUT")["code"] == "stale_edition"
    clash = client.send("PUT", path, "u-3", json=article(edition=2, content_hash="f" * 64))
    assert clash.json()["code"] == "edition_conflict"
    missing = client.send("PUT", "/api/v1/articles/A9", "u-4", json=article(edition=3))
    assert conforms(missing, "/api/v1/articles/{article_id}", "PUT")["code"] == (
        "article_not_found"
    )


def test_lookup_withdraw_and_the_public_page(client):
    created = client.send("POST", "/api/v1/columns/c1/articles", "k-1", json=article()).json()
    found = client.send("GET", "/api/v1/articles", params={"external_id": "jt-x-001"})
    items = conforms(found, "/api/v1/articles", "GET")["items"]
    assert [(a["edition"], a["content_hash"]) for a in items] == [(1, f"{1:064d}")]
    assert requests.get(created["url"], timeout=5).status_code == 200
    path = f"/api/v1/articles/{created['article_id']}/withdraw"
    refused = client.send("POST", path, json={"reason": ""})
    assert conforms(refused, "/api/v1/articles/{article_id}/withdraw", "POST")["code"] == (
        "validation_failed"
    )
    done = client.send("POST", path, json={"reason": "信息有误"})
    body = conforms(done, "/api/v1/articles/{article_id}/withdraw", "POST")
    assert body["status"] == "withdrawn" and body["withdrawn_reason"] == "信息有误"
    assert client.send("POST", path, json={"reason": "信息有误"}).status_code == 200
    page = requests.get(created["url"], timeout=5)
    assert page.status_code == 410 and "信息有误" in page.text
    gone = client.send("POST", "/api/v1/articles/A404/withdraw", json={"reason": "x"})
    assert conforms(gone, "/api/v1/articles/{article_id}/withdraw", "POST")["code"] == (
        "article_not_found"
    )
    none = client.send("GET", "/api/v1/articles", params={"external_id": "nobody"})
    assert conforms(none, "/api/v1/articles", "GET") == {"items": []}


def test_upload_answers_the_same_file_for_a_repeated_key(sandbox, client):
    files = {"file": ("补偿标准.csv", "户主,金额\n".encode(), "text/csv")}
    first = client.send("POST", "/api/v1/files", "f-1", files=files)
    body = conforms(first, "/api/v1/files", "POST")
    assert first.status_code == 201 and body["filename"] == "补偿标准.csv"
    again = client.send("POST", "/api/v1/files", "f-1", files=files)
    assert again.json()["file_id"] == body["file_id"]
    wrong = client.send("POST", "/api/v1/files", "f-2", files=files, data={"sha256": "0" * 64})
    assert conforms(wrong, "/api/v1/files", "POST")["code"] == "validation_failed"
    assert len(simulator(sandbox).store.data["files"]) == 1


def test_columns_and_apps_the_platform_restricts(sandbox, client):
    sim = simulator(sandbox)
    sim.store.data["columns"] = ["c1"]
    unknown = client.send("POST", "/api/v1/columns/c2/articles", "k-1", json=article())
    assert conforms(unknown, "/api/v1/columns/{column_id}/articles", "POST")["code"] == (
        "column_not_found"
    )
    sim.add_app("town-app", "town-secret", columns=["c9"])
    town = Client(sandbox.url_for("municipal"))
    town.login(app_key="town-app", app_secret="town-secret")
    refused = town.send("POST", "/api/v1/columns/c1/articles", "k-2", json=article())
    assert refused.status_code == 403
    assert conforms(refused, "/api/v1/columns/{column_id}/articles", "POST")["code"] == "forbidden"


def test_tokens_expire_every_n_calls_and_quota_answers_429(tmp_path):
    with start(
        tmp_path, Faults(token_expiry_every=3, quota_after=4, quota_calls=1), names=["municipal"]
    ) as running:
        client = Client(running.url_for("municipal"))
        client.login()
        statuses = [
            client.send("GET", "/api/v1/articles", params={"external_id": "x"}).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 401, 401]  # the third call kills the token
        client.login()
        limited = client.send("GET", "/api/v1/articles", params={"external_id": "x"})
        assert conforms(limited, "/api/v1/articles", "GET")["code"] == "rate_limited"
        assert limited.headers["Retry-After"] == "1"


def test_state_persists_across_restarts(tmp_path):
    with start(tmp_path, names=["municipal"]) as running:
        client = Client(running.url_for("municipal"))
        client.login()
        client.send("POST", "/api/v1/columns/c1/articles", "k-1", json=article())
    with start(tmp_path, names=["municipal"]) as running:
        client = Client(running.url_for("municipal"))
        client.login()
        replay = client.send("POST", "/api/v1/columns/c1/articles", "k-1", json=article())
        assert replay.headers.get("Idempotent-Replayed") == "true"
        assert simulator(running).creates == {"jt-x-001": 1}


# --- gongkai publish against the simulator, with faults ---------------------------------------

FAULTS = Faults(failure_rate=0.3, read_timeout_rate=0.1, token_expiry_every=50, seed=20261126)


class Accounting:
    """Records every request the channel sends, and which action (one call of core's
    retry loop, which the ledger logs as one attempt) sent it."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.lock = threading.Lock()
        #: One per action: [item id, action, [(op, status or exception name)]].
        self.actions: list[list] = []
        #: Requests sent outside any action (the token check() asks for).
        self.outside: list[tuple[str, object]] = []

    def wrap_retry(self, original):
        def call_with_retry(action, policy, **kwargs):
            record = [None, None, []]
            with self.lock:
                self.actions.append(record)
            self.local.current = record
            try:
                return original(action, policy, **kwargs)
            finally:
                self.local.current = None

        return call_with_retry

    def instrument(self, publisher: Publisher) -> None:
        channel = publisher.channels["platform"].instance
        for method in ("deliver", "reconcile", "withdraw"):
            original = getattr(channel, method)

            def tagged(item, *args, _original=original, _method=method):
                record = getattr(self.local, "current", None)
                if record is not None:
                    assert record[0] in (None, item.id), "one action, one item"
                    record[0], record[1] = item.id, _method
                return _original(item, *args)

            setattr(channel, method, tagged)
        session = channel.api.session
        send = session.request

        def request(method, url, **kwargs):
            op = operation(method, url)
            record = getattr(self.local, "current", None)
            try:
                response = send(method, url, **kwargs)
            except requests.RequestException as exc:
                outcome: object = type(exc).__name__
                raise
            else:
                outcome = response.status_code
                if response.status_code == 503 and "injected" in response.text:
                    outcome = "injected-503"
                return response
            finally:
                with self.lock:
                    if record is None:
                        self.outside.append((op, outcome))
                    else:
                        record[2].append((op, outcome))

        session.request = request


def operation(method: str, url: str) -> str:
    path = url.split("/municipal", 1)[1].split("?")[0]
    if path == "/api/v1/auth/token":
        return "token"
    if path == "/api/v1/files":
        return "upload"
    if path == "/api/v1/articles":
        return "lookup"
    if path.endswith("/withdraw"):
        return "withdraw"
    return "create" if method == "POST" else "update"


def correct(folder: Path) -> None:
    """A second edition of every item: a correction added to its body."""
    for path in folder.iterdir():
        if path.suffix == ".md":
            path.write_text(path.read_text("utf-8") + "\n（本文已更正。）\n", "utf-8")
        elif path.suffix == ".json":
            record = json.loads(path.read_text("utf-8"))
            record["body"] += "\n（本文已更正。）"
            path.write_text(json.dumps(record, ensure_ascii=False), "utf-8")


def test_publish_examples_through_faults(tmp_path, monkeypatch):
    """30% injected 503s, 10% answers dropped after the work is done, a token dying
    every 50 calls: within 5 runs every example is on the platform once; a correction
    of each is an update within 5 runs, and so is taking each down.

    "The attempt log accounts for every request" means, exactly:
    1. every request the channel sent was sent by an action (a call of core's retry
       loop), except the token requests of the once-per-run check();
    2. the ledger logged one attempt per action, for the same item and action;
    3. every request the channel sent either reached the simulator (which logs each
       one it handles, including those whose answer the server then dropped) or was
       answered by the server's injected 503, so per operation
       sent = handled by the simulator + injected 503s.
    """
    monkeypatch.setenv("GONGKAI_MUNICIPAL_SECRET", DEFAULT_APP_SECRET)
    items = tmp_path / "items"
    shutil.copytree(EXAMPLES, items)
    accounting = Accounting()
    monkeypatch.setattr(
        attempt_module, "call_with_retry", accounting.wrap_retry(attempt_module.call_with_retry)
    )
    clock_now = [datetime(2026, 12, 1, 2, 0, tzinfo=UTC)]
    with start(tmp_path, FAULTS, names=["municipal"]) as running:
        settings = settings_from_dict(
            {
                "gongkai": {"state_dir": str(tmp_path / "state"), "org_code": "11510121009087532X"},
                "channels": {
                    "platform": {
                        "every_item": True,
                        "base_url": running.url_for("municipal"),
                        "app_key": "sandbox-app",
                        "app_secret": {"env": "GONGKAI_MUNICIPAL_SECRET"},
                        "default_column": "jt-qita",
                        "columns": {"land": "jt-tdzs", "poverty": "jt-shjz"},
                        "retry": {"attempts": 8, "backoff_initial": 0.001, "backoff_max": 0.01},
                    }
                },
            },
            source="test-config.toml",
            base_dir=tmp_path,
        )

        def rounds(step, done_state: str) -> tuple[int, set[str], set[str]]:
            """Up to 5 runs of ``step`` (each one a new process, as cron starts),
            until every item's row is in ``done_state``."""
            for run in range(1, 6):  # noqa: B007 - returned
                publisher = Publisher(
                    settings,
                    clock=lambda: clock_now[0],
                    sleep=lambda seconds: None,
                    load_entry_points=False,
                )
                accounting.instrument(publisher)
                step(publisher)
                rows = publisher.ledger.rows()
                ids = {r.item_id for r in rows}
                done = {r.item_id for r in rows if r.state == done_state}
                logged[:] = [a for i in ids for a in publisher.ledger.attempts(i, "platform")]
                publisher.close()
                if done == ids:
                    break
                # cron's next run, later: rows in retry-wait are due again
                clock_now[0] += timedelta(hours=3)
            return run, ids, done

        def publish(publisher: Publisher) -> None:
            result = publisher.publish_paths([items])
            assert not result.problems, result.problems

        def withdraw(publisher: Publisher) -> None:
            for row in publisher.ledger.rows():
                if row.state != "withdrawn":
                    publisher.withdraw(row.item_id, "信息有误，撤回")

        logged: list = []
        runs, ids, delivered = rounds(publish, "delivered")
        sim = simulator(running)
        creates, articles = sim.creates, sim.articles()
        correct(items)
        update_runs, _, updated = rounds(publish, "delivered")
        editions = {a["external_id"]: a["edition"] for a in sim.articles()}
        withdrawal_runs, _, withdrawn = rounds(withdraw, "withdrawn")

    examples = {p.stem for p in EXAMPLES.iterdir() if p.is_file()}
    assert len(ids) == len(examples) == 19
    assert delivered == ids, f"not delivered after {runs} runs: {ids - delivered}"
    # No duplicate creates: one article per item, each created once.
    assert creates == dict.fromkeys(ids, 1)
    assert sorted(a["external_id"] for a in articles) == sorted(ids)
    assert {a["column_id"] for a in articles} >= {"jt-tdzs", "jt-shjz", "jt-qita"}
    # A correction of every item updates its article: no create, edition 2.
    assert updated == ids, f"not updated after {update_runs} runs"
    assert editions == dict.fromkeys(ids, 2)
    # Taking them all down goes through the same faults.
    assert withdrawn == ids, f"not withdrawn after {withdrawal_runs} runs"
    assert {a["status"] for a in sim.articles()} == {"withdrawn"} and sim.creates == creates

    # 1. every request belongs to an action, bar check()'s token requests
    assert {op for op, _ in accounting.outside} <= {"token"}
    assert len(accounting.outside) <= runs + update_runs + withdrawal_runs
    actions = [a for a in accounting.actions if a[0] is not None]
    assert len(actions) == len(accounting.actions), "an action that called no channel method"
    # 2. one logged attempt per action, same item and action
    logged_actions = Counter((a.item_id, a.action) for a in logged if a.started_at is not None)
    assert Counter((a[0], a[1]) for a in actions) == logged_actions
    # 3. sent = handled + injected 503s, per operation
    sent = Counter(op for a in actions for op, _ in a[2]) + Counter(
        op for op, _ in accounting.outside
    )
    injected = Counter(
        op for a in actions for op, outcome in a[2] if outcome == "injected-503"
    ) + Counter(op for op, outcome in accounting.outside if outcome == "injected-503")
    handled = Counter(entry["op"] for entry in sim.log)
    assert sent == handled + injected
    # The faults really happened.
    outcomes = Counter(outcome for a in actions for _, outcome in a[2])
    assert outcomes["injected-503"] and outcomes["ConnectionError"]
    assert any(entry["status"] == 401 for entry in sim.log), "no token expired"
