"""Config loading: errors name file, key and fix; secrets come from the environment."""

from __future__ import annotations

import pytest

from gongkai import Publisher
from gongkai.channels.webhook import WebhookChannel
from gongkai.config import build_channel_settings, load_settings
from gongkai.errors import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_loads(monkeypatch):
    from pathlib import Path

    root = Path(__file__).parents[1]
    settings = load_settings(root / "config.toml")
    assert settings.state_dir == root / ".gongkai"
    with Publisher(settings, load_entry_points=False) as publisher:
        channels = ["archive", "broadcast", "notice_board", "platform", "portal", "wechat"]
        assert sorted(publisher.channels) == channels
        # The platform and WeChat go to simulators started in this process.
        for name in ("platform", "wechat"):
            url = publisher.channels[name].instance.config.base_url
            assert url.startswith("http://127.0.0.1:"), url


def test_unknown_key_names_file_and_key(tmp_path):
    path = write(tmp_path, "[gongkai]\nconcurency = 4\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.file == str(path)
    assert info.value.key == "gongkai.concurency"
    assert "spelling" in info.value.fix


def test_bad_value_names_key(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "[gongkai]\nconcurrency = 0\n"))
    assert info.value.key == "gongkai.concurrency"


def test_unknown_channel_table_is_an_error(tmp_path):
    settings = load_settings(write(tmp_path, "[channels.wechta]\n"))
    with pytest.raises(ConfigError) as info:
        Publisher(settings, load_entry_points=False)
    assert info.value.key == "channels.wechta"
    assert "gongkai channels" in info.value.fix


def test_channel_config_unknown_key(tmp_path):
    settings = load_settings(write(tmp_path, "[channels.archive]\ndirectory = 'x'\n"))
    with pytest.raises(ConfigError) as info:
        Publisher(settings, load_entry_points=False)
    assert info.value.key == "channels.archive.directory"


def test_secret_written_in_file_is_refused(tmp_path):
    settings = load_settings(
        write(
            tmp_path, "[channels.webhook]\nurl = 'http://127.0.0.1:9/x'\ntoken = 's3cret-value'\n"
        )
    )
    from gongkai.channels.webhook import WebhookChannel

    with pytest.raises(ConfigError) as info:
        build_channel_settings(settings, {"webhook": WebhookChannel})
    assert info.value.key == "channels.webhook.token"
    assert "s3cret-value" not in str(info.value)
    assert 'token = { env = "GONGKAI_WEBHOOK_TOKEN" }' in info.value.fix


def test_secret_from_environment(tmp_path, monkeypatch):
    from gongkai.channels.webhook import WebhookChannel

    path = write(
        tmp_path,
        "[channels.webhook]\nurl = 'http://127.0.0.1:9/x'\ntoken = { env = 'HOOK_TOKEN' }\n",
    )
    monkeypatch.delenv("HOOK_TOKEN", raising=False)
    with pytest.raises(ConfigError) as info:
        build_channel_settings(load_settings(path), {"webhook": WebhookChannel})
    assert "HOOK_TOKEN is not set" in str(info.value)
    monkeypatch.setenv("HOOK_TOKEN", "tok-1234567890abcdef")
    channels = build_channel_settings(load_settings(path), {"webhook": WebhookChannel})
    token = channels["webhook"].options.token
    assert token.get_secret_value() == "tok-1234567890abcdef"
    assert "tok-1234567890abcdef" not in repr(channels)


def test_relative_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    sub = tmp_path / "etc"
    sub.mkdir()
    path = sub / "config.toml"
    path.write_text("[gongkai]\nstate_dir = 'state'\ncatalogue = ['default', 'local.toml']\n")
    (sub / "local.toml").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = load_settings(path)
    assert settings.state_dir == sub / "state"
    assert settings.catalogue == ("default", str(sub / "local.toml"))


def test_disabled_channel_is_not_built(tmp_path):
    settings = load_settings(write(tmp_path, "[channels.archive]\nenabled = false\n"))
    assert Publisher(settings, load_entry_points=False).channels == {}


def test_a_bad_org_code_is_refused_when_config_loads(tmp_path):
    # It used to pass `validate`, then mint unreadable index numbers in `publish`.
    path = write(tmp_path, '[org_codes]\n"金堂县教育局" = "bad code!"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "org_codes.金堂县教育局"
    assert "统一社会信用代码" in info.value.fix


def test_no_org_code_by_default(tmp_path):
    # An index number is permanent: none is ever minted from a placeholder code.
    settings = load_settings(write(tmp_path, "[gongkai]\n"))
    assert settings.org_code is None and settings.org_code_for("金堂县教育局") is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [(b"[gongkai]\nstate_dir = '\xb9\xab\xbf\xaa'\n", "not UTF-8"), (None, "cannot be read")],
)
def test_unreadable_config_is_a_config_error(tmp_path, data, problem):
    path = tmp_path / "config.toml"
    if data is None:
        path.mkdir()  # a folder where the file should be
    else:
        path.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.file == str(path) and problem in info.value.problem


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("token = { env = 'HOOK_TOKEN' }", "channels.webhook.token"),
        (
            "headers = { 'X-Api-Key' = { env = 'HOOK_TOKEN' } }",
            "channels.webhook.headers.X-Api-Key",
        ),
    ],
)
def test_a_short_secret_is_refused_when_the_config_loads(tmp_path, monkeypatch, table, key):
    # Scrubbing "abc" from logs would star it inside every id, path and word.
    from gongkai.log import scrub

    path = write(tmp_path, f"[channels.webhook]\nurl = 'http://127.0.0.1:9/x'\n{table}\n")
    monkeypatch.setenv("HOOK_TOKEN", "abc")
    with pytest.raises(ConfigError) as info:
        build_channel_settings(load_settings(path), {"webhook": WebhookChannel})
    assert (info.value.file, info.value.key) == (str(path), key)
    assert "HOOK_TOKEN" in info.value.problem and "16 characters" in info.value.problem
    assert "set HOOK_TOKEN to a longer secret" in info.value.fix
    assert "abc" not in str(info.value)
    assert scrub("jt-2026-abc-notice") == "jt-2026-abc-notice"
    monkeypatch.setenv("HOOK_TOKEN", "a" * 16)  # the shortest accepted
    assert build_channel_settings(load_settings(path), {"webhook": WebhookChannel})


def test_a_short_value_that_is_no_secret_is_not_scrubbed(tmp_path, monkeypatch):
    from gongkai.log import scrub

    path = write(tmp_path, "[channels.webhook]\nurl = { env = 'HOOK_URL' }\n")
    monkeypatch.setenv("HOOK_URL", "http://h.test/")
    channels = build_channel_settings(load_settings(path), {"webhook": WebhookChannel})
    assert channels["webhook"].options.url == "http://h.test/"
    assert scrub("see http://h.test/ for the docs") == "see http://h.test/ for the docs"


def test_the_shipped_config_comments_name_real_fields(monkeypatch):
    """The commented webhook example in config.toml, uncommented, is a valid table whose
    comments say what each secret is (the signing secret is no Bearer token), and the
    WeChat comment names the fields the channel has."""
    import re
    import tomllib
    from pathlib import Path

    from gongkai.channels.wechat import WeChatChannel
    from gongkai.config import settings_from_dict

    text = (Path(__file__).parents[1] / "config.toml").read_text(encoding="utf-8")
    block = text.split("# [channels.webhook]\n", 1)[1].splitlines()
    lines = [line.removeprefix("# ") for line in block if line.startswith("# ")]
    table = tomllib.loads("\n".join(line for line in lines if " = " in line))
    assert set(table) == {"url", "secret", "token"}
    comments = " ".join(line for line in lines if " = " not in line)
    assert "signing secret, whsec_" in comments and "Authorization: Bearer" in comments
    monkeypatch.setenv("GONGKAI_WEBHOOK_SECRET", "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0")
    monkeypatch.setenv("GONGKAI_WEBHOOK_TOKEN", "bearer-token-0123456789")
    settings = settings_from_dict({"channels": {"webhook": table}}, source="config.toml")
    assert build_channel_settings(settings, {"webhook": WebhookChannel})["webhook"].options.secret

    wechat = text.split("[channels.wechat]", 1)[0].rsplit("\n\n", 1)[1]
    named = set(re.findall(r"\b([a-z_]+) = \{ env", wechat)) | set(
        re.findall(r"set ([a-z_]+) \(", wechat)
    )
    assert named == {"appid", "secret"} and named <= set(WeChatChannel.Config.model_fields)
    assert "AppSecret" in wechat
