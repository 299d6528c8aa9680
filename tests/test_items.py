"""The item model, content hash and file loading."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from gongkai.item import CST, content_hash
from gongkai.loader import load_paths
from support import EIGHT_AREAS


def test_item_is_frozen_and_rejects_unknown_fields(item_factory):
    item = item_factory()
    with pytest.raises(ValidationError):
        item.title = "x"
    with pytest.raises(ValidationError, match="Extra inputs"):
        item_factory(colour="red")


@pytest.mark.parametrize("bad", ["Upper", "-leading", "has space", "a" * 129, "中文"])
def test_item_id_is_safe_as_file_name_and_slug(item_factory, bad):
    with pytest.raises(ValidationError):
        item_factory(id=bad)


def test_interpretation_must_name_its_release(item_factory):
    with pytest.raises(ValidationError, match="interpretation"):
        item_factory(kind="interpretation")
    assert item_factory(kind="interpretation", related=["jt-2026-x"]).related == ("jt-2026-x",)


def test_naive_publish_time_means_beijing_time(item_factory):
    from datetime import datetime

    item = item_factory(publish_at=datetime(2027, 1, 4, 9, 0))
    assert item.publish_at.utcoffset() == CST.utcoffset(None)


def test_content_hash_covers_public_fields_only(item_factory):
    base = content_hash(item_factory())
    assert content_hash(item_factory()) == base
    assert content_hash(item_factory(body=item_factory().body + "。")) != base
    assert content_hash(item_factory(channels={"add": ["wechat"]})) == base
    assert content_hash(item_factory(formed_on=date(2026, 11, 21))) != base


def test_attachment_hash_is_part_of_content_hash(tmp_path, item_factory):
    from gongkai.item import sha256_file

    file = tmp_path / "a.csv"
    file.write_text("项目,标准\n", encoding="utf-8")
    one = item_factory(attachments=[{"title": "表", "path": file, "sha256": sha256_file(file)}])
    file.write_text("项目,标准\n青苗,2000\n", encoding="utf-8")
    two = item_factory(attachments=[{"title": "表", "path": file, "sha256": sha256_file(file)}])
    assert content_hash(one) != content_hash(two)


GOOD = """+++
catalog = "housing.policy"
title = "公共租赁住房申请指南"
publisher = "金堂县房产管理局"
formed_on = 2026-11-20
+++
申请条件、申请材料和办理流程如下。
"""


def test_markdown_front_matter_and_default_id(tmp_path):
    (tmp_path / "jt-guide.md").write_text(GOOD, encoding="utf-8")
    [loaded], problems = load_paths([tmp_path])
    assert problems == []
    assert loaded.item.id == "jt-guide"
    assert loaded.item.body == "申请条件、申请材料和办理流程如下。"


def test_json_file_with_several_items(tmp_path):
    records = [
        {
            "id": f"j-{n}",
            "catalog": "housing.policy",
            "title": "指南",
            "body": "正文",
            "publisher": "金堂县房产管理局",
            "formed_on": "2026-11-20",
        }
        for n in range(2)
    ]
    (tmp_path / "batch.json").write_text(json.dumps(records, ensure_ascii=False), "utf-8")
    loaded, problems = load_paths([tmp_path / "batch.json"])
    assert [x.item.id for x in loaded] == ["j-0", "j-1"]
    assert problems == []


def test_bad_files_are_reported_by_path_and_field(tmp_path):
    (tmp_path / "ok.md").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad-date.md").write_text(GOOD.replace("2026-11-20", '"20th Nov"'), "utf-8")
    (tmp_path / "no-front.md").write_text("只有正文\n", encoding="utf-8")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "unclosed.md").write_text("+++\ntitle = 'x'\n", encoding="utf-8")
    loaded, problems = load_paths([tmp_path])
    assert [x.item.id for x in loaded] == ["ok"]
    by_file = {p.source.rsplit("/", 1)[-1]: p for p in problems}
    assert set(by_file) == {"bad-date.md", "no-front.md", "bad.json", "unclosed.md"}
    assert by_file["bad-date.md"].field == "formed_on"
    assert "YYYY-MM-DD" in by_file["bad-date.md"].fix
    assert "+++" in by_file["no-front.md"].fix


def test_attachment_checks(tmp_path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "t.csv").write_text("a,b\n", encoding="utf-8")
    text = GOOD.replace(
        "+++\n申请",
        '[[attachments]]\ntitle = "表"\npath = "files/t.csv"\nsha256 = "'
        + "0" * 64
        + '"\n+++\n申请',
    )
    (tmp_path / "att.md").write_text(text, encoding="utf-8")
    missing = GOOD.replace(
        "+++\n申请", '[[attachments]]\ntitle = "表"\npath = "nope.pdf"\n+++\n申请'
    )
    (tmp_path / "missing.md").write_text(missing, encoding="utf-8")
    loaded, problems = load_paths([tmp_path])
    fields = sorted((p.source.rsplit("/", 1)[-1], p.field) for p in problems)
    assert fields == [("att.md", "attachments.0.sha256"), ("missing.md", "attachments.0.path")]
    assert loaded == []


def test_duplicate_ids_in_one_batch(tmp_path):
    (tmp_path / "a.md").write_text(
        GOOD.replace("+++\ncatalog", '+++\nid = "same"\ncatalog'), "utf-8"
    )
    (tmp_path / "b.md").write_text(
        GOOD.replace("+++\ncatalog", '+++\nid = "same"\ncatalog'), "utf-8"
    )
    (tmp_path / "c.md").write_text(GOOD, "utf-8")
    loaded, problems = load_paths([tmp_path])
    # Which file the author meant is a guess: neither goes out, and both are named.
    assert [e.source for e in loaded] == [str(tmp_path / "c.md")]
    assert {p.source for p in problems} == {str(tmp_path / "a.md"), str(tmp_path / "b.md")}
    assert all(p.field == "id" and "a.md" in str(p) and "b.md" in str(p) for p in problems)


def test_hidden_folders_are_skipped(tmp_path):
    (tmp_path / ".gongkai").mkdir()
    (tmp_path / ".gongkai" / "x.json").write_text("{}", encoding="utf-8")
    (tmp_path / "jt-guide.md").write_text(GOOD, encoding="utf-8")
    loaded, problems = load_paths([tmp_path])
    assert len(loaded) == 1 and problems == []


def test_attachment_folders_are_not_read_as_items(tmp_path):
    # A Markdown attachment (a 名单 kept as .md) beside the items is not an item.
    (tmp_path / "attachments").mkdir()
    (tmp_path / "attachments" / "roster.md").write_text("| 户主 |\n|---|\n| 张三 |\n", "utf-8")
    (tmp_path / "jt-guide.md").write_text(GOOD, encoding="utf-8")
    loaded, problems = load_paths([tmp_path])
    assert [Path(e.source).name for e in loaded] == ["jt-guide.md"] and problems == []
    # Named on its own, it is read (and refused as an item without front matter).
    loaded, problems = load_paths([tmp_path / "attachments" / "roster.md"])
    assert loaded == [] and len(problems) == 1


def test_shipped_examples_are_valid_and_cover_the_eight_areas():
    from pathlib import Path

    from gongkai.catalogue import Catalogue

    loaded, problems = load_paths([Path(__file__).parents[1] / "examples" / "items"])
    assert problems == []
    assert len(loaded) >= 16
    catalogue = Catalogue.load()
    for entry in loaded:
        assert catalogue.problems(entry.item, entry.source) == []
    domains = {catalogue.get(x.item.catalog).domain for x in loaded}
    assert domains >= EIGHT_AREAS
    kinds = {x.item.kind for x in loaded}
    assert kinds == {"release", "interpretation", "response"}
    assert any(x.item.attachments for x in loaded)
    assert any(x.item.publish_at for x in loaded)
    assert any("|---|" in x.item.body for x in loaded)
