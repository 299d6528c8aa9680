"""The PostgreSQL ledger end to end, on the real server (tests/support/pg.py): moving
a SQLite ledger over with ``gongkai ledger copy`` (status and parity read the same on
both backends), ``gongkai ledger migrate``, its selection in config, several writers
on one ledger at once, and waking a waiting worker."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import date

import pytest

from clihelp import EXAMPLES, as_json, run, start, write_config
from gongkai import Item, Publisher
from gongkai.config import settings_from_dict
from gongkai.errors import ConfigError, StateError
from gongkai.ledger.select import open_ledger
from support.pg import configure_ledger, fresh_schema

PARITY_AT = "2026-12-01T09:00+08:00"


@pytest.fixture
def pg_url():
    with fresh_schema() as url:
        yield url


def test_copy_moves_the_examples_ledger_and_status_and_parity_read_the_same(tmp_path, pg_url):
    config = write_config(tmp_path)
    assert run("publish", str(EXAMPLES), config=config).returncode == 0
    ledger_file = tmp_path / "state" / "ledger.sqlite3"
    copied = run("ledger", "copy", "--from", f"sqlite:{ledger_file}", "--to", pg_url, "--json")
    assert copied.returncode == 0, copied.stderr
    counts = as_json(copied)["copied"]
    with closing(sqlite3.connect(ledger_file)) as source:
        for table, count in counts.items():
            assert source.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == count
    assert counts["items"] >= 18 and counts["attempts"] > 0 and counts["index_serials"] > 0

    on_pg = tmp_path / "pg" / "config.toml"
    on_pg.parent.mkdir()
    on_pg.write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
    configure_ledger(on_pg, pg_url)
    for verb in (["status"], ["parity", "--now", PARITY_AT]):
        for shown in ([], ["--json"]):
            on_sqlite = run(*verb, *shown, config=config, cwd=tmp_path)
            on_postgres = run(*verb, *shown, config=on_pg, cwd=tmp_path)
            assert on_postgres.returncode == on_sqlite.returncode, on_postgres.stderr
            assert on_postgres.stdout == on_sqlite.stdout

    # New entries after the copy continue the log (its order is the entry's id).
    ledger = open_ledger(pg_url)
    copied_log = ledger.attempts("jt-2026-land-0101")
    ledger.request_withdraw("jt-2026-land-0101", "信息有误", copied_log[-1].finished_at)
    after = ledger.attempts("jt-2026-land-0101")
    assert after[: len(copied_log)] == copied_log and len(after) == len(copied_log) + 1
    ledger.close()

    again = run("ledger", "copy", "--from", f"sqlite:{ledger_file}", "--to", pg_url)
    assert again.returncode == 2
    assert "not empty" in again.stderr and "left untouched" in again.stderr
    ledger = open_ledger(pg_url)
    assert ledger.attempts("jt-2026-land-0101") == after  # the refused copy changed nothing
    ledger.close()


def test_migrate_creates_the_schema_once_and_reports_it(tmp_path, pg_url):
    first = run("ledger", "migrate", "--url", pg_url, "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert as_json(first) == {"ledger": pg_url, "before": 0, "after": 1}
    again = run("ledger", "migrate", "--url", pg_url, cwd=tmp_path)
    assert again.returncode == 0 and "schema 1, up to date" in again.stdout


def test_config_names_the_password_by_variable_never_in_the_file(tmp_path, monkeypatch):
    def load(**gongkai):
        return settings_from_dict({"gongkai": gongkai}, source="c.toml", base_dir=tmp_path)

    url = "postgresql://gk@db.example/gongkai"
    with pytest.raises(ConfigError, match="gongkai.ledger.*password is written in the URL"):
        load(ledger="postgresql://gk:hunter2hunter2hunter2@db.example/gongkai")
    with pytest.raises(ConfigError, match="gongkai.ledger.*PostgreSQL URL"):
        load(ledger="mysql://gk@db.example/gongkai")
    with pytest.raises(ConfigError, match="gongkai.ledger_password.*secret is written"):
        load(ledger=url, ledger_password="hunter2hunter2hunter2")
    secret = {"env": "GONGKAI_PG_PASSWORD"}
    with pytest.raises(ConfigError, match="GONGKAI_PG_PASSWORD is not set"):
        load(ledger=url, ledger_password=secret)
    monkeypatch.setenv("GONGKAI_PG_PASSWORD", "a-long-enough-password-1")
    settings = load(ledger=url, ledger_password=secret)
    assert settings.ledger_secret() == "a-long-enough-password-1"
    assert "a-long-enough-password-1" not in repr(settings)


def _items(folder, ids, version):
    folder.mkdir(parents=True, exist_ok=True)
    for item_id in ids:
        (folder / f"{item_id}.md").write_text(
            f'+++\nid = "{item_id}"\ncatalog = "housing.policy"\ntitle = "公租房申请指南 {version}"\n'
            'publisher = "金堂县房产管理局"\nformed_on = 2026-11-20\n+++\n'
            f"申请条件：在本县有稳定工作（{version}）。申请材料：身份证明。办理流程：个人申请后审核。\n",
            encoding="utf-8",
        )


def test_a_library_and_two_cli_publishers_at_once_leave_no_gaps_or_duplicates(tmp_path, pg_url):
    """Three writers, in three processes, ingest the same items (each with its own
    content, so each makes an edition) and items of their own, at the same time."""
    shared = [f"jt-shared-{n:03d}" for n in range(40)]
    config = configure_ledger(write_config(tmp_path, concurrency=4), pg_url)
    for writer in ("one", "two"):
        own = [f"jt-{writer}-{n:03d}" for n in range(40)]
        _items(tmp_path / writer, shared + own, writer)
    cli = [start("publish", str(tmp_path / w), "--json", config=config) for w in ("one", "two")]
    library = Publisher.from_config(config)
    items = [
        Item(
            id=item_id,
            catalog="housing.policy",
            title=f"公租房申请指南 库 {item_id}",
            body="申请条件：在本县有稳定工作（库）。申请材料：身份证明。办理流程：个人申请后审核。",
            publisher="金堂县房产管理局",
            formed_on=date(2026, 11, 20),
        )
        for item_id in shared + [f"jt-lib-{n:03d}" for n in range(40)]
    ]
    for item in items:  # while the two CLI publishers run
        library.publish(item)
    for process in cli:
        out, err = process.communicate(timeout=300)
        # Exit 1 is allowed: a run may end while another process holds an item's
        # delivery (in-flight) or a newer edition waits behind it (pending).
        assert process.returncode in (0, 1), err
        shown = {o["status"] for o in json.loads(out)["outcomes"] if o["channel"] == "archive"}
        assert shown <= {"delivered", "updated", "unchanged", "in-flight", "pending"}, shown
    ledger = library.ledger
    for item_id in shared:
        assert [e.edition for e in ledger.editions(item_id)] == [1, 2, 3]
    everyone = {s.item_id for s in ledger.item_summaries()}
    assert len(everyone) == 40 * 4
    all_numbers = ledger.index_numbers([(i, "") for i in everyone], allocate=False)
    serials = sorted(int(n.rsplit("-", 1)[1]) for n in all_numbers.values())
    assert serials == list(range(1, 161))  # no gap, no duplicate
    library.close()


def test_a_waiting_worker_wakes_when_another_process_records_work(pg_url):
    waiting, writer = open_ledger(pg_url), open_ledger(pg_url)
    assert waiting.wait_for_work(0, None) is True  # the first call starts listening
    assert waiting.wait_for_work(0, None) is False  # nothing new
    from gongkai.ledger import IngestRecord

    writer.ingest([IngestRecord("a", "h", {"id": "a"}, "x", "t", ("c",))], _now())
    assert waiting.wait_for_work(30, None) is True  # returns on the notice, not the timeout
    assert waiting.wait_for_work(0, None) is False  # one wake-up per notice
    waiting.close()
    writer.close()


def _now():
    from datetime import UTC, datetime

    return datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def test_a_server_out_of_reach_is_a_clear_error_without_the_password():
    secret = "pg-secret-0123456789"
    with pytest.raises(StateError) as caught:
        open_ledger("postgresql://gk@127.0.0.1:1/test", password=secret)
    message = str(caught.value)
    assert "cannot connect to the PostgreSQL ledger" in message and "[gongkai] ledger" in message
    assert secret not in message
