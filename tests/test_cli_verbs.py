"""Every `gongkai` verb over a real process: its human output, its --json output and
each exit code it can give (issue 6).

Most read-only checks share one published ledger (``shared``): the housing example
delivered to the archive, its webhook delivery failed (closed port, one try, no
schedule), and an item scheduled for 2099 on both channels. Tests that write work on a
copy of it, or on a ledger of their own.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from clihelp import EXAMPLES, TESTS, as_json, run, write_config
from gongkai import Publisher
from support.server import Recorder, start_server

HOUSING = "jt-2026-housing-0302"  # examples/items/06-housing-policy.md
POLICY = "jt-2026-dilapidated-0401"  # examples/items/07-dilapidated-policy.md
FUTURE = "jt-test-future-2099"
TOKEN = "tok-never-shown-5a7c19"
ENV = {"GONGKAI_WEBHOOK_TOKEN": TOKEN}
BEIJING = r"\d{4}-\d\d-\d\d \d\d:\d\d\+08:00"

FUTURE_ITEM = f"""+++
id = "{FUTURE}"
catalog = "housing.policy"
title = "金堂县公共租赁住房申请指南（2099年）"
publisher = "金堂县房产管理局"
formed_on = 2026-11-02
publish_at = 2099-01-01T09:00:00+08:00
+++
申请条件：在本县有稳定工作。申请材料：身份证明。办理流程：个人申请后审核。
"""

STATUS_FIELDS = {
    "item_id",
    "channel",
    "state",
    "status",
    "edition",
    "delivered_edition",
    "attempts",
    "next_attempt_at",
    "updated_at",
    "due_on",
    "error",
    "url",
    "artifact",
    "title",
    "intent",
    "action",
    "latest_edition",
}
REPORT_FIELDS = {
    "ok",
    "exit_code",
    "counts",
    "outcomes",
    "problems",
    "backlog",
    "halted",
    "notes",
    "files_read",
    "files_skipped",
}


def webhook(url: str = "http://127.0.0.1:9/x") -> str:
    """A webhook channel for every item that gives up after one try in one run."""
    return (
        f'[channels.webhook]\nurl = "{url}"\nevery_item = true\n'
        'token = { env = "GONGKAI_WEBHOOK_TOKEN" }\n'
        "[channels.webhook.retry]\nattempts = 1\nschedule = []\n"
    )


def gk(*args: str, config: Path, code: int, env: dict | None = None):
    """Run a verb; it must exit ``code``, never show a traceback, never leak the token."""
    result = run(*args, config=config, env=ENV if env is None else env)
    shown = result.stdout + result.stderr
    assert result.returncode == code, shown
    assert "Traceback" not in shown
    assert TOKEN not in shown
    return result


def _cell(line: str, start: int, end: int) -> str:
    """The text of ``line`` between display columns ``start`` and ``end`` (Chinese
    characters take two columns, as in the tables the CLI prints)."""
    kept, column = [], 0
    for char in line:
        if start <= column < end:
            kept.append(char)
        column += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return "".join(kept).strip()


def tables(text: str) -> list[dict[str, str]]:
    """The rows of every table in ``text`` (a header over a line of dashes), each as
    {column: cell}, so an assertion names the column it is about."""
    rows: list[dict[str, str]] = []
    lines = text.splitlines()
    for at, dashes in enumerate(lines[1:], 1):
        if not re.fullmatch(r" *-+(  -+)*", dashes):
            continue
        spans = [m.span() for m in re.finditer(r"-+", dashes)]
        header = [_cell(lines[at - 1], *span) for span in spans]
        for line in itertools.takewhile(str.strip, lines[at + 1 :]):
            rows.append(dict(zip(header, (_cell(line, *span) for span in spans), strict=True)))
    return rows


def row(text: str, **match: str) -> dict[str, str]:
    """The one table row in ``text`` whose cells match."""
    found = [r for r in tables(text) if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, text)
    return found[0]


def items_dir(root: Path) -> Path:
    items = root / "items"
    items.mkdir()
    shutil.copy(EXAMPLES / "06-housing-policy.md", items)
    (items / "future.md").write_text(FUTURE_ITEM, encoding="utf-8")
    return items


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared")
    config = write_config(root, webhook())
    published = gk("publish", str(items_dir(root)), config=config, code=1)
    return SimpleNamespace(root=root, config=config, published=published)


@pytest.fixture
def copied(shared, tmp_path):
    """A config on a copy of the shared ledger, for tests that write to it. Archive
    receipts still name the shared record files, so a copy suits writes to the ledger
    (a rerun, retry), not a withdrawal: `live` has its own ledger for that."""
    shutil.copytree(shared.root / "state", tmp_path / "state")
    return write_config(tmp_path, webhook())


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A config that was never used: read-only verbs must not create its state dir."""
    root = tmp_path_factory.mktemp("fresh")
    config = write_config(root)
    items = items_dir(root)
    (root / "empty").mkdir()
    yield SimpleNamespace(root=root, config=config, items=items, state=root / "state")
    assert not (root / "state").exists()


# --- publish -------------------------------------------------------------------------


def test_publish_human_output_counts_without_not_enabled_then_notes_it(shared):
    out = shared.published.stdout
    assert list(tables(out)[0]) == ["item", "channel", "edition", "status", "detail"]
    archive = row(out, item=HOUSING, channel="archive")
    assert (archive["edition"], archive["status"]) == ("1", "delivered")
    assert archive["detail"].endswith("/edition-1/item.json")
    hook = row(out, item=HOUSING, channel="webhook")
    assert hook["status"] == "failed" and "cannot connect" in hook["detail"]
    for channel in ("archive", "webhook"):
        waiting = row(out, item=FUTURE, channel=channel)
        assert waiting["status"] == "scheduled"
        assert waiting["detail"] == "publish_at 2099-01-01T09:00+08:00"
    assert "not-enabled" not in out
    tail = out.splitlines()
    summary = tail.index("1 delivered, 1 failed, 2 scheduled")
    # An item scheduled past its statutory deadline is noted first.
    assert tail[summary + 1] == (
        f"note: {FUTURE}: publish_at 2099-01-01 is after its statutory deadline 2026-11-30"
    )
    note = tail[summary + 2]
    assert re.fullmatch(
        r"note: the catalogue also routes (\d+) delivery\(ies\) to channels this config does "
        r"not enable \(([a-z, ]+)\); -v lists them",
        note,
    ), note
    assert "the ledger still holds deliveries that are not done: 1 failed" in out


def test_publish_json_rerun_reports_the_backlog_and_exits_1(shared, copied):
    items = str(shared.root / "items")
    report = as_json(gk("publish", items, "--json", config=copied, code=1))
    assert set(report) == REPORT_FIELDS
    assert report["ok"] is False and report["exit_code"] == 1
    assert report["backlog"] == {"failed": 1}
    assert report["problems"] == [] and report["halted"] is None
    assert isinstance(report["notes"], list)
    counts = {s: n for s, n in report["counts"].items() if s != "not-enabled"}
    assert counts == {"failed": 1, "scheduled": 2, "unchanged": 1}
    for outcome in report["outcomes"]:
        assert {"item_id", "channel", "status", "edition", "detail", "url", "artifact"} <= set(
            outcome
        )
    scheduled = {
        (o["item_id"], o["channel"]) for o in report["outcomes"] if o["status"] == "scheduled"
    }
    assert scheduled == {(FUTURE, "archive"), (FUTURE, "webhook")}


def test_publish_bad_input_exits_2_and_the_good_items_still_go_out(tmp_path):
    items = items_dir(tmp_path)
    (items / "future.md").unlink()
    (items / "broken.md").write_text(
        '+++\ncatalog = "housing.policy"\ntitle = "指南"\npublisher = "金堂县房产管理局"\n'
        'formed_on = "下周一"\n+++\n申请条件、申请材料、办理流程。\n',
        encoding="utf-8",
    )
    config = write_config(tmp_path)
    result = gk("publish", str(items), config=config, code=2)
    assert row(result.stdout, item=HOUSING, channel="archive")["status"] == "delivered"
    assert "1 delivered" in result.stdout.splitlines()
    assert f"error: {items / 'broken.md'}: field 'formed_on'" in result.stderr


# --- status --------------------------------------------------------------------------


def test_status_table_columns_scheduled_beijing_time_and_clipped_paths(shared):
    out = gk("status", config=shared.config, code=1).stdout
    header = ["item", "channel", "status", "edition", "tries", "next attempt", "detail"]
    assert list(tables(out)[0]) == header
    for channel in ("archive", "webhook"):
        waiting = row(out, item=FUTURE, channel=channel)
        assert (waiting["status"], waiting["tries"]) == ("scheduled", "0")
        assert waiting["next attempt"] == "2099-01-01 09:00+08:00" and waiting["detail"] == ""
    failed = row(out, item=HOUSING, channel="webhook")
    assert (failed["status"], failed["edition"], failed["tries"]) == ("failed", "1", "1")
    assert failed["next attempt"] == "" and failed["detail"].startswith("webhook POST")
    assert failed["detail"].endswith("…")
    path = row(out, item=HOUSING, channel="archive")["detail"]
    assert path.startswith("…") and path.endswith(f"/{HOUSING}/edition-1/item.json")
    assert len(path) == 48


@pytest.mark.parametrize("flag", ["--wide", "-v"])
def test_status_wide_shows_long_values_whole(shared, flag):
    out = gk("status", flag, config=shared.config, code=1).stdout
    archive = row(out, item=HOUSING, channel="archive")["detail"]
    assert re.fullmatch(rf"state/archive/[0-9a-f]{{2}}/{HOUSING}/edition-1/item\.json", archive)
    hook = row(out, item=HOUSING, channel="webhook")["detail"]
    assert hook.endswith("run `gongkai retry` when fixed")


def test_status_json_rows_fields_and_types(shared):
    rows = as_json(gk("status", "--json", config=shared.config, code=1))
    assert isinstance(rows, list) and len(rows) == 4
    for r in rows:
        assert set(r) == STATUS_FIELDS
        assert isinstance(r["edition"], int) and isinstance(r["attempts"], int)
        datetime.fromisoformat(r["updated_at"])
        date.fromisoformat(r["due_on"])
    by_key = {(r["item_id"], r["channel"]): r for r in rows}
    waiting = by_key[FUTURE, "archive"]
    assert (waiting["state"], waiting["status"]) == ("pending", "scheduled")
    assert "T" in waiting["next_attempt_at"]
    assert datetime.fromisoformat(waiting["next_attempt_at"]) == datetime.fromisoformat(
        "2099-01-01T09:00:00+08:00"
    )
    delivered = by_key[HOUSING, "archive"]
    assert delivered["state"] == delivered["status"] == "delivered"
    assert delivered["delivered_edition"] == 1 and delivered["next_attempt_at"] is None
    assert Path(delivered["artifact"]).is_file()
    failed = by_key[HOUSING, "webhook"]
    assert failed["state"] == "failed" and "cannot connect" in failed["error"]
    assert failed["delivered_edition"] is None and failed["title"] == "金堂县公共租赁住房申请指南"


def test_status_item_shows_editions_attempt_log_and_whole_values(shared):
    out = gk("status", HOUSING, config=shared.config, code=1).stdout
    assert out.splitlines()[0].split() == [HOUSING, "金堂县公共租赁住房申请指南"]
    assert "withdrawn" not in out
    lines = out.splitlines()
    edition = lines[lines.index("editions:") + 1]
    assert re.fullmatch(rf"  第1版  {BEIJING}  [0-9a-f]{{8}}  金堂县公共租赁住房申请指南", edition)
    log, deliveries = out[out.index("attempt log:") :].split("deliveries:")
    assert list(tables(log)[0]) == [
        "at",
        "channel",
        "edition",
        "action",
        "outcome",
        "http",
        "error",
    ]
    failed = row(log, channel="webhook")
    assert re.fullmatch(BEIJING, failed["at"])
    assert (failed["edition"], failed["action"], failed["outcome"]) == ("1", "deliver", "failed")
    assert failed["error"].endswith("run `gongkai retry` when fixed")  # whole: no -w needed
    assert row(log, channel="archive")["outcome"] == "delivered"
    archive = row(deliveries, item=HOUSING, channel="archive")["detail"]
    assert archive.startswith("state/archive/") and archive.endswith("item.json")


def test_status_item_json_adds_editions_attempt_log_and_withdrawn(shared):
    rows = as_json(gk("status", HOUSING, "--json", config=shared.config, code=1))
    assert {r["channel"] for r in rows} == {"archive", "webhook"}
    for r in rows:
        assert set(r) == STATUS_FIELDS | {"editions", "attempt_log", "withdrawn"}
        assert r["withdrawn"] is None
        [edition] = r["editions"]
        assert edition["edition"] == 1 and len(edition["content_hash"]) == 64
        datetime.fromisoformat(edition["recorded_at"])
        assert {a["channel"] for a in r["attempt_log"]} == {r["channel"]}
    log = {r["channel"]: r["attempt_log"] for r in rows}
    assert [(a["action"], a["outcome"]) for a in log["webhook"]] == [("deliver", "failed")]


# --- read-only verbs on a fresh config -------------------------------------------------


def test_status_on_a_fresh_config_exits_0_and_creates_no_state(fresh):
    assert gk("status", config=fresh.config, code=0).stdout.strip() == "the ledger is empty"
    assert not fresh.state.exists()


def test_validate_counts_good_items_and_refuses_an_empty_folder(fresh):
    good = gk("validate", str(fresh.items), config=fresh.config, code=0)
    assert good.stdout.strip() == "2 valid item(s), 0 problem(s)"
    report = as_json(gk("validate", str(fresh.items), "--json", config=fresh.config, code=0))
    assert report["problems"] == []
    assert sorted(v["item_id"] for v in report["valid"]) == sorted([HOUSING, FUTURE])
    assert all(v["source"].endswith(".md") for v in report["valid"])
    empty = gk("validate", str(fresh.root / "empty"), "--json", config=fresh.config, code=2)
    assert "no items found" in empty.stderr
    [problem] = as_json(empty)["problems"]
    assert problem["problem"] == "no items found" and problem["fix"]
    assert as_json(empty)["valid"] == []
    assert not fresh.state.exists()


def test_render_a_file_prints_the_body_and_json_gives_the_rendition(fresh):
    source = str(fresh.items / "06-housing-policy.md")
    human = gk("render", source, "--channel", "archive", config=fresh.config, code=0)
    rendition = as_json(
        gk("render", source, "--channel", "archive", "--json", config=fresh.config, code=0)
    )
    assert set(rendition) == {"media_type", "body", "data"}
    assert rendition["media_type"] == "application/json" and isinstance(rendition["data"], dict)
    assert human.stdout == rendition["body"]
    assert json.loads(rendition["body"])["item"]["id"] == HOUSING
    assert not fresh.state.exists()


def test_render_refuses_an_unknown_id_and_a_channel_not_enabled(shared, fresh):
    unknown = gk("render", "no-such-item", "--channel", "archive", config=shared.config, code=2)
    assert "no-such-item" in unknown.stderr and unknown.stdout == ""
    source = str(fresh.items / "06-housing-policy.md")
    off = gk("render", source, "--channel", "webhook", config=fresh.config, code=2)
    assert "'webhook' is not enabled" in off.stderr


# --- retry ---------------------------------------------------------------------------


def test_retry_requeues_a_failed_delivery_then_has_nothing_left(copied):
    again = gk("retry", HOUSING, "--channel", "webhook", config=copied, code=0)
    assert again.stdout.startswith("re-queued 1 delivery(ies)")
    assert as_json(gk("retry", "--json", config=copied, code=0)) == []
    assert gk("retry", config=copied, code=0).stdout.strip() == "nothing to re-queue"


def test_retry_on_a_channel_without_deliveries_exits_2(shared):
    result = gk("retry", "--channel", "nope", config=shared.config, code=2)
    assert "no delivery on channel 'nope'" in result.stderr


# --- withdraw, and publish with everything done ------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Both examples delivered to a webhook that answers; DELETEs of POLICY fail."""
    root = tmp_path_factory.mktemp("live")
    recorder = Recorder()
    recorder.receipt_url = "https://portal.example.gov.cn/items/{id}"
    recorder.delete_failures[POLICY] = [500]
    server, url = start_server(recorder)
    config = write_config(root, webhook(url))
    items = root / "items"
    items.mkdir()
    for name in ("06-housing-policy.md", "07-dilapidated-policy.md"):
        shutil.copy(EXAMPLES / name, items)
    published = gk("publish", str(items), "--json", config=config, code=0)
    yield SimpleNamespace(config=config, published=published, recorder=recorder)
    server.shutdown()
    server.server_close()


def test_publish_json_when_everything_is_delivered(live):
    report = as_json(live.published)
    assert set(report) == REPORT_FIELDS
    assert report["ok"] is True and report["exit_code"] == 0
    assert report["counts"]["delivered"] == 4
    assert report["problems"] == [] and report["backlog"] == {} and report["halted"] is None
    assert isinstance(report["notes"], list)
    hook = next(
        o for o in report["outcomes"] if (o["item_id"], o["channel"]) == (HOUSING, "webhook")
    )
    assert hook == {
        "item_id": HOUSING,
        "channel": "webhook",
        "status": "delivered",
        "edition": 1,
        "detail": "",
        "url": f"https://portal.example.gov.cn/items/{HOUSING}",
        "artifact": None,
    }


def test_withdraw_once_twice_and_when_a_channel_fails(live):
    first = as_json(
        gk("withdraw", HOUSING, "--reason", "内容有误", "--json", config=live.config, code=0)
    )
    assert first["ok"] is True and first["notes"] == []
    assert {(o["channel"], o["status"]) for o in first["outcomes"]} == {
        ("archive", "withdrawn"),
        ("webhook", "withdrawn"),
    }
    second = gk("withdraw", HOUSING, "--reason", "第二次", config=live.config, code=0).stdout
    assert re.search(
        rf"'{HOUSING}' was already withdrawn on {BEIJING} \(内容有误\); that reason stands", second
    )
    assert row(second, channel="archive")["status"] == "withdrawn" and "第二次" not in second

    shown = gk("status", HOUSING, config=live.config, code=0).stdout
    assert re.search(rf"^withdrawn {BEIJING}: 内容有误$", shown, re.MULTILINE)
    withdrawn = as_json(gk("status", HOUSING, "--json", config=live.config, code=0))
    assert {r["withdrawn"]["reason"] for r in withdrawn} == {"内容有误"}
    datetime.fromisoformat(withdrawn[0]["withdrawn"]["at"])

    # The portal answers 500 to the DELETE: the take-down is not done, exit 1.
    failing = gk("withdraw", POLICY, "--reason", "政策已废止", config=live.config, code=1)
    assert row(failing.stdout, channel="archive")["status"] == "withdrawn"
    assert row(failing.stdout, channel="webhook")["status"] != "withdrawn"
    assert live.recorder.deletes[POLICY] == 1


def test_withdraw_refuses_an_empty_reason_and_an_unknown_item(shared):
    empty = gk("withdraw", HOUSING, "--reason", "", config=shared.config, code=2)
    assert "needs a reason" in empty.stderr
    unknown = gk("withdraw", "no-such-item", "--reason", "x", config=shared.config, code=2)
    assert "no item 'no-such-item'" in unknown.stderr


# --- channels ------------------------------------------------------------------------


def test_channels_lists_plugins_and_settings_with_the_token_masked(shared):
    out = gk("channels", config=shared.config, code=0).stdout
    assert row(out, channel="archive") == {
        "channel": "archive",
        "plugin": "gongkai.channels.archive",
        "mode": "online",
        "guarantee": "upsert",
        "configured": "enabled",
    }
    assert row(out, channel="webhook")["configured"] == "enabled"
    settings = out[out.index("settings of the enabled channels (secrets masked):") :]
    hook = next(line for line in settings.splitlines() if line.startswith("  webhook: "))
    assert 'url = "http://127.0.0.1:9/x"' in hook and 'token = "**********"' in hook

    data = as_json(gk("channels", "--json", config=shared.config, code=0))
    by_name = {d["name"]: d for d in data}
    for entry in data:
        assert {"name", "plugin", "mode", "guarantee", "configured", "doc", "config"} <= set(entry)
    assert by_name["webhook"]["config"]["token"] == "**********"
    assert by_name["archive"]["configured"] == "enabled"
    assert isinstance(by_name["archive"]["config"]["retry"]["attempts"], int)


def test_channels_check_passes(shared):
    # Neither has a check() of its own, and the report says so rather than "ok": an
    # unreachable webhook URL shows only on delivery.
    data = as_json(gk("channels", "--check", "--json", config=shared.config, code=0))
    unchecked = "not checked (the channel has no check)"
    assert {d["name"]: d["check"] for d in data if "check" in d} == {
        "archive": unchecked,
        "webhook": unchecked,
    }


def test_channels_check_exits_1_when_a_check_fails(tmp_path):
    config = write_config(tmp_path, '[plugins]\nload = ["support.gated"]\n[channels.gated]\n')
    out = gk("channels", "--check", config=config, code=1).stdout
    assert row(out, channel="archive")["check"].startswith("not checked")
    assert row(out, channel="gated")["check"] == "gated: credentials refused"
    assert not (tmp_path / "state").exists()


def test_channels_refuses_a_table_for_no_installed_channel(tmp_path):
    nope = gk("channels", config=write_config(tmp_path, "[channels.nope]\n"), code=2)
    assert "no installed channel is named 'nope'" in nope.stderr


# --- a closed pipe -------------------------------------------------------------------


def test_a_reader_that_leaves_early_ends_quietly(tmp_path):
    """`gongkai status --json | head -c 10`. The report is larger than the pipe, so the
    command is still writing when the reader goes away."""
    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        pytest.skip("needs Linux, to shrink the pipe")
    config = write_config(tmp_path)
    with Publisher.from_config(config) as publisher:  # setup only: no process needed
        assert publisher.publish_paths([str(EXAMPLES)]).exit_code == 0
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # one page; the report is ~10 kB
    proc = subprocess.Popen(
        [sys.executable, "-m", "gongkai.cli", "status", "--json", "--config", str(config)],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        cwd=tmp_path,
    )
    os.close(write_end)
    assert os.read(read_end, 10) == b"[\n  {\n    "
    os.close(read_end)
    err = proc.stderr.read()
    assert proc.wait(60) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception" not in err, err
