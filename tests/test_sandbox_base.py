"""The sandbox's server: routing to simulators by mount, injected faults, persistence,
and channels whose base_url is "sandbox"."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest
import requests
from pydantic import BaseModel, ConfigDict

from gongkai import Channel, Receipt, Rendition
from gongkai.http import classify_exception
from gongkai.sandbox import Faults, Request, Response, Sandbox, SandboxServer, Store
from gongkai.sandbox import start as start_sandbox


class Echo:
    """A simulator that counts what it handles and remembers it in its store."""

    name: ClassVar[str] = "echo"
    mount: ClassVar[str] = "/echo"

    def __init__(self, folder, faults):
        self.store = Store(folder, "echo")
        self.store.data.setdefault("handled", 0)

    def handle(self, request: Request) -> Response:
        with self.store.lock:
            self.store.data["handled"] += 1
            self.store.save()
        return Response.json({"path": request.path, "x": request.arg("x"), "body": request.json()})


class Root(Echo):
    name: ClassVar[str] = "root"
    mount: ClassVar[str] = ""


def serve(tmp_path, faults=None, simulators=None):
    faults = faults or Faults()
    simulators = simulators or [Echo(tmp_path, faults), Root(tmp_path / "root", faults)]
    server = SandboxServer(simulators, faults)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return Sandbox(server, thread)


def test_requests_reach_the_simulator_of_their_mount(tmp_path):
    with serve(tmp_path) as sandbox:
        answer = requests.post(sandbox.url + "/echo/a/b?x=1", json={"k": "值"}, timeout=5)
        assert answer.json() == {"path": "/a/b", "x": "1", "body": {"k": "值"}}
        assert requests.get(sandbox.url + "/cgi-bin/x", timeout=5).json()["path"] == "/cgi-bin/x"
        assert sandbox.url_for("echo") == sandbox.url + "/echo"
        assert sandbox.url_for("root") == sandbox.url


def test_state_persists_across_restarts(tmp_path):
    with serve(tmp_path) as sandbox:
        for _ in range(3):
            requests.get(sandbox.url + "/echo/", timeout=5)
    assert Echo(tmp_path, Faults()).store.data["handled"] == 3


def test_injected_failures_are_503_and_do_nothing(tmp_path):
    echo = Echo(tmp_path, Faults())
    with serve(tmp_path, Faults(failure_rate=1.0), [echo]) as sandbox:
        answer = requests.get(sandbox.url + "/echo/", timeout=5)
    assert answer.status_code == 503 and echo.store.data["handled"] == 0


def test_a_dropped_answer_is_done_remotely_and_unknown_to_the_client(tmp_path):
    echo = Echo(tmp_path, Faults())
    with (
        serve(tmp_path, Faults(read_timeout_rate=1.0), [echo]) as sandbox,
        pytest.raises(requests.RequestException) as info,
    ):
        requests.post(sandbox.url + "/echo/", json={}, timeout=5)
    assert echo.store.data["handled"] == 1
    assert type(classify_exception(info.value, "POST")).__name__ == "OutcomeUnknown"


def test_fault_rates_follow_the_seed(tmp_path):
    def outcomes():
        with serve(tmp_path, Faults(failure_rate=0.5, seed=7)) as sandbox:
            return [requests.get(sandbox.url + "/echo/", timeout=5).status_code for _ in range(40)]

    first = outcomes()
    assert first == outcomes() and 5 < first.count(503) < 35


class EchoChannel(Channel):
    name = "echoer"
    guarantee = "upsert"
    sandbox = "echo"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        base_url: str

    def render(self, item):
        return Rendition(body=item.id)

    def deliver(self, item, rendition, previous):
        answer = requests.post(self.config.base_url + "/items", json={"id": item.id}, timeout=5)
        return Receipt(external_id=answer.json()["path"])


def test_base_url_sandbox_starts_one_in_process(
    make_publisher, item_factory, tmp_path, monkeypatch
):
    from gongkai import sandbox
    from gongkai.plugins.hookspecs import hookimpl

    monkeypatch.setattr(sandbox, "SIMULATORS", {"echo": f"{__name__}:Echo"})

    class Plugin:
        @hookimpl
        def gongkai_register_channels(self):
            return [EchoChannel]

    publisher = make_publisher(
        plugins=[Plugin()], channels={"echoer": {"every_item": True, "base_url": "sandbox"}}
    )
    result = publisher.publish(item_factory())
    assert [o.status for o in result.outcomes if o.channel == "echoer"] == ["delivered"]
    url = publisher.channels["echoer"].instance.config.base_url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/echo")
    publisher.close()
    # The simulator's state is under the state directory, for the next run.
    assert Echo(tmp_path / "state" / "sandbox", Faults()).store.data["handled"] == 1
    with pytest.raises(requests.ConnectionError):  # closed with the publisher
        requests.get(url, timeout=2)


def test_start_serves_the_named_simulators(tmp_path, monkeypatch):
    from gongkai import sandbox

    monkeypatch.setattr(sandbox, "SIMULATORS", {"echo": f"{__name__}:Echo"})
    with start_sandbox(tmp_path, names=["echo"]) as running:
        assert requests.get(running.url_for("echo") + "/", timeout=5).json()["path"] == "/"
    assert (tmp_path / "sandbox" / "echo.json").is_file()
