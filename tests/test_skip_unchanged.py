"""A daily run reads only the item files that changed (issue 7).

Skipping must never hide an edit: these tests edit files in the ways that defeat a
naive size-and-time check (same size, same second, a changed attachment, a changed
config) and check that the edit is published.
"""

from __future__ import annotations

import os
import time

import pytest

TEMPLATE = """+++
catalog = "housing.policy"
title = "{title}"
publisher = "金堂县房产管理局"
formed_on = 2026-11-20
{extra}+++
申请条件、申请材料和办理流程如下。{body}
"""

HOUR_NS = 3600 * 10**9


def write(
    folder,
    item_id,
    *,
    title="公共租赁住房申请指南",
    body="申请条件如下。",
    extra="",
    age_ns=HOUR_NS,
):
    """Write an item file whose modification time is ``age_ns`` in the past (an hour
    by default: a file the office wrote earlier, not within this second)."""
    path = folder / f"{item_id}.md"
    path.write_text(TEMPLATE.format(title=title, body=body, extra=extra), encoding="utf-8")
    if age_ns:
        then = time.time_ns() - age_ns
        os.utime(path, ns=(then, then))
    return path


@pytest.fixture
def folder(tmp_path):
    items = tmp_path / "items"
    items.mkdir()
    for n in range(5):
        write(items, f"jt-skip-{n}", body=f"第{n}批申请条件如下。")
    return items


def test_a_rerun_reads_nothing_and_one_edit_reads_one_file(make_publisher, folder, script):
    publisher = make_publisher()
    first = publisher.publish_paths([folder])
    assert (first.files_read, first.files_skipped) == (5, 0)
    assert len(script.sent) == 5
    again = publisher.publish_paths([folder])
    assert (again.files_read, again.files_skipped) == (0, 5)
    assert again.outcomes == [] and again.exit_code == 0
    write(folder, "jt-skip-3", body="第3批申请条件已调整，详见附件。")
    edited = publisher.publish_paths([folder])
    assert (edited.files_read, edited.files_skipped) == (1, 4)
    assert edited.editions == {"jt-skip-3": 2}
    assert script.sent[-1][:2] == ("jt-skip-3", 2)


def test_an_edit_in_the_same_second_with_the_same_size_is_published(make_publisher, tmp_path):
    items = tmp_path / "items"
    items.mkdir()
    # Written just now: its time is as close to the run as a file system can tell.
    path = write(items, "jt-racy", body="第一批名单共十二户。", age_ns=0)
    publisher = make_publisher()
    publisher.publish_paths([items])
    before = path.stat()
    path.write_text(path.read_text("utf-8").replace("十二户", "十三户"), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same time
    assert path.stat().st_size == before.st_size
    result = publisher.publish_paths([items])
    assert result.files_read == 1 and result.editions == {"jt-racy": 2}


def test_an_ambiguous_file_that_did_not_change_is_trusted_from_then_on(make_publisher, tmp_path):
    items = tmp_path / "items"
    items.mkdir()
    write(items, "jt-racy", age_ns=0)
    publisher = make_publisher()
    publisher.publish_paths([items])
    [first] = publisher.ledger.file_records([str(items / "jt-racy.md")]).values()
    checked = publisher.publish_paths([items])  # hashed: same bytes, so skipped
    assert (checked.files_read, checked.files_skipped) == (0, 1)
    [record] = publisher.ledger.file_records([str(items / "jt-racy.md")]).values()
    assert record.seen_ns > first.seen_ns  # recorded anew, with this run's start


def test_a_changed_size_with_the_same_time_is_published(make_publisher, folder):
    publisher = make_publisher()
    publisher.publish_paths([folder])
    path = folder / "jt-skip-1.md"
    before = path.stat()
    path.write_text(path.read_text("utf-8") + "补充说明。\n", encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    result = publisher.publish_paths([folder])
    assert result.files_read == 1 and result.editions == {"jt-skip-1": 2}


def test_a_changed_attachment_rereads_its_item(make_publisher, tmp_path):
    items = tmp_path / "items"
    items.mkdir()
    table = items / "名单.csv"
    table.write_text("户主,金额\n张*,1200\n", encoding="utf-8")
    old = time.time_ns() - HOUR_NS
    os.utime(table, ns=(old, old))
    write(items, "jt-list", extra='[[attachments]]\ntitle = "名单"\npath = "名单.csv"\n')
    publisher = make_publisher()
    publisher.publish_paths([items])
    table.write_text("户主,金额\n张*,1300\n", encoding="utf-8")
    result = publisher.publish_paths([items])
    assert result.files_read == 1 and result.editions == {"jt-list": 2}


def test_a_config_change_rereads_every_file(make_publisher, folder, tmp_path):
    make_publisher().publish_paths([folder])
    wider = make_publisher(
        channels={
            "recorder": {"every_item": True, "retry": {"attempts": 3}},
            "archive": {"every_item": True},
        }
    )
    result = wider.publish_paths([folder])
    assert (result.files_read, result.files_skipped) == (5, 0)
    archived = [o for o in result.outcomes if o.channel == "archive"]
    assert {o.status for o in archived} == {"delivered"} and len(archived) == 5


def test_a_new_file_with_the_id_of_a_skipped_one_publishes_neither(make_publisher, folder):
    publisher = make_publisher()
    publisher.publish_paths([folder])
    copy = folder / "copy" / "jt-skip-2.md"
    copy.parent.mkdir()
    copy.write_text((folder / "jt-skip-2.md").read_text("utf-8") + "另一份。\n", encoding="utf-8")
    result = publisher.publish_paths([folder])
    assert {p.source for p in result.problems} == {str(copy), str(folder / "jt-skip-2.md")}
    assert result.editions == {} and result.exit_code == 2


def test_reread_reads_every_file(make_publisher, folder):
    publisher = make_publisher()
    publisher.publish_paths([folder])
    result = publisher.publish_paths([folder], reread=True)
    assert (result.files_read, result.files_skipped) == (5, 0)
    assert {o.status for o in result.outcomes if o.channel == "recorder"} == {"unchanged"}


def test_a_file_with_a_problem_is_read_every_time(make_publisher, folder):
    write(folder, "jt-bad", extra="fromed_on = 2026-11-20\n")
    publisher = make_publisher()
    first = publisher.publish_paths([folder])
    again = publisher.publish_paths([folder])
    assert first.exit_code == again.exit_code == 2
    assert (again.files_read, again.files_skipped) == (1, 5)
    assert [p.source for p in again.problems] == [str(folder / "jt-bad.md")]


def test_a_new_process_with_the_same_config_skips_too(make_publisher, folder):
    make_publisher().publish_paths([folder])
    # Built afresh, as the next cron run is: new plugin objects, same deployment.
    result = make_publisher().publish_paths([folder])
    assert (result.files_read, result.files_skipped) == (0, 5)


# --- the batch is read a chunk at a time ----------------------------------------------


def test_a_shared_id_far_apart_in_a_big_batch_publishes_neither(
    make_publisher, folder, monkeypatch
):
    import gongkai.batch

    monkeypatch.setattr(gongkai.batch, "CHUNK", 2)  # the two files land in different chunks
    late = folder / "zz-late"
    late.mkdir()
    write(late, "jt-skip-0", body="另一份同号文件。")
    result = make_publisher().publish_paths([folder])
    refused = {p.source for p in result.problems if p.field == "id"}
    assert refused == {str(folder / "jt-skip-0.md"), str(late / "jt-skip-0.md")}
    assert sorted(result.editions) == [f"jt-skip-{n}" for n in range(1, 5)]


def test_ids_the_quick_look_cannot_read_are_parsed(make_publisher, folder, monkeypatch):
    import gongkai.batch

    monkeypatch.setattr(gongkai.batch, "CHUNK", 2)
    # A literal-string id and a multi-line value: the look defers to the TOML parser.
    write(folder, "a-first", extra="id = 'jt-skip-4'\n")
    write(folder, "a-second", extra='summary = """\n两行\n摘要"""\nid = "jt-skip-3"\n')
    result = make_publisher().publish_paths([folder])
    refused = sorted(p.source for p in result.problems if p.field == "id")
    assert refused == sorted(
        str(folder / f"{name}.md") for name in ("a-first", "jt-skip-4", "a-second", "jt-skip-3")
    )
    assert sorted(result.editions) == [f"jt-skip-{n}" for n in range(3)]


def test_peek_ids_finds_the_items_id_and_only_it():
    from gongkai.loader import peek_ids

    assert peek_ids('+++\nid = "jt-a"\ntitle = "x"\n+++\n正文', ".md", "f") == ["jt-a"]
    assert peek_ids('+++\ntitle = "x"\n+++\n正文', ".md", "f") == ["f"]  # the file name
    assert peek_ids('+++\n[channels]\nid = "z"\n+++\n', ".md", "f") == ["f"]
    assert peek_ids("+++\nidx = 1\n+++\n", ".md", "f") == ["f"]
    assert peek_ids('+++\n"id" = "a"\n+++\n', ".md", "f") is None
    assert peek_ids('[{"id": "a"}, {"id": "b"}]', ".json", "f") == ["a", "b"]


def test_a_relative_and_an_absolute_path_name_the_same_files(make_publisher, folder, monkeypatch):
    publisher = make_publisher()
    monkeypatch.chdir(folder.parent)
    publisher.publish_paths(["items"])  # the office, from its folder
    result = publisher.publish_paths([folder])  # cron, with the full path
    assert (result.files_read, result.files_skipped) == (0, 5)


def test_the_config_files_location_does_not_make_every_file_read(tmp_path, folder):
    from gongkai import Publisher

    text = (
        f'[gongkai]\nstate_dir = "{tmp_path / "state"}"\norg_code = "11510121009087532X"\n'
        "[channels.archive]\nevery_item = true\n"
    )
    (tmp_path / "a.toml").write_text(text, encoding="utf-8")
    (tmp_path / "b.toml").write_text(text, encoding="utf-8")
    with Publisher.from_config(tmp_path / "a.toml") as first:
        first.publish_paths([folder])
    with Publisher.from_config(tmp_path / "b.toml") as second:
        result = second.publish_paths([folder])
    assert (result.files_read, result.files_skipped) == (0, 5)


def test_a_big_publish_lists_only_what_needs_someone(tmp_path):
    from clihelp import as_json, run, write_config

    items = tmp_path / "items"
    items.mkdir()
    for n in range(205):
        write(items, f"jt-big-{n:03d}", body=f"第{n}号。")
    bad = write(items, "jt-big-bad", extra='channels = { add = ["no_such_channel"] }\n')
    config = write_config(tmp_path)
    human = run("publish", str(items), config=config)
    assert human.returncode == 2
    assert "jt-big-000" not in human.stdout  # 205 deliveries are summed up, not listed
    assert "205 delivered" in human.stdout and "not listed" in human.stdout
    assert str(bad) in human.stderr
    report = as_json(run("publish", str(items), "--json", "--reread", config=config))
    assert len(report["outcomes"]) >= 205  # --json lists every pair
    assert report["files_read"] == 206
