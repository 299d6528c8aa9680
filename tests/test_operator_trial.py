"""What a new operator ran into in a trial from a fresh clone (issue 6), each pinned.

Real processes where the behaviour is the command's (the no-config note, secrets in a
new shell, the exit code in --json); the library where the rule lives there.
"""

from __future__ import annotations

import json
import shutil

from clihelp import EXAMPLES, as_json, run, write_config

HOOK = '[channels.webhook]\nurl = "http://127.0.0.1:9/x"\ntoken = { env = "GONGKAI_TRIAL_TOKEN" }\n'


def test_verbs_that_only_look_work_without_the_secrets_in_the_shell(tmp_path):
    config = write_config(tmp_path, HOOK)
    item = str(EXAMPLES / "06-housing-policy.md")
    for argv in (("status",), ("validate", item), ("render", item, "--channel", "archive")):
        done = run(*argv, config=config)
        assert done.returncode == 0, (argv, done.stderr)
    listing = run("channels", config=config)
    assert listing.returncode == 0
    assert "not set in this shell: channels.webhook.token ($GONGKAI_TRIAL_TOKEN)" in listing.stdout
    # Sending still needs them, and says which.
    sending = run("publish", item, config=config)
    assert sending.returncode == 2 and "GONGKAI_TRIAL_TOKEN is not set" in sending.stderr
    assert "Traceback" not in sending.stderr + listing.stderr


def test_without_a_config_the_defaults_are_announced(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    done = run("status", cwd=folder)
    assert done.returncode == 0
    assert f"no config.toml in {folder}" in done.stderr and "-c CONFIG" in done.stderr
    assert not (folder / ".gongkai").exists()  # and looking created nothing


def test_withdraw_json_gives_the_exit_code_the_process_returns(tmp_path):
    config = write_config(tmp_path, "[channels.webhook.retry]\nattempts = 1\nschedule = []\n")
    config.write_text(config.read_text("utf-8") + HOOK, "utf-8")
    env = {"GONGKAI_TRIAL_TOKEN": "wh-5f0c2e9a71d4b6e8"}
    items = tmp_path / "items"
    items.mkdir()
    for name in ("06-housing-policy.md", "07-dilapidated-policy.md"):
        shutil.copy(EXAMPLES / name, items / name)
    hook_routing = 'channels = { add = ["webhook"] }\n'
    policy = items / "07-dilapidated-policy.md"
    policy.write_text(
        policy.read_text("utf-8").replace("+++\n", "+++\n" + hook_routing, 1), "utf-8"
    )
    run("publish", str(items), config=config, env=env)  # the webhook delivery fails
    done = run(
        "withdraw", "jt-2026-housing-0302", "--reason", "内容有误", "--json", config=config, env=env
    )
    report = as_json(done)
    assert done.returncode == 0 and report["exit_code"] == 0 and report["ok"] is True


def test_a_withdrawn_items_file_left_in_the_folder_is_a_note(tmp_path):
    config = write_config(tmp_path)
    item = str(EXAMPLES / "06-housing-policy.md")
    run("publish", item, config=config)
    run("withdraw", "jt-2026-housing-0302", "--reason", "政策调整", config=config)
    again = run("publish", item, "--json", config=config)
    report = as_json(again)
    assert again.returncode == 0 and report["problems"] == []
    assert any("move the file out" in note for note in report["notes"])
    checked = run("validate", item, config=config)
    assert checked.returncode == 0


def test_validate_refuses_what_publish_would_refuse_for_the_ledger(tmp_path):
    config = write_config(tmp_path)
    items = tmp_path / "items"
    items.mkdir()
    path = items / "06-housing-policy.md"
    original = (EXAMPLES / path.name).read_text("utf-8")
    path.write_text(original, "utf-8")
    run("publish", str(items), config=config)
    path.write_text(original.replace("申请条件", "申请条件（修订）"), "utf-8")
    run("publish", str(items), config=config)  # edition 2
    path.write_text(original, "utf-8")  # an old copy comes back
    done = run("validate", str(items), "--json", config=config)
    [problem] = as_json(done)["problems"]
    assert done.returncode == 2 and "edition 2 is newer" in problem["problem"]


def test_upper_case_suffixes_are_item_files(tmp_path):
    from gongkai.loader import load_paths

    (tmp_path / "NOTICE.MD").write_text(
        (EXAMPLES / "06-housing-policy.md").read_text("utf-8"), "utf-8"
    )
    record = json.loads((EXAMPLES / "19-municipal-fuel-gas-outlets.json").read_text("utf-8"))
    (tmp_path / "GAS.JSON").write_text(json.dumps(record, ensure_ascii=False), "utf-8")
    loaded, problems = load_paths([tmp_path])
    assert problems == [] and len(loaded) == 2


def test_a_late_publication_is_a_note_and_a_refused_batch_says_nothing_was_published(
    make_publisher, item_factory, tmp_path, capsys
):
    from datetime import date

    result = make_publisher().publish(item_factory(formed_on=date(2026, 10, 1)))
    assert any("published after its statutory deadline" in n for n in result.notes)

    from gongkai.cli import main

    bad = tmp_path / "bad.md"
    bad.write_text("+++\ntitle = 1\n+++\n", "utf-8")
    config = write_config(tmp_path)
    assert main(["publish", str(bad), "-c", str(config)]) == 2
    assert "nothing published: 5 problem(s), listed on stderr" in capsys.readouterr().out


def test_an_item_file_names_its_item_in_status_and_withdraw(tmp_path):
    config = write_config(tmp_path)
    item = str(EXAMPLES / "06-housing-policy.md")
    run("publish", item, config=config)
    shown = run("status", item, config=config)
    assert shown.returncode == 0 and "jt-2026-housing-0302" in shown.stdout
    gone = run("withdraw", item, "--reason", "政策调整", config=config)
    assert gone.returncode == 0 and "withdrawn" in gone.stdout


def test_render_needs_no_channel_when_only_one_is_enabled(tmp_path):
    item = str(EXAMPLES / "06-housing-policy.md")
    alone = run("render", item, config=write_config(tmp_path))
    assert alone.returncode == 0 and '"content_hash"' in alone.stdout
    two = write_config(tmp_path, HOOK)
    asked = run("render", item, config=two)
    assert asked.returncode == 2 and "--channel (archive, webhook)" in asked.stderr
