"""Regression tests for nine delivery-correctness defects (see DESIGN.md, "Ledger",
invariants 1-7). Each test names its defect in its docstring.

Library tests use the scripted recording channel and the injected FakeClock; tests of
processes and HTTP run the real `gongkai` command against the real loopback server. The
crash tests over processes run on both ledger backends (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading

import pytest
import requests

import support.postbox as postbox_module
from clihelp import as_json, run, start, write_config
from gongkai import Channel, Receipt, Rendition
from gongkai.errors import (
    DeliveryError,
    OutcomeUnknown,
    PermanentError,
    TransientError,
)
from gongkai.http import raise_for_status
from gongkai.plugins.hookspecs import hookimpl
from support.fakes import Script, recording_plugin
from support.pg import BACKENDS, configure_ledger, ledger_url
from support.server import Recorder, start_server

#: Bounded waits for events that happen within milliseconds once things work.
WAIT = 30


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def remote():
    recorder = Recorder()
    server, url = start_server(recorder)
    yield recorder, url
    recorder.release_all()
    server.shutdown()


@pytest.fixture(params=BACKENDS)
def ledger(request, tmp_path):
    """The crash tests' ledger: the SQLite file under state_dir, or a fresh PostgreSQL
    schema (the same defects must stay fixed on both backends)."""
    with ledger_url(request.param, tmp_path / "state") as url:
        yield url


def write_item(folder, item_id, body=None):
    folder.mkdir(exist_ok=True)
    body = body or f"申请条件、申请材料、办理流程（{item_id}）。"
    (folder / f"{item_id}.md").write_text(
        '+++\ncatalog = "housing.policy"\ntitle = "公共租赁住房申请指南"\n'
        'publisher = "金堂县房产管理局"\nformed_on = 2026-11-20\n+++\n'
        f"{body}\n",
        encoding="utf-8",
    )
    return folder


def write_items(folder, ids):
    for item_id in ids:
        write_item(folder, item_id)
    return folder


def postbox_config(tmp_path, url, concurrency=1, ledger="sqlite:"):
    config = write_config(
        tmp_path,
        f'[plugins]\nload = ["support.postbox"]\n[channels.postbox]\nevery_item = true\n'
        f'url = "{url}"\nread_timeout = 120\n'
        "[channels.postbox.retry]\nbackoff_initial = 0.01\nbackoff_max = 0.01\n",
        archive=False,
        concurrency=concurrency,
    )
    return configure_ledger(config, ledger)


def webhook_config(tmp_path, url_line, extra="", ledger="sqlite:"):
    config = write_config(
        tmp_path,
        f"[channels.webhook]\nevery_item = true\n{url_line}\n{extra}"
        "[channels.webhook.retry]\nbackoff_initial = 0.01\nbackoff_max = 0.01\n",
        archive=False,
    )
    return configure_ledger(config, ledger)


def stop(proc: subprocess.Popen) -> tuple[str, str]:
    """Kill a child that is still running and collect what it wrote."""
    if proc.poll() is None:
        proc.kill()
    try:
        return proc.communicate(timeout=WAIT)
    except (ValueError, subprocess.TimeoutExpired):  # pipes already read, or stuck
        return "", ""


def sigkill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(WAIT)


def outcome_of(report: dict, item_id: str, channel: str) -> dict:
    found = [o for o in report["outcomes"] if (o["item_id"], o["channel"]) == (item_id, channel)]
    assert found, f"no outcome for ({item_id}, {channel}) in {report['outcomes']}"
    return found[0]


def status_row(config, item_id: str, channel: str, env=None) -> dict:
    rows = as_json(run("status", "--json", config=config, env=env))
    found = [r for r in rows if (r["item_id"], r["channel"]) == (item_id, channel)]
    assert found, rows
    return found[0]


def in_flight(publisher) -> list:
    return [(r.item_id, r.channel) for r in publisher.status() if r.state == "in-flight"]


def killed_mid_delivery(tmp_path, recorder, url, item_id, ledger="sqlite:"):
    """A publisher SIGKILLed while its POST of ``item_id`` is held by the server."""
    recorder.block = {item_id}
    config = postbox_config(tmp_path, url, ledger=ledger)
    items = write_items(tmp_path / "items", [item_id])
    proc = start("publish", str(items), config=config)
    kill_once(proc, recorder.received_blocked, recorder.release, "the blocked request")
    return config, items


def kill_once(proc, arrived, release, what):
    """SIGKILL ``proc`` once the server holds its request, then let the server go on."""
    try:
        assert arrived.wait(WAIT), f"{what} never arrived"
        sigkill(proc)
    finally:
        stop(proc)
        release.set()


# --- 1. the newest edition wins ----------------------------------------------------------


def test_correction_replaces_a_waiting_retry_before_it_is_sent(
    make_publisher, item_factory, script, clock
):
    """Defect 1a: a due retry of edition 1 is never sent once edition 2 is in.

    The old run claimed earlier runs' work before it read the new files, so edition 1
    usually went out first. Now intake records every edition before old work is
    queued, so the state machine supersedes edition 1 before anyone can claim it."""
    script.plan["jt-test-001"] = [TransientError("HTTP 503")] * 3
    publisher = make_publisher()
    first = publisher.publish(item_factory())
    assert first.outcome("jt-test-001", "recorder").status == "retry-wait"
    clock.advance(seconds=10)  # edition 1's next attempt is due

    edited = item_factory(body=item_factory().body + "更正：咨询电话改为028-84937788。")
    result = publisher.publish(edited)

    assert script.sent == [("jt-test-001", 2, None)], "edition 1 went out after edition 2 came in"
    outcome = result.outcome("jt-test-001", "recorder")
    assert (outcome.edition, outcome.status) == (2, "delivered"), outcome
    assert result.exit_code == 0
    [row] = publisher.status("jt-test-001")
    assert (row.state, row.edition, row.delivered_edition) == ("delivered", 2, 2)


def test_correction_during_a_delivery_in_another_process_is_sent_too(tmp_path, remote, ledger):
    """Defect 1b: a run never reports done while a newer edition waits behind another
    process's delivery; that process sends the newer edition before it ends."""
    recorder, url = remote
    item_id = "e-corrected"
    recorder.block = {item_id}
    config = postbox_config(tmp_path, url, ledger=ledger)
    items = write_items(tmp_path / "items", [item_id])
    proc_a = start("publish", str(items), "--json", config=config)
    try:
        assert recorder.received_blocked.wait(WAIT), "process A's POST never arrived"
        write_item(items, item_id, "更正：申请条件、申请材料、办理流程以本版为准。")
        proc_b = run("publish", str(items), "--json", config=config, timeout=60)
        recorder.release.set()
        a_out, a_err = proc_a.communicate(timeout=60)
    finally:
        recorder.release.set()
        stop(proc_a)

    b_outcome = outcome_of(as_json(proc_b), item_id, "postbox")
    assert proc_b.returncode == 1, f"B exited {proc_b.returncode}; its outcome: {b_outcome}"
    assert b_outcome["status"] == "pending", b_outcome

    assert proc_a.returncode == 0, a_err
    editions = [body["edition"] for body in recorder.bodies if body["id"] == item_id]
    assert editions == [1, 2], "edition 2 was not sent after edition 1"
    a_outcome = outcome_of(json.loads(a_out), item_id, "postbox")
    assert (a_outcome["edition"], a_outcome["status"]) == (2, "updated"), a_outcome
    row = status_row(config, item_id, "postbox")
    assert (row["state"], row["edition"]) == ("delivered", 2), row


# --- 2. withdrawal wins ------------------------------------------------------------------


def test_withdrawn_after_a_crash_is_never_sent_again(tmp_path, remote, ledger):
    """Defect 2a: withdrawing an item whose delivery died in a SIGKILL settles it, and
    no later run (not even after `retry --unknown`) sends it again."""
    recorder, url = remote
    item_id = "w-crashed"
    config, items = killed_mid_delivery(tmp_path, recorder, url, item_id, ledger)

    run("withdraw", item_id, "--reason", "信息有误", config=config)
    run("publish", str(items), config=config)

    assert recorder.counts[item_id] == 1
    state = status_row(config, item_id, "postbox")["state"]
    assert state in ("withdrawn", "failed"), f"row is {state} after the withdrawal"
    # An operator clearing unknown or failed rows must not bring a withdrawn item back.
    run("retry", "--unknown", config=config)
    run("publish", str(items), config=config)
    assert recorder.counts[item_id] == 1, "the withdrawn item was sent again after a retry"


def test_withdrawal_stops_a_batch_claimed_before_it(tmp_path, make_publisher, item_factory, script):
    """Defect 2b: an item withdrawn by another Publisher while its batch is claimed is
    never sent."""
    blocked, gate = threading.Event(), threading.Event()

    def hold_first(channel, item):
        if item.id == "a-1":
            blocked.set()
            gate.wait(WAIT)

    script.on_deliver = hold_first
    publisher = make_publisher(guarantee="upsert", concurrency=1)
    items = [item_factory(id=f"a-{n}") for n in range(1, 6)]
    results = []
    runner = threading.Thread(target=lambda: results.append(publisher.publish(items)), daemon=True)
    runner.start()
    try:
        assert blocked.wait(WAIT), "a-1 never reached the channel"
        other = make_publisher(guarantee="upsert", concurrency=1)
        other.withdraw("a-3", "信息有误，撤回")
    finally:
        gate.set()
        runner.join(WAIT)
    assert not runner.is_alive(), "publish did not return"

    assert "a-3" not in [s[0] for s in script.sent], script.sent
    states = {r.item_id: r.state for r in publisher.status()}
    assert states["a-3"] == "withdrawn", states
    assert {states[i] for i in ("a-1", "a-2", "a-4", "a-5")} == {"delivered"}, states


def test_interrupted_take_down_is_retried_not_reposted(tmp_path, remote, ledger):
    """Defect 2c: a withdrawal SIGKILLed during its DELETE is retried by the next run,
    which never POSTs the item again."""
    recorder, url = remote
    item_id = "w-taken-down"
    config = webhook_config(tmp_path, f'url = "{url}"', ledger=ledger)
    items = write_items(tmp_path / "items", [item_id])
    first = run("publish", str(items), config=config)
    assert first.returncode == 0, first.stderr
    assert recorder.counts[item_id] == 1

    recorder.block_delete = {item_id}
    proc = start("withdraw", item_id, "--reason", "信息有误，撤回", config=config)
    kill_once(proc, recorder.received_blocked_delete, recorder.release_delete, "the DELETE")

    run("publish", str(items), config=config)

    assert recorder.counts[item_id] == 1, "the withdrawn item was POSTed again"
    assert recorder.deletes[item_id] == 2, "the interrupted DELETE was not retried"
    assert status_row(config, item_id, "webhook")["state"] == "withdrawn"


def brittle_plugin(error: BaseException):
    class BrittleChannel(Channel):
        """Delivers fine; its withdraw raises something unclassified."""

        name = "brittle"
        guarantee = "none"

        def render(self, item):
            return Rendition(body=item.title)

        def deliver(self, item, rendition, previous):
            return Receipt(external_id=f"brittle-{item.id}")

        def withdraw(self, item, receipt, reason):
            raise error

    class Plugin:
        @hookimpl
        def gongkai_register_channels(self):
            return [BrittleChannel]

    return Plugin()


@pytest.mark.parametrize(
    "error", [RuntimeError("boom"), OSError("network share gone")], ids=["runtime", "oserror"]
)
def test_unclassified_withdraw_error_is_classified(make_publisher, item_factory, error):
    """Defect 2d: a withdraw that raises an unclassified exception leaves no row
    in-flight, and withdraw() does not raise."""
    publisher = make_publisher(
        plugins=[brittle_plugin(error)], channels={"brittle": {"every_item": True}}
    )
    assert publisher.publish(item_factory()).outcome("jt-test-001", "brittle").status == (
        "delivered"
    )
    try:
        publisher.withdraw("jt-test-001", "信息有误，撤回")
    except Exception as exc:  # noqa: BLE001 - the defect is that it escapes
        raised = exc
    else:
        raised = None
    [row] = publisher.status("jt-test-001")
    assert raised is None, f"withdraw raised {raised!r}; row left {row.state}"
    assert row.state in ("failed", "retry-wait"), row.state


# --- 3. 502/504 on a channel without a safe resend ---------------------------------------


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_error_from_http_is_an_unknown_outcome(status):
    """Defect 3: raise_for_status classifies a 502/504 as OutcomeUnknown."""
    response = requests.Response()
    response.status_code = status
    response.url = "http://127.0.0.1/items"
    with pytest.raises(DeliveryError) as raised:
        raise_for_status(response, "postbox POST")
    assert isinstance(raised.value, OutcomeUnknown), repr(raised.value)


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_error_on_a_none_channel_is_never_resent(
    make_publisher, item_factory, clock, remote, status
):
    """Defect 3: a 502/504 on a guarantee-none channel is unknown and never resent."""
    recorder, url = remote
    recorder.failures["p-gateway"] = [status]
    publisher = make_publisher(
        plugins=[postbox_module], channels={"postbox": {"every_item": True, "url": url}}
    )
    first = publisher.publish(item_factory(id="p-gateway"))
    assert recorder.counts["p-gateway"] == 1, "the POST was resent after a gateway error"
    assert first.outcome("p-gateway", "postbox").status == "unknown"

    clock.advance(days=1)
    publisher.publish(item_factory(id="p-gateway"))
    assert recorder.counts["p-gateway"] == 1


def test_gateway_error_on_an_idempotent_channel_is_resent_in_the_run(
    make_publisher, item_factory, remote
):
    """Defect 3 (contrast): the webhook channel (idempotency-key) answered 502 then
    200 delivers in the same run with two POSTs."""
    recorder, url = remote
    recorder.failures["p-idempotent"] = [502]
    publisher = make_publisher(plugins=[], channels={"webhook": {"every_item": True, "url": url}})
    result = publisher.publish(item_factory(id="p-idempotent"))
    assert result.outcome("p-idempotent", "webhook").status == "delivered"
    assert recorder.counts["p-idempotent"] == 2


# --- 4. one odd answer from a lookup ------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    ["yes", ValueError("bad JSON from the remote"), KeyError("media_id")],
    ids=["not-a-receipt", "valueerror", "keyerror"],
)
def test_odd_reconcile_answer_is_classified_for_that_row(
    make_publisher, item_factory, clock, answer
):
    """Defect 4: a reconcile that returns a non-Receipt or raises affects only its row."""

    def odd_lookup(item, attempt):
        if isinstance(answer, BaseException):
            raise answer
        return answer

    odd, other = Script(), Script()
    odd.plan["o-1"] = [OutcomeUnknown("read timeout")]
    publisher = make_publisher(
        plugins=[
            recording_plugin(odd, name="odd", reconcile=odd_lookup),
            recording_plugin(other, name="other"),
        ],
        channels={"odd": {"every_item": True}, "other": {"every_item": True}},
    )
    first = publisher.publish(item_factory(id="o-1"))
    assert first.outcome("o-1", "odd").status == "unknown"

    clock.advance(seconds=10)
    try:
        second = publisher.publish(item_factory(id="o-2"))
    except Exception as exc:  # noqa: BLE001 - the defect is that it escapes
        pytest.fail(f"publish raised {exc!r}")
    assert second.outcome("o-2", "other").status == "delivered"
    assert ("o-2", 1, None) in other.sent
    [row] = [r for r in publisher.status("o-1") if r.channel == "odd"]
    assert row.state == "unknown", row.state
    assert "reconcile" in (row.last_error or "").lower(), row.last_error


# --- 5. slow lookups do not hold up other channels -----------------------------------------


def test_slow_reconciles_run_alongside_other_channels(make_publisher, item_factory):
    """Defect 5: reconciles run in their channel's pool, concurrently with the other
    channels' deliveries, not all before them."""
    slow, fast = Script(), Script()
    old = [f"u-{n}" for n in range(1, 9)]
    new = [f"v-{n}" for n in range(1, 6)]
    for item_id in old:
        slow.plan[item_id] = [OutcomeUnknown("read timeout")]
    fast_done = threading.Event()
    saw_fast_done: list[bool] = []

    def slow_lookup(item, attempt):
        saw_fast_done.append(fast_done.wait(WAIT))
        return Receipt(external_id=f"slow-{item.id}")

    publisher = make_publisher(
        plugins=[
            recording_plugin(slow, name="slow", reconcile=slow_lookup),
            recording_plugin(fast, name="fast"),
        ],
        channels={"slow": {"every_item": True}, "fast": {"every_item": True}},
        concurrency=4,
    )
    first = publisher.publish([item_factory(id=i) for i in old])
    assert {first.outcome(i, "slow").status for i in old} == {"unknown"}

    delivered: list[str] = []
    lock = threading.Lock()

    def count_fast(channel, item):
        with lock:
            if item.id in new:
                delivered.append(item.id)
            if len(delivered) == len(new):
                fast_done.set()

    fast.on_deliver = count_fast
    publisher.publish([item_factory(id=i) for i in new])

    assert sorted(s[0] for s in fast.sent if s[0] in new) == new
    assert saw_fast_done, "reconcile never ran"
    assert any(saw_fast_done), (
        f"all {len(saw_fast_done)} reconciles finished before fast delivered anything"
    )


# --- 6. secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["shortest-token", "key-in-url"])
def test_secrets_never_leak(tmp_path, remote, case):
    """Defect 6: secrets of the shortest length config accepts (16 characters; shorter
    ones are refused, see test_config), and URLs built from secrets, never reach output
    or the state dir."""
    recorder, url = remote
    port = url.split(":")[-1].split("/")[0]
    if case == "shortest-token":
        token = "Qz9!-tok-Qz9!-16"
        secrets = [token]
        env = {"GONGKAI_WEBHOOK_TOKEN": token}
        config = webhook_config(
            tmp_path, f'url = "{url}"', 'token = { env = "GONGKAI_WEBHOOK_TOKEN" }\n'
        )
        # A remote that hands back a signed link: the receipt URL carries the token.
        recorder.receipt_url = f"http://127.0.0.1:{port}/items/{{id}}?access_token={token}"
    else:
        secret_url = f"http://127.0.0.1:{port}/hook/SK7f3a9c21/items"
        secrets = [secret_url, "SK7f3a9c21"]
        env = {"GONGKAI_WEBHOOK_URL": secret_url}
        config = webhook_config(tmp_path, 'url = { env = "GONGKAI_WEBHOOK_URL" }')
        recorder.receipt_url = secret_url + "/{id}"
    items = write_items(tmp_path / "items", ["s-ok", "s-refused"])
    recorder.failures["s-refused"] = [400]  # so an error message exists too

    published = run("publish", str(items), "--json", "-v", config=config, env=env)
    assert recorder.counts["s-ok"] == 1, published.stderr
    status = run("status", "--json", config=config, env=env)
    channels = run("channels", "--json", config=config, env=env)
    assert status.stdout and channels.stdout, status.stderr + channels.stderr

    outputs = {
        "publish stdout": published.stdout,
        "publish stderr": published.stderr,
        "status stdout": status.stdout,
        "status stderr": status.stderr,
        "channels stdout": channels.stdout,
    }
    for where, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked into {where}"
    for path in sorted((tmp_path / "state").rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret!r} leaked into {path.name}"


# --- 7. index numbers ----------------------------------------------------------------------


def test_index_numbers_go_past_99999(tmp_path, make_publisher, item_factory, script):
    """Defect 7: the serial after 99999 is 100000, and such items are delivered."""
    numbers: dict[str, str] = {}
    script.on_deliver = lambda channel, item: numbers.__setitem__(item.id, item.index_number)
    publisher = make_publisher()
    first = publisher.publish(item_factory(id="n-1"))
    assert first.outcome("n-1", "recorder").status == "delivered"
    assert in_flight(publisher) == []

    db = sqlite3.connect(tmp_path / "state" / "ledger.sqlite3")
    with db:
        db.execute("UPDATE index_serials SET last = 99999")
    db.close()

    for item_id, serial in (("n-2", "100000"), ("n-3", "100001")):
        result = publisher.publish(item_factory(id=item_id))
        assert [p.problem for p in result.problems] == []
        outcome = result.outcome(item_id, "recorder")
        assert outcome.status == "delivered", f"{outcome.status}: {outcome.detail}"
        assert numbers[item_id].endswith(f"-{serial}"), numbers
        assert in_flight(publisher) == [], f"rows left in-flight after publishing {item_id}"


# --- 8. dead processes' leases in reports --------------------------------------------------


def test_status_shows_a_dead_process_delivery_as_unknown(tmp_path, remote, ledger):
    """Defect 8: status reports a SIGKILLed publisher's delivery as unknown, not in-flight."""
    recorder, url = remote
    config, _ = killed_mid_delivery(tmp_path, recorder, url, "k-killed", ledger)
    row = status_row(config, "k-killed", "postbox")
    assert row["state"] == "unknown", f"status shows {row['state']}: {row['error']}"


def test_withdraw_after_a_kill_is_not_refused_as_in_flight(tmp_path, remote):
    """Defect 8: withdraw right after a SIGKILL does not say another process holds it."""
    recorder, url = remote
    config, _ = killed_mid_delivery(tmp_path, recorder, url, "k-withdrawn")
    result = run("withdraw", "k-withdrawn", "--reason", "信息有误", "--json", config=config)
    outcome = outcome_of(as_json(result), "k-withdrawn", "postbox")
    answer = f"{outcome['status']}: {outcome['detail']}"
    assert outcome["status"] != "in-flight", answer
    assert "another process" not in outcome["detail"], answer


# --- 9. a bare publish reports what is still wrong ----------------------------------------


@pytest.mark.parametrize(
    "error,state",
    [
        (PermanentError("HTTP 400; the remote refused the content"), "failed"),
        (OutcomeUnknown("read timeout"), "unknown"),
    ],
    ids=["failed", "unknown"],
)
def test_bare_publish_with_failed_or_unknown_exits_1(
    make_publisher, item_factory, script, error, state
):
    """Defect 9: a publish with no items exits 1 while deliveries are failed or unknown."""
    script.plan["jt-test-001"] = [error]
    publisher = make_publisher()
    first = publisher.publish(item_factory())
    assert first.outcome("jt-test-001", "recorder").status == state
    bare = publisher.publish()
    assert bare.exit_code == 1, bare.as_dict()


def test_bare_publish_command_exits_1_and_says_failed(tmp_path, remote):
    """Defect 9: `gongkai publish` with no paths exits 1 and mentions the failure."""
    recorder, url = remote
    recorder.failures["f-refused"] = [400]
    config = postbox_config(tmp_path, url)
    items = write_items(tmp_path / "items", ["f-refused"])
    first = run("publish", str(items), config=config)
    assert first.returncode == 1 and "failed" in first.stdout, first.stdout

    bare = run("publish", config=config)
    assert bare.returncode == 1, bare.stdout
    assert "failed" in bare.stdout, bare.stdout
