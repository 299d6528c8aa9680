"""The municipal simulator against docs/municipal-platform.openapi.yaml, checked by
schemathesis: every operation gets generated requests, valid and invalid (a bounded,
derandomized number of them), over real loopback HTTP with the sandbox's known app, and
each answer must be no server error, a status, content type, headers and body the spec
declares; valid requests must not be refused for their form and invalid ones must be."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


def valid_requests_are_not_refused_for_their_form(ctx, response, case) -> None:
    """A request the spec calls valid may meet the platform's state (no such article,
    a file never uploaded, an Idempotency-Key used before for another body, a sha256
    that does not match the bytes) but never a 400 or a field error the spec could have
    said: then the spec and the simulator disagree about the contract."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    status = response.status_code
    assert status != 400, f"the spec calls this request valid, the simulator 400: {response.text}"
    if status != 422:
        return
    answer = json.loads(response.text)
    if answer["code"] == "idempotency_key_reused":
        return
    stateful = [
        e
        for e in answer.get("errors", [])
        if e["field"] == "sha256" or e["field"].endswith("file_id")
    ]
    assert stateful == answer.get("errors"), (
        f"the spec calls this request valid, the simulator refused fields: {response.text}"
    )


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    valid_requests_are_not_refused_for_their_form,
]


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with start(tmp_path_factory.mktemp("sandbox"), names=["municipal"]) as sandbox:
        simulator = next(s for s in sandbox.server.simulators if s.name == "municipal")
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
    assert ("upload", 201) in done and ("lookup", 200) in done
