"""The municipal simulator against docs/municipal-platform.openapi.yaml, checked by
schemathesis: every operation gets generated requests, valid and invalid (a bounded,
derandomized number of them), over real loopback HTTP with the sandbox's known app, and
each answer must be no server error, a status, content type, headers and body the spec
declares; valid requests must not be refused for their form and invalid ones must be."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gongkai.sandbox import start
from gongkai.sandbox.municipal import DEFAULT_APP_KEY, DEFAULT_APP_SECRET, MunicipalSimulator

SPEC = Path(__file__).parent.parent / "docs" / "municipal-platform.openapi.yaml"
TOKEN_PATH = "/api/v1/auth/token"


#: Fields a request valid by the spec can still get wrong against the platform's state:
#: a sha256 that does not match the bytes, a file never uploaded, an external_id that
#: is not the article's.
STATEFUL_FIELDS = re.compile(r"^(sha256|external_id|attachments\[\d+\]\.file_id)$")


def valid_requests_are_not_refused_for_their_form(ctx, response, case) -> None:
    """A request the spec calls valid may meet the platform's state (no such article,
    an Idempotency-Key used before for another body, the STATEFUL_FIELDS) but never a
    400 or a field error the spec could have said: then spec and simulator disagree."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    status = response.status_code
    assert status != 400, f"the spec calls this request valid, the simulator 400: {response.text}"
    if status != 422:
        return
    answer = json.loads(response.text)
    if answer["code"] == "idempotency_key_reused":
        return
    form = [e for e in answer.get("errors", []) if not STATEFUL_FIELDS.match(e["field"])]
    assert not form, f"the spec calls this request valid, the simulator refused: {response.text}"


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    valid_requests_are_not_refused_for_their_form,
]


def publish_the_example_article(base_url: str) -> None:
    """The article the spec's examples name (A00000001 in column jt-qita), so that the
    requests built from them meet an article that exists."""
    token = requests.post(
        base_url + TOKEN_PATH,
        json={"app_key": DEFAULT_APP_KEY, "app_secret": DEFAULT_APP_SECRET},
        timeout=5,
    ).json()["access_token"]
    created = requests.post(
        base_url + "/api/v1/columns/jt-qita/articles",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "example-article"},
        json={
            "external_id": "jt-example-001",
            "edition": 1,
            "content_hash": "0" * 64,
            "title": "金堂县公共租赁住房申请指南",
            "content_html": "<p>申请条件：在本县有稳定工作。</p>",
            "publisher": "金堂县房产管理局",
            "formed_on": "2026-11-20",
        },
        timeout=5,
    )
    assert created.status_code == 201 and created.json()["article_id"] == "A00000001"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with start(tmp_path_factory.mktemp("sandbox"), names=["municipal"]) as sandbox:
        simulator = next(s for s in sandbox.server.simulators if s.name == "municipal")
        publish_the_example_article(sandbox.url_for("municipal"))
        yield sandbox.url_for("municipal"), simulator


@pytest.fixture
def contract(platform):
    base_url, _ = platform
    # schemathesis fetches the token itself, as the spec's bearer scheme says, so that
    # the requests it sends without one on purpose go without one.
    token = {
        "path": TOKEN_PATH,
        "payload": {"app_key": DEFAULT_APP_KEY, "app_secret": DEFAULT_APP_SECRET},
        "extract_selector": "/access_token",
    }
    config = SchemathesisConfig.from_dict(
        {"base-url": base_url, "auth": {"dynamic": {"openapi": {"bearer": token}}}}
    )
    return schemathesis.openapi.from_path(SPEC, config=config)


schema = schemathesis.pytest.from_fixture("contract")


@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_the_contract(case, platform):
    case.call_and_validate(checks=CHECKS, timeout=5)


def test_the_generated_requests_reached_every_operation(platform):
    """Runs after the contract test in this module: every operation was exercised, with
    answers the simulator produced (not only refusals at the door)."""
    _, simulator = platform
    assert isinstance(simulator, MunicipalSimulator)
    done = {(entry["op"], entry["status"]) for entry in simulator.log}
    for op in ("token", "upload", "create", "lookup", "get", "update", "withdraw"):
        assert any(o == op for o, _ in done), f"schemathesis never reached {op}"
    assert {("upload", 201), ("lookup", 200), ("get", 200), ("withdraw", 200)} <= done
