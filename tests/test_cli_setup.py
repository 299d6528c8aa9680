"""`gongkai init` and `gongkai catalogue` as an operator runs them: real processes."""

from __future__ import annotations

import tomllib

from clihelp import as_json, run, write_config
from gongkai.catalogue import Catalogue
from gongkai.config import load_settings

ORG_CODE = "11510121009087532X"
EXAMPLE = "items/dilapidated-acceptance-example.md"


# --- init -----------------------------------------------------------------------------


def test_init_with_org_code_gives_a_folder_that_publishes(tmp_path):
    folder = tmp_path / "jintang"
    result = run("init", str(folder), "--org-code", ORG_CODE)
    assert result.returncode == 0, result.stderr
    assert f"created {folder / 'config.toml'}" in result.stdout
    assert f"created {folder / EXAMPLE}" in result.stdout
    assert "next steps:" in result.stdout and f"cd {folder}" in result.stdout
    assert "gongkai validate items" in result.stdout and "gongkai publish items" in result.stdout
    assert "uncomment org_code" not in result.stdout  # already set: nothing to tell

    settings = load_settings(folder / "config.toml")
    assert settings.org_code == ORG_CODE
    assert settings.state_dir == folder / ".gongkai"
    assert settings.channels == {"archive": {"every_item": True}}

    # The next steps, as printed, from inside the folder with no --config.
    assert run("validate", "items", cwd=folder).returncode == 0
    published = run("publish", "items", "--json", cwd=folder)
    assert published.returncode == 0, published.stderr
    [archived] = [o for o in as_json(published)["outcomes"] if o["channel"] == "archive"]
    assert archived["status"] == "delivered"
    record = folder / ".gongkai" / "archive"
    assert [p.parent.parent.name for p in record.rglob("item.json")] == [archived["item_id"]]


def test_init_without_org_code_leaves_it_for_the_operator(tmp_path):
    folder = tmp_path / "new" / "county"
    result = run("init", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    report = as_json(result)
    assert report["created"] == [
        str(folder),
        str(folder / "items"),
        str(folder / "config.toml"),
        str(folder / EXAMPLE),
    ]
    steps = report["next"]
    assert steps[0] == f"cd {folder}"
    assert any("org_code" in step and "统一社会信用代码" in step for step in steps)
    assert steps[-3:-1] == ["gongkai validate items", "gongkai publish items"]
    text = (folder / "config.toml").read_text(encoding="utf-8")
    assert "# org_code = " in text
    assert "org_code" not in tomllib.loads(text)["gongkai"]
    load_settings(folder / "config.toml")  # loads as written


def test_init_defaults_to_the_current_folder(tmp_path):
    result = run("init", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "config.toml").is_file() and (tmp_path / EXAMPLE).is_file()
    assert not any(step.startswith("cd ") for step in as_json(result)["next"])


def test_init_never_overwrites(tmp_path):
    assert run("init", str(tmp_path)).returncode == 0
    config = tmp_path / "config.toml"
    config.write_text("# the operator's own\n", encoding="utf-8")
    again = run("init", str(tmp_path))
    assert again.returncode == 2
    assert f"{config} already exists" in again.stderr and "move it aside" in again.stderr
    assert config.read_text(encoding="utf-8") == "# the operator's own\n"

    config.unlink()  # the example alone also stops it, before anything is written
    example = run("init", str(tmp_path), "--org-code", ORG_CODE)
    assert example.returncode == 2
    assert f"{tmp_path / EXAMPLE} already exists" in example.stderr
    assert not config.exists()


def test_init_refuses_a_malformed_org_code(tmp_path):
    folder = tmp_path / "x"
    for bad, why in [
        ("11510121009087532x", "capitals"),
        ("1151012100908", "this one has 13"),
        ("11510121-009087532", "18 characters"),
    ]:
        result = run("init", str(folder), "--org-code", bad)
        assert result.returncode == 2, bad
        assert f"org code '{bad}'" in result.stderr and why in result.stderr
    assert not folder.exists()


# --- catalogue ------------------------------------------------------------------------


def test_catalogue_lists_every_entry_and_creates_nothing(tmp_path):
    config = write_config(tmp_path)
    result = run("catalogue", config=config)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header == ["key", "name", "domain", "openness", "time", "limit", "channels"]
    line = next(x for x in result.stdout.splitlines() if x.startswith("land.compensation-notice"))
    assert line.split() == [
        "land.compensation-notice",
        "征地补偿安置方案公告",
        "land",
        "decision",
        "10",
        "working",
        "days",
        "platform",
        "portal",
        "notice_board",
        "broadcast",
        "[wechat]",
    ]
    for key in Catalogue.load().entries:
        assert f"\n{key} " in result.stdout, key
    assert not (tmp_path / "state").exists()  # a read-only verb


def test_catalogue_json_lists_the_configured_catalogue(tmp_path):
    local = tmp_path / "local.toml"
    local.write_text(
        '[domains]\nservice = "便民服务"\n[[entry]]\nkey = "service.hall-hours"\n'
        'domain = "service"\nname = "政务服务中心办事时间"\nbasis = "本县规定"\n'
        'subject = "金堂县政务服务中心"\nresponsible_unit = "金堂县政务服务中心"\n'
        'elements = ["办公时间|办事时间"]\nchannels = { required = ["portal"] }\n',
        encoding="utf-8",
    )
    config = write_config(tmp_path, extra="")
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[gongkai]\n", '[gongkai]\ncatalogue = ["default", "local.toml"]\n'
        ),
        encoding="utf-8",
    )
    entries = as_json(run("catalogue", "--json", config=config))
    assert [e["key"] for e in entries] == [*Catalogue.load().entries, "service.hall-hours"]
    mine = entries[-1]
    assert mine["elements"] == [["办公时间", "办事时间"]]
    assert mine["domain_name"] == "便民服务"
    assert mine["time_limit"] == {"days": 20, "unit": "working"} and mine["posting_min"] is None
    assert not (tmp_path / "state").exists()


def test_catalogue_entry_shows_elements_channels_and_periods(tmp_path):
    config = write_config(tmp_path)
    result = run("catalogue", "land.compensation-notice", config=config)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("land.compensation-notice  征地补偿安置方案公告\n")
    for line in [
        "time limit:        10 working days from formed_on",
        "posting period:    at least 30 calendar days",
        "update cycle:      方案拟定后",
        "required channels: platform portal notice_board broadcast",
        "optional channels: wechat",
        "  - 安置方式 / 安置途径",
        'an item names it with catalog = "land.compensation-notice"',
    ]:
        assert f"\n{line}\n" in text, line

    data = as_json(run("catalogue", "poverty.dibao-initial", "--json", config=config))
    assert data["key"] == "poverty.dibao-initial"
    assert data["time_limit"] == {"days": 10, "unit": "working"}
    assert data["posting_min"] == {"days": 7, "unit": "working"}
    assert data["channels"] == {"required": ["platform", "notice_board"], "optional": ["broadcast"]}
    assert data["elements"] == [["初审对象", "申请人"], ["保障人数", "家庭人口"]]
    assert data["openness"] == "execution" and data["openness_label"] == "执行公开"
    assert not (tmp_path / "state").exists()


def test_catalogue_unknown_entry_suggests_close_keys(tmp_path):
    config = write_config(tmp_path)
    result = run("catalogue", "land.compensation", config=config)
    assert result.returncode == 2
    assert "no catalogue entry 'land.compensation'" in result.stderr
    assert "did you mean land.compensation-notice, land.compensation-payment" in result.stderr
    nothing_close = run("catalogue", "xyz", "--json", config=config)
    assert nothing_close.returncode == 2 and nothing_close.stdout == ""
    assert "did you mean" not in nothing_close.stderr
