"""Issue 6 defects: bad input that used to pass, leak or wedge later runs.

Each test failed on the code before the fix. The CLI-level corpus of bad files lives in
test_bad_input.py; these tests pin each rule where it is enforced.
"""

from __future__ import annotations

import json
import os
from datetime import date

import pytest

from gongkai.channel import PreparedItem
from gongkai.loader import load_paths

GOOD = """+++
catalog = "housing.policy"
title = "公共租赁住房申请指南"
publisher = "金堂县房产管理局"
formed_on = 2026-11-20
{extra}+++
申请条件、申请材料和办理流程如下。{body}
"""


def item_file(folder, name="jt-guide.md", extra="", body=""):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(GOOD.format(extra=extra, body=body), encoding="utf-8")
    return path


def attachment(path):
    return f'[[attachments]]\ntitle = "附件"\npath = "{path}"\n'


# --- 1. attachments stay inside the item's folder ------------------------------------------


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_an_attachment_outside_the_items_folder_is_refused(tmp_path, kind):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0", encoding="utf-8")
    items = tmp_path / "office" / "items"
    items.mkdir(parents=True)
    target = {"parent": "../../secret.txt", "absolute": str(secret), "symlink": "link.txt"}[kind]
    if kind == "symlink":
        os.symlink(secret, items / "link.txt")
    path = item_file(items, extra=attachment(target))
    loaded, [problem] = load_paths([path])
    assert loaded == []
    assert problem.source == str(path) and problem.field == "attachments.0.path"
    assert "outside" in problem.problem and "attachments_root" in problem.fix


def test_attachments_root_lets_an_office_keep_files_elsewhere(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "名单.csv").write_text("姓名,金额\n", encoding="utf-8")
    path = item_file(tmp_path / "items", extra=attachment(shared / "名单.csv"))
    [loaded], problems = load_paths([path], attachments_root=shared)
    assert problems == [] and loaded.item.attachments[0].filename == "名单.csv"


def test_attachments_with_the_same_file_name_are_refused(tmp_path):
    items = tmp_path / "items"
    for sub in ("a", "b"):
        (items / sub).mkdir(parents=True)
        (items / sub / "名单.csv").write_text(f"{sub}\n", encoding="utf-8")
    path = item_file(items, extra=attachment("a/名单.csv") + attachment("b/名单.csv"))
    loaded, [problem] = load_paths([path])
    assert loaded == [] and problem.field == "attachments.1.path"
    assert "attachments.0" in problem.problem


# --- 8. control characters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "line"),
    [
        ("title", 'title = "公共租赁住房\\u001b[31m申请指南"'),
        ("publisher", 'publisher = "金堂县房产管理局\\u202e"'),
        ("contact", 'contact = "028-8493\\u00005050"'),
        ("keywords.0", 'keywords = ["公租房\\u2066"]'),
        ("area", 'area = "赵镇\\u0085街道"'),
        ("title", 'title = "公共租赁\\u200b住房申请指南"'),
        ("title", 'title = "公共租赁住房\\u2028申请指南"'),
        ("publisher", 'publisher = "金堂县\\ufeff房产管理局"'),
    ],
)
def test_control_characters_in_metadata_are_refused(tmp_path, field, line):
    key = line.split(" =")[0]
    text = GOOD.format(extra=f"{line}\n", body="")
    # A key the template already has is replaced, not repeated.
    rows = text.splitlines(keepends=True)
    first = next(i for i, row in enumerate(rows) if row.startswith(f"{key} ="))
    if rows[first] != f"{line}\n":
        del rows[first]
    path = tmp_path / "jt-guide.md"
    path.write_text("".join(rows), encoding="utf-8")
    loaded, problems = load_paths([path])
    assert loaded == []
    assert [p.field for p in problems] == [field]
    assert "control character" in problems[0].problem


def test_control_characters_are_stripped_from_a_body_with_a_warning(tmp_path):
    import logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("gongkai")
    logger.addHandler(handler)
    path = item_file(tmp_path, body="\x1b[31m请按时申请\x1b[0m\x00，联系\u202e电话。")
    try:
        [loaded], problems = load_paths([path])
    finally:
        logger.removeHandler(handler)
    assert problems == []
    assert loaded.item.body.endswith("请按时申请，联系电话。")
    [event] = [r.msg for r in records if "control characters removed" in str(r.msg)]
    # Two escape sequences of 5 and 4 characters, a NUL and a U+202E.
    assert event["source"] == str(path) and event["removed"] == 11


def test_an_edition_stored_before_a_stricter_rule_stays_readable():
    payload = {
        "id": "jt-old",
        "catalog": "housing.policy",
        "title": "旧标题\x1b",
        "body": "正文",
        "publisher": "金堂县房产管理局",
        "formed_on": "2026-01-01",
    }
    assert PreparedItem.from_stored(payload, 1, "ab" * 32).title == "旧标题\x1b"


# --- 11. a BOM in JSON ----------------------------------------------------------------------


def test_a_json_file_with_a_byte_order_mark_is_read(tmp_path):
    record = {
        "id": "jt-bom",
        "catalog": "housing.policy",
        "title": "公共租赁住房申请指南",
        "body": "申请条件、申请材料和办理流程如下。",
        "publisher": "金堂县房产管理局",
        "formed_on": "2026-11-20",
    }
    path = tmp_path / "jt-bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(record, ensure_ascii=False).encode())
    [loaded], problems = load_paths([path])
    assert problems == [] and loaded.item.id == "jt-bom"


# --- checks that need the deployment: today, org codes, channel names ---------------------


def test_formed_on_after_today_is_refused(make_publisher, tmp_path, clock):
    # The fake clock says 2026-11-26 (Beijing time).
    late = item_file(tmp_path / "a", extra="", body="").read_text("utf-8")
    path = tmp_path / "jt-future.md"
    path.write_text(late.replace("2026-11-20", "2026-11-27"), encoding="utf-8")
    today = tmp_path / "jt-today.md"
    today.write_text(late.replace("2026-11-20", "2026-11-26"), encoding="utf-8")
    publisher = make_publisher()
    good, [problem] = publisher.validate([path, today])
    assert problem.field == "formed_on" and problem.source == str(path)
    assert [g.item.id for g in good] == ["jt-today"]


def test_an_unknown_channel_name_in_an_item_is_refused(make_publisher, tmp_path):
    path = item_file(
        tmp_path, extra='channels = { add = ["no_such_channel"], skip = ["wechat"] }\n'
    )
    publisher = make_publisher()
    result = publisher.publish_paths([path])
    assert [(p.field, "no_such_channel" in p.problem) for p in result.problems] == [
        ("channels.add", True)
    ]
    assert publisher.status() == []


def test_without_an_org_code_no_index_number_is_made_up(make_publisher, tmp_path):
    numbered = item_file(
        tmp_path, "jt-numbered.md", extra='index_number = "115101210090875405/2026-00007"\n'
    )
    plain = item_file(tmp_path, "jt-plain.md")
    publisher = make_publisher(org_code=None)
    result = publisher.publish_paths([numbered, plain])
    [problem] = result.problems
    assert problem.source == str(plain) and problem.field == "publisher"
    assert "金堂县房产管理局" in problem.problem and "test-config.toml" in problem.problem
    assert "org_codes" in problem.fix
    assert {r.item_id for r in publisher.status()} == {"jt-numbered"}
    assert result.exit_code == 2


def test_a_publish_refused_for_its_org_code_leaves_no_number_behind(make_publisher, tmp_path):
    plain = item_file(tmp_path, "jt-plain.md")
    make_publisher(org_code=None).publish_paths([plain])
    result = make_publisher().publish_paths([plain])
    assert result.problems == []
    assert result.outcome("jt-plain", "recorder").status == "delivered"
    [row] = make_publisher().status("jt-plain")
    assert row.state == "delivered"


def test_formed_on_today_in_beijing_is_not_the_future(make_publisher, tmp_path, clock):
    from datetime import UTC, datetime

    clock.now = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)  # 01:00 on the 27th in Jintang
    path = tmp_path / "jt-early.md"
    path.write_text(
        GOOD.format(extra="", body="").replace("2026-11-20", "2026-11-27"), encoding="utf-8"
    )
    good, problems = make_publisher().validate([path])
    assert problems == [] and good[0].item.formed_on == date(2026, 11, 27)


# --- 7. broken state gives a clear error and leaves files untouched ----------------------


@pytest.mark.parametrize("kind", ["garbage", "foreign", "state-is-a-file", "newer-schema"])
def test_a_broken_state_directory_is_a_state_error(tmp_path, kind):
    import hashlib
    import sqlite3

    from gongkai.errors import StateError
    from gongkai.ledger import SQLiteLedger

    state = tmp_path / "state"
    path = state / "ledger.sqlite3"
    if kind == "state-is-a-file":
        state.write_text("not a folder", encoding="utf-8")
        victim = state
    else:
        state.mkdir()
        victim = path
        if kind == "garbage":
            path.write_bytes(os.urandom(4096))
        else:
            db = sqlite3.connect(path)
            db.execute(
                "CREATE TABLE orders (id)" if kind == "foreign" else "PRAGMA user_version=99"
            )
            db.commit()
            db.close()
    before = hashlib.sha256(victim.read_bytes()).hexdigest()
    files = sorted(victim.parent.iterdir())
    with pytest.raises(StateError) as info:
        SQLiteLedger(path)
    assert str(victim) in str(info.value)
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == before
    assert sorted(victim.parent.iterdir()) == files  # no journal or WAL left beside it


def test_a_ledger_that_cannot_be_written_mid_run_stops_the_run_with_a_summary(
    make_publisher, item_factory, monkeypatch
):
    from gongkai.errors import LedgerWriteError
    from gongkai.ledger.sqlite_editions import RecordEditions

    publisher = make_publisher()
    publisher.publish(item_factory(id="jt-first"))
    real_ingest = RecordEditions.ingest

    def full(self, records, now):
        raise LedgerWriteError("ledger.sqlite3: cannot write the ledger (database or disk is full)")

    monkeypatch.setattr(RecordEditions, "ingest", full)
    result = publisher.publish(item_factory(id="jt-second"))
    assert result.halted and "disk is full" in result.halted
    assert result.exit_code == 1 and result.as_dict()["halted"] == result.halted
    monkeypatch.setattr(RecordEditions, "ingest", real_ingest)
    again = publisher.publish(item_factory(id="jt-second"))
    assert again.outcome("jt-second", "recorder").status == "delivered"


def test_a_toml_error_gives_the_line_of_the_file(tmp_path):
    path = tmp_path / "jt-bad.md"
    path.write_text('+++\ntitle = "公告"\nformed_on 2026-11-20\n+++\n正文\n', encoding="utf-8")
    _, [problem] = load_paths([path])
    assert "at line 3," in problem.problem  # the line as an editor numbers it


def test_archived_files_are_readable_like_any_new_file(tmp_path):
    from gongkai.fileio import write_atomic

    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "item.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "item.json").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "argv",
    [
        ["-c", "x.toml", "-w", "status"],
        ["status", "-c", "x.toml", "-w"],
        ["-c", "y.toml", "status", "-c", "x.toml", "--wide"],
    ],
)
def test_common_options_go_before_or_after_the_verb(argv):
    from gongkai.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.config, args.wide, args.verbose, args.command) == ("x.toml", True, False, "status")


def test_one_round_of_fixes_is_enough_and_typos_get_a_suggestion(tmp_path):
    path = tmp_path / "jt-typos.md"
    path.write_text(
        '+++\ncatalog = "housing.policy"\ntitle = "公告"\npublisher = "金堂县房产管理局"\n'
        'fromed_on = 2026-11-20\nchannels = { ad = ["wechat"] }\n'
        '[[attachments]]\ntitle = "名单"\npath = "missing.csv"\n+++\n正文\n',
        encoding="utf-8",
    )
    _, problems = load_paths([path])
    found = {p.field: p for p in problems}
    # The missing attachment no longer hides the other mistakes.
    assert set(found) == {"attachments.0.path", "formed_on", "fromed_on", "channels.ad"}
    assert found["formed_on"].problem == "is required"
    assert "did you mean 'formed_on'" in found["fromed_on"].fix
    assert "did you mean 'add'" in found["channels.ad"].fix


def test_an_id_taken_from_a_chinese_file_name_says_where_it_came_from(tmp_path):
    path = tmp_path / "征地听证告知.md"
    path.write_text(GOOD.format(extra="", body=""), encoding="utf-8")
    _, [problem] = load_paths([path])
    assert problem.field == "id" and "takes its file name" in problem.problem


def test_a_ledger_failure_after_a_send_never_records_it_as_failed_or_resends_it(
    make_publisher, item_factory, monkeypatch, script, clock
):
    """The send went out; recording it did not. Writing FAILED instead would let an
    operator's retry send it twice: the claim stays in flight and lapses to unknown."""
    from gongkai.errors import LedgerWriteError
    from gongkai.ledger.sqlite_work import ClaimWork

    publisher = make_publisher()
    real_finish = ClaimWork.finish_many

    def full(self, entries):
        raise LedgerWriteError("ledger.sqlite3: cannot write the ledger (database or disk is full)")

    monkeypatch.setattr(ClaimWork, "finish_many", full)
    result = publisher.publish(item_factory(id="jt-sent"))
    assert result.halted and "disk is full" in result.halted
    assert result.outcome("jt-sent", "recorder").status not in ("delivered", "failed")
    [row] = publisher.ledger.rows(item_ids=["jt-sent"])
    assert row.state == "in-flight"  # nothing claims it was or was not sent
    monkeypatch.setattr(ClaimWork, "finish_many", real_finish)
    clock.advance(seconds=publisher.settings.lease_seconds + 1)
    again = publisher.publish(item_factory(id="jt-sent"))
    assert again.outcome("jt-sent", "recorder").status == "unknown"
    assert [sent[0] for sent in script.sent] == ["jt-sent"]  # sent once, never again


def test_a_ledger_failure_while_queuing_a_follow_up_halts_and_the_run_ends(
    make_publisher, item_factory, monkeypatch
):
    from gongkai.errors import LedgerWriteError
    from gongkai.scheduler import Attempted, Scheduler, Task

    def work(task, pause):
        return Attempted(None, follow_up=True)

    def follow_up(row):
        raise LedgerWriteError("ledger.sqlite3: cannot write the ledger (disk I/O error)")

    scheduler = Scheduler(
        concurrency=2,
        caps={"recorder": 2},
        timeouts={"recorder": 60.0},
        work=work,
        abandon=lambda task, timeout: None,
        follow_up=follow_up,
        monotonic=lambda: 0.0,
    )
    scheduler.start()
    publisher = make_publisher()
    publisher.publish(item_factory(id="jt-row"))
    [row] = publisher.ledger.rows(item_ids=["jt-row"])
    scheduler.add([Task(row)])
    outcomes, leftover = scheduler.finish()  # returns: the worker did not die holding a slot
    assert scheduler.halted is not None and "disk I/O error" in str(scheduler.halted)
    assert outcomes == {} and leftover == []


def test_a_stored_edition_is_read_back_even_where_todays_input_rules_refuse_it(item_factory):
    from gongkai.errors import StateError

    payload = item_factory(id="jt-old", title="旧公告").model_dump(mode="json")
    payload["kind"] = "interpretation"  # recorded before interpretations had to name one
    payload["attachments"] = [
        {"title": "名单", "path": "/a/名单.csv", "sha256": "0" * 64},
        {"title": "名单二", "path": "/b/名单.csv", "sha256": "1" * 64},
    ]
    stored = PreparedItem.from_stored(payload, 1, "f" * 64)
    assert [a.filename for a in stored.attachments] == ["名单.csv", "名单.csv"]
    with pytest.raises(StateError, match="edition 1 of item 'jt-old'.*upgrade gongkai"):
        PreparedItem.from_stored({**payload, "title": None}, 1, "f" * 64)


def test_an_attachment_swapped_after_loading_never_reaches_the_archive(make_publisher, tmp_path):
    items = tmp_path / "items"
    items.mkdir()
    (items / "名单.csv").write_text("户主,金额\n张*,1200\n", encoding="utf-8")
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0", encoding="utf-8")
    path = item_file(items, extra=attachment("名单.csv"))
    publisher = make_publisher(plugins=[], channels={"archive": {"every_item": True}})
    loaded, problems = publisher.load([path])
    assert problems == []
    os.unlink(items / "名单.csv")
    os.symlink(secret, items / "名单.csv")  # swapped between reading and sending
    result = publisher.publish(loaded)
    outcome = result.outcome("jt-guide", "archive")
    assert outcome.status == "failed" and "changed after the item was read" in outcome.detail
    archived = list((tmp_path / "state" / "archive").rglob("名单.csv"))
    assert archived == []


def test_an_attachment_file_name_with_a_control_character_is_refused(tmp_path):
    items = tmp_path / "items"
    items.mkdir()
    (items / "名单\u202e.csv").write_text("户主\n", encoding="utf-8")
    path = item_file(items, extra=attachment("名单\u202e.csv"))
    loaded, [problem] = load_paths([path])
    assert loaded == [] and problem.field == "attachments.0.path"
    assert "U+202E" in problem.problem


def test_a_read_only_verb_opens_a_ledger_that_another_run_is_writing(tmp_path):
    import sqlite3

    from gongkai.ledger import SQLiteLedger

    path = tmp_path / "ledger.sqlite3"
    SQLiteLedger(path).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a publish in the middle of a transaction
    try:
        ledger = SQLiteLedger(path, busy_timeout=0.2)
        assert ledger.rows() == []
        ledger.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_the_org_code_advice_is_given_for_org_codes_only(tmp_path):
    from gongkai.config import settings_from_dict
    from gongkai.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        settings_from_dict(
            {"gongkai": {"org_code": "11510121009087532X"}, "org_codes": {"金堂县民政局": "x y"}},
            source="c.toml",
            base_dir=tmp_path,
        )
    assert "统一社会信用代码" in info.value.fix


def test_an_item_on_stdin_attaches_only_from_the_attachments_root(tmp_path, monkeypatch):
    import io

    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.txt").write_text("root:x:0:0", encoding="utf-8")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "名单.csv").write_text("户主,金额\n", encoding="utf-8")
    item = {
        "id": "jt-stdin",
        "catalog": "housing.policy",
        "title": "公共租赁住房申请指南",
        "publisher": "金堂县房产管理局",
        "formed_on": "2026-11-20",
        "body": "申请条件如下。",
    }

    def load(path, root=None):
        data = {**item, "attachments": [{"title": "附件", "path": path}]}
        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(data, ensure_ascii=False)))
        return load_paths(["-"], attachments_root=root)

    loaded, [problem] = load("secret.txt")  # relative to wherever cron runs: refused
    assert loaded == [] and problem.field == "attachments.0.path"
    assert "attachments_root" in problem.fix
    [good], problems = load("名单.csv", shared)
    assert problems == [] and good.item.attachments[0].path == shared / "名单.csv"
    _, [outside] = load("../secret.txt", shared)
    assert "outside" in outside.problem


def test_channels_hides_credentials_kept_in_plain_fields(make_publisher):
    from gongkai.channels.webhook import WebhookChannel
    from gongkai.plugins.hookspecs import hookimpl

    class PlainHeaders(WebhookChannel):
        """A third-party channel whose header values are all plain text."""

        name = "plainhook"

        class Config(WebhookChannel.Config):
            headers: dict[str, str] = {}  # type: ignore[assignment]

    class Plugin:
        @hookimpl
        def gongkai_register_channels(self):
            return [PlainHeaders]

    publisher = make_publisher(
        plugins=[Plugin()],
        channels={
            "plainhook": {
                "url": "https://bot:hunter2@hooks.example.test/notify?key=abc123&site=jt",
                # A header that may carry a credential, by a name no rule knows.
                "headers": {"X-Client": "k-998877", "Content-Type": "application/json"},
            }
        },
    )
    [entry] = [d for d in publisher.describe_channels() if d["name"] == "plainhook"]
    shown = json.dumps(entry["config"])
    for secret in ("hunter2", "abc123", "k-998877"):
        assert secret not in shown
    assert "hooks.example.test/notify" in shown and "application/json" in shown


def test_the_webhook_refuses_a_credential_header_written_in_the_file(make_publisher):
    # Its text header values are shown as they are, so a credential must be a secret.
    from gongkai.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        make_publisher(
            plugins=[],
            channels={"webhook": {"url": "https://x.test/in", "headers": {"X-Api-Key": "k-9"}}},
        )
    assert info.value.key == "channels.webhook.headers"
    assert '"X-Api-Key" = { env = "GONGKAI_WEBHOOK_X_API_KEY" }' in str(info.value)
    assert "k-9" not in str(info.value)
