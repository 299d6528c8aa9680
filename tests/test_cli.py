"""The `gongkai` command end to end: real processes, real SQLite, real files."""

from __future__ import annotations

import io
import json
import logging
import shutil
from datetime import UTC, datetime

from clihelp import EXAMPLES, ROOT, as_json, run, write_config


def test_main_job_publishes_examples_then_rerun_delivers_nothing(tmp_path):
    # The shipped scheduled example goes out on its publish_at; after that date it is
    # simply delivered with the rest (the real clock runs in these processes).
    waiting = datetime.now(UTC) < datetime(2026, 11, 30, 1, tzinfo=UTC)
    config = write_config(tmp_path)
    first = run("publish", str(EXAMPLES), "--json", config=config)
    assert first.returncode == 0, first.stderr
    report = as_json(first)
    archive = [o for o in report["outcomes"] if o["channel"] == "archive"]
    assert {o["status"] for o in archive} == (
        {"delivered", "scheduled"} if waiting else {"delivered"}
    )
    assert len([o for o in archive if o["status"] == "delivered"]) >= 15
    second = run("publish", str(EXAMPLES), "--json", config=config)
    assert second.returncode == 0
    again = as_json(second)
    # Nothing changed: every file is skipped unread, and nothing is reported per pair.
    assert again["files_read"] == 0 and again["files_skipped"] == report["files_read"] >= 15
    assert again["outcomes"] == []
    records = list((tmp_path / "state" / "archive").rglob("item.json"))
    assert len(records) == len(archive) - waiting  # a scheduled one is not out yet


def test_logs_are_json_lines_when_piped(tmp_path):
    result = run("publish", str(EXAMPLES / "06-housing-policy.md"), config=write_config(tmp_path))
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    delivered = [e for e in lines if e["event"] == "delivered"]
    assert delivered and {"item_id", "channel", "edition", "attempt"} <= set(delivered[0])
    assert "item" in result.stdout  # the summary table goes to stdout


def test_broken_files_are_reported_and_the_rest_published(tmp_path):
    items = tmp_path / "items"
    shutil.copytree(EXAMPLES, items)
    (items / "broken-date.md").write_text(
        '+++\ncatalog = "housing.policy"\ntitle = "指南"\npublisher = "金堂县房产管理局"\n'
        'formed_on = "下周一"\n+++\n申请条件、申请材料、办理流程。\n',
        encoding="utf-8",
    )
    (items / "broken-elements.md").write_text(
        '+++\ncatalog = "land.compensation-notice"\ntitle = "补偿公告"\n'
        'publisher = "金堂县人民政府"\nformed_on = 2026-11-20\n+++\n补偿标准见附件。\n',
        encoding="utf-8",
    )
    result = run("publish", str(items), "--json", config=write_config(tmp_path))
    assert result.returncode == 2
    assert f"{items / 'broken-date.md'}: field 'formed_on'" in result.stderr
    assert f"{items / 'broken-elements.md'}: field 'body'" in result.stderr
    assert "安置方式" in result.stderr
    report = as_json(result)
    delivered = [o for o in report["outcomes"] if o["status"] == "delivered"]
    assert len(delivered) >= 15
    assert {p["source"].rsplit("/", 1)[-1] for p in report["problems"]} == {
        "broken-date.md",
        "broken-elements.md",
    }


def test_status_render_validate_channels_withdraw_retry(tmp_path):
    config = write_config(tmp_path)
    one = EXAMPLES / "09-dilapidated-subsidy-list.md"
    assert run("publish", str(one), config=config).returncode == 0

    status = as_json(run("status", "jt-2026-dilapidated-0403", "--json", config=config))
    assert [(r["channel"], r["state"], r["edition"]) for r in status] == [
        ("archive", "delivered", 1)
    ]

    rendered = run("render", str(one), "--channel", "archive", config=config)
    assert rendered.returncode == 0
    record = json.loads(rendered.stdout)
    assert record["edition"] == 1  # the same content as what was delivered
    assert "510121194801251981" not in rendered.stdout  # masked in previews too
    by_id = run("render", "jt-2026-dilapidated-0403", "--channel", "archive", config=config)
    assert json.loads(by_id.stdout)["content_hash"] == record["content_hash"]

    assert run("validate", str(EXAMPLES), config=config).returncode == 0
    channels = as_json(run("channels", "--json", config=config))
    assert {c["name"]: c["configured"] for c in channels}["archive"] == "enabled"

    withdrawn = run("withdraw", "jt-2026-dilapidated-0403", "--reason", "名单有误", config=config)
    assert withdrawn.returncode == 0, withdrawn.stdout + withdrawn.stderr
    assert list((tmp_path / "state" / "archive").rglob("withdrawn.json"))
    assert run("retry", "--json", config=config).returncode == 0
    missing = run("status", "no-such-item", config=config)
    assert missing.returncode == 2 and "no-such-item" in missing.stderr


def test_usage_and_config_errors_exit_2(tmp_path):
    assert run("publish", "--nope", config=write_config(tmp_path)).returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[gongkai]\nconcurency = 2\n", encoding="utf-8")
    result = run("publish", config=bad)
    assert result.returncode == 2
    assert "gongkai.concurency: unknown key" in result.stderr


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "gongkai publish examples/items" in readme
    assert "python -m pytest -q" in readme and "python -m pytest -q" in ci


def test_log_redaction_processor_scrubs_registered_secrets():
    from gongkai.log import configure, get_logger, register_secret

    stream = io.StringIO()
    configure(json_lines=True, stream=stream, level=logging.INFO)
    register_secret("wx-secret-0099")
    get_logger("test").error("failed", error="token wx-secret-0099 rejected")
    assert "wx-secret-0099" not in stream.getvalue()
    assert "**********" in stream.getvalue()


def test_docs_catalogue_lists_every_entry():
    from gongkai.catalogue import Catalogue

    page = (ROOT / "docs" / "catalogue.md").read_text(encoding="utf-8")
    for key in Catalogue.load().entries:
        assert f"`{key}`" in page, key


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`gongkai status --json | head` must not print a traceback."""
    import os
    import subprocess
    import sys

    config = write_config(tmp_path)
    run("publish", str(EXAMPLES), config=config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gongkai.cli", "status", "--json", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tests")},
    )
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read()
    assert proc.wait(60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_retry_of_an_unknown_item_is_a_usage_error(tmp_path):
    result = run("retry", "no-such-item", config=write_config(tmp_path))
    assert result.returncode == 2
    assert "no item 'no-such-item'" in result.stderr
