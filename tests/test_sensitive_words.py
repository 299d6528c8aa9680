"""The sensitive-word check (issue 8, pre-publication checks): ``[content]
sensitive_words`` matched exactly and normalised, reported with the item, the field,
where and the fix; the list from a file; a changed list re-checks unchanged files.

The words are neutral placeholders: what a deployment lists is its own business.
"""

from __future__ import annotations

import re
import sys
from types import SimpleNamespace

import pytest
from test_skip_unchanged import write as write_item

from clihelp import as_json, run, write_config
from gongkai import Publisher
from gongkai.config import ContentSettings, load_settings
from gongkai.errors import ConfigError
from gongkai.plugins import sensitive
from gongkai.plugins.manager import DEFAULT_PLUGINS

WORDS = ("内部资料", "绝密", "测试敏感词", "ABC")


def check(item, words=WORDS):
    settings = SimpleNamespace(content=ContentSettings(sensitive_words=words))
    return sensitive.gongkai_validate_item(item=item, source="items/x.md", settings=settings)


def body_problems(item_factory, body, words=WORDS):
    return check(item_factory(body=body), words)


def test_the_plugin_is_built_in():
    assert "gongkai.plugins.sensitive" in DEFAULT_PLUGINS


def test_an_exact_match_names_the_item_field_word_and_fix(item_factory):
    [problem] = body_problems(item_factory, "申请条件如下。\n本文件为内部资料，不得外传。")
    assert (problem.source, problem.item_id, problem.field) == ("items/x.md", "jt-test-001", "body")
    assert "contains the sensitive word '内部资料' in line 2" in problem.problem
    assert "written" not in problem.problem  # written exactly as listed
    assert "本文件为内部资料，不得外传。" in problem.problem
    assert "[content] sensitive_words" in problem.fix and "rewrite or remove" in problem.fix


@pytest.mark.parametrize(
    ("written", "word"),
    [
        ("ＡＢＣ", "ABC"),  # full-width letters
        ("abc", "ABC"),  # case
        ("内 部　资\t料", "内部资料"),  # a space, a full-width space, a tab
        ("内部\n资料", "内部资料"),  # a line break
        ("测·试·敏·感·词", "测试敏感词"),  # separators inside the word
        ("测-试_敏*感|词", "测试敏感词"),
        ("內部資料", "内部资料"),  # traditional characters
        ("內 部．資 料", "内部资料"),  # all at once (． is a full-width full stop)
    ],
)
def test_a_disguised_word_is_found_and_its_spelling_quoted(item_factory, written, word):
    [problem] = body_problems(item_factory, f"说明：{written}。")
    assert f"the sensitive word '{word}'" in problem.problem
    assert f"(written '{written.replace(chr(10), ' ')}')" in problem.problem


def test_zero_width_characters_are_dropped_and_shown():
    # An item refuses them already; text a later prepare hook makes is checked too.
    text = "绝\u200b密"
    [finding] = sensitive.matcher(WORDS).find(text)
    assert "(written '绝<U+200B>密')" in sensitive.describe(text, finding)


def test_a_listed_word_in_full_width_or_traditional_form_matches_plain_text(item_factory):
    problems = body_problems(item_factory, "ABC公司的内部资料", words=("ＡＢＣ", "內部資料"))
    assert sorted(p.problem.split("'")[1] for p in problems) == sorted(["ＡＢＣ", "內部資料"])


def test_every_published_text_is_checked_and_named(item_factory, tmp_path):
    table = tmp_path / "名单.csv"
    table.write_text("户主,金额\n张*,1200\n", encoding="utf-8")
    item = item_factory(
        title="关于绝密事项的通知",
        keywords=("住房", "测试 敏感词"),
        attachments=[{"title": "內部資料清单", "path": table, "sha256": "0" * 64}],
        contact="咨询电话：ABC热线",
    )
    fields = {p.field: p.problem for p in check(item)}
    assert set(fields) == {"title", "keywords.1", "attachments.0.title", "contact"}
    assert "'测试敏感词' (written '测试 敏感词')" in fields["keywords.1"]
    assert "'内部资料' (written '內部資料')" in fields["attachments.0.title"]
    assert "in line" not in fields["title"]  # a one-line field has no lines to count


def test_benign_text_raises_nothing(item_factory):
    body = (
        "内部审计资料已归档。绝对密切联系群众。测试结果敏感度高。ABD公司，A.B.D.C\n"
        "| 户主 | 金额 |\n|---|---|\n| 张* | 1200 |\n"
    )
    assert body_problems(item_factory, body) == []
    assert check(item_factory(), words=()) == []


def test_a_word_found_often_is_one_problem_and_the_longest_word_wins(item_factory):
    problems = body_problems(
        item_factory, "内部资料一。\n内部资料二。\n內部資料三。", words=("内部", "内部资料")
    )
    [problem] = problems
    assert "'内部资料'" in problem.problem and "3 times in all" in problem.problem


def test_the_quote_is_short_and_stars_long_numbers(item_factory):
    body = "甲" * 40 + "身份证号码510121199001011234为内部资料，电话138 0013 8000。" + "乙" * 40
    [problem] = body_problems(item_factory, body)
    quote = re.search(r": '(.*)'$", problem.problem).group(1)
    assert quote.startswith("…") and quote.endswith("…")
    assert len(quote.strip("…")) <= sensitive.EXCERPT
    assert "内部资料" in quote
    assert not re.search(r"\d{7,}", problem.problem.replace(" ", ""))


def test_words_that_normalise_to_nothing_are_ignored(item_factory):
    assert body_problems(item_factory, "A · B", words=("·", "・")) == []


def test_without_opencc_traditional_is_not_matched_and_that_is_said_once(item_factory, monkeypatch):
    warnings = []
    monkeypatch.setitem(sys.modules, "opencc", None)  # the import fails
    monkeypatch.setattr(
        sensitive, "log", SimpleNamespace(warning=lambda *a, **k: warnings.append(k))
    )
    caches = (sensitive._t2s, sensitive._simplified_char, sensitive.matcher)
    for cached in caches:
        cached.cache_clear()
    try:
        assert body_problems(item_factory, "內部資料、內部資料") == []
        [problem] = body_problems(item_factory, "内 部 资 料")
        assert "'内部资料'" in problem.problem
        assert len(warnings) == 1 and "opencc" in warnings[0]["fix"]
    finally:
        for cached in caches:  # the next test finds OpenCC again
            cached.cache_clear()


# --- config -------------------------------------------------------------------------------


def write_toml(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_words_come_from_the_list_and_the_file(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "words.txt").write_text(
        "\ufeff# 本单位的敏感词\n绝密\n\n  内部资料  # 含注释\n绝密\n", encoding="utf-8"
    )
    settings = load_settings(
        write_toml(
            tmp_path,
            '[content]\nsensitive_words = ["测试敏感词", "绝密"]\n'
            'sensitive_words_file = "lists/words.txt"\n',
        )
    )
    content = settings.content
    assert content.sensitive_words_file == tmp_path / "lists" / "words.txt"
    assert content.file_words == ("绝密", "内部资料")
    assert content.words == ("测试敏感词", "绝密", "内部资料")
    assert hash(content) == hash(content.model_copy())  # frozen and hashable


@pytest.mark.parametrize(
    ("setup", "key", "said"),
    [
        (None, "content.sensitive_words_file", "does not exist"),
        ("内部资料\n".encode("gbk"), "content.sensitive_words_file", "not UTF-8"),
        ("folder", "content.sensitive_words_file", "cannot be read"),
    ],
)
def test_an_unusable_word_file_is_a_config_error(tmp_path, setup, key, said):
    target = tmp_path / "words.txt"
    if setup == "folder":
        target.mkdir()
    elif setup is not None:
        target.write_bytes(setup)
    path = write_toml(tmp_path, '[content]\nsensitive_words_file = "words.txt"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    error = caught.value
    assert (error.file, error.key) == (str(path), key)
    assert said in error.problem and str(target) in error.problem
    assert error.fix


def test_an_empty_word_and_a_made_up_key_are_config_errors(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(write_toml(tmp_path, '[content]\nsensitive_words = ["绝密", "  "]\n'))
    assert caught.value.key == "content.sensitive_words"
    assert "word 2 is empty" in caught.value.problem and "remove" in caught.value.fix
    with pytest.raises(ConfigError) as caught:
        load_settings(write_toml(tmp_path, '[content]\nfile_words = ["绝密"]\n'))
    assert (caught.value.key, caught.value.problem) == ("content.file_words", "unknown key")
    with pytest.raises(ConfigError) as caught:
        load_settings(write_toml(tmp_path, '[content]\nsensitive_word = ["绝密"]\n'))
    assert caught.value.key == "content.sensitive_word"


# --- end to end ---------------------------------------------------------------------------


def write_items(folder, **bodies):
    """Item files written an hour ago, so that a rerun may trust size and time."""
    folder.mkdir(exist_ok=True)
    for item_id, body in bodies.items():
        write_item(folder, item_id, body=body)
    return folder


def test_validate_and_publish_refuse_the_item_and_publish_the_rest(tmp_path):
    config = write_config(tmp_path, '[content]\nsensitive_words = ["内部资料"]\n')
    items = write_items(
        tmp_path / "items", **{"jt-bad": "本文件为内部资料，请勿外传。", "jt-good": "欢迎咨询。"}
    )
    bad = str(items / "jt-bad.md")

    checked = run("validate", str(items), config=config)
    assert checked.returncode == 2, checked.stderr
    assert f"{bad}: field 'body': contains the sensitive word '内部资料'" in checked.stderr

    published = run("publish", str(items), "--json", config=config)
    assert published.returncode == 2, published.stderr
    report = as_json(published)
    [problem] = report["problems"]
    assert (problem["source"], problem["item_id"], problem["field"]) == (bad, "jt-bad", "body")
    assert "'内部资料'" in problem["problem"] and "sensitive_words" in problem["fix"]
    assert {o["item_id"] for o in report["outcomes"]} == {"jt-good"}
    delivered = {o["channel"] for o in report["outcomes"] if o["status"] == "delivered"}
    assert delivered == {"archive"}


def test_a_changed_word_file_rechecks_files_skipped_as_unchanged(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("绝密\n", encoding="utf-8")
    config = write_config(tmp_path, '[content]\nsensitive_words_file = "words.txt"\n')
    items = write_items(tmp_path / "items", **{"jt-notice": "本文件为内部资料。"})

    def publish():
        with Publisher.from_config(config, load_entry_points=False) as publisher:
            return publisher.intake_context(), publisher.publish_paths([items])

    context, first = publish()
    assert first.exit_code == 0 and first.editions == {"jt-notice": 1}
    same, again = publish()
    assert (same, again.files_read, again.files_skipped) == (context, 0, 1)

    words.write_text("绝密\n内部资料\n", encoding="utf-8")  # the config file is untouched
    changed, rechecked = publish()
    assert changed != context
    assert (rechecked.files_read, rechecked.files_skipped) == (1, 0)
    [problem] = rechecked.problems
    assert (problem.field, problem.item_id) == ("body", "jt-notice")
    assert rechecked.exit_code == 2


@pytest.mark.parametrize(
    "body",
    [
        "本文件为内部<b></b>资料。",
        "内部<b>资</b>料",
        "内部&#36164;料",
        "本文件为内部[资料](https://www.jintang.gov.cn/)。",
        "内部&nbsp;资料",
    ],
)
def test_a_word_split_by_markup_or_entities_is_found(item_factory, body):
    problems = body_problems(item_factory, body)
    assert [p.field for p in problems] == ["body"]
    assert "the sensitive word '内部资料'" in problems[0].problem
