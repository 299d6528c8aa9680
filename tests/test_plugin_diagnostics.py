"""Plugin diagnostics, through the real command and real entry points: each broken
plugin is a throwaway distribution (a dist-info folder with entry_points.txt) on the
PYTHONPATH of a `gongkai` subprocess, exactly as pip would leave it."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from clihelp import EXAMPLES, TESTS, as_json, run, write_config

ITEM = EXAMPLES / "06-housing-policy.md"
ITEM_ID = "jt-2026-housing-0302"

GOOD_CHANNEL = '''
from pydantic import BaseModel

from gongkai import Channel, Receipt, Rendition, hookimpl

class {cls}(Channel):
    """A test channel."""
    name = "{name}"
    guarantee = "upsert"
{body}

@hookimpl
def gongkai_register_channels():
    return [{cls}]
'''
DELIVER = """
    def render(self, item):
        return Rendition(body=item.title)

    def deliver(self, item, rendition, previous):
        return Receipt(external_id=item.id)
"""

#: case → (module source, what the message must say besides plugin and distribution)
BROKEN = {
    "import": ("raise ImportError('No module named serial_led')\n", "No module named serial_led"),
    "duplicate": (
        GOOD_CHANNEL.format(cls="Imposter", name="webhook", body=DELIVER),
        "channel name 'webhook' is offered by both 'gongkai.channels.webhook'",
    ),
    "config": (
        GOOD_CHANNEL.format(
            cls="Lax",
            name="lax",
            body=DELIVER
            + "\n    class Config(BaseModel):  # extra keys ignored\n        url: str = ''\n",
        ),
        "Config must reject unknown keys and be frozen",
    ),
    "no_deliver": (
        GOOD_CHANNEL.format(
            cls="Mute", name="mute", body="\n    def render(self, item):\n        return None\n"
        ),
        "Mute must implement deliver",
    ),
}


def make_distribution(root: Path, module: str, source: str, *, version: str = "0.3.1") -> Path:
    """A distribution ``gongkai-<module>`` whose ``gongkai`` entry point is the module."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"gongkai_{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: gongkai-{module.replace('_', '-')}\nVersion: {version}\n",
        encoding="utf-8",
    )
    (info / "entry_points.txt").write_text(f"[gongkai]\n{module} = {module}\n", encoding="utf-8")
    return root


def path_env(*folders: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([*map(str, folders), str(TESTS)])}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_plugin_is_named_and_the_other_channels_still_deliver(tmp_path, case):
    source, says = BROKEN[case]
    env = path_env(make_distribution(tmp_path / "site", f"bad_{case}", source))
    config = write_config(tmp_path)
    named = f"'bad_{case}' (distribution 'gongkai-bad-{case.replace('_', '-')}' 0.3.1)"

    published = run("publish", str(ITEM), "--json", config=config, env=env)

    assert published.returncode == 0, published.stderr
    assert f"plugin {named}" in published.stderr
    assert says in published.stderr
    outcomes = {o["channel"]: o["status"] for o in as_json(published)["outcomes"]}
    assert outcomes["archive"] == "delivered"
    assert (tmp_path / "state" / "archive").is_dir()

    strict = run("channels", "--strict", config=config, env=env)
    assert strict.returncode == 2
    assert named in strict.stderr
    assert says in strict.stderr and "--strict" in strict.stderr


def test_a_configured_channel_whose_plugin_broke_waits_while_the_others_deliver(tmp_path):
    """Config asks for the channel: its deliveries are recorded and paused (the message
    says which package to fix), the other channels deliver, and once the plugin is
    fixed the next run sends what waited."""
    site = make_distribution(tmp_path / "site", "led_screen", BROKEN["import"][0])
    config = write_config(tmp_path, extra="[channels.led_screen]\nevery_item = true\n")

    broken = run("publish", str(ITEM), "--json", config=config, env=path_env(site))

    assert broken.returncode == 1, broken.stderr
    outcomes = {o["channel"]: o for o in as_json(broken)["outcomes"]}
    assert outcomes["archive"]["status"] == "delivered"
    waiting = outcomes["led_screen"]
    assert waiting["status"] == "paused", waiting
    assert "distribution 'gongkai-led-screen' 0.3.1" in waiting["detail"]
    assert "No module named serial_led" in waiting["detail"]
    assert "fix or reinstall the plugin" in waiting["detail"]
    # --strict still refuses to start with it.
    strict = run("publish", str(ITEM), "--strict", config=config, env=path_env(site))
    assert strict.returncode == 2 and "--strict" in strict.stderr

    fixed = make_distribution(
        tmp_path / "fixed",
        "led_screen",
        GOOD_CHANNEL.format(cls="Led", name="led_screen", body=DELIVER),
    )
    again = run("publish", str(ITEM), "--json", config=config, env=path_env(fixed))

    assert again.returncode == 0, again.stderr
    outcomes = {o["channel"]: o["status"] for o in as_json(again)["outcomes"]}
    assert outcomes["led_screen"] == "delivered", outcomes


def test_channels_verbose_shows_each_plugin_where_it_comes_from(tmp_path):
    site = make_distribution(
        tmp_path / "site", "hello", GOOD_CHANNEL.format(cls="Hello", name="hello", body=DELIVER)
    )
    make_distribution(site, "bad_import", BROKEN["import"][0])
    config = write_config(tmp_path, extra="[channels.hello]\n")
    env = path_env(site)

    listed = as_json(run("channels", "--json", config=config, env=env))
    rows = {row["name"]: row for row in listed if row["name"] != "?"}
    assert (
        rows["hello"].items()
        >= {
            "plugin": "hello",
            "distribution": "gongkai-hello",
            "version": "0.3.1",
            "module": "hello",
            "hooks": ["gongkai_register_channels"],
            "configured": "enabled",
        }.items()
    )
    assert rows["archive"]["distribution"] == "gongkai"
    [broken] = [row for row in listed if row["name"] == "?"]
    assert broken["distribution"] == "gongkai-bad-import" and broken["hooks"] == []

    text = run("channels", "--verbose", config=config, env=env).stdout.split("\nplugins (")[1]
    [hello] = [line for line in text.splitlines() if line.startswith("hello ")]
    assert hello.split() == [
        "hello",
        "gongkai-hello",
        "0.3.1",
        "hello",
        "register_channels",
        "hello",
        "(enabled)",
    ]
    [privacy] = [line for line in text.splitlines() if line.startswith("gongkai.plugins.privacy")]
    assert "prepare_item, validate_item" in privacy
    [bad] = [line for line in text.splitlines() if line.startswith("bad_import ")]
    assert "BROKEN: failed to load (ImportError: No module named serial_led)" in bad


def test_tracing_logs_every_hook_call_with_its_duration(tmp_path):
    config = write_config(tmp_path)
    result = run("publish", str(ITEM), config=config, env={"GONGKAI_TRACE_PLUGINS": "1"})
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in result.stderr.splitlines() if "plugin hook call" in line]
    hooks = {call["hook"] for call in calls}
    assert {"gongkai_register_channels", "gongkai_prepare_item", "gongkai_validate_item"} <= hooks
    prepare = next(c for c in calls if c["hook"] == "gongkai_prepare_item")
    assert "gongkai.plugins.privacy" in prepare["plugins"]
    assert all(isinstance(c["ms"], float | int) and c["ms"] >= 0 for c in calls)

    untraced = run("publish", str(ITEM), "--reread", config=config)
    assert "plugin hook call" not in untraced.stderr
