"""The LED-screen example plugin (examples/plugins/gongkai-led-screen), as an office
would use it: pip-installed into a fresh virtual environment, found through its entry
point by that environment's `gongkai`, publishing to a loopback controller, and
passing its own tests, gongkai's contract suite among them.

The environment is made with ``python -m venv --system-site-packages`` so gongkai and
its dependencies come from this interpreter and only the plugin is installed into it
(``pip install --no-deps --no-build-isolation``), which keeps the test fast and offline.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from conftest import make_item

from clihelp import EXAMPLES, ROOT
from gongkai import ChannelContext
from gongkai import __all__ as PUBLIC_NAMES
from gongkai.workdays import WorkCalendar
from support.venv import gongkai_in, venv_with

PLUGIN = ROOT / "examples" / "plugins" / "gongkai-led-screen"
ITEM = EXAMPLES / "01-land-pre-announcement.md"
ITEM_ID = "jt-2026-land-0101"


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("led")
    # A copy: building the wheel leaves build/ and *.egg-info beside the sources.
    source = shutil.copytree(
        PLUGIN, root / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    return venv_with(root / "venv", str(source))


@pytest.fixture
def controller():
    """The plugin's loopback controller, loaded from its source (this interpreter does
    not have the plugin installed, and must not: other tests list the channels)."""
    path = PLUGIN / "src" / "gongkai_led_screen" / "simulator.py"
    spec = importlib.util.spec_from_file_location("_led_simulator", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        with module.ControllerSimulator(width=16) as running:
            yield running
    finally:
        sys.modules.pop(spec.name, None)


def write_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[gongkai]\nstate_dir = "{tmp_path / "state"}"\norg_code = "11510121009087532X"\n\n'
        f'[channels.led_screen]\nurl = "{url}"\nevery_item = true\n',
        encoding="utf-8",
    )
    return config


def test_installed_plugin_is_listed_publishes_and_withdraws(venv_python, controller, tmp_path):
    config = write_config(tmp_path, controller.url)

    listed = gongkai_in(venv_python, "channels", "--json", config=config)
    assert listed.returncode == 0, listed.stderr
    [row] = [r for r in json.loads(listed.stdout) if r["name"] == "led_screen"]
    assert row["distribution"] == "gongkai-led-screen" and row["version"] == "0.1.0"
    assert row["module"] == "gongkai_led_screen.channel"
    assert row["guarantee"] == "upsert" and row["configured"] == "enabled"

    published = gongkai_in(venv_python, "publish", str(ITEM), "--json", config=config)
    assert published.returncode == 0, published.stderr
    outcomes = {o["channel"]: o for o in json.loads(published.stdout)["outcomes"]}
    assert outcomes["led_screen"]["status"] == "delivered", outcomes["led_screen"]
    [entry] = controller.showing()
    assert entry["id"] == ITEM_ID and entry["edition"] == 1
    assert all(len(line) <= 16 for line in entry["lines"])
    assert "".join(entry["lines"]).count("三溪镇花园村") == 1
    # land.pre-announcement: 10 working days, so at least two weeks on the calendar.
    assert (entry["to"] > entry["from"]) and entry["lines"][-1].startswith("公示至")

    withdrawn = gongkai_in(venv_python, "withdraw", ITEM_ID, "--reason", "测试撤回", config=config)
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert controller.showing() == []
    assert [r.method for r in controller.requests if r.path != "/api/playlist"] == [
        "PUT",
        "DELETE",
    ]


def test_the_plugins_own_tests_pass_in_its_environment(venv_python, tmp_path):
    tests = Path(venv_python).parents[2] / "src" / "tests"
    ran = subprocess.run(
        [str(venv_python), "-m", "pytest", "-v", "-p", "no:cacheprovider", str(tests)],
        capture_output=True,
        text=True,
        cwd=tests.parent,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert "test_contract.py::TestLedScreenContract::test_success_gives_a_receipt PASSED" in (
        ran.stdout
    )
    summary = ran.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary


def test_the_posting_period_a_plugin_reads_is_the_notice_boards(tmp_path):
    """``ChannelContext.posting_period``, the public way the plugin counts its display
    period: the catalogue's minimum in its unit, or the item's longer posting_days."""
    context = ChannelContext(
        name="led_screen",
        state_dir=tmp_path,
        clock=lambda: datetime(2026, 11, 25, 17, 0, tzinfo=UTC),  # Thursday 01:00 in Beijing
        calendar=WorkCalendar.from_lists(holidays=[date(2026, 12, 1)]),
    )
    land = make_item(catalog="land.pre-announcement", posting_days=None)
    assert context.today() == date(2026, 11, 26)
    # 10 working days from Thursday 26 November, skipping two weekends and 1 December.
    assert context.posting_period(land) == {
        "from": "2026-11-26",
        "to": "2026-12-10",
        "days": 10,
        "unit": "working",
    }
    assert context.posting_period(make_item(posting_days=3), date(2026, 11, 28)) == {
        "from": "2026-11-28",
        "to": "2026-11-30",
        "days": 3,
        "unit": "calendar",
    }
    assert context.posting_period(make_item()) is None


def test_the_plugin_uses_only_gongkais_public_api():
    """What a plugin may import from gongkai: the package itself (its ``__all__``),
    ``gongkai.http`` and ``gongkai.testing``. Anything else may change under it."""

    public_modules = {"gongkai", "gongkai.http", "gongkai.testing"}
    for path in sorted(PLUGIN.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if alias.name.startswith("gongkai.")]
                assert set(names) <= public_modules, (path, names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gongkai"):
                if node.module.startswith("gongkai_led_screen"):
                    continue
                assert node.module in public_modules, (path, node.module)
                if node.module == "gongkai":
                    imported = {alias.name for alias in node.names}
                    assert imported <= set(PUBLIC_NAMES), (path, imported)
