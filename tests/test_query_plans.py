"""Small runs stay small on a big ledger (issue 7): no query of an empty publish or of
``status ITEM`` reads a whole table. Every statement they run is captured and its plan
checked with EXPLAIN QUERY PLAN, so a new query without an index fails here, at any
ledger size."""

from __future__ import annotations

import re
import sqlite3

import pytest

from gongkai.ledger import SQLiteLedger

#: A plan step that reads a whole table or index of the ledger (a SEARCH uses a key).
FULL_SCAN = re.compile(r"^SCAN (d|s|i|a|deliveries|items|item_state|attempts|files)\b")


@pytest.fixture
def traced(monkeypatch):
    statements: list[str] = []
    connect = SQLiteLedger._connect

    def tracing(self):
        db = connect(self)
        db.set_trace_callback(statements.append)
        return db

    monkeypatch.setattr(SQLiteLedger, "_connect", tracing)
    return statements


def full_scans(path, statements):
    db = sqlite3.connect(path)
    found = []
    for sql in statements:
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT", "WITH")):
            continue
        for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"):
            if FULL_SCAN.match(row[3]):
                found.append((row[3], sql))
    db.close()
    return found


def test_an_empty_publish_and_status_item_use_indexes(make_publisher, item_factory, traced, script):
    from gongkai.errors import TransientError

    publisher = make_publisher()
    script.plan["jt-q-2"] = [TransientError("busy")]
    publisher.publish([item_factory(id=f"jt-q-{n}") for n in range(4)])
    publisher.withdraw("jt-q-3", reason="信息有误，撤回")
    traced.clear()
    publisher.publish()  # retries, schedules, lookups: only what is due
    publisher.history("jt-q-1")
    assert len(traced) >= 5, traced
    assert full_scans(publisher.settings.ledger_path, traced) == []


def test_the_check_itself_sees_a_full_scan(make_publisher, item_factory, traced):
    publisher = make_publisher()
    publisher.publish([item_factory(id="jt-q-0")])
    assert full_scans(publisher.settings.ledger_path, ["SELECT * FROM deliveries d"])
