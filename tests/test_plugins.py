"""The plugin manager: built-ins, entry points, broken and duplicate plugins."""

from __future__ import annotations

import sys
import textwrap

import pytest

from gongkai.errors import PermanentError, PluginError
from gongkai.plugins.manager import collect_channels, get_plugin_manager
from support.fakes import Script, recording_plugin


def test_builtins_load_through_the_same_path_as_third_party():
    pm = get_plugin_manager(load_entry_points=False)
    channels = collect_channels(pm)
    assert channels["archive"].plugin == "gongkai.channels.archive"
    assert channels["webhook"].cls.guarantee == "idempotency-key"
    assert pm.problems == []


def test_each_call_builds_a_fresh_manager():
    assert get_plugin_manager(load_entry_points=False) is not get_plugin_manager(
        load_entry_points=False
    )


def test_duplicate_channel_names_are_refused_naming_both():
    def manager():
        return get_plugin_manager(
            load_entry_points=False, extra=[recording_plugin(Script(), name="archive")]
        )

    pm = manager()
    channels = collect_channels(pm)
    assert "archive" not in channels and "webhook" in channels
    assert {p.channel for p in pm.problems} == {"archive"} and len(pm.problems) == 2
    assert "gongkai.channels.archive" in str(pm.problems[0])
    assert "distribution 'gongkai'" in str(pm.problems[0])
    with pytest.raises(PluginError) as info:
        collect_channels(manager(), strict=True)
    assert "'archive'" in str(info.value) and "--strict" in str(info.value)


def test_broken_builtin_is_reported_and_skipped():
    pm = get_plugin_manager(
        load_entry_points=False, builtins=("gongkai.channels.archive", "gongkai.channels.nope")
    )
    assert [p.plugin for p in pm.problems] == ["gongkai.channels.nope"]
    assert "archive" in collect_channels(pm)
    with pytest.raises(PluginError, match="nope"):
        get_plugin_manager(
            load_entry_points=False, strict=True, builtins=("gongkai.channels.nope",)
        )


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("GONGKAI_DISABLED_PLUGINS", "webhook, other")
    channels = collect_channels(get_plugin_manager(load_entry_points=False))
    assert "webhook" not in channels and "archive" in channels


def test_channel_class_breaking_the_contract_is_reported():
    from gongkai.plugins.hookspecs import hookimpl

    class NotAChannel:
        name = "bad"

    class Plugin:
        @hookimpl
        def gongkai_register_channels(self):
            return [NotAChannel]

    pm = get_plugin_manager(load_entry_points=False, extra=[Plugin()])
    assert "bad" not in collect_channels(pm)
    assert "not a subclass" in pm.problems[0].problem


@pytest.fixture
def test_distribution(tmp_path, monkeypatch):
    """Install (on sys.path) a distribution with two entry points: one good channel
    plugin, one that fails to import."""
    (tmp_path / "gongkai_hello.py").write_text(
        textwrap.dedent(
            '''
            from gongkai import Channel, Receipt, Rendition
            from gongkai.plugins.hookspecs import hookimpl

            class HelloChannel(Channel):
                """Says hello."""
                name = "hello"
                guarantee = "upsert"

                def render(self, item):
                    return Rendition(body="你好，" + item.title)

                def deliver(self, item, rendition, previous):
                    return Receipt(external_id=item.id)

            @hookimpl
            def gongkai_register_channels():
                return [HelloChannel]
            '''
        ),
        encoding="utf-8",
    )
    (tmp_path / "gongkai_broken.py").write_text("raise ImportError('missing dependency foo')\n")
    info = tmp_path / "gongkai_hello-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gongkai-hello\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[gongkai]\nhello = gongkai_hello\nbroken = gongkai_broken\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("gongkai_hello", "gongkai_broken"):
        sys.modules.pop(name, None)


def test_entry_point_plugin_is_found_and_broken_one_skipped(test_distribution):
    pm = get_plugin_manager()
    channels = collect_channels(pm)
    assert channels["hello"].plugin == "hello"
    [problem] = pm.problems
    assert problem.plugin == "broken"
    assert "distribution 'gongkai-hello' 0.1" in str(problem)
    assert "missing dependency foo" in problem.problem
    with pytest.raises(PluginError, match="broken"):
        get_plugin_manager(strict=True)


def test_entry_point_plugin_can_be_disabled(test_distribution, monkeypatch):
    monkeypatch.setenv("GONGKAI_DISABLED_PLUGINS", "broken")
    pm = get_plugin_manager()
    assert pm.problems == []
    assert "hello" in collect_channels(pm)


def test_a_channel_without_deliver_is_refused_at_registration_and_named_on_use(tmp_path):
    from gongkai import Channel, Publisher, Rendition, hookimpl
    from gongkai.config import settings_from_dict

    class Silent(Channel):
        name = "silent"

        def render(self, item):
            return Rendition(body=item.title)

    class Plugin:
        @hookimpl
        def gongkai_register_channels(self):
            return [Silent]

    pm = get_plugin_manager(load_entry_points=False, extra=[Plugin()])
    assert "silent" not in collect_channels(pm)
    [problem] = pm.problems
    assert problem.channel == "silent" and "must implement deliver" in problem.problem
    settings = settings_from_dict(
        {"gongkai": {"state_dir": str(tmp_path)}, "channels": {"silent": {}}}, source="c.toml"
    )
    # Configured anyway: a stand-in pauses it, naming why, so its items wait.
    with Publisher(settings, plugins=[Plugin()], load_entry_points=False) as publisher:
        check = publisher.channels["silent"].instance.check
        with pytest.raises(PermanentError, match="must implement deliver"):
            check()
    with pytest.raises(PluginError, match="must implement deliver"):
        collect_channels(get_plugin_manager(load_entry_points=False, extra=[Plugin()]), strict=True)
