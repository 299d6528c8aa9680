"""``gongkai new-channel``: the package it writes, for each of --http, --file and
--offline, installed into a fresh virtual environment, passes its own tests (gongkai's
contract suite among them), is listed by ``gongkai channels`` and publishes an item.

The environment is made with ``python -m venv --system-site-packages`` so gongkai and
its dependencies come from this interpreter, and the three packages are installed
editable into it (``pip install --no-deps --no-build-isolation -e``): fast and offline.
One environment serves all three.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clihelp import EXAMPLES
from gongkai.cli import build_parser, main
from gongkai.cli_new_channel import ask_kind, cmd_new_channel, render_package, write_package
from gongkai.errors import UsageError
from gongkai.testing_server import LoopbackServer
from support.venv import gongkai_in, venv_with

KINDS = ("http", "file", "offline")
ITEM = EXAMPLES / "06-housing-policy.md"
ITEM_ID = "jt-2026-housing-0302"


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """The venv's python, and each kind's package folder (channel ``made_<kind>``)."""
    root = tmp_path_factory.mktemp("new-channel")
    packages = {}
    for kind in KINDS:
        packages[kind] = root / kind
        assert main(["new-channel", f"made_{kind}", f"--{kind}", "--dir", str(root / kind)]) == 0
    editable = [arg for kind in KINDS for arg in ("-e", str(packages[kind]))]
    python = venv_with(root / "venv", *editable)
    return python, packages


def test_each_package_passes_its_own_tests_in_its_environment(scaffolded):
    python, packages = scaffolded
    ran = subprocess.run(
        [str(python), "-m", "pytest", "-v", "-p", "no:cacheprovider"]
        + ["--import-mode=importlib", *(str(packages[k] / "tests") for k in KINDS)],
        capture_output=True,
        text=True,
        cwd=packages["http"].parent,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]
    for kind in KINDS:
        contract = f"TestMade{kind.capitalize()}ChannelContract"
        # Found through the entry point of the installed package, under its own name.
        found = f"{contract}::test_found_through_its_entry_point_under_a_free_name PASSED"
        assert found in ran.stdout, ran.stdout[-3000:]
        assert f"{contract}::test_guarantee_is_honoured" in ran.stdout
    assert "test_update_and_withdraw_a_delivered_item PASSED" in ran.stdout
    assert "TestMadeOfflineChannelContract::test_offline_delivery_awaits_confirmation PASSED" in (
        ran.stdout
    )
    assert "TestMadeFileChannelContract::test_reconcile_finds_only_what_was_sent PASSED" in (
        ran.stdout
    )
    assert "test_render_" in ran.stdout and "failed" not in ran.stdout.splitlines()[-1]


def test_each_channel_is_listed_and_publishes_an_item(scaffolded, tmp_path):
    python, _ = scaffolded
    with LoopbackServer(default_body={"id": "remote-77"}) as remote:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[gongkai]\nstate_dir = "{tmp_path / "state"}"\norg_code = "11510121009087532X"\n'
            f'\n[channels.made_http]\nurl = "{remote.url}/api"\nevery_item = true\n'
            f'\n[channels.made_file]\ndir = "{tmp_path / "out"}"\nevery_item = true\n'
            "\n[channels.made_offline]\nevery_item = true\n",
            encoding="utf-8",
        )
        listed = gongkai_in(python, "channels", "--json", config=config)
        assert listed.returncode == 0, listed.stderr
        rows = {r["name"]: r for r in json.loads(listed.stdout)}
        for kind in KINDS:
            row = rows[f"made_{kind}"]
            assert row["distribution"] == f"gongkai-made-{kind}", row
            assert row["configured"] == "enabled", row
        assert rows["made_http"]["guarantee"] == "idempotency-key"
        assert rows["made_file"]["guarantee"] == rows["made_offline"]["guarantee"] == "upsert"

        published = gongkai_in(python, "publish", str(ITEM), "--json", config=config)
        assert published.returncode == 0, published.stdout + published.stderr
        outcomes = {o["channel"]: o for o in json.loads(published.stdout)["outcomes"]}
        assert outcomes["made_http"]["status"] == "delivered", outcomes["made_http"]
        assert outcomes["made_file"]["status"] == "delivered", outcomes["made_file"]
        assert outcomes["made_offline"]["status"] == "awaiting-confirmation"

    [request] = remote.requests
    assert (request.method, request.path) == ("POST", "/api")
    assert request.json()["id"] == ITEM_ID
    assert request.header("Idempotency-Key").startswith(f"{ITEM_ID}:1:")
    written = json.loads((tmp_path / "out" / f"{ITEM_ID}.json").read_text("utf-8"))
    assert (written["id"], written["edition"]) == (ITEM_ID, 1)
    notices = list((tmp_path / "state" / "made_offline" / ITEM_ID / "e1").glob("*.txt"))
    assert any(n.name != "instructions.txt" for n in notices), notices


# --- the verb's checks, in process --------------------------------------------------------


@pytest.mark.parametrize("name", ["Bad", "1st", "tv-feed", "class", "x" * 33, "gongkai é"])
def test_a_name_that_cannot_name_a_channel_is_refused(name, tmp_path, capsys):
    assert main(["new-channel", name, "--http", "--dir", str(tmp_path / "p")]) == 2
    assert "cannot name a channel" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_the_name_of_an_installed_channel_is_refused(tmp_path, capsys):
    assert main(["new-channel", "archive", "--file", "--dir", str(tmp_path / "p")]) == 2
    assert "already installed" in capsys.readouterr().err


def test_a_folder_with_files_is_left_alone(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep", encoding="utf-8")
    assert main(["new-channel", "tv_feed", "--http", "--dir", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_package("tv_feed", "file", empty)[0].parent == empty


def test_without_a_kind_it_asks_on_a_terminal_and_refuses_otherwise(tmp_path, monkeypatch):
    answers = iter(["", "web", "4", "2"])
    assert ask_kind(lambda prompt: next(answers)) == "file"
    assert ask_kind(lambda prompt: "offline") == "offline"
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    args = build_parser().parse_args(["new-channel", "tv_feed", "--dir", str(tmp_path / "p")])
    with pytest.raises(UsageError, match="--http, --file or --offline"):
        cmd_new_channel(args)
    assert not (tmp_path / "p").exists()


def test_json_output_names_what_it_wrote(tmp_path, capsys):
    target = tmp_path / "pkg"
    assert main(["new-channel", "tv_feed", "--offline", "--dir", str(target), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["name"], out["kind"], out["directory"]) == ("tv_feed", "offline", str(target))
    assert sorted(Path(p).relative_to(target).as_posix() for p in out["created"]) == [
        "README.md",
        "pyproject.toml",
        "src/gongkai_tv_feed/__init__.py",
        "src/gongkai_tv_feed/channel.py",
        "tests/test_channel.py",
    ]
    assert out["next"][1] == "pip install -e '.[test]'"


def test_the_guarantee_is_explained_where_it_is_declared():
    for kind, guarantee in (("http", "idempotency-key"), ("file", "upsert")):
        channel = render_package("tv_feed", kind)["src/gongkai_tv_feed/channel.py"]
        declared = channel.index(f'    guarantee = "{guarantee}"')
        comment = channel.rindex("# Guarantee", 0, declared)
        assert channel[comment:declared].count("\n") >= 3  # a few lines of why
    offline = render_package("tv_feed", "offline")["src/gongkai_tv_feed/channel.py"]
    assert 'guarantee "upsert" come from OfflineChannel' in offline
