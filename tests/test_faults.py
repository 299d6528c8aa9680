"""Faults across processes: SIGKILL mid-delivery, two publishers at once, and secrets,
over real loopback HTTP. The crash and concurrency tests run on both ledger backends."""

from __future__ import annotations

import os
import signal

import pytest

from clihelp import as_json, run, start, write_config
from gongkai.ledger.select import open_ledger
from support.pg import BACKENDS, configure_ledger, ledger_url
from support.server import Recorder, start_server


@pytest.fixture
def remote():
    recorder = Recorder()
    server, url = start_server(recorder)
    yield recorder, url
    recorder.release.set()
    server.shutdown()


def write_items(folder, ids):
    folder.mkdir(exist_ok=True)
    for item_id in ids:
        (folder / f"{item_id}.md").write_text(
            '+++\ncatalog = "housing.policy"\ntitle = "公共租赁住房申请指南"\n'
            'publisher = "金堂县房产管理局"\nformed_on = 2026-11-20\n+++\n'
            f"申请条件、申请材料、办理流程（{item_id}）。\n",
            encoding="utf-8",
        )
    return folder


@pytest.fixture(params=BACKENDS)
def ledger(request, tmp_path):
    """The ledger's URL: the SQLite file under state_dir, or a fresh PostgreSQL schema."""
    with ledger_url(request.param, tmp_path / "state") as url:
        yield url


def postbox_config(tmp_path, url, concurrency=1, ledger="sqlite:"):
    config = write_config(
        tmp_path,
        f'[plugins]\nload = ["support.postbox"]\n[channels.postbox]\nevery_item = true\n'
        f'url = "{url}"\nread_timeout = 120\n',
        archive=False,
        concurrency=concurrency,
    )
    return configure_ledger(config, ledger)


def test_sigkill_mid_delivery_never_delivers_twice(tmp_path, remote, ledger):
    recorder, url = remote
    recorder.block = {"c-blocker"}
    # One worker, so the order is known: a and b are out when c hangs, d is not sent yet.
    config = postbox_config(tmp_path, url, concurrency=1, ledger=ledger)
    items = write_items(tmp_path / "items", ["a-first", "b-second", "c-blocker", "d-fourth"])
    proc = start("publish", str(items), config=config)
    assert recorder.received_blocked.wait(60), "the blocked request never arrived"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    recorder.release.set()

    rerun = run("publish", str(items), "--json", config=config)
    assert rerun.returncode == 1  # the unknown delivery needs an operator
    assert recorder.counts["c-blocker"] == 1
    assert all(count == 1 for count in recorder.counts.values()), recorder.counts
    assert set(recorder.counts) == {"a-first", "b-second", "c-blocker", "d-fourth"}

    status = run("status", "--json", config=config)
    states = {r["item_id"]: r["state"] for r in as_json(status)}
    assert states == {
        "a-first": "delivered",
        "b-second": "delivered",
        "c-blocker": "unknown",
        "d-fourth": "delivered",
    }
    table = run("status", config=config).stdout
    assert "unknown" in table and "gongkai retry --unknown" in table
    # A third run still does not resend it.
    run("publish", config=config)
    assert recorder.counts["c-blocker"] == 1


def test_two_concurrent_publishers_never_duplicate(tmp_path, remote, ledger):
    recorder, url = remote
    config = postbox_config(tmp_path, url, concurrency=4, ledger=ledger)
    ids = [f"item-{n:03d}" for n in range(40)]
    items = write_items(tmp_path / "items", ids)
    procs = [start("publish", str(items), "--json", config=config) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert sorted(recorder.counts) == ids
    assert set(recorder.counts.values()) == {1}
    db = open_ledger(ledger)
    assert {r.state for r in db.rows()} == {"delivered"} and len(db.rows()) == 40
    db.close()


def test_secrets_never_reach_logs_output_or_ledger(tmp_path, remote):
    recorder, url = remote
    secret = "tok-SECRET-4242-xyz"
    recorder.failures["jt-2026-housing-0302"] = [503]
    config = write_config(
        tmp_path,
        f'[channels.webhook]\nevery_item = true\nurl = "{url}"\n'
        'token = { env = "GONGKAI_WEBHOOK_TOKEN" }\n'
        "[channels.webhook.retry]\nbackoff_initial = 0.01\nbackoff_max = 0.01\n",
    )
    from clihelp import EXAMPLES

    env = {"GONGKAI_WEBHOOK_TOKEN": secret}
    result = run(
        "publish", str(EXAMPLES / "06-housing-policy.md"), "--json", "-v", config=config, env=env
    )
    assert result.returncode == 0, result.stderr
    assert recorder.headers[-1]["Authorization"] == f"Bearer {secret}"
    assert recorder.counts["jt-2026-housing-0302"] == 2  # 503, then 200
    assert '"retrying"' in result.stderr
    status = run("status", "--json", config=config, env=env)
    channels = run("channels", "--json", config=config, env=env)
    for text in (result.stdout, result.stderr, status.stdout, status.stderr, channels.stdout):
        assert secret not in text
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    # Idempotency key on every request, the same for the retry of the same edition.
    keys = {h["Idempotency-Key"] for h in recorder.headers}
    assert len(keys) == 1
